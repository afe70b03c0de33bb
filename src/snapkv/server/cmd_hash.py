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
the set group): a family module imports no other, and the reply is one
piece of code. A container Redis keeps compact (a listpack hash, an
intset) is returned whole, with cursor 0, whatever COUNT says, as Redis
does; a larger one is walked as SCAN walks keys (:mod:`snapkv.server.scan`:
a snapshot of its names taken at cursor 0, O(COUNT) a call), and MATCH is
the server's glob (:mod:`snapkv.server.glob`, linear time).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from snapkv.server.glob import keys_matching
from snapkv.server.notify import NOTIFY_HASH, created, missed, popped, written
from snapkv.server.resp.text import byte_len
from snapkv.server.resp.writer import ONE, ZERO, bulk, integer
from snapkv.server.scan import EMPTY_SCAN, page, parse_cursor, parse_options
from snapkv.server.table import ERR_SYNTAX, CommandError, check_random_draw, command, parse_int
from snapkv.values import hashes, sets
from snapkv.views import HashView, SetView

if TYPE_CHECKING:
    from snapkv.server.client import Client

__all__ = ["scan_reply"]

_H = "hash"
_KEY = (1, 1, 1)
_LONG_MAX = 2**63 - 1


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
    fresh = created(client, argv[1])
    new = client.db.hashes[argv[1]].set_many(pairs)
    client.changes += (len(argv) - 2) // 2
    written(client, NOTIFY_HASH, "hset", argv[1], fresh)
    return b"+OK\r\n" if argv[0].lower() == "hmset" else integer(new)


@command("hsetnx", 4, "write denyoom fast", keys=_KEY, group=_H, since="2.0.0")
def hsetnx(client: Client, argv: list[str]) -> bytes:
    fresh = created(client, argv[1])
    if client.db.hashes[argv[1]].set_if_missing(argv[2], argv[3]):
        client.changes += 1
        written(client, NOTIFY_HASH, "hset", argv[1], fresh)
        return ONE
    return ZERO


@command("hget", 3, "readonly fast", keys=_KEY, group=_H, since="2.0.0")
def hget(client: Client, argv: list[str]) -> bytes:
    value = client.db.hashes[argv[1]].get(argv[2])
    if value is None:
        missed(client, argv[1])
        return client.null
    return bulk(value)


@command("hmget", -3, "readonly fast", keys=_KEY, group=_H, since="2.0.0")
def hmget(client: Client, argv: list[str]) -> bytes:
    found = client.db.hashes[argv[1]].get_many(argv[2:])
    if all(value is None for value in found):
        missed(client, argv[1])
    return client.encode(found)


@command("hdel", -3, "write fast", keys=_KEY, group=_H, since="2.0.0")
def hdel(client: Client, argv: list[str]) -> bytes:
    deleted = client.db.hashes[argv[1]].delete_many(argv[2:])
    client.changes += deleted
    if deleted:
        popped(client, NOTIFY_HASH, "hdel", argv[1])
    return integer(deleted)


@command("hexists", 3, "readonly fast", keys=_KEY, group=_H, since="2.0.0")
def hexists(client: Client, argv: list[str]) -> bytes:
    if argv[2] in client.db.hashes[argv[1]]:
        return ONE
    missed(client, argv[1])
    return ZERO


@command("hlen", 2, "readonly fast", keys=_KEY, group=_H, since="2.0.0")
def hlen(client: Client, argv: list[str]) -> bytes:
    length = len(client.db.hashes[argv[1]])
    if not length:
        missed(client, argv[1])
    return integer(length)


@command("hstrlen", 3, "readonly fast", keys=_KEY, group=_H, since="3.2.0")
def hstrlen(client: Client, argv: list[str]) -> bytes:
    value = client.db.hashes[argv[1]].get(argv[2])
    if value is None:
        missed(client, argv[1])
        return ZERO
    return integer(byte_len(value))


@command("hgetall", 2, "readonly", keys=_KEY, group=_H, since="2.0.0")
def hgetall(client: Client, argv: list[str]) -> bytes:
    return client.encode(_fields(client, argv[1]))


@command("hkeys", 2, "readonly", keys=_KEY, group=_H, since="2.0.0")
def hkeys(client: Client, argv: list[str]) -> bytes:
    return client.encode(list(_fields(client, argv[1])))


@command("hvals", 2, "readonly", keys=_KEY, group=_H, since="2.0.0")
def hvals(client: Client, argv: list[str]) -> bytes:
    return client.encode(list(_fields(client, argv[1]).values()))


def _fields(client: Client, key: str) -> dict[str, str]:
    """The hash at ``key`` as a dict; an empty one (and keymiss) when it is missing."""
    fields = client.db.hashes[key].to_dict()
    if not fields:
        missed(client, key)
    return fields


# ------------------------------------------------------------------ counters


