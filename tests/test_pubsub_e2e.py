"""Pub/sub over real sockets: redis-py's PubSub (sync, asyncio, RESP2, RESP3), many
subscribers, pushes between replies, disconnects and the slow subscriber.

The server runs in-process on its own event loop (``Running``); waits are
for a condition, with a deadline, never a sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from reference import parse, reply_end, request
from snapkv import Store
from snapkv.server import Config
from snapkv.server.pubsub import publish
from support import wait_until
from test_server_e2e import DEADLINE, LOOPS, Running, connect

redis = pytest.importorskip("redis")
redis_asyncio = pytest.importorskip("redis.asyncio")


@pytest.fixture
def serve() -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(loop: str = "asyncio", **config: Any) -> Running:
        running = Running(Store(), Config(port=0, **config), loop)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


#: How long a raw read waits: every reply comes at once, so a failure fails fast.
READ_TIMEOUT = 5.0


class Socket:
    """A raw connection that reads whole replies (and pushes) one at a time."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        sock.settimeout(READ_TIMEOUT)
        self.buf = b""

    def send(self, *argv: str) -> None:
        self.sock.sendall(request(*argv))

    def read(self) -> Any:
        while (end := reply_end(self.buf)) < 0:
            chunk = self.sock.recv(65536)
            assert chunk, "the server closed the connection"
            self.buf += chunk
        reply, self.buf = self.buf[:end], self.buf[end:]
        return reply

    def call(self, *argv: str) -> Any:
        self.send(*argv)
        return parse(self.read())


def client(running: Running, **kwargs: Any) -> Any:
    """A redis-py client whose reads fail within seconds (and are not retried for minutes)."""
    made = redis.Redis(port=running.port, socket_timeout=READ_TIMEOUT, retry=None, **kwargs)
    running.resources.append(made)
    return made


