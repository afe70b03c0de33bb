"""CLIENT TRACKING and client-side caching, against redis-server and with redis-py's cache.

The options, their errors and TRACKINGINFO are compared with a real
redis-server 7.0 (the ``twin`` fixture); invalidation messages are compared
byte for byte over real sockets (the same requests to both servers, the
pushes each sends), and redis-py's client-side cache
(``Redis(protocol=3, cache_config=CacheConfig())``) runs against ``snapkv serve``.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from reference import Raw, reply_end, request
from snapkv import Store
from snapkv.server import Config
from support import wait_until
from test_server_e2e import DEADLINE, Running

redis = pytest.importorskip("redis")

SEQUENCES = [
    # BCAST prefixes: overlaps with the new and the existing ones, then the info.
    [
        ("CLIENT", "TRACKING", "on", "bcast", "prefix", "a"),
        ("CLIENT", "TRACKING", "on", "bcast", "prefix", "a"),
        ("CLIENT", "TRACKING", "on", "bcast", "prefix", "b", "prefix", "ab"),
        ("CLIENT", "TRACKING", "on", "bcast", "prefix", "xy", "prefix", "x"),
        ("CLIENT", "TRACKING", "on", "bcast", "prefix", "c"),
        ("CLIENT", "TRACKINGINFO"),
        ("CLIENT", "TRACKING", "on"),
        ("CLIENT", "TRACKING", "on", "bcast", "optin"),
        ("CLIENT", "GETREDIR"),
        ("CLIENT", "TRACKING", "off"),
        ("CLIENT", "TRACKINGINFO"),
        ("CLIENT", "GETREDIR"),
    ],
    # Option errors, in Redis's order.
    [
        ("CLIENT", "TRACKING", "on", "redirect", "999999"),
        ("CLIENT", "TRACKING", "on", "redirect", "abc"),
        ("CLIENT", "TRACKING", "on", "redirect"),
        ("CLIENT", "TRACKING", "off", "foo"),
        ("CLIENT", "TRACKING", "maybe"),
        ("CLIENT", "TRACKING", "maybe", "bcast"),
        ("CLIENT", "TRACKING", "on", "prefix"),
        ("CLIENT", "TRACKING", "on", "prefix", "p"),
        ("CLIENT", "TRACKING", "on", "optin", "optout"),
        ("CLIENT", "TRACKING", "on", "bcast", "optout"),
        ("CLIENT", "TRACKING", "off", "bcast", "optin", "optout"),
        ("CLIENT", "TRACKING"),
    ],
    # OPTIN / OPTOUT and CACHING.
    [
        ("CLIENT", "CACHING", "yes"),
        ("CLIENT", "TRACKING", "on", "optin", "noloop"),
        ("CLIENT", "TRACKING", "on", "optout"),
        ("CLIENT", "TRACKING", "on", "bcast"),
        ("CLIENT", "CACHING", "no"),
        ("CLIENT", "CACHING", "maybe"),
        ("CLIENT", "CACHING", "yes"),
        ("CLIENT", "TRACKINGINFO"),
        ("CLIENT", "GETNAME"),
        ("CLIENT", "TRACKINGINFO"),
        ("GET", "k"),
        ("CLIENT", "TRACKINGINFO"),
        ("CLIENT", "TRACKING", "on", "optin"),
        ("CLIENT", "TRACKINGINFO"),
        ("CLIENT", "TRACKING", "off"),
        ("CLIENT", "TRACKING", "on", "optout"),
        ("CLIENT", "CACHING", "no"),
        ("CLIENT", "TRACKINGINFO"),
        ("CLIENT", "CACHING", "yes"),
    ],
]


@pytest.mark.parametrize("resp", ["2", "3"])
@pytest.mark.parametrize("steps", SEQUENCES, ids=["bcast", "errors", "optin-optout"])
def test_options_errors_and_info_are_redis_s(
    twin: Any, resp: str, steps: list[tuple[str, ...]]
) -> None:
    twin("HELLO", resp)  # its reply names each server's version and id
    for argv in steps:
        twin.same(*argv)


# ------------------------------------------------------------ over sockets


@pytest.fixture
def snapkv_port() -> Iterator[int]:
    running = Running(Store(), Config(port=0))
    yield running.port
    running.stop()


class Conn(Raw):
    """A raw connection that also collects what arrives outside replies."""

    def pushes(self, count: int) -> list[bytes]:
        """The next ``count`` whole messages the server sent."""
        out: list[bytes] = []
        while len(out) < count:
            end = reply_end(self.buf)
            if end < 0:
                chunk = self.sock.recv(65536)
                assert chunk, "the server closed the connection"
                self.buf += chunk
                continue
            out.append(self.buf[:end])
            self.buf = self.buf[end:]
        return out

    def quiet(self) -> bool:
        """Nothing more has arrived (checked after a later reply on the same server)."""
        if self.buf:
            return False
        self.sock.setblocking(False)
        try:
            self.sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return True
        finally:
            self.sock.settimeout(DEADLINE)
        return False


Scenario = Callable[[Callable[[], Conn]], list[bytes]]


def bcast_prefixes_and_flush(connect: Callable[[], Conn]) -> list[bytes]:
    tracker, writer = connect(), connect()
    tracker("HELLO", "3")
    assert tracker("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "user:", "PREFIX", "job:") == (
        b"+OK\r\n"
    )
    seen = [writer("MSET", "user:2", "a", "user:1", "b", "other", "c")]
    seen += tracker.pushes(1)
    seen += [writer("SET", "job:9", "x"), writer("SET", "nothing", "y")]
    seen += tracker.pushes(1)
    seen += [writer("DEL", "other", "nothing")]
    seen += [writer("FLUSHDB")]
    seen += tracker.pushes(1)
    seen += [tracker("PING")]
    assert tracker.quiet()
    return seen


def bcast_noloop_and_own_writes(connect: Callable[[], Conn]) -> list[bytes]:
    tracker, writer = connect(), connect()
    tracker("HELLO", "3")
    assert tracker("CLIENT", "TRACKING", "on", "BCAST", "NOLOOP") == b"+OK\r\n"
    seen = [tracker("SET", "mine", "1")]
    seen += [writer("SET", "theirs", "1")]
    seen += tracker.pushes(1)
    seen += [tracker("PING")]
    assert tracker.quiet()
    assert tracker("CLIENT", "TRACKING", "off") == b"+OK\r\n"
    assert tracker("CLIENT", "TRACKING", "on", "BCAST") == b"+OK\r\n"
    seen += [tracker("SET", "mine", "2")]  # its own write: told after the reply
    seen += tracker.pushes(1)
    return seen


def redirect_to_a_resp2_subscriber(connect: Callable[[], Conn]) -> list[bytes]:
    tracker, listener, writer = connect(), connect(), connect()
    listener_id = listener("CLIENT", "ID")[1:-2].decode()
    seen = [listener("SUBSCRIBE", "__redis__:invalidate")]
    tracker_on = ("CLIENT", "TRACKING", "on", "BCAST", "REDIRECT", listener_id)
    seen += [tracker(*tracker_on), tracker("CLIENT", "GETREDIR")]
    seen += [writer("SET", "k", "v")]
    seen += listener.pushes(1)
    seen += [writer("FLUSHALL")]
    seen += listener.pushes(1)
    # The target gone, a RESP3 tracker is told the redirect broke.
    listener.close()
    wait_until(
        lambda: f"id={listener_id} ".encode() not in writer("CLIENT", "LIST"),
        timeout=DEADLINE,
        what="the listener to be gone",
    )
    tracker("HELLO", "3")
    seen += [writer("SET", "k", "v2")]
    seen += tracker.pushes(1)
    seen += [tracker("CLIENT", "TRACKINGINFO")]
    return [reply.replace(b":" + listener_id.encode(), b":ID") for reply in seen]


def remembered_reads(connect: Callable[[], Conn]) -> list[bytes]:
    """Keys read are told once when written (then forgotten until read again), own writes too."""
    tracker, writer = connect(), connect()
    tracker("HELLO", "3")
    assert tracker("CLIENT", "TRACKING", "on") == b"+OK\r\n"
    seen = [tracker("GET", "a"), tracker("MGET", "b", "c"), tracker("HGETALL", "h")]
    seen += [writer("MSET", "a", "1", "b", "2", "z", "3")]
    seen += tracker.pushes(2)
    seen += [writer("SET", "a", "again"), writer("HSET", "h", "f", "v")]
    seen += tracker.pushes(1)
    seen += [tracker("PING")]
    assert tracker.quiet()
    # Its own write of a key it read: told after its reply.
    seen += [tracker("GET", "c"), tracker("SET", "c", "mine")]
    seen += tracker.pushes(1)
    # A flush tells everything.
    seen += [tracker("GET", "a"), writer("FLUSHALL")]
    seen += tracker.pushes(1)
    seen += [tracker("SET", "a", "1"), tracker("PING")]
    assert tracker.quiet()
    return seen


def reads_of_a_script(connect: Callable[[], Conn]) -> list[bytes]:
    """Keys a tracking client's script reads are remembered for it (Redis's script_caller)."""
    tracker, writer = connect(), connect()
    tracker("HELLO", "3")
    assert tracker("CLIENT", "TRACKING", "on") == b"+OK\r\n"
    seen = [tracker("EVAL", "return redis.call('get', KEYS[1])", "1", "s")]
    seen += [writer("SET", "s", "1")]
    seen += tracker.pushes(1)
    seen += [tracker("PING")]
    assert tracker.quiet()
    return seen


def noloop_optin_optout(connect: Callable[[], Conn]) -> list[bytes]:
    tracker, writer = connect(), connect()
    tracker("HELLO", "3")
    seen = [tracker("CLIENT", "TRACKING", "on", "NOLOOP")]
    seen += [tracker("GET", "k"), tracker("SET", "k", "own"), tracker("PING")]
    assert tracker.quiet()
    seen += [tracker("GET", "k"), writer("SET", "k", "other")]
    seen += tracker.pushes(1)
    seen += [tracker("CLIENT", "TRACKING", "off"), tracker("CLIENT", "TRACKING", "on", "OPTIN")]
    # Not remembered without CACHING YES; remembered for the one command after it.
    seen += [tracker("GET", "k"), writer("SET", "k", "1"), tracker("PING")]
    assert tracker.quiet()
    seen += [tracker("CLIENT", "CACHING", "YES"), tracker("GET", "k"), tracker("GET", "j")]
    seen += [writer("MSET", "k", "2", "j", "2")]
    seen += tracker.pushes(1)
    seen += [tracker("PING")]
    assert tracker.quiet()
    # CACHING YES covers a whole MULTI/EXEC block.
    seen += [tracker("CLIENT", "CACHING", "YES"), tracker("MULTI"), tracker("GET", "k")]
    seen += [tracker("GET", "j"), tracker("EXEC"), writer("MSET", "k", "3", "j", "3")]
    seen += tracker.pushes(2)
    seen += [tracker("CLIENT", "TRACKING", "off"), tracker("CLIENT", "TRACKING", "on", "OPTOUT")]
    seen += [tracker("CLIENT", "CACHING", "NO"), tracker("GET", "k"), tracker("GET", "j")]
    seen += [writer("MSET", "k", "4", "j", "4")]
    seen += tracker.pushes(1)
    seen += [tracker("PING")]
    assert tracker.quiet()
    return seen


def told_under_client_reply_off(connect: Callable[[], Conn]) -> list[bytes]:
    """An invalidation is a push: CLIENT REPLY OFF does not stop it (Redis's CLIENT_PUSHING)."""
    tracker, writer, subscriber = connect(), connect(), connect()
    tracker("HELLO", "3")
    subscriber("HELLO", "3")
    seen = [tracker("CLIENT", "TRACKING", "on"), tracker("GET", "k")]
    seen += [subscriber("SUBSCRIBE", "ch")]
    for conn in (tracker, subscriber):
        conn.sock.sendall(request("CLIENT", "REPLY", "OFF"))
    seen += [writer("SET", "k", "1"), writer("PUBLISH", "ch", "hello")]
    seen += tracker.pushes(1) + subscriber.pushes(1)
    seen += [tracker("CLIENT", "REPLY", "ON"), subscriber("CLIENT", "REPLY", "ON")]
    return seen


def script_reads_for_the_caller(connect: Callable[[], Conn]) -> list[bytes]:
    """A script that reads makes its KEYS remembered for its caller (not what it read)."""
    tracker, writer = connect(), connect()
    tracker("HELLO", "3")
    seen = [tracker("CLIENT", "TRACKING", "on")]
    seen += [
        tracker("EVAL_RO", "return 1", "1", "rk"),
        tracker("EVAL", "return redis.call('get', 'other')", "1", "ek"),
        tracker("EVAL", "return redis.call('set', 'w1', 'x')", "1", "wk"),
        tracker("EVAL_RO", "return redis.call('get', 'r2')", "1", "rok"),
    ]
    keys = ["rk", "ek", "other", "wk", "w1", "rok", "r2"]
    seen += [writer("MSET", *[part for key in keys for part in (key, "1")])]
    seen += tracker.pushes(2)
    seen += [tracker("PING")]
    assert tracker.quiet()
    # NOLOOP: its own script writing a key it read is not told.
    seen += [tracker("CLIENT", "TRACKING", "on", "NOLOOP"), tracker("GET", "own")]
    seen += [tracker("EVAL", "return redis.call('set', KEYS[1], 'x')", "1", "own")]
    seen += [tracker("PING")]
    assert tracker.quiet()
    return seen


SCENARIOS = [
    script_reads_for_the_caller,
    told_under_client_reply_off,
    bcast_prefixes_and_flush,
    bcast_noloop_and_own_writes,
    redirect_to_a_resp2_subscriber,
    remembered_reads,
    reads_of_a_script,
    noloop_optin_optout,
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda f: f.__name__)
def test_invalidation_messages_are_redis_s(
    redis_port: int, snapkv_port: int, scenario: Scenario
) -> None:
    results = []
    for port in (snapkv_port, redis_port):
        opened: list[Conn] = []

        def connect(port: int = port, opened: list[Conn] = opened) -> Conn:
            conn = Conn(port)
            opened.append(conn)
            return conn

        try:
            results.append(scenario(connect))
        finally:
            for conn in opened:
                conn.close()
            cleaner = Raw(port)
            cleaner("FLUSHALL")
            cleaner.close()
    ours, theirs = results
    assert ours == theirs


def test_a_disconnected_tracker_leaves_no_trace(snapkv_port: int) -> None:
    """Its BCAST prefix is dropped with it; writes afterwards find nobody to tell."""
    tracker, writer = Conn(snapkv_port), Conn(snapkv_port)
    tracker("HELLO", "3")
    tracker("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "p")
    tracker.close()
    wait_until(
        lambda: b"flags=t" not in writer("CLIENT", "LIST"),
        timeout=DEADLINE,
        what="the tracker to be gone",
    )
    assert writer("SET", "p1", "x") == b"+OK\r\n"
    writer.close()


# ------------------------------------------------- redis-py's client cache


@pytest.fixture
def running(monkeypatch: pytest.MonkeyPatch) -> Iterator[Running]:
    """``snapkv serve``, and redis-py willing to cache from it.

    redis-py enables its cache only for a server that says it is Redis 7.4
    or later (a support policy: the protocol it uses is Redis 6's CLIENT
    TRACKING), and snapkv says 7.2; its threshold is lowered for the test.
    """
    from redis.connection import CacheProxyConnection

    monkeypatch.setattr(CacheProxyConnection, "MIN_ALLOWED_VERSION", "7.0.0")
    server = Running(Store(), Config(port=0))
    yield server
    server.stop()


def cached_client(running: Running) -> Any:
    from redis.cache import CacheConfig

    client = redis.Redis(
        port=running.port, protocol=3, cache_config=CacheConfig(), socket_timeout=DEADLINE
    )
    running.resources.append(client)
    return client


def processed(running: Running) -> int:
    return running.call(lambda: running.server.dispatcher.commands_processed)


def test_redis_py_client_cache_serves_reads_and_sees_other_clients_writes(
    running: Running,
) -> None:
    cached, other = cached_client(running), running.client()
    other.set("k", "v1")
    assert cached.get("k") == b"v1"
    before = processed(running)
    assert [cached.get("k") for _ in range(5)] == [b"v1"] * 5
    assert processed(running) == before, "the repeated reads were not served from the cache"
    other.set("k", "v2")
    wait_until(lambda: cached.get("k") == b"v2", timeout=DEADLINE, what="the cache to drop k")
    other.hset("h", mapping={"f": "1"})
    assert cached.hgetall("h") == {b"f": b"1"}
    other.hset("h", "f", "2")
    wait_until(
        lambda: cached.hgetall("h") == {b"f": b"2"}, timeout=DEADLINE, what="the cache to drop h"
    )
    other.flushall()
    wait_until(lambda: cached.get("k") is None, timeout=DEADLINE, what="the flush to reach it")


def test_redis_py_client_cache_forgets_a_key_that_expires(running: Running) -> None:
    cached, other = cached_client(running), running.client()
    other.set("soon", "here", px=100)
    assert cached.get("soon") == b"here"
    # Only the Store's sweeper removes it: nobody writes the key again.
    wait_until(lambda: cached.get("soon") is None, timeout=DEADLINE, what="the expiry to be told")


def test_writes_are_listened_to_only_while_a_client_tracks() -> None:
    from snapkv.server.client import Client
    from snapkv.server.dispatch import Dispatcher

    server = Dispatcher(Store(), Config())
    tracker, writer = Client(server, addr="a:1"), Client(server, addr="a:2")
    for client in (tracker, writer):
        server.add_client(client)
    listening = len(server.key_listeners)
    server.execute(tracker, ["HELLO", "3"])
    server.execute(tracker, ["CLIENT", "TRACKING", "on"])
    assert len(server.key_listeners) == listening + 1
    server.execute(tracker, ["GET", "k"])
    server.execute(writer, ["SET", "k", "1"])
    assert tracker.outbox == [b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n"]
    server.execute(tracker, ["GET", "k"])
    server.execute(tracker, ["CLIENT", "TRACKING", "off"])
    assert len(server.key_listeners) == listening
    assert tracker.tracking is None and tracker.plain
    # Back on: it is still told of what it read before, as by Redis.
    server.execute(tracker, ["CLIENT", "TRACKING", "on"])
    server.execute(writer, ["SET", "k", "2"])
    assert tracker.outbox == [b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n"] * 2
    server.remove_client(tracker)
    assert len(server.key_listeners) == listening
    server.store.close()


def test_swapdb_tells_tracking_clients_as_a_flush() -> None:
    """A documented difference: Redis 7.0 tells nothing, and a cache keeps the swapped-out value."""
    from snapkv.server.client import Client
    from snapkv.server.dispatch import Dispatcher

    server = Dispatcher(Store(), Config())
    tracker, other = Client(server, addr="a:1"), Client(server, addr="a:2")
    for client in (tracker, other):
        server.add_client(client)
    server.execute(tracker, ["HELLO", "3"])
    server.execute(tracker, ["CLIENT", "TRACKING", "on"])
    server.execute(tracker, ["GET", "k"])
    server.execute(other, ["SWAPDB", "0", "1"])
    assert tracker.outbox and set(tracker.outbox) == {b">2\r\n$10\r\ninvalidate\r\n_\r\n"}
    server.store.close()


def test_table_counts_are_redis_s_info_numbers(redis_port: int) -> None:
    """``tracking.counts`` (INFO's tracking_total_*) for the same reads as redis-server's INFO."""
    from snapkv.server.client import Client
    from snapkv.server.dispatch import Dispatcher
    from snapkv.server.tracking import counts

    steps = [
        (0, ("CLIENT", "TRACKING", "on")),
        (0, ("MGET", "t1", "t2")),
        (1, ("CLIENT", "TRACKING", "on")),
        (1, ("GET", "t1")),
        (2, ("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "p", "PREFIX", "q")),
        (3, ("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "p")),
        (3, ("SET", "t2", "written")),
    ]
    server = Dispatcher(Store(), Config())
    ours = [Client(server, addr=f"a:{i}") for i in range(4)]
    theirs = [Raw(redis_port) for _ in range(4)]
    try:
        for client in ours:
            server.add_client(client)
        theirs[0]("FLUSHALL")  # forgets what earlier tests' clients read
        for index, argv in steps:
            server.execute(ours[index], list(argv))
            theirs[index](*argv)
        info = theirs[0]("INFO", "stats").decode()
        fields = dict(line.split(":", 1) for line in info.split("\r\n") if ":" in line)
        expected = tuple(
            int(fields[f"tracking_total_{name}"]) for name in ("keys", "items", "prefixes")
        )
        assert counts(server) == expected == (1, 2, 2)
    finally:
        for raw in theirs:
            raw.close()
        server.store.close()
