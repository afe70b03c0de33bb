"""Every value type end to end: redis-py over real sockets; ``snapkv serve`` killed, restarted.

redis-py (sync and asyncio, RESP2 and RESP3, plain and MULTI/EXEC
pipelines) drives the generic commands on keys of every type, and the
same session against the real redis-server must give the same parsed
results. Then a ``snapkv serve`` process holding every type is killed
with SIGKILL, shut down, or snapshotted with BGSAVE, and restarted:
everything acknowledged is back, types, elements, scores and expiry.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from serving import serving
from snapkv import Store
from snapkv.server import Config
from support import wait_until
from test_server_e2e import DEADLINE, Running

redis = pytest.importorskip("redis")


@pytest.fixture
def running() -> Iterator[Running]:
    """A snapkv server on a free port, in a thread, stopped at the end."""
    server = Running(Store(), Config(port=0))
    yield server
    server.stop()


def _session(r: Any) -> list[Any]:
    """Generic commands on every type through redis-py's own methods; their results."""
    out: list[Any] = [
        r.hset("h", mapping={"f1": "1", "f2": "two"}),
        r.rpush("l", "3", "1", "2"),
        r.sadd("s", "b", "a", "c"),
        r.zadd("z", {"m1": 2.5, "m2": 1.0}),
        r.set("str", "v"),
    ]
    out += [r.type(k) for k in ("h", "l", "s", "z", "str", "missing")]
    out += [r.object("encoding", k) for k in ("h", "l", "s", "z", "str")]
    out += [r.sort("l"), r.sort("s", alpha=True, desc=True), r.sort("z", by="nosort")]
    out += [r.sort("l", by="nosort", get=["#", "h->f1"]), r.sort("l", store="sorted")]
    out += [r.lrange("sorted", 0, -1), r.copy("h", "h2"), r.hgetall("h2")]
    out += [r.rename("z", "z2"), r.zrange("z2", 0, -1, withscores=True)]
    out += [r.move("s", 1), r.exists("s", "h", "l"), r.expire("l", 100), r.ttl("l")]
    out += [sorted(r.scan_iter(_type="hash")), sorted(r.scan_iter(_type="ZSET"))]
    out += [r.mget("h", "str", "l")]
    for command in (lambda: r.get("h"), lambda: r.incr("l"), lambda: r.sort("h")):
        try:
            command()
        except redis.ResponseError as exc:
            out.append(str(exc))
    out += [r.dbsize(), r.delete("h", "h2", "missing"), r.dbsize()]
    return out


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_sees_what_redis_answers(running: Running, redis_port: int, protocol: int) -> None:
    reference = redis.Redis(port=redis_port, protocol=protocol, decode_responses=True)
    reference.flushall()
    try:
        expected = _session(reference)
    finally:
        reference.flushall()
        reference.close()
    got = _session(running.client(protocol=protocol, decode_responses=True))
    assert got == expected
    assert isinstance(running.client().memory_usage("sorted"), int)


def _pipeline(r: Any) -> list[Any]:
    pipe = r.pipeline(transaction=True)
    pipe.hset("h", "f", "1").rpush("l", "b", "a").sadd("s", "1", "2").zadd("z", {"a": 1})
    pipe.hincrby("h", "f", 5).incr("h").type("l").sort("l", alpha=True)
    pipe.copy("z", "z2").object("encoding", "s").sort("s", store="l2").lrange("l2", 0, -1)
    pipe.zscore("z2", "a").smembers("s").get("s").set("s", "now a string").type("s")
    return list(pipe.execute(raise_on_error=False))


@pytest.mark.parametrize("protocol", [2, 3])
def test_multi_exec_pipelines_mix_types(running: Running, redis_port: int, protocol: int) -> None:
    reference = redis.Redis(port=redis_port, protocol=protocol, decode_responses=True)
    reference.flushall()
    try:
        expected = _pipeline(reference)
    finally:
        reference.flushall()
        reference.close()
    got = _pipeline(running.client(protocol=protocol, decode_responses=True))
    as_text = [str(x) if isinstance(x, Exception) else x for x in got]
    assert as_text == [str(x) if isinstance(x, Exception) else x for x in expected]
    assert "WRONGTYPE" in as_text[5] and "WRONGTYPE" in as_text[14]


