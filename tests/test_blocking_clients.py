"""Blocking pops as real client libraries use them, and what a served pop leaves on disk.

redis-py's ``blpop`` / ``brpop`` / ``blmove`` / ``bzpopmin`` (a worker
waiting in a thread for a job another connection pushes), its asyncio
client (many waiters on one event loop), RESP3, scripts, and a served pop
that must survive ``kill -9`` of ``snapkv serve`` as any other write does.
Waits are for a condition with a deadline (the server's count of blocked
clients), never a sleep.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import snapkv
from serving import serving
from snapkv import Store
from snapkv.server import Config
from support import wait_until
from test_server_e2e import DEADLINE, Running

redis = pytest.importorskip("redis")


@pytest.fixture
def running() -> Iterator[Running]:
    server = Running(Store(), Config(port=0))
    yield server
    server.stop()


def _blocked(client: Any) -> int:
    return int(client.info("clients")["blocked_clients"])


def _in_thread(call: Callable[[], Any]) -> Callable[[], Any]:
    """Run ``call`` in a thread; the returned function joins it and gives its result."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(call()), daemon=True)
    thread.start()

    def join() -> Any:
        thread.join(DEADLINE)
        assert not thread.is_alive(), "the blocking call never returned"
        return result[0]

    return join


def test_redis_py_workers_take_jobs_pushed_later(running: Running) -> None:
    producer = running.client(decode_responses=True)
    workers = [running.client(decode_responses=True) for _ in range(4)]
    calls: list[Callable[[], Any]] = [
        lambda: workers[0].blpop(["jobs", "other"], timeout=0),
        lambda: workers[1].brpop("jobs", timeout=5),
        lambda: workers[2].blmove("jobs", "done", 5, "LEFT", "RIGHT"),
        lambda: workers[3].bzpopmin("ranked", timeout=5),
    ]
    joins = []
    for n, call in enumerate(calls, 1):
        joins.append(_in_thread(call))
        wait_until(lambda n=n: _blocked(producer) == n, timeout=DEADLINE, what=f"{n} waiting")
    assert producer.rpush("jobs", "j1", "j2", "j3") == 3  # the length before any pop
    producer.zadd("ranked", {"low": 1, "high": 2})
    assert joins[0]() == ("jobs", "j1")
    assert joins[1]() == ("jobs", "j3")  # BRPOP: the tail
    assert joins[2]() == "j2"
    assert joins[3]() == ("ranked", "low", 1.0)
    assert producer.lrange("done", 0, -1) == ["j2"]
    assert producer.exists("jobs") == 0
    assert producer.zrange("ranked", 0, -1) == ["high"]


def test_redis_py_timeouts_return_none(running: Running) -> None:
    client = running.client(decode_responses=True)
    started = time.monotonic()
    assert client.blpop("none", timeout=0.05) is None
    assert client.brpop(["a", "b"], timeout=0.05) is None
    assert client.blmove("none", "dst", 0.05) is None
    assert client.bzpopmax("none", timeout=0.05) is None
    assert time.monotonic() - started >= 0.2
    assert client.ping()


def test_resp3_replies_and_timeouts(running: Running) -> None:
    client = running.client(decode_responses=True, protocol=3)
    client.zadd("z", {"a": 1.5})
    assert client.bzpopmin("z", timeout=1) == ["z", "a", 1.5]
    assert client.blmpop(0.05, 1, "none", direction="LEFT") is None
    client.rpush("l", "x", "y")
    assert client.blmpop(1, 2, "none", "l", direction="RIGHT", count=5) == ["l", ["y", "x"]]


def test_asyncio_clients_wait_on_one_loop(running: Running) -> None:
    aioredis = pytest.importorskip("redis.asyncio")

    async def main() -> list[Any]:
        waiters = [aioredis.Redis(port=running.port, decode_responses=True) for _ in range(5)]
        producer = aioredis.Redis(port=running.port, decode_responses=True)
        try:
            tasks = []
            for n, waiter in enumerate(waiters, 1):
                tasks.append(asyncio.create_task(waiter.blpop(["q"], timeout=0)))
                deadline = time.monotonic() + DEADLINE
                while int((await producer.info("clients"))["blocked_clients"]) != n:
                    assert time.monotonic() < deadline
            await producer.rpush("q", *[f"m{i}" for i in range(5)])
            return list(await asyncio.wait_for(asyncio.gather(*tasks), DEADLINE))
        finally:
            for client in (*waiters, producer):
                await client.aclose()

    got = asyncio.run(main())
    assert got == [("q", f"m{i}") for i in range(5)]  # first come, first served


def test_scripts_never_wait(running: Running) -> None:
    pytest.importorskip("lupa")
    client = running.client(decode_responses=True)
    assert client.eval("return redis.call('blmpop', '0', '1', 'none', 'LEFT')", 0) is None
    assert client.eval("return redis.call('bzmpop', '0', '1', 'none', 'MAX')", 0) is None
    with pytest.raises(redis.ResponseError, match="not allowed from script"):
        client.eval("return redis.call('blpop', 'none', '0')", 0)


def test_a_waiter_is_served_by_a_script_after_it_ends(running: Running) -> None:
    pytest.importorskip("lupa")
    client = running.client(decode_responses=True)
    waiter = running.client(decode_responses=True)
    join = _in_thread(lambda: waiter.blpop("k", timeout=0))
    wait_until(lambda: _blocked(client) == 1, timeout=DEADLINE, what="the waiter")
    # Push then pop in one script: nothing is left when the script ends.
    script = "redis.call('rpush', KEYS[1], 'a'); return redis.call('lpop', KEYS[1])"
    assert client.eval(script, 1, "k") == "a"
    assert _blocked(client) == 1
    assert client.eval("return redis.call('rpush', KEYS[1], 'b', 'c')", 1, "k") == 2
    assert join() == ("k", "b")
    assert client.lrange("k", 0, -1) == ["c"]


def test_a_served_pop_survives_kill_9(tmp_path: Path) -> None:
    with serving(tmp_path, "--appendonly", "yes", "--appendfsync", "always") as port:
        producer = redis.Redis(port=port, socket_timeout=DEADLINE, decode_responses=True)
        waiter = redis.Redis(port=port, socket_timeout=DEADLINE, decode_responses=True)
        join = _in_thread(lambda: waiter.brpoplpush("jobs", "taken", timeout=0))
        wait_until(lambda: _blocked(producer) == 1, timeout=DEADLINE, what="the waiter")
        producer.rpush("jobs", "first", "second")
        assert join() == "second"
        producer.close()
        waiter.close()
    # serving() ends snapkv serve with SIGKILL: no shutdown, no snapshot.
    with snapkv.open(tmp_path) as store:
        assert list(store.lists["jobs"]) == ["first"]
        assert list(store.lists["taken"]) == ["second"]
