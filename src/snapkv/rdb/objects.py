"""RDB objects (Redis's ``rdb.c``): a value's bytes in Redis's serialization, both ways.

An object is a type byte followed by the value in that type's encoding,
built from two primitives:

* a *length*: ``00LLLLLL`` (6 bits), ``01LLLLLL LLLLLLLL`` (14 bits,
  big-endian), ``0x80`` + 32-bit or ``0x81`` + 64-bit big-endian;
* a *string*: a length and that many bytes, or, when the first byte is
  ``11EEEEEE``, an integer (``E`` 0, 1, 2: int8, int16, int32 little-endian,
  written as its decimal digits) or an LZF-compressed string (``E`` 3:
  compressed length, plain length, the LZF stream).

Read (:func:`load`): every type a Redis 2.x to 7.4 writes for strings,
hashes, lists, sets, sorted sets and streams, plain (STRING, LIST, SET,
ZSET, ZSET_2, HASH) and compact (HASH_ZIPMAP, LIST_ZIPLIST, SET_INTSET,
ZSET_ZIPLIST, HASH_ZIPLIST, LIST_QUICKLIST, HASH_LISTPACK, ZSET_LISTPACK,
LIST_QUICKLIST_2, SET_LISTPACK; the blobs are read by
:mod:`snapkv.rdb.compact`), and the three stream types
(:mod:`snapkv.rdb.stream_codec`; a stream with consumer groups is refused:
snapkv's streams have none). Module values are refused by name: snapkv
has no such type.

Written: :mod:`snapkv.rdb.writer` (re-exported here: :func:`save`,
:func:`save_value`, :func:`save_length`, :func:`save_string`,
:func:`type_of`); the type codes are :mod:`snapkv.rdb.codes`.

Values are snapkv's: ``str`` for bytes (UTF-8 with ``surrogateescape``,
the server's mapping, so every byte string round-trips), and the
containers of :mod:`snapkv.values`. Malformed input of any kind raises
:class:`RDBError` with the offset where it was found.
"""

from __future__ import annotations

import math
import re
import struct
from typing import Any, NoReturn

from snapkv.values import hashes, lists, sets, zsets

from . import compact, lzf
from .codes import (
    HASH,
    HASH_LISTPACK,
    HASH_ZIPLIST,
    HASH_ZIPMAP,
    LIST,
    LIST_QUICKLIST,
    LIST_QUICKLIST_2,
    LIST_ZIPLIST,
    SET,
    SET_INTSET,
    SET_LISTPACK,
    STREAM_LISTPACKS,
    STREAM_LISTPACKS_2,
    STREAM_LISTPACKS_3,
    STRING,
    TYPE_NAMES,
    ZSET,
    ZSET_2,
    ZSET_LISTPACK,
    ZSET_ZIPLIST,
)
from .writer import save, save_length, save_string, save_value, type_of

__all__ = [
    "STRING",
    "TYPE_NAMES",
    "EmptyValue",
    "RDBError",
    "load",
    "load_string",
    "load_value",
    "save",
    "save_length",
    "save_string",
    "save_value",
    "type_of",
]

_ENCODED = 0xC0
_QUICKLIST_PLAIN, _QUICKLIST_PACKED = 1, 2
_DOUBLE = struct.Struct("<d")
#: What ``strtod`` reads that Python's ``float`` would not, and the reverse.
_NOT_A_DOUBLE = re.compile(r"[\s_]")


class RDBError(ValueError):
    """Malformed serialized data; ``offset`` is the byte of the input where it was found."""

    def __init__(
        self, message: str, offset: int, *, short: bool = False, needed: int | None = None
    ) -> None:
        super().__init__(f"{message} (at byte {offset})")
        self.offset = offset
        #: Whether the input ran out (more bytes might make it whole): a file
        #: reader that holds only part of the file reads on, then tries again.
        self.short = short
        #: With ``short``, where the input would have to reach at least (when a length
        #: said it): a file reader refuses at once what its file is too short for,
        #: instead of reading gigabytes a corrupt length claims.
        self.needed = needed


