"""Sorted set commands over several keys, and the pops (Redis 7.0's t_zset.c).

ZUNION, ZINTER, ZDIFF, their STORE forms and ZINTERCARD (Redis's
``zunionInterDiffGenericCommand``), then ZPOPMIN, ZPOPMAX and ZMPOP. (ZRANGESTORE
is with ZRANGE in :mod:`.cmd_zset`, whose parser it shares.)

The combining commands read their inputs and write their destination under
the Store's lock in one step, and a STORE is one journal record: a PUT of
the new sorted set, or a DEL of the destination when the result is empty
(``Keyspace._write``). A set is an input like a sorted set whose members
all score 1. Inputs are taken smallest first, as Redis sorts them, so a
SUM adds the same doubles in the same order and rounds the same way.

:func:`pop` is the pops' work as a plain function and :func:`parse_zmpop`
ZMPOP's arguments, which the blocking forms (BZPOPMIN, BZPOPMAX, BZMPOP,
in :mod:`.cmd_blocking`) share.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from snapkv.errors import WrongTypeError
from snapkv.server.notify import NOTIFY_GENERIC, NOTIFY_ZSET, created, missed, popped, written
from snapkv.server.resp.writer import EMPTY_ARRAY, ZERO, integer
from snapkv.server.table import ERR_SYNTAX, CommandError, command, numkeys_at, parse_int
from snapkv.values import sets, zsets

if TYPE_CHECKING:
    from snapkv.server.client import Client

__all__ = ["parse_zmpop", "pop"]

_Z = "sorted-set"
_INPUTS = ("zset", "set")  # the types a ZUNION/ZINTER/ZDIFF source may hold
_KEY = (1, 1, 1)
_ERR_POSITIVE = "ERR value is out of range, must be positive"
_UNION, _INTER, _DIFF = "union", "inter", "diff"
#: member -> score of one input (a set's members score 1.0).
Source = dict[str, float] | None


def _aggregate(how: str) -> Callable[[float, float], float]:
    """Redis's ``zunionInterAggregate``: SUM makes ``inf + -inf`` 0, not NaN."""
    if how == "min":
        return lambda a, b: b if b < a else a
    if how == "max":
        return lambda a, b: b if b > a else a

    def total(a: float, b: float) -> float:
        s = a + b
        return 0.0 if math.isnan(s) else s

    return total


def _source(client: Client, key: str) -> Source:
    """The input at ``key`` (caller holds the lock): a sorted set's scores, a set's members."""
    db = client.db
    try:
        zset = db._lookup(key, zsets)
    except WrongTypeError:
        members = db._lookup(key, sets)  # raises for any other type, as Redis
        return dict.fromkeys(members, 1.0)
    return None if zset is None else zset.scores


def _weighted(score: float, weight: float) -> float:
    value = score * weight
    return 0.0 if math.isnan(value) else value


def _compute(op: str, sources: list[Source], weights: list[float], how: str) -> dict[str, float]:
    """member -> score of the union, intersection or difference (Redis's algorithm's order)."""
    inputs = [({} if s is None else s, w) for s, w in zip(sources, weights, strict=True)]
    if op == _DIFF:
        first, rest = inputs[0][0], [s for s, _ in inputs[1:]]
        return {m: v for m, v in first.items() if not any(m in s for s in rest)}
    inputs.sort(key=lambda pair: len(pair[0]))  # stable, as glibc's qsort (a merge sort) is
    combine = _aggregate(how)
    result: dict[str, float] = {}
    if op == _INTER:
        (smallest, weight), others = inputs[0], inputs[1:]
        for member, score in smallest.items():
            total = _weighted(score, weight)
            for other, w in others:
                found = other.get(member)
                if found is None:
                    break
                total = combine(total, found * w)
            else:
                result[member] = total
        return result
    for source, weight in inputs:
        for member, score in source.items():
            value = _weighted(score, weight)
            old = result.get(member)
            result[member] = value if old is None else combine(old, value)
    return result


