"""Small real images for upload tests: a PNG drawn with zlib (any size, its pixels from a
seed, so two seeds are two different files) and a JPEG's bytes, without an image library."""

from __future__ import annotations

import struct
import zlib


def png(seed: int = 0, size: int = 16) -> bytes:
    """A valid greyscale PNG of ``size`` x ``size`` whose pixels depend on ``seed``."""
    rows = b"".join(b"\x00" + bytes((x * 7 + y * 13 + seed * 31) % 256 for x in range(size)) for y in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def jpeg(seed: int = 0) -> bytes:
    """The bytes of a JPEG (SOI, a JFIF APP0 segment, a comment naming the seed, EOI): what
    the magic-byte check sees of a camera's photo."""
    comment = f"seed {seed}".encode()
    return (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
            + b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment + b"\xff\xd9")
