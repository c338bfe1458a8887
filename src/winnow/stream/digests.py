"""``winnow stream --digest-every 1d --digest-out DIR``: the worker writes the digest of each
period of what it screened, from its own sink's audit table (so a DuckDB sink, which allows one
process per file, still gets its digests while the worker runs).

A period ends on a multiple of the span since the Unix epoch (``1d``: at midnight UTC). After a
batch is acknowledged and before the next commit starts (the sink's connection is then idle), a
digest whose period has ended is written: ``digest-<period start>.html``, ``.json`` and ``.md``.
A failure is logged and counted; it never stops the stream, and the next period is tried anew.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from winnow.screener import Screener

log = logging.getLogger("winnow.stream")
_EPOCH = datetime(1970, 1, 1)


def period_start(t: datetime, every: timedelta) -> datetime:
    """The start of the period holding ``t`` (periods are multiples of ``every`` since the epoch)."""
    return _EPOCH + ((t - _EPOCH) // every) * every


class PeriodicDigest:
    """Writes the digest of each ended period; ``due`` says when one is waiting."""

    def __init__(
        self,
        screener: Screener,
        every: timedelta,
        folder: Path,
        *,
        reviews: str | None = None,
        now: datetime | None = None,
    ) -> None:
        self.screener, self.every, self.folder, self.reviews = screener, every, Path(folder), reviews
        self.next_end = period_start(now or _utcnow(), every) + every
        self.written: list[Path] = []
        self.failures = 0

    def due(self, now: datetime | None = None) -> bool:
        return (now or _utcnow()) >= self.next_end

    def write(self, sink: Any) -> Path | None:
        """The digest of the period that just ended (None when it had no records)."""
        from winnow.errors import DataError
        from winnow.report.digest import build_digest
        from winnow.report.digest_page import digest_html, digest_markdown

        until = self.next_end
        since = until - self.every
        self.next_end = until + self.every  # periods missed while the worker was down: one per call
        try:
            table = sink.scored_between(since, until)
            if table.num_rows == 0:
                log.info("no records scored from %s to %s: no digest", since, until)
                return None
            d = build_digest(table, self.screener, since=since, until=until, reviews=self.reviews)
        except DataError as e:
            log.info("no digest for %s: %s", since, e)
            return None
        except Exception as e:  # a digest must never stop the stream
            self.failures += 1
            log.warning("digest for %s failed (%s): %s", since, type(e).__name__, e)
            return None
        self.folder.mkdir(parents=True, exist_ok=True)
        stem = self.folder / f"digest-{since:%Y%m%dT%H%M}"
        html = stem.with_suffix(".html")
        html.write_text(digest_html(d), encoding="utf-8")
        stem.with_suffix(".json").write_text(json.dumps(d, indent=1, sort_keys=True, default=str) + "\n")
        stem.with_suffix(".md").write_text(digest_markdown(d), encoding="utf-8")
        self.written.append(html)
        log.info("digest of %s records (%s selected) written to %s", d["scored"], d["selected"], html)
        return html


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
