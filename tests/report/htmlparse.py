"""Read back what the report wrote: sections, SVG elements, table cells (standard library only)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

SVG = re.compile(r"<svg\b.*?</svg>", re.DOTALL)


class Cells(HTMLParser):
    """Every ``<td>`` of the table with ``table_id``: rows of (attributes, text)."""

    def __init__(self, table_id: str) -> None:
        super().__init__()
        self.table_id, self.inside, self.rows = table_id, False, []
        self._cell: tuple[dict, list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "table" and a.get("id") == self.table_id:
            self.inside = True
        elif self.inside and tag == "tr":
            self.rows.append([])
        elif self.inside and tag in ("td", "th"):
            self._cell = (a, [])

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.inside = False
        elif self.inside and tag in ("td", "th") and self._cell is not None:
            attrs, text = self._cell
            self.rows[-1].append((attrs, "".join(text).strip()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell[1].append(data)


def table_rows(html: str, table_id: str) -> list[list[tuple[dict, str]]]:
    p = Cells(table_id)
    p.feed(html)
    return p.rows