def _combine(client: Client, argv: list[str], op: str, dest: str | None, card: bool) -> bytes:
    """The ZUNION/ZINTER/ZDIFF family: parse, read, compute and reply or store, in one step."""
    at = 2 if dest is not None else 1
    name = argv[0].lower()
    setnum = parse_int(argv[at])
    if setnum < 1:
        raise CommandError(f"ERR at least 1 input key is needed for '{name}' command")
    if setnum > len(argv) - at - 1:
        raise CommandError(ERR_SYNTAX)
    keys = argv[at + 1 : at + 1 + setnum]
    db = client.db
    store = db._store
    ticket = None
    # Before the lock, which reclaiming an expired key takes: Redis reads
    # every source (keymiss for each missing one) before it parses the rest.
    missed(client, *keys, kinds=_INPUTS)
    new = dest is not None and not card and created(client, dest)
    with store._lock:
        sources = [_source(client, key) for key in keys]
        weights, how, withscores, limit = _options(
            argv, at + 1 + setnum, setnum, op=op, dest=dest, card=card
        )
        result = _compute(op, sources, weights, how)
        if card:
            return integer(len(result) if not limit else min(limit, len(result)))
        if dest is None:
            pairs = sorted((s, m) for m, s in result.items())
            if not withscores:
                return client.encode([m for _, m in pairs])
            if client.resp > 2:
                return client.encode([[m, s] for s, m in pairs])
            return client.encode([x for s, m in pairs for x in (m, s)])
        deleted = False
        if result:
            items = [x for m, s in result.items() for x in (s, m)]
            ticket = db._write([("put", db.index, dest, zsets.CODE, items, 0)])
            client.changes += 1
        elif dest in db:
            ticket = db._write([("del", db.index, dest)])
            client.changes += 1
            deleted = True
    store._commit(ticket)
    if result:
        written(client, NOTIFY_ZSET, name, dest, new)
    elif deleted:
        written(client, NOTIFY_GENERIC, "del", dest)
    return integer(len(result)) if result else ZERO


def _options(
    argv: list[str], j: int, setnum: int, *, op: str, dest: str | None, card: bool
) -> tuple[list[float], str, bool, int]:
    """WEIGHTS, AGGREGATE, WITHSCORES and LIMIT after the keys, as each command allows them."""
    weights, how, withscores, limit = [1.0] * setnum, "sum", False, 0
    while j < len(argv):
        word, left = argv[j].lower(), len(argv) - j
        if op != _DIFF and not card and left >= setnum + 1 and word == "weights":
            try:
                weights = [zsets.parse_score(w) for w in argv[j + 1 : j + 1 + setnum]]
            except ValueError:
                raise CommandError("ERR weight value is not a float") from None
            j += setnum + 1
        elif op != _DIFF and not card and left >= 2 and word == "aggregate":
            how = argv[j + 1].lower()
            if how not in ("sum", "min", "max"):
                raise CommandError(ERR_SYNTAX)
            j += 2
        elif dest is None and not card and word == "withscores":
            withscores = True
            j += 1
        elif card and left >= 2 and word == "limit":
            limit = parse_int(argv[j + 1], "ERR LIMIT can't be negative")
            if limit < 0:
                raise CommandError("ERR LIMIT can't be negative")
            j += 2
        else:
            raise CommandError(ERR_SYNTAX)
    return weights, how, withscores, limit


def _declare(name: str, op: str, store: bool, since: str) -> None:
    def handler(client: Client, argv: list[str]) -> bytes:
        return _combine(client, argv, op, argv[1] if store else None, False)

    if store:
        # The destination alone: the dispatcher fails the transactions WATCHing
        # a write's keys, and the sources are only read (Redis signals dst only).
        command(name, -4, "write denyoom", keys=(1, 1, 1), group=_Z, since=since)(handler)
    else:
        keys = numkeys_at(1)
        command(name, -3, "readonly", group=_Z, since=since, find_keys=keys)(handler)


_declare("zunion", _UNION, False, "6.2.0")
_declare("zinter", _INTER, False, "6.2.0")
_declare("zdiff", _DIFF, False, "6.2.0")
_declare("zunionstore", _UNION, True, "2.0.0")
_declare("zinterstore", _INTER, True, "2.0.0")
_declare("zdiffstore", _DIFF, True, "6.2.0")


@command("zintercard", -3, "readonly", group=_Z, since="7.0.0", find_keys=numkeys_at(1))
def zintercard(client: Client, argv: list[str]) -> bytes:
    """ZINTERCARD numkeys key [key ...] [LIMIT limit]: 0 is no limit."""
    return _combine(client, argv, _INTER, None, True)


# --------------------------------------------------------------------- pops


