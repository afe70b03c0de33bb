"""The generic commands on every value type, against the real Redis 7.0 (the ``twin`` fixture).

TYPE, EXISTS, DEL, UNLINK, COPY, RENAME, RENAMENX, MOVE, SWAPDB, the EXPIRE
family, SCAN's TYPE filter, INFO keyspace, and every string command on a
key of another type (WRONGTYPE, nothing changed; MGET's nil; SET and MSET
replacing any type). Values are built on both sides by :func:`fill`: the
type's own command on Redis, the same effect journaled through the
keyspace on snapkv (so these tests stand on the foundation alone, not on
the type commands). Contents are compared by :func:`contents`, each side
read its own way, as parsed values (a set's order is its own).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import Twin
from reference import parse
from snapkv import values

WRONGTYPE = b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
_ADD = {"hash": "HSET", "list": "RPUSH", "set": "SADD", "zset": "ZADD"}
_OPS = {
    "hash": (values.hashes.CODE, values.hashes.OP_SET),
    "list": (values.lists.CODE, values.lists.OP_PUSH_RIGHT),
    "set": (values.sets.CODE, values.sets.OP_ADD),
    "zset": (values.zsets.CODE, values.zsets.OP_ADD),
}
#: One small value of each container type, as its Redis command's arguments.
SAMPLES: dict[str, tuple[str, ...]] = {
    "hash": ("f1", "v1", "f2", "v2"),
    "list": ("a", "b", "a"),
    "set": ("x", "y", "z"),
    "zset": ("1", "a", "2.5", "b"),
}


#: The encoding thresholds some tests change on the reference: set back after each test.
RESET_ENCODINGS = (
    *("hash-max-listpack-entries", "512", "hash-max-listpack-value", "64"),
    *("set-max-intset-entries", "512"),
    *("zset-max-listpack-entries", "128", "zset-max-listpack-value", "64"),
    *("list-max-listpack-size", "-2", "list-compress-depth", "0"),
)


@pytest.fixture
def twin(twin: Twin) -> Iterator[Twin]:
    """The conftest's Twin; the reference's encoding thresholds are reset afterwards."""
    yield twin
    twin.raw("CONFIG", "SET", *RESET_ENCODINGS)


def fill(twin: Twin, kind: str, key: str, *items: str) -> None:
    """Add ``items`` (``kind``'s Redis command arguments) to ``key`` on both sides."""
    reply = twin.raw(_ADD[kind], key, *items)
    assert not reply.startswith(b"-"), reply
    effect: tuple[Any, ...] = items
    if kind == "zset":
        effect = tuple(float(x) if i % 2 == 0 else x for i, x in enumerate(items))
    code, opcode = _OPS[kind]
    db = twin.snapkv.db
    with twin.store._lock:
        ticket = db._write([("edit", db.index, key, code, opcode, effect)])
    twin.store._commit(ticket)


def ours(twin: Twin, key: str, db: int | None = None) -> Any:
    """What ``key`` holds in snapkv, as a plain Python value (None: missing)."""
    space = twin.snapkv.db if db is None else twin.store.db(db)
    kind = space.key_type(key)
    if kind is None:
        return None
    if kind == "string":
        return ("string", space.get(key))
    with twin.store._lock:
        value = space._lookup(key, values.BY_NAME[kind])
        if kind == "hash":
            return (kind, dict(value))
        if kind == "list":
            return (kind, list(value))
        if kind == "set":
            return (kind, set(value))
        return (kind, dict(value.scores))


def theirs(twin: Twin, key: str) -> Any:
    """What ``key`` holds in Redis (in the raw connection's selected db), in :func:`ours`' form."""
    raw = twin.raw
    kind = parse(raw("TYPE", key)).decode()
    if kind == "none":
        return None
    if kind == "string":
        return (kind, parse(raw("GET", key)).decode())
    if kind == "hash":
        flat = [x.decode() for x in parse(raw("HGETALL", key))]
        return (kind, dict(zip(flat[::2], flat[1::2], strict=True)))
    if kind == "list":
        return (kind, [x.decode() for x in parse(raw("LRANGE", key, "0", "-1"))])
    if kind == "set":
        return (kind, {x.decode() for x in parse(raw("SMEMBERS", key))})
    flat = parse(raw("ZRANGE", key, "0", "-1", "WITHSCORES"))
    return (kind, {m.decode(): float(s) for m, s in zip(flat[::2], flat[1::2], strict=True)})


def same_contents(twin: Twin, *keys: str) -> None:
    """Each key holds the same type and elements on both sides."""
    for key in keys:
        assert ours(twin, key) == theirs(twin, key), key


def fill_all(twin: Twin, prefix: str = "") -> list[str]:
    """One key of each type (and a string): ``[prefix]hash``, ... ; returns the keys."""
    for kind, items in SAMPLES.items():
        fill(twin, kind, prefix + kind, *items)
    twin.same("SET", prefix + "string", "s")
    return [prefix + kind for kind in (*SAMPLES, "string")]


# ------------------------------------------------------------------- TYPE


def test_type_names_every_type(twin: Twin) -> None:
    for key in fill_all(twin):
        assert twin.same("TYPE", key) == b"+%s\r\n" % key.encode()
    twin.same("TYPE", "missing")
    twin.same("DEL", "hash", "list")
    twin.same("TYPE", "hash")
    twin.same("TYPE", "list")


def test_exists_del_unlink_count_every_type(twin: Twin) -> None:
    keys = fill_all(twin)
    twin.same("EXISTS", *keys, "missing", "hash")
    twin.same("TOUCH", *keys)
    twin.same("DEL", "hash", "missing", "list")
    twin.same("UNLINK", "set", "zset", "string")
    twin.same("EXISTS", *keys)
    twin.same("DBSIZE")


# ----------------------------------------------------------- copy / rename


@pytest.mark.parametrize("kind", [*SAMPLES, "string"])
def test_copy_copies_every_type_whole(twin: Twin, kind: str) -> None:
    fill_all(twin)
    twin.same("COPY", kind, "copy")
    same_contents(twin, kind, "copy")
    twin.same("COPY", kind, "copy")  # exists: 0
    twin.same("COPY", "hash", "copy", "REPLACE")
    same_contents(twin, "copy")
    twin.same("COPY", kind, kind)
    twin.same("COPY", "missing", "copy2")
    # The copy is independent: changing it leaves the source as it was.
    fill(twin, "hash", "copy", "f1", "changed", "f9", "new")
    same_contents(twin, "hash", "copy")


def test_copy_to_another_db_keeps_the_expiry(twin: Twin) -> None:
    fill(twin, "zset", "z", "1", "a")
    twin.same("EXPIRE", "z", "100")
    twin.same("COPY", "z", "z", "DB", "3")
    twin.same("COPY", "z", "z", "DB", "3")
    twin.same("COPY", "z", "z", "DB", "99")
    twin.same("COPY", "z", "z", "DB", "x")
    twin.same("COPY", "z", "z", "DB")
    twin.same("SELECT", "3")
    twin.same("TYPE", "z")
    same_contents(twin, "z")
    ours_ttl, theirs_ttl = twin("TTL", "z")
    assert parse(ours_ttl) > 90 and parse(theirs_ttl) > 90


@pytest.mark.parametrize("kind", [*SAMPLES, "string"])
def test_rename_renamenx_move_carry_every_type(twin: Twin, kind: str) -> None:
    fill_all(twin)
    twin.same("EXPIRE", kind, "100")
    twin.same("RENAME", kind, "renamed")
    twin.same("TYPE", kind)
    same_contents(twin, "renamed")
    assert parse(twin("TTL", "renamed")[0]) > 90
    twin.same("RENAMENX", "renamed", "hash" if kind != "hash" else "list")
    twin.same("RENAMENX", "renamed", "again")
    twin.same("MOVE", "again", "2")
    twin.same("MOVE", "again", "2")
    twin.same("EXISTS", "again")
    twin.same("SELECT", "2")
    same_contents(twin, "again")
    assert parse(twin("TTL", "again")[0]) > 90


def test_swapdb_swaps_every_type(twin: Twin) -> None:
    fill_all(twin)
    twin.same("SELECT", "1")
    fill(twin, "list", "other", "q")
    twin.same("SWAPDB", "0", "1")
    same_contents(twin, "hash", "list", "set", "zset", "string", "other")
    twin.same("SELECT", "0")
    same_contents(twin, "hash", "other")


@pytest.mark.parametrize("kind", list(SAMPLES))
def test_expiry_commands_on_containers(twin: Twin, kind: str) -> None:
    fill(twin, kind, "k", *SAMPLES[kind])
    twin.same("TTL", "k")
    twin.same("EXPIRE", "k", "100", "NX")
    twin.same("EXPIRE", "k", "50", "GT")
    twin.same("PERSIST", "k")
    twin.same("TTL", "k")
    twin.same("PEXPIRE", "k", "100000")
    twin.same("EXPIRETIME", "missing")
    twin.same("PEXPIREAT", "k", "1")  # in the past: deleted
    twin.same("EXISTS", "k")
    twin.same("TYPE", "k")


def test_info_keyspace_counts_every_type(twin: Twin) -> None:
    fill_all(twin)
    twin.same("EXPIRE", "set", "100")
    twin.same("SELECT", "5")
    fill(twin, "hash", "h", "f", "v")
    for reply in twin("INFO", "keyspace"):
        text = parse(reply).decode()
        assert re.search(r"^db0:keys=5,expires=1,", text, re.M), text
        assert re.search(r"^db5:keys=1,expires=0,", text, re.M), text


# ------------------------------------------------------------------- SCAN


def _scan_all(twin: Twin, *options: str) -> tuple[list[bytes], list[bytes]]:
    found: list[list[bytes]] = [[], []]
    for side in (0, 1):
        cursor = b"0"
        while True:
            reply = parse(twin(*("SCAN", cursor.decode(), *options))[side])
            cursor, keys = reply
            found[side] += keys
            if cursor == b"0":
                break
    return sorted(found[0]), sorted(found[1])


@pytest.mark.parametrize(
    "options",
    [
        ("TYPE", "hash"),
        ("TYPE", "LIST"),
        ("TYPE", "set"),
        ("TYPE", "zset"),
        ("TYPE", "string"),
        ("TYPE", "none"),
        ("TYPE", "stream"),
        ("TYPE", "nosuchtype"),  # Redis 7.0: no error, nothing matches
        ("MATCH", "k1*", "TYPE", "set"),
        ("COUNT", "3", "TYPE", "zset", "MATCH", "*2*"),
    ],
)
def test_scan_type_filters_after_match(twin: Twin, options: tuple[str, ...]) -> None:
    for i in range(30):
        kind = list(SAMPLES)[i % 4]
        fill(twin, kind, f"k{i}", *SAMPLES[kind])
        twin.same("SET", f"s{i}", "v")
    ours_keys, theirs_keys = _scan_all(twin, *options)
    assert ours_keys == theirs_keys


def test_scan_type_option_errors(twin: Twin) -> None:
    twin.same("SCAN", "0", "TYPE")
    twin.same("SCAN", "0", "TYPE", "hash", "COUNT", "0")


# --------------------------------------------------------- strings vs types

#: Every string command that reads or changes a string, as (argv after the key).
STRING_COMMANDS: list[tuple[str, ...]] = [
    ("GET",),
    ("GETSET", "v"),
    ("SET", "v", "GET"),
    ("SET", "v", "NX", "GET"),
    ("APPEND", "v"),
    ("INCR",),
    ("DECR",),
    ("INCRBY", "2"),
    ("DECRBY", "2"),
    ("INCRBYFLOAT", "1.5"),
    ("SETRANGE", "0", "v"),
    ("SETRANGE", "3", ""),
    ("GETRANGE", "0", "-1"),
    ("SUBSTR", "0", "1"),
    ("STRLEN",),
    ("GETDEL",),
    ("GETEX",),
    ("GETEX", "EX", "100"),
    ("GETEX", "PERSIST"),
]


@pytest.mark.parametrize("kind", list(SAMPLES))
@pytest.mark.parametrize("command", STRING_COMMANDS, ids=" ".join)
def test_string_commands_on_other_types_are_wrongtype(
    twin: Twin, kind: str, command: tuple[str, ...]
) -> None:
    fill(twin, kind, "k", *SAMPLES[kind])
    name, *rest = command
    assert twin.same(name, "k", *rest) == WRONGTYPE
    same_contents(twin, "k")
    twin.same("TTL", "k")


def test_argument_errors_come_before_wrongtype_as_in_redis(twin: Twin) -> None:
    fill(twin, "hash", "h", "f", "v")
    twin.same("INCRBY", "h", "x")
    twin.same("INCRBYFLOAT", "h", "x")
    twin.same("SETRANGE", "h", "-1", "v")
    twin.same("GETRANGE", "h", "a", "1")
    twin.same("GETEX", "h", "EX", "0")
    twin.same("SET", "h", "v", "GET", "EX", "0")


def test_mget_reads_other_types_as_nil(twin: Twin) -> None:
    fill_all(twin)
    twin.same("MGET", "hash", "string", "list", "missing", "set", "zset")
    twin("HELLO", "3")  # the greetings differ (version, client id)
    twin.same("MGET", "zset", "string")


@pytest.mark.parametrize("kind", list(SAMPLES))
def test_set_and_mset_replace_any_type(twin: Twin, kind: str) -> None:
    for key in ("a", "b", "c", "d", "e", "f", "g"):
        fill(twin, kind, key, *SAMPLES[kind])
    twin.same("EXPIRE", "a", "100")
    twin.same("SET", "a", "1")
    twin.same("TTL", "a")
    twin.same("SETNX", "b", "1")
    twin.same("SET", "b", "1", "NX")
    twin.same("SET", "b", "1", "XX", "KEEPTTL")
    twin.same("SET", "c", "1", "EX", "100")
    twin.same("MSET", "d", "1", "x", "2")
    twin.same("MSETNX", "e", "1", "y", "2")
    twin.same("SETEX", "f", "100", "v")
    twin.same("PSETEX", "g", "100000", "v")
    same_contents(twin, "a", "b", "c", "d", "e", "f", "g", "x", "y")


# ----------------------------------------------------------- hypothesis

_KEYS = ["k0", "k1", "k2"]
_generic = st.one_of(
    st.tuples(
        st.sampled_from(["TYPE", "EXISTS", "DEL", "GET", "STRLEN", "INCR"]), st.sampled_from(_KEYS)
    ),
    st.tuples(
        st.sampled_from(["RENAME", "RENAMENX", "COPY"]),
        st.sampled_from(_KEYS),
        st.sampled_from(_KEYS),
    ),
    st.tuples(st.just("SET"), st.sampled_from(_KEYS), st.sampled_from(["1", "v", "x" * 50])),
    st.tuples(st.just("MGET"), st.sampled_from(_KEYS), st.sampled_from(_KEYS)),
    st.tuples(st.just("OBJECT"), st.just("ENCODING"), st.sampled_from(_KEYS)),
    st.tuples(
        st.just("fill"), st.sampled_from(list(SAMPLES)), st.sampled_from(_KEYS), st.integers(0, 3)
    ),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(_generic, min_size=1, max_size=25))
def test_generic_sessions_answer_as_redis(twin: Twin, session: list[tuple[Any, ...]]) -> None:
    twin.server.execute(twin.snapkv, ["FLUSHALL"])
    twin.raw("FLUSHALL")
    twin.same("CONFIG", "SET", "hash-max-listpack-entries", "3")
    twin.same("CONFIG", "SET", "zset-max-listpack-entries", "3")
    twin.same("CONFIG", "SET", "set-max-intset-entries", "3")
    for step in session:
        if step[0] == "fill":
            _, kind, key, size = step
            if ours(twin, key) is not None and ours(twin, key)[0] != kind:
                continue
            items = {
                "hash": lambda i: (f"f{i}", "v"),
                "list": lambda i: (str(i),),
                "set": lambda i, size=size: (str(i),) if size < 3 else (f"m{i}",),
                "zset": lambda i: (str(i), f"m{i}"),
            }[kind]
            fill(twin, kind, key, *[x for i in range(size + 1) for x in items(i)])
        else:
            twin.same(*step)
    for key in _KEYS:
        same_contents(twin, key)
