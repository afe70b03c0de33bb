"""Streams: a key holding entries ordered by ID, each a flat field/value tuple (``t_stream.c``).

The container is :class:`Stream`: a ``SortedDict`` from an entry ID
``(ms, seq)`` (two unsigned 64-bit numbers) to the entry's
``(field, value, field, value, ...)``, plus what Redis 7.0 keeps beside the
entries and shows in XINFO STREAM: the last generated ID (the floor every
new ID must exceed, kept when its entry is deleted), the count of entries
ever added, and the largest ID ever deleted by XDEL.

Unlike the other containers, a stream with no entries exists (XDEL or a
trim to zero leaves the key, with its last ID): :func:`apply` never returns
``None`` for a stream it was given.

Effects (the journal's EDIT records for a stream, docs/FORMAT.md J3). An ID
travels as two items ``ms, seq``, each an ``int`` in two's complement
(an ID number at or above ``2**63`` is written as that number minus
``2**64``), because the journal's integers are signed 64-bit; every effect
is concrete: ``*`` and a ``~`` trim are resolved to IDs before journaling.

* ``OP_ADD`` items ``ms, seq, field, value, ...``: append one entry whose ID
  is above the last ID; it becomes the last ID; entries-added grows by one.
* ``OP_DEL`` items ``ms, seq, ms, seq, ...``: XDEL: those entries leave; the
  largest of them that existed raises the max-deleted ID.
* ``OP_TRIM`` items ``ms, seq, ...``: those entries leave (XTRIM, XADD's
  MAXLEN/MINID), nothing else changes.
* ``OP_META`` items ``last ms, last seq, entries added, deleted ms, deleted
  seq``: XSETID (and the undo of an add): the three are set to these.
* ``OP_INSERT`` items ``ms, seq, n, field, value, ... (n pairs)``, repeated:
  entries put back where their IDs order them, nothing else changes (the
  undo of a delete or trim).
"""

from __future__ import annotations

from sortedcontainers import SortedDict

from snapkv.values.base import Item, Items, check_texts, epoch

__all__ = [
    "CLASS",
    "CODE",
    "ID",
    "META_ITEMS",
    "NAME",
    "OP_ADD",
    "OP_DEL",
    "OP_INSERT",
    "OP_META",
    "OP_TRIM",
    "Stream",
    "apply",
    "build",
    "copy",
    "flat",
    "from_items",
    "id_items",
    "inverse",
    "size",
]

CODE = 5
NAME = "stream"
OP_ADD = 1
OP_DEL = 2
OP_TRIM = 3
OP_META = 4
OP_INSERT = 5
#: Items of the metadata that opens a stream's flat form (the OP_META items).
META_ITEMS = 5

#: An entry ID: (milliseconds, sequence), each 0..2**64-1.
ID = tuple[int, int]
_MASK = 2**64 - 1
_SIGN = 2**63


class Stream(SortedDict):  # type: ignore[misc]
    """A stream's entries by ID, and its metadata; ``epoch`` is its save epoch.

    ``last``: the last generated ID; ``added``: entries ever added;
    ``deleted``: the largest ID XDEL removed (``(0, 0)``: none).
    """

    def __init__(self) -> None:
        super().__init__()
        self.last: ID = (0, 0)
        self.added = 0
        self.deleted: ID = (0, 0)
        self.epoch = epoch()


CLASS = Stream


def _number(item: Item) -> int:
    if item.__class__ is not int or not -_SIGN <= item < _SIGN:
        raise ValueError(f"a stream ID or count must be a 64-bit int, not {item!r}")
    return item & _MASK


def _signed(number: int) -> int:
    return number - 2**64 if number >= _SIGN else number


def id_items(entry_id: ID) -> tuple[int, int]:
    """An ID as an effect's two items (two's complement, see the module docstring)."""
    return _signed(entry_id[0]), _signed(entry_id[1])


def _ids(items: Items) -> list[ID]:
    if len(items) % 2:
        raise ValueError(f"a stream ID list has {len(items)} items, not ms/seq pairs")
    numbers = [_number(item) for item in items]
    return list(zip(numbers[0::2], numbers[1::2], strict=True))


def _pairs(items: Items, what: str) -> tuple[str, ...]:
    check_texts(items, what)
    if not items or len(items) % 2:
        raise ValueError(f"a stream entry has {len(items)} items, not field/value pairs")
    return tuple(items)  # type: ignore[arg-type]


def _inserted(items: Items) -> list[tuple[ID, tuple[str, ...]]]:
    """OP_INSERT's ``ms, seq, n, pairs...`` groups."""
    out: list[tuple[ID, tuple[str, ...]]] = []
    at = 0
    while at < len(items):
        if len(items) - at < 3:
            raise ValueError("a stream INSERT effect ends inside an entry's head")
        entry_id = (_number(items[at]), _number(items[at + 1]))
        count = _number(items[at + 2])
        end = at + 3 + 2 * count
        if end > len(items):
            raise ValueError("a stream INSERT effect ends inside an entry")
        out.append((entry_id, _pairs(items[at + 3 : end], "stream fields and values")))
        at = end
    return out


