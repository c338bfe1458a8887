"""The review page: one self-contained HTML document (inline CSS and script, no network).

The page itself holds no data. Its script reads the queue and the figures from
``GET /v1/review/queue`` and sends verdicts to ``POST /v1/review/verdicts``, with the API key
the reviewer types once (kept in the tab's session storage) when the service has keys.

Keyboard: ``j`` / ``k`` next / previous record, ``r`` right, ``w`` wrong, ``n`` write a note
(Enter keeps it, Escape leaves it), ``?`` the shortcuts.
"""

from __future__ import annotations

from importlib.resources import files

#: the page (``page.html`` beside this module, shipped as package data)
PAGE = files("winnow.review").joinpath("page.html").read_text(encoding="utf-8")
