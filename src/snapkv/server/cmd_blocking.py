"""Blocking pops (Redis 7.0's ``t_list.c`` and ``t_zset.c`` with ``blocking.c``): BLPOP ... BZMPOP.

Each command first does what its plain form does, with the plain form's
own code (:func:`~snapkv.server.cmd_list.pop_first`,
:func:`~snapkv.server.cmd_list.move`,
:func:`~snapkv.server.cmd_zset_store.pop`: the reply, the journal record,
the keyspace events): the first of its keys, in argument order, that holds
a value is popped at once. A key of the wrong type met before it is
WRONGTYPE. Only when every key is missing does the client wait, through
:mod:`snapkv.server.blocking`, which serves it with that same code once a
write gives one of its keys a value.

Inside MULTI (EXEC's block) or a script a client never waits (Redis's
``CLIENT_DENY_BLOCKING``): the command answers a null at once, whatever
the timeout (a null array, BLMOVE's a null bulk; a wait that times out
answers a null array, BLMOVE's too, as Redis 7.0 does).

The timeout is seconds as a float, read as Redis 7.0's
``getTimeoutFromObjectOrReply`` does with C's ``strtold``: decimal or
hexadecimal, ``inf`` accepted (and, as C converts it to a 64-bit integer,
refused as negative), no spaces; milliseconds rounded up, so any positive
timeout waits at least one; 0 waits forever.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import TYPE_CHECKING, Final

from snapkv.errors import WrongTypeError
from snapkv.server.blocking import Serve, registry
from snapkv.server.cmd_list import move, parse_end, parse_mpop, pop_first
from snapkv.server.cmd_zset_store import parse_zmpop, pop
from snapkv.server.state import WRONGTYPE
from snapkv.server.table import CommandError, command, numkeys_at

if TYPE_CHECKING:
    from snapkv.server.client import Client

__all__ = ["parse_timeout"]

_L, _Z = "list", "sorted-set"
_ALL_BUT_LAST = (1, -2, 1)
_TWO = (1, 2, 1)
_ERR_FLOAT: Final = "ERR timeout is not a float or out of range"
_ERR_NEGATIVE: Final = "ERR timeout is negative"
#: What C's ``strtold`` reads whole: a decimal (with ``inf``/``infinity``)
#: or a hexadecimal float. (``nan`` it reads too, and Redis refuses it.)
_DECIMAL = re.compile(
    r"[+-]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?|inf|infinity)", re.IGNORECASE | re.ASCII
)
_HEX = re.compile(
    r"[+-]?0x(?:[0-9a-f]+(?:\.[0-9a-f]*)?|\.[0-9a-f]+)(?:p[+-]?\d+)?", re.IGNORECASE | re.ASCII
)
#: Redis's ``MAX_LONG_DOUBLE_CHARS``: ``string2ld`` refuses a longer text.
_MAX_FLOAT_CHARS = 5 * 1024
#: A ``long double``'s decimal exponents: beyond them ``strtold`` overflows
#: or underflows to zero (``ERANGE``), which ``string2ld`` refuses.
_LDBL_MAX_EXP10, _LDBL_MIN_EXP10 = 4932, -4951
_LLONG_MIN, _LLONG_MAX = -(2**63), 2**63 - 1


def parse_timeout(text: str) -> int:
    """A blocking command's timeout in milliseconds (0: forever), or Redis 7.0's refusal."""
    if text.isdigit() and text.isascii() and len(text) < 16:  # whole seconds: the usual case
        return int(text) * 1000
    if len(text) >= _MAX_FLOAT_CHARS:
        raise CommandError(_ERR_FLOAT)
    if _DECIMAL.fullmatch(text):
        seconds = Decimal(text)
        if seconds.is_finite() and seconds:
            exponent = seconds.adjusted()
            if not _LDBL_MIN_EXP10 <= exponent <= _LDBL_MAX_EXP10:
                raise CommandError(_ERR_FLOAT)
    elif _HEX.fullmatch(text):
        try:
            seconds = Decimal(float.fromhex(text))
        except OverflowError:
            raise CommandError(_ERR_NEGATIVE) from None  # a long double, then LLONG_MIN
    else:
        raise CommandError(_ERR_FLOAT)
    if not seconds.is_finite():
        # (long long) of an infinite long double is LLONG_MIN in C on x86: negative.
        raise CommandError(_ERR_NEGATIVE)
    milliseconds = math.ceil(seconds.scaleb(3))
    if not _LLONG_MIN <= milliseconds <= _LLONG_MAX or milliseconds < 0:
        raise CommandError(_ERR_NEGATIVE)
    return milliseconds


def _wait(
    client: Client,
    argv: list[str],
    keys: list[str],
    kind: str,
    serve: Serve,
    *,
    timeout_ms: int,
    denied: bytes | None = None,
) -> bytes:
    """Block ``client`` on ``keys``; where it may not block, answer ``denied`` at once.

    A wait that times out (or CLIENT UNBLOCK ... TIMEOUT) answers a null
    array, whatever the command: Redis's ``replyToBlockedClientTimedOut``,
    BLMOVE's included. ``denied`` (default the same) is what the command
    answers inside MULTI or a script: BLMOVE's there is a null bulk.
    """
    if client.scripting or client.server.store.in_transaction:
        return client.null_array if denied is None else denied
    return registry(client.server).block(
        client, argv, keys, kind, serve, timeout_ms=timeout_ms, timeout_reply=client.null_array
    )


# -------------------------------------------------------------------- lists


def _serve_pop(client: Client, left: bool, count: int, nested: bool) -> Serve:
    def serve(key: str) -> tuple[bytes, list[str]] | None:
        reply = pop_first(client, [key], left, count, nested=nested)
        return None if reply is None else (reply, [key])

    return serve


def _blocking_pop(client: Client, argv: list[str], left: bool) -> bytes:
    timeout = parse_timeout(argv[-1])
    keys = argv[1:-1]
    reply = pop_first(client, keys, left, 1, nested=False)
    if reply is not None:
        return reply
    serve = _serve_pop(client, left, 1, False)
    return _wait(client, argv, keys, "list", serve, timeout_ms=timeout)


@command("blpop", -3, "write noscript blocking", keys=_ALL_BUT_LAST, group=_L, since="2.0.0")
def blpop(client: Client, argv: list[str]) -> bytes:
    """BLPOP key [key ...] timeout: ``[key, element]`` from the head of the first list."""
    return _blocking_pop(client, argv, True)


@command("brpop", -3, "write noscript blocking", keys=_ALL_BUT_LAST, group=_L, since="2.0.0")
def brpop(client: Client, argv: list[str]) -> bytes:
    """BRPOP key [key ...] timeout: ``[key, element]`` from the tail of the first list."""
    return _blocking_pop(client, argv, False)


@command("blmpop", -5, "write blocking", group=_L, since="7.0.0", find_keys=numkeys_at(2))
def blmpop(client: Client, argv: list[str]) -> bytes:
    """BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]: ``[key, [elements]]``.

    The arguments after the timeout are checked first, as Redis does.
    """
    keys, left, count = parse_mpop(argv, 2)
    timeout = parse_timeout(argv[1])
    reply = pop_first(client, keys, left, count, nested=True)
    if reply is not None:
        return reply
    serve = _serve_pop(client, left, count, True)
    return _wait(client, argv, keys, "list", serve, timeout_ms=timeout)


def _blocking_move(
    client: Client, argv: list[str], from_left: bool, to_left: bool, timeout: int
) -> bytes:
    """Redis's ``blmoveGenericCommand``: only the source is looked at before waiting."""
    source, destination = argv[1], argv[2]
    if client.db.lists[source].exists():  # WrongTypeError for a source of another type
        return move(client, source, destination, from_left, to_left)

    def serve(key: str) -> tuple[bytes, list[str]] | None:
        try:
            reply = move(client, key, destination, from_left, to_left)
        except WrongTypeError:
            # Redis 7.0 answers the waiting client WRONGTYPE and moves nothing.
            return WRONGTYPE, []
        return None if reply == client.null else (reply, [key, destination])

    return _wait(client, argv, [source], "list", serve, timeout_ms=timeout, denied=client.null)


