"""Set commands (Redis's t_set.c): SADD ... SDIFFSTORE (SSCAN is in cmd_hash with HSCAN).

Handlers reach a set through its view (``client.db.sets[key]``); a key of
another type raises WrongTypeError, answered with Redis's ``WRONGTYPE``.
``client.changes`` counts what Redis's ``server.dirty`` does: SADD/SREM
the members they changed, SPOP the members taken (one for SPOP without a
count), SMOVE one, plus one when the destination gained the member, a
STORE one when it wrote or deleted its destination.

Reply order: a set Redis 7.0 keeps as an intset (at most
``set-max-intset-entries`` integers, 512 by default) is
sorted by value in Redis, so snapkv sorts such a set's members the same
way (:func:`snapkv.values.sets.intset_order`) and answers Redis's bytes; a
larger or non-integer set is unordered in both. SMEMBERS, SINTER, SUNION,
SDIFF and SPOP with a count are RESP3 sets (``~``), SRANDMEMBER with a
count an array, as in Redis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from snapkv.errors import WrongTypeError
from snapkv.server.notify import NOTIFY_GENERIC, NOTIFY_SET, created, missed, popped, written
from snapkv.server.resp.writer import ONE, ZERO, bulk, integer
from snapkv.server.table import ERR_SYNTAX, CommandError, check_random_draw, command, parse_int
from snapkv.values import sets

if TYPE_CHECKING:
    from collections.abc import Iterable

    from snapkv.server.client import Client

__all__: list[str] = []

_S = "set"
_KEY = (1, 1, 1)
_ALL = (1, -1, 1)
_SET = ("set",)
_LONG_MAX = 2**63 - 1
_ERR_POSITIVE = "ERR value is out of range, must be positive"


def _ordered(client: Client, members: Iterable[str]) -> list[str]:
    """``members`` in the order Redis replies with them (see the module docstring)."""
    listed = list(members)
    ordered = sets.intset_order(listed, client.server.config.set_max_intset_entries)
    return listed if ordered is None else ordered


def _set_reply(client: Client, members: Iterable[str]) -> bytes:
    """A RESP3 set (RESP2: an array) of ``members`` in Redis's order."""
    listed = _ordered(client, members)
    head = b"~%d\r\n" if client.resp == 3 else b"*%d\r\n"
    return head % len(listed) + b"".join(bulk(member) for member in listed)


# ------------------------------------------------------------- add / remove


@command("sadd", -3, "write denyoom fast", keys=_KEY, group=_S)
def sadd(client: Client, argv: list[str]) -> bytes:
    new = created(client, argv[1])
    added = client.db.sets[argv[1]].add_many(argv[2:])
    client.changes += added
    if added:
        written(client, NOTIFY_SET, "sadd", argv[1], new)
    return integer(added)


@command("srem", -3, "write fast", keys=_KEY, group=_S)
def srem(client: Client, argv: list[str]) -> bytes:
    removed = client.db.sets[argv[1]].remove_many(argv[2:])
    client.changes += removed
    if removed:
        popped(client, NOTIFY_SET, "srem", argv[1])
    return integer(removed)


@command("smove", 4, "write fast", keys=(1, 2, 1), group=_S)
def smove(client: Client, argv: list[str]) -> bytes:
    """SMOVE source destination member: one record for both keys."""
    source, destination, member = argv[1], argv[2], argv[3]
    sets_ = client.db.sets
    try:
        gains = source != destination and member not in sets_[destination]
    except WrongTypeError:
        gains = False  # move() decides: a missing source answers 0 before any type check
    new = created(client, destination)
    if not sets_[source].move(member, destination):
        return ZERO
    if source != destination:
        client.changes += 1 + gains
        # Redis: srem (and del) on the source, then sadd when the destination gained.
        popped(client, NOTIFY_SET, "srem", source)
        if gains:
            written(client, NOTIFY_SET, "sadd", destination, new)
    return ONE


@command("spop", -2, "write fast", keys=_KEY, group=_S)
def spop(client: Client, argv: list[str]) -> bytes:
    """SPOP key [count]: the record holds the members taken."""
    view = client.db.sets[argv[1]]
    if len(argv) == 2:
        taken = view.pop_many(1)
        if not taken:
            return client.null
        client.changes += 1
        popped(client, NOTIFY_SET, "spop", argv[1])
        return bulk(taken[0])
    if len(argv) > 3:
        raise CommandError(ERR_SYNTAX)
    count = parse_int(argv[2], _ERR_POSITIVE)
    if count < 0:
        raise CommandError(_ERR_POSITIVE)
    taken = view.pop_many(count)
    client.changes += len(taken)
    if taken:
        popped(client, NOTIFY_SET, "spop", argv[1])
    return _set_reply(client, taken)


