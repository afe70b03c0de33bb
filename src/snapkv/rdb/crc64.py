"""CRC-64 "Jones", the checksum of Redis's DUMP payloads and RDB files (Redis's ``crc64.c``).

Parameters: polynomial 0xad93d23594c935a9, reflected input and output,
initial value 0 and no final xor, so a checksum continues over chunks
(``crc64(crc64(0, a), b) == crc64(0, a + b)``), as Redis's rio computes
it. Check value: ``crc64(0, b"123456789") == 0xe9c6d914c4b8d9ca``.

Why slicing-by-8 on 32-bit halves: a byte-at-a-time table loop costs one
Python iteration per byte; eight tables fold eight bytes per iteration,
and keeping the running value as two 32-bit halves keeps CPython's integer
arithmetic on small numbers. Measured on 1 MiB: about 0.07 s against
0.15 s for the byte loop (tests/test_rdb_codec.py keeps it under a
bound). Pure Python: the codec must not depend on a C extension.
"""

from __future__ import annotations

import struct

__all__ = ["crc64"]

#: The polynomial bit-reversed: the reflected algorithm shifts right.
_POLY = 0x95AC9329AC4BC9B5
_HALVES = struct.Struct("<II")


def _tables() -> tuple[list[int], ...]:
    """Table k maps a byte to its contribution k bytes further along (slicing-by-8)."""
    first = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY if crc & 1 else crc >> 1
        first.append(crc)
    tables = [first]
    for _ in range(7):
        tables.append([(c >> 8) ^ first[c & 0xFF] for c in tables[-1]])
    return tuple(tables)


_T0, _T1, _T2, _T3, _T4, _T5, _T6, _T7 = _tables()


def crc64(crc: int, data: bytes | bytearray | memoryview) -> int:
    """``crc`` (0 to start) continued over ``data``."""
    t0, t1, t2, t3, t4, t5, t6, t7 = _T0, _T1, _T2, _T3, _T4, _T5, _T6, _T7
    view = memoryview(data).cast("B")
    whole = len(view) & ~7
    for low, high in _HALVES.iter_unpack(view[:whole]):
        lo = low ^ (crc & 0xFFFFFFFF)
        hi = high ^ (crc >> 32)
        crc = (
            t7[lo & 0xFF]
            ^ t6[(lo >> 8) & 0xFF]
            ^ t5[(lo >> 16) & 0xFF]
            ^ t4[lo >> 24]
            ^ t3[hi & 0xFF]
            ^ t2[(hi >> 8) & 0xFF]
            ^ t1[(hi >> 16) & 0xFF]
            ^ t0[hi >> 24]
        )
    for byte in view[whole:]:
        crc = t0[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc
