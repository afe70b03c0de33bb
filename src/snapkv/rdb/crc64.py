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

Why a second method for long inputs (RDB files of megabytes): the CRC is
linear over GF(2), so the checksum of an 8 KiB block is ``Z(crc) ^ r``,
where ``Z`` is "append 8 KiB of zeros" (a 64x64 bit matrix, applied with
eight 256-entry tables) and bit ``j`` of ``r`` is the parity of the
block's bits that flip bit ``j`` of a checksum: ``(block & mask[j])``'s
bit count, on the block read as one 65,536-bit integer. That is 64 C-level
AND and bit counts per block instead of 1,024 Python iterations: about
1.7x faster. The masks are built once, on first use, by doubling from one
byte (about 0.1 s); inputs under :data:`BLOCKWISE_FROM` bytes keep the
slicing loop.
"""

from __future__ import annotations

import struct

__all__ = ["BLOCKWISE_FROM", "crc64"]

#: Bytes of input from which whole blocks are folded blockwise (the masks' build pays off).
BLOCKWISE_FROM = 1 << 20
_BLOCK = 8192

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
    view = memoryview(data).cast("B")
    if len(view) >= BLOCKWISE_FROM:
        whole = len(view) - len(view) % _BLOCK
        crc = _blockwise(crc, view[:whole])
        view = view[whole:]
    return _sliced(crc, view)


def _sliced(crc: int, view: memoryview) -> int:
    t0, t1, t2, t3, t4, t5, t6, t7 = _T0, _T1, _T2, _T3, _T4, _T5, _T6, _T7
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


def _zeros(crcs: int) -> list[int]:
    """The columns of "append ``crcs`` zero bytes": where each single state bit goes."""
    return [_sliced(1 << k, memoryview(bytes(crcs))) for k in range(64)]


def _apply(columns: list[int], value: int) -> int:
    out, k = 0, 0
    while value:
        if value & 1:
            out ^= columns[k]
        value >>= 1
        k += 1
    return out


_BLOCK_TABLES: tuple[list[tuple[int, int]], list[list[int]]] | None = None


def _block_tables() -> tuple[list[tuple[int, int]], list[list[int]]]:
    """(``(j, mask[j])`` for the 64 checksum bits, the eight tables of "append a block").

    Doubling: for a block of ``2h`` bytes, a bit in the second half acts as in an
    ``h``-byte block, and one in the first half as that, then ``h`` zero bytes.
    """
    global _BLOCK_TABLES  # noqa: PLW0603 - built once, on first use
    if _BLOCK_TABLES is None:
        first = [_T0[1 << t] for t in range(8)]  # one byte with bit t set
        masks = [sum(((first[t] >> j) & 1) << t for t in range(8)) for j in range(64)]
        size = 1
        while size < _BLOCK:
            shift = _zeros(size)
            ahead = []
            for j in range(64):
                mask = 0
                for k in range(64):
                    if (shift[k] >> j) & 1:
                        mask ^= masks[k]
                ahead.append(mask)
            masks = [ahead[j] | (masks[j] << (8 * size)) for j in range(64)]
            size *= 2
        block = _zeros(_BLOCK)
        tables = [[_apply(block[8 * p : 8 * p + 8], b) for b in range(256)] for p in range(8)]
        _BLOCK_TABLES = (list(enumerate(masks)), tables)
    return _BLOCK_TABLES


def _blockwise(crc: int, view: memoryview) -> int:
    """``crc`` continued over ``view``, a whole number of blocks (the module docstring)."""
    masks, (z0, z1, z2, z3, z4, z5, z6, z7) = _block_tables()
    number = int.from_bytes
    for start in range(0, len(view), _BLOCK):
        bits = number(view[start : start + _BLOCK], "little")
        flips = 0
        for j, mask in masks:
            flips |= ((bits & mask).bit_count() & 1) << j
        crc = flips ^ (
            z0[crc & 0xFF]
            ^ z1[(crc >> 8) & 0xFF]
            ^ z2[(crc >> 16) & 0xFF]
            ^ z3[(crc >> 24) & 0xFF]
            ^ z4[(crc >> 32) & 0xFF]
            ^ z5[(crc >> 40) & 0xFF]
            ^ z6[(crc >> 48) & 0xFF]
            ^ z7[crc >> 56]
        )
    return crc
