"""Records that could not be used, with the reason, so nothing disappears silently."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO


@dataclass(frozen=True)
class Reject:
    """One input record winnow could not use.

    ``row`` is the 0-based position of the record in the input (data rows, header excluded).
    """

    row: int
    reason: str
    column: str | None = None
    value: str | None = None

    def describe(self) -> str:
        where = f"record {self.row}" + (f", column {self.column!r}" if self.column else "")
        return f"{where}: {self.reason}"


class RejectsWriter:
    """Appends rejects to a JSON-lines file (created lazily, only if something is rejected)."""

    def __init__(self, path: Path | None, keep: int = 20) -> None:
        self.path = path
        self.count = 0
        self.examples: list[Reject] = []
        self._keep = keep
        self._fh: IO[str] | None = None

    def add(self, rejects: list[Reject]) -> None:
        for r in rejects:
            self.count += 1
            if len(self.examples) < self._keep:
                self.examples.append(r)
            if self.path is not None:
                if self._fh is None:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    self._fh = open(self.path, "w", encoding="utf-8")
                self._fh.write(json.dumps(asdict(r), default=str) + "\n")

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> RejectsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