def test_asyncio_clients_with_every_type(running: Running) -> None:

    async def main() -> list[Any]:
        r = redis.asyncio.Redis(port=running.port, protocol=3, decode_responses=True)
        try:
            await r.hset("h", "f", "v")
            await r.lpush("l", "x", "y")
            await r.sadd("s", "m")
            await r.zadd("z", {"m": 2})
            async with r.pipeline(transaction=True) as pipe:
                pipe.type("h").type("l").type("s").type("z").sort("l", alpha=True)
                pipe.copy("h", "h2", replace=True).object("encoding", "z")
                return list(await pipe.execute())
        finally:
            await r.aclose()

    result = asyncio.run(main())
    assert result == ["hash", "list", "set", "zset", ["x", "y"], True, "listpack"]


# ------------------------------------------------------------ a real process


def _write_every_type(port: int) -> None:
    r = redis.Redis(port=port, socket_timeout=DEADLINE, decode_responses=True)
    with r:
        r.hset("h", mapping={f"f{i}": str(i) for i in range(600)})
        r.rpush("l", *map(str, range(100)))
        r.lpop("l")
        r.sadd("s", "a", "b", "c")
        r.srem("s", "b")
        r.zadd("z", {"a": 1.5, "b": -2.0, "c": float("inf")})
        r.expire("z", 1000)
        r.set("str", "v")
        r.sort("l", store="sorted", desc=True, start=0, num=5)
        r.copy("s", "s2", destination_db=3)
        r.rename("h", "h-renamed")


def _check_every_type(port: int) -> None:
    r = redis.Redis(port=port, socket_timeout=DEADLINE, decode_responses=True)
    with r:
        assert r.hgetall("h-renamed") == {f"f{i}": str(i) for i in range(600)}
        assert r.object("encoding", "h-renamed") == "hashtable"
        assert r.lrange("l", 0, -1) == list(map(str, range(1, 100)))
        assert r.smembers("s") == {"a", "c"}
        assert r.zrange("z", 0, -1, withscores=True) == [
            ("b", -2.0),
            ("a", 1.5),
            ("c", float("inf")),
        ]
        assert 900 < r.ttl("z") <= 1000
        assert r.get("str") == "v"
        assert r.lrange("sorted", 0, -1) == ["99", "98", "97", "96", "95"]
        assert [r.type(k) for k in ("h-renamed", "l", "s", "z", "str", "h")] == [
            "hash",
            "list",
            "set",
            "zset",
            "string",
            "none",
        ]
        r.select(3)
        assert r.smembers("s2") == {"a", "c"}


def test_kill_9_then_restart_keeps_every_type(tmp_path: Path) -> None:
    with serving(tmp_path, "--save", "") as port:
        _write_every_type(port)
    # serving() killed it (SIGKILL): the journal alone brings everything back.
    with serving(tmp_path, "--save", "") as port:
        _check_every_type(port)


def test_shutdown_then_restart_keeps_every_type(tmp_path: Path) -> None:
    with serving(tmp_path, "--save", "", "--appendonly", "no") as port:
        _write_every_type(port)
        # A raw socket: redis-py retries a command whose connection closes.
        with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as sock:
            sock.sendall(b"SHUTDOWN SAVE\r\n")
            assert sock.recv(64) == b""  # closed, with no reply: it exited
    with serving(tmp_path, "--save", "", "--appendonly", "no") as port:
        _check_every_type(port)


def test_bgsave_then_kill_9_keeps_every_type(tmp_path: Path) -> None:
    with serving(tmp_path, "--save", "", "--appendonly", "no") as port:
        _write_every_type(port)
        r = redis.Redis(port=port, socket_timeout=DEADLINE, decode_responses=True)
        with r:
            r.bgsave()
            wait_until(
                lambda: r.info("persistence")["rdb_bgsave_in_progress"] == 0,
                timeout=DEADLINE,
                what="BGSAVE to finish",
            )
            assert r.info("persistence")["rdb_last_bgsave_status"] == "ok"
    with serving(tmp_path, "--save", "", "--appendonly", "no") as port:
        _check_every_type(port)
