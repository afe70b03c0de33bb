"""String commands: GET SET (and friends), counters, ranges.

Lengths and offsets (STRLEN, APPEND, GETRANGE, SETRANGE) count the value's
bytes on the wire, not Python characters: a value is the ``str`` its bytes
decode to with UTF-8 and ``surrogateescape``, so slicing the encoded bytes
and decoding the slice again is exact even when it cuts a character.

A string command on a key that holds a hash, list, set or sorted set
answers WRONGTYPE and changes nothing: the keyspace's ``get`` and ``pop``
raise ``WrongTypeError`` before anything is written,
and the server replies with Redis's text. MGET reads such a key as nil;
SET (without GET), SETEX, PSETEX, MSET and MSETNX replace a key of any
type, as in Redis.

INCRBYFLOAT computes with Python floats (IEEE double) and prints the
shortest decimal that reads back as the same double, never an exponent;
Redis uses C's ``long double``, so the last digits can differ (Redis's
``5010.60000000000000009`` is ``5010.6`` here).
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

from snapkv.server.notify import (
    NOTIFY_EXPIRED,
    NOTIFY_GENERIC,
    NOTIFY_STRING,
    created,
    created_each,
    missed,
    notify,
    written,
    written_each,
)
from snapkv.server.resp.text import byte_len, to_bytes, to_text
from snapkv.server.resp.writer import EMPTY_BULK, OK, ONE, ZERO, bulk, integer
from snapkv.server.table import ERR_SYNTAX, CommandError, command, parse_int
from snapkv.values import hashes

if TYPE_CHECKING:
    from snapkv.server.client import Client

__all__ = ["format_float"]

_LLONG_MIN, _LLONG_MAX = -(2**63), 2**63 - 1
_S = "string"
_KEY = (1, 1, 1)
_ERR_OVERFLOW = "ERR increment or decrement would overflow"
_ERR_TOO_BIG = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
# One way to read each float (no "\d+\.?\d*", whose two runs of digits can
# split a long number in quadratically many ways before failing).
_FLOAT = re.compile(
    r"[+-]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity)", re.IGNORECASE | re.ASCII
)
#: Redis's ``MAX_LONG_DOUBLE_CHARS``: ``string2ld`` refuses a float this long or longer.
_MAX_FLOAT_CHARS = 5 * 1024

# SET/GETEX option bits, as Redis's OBJ_SET_* flags.
_NX, _XX, _GET, _KEEPTTL, _PERSIST = 1, 2, 4, 8, 16
_EX, _PX, _EXAT, _PXAT = 32, 64, 128, 256
_EXPIRY = _EX | _PX | _EXAT | _PXAT


def _parse_options(argv: list[str], *, is_set: bool) -> tuple[int, str | None]:
    """Redis's ``parseExtendedStringArgumentsOrReply``: option bits and the expiry argument."""
    flags = 0
    expire: str | None = None
    j, n = 3 if is_set else 2, len(argv)
    while j < n:
        opt = argv[j].lower()
        has_next = j + 1 < n
        if opt == "nx" and not flags & _XX and is_set:
            flags |= _NX
        elif opt == "xx" and not flags & _NX and is_set:
            flags |= _XX
        elif opt == "get" and is_set:
            flags |= _GET
        elif opt == "keepttl" and not flags & (_PERSIST | _EXPIRY) and is_set:
            flags |= _KEEPTTL
        elif opt == "persist" and not is_set and not flags & (_EXPIRY | _KEEPTTL):
            flags |= _PERSIST
        elif (
            opt in _UNITS
            and has_next
            and not flags & (_KEEPTTL | _PERSIST | _EXPIRY & ~_UNITS[opt])
        ):
            flags |= _UNITS[opt]
            expire = argv[j + 1]
            j += 1
        else:
            raise CommandError(ERR_SYNTAX)
        j += 1
    return flags, expire


_UNITS = {"ex": _EX, "px": _PX, "exat": _EXAT, "pxat": _PXAT}


