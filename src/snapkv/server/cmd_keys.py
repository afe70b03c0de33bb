"""Keyspace commands: DEL EXISTS TYPE KEYS SCAN RENAME COPY MOVE RANDOMKEY DBSIZE SWAPDB.

Every command here works on a key of any type (string, hash, list, set,
sorted set): TYPE answers what it holds, COPY copies a container whole (one
journal record), RENAME, MOVE and SWAPDB move it with its expiry. SCAN's
TYPE filter compares the type's name without regard to case, after MATCH,
and an unknown name matches nothing (Redis 7.0 neither refuses it nor
warns).

SCAN walks a snapshot of the keyspace's key list taken when the cursor is
0 (8 bytes a key, held by the server until the walk ends or newer walks
push it out). The cursor encodes the position and the walk (a number
never given to another walk until 2**32 - 1 more have started), so any
connection can continue a walk, and a stale cursor never continues another
walk's snapshot. A key present for the whole walk is
returned exactly once; a key deleted before its turn is not returned
(Redis guarantees the first, and may repeat keys). A walk whose snapshot
was pushed out starts again from the beginning of a fresh one: it then
repeats keys but still misses none, as Redis's guarantee requires.

Bounds (the server is one thread; each call must end quickly): one call
looks at no more than ``SCAN_MAX_COUNT`` keys whatever its COUNT (COUNT is
a hint in Redis too, whose call visits at most ten times COUNT buckets);
snapshots are kept for at most ``SCAN_SLOTS`` walks and hold at most
``SCAN_HELD_PER_KEY`` entries per live key of the server (plus
``SCAN_HELD_MIN``), so a client that starts walk after walk cannot make the
server hold a copy of the keyspace per call. Starting a walk copies the key
list, O(N) at C speed, like KEYS.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from snapkv.server.glob import keys_matching
from snapkv.server.resp.writer import OK, ONE, ZERO, integer
from snapkv.server.table import ERR_DB_RANGE, ERR_SYNTAX, CommandError, command, parse_int

if TYPE_CHECKING:
    from snapkv.server.client import Client

__all__ = ["SCAN_HELD_MIN", "SCAN_HELD_PER_KEY", "SCAN_MAX_COUNT", "SCAN_SLOTS"]

_G = "generic"
_KEY = (1, 1, 1)
_ALL = (1, -1, 1)
_ERR_NO_KEY = "ERR no such key"
_ERR_SAME = "ERR source and destination objects are the same"
#: TYPE's replies, by the name the keyspace gives (None: no such key).
_TYPE_REPLIES = {
    name: b"+%s\r\n" % name.encode() for name in ("string", "hash", "list", "set", "zset", "none")
}
#: Walks SCAN keeps snapshots for; the oldest is dropped beyond this.
SCAN_SLOTS = 1024
#: Keys one SCAN call looks at, at most, whatever its COUNT.
SCAN_MAX_COUNT = 10_000
#: Snapshot entries kept for all walks together: this many per live key, plus SCAN_HELD_MIN.
SCAN_HELD_PER_KEY = 4
SCAN_HELD_MIN = 1 << 20
#: Low bits of a cursor: the walk's number; the high bits are its position.
_WALK_BITS = 32


# ------------------------------------------------------------------- basics


@command("del", -2, "write", keys=_ALL, group=_G, summary="Delete keys")
@command("unlink", -2, "write fast", keys=_ALL, group=_G, since="4.0.0")
def del_(client: Client, argv: list[str]) -> bytes:
    delete = client.db.delete
    deleted = sum(delete(key) for key in argv[1:])
    client.changes += deleted
    return integer(deleted)


@command("exists", -2, "readonly fast", keys=_ALL, group=_G)
@command("touch", -2, "readonly fast", keys=_ALL, group=_G, since="3.2.1")
def exists(client: Client, argv: list[str]) -> bytes:
    db = client.db
    return integer(sum(key in db for key in argv[1:]))


@command("type", 2, "readonly fast", keys=_KEY, group=_G)
def type_(client: Client, argv: list[str]) -> bytes:
    return _TYPE_REPLIES[client.db.key_type(argv[1]) or "none"]


@command("keys", 2, "readonly", group=_G, summary="Keys matching a pattern")
def keys(client: Client, argv: list[str]) -> bytes:
    """KEYS pattern: O(N) in the keyspace, as in Redis (SCAN walks it in bounded steps)."""
    return client.encode(keys_matching(argv[1], list(client.db.keys())))


@command("randomkey", 1, "readonly", group=_G)
def randomkey(client: Client, argv: list[str]) -> bytes:
    return client.bulk_or_null(client.db.random_key())


@command("dbsize", 1, "readonly fast", group="server")
def dbsize(client: Client, argv: list[str]) -> bytes:
    return integer(len(client.db))


# --------------------------------------------------------------------- scan


def _parse_cursor(text: str) -> int:
    """Redis's ``parseScanCursorOrReply`` (``strtoul``): unsigned 64-bit, ``-1`` wraps, "" is 0."""
    if not text:
        return 0
    if text.isascii() and re.fullmatch(r"[+-]?[0-9]+", text):
        digits = text.lstrip("+-").lstrip("0")
        if len(digits) <= 20:  # int() of a longer string would be slow, and is out of range
            value = int(text)
            if -(2**64) < value < 2**64:
                return value % 2**64
    raise CommandError("ERR invalid cursor")


