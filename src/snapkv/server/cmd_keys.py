"""Keyspace commands: DEL EXISTS TYPE KEYS SCAN RENAME COPY MOVE, expiry, DBSIZE, FLUSH*.

Only strings exist, so TYPE answers ``string`` or ``none`` and SCAN's TYPE
filter keeps everything for ``string`` and nothing for any other type.

SCAN walks a snapshot of the keyspace's key list taken when the cursor is
0 (16 bytes a key, held by the server until the walk ends or 1,024 newer
walks push it out). The cursor encodes the position and the snapshot, so
any connection can continue a walk. A key present for the whole walk is
returned exactly once; a key deleted before its turn is not returned
(Redis guarantees the first, and may repeat keys; this never does). A walk
whose snapshot was pushed out restarts from a fresh one at the same
position: it may then miss or repeat keys, as a cursor from a restarted
Redis may.
"""

from __future__ import annotations

import re
from functools import lru_cache

from snapkv.server.context import (
    ERR_DB_RANGE,
    ERR_SYNTAX,
    OK,
    ONE,
    ZERO,
    Client,
    Command,
    CommandError,
    command,
    parse_int,
)
from snapkv.server.resp import integer

__all__ = ["COMMANDS", "glob_matches", "glob_to_regex"]

COMMANDS: list[Command] = []

_G = "generic"
_KEY = (1, 1, 1)
_ALL = (1, -1, 1)
_ERR_NO_KEY = "ERR no such key"
_ERR_SAME = "ERR source and destination objects are the same"
_STRING = b"+string\r\n"
_NONE = b"+none\r\n"
#: Walks SCAN keeps snapshots for; the oldest is dropped beyond this.
SCAN_SLOTS = 1024
_SLOT_BITS = 16


# ---------------------------------------------------------------- patterns


@lru_cache(maxsize=256)
def glob_to_regex(pattern: bytes) -> re.Pattern[bytes]:
    """Compile a Redis glob (``stringmatchlen``) to a regex over the key's bytes.

    ``*`` any bytes, ``?`` one byte, ``[abc]``, ``[^abc]``, ``[a-z]`` (ends
    in either order), ``\\x`` a literal ``x``; an unclosed ``[`` runs to the
    end of the pattern, as in Redis.
    """
    out: list[bytes] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == 42:  # *
            if not out or out[-1] != b".*":
                out.append(b".*")
        elif c == 63:  # ?
            out.append(b".")
        elif c == 91:  # [
            i += 1
            negate = i < n and pattern[i] == 94
            if negate:
                i += 1
            ranges: list[bytes] = []
            while True:
                if i < n and pattern[i] == 92 and n - i >= 2:
                    i += 1
                    ranges.append(b"\\x%02x" % pattern[i])
                elif i >= n or pattern[i] == 93:
                    break
                elif n - i >= 3 and pattern[i + 1] == 45:
                    low, high = sorted((pattern[i], pattern[i + 2]))
                    ranges.append(b"\\x%02x-\\x%02x" % (low, high))
                    i += 2
                else:
                    ranges.append(b"\\x%02x" % pattern[i])
                i += 1
            if ranges:
                out.append(b"[" + (b"^" if negate else b"") + b"".join(ranges) + b"]")
            else:
                out.append(b"." if negate else b"(?!)")
        else:
            if c == 92 and n - i >= 2:  # backslash: the next byte is literal
                i += 1
                c = pattern[i]
            out.append(b"\\x%02x" % c)
        i += 1
    return re.compile(b"".join(out), re.DOTALL)


def glob_matches(pattern: bytes, string: bytes) -> bool:
    """Whether ``string`` matches ``pattern`` exactly as Redis's ``stringmatchlen`` decides.

    One quirk is kept: a non-empty pattern never matches the empty string
    (not even ``*``; KEYS and SCAN special-case a lone ``*`` before matching).
    """
    return (bool(string) or not pattern) and glob_to_regex(pattern).fullmatch(string) is not None


def _matcher(pattern: str) -> re.Pattern[bytes] | None:
    """The compiled pattern, or ``None`` for ``*`` (everything matches)."""
    if pattern == "*":
        return None
    return glob_to_regex(pattern.encode("utf-8", "surrogateescape"))


def _matching(keys: list[str], regex: re.Pattern[bytes] | None) -> list[str]:
    if regex is None:
        return keys
    full = regex.fullmatch
    # A non-empty pattern never matches the empty key (see glob_matches).
    return [k for k in keys if k and full(k.encode("utf-8", "surrogateescape"))]


# ------------------------------------------------------------------- basics


@command(COMMANDS, "del", -2, "write", _ALL, group=_G, summary="Delete keys")
def del_(client: Client, argv: list[str]) -> bytes:
    delete = client.db.delete
    return integer(sum(delete(key) for key in argv[1:]))


command(COMMANDS, "unlink", -2, "write fast", _ALL, group=_G, since="4.0.0")(del_)


@command(COMMANDS, "exists", -2, "readonly fast", _ALL, group=_G)
def exists(client: Client, argv: list[str]) -> bytes:
    db = client.db
    return integer(sum(key in db for key in argv[1:]))


