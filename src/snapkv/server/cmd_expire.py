"""Expiry commands: EXPIRE PEXPIRE EXPIREAT PEXPIREAT (NX XX GT LT), TTL PTTL, PERSIST.

As Redis's ``expireGenericCommand``: an expiry time already in the past
deletes the key at once (it could never be read again), and every time is
checked against 64-bit overflow in milliseconds before it is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from snapkv.server.notify import NOTIFY_GENERIC, missed, written
from snapkv.server.resp.writer import ONE, ZERO, integer
from snapkv.server.table import CommandError, command, parse_int

if TYPE_CHECKING:
    from snapkv.server.client import Client

__all__: list[str] = []

_G = "generic"
_KEY = (1, 1, 1)

_NX, _XX, _GT, _LT = 1, 2, 4, 8
_LLONG_MIN, _LLONG_MAX = -(2**63), 2**63 - 1
# C's LLONG_MIN / 1000 truncates toward zero; Python's // would floor one lower.
_MIN_SECONDS, _MAX_SECONDS = -(-_LLONG_MIN // 1000), _LLONG_MAX // 1000


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
        if not _MIN_SECONDS <= when <= _MAX_SECONDS:
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
        written(client, NOTIFY_GENERIC, "del", key)
    else:
        db.expire_at(key, when / 1000)
        written(client, NOTIFY_GENERIC, "expire", key)
    client.changes += 1
    return ONE


@command("expire", -3, "write fast", keys=_KEY, group=_G)
def expire(client: Client, argv: list[str]) -> bytes:
    return _expire(client, argv, seconds=True, relative=True)


@command("pexpire", -3, "write fast", keys=_KEY, group=_G, since="2.6.0")
def pexpire(client: Client, argv: list[str]) -> bytes:
    return _expire(client, argv, seconds=False, relative=True)


@command("expireat", -3, "write fast", keys=_KEY, group=_G, since="1.2.0")
def expireat(client: Client, argv: list[str]) -> bytes:
    return _expire(client, argv, seconds=True, relative=False)


@command("pexpireat", -3, "write fast", keys=_KEY, group=_G, since="2.6.0")
def pexpireat(client: Client, argv: list[str]) -> bytes:
    return _expire(client, argv, seconds=False, relative=False)


def _expiry(client: Client, key: str) -> int | None:
    """The key's expiry in ms; -2 (as an int) when the key is missing."""
    try:
        return client.db.expiry_ms(key)
    except KeyError:
        missed(client, key)
        return -2


@command("ttl", 2, "readonly fast", keys=_KEY, group=_G)
def ttl(client: Client, argv: list[str]) -> bytes:
    at = _expiry(client, argv[1])
    if at is None or at == -2:
        return integer(-1 if at is None else -2)
    return integer((max(at - client.server.store.now_ms(), 0) + 500) // 1000)


@command("pttl", 2, "readonly fast", keys=_KEY, group=_G, since="2.6.0")
def pttl(client: Client, argv: list[str]) -> bytes:
    at = _expiry(client, argv[1])
    if at is None or at == -2:
        return integer(-1 if at is None else -2)
    return integer(max(at - client.server.store.now_ms(), 0))


@command("expiretime", 2, "readonly fast", keys=_KEY, group=_G, since="7.0.0")
def expiretime(client: Client, argv: list[str]) -> bytes:
    at = _expiry(client, argv[1])
    if at is None or at == -2:
        return integer(-1 if at is None else -2)
    return integer((at + 500) // 1000)  # rounded, as Redis 7.0 answers (expire.c)


@command("pexpiretime", 2, "readonly fast", keys=_KEY, group=_G, since="7.0.0")
def pexpiretime(client: Client, argv: list[str]) -> bytes:
    at = _expiry(client, argv[1])
    return integer(-1 if at is None else at)


@command("persist", 2, "write fast", keys=_KEY, group=_G, since="2.2.0")
def persist(client: Client, argv: list[str]) -> bytes:
    if client.db.persist(argv[1]):
        client.changes += 1
        written(client, NOTIFY_GENERIC, "persist", argv[1])
        return ONE
    return ZERO
