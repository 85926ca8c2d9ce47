"""A video's length from its MP4/MOV header (the ``mvhd`` box), to price an edit exactly.

Only the box headers on the way to ``moov`` are read, wherever ``moov`` sits in the file.
"""

from __future__ import annotations

import struct
from typing import IO

_MAX_MOOV = 64 << 20  # a moov box larger than this is not worth reading for one number


def mp4_seconds(handle: IO[bytes], size: int) -> float | None:
    """The presentation length in seconds, or None when the header does not say."""
    moov = _find_box(handle, 0, size, b"moov")
    if moov is None:
        return None
    start, length = moov
    if length > _MAX_MOOV:
        return None
    handle.seek(start)
    body = handle.read(length)
    at = 0
    while at + 8 <= len(body):
        box_size, kind = struct.unpack(">I4s", body[at : at + 8])
        if box_size < 8:
            return None
        if kind == b"mvhd":
            return _mvhd_seconds(body[at + 8 : at + box_size])
        at += box_size
    return None


def _find_box(handle: IO[bytes], start: int, end: int, wanted: bytes) -> tuple[int, int] | None:
    """Where the top-level box ``wanted`` holds its content: (offset, length)."""
    at = start
    while at + 8 <= end:
        handle.seek(at)
        header = handle.read(16)
        if len(header) < 8:
            return None
        box_size, kind = struct.unpack(">I4s", header[:8])
        header_size = 8
        if box_size == 1:
            if len(header) < 16:
                return None
            box_size, header_size = struct.unpack(">Q", header[8:16])[0], 16
        elif box_size == 0:
            box_size = end - at
        if box_size < header_size:
            return None
        if kind == wanted:
            return at + header_size, box_size - header_size
        at += box_size
    return None


def _mvhd_seconds(body: bytes) -> float | None:
    if not body:
        return None
    if body[0] == 1 and len(body) >= 32:
        timescale, duration = struct.unpack(">IQ", body[20:32])
        unknown = 0xFFFFFFFFFFFFFFFF
    elif len(body) >= 20:
        timescale, duration = struct.unpack(">II", body[12:20])
        unknown = 0xFFFFFFFF
    else:
        return None
    if timescale == 0 or duration in (0, unknown):
        return None
    return duration / timescale
