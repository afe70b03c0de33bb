"""snapkv serve end to end: a real server on 127.0.0.1, real clients, real sockets.

The server runs in a thread on its own event loop (asyncio's, and uvloop's
where installed); ``snapkv serve`` as a subprocess (signals, kill -9) is
tested in test_server_process.py. Clients are redis-py (sync and asyncio,
RESP2 and RESP3), redis-cli and redis-benchmark (when on PATH; under CI, where they are
installed, a missing one fails the test), and raw sockets for malformed
input. Nothing here sleeps to let time pass: waits are for a condition,
with a deadline.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

import snapkv
from snapkv import Store
from snapkv.errors import MediumError, SnapkvError
from snapkv.server import Config, RespServer
from snapkv.testing import FaultyMedium
from support import wait_until

redis = pytest.importorskip("redis")

T = TypeVar("T")
LOOPS = ["asyncio", "uvloop"]
DEADLINE = 20.0


class Running:
    """A RespServer on its own event loop in a thread."""

    def __init__(self, store: Store, config: Config, loop: str = "asyncio") -> None:
        if loop == "uvloop":
            uvloop = pytest.importorskip("uvloop")
            self.loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        else:
            self.loop = asyncio.new_event_loop()
        self.store = store
        self.server = RespServer(store, config)
        self.resources: list[Any] = []  # clients and sockets, closed by stop()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        assert ready.wait(DEADLINE), "server did not start"
        self.port = self.server.port

    def _run(self, ready: threading.Event) -> None:
        async def main() -> None:
            await self.server.start()
            ready.set()
            await self.server.serve_until_stopped()

        try:
            self.loop.run_until_complete(main())
        finally:
            self.loop.close()

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the server's loop (to read or poke its state safely)."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

        self.loop.call_soon_threadsafe(run)
        return future.result(DEADLINE)

    def stop(self) -> None:
        for resource in self.resources:
            resource.close()
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.server.request_stop)
            self.thread.join(DEADLINE)

    def client(self, **kwargs: Any) -> Any:
        client = redis.Redis(port=self.port, socket_timeout=DEADLINE, **kwargs)
        self.resources.append(client)
        return client

    def connect(self, *, rcvbuf: int | None = None) -> socket.socket:
        sock = connect(self.port, rcvbuf=rcvbuf)
        self.resources.append(sock)
        return sock


@pytest.fixture
def serve() -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(store: Store | None = None, loop: str = "asyncio", **config: Any) -> Running:
        running = Running(store if store is not None else Store(), Config(port=0, **config), loop)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


def connect(port: int, *, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(DEADLINE)
    sock.connect(("127.0.0.1", port))
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(min(1 << 20, size - len(data)))
        assert chunk, f"connection closed after {len(data)} of {size} bytes"
        data += chunk
    return data


def tool(name: str) -> str:
    """Path of a Redis tool; skipped locally when missing, but a failure under CI."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not on PATH (CI installs Debian's redis-tools)")
        pytest.skip(f"{name} is not on PATH")
    return path


BINARY = [bytes([b]) for b in range(256)] + [bytes(range(256)), b"\xff\xfe", b"\xc3(", b""]