def _expire_ms(client: Client, text: str, flags: int, name: str) -> int:
    """Absolute expiry in ms from an EX/PX/EXAT/PXAT argument (``getExpireMillisecondsOrReply``)."""
    ms = parse_int(text)
    seconds = bool(flags & (_EX | _EXAT))
    if ms <= 0 or (seconds and ms > _LLONG_MAX // 1000):
        raise CommandError(f"ERR invalid expire time in '{name}' command")
    if seconds:
        ms *= 1000
    if flags & (_EX | _PX):
        ms += client.server.store.now_ms()
        if ms > _LLONG_MAX:
            raise CommandError(f"ERR invalid expire time in '{name}' command")
    return ms


def _store_value(client: Client, key: str, value: str, at: int | None, keep_ttl: bool) -> None:
    """Set ``key``; an expiry already in the past deletes it instead (it would be invisible).

    One change either way, as Redis's ``setGenericCommand`` counts it.
    """
    client.changes += 1
    db = client.db
    new = created(client, key)
    if at is None:
        if keep_ttl:
            db.set(key, value, keep_ttl=True)
        else:
            db.set(key, value)
        written(client, NOTIFY_STRING, "set", key, new)
        return
    if at <= client.server.store.now_ms():
        db.delete(key)
    else:
        db.set(key, value, expire_at=at / 1000)
    # Redis sets the key with its expiry, then finds it expired at once.
    written(client, NOTIFY_STRING, "set", key, new)
    written(client, NOTIFY_GENERIC, "expire", key)
    if at <= client.server.store.now_ms():
        notify(client, NOTIFY_EXPIRED, "expired", key, client.db_index)


# ------------------------------------------------------------------ get / set


@command("get", 2, "readonly fast", keys=_KEY, group=_S, summary="Get the value of a key")
def get(client: Client, argv: list[str]) -> bytes:
    value = client.db.get(argv[1])
    if value is None:
        missed(client, argv[1])
        return client.null
    data = to_bytes(value)
    return b"$%d\r\n%s\r\n" % (len(data), data)


@command("set", -3, "write denyoom", keys=_KEY, group=_S, summary="Set a key's value")
def set_(client: Client, argv: list[str]) -> bytes:
    """SET key value [NX|XX] [GET] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL]."""
    if len(argv) == 3:
        if client.server.config.notify_keyspace_events:  # the hot path checks inline
            _store_value(client, argv[1], argv[2], None, False)
            return OK
        client.db.set(argv[1], argv[2])
        client.changes += 1
        return OK
    flags, expire = _parse_options(argv, is_set=True)
    at = _expire_ms(client, expire, flags, "set") if expire is not None else None
    key = argv[1]
    db = client.db
    # Only GET reads the old value (WRONGTYPE for another type); NX and XX
    # just ask whether the key exists, whatever it holds, as Redis does.
    old = db.get(key) if flags & _GET else None
    if flags & _GET and old is None:
        missed(client, key)
    found = old is not None or key in db
    if (flags & _NX and found) or (flags & _XX and not found):
        return client.bulk_or_null(old) if flags & _GET else client.null
    _store_value(client, key, argv[2], at, bool(flags & _KEEPTTL))
    return client.bulk_or_null(old) if flags & _GET else OK


@command("setnx", 3, "write denyoom fast", keys=_KEY, group=_S)
def setnx(client: Client, argv: list[str]) -> bytes:
    db = client.db
    if argv[1] in db:
        return ZERO
    new = created(client, argv[1])
    db.set(argv[1], argv[2])
    client.changes += 1
    written(client, NOTIFY_STRING, "set", argv[1], new)
    return ONE


@command("setex", 4, "write denyoom", keys=_KEY, group=_S)
def setex(client: Client, argv: list[str]) -> bytes:
    _store_value(client, argv[1], argv[3], _expire_ms(client, argv[2], _EX, "setex"), False)
    return OK


@command("psetex", 4, "write denyoom", keys=_KEY, group=_S)
def psetex(client: Client, argv: list[str]) -> bytes:
    _store_value(client, argv[1], argv[3], _expire_ms(client, argv[2], _PX, "psetex"), False)
    return OK


@command("getset", 3, "write denyoom fast", keys=_KEY, group=_S, since="1.0.0")
def getset(client: Client, argv: list[str]) -> bytes:
    db = client.db
    new = created(client, argv[1])
    old = db.get(argv[1])
    if old is None:
        missed(client, argv[1])
    db.set(argv[1], argv[2])
    client.changes += 1
    written(client, NOTIFY_STRING, "set", argv[1], new)
    return client.bulk_or_null(old)


@command("getdel", 2, "write fast", keys=_KEY, group=_S, since="6.2.0")
def getdel(client: Client, argv: list[str]) -> bytes:
    old = client.db.pop(argv[1], None)
    if old is None:
        missed(client, argv[1])
    else:
        client.changes += 1
        written(client, NOTIFY_GENERIC, "del", argv[1])
    return client.bulk_or_null(old)


@command("getex", -2, "write fast", keys=_KEY, group=_S, since="6.2.0")
def getex(client: Client, argv: list[str]) -> bytes:
    """GETEX key [EX s|PX ms|EXAT t|PXAT t|PERSIST]."""
    flags, expire = _parse_options(argv, is_set=False)
    db = client.db
    key = argv[1]
    value = db.get(key)  # as Redis: a missing key or another type before the expiry's check
    if value is None:
        missed(client, key)
        return client.null
    at = _expire_ms(client, expire, flags, "getex") if expire is not None else None
    if at is not None:
        if at > client.server.store.now_ms():
            db.expire_at(key, at / 1000)
            written(client, NOTIFY_GENERIC, "expire", key)
        else:
            db.delete(key)
            written(client, NOTIFY_GENERIC, "del", key)
        client.changes += 1
    elif flags & _PERSIST and db.persist(key):
        client.changes += 1
        written(client, NOTIFY_GENERIC, "persist", key)
    return bulk(value)


@command("mget", -2, "readonly fast", keys=(1, -1, 1), group=_S)
def mget(client: Client, argv: list[str]) -> bytes:
    """MGET: a key of another type reads as nil, as in Redis (never WRONGTYPE)."""
    get_ = client.db.get
    null = client.null
    out = [b"*%d\r\n" % (len(argv) - 1)]
    for key in argv[1:]:
        try:
            value = get_(key)
        except TypeError:  # WrongTypeError: the only TypeError get() raises for a str key
            value = None
        if value is None:
            missed(client, key)  # a key of another type is no miss: missed() looks
            out.append(null)
        else:
            out.append(bulk(value))
    return b"".join(out)


def _pairs(argv: list[str], name: str) -> dict[str, str]:
    if len(argv) % 2 == 0:
        raise CommandError(f"ERR wrong number of arguments for '{name}' command")
    return dict(zip(argv[1::2], argv[2::2], strict=True))


@command("mset", -3, "write denyoom", keys=(1, -1, 2), group=_S)
def mset(client: Client, argv: list[str]) -> bytes:
    pairs = _pairs(argv, "mset")
    events = created_each(client, argv[1::2])
    client.db.update(pairs)
    client.changes += (len(argv) - 1) // 2  # a repeated key counts twice, as in Redis
    written_each(client, NOTIFY_STRING, "set", events)
    return OK


@command("msetnx", -3, "write denyoom", keys=(1, -1, 2), group=_S)
def msetnx(client: Client, argv: list[str]) -> bytes:
    pairs = _pairs(argv, "msetnx")
    db = client.db
    if any(key in db for key in pairs):
        return ZERO
    events = created_each(client, argv[1::2])
    db.update(pairs)
    client.changes += (len(argv) - 1) // 2
    written_each(client, NOTIFY_STRING, "set", events)
    return ONE


# ------------------------------------------------------------------ lengths


@command("append", 3, "write denyoom fast", keys=_KEY, group=_S, since="2.0.0")
def append(client: Client, argv: list[str]) -> bytes:
    db = client.db
    old = db.get(argv[1])
    client.changes += 1  # even appending "", as Redis's appendCommand
    if old is None:
        new = created(client, argv[1])
        db.set(argv[1], argv[2])
        written(client, NOTIFY_STRING, "append", argv[1], new)
        return integer(byte_len(argv[2]))
    size = byte_len(old) + byte_len(argv[2])
    if size > client.server.config.proto_max_bulk_len:
        raise CommandError(_ERR_TOO_BIG)
    db.set(argv[1], old + argv[2], keep_ttl=True)
    written(client, NOTIFY_STRING, "append", argv[1])
    return integer(size)


@command("strlen", 2, "readonly fast", keys=_KEY, group=_S, since="2.2.0")
def strlen(client: Client, argv: list[str]) -> bytes:
    value = client.db.get(argv[1])
    if value is None:
        missed(client, argv[1])
        return ZERO
    return integer(byte_len(value))


@command("getrange", 4, "readonly", keys=_KEY, group=_S, since="2.4.0")
@command("substr", 4, "readonly", keys=_KEY, group=_S, since="1.0.0")
def getrange(client: Client, argv: list[str]) -> bytes:
    start, end = parse_int(argv[2]), parse_int(argv[3])
    value = client.db.get(argv[1])
    if value is None:
        missed(client, argv[1])
        return EMPTY_BULK
    data = to_bytes(value)
    size = len(data)
    if start < 0 and end < 0 and start > end:
        return EMPTY_BULK
    if start < 0:
        start = max(size + start, 0)
    if end < 0:
        end = max(size + end, 0)
    end = min(end, size - 1)
    if start > end or size == 0:
        return EMPTY_BULK
    return bulk(data[start : end + 1])


@command("setrange", 4, "write denyoom", keys=_KEY, group=_S, since="2.2.0")
def setrange(client: Client, argv: list[str]) -> bytes:
    offset = parse_int(argv[2])
    if offset < 0:
        raise CommandError("ERR offset is out of range")
    db = client.db
    key, patch = argv[1], to_bytes(argv[3])
    old = db.get(key)
    if not patch:
        return ZERO if old is None else integer(byte_len(old))
    if offset + len(patch) > client.server.config.proto_max_bulk_len:
        raise CommandError(_ERR_TOO_BIG)
    data = b"" if old is None else to_bytes(old)
    if len(data) < offset:
        data += b"\0" * (offset - len(data))
    data = data[:offset] + patch + data[offset + len(patch) :]
    new = old is None and created(client, key)
    if old is None:
        db.set(key, to_text(data))
    else:
        db.set(key, to_text(data), keep_ttl=True)
    client.changes += 1
    written(client, NOTIFY_STRING, "setrange", key, new)
    return integer(len(data))


# ----------------------------------------------------------------- counters


def _incr(client: Client, key: str, by: int) -> bytes:
    db = client.db
    old = db.get(key)
    value = 0 if old is None else parse_int(old)
    value += by
    if not _LLONG_MIN <= value <= _LLONG_MAX:
        raise CommandError(_ERR_OVERFLOW)
    text = str(value)
    new = old is None and created(client, key)
    if old is None:
        db.set(key, text)
    else:
        db.set(key, text, keep_ttl=True)  # as Redis: a counter keeps its expiry
    client.changes += 1
    written(client, NOTIFY_STRING, "incrby", key, new)
    return b":%s\r\n" % text.encode()


@command("incr", 2, "write denyoom fast", keys=_KEY, group=_S)
def incr(client: Client, argv: list[str]) -> bytes:
    return _incr(client, argv[1], 1)


@command("decr", 2, "write denyoom fast", keys=_KEY, group=_S)
def decr(client: Client, argv: list[str]) -> bytes:
    return _incr(client, argv[1], -1)


@command("incrby", 3, "write denyoom fast", keys=_KEY, group=_S)
def incrby(client: Client, argv: list[str]) -> bytes:
    return _incr(client, argv[1], parse_int(argv[2]))


@command("decrby", 3, "write denyoom fast", keys=_KEY, group=_S)
def decrby(client: Client, argv: list[str]) -> bytes:
    by = parse_int(argv[2])
    if by == _LLONG_MIN:
        raise CommandError("ERR decrement would overflow")
    return _incr(client, argv[1], -by)


def _parse_float(text: str) -> float:
    """A float as Redis's ``string2ld`` reads it (no spaces, no NaN, under 5 KB); else an error."""
    if len(text) >= _MAX_FLOAT_CHARS or not _FLOAT.fullmatch(text):
        raise CommandError("ERR value is not a valid float")
    return float(text)


#: Shortest decimal that reads back as the value, without an exponent (Redis's
#: human form), the rule HINCRBYFLOAT uses too: written once, in values.hashes.
format_float = hashes.human_float


@command("incrbyfloat", 3, "write denyoom fast", keys=_KEY, group=_S, since="2.6.0")
def incrbyfloat(client: Client, argv: list[str]) -> bytes:
    db = client.db
    key = argv[1]
    old = db.get(key)
    by = _parse_float(argv[2])
    value = (0.0 if old is None else _parse_float(old)) + by
    if math.isnan(value) or math.isinf(value):
        raise CommandError("ERR increment would produce NaN or Infinity")
    text = format_float(value)
    new = old is None and created(client, key)
    if old is None:
        db.set(key, text)
    else:
        db.set(key, text, keep_ttl=True)
    client.changes += 1
    written(client, NOTIFY_STRING, "incrbyfloat", key, new)
    return bulk(text)
