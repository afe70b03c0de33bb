"""redis-py against ``snapkv serve`` where several clients meet: locks, watched scripts,
sharded pub/sub, the pub/sub health check, and consumers competing for one queue.

The parts' own tests check each command's replies (against redis-server)
and redis-py's basic calls; these check what only shows when clients
interact as applications make them: mutual exclusion through ``Lock``
under contention, a script's write breaking another client's WATCH, a
pipeline whose script fails in the middle, redis-py's PING health checks
inside subscribed mode, and every queued item taken exactly once by
consumers that wait, time out and wait again. The server runs in-process
on its own event loop (``Running``); waits are for a condition with a
deadline, never a sleep.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from snapkv import Store
from snapkv.server import Config
from support import wait_until
from test_server_e2e import DEADLINE, Running

redis = pytest.importorskip("redis")
aioredis = pytest.importorskip("redis.asyncio")


@pytest.fixture
def running() -> Iterator[Running]:
    server = Running(Store(), Config(port=0))
    yield server
    server.stop()


def in_threads(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in ``count`` threads at once; their results (or exceptions re-raised)."""
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def target(i: int) -> None:
        try:
            results[i] = work(i)
        except BaseException as exc:  # re-raised in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE)
        assert not thread.is_alive(), "a thread never finished"
    if errors:
        raise errors[0]
    return results


# -------------------------------------------------------------------- Lock


def test_lock_gives_threads_mutual_exclusion(running: Running) -> None:
    """Four clients increment a counter by GET then SET, each inside the lock: none is lost."""
    rounds = 50

    def work(i: int) -> int:
        r = running.client()
        inside = 0
        for _ in range(rounds):
            with r.lock("counter-lock", timeout=DEADLINE, sleep=0.001, blocking_timeout=DEADLINE):
                value = int(r.get("counter") or 0)  # a lost update if two were inside
                r.set("counter", value + 1)
                inside += 1
        return inside

    assert in_threads(4, work) == [rounds] * 4
    r = running.client()
    assert int(r.get("counter")) == 4 * rounds
    assert r.exists("counter-lock") == 0  # the last release deleted it


def test_a_blocking_acquire_waits_for_the_release_then_for_the_expiry(running: Running) -> None:
    holder_client, waiter_client = running.client(), running.client()
    holder = holder_client.lock("res", timeout=DEADLINE)
    assert holder.acquire(blocking=False)
    # thread_local=False: the token a thread's acquire got is the lock's, for every thread.
    waiter = waiter_client.lock("res", timeout=0.5, sleep=0.002, thread_local=False)
    assert not waiter.acquire(blocking_timeout=0.05)  # held: gives up after its time

    got: list[bool] = []
    thread = threading.Thread(target=lambda: got.append(waiter.acquire(blocking_timeout=DEADLINE)))
    thread.start()
    holder.release()
    thread.join(DEADLINE)
    assert got == [True] and waiter.owned() and not holder.owned()

    # The waiter never releases: its 500 ms expiry frees the lock for the next one.
    third = holder_client.lock("res", timeout=5, sleep=0.002)
    assert third.acquire(blocking_timeout=DEADLINE)
    with pytest.raises(redis.exceptions.LockNotOwnedError):
        waiter.extend(1)
    with pytest.raises(redis.exceptions.LockNotOwnedError):
        waiter.reacquire()
    assert third.locked() and third.owned()
    third.release()
    assert not third.locked()


def test_asyncio_lock_extend_replace_ttl_reacquire_and_release(running: Running) -> None:
    async def main() -> None:
        client = aioredis.Redis(port=running.port, socket_timeout=DEADLINE)
        try:
            lock = client.lock("alock", timeout=1)
            assert await lock.acquire(blocking=False)
            assert await lock.extend(2)  # added to what is left
            assert 2000 < await client.pttl("alock") <= 3000
            assert await lock.extend(0.5, replace_ttl=True)
            assert 0 < await client.pttl("alock") <= 500
            assert await lock.reacquire()  # back to its own timeout
            assert 500 < await client.pttl("alock") <= 1000
            other = client.lock("alock", timeout=1)
            assert not await other.acquire(blocking=False)
            await lock.release()
            assert not await lock.locked()
            assert await other.acquire(blocking=False)
            lock.local.token = b"not the owner's"
            with pytest.raises(redis.exceptions.LockNotOwnedError):
                await lock.release()
            assert await other.owned()
            await other.release()
        finally:
            await client.aclose()

    asyncio.run(main())


# --------------------------------------------------------- scripts and WATCH