command(COMMANDS, "touch", -2, "readonly fast", _ALL, group=_G, since="3.2.1")(exists)


@command(COMMANDS, "type", 2, "readonly fast", _KEY, group=_G)
def type_(client: Client, argv: list[str]) -> bytes:
    return _STRING if argv[1] in client.db else _NONE


@command(COMMANDS, "keys", 2, "readonly", group=_G, summary="Keys matching a pattern")
def keys(client: Client, argv: list[str]) -> bytes:
    return client.encode(_matching(list(client.db.keys()), _matcher(argv[1])))


@command(COMMANDS, "randomkey", 1, "readonly", group=_G)
def randomkey(client: Client, argv: list[str]) -> bytes:
    return client.bulk_or_null(client.db.random_key())


@command(COMMANDS, "dbsize", 1, "readonly fast", group="server")
def dbsize(client: Client, argv: list[str]) -> bytes:
    return integer(len(client.db))


# --------------------------------------------------------------------- scan


def _parse_cursor(text: str) -> int:
    """Redis's ``parseScanCursorOrReply``: an unsigned 64-bit number (``-1`` wraps)."""
    if text.isascii() and re.fullmatch(r"[+-]?[0-9]+", text):
        value = int(text)
        if -(2**64) < value < 2**64:
            return value % 2**64
    raise CommandError("ERR invalid cursor")


@command(COMMANDS, "scan", -2, "readonly", group=_G, since="2.8.0")
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
    server = client.server
    db = client.db
    slot, offset = cursor & ((1 << _SLOT_BITS) - 1), cursor >> _SLOT_BITS
    walk = server.scans.get(slot) if cursor else None
    if walk is None or walk[0] != client.db_index:
        slot = _free_slot(server.scans) if not cursor or not slot else slot
        walk = (client.db_index, list(db.keys()))
        server.scans[slot] = walk
        if len(server.scans) > SCAN_SLOTS:
            del server.scans[next(iter(server.scans))]
        if not cursor:
            offset = 0
    names = walk[1]
    batch = [key for key in names[offset : offset + count] if key in db]
    offset += count
    if offset >= len(names):
        server.scans.pop(slot, None)
        next_cursor = 0
    else:
        next_cursor = (offset << _SLOT_BITS) | slot
    if kind is not None and kind != "string":
        batch = []
    batch = _matching(batch, _matcher(pattern))
    return client.encode([str(next_cursor), batch])


def _free_slot(scans: dict[int, tuple[int, list[str]]]) -> int:
    slot = (max(scans, default=0) % ((1 << _SLOT_BITS) - 1)) + 1
    scans.pop(slot, None)
    return slot


# ------------------------------------------------------------ rename / copy


@command(COMMANDS, "rename", 3, "write", (1, 2, 1), group=_G)
def rename(client: Client, argv: list[str]) -> bytes:
    try:
        client.db.rename(argv[1], argv[2])
    except KeyError:
        raise CommandError(_ERR_NO_KEY) from None
    return OK


@command(COMMANDS, "renamenx", 3, "write fast", (1, 2, 1), group=_G)
def renamenx(client: Client, argv: list[str]) -> bytes:
    db = client.db
    if argv[1] not in db:
        raise CommandError(_ERR_NO_KEY)
    if argv[2] in db:
        return ZERO
    db.rename(argv[1], argv[2])
    return ONE


def _db_index(client: Client, text: str) -> int:
    index = parse_int(text)
    if not 0 <= index < len(client.server.keyspaces):
        raise CommandError(ERR_DB_RANGE)
    return index


@command(COMMANDS, "copy", -3, "write denyoom", (1, 2, 1), group=_G, since="6.2.0")
def copy(client: Client, argv: list[str]) -> bytes:
    """COPY source destination [DB index] [REPLACE]: the expiry is copied too."""
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
    db = client.db
    try:
        value, at = db[source], db.expiry_ms(source)
    except KeyError:
        return ZERO
    dest = client.server.keyspaces[target]
    if not replace and destination in dest:
        return ZERO
    if at is None:
        dest.set(destination, value)
    else:
        dest.set(destination, value, expire_at=at / 1000)
    if target != client.db_index and client.server.watched:
        client.server.touch(target, [destination])
    return ONE


@command(COMMANDS, "move", 3, "write fast", _KEY, group=_G)
def move(client: Client, argv: list[str]) -> bytes:
    target = _db_index(client, argv[2])
    if target == client.db_index:
        raise CommandError(_ERR_SAME)
    moved = client.db.move(argv[1], target)
    if moved and client.server.watched:
        client.server.touch(target, [argv[1]])
    return ONE if moved else ZERO


@command(COMMANDS, "swapdb", 3, "write fast", group="server", since="4.0.0")
def swapdb(client: Client, argv: list[str]) -> bytes:
    first = parse_int(argv[1], "ERR invalid first DB index")
    second = parse_int(argv[2], "ERR invalid second DB index")
    count = len(client.server.keyspaces)
    if not (0 <= first < count and 0 <= second < count):
        raise CommandError(ERR_DB_RANGE)
    client.server.store.swap(first, second)
    client.server.touch_db(first)
    client.server.touch_db(second)
    return OK


