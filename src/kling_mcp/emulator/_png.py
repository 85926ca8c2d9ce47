"""A small, valid PNG made in pure Python: a sample still for demos and tests."""

from __future__ import annotations

import struct
import zlib


def placeholder_png(width: int = 64, height: int = 64) -> bytes:
    """An RGB gradient, deterministic for a given size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(
        b"\0" + b"".join(bytes((x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), 160)) for x in range(width))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