@command("srandmember", -2, "readonly", keys=_KEY, group=_S)
def srandmember(client: Client, argv: list[str]) -> bytes:
    """SRANDMEMBER key [count]: a negative count may repeat members."""
    view = client.db.sets[argv[1]]
    if len(argv) == 2:
        member = view.random()
        if member is None:
            missed(client, argv[1])
            return client.null
        return bulk(member)
    if len(argv) > 3:
        raise CommandError(ERR_SYNTAX)
    count = parse_int(argv[2])
    if count < -_LONG_MAX:
        raise CommandError(
            f"ERR value is out of range, value must between {-_LONG_MAX} and {_LONG_MAX}"
        )
    if len(view):
        check_random_draw(count)
    picked: list[str] = view.random(count)
    if not picked:
        missed(client, argv[1])
    if count > 0:
        picked = _ordered(client, picked)  # all of a set comes in the set's order
    return client.encode(picked)


# ------------------------------------------------------------------ reading


@command("smembers", 2, "readonly", keys=_KEY, group=_S)
def smembers(client: Client, argv: list[str]) -> bytes:
    members = client.db.sets[argv[1]].to_set()
    if not members:
        missed(client, argv[1])
    return _set_reply(client, members)


@command("sismember", 3, "readonly fast", keys=_KEY, group=_S)
def sismember(client: Client, argv: list[str]) -> bytes:
    if argv[2] in client.db.sets[argv[1]]:
        return ONE
    missed(client, argv[1])
    return ZERO


@command("smismember", -3, "readonly fast", keys=_KEY, group=_S, since="6.2.0")
def smismember(client: Client, argv: list[str]) -> bytes:
    found = client.db.sets[argv[1]].contains_many(argv[2:])
    if not any(found):
        missed(client, argv[1])
    return b"*%d\r\n" % len(found) + b"".join(ONE if hit else ZERO for hit in found)


@command("scard", 2, "readonly fast", keys=_KEY, group=_S)
def scard(client: Client, argv: list[str]) -> bytes:
    size = len(client.db.sets[argv[1]])
    if not size:
        missed(client, argv[1])
    return integer(size)


# ------------------------------------------------------------------ algebra


@command("sinter", -2, "readonly", keys=_ALL, group=_S)
def sinter(client: Client, argv: list[str]) -> bytes:
    missed(client, *argv[1:], kinds=_SET)
    return _set_reply(client, client.db.sets[argv[1]].intersection(*argv[2:]))


@command("sunion", -2, "readonly", keys=_ALL, group=_S)
def sunion(client: Client, argv: list[str]) -> bytes:
    missed(client, *argv[1:], kinds=_SET)
    return _set_reply(client, client.db.sets[argv[1]].union(*argv[2:]))


@command("sdiff", -2, "readonly", keys=_ALL, group=_S)
def sdiff(client: Client, argv: list[str]) -> bytes:
    missed(client, *argv[1:], kinds=_SET)
    return _set_reply(client, client.db.sets[argv[1]].difference(*argv[2:]))


@command("sintercard", -3, "readonly", keys=(0, 0, 0), group=_S, since="7.0.0")
def sintercard(client: Client, argv: list[str]) -> bytes:
    """SINTERCARD numkeys key [key ...] [LIMIT limit]."""
    try:
        numkeys = parse_int(argv[1])
    except CommandError:
        numkeys = 0
    if numkeys < 1:
        raise CommandError("ERR numkeys should be greater than 0")
    if numkeys > len(argv) - 2:
        raise CommandError("ERR Number of keys can't be greater than number of args")
    limit = 0
    i = 2 + numkeys
    while i < len(argv):
        if argv[i].lower() == "limit" and i + 1 < len(argv):
            try:
                limit = parse_int(argv[i + 1])
            except CommandError:
                limit = -1
            if limit < 0:
                raise CommandError("ERR LIMIT can't be negative")
            i += 2
        else:
            raise CommandError(ERR_SYNTAX)
    keys = argv[2 : 2 + numkeys]
    missed(client, *keys, kinds=_SET)
    return integer(client.db.sets[keys[0]].intersection_count(*keys[1:], limit=limit))


def _store(client: Client, argv: list[str], how: str) -> bytes:
    """SINTERSTORE/SUNIONSTORE/SDIFFSTORE destination key [key ...]: one record."""
    db = client.db
    destination = argv[1]
    new = created(client, destination)  # reclaims an expired destination first
    existed = destination in db
    missed(client, *argv[2:], kinds=_SET)  # Redis reads every source before it writes
    view = db.sets[argv[2]]
    if how == "inter":
        size = view.intersection_store(destination, *argv[3:])
    elif how == "union":
        size = view.union_store(destination, *argv[3:])
    else:
        size = view.difference_store(destination, *argv[3:])
    if size or existed:
        client.changes += 1
    if size:
        written(client, NOTIFY_SET, f"s{how}store", destination, new)
    elif existed:
        written(client, NOTIFY_GENERIC, "del", destination)
    return integer(size)


@command("sinterstore", -3, "write denyoom", keys=_ALL, group=_S)
def sinterstore(client: Client, argv: list[str]) -> bytes:
    return _store(client, argv, "inter")


@command("sunionstore", -3, "write denyoom", keys=_ALL, group=_S)
def sunionstore(client: Client, argv: list[str]) -> bytes:
    return _store(client, argv, "union")


@command("sdiffstore", -3, "write denyoom", keys=_ALL, group=_S)
def sdiffstore(client: Client, argv: list[str]) -> bytes:
    return _store(client, argv, "diff")
