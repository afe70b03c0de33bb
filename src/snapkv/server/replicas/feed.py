"""The Store's records as the command stream a Redis replica applies (Redis's ``propagate``).

Every record the Store commits (heard through ``Store.tap``) becomes the
commands that have the same effect on a stock redis-server replica, with
absolute times only, so the replica ends where snapkv is whatever its clock
says:

* SET: ``SET key value [PXAT t]``; DEL: ``DEL``; EXPIRE: ``PEXPIREAT`` or
  ``PERSIST``; CLEAR: ``FLUSHDB`` / ``FLUSHALL``; SWAP: ``SWAPDB``; RENAME:
  ``RENAME`` (``DEL`` + ``MOVE`` across keyspaces);
* a container's effect as its type's command: ``HSET``/``HDEL``,
  ``LPUSH``/``RPUSH``/``LPOP n``/``RPOP n``/``LSET``/``LTRIM``,
  ``SADD``/``SREM``, ``ZADD``/``ZREM``, ``XADD`` with its explicit ID,
  ``XDEL``, ``XSETID``; a whole value (PUT) as ``DEL`` and the commands
  that build it, then ``PEXPIREAT``;
* ``SELECT`` whenever the keyspace changes; ``MULTI``/``EXEC`` around a
  record (a transaction's or a script's BATCH) that becomes more than one
  command, so the replica applies it at once as snapkv did.

Some effects say *where* but not *what* a command would need: a list's
removal by index (LREM) or insertion inside it (LINSERT) is sent as the
key written from memory as it is *after* the record (``DEL`` and its whole
value); a stream's trim as ``XTRIM MINID`` of the oldest entry memory keeps,
then the stream's counters with ``XSETID``. A
record written outside a transaction reaches the tap before memory changes,
so such a record waits (:meth:`Feed.settle`) until the write is in memory
(the tap's ``settled`` hook), or the next record, expiry, offset reading or
delivery, each of which sees memory after it; a transaction's BATCH reaches
the tap once its writes are in memory, so it is translated at once.

Keys that expire are sent as ``DEL`` (:meth:`Feed.expired`, from the
Store's expired listener), as Redis's primary sends them; those a
transaction reclaims go with its record (see :meth:`Feed.expired`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from struct import Struct
from typing import Any

from snapkv import journal as jr
from snapkv.server.replicas.build import (
    MASK,
    Cmd,
    build,
    kind_of,
    score,
    stream_id,
    stream_meta,
)
from snapkv.server.resp.text import to_bytes
from snapkv.values import hashes, lists, sets, streams, zsets

__all__ = ["Feed", "command"]

#: Where a record's type byte and body begin (the journal's frame), and a SET body's head.
_TYPE_AT = jr.FRAME_SIZE - 1
_BODY_AT = jr.FRAME_SIZE
_SET_BODY = Struct("<IQI")  # db, expire_at, key length


def command(argv: Sequence[str]) -> bytes:
    """One command as a RESP array of bulk strings (what a replica reads)."""
    parts = [b"*%d\r\n" % len(argv)]
    for arg in argv:
        data = to_bytes(arg)
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _whole(op: Any) -> bool:
    """Whether ``op``'s key is written whole from memory (see the module docstring)."""
    if op[0] != "edit":
        return False
    vtype, opcode, items = op[3], op[4], op[5]
    if vtype == lists.CODE:
        if opcode == lists.OP_REMOVE:
            return True
        if opcode == lists.OP_SPLICE:
            index, count = items[0], items[1]
            values = len(items) - 2
            return not ((count == values and count > 0) or (count == 0 and index == 0))
        return False
    return bool(vtype == streams.CODE and opcode == streams.OP_INSERT)


def _trim(op: Any) -> bool:
    """A stream trim: XTRIM MINID, then the stream's metadata as memory holds it after."""
    return bool(op[0] == "edit" and op[3] == streams.CODE and op[4] == streams.OP_TRIM)


def _stateful(op: Any) -> bool:
    """Whether ``op`` is said with memory as it is after its record."""
    return _whole(op) or _trim(op)


def _keys(op: Any) -> list[tuple[int, str]]:
    kind = op[0]
    if kind in ("clear", "swap"):
        return []
    if kind == "rename":
        return [(op[1], op[2]), (op[3], op[4])]
    return [(op[1], op[2])]


