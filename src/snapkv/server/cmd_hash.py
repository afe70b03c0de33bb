"""Hash commands (Redis's t_hash.c): HSET ... HSCAN, and the container SCANs' shared walk.

Handlers reach a hash through its view (``client.db.hashes[key]``); a key
of another type raises WrongTypeError, which the dispatcher answers with
Redis's ``WRONGTYPE`` reply. ``client.changes`` counts what Redis's
``server.dirty`` counts: HSET/HMSET the pairs given, HDEL the fields
removed, HSETNX and the counters one when they write.

Reply order: a small hash (Redis's listpack, see
:func:`snapkv.values.hashes.compact`) keeps insertion order in Redis, as a
Python dict does, so HGETALL, HKEYS, HVALS and HSCAN answer byte for byte
what Redis does for one; a larger one is unordered in both.

HSCAN and SSCAN share :func:`scan_reply`, so SSCAN is declared here (in
the set group): a family module imports no other, and the walk is one
piece of code. The walk is stateless: elements are ordered by the CRC-32 of
their bytes, the cursor is the hash value to continue from, so an
element present for the whole walk is returned at least once whatever
changes in between, and a cursor from any connection continues it. An
element set Redis keeps compact (a listpack hash, an intset) is returned
whole, with cursor 0, whatever COUNT says, as Redis does.

MATCH uses :func:`glob_match`, Redis's ``stringmatchlen`` ported here
because a value type's family may import only the handler layer, not
:mod:`snapkv.server.glob` (tests/test_layers.py); a test checks that the
two agree.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from snapkv.server.resp.text import byte_len, to_bytes
from snapkv.server.resp.writer import ONE, ZERO, bulk, integer
from snapkv.server.table import ERR_SYNTAX, CommandError, command, parse_int
from snapkv.values import hashes, sets

if TYPE_CHECKING:
    from snapkv.server.client import Client

__all__ = ["glob_match", "scan_reply"]

_H = "hash"
_KEY = (1, 1, 1)
_LONG_MAX = 2**63 - 1
_EMPTY_SCAN = b"*2\r\n$1\r\n0\r\n*0\r\n"


def _check_errors(exc: ValueError) -> CommandError:
    """A view's ValueError (Redis's words without the code) as the command's error."""
    return CommandError(f"ERR {exc}")


# ------------------------------------------------------------------ set / get


@command("hset", -4, "write denyoom fast", keys=_KEY, group=_H, since="2.0.0")
@command("hmset", -4, "write denyoom fast", keys=_KEY, group=_H, since="2.0.0")
def hset(client: Client, argv: list[str]) -> bytes:
    """HSET/HMSET key field value [field value ...]: new fields, or OK for HMSET."""
    if len(argv) % 2:
        raise CommandError(f"ERR wrong number of arguments for '{argv[0].lower()}' command")
    pairs = dict(zip(argv[2::2], argv[3::2], strict=True))
    new = client.db.hashes[argv[1]].set_many(pairs)
    client.changes += (len(argv) - 2) // 2
    return b"+OK\r\n" if argv[0].lower() == "hmset" else integer(new)


@command("hsetnx", 4, "write denyoom fast", keys=_KEY, group=_H, since="2.0.0")
def hsetnx(client: Client, argv: list[str]) -> bytes:
    if client.db.hashes[argv[1]].set_if_missing(argv[2], argv[3]):
        client.changes += 1
        return ONE
    return ZERO


@command("hget", 3, "readonly fast", keys=_KEY, group=_H, since="2.0.0")
def hget(client: Client, argv: list[str]) -> bytes:
    return client.bulk_or_null(client.db.hashes[argv[1]].get(argv[2]))


@command("hmget", -3, "readonly fast", keys=_KEY, group=_H, since="2.0.0")
def hmget(client: Client, argv: list[str]) -> bytes:
    return client.encode(client.db.hashes[argv[1]].get_many(argv[2:]))


@command("hdel", -3, "write fast", keys=_KEY, group=_H, since="2.0.0")
def hdel(client: Client, argv: list[str]) -> bytes:
    deleted = client.db.hashes[argv[1]].delete_many(argv[2:])
    client.changes += deleted
    return integer(deleted)


@command("hexists", 3, "readonly fast", keys=_KEY, group=_H, since="2.0.0")
def hexists(client: Client, argv: list[str]) -> bytes:
    return ONE if argv[2] in client.db.hashes[argv[1]] else ZERO


@command("hlen", 2, "readonly fast", keys=_KEY, group=_H, since="2.0.0")
def hlen(client: Client, argv: list[str]) -> bytes:
    return integer(len(client.db.hashes[argv[1]]))


@command("hstrlen", 3, "readonly fast", keys=_KEY, group=_H, since="3.2.0")
def hstrlen(client: Client, argv: list[str]) -> bytes:
    value = client.db.hashes[argv[1]].get(argv[2])
    return integer(0 if value is None else byte_len(value))


