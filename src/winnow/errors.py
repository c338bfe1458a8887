"""Exceptions users of winnow catch.

Hierarchy::

    WinnowError
    ├── ConfigError(WinnowError, ValueError)      bad option or option combination  -> CLI exit 2
    ├── DataError(WinnowError, ValueError)        the data cannot serve the task     -> CLI exit 3
    │   └── SchemaError(DataError)                columns missing or of the wrong type
    ├── ArtifactError(WinnowError)                artifact missing, tampered or from another version -> exit 4
    └── NotFittedError(WinnowError, RuntimeError) a Screener used before ``fit``/``load``

Every error builds its own message from structured fields, says what was expected, what was
received and how to fix it.
"""

from __future__ import annotations

from collections.abc import Sequence


class WinnowError(Exception):
    """Base class of every error winnow raises on purpose."""

    exit_code: int = 1


class ConfigError(WinnowError, ValueError):
    """An option has a value winnow cannot use.

    Parameters
    ----------
    option : the option's name as the user wrote it (``--budget``, ``target.positive``).
    received : the value received.
    expected : what would have been accepted.
    """

    exit_code = 2

    def __init__(self, option: str, received: object, expected: str, hint: str = "") -> None:
        self.option, self.received, self.expected, self.hint = option, received, expected, hint
        msg = f"{option}: expected {expected}, received {received!r}."
        if hint:
            msg += f" {hint}"
        super().__init__(msg)


class DataError(WinnowError, ValueError):
    """The data cannot be used for the task (empty, one class, unknown positive value, ...)."""

    exit_code = 3

    def __init__(
        self,
        message: str,
        *,
        column: str | None = None,
        record: int | None = None,
        hint: str = "",
    ) -> None:
        self.column, self.record, self.hint = column, record, hint
        where = []
        if record is not None:
            where.append(f"record {record}")
        if column is not None:
            where.append(f"column {column!r}")
        prefix = (", ".join(where) + ": ") if where else ""
        if hint and not message.endswith((".", "?", "!", ";", ":")):
            message += "."
        full = prefix + message + (f" {hint}" if hint else "")
        super().__init__(full)


class SchemaError(DataError):
    """Input columns do not match what the screener was fitted on."""

    def __init__(
        self,
        message: str,
        *,
        missing: Sequence[str] = (),
        wrong_type: Sequence[tuple[str, str, str]] = (),
        hint: str = "",
    ) -> None:
        self.missing = list(missing)
        self.wrong_type = list(wrong_type)
        parts = [message]
        if self.missing:
            parts.append("missing columns: " + ", ".join(repr(c) for c in self.missing) + ".")
        for col, expected, received in self.wrong_type:
            parts.append(f"column {col!r}: expected {expected}, received {received}.")
        super().__init__(" ".join(parts), hint=hint)


class ArtifactError(WinnowError):
    """A screener artifact is missing, corrupted, tampered with or of an unsupported version."""

    exit_code = 4

    def __init__(self, path: object, problem: str, hint: str = "") -> None:
        self.path, self.problem = path, problem
        msg = f"artifact {str(path)!r}: {problem}"
        if hint and not msg.endswith((".", "?", "!", ")")):
            msg += "."
        if hint:
            msg += f" {hint}"
        super().__init__(msg)


class NotFittedError(WinnowError, RuntimeError):
    """A Screener was used before it was fitted or loaded."""

    def __init__(self, what: str = "Screener") -> None:
        super().__init__(f"{what} is not fitted: call .fit(...) or Screener.load(path) first.")


__all__ = [
    "ArtifactError",
    "ConfigError",
    "DataError",
    "NotFittedError",
    "SchemaError",
    "WinnowError",
]
