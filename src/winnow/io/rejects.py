"""Records that could not be used, with the reason, so nothing disappears silently."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import IO, Any


@dataclass(frozen=True)
class Reject:
    """One record winnow could not use: a row of an input file, a record of a request or of a
    stream. The one record-error type of every front end.

    ``row`` is the 0-based position of the record in its input (data rows, header excluded; in a
    request, the record's index). ``column`` is the column or field at fault (None: the record as a
    whole). ``reason`` says what is wrong and how to mend it; ``value`` is what came (shortened);
    ``expected`` what the column takes, in the wording of :data:`winnow.schema.EXPECTED_VALUE`.
    """

    row: int
    reason: str
    column: str | None = None
    value: str | None = None
    expected: str | None = None

    def describe(self, noun: str = "column") -> str:
        """``record 3, column 'x': <reason>``; records of a request or stream say ``field``."""
        where = f"record {self.row}" + (f", {noun} {self.column!r}" if self.column else "")
        return f"{where}: {self.reason}"

    def at(self, row: int) -> Reject:
        """The same reject numbered as record ``row`` (of the whole request, the whole file)."""
        return self if row == self.row else replace(self, row=row)

    def record_json(self) -> dict[str, Any]:
        """The error object of a JSON record's result (the service's ``error``)."""
        return {
            "index": self.row,
            "field": self.column,
            "expected": self.expected or "a record the model can score",
            "received": self.value or "",
            "message": self.describe("field"),
        }


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
