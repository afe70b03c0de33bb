"""ZUNION, ZINTER, ZDIFF, their STORE forms and ZINTERCARD against the real redis-server 7.0.

Every reply is compared byte for byte with the reference (``twin``), in
RESP2 and RESP3; the STORE forms are checked through what they stored
(ZRANGE ... WITHSCORES, TYPE, TTL) and through the journal: one record per
command, replayed on reopen into the same sorted set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import snapkv
from snapkv.journal import scan_journal
from snapkv.server.client import Client
from snapkv.server.dispatch import Dispatcher
from snapkv.server.state import Config
from support import FakeClock

SEED = [
    ("ZADD", "z1", "1", "a", "2", "b", "3", "c", "inf", "i", "-inf", "n"),
    ("ZADD", "z2", "10", "b", "20", "c", "30", "d", "-inf", "i", "inf", "n"),
    ("ZADD", "z3", "0.1", "c", "0.2", "d", "0.3", "e"),
    ("SADD", "s", "a", "d", "x"),
    ("SET", "str", "v"),
]

SCENARIOS: dict[str, list[tuple[str, ...]]] = {
    "union": [
        ("ZUNION", "2", "z1", "z2"),
        ("ZUNION", "2", "z1", "z2", "WITHSCORES"),
        ("ZUNION", "3", "z1", "z2", "z3", "WEIGHTS", "1", "2", "3", "WITHSCORES"),
        ("ZUNION", "2", "z1", "z2", "AGGREGATE", "MIN", "WITHSCORES"),
        ("ZUNION", "2", "z1", "z2", "AGGREGATE", "max", "WITHSCORES"),
        ("ZUNION", "2", "z1", "z2", "WEIGHTS", "0", "1", "WITHSCORES"),
        ("ZUNION", "2", "z1", "s", "WITHSCORES"),
        ("ZUNION", "2", "s", "s", "WEIGHTS", "2", "0.5", "WITHSCORES"),
        ("ZUNION", "2", "z1", "nokey", "WITHSCORES"),
        ("ZUNION", "1", "nokey"),
        ("ZUNION", "1", "z3", "WEIGHTS", "-1", "WITHSCORES"),
        ("ZUNION", "1", "z1", "WEIGHTS", "inf", "WITHSCORES"),
    ],
    "inter": [
        ("ZINTER", "2", "z1", "z2", "WITHSCORES"),
        ("ZINTER", "3", "z1", "z2", "z3"),
        ("ZINTER", "2", "z2", "z3", "AGGREGATE", "MIN", "WITHSCORES"),
        ("ZINTER", "2", "z2", "z3", "WEIGHTS", "2", "-1", "AGGREGATE", "MAX", "WITHSCORES"),
        ("ZINTER", "2", "z1", "s", "WITHSCORES"),
        ("ZINTER", "2", "z1", "nokey"),
        ("ZINTER", "2", "z1", "z1", "WITHSCORES"),
        ("ZINTERCARD", "2", "z1", "z2"),
        ("ZINTERCARD", "2", "z1", "z2", "LIMIT", "1"),
        ("ZINTERCARD", "2", "z1", "z2", "LIMIT", "0"),
        ("ZINTERCARD", "1", "z1", "LIMIT", "100"),
        ("ZINTERCARD", "2", "z2", "s"),
        ("ZINTERCARD", "1", "nokey"),
    ],
    "diff": [
        ("ZDIFF", "2", "z1", "z2", "WITHSCORES"),
        ("ZDIFF", "2", "z2", "z1"),
        ("ZDIFF", "3", "z2", "z3", "s", "WITHSCORES"),
        ("ZDIFF", "1", "z3", "WITHSCORES"),
        ("ZDIFF", "2", "nokey", "z1"),
        ("ZDIFF", "2", "s", "z1", "WITHSCORES"),
        ("ZDIFF", "2", "z1", "z2", "WEIGHTS", "1", "2"),
        ("ZDIFF", "2", "z1", "z2", "AGGREGATE", "SUM"),
    ],
    "stores": [
        ("ZUNIONSTORE", "dst", "2", "z1", "z2"),
        ("ZRANGE", "dst", "0", "-1", "WITHSCORES"),
        ("ZINTERSTORE", "dst", "2", "z1", "z2", "WEIGHTS", "2", "3", "AGGREGATE", "MIN"),
        ("ZRANGE", "dst", "0", "-1", "WITHSCORES"),
        ("ZDIFFSTORE", "dst", "2", "z1", "z2"),
        ("ZRANGE", "dst", "0", "-1", "WITHSCORES"),
        ("ZINTERSTORE", "dst", "2", "z1", "nokey"),
        ("EXISTS", "dst"),
        ("ZINTERSTORE", "dst", "2", "z1", "nokey"),
        ("ZUNIONSTORE", "str", "1", "z3"),
        ("TYPE", "str"),
        ("SET", "ttl", "v", "EX", "100"),
        ("ZUNIONSTORE", "ttl", "1", "z3"),
        ("TTL", "ttl"),
        ("ZUNIONSTORE", "z1", "2", "z1", "z3"),
        ("ZRANGE", "z1", "0", "-1", "WITHSCORES"),
        ("ZDIFFSTORE", "s", "1", "s"),
        ("TYPE", "s"),
        ("ZRANGE", "s", "0", "-1", "WITHSCORES"),
        ("ZUNIONSTORE", "dst", "1", "z1", "WITHSCORES"),
    ],
    "errors": [
        ("ZUNION", "0", "z1"),
        ("ZUNION", "-1", "z1"),
        ("ZUNION", "x", "z1"),
        ("ZUNION", "3", "z1", "z2"),
        ("ZUNION", "2", "z1", "str"),
        ("ZUNION", "2", "str", "z1", "BOGUS"),
        ("ZUNION", "2", "z1", "z2", "BOGUS"),
        ("ZUNION", "2", "z1", "z2", "WEIGHTS", "1"),
        ("ZUNION", "2", "z1", "z2", "WEIGHTS", "1", "x"),
        ("ZUNION", "2", "z1", "z2", "WEIGHTS", "1", "nan"),
        ("ZUNION", "2", "z1", "z2", "AGGREGATE", "AVG"),
        ("ZUNION", "2", "z1", "z2", "AGGREGATE"),
        ("ZINTER", "2", "z1", "z2", "LIMIT", "1"),
        ("ZDIFF", "0", "z1"),
        ("ZUNIONSTORE", "d", "0", "z1"),
        ("ZUNIONSTORE", "d", "2", "z1"),
        ("ZINTERSTORE", "d", "1", "str"),
        ("ZDIFFSTORE", "d", "1", "z1", "WEIGHTS", "2"),
        ("ZINTERCARD", "0", "z1"),
        ("ZINTERCARD", "x", "z1"),
        ("ZINTERCARD", "2", "z1"),
        ("ZINTERCARD", "1", "z1", "LIMIT", "-1"),
        ("ZINTERCARD", "1", "z1", "LIMIT", "x"),
        ("ZINTERCARD", "1", "z1", "LIMIT"),
        ("ZINTERCARD", "1", "z1", "WITHSCORES"),
        ("ZINTERCARD", "1", "str"),
        ("ZUNION", "1"),
        ("ZUNIONSTORE", "d", "1"),
        ("ZINTERCARD", "1"),
    ],
}


@pytest.mark.parametrize("resp", [2, 3])
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_replies_equal_redis(twin: Any, name: str, resp: int) -> None:
    if resp == 3:
        twin("HELLO", "3")
    for argv in [*SEED, *SCENARIOS[name]]:
        twin.same(*argv)


def test_sum_of_opposite_infinities_is_zero_and_weights_of_zero_make_no_nan(twin: Any) -> None:
    twin.same("ZADD", "p", "inf", "a", "-inf", "b", "1", "c")
    twin.same("ZADD", "q", "-inf", "a", "inf", "b", "2", "c")
    twin.same("ZUNION", "2", "p", "q", "WITHSCORES")
    twin.same("ZINTER", "2", "p", "q", "WEIGHTS", "0", "1", "WITHSCORES")
    twin.same("ZUNIONSTORE", "r", "2", "p", "q", "WEIGHTS", "0", "0")
    twin.same("ZRANGE", "r", "0", "-1", "WITHSCORES")


def _dispatcher(store: snapkv.Store) -> tuple[Dispatcher, Client]:
    server = Dispatcher(store, Config())
    client = Client(server)
    server.add_client(client)
    return server, client


def _journal_ops(directory: Path) -> list[Any]:
    """The operations of the directory's newest journal, one per record."""
    newest = sorted(directory.glob("journal-*.skj"))[-1]
    return scan_journal(newest.read_bytes()).ops