@command("hgetall", 2, "readonly", keys=_KEY, group=_H, since="2.0.0")
def hgetall(client: Client, argv: list[str]) -> bytes:
    return client.encode(client.db.hashes[argv[1]].to_dict())


@command("hkeys", 2, "readonly", keys=_KEY, group=_H, since="2.0.0")
def hkeys(client: Client, argv: list[str]) -> bytes:
    return client.encode(list(client.db.hashes[argv[1]].to_dict()))


@command("hvals", 2, "readonly", keys=_KEY, group=_H, since="2.0.0")
def hvals(client: Client, argv: list[str]) -> bytes:
    return client.encode(list(client.db.hashes[argv[1]].to_dict().values()))


# ------------------------------------------------------------------ counters


@command("hincrby", 4, "write denyoom fast", keys=_KEY, group=_H, since="2.0.0")
def hincrby(client: Client, argv: list[str]) -> bytes:
    by = parse_int(argv[3])
    try:
        value = client.db.hashes[argv[1]].incr(argv[2], by)
    except ValueError as exc:
        raise _check_errors(exc) from None
    client.changes += 1
    return integer(value)


@command("hincrbyfloat", 4, "write denyoom fast", keys=_KEY, group=_H, since="2.6.0")
def hincrbyfloat(client: Client, argv: list[str]) -> bytes:
    """HINCRBYFLOAT: the sum written as INCRBYFLOAT writes it (shortest exact decimal)."""
    by = hashes.as_float(argv[3])
    if by is None:
        raise CommandError("ERR value is not a valid float")
    try:
        written = client.db.hashes[argv[1]].incr_float(argv[2], by)
    except ValueError as exc:
        raise _check_errors(exc) from None
    client.changes += 1
    return bulk(written)


# -------------------------------------------------------------------- random