def apply(value: Stream | None, opcode: int, items: Items) -> Stream | None:
    """Apply one stream effect (module docstring); ``None`` only for a missing key left so."""
    if opcode == OP_ADD:
        if len(items) < 4:
            raise ValueError(f"a stream ADD effect has {len(items)} items")
        entry_id = (_number(items[0]), _number(items[1]))
        pairs = _pairs(items[2:], "stream fields and values")
        if value is None:
            value = Stream()
        if entry_id <= value.last or entry_id == (0, 0):
            raise ValueError(f"stream ID {entry_id} is not above the last ID {value.last}")
        value[entry_id] = pairs
        value.last = entry_id
        value.added += 1
        return value
    if opcode in (OP_DEL, OP_TRIM):
        ids = _ids(items)
        if value is None:
            return None
        for entry_id in ids:
            if value.pop(entry_id, None) is not None and opcode == OP_DEL:
                value.deleted = max(value.deleted, entry_id)
        return value
    if opcode == OP_META:
        if len(items) != META_ITEMS:
            raise ValueError(f"a stream META effect has {len(items)} items, not {META_ITEMS}")
        last_ms, last_seq, added, deleted_ms, deleted_seq = map(_number, items)
        if value is None:
            return None
        value.last, value.added = (last_ms, last_seq), added
        value.deleted = (deleted_ms, deleted_seq)
        return value
    if opcode == OP_INSERT:
        entries = _inserted(items)
        if value is None:
            return None
        value.update(entries)
        return value
    raise ValueError(f"stream effect opcode {opcode} is not one of {OP_ADD}..{OP_INSERT}")


def _meta(value: Stream) -> tuple[Item, ...]:
    return (*id_items(value.last), _signed(value.added), *id_items(value.deleted))


def _insert_items(value: Stream, ids: list[ID]) -> tuple[Item, ...]:
    out: list[Item] = []
    for entry_id in ids:
        pairs = value.get(entry_id)
        if pairs is not None:
            out += (*id_items(entry_id), len(pairs) // 2, *pairs)
    return tuple(out)


def inverse(value: Stream | None, opcode: int, items: Items) -> list[tuple[int, tuple[Item, ...]]]:
    """What undoes a stream effect on ``value``: entries put back, the metadata restored."""
    if value is None:
        return []  # the key was absent: the undo removes it whole
    if opcode == OP_ADD:
        return [(OP_TRIM, tuple(items[:2])), (OP_META, _meta(value))]
    if opcode in (OP_DEL, OP_TRIM):
        back = _insert_items(value, _ids(items))
        undo: list[tuple[int, tuple[Item, ...]]] = [(OP_INSERT, back)] if back else []
        return [*undo, (OP_META, _meta(value))]
    if opcode == OP_META:
        return [(OP_META, _meta(value))]
    return [(OP_TRIM, tuple(i for e, _ in _inserted(items) if e not in value for i in id_items(e)))]


def flat(value: Stream) -> list[Item]:
    """The metadata (OP_META's five items), then each entry as OP_INSERT writes it."""
    out: list[Item] = list(_meta(value))
    for entry_id, pairs in value.items():
        out += (*id_items(entry_id), len(pairs) // 2, *pairs)
    return out


def build(items: Items) -> Stream:
    """A stream from :func:`flat`'s items (``ValueError`` if malformed)."""
    if len(items) < META_ITEMS:
        raise ValueError(f"a stream's flat form has {len(items)} items, fewer than its metadata")
    made = Stream()
    entries = _inserted(items[META_ITEMS:])
    made.update(entries)
    if len(made) != len(entries):
        raise ValueError("an entry ID appears twice in one stream")
    apply(made, OP_META, items[:META_ITEMS])
    if made and made.peekitem(-1)[0] > made.last:
        raise ValueError(f"a stream's last ID {made.last} is below its last entry's")
    return made


def from_items(texts: list[str]) -> Stream:
    """A stream from its flat form with every item as text (the snapshot's form).

    :raises ValueError: a number that is not a decimal integer, or a
        malformed flat form.
    """
    items: list[Item] = [_int_text(text) for text in texts[:META_ITEMS]]
    at = META_ITEMS
    while at < len(texts):
        if len(texts) - at < 3:
            raise ValueError("a stream's flat form ends inside an entry's head")
        head = [_int_text(text) for text in texts[at : at + 3]]
        count = head[2] & _MASK
        end = at + 3 + 2 * count
        items += (*head, *texts[at + 3 : end])
        at = end
    return build(items)


def _int_text(text: str) -> int:
    if not (text.isascii() and (text.isdigit() or (text[:1] == "-" and text[1:].isdigit()))):
        raise ValueError(f"{text!r} is not a decimal integer")
    return int(text)


def copy(value: Stream) -> Stream:
    """An independent copy in the current epoch (entries' tuples are shared: immutable)."""
    made = Stream()
    made.update(value.items())
    made.last, made.added, made.deleted = value.last, value.added, value.deleted
    return made


def size(value: Stream) -> int:
    """The number of entries (XLEN)."""
    return len(value)