def pop(
    client: Client,
    keys: list[str],
    highest: bool,
    count: int,
    *,
    emit_key: bool,
    nested: bool,
    nil_when_empty: bool,
) -> bytes | None:
    """Redis's ``genericZpopCommand``: pop from the first of ``keys`` holding a sorted set.

    ``count`` -1 is a plain single pop. Returns the reply, or ``None`` when
    no key holds one and ``nil_when_empty`` is false and ``emit_key`` true
    (what a blocking form waits on). A key of another type before the
    first sorted set raises WrongTypeError. Counts the popped members as
    changes and fails the transactions WATCHing the key.
    """
    for key in keys:
        view = client.db.zsets[key]
        if view.exists():
            break
    else:
        if nil_when_empty:
            return client.null_array
        return None if emit_key else EMPTY_ARRAY
    if count == 0:
        return EMPTY_ARRAY
    taken = view.pop_max(max(count, 1)) if highest else view.pop_min(max(count, 1))
    if not taken:  # emptied by another thread of an embedding program since exists()
        if nil_when_empty:
            return client.null_array
        return None if emit_key else EMPTY_ARRAY
    client.changes += len(taken)
    if client.server.watched or client.server.key_listeners:
        client.server.touch(client.db_index, [key])
    popped(client, NOTIFY_ZSET, "zpopmax" if highest else "zpopmin", key)
    if nested:
        items: list[Any] = [list(pair) for pair in taken]
    else:
        items = [x for pair in taken for x in pair]
    if emit_key:
        return client.encode([key, items] if nested else [key, *items])
    return client.encode(items)


@command("zpopmin", -2, "write fast", keys=_KEY, group=_Z, since="5.0.0")
@command("zpopmax", -2, "write fast", keys=_KEY, group=_Z, since="5.0.0")
def zpopmin(client: Client, argv: list[str]) -> bytes:
    """ZPOPMIN|ZPOPMAX key [count]: flat pairs, nested in RESP3 when a count is given."""
    if len(argv) > 3:
        raise CommandError(ERR_SYNTAX)
    count = -1
    if len(argv) == 3:
        count = parse_int(argv[2], _ERR_POSITIVE)
        if count < 0:
            raise CommandError(_ERR_POSITIVE)
    highest = argv[0].lower() == "zpopmax"
    reply = pop(
        client,
        [argv[1]],
        highest,
        count,
        emit_key=False,
        nested=client.resp > 2 and count != -1,
        nil_when_empty=False,
    )
    return reply if reply is not None else EMPTY_ARRAY


@command("zmpop", -4, "write", group=_Z, since="7.0.0", find_keys=numkeys_at(1))
def zmpop(client: Client, argv: list[str]) -> bytes:
    """ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]: ``[key, [[member, score], ...]]``."""
    keys, highest, count = parse_zmpop(argv, 1)
    reply = pop(
        client,
        keys,
        highest,
        count,
        emit_key=True,
        nested=True,
        nil_when_empty=True,
    )
    assert reply is not None  # nil_when_empty
    return reply


def parse_zmpop(argv: list[str], at: int) -> tuple[list[str], bool, int]:
    """Parse ``numkeys key [key ...] MIN|MAX [COUNT count]`` from ``argv[at]`` on.

    As Redis's ``zmpopGenericCommand``, for ZMPOP (``at`` 1) and BZMPOP
    (``at`` 2, after its timeout): the keys, MAX (True) or MIN, and the
    count (1 when not given). Checked in Redis's order: numkeys, MIN|MAX,
    then the options.
    """
    numkeys = _positive(argv[at], "ERR numkeys should be greater than 0")
    where = at + 1 + numkeys
    if where >= len(argv) or argv[where].lower() not in ("min", "max"):
        raise CommandError(ERR_SYNTAX)
    count = -1
    j = where + 1
    while j < len(argv):
        if count == -1 and argv[j].lower() == "count" and j + 1 < len(argv):
            count = _positive(argv[j + 1], "ERR count should be greater than 0")
            j += 2
        else:
            raise CommandError(ERR_SYNTAX)
    return argv[at + 1 : where], argv[where].lower() == "max", max(count, 1)


def _positive(text: str, message: str) -> int:
    """``getRangeLongFromObjectOrReply(1, LONG_MAX)`` with one message for every refusal."""
    value = parse_int(text, message)
    if value < 1:
        raise CommandError(message)
    return value
