"""Keyspace commands: DEL EXISTS TYPE KEYS SCAN RENAME COPY MOVE RANDOMKEY DBSIZE SWAPDB.

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
from typing import TYPE_CHECKING

from snapkv.server.resp.writer import OK, ONE, ZERO, integer
from snapkv.server.table import ERR_DB_RANGE, ERR_SYNTAX, CommandError, command, parse_int

if TYPE_CHECKING:
    from snapkv.server.client import Client

__all__ = ["SCAN_SLOTS", "glob_matches", "glob_to_regex"]

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


@command("del", -2, "write", keys=_ALL, group=_G, summary="Delete keys")
@command("unlink", -2, "write fast", keys=_ALL, group=_G, since="4.0.0")
def del_(client: Client, argv: list[str]) -> bytes:
    delete = client.db.delete
    return integer(sum(delete(key) for key in argv[1:]))


@command("exists", -2, "readonly fast", keys=_ALL, group=_G)
@command("touch", -2, "readonly fast", keys=_ALL, group=_G, since="3.2.1")
def exists(client: Client, argv: list[str]) -> bytes:
    db = client.db
    return integer(sum(key in db for key in argv[1:]))


@command("type", 2, "readonly fast", keys=_KEY, group=_G)
def type_(client: Client, argv: list[str]) -> bytes:
    return _STRING if argv[1] in client.db else _NONE


@command("keys", 2, "readonly", group=_G, summary="Keys matching a pattern")
def keys(client: Client, argv: list[str]) -> bytes:
    return client.encode(_matching(list(client.db.keys()), _matcher(argv[1])))


@command("randomkey", 1, "readonly", group=_G)
def randomkey(client: Client, argv: list[str]) -> bytes:
    return client.bulk_or_null(client.db.random_key())


@command("dbsize", 1, "readonly fast", group="server")
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


@command("rename", 3, "write", keys=(1, 2, 1), group=_G)
def rename(client: Client, argv: list[str]) -> bytes:
    try:
        client.db.rename(argv[1], argv[2])
    except KeyError:
        raise CommandError(_ERR_NO_KEY) from None
    return OK


@command("renamenx", 3, "write fast", keys=(1, 2, 1), group=_G)
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


@command("copy", -3, "write denyoom", keys=(1, 2, 1), group=_G, since="6.2.0")
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


@command("move", 3, "write fast", keys=_KEY, group=_G)
def move(client: Client, argv: list[str]) -> bytes:
    target = _db_index(client, argv[2])
    if target == client.db_index:
        raise CommandError(_ERR_SAME)
    moved = client.db.move(argv[1], target)
    if moved and client.server.watched:
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
    client.server.touch_db(first)
    client.server.touch_db(second)
    return OK
