"""Keyspace commands: DEL EXISTS TYPE KEYS SCAN RENAME COPY MOVE RANDOMKEY DBSIZE SWAPDB.

Every command here works on a key of any type (string, hash, list, set,
sorted set): TYPE answers what it holds, COPY copies a container whole (one
journal record), RENAME, MOVE and SWAPDB move it with its expiry. SCAN's
TYPE filter compares the type's name without regard to case, after MATCH,
and an unknown name matches nothing (Redis 7.0 neither refuses it nor
warns).

SCAN walks a snapshot of the keyspace's key list, paged by the cursor: see
:mod:`snapkv.server.scan`, the walk HSCAN, SSCAN and ZSCAN share.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from snapkv.server.glob import keys_matching
from snapkv.server.notify import (
    NOTIFY_GENERIC,
    NOTIFY_NEW,
    created,
    missed,
    notify,
    watched,
    written,
)
from snapkv.server.resp.writer import OK, ONE, ZERO, integer
from snapkv.server.scan import page, parse_cursor, parse_options
from snapkv.server.table import ERR_DB_RANGE, ERR_SYNTAX, CommandError, command, parse_int

if TYPE_CHECKING:
    from snapkv.server.client import Client

__all__: list[str] = []

_G = "generic"
_KEY = (1, 1, 1)
_ALL = (1, -1, 1)
_ERR_NO_KEY = "ERR no such key"
_ERR_SAME = "ERR source and destination objects are the same"
#: TYPE's replies, by the name the keyspace gives (None: no such key).
_TYPE_REPLIES = {
    name: b"+%s\r\n" % name.encode()
    for name in ("string", "hash", "list", "set", "zset", "stream", "none")
}


# ------------------------------------------------------------------- basics


@command("del", -2, "write", keys=_ALL, group=_G, summary="Delete keys")
@command("unlink", -2, "write fast", keys=_ALL, group=_G, since="4.0.0")
def del_(client: Client, argv: list[str]) -> bytes:
    delete = client.db.delete
    if watched(client):
        deleted = 0
        for key in argv[1:]:
            if delete(key):
                deleted += 1
                written(client, NOTIFY_GENERIC, "del", key)
    else:
        deleted = sum(delete(key) for key in argv[1:])
    client.changes += deleted
    return integer(deleted)


@command("exists", -2, "readonly fast", keys=_ALL, group=_G)
@command("touch", -2, "readonly fast", keys=_ALL, group=_G, since="3.2.1")
def exists(client: Client, argv: list[str]) -> bytes:
    db = client.db
    found = sum(key in db for key in argv[1:])
    if found < len(argv) - 1:
        missed(client, *argv[1:])
    return integer(found)


@command("type", 2, "readonly fast", keys=_KEY, group=_G)
def type_(client: Client, argv: list[str]) -> bytes:
    kind = client.db.key_type(argv[1])
    if kind is None:
        missed(client, argv[1])
        return _TYPE_REPLIES["none"]
    return _TYPE_REPLIES[kind]


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


@command("scan", -2, "readonly", group=_G, since="2.8.0")
def scan(client: Client, argv: list[str]) -> bytes:
    """SCAN cursor [MATCH pattern] [COUNT count] [TYPE type] (see snapkv.server.scan)."""
    cursor = parse_cursor(argv[1])
    count, pattern, kind = parse_options(argv, 2, with_type=True)
    db = client.db
    names, next_cursor = page(client, client.db_index, cursor, count, lambda: list(db.keys()))
    batch = keys_matching(pattern, [key for key in names if key in db])
    if kind is not None:
        key_type = db.key_type
        batch = [key for key in batch if key_type(key) == kind]
    return client.encode([str(next_cursor), batch])


# ------------------------------------------------------------ rename / copy


@command("rename", 3, "write", keys=(1, 2, 1), group=_G)
def rename(client: Client, argv: list[str]) -> bytes:
    created(client, argv[2])  # an expired target is announced before it is replaced
    try:
        client.db.rename(argv[1], argv[2])
    except KeyError:
        raise CommandError(_ERR_NO_KEY) from None
    if argv[1] != argv[2]:  # Redis's renameGenericCommand returns before counting
        client.changes += 1
        _renamed(client, argv[1], argv[2])
    return OK


def _renamed(client: Client, source: str, target: str) -> None:
    """Redis deletes the target, adds it anew (``new``), then says rename_from and rename_to."""
    db = client.db_index
    notify(client, NOTIFY_NEW, "new", target, db)
    notify(client, NOTIFY_GENERIC, "rename_from", source, db)
    notify(client, NOTIFY_GENERIC, "rename_to", target, db)


@command("renamenx", 3, "write fast", keys=(1, 2, 1), group=_G)
def renamenx(client: Client, argv: list[str]) -> bytes:
    db = client.db
    if argv[1] not in db:
        raise CommandError(_ERR_NO_KEY)
    if argv[2] in db:
        return ZERO
    created(client, argv[2])
    db.rename(argv[1], argv[2])
    client.changes += 1
    _renamed(client, argv[1], argv[2])
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
        missed(client, source)  # nothing when it failed for an existing destination
        return ZERO
    client.changes += 1
    notify(client, NOTIFY_NEW, "new", destination, target)  # a replaced key is added anew
    notify(client, NOTIFY_GENERIC, "copy_to", destination, target)
    if target != client.db_index and (client.server.watched or client.server.key_listeners):
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
        notify(client, NOTIFY_NEW, "new", argv[1], target)
        notify(client, NOTIFY_GENERIC, "move_from", argv[1], client.db_index)
        notify(client, NOTIFY_GENERIC, "move_to", argv[1], target)
        if client.server.watched or client.server.key_listeners:
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