def next_message(pubsub: Any) -> dict[str, Any]:
    """The next message (subscription confirmations skipped), within the deadline."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        message = pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
        if message is not None:
            return dict(message)
    raise AssertionError("no message within the deadline")


# ---------------------------------------------------------------- redis-py


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_pubsub_sync(serve: Callable[..., Running], loop: str, protocol: int) -> None:
    running = serve(loop=loop)
    r = client(running, protocol=protocol)
    p = r.pubsub()
    running.resources.append(p)
    p.subscribe("py-news")
    p.psubscribe("py-*")
    confirmations = [p.get_message(timeout=DEADLINE) for _ in range(2)]
    assert [(m["type"], m["channel"], m["data"]) for m in confirmations] == [
        ("subscribe", b"py-news", 1),
        ("psubscribe", b"py-*", 2),
    ]
    assert r.publish("py-news", "hello") == 2
    assert next_message(p) == {
        "type": "message",
        "pattern": None,
        "channel": b"py-news",
        "data": b"hello",
    }
    assert next_message(p) == {
        "type": "pmessage",
        "pattern": b"py-*",
        "channel": b"py-news",
        "data": b"hello",
    }
    assert r.pubsub_numsub("py-news", "py-none") == [(b"py-news", 1), (b"py-none", 0)]
    assert r.pubsub_numpat() == 1 and r.pubsub_channels() == [b"py-news"]

    # Handlers, run by a worker thread (on a PubSub of their own: run_in_thread
    # wants a handler for every subscription).
    p.punsubscribe("py-*")
    got: list[dict[str, Any]] = []
    handled = r.pubsub()
    running.resources.append(handled)
    handled.subscribe(**{"py-handled": got.append})
    worker = handled.run_in_thread(sleep_time=0.01, daemon=True)
    try:
        wait_until(lambda: r.pubsub_numsub("py-handled")[0][1] == 1, what="the handler's SUBSCRIBE")
        assert r.publish("py-handled", "one") == 1 and r.publish("py-handled", "two") == 1
        wait_until(lambda: len(got) == 2, what="the handler to run twice")
    finally:
        worker.stop()
        worker.join(DEADLINE)
    assert [m["data"] for m in got] == [b"one", b"two"]

    # listen(), then everything dropped.
    assert r.publish("py-news", "last") == 1
    for message in p.listen():
        if message["type"] == "message":
            assert message["data"] == b"last"
            break
    p.unsubscribe()
    p.close()
    wait_until(lambda: r.pubsub_numsub("py-news") == [(b"py-news", 0)], what="the unsubscribe")


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_pubsub_asyncio(serve: Callable[..., Running], protocol: int) -> None:
    running = serve()

    async def main() -> list[Any]:
        r = redis_asyncio.Redis(port=running.port, protocol=protocol)
        p = r.pubsub()
        try:
            await p.subscribe("aio-a")
            await p.psubscribe("aio-?")
            seen = []
            for _ in range(2):
                seen.append(await p.get_message(timeout=DEADLINE))
            assert [m["type"] for m in seen] == ["subscribe", "psubscribe"]
            assert await r.publish("aio-a", "x") == 2
            assert await r.publish("aio-b", "y") == 1
            got = []
            async with asyncio.timeout(DEADLINE):
                async for message in p.listen():
                    got.append((message["type"], message["pattern"], message["data"]))
                    if len(got) == 3:
                        break
            await p.unsubscribe()
            await p.punsubscribe()
            # Handlers, run by PubSub.run() as a task.
            handled: list[bytes] = []
            done = asyncio.Event()

            async def handler(message: dict[str, Any]) -> None:
                handled.append(message["data"])
                if len(handled) == 2:
                    done.set()

            h = r.pubsub()
            await h.subscribe(**{"aio-h": handler})
            task = asyncio.create_task(h.run())
            async with asyncio.timeout(DEADLINE):
                while (await r.pubsub_numsub("aio-h"))[0][1] != 1:
                    pass  # each check is a round trip: the SUBSCRIBE may still be on its way
                assert await r.publish("aio-h", "one") == 1
                assert await r.publish("aio-h", "two") == 1
                await done.wait()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await h.aclose()
            assert handled == [b"one", b"two"]
            return got
        finally:
            await p.aclose()
            await r.aclose()

    assert asyncio.run(main()) == [
        ("message", None, b"x"),
        ("pmessage", b"aio-?", b"x"),
        ("pmessage", b"aio-?", b"y"),
    ]


def test_binary_channels_through_redis_py(serve: Callable[..., Running]) -> None:
    running = serve()
    r = client(running)
    p = r.pubsub()
    running.resources.append(p)
    names = [b"\xff\xfe", "канал".encode(), b"a\x00b", b""]
    p.subscribe(*names)
    for _ in names:
        p.get_message(timeout=DEADLINE)
    for name in names:
        assert r.publish(name, name + b"\x80") == 1
        message = next_message(p)
        assert (message["channel"], message["data"]) == (name, name + b"\x80")
    assert sorted(r.execute_command("PUBSUB", "CHANNELS")) == sorted(names)
    assert b"" not in r.pubsub_channels()  # redis-py sends "*", which no empty name matches


# ------------------------------------------------------------ raw sockets


def test_many_subscribers_each_get_the_message_once(serve: Callable[..., Running]) -> None:
    running = serve()
    subscribers = [Socket(running.connect()) for _ in range(100)]
    for i, sub in enumerate(subscribers):
        if i % 2:
            assert sub.call("HELLO", "3")[1] == b"redis"
        assert sub.call("SUBSCRIBE", "crowd") == [b"subscribe", b"crowd", 1]
    publisher = Socket(running.connect())
    assert publisher.call("PUBLISH", "crowd", "all") == 100
    for i, sub in enumerate(subscribers):
        raw = sub.read()
        assert raw[:1] == (b">" if i % 2 else b"*")
        assert parse(raw) == [b"message", b"crowd", b"all"]
    assert publisher.call("PUBSUB", "NUMSUB", "crowd") == [b"crowd", 100]


def test_a_pipeline_of_publishes_reaches_each_subscriber_in_order(
    serve: Callable[..., Running],
) -> None:
    running = serve()
    subscribers = [Socket(running.connect()) for _ in range(3)]
    for sub in subscribers:
        sub.call("SUBSCRIBE", "piped")
    publisher = Socket(running.connect())
    publisher.sock.sendall(b"".join(request("PUBLISH", "piped", f"m{i}") for i in range(200)))
    assert [parse(publisher.read()) for _ in range(200)] == [3] * 200
    for sub in subscribers:
        got = [parse(sub.read()) for _ in range(200)]
        assert got == [[b"message", b"piped", f"m{i}".encode()] for i in range(200)]
    assert subscribers[0].call("UNSUBSCRIBE", "piped") == [b"unsubscribe", b"piped", 0]


def test_a_publish_from_another_thread_reaches_subscribers(
    serve: Callable[..., Running],
) -> None:
    """As keyspace events from the sweeper or a script's PUBLISH: handed to the loop."""
    running = serve()
    sub = Socket(running.connect())
    sub.call("SUBSCRIBE", "threaded")
    sub.call("PSUBSCRIBE", "thr*")
    counts: list[int] = []
    thread = threading.Thread(
        target=lambda: counts.extend(
            publish(running.server.dispatcher, "threaded", f"t{i}") for i in range(50)
        )
    )
    thread.start()
    thread.join(DEADLINE)
    assert counts == [2] * 50
    got = [parse(sub.read()) for _ in range(100)]
    assert [m[-1] for m in got] == [f"t{i}".encode() for i in range(50) for _ in range(2)]