@command("hrandfield", -2, "readonly", keys=_KEY, group=_H, since="6.2.0")
def hrandfield(client: Client, argv: list[str]) -> bytes:
    """HRANDFIELD key [count [WITHVALUES]]; RESP3 pairs are arrays of two."""
    view = client.db.hashes[argv[1]]
    if len(argv) == 2:
        picked = view.random_fields(1)
        return client.bulk_or_null(picked[0] if picked else None)
    with_values = False
    if len(argv) == 4:
        if argv[3].lower() != "withvalues":
            raise CommandError(ERR_SYNTAX)
        with_values = True
    elif len(argv) > 4:
        raise CommandError(ERR_SYNTAX)
    count = parse_int(argv[2])
    if count < -_LONG_MAX:
        raise CommandError(
            f"ERR value is out of range, value must between {-_LONG_MAX} and {_LONG_MAX}"
        )
    if with_values and not -(_LONG_MAX // 2) <= count <= _LONG_MAX // 2:
        raise CommandError("ERR value is out of range")
    picked = view.random_fields(count, with_values)
    if with_values and client.resp == 2:
        return client.encode([item for pair in picked for item in pair])
    return client.encode([list(pair) for pair in picked] if with_values else picked)


# ---------------------------------------------------------------------- scan


def glob_match(pattern: bytes, data: bytes) -> bool:
    """Redis's ``stringmatchlen(pattern, data, nocase=0)``, case for case.

    ``*``, ``?``, ``[...]`` (``^`` negates, ``a-z`` ranges either way round,
    ``\\`` escapes) and ``\\`` outside a class; characters compare as C's
    signed ``char``, as Redis's do. A ``*`` that failed at every position
    stops the longer tries (Redis's ``skipLongerMatches``).
    """
    return _match(pattern, 0, data, 0, [False])


def _at(buf: bytes, i: int) -> int:
    """``buf[i]`` as a signed char; 0 past the end (a C string's terminator)."""
    if i >= len(buf):
        return 0
    byte = buf[i]
    return byte - 256 if byte > 127 else byte


_STAR, _QUESTION, _OPEN, _CLOSE, _BACKSLASH, _CARET, _DASH = b"*?[]\\^-"


def _match(pattern: bytes, p: int, data: bytes, s: int, skip: list[bool]) -> bool:
    plen, slen = len(pattern), len(data)
    while p < plen and s < slen:
        c = _at(pattern, p)
        if c == _STAR:
            while p + 1 < plen and pattern[p + 1] == _STAR:
                p += 1
            if p + 1 == plen:
                return True
            while s < slen:
                if _match(pattern, p + 1, data, s, skip):
                    return True
                if skip[0]:
                    return False
                s += 1
            skip[0] = True
            return False
        if c == _QUESTION:
            s += 1
        elif c == _OPEN:
            p += 1
            negate = _at(pattern, p) == _CARET
            if negate:
                p += 1
            matched = False
            ch = _at(data, s)
            while True:
                if _at(pattern, p) == _BACKSLASH and plen - p >= 2:
                    p += 1
                    if _at(pattern, p) == ch:
                        matched = True
                elif _at(pattern, p) == _CLOSE:
                    break
                elif p >= plen:
                    p -= 1
                    break
                elif plen - p >= 3 and _at(pattern, p + 1) == _DASH:
                    low, high = _at(pattern, p), _at(pattern, p + 2)
                    if low > high:
                        low, high = high, low
                    p += 2
                    if low <= ch <= high:
                        matched = True
                elif _at(pattern, p) == ch:
                    matched = True
                p += 1
            if negate:
                matched = not matched
            if not matched:
                return False
            s += 1
        else:
            if c == _BACKSLASH and plen - p >= 2:
                p += 1
            if _at(pattern, p) != _at(data, s):
                return False
            s += 1
        p += 1
        if s == slen:
            while _at(pattern, p) == _STAR:
                p += 1
            break
    return p >= plen and s == slen


def _parse_cursor(text: str) -> int:
    """Redis's ``parseScanCursorOrReply`` (``strtoul``): unsigned 64-bit, ``-1`` wraps, "" is 0."""
    if not text:
        return 0
    digits = text.lstrip("+-").lstrip("0")
    if text.isascii() and re.fullmatch(r"[+-]?[0-9]+", text) and len(digits) <= 20:
        value = int(text)
        if -(2**64) < value < 2**64:
            return value % 2**64
    raise CommandError("ERR invalid cursor")


def _order(element: str) -> int:
    return zlib.crc32(to_bytes(element))


def scan_reply(
    client: Client,
    argv: list[str],
    elements: Callable[[], Iterable[str] | None],
    value_of: Callable[[str], str] | None,
    whole: Callable[[list[str]], list[str] | None],
) -> bytes:
    """HSCAN/SSCAN key cursor [MATCH pattern] [COUNT count] (see the module docstring).

    ``elements()`` reads the container (``None``: the key is missing) after
    the cursor is parsed, as Redis orders its checks; ``value_of`` gives a
    hash field's value (``None`` for a set); ``whole(elements)`` is
    the container in Redis's order when Redis keeps it compact (and so
    returns it at once), else ``None``.
    """
    cursor = _parse_cursor(argv[2])
    found = elements()
    if found is None:
        return _EMPTY_SCAN
    count, pattern = 10, None
    i = 3
    while i < len(argv):
        option = argv[i].lower()
        if option == "count" and i + 1 < len(argv):
            count = parse_int(argv[i + 1])
            if count < 1:
                raise CommandError(ERR_SYNTAX)
        elif option == "match" and i + 1 < len(argv):
            pattern = None if argv[i + 1] == "*" else to_bytes(argv[i + 1])
        else:
            raise CommandError(ERR_SYNTAX)
        i += 2
    members = list(found)
    compact = whole(members)
    if compact is not None:
        batch, next_cursor = compact, 0
    else:
        ranked = sorted((rank, m) for m in members if (rank := _order(m)) >= cursor)
        if len(ranked) <= count:
            batch, next_cursor = [m for _, m in ranked], 0
        else:
            last = ranked[count - 1][0]
            batch = [m for rank, m in ranked if rank <= last]
            next_cursor = last + 1 if len(batch) < len(ranked) else 0
    if pattern is not None:
        batch = [m for m in batch if glob_match(pattern, to_bytes(m))]
    out: list[str] = batch
    if value_of is not None:
        out = [item for m in batch for item in (m, value_of(m))]
    return client.encode([str(next_cursor), out])


@command("hscan", -3, "readonly", keys=_KEY, group=_H, since="2.8.0")
def hscan(client: Client, argv: list[str]) -> bytes:
    fields: dict[str, str] = {}

    def read() -> Iterable[str] | None:
        fields.update(client.db.hashes[argv[1]].to_dict())
        return fields or None  # an empty hash does not exist

    config = client.server.config
    limits = config.hash_max_listpack_entries, config.hash_max_listpack_value

    def whole(_members: list[str]) -> list[str] | None:
        return list(fields) if hashes.compact(fields, *limits) else None

    return scan_reply(client, argv, read, fields.__getitem__, whole)


@command("sscan", -3, "readonly", keys=_KEY, group="set", since="2.8.0")
def sscan(client: Client, argv: list[str]) -> bytes:
    def read() -> Iterable[str] | None:
        return client.db.sets[argv[1]].to_set() or None  # an empty set does not exist

    entries = client.server.config.set_max_intset_entries

    def whole(members: list[str]) -> list[str] | None:
        return sets.intset_order(members, entries)

    return scan_reply(client, argv, read, None, whole)