def test_a_store_is_one_journal_record_replayed_on_reopen(tmp_path: Path) -> None:
    store = snapkv.open(tmp_path / "data", fsync="no")
    server, client = _dispatcher(store)
    for argv in SEED[:3]:
        server.execute(client, list(argv))
    server.execute(client, ["SET", "dst", "old", "EX", "100"])
    store.sync()
    before = len(_journal_ops(tmp_path / "data"))
    server.execute(client, ["ZUNIONSTORE", "dst", "3", "z1", "z2", "z3", "WEIGHTS", "1", "2", "3"])
    store.sync()
    ops = _journal_ops(tmp_path / "data")
    assert len(ops) == before + 1
    assert ops[-1][0] == "put"
    expected = store.zsets["dst"].range_by_rank(0, -1, with_scores=True)
    server.execute(client, ["ZINTERSTORE", "dst", "2", "z1", "nokey"])
    assert "dst" not in store
    server.execute(client, ["ZUNIONSTORE", "dst", "3", "z1", "z2", "z3", "WEIGHTS", "1", "2", "3"])
    server.execute(client, ["ZRANGESTORE", "r", "z2", "1", "-1"])
    server.execute(client, ["ZMPOP", "1", "z3", "MAX", "COUNT", "2"])
    store.close()
    again = snapkv.open(tmp_path / "data")
    try:
        assert again.zsets["dst"].range_by_rank(0, -1, with_scores=True) == expected
        assert again.ttl("dst") is None
        assert again.zsets["r"].range_by_rank(0, -1) == ["b", "c", "d", "n"]
        assert again.zsets["z3"].range_by_rank(0, -1) == ["c"]
    finally:
        again.close()


