"""Offers to the review queue, as the service and the stream worker make them while screening.

Every selected record is offered, and a seeded sample of the others chosen by record id (so a
record is in the sample or not whatever batch carries it); every screened record is counted,
so the sample can be scaled up to estimate recall. Offers wait in memory until
:meth:`ReviewQueue.write` puts them in a :class:`~winnow.review.store.ReviewStore`.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from typing import Any

from winnow.review.store import ReviewStore, Screened


def record_id(value: Any, record: Any) -> str:
    """The record's id as text, or (no id) a hash of its JSON: the same record, the same id."""
    if value is not None and value != "":
        return str(value)
    text = json.dumps(record, sort_keys=True, default=str).encode()
    return "sha256:" + hashlib.sha256(text).hexdigest()[:16]


def sampled(rid: str, share: float, seed: int = 0) -> bool:
    """Whether a not-selected record with id ``rid`` is in the review sample (by its id)."""
    return zlib.crc32(f"{seed}:{rid}".encode()) < share * 2**32


class ReviewQueue:
    """Offers and counts waiting to be written (not thread-safe: one owner adds and drains)."""

    def __init__(self, sample: float, seed: int = 0) -> None:
        self.sample, self.seed = sample, seed
        self._offers: list[Screened] = []
        self._counts: dict[str, list[int]] = {}

    def wants(self, rid: str, selected: bool) -> bool:
        return selected or sampled(rid, self.sample, self.seed)

    def offer(
        self,
        version: str,
        rid: str,
        score: float,
        selected: bool,
        rule: str | None,
        reasons: list[str],
        record: Any,
    ) -> None:
        """Count one screened record, and keep it when it is selected or sampled."""
        counts = self._counts.setdefault(version, [0, 0])
        counts[0] += 1
        counts[1] += bool(selected)
        if self.wants(rid, selected):
            body = record if isinstance(record, dict) else {"value": record}
            self._offers.append(
                Screened(rid, float(score), bool(selected), rule, list(reasons), body, version)
            )

    def count(self, version: str, screened: int, selected: int) -> None:
        """Count records screened without an offer (not selected, not sampled)."""
        counts = self._counts.setdefault(version, [0, 0])
        counts[0] += screened
        counts[1] += selected

    def drain(self) -> list[tuple[str, list[Screened], int, int]]:
        """What waits, per artifact version: (version, offers, screened, selected); then empty."""
        offers, counts = self._offers, self._counts
        self._offers, self._counts = [], {}
        return [(v, [o for o in offers if o.artifact_version == v], n, s) for v, (n, s) in counts.items()]

    @staticmethod
    def write(store: ReviewStore, drained: list[tuple[str, list[Screened], int, int]]) -> None:
        for version, offers, screened, selected in drained:
            store.add_screened(offers, screened, selected, version)