# ---------------------------------------------------------------- redis-py


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_sync(serve: Callable[..., Running], loop: str, protocol: int) -> None:
    running = serve(loop=loop)
    r = running.client(protocol=protocol)
    assert r.ping()
    assert r.set("k", "v") and r.get("k") == b"v"
    assert r.get("missing") is None
    assert r.incr("n") == 1 and r.incrby("n", 5) == 6
    assert r.mset({"a": "1", "b": "2"}) and r.mget("a", "missing", "b") == [b"1", None, b"2"]
    assert r.set("t", "x", ex=100) and r.ttl("t") == 100
    assert r.exists("a", "b", "missing") == 2 and r.delete("a", "b") == 2
    assert r.type("k") == b"string"
    assert sorted(r.keys("*")) == [b"k", b"n", b"t"]
    assert sorted(r.scan_iter(match="*", count=1)) == [b"k", b"n", b"t"]
    assert r.dbsize() == 3
    assert r.info()["redis_version"] == "7.2.0"
    assert r.config_get("maxclients") == {"maxclients": "10000"} or r.config_get("maxclients") == {
        b"maxclients": b"10000"
    }
    assert r.client_setname("me") and r.client_getname() in ("me", b"me")
    assert r.execute_command("HELLO", protocol)[b"proto" if protocol == 3 else 5] in (protocol,)
    with pytest.raises(redis.ResponseError, match="unknown command 'PFADD'"):
        r.pfadd("x", "a")


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_pipelines(serve: Callable[..., Running], protocol: int) -> None:
    r = serve().client(protocol=protocol)
    with r.pipeline(transaction=True) as pipe:
        pipe.set("a", "1").incr("a").get("a").get("missing")
        assert pipe.execute() == [True, 2, b"2", None]
    with r.pipeline(transaction=False) as pipe:
        for i in range(1000):
            pipe.set(f"k{i}", i)
        pipe.dbsize()
        assert pipe.execute()[-1] == 1001
    with r.pipeline(transaction=True) as pipe:
        pipe.set("x", "1").incr("a", "not-a-number")
        with pytest.raises(redis.ResponseError, match="value is not an integer or out of range"):
            pipe.execute()


def test_redis_py_watch_retries_on_conflict(serve: Callable[..., Running]) -> None:
    running = serve()
    r, other = running.client(), running.client()
    r.set("balance", 10)
    attempts = 0

    def transfer(pipe: Any) -> None:
        nonlocal attempts
        attempts += 1
        balance = int(pipe.get("balance"))
        if attempts == 1:
            other.set("balance", 100)  # a write between WATCH and EXEC
        pipe.multi()
        pipe.set("balance", balance - 1)

    r.transaction(transfer, "balance")
    assert attempts == 2
    assert r.get("balance") == b"99"


@pytest.mark.parametrize("loop", LOOPS)
def test_redis_py_asyncio(serve: Callable[..., Running], loop: str) -> None:
    running = serve(loop=loop)

    async def main() -> None:
        client = redis.asyncio.Redis(port=running.port, protocol=3)
        try:
            assert await client.ping()
            await client.set("k", "v")
            assert await client.get("k") == b"v"
            results = await asyncio.gather(*(client.incr("n") for _ in range(50)))
            assert sorted(results) == list(range(1, 51))
            async with client.pipeline(transaction=True) as pipe:
                pipe.set("a", "1").incr("a").get("a")
                assert await pipe.execute() == [True, 2, b"2"]
            async with client.pipeline(transaction=False) as pipe:
                for _ in range(100):
                    pipe.get("k")
                assert await pipe.execute() == [b"v"] * 100
        finally:
            await client.aclose()

    asyncio.run(main())


@pytest.mark.parametrize("protocol", [2, 3])
def test_binary_values_round_trip_byte_for_byte(
    serve: Callable[..., Running], protocol: int
) -> None:
    r = serve().client(protocol=protocol)
    for value in BINARY:
        key = b"key:" + value
        assert r.set(key, value)
        assert r.get(key) == value
        assert r.strlen(key) == len(value)
    assert sorted(r.keys(b"key:*")) == sorted(b"key:" + v for v in BINARY)
    assert r.append(b"key:" + BINARY[-2], b"\xff") == 3
    assert r.get(b"key:" + BINARY[-2]) == b"\xc3(\xff"


def test_binary_values_are_the_stores_str(serve: Callable[..., Running]) -> None:
    running = serve()
    r = running.client()
    r.set("ключ".encode(), "значение".encode())
    r.set(b"raw", b"\xff\x00")
    assert running.store.get("ключ") == "значение"
    assert running.store.get("raw") == "\udcff\x00"


# ------------------------------------------------------------------- tools