@command("hincrby", 4, "write denyoom fast", keys=_KEY, group=_H, since="2.0.0")
def hincrby(client: Client, argv: list[str]) -> bytes:
    by = parse_int(argv[3])
    fresh = created(client, argv[1])
    try:
        value = client.db.hashes[argv[1]].incr(argv[2], by)
    except ValueError as exc:
        raise _check_errors(exc) from None
    client.changes += 1
    written(client, NOTIFY_HASH, "hincrby", argv[1], fresh)
    return integer(value)


@command("hincrbyfloat", 4, "write denyoom fast", keys=_KEY, group=_H, since="2.6.0")
def hincrbyfloat(client: Client, argv: list[str]) -> bytes:
    """HINCRBYFLOAT: the sum written as INCRBYFLOAT writes it (shortest exact decimal)."""
    by = hashes.as_float(argv[3])
    if by is None:
        raise CommandError("ERR value is not a valid float")
    fresh = created(client, argv[1])
    try:
        text = client.db.hashes[argv[1]].incr_float(argv[2], by)
    except ValueError as exc:
        raise _check_errors(exc) from None
    client.changes += 1
    written(client, NOTIFY_HASH, "hincrbyfloat", argv[1], fresh)
    return bulk(text)


# -------------------------------------------------------------------- random


@command("hrandfield", -2, "readonly", keys=_KEY, group=_H, since="6.2.0")
def hrandfield(client: Client, argv: list[str]) -> bytes:
    """HRANDFIELD key [count [WITHVALUES]]; RESP3 pairs are arrays of two."""
    view = client.db.hashes[argv[1]]
    if len(argv) == 2:
        picked = view.random_fields(1)
        if not picked:
            missed(client, argv[1])
            return client.null
        return bulk(picked[0])
    # Redis parses the count before it looks at WITHVALUES.
    count = parse_int(argv[2])
    if count < -_LONG_MAX:
        raise CommandError(
            f"ERR value is out of range, value must between {-_LONG_MAX} and {_LONG_MAX}"
        )
    if len(argv) > 4 or (len(argv) == 4 and argv[3].lower() != "withvalues"):
        raise CommandError(ERR_SYNTAX)
    with_values = len(argv) == 4
    if with_values and not -(_LONG_MAX // 2) <= count <= _LONG_MAX // 2:
        raise CommandError("ERR value is out of range")
    if len(view):
        check_random_draw(count)
    picked = view.random_fields(count, with_values)
    if not picked:
        missed(client, argv[1])
    if with_values and client.resp == 2:
        return client.encode([item for pair in picked for item in pair])
    return client.encode([list(pair) for pair in picked] if with_values else picked)


# ---------------------------------------------------------------------- scan


def scan_reply(
    client: Client,
    argv: list[str],
    view: HashView | SetView,
    value_of: Callable[[str], str] | None,
    whole: Callable[[], list[str] | None],
) -> bytes:
    """HSCAN/SSCAN key cursor [MATCH pattern] [COUNT count] (see the module docstring).

    ``value_of`` gives a hash field's value (``None`` for a set);
    ``whole()`` is the container in Redis's order when Redis keeps it
    compact (and so returns it at once), else ``None``. The cursor is
    checked first, then the key, then the options, as Redis orders them.
    """
    cursor = parse_cursor(argv[2])
    if not len(view):
        missed(client, argv[1])
        return EMPTY_SCAN
    count, pattern, _ = parse_options(argv, 3, with_type=False)
    compact = whole()
    if compact is not None:
        batch, next_cursor = compact, 0
    else:
        owner = (client.db_index, view.KIND.NAME, argv[1])
        names, next_cursor = page(client, owner, cursor, count, lambda: list(view))
        batch = [name for name in names if name in view]
    batch = keys_matching(pattern, batch)
    out: list[str] = batch
    if value_of is not None:
        out = [item for name in batch for item in (name, value_of(name))]
    return client.encode([str(next_cursor), out])


@command("hscan", -3, "readonly", keys=_KEY, group=_H, since="2.8.0")
def hscan(client: Client, argv: list[str]) -> bytes:
    view = client.db.hashes[argv[1]]
    config = client.server.config
    entries, longest = config.hash_max_listpack_entries, config.hash_max_listpack_value

    def whole() -> list[str] | None:
        if len(view) > entries:  # too many fields for a listpack: never copy a big hash
            return None
        fields = view.to_dict()
        return list(fields) if hashes.compact(fields, entries, longest) else None

    return scan_reply(client, argv, view, view.__getitem__, whole)


@command("sscan", -3, "readonly", keys=_KEY, group="set", since="2.8.0")
def sscan(client: Client, argv: list[str]) -> bytes:
    view = client.db.sets[argv[1]]
    entries = client.server.config.set_max_intset_entries

    def whole() -> list[str] | None:
        if len(view) > entries:
            return None
        return sets.intset_order(view.to_set(), entries)

    return scan_reply(client, argv, view, None, whole)
