"""Files in object stores and other filesystems, named by URI.

``s3://bucket/key.parquet``, ``gs://...``, ``hdfs://...`` and ``file:///...`` go through pyarrow's
own filesystems; any other scheme fsspec knows (``memory://``, ``az://``, ``http://`` with the
matching package installed) through fsspec. An S3-compatible server other than AWS is named by
the ``AWS_ENDPOINT_URL`` environment variable or in the URI
(``s3://bucket/key?endpoint_override=http://127.0.0.1:9000``); credentials come from the usual
AWS variables and files. Everything else about a file (its format by extension, a folder of
Parquet files, batches, rejects) is as for a local path.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO, Any

import pyarrow as pa
import pyarrow.fs as pafs

from winnow.errors import DataError

_NOT_FILES = ("duckdb:", "postgresql://", "postgres://")


@dataclass(frozen=True)
class Remote:
    """A filesystem and a path inside it, with the URI the user gave (for messages)."""

    fs: pafs.FileSystem
    path: str
    uri: str

    @property
    def suffixes(self) -> list[str]:
        return [s.lower() for s in PurePosixPath(self.path).suffixes]

    def info(self) -> pafs.FileInfo:
        try:
            return self.fs.get_file_info(self.path)
        except OSError as e:
            raise DataError(f"cannot reach {self.uri!r}: {e}", hint=_HINT) from e

    def has_parquet(self) -> bool:
        found = self.fs.get_file_info(pafs.FileSelector(self.path, recursive=True))
        return any(f.type == pafs.FileType.File and f.path.endswith(".parquet") for f in found)

    def open_lines(self) -> IO[bytes]:
        """The file's bytes, line by line (decompressed when its extension says so)."""
        return io.BufferedReader(self.fs.open_input_stream(self.path, compression="detect"))  # type: ignore[arg-type]

    def open_output(self) -> Any:
        parent = str(PurePosixPath(self.path).parent)
        if parent not in ("", "."):
            self.fs.create_dir(parent, recursive=True)
        return self.fs.open_output_stream(self.path)


_HINT = (
    "Check the URI and the credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or "
    "AWS_ENDPOINT_URL for an S3-compatible server)."
)


def resolve(text: str) -> Remote | None:
    """The filesystem a URI names; None for a local path (or a database location)."""
    if "://" not in text or text.startswith(_NOT_FILES):
        return None
    try:
        fs, path = pafs.FileSystem.from_uri(text)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        fs, path = _fsspec(text)
    except OSError as e:
        raise DataError(f"cannot reach {text!r}: {e}", hint=_HINT) from e
    return Remote(fs, path, text)


def _fsspec(text: str) -> tuple[pafs.FileSystem, str]:
    try:
        import fsspec  # type: ignore[import-untyped]
    except ImportError:
        raise DataError(
            f"no filesystem for {text!r}", hint="pip install fsspec (and the package for that scheme)"
        ) from None
    try:
        f, path = fsspec.core.url_to_fs(text)
    except (ImportError, ValueError) as e:
        raise DataError(
            f"no filesystem for {text!r}: {e}", hint="Install the fsspec package for that scheme."
        ) from e
    return pafs.PyFileSystem(pafs.FSSpecHandler(f)), path
