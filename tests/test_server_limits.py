"""Every bound the server puts on a request, over a real socket, with Redis 7.0's texts.

One test per limit (docs/SERVER.md "Limits" lists them with their Redis
source). Each sends the hostile request to a real server and checks three
things: the answer is the error Redis gives (or a bounded answer), it comes
within ``QUICK``, and afterwards the server still answers another client
and the data is as it was. ``QUICK`` is generous on purpose (a busy 2-core
machine); the unbounded versions of these requests took from 13 seconds to
hours.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from snapkv import Store
from snapkv.server import Config, RespServer, scan
from support import wait_until

redis = pytest.importorskip("redis")

T = TypeVar("T")
DEADLINE = 30.0
#: Longest a bounded request may take to answer (seconds).
QUICK = 2.0
LLONG_MAX = 2**63 - 1
TOO_BIG = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"


class Running:
    """A RespServer on its own event loop in a thread, with a canary key to check afterwards."""

    def __init__(self, **config: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = RespServer(Store(), Config(port=0, **config))
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        assert ready.wait(DEADLINE), "server did not start"
        self.port = self.server.port
        self.resources: list[Any] = []
        self.password = config.get("requirepass")
        self.client().set("canary", "alive")

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
        """Run ``fn`` on the server's loop (to read its state safely)."""
        return asyncio.run_coroutine_threadsafe(_call(fn), self.loop).result(DEADLINE)

    def client(self, **kwargs: Any) -> Any:
        kwargs.setdefault("password", self.password)
        client = redis.Redis(port=self.port, socket_timeout=DEADLINE, **kwargs)
        self.resources.append(client)
        return client

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=DEADLINE)
        self.resources.append(sock)
        return sock

    def assert_serving(self) -> None:
        """Another client is answered at once and the data is intact."""
        other = self.client()
        assert other.ping()
        assert other.get("canary") == b"alive"

    def stop(self) -> None:
        for resource in self.resources:
            resource.close()
        self.loop.call_soon_threadsafe(self.server.request_stop)
        self.thread.join(DEADLINE)


async def _call(fn: Callable[[], T]) -> T:
    return fn()


@pytest.fixture
def serve() -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(**config: Any) -> Running:
        started.append(Running(**config))
        return started[-1]

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def server(serve: Callable[..., Running]) -> Iterator[Running]:
    running = serve()
    yield running
    running.assert_serving()


def timed(run: Callable[[], T]) -> T:
    """``run()``, which must answer within QUICK."""
    start = time.monotonic()
    result = run()
    elapsed = time.monotonic() - start
    assert elapsed < QUICK, f"took {elapsed:.2f} s"
    return result


def refused(run: Callable[[], object], message: str) -> None:
    """``run()`` gets the error reply ``message``, within QUICK."""
    with pytest.raises(redis.ResponseError) as caught:
        timed(run)
    assert str(caught.value) == message.removeprefix("ERR ")


def read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


class Pinger:
    """A second client that PINGs in a loop, counting answers and the slowest one."""

    def __init__(self, running: Running) -> None:
        self.client = running.client()
        self.answered = 0
        self.slowest = 0.0
        self.changed = threading.Condition()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stopping.is_set():
            start = time.monotonic()
            self.client.ping()
            with self.changed:
                self.slowest = max(self.slowest, time.monotonic() - start)
                self.answered += 1
                self.changed.notify_all()

    def wait_for(self, count: int) -> None:
        """Wait until ``count`` PINGs were answered in all."""
        with self.changed:
            assert self.changed.wait_for(lambda: self.answered >= count, DEADLINE)

    def __enter__(self) -> Pinger:
        self.thread.start()
        self.wait_for(1)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(DEADLINE)


# ----------------------------------------------------------------- protocol
# Redis's networking.c, processMultibulkBuffer / processInlineBuffer.

PARSERS = pytest.mark.parametrize("hiredis", [True, False], ids=["hiredis", "python"])

