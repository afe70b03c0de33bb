"""OBJECT, MEMORY and the encoding settings against the real Redis 7.0.

OBJECT ENCODING is compared at and around every threshold of every type,
with Redis's defaults and with thresholds changed by CONFIG SET on both
sides (each value made in one command, so Redis's answer does not depend
on a conversion history snapkv does not keep). CONFIG GET/SET of the
thresholds and their ``ziplist`` aliases answer as Redis's, errors
included. MEMORY USAGE is snapkv's own estimate: checked for its shape
and for growing with the value, and its errors against Redis's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import Twin
from snapkv.server import conf
from snapkv.server.cmd_object import THRESHOLDS, memory_usage
from test_server_generic_types import RESET_ENCODINGS, fill, parse


@pytest.fixture
def twin(twin: Twin) -> Iterator[Twin]:
    """The conftest's Twin; the reference's encoding thresholds are reset afterwards."""
    yield twin
    twin.raw("CONFIG", "SET", *RESET_ENCODINGS)


def _hash(fields: int, width: int = 1) -> tuple[str, ...]:
    return tuple(x for i in range(fields) for x in (f"f{i}", "v" * width))


def _zset(members: int, width: int = 1) -> tuple[str, ...]:
    return tuple(x for i in range(members) for x in (str(i), f"{i:0{width}d}"))


# --------------------------------------------------------------- strings


@pytest.mark.parametrize(
    "value",
    [
        "0",
        "12",
        "-5",
        "9999",
        "10000",
        "9223372036854775807",
        "-9223372036854775808",
        "9223372036854775808",
        "01",
        "+1",
        "-0",
        " 1",
        "1.5",
        "",
        "x" * 44,
        "x" * 45,
        "é" * 22,
        "é" * 23,
        "12345678901234567890123",
    ],
)
def test_string_encodings_and_refcounts(twin: Twin, value: str) -> None:
    twin.same("SET", "k", value)
    twin.same("OBJECT", "ENCODING", "k")
    twin.same("OBJECT", "REFCOUNT", "k")
    twin.same("MSET", "m", value)
    twin.same("OBJECT", "ENCODING", "m")


def test_counters_are_int_encoded(twin: Twin) -> None:
    twin.same("INCRBY", "n", "41")
    twin.same("OBJECT", "ENCODING", "n")
    twin.same("OBJECT", "REFCOUNT", "n")
    twin.same("INCRBY", "n", "100000")
    twin.same("OBJECT", "REFCOUNT", "n")


# ------------------------------------------------------------- containers


@pytest.mark.parametrize(
    ("kind", "items"),
    [
        ("hash", _hash(1)),
        ("hash", _hash(512)),
        ("hash", _hash(513)),
        ("hash", _hash(3, 64)),
        ("hash", _hash(3, 65)),
        ("hash", ("f" * 65, "v")),
        ("list", ("a",)),
        ("list", tuple(map(str, range(1000)))),
        ("set", ("1", "2", "-3")),
        ("set", tuple(map(str, range(512)))),
        ("set", tuple(map(str, range(513)))),
        ("set", ("1", "x")),
        ("set", ("1", "01")),
        ("set", ("9223372036854775807", "-9223372036854775808")),
        ("set", ("9223372036854775808",)),
        ("zset", _zset(1)),
        ("zset", _zset(128)),
        ("zset", _zset(129)),
        ("zset", _zset(3, 64)),
        ("zset", _zset(3, 65)),
    ],
    ids=lambda x: x if isinstance(x, str) else f"{len(x)} items",
)
def test_container_encodings_at_the_default_thresholds(
    twin: Twin, kind: str, items: tuple[str, ...]
) -> None:
    fill(twin, kind, "k", *items)
    twin.same("OBJECT", "ENCODING", "k")
    twin.same("OBJECT", "REFCOUNT", "k")
    twin.same("TYPE", "k")


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4])
def test_container_encodings_follow_config_set(twin: Twin, size: int) -> None:
    twin.same("CONFIG", "SET", "hash-max-listpack-entries", "2", "hash-max-listpack-value", "3")
    twin.same("CONFIG", "SET", "zset-max-ziplist-entries", "2", "zset-max-ziplist-value", "3")
    twin.same("CONFIG", "SET", "set-max-intset-entries", "2")
    if size:
        fill(twin, "hash", "h", *_hash(size))
        fill(twin, "hash", "hw", *_hash(1, size))
        fill(twin, "zset", "z", *_zset(size))
        fill(twin, "zset", "zw", *_zset(1, size))
        fill(twin, "set", "s", *map(str, range(size)))
    for key in ("h", "hw", "z", "zw", "s"):
        twin.same("OBJECT", "ENCODING", key)


def test_zero_thresholds_make_every_container_large(twin: Twin) -> None:
    twin.same("CONFIG", "SET", "hash-max-listpack-entries", "0", "zset-max-listpack-value", "0")
    twin.same("CONFIG", "SET", "set-max-intset-entries", "0")
    fill(twin, "hash", "h", "f", "v")
    fill(twin, "zset", "z", "1", "m")
    fill(twin, "set", "s", "1")
    for key in ("h", "z", "s"):
        twin.same("OBJECT", "ENCODING", key)


# ----------------------------------------------------- the other subcommands


def test_object_subcommands_and_errors(twin: Twin) -> None:
    fill(twin, "hash", "h", "f", "v")
    twin.same("OBJECT", "IDLETIME", "h")
    twin.same("OBJECT", "FREQ", "h")
    twin.same("OBJECT", "FREQ", "missing")
    twin.same("OBJECT", "IDLETIME", "missing")
    twin.same("OBJECT", "ENCODING", "missing")
    twin.same("OBJECT", "REFCOUNT", "missing")
    twin.same("OBJECT", "HELP")
    twin.same("OBJECT", "help")
    twin.same("OBJECT", "NOPE", "h")
    twin.same("OBJECT")
    twin.same("OBJECT", "ENCODING")
    twin.same("OBJECT", "ENCODING", "h", "extra")
    twin.same("CONFIG", "SET", "maxmemory-policy", "allkeys-lfu")
    try:
        twin.same("OBJECT", "IDLETIME", "h")
        twin.same("OBJECT", "FREQ", "missing")
        twin.same("SET", "n", "5")
        twin.same("OBJECT", "REFCOUNT", "n")  # no maxmemory: still shared
    finally:
        twin.same("CONFIG", "SET", "maxmemory-policy", "noeviction")


def test_memory_usage_errors_as_redis(twin: Twin) -> None:
    twin.same("SET", "s", "v")
    twin.same("MEMORY", "USAGE", "missing")
    twin.same("MEMORY", "USAGE", "missing", "SAMPLES", "x")  # options first
    twin.same("MEMORY", "USAGE", "s", "SAMPLES")
    twin.same("MEMORY", "USAGE", "s", "SAMPLES", "-1")
    twin.same("MEMORY", "USAGE", "s", "FOO", "1")
    twin.same("MEMORY", "USAGE")
    twin.same("MEMORY", "NOPE")


def test_memory_usage_estimates_grow_with_the_value(twin: Twin) -> None:
    execute = twin.server.execute

    def usage(*argv: str) -> int:
        reply = parse(execute(twin.snapkv, ["MEMORY", "USAGE", *argv]))
        assert isinstance(reply, int)
        return reply

    twin.same("SET", "small", "v")
    twin.same("SET", "large", "v" * 10_000)
    assert 10_000 < usage("large") < 10_400 and usage("small") < 200
    fill(twin, "hash", "h10", *_hash(10))
    fill(twin, "hash", "h1000", *_hash(1000))
    assert usage("h1000") > 50 * usage("h10") / 10
    # Five samples of small members, then one huge: SAMPLES 0 measures it.
    fill(twin, "list", "l", *["a"] * 5, "b" * 100_000)
    assert usage("l") < 5_000
    assert usage("l", "SAMPLES", "0") > 100_000
    fill(twin, "zset", "z", *_zset(100))
    fill(twin, "set", "s", *map(str, range(100)))
    assert usage("z") > usage("s") > 100 * 8


def test_memory_usage_scales_its_samples_to_the_whole() -> None:
    from snapkv.values import lists

    value = lists.List(["a"] * 10 + ["b" * 1000] * 10)
    exact = memory_usage("k", value, 0)
    assert memory_usage("k", value, 10) < exact < memory_usage("k", value, 20) + 1
    assert memory_usage("k", value, 20) == exact


def test_memory_help_is_redis_text(twin: Twin) -> None:
    twin.same("MEMORY", "HELP")


def test_memory_stats_has_redis_fields_in_order(twin: Twin) -> None:
    for i in range(20):
        twin.same("SET", f"k{i}", "v")
    twin.same("SET", "e", "v", "EX", "100")
    ours = parse(twin.server.execute(twin.snapkv, ["MEMORY", "STATS"]))
    theirs = parse(twin.raw("MEMORY", "STATS"))
    assert ours[0::2] == theirs[0::2]  # every name, in Redis's order (db.0 included)
    fields = dict(zip(ours[0::2], ours[1::2], strict=True))
    assert fields[b"keys.count"] == 21
    db0 = dict(zip(fields[b"db.0"][0::2], fields[b"db.0"][1::2], strict=True))
    assert db0[b"overhead.hashtable.main"] == 21 * 24
    assert db0[b"overhead.hashtable.expires"] == 24
    assert fields[b"total.allocated"] >= fields[b"startup.allocated"] > 0


def test_memory_doctor_purge_and_malloc_stats(twin: Twin) -> None:
    # Little data: Redis's words when it has under 5 MB (the reference server's
    # own figure depends on the tests before, so only snapkv's reply is compared).
    doctor = twin.server.execute(twin.snapkv, ["MEMORY", "DOCTOR"])
    assert doctor.startswith(b"$268\r\nHi Sam, this instance is empty or is using very little")
    assert doctor.endswith(b"as soon as I finished rebooting.\n\r\n")
    twin.same("MEMORY", "PURGE")
    ours = twin.server.execute(twin.snapkv, ["MEMORY", "MALLOC-STATS"])
    assert ours == b"$45\r\nStats not supported for the current allocator\r\n"


# ------------------------------------------------------------- the settings

NAMES = [
    "hash-max-listpack-entries",
    "hash-max-ziplist-entries",
    "hash-max-listpack-value",
    "hash-max-ziplist-value",
    "list-max-listpack-size",
    "list-max-ziplist-size",
    "list-compress-depth",
    "set-max-intset-entries",
    "zset-max-listpack-entries",
    "zset-max-ziplist-entries",
    "zset-max-listpack-value",
    "zset-max-ziplist-value",
]


@pytest.mark.parametrize("name", NAMES)
def test_config_get_and_set_of_each_threshold(twin: Twin, name: str) -> None:
    twin.same("CONFIG", "GET", name)
    twin.same("CONFIG", "GET", name.upper())
    for value in ("7", "0", "-1", "abc", "1k", "1kb", "01", "+1", "99999999999999999999", ""):
        twin.same("CONFIG", "SET", name, value)
        twin.same("CONFIG", "GET", name)
    twin.same("CONFIG", "SET", name, "5", name, "6")
    twin.same("CONFIG", "GET", name)


def test_config_get_patterns_list_names_and_aliases(twin: Twin) -> None:
    for pattern in ("*max-*-entries*", "*ziplist*", "list-*", "set-max-listpack-entries"):
        ours, theirs = twin("CONFIG", "GET", pattern)
        pairs = lambda flat: dict(zip(flat[::2], flat[1::2], strict=True))  # noqa: E731
        assert pairs(parse(ours)) == pairs(parse(theirs)), pattern
    twin.same("CONFIG", "SET", "set-max-listpack-entries", "5")  # 7.2's: unknown in 7.0
    twin.same("CONFIG", "SET", "hash-max-listpack-entries", "5", "hash-max-ziplist-entries", "6")
    twin.same("CONFIG", "GET", "hash-max-listpack-entries")


def test_the_thresholds_defaults_agree() -> None:
    for name, default in THRESHOLDS.items():
        assert conf.ENCODINGS[name.replace("_", "-")].default == default


def test_a_config_file_line_is_noted_until_the_config_can_keep_it(tmp_path: Path) -> None:
    from snapkv.cli_serve import read_serve_config

    path = tmp_path / "snapkv.conf"
    path.write_text("hash-max-listpack-entries 5\n")
    reader = read_serve_config(str(path))
    kept = {f.name for f in dataclasses.fields(reader.config)}
    if "hash_max_listpack_entries" in kept:
        assert reader.config.hash_max_listpack_entries == 5  # type: ignore[attr-defined]
    else:
        assert any("'hash-max-listpack-entries'" in note for note in reader.notes)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    entries=st.integers(0, 4),
    width=st.integers(0, 4),
    kind=st.sampled_from(["hash", "zset", "set"]),
    size=st.integers(1, 6),
    longest=st.integers(1, 6),
    numeric=st.booleans(),
)
def test_generated_values_and_thresholds_encode_as_redis(
    twin: Twin, *, entries: int, width: int, kind: str, size: int, longest: int, numeric: bool
) -> None:
    """Values made in one command (so Redis's answer has no history) under small thresholds."""
    twin.server.execute(twin.snapkv, ["FLUSHALL"])
    twin.raw("FLUSHALL")
    if kind == "set":
        twin.same("CONFIG", "SET", "set-max-intset-entries", str(entries))
    else:
        twin.same("CONFIG", "SET", f"{kind}-max-listpack-entries", str(entries))
        twin.same("CONFIG", "SET", f"{kind}-max-listpack-value", str(width))
    words = [(str(i) if numeric else chr(97 + i)) * (1 + i % longest) for i in range(size)]
    if kind == "hash":
        fill(twin, kind, "k", *[x for w in words for x in (w, w[: width + 1])])
    elif kind == "zset":
        fill(twin, kind, "k", *[x for i, w in enumerate(words) for x in (str(i), w)])
    else:
        fill(twin, kind, "k", *dict.fromkeys(words))
    twin.same("OBJECT", "ENCODING", "k")


def test_a_config_file_sets_the_encoding_thresholds_by_either_name(tmp_path: Path) -> None:
    from snapkv.server.conf import ConfigReader
    from snapkv.server.state import Config

    conf = tmp_path / "snapkv.conf"
    conf.write_text("hash-max-ziplist-entries 2\nzset-max-listpack-value 8\n", encoding="utf-8")
    reader = ConfigReader(Config())
    reader.read(str(conf))
    reader.finish()
    assert reader.notes == []  # applied, not ignored
    assert reader.config.hash_max_listpack_entries == 2
    assert reader.config.zset_max_listpack_value == 8


# ------------------------------------------------------ last use, frequency


class Clock:
    """A clock the test moves: ``Access.clock``."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _clocked(twin: Twin) -> Clock:
    """Start keeping times (the first OBJECT IDLETIME) on a clock the test moves."""
    from snapkv.server.access import access_of

    twin.server.execute(twin.snapkv, ["OBJECT", "IDLETIME", "nosuch"])
    access = access_of(twin.server)
    assert access is not None
    clock = Clock()
    access.clock = clock
    access.since = clock.now
    return clock


def idle(twin: Twin, key: str) -> object:
    return parse(twin.server.execute(twin.snapkv, ["OBJECT", "IDLETIME", key]))


def test_idletime_counts_from_the_last_use_and_not_from_ttl_type_exists(twin: Twin) -> None:
    run = twin.server.execute
    me = twin.snapkv
    clock = _clocked(twin)
    run(me, ["SET", "a", "1"])
    run(me, ["RPUSH", "l", "x"])
    clock.now += 30
    assert idle(twin, "a") == 30 and idle(twin, "l") == 30
    for argv in (
        ["TTL", "a"],
        ["PTTL", "a"],
        ["TYPE", "a"],
        ["EXISTS", "a"],
        ["OBJECT", "ENCODING", "a"],
    ):
        run(me, argv)
    run(me, ["MEMORY", "USAGE", "a"])
    assert idle(twin, "a") == 30  # none of those touch, as Redis's LOOKUP_NOTOUCH
    run(me, ["GET", "a"])
    run(me, ["LRANGE", "l", "0", "-1"])
    assert idle(twin, "a") == 0 and idle(twin, "l") == 0
    clock.now += 7
    run(me, ["TOUCH", "a", "nosuch"])
    assert idle(twin, "a") == 0 and idle(twin, "l") == 7
    assert idle(twin, "nosuch") is None


def test_no_touch_clients_do_not_touch_but_touch_does(twin: Twin) -> None:
    run = twin.server.execute
    me = twin.snapkv
    clock = _clocked(twin)
    run(me, ["SET", "a", "1"])
    run(me, ["CLIENT", "NO-TOUCH", "ON"])
    clock.now += 5
    run(me, ["GET", "a"])
    assert idle(twin, "a") == 5
    run(me, ["TOUCH", "a"])
    assert idle(twin, "a") == 0


def test_keys_before_keeping_began_count_from_then(twin: Twin) -> None:
    twin.server.execute(twin.snapkv, ["SET", "old", "1"])
    clock = _clocked(twin)
    clock.now += 12
    assert idle(twin, "old") == 12


def test_freq_is_an_lfu_counter_under_an_lfu_policy(twin: Twin) -> None:
    run = twin.server.execute
    me = twin.snapkv
    run(me, ["SET", "a", "1"])
    assert run(me, ["OBJECT", "FREQ", "a"]).startswith(b"-ERR An LFU maxmemory policy is not")
    try:
        assert run(me, ["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"]) == b"+OK\r\n"
        assert parse(run(me, ["OBJECT", "FREQ", "a"])) == 5  # Redis's LFU_INIT_VAL
        for _ in range(200):
            run(me, ["GET", "a"])
        grown = parse(run(me, ["OBJECT", "FREQ", "a"]))
        assert 6 <= grown <= 40  # logarithmic: lfu-log-factor 10 keeps it low
        assert parse(run(me, ["OBJECT", "FREQ", "a"])) == grown  # OBJECT does not touch
        assert run(me, ["OBJECT", "IDLETIME", "a"]).startswith(b"-ERR An LFU maxmemory policy is")
    finally:
        run(me, ["CONFIG", "SET", "maxmemory-policy", "noeviction"])


def test_a_key_made_under_an_lfu_policy_starts_at_lfu_init(twin: Twin) -> None:
    """Creating a key is no use of it (Redis's lookup finds nothing to touch): 5, then 6."""
    try:
        twin.same("CONFIG", "SET", "maxmemory-policy", "allkeys-lfu")
        for argv in (["SET", "n", "v"], ["RPUSH", "l", "a"], ["SET", "n2", "v"], ["DEL", "n2"]):
            twin.same(*argv)
        twin.same("SET", "n2", "again")  # made anew: its old counter is gone
        for key in ("n", "l", "n2"):
            twin.same("OBJECT", "FREQ", key)
        twin.same("GET", "n")  # from 5 the first use always counts
        twin.same("OBJECT", "FREQ", "n")
    finally:
        twin.same("CONFIG", "SET", "maxmemory-policy", "noeviction")


def test_entries_of_deleted_keys_are_dropped(twin: Twin) -> None:
    from snapkv.server.access import access_of

    run = twin.server.execute
    me = twin.snapkv
    _clocked(twin)
    for i in range(3000):
        run(me, ["SET", f"k{i}", "v"])
        run(me, ["DEL", f"k{i}"])
    access = access_of(twin.server)
    assert access is not None
    assert len(access.times[0]) <= 1024 + 2


def test_swapdb_and_flushall_carry_the_times_along(twin: Twin) -> None:
    run = twin.server.execute
    me = twin.snapkv
    clock = _clocked(twin)
    run(me, ["SET", "a", "1"])  # used at 1000, in keyspace 0
    clock.now += 50
    run(me, ["SELECT", "1"])
    run(me, ["SET", "a", "2"])  # used at 1050, in keyspace 1
    clock.now += 10
    run(me, ["SWAPDB", "0", "1"])
    assert idle(twin, "a") == 60  # keyspace 1 now holds the older one
    run(me, ["SELECT", "0"])
    assert idle(twin, "a") == 10
    run(me, ["FLUSHALL"])
    from snapkv.server.access import access_of

    access = access_of(twin.server)
    assert access is not None and not any(access.times.values())
    run(me, ["SET", "a", "3"])
    assert idle(twin, "a") == 0


def test_memory_doctor_answers_with_keys_that_expire(twin: Twin) -> None:
    """MEMORY DOCTOR over keys with expiry times: it once took the Store's lock twice (a hang)."""
    twin.same("SET", "k", "v", "PX", "100000")
    ours, _ = twin("MEMORY", "DOCTOR")
    assert ours.startswith(b"$")
