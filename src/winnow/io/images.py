"""Reading image values: file paths or encoded bytes, checked and decoded with Pillow.

An image column holds either paths (text) or the encoded file bytes (binary: PNG, JPEG, BMP,
GIF, WebP). A relative path resolves against the column's *root*: the ``image_root`` option
when it is set, else the current working directory of the process, so a screener fitted in one
folder replays the same way in a batch job, the HTTP service and the stream worker when they run
from that folder (absolute paths and bytes need no root).

:func:`check_images` decodes every value once while a batch is typed, so a missing, unreadable or
truncated image rejects its record with the reason instead of failing a whole batch later;
:func:`decode_batch` gives the pixels the embedders work on. Pillow is imported lazily.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

#: file name endings read as image paths when roles are inferred
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
#: values sampled to infer that a column holds images
SAMPLE = 20


class ImageUnreadable(ValueError):
    """One value is not a readable image; ``reason`` says why in words for a reject."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def _pil() -> Any:
    from winnow.extras import require

    return require("PIL.Image")


def _decode_errors() -> tuple[type[BaseException], ...]:
    # what Pillow's decoders raise on bad input: OSError (unidentified/truncated), and a few
    # plugins' own choices; a decompression bomb has its own class
    Image = _pil()
    return (OSError, ValueError, SyntaxError, EOFError, struct.error, Image.DecompressionBombError)


def is_binary(t: pa.DataType) -> bool:
    return pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t)


def resolve(path: str, root: str | None) -> str:
    """The path a value names: absolute as given, relative against ``root`` (else the cwd)."""
    p = os.path.expanduser(path.strip())
    if not os.path.isabs(p) and root:
        p = os.path.join(os.path.expanduser(root), p)
    return p


def root_description(root: str | None) -> str:
    if root:
        return f"image_root {str(Path(root).expanduser().resolve())!r}"
    return f"the working directory {os.getcwd()!r}"


def open_image(value: str | bytes) -> Any:
    """Open and fully decode one image (a resolved path or encoded bytes); RGB Pillow image.

    Raises :class:`ImageUnreadable` with the reason when the file is missing or not an image.
    """
    Image = _pil()
    if isinstance(value, str):
        if not os.path.exists(value):
            raise ImageUnreadable(f"image file not found: {value!r}")
        if os.path.isdir(value):
            raise ImageUnreadable(f"image path is a folder, not a file: {value!r}")
        source: Any = value
    else:
        if not value:
            raise ImageUnreadable("empty image bytes")
        source = io.BytesIO(value)
    try:
        with Image.open(source) as im:
            im.load()
            return im.convert("RGB")
    except _decode_errors() as e:
        what = f"{value!r}" if isinstance(value, str) else f"{len(value)} bytes"
        raise ImageUnreadable(f"not a readable image ({what}): {e}") from e


def check_images(col: pa.Array, root: str | None) -> tuple[pa.Array, list[str | None]]:
    """Decode every value of a column of paths or bytes.

    Returns the column to use (paths resolved against ``root``; unreadable values null) and, per
    row, ``None`` or the reason the value is not a readable image.
    """
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if pa.types.is_dictionary(col.type):
        col = col.cast(pa.string())
    reasons: list[str | None] = [None] * len(col)
    values = col.to_pylist()
    if is_binary(col.type):
        out_b: list[bytes | None] = []
        for i, v in enumerate(values):
            if v is not None:
                try:
                    open_image(v)
                except ImageUnreadable as e:
                    reasons[i], v = e.reason, None
            out_b.append(v)
        return pa.array(out_b, pa.large_binary()), reasons
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        raise TypeError(col.type)
    out_s: list[str | None] = []
    for i, v in enumerate(values):
        if v is None or not v.strip():
            out_s.append(None)
            continue
        path = resolve(v, root)
        try:
            open_image(path)
        except ImageUnreadable as e:
            reason = e.reason
            if not os.path.isabs(os.path.expanduser(v.strip())):
                reason += f" (relative paths resolve against {root_description(root)})"
            reasons[i] = reason
            out_s.append(None)
            continue
        out_s.append(path)
    return pa.array(out_s, pa.string()), reasons


def looks_like_paths(values: Sequence[str]) -> bool:
    """Nine in ten values end with an image file extension."""
    if not values:
        return False
    hits = sum(str(v).strip().lower().endswith(IMAGE_EXTENSIONS) for v in values)
    return hits >= 0.9 * len(values)


def found_share(values: Sequence[str], root: str | None) -> float:
    """Share of ``values`` (paths) that resolve to an existing file."""
    if not values:
        return 0.0
    return sum(os.path.isfile(resolve(str(v), root)) for v in values) / len(values)


def decodable_share(values: Sequence[bytes]) -> float:
    """Share of ``values`` (bytes) that decode as images."""
    ok = 0
    for v in values:
        try:
            open_image(v)
            ok += 1
        except ImageUnreadable:
            pass
    return ok / max(len(values), 1)


def decode_batch(values: Sequence[str | bytes | None], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixels of many images resized to ``size`` x ``size``: uint8 (n, size, size, 3), and the
    mask of values that are present and readable (the others are zeros)."""
    Image = _pil()
    out = np.zeros((len(values), size, size, 3), dtype=np.uint8)
    ok = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values):
        if v is None:
            continue
        try:
            im = open_image(v)
        except ImageUnreadable:
            # typing checked every value; a file changed since is a missing value, not a crash
            continue
        if im.size != (size, size):
            im = im.resize((size, size), Image.Resampling.BILINEAR)
        out[i] = np.asarray(im, dtype=np.uint8)
        ok[i] = True
    return out, ok
