"""Snapshot format v3's typed chunks: hashes, lists, sets, sorted sets, streams <-> CONTAINERS.

Pure: no I/O. :mod:`snapkv.codec` frames, orders and counts the records;
this module encodes and decodes one CONTAINERS body (docs/FORMAT.md,
"CONTAINERS body") and builds the containers a decoded body describes.

Why the same columnar idea as string entries: a record holds the keys of
up to ``MAX_CHUNK_ENTRIES`` containers of one type, then a column of
element counts, then (sorted sets) the scores as packed IEEE doubles, then
every key and element string as ONE text joined by a separator that was
verified absent (or a column of lengths). Encoding is a ``str.join``, a
``str.encode`` and an ``array`` conversion per record; decoding is one
``bytes.decode``, one ``str.split`` and one ``array`` conversion per
record. The only Python-level loop is one step per *container* (building
the dict, deque, set or sorted set from slices, all C calls), never one
per element.

Why a large container spans several records instead of one huge one: a
record stays a bounded amount of memory (``MAX_CHUNK_ELEMENTS`` elements or
``MAX_CHUNK_CHARS`` of text) however large one value grows. A record that
holds one part of a larger value holds that one key alone and says so in
its flags (``FLAG_CONTINUED``: more parts follow; ``FLAG_CONTINUES``: it
continues the previous record's key), and the reader checks the chain.

A stream is written as a list of strings is: its elements are its flat
form (:func:`snapkv.values.streams.flat`: the metadata, then each entry's
ID, field count, fields and values) with every number as decimal text.
Its entries vary in width and it carries metadata, so no fixed column fits
it; as text it reuses the list's layout, its chunking and its checks, and a
stream with no entries still has elements (its metadata).
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterator, Sequence
from itertools import accumulate, chain, compress, islice, repeat
from math import isnan
from operator import getitem, is_, itemgetter
from struct import Struct
from typing import Any

from sortedcontainers import SortedList

from snapkv._binary import encode_text
from snapkv._frame import checked_text
from snapkv.errors import CorruptSnapshotError
from snapkv.values import epoch, hashes, lists, sets, streams, zsets

__all__ = [
    "CONTAINERS_HEAD",
    "COUNT_SIZE",
    "FLAG_CONTINUED",
    "FLAG_CONTINUES",
    "FLAG_EXPIRY",
    "MAX_CHUNK_ELEMENTS",
    "SCORE_SIZE",
    "TYPE_CONTAINERS",
    "Body",
    "Parts",
    "Typed",
    "build",
    "decode_body",
    "encode_records",
    "split_by_type",
    "strings_per_element",
]

#: Record type of a CONTAINERS record; version 3 only.
TYPE_CONTAINERS = 0x05
CONTAINERS_HEAD = Struct("<IBBB")  # key count, value type code, flags, layout
FLAG_EXPIRY = 0x01  # an expiry column follows the head
FLAG_CONTINUES = 0x02  # the record's one key continues the previous record's key
FLAG_CONTINUED = 0x04  # the record's one key continues in the next record
FLAGS_KNOWN = FLAG_EXPIRY | FLAG_CONTINUES | FLAG_CONTINUED
COUNT_SIZE = 4  # bytes per key of the element-count column (u32)
SCORE_SIZE = 8  # bytes per sorted set member of the score column (f64)
#: Elements (hash fields, list elements, set or sorted set members) per
#: CONTAINERS record, at most; a value with more is cut into parts.
MAX_CHUNK_ELEMENTS = 8_192

# The type codes of snapkv.values (frozen on-disk codes) and their containers.
_HASH, _LIST, _SET, _ZSET = hashes.CODE, lists.CODE, sets.CODE, zsets.CODE
_STREAM = streams.CODE
Hash, List, Set, ZSet = hashes.Hash, lists.List, sets.Set, zsets.ZSet
Stream = streams.Stream
# ENTRIES' layouts (codec.LAYOUT_LENGTHS, codec.LAYOUT_SEPARATED), shared by CONTAINERS.
_LENGTHS, _SEPARATED = 0, 1
_BIG_ENDIAN = sys.byteorder == "big"
_U32 = "I" if array("I").itemsize == 4 else "L"
_SCORE_OF = itemgetter(0)
_MEMBER_OF = itemgetter(1)
_new = object.__new__
_NEGATIVE_ZERO = b"\x00\x00\x00\x00\x00\x00\x00\x80"  # -0.0 as a little-endian f64


def strings_per_element(code: int) -> int:
    """Strings per element in the text: a hash field is a field and a value."""
    return 2 if code == _HASH else 1


#: One value type's share of a keyspace: type code, keys, values, expiry times or None.
Typed = tuple[int, list[str], list[Any], list[int] | None]
_CLASSES: tuple[tuple[int, type[Any]], ...] = (
    (_HASH, Hash),
    (_LIST, List),
    (_SET, Set),
    (_ZSET, ZSet),
    (_STREAM, Stream),
)


def split_by_type(
    keys: Sequence[str], values: Sequence[Any], times: Sequence[int] | None
) -> tuple[Typed, list[Typed]]:
    """A keyspace's entries cut by value type: the strings, then each container type present.

    One ``type()`` per value and one ``compress`` per type, all C loops.

    :raises TypeError: a value is neither a ``str`` nor a container of snapkv.values.
    """
    types = list(map(type, values))
    present = set(types)
    unknown = present - {str, Hash, List, Set, ZSet, Stream}
    if unknown:
        name = next(iter(unknown)).__name__
        raise TypeError(f"snapshot values must be str or a snapkv.values container, not {name}")
    shares: list[Typed] = []
    for code, cls in ((0, str), *_CLASSES):
        if cls not in present:
            shares.append((code, [], [], None))
            continue
        chosen = list(map(is_, types, repeat(cls)))
        picked_times = None if times is None else list(compress(times, chosen))
        shares.append(
            (code, list(compress(keys, chosen)), list(compress(values, chosen)), picked_times)
        )
    return shares[0], [share for share in shares[1:] if share[1]]


def _has_nan(scores: list[float]) -> bool:
    """Whether a score is NaN: a C-speed ``sum`` first (NaN if one is, or if both
    infinities are), the exact test only when that sum is NaN."""
    total = sum(scores)
    return isnan(total) and any(map(isnan, scores))


def encode_records(
    code: int,
    keys: Sequence[str],
    values: Sequence[Any],
    times: Sequence[int] | None,
    *,
    separators: str,
    max_entries: int,
    max_chars: int,
) -> Iterator[tuple[bytes, bytes]]:
    """Yield ``(body head, text)`` of the CONTAINERS records of values of type ``code``.

    ``times`` holds one expiry time per key (0: none) or is None. Values are
    grouped until a record holds ``max_entries`` keys or
    ``MAX_CHUNK_ELEMENTS`` elements; a value with more elements is cut into
    parts, one record each. A record's columns are filled value by value
    with ``list.extend`` (C loops over the elements), so a small value
    costs a few C calls, not a function and a tuple of its own.

    :raises TypeError: a key or element is not a ``str``.
    :raises ValueError: a NaN score, an empty value, a string or record too
        large for the format.
    """
    limit = MAX_CHUNK_ELEMENTS
    if code == _STREAM:  # as its flat form's text: a list's columns (module docstring)
        values = [list(map(str, streams.flat(value))) for value in values]
    chunk = _Columns()
    for index, (key, value) in enumerate(zip(keys, values, strict=True)):
        count = len(value)
        if not count:
            # An empty container does not exist (its key is removed): one here
            # would make a snapshot every reader refuses (element-counts).
            raise ValueError(f"key {key!r} holds an empty {type(value).__name__}")
        if chunk.keys and (len(chunk.keys) >= max_entries or chunk.elements + count > limit):
            yield from _records(code, chunk, separators, max_chars)
            chunk = _Columns()
        when = 0 if times is None else times[index]
        if count <= limit:
            chunk.add(code, key, value, count, when)
            continue
        whole = _Columns()
        whole.add(code, key, value, count, when)
        per = strings_per_element(code)
        for start in range(0, count, limit):
            part = _Columns()
            part.keys.append(key)
            part.times.append(when)
            part.counts.append(min(limit, count - start))
            part.strings = whole.strings[start * per : (start + limit) * per]
            part.scores = whole.scores[start : start + limit]
            part.flags = (FLAG_CONTINUES if start else 0) | (
                FLAG_CONTINUED if start + limit < count else 0
            )
            yield from _records(code, part, separators, max_chars)
    if chunk.keys:
        yield from _records(code, chunk, separators, max_chars)


class _Columns:
    """One record's columns as the encoder fills them: keys, expiry times,
    element counts, element strings, scores (sorted sets), chain flags."""

    __slots__ = ("counts", "elements", "flags", "keys", "scores", "strings", "times")

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.times: list[int] = []
        self.counts: list[int] = []
        self.strings: list[str] = []
        self.scores: list[float] = []
        self.elements = 0
        self.flags = 0

    def add(self, code: int, key: str, value: Any, count: int, when: int) -> None:
        self.keys.append(key)
        self.times.append(when)
        self.counts.append(count)
        self.elements += count
        if code == _HASH:
            self.strings.extend(chain.from_iterable(value.items()))
        elif code == _ZSET:
            order = value.order
            self.strings.extend(map(_MEMBER_OF, order))
            self.scores.extend(map(_SCORE_OF, order))
        else:
            self.strings.extend(value)

    def cut(self, half: int, per: int) -> tuple[_Columns, _Columns]:
        """The first ``half`` values and the rest, as two column sets."""
        at = sum(self.counts[:half])  # elements of the first half
        first, second = _Columns(), _Columns()
        first.keys, second.keys = self.keys[:half], self.keys[half:]
        first.times, second.times = self.times[:half], self.times[half:]
        first.counts, second.counts = self.counts[:half], self.counts[half:]
        first.strings, second.strings = self.strings[: at * per], self.strings[at * per :]
        first.scores, second.scores = self.scores[:at], self.scores[at:]
        return first, second


def _records(
    code: int, columns: _Columns, separators: str, max_chars: int
) -> Iterator[tuple[bytes, bytes]]:
    """Encode one record's columns, or several records when its text exceeds ``max_chars``."""
    per = strings_per_element(code)
    strings = columns.keys + columns.strings
    try:
        text = separators[0].join(strings)
    except TypeError:
        bad = next((s for s in strings if not issubclass(type(s), str)), None)
        raise TypeError(
            f"snapshot keys and elements must be str, not {type(bad).__name__}"
        ) from None
    count = len(columns.keys)
    if len(text) > max_chars and len(strings) > count + per:
        yield from _halves(code, columns, separators, max_chars)
        return
    if code == _ZSET and _has_nan(columns.scores):
        raise ValueError("a sorted set score is NaN, which the snapshot format refuses")
    separator = separators[0]
    if text.count(separator) != len(strings) - 1:
        separator = next((c for c in separators[1:] if c not in text), "")
        text = separator.join(strings) if separator else "".join(strings)
    flags = columns.flags
    head = [b""]
    if any(columns.times):
        flags |= FLAG_EXPIRY
        head.append(_packed("Q", columns.times, "expiry times must be 0..2**64-1"))
    head.append(_packed(_U32, columns.counts, ""))
    if code == _ZSET:
        head.append(_packed("d", columns.scores, ""))
    if separator:
        head.append(separator.encode("ascii"))
    else:
        head.append(_packed(_U32, list(map(len, strings)), "a string of 2**32 code points"))
    head[0] = CONTAINERS_HEAD.pack(count, code, flags, _SEPARATED if separator else _LENGTHS)
    yield b"".join(head), encode_text(text)


