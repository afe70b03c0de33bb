"""The view of a stream: ``store.streams[key]``, entries by ID (XADD, XRANGE, XDEL, XTRIM...).

Each method is one atomic step and at most one journal record. What Redis
decides while it runs a command is decided here, before journaling, so the
journal holds only concrete effects: ``*`` becomes the ID it generated
from the Store's clock, a MAXLEN/MINID trim (exact or ``~``) becomes the
IDs it removed. IDs are texts as Redis writes them (``"1700000000000-0"``);
an entry is ``(id, (field, value, field, value, ...))``, its fields in the
order they were added (a field may repeat, as in Redis).

Errors carry Redis's words without the ``ERR`` prefix (``ValueError``), so
the server's commands are thin parsers over these methods.

Approximate trimming (``~``): Redis removes whole radix-tree nodes only
(``stream-node-max-entries`` 100). snapkv models the nodes as runs of 100
entries counted from the first entry, which is what Redis has for a stream
whose entries were never deleted and are small; after XDEL or with large
entries Redis's nodes differ and ``~`` may remove other (whole-node)
counts. An exact trim (``=`` or no operator) is always Redis's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from itertools import chain, islice, takewhile
from typing import Any, ClassVar

from snapkv.values import Item, ValueType, streams
from snapkv.values.streams import ID, Stream
from snapkv.views.base import View, checked_text

__all__ = [
    "Entry",
    "StreamView",
    "format_id",
    "interval",
    "parse_id",
]

#: One entry: its ID as text, and its flat ``field, value, ...``.
Entry = tuple[str, tuple[str, ...]]
_MAX = 2**64 - 1
#: Redis's ``stream-node-max-entries`` default: the node size ``~`` trims by.
NODE_ENTRIES = 100
#: Redis's default LIMIT of a ``~`` trim: 100 nodes of entries.
APPROX_LIMIT = 100 * NODE_ENTRIES
ERR_INVALID = "Invalid stream ID specified as stream command argument"
ERR_SMALLER = "The ID specified in XADD is equal or smaller than the target stream top item"
ERR_ZERO = "The ID specified in XADD must be greater than 0-0"
ERR_EXHAUSTED = "The stream has exhausted the last possible ID, unable to add more items"


def format_id(entry_id: ID) -> str:
    """An ID as Redis writes it: ``ms-seq``."""
    return f"{entry_id[0]}-{entry_id[1]}"


def _u64(text: str) -> int | None:
    """Redis's ``string2ull``: a strict decimal, else what C's ``strtoull`` reads whole."""
    if not text or len(text) > 40:
        return None
    body = text.lstrip(" \t\n\v\f\r")
    if body[:1] == "+":
        body = body[1:]
    if not body.isascii() or not body.isdigit():
        return None
    number = int(body)
    return number if number <= _MAX else None


def parse_id(
    text: str, missing_seq: int = 0, *, strict: bool = False, star_seq: bool = False
) -> tuple[ID, bool]:
    """Redis's ``streamParseID``: ``ms-seq``, ``ms`` (seq ``missing_seq``), ``-``, ``+``.

    ``strict`` refuses ``-`` and ``+``. ``star_seq`` accepts ``ms-*`` (XADD):
    the second result is False when the sequence was ``*`` (to be chosen).

    :raises ValueError: Redis's invalid-ID text.
    """
    if len(text) > 127:
        raise ValueError(ERR_INVALID)
    if not strict and text in ("-", "+"):
        return ((0, 0) if text == "-" else (_MAX, _MAX)), True
    ms_text, dash, seq_text = text.partition("-")
    ms = _u64(ms_text)
    if ms is None:
        raise ValueError(ERR_INVALID)
    if not dash:
        return (ms, missing_seq), True
    if star_seq and seq_text == "*":
        return (ms, 0), False
    seq = _u64(seq_text)
    if seq is None:
        raise ValueError(ERR_INVALID)
    return (ms, seq), True


def _fields(fields: Mapping[str, str] | Iterable[tuple[str, str]]) -> tuple[str, ...]:
    pairs = fields.items() if isinstance(fields, Mapping) else fields
    flat: list[str] = []
    for field, value in pairs:
        flat += (checked_text(field, "a field"), checked_text(value, "a value"))
    if not flat:
        raise ValueError("a stream entry needs at least one field")
    return tuple(flat)


class StreamView(View):
    """A stream at a key: entries ``(id, (field, value, ...))`` ordered by ID; each method one step.

    A missing key reads as an empty stream; :meth:`add` creates it. Unlike
    the other types, a stream left with no entries still exists (its last
    ID is kept, as in Redis).
    """

    __slots__ = ()
    KIND: ClassVar[ValueType] = streams

    # ------------------------------------------------------------ reading

    def length(self) -> int:
        """XLEN: the number of entries (0 for a missing key)."""
        return len(self)

    @property
    def last_id(self) -> str | None:
        """The last generated ID (kept when its entry is deleted); ``None`` for a missing key."""
        with self._keyspace._store._lock:
            value: Stream | None = self._current()
            return None if value is None else format_id(value.last)

    def range(self, start: str = "-", end: str = "+", count: int | None = None) -> list[Entry]:
        """XRANGE: entries with ``start <= id <= end`` (Redis's ID forms, ``(`` exclusive)."""
        low, high = interval(start, 0), interval(end, _MAX, upper=True)
        return self._span(low, high, count, reverse=False)

    def revrange(self, end: str = "+", start: str = "-", count: int | None = None) -> list[Entry]:
        """XREVRANGE: as :meth:`range`, highest ID first."""
        high, low = interval(end, _MAX, upper=True), interval(start, 0)
        return self._span(low, high, count, reverse=True)

    def after(self, entry_id: ID, count: int | None = None) -> list[Entry]:
        """XREAD: entries with an ID above ``entry_id``, lowest first."""
        if entry_id == (_MAX, _MAX):
            return []
        low = (entry_id[0], entry_id[1] + 1) if entry_id[1] < _MAX else (entry_id[0] + 1, 0)
        return self._span(low, (_MAX, _MAX), count, reverse=False)

    def _span(
        self, low: ID | None, high: ID | None, count: int | None, reverse: bool
    ) -> list[Entry]:
        if low is None or high is None or low > high or count == 0:
            return []
        with self._keyspace._store._lock:
            value: Stream | None = self._current()
            if value is None:
                return []
            out: list[Entry] = []
            for entry_id in value.irange(low, high, reverse=reverse):
                out.append((format_id(entry_id), value[entry_id]))
                if count is not None and len(out) >= count:
                    break
            return out

    def info(self) -> dict[str, Any] | None:
        """XINFO STREAM's facts (``None`` for a missing key): length, IDs, counters, edges."""
        with self._keyspace._store._lock:
            value: Stream | None = self._current()
            if value is None:
                return None
            first = value.peekitem(0) if value else None
            last = value.peekitem(-1) if value else None
            return {
                "length": len(value),
                "nodes": -(-len(value) // NODE_ENTRIES) if value else 0,
                "last-generated-id": format_id(value.last),
                "max-deleted-entry-id": format_id(value.deleted),
                "entries-added": value.added,
                "recorded-first-entry-id": format_id(first[0] if first else (0, 0)),
                "first-entry": None if first is None else (format_id(first[0]), first[1]),
                "last-entry": None if last is None else (format_id(last[0]), last[1]),
            }

    # ------------------------------------------------------------ writing

    def add(
        self,
        fields: Mapping[str, str] | Iterable[tuple[str, str]],
        id: str = "*",  # noqa: A002 - Redis's and redis-py's name
        *,
        maxlen: int | None = None,
        approximate: bool = False,
        minid: str | None = None,
        nomkstream: bool = False,
        limit: int | None = None,
    ) -> str | None:
        """XADD: append an entry, then trim by ``maxlen`` or ``minid``; its ID (``None``: NOMKSTREAM
        and no stream). One journal record: the entry and what the trim removed.

        :raises ValueError: a bad or too small ID, bad trim arguments (Redis's texts).
        """
        return self.add_and_trim(
            fields,
            id,
            maxlen=maxlen,
            approximate=approximate,
            minid=minid,
            nomkstream=nomkstream,
            limit=limit,
        )[0]

    def add_and_trim(
        self,
        fields: Mapping[str, str] | Iterable[tuple[str, str]],
        id: str = "*",  # noqa: A002 - Redis's and redis-py's name
        *,
        maxlen: int | None = None,
        approximate: bool = False,
        minid: str | None = None,
        nomkstream: bool = False,
        limit: int | None = None,
    ) -> tuple[str | None, int]:
        """:meth:`add`, also telling how many entries its trim removed (XADD's ``xtrim`` event)."""
        pairs = _fields(fields)
        trim = _trim_args(maxlen, minid, approximate, limit)
        given: ID | None = None
        seq_given = True
        if id != "*":
            given, seq_given = parse_id(checked_text(id, "id"), strict=True, star_seq=True)
            if seq_given and given == (0, 0):
                raise ValueError(ERR_ZERO)
        keyspace = self._keyspace
        store = keyspace._store
        with store._lock:
            value: Stream | None = self._current()
            if value is None and nomkstream:
                return None, 0
            last = (0, 0) if value is None else value.last
            if last == (_MAX, _MAX):
                raise ValueError(ERR_EXHAUSTED)
            new = _next_id(last, given, seq_given, int(store._clock() * 1000))
            ops: list[Any] = [self._op(streams.OP_ADD, (*streams.id_items(new), *pairs))]
            gone: list[ID] = []
            if trim is not None:
                length = 0 if value is None else len(value)
                gone = _trimmed(chain(value or (), (new,)), length + 1, trim)
                if gone:
                    ops.append(self._op(streams.OP_TRIM, _id_items(gone)))
            ticket = keyspace._write(ops) if len(ops) > 1 else self._edit(ops[0][4], ops[0][5])
        store._commit(ticket)
        return format_id(new), len(gone)

    def trim(
        self,
        maxlen: int | None = None,
        minid: str | None = None,
        approximate: bool = False,
        limit: int | None = None,
    ) -> int:
        """XTRIM: remove the oldest entries beyond ``maxlen``, or below ``minid``; how many."""
        trim = _trim_args(maxlen, minid, approximate, limit)
        if trim is None:
            raise ValueError("syntax error, XTRIM must be called with a trimming strategy")
        store = self._keyspace._store
        with store._lock:
            value: Stream | None = self._current()
            if value is None:
                return 0
            gone = _trimmed(iter(value), len(value), trim)
            if not gone:
                return 0
            ticket = self._edit(streams.OP_TRIM, _id_items(gone))
        store._commit(ticket)
        return len(gone)

    def delete(self, ids: Iterable[str]) -> int:
        """XDEL: remove the entries with these IDs; the number that existed."""
        parsed = [parse_id(checked_text(text, "id"), strict=True)[0] for text in ids]
        store = self._keyspace._store
        with store._lock:
            value: Stream | None = self._current()
            if value is None:
                return 0
            present = list(dict.fromkeys(i for i in parsed if i in value))
            if not present:
                return 0
            ticket = self._edit(streams.OP_DEL, _id_items(present))
        store._commit(ticket)
        return len(present)

    def set_id(
        self, last_id: str, entries_added: int | None = None, max_deleted_id: str | None = None
    ) -> None:
        """XSETID: set the last ID (and entries-added, max-deleted ID), Redis's checks.

        :raises KeyError: the key holds no stream.
        :raises ValueError: Redis's refusals (an ID below the last entry's...).
        """
        new, _ = parse_id(checked_text(last_id, "id"), strict=True)
        deleted = None
        if max_deleted_id is not None:
            deleted, _ = parse_id(checked_text(max_deleted_id, "id"), strict=True)
        if entries_added is not None and entries_added < 0:
            raise ValueError("entries_added must be positive")
        if deleted is not None and new < deleted:
            raise ValueError(
                "The ID specified in XSETID is smaller than the provided max_deleted_entry_id"
            )
        store = self._keyspace._store
        with store._lock:
            value: Stream | None = self._current()
            if value is None:
                raise KeyError(self._key)
            if value and value.peekitem(-1)[0] > new:
                raise ValueError(
                    "The ID specified in XSETID is smaller than the target stream top item"
                )
            if entries_added is not None and len(value) > entries_added:
                raise ValueError(
                    "The entries_added specified in XSETID is smaller than the target stream length"
                )
            meta = (
                *streams.id_items(new),
                value.added if entries_added is None else entries_added,
                *streams.id_items(value.deleted if deleted is None else deleted),
            )
            ticket = self._edit(streams.OP_META, meta)
        store._commit(ticket)

    def _op(self, opcode: int, items: tuple[Item, ...]) -> tuple[Any, ...]:
        ks = self._keyspace
        return ("edit", ks._index, self._key, streams.CODE, opcode, items)


# -------------------------------------------------------------- decisions

#: A trim: ("maxlen", count) or ("minid", ID), approximate, limit (0: none).
Trim = tuple[str, Any, bool, int]


def _trim_args(
    maxlen: int | None, minid: str | None, approximate: bool, limit: int | None
) -> Trim | None:
    if maxlen is not None and minid is not None:
        raise ValueError(
            "syntax error, MAXLEN and MINID options at the same time are not compatible"
        )
    if maxlen is None and minid is None:
        if limit:
            raise ValueError(
                "syntax error, LIMIT cannot be used without specifying a trimming strategy"
            )
        return None
    if limit is not None and limit < 0:
        raise ValueError("The LIMIT argument must be >= 0.")
    if limit is not None and not approximate:
        raise ValueError("syntax error, LIMIT cannot be used without the special ~ option")
    cap = (APPROX_LIMIT if limit is None else limit) if approximate else 0
    if maxlen is not None:
        if maxlen < 0:
            raise ValueError("The MAXLEN argument must be >= 0.")
        return ("maxlen", maxlen, approximate, cap)
    assert minid is not None
    return ("minid", parse_id(checked_text(minid, "minid"), strict=True)[0], approximate, cap)


def _trimmed(ids: Iterator[ID], length: int, trim: Trim) -> list[ID]:
    """The IDs a trim removes from the ``length`` entry IDs ``ids`` (in order; read only as far
    as the trim goes), Redis's ``streamTrim``."""
    how, arg, approximate, cap = trim
    if not approximate:
        if how == "maxlen":
            return list(islice(ids, max(0, length - arg)))
        return list(takewhile(lambda entry_id: entry_id < arg, ids))
    if how == "maxlen":  # whole nodes counted, never read: the common capped XADD is O(1)
        count = 0
        while count < length:
            size = min(NODE_ENTRIES, length - count)
            if length - count - size < arg or (cap and count + size > cap):
                break
            count += size
        return list(islice(ids, count))
    gone: list[ID] = []
    while len(gone) < length:
        node = list(islice(ids, NODE_ENTRIES))
        if node[-1] >= arg or (cap and len(gone) + len(node) > cap):
            break
        gone += node
    return gone


def _next_id(last: ID, given: ID | None, seq_given: bool, now_ms: int) -> ID:
    """Redis's ``streamAppendItem`` ID choice: ``*``, ``ms-*`` or an explicit ID above ``last``."""
    if given is None:
        if now_ms > last[0]:
            return (now_ms, 0)
        return (last[0], last[1] + 1) if last[1] < _MAX else (last[0] + 1, 0)
    if not seq_given:
        if given[0] == last[0]:
            if last[1] == _MAX:
                raise ValueError(ERR_SMALLER)
            return (given[0], last[1] + 1)
        if given[0] < last[0]:
            raise ValueError(ERR_SMALLER)
        return given
    if given <= last:
        raise ValueError(ERR_SMALLER)
    return given


def interval(text: str, missing_seq: int, *, upper: bool = False) -> ID | None:
    """An XRANGE bound: ``(`` makes it exclusive (strict ID, moved one step inwards)."""
    text = checked_text(text, "bound")
    if len(text) > 1 and text[0] == "(":
        entry_id, _ = parse_id(text[1:], missing_seq, strict=True)
        ms, seq = entry_id
        if upper:
            if entry_id == (0, 0):
                raise ValueError("invalid end ID for the interval")
            return (ms, seq - 1) if seq else (ms - 1, _MAX)
        if entry_id == (_MAX, _MAX):
            raise ValueError("invalid start ID for the interval")
        return (ms, seq + 1) if seq < _MAX else (ms + 1, 0)
    return parse_id(text, missing_seq)[0]


def _id_items(ids: Iterable[ID]) -> tuple[int, ...]:
    out: list[int] = []
    for entry_id in ids:
        out += streams.id_items(entry_id)
    return tuple(out)
