"""DUMP and RESTORE (Redis's ``cluster.c``): a key's value as Redis's payload, and back.

The payload is Redis's own (see :mod:`snapkv.rdb` and docs/RDB.md), so a
value moves between snapkv and a real Redis with DUMP on one side and
RESTORE on the other. RESTORE follows Redis 7.0's ``restoreCommand`` step
by step, because clients and migration tools rely on which error comes
first: the options (REPLACE, ABSTTL, IDLETIME, FREQ), then BUSYKEY, then
the TTL, then the payload's footer (version and CRC), then the object.

What snapkv does not keep: a key's idle time and access frequency (it has
no eviction), so IDLETIME and FREQ are checked as Redis checks them and
then have no effect.

The write is one journal record: the value (a SET for a string, a PUT for a
container, with its expiry time), after a DEL of the key it replaces.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from snapkv import rdb, values
from snapkv.server.notify import NOTIFY_GENERIC, missed, written
from snapkv.server.resp.text import to_bytes
from snapkv.server.resp.writer import OK, bulk
from snapkv.server.table import ERR_SYNTAX, CommandError, command, parse_int

if TYPE_CHECKING:
    from snapkv.server.client import Client

__all__: list[str] = []

_KEY = (1, 1, 1)
ERR_BUSYKEY = "BUSYKEY Target key name already exists."
ERR_PAYLOAD = "ERR DUMP payload version or checksum are wrong"
ERR_BAD_DATA = "ERR Bad data format"
ERR_TTL = "ERR Invalid TTL value, must be >= 0"
ERR_IDLETIME = "ERR Invalid IDLETIME value, must be >= 0"
ERR_FREQ = "ERR Invalid FREQ value, must be >= 0 and <= 255"


@command("dump", 2, "readonly", keys=_KEY, group="generic", since="2.6.0")
def dump(client: Client, argv: list[str]) -> bytes:
    """DUMP key: the payload, or nil for a missing key.

    Encoded under the Store's lock: a container is mutable, and a write
    from another thread must not change it halfway through.
    """
    db = client.db
    with db._store._lock:
        kind = db.key_type(argv[1])
        if kind is not None:
            key = argv[1]
            value = db.get(key) if kind == "string" else db._lookup(key, values.BY_NAME[kind])
            return bulk(rdb.dump(value))
    missed(client, argv[1])  # outside the lock: it may reclaim the key, which takes it
    return client.null


def _options(argv: list[str]) -> tuple[bool, bool]:
    """RESTORE's options after the payload: (REPLACE, ABSTTL); IDLETIME and FREQ checked only."""
    replace = absttl = False
    idle = freq = False
    j = 4
    while j < len(argv):
        option = argv[j].lower()
        more = len(argv) - j - 1
        if option == "replace":
            replace = True
        elif option == "absttl":
            absttl = True
        elif option == "idletime" and more >= 1 and not freq:
            if parse_int(argv[j + 1]) < 0:
                raise CommandError(ERR_IDLETIME)
            idle = True
            j += 1
        elif option == "freq" and more >= 1 and not idle:
            if not 0 <= parse_int(argv[j + 1]) <= 255:
                raise CommandError(ERR_FREQ)
            freq = True
            j += 1
        else:
            raise CommandError(ERR_SYNTAX)
        j += 1
    return replace, absttl


@command("restore", -4, "write denyoom", keys=_KEY, group="generic", since="2.6.0")
def restore(client: Client, argv: list[str]) -> bytes:
    """RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]."""
    replace, absttl = _options(argv)
    key = argv[1]
    db = client.db
    store = db._store
    if not replace and key in db:
        raise CommandError(ERR_BUSYKEY)
    ttl = parse_int(argv[2])
    if ttl < 0:
        raise CommandError(ERR_TTL)
    try:
        value = rdb.restore(to_bytes(argv[3]))
    except rdb.PayloadError:
        raise CommandError(ERR_PAYLOAD) from None
    except rdb.RDBError:
        raise CommandError(ERR_BAD_DATA) from None
    if ttl and not absttl:
        ttl += store.now_ms()
    outcome = db.restore_value(key, value, ttl, replace=replace)
    if outcome == "refused":
        raise CommandError(ERR_BUSYKEY)  # written by another thread meanwhile
    if outcome == "expired":  # nothing stored, nothing replaced
        return OK
    client.changes += 1
    if outcome == "deleted":  # expired already: only the key it replaced went
        written(client, NOTIFY_GENERIC, "del", key)
    else:  # Redis deletes a replaced key first, so the restored one is always new
        written(client, NOTIFY_GENERIC, "restore", key, True)
    return OK