@command("scan", -2, "readonly", group=_G, since="2.8.0")
def scan(client: Client, argv: list[str]) -> bytes:
    """SCAN cursor [MATCH pattern] [COUNT count] [TYPE type] (see the module docstring)."""
    cursor = _parse_cursor(argv[1])
    count, pattern, kind = 10, "*", None
    for i in range(2, len(argv), 2):
        option = argv[i].lower()
        if i + 1 >= len(argv):
            raise CommandError(ERR_SYNTAX)
        if option == "count":
            count = parse_int(argv[i + 1])
            if count < 1:
                raise CommandError(ERR_SYNTAX)
        elif option == "match":
            pattern = argv[i + 1]
        elif option == "type":
            kind = argv[i + 1].lower()
        else:
            raise CommandError(ERR_SYNTAX)
    count = min(count, SCAN_MAX_COUNT)
    server = client.server
    db = client.db
    number, offset = cursor & ((1 << _WALK_BITS) - 1), cursor >> _WALK_BITS
    walk = server.scans.get(number) if cursor else None
    if walk is None or walk[0] != client.db_index:
        # A new walk, or one whose snapshot is gone: from the start of a fresh one.
        server.scan_walks = server.scan_walks % ((1 << _WALK_BITS) - 1) + 1
        number = server.scan_walks
        walk = (client.db_index, list(db.keys()))
        _keep(server.scans, number, walk, sum(map(len, server.keyspaces)))
        offset = 0
    names = walk[1]
    batch = [key for key in names[offset : offset + count] if key in db]
    offset += count
    if offset >= len(names):
        server.scans.pop(number, None)
        next_cursor = 0
    else:
        next_cursor = (offset << _WALK_BITS) | number
    batch = keys_matching(pattern, batch)
    if kind is not None:
        key_type = db.key_type
        batch = [key for key in batch if key_type(key) == kind]
    return client.encode([str(next_cursor), batch])


def _keep(
    scans: dict[int, tuple[int, list[str]]], number: int, walk: tuple[int, list[str]], live: int
) -> None:
    """Keep ``walk``'s snapshot; drop the oldest others beyond the walk and entry budgets."""
    scans.pop(number, None)
    scans[number] = walk  # the newest: the last to go
    budget = SCAN_HELD_PER_KEY * live + SCAN_HELD_MIN
    held = sum(len(names) for _, names in scans.values())
    while len(scans) > 1 and (len(scans) > SCAN_SLOTS or held > budget):
        held -= len(scans.pop(next(iter(scans)))[1])


# ------------------------------------------------------------ rename / copy


@command("rename", 3, "write", keys=(1, 2, 1), group=_G)
def rename(client: Client, argv: list[str]) -> bytes:
    try:
        client.db.rename(argv[1], argv[2])
    except KeyError:
        raise CommandError(_ERR_NO_KEY) from None
    if argv[1] != argv[2]:  # Redis's renameGenericCommand returns before counting
        client.changes += 1
    return OK


@command("renamenx", 3, "write fast", keys=(1, 2, 1), group=_G)
def renamenx(client: Client, argv: list[str]) -> bytes:
    db = client.db
    if argv[1] not in db:
        raise CommandError(_ERR_NO_KEY)
    if argv[2] in db:
        return ZERO
    db.rename(argv[1], argv[2])
    client.changes += 1
    return ONE


def _db_index(client: Client, text: str) -> int:
    index = parse_int(text)
    if not 0 <= index < len(client.server.keyspaces):
        raise CommandError(ERR_DB_RANGE)
    return index


@command("copy", -3, "write denyoom", keys=(1, 2, 1), group=_G, since="6.2.0")
def copy(client: Client, argv: list[str]) -> bytes:
    """COPY source destination [DB index] [REPLACE]: any type, its expiry too, one record."""
    target, replace = client.db_index, False
    i = 3
    while i < len(argv):
        option = argv[i].lower()
        if option == "replace":
            replace = True
        elif option == "db" and i + 1 < len(argv):
            target = _db_index(client, argv[i + 1])
            i += 1
        else:
            raise CommandError(ERR_SYNTAX)
        i += 1
    source, destination = argv[1], argv[2]
    if source == destination and target == client.db_index:
        raise CommandError(_ERR_SAME)
    if not client.db.copy_key(source, destination, db=target, replace=replace):
        return ZERO
    client.changes += 1
    if target != client.db_index and client.server.watched:
        client.server.touch(target, [destination])
    return ONE


@command("move", 3, "write fast", keys=_KEY, group=_G)
def move(client: Client, argv: list[str]) -> bytes:
    target = _db_index(client, argv[2])
    if target == client.db_index:
        raise CommandError(_ERR_SAME)
    moved = client.db.move(argv[1], target)
    if moved:
        client.changes += 1
        if client.server.watched:
            client.server.touch(target, [argv[1]])
    return ONE if moved else ZERO


@command("swapdb", 3, "write fast", group="server", since="4.0.0")
def swapdb(client: Client, argv: list[str]) -> bytes:
    first = parse_int(argv[1], "ERR invalid first DB index")
    second = parse_int(argv[2], "ERR invalid second DB index")
    count = len(client.server.keyspaces)
    if not (0 <= first < count and 0 <= second < count):
        raise CommandError(ERR_DB_RANGE)
    client.server.store.swap(first, second)
    client.changes += 1
    client.server.touch_db(first)
    client.server.touch_db(second)
    return OK