class EmptyValue(RDBError):
    """A container of no elements: RESTORE refuses it ("Bad data format"); Redis's loader
    skips such a key of a file and goes on (``RDB_LOAD_ERR_EMPTY_KEY``), and so does
    :mod:`snapkv.rdb.file_reader`. ``end``: where the value's bytes end (reading goes on there).
    """

    def __init__(self, message: str, offset: int, end: int) -> None:
        super().__init__(message, offset)
        self.end = end


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _bytes(text: str) -> bytes:
    """The bytes a value stands for: the server's mapping; a surrogate no request can make
    (only the Python API can store one) is kept as the Store's own formats keep it."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def _element(entry: compact.Entry) -> str:
    return str(entry) if entry.__class__ is int else _text(entry)  # type: ignore[arg-type]


# ------------------------------------------------------------------ reading


class _Reader:
    """A cursor over the input; every read is checked against what is left."""

    __slots__ = ("data", "end", "pos", "raw_at")

    def __init__(self, data: bytes, pos: int, end: int) -> None:
        self.data, self.pos, self.end = data, pos, end
        #: Where the last string's bytes start in ``data`` (-1: it was not stored as is).
        self.raw_at = -1

    def fail(
        self,
        message: str,
        at: int | None = None,
        *,
        short: bool = False,
        needed: int | None = None,
    ) -> NoReturn:
        raise RDBError(message, self.pos if at is None else at, short=short, needed=needed)

    def empty(self, message: str, at: int) -> NoReturn:
        """A container of no elements, whole: its value ends at the cursor."""
        raise EmptyValue(message, at, self.pos)

    def take(self, size: int) -> bytes:
        if size > self.end - self.pos:
            self.fail(
                f"{size} bytes wanted, {self.end - self.pos} left",
                short=True,
                needed=self.pos + size,
            )
        start = self.pos
        self.pos += size
        return self.data[start : self.pos]

    def byte(self) -> int:
        if self.pos >= self.end:
            self.fail("the input ends early", short=True)
        self.pos += 1
        return self.data[self.pos - 1]

    def length(self) -> tuple[int, bool]:
        """A length, or (for ``11EEEEEE``) the special encoding ``E`` and True."""
        first = self.byte()
        kind = first >> 6
        if kind == 0:
            return first, False
        if kind == 1:
            return ((first & 0x3F) << 8) | self.byte(), False
        if kind == 3:
            return first & 0x3F, True
        if first == 0x80:
            return int.from_bytes(self.take(4), "big"), False
        if first == 0x81:
            return int.from_bytes(self.take(8), "big"), False
        self.fail(f"length byte 0x{first:02x} is not one of RDB's", self.pos - 1)

    def count(self, what: str, least: int = 1) -> int:
        """A number of elements, each taking at least ``least`` bytes: at most what is left."""
        at = self.pos
        value, special = self.length()
        if special:
            self.fail(f"the {what} count is an encoded string", at)
        if value == 0:
            self.empty(f"an empty {what} (Redis refuses one too)", at)
        if value * least > self.end - self.pos:
            self.fail(
                f"{value} {what} elements cannot fit in {self.end - self.pos} bytes",
                at,
                short=True,
                needed=self.pos + value * least,
            )
        return value

    def string(self) -> bytes:
        at = self.pos
        self.raw_at = -1
        value, special = self.length()
        if not special:
            self.raw_at = self.pos
            return self.take(value)
        if value < 3:
            width = 1 << value
            return b"%d" % int.from_bytes(self.take(width), "little", signed=True)
        if value == 3:
            packed, special = self.length()
            size, special_too = self.length()
            if special or special_too:
                self.fail("an LZF string's lengths are encoded strings", at)
            start = self.pos
            stream = self.take(packed)
            try:
                return lzf.decompress(stream, size)
            except lzf.LZFError as exc:
                raise RDBError(str(exc), start + exc.offset) from None
        self.fail(f"string encoding {value} is not one of RDB's", at)

    def double(self) -> float:
        """A ZSET (type 3) score: a length byte (253 NaN, 254 +inf, 255 -inf) and ASCII."""
        at = self.pos
        size = self.byte()
        if size == 253:
            self.fail("a NaN score", at)
        if size in (254, 255):
            return math.inf if size == 254 else -math.inf
        return _score(self.take(size), at)

    def binary_double(self) -> float:
        at = self.pos
        (value,) = _DOUBLE.unpack(self.take(8))
        if math.isnan(value):
            self.fail("a NaN score", at)
        return float(value)

    def blob(self, decode: Any) -> list[Any]:
        """A string holding a compact encoding, read by ``decode`` (a :mod:`.compact` reader)."""
        at = self.pos
        data = self.string()
        try:
            return decode(data)  # type: ignore[no-any-return]
        except compact.CompactError as exc:
            # A compressed blob's offsets are inside its plain bytes: the string's start then.
            where = self.raw_at + exc.offset if self.raw_at >= 0 else at
            raise RDBError(str(exc), where) from None


def _score(text: bytes, at: int) -> float:
    """A score written as text (``strtod``'s syntax, NaN refused)."""
    try:
        word = text.decode("ascii")
        if _NOT_A_DOUBLE.search(word):
            raise ValueError(word)
        value = float(word)
    except ValueError:
        raise RDBError(f"score {text[:40]!r} is not a number", at) from None
    if math.isnan(value):
        raise RDBError("a NaN score", at)
    return value


def _hash(pairs: list[str], r: _Reader, at: int) -> hashes.Hash:
    if len(pairs) % 2:
        r.fail(f"a hash of {len(pairs)} entries, not field/value pairs", at)
    it = iter(pairs)
    made = hashes.Hash(zip(it, it, strict=True))
    if len(made) * 2 != len(pairs):
        r.fail("a hash with a field twice", at)
    if not made:
        r.empty("an empty hash", at)
    return made


def _set(members: list[str], r: _Reader, at: int) -> sets.Set:
    made = sets.Set(members)
    if len(made) != len(members):
        r.fail("a set with a member twice", at)
    if not made:
        r.empty("an empty set", at)
    return made


def _zset(pairs: list[tuple[float, str]], r: _Reader, at: int) -> zsets.ZSet:
    made = zsets.ZSet(pairs)
    if len(made) != len(pairs):
        r.fail("a sorted set with a member twice", at)
    if not made:
        r.empty("an empty sorted set", at)
    return made


def _zset_entries(entries: list[compact.Entry], r: _Reader, at: int) -> zsets.ZSet:
    if len(entries) % 2:
        r.fail(f"a sorted set of {len(entries)} entries, not member/score pairs", at)
    pairs = []
    for member, score in zip(entries[0::2], entries[1::2], strict=True):
        value = float(score) if score.__class__ is int else _score(score, at)  # type: ignore[arg-type]
        pairs.append((value, _element(member)))
    return _zset(pairs, r, at)


def _quicklist(r: _Reader, version: int, at: int) -> lists.List:
    nodes = r.count("quicklist node")
    made = lists.List()
    for _ in range(nodes):
        container = _QUICKLIST_PACKED
        if version == 2:
            node_at = r.pos
            container, special = r.length()
            if special or container not in (_QUICKLIST_PLAIN, _QUICKLIST_PACKED):
                r.fail(f"quicklist container {container} is not plain (1) or packed (2)", node_at)
        if container == _QUICKLIST_PLAIN:
            made.append(_text(r.string()))
        else:
            made.extend(
                map(_element, r.blob(compact.listpack if version == 2 else compact.ziplist))
            )
    if not made:
        r.empty("an empty list", at)
    return made


def _read(r: _Reader, kind: int) -> Any:
    at = r.pos
    if kind == STRING:
        return _text(r.string())
    if kind == LIST:
        return lists.List(_text(r.string()) for _ in range(r.count("list")))
    if kind == SET:
        return _set([_text(r.string()) for _ in range(r.count("set"))], r, at)
    if kind in (ZSET, ZSET_2):
        score = r.double if kind == ZSET else r.binary_double
        pairs = []
        for _ in range(r.count("sorted set", 2)):
            member = _text(r.string())
            pairs.append((score(), member))
        return _zset(pairs, r, at)
    if kind == HASH:
        n = r.count("hash", 2)
        return _hash([_text(r.string()) for _ in range(2 * n)], r, at)
    if kind == HASH_ZIPMAP:
        return _hash([_element(e) for e in r.blob(compact.zipmap)], r, at)
    if kind in (HASH_ZIPLIST, HASH_LISTPACK):
        decode = compact.ziplist if kind == HASH_ZIPLIST else compact.listpack
        return _hash([_element(e) for e in r.blob(decode)], r, at)
    if kind == LIST_ZIPLIST:
        made = lists.List(map(_element, r.blob(compact.ziplist)))
        if not made:
            r.empty("an empty list", at)
        return made
    if kind in (LIST_QUICKLIST, LIST_QUICKLIST_2):
        return _quicklist(r, 1 if kind == LIST_QUICKLIST else 2, at)
    if kind == SET_INTSET:
        members = r.blob(compact.intset)
        if not members:  # Redis's intsetValidateIntegrity refuses it (not an empty key)
            r.fail("an intset of no members", at)
        return _set([str(i) for i in members], r, at)
    if kind == SET_LISTPACK:
        return _set([_element(e) for e in r.blob(compact.listpack)], r, at)
    if kind in (ZSET_ZIPLIST, ZSET_LISTPACK):
        decode = compact.ziplist if kind == ZSET_ZIPLIST else compact.listpack
        return _zset_entries(r.blob(decode), r, at)
    if kind in (STREAM_LISTPACKS, STREAM_LISTPACKS_2, STREAM_LISTPACKS_3):
        from . import stream_codec  # noqa: PLC0415 - it imports this module's reader

        stream, groups = stream_codec.read(r, kind)
        if groups:
            r.fail("a stream with consumer groups, which snapkv's streams do not have", at - 1)
        return stream
    name = TYPE_NAMES.get(kind)
    if name is not None:
        r.fail(f"RDB type {kind} ({name}) holds a value snapkv has no type for", at - 1)
    r.fail(f"RDB type {kind} does not exist", at - 1)


def load_string(data: bytes, start: int, end: int) -> tuple[bytes, int]:
    """One RDB string (raw, integer-encoded or LZF) at ``start``: its bytes, and where it ends.

    :raises RDBError: it is malformed or runs past ``end``.
    """
    reader = _Reader(data, start, end)
    return reader.string(), reader.pos


def load_value(data: bytes, kind: int, start: int, end: int) -> tuple[Any, int]:
    """The value of RDB type ``kind`` at ``data[start:end]`` (no type byte): (value, its end).

    :raises RDBError: the bytes are not a valid value of that type.
    """
    r = _Reader(data, start, end)
    return _read(r, kind), r.pos


def load(data: bytes, start: int = 0, end: int | None = None) -> tuple[Any, int]:
    """The object (type byte and value) at ``data[start:end]``: (value, offset after it).

    :raises RDBError: the bytes are not a valid object of a type snapkv holds.
    """
    r = _Reader(data, start, len(data) if end is None else end)
    kind = r.byte()
    return _read(r, kind), r.pos