def test_resp3_pushes_come_between_replies(serve: Callable[..., Running]) -> None:
    running = serve()
    sub = Socket(running.connect())
    sub.call("HELLO", "3")
    assert sub.call("SUBSCRIBE", "between") == [b"subscribe", b"between", 1]
    publisher = Socket(running.connect())
    for i in range(3):
        assert publisher.call("PUBLISH", "between", f"m{i}") == 1
    # Pushed before the SET was even sent: the messages come first, as pushes.
    sub.send("SET", "k", "v")
    raw = [sub.read() for _ in range(4)]
    assert [r[:1] for r in raw] == [b">", b">", b">", b"+"]
    assert [parse(r) for r in raw] == [
        [b"message", b"between", b"m0"],
        [b"message", b"between", b"m1"],
        [b"message", b"between", b"m2"],
        b"OK",
    ]


def test_resp3_own_message_in_a_pipeline_comes_after_the_replies_before_it(
    serve: Callable[..., Running],
) -> None:
    running = serve()
    sub = Socket(running.connect())
    sub.call("HELLO", "3")
    sub.call("SUBSCRIBE", "between")
    sub.call("SET", "k", "v")
    sub.sock.sendall(
        request("GET", "k") + request("PUBLISH", "between", "self") + request("GET", "k")
    )
    assert [parse(sub.read()) for _ in range(4)] == [
        b"v",
        [b"message", b"between", b"self"],
        1,
        b"v",
    ]


def test_a_disconnect_unsubscribes_everything(serve: Callable[..., Running]) -> None:
    running = serve()
    r = client(running)
    sock = connect(running.port)
    sub = Socket(sock)
    sub.call("SUBSCRIBE", "gone-a", "gone-b")
    assert parse(sub.read()) == [b"subscribe", b"gone-b", 2]
    sub.call("PSUBSCRIBE", "gone-*")
    sub.call("SSUBSCRIBE", "gone-s")
    line = [c for c in r.client_list() if int(c["sub"]) == 2]
    assert len(line) == 1 and (line[0]["psub"], line[0]["ssub"], line[0]["flags"]) == (
        "1",
        "1",
        "P",
    )
    sock.close()
    wait_until(
        lambda: (
            r.pubsub_numsub("gone-a", "gone-b") == [(b"gone-a", 0), (b"gone-b", 0)]
            and r.pubsub_numpat() == 0
            and r.execute_command("PUBSUB", "SHARDNUMSUB", "gone-s") == [b"gone-s", 0]
        ),
        what="the closed subscriber's subscriptions to go",
    )
    assert r.publish("gone-a", "m") == 0