def _halves(
    code: int, columns: _Columns, separators: str, max_chars: int
) -> Iterator[tuple[bytes, bytes]]:
    """Split a too-large record: by keys when it has several, else the one value in two parts."""
    per = strings_per_element(code)
    if len(columns.keys) > 1:
        first, second = columns.cut(len(columns.keys) // 2, per)
    else:  # one value: its elements in two parts of a chain
        half = columns.counts[0] // 2
        first, second = _Columns(), _Columns()
        first.keys, second.keys = list(columns.keys), list(columns.keys)
        first.times, second.times = list(columns.times), list(columns.times)
        first.counts, second.counts = [half], [columns.counts[0] - half]
        first.strings, second.strings = columns.strings[: half * per], columns.strings[half * per :]
        first.scores, second.scores = columns.scores[:half], columns.scores[half:]
        first.flags = columns.flags & FLAG_CONTINUES | FLAG_CONTINUED
        second.flags = FLAG_CONTINUES | columns.flags & FLAG_CONTINUED
    yield from _records(code, first, separators, max_chars)
    yield from _records(code, second, separators, max_chars)


def _packed(typecode: str, numbers: list[Any], too_large: str) -> bytes:
    """Numbers as a little-endian column, converted in one C call."""
    try:
        column = array(typecode, numbers)
    except OverflowError:
        raise ValueError(f"{too_large} does not fit the snapshot format") from None
    except TypeError:
        bad = next((n for n in numbers if not isinstance(n, int | float)), None)
        raise TypeError(f"expected a number, not {type(bad).__name__}") from None
    if _BIG_ENDIAN:  # pragma: no cover - tested on little-endian machines only
        column.byteswap()
    return column.tobytes()


# --------------------------------------------------------------------- decoder

#: A decoded CONTAINERS body: type code, flags, keys, element counts, element
#: strings, scores (sorted sets, else empty), expiry column (None: no EXPIRY flag).
Body = tuple[int, int, list[str], list[int], list[str], list[float], list[int] | None]


def _fail(message: str, offset: int, *, check: str) -> CorruptSnapshotError:
    return CorruptSnapshotError(message, offset=offset, check=check)


def _column(body: memoryview, pos: int, typecode: str, count: int) -> list[Any]:
    column = array(typecode)
    column.frombytes(body[pos : pos + column.itemsize * count])
    if _BIG_ENDIAN:  # pragma: no cover
        column.byteswap()
    return column.tolist()


def decode_body(body: memoryview, base: int) -> Body:
    """Verify and decode one CONTAINERS body that starts at offset ``base``.

    Every length is compared with the bytes left before it sizes anything,
    and the separator count before the split (FORMAT.md section 8).
    """
    size = len(body)
    if size < CONTAINERS_HEAD.size:
        raise _fail(f"CONTAINERS body has {size} bytes, needs 7", base, check="containers-header")
    count, code, flags, layout = CONTAINERS_HEAD.unpack_from(body, 0)
    if count == 0:
        raise _fail("CONTAINERS record with zero keys", base, check="entry-count")
    if not _HASH <= code <= _STREAM:
        raise _fail(f"unknown value type {code}", base + 4, check="container-type")
    if flags & ~FLAGS_KNOWN or (flags & (FLAG_CONTINUES | FLAG_CONTINUED) and count != 1):
        raise _fail(
            f"CONTAINERS flags 0x{flags:02x} with {count} keys", base + 5, check="container-flags"
        )
    if layout not in (_LENGTHS, _SEPARATED):
        raise _fail(f"unknown CONTAINERS layout {layout}", base + 6, check="layout")
    pos = CONTAINERS_HEAD.size
    expiry = None
    if flags & FLAG_EXPIRY:
        if size - pos < 8 * count:
            raise _fail(
                f"expiry column of {count} keys needs {8 * count} bytes",
                base + pos,
                check="expiry-column",
            )
        expiry = _column(body, pos, "Q", count)
        pos += 8 * count
    if size - pos < COUNT_SIZE * count:
        raise _fail(
            f"element counts of {count} keys need {4 * count} bytes",
            base + pos,
            check="element-counts",
        )
    counts = _column(body, pos, _U32, count)
    if 0 in counts:
        raise _fail("a value with zero elements", base + pos, check="element-counts")
    pos += COUNT_SIZE * count
    elements = sum(counts)
    scores: list[float] = []
    if code == _ZSET:
        if size - pos < SCORE_SIZE * elements:
            raise _fail(f"{elements} scores need {8 * elements} bytes", base + pos, check="scores")
        scores = _column(body, pos, "d", elements)
        if _has_nan(scores):
            first = next(i for i, s in enumerate(scores) if isnan(s))
            raise _fail("a score is NaN", base + pos + SCORE_SIZE * first, check="score-nan")
        # A sorted set never holds -0.0: read as 0.0. Its 8 bytes are searched
        # for in C; an unaligned match only costs the (harmless) pass.
        if _NEGATIVE_ZERO in body[pos : pos + SCORE_SIZE * elements].tobytes():
            scores = [score + 0.0 for score in scores]
        pos += SCORE_SIZE * elements
    total = count + strings_per_element(code) * elements
    strings = _strings(body, pos, base, layout, total)
    return code, flags, strings[:count], counts, strings[count:], scores, expiry


def _strings(body: memoryview, pos: int, base: int, layout: int, total: int) -> list[str]:
    """The record's ``total`` strings, separated or by lengths, verified before splitting."""
    if layout == _SEPARATED:
        if len(body) <= pos or body[pos] >= 0x80:
            raise _fail("separator missing or not ASCII", base + pos, check="separator")
        separator = chr(body[pos])
        text = checked_text(body[pos + 1 :], base + pos + 1, CorruptSnapshotError)
        found = text.count(separator) + 1
        if found != total:
            raise _fail(
                f"text splits into {found} strings, expected {total}", base, check="entry-count"
            )
        return text.split(separator)
    if len(body) - pos < 4 * total:
        raise _fail(
            f"lengths column of {total} strings needs {4 * total} bytes",
            base + pos,
            check="lengths",
        )
    lengths = _column(body, pos, _U32, total)
    text = checked_text(body[pos + 4 * total :], base + pos + 4 * total, CorruptSnapshotError)
    if sum(lengths) != len(text):
        raise _fail(
            f"lengths add up to {sum(lengths)} code points, text has {len(text)}",
            base + pos,
            check="lengths",
        )
    ends = list(accumulate(lengths))
    return list(map(getitem, repeat(text), map(slice, [0, *ends[:-1]], ends)))


def build(
    code: int, counts: list[int], strings: list[str], scores: list[float]
) -> list[Any] | None:
    """One container per count, from the record's element strings; None if one repeats an element.

    Built with the classes directly, each from an ``islice`` of one iterator
    over the whole record (a C loop per container, no intermediate list),
    which bench/snapshot.py measured well ahead of
    ``values.BY_CODE[code].build``'s effect path. A sorted set is made
    without its ``__init__`` (which would build an empty SortedList only to
    replace it); its pairs arrive in order, so SortedList's sort is linear.
    """
    if code == _HASH:
        it: Iterator[Any] = iter(strings)
        pairs = zip(it, it, strict=True)
        made: list[Any] = [Hash(islice(pairs, count)) for count in counts]
    elif code == _LIST:
        it = iter(strings)
        made = [List(islice(it, count)) for count in counts]
    elif code == _SET:
        it = iter(strings)
        made = [Set(islice(it, count)) for count in counts]
    elif code == _STREAM:  # ValueError for a malformed flat form: Parts.add reports it
        it = iter(strings)
        return [streams.from_items(list(islice(it, count))) for count in counts]
    else:
        by_member = zip(strings, scores, strict=True)
        by_score = zip(scores, strings, strict=True)
        now = epoch()
        made = []
        for count in counts:
            value = _new(ZSet)
            value.scores = dict(islice(by_member, count))
            value.order = SortedList(islice(by_score, count))
            value.epoch = now
            made.append(value)
    if list(map(len, made)) != counts:
        return None
    return made


class Parts:
    """Joins the parts of a value that spans several CONTAINERS records, checking the chain.

    :meth:`add` takes each decoded CONTAINERS body in order and returns what
    the record completes: its keys and built values (none while a value's
    parts are still open), their expiry column, type code and element count.
    """

    def __init__(self) -> None:
        self.open: tuple[int, str, int, list[str], list[float]] | None = None

    def add(
        self, decoded: Body, pos: int
    ) -> tuple[list[str], list[Any], list[int] | None, int, int]:
        code, flags, keys, counts, strings, scores, expiry = decoded
        elements = sum(counts)
        when = expiry[0] if expiry else 0
        if flags & FLAG_CONTINUES:
            if self.open is None or self.open[:3] != (code, keys[0], when):
                raise CorruptSnapshotError(
                    "a record continues a value that no previous record left open "
                    "(or another key, type or expiry time)",
                    offset=pos,
                    check="continuation",
                )
            self.open[3].extend(strings)
            self.open[4].extend(scores)
        elif self.open is not None:
            raise CorruptSnapshotError(
                "a value cut into parts ends before its last part", offset=pos, check="continuation"
            )
        else:
            self.open = (code, keys[0], when, strings, scores)
        if flags & FLAG_CONTINUED:
            return [], [], None, code, elements
        if flags & FLAG_CONTINUES:
            strings, scores = self.open[3], self.open[4]
            counts = [len(strings) // strings_per_element(code)]
        self.open = None
        try:
            built = build(code, counts, strings, scores)
        except ValueError as exc:
            raise CorruptSnapshotError(
                f"a stream's entries or metadata are malformed: {exc}",
                offset=pos,
                check="stream-form",
            ) from None
        if built is None:
            raise CorruptSnapshotError(
                "a field or member appears twice in one value",
                offset=pos,
                check="duplicate-element",
            )
        return keys, built, expiry, code, elements