def test_a_scripts_write_breaks_another_clients_watch(running: Running) -> None:
    r, other = running.client(), running.client()
    r.set("balance", 100)
    deposit = other.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    peek = other.register_script("return redis.call('GET', KEYS[1])")
    elsewhere = other.register_script("return redis.call('SET', KEYS[1], ARGV[1])")

    def withdraw(between: Callable[[], Any]) -> Any:
        with r.pipeline() as pipe:
            pipe.watch("balance")
            balance = int(pipe.get("balance"))
            between()
            pipe.multi()
            pipe.set("balance", balance - 10)
            return pipe.execute()

    assert withdraw(lambda: peek(keys=["balance"])) == [True]  # a read breaks nothing
    assert withdraw(lambda: elsewhere(keys=["audit"], args=["x"])) == [True]  # another key
    with pytest.raises(redis.exceptions.WatchError):
        withdraw(lambda: deposit(keys=["balance"], args=[5]))  # EVALSHA wrote it
    assert int(r.get("balance")) == 85


def test_a_failing_script_in_a_pipeline_leaves_its_writes_and_the_others_run(
    running: Running,
) -> None:
    r = running.client()
    count = r.register_script("return redis.call('INCR', KEYS[1])")
    broken = r.register_script(
        "redis.call('SET', KEYS[1], 'text'); return redis.call('INCR', KEYS[1])"
    )
    for transaction in (False, True):
        r.delete("n", "t")
        with r.pipeline(transaction=transaction) as pipe:
            count(keys=["n"], client=pipe)
            broken(keys=["t"], client=pipe)
            count(keys=["n"], client=pipe)
            first, failed, last = pipe.execute(raise_on_error=False)
        assert (first, last) == (1, 2)
        assert isinstance(failed, redis.exceptions.ResponseError)
        assert "not an integer" in str(failed) and "@user_script:1" in str(failed)
        # As Redis: a script's writes before its error stay (there is no rollback).
        assert r.get("t") == b"text"


def test_asyncio_pipelines_load_their_scripts_again_after_a_flush(running: Running) -> None:
    async def main() -> list[Any]:
        client = aioredis.Redis(port=running.port, socket_timeout=DEADLINE)
        try:
            push = client.register_script("return redis.call('RPUSH', KEYS[1], ARGV[1])")
            results = []
            for round_ in range(2):
                async with client.pipeline(transaction=True) as pipe:
                    for item in ("a", "b"):
                        await push(keys=[f"list{round_}"], args=[item], client=pipe)
                    pipe.lrange(f"list{round_}", 0, -1)
                    results.append(await pipe.execute())
                await client.script_flush()  # the next pipeline finds NOSCRIPT's cause gone
            return results
        finally:
            await client.aclose()

    assert asyncio.run(main()) == [[1, 2, [b"a", b"b"]], [1, 2, [b"a", b"b"]]]


# ------------------------------------------------------------------ pub/sub


@pytest.mark.parametrize("protocol", [2, 3])
def test_sharded_pubsub_through_redis_py(running: Running, protocol: int) -> None:
    r = running.client(protocol=protocol)
    p = r.pubsub()
    running.resources.append(p)
    p.ssubscribe("orders:{eu}", "orders:{us}")
    confirmations = [p.get_sharded_message(timeout=DEADLINE) for _ in range(2)]
    assert [(m["type"], m["data"]) for m in confirmations] == [("ssubscribe", 1), ("ssubscribe", 2)]
    assert r.spublish("orders:{eu}", "o-1") == 1
    assert r.publish("orders:{eu}", "plain") == 0  # shard channels are their own namespace
    message = p.get_sharded_message(timeout=DEADLINE)
    assert message == {
        "type": "smessage",
        "pattern": None,
        "channel": b"orders:{eu}",
        "data": b"o-1",
    }
    assert r.pubsub_shardnumsub("orders:{eu}", "none") == [(b"orders:{eu}", 1), (b"none", 0)]
    assert sorted(r.pubsub_shardchannels()) == [b"orders:{eu}", b"orders:{us}"]
    p.sunsubscribe("orders:{eu}")
    assert p.get_sharded_message(timeout=DEADLINE)["type"] == "sunsubscribe"
    assert r.spublish("orders:{eu}", "o-2") == 0
    assert r.spublish("orders:{us}", "o-3") == 1
    assert p.get_sharded_message(timeout=DEADLINE)["data"] == b"o-3"


