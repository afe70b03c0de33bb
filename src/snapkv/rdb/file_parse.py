"""The RDB file reader's parsers (:mod:`snapkv.rdb.file_reader`), pure functions over bytes.

Each takes the bytes held, where to start and where they end, and returns
``(result, where it ended)``, raising :class:`snapkv.rdb.objects.RDBError`
with ``short`` set when the bytes held end too early: the reader then
reads more of the file and calls it again. :func:`strings` is the fast path
for string keys, which never raises.
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple

from . import lzf, objects, stream_codec
from .objects import RDBError

__all__ = [
    "BATCH",
    "EMPTY",
    "NO_EXPIRY",
    "OBJECTS",
    "Item",
    "hash_2",
    "key_value",
    "length",
    "stream",
    "strings",
]

#: HASH_2's expiry time of a field that does not expire: -1 as 8 bytes little-endian.
NO_EXPIRY: Final = (1 << 64) - 1
_EXPIRETIME_MS: Final = 252


class Item(NamedTuple):
    """One key read: its keyspace, name, value and absolute expiry time (epoch ms) if any."""

    db: int
    key: str
    value: Any
    expire_at_ms: int | None


def length(data: bytes, start: int, end: int) -> tuple[tuple[int, bool], int]:
    """An RDB length at ``start``: ((value, is-special), end)."""
    if start >= end:
        raise RDBError("the input ends early", start, short=True)
    first = data[start]
    kind = first >> 6
    if kind == 0:
        return (first, False), start + 1
    if kind == 3:
        return (first & 0x3F, True), start + 1
    width = 2 if kind == 1 else 5 if first == 0x80 else 9 if first == 0x81 else 0
    if not width:
        raise RDBError(f"length byte 0x{first:02x} is not one of RDB's", start)
    if start + width > end:
        raise RDBError("a length is cut short", start, short=True)
    if kind == 1:
        return (((first & 0x3F) << 8) | data[start + 1], False), start + 2
    return (int.from_bytes(data[start + 1 : start + width], "big"), False), start + width


def stream(data: bytes, kind: int, start: int, end: int) -> tuple[tuple[Any, bool], int]:
    reader = objects._Reader(data, start, end)
    result = stream_codec.read(reader, kind)
    return result, reader.pos


BATCH: Final = 4096
#: The types :func:`snapkv.rdb.objects.load_value` reads whole (no consumer groups, no module).
OBJECTS = frozenset((0, 1, 2, 3, 4, 5, 9, 10, 11, 12, 13, 14, 16, 17, 18, 20))


#: :func:`key_value`'s value of an empty container (Redis's loader skips such a key).
EMPTY: Final = object()


def key_value(data: bytes, kind: int, start: int, end: int) -> tuple[tuple[str, Any], int]:
    key, pos = objects.load_string(data, start, end)
    try:
        value, pos = objects.load_value(data, kind, pos, end)
    except objects.EmptyValue as exc:
        value, pos = EMPTY, exc.end
    return (key.decode("utf-8", "surrogateescape"), value), pos


def strings(data: bytes, pos: int, db: int) -> tuple[list[Item], int]:
    """The fast path: the string keys (with or without EXPIRETIME_MS) from ``pos`` on, as many
    as lie whole in ``data`` (up to :data:`BATCH`): (items, where they end).

    Why: most keys of most files are strings, and the general path's checks cost several
    calls per key. This reads only raw strings of 6- or 14-bit lengths, the three integer
    encodings and LZF strings, exactly as :func:`snapkv.rdb.objects.load_string` does (the
    last through it); at anything else, or
    anything not whole in ``data``, it stops before that entry and the general path (with
    every check and message) takes over there. It never raises.
    """
    out: list[Item] = []
    append = out.append
    end = len(data)
    while len(out) < BATCH and pos < end:
        start = pos
        expire = None
        kind = data[pos]
        if kind == _EXPIRETIME_MS:
            if pos + 10 > end:
                break
            expire = int.from_bytes(data[pos + 1 : pos + 9], "little", signed=True)
            pos += 9
            kind = data[pos]
        if kind != 0:
            return out, start
        texts = []
        pos += 1
        for _ in (0, 1):
            if pos >= end:
                return out, start
            first = data[pos]
            if first < 0x40:
                size, pos = first, pos + 1
            elif first < 0x80 and pos + 1 < end:
                size, pos = ((first & 0x3F) << 8) | data[pos + 1], pos + 2
            elif first == 0xC3:
                # An LZF string: its two lengths read here when 6- or 14-bit (a call chain
                # through load_string cost as much as the decompression itself).
                at = pos + 1
                lengths = []
                for _ in (0, 1):
                    if at + 1 >= end:
                        return out, start
                    head = data[at]
                    if head < 0x40:
                        lengths.append(head)
                        at += 1
                    elif head < 0x80:
                        lengths.append(((head & 0x3F) << 8) | data[at + 1])
                        at += 2
                    else:
                        return out, start  # longer lengths: the general path
                packed, size = lengths
                if at + packed > end:
                    return out, start
                try:
                    raw = lzf.decompress(data[at : at + packed], size)
                except lzf.LZFError:
                    return out, start  # the general path says what is wrong, and where
                texts.append(raw.decode("utf-8", "surrogateescape"))
                pos = at + packed
                continue
            elif 0xC0 <= first <= 0xC2:
                width = 1 << (first - 0xC0)
                if pos + 1 + width > end:
                    return out, start
                number = int.from_bytes(data[pos + 1 : pos + 1 + width], "little", signed=True)
                texts.append(str(number))
                pos += 1 + width
                continue
            else:
                return out, start
            if pos + size > end:
                return out, start
            texts.append(data[pos : pos + size].decode("utf-8", "surrogateescape"))
            pos += size
        append(Item(db, texts[0], texts[1], expire))
    return out, pos


def hash_2(data: bytes, start: int, end: int) -> tuple[tuple[Any, bool], int]:
    """A HASH_2 value: (the hash, whether a field has an expiry time snapkv cannot keep)."""
    reader = objects._Reader(data, start, end)
    pairs: list[str] = []
    volatile = False
    for _ in range(reader.count("hash", 10)):
        pairs.append(reader.string().decode("utf-8", "surrogateescape"))
        pairs.append(reader.string().decode("utf-8", "surrogateescape"))
        volatile |= int.from_bytes(reader.take(8), "little") != NO_EXPIRY
    return (objects._hash(pairs, reader, start), volatile), reader.pos