@command("blmove", 6, "write denyoom noscript blocking", keys=_TWO, group=_L, since="6.2.0")
def blmove(client: Client, argv: list[str]) -> bytes:
    """BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout: the element moved."""
    from_left, to_left = parse_end(argv[3]), parse_end(argv[4])
    return _blocking_move(client, argv, from_left, to_left, parse_timeout(argv[5]))


@command("brpoplpush", 4, "write denyoom noscript blocking", keys=_TWO, group=_L, since="2.2.0")
def brpoplpush(client: Client, argv: list[str]) -> bytes:
    """BRPOPLPUSH source destination timeout: BLMOVE ... RIGHT LEFT."""
    return _blocking_move(client, argv, False, True, parse_timeout(argv[3]))


# -------------------------------------------------------------- sorted sets


def _serve_zpop(client: Client, highest: bool, count: int, nested: bool) -> Serve:
    def serve(key: str) -> tuple[bytes, list[str]] | None:
        reply = pop(
            client, [key], highest, count, emit_key=True, nested=nested, nil_when_empty=False
        )
        return None if reply is None else (reply, [key])

    return serve


def _blocking_zpop(
    client: Client,
    argv: list[str],
    keys: list[str],
    *,
    highest: bool,
    count: int,
    nested: bool,
    timeout: int,
) -> bytes:
    """Redis's ``blockingGenericZpopCommand``."""
    reply = pop(client, keys, highest, count, emit_key=True, nested=nested, nil_when_empty=False)
    if reply is not None:
        return reply
    serve = _serve_zpop(client, highest, count, nested)
    return _wait(client, argv, keys, "zset", serve, timeout_ms=timeout)


@command(
    "bzpopmin", -3, "write noscript blocking fast", keys=_ALL_BUT_LAST, group=_Z, since="5.0.0"
)
def bzpopmin(client: Client, argv: list[str]) -> bytes:
    """BZPOPMIN key [key ...] timeout: ``[key, member, score]`` of the first sorted set."""
    timeout = parse_timeout(argv[-1])
    return _blocking_zpop(
        client, argv, argv[1:-1], highest=False, count=-1, nested=False, timeout=timeout
    )


@command(
    "bzpopmax", -3, "write noscript blocking fast", keys=_ALL_BUT_LAST, group=_Z, since="5.0.0"
)
def bzpopmax(client: Client, argv: list[str]) -> bytes:
    """BZPOPMAX key [key ...] timeout: ``[key, member, score]`` of the first sorted set."""
    timeout = parse_timeout(argv[-1])
    return _blocking_zpop(
        client, argv, argv[1:-1], highest=True, count=-1, nested=False, timeout=timeout
    )


@command("bzmpop", -5, "write blocking", group=_Z, since="7.0.0", find_keys=numkeys_at(2))
def bzmpop(client: Client, argv: list[str]) -> bytes:
    """BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]: ``[key, [[member, score]]]``."""
    keys, highest, count = parse_zmpop(argv, 2)
    timeout = parse_timeout(argv[1])
    return _blocking_zpop(
        client, argv, keys, highest=highest, count=count, nested=True, timeout=timeout
    )