def test_reset_leaves_subscribed_mode_and_info_counts_subscriptions(
    serve: Callable[..., Running],
) -> None:
    running = serve()
    r = client(running)
    sub = Socket(running.connect())
    sub.call("SUBSCRIBE", "info-a", "info-b")
    assert parse(sub.read()) == [b"subscribe", b"info-b", 2]
    sub.call("PSUBSCRIBE", "info-*")
    sub.call("SSUBSCRIBE", "info-s")
    other = Socket(running.connect())
    other.call("SUBSCRIBE", "info-a")  # a second subscriber: still 2 channels
    stats = r.info("stats")
    assert (
        stats["pubsub_channels"],
        stats["pubsub_patterns"],
        stats["pubsubshard_channels"],
    ) == (2, 1, 1)
    assert sub.call("PING") == [b"pong", b""]
    assert sub.call("RESET") == b"RESET"  # no unsubscribe confirmations
    assert sub.call("GET", "k") is None
    assert r.pubsub_numsub("info-a", "info-b") == [(b"info-a", 1), (b"info-b", 0)]
    stats = r.info("stats")
    assert (stats["pubsub_channels"], stats["pubsub_patterns"]) == (1, 0)
    assert stats["pubsubshard_channels"] == 0


@pytest.mark.parametrize("loop", LOOPS)
def test_a_subscriber_that_never_reads_is_disconnected_at_the_hard_limit(
    serve: Callable[..., Running], caplog: pytest.LogCaptureFixture, loop: str
) -> None:
    """``client-output-buffer-limit pubsub``: the server's memory for it stays bounded."""
    running = serve(loop=loop)
    r = client(running)
    assert r.config_set("client-output-buffer-limit", "pubsub 256kb 128kb 60")
    assert r.config_get("client-output-buffer-limit") == {
        "client-output-buffer-limit": "normal 0 0 0 slave 268435456 67108864 60 "
        "pubsub 262144 131072 60"
    }
    slow = Socket(running.connect(rcvbuf=4096))
    assert slow.call("SUBSCRIBE", "flood") == [b"subscribe", b"flood", 1]
    payload = "x" * 16384
    limit = 256 * 1024
    unsent: list[int] = []

    def largest_unsent() -> int:
        return max(
            (c.transport.get_write_buffer_size() for c in running.server.connections),
            default=0,
        )

    with caplog.at_level(logging.WARNING, logger="snapkv.server"):
        for _ in range(2000):  # 32 MB if nobody stopped it
            if r.publish("flood", payload) == 0:
                break
            unsent.append(running.call(largest_unsent))
        else:
            pytest.fail("the subscriber was never disconnected")
    # What the kernel's socket buffers took is not the server's; what it kept
    # itself never passed the hard limit by more than the message that crossed it.
    assert max(unsent) < limit + len(payload) + 1024
    assert r.pubsub_numsub("flood") == [(b"flood", 0)]
    assert any(
        "scheduled to be closed ASAP for overcoming of output buffer limits" in record.message
        and "sub=1" in record.message
        for record in caplog.records
    )
    # The other clients go on.
    assert r.set("after", "1") and r.get("after") == b"1"


def test_a_subscriber_over_the_soft_limit_for_its_seconds_is_disconnected(
    serve: Callable[..., Running],
) -> None:
    """The soft limit closes a subscriber only once it stayed over it for the seconds given."""
    running = serve()
    r = client(running)
    assert r.config_set("client-output-buffer-limit", "pubsub 0 64kb 1")
    slow = Socket(running.connect(rcvbuf=4096))
    assert slow.call("SUBSCRIBE", "soft") == [b"subscribe", b"soft", 1]
    started = time.monotonic()
    for _ in range(80):  # 5 MB: the kernel's socket buffers take a few, the rest is over
        assert r.publish("soft", "y" * 65536) == 1
    # Then one byte at a time: it is time over the limit, not volume, that closes it.
    deadline = started + DEADLINE
    while r.publish("soft", "y") == 1:
        assert time.monotonic() < deadline, "never disconnected"
    closed_after = time.monotonic() - started
    assert closed_after >= 1.0
    assert r.pubsub_numsub("soft") == [(b"soft", 0)]