class Feed:
    """Turns records into replica commands, in order, handing the bytes to ``emit``.

    Every method is called under the Store's lock (the tap, the expired
    listener, ``Store.frozen_copy``'s mark, the primary's delivery through
    ``Store.under_lock``), so memory read here is exactly the state the
    stream has reached.
    """

    def __init__(self, store: Any, emit: Callable[[bytes], None]) -> None:
        self._store = store
        self._emit = emit
        #: The keyspace the stream last selected; -1: none (the next command selects).
        self.db = -1
        self._pending: tuple[jr.SimpleOp, ...] | None = None
        #: Keys reclaimed as expired inside a transaction (see :meth:`expired`).
        self._reclaimed: dict[tuple[int, str], None] = {}

    # ------------------------------------------------------------- entries

    def record(self, record: bytes) -> None:
        """The tap's listener: one committed record (caller holds the Store's lock)."""
        if self.waiting:
            self.settle()  # keys reclaimed by a running transaction stay for its record
        if record[_TYPE_AT] == jr.TYPE_SET and self._plain_set(record):
            return
        op: Any = jr.decode_record(record)
        ops: tuple[Any, ...] = op[1] if op[0] == "batch" else (op,)
        if self._store.in_transaction:
            reclaimed, self._reclaimed = self._reclaimed, {}
            self._group(ops, reclaimed)
            return
        if any(_stateful(each) for each in ops):
            self._pending = ops  # memory changes after this returns: see settle()
            return
        self._group(ops)

    def _plain_set(self, record: bytes) -> bool:
        """A SET record whose key and value are ASCII, straight from its bytes (the common write).

        Its bytes are the wire's then (the journal's text and the protocol's
        differ only for bytes that are not UTF-8), so neither is decoded.
        The record is the Store's own, just made: its checksum is not checked.
        """
        db, at, size = _SET_BODY.unpack_from(record, _BODY_AT)
        start = _BODY_AT + _SET_BODY.size
        key = record[start : start + size]
        value = record[start + size :]
        if not (key.isascii() and value.isascii()):
            return False
        head = b""
        if db != self.db:
            head = command(["SELECT", str(db)])
            self.db = db
        if at:
            stamp = b"%d" % at
            self._emit(
                b"%s*5\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n$4\r\nPXAT\r\n$%d\r\n%s\r\n"
                % (head, len(key), key, len(value), value, len(stamp), stamp)
            )
        else:
            self._emit(
                b"%s*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n"
                % (head, len(key), key, len(value), value)
            )
        return True

    def expired(self, db: int, keys: list[str]) -> None:
        """Keys the Store reclaimed as expired: ``DEL`` each (caller holds the Store's lock).

        Reclaimed inside a transaction (a read of its own reclaims), a key is
        not deleted at once: the transaction's record, heard at its end, may
        hold a SWAPDB or RENAME that came before, and a DEL sent ahead of it
        would delete another key on the replica. Such keys are written from
        memory with the transaction's record (with the keys a swap or rename
        ties them to), or by :meth:`settle` when the transaction wrote
        nothing; a rolled-back transaction puts them back, and nothing was sent.
        """
        if self._store.in_transaction:
            self._reclaimed.update(dict.fromkeys((db, key) for key in keys))
            return
        self.settle()
        for key in keys:
            self._send([(db, ["DEL", key])])

    def settle(self) -> None:
        """Translate what waited for memory after it (caller holds the Store's lock)."""
        self._flush_reclaimed()
        pending = self._pending
        if pending is not None:
            self._pending = None
            self._group(pending)

    def _flush_reclaimed(self) -> None:
        """Keys a transaction that wrote nothing reclaimed, as memory holds them now."""
        if self._reclaimed and not self._store.in_transaction:
            reclaimed, self._reclaimed = self._reclaimed, {}
            for db, key in reclaimed:
                self._send(self._rewrite(db, key))

    @property
    def waiting(self) -> bool:
        """Whether a record (or a key reclaimed in a transaction) waits for :meth:`settle`."""
        return self._pending is not None or bool(self._reclaimed)

    def restart(self) -> None:
        """A replica starts from here: the next command selects its keyspace again."""
        self.db = -1

    def stream_counters(self) -> None:
        """XSETID of every stream in memory (caller holds the Store's lock), after a snapshot.

        An RDB of version 9 holds a stream's entries and last ID but not the
        entries-added count nor the max-deleted ID (RDB 10's): sent right
        after the snapshot's offset, the replica ends with both. One pass
        over the keys, at each full synchronisation.
        """
        cmds: list[Cmd] = []
        for db in range(self._store.databases):
            data = self._store.db(db)._space[0]
            for key, value in data.items():
                if value.__class__ is streams.Stream:
                    cmds += self._edit(
                        ("edit", db, key, streams.CODE, streams.OP_META, stream_meta(value))
                    )
        for cmd in cmds:  # each on its own: no transaction for many keys at once
            self._send([cmd])

    # ---------------------------------------------------------- translation

    def _group(
        self, ops: Sequence[Any], reclaimed: dict[tuple[int, str], None] | None = None
    ) -> None:
        redo = self._rewritten(ops, reclaimed or {})
        cmds: list[Cmd] = []
        fix: list[tuple[int, str]] = []
        for op in ops:
            if any(key in redo for key in _keys(op)):
                continue
            if _trim(op):
                cmds += self._trimmed(op[1], op[2])
                fix.append((op[1], op[2]))
            else:
                cmds += self._commands(op)
        for db, key in redo:
            cmds += self._rewrite(db, key)
        for db, key in dict.fromkeys(fix):
            cmds += self._meta(db, key)
        self._send(cmds)

    def _rewritten(
        self, ops: Sequence[Any], reclaimed: dict[tuple[int, str], None]
    ) -> dict[tuple[int, str], None]:
        """The keys written whole from memory: stateful effects, keys ``reclaimed`` as expired
        among ``ops``, and what a rename or swap ties to them."""
        redo: dict[tuple[int, str], None] = dict(reclaimed)
        for op in ops:
            if _whole(op):
                redo[(op[1], op[2])] = None
        if not redo:
            return redo
        size = 0
        while size != len(redo):  # a rename of a rewritten key ties its other end, and so on
            size = len(redo)
            for op in ops:
                if op[0] == "rename":
                    ends = [(op[1], op[2]), (op[3], op[4])]
                    if any(end in redo for end in ends):
                        redo.update(dict.fromkeys(ends))
                elif op[0] == "swap":
                    a, b = op[1], op[2]
                    for db, key in list(redo):
                        if db in (a, b):
                            redo[(b if db == a else a, key)] = None
        return redo

    def _send(self, cmds: list[Cmd]) -> None:
        if not cmds:
            return
        parts: list[bytes] = []
        wrap = len(cmds) > 1
        if wrap:
            parts.append(command(["MULTI"]))
        for db, argv in cmds:
            if db is not None and db != self.db:
                parts.append(command(["SELECT", str(db)]))
                self.db = db
            parts.append(command(argv))
        if wrap:
            parts.append(command(["EXEC"]))
        self._emit(b"".join(parts))

    def _commands(self, op: Any) -> list[Cmd]:  # a SimpleOp, dispatched on its kind
        kind = op[0]
        if kind == "set":
            _, db, key, value, at = op
            return [(db, ["SET", key, value, "PXAT", str(at)] if at else ["SET", key, value])]
        if kind == "del":
            return [(op[1], ["DEL", op[2]])]
        if kind == "clear":
            db = op[1]
            if db == jr.ALL_KEYSPACES:
                return [(None, ["FLUSHALL"])]
            return [(db, ["FLUSHDB"])]
        if kind == "expire":
            _, db, key, at = op
            return [(db, ["PEXPIREAT", key, str(at)] if at else ["PERSIST", key])]
        if kind == "swap":
            return [(None, ["SWAPDB", str(op[1]), str(op[2])])]
        if kind == "rename":
            _, db, key, tdb, target = op
            if db == tdb:
                return [(db, ["RENAME", key, target])]
            return [(tdb, ["DEL", target]), (db, ["MOVE", key, str(tdb)])]
        if kind == "put":
            _, db, key, vtype, items, at = op
            return build(db, key, vtype, items, at)
        if kind == "edit":
            return self._edit(op)
        raise ValueError(f"a record of kind {kind!r} has no replica command")

    def _edit(self, op: Any) -> list[Cmd]:  # an EditOp
        _, db, key, vtype, opcode, items = op
        texts = [str(item) for item in items]
        if vtype == hashes.CODE:
            return [(db, ["HSET" if opcode == hashes.OP_SET else "HDEL", key, *texts])]
        if vtype == sets.CODE:
            return [(db, ["SADD" if opcode == sets.OP_ADD else "SREM", key, *texts])]
        if vtype == zsets.CODE:
            if opcode == zsets.OP_REM:
                return [(db, ["ZREM", key, *texts])]
            pairs: list[str] = []
            for i in range(0, len(items), 2):
                pairs += (score(items[i]), str(items[i + 1]))
            return [(db, ["ZADD", key, *pairs])]
        if vtype == lists.CODE:
            return self._list_edit(db, key, opcode, items)
        if vtype == streams.CODE:
            if opcode == streams.OP_ADD:
                return [(db, ["XADD", key, stream_id(items[0], items[1]), *texts[2:]])]
            if opcode in (streams.OP_DEL, streams.OP_TRIM):
                ids = [stream_id(items[i], items[i + 1]) for i in range(0, len(items), 2)]
                return [(db, ["XDEL", key, *ids])] if ids else []
            if opcode == streams.OP_META:
                last, added, deleted = stream_id(*items[0:2]), items[2], stream_id(*items[3:5])
                argv = ["XSETID", key, last, "ENTRIESADDED", str(int(added) & MASK)]
                return [(db, [*argv, "MAXDELETEDID", deleted])]
        raise ValueError(f"no replica command for effect {opcode} of value type {vtype}")

    def _list_edit(self, db: int, key: str, opcode: int, items: tuple[Any, ...]) -> list[Cmd]:
        texts = [str(item) for item in items]
        if opcode == lists.OP_PUSH_LEFT:
            return [(db, ["LPUSH", key, *texts])]
        if opcode == lists.OP_PUSH_RIGHT:
            return [(db, ["RPUSH", key, *texts])]
        if opcode in (lists.OP_POP_LEFT, lists.OP_POP_RIGHT):
            name = "LPOP" if opcode == lists.OP_POP_LEFT else "RPOP"
            return [(db, [name, key, str(len(items))])]
        if opcode == lists.OP_TRIM:
            start, count = int(items[0]), int(items[1])
            if count == 0:
                return [(db, ["LTRIM", key, "1", "0"])]  # start > end: the list goes
            return [(db, ["LTRIM", key, str(start), str(start + count - 1)])]
        if opcode == lists.OP_SPLICE:
            index, count, values = int(items[0]), int(items[1]), texts[2:]
            if count == 0:  # only at the head here (see _stateful)
                return [(db, ["LPUSH", key, *reversed(values)])]
            return [(db, ["LSET", key, str(index + i), value]) for i, value in enumerate(values)]
        raise ValueError(f"list effect {opcode} needs the list (see _stateful)")

    # ------------------------------------------------------ whole values

    def _rewrite(self, db: int, key: str) -> list[Cmd]:
        """``key`` as memory holds it now: gone, or written whole."""
        data, expires, _ = self._store.db(db)._space
        value = data.get(key)
        if value is None:
            return [(db, ["DEL", key])]
        at = expires.get(key, 0) if expires else 0
        if isinstance(value, str):
            return [(db, ["DEL", key]), *self._commands(("set", db, key, value, at))]
        kind = kind_of(value)
        return build(db, key, kind.CODE, tuple(kind.flat(value)), at)

    def _trimmed(self, db: int, key: str) -> list[Cmd]:
        """A trim as ``XTRIM key MINID <the oldest entry memory keeps>`` (``MAXLEN 0``: none).

        A trim takes the oldest entries, so everything below the first entry
        left went. Not XDEL: it would move the replica's max-deleted ID, and
        XSETID cannot put it back to 0-0.
        """
        value = self._store.db(db)._space[0].get(key)
        if isinstance(value, streams.Stream) and value:
            return [(db, ["XTRIM", key, "MINID", stream_id(*value.peekitem(0)[0])])]
        return [(db, ["XTRIM", key, "MAXLEN", "0"])]

    def _meta(self, db: int, key: str) -> list[Cmd]:
        """A stream's metadata as memory holds it now (after XDELs that stood for a trim)."""
        data, _, _ = self._store.db(db)._space
        value = data.get(key)
        if not isinstance(value, streams.Stream):
            return []
        return self._edit(("edit", db, key, streams.CODE, streams.OP_META, stream_meta(value)))