def _flush_mode(argv: list[str]) -> None:
    if len(argv) > 2 or (len(argv) == 2 and argv[1].lower() not in ("async", "sync")):
        raise CommandError(ERR_SYNTAX)


@command(COMMANDS, "flushdb", -1, "write", group="server")
def flushdb(client: Client, argv: list[str]) -> bytes:
    _flush_mode(argv)
    client.db.clear()
    client.server.touch_db(client.db_index)
    return OK


@command(COMMANDS, "flushall", -1, "write", group="server")
def flushall(client: Client, argv: list[str]) -> bytes:
    _flush_mode(argv)
    client.server.store.flush_all()
    client.server.touch_db(None)
    return OK


# ------------------------------------------------------------------- expiry

_NX, _XX, _GT, _LT = 1, 2, 4, 8
_LLONG_MIN, _LLONG_MAX = -(2**63), 2**63 - 1


def _expire(client: Client, argv: list[str], *, seconds: bool, relative: bool) -> bytes:
    """EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT (Redis's ``expireGenericCommand``)."""
    flags = 0
    for option in argv[3:]:
        bit = {"nx": _NX, "xx": _XX, "gt": _GT, "lt": _LT}.get(option.lower())
        if bit is None:
            raise CommandError(f"ERR Unsupported option {option}")
        flags |= bit
    if flags & _NX and flags & (_XX | _GT | _LT):
        raise CommandError("ERR NX and XX, GT or LT options at the same time are not compatible")
    if flags & _GT and flags & _LT:
        raise CommandError("ERR GT and LT options at the same time are not compatible")
    when = parse_int(argv[2])
    invalid = f"ERR invalid expire time in '{argv[0].lower()}' command"
    if seconds:
        if not _LLONG_MIN // 1000 <= when <= _LLONG_MAX // 1000:
            raise CommandError(invalid)
        when *= 1000
    now = client.server.store.now_ms()
    if relative:
        if when > _LLONG_MAX - now:
            raise CommandError(invalid)
        when += now
    db = client.db
    key = argv[1]
    try:
        current = db.expiry_ms(key)
    except KeyError:
        return ZERO
    if (
        (flags & _NX and current is not None)
        or (flags & _XX and current is None)
        or (flags & _GT and (current is None or when <= current))
        or (flags & _LT and current is not None and when >= current)
    ):
        return ZERO
    if when <= now:
        db.delete(key)
    else:
        db.expire_at(key, when / 1000)
    return ONE


@command(COMMANDS, "expire", -3, "write fast", _KEY, group=_G)
def expire(client: Client, argv: list[str]) -> bytes:
    return _expire(client, argv, seconds=True, relative=True)


@command(COMMANDS, "pexpire", -3, "write fast", _KEY, group=_G, since="2.6.0")
def pexpire(client: Client, argv: list[str]) -> bytes:
    return _expire(client, argv, seconds=False, relative=True)


@command(COMMANDS, "expireat", -3, "write fast", _KEY, group=_G, since="1.2.0")
def expireat(client: Client, argv: list[str]) -> bytes:
    return _expire(client, argv, seconds=True, relative=False)


@command(COMMANDS, "pexpireat", -3, "write fast", _KEY, group=_G, since="2.6.0")
def pexpireat(client: Client, argv: list[str]) -> bytes:
    return _expire(client, argv, seconds=False, relative=False)


def _expiry(client: Client, key: str) -> int | None:
    """The key's expiry in ms; -2 (as an int) when the key is missing."""
    try:
        return client.db.expiry_ms(key)
    except KeyError:
        return -2


@command(COMMANDS, "ttl", 2, "readonly fast", _KEY, group=_G)
def ttl(client: Client, argv: list[str]) -> bytes:
    at = _expiry(client, argv[1])
    if at is None or at == -2:
        return integer(-1 if at is None else -2)
    return integer((max(at - client.server.store.now_ms(), 0) + 500) // 1000)


@command(COMMANDS, "pttl", 2, "readonly fast", _KEY, group=_G, since="2.6.0")
def pttl(client: Client, argv: list[str]) -> bytes:
    at = _expiry(client, argv[1])
    if at is None or at == -2:
        return integer(-1 if at is None else -2)
    return integer(max(at - client.server.store.now_ms(), 0))


@command(COMMANDS, "expiretime", 2, "readonly fast", _KEY, group=_G, since="7.0.0")
def expiretime(client: Client, argv: list[str]) -> bytes:
    at = _expiry(client, argv[1])
    if at is None or at == -2:
        return integer(-1 if at is None else -2)
    return integer(at // 1000)


@command(COMMANDS, "pexpiretime", 2, "readonly fast", _KEY, group=_G, since="7.0.0")
def pexpiretime(client: Client, argv: list[str]) -> bytes:
    at = _expiry(client, argv[1])
    return integer(-1 if at is None else at)


@command(COMMANDS, "persist", 2, "write fast", _KEY, group=_G, since="2.2.0")
def persist(client: Client, argv: list[str]) -> bytes:
    return ONE if client.db.persist(argv[1]) else ZERO
