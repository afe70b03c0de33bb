"""Scripting, pub/sub and blocking pops: ``snapkv serve`` against redis-server and fakeredis.

Three measurements, each server a process of its own on a free loopback
port (``snapkv serve --save "" --appendonly no`` with uvloop and hiredis
when installed, Debian's redis-server 7.0 with ``--save "" --appendonly
no``, fakeredis's ``TcpFakeServer`` with its Lua; the last two skipped,
with a message, when missing):

1. **EVALSHA** of a three-command script, a rate limiter's shape
   (``GET``, ``INCR``, ``EXPIRE`` of one key, the new count returned), under
   ``redis-benchmark -c 50 -r 100000 EVALSHA <sha> 1 rate:__rand_int__ 60``
   at ``-P 1`` and ``-P 16``; beside it ``-t incr``, one command without a
   script, to show what the script itself costs on each server.
2. **PUBLISH** to 1 and to 100 subscribers: the subscribers are raw
   connections read by this process (one ``epoll`` loop, counting whole
   messages by their fixed size), the publisher is ``redis-benchmark -c 50
   PUBLISH ch <16 bytes>``. Messages/s delivered = publishes x subscribers
   / the time from the publisher's start until every subscriber has read
   every message (so a server that queues messages faster than it writes
   them gains nothing).
3. **BRPOP/LPUSH ping-pong** between two clients: A pushes to ``ping``
   and waits on ``BRPOP pong``; B, waiting on ``BRPOP ping``, answers with
   a push to ``pong``. Round trips/s over a fixed time. Both clients are
   raw sockets driven by this process (Python), one round trip at a time:
   the client's own cost is in every round trip for every server, so the
   ratio against redis-server understates how far apart the servers are.

Each repetition runs every server once per measurement, the order rotating
between repetitions; rates are medians and each ratio is the median of the
per-repetition ratios. Targets (printed as PASS/MISS, never asserted):
every rate at least 0.3x redis-server's and 10x fakeredis's. Run from the
repository root (``--quick`` for a short run)::

    python bench/scripting.py > bench/results/scripting.txt
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import math
import os
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from _common import describe_machine, fmt_ratio, median, median_ratio, print_table, target_line
from server import (
    Server,
    command,
    fakeredis_server,
    info,
    redis_server,
    rotated,
    running,
    snapkv_server,
)

#: Targets (printed as PASS/MISS, never asserted).
VS_REDIS = 0.3
VS_FAKEREDIS = 10.0

CLIENTS = 50
KEYSPACE = 100_000
ORDER = ["snapkv", "redis", "fakeredis"]

#: GET, INCR, EXPIRE of one key: what a fixed-window rate limiter runs per request.
SCRIPT = b"""\
local before = redis.call('GET', KEYS[1])
local count = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
return count
"""

CHANNEL = b"ch"
PAYLOAD = b"0123456789abcdef"
#: One message as a RESP2 subscriber receives it: fixed size, so bytes count messages.
MESSAGE = b"*3\r\n$7\r\nmessage\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (
    len(CHANNEL),
    CHANNEL,
    len(PAYLOAD),
    PAYLOAD,
)
SUBSCRIBED = b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%s\r\n:1\r\n" % (len(CHANNEL), CHANNEL)


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def request(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise SystemExit("the server closed the connection")
        data += chunk
    return data


# ------------------------------------------------------------------ EVALSHA


@dataclass
class Run:
    """One redis-benchmark invocation: requests/s of its one test, and what went wrong."""

    rps: float = 0.0
    errors: list[str] = field(default_factory=list)


def redis_benchmark(port: int, requests: int, pipeline: int, *test: str) -> Run:
    """``test`` is ``-t name`` or a command line; its one CSV row gives requests/s."""
    argv = ["redis-benchmark", "-p", str(port), "-n", str(requests), "-c", str(CLIENTS)]
    argv += ["-r", str(KEYSPACE), "-P", str(pipeline), "--csv", *test]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=3600, check=False)
    run = Run()
    rows = [ln for ln in result.stdout.splitlines() if ln.startswith('"')]
    for row in csv.reader(io.StringIO("\n".join(rows))):
        if row and row[0] != "test":
            run.rps = float(row[1])
    noise = ("WARNING: Could not fetch server CONFIG",)
    for line in (result.stdout + result.stderr).splitlines():
        if "rror" in line and not line.startswith(noise):
            run.errors.append(line.strip())
    if result.returncode != 0:
        run.errors.append(f"redis-benchmark exited {result.returncode}")
    if not run.rps:
        run.errors.append(f"no result for {' '.join(test)}")
    return run


def load_script(port: int) -> str | None:
    """The script's SHA1 once loaded and checked; ``None`` when the server runs no Lua."""
    reply = command(port, b"SCRIPT", b"LOAD", SCRIPT)
    # A bulk string from Redis and snapkv; fakeredis answers a status line.
    sha = reply.split(b"\r\n")[-2].lstrip(b"+").decode()
    if reply.startswith(b"-") or len(sha) != 40:
        progress(f"SCRIPT LOAD failed on port {port}: {reply[:200]!r}")
        return None
    command(port, b"DEL", b"probe:rate")
    probe = command(port, b"EVALSHA", sha.encode(), b"1", b"probe:rate", b"60")
    if probe != b":1\r\n":
        raise SystemExit(f"EVALSHA answered {probe[:200]!r} on port {port}, not :1")
    return sha