def test_store_forms_count_changes_as_redis_dirty() -> None:
    store = snapkv.Store()
    server, client = _dispatcher(store)
    for argv in SEED[:3]:
        server.execute(client, list(argv))
    dirty = server.dirty
    server.execute(client, ["ZUNIONSTORE", "d", "2", "z1", "z2"])
    assert server.dirty == dirty + 1
    server.execute(client, ["ZINTERSTORE", "d", "1", "nokey"])  # deletes d
    assert server.dirty == dirty + 2
    server.execute(client, ["ZINTERSTORE", "d", "1", "nokey"])  # nothing to delete
    assert server.dirty == dirty + 2
    server.execute(client, ["ZRANGESTORE", "d", "z1", "0", "1"])
    assert server.dirty == dirty + 3
    server.execute(client, ["ZMPOP", "2", "nokey", "z1", "MIN", "COUNT", "2"])
    assert server.dirty == dirty + 5
    store.close()


def test_watch_fails_on_the_destination_not_on_the_sources() -> None:
    store = snapkv.Store()
    server, watcher = _dispatcher(store)
    other = Client(server)
    server.add_client(other)
    server.execute(other, ["ZADD", "src", "1", "a"])
    server.execute(watcher, ["WATCH", "src"])
    server.execute(other, ["ZUNIONSTORE", "dst", "1", "src"])
    server.execute(other, ["ZRANGESTORE", "dst2", "src", "0", "-1"])
    server.execute(watcher, ["MULTI"])
    server.execute(watcher, ["ZCARD", "src"])
    assert server.execute(watcher, ["EXEC"]) == b"*1\r\n:1\r\n"
    server.execute(watcher, ["WATCH", "dst"])
    server.execute(other, ["ZINTERSTORE", "dst", "1", "src"])
    server.execute(watcher, ["MULTI"])
    server.execute(watcher, ["ZCARD", "dst"])
    assert server.execute(watcher, ["EXEC"]) == b"*-1\r\n"
    server.execute(watcher, ["WATCH", "src"])
    server.execute(other, ["ZMPOP", "1", "src", "MIN"])
    server.execute(watcher, ["MULTI"])
    server.execute(watcher, ["ZCARD", "src"])
    assert server.execute(watcher, ["EXEC"]) == b"*-1\r\n"
    store.close()


def test_inside_multi_exec_as_redis(twin: Any) -> None:
    for argv in SEED[:3]:
        twin.same(*argv)
    twin.same("MULTI")
    twin.same("ZUNIONSTORE", "dst", "2", "z1", "z2", "AGGREGATE", "MAX")
    twin.same("ZRANGESTORE", "r", "dst", "0", "1")
    twin.same("ZMPOP", "1", "dst", "MAX", "COUNT", "2")
    twin.same("ZINTERCARD", "2", "dst", "r")
    twin.same("ZUNION", "2", "dst", "nokey", "WITHSCORES")
    twin.same("EXEC")


def test_expired_inputs_are_missing_and_the_destination_loses_its_expiry() -> None:
    clock = FakeClock()
    store = snapkv.Store(clock=clock, sweep_interval=None)
    server, client = _dispatcher(store)
    server.execute(client, ["ZADD", "old", "1", "a"])
    server.execute(client, ["ZADD", "new", "2", "b"])
    server.execute(client, ["PEXPIRE", "old", "100"])
    server.execute(client, ["SET", "dst", "x", "PX", "50"])
    clock.advance(0.2)
    assert server.execute(client, ["ZUNIONSTORE", "dst", "2", "old", "new"]) == b":1\r\n"
    assert server.execute(client, ["ZRANGE", "dst", "0", "-1"]) == b"*1\r\n$1\r\nb\r\n"
    assert server.execute(client, ["PTTL", "dst"]) == b":-1\r\n"
    assert server.execute(client, ["ZADD", "old", "5", "c"]) == b":1\r\n"
    assert server.execute(client, ["ZRANGE", "old", "0", "-1", "WITHSCORES"]) == (
        b"*2\r\n$1\r\nc\r\n$1\r\n5\r\n"
    )
    store.close()
