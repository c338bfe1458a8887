"""Decode an 8-bit, non-interlaced PNG (what Chromium writes) into an array: no imaging library."""

from __future__ import annotations

import struct
import zlib

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # grey, RGB, grey+alpha, RGBA


def decode(data: bytes) -> np.ndarray:
    """(height, width, channels) uint8 pixels."""
    if data[:8] != SIGNATURE:
        raise ValueError("not a PNG file")
    pos, idat, ihdr = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if ihdr is None:
        raise ValueError("PNG without a header chunk")
    width, height, depth, colour, _, _, interlace = ihdr
    if depth != 8 or interlace or colour not in _CHANNELS:
        raise ValueError(f"unsupported PNG: depth {depth}, colour type {colour}, interlace {interlace}")
    bpp = _CHANNELS[colour]
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8).reshape(height, 1 + width * bpp)
    return _unfilter(raw, bpp).reshape(height, width, bpp)


def _unfilter(raw: np.ndarray, bpp: int) -> np.ndarray:
    height, stride = raw.shape[0], raw.shape[1] - 1
    out = np.zeros((height, stride), np.uint8)
    prev = np.zeros(stride, np.uint8)
    for r in range(height):
        f, line = int(raw[r, 0]), raw[r, 1:]
        if f == 0:
            cur = line.copy()
        elif f == 1:  # Sub: a running sum along the row, per channel, modulo 256
            cur = np.cumsum(line.reshape(-1, bpp).astype(np.int64), axis=0).astype(np.uint8).ravel()
        elif f == 2:  # Up
            cur = line + prev
        else:  # Average and Paeth depend on the byte just decoded: one at a time
            src, up, dst = line.tolist(), prev.tolist(), [0] * stride
            for i in range(stride):
                a = dst[i - bpp] if i >= bpp else 0
                b = up[i]
                if f == 3:
                    dst[i] = (src[i] + ((a + b) >> 1)) & 255
                else:
                    c = up[i - bpp] if i >= bpp else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    dst[i] = (src[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
            cur = np.asarray(dst, np.uint8)
        out[r] = cur
        prev = cur
    return out
