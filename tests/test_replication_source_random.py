"""snapkv's replication stream checked write by write against a real redis-server replica.

Each write goes to ``snapkv serve``; ``WAIT 1`` makes sure the replica
applied what it produced; then every key of the keyspaces used is compared
on both (type, value, absolute expiry), with binary-safe clients. Compared
after *every* write, a wrong translation is seen at once, before a later
whole-key rewrite (LREM, LINSERT, DEL, a *STORE) can hide it; a
translation that is wrong only for some index (an LTRIM end, an LSET from
the tail) is met by the index edge cases every run draws (out of range,
negative, start past end, a single element).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from replica_support import Replica
from snapkv import Store
from snapkv.server import Config
from test_server_e2e import Running

redis = pytest.importorskip("redis")

_DBS = 3


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    """A snapkv server and its redis-server replica, as binary-safe single connections."""
    running = Running(Store(sweep_interval=0.01), Config(port=0))
    replica = Replica(tmp_path / "replica", running.port)
    try:
        replica.wait_linked()
        ours = redis.Redis(port=running.port, single_connection_client=True)
        theirs = redis.Redis(port=replica.port, single_connection_client=True)
        yield ours, theirs
        ours.close()
        theirs.close()
    finally:
        replica.stop()
        running.stop()


def _state(client: Any) -> dict[tuple[int, bytes], Any]:
    """Every key of the first keyspaces: type, value and PEXPIRETIME (three round trips each)."""
    state: dict[tuple[int, bytes], Any] = {}
    for db in range(_DBS):
        with client.pipeline(transaction=False) as pipe:
            pipe.execute_command("SELECT", db)
            pipe.keys("*")
            names = sorted(pipe.execute()[1])
        if not names:
            continue
        with client.pipeline(transaction=False) as pipe:
            pipe.execute_command("SELECT", db)
            for key in names:
                pipe.type(key)
            kinds = [kind.decode() for kind in pipe.execute()[1:]]
        with client.pipeline(transaction=False) as pipe:
            pipe.execute_command("SELECT", db)
            for key, kind in zip(names, kinds, strict=True):
                _read(pipe, key, kind)
                pipe.pexpiretime(key)
            replies = iter(pipe.execute()[1:])
        for key, kind in zip(names, kinds, strict=True):
            value = next(replies)
            if kind == "set":
                value = sorted(value)
            elif kind == "hash":
                value = sorted(value.items())
            elif kind == "stream":
                value = (value, next(replies))
            state[(db, key)] = (kind, value, next(replies))
    return state


def _read(pipe: Any, key: bytes, kind: str) -> None:
    if kind == "string":
        pipe.get(key)
    elif kind == "hash":
        pipe.hgetall(key)
    elif kind == "list":
        pipe.lrange(key, 0, -1)
    elif kind == "set":
        pipe.smembers(key)
    elif kind == "zset":
        pipe.zrange(key, 0, -1, withscores=True, score_cast_func=bytes)
    elif kind == "stream":
        pipe.xrange(key)
        pipe.execute_command("XINFO", "STREAM", key)
    else:
        raise AssertionError(f"{key!r}: type {kind}")


def _run(
    ours: Any, theirs: Any, seed: int, steps: int, draw: Callable[[random.Random], list[Any]]
) -> None:
    """``steps`` writes drawn by ``draw``, the two servers compared after each."""
    rng = random.Random(seed)
    for step in range(steps):
        argv = draw(rng)
        with contextlib.suppress(redis.ResponseError):  # WRONGTYPE, out of range...
            if argv[0] == "MULTI":  # a transaction: its commands, one EXEC
                with ours.pipeline(transaction=True) as tx:
                    for each in argv[1:]:
                        tx.execute_command(*each)
                    tx.execute(raise_on_error=False)
            else:
                ours.execute_command(*argv)
        assert ours.execute_command("WAIT", 1, 5000) == 1
        mine, replica = _state(ours), _state(theirs)
        if mine != replica:
            keys = {k for k in set(mine) | set(replica) if mine.get(k) != replica.get(k)}
            detail = {k: (mine.get(k), replica.get(k)) for k in sorted(keys)}
            pytest.fail(f"seed {seed} step {step}: {argv!r} left {detail!r}")


_VALUES = [b"a", b"b", b"dup", b"", b"1", b"x y", b"\xff\xfe\x00bin", "é".encode()]


def _index(rng: random.Random) -> int:
    """A list index: mostly near the ends, sometimes far outside."""
    return rng.choice([rng.randrange(-7, 8), rng.randrange(-7, 8), rng.choice([-100, 100])])


def _list_command(rng: random.Random) -> list[Any]:
    n = rng.randrange(2)
    key, other = f"l{n}", f"l{1 - n}"
    value = rng.choice(_VALUES)
    values = [rng.choice(_VALUES) for _ in range(rng.randrange(1, 5))]
    choices: list[list[Any]] = [
        ["RPUSH", key, *values],
        ["RPUSH", key, *values],
        ["LPUSH", key, *values],
        ["LPUSHX", key, value],
        ["RPUSHX", key, value],
        ["LPOP", key, rng.randrange(1, 4)],
        ["RPOP", key],
        ["LTRIM", key, _index(rng), _index(rng)],
        ["LTRIM", key, _index(rng), _index(rng)],
        ["LTRIM", key, rng.randrange(3), -rng.randrange(1, 4)],
        ["LSET", key, _index(rng), value],
        ["LINSERT", key, rng.choice(["BEFORE", "AFTER"]), value, b"ins"],
        ["LREM", key, rng.randrange(-2, 3), value],
        ["LMOVE", key, other, rng.choice(["LEFT", "RIGHT"]), rng.choice(["LEFT", "RIGHT"])],
        ["LMOVE", key, key, "LEFT", "RIGHT"],
        ["RPOPLPUSH", key, other],
        ["LMPOP", 2, key, other, rng.choice(["LEFT", "RIGHT"]), "COUNT", rng.randrange(1, 3)],
        ["SORT", key, "ALPHA", "STORE", other],
        ["COPY", key, other, "REPLACE"],
        ["EXPIRE", key, rng.randrange(100, 1000)],
    ]
    return rng.choice(choices)


@pytest.mark.parametrize("seed", range(3))
def test_every_list_effect_reaches_the_replica_as_redis_applies_it(
    pair: tuple[Any, Any], seed: int
) -> None:
    ours, theirs = pair
    _run(ours, theirs, seed, 250, _list_command)


def _score(rng: random.Random) -> Any:
    return rng.choice([0.1, -3, 1e10, 2, 1.5e-7, "inf", "-inf", 0.30000000000000004, 7])


def _mixed_command(rng: random.Random) -> list[Any]:
    """The other families: strings, expiry, hashes, sets, sorted sets, streams, keys, scripts."""
    n = rng.randrange(2)
    value = rng.choice(_VALUES)
    now_ms = 1_700_000_000_000
    ttl = rng.choice([-5, 0, 200, 900])  # none that ends while the state is read
    choices: list[list[Any]] = [
        ["SET", f"s{n}", value, "PX", rng.randrange(60_000, 90_000)],
        ["SET", f"s{n}", value, "KEEPTTL"],
        ["SET", f"s{n}", value, "GET"],
        ["SET", f"s{n}", value, "NX", "EX", 300],
        ["APPEND", f"s{n}", value],
        ["SETRANGE", f"s{n}", rng.randrange(6), value],
        ["INCRBYFLOAT", f"f{n}", rng.choice(["0.1", "1e3", "-2.5", "3.0e-5"])],
        ["INCRBY", f"i{n}", rng.randrange(-5, 6)],
        ["GETEX", f"s{n}", "EX", rng.randrange(100, 500)],
        ["GETEX", f"s{n}", "PERSIST"],
        ["GETDEL", f"s{n}"],
        ["SETBIT", f"b{n}", rng.randrange(40), rng.randrange(2)],
        ["EXPIRE", rng.choice([f"s{n}", f"h{n}", f"z{n}"]), ttl],
        ["EXPIRE", f"s{n}", rng.randrange(100, 900), rng.choice(["NX", "XX", "GT", "LT"])],
        ["PEXPIREAT", rng.choice([f"s{n}", f"set{n}"]), rng.choice([now_ms, now_ms * 2])],
        ["PERSIST", rng.choice([f"s{n}", f"h{n}"])],
        ["HSET", f"h{n}", f"f{rng.randrange(3)}", value],
        ["HINCRBYFLOAT", f"h{n}", "num", rng.choice(["0.1", "1.5", "-7e-3"])],
        ["HSETNX", f"h{n}", f"f{rng.randrange(3)}", value],
        ["HDEL", f"h{n}", f"f{rng.randrange(3)}"],
        ["SADD", f"set{n}", value, b"m"],
        ["SPOP", f"set{n}", rng.randrange(1, 3)],
        ["SMOVE", f"set{n}", f"set{1 - n}", value],
        ["SINTERSTORE", f"set{1 - n}", f"set{n}", f"set{1 - n}"],
        ["SDIFFSTORE", f"set{1 - n}", f"set{n}", "nothing"],
        ["ZADD", f"z{n}", _score(rng), value],
        ["ZADD", f"z{n}", rng.choice(["NX", "XX", "GT", "LT"]), "CH", _score(rng), value],
        ["ZADD", f"z{n}", "INCR", _score(rng), value],
        ["ZINCRBY", f"z{n}", rng.choice([0.1, 1.25, -1e-9]), value],
        ["ZPOPMIN", f"z{n}", rng.randrange(1, 3)],
        ["ZREMRANGEBYRANK", f"z{n}", 0, rng.randrange(-2, 2)],
        ["ZRANGESTORE", f"z{1 - n}", f"z{n}", 0, -1],
        ["ZUNIONSTORE", f"z{1 - n}", 2, f"z{n}", f"z{1 - n}", "WEIGHTS", 0.1, 3],
        ["XADD", f"x{n}", "MAXLEN", "~", rng.randrange(1, 4), "*", "f", value],
        ["XADD", f"x{n}", "*", "f", value],
        ["XTRIM", f"x{n}", rng.choice(["MAXLEN", "MINID"]), rng.randrange(3)],
        ["XDEL", f"x{n}", "0-1"],
        ["COPY", rng.choice([f"h{n}", f"z{n}", f"x{n}"]), f"c{n}", "DB", rng.randrange(_DBS)],
        ["MOVE", rng.choice([f"s{n}", f"h{n}"]), rng.randrange(1, _DBS)],
        ["RENAME", rng.choice([f"s{n}", f"z{n}", f"x{n}"]), f"r{n}"],
        ["UNLINK", f"r{n}", f"c{n}"],
        ["SWAPDB", 0, rng.randrange(1, _DBS)],
        ["EVAL", "redis.call('SET', KEYS[1], tostring(math.random())) return 1", 1, f"s{n}"],
        ["EVAL", "redis.call('SET', KEYS[1], redis.call('TIME')[1]) return 1", 1, f"t{n}"],
        [  # a script that fails half-way: what it wrote stays, on both
            "EVAL",
            "redis.call('SPOP', KEYS[1]); redis.call('LPUSH', KEYS[2], 1); return 1",
            2,
            f"set{n}",
            f"s{n}",
        ],
    ]
    return rng.choice(choices)


@pytest.mark.parametrize("seed", range(3))
def test_every_other_family_reaches_the_replica_as_redis_applies_it(
    pair: tuple[Any, Any], seed: int
) -> None:
    ours, theirs = pair
    _run(ours, theirs, seed, 250, _mixed_command)


def _transaction(rng: random.Random) -> list[Any]:
    """A transaction of list and other writes, with RENAME and SWAPDB tying keys together."""
    block: list[Any] = []
    for _ in range(rng.randrange(2, 7)):
        roll = rng.random()
        if roll < 0.45:
            block.append(_list_command(rng))
        elif roll < 0.85:
            block.append(_mixed_command(rng))
        elif roll < 0.95:
            block.append(["RENAME", rng.choice(["l0", "l1", "s0"]), rng.choice(["l0", "l1", "m"])])
        else:
            block.append(["SWAPDB", 0, 1])
    return ["MULTI", *block]


@pytest.mark.parametrize("seed", range(2))
def test_transactions_of_every_family_reach_the_replica_as_redis_applies_them(
    pair: tuple[Any, Any], seed: int
) -> None:
    ours, theirs = pair
    _run(ours, theirs, seed, 200, _transaction)