@pytest.mark.parametrize("protocol", [2, 3])
def test_pubsub_health_checks_are_answered_in_subscribed_mode(
    running: Running, protocol: int
) -> None:
    """redis-py PINGs a subscribed connection and drops the answer only if it has Redis's shape."""
    r = running.client(protocol=protocol)
    checked = redis.Redis(
        port=running.port, protocol=protocol, health_check_interval=0.001, socket_timeout=DEADLINE
    )
    running.resources.append(checked)
    p = checked.pubsub(ignore_subscribe_messages=True)
    running.resources.append(p)
    p.subscribe("beat")
    wait_until(lambda: r.pubsub_numsub("beat")[0][1] == 1, what="the SUBSCRIBE")
    got: list[Any] = []
    for i in range(5):
        assert r.publish("beat", f"m{i}") == 1
        deadline = time.monotonic() + DEADLINE
        while len(got) <= i:  # each get_message may PING first (its interval is 1 ms)
            assert time.monotonic() < deadline, "a message never came"
            message = p.get_message(timeout=0.05)
            if message is not None:
                got.append((message["type"], message["data"]))
    assert got == [("message", f"m{i}".encode()) for i in range(5)]
    assert p.get_message(timeout=0.05) is None  # every PING's answer was recognised and dropped
    assert int(r.info("commandstats")["cmdstat_ping"]["calls"]) >= 1


# --------------------------------------------------------- competing consumers


def test_competing_consumers_take_every_item_exactly_once(running: Running) -> None:
    """Four workers BLPOP two queues, timing out and waiting again, while a producer pushes."""
    items = [f"job-{i}" for i in range(300)]
    workers = 4
    timed_out: set[int] = set()

    def consume(i: int) -> list[str]:
        client = running.client(decode_responses=True)
        taken: list[str] = []
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            popped = client.blpop(["work:high", "work:low"], timeout=0.05)
            if popped is None:
                timed_out.add(i)
            elif popped[1] == "stop":
                return taken
            else:
                taken.append(popped[1])
        raise AssertionError("no stop item within the deadline")

    def produce() -> None:
        client = running.client(decode_responses=True)
        # Work comes only once every worker has timed out once and waits again.
        wait_until(
            lambda: (
                len(timed_out) == workers
                and int(client.info("clients")["blocked_clients"]) == workers
            ),
            timeout=DEADLINE,
            what="every worker to time out and wait again",
        )
        for start in range(0, len(items), 25):
            with client.pipeline(transaction=False) as pipe:
                for item in items[start : start + 25]:
                    pipe.rpush("work:high" if int(item[4:]) % 3 == 0 else "work:low", item)
                pipe.execute()
        client.rpush("work:low", *["stop"] * workers)  # behind every item: FIFO

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    results = in_threads(workers, consume)
    producer.join(DEADLINE)
    taken = [item for got in results for item in got]
    assert sorted(taken) == sorted(items)  # every item once: none lost, none twice
    r = running.client()
    assert r.llen("work:high") == r.llen("work:low") == 0
    for got in results:  # each worker took each queue's items in the order they were pushed
        for high in (True, False):
            mine = [int(item[4:]) for item in got if (int(item[4:]) % 3 == 0) == high]
            assert mine == sorted(mine)


def test_asyncio_consumers_drain_a_sorted_set_in_score_order(running: Running) -> None:
    """Three BZPOPMIN consumers on one loop: each sees rising scores, all see every member once."""
    consumers = 3

    async def main() -> list[list[float]]:
        clients = [aioredis.Redis(port=running.port) for _ in range(consumers)]
        producer = aioredis.Redis(port=running.port)
        try:

            async def consume(client: Any) -> list[float]:
                scores: list[float] = []
                while True:
                    popped = await client.bzpopmin("delayed", timeout=0.05)
                    if popped is None:
                        continue  # timed out: wait again
                    if popped[1].startswith(b"stop"):
                        return scores
                    scores.append(popped[2])

            tasks = [asyncio.create_task(consume(c)) for c in clients]
            for start in range(0, 90, 10):
                await producer.zadd("delayed", {f"m{i}": i for i in range(start, start + 10)})
            # Scored above every member: popped only once the members are gone.
            await producer.zadd("delayed", {f"stop{i}": 1000 + i for i in range(consumers)})
            return list(await asyncio.wait_for(asyncio.gather(*tasks), DEADLINE))
        finally:
            for client in (*clients, producer):
                await client.aclose()

    per_consumer = asyncio.run(main())
    for scores in per_consumer:
        assert scores == sorted(scores)
    assert sorted(s for scores in per_consumer for s in scores) == [float(i) for i in range(90)]
