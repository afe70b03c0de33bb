"""Streams in RDB (Redis's ``rdbSaveObject``/``rdbLoadObject`` for streams, ``t_stream.c``).

A stream object (types 15, 19, 21: STREAM_LISTPACKS, _2, _3)::

    <nodes: length> { <master ID: string of 16 bytes, ms and seq big-endian> <listpack> }...
    <entries: length> <last ID: ms length, seq length>
    [19, 21: <first ID> <max deleted ID> <entries added: length>]
    <consumer groups: length> { <name> <last delivered ID> [19, 21: <entries read>]
        <PEL: length> { <16-byte ID> <delivery time: 8 bytes LE> <delivery count: length> }...
        <consumers: length> { <name> <seen time: 8 LE> [21: <active time: 8 LE>]
            <PEL: length> { <16-byte ID> }... }... }...

A node's listpack holds a *master entry* (``count deleted n field... 0``)
and then each entry as ``flags ms-diff seq-diff`` (IDs relative to the
master ID), its values alone when its fields are the master's (flag
SAMEFIELDS, 2) or else ``n field value ...``, and ``lp-count`` (how many
listpack elements the entry took, so the listpack can be walked
backwards); an entry flagged DELETED (1) is a tombstone, skipped.

Read: all three types. snapkv's streams have no consumer groups, so the
groups are read (to find the object's end and check it) and reported to the
caller, which refuses or skips such a key (:mod:`snapkv.rdb.file_reader`,
``RESTORE``). Written: type 15, the one a version-9 file may hold, in
nodes of at most :data:`NODE_ENTRIES` entries (Redis's
``stream-node-max-entries`` default), no tombstones, no groups. Type 15
has no room for the entries-added count or the largest deleted ID, so a
loader recomputes them (Redis sets entries-added to the length).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from snapkv.values import streams

from . import compact

if TYPE_CHECKING:
    from .objects import _Reader

__all__ = ["NODE_ENTRIES", "read", "save"]

STREAM_LISTPACKS, STREAM_LISTPACKS_2, STREAM_LISTPACKS_3 = 15, 19, 21
#: Entries per listpack node written (Redis's ``stream-node-max-entries``).
NODE_ENTRIES: Final = 100
_DELETED, _SAMEFIELDS = 1, 2
_MASK = (1 << 64) - 1


def _wrap(diff: int) -> int:
    """An ID difference as the signed 64-bit integer Redis stores (it wraps, as C's does)."""
    return ((diff + (1 << 63)) & _MASK) - (1 << 63)


def _text(data: bytes | int) -> str:
    return str(data) if isinstance(data, int) else data.decode("utf-8", "surrogateescape")


def _int(entry: bytes | int, r: _Reader, at: int) -> int:
    if isinstance(entry, int):
        return entry
    try:
        return int(entry)
    except ValueError:
        r.fail(f"a stream listpack field {entry[:20]!r} is not an integer", at)


def _id(r: _Reader) -> tuple[int, int]:
    return _len(r), _len(r)


def _len(r: _Reader) -> int:
    at = r.pos
    value, special = r.length()
    if special:
        r.fail("a stream's length is an encoded string", at)
    return value


def read(r: _Reader, kind: int) -> tuple[streams.Stream, bool]:
    """The stream at the cursor (after the key): (stream, whether it has consumer groups)."""
    at = r.pos
    made = streams.Stream()
    for _ in range(_len(r)):
        key_at = r.pos
        master = r.string()
        if len(master) != 16:
            r.fail(f"a stream node's master ID has {len(master)} bytes, not 16", key_at)
        base_ms, base_seq = int.from_bytes(master[:8], "big"), int.from_bytes(master[8:], "big")
        lp_at = r.pos
        entries = r.blob(compact.listpack)
        _node(made, entries, (base_ms, base_seq), r, lp_at)
    length = _len(r)
    made.last = _id(r)
    if kind >= STREAM_LISTPACKS_2:
        _id(r)  # the first ID: the entries say it
        made.deleted = _id(r)
        made.added = _len(r)
    else:
        made.added = length
    if length != len(made):
        r.fail(f"a stream says it has {length} entries, its nodes hold {len(made)}", at)
    if made and made.peekitem(-1)[0] > made.last:
        r.fail(f"a stream's last ID {made.last} is below its last entry's", at)
    groups = _len(r)
    for _ in range(groups):
        _group(r, kind)
    return made, groups > 0


def _node(
    made: streams.Stream, entries: list[Any], master: tuple[int, int], r: _Reader, at: int
) -> None:
    ms, seq = master
    try:
        count, deleted, nfields = (_int(e, r, at) for e in entries[:3])
        fields = [_text(e) for e in entries[3 : 3 + nfields]]
        pos = 3 + nfields
        if _int(entries[pos], r, at) != 0:
            r.fail("a stream node's master entry does not end in 0", at)
        pos += 1
        seen = 0
        while pos < len(entries):
            flags = _int(entries[pos], r, at)
            entry_id = (
                (ms + _int(entries[pos + 1], r, at)) & _MASK,
                (seq + _int(entries[pos + 2], r, at)) & _MASK,
            )
            pos += 3
            if flags & _SAMEFIELDS:
                values = [_text(e) for e in entries[pos : pos + nfields]]
                pos += nfields
                pairs = tuple(x for pair in zip(fields, values, strict=True) for x in pair)
            else:
                n = _int(entries[pos], r, at)
                pairs = tuple(_text(e) for e in entries[pos + 1 : pos + 1 + 2 * n])
                pos += 1 + 2 * n
                if len(pairs) != 2 * n:
                    raise IndexError
            pos += 1  # lp-count
            if pos > len(entries):
                raise IndexError
            seen += 1
            if flags & _DELETED:
                continue
            if entry_id in made or (made and entry_id < made.peekitem(-1)[0]):
                r.fail(f"stream entry {entry_id} is out of order", at)
            made[entry_id] = pairs
    except (IndexError, ValueError):
        r.fail("a stream node's listpack ends inside an entry", at)
    if seen != count + deleted:
        r.fail(f"a stream node says {count}+{deleted} entries, it holds {seen}", at)


def _group(r: _Reader, kind: int) -> None:
    r.string()
    _id(r)
    if kind >= STREAM_LISTPACKS_2:
        _len(r)
    for _ in range(_len(r)):
        r.take(16 + 8)
        _len(r)
    for _ in range(_len(r)):
        r.string()
        r.take(16 if kind >= STREAM_LISTPACKS_3 else 8)
        for _ in range(_len(r)):
            r.take(16)


# ------------------------------------------------------------------ writing


def save(out: bytearray, value: streams.Stream, save_length: Any, save_raw: Any) -> None:
    """``value`` as a type-15 stream body (no groups); ``save_length``/``save_raw`` are
    :mod:`.objects`' length and raw-string writers (passed in: objects imports this module)."""
    items = list(value.items())
    nodes = [items[i : i + NODE_ENTRIES] for i in range(0, len(items), NODE_ENTRIES)]
    save_length(out, len(nodes))
    for node in nodes:
        (ms, seq), first_pairs = node[0]
        save_raw(out, ms.to_bytes(8, "big") + seq.to_bytes(8, "big"))
        master = first_pairs[0::2]
        lp = compact.ListpackWriter()
        lp.integer(len(node))
        lp.integer(0)
        lp.integer(len(master))
        for field in master:
            lp.string(field)
        lp.integer(0)
        for (entry_ms, entry_seq), pairs in node:
            same = pairs[0::2] == master
            lp.integer(_SAMEFIELDS if same else 0)
            lp.integer(_wrap(entry_ms - ms))
            lp.integer(_wrap(entry_seq - seq))
            if same:
                for text in pairs[1::2]:
                    lp.string(text)
                lp.integer(len(master) + 3)
            else:
                lp.integer(len(pairs) // 2)
                for text in pairs:
                    lp.string(text)
                lp.integer(len(pairs) + 1 + 3)
        save_raw(out, lp.finish())
    save_length(out, len(items))
    save_length(out, value.last[0])
    save_length(out, value.last[1])
    save_length(out, 0)  # consumer groups