def evalsha(server: Server, requests: int, pipeline: int, sha: str) -> dict[str, Run]:
    key = "rate:__rand_int__"
    return {
        "EVALSHA": redis_benchmark(server.port, requests, pipeline, "EVALSHA", sha, "1", key, "60"),
        "INCR": redis_benchmark(server.port, requests, pipeline, "-t", "incr"),
    }


# ------------------------------------------------------------------ PUBLISH


def subscribe(port: int, count: int) -> list[socket.socket]:
    subscribers = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(request(b"SUBSCRIBE", CHANNEL))
        if read_exactly(sock, len(SUBSCRIBED)) != SUBSCRIBED:
            raise SystemExit(f"SUBSCRIBE was not confirmed on port {port}")
        subscribers.append(sock)
    return subscribers


def publish(port: int, subscribers: int, publishes: int, deadline: float) -> dict[str, float]:
    """Delivered messages/s and the publisher's PUBLISH/s; every message checked byte for byte."""
    socks = subscribe(port, subscribers)
    want = publishes * len(MESSAGE)
    received = dict.fromkeys(socks, 0)
    tails = dict.fromkeys(socks, b"")
    selector = selectors.DefaultSelector()
    for sock in socks:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    argv = ["redis-benchmark", "-p", str(port), "-n", str(publishes), "-c", str(CLIENTS)]
    argv += ["-P", "1", "--csv", "PUBLISH", CHANNEL.decode(), PAYLOAD.decode()]
    try:
        start = time.perf_counter()
        publisher = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        pending = len(socks)
        while pending:
            if time.perf_counter() - start > deadline:
                publisher.kill()
                got = sum(received.values()) // len(MESSAGE)
                raise TimeoutError(f"{got:,} of {publishes * subscribers:,} messages delivered")
            ready = selector.select(timeout=1.0)
            # Let a millisecond of messages gather: the reader then costs the
            # machine about the same CPU whatever each server's write pattern
            # (one message per write, or many), and the servers share 2 cores.
            time.sleep(0.001)
            for key, _ in ready:
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                chunk = sock.recv(1 << 20)
                if not chunk:
                    raise SystemExit("the server closed a subscriber")
                # Whole messages only, each exactly MESSAGE: a wrong byte is an error.
                data = tails[sock] + chunk
                whole = len(data) - len(data) % len(MESSAGE)
                if data[:whole] != MESSAGE * (whole // len(MESSAGE)):
                    raise SystemExit(f"a subscriber read something else: {data[:120]!r}")
                tails[sock] = data[whole:]
                received[sock] += len(chunk)
                if received[sock] == want:
                    selector.unregister(sock)
                    pending -= 1
        elapsed = time.perf_counter() - start
        out, _ = publisher.communicate(timeout=60)
    finally:
        selector.close()
        for sock in socks:
            sock.close()
    rows = [ln for ln in out.decode().splitlines() if ln.startswith('"PUBLISH')]
    rate = float(next(csv.reader(rows))[1]) if rows else float("nan")
    return {"delivered": publishes * subscribers / elapsed, "publish": rate}


# ---------------------------------------------------------------- ping-pong


def ping_pong(port: int, seconds: float, run: int) -> float:
    """Round trips/s of LPUSH ping -> BRPOP ping ... LPUSH pong -> BRPOP pong, for ``seconds``.

    Each run has keys of its own (``run``): a server that still serves a
    closed connection's BRPOP (fakeredis does) must not take this run's
    first ping. B's last wait is ended by one more ping before closing.
    """
    ping, pong = b"ping:%d" % run, b"pong:%d" % run
    a = socket.create_connection(("127.0.0.1", port), timeout=30)
    b = socket.create_connection(("127.0.0.1", port), timeout=30)
    for sock in (a, b):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    serve_a = request(b"LPUSH", ping, b"x") + request(b"BRPOP", pong, b"0")
    serve_b = request(b"LPUSH", pong, b"x") + request(b"BRPOP", ping, b"0")
    pushed = b":1\r\n"
    popped = {key: b"*2\r\n$%d\r\n%s\r\n$1\r\nx\r\n" % (len(key), key) for key in (ping, pong)}
    try:
        b.sendall(request(b"BRPOP", ping, b"0"))
        trips = 0
        start = time.perf_counter()
        end = start + seconds
        while True:
            a.sendall(serve_a)  # A's push, then A waits for B's answer
            if read_exactly(b, len(popped[ping])) != popped[ping]:
                raise SystemExit("B's BRPOP did not get the ping")
            b.sendall(serve_b)  # B answers, then waits for the next ping
            want = pushed + popped[pong]
            if read_exactly(a, len(want)) != want:
                raise SystemExit("A did not get its push count and the pong")
            if read_exactly(b, len(pushed)) != pushed:
                raise SystemExit("B's LPUSH was not answered :1")
            trips += 1
            if trips % 64 == 0 and time.perf_counter() >= end:
                rate = trips / (time.perf_counter() - start)
                a.sendall(request(b"LPUSH", ping, b"x"))  # ends B's wait
                read_exactly(a, len(pushed))
                read_exactly(b, len(popped[ping]))
                return rate
    finally:
        a.close()
        b.close()


# --------------------------------------------------------------------- main


@dataclass
class Results:
    """Per measurement and server, one value per repetition (higher is better)."""

    rates: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    skipped: dict[tuple[str, str], str] = field(default_factory=dict)

    def add(self, what: str, name: str, value: float) -> None:
        self.rates.setdefault((what, name), []).append(value)


def measure(
    servers: dict[str, Server], args: argparse.Namespace, results: Results, rep: int
) -> None:
    """One repetition: every measurement on every server, the server order rotating."""
    shas = {name: load_script(server.port) for name, server in servers.items()}
    for name in rotated(list(servers), rep):
        server = servers[name]
        scale = args.fake_share if name == "fakeredis" else 1.0
        for pipeline in (1, 16):
            progress(f"rep {rep + 1}: EVALSHA -P {pipeline} {name}")
            sha = shas[name]
            if sha is None:  # fakeredis without lupa: no EVALSHA row for it
                results.skipped[(f"EVALSHA -P {pipeline}", name)] = "no Lua (SCRIPT LOAD failed)"
                continue
            runs = evalsha(server, max(int(args.requests * scale), 500), pipeline, sha)
            for test, run in runs.items():
                results.add(f"{test} -P {pipeline}", name, run.rps)
                results.errors.extend(f"{name} {test} -P {pipeline}: {e}" for e in run.errors)
    for name in rotated(list(servers), rep):
        scale = args.fake_share if name == "fakeredis" else 1.0
        for subscribers, count in ((1, args.publishes_1), (100, args.publishes_100)):
            what = f"PUBLISH to {subscribers}"
            publishes = max(int(count * scale), 100)
            progress(f"rep {rep + 1}: {what} {name} ({publishes:,} publishes)")
            try:
                found = publish(servers[name].port, subscribers, publishes, args.deadline)
            except TimeoutError as exc:
                results.skipped[(what, name)] = f"over {args.deadline:g} s: {exc}"
                continue
            results.add(what, name, found["delivered"])
            results.add(f"{what} (PUBLISH/s)", name, found["publish"])
    for name in rotated(list(servers), rep):
        progress(f"rep {rep + 1}: BRPOP/LPUSH ping-pong {name}")
        rate = ping_pong(servers[name].port, args.seconds, rep)
        results.add("BRPOP/LPUSH ping-pong", name, rate)


ROWS = [
    ("EVALSHA -P 1", "EVALSHA/s", True),
    ("INCR -P 1", "INCR/s (no script)", False),
    ("EVALSHA -P 16", "EVALSHA/s", True),
    ("INCR -P 16", "INCR/s (no script)", False),
    ("PUBLISH to 1", "messages/s delivered", True),
    ("PUBLISH to 1 (PUBLISH/s)", "PUBLISH/s", False),
    ("PUBLISH to 100", "messages/s delivered", True),
    ("PUBLISH to 100 (PUBLISH/s)", "PUBLISH/s", False),
    ("BRPOP/LPUSH ping-pong", "round trips/s", True),
]


def ratio(results: Results, what: str, base: str, name: str = "snapkv") -> float:
    ours = results.rates.get((what, name), [])
    theirs = results.rates.get((what, base), [])
    if len(ours) != len(theirs) or not ours:
        return float("nan")
    return median_ratio(ours, theirs)


def report(results: Results, names: list[str]) -> list[str]:
    bases = [n for n in names if n != "snapkv"]
    # What redis-server itself reaches against fakeredis: the room a target leaves.
    context = {"redis", "fakeredis"} <= set(names)
    headers = ["measurement", "unit", *names, *(f"snapkv / {b}" for b in bases)]
    headers += ["redis / fakeredis"] if context else []
    rows: list[list[object]] = []
    targets: list[str] = []
    for what, unit, targeted in ROWS:
        row: list[object] = [what, unit]
        for name in names:
            values = results.rates.get((what, name))
            row.append(f"{median(values):,.0f}" if values else "n/a")
        for base in bases:
            found = ratio(results, what, base)
            row.append("n/a" if math.isnan(found) else fmt_ratio(found))
            if targeted:
                limit = VS_FAKEREDIS if base == "fakeredis" else VS_REDIS
                label = f"{what} snapkv / {base}"
                if math.isnan(found):
                    targets.append(f"Target {label}: not measured (see above) -> MISS")
                else:
                    targets.append(target_line(label, found, limit, higher_is_better=True))
        if context:
            found = ratio(results, what, "fakeredis", "redis")
            row.append("n/a" if math.isnan(found) else fmt_ratio(found))
        rows.append(row)
    print_table(headers, rows)
    for (what, name), why in sorted(results.skipped.items()):
        print(f"{what} on {name}: {why}")
    return targets


def describe(tmp: str, redis: Server | None, fake: Server | None) -> None:
    with running(snapkv_server(tmp)) as probe:
        facts = info(probe.port, "server")
    print(
        f"snapkv {facts.get('snapkv_version')}: event loop {facts.get('multiplexing_api')}, "
        f"parser {facts.get('parser')}, Python {facts.get('python_version')}"
    )
    if redis is not None:
        text = subprocess.run(
            [redis.argv[0], "--version"], capture_output=True, text=True, check=False
        )
        print(text.stdout.strip() or "redis-server (version unknown)")
    else:
        print("redis-server: not on PATH, skipped (Debian: apt-get install redis-server)")
    if fake is not None:
        from importlib.metadata import version

        print(f"fakeredis {version('fakeredis')} (TcpFakeServer), lupa {version('lupa')}")
    else:
        print("fakeredis: not importable, skipped (pip install 'fakeredis[lua]' to compare)")


@contextlib.contextmanager
def all_running(servers: dict[str, Server]) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for server in servers.values():
            stack.enter_context(running(server))
        yield


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000, help="EVALSHA/INCR -n (100,000)")
    parser.add_argument(
        "--publishes-1", type=int, default=200_000, help="PUBLISH to 1 subscriber: -n (200,000)"
    )
    parser.add_argument(
        "--publishes-100", type=int, default=10_000, help="PUBLISH to 100 subscribers: -n (10,000)"
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="ping-pong seconds (3)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (3)")
    parser.add_argument(
        "--fake-share", type=float, default=0.05, help="fakeredis's share of the work (0.05)"
    )
    parser.add_argument("--deadline", type=float, default=120.0, help="a PUBLISH run's limit")
    parser.add_argument("--quick", action="store_true", help="a short run of everything")
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.seconds, args.repeat = 20_000, 1.0, 1
        args.publishes_1, args.publishes_100 = 40_000, 2_000
    if shutil.which("redis-benchmark") is None:
        raise SystemExit("redis-benchmark is not on PATH (Debian: apt-get install redis-tools)")

    results = Results()
    with tempfile.TemporaryDirectory(prefix="snapkv-bench-scripting-") as tmp:
        servers: dict[str, Server] = {"snapkv": snapkv_server(tmp)}
        redis, fake = redis_server(tmp), fakeredis_server(tmp)
        if redis is not None:
            servers["redis"] = redis
        if fake is not None:
            servers["fakeredis"] = fake
        print(describe_machine())
        describe(tmp, redis, fake)
        print(
            f"Parameters: EVALSHA and INCR -n {args.requests:,} -c {CLIENTS} -r {KEYSPACE:,}; "
            f"PUBLISH -n {args.publishes_1:,} to 1 subscriber, -n {args.publishes_100:,} to "
            f"100, -c {CLIENTS} -P 1; ping-pong {args.seconds:g} s; fakeredis does "
            f"{args.fake_share:g} of that work (rates do not depend on it once a run lasts); "
            f"{args.repeat} interleaved repetitions, medians shown\n"
        )
        with all_running(servers):
            for rep in range(args.repeat):
                measure(servers, args, results, rep)
    names = [n for n in ORDER if n in servers]
    targets = report(results, names)
    ours = [e for e in results.errors if e.startswith("snapkv ")]
    verdict = "PASS" if not ours else "MISS"
    targets.append(f"Target snapkv: zero errors in every run: {len(ours)} errors -> {verdict}")
    targets.extend(f"  {line}" for line in results.errors[:20])
    print("\nTargets (printed, not asserted):")
    for line in targets:
        print(line)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