PROTOCOL = [
    # More arguments than a request may have: Redis refuses above INT_MAX,
    # snapkv above 1,048,576 (a list of a million strings is already 60 MB).
    (b"*1048577\r\n", "invalid multibulk length"),
    (b"*2147483648\r\n", "invalid multibulk length"),
    # MSET with a million pairs: refused at its header, before any pair arrives.
    (b"*2000001\r\n$4\r\nMSET\r\n$1\r\nk\r\n$1\r\nv\r\n", "invalid multibulk length"),
    # A bulk longer than proto-max-bulk-len (512 MB), or negative.
    (b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870913\r\n", "invalid bulk length"),
    (b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$9223372036854775808\r\n", "invalid bulk length"),
    (b"*1\r\n$-1\r\n", "invalid bulk length"),
    # Lines without their end past PROTO_INLINE_MAX_SIZE (64 KB).
    (b"GET " + b"k" * 70_000, "too big inline request"),
    (b"*" + b"1" * 70_000, "too big mbulk count string"),
    (b"*1\r\n$" + b"1" * 70_000, "too big bulk count string"),
    # Requests are flat: an array inside one is refused at its first '*'.
    (b"*1\r\n" * 10_000, "expected '$', got '*'"),
]


@PARSERS
@pytest.mark.parametrize(("data", "message"), PROTOCOL)
def test_protocol_limits(
    serve: Callable[..., Running], hiredis: bool, data: bytes, message: str
) -> None:
    running = serve(hiredis=hiredis)
    sock = running.connect()
    sock.sendall(data)
    reply = timed(lambda: read_until_closed(sock))
    assert reply == b"-ERR Protocol error: %s\r\n" % message.encode()
    running.assert_serving()


@PARSERS
def test_unauthenticated_clients_are_limited_as_redis_7(
    serve: Callable[..., Running], hiredis: bool
) -> None:
    """Before AUTH: at most 10 arguments and 16 KB a bulk (CVE-2021-32675)."""
    running = serve(requirepass="sesame", hiredis=hiredis)
    for data, message in [
        (b"*11\r\n", "unauthenticated multibulk length"),
        (b"*2\r\n$4\r\nAUTH\r\n$16385\r\n", "unauthenticated bulk length"),
    ]:
        sock = running.connect()
        sock.sendall(data)
        assert timed(lambda s=sock: read_until_closed(s)) == (
            b"-ERR Protocol error: %s\r\n" % message.encode()
        )
    sock = running.connect()  # once authenticated, the usual limits hold
    sock.sendall(b"AUTH sesame\r\n*2\r\n$4\r\nECHO\r\n$16385\r\n%s\r\nQUIT\r\n" % (b"e" * 16385))
    assert read_until_closed(sock) == b"+OK\r\n$16385\r\n%s\r\n+OK\r\n" % (b"e" * 16385)
    sock = running.connect()  # RESET logs out: the limits hold again
    sock.sendall(b"AUTH sesame\r\nRESET\r\n")
    assert timed(lambda: sock.recv(100)) == b"+OK\r\n+RESET\r\n"
    sock.sendall(b"*11\r\n")
    assert timed(lambda: read_until_closed(sock)) == (
        b"-ERR Protocol error: unauthenticated multibulk length\r\n"
    )
    running.assert_serving()


@PARSERS
def test_proto_max_bulk_len_is_configurable(serve: Callable[..., Running], hiredis: bool) -> None:
    running = serve(hiredis=hiredis)
    before = running.connect()  # open before the change: it applies at once, as in Redis
    before.sendall(b"PING\r\n")
    assert before.recv(100) == b"+PONG\r\n"
    assert running.client().config_set("proto-max-bulk-len", 1024 * 1024)
    after = running.connect()
    for sock in (before, after):
        sock.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1048577\r\n")
        assert (
            timed(lambda s=sock: read_until_closed(s))
            == b"-ERR Protocol error: invalid bulk length\r\n"
        )
    refused(
        lambda: running.client().config_set("proto-max-bulk-len", 1024 * 1024 - 1),
        "ERR CONFIG SET failed (possibly related to argument 'proto-max-bulk-len') - "
        "argument must be between 1048576 and 9223372036854775807 inclusive",
    )
    running.assert_serving()


# ------------------------------------------------------------------ strings
# Redis's t_string.c: checkStringLength, getrange/setrange, incr/decr, incrbyfloat.


def test_setrange_past_proto_max_bulk_len(server: Running) -> None:
    r = server.client()
    r.set("s", "abc")
    refused(lambda: r.setrange("s", 512 * 1024 * 1024, "x"), TOO_BIG)
    refused(lambda: r.setrange("s", LLONG_MAX, "x"), TOO_BIG)  # offset + length overflows
    refused(lambda: r.setrange("new", 512 * 1024 * 1024, "x"), TOO_BIG)
    refused(lambda: r.setrange("s", -1, "x"), "ERR offset is out of range")
    refused(lambda: r.setrange("s", 2**63, "x"), "ERR value is not an integer or out of range")
    assert timed(lambda: r.setrange("new", LLONG_MAX, "")) == 0  # nothing to write: no key
    assert r.get("s") == b"abc"
    assert r.exists("new") == 0


def test_string_growth_stops_at_a_lowered_limit(server: Running) -> None:
    r = server.client()
    limit = 1024 * 1024
    assert r.config_set("proto-max-bulk-len", limit)
    assert timed(lambda: r.setrange("s", limit - 1, "x")) == limit  # exactly the limit: allowed
    refused(lambda: r.setrange("s", limit, "x"), TOO_BIG)
    refused(lambda: r.setrange("s", limit - 1, "xy"), TOO_BIG)
    refused(lambda: r.append("s", "x"), TOO_BIG)
    assert r.strlen("s") == limit
    r.set("a", "a" * (limit - 2))
    assert r.append("a", "bc") == limit
    refused(lambda: r.append("a", "d"), TOO_BIG)
    assert r.strlen("a") == limit


def test_getrange_with_extreme_offsets(server: Running) -> None:
    r = server.client()
    r.set("s", "hello")
    assert timed(lambda: r.getrange("s", 0, LLONG_MAX)) == b"hello"
    assert r.getrange("s", -(2**63), LLONG_MAX) == b"hello"
    assert r.getrange("s", LLONG_MAX, LLONG_MAX) == b""
    refused(lambda: r.getrange("s", 0, 2**63), "ERR value is not an integer or out of range")


def test_incr_overflow(server: Running) -> None:
    r = server.client()
    r.set("n", LLONG_MAX)
    refused(lambda: r.incr("n"), "ERR increment or decrement would overflow")
    refused(lambda: r.incrby("n", 1), "ERR increment or decrement would overflow")
    r.set("m", -(2**63))
    refused(lambda: r.decr("m"), "ERR increment or decrement would overflow")
    refused(lambda: r.decrby("m", -(2**63)), "ERR decrement would overflow")
    refused(lambda: r.incrby("n", 2**63), "ERR value is not an integer or out of range")
    r.set("long", "1" * 100_000)
    refused(lambda: r.incr("long"), "ERR value is not an integer or out of range")
    assert (r.get("n"), r.get("m")) == (b"%d" % LLONG_MAX, b"%d" % -(2**63))


def test_incrbyfloat_extremes(server: Running) -> None:
    r = server.client()
    r.set("f", "1.7976931348623157e308")
    refused(
        lambda: r.incrbyfloat("f", 1.7976931348623157e308),
        "ERR increment would produce NaN or Infinity",
    )
    refused(lambda: r.incrbyfloat("f", "inf"), "ERR increment would produce NaN or Infinity")
    refused(lambda: r.incrbyfloat("f", "nan"), "ERR value is not a valid float")
    assert r.get("f") == b"1.7976931348623157e308"
    # MAX_LONG_DOUBLE_CHARS: a float of 5 KB or more is not read at all.
    assert r.incrbyfloat("z", "0." + "0" * 5117) == 0.0  # 5,119 characters
    refused(lambda: r.incrbyfloat("z", "0." + "0" * 5118), "ERR value is not a valid float")
    # A long number that fails at its end (this took 43 s at 40,000 digits).
    r.set("digits", "1" * 40_000 + "x")
    refused(lambda: r.incrbyfloat("digits", 1), "ERR value is not a valid float")
    refused(lambda: r.incrbyfloat("z", "1" * 5000 + "x"), "ERR value is not a valid float")
    refused(lambda: r.incrbyfloat("z", "\u0663"), "ERR value is not a valid float")  # Arabic 3


EXPIRY_OUT_OF_RANGE = [
    ("SETEX", "k", "0", "v"),
    ("SETEX", "k", "-1", "v"),
    ("SETEX", "k", "9223372036854776", "v"),  # seconds past LLONG_MAX / 1000
    ("SETEX", "k", "9223372036854775", "v"),  # in range, but not once now is added
    ("PSETEX", "k", "-1", "v"),
    ("PSETEX", "k", "9223372036854775807", "v"),
    ("SET", "k", "v", "EX", "0"),
    ("SET", "k", "v", "EX", "9223372036854776"),
    ("SET", "k", "v", "PX", "-5"),
    ("SET", "k", "v", "PX", "9223372036854775807"),
    ("SET", "k", "v", "EXAT", "-1"),
    ("GETEX", "canary", "EX", "-1"),
    ("GETEX", "canary", "PXAT", "0"),
]


@pytest.mark.parametrize("argv", EXPIRY_OUT_OF_RANGE, ids=" ".join)
def test_set_expiry_out_of_range(server: Running, argv: tuple[str, ...]) -> None:
    """getExpireMillisecondsOrReply: above 0, and in ms (plus now) within 64 bits."""
    r = server.client()
    refused(
        lambda: r.execute_command(*argv), f"ERR invalid expire time in '{argv[0].lower()}' command"
    )
    assert r.exists("k") == 0
    assert r.ttl("canary") == -1


# --------------------------------------------------------------------- keys
# Redis's expire.c expireGenericCommand, db.c scanGenericCommand / keysCommand.


def test_expire_out_of_range(server: Running) -> None:
    r = server.client()
    r.set("k", "v")
    for command, when in [
        ("EXPIRE", 9223372036854776),  # seconds past LLONG_MAX / 1000
        ("EXPIRE", -9223372036854776),  # below LLONG_MIN / 1000, truncated as C does
        ("EXPIRE", 9223372036854775),  # in range, but not once now is added
        ("PEXPIRE", LLONG_MAX),
        ("EXPIREAT", 9223372036854776),
    ]:
        refused(
            lambda c=command, w=when: r.execute_command(c, "k", w),
            f"ERR invalid expire time in '{command.lower()}' command",
        )
    refused(lambda: r.expire("k", 2**63), "ERR value is not an integer or out of range")
    assert r.ttl("k") == -1
    assert r.pexpireat("k", LLONG_MAX)  # the largest time Redis accepts
    assert r.pttl("k") > 2**62
    assert r.execute_command("EXPIRE", "k", -9223372036854775) == 1  # in the past: deleted
    assert r.exists("k") == 0


def test_scan_with_a_huge_count_looks_at_a_bounded_number_of_keys(server: Running) -> None:
    r = server.client()
    keys = {f"key:{i}" for i in range(2 * scan.SCAN_MAX_COUNT + 500)}
    r.mset(dict.fromkeys(keys, "v"))
    seen: list[bytes] = []
    cursor = 0
    calls = 0
    while True:
        cursor, batch = timed(lambda c=cursor: r.scan(c, count=LLONG_MAX))
        assert len(batch) <= scan.SCAN_MAX_COUNT
        seen.extend(batch)
        calls += 1
        if cursor == 0:
            break
    assert calls == 3
    assert sorted(k.decode() for k in seen) == sorted(keys | {"canary"})
    refused(lambda: r.scan(0, count=2**63), "ERR value is not an integer or out of range")
    refused(lambda: r.scan(0, count=0), "ERR syntax error")
    refused(lambda: r.scan("1" * 5000), "ERR invalid cursor")
    refused(lambda: r.scan("18446744073709551616"), "ERR invalid cursor")


def test_scan_walks_hold_a_bounded_copy_and_still_miss_no_key(
    server: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Snapshots for all walks together stay within SCAN_HELD_PER_KEY per live key.

    A client that starts walk after walk pushes older walks' snapshots out;
    a pushed-out walk starts again from the beginning of a fresh snapshot,
    so it repeats keys but misses none (Redis's guarantee), even when keys
    it already passed were deleted meanwhile (continuing at the same
    position of the fresh snapshot would skip as many keys).
    """
    monkeypatch.setattr(scan, "SCAN_HELD_MIN", 0)
    monkeypatch.setattr(scan, "SCAN_ACTIVE_SECONDS", 0.0)  # the plain budget rule
    r = server.client()
    r.mset({f"k{i}": "v" for i in range(999)})
    cursor, first = r.scan(0, count=10)
    deleted = [key for key in first if key != b"canary"][:5]
    assert r.delete(*deleted) == 5
    for _ in range(3 * scan.SCAN_HELD_PER_KEY):
        r.scan(0, count=10)  # walks that are never finished
    held = server.call(
        lambda: [len(names) for _, names, _ in server.server.dispatcher.scans.values()]
    )
    assert sum(held) <= scan.SCAN_HELD_PER_KEY * r.dbsize()
    seen = set(first)
    while cursor:
        cursor, batch = r.scan(cursor, count=100)
        seen.update(batch)
    assert seen >= set(r.keys("*"))


@pytest.mark.parametrize(
    "pattern",
    ["a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", "*" * 1000 + "b", "*?" * 5000 + "b", "a*" * 5000 + "b"],
    ids=["a*...b", "*x1000 b", "*?x5000 b", "a*x5000 b"],
)
def test_keys_and_scan_with_pathological_patterns(server: Running, pattern: str) -> None:
    """Backtracking patterns against a 10,000-byte key: answered at once, others served."""
    r = server.client()
    r.set("a" * 10_000, "v")
    with Pinger(server) as pinger:
        for _ in range(5):
            assert timed(lambda: r.keys(pattern)) == []
            assert timed(lambda: r.scan(0, match=pattern, count=100)) == (0, [])
        pinger.wait_for(pinger.answered + 3)  # the other client was answered meanwhile
    assert pinger.slowest < QUICK


# ----------------------------------------------------------- other commands


def test_client_names_of_any_length_are_checked_at_once(server: Running) -> None:
    r = server.client()
    name = "n" * (4 * 1024 * 1024)
    refused(
        lambda: r.client_setname(name + " "),
        "ERR Client names cannot contain spaces, newlines or special characters.",
    )
    assert timed(lambda: r.client_setname(name))
    assert r.client_getname() in (name, name.encode())


def test_client_kill_filters_are_read_once(server: Running) -> None:
    """The last value of each filter counts (as Redis); clients are looked at once."""
    r = server.client()
    victim, bystander = server.client(), server.client()
    victim_id, bystander_id = victim.client_id(), bystander.client_id()
    victim_addr = next(c["addr"] for c in r.client_list() if c["id"] == str(victim_id))
    laddr = f"127.0.0.1:{server.port}"
    filters = [*["LADDR", laddr] * 200_000, "ADDR", "nobody:1", "ADDR", victim_addr]
    assert timed(lambda: r.execute_command("CLIENT", "KILL", *filters)) == 1
    wait_until(lambda: str(victim_id) not in {c["id"] for c in r.client_list()}, what="the kill")
    assert str(bystander_id) in {c["id"] for c in r.client_list()}


def test_introspection_with_many_arguments(server: Running) -> None:
    """Each distinct command or pattern is handled once, however often a request names it."""
    r = server.client()
    n = 100_000
    connection = r.connection_pool.get_connection()
    try:
        # Each entry is Redis's whole one (key specs included, ~300 bytes): a
        # tenth of the names keeps the client's parsing out of the timing.
        connection.send_command("COMMAND", "INFO", *["get"] * (n // 10))
        info = timed(connection.read_response)
        assert len(info) == n // 10
        assert info[0] == info[-1]
        assert info[0][0] == b"get"
    finally:
        r.connection_pool.release(connection)
    # CONFIG GET is O(patterns x settings), as in Redis; each distinct pattern once.
    patterns = [f"*x{i % 10_000}*" for i in range(n)]
    found = timed(lambda: r.execute_command("CONFIG", "GET", *patterns))
    assert not found


@PARSERS
def test_a_protocol_error_reply_arrives_though_more_input_follows(
    serve: Callable[..., Running], hiredis: bool
) -> None:
    """The error reply is not lost to a reset: input after the error is read and dropped.

    A socket closed with the peer's bytes still unread sends a reset, which
    can reach the client first and discard the reply it has not read yet.
    """
    running = serve(hiredis=hiredis)
    sock = running.connect()
    sock.sendall(b"*1\r\n*1\r\n" + b"x" * (1 << 20))
    reply = timed(lambda: read_until_closed(sock))
    assert reply == b"-ERR Protocol error: expected '$', got '*'\r\n"


@pytest.mark.parametrize(
    ("fill", "draw"),
    [
        (("SADD", "s", "a", "b"), ("SRANDMEMBER", "s")),
        (("HSET", "h", "a", "1"), ("HRANDFIELD", "h")),
        (("ZADD", "z", "1", "a"), ("ZRANDMEMBER", "z")),
    ],
)
def test_a_random_draw_with_repetition_is_bounded(
    server: Running, fill: tuple[str, ...], draw: tuple[str, ...]
) -> None:
    """A huge negative count would stall every client while the reply is built: refused."""
    from snapkv.server.table import RANDOM_DRAW_MAX

    r = server.client()
    r.execute_command(*fill)
    refused(lambda: r.execute_command(*draw, "-9223372036854775807"), "ERR value is out of range")
    assert len(r.execute_command(*draw, str(-RANDOM_DRAW_MAX))) == RANDOM_DRAW_MAX
    assert r.execute_command(*draw[:1], "missing", "-9223372036854775807") == []


def test_walks_continued_side_by_side_all_finish(
    server: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by review: eight HSCANs of one big hash, in turn, each pushed the others out.

    Each walk is a snapshot of its own; over the budget, the least recently
    continued one went, so every client restarted for ever. A walk continued
    recently is now kept (up to SCAN_HARD_FACTOR times the budget).
    """
    monkeypatch.setattr(scan, "SCAN_HELD_MIN", 0)
    r = server.client()
    fields = {f"f{i}": "v" for i in range(3_000)}
    r.hset("h", mapping=fields)
    walkers = 8  # 8 snapshots of 3,000 > the budget of 4 x 3,000
    cursors = [0] * walkers
    seen: list[set[bytes]] = [set() for _ in range(walkers)]
    done = [False] * walkers
    for _ in range(200):
        for i in range(walkers):
            if not done[i]:
                cursors[i], page = r.hscan("h", cursors[i], count=100)
                seen[i].update(page)
                done[i] = cursors[i] == 0
        if all(done):
            break
    assert all(done)
    assert all(len(fields_seen) == 3_000 for fields_seen in seen)