def test_redis_cli(serve: Callable[..., Running]) -> None:
    cli = tool("redis-cli")
    running = serve()

    def run(*args: str, stdin: str | None = None) -> str:
        result = subprocess.run(
            [cli, "-p", str(running.port), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=DEADLINE,
            check=True,
        )
        return result.stdout

    assert run("PING") == "PONG\n"
    assert run("SET", "greeting", "hello world") == "OK\n"
    assert run("GET", "greeting") == "hello world\n"
    assert run("INCR", "n") == "1\n"
    assert run("GET", "missing") == "\n"
    assert run("MGET", "greeting", "n") == "hello world\n1\n"
    assert "ERR unknown command 'NOPE'" in run("NOPE")
    assert run("-3", "GET", "greeting") == "hello world\n"  # RESP3 via HELLO 3
    assert "redis_version:7.2.0" in run("INFO", "server")
    # Commands on stdin, as a shell script would pipe them.
    assert run(stdin="SET a 1\nINCR a\nGET a\n") == "OK\n2\n2\n"


def test_redis_benchmark_has_no_errors(serve: Callable[..., Running]) -> None:
    bench = tool("redis-benchmark")
    running = serve()
    result = subprocess.run(
        [
            bench,
            "-p",
            str(running.port),
            "-t",
            "set,get,incr,mset",
            "-n",
            "2000",
            "-c",
            "8",
            "-P",
            "16",
            "-r",
            "1000",
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "rror" not in output, output
    assert len(re.findall(r"requests per second", output)) == 4, output


# ----------------------------------------------------------------- robustness


MALFORMED = [
    (b"*1\r\n$-1\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    (b"*abc\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
    (b"*1\r\n:4\r\n", b"-ERR Protocol error: expected '$', got ':'\r\n"),
    (b"*1\r\n$600000000\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    (b"*2000000\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
    (b'PING "open\r\n', b"-ERR Protocol error: unbalanced quotes in request\r\n"),
    (b"x" * 70000, b"-ERR Protocol error: too big inline request\r\n"),
    (
        b"*1\r\n$4\r\nPING\r\n*1\r\n$-1\r\n",
        b"+PONG\r\n-ERR Protocol error: invalid bulk length\r\n",
    ),
]


@pytest.mark.parametrize(("data", "reply"), MALFORMED)
def test_malformed_input_closes_only_that_connection(
    serve: Callable[..., Running], data: bytes, reply: bytes
) -> None:
    running = serve()
    good = running.client()
    good.set("k", "v")
    bad = running.connect()
    bad.sendall(data)
    assert read_until_closed(bad) == reply
    assert good.get("k") == b"v"
    assert running.call(lambda: running.server.dispatcher.protocol_errors) == 1


def test_inline_commands_as_telnet_sends_them(serve: Callable[..., Running]) -> None:
    running = serve()
    sock = running.connect()
    sock.sendall(b"PING\r\nSET a 'hello world'\r\nGET a\nQUIT\r\n")
    assert read_until_closed(sock) == b"+PONG\r\n+OK\r\n$11\r\nhello world\r\n+OK\r\n"


def test_requirepass(serve: Callable[..., Running]) -> None:
    running = serve(requirepass="sesame")
    # (redis-py would retry a refused handshake for seconds: a raw socket says it at once.)
    sock = running.connect()
    sock.sendall(b"GET k\r\nQUIT\r\n")
    assert read_until_closed(sock) == b"-NOAUTH Authentication required.\r\n+OK\r\n"
    assert running.client(password="sesame").set("k", "v")
    assert running.client(password="sesame", protocol=3).get("k") == b"v"
    sock = running.connect()
    sock.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$20000\r\n")  # a big bulk before AUTH
    assert read_until_closed(sock) == b"-ERR Protocol error: unauthenticated bulk length\r\n"
    sock = running.connect()
    value = b"v" * 20000
    sock.sendall(b"AUTH sesame\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$20000\r\n%s\r\nQUIT\r\n" % value)
    assert read_until_closed(sock) == b"+OK\r\n+OK\r\n+OK\r\n"


def test_maxclients(serve: Callable[..., Running]) -> None:
    running = serve(maxclients=2)
    first, second = running.connect(), running.connect()
    for sock in (first, second):
        sock.sendall(b"PING\r\n")
        assert sock.recv(100) == b"+PONG\r\n"
    third = running.connect()
    assert read_until_closed(third) == b"-ERR max number of clients reached\r\n"
    first.close()
    wait_until(
        lambda: running.call(lambda: len(running.server.dispatcher.clients)) == 1,
        timeout=DEADLINE,
        what="the closed client to be removed",
    )
    fourth = running.connect()
    fourth.sendall(b"PING\r\n")
    assert fourth.recv(100) == b"+PONG\r\n"
    assert running.call(lambda: running.server.dispatcher.rejected_connections) == 1


def test_a_client_that_does_not_read_gets_back_pressure(serve: Callable[..., Running]) -> None:
    high = 256 * 1024
    running = serve(output_high_water=high)
    value = b"x" * (512 * 1024)
    running.client().set("big", value)
    greedy = running.connect(rcvbuf=64 * 1024)
    count = 200  # 100 MB of replies if the server buffered them all
    greedy.sendall(b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n" * count)

    def connection() -> Any:  # the newest connection: the greedy one
        return max(running.server.connections, key=lambda c: c.client.id if c.client else 0)

    wait_until(
        lambda: running.call(lambda: connection().paused),
        timeout=DEADLINE,
        what="the transport to pause the connection's writes",
    )
    buffered = running.call(lambda: connection().transport.get_write_buffer_size())  # noqa: PLW0108 - must run on the loop
    pending = running.call(lambda: len(connection().pending))
    assert buffered <= high + 64 * 1024 + len(value) + 64
    assert pending > 0  # parsed but not run: waiting for the client to read
    assert running.client().get("big") == value  # everyone else is still served
    reply = b"$%d\r\n%s\r\n" % (len(value), value)
    for _ in range(count):
        assert read_exactly(greedy, len(reply)) == reply


def test_idle_clients_are_closed(serve: Callable[..., Running]) -> None:
    running = serve(timeout=100)
    idle, busy = running.connect(), running.connect()
    for sock in (idle, busy):
        sock.sendall(b"PING\r\n")
        assert sock.recv(100) == b"+PONG\r\n"

    def age_one_client() -> None:
        for connection in running.server.connections:
            assert connection.client is not None
            if connection.client.id == 1:
                connection.client.last_interaction -= 1000  # the injected passage of time
        running.server._tick()

    running.call(age_one_client)
    assert read_until_closed(idle) == b""
    busy.sendall(b"PING\r\n")
    assert busy.recv(100) == b"+PONG\r\n"


def test_client_kill(serve: Callable[..., Running]) -> None:
    running = serve()
    victim = running.connect()
    victim.sendall(b"CLIENT ID\r\n")
    victim_id = int(victim.recv(100)[1:-2])
    assert running.client().client_kill_filter(_id=victim_id) == 1
    assert read_until_closed(victim) == b""


def test_short_lived_connections_leak_nothing(serve: Callable[..., Running]) -> None:
    running = serve()
    fds_before = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0
    for _ in range(100):  # 10,000 connections, 100 at a time
        batch = [socket.create_connection(("127.0.0.1", running.port)) for _ in range(100)]
        for sock in batch:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
        for sock in batch:
            sock.settimeout(DEADLINE)
            assert sock.recv(100) == b"+PONG\r\n"
            sock.close()
    state = running.server.dispatcher
    wait_until(
        lambda: running.call(lambda: not state.clients),
        timeout=DEADLINE,
        what="every client to be removed",
    )
    assert running.call(lambda: len(running.server.connections)) == 0
    assert running.call(lambda: state.connections_received) == 10_000
    if fds_before:
        wait_until(
            lambda: len(os.listdir("/proc/self/fd")) <= fds_before + 2,
            timeout=DEADLINE,
            what="the connections' fds to be closed",
        )


# ------------------------------------------------------------- persistence


def test_shutdown_then_restart_restores(serve: Callable[..., Running], tmp_path: Path) -> None:
    store = snapkv.open(tmp_path, journal=True)
    running = serve(store)
    r = running.client()
    r.set("a", "1")
    r.select(3)
    r.set("b", "2", ex=1000)
    sock = running.connect()
    sock.sendall(b"SHUTDOWN\r\n")
    assert read_until_closed(sock) == b""  # as Redis: no reply, the connection closes
    running.thread.join(DEADLINE)
    assert not running.thread.is_alive()
    store.close()
    with snapkv.open(tmp_path, journal=True) as again:
        assert again.get("a") == "1"
        assert again.db(3).get("b") == "2"
        ttl = again.db(3).ttl("b")
        assert ttl is not None and 990 < ttl <= 1000


def test_shutdown_nosave_keeps_the_journal(serve: Callable[..., Running], tmp_path: Path) -> None:
    store = snapkv.open(tmp_path, journal=True, fsync="always")
    running = serve(store)
    running.client().set("a", "1")
    sock = running.connect()
    sock.sendall(b"SHUTDOWN NOSAVE\r\n")
    assert read_until_closed(sock) == b""
    running.thread.join(DEADLINE)
    store.close()
    with snapkv.open(tmp_path, journal=True) as again:
        assert again.get("a") == "1"


# ------------------------------------------------- appendfsync always: group sync


class Synced:
    """A server with ``appendfsync always`` over a Store journaling to a FaultyMedium.

    The Store journals with ``fsync="never"`` (as ``snapkv serve`` opens it
    under ``appendfsync always``): only the server's group sync makes
    writes durable, and the medium tells what a power loss would keep.
    """

    def __init__(self, serve: Callable[..., Running], **config: Any) -> None:
        self.medium = FaultyMedium()
        self.syncs = 0
        self.medium.on_event = self._count
        self.store = Store(self.medium, journal=True, fsync="never")
        self.store.restore()
        self.running = serve(self.store, appendonly=True, appendfsync="always", **config)

    def _count(self, _number: int, kind: str) -> None:
        if kind == "sync":
            self.syncs += 1

    def unsynced(self) -> int:
        """Journal bytes a power loss now would lose."""
        jid = self.medium.journal_ids()[-1]
        return len(self.medium.read_journal(jid) or b"") - self.medium.synced_size(jid)

    def after_power_loss(self) -> Store:
        """A Store restored from what a power loss now would leave (every unsynced byte lost)."""
        store = Store(self.medium.crash("drop"), journal=True)
        store.restore()
        return store


@pytest.fixture
def synced(serve: Callable[..., Running]) -> Iterator[Callable[..., Synced]]:
    made: list[Synced] = []

    def start(**config: Any) -> Synced:
        made.append(Synced(serve, **config))
        return made[-1]

    yield start
    for one in made:
        one.running.stop()
        with contextlib.suppress(SnapkvError):  # a test may have failed its journal
            one.store.close()


def test_always_replies_only_after_the_write_is_durable(synced: Callable[..., Synced]) -> None:
    server = synced()
    r = server.running.client()
    for i in range(40):
        assert r.set(f"k{i}", "v" * i)
        # The reply is out, so a power loss now must keep the write.
        assert server.unsynced() == 0, i
        if i % 10 == 9:
            with server.after_power_loss() as image:
                assert [image.get(f"k{j}") for j in range(i + 1)] == ["v" * j for j in range(i + 1)]
    with r.pipeline(transaction=True) as pipe:
        pipe.incr("n").incr("n")
        assert pipe.execute() == [1, 2]
    assert server.unsynced() == 0
    with server.after_power_loss() as image:
        assert image.get("n") == "2"


def test_always_shares_one_fsync_between_pipelined_writes(synced: Callable[..., Synced]) -> None:
    server = synced()
    socks = [server.running.connect() for _ in range(4)]
    request = b"".join(
        b"*3\r\n$3\r\nSET\r\n$2\r\nk%d\r\n$1\r\nv\r\n" % (i % 10) for i in range(200)
    )
    for sock in socks:
        sock.sendall(request)
    for sock in socks:
        assert read_exactly(sock, 5 * 200) == b"+OK\r\n" * 200
    assert server.unsynced() == 0
    # 800 writes: one fsync each would be 800; one per turn of the loop is a handful.
    assert 1 <= server.syncs < 100, server.syncs
    assert 1 <= server.running.call(lambda: server.running.server.syncs) < 100


def test_always_keeps_the_order_of_replies_quit_and_protocol_errors(
    synced: Callable[..., Synced],
) -> None:
    server = synced()
    sock = server.running.connect()
    sock.sendall(b"SET a 1\r\nGET a\r\nQUIT\r\nGET a\r\n")
    assert read_until_closed(sock) == b"+OK\r\n$1\r\n1\r\n+OK\r\n"
    sock = server.running.connect()
    sock.sendall(b"SET b 2\r\n*1\r\n$-1\r\n")
    assert read_until_closed(sock) == b"+OK\r\n-ERR Protocol error: invalid bulk length\r\n"
    assert server.unsynced() == 0
    assert server.running.client().mget("a", "b") == [b"1", b"2"]


def test_always_back_pressure_bounds_held_replies(synced: Callable[..., Synced]) -> None:
    high = 256 * 1024
    server = synced(output_high_water=high)
    running = server.running
    value = b"x" * (512 * 1024)
    running.client().set("big", value)
    greedy = running.connect(rcvbuf=64 * 1024)
    count = 200  # 100 MB of replies if the server held or buffered them all
    greedy.sendall(b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n" * count)

    def connection() -> Any:
        return max(running.server.connections, key=lambda c: c.client.id if c.client else 0)

    wait_until(
        lambda: running.call(lambda: connection().paused),
        timeout=DEADLINE,
        what="the transport to pause the connection's writes",
    )
    buffered = running.call(
        lambda: connection().transport.get_write_buffer_size() + connection().held_size
    )
    assert buffered <= 2 * (high + 64 * 1024 + len(value) + 64)
    assert running.call(lambda: len(connection().pending)) > 0
    assert running.client().get("big") == value  # everyone else is still served
    reply = b"$%d\r\n%s\r\n" % (len(value), value)
    for _ in range(count):
        assert read_exactly(greedy, len(reply)) == reply


def test_always_a_failed_fsync_is_never_acknowledged(synced: Callable[..., Synced]) -> None:
    server = synced()
    sock = server.running.connect()
    sock.sendall(b"SET a 1\r\n")
    assert sock.recv(100) == b"+OK\r\n"
    server.medium.fail("sync")
    sock.sendall(b"SET b 2\r\n")
    reply = read_until_closed(sock)
    assert reply.startswith(b"-ERR journal sync failed") and b"injected failure" in reply
    assert b"+OK" not in reply
    server.running.thread.join(DEADLINE)  # the server stops, as Redis does
    assert not server.running.thread.is_alive()
    assert isinstance(server.running.server.fatal, MediumError)


def test_shutdown_under_always_replies_in_order_then_stops(synced: Callable[..., Synced]) -> None:
    server = synced()
    sock = server.running.connect()
    sock.sendall(b"SET a 1\r\nSHUTDOWN NOSAVE\r\n")
    assert read_until_closed(sock) == b"+OK\r\n"
    server.running.thread.join(DEADLINE)
    assert not server.running.thread.is_alive()
    with server.after_power_loss() as image:
        assert image.get("a") == "1"
