"""Server benchmark: ``snapkv serve`` against redis-server and fakeredis under redis-benchmark.

Throughput: ``redis-benchmark -t set,get -n N -c 50 -r 100000 -P {1,16}``
against three servers on free loopback ports, each its own process:

* ``snapkv serve`` (in memory: ``--save "" --appendonly no``, as the
  redis-server below keeps nothing on disk either), run by the same Python as this script, with
  uvloop and hiredis when installed (INFO says which: printed below);
* Debian's ``redis-server`` with ``--save "" --appendonly no`` (skipped,
  with a message, when not on PATH);
* fakeredis's TCP server (``fakeredis.TcpFakeServer``; skipped, with a
  message, when fakeredis is not importable; it is not a dependency of
  snapkv: ``pip install fakeredis`` into the benchmark's Python). It is
  about 100 times slower, so it runs fewer requests per test (printed);
  requests/s do not depend on the request count once a run lasts seconds.

Each repetition runs every server once per pipeline depth, the order
rotating between repetitions; requests/s are medians and each ratio is the
median of per-repetition ratios. redis-benchmark stops at the first error
reply, so a run counts as error-free when it exits 0 and prints no error.

Group sync: the same SET runs with ``appendfsync always`` (snapkv with
``--dir`` in a temporary directory, redis-server with ``--appendonly yes
--appendfsync always``): every acknowledged write is on disk, so this
measures the fsync batching. Skipped with ``--no-fsync``.

Memory per key: 1,000,000 keys (``key:%012d``, 16 bytes) set by a pipelined
loader into a fresh server, for two value sizes: 3 bytes (redis-benchmark's
default) and 64 bytes (the other benchmarks' values). snapkv: growth of the
process's resident set (``VmRSS`` in ``/proc/<pid>/status``, so it includes
the interpreter's allocator overhead and free lists); redis-server: growth
of INFO's ``used_memory`` (what its allocator handed out; its RSS growth is
printed beside it). Skipped with ``--no-memory``.

Run from the repository root (``--quick`` for a short run)::

    python bench/server.py > bench/results/server.txt
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from _common import describe_machine, fmt_ratio, median, median_ratio, print_table, target_line

#: Targets (printed as PASS/MISS, never asserted).
P1_VS_REDIS = 0.5
P1_VS_FAKEREDIS = 10.0
P16_VS_REDIS = 0.3
MEMORY_VS_REDIS = 2.0

CLIENTS = 50
KEYSPACE = 100_000
STARTUP_SECONDS = 30.0


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def command(port: int, *args: bytes) -> bytes:
    """Send one command over a fresh connection; return the raw reply (read until complete)."""
    request = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        data = sock.recv(1 << 20)
        if data[:1] == b"$":
            size = int(data[1 : data.index(b"\r\n")])
            want = data.index(b"\r\n") + 2 + size + 2
            while len(data) < want:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    break
                data += chunk
        return data


def info(port: int, section: str) -> dict[str, str]:
    reply = command(port, b"INFO", section.encode())
    body = reply[reply.index(b"\r\n") + 2 :].decode()
    return dict(line.split(":", 1) for line in body.splitlines() if ":" in line)


@dataclass
class Server:
    """A server process on a loopback port, stopped by its pid."""

    name: str
    argv: list[str]
    cwd: str
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    def start(self) -> None:
        self.log = Path(self.cwd) / f"{self.name.split()[0]}-{self.port}.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                self.argv, cwd=self.cwd, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name} exited at start:\n{self.log.read_text()}")
            with contextlib.suppress(OSError):
                if command(self.port, b"PING") == b"+PONG\r\n":
                    return
            if time.monotonic() > deadline:
                raise SystemExit(f"{self.name} did not answer PING on port {self.port}")
            time.sleep(0.05)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.process = None


def snapkv_server(cwd: str, *extra: str) -> Server:
    """``snapkv serve`` in ``cwd``; memory-only unless ``extra`` sets persistence."""
    port = free_port()
    argv = [sys.executable, "-m", "snapkv", "serve", "--port", str(port), "--dir", cwd]
    argv += list(extra) or ["--save", "", "--appendonly", "no"]
    return Server("snapkv serve", argv, cwd, port)


def redis_server(cwd: str, *extra: str) -> Server | None:
    path = shutil.which("redis-server")
    if path is None:
        return None
    port = free_port()
    argv = [path, "--port", str(port), "--bind", "127.0.0.1", "--dir", cwd, "--save", ""]
    argv += list(extra) or ["--appendonly", "no"]
    return Server("redis-server", argv, cwd, port)


# socketserver listens with a backlog of 5: 50 clients connecting at once
# would overflow it and see resets, so fakeredis gets redis-server's 511.
FAKEREDIS_MAIN = """
import sys
from fakeredis import TcpFakeServer
TcpFakeServer.request_queue_size = 511
TcpFakeServer(("127.0.0.1", int(sys.argv[1]))).serve_forever()
"""


def fakeredis_server(cwd: str) -> Server | None:
    try:
        import fakeredis  # noqa: F401 - optional contender
    except ImportError:
        return None
    port = free_port()
    return Server("fakeredis", [sys.executable, "-c", FAKEREDIS_MAIN, str(port)], cwd, port)


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


# ----------------------------------------------------------- redis-benchmark


@dataclass
class Run:
    rps: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def redis_benchmark(port: int, tests: str, requests: int, pipeline: int) -> Run:
    argv = [
        "redis-benchmark",
        "-p",
        str(port),
        "-t",
        tests,
        "-n",
        str(requests),
        "-c",
        str(CLIENTS),
        "-r",
        str(KEYSPACE),
        "-P",
        str(pipeline),
        "--csv",
    ]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=3600, check=False)
    run = Run()
    lines = result.stdout.splitlines()
    for row in csv.reader(io.StringIO("\n".join(ln for ln in lines if ln.startswith('"')))):
        if row and row[0] != "test":
            run.rps[row[0]] = float(row[1])
    noise = ("WARNING: Could not fetch server CONFIG",)
    for line in (result.stdout + result.stderr).splitlines():
        if "rror" in line and not line.startswith(noise):
            run.errors.append(line.strip())
    if result.returncode != 0:
        run.errors.append(f"redis-benchmark exited {result.returncode}")
    for test in tests.upper().split(","):
        if test not in run.rps:
            run.errors.append(f"no result for {test}")
    return run


# -------------------------------------------------------------------- memory


def load(port: int, keys: int, value: bytes, batch: int = 1000) -> None:
    """SET key:%012d value for every key, pipelined ``batch`` at a time, checking every reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        head = b"*3\r\n$3\r\nSET\r\n$16\r\nkey:"
        tail = b"\r\n$%d\r\n%s\r\n" % (len(value), value)
        for start in range(0, keys, batch):
            count = min(batch, keys - start)
            sock.sendall(b"".join(head + b"%012d" % i + tail for i in range(start, start + count)))
            want = 5 * count
            data = b""
            while len(data) < want:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    raise SystemExit("the server closed the connection while loading")
                data += chunk
            if data != b"+OK\r\n" * count:
                raise SystemExit(f"unexpected replies while loading: {data[:200]!r}")


def rss(pid: int) -> int:
    """Resident set size of process ``pid`` in bytes (``VmRSS``)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise SystemExit(f"no VmRSS for pid {pid}")


def dbsize(port: int) -> int:
    return int(command(port, b"DBSIZE")[1:-2])


def memory_per_key(server: Server, keys: int, value: bytes) -> dict[str, float]:
    """Bytes per key: RSS growth (both) and used_memory growth (redis-server)."""
    with running(server):
        time.sleep(0.5)  # let the process settle after start
        rss_before = rss(server.pid)
        used_before = int(info(server.port, "memory").get("used_memory", "0"))
        load(server.port, keys, value)
        if dbsize(server.port) != keys:
            raise SystemExit(f"{server.name} holds {dbsize(server.port)} keys, not {keys}")
        time.sleep(0.5)
        rss_after = rss(server.pid)
        used_after = int(info(server.port, "memory").get("used_memory", "0"))
    return {"rss": (rss_after - rss_before) / keys, "used": (used_after - used_before) / keys}


# ---------------------------------------------------------------------- main


def rotated(names: list[str], rep: int) -> list[str]:
    shift = rep % len(names)
    return names[shift:] + names[:shift]


def throughput(
    servers: dict[str, Server], requests: dict[str, int], repeat: int
) -> tuple[dict[tuple[str, int], list[Run]], list[str]]:
    """redis-benchmark every server at -P 1 and -P 16, interleaved."""
    results: dict[tuple[str, int], list[Run]] = {}
    errors: list[str] = []
    with contextlib.ExitStack() as stack:
        for server in servers.values():
            stack.enter_context(running(server))
        for rep in range(repeat):
            for pipeline in (1, 16):
                for name in rotated(list(servers), rep):
                    progress(f"rep {rep + 1}/{repeat}: -P {pipeline} {name}")
                    run = redis_benchmark(servers[name].port, "set,get", requests[name], pipeline)
                    results.setdefault((name, pipeline), []).append(run)
                    errors.extend(f"{name} -P {pipeline}: {e}" for e in run.errors)
    return results, errors


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200_000, help="-n (default 200,000)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument("--keys", type=int, default=1_000_000, help="keys for memory per key")
    parser.add_argument("--quick", action="store_true", help="20,000 requests, 1 repetition")
    parser.add_argument("--no-memory", action="store_true", help="skip memory per key")
    parser.add_argument("--no-fsync", action="store_true", help="skip appendfsync always")
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.repeat, args.keys = 20_000, 1, 200_000
    if shutil.which("redis-benchmark") is None:
        raise SystemExit("redis-benchmark is not on PATH (Debian: apt-get install redis-tools)")
    fake_requests = min(args.requests, 20_000)

    with tempfile.TemporaryDirectory(prefix="snapkv-bench-server-") as tmp:
        servers: dict[str, Server] = {"snapkv": snapkv_server(tmp)}
        redis = redis_server(tmp)
        fake = fakeredis_server(tmp)
        if redis is not None:
            servers["redis"] = redis
        if fake is not None:
            servers["fakeredis"] = fake

        print(describe_machine())
        print(
            f"Parameters: redis-benchmark -t set,get -n {args.requests:,} -c {CLIENTS} "
            f"-r {KEYSPACE:,} at -P 1 and -P 16 (fakeredis: -n {fake_requests:,}), "
            f"{args.repeat} interleaved repetitions (medians shown)"
        )
        with running(snapkv_server(tmp)) as probe:
            facts = info(probe.port, "server")
        print(
            f"snapkv {facts.get('snapkv_version')}: event loop {facts.get('multiplexing_api')}, "
            f"parser {facts.get('parser')}, Python {facts.get('python_version')}"
        )
        if redis is not None:
            version_line = subprocess.run(
                [redis.argv[0], "--version"], capture_output=True, text=True, check=False
            ).stdout.strip()
            print(version_line or "redis-server (version unknown)")
        else:
            print("redis-server: not on PATH, skipped (Debian: apt-get install redis-server)")
        if fake is not None:
            from importlib.metadata import version

            print(f"fakeredis {version('fakeredis')} (TcpFakeServer)")
        else:
            print("fakeredis: not importable, skipped (pip install fakeredis to compare)")

        requests = {name: args.requests for name in servers}
        if "fakeredis" in requests:
            requests["fakeredis"] = fake_requests
        results, errors = throughput(servers, requests, args.repeat)
        report_throughput(results, servers)

        fsync_rows = [] if args.no_fsync else group_sync(tmp, args)
        if fsync_rows:
            print("\nappendfsync always (SET only: every acknowledged write is on disk):\n")
            print_table(["server", "-P 1 SET/s", "-P 16 SET/s"], fsync_rows)

        memory: dict[int, dict[str, dict[str, float]]] = {}
        if not args.no_memory:
            memory = report_memory(tmp, args.keys, redis is not None)

    print("\nTargets (printed, not asserted):")
    targets(results, memory, errors)


def report_throughput(
    results: dict[tuple[str, int], list[Run]], servers: dict[str, Server]
) -> None:
    for pipeline in (1, 16):
        headers = ["server", "SET req/s", "GET req/s"]
        bases = [b for b in ("redis", "fakeredis") if b in servers]
        for base in bases:
            headers += [f"SET / {base}", f"GET / {base}"]
        rows = []
        for name in servers:
            runs = results[(name, pipeline)]
            row: list[object] = [name]
            for test in ("SET", "GET"):
                row.append(f"{median(r.rps.get(test, 0.0) for r in runs):,.0f}")
            for base in bases:
                for test in ("SET", "GET"):
                    row.append(fmt_ratio(ratio(results, name, base, pipeline, test)))
            rows.append(row)
        print(f"\n-P {pipeline}:\n")
        print_table(headers, rows)


def ratio(
    results: dict[tuple[str, int], list[Run]], name: str, base: str, pipeline: int, test: str
) -> float:
    ours = [r.rps.get(test, 0.0) for r in results[(name, pipeline)]]
    theirs = [r.rps.get(test, 0.0) or float("nan") for r in results[(base, pipeline)]]
    return median_ratio(ours, theirs)


def group_sync(tmp: str, args: argparse.Namespace) -> list[list[object]]:
    """SET with appendfsync always: snapkv's group sync against redis-server's."""
    requests = max(args.requests // 4, 5_000)
    contenders: dict[str, Callable[[], Server | None]] = {
        "snapkv": lambda: snapkv_server(
            tmp, "--dir", tempfile.mkdtemp(dir=tmp), "--appendfsync", "always", "--save", ""
        ),
        "redis": lambda: redis_server(
            tempfile.mkdtemp(dir=tmp), "--appendonly", "yes", "--appendfsync", "always"
        ),
    }
    rps: dict[tuple[str, int], list[float]] = {}
    for rep in range(args.repeat):
        for name in rotated(list(contenders), rep):
            server = contenders[name]()
            if server is None:
                continue
            with running(server):
                for pipeline in (1, 16):
                    progress(f"rep {rep + 1}: appendfsync always -P {pipeline} {name}")
                    run = redis_benchmark(server.port, "set", requests, pipeline)
                    if run.errors:
                        raise SystemExit(f"{name} appendfsync always: {run.errors}")
                    rps.setdefault((name, pipeline), []).append(run.rps["SET"])
    return [
        [f"{name} (-n {requests:,})", *(f"{median(rps[(name, p)]):,.0f}" for p in (1, 16))]
        for name in contenders
        if (name, 1) in rps
    ]


def report_memory(tmp: str, keys: int, with_redis: bool) -> dict[int, dict[str, dict[str, float]]]:
    memory: dict[int, dict[str, dict[str, float]]] = {}
    for size in (3, 64):
        value = (b"0123456789abcdef" * 4)[:size]
        progress(f"memory: {keys:,} keys, {size}-byte values: snapkv")
        memory[size] = {"snapkv": memory_per_key(snapkv_server(tmp), keys, value)}
        if with_redis:
            progress(f"memory: {keys:,} keys, {size}-byte values: redis-server")
            server = redis_server(tmp)
            assert server is not None
            memory[size]["redis"] = memory_per_key(server, keys, value)
    print(f"\nMemory per key, {keys:,} keys of 16 bytes (bytes per key):\n")
    rows = []
    for size, found in memory.items():
        ours = found["snapkv"]["rss"]
        row: list[object] = [f"{size}-byte values", f"{ours:.0f}"]
        if "redis" in found:
            used, their_rss = found["redis"]["used"], found["redis"]["rss"]
            row += [f"{used:.0f}", f"{their_rss:.0f}", fmt_ratio(ours / used)]
        rows.append(row)
    headers = ["values", "snapkv RSS growth"]
    if with_redis:
        headers += ["redis used_memory growth", "redis RSS growth", "snapkv / redis used_memory"]
    print_table(headers, rows)
    return memory


def targets(
    results: dict[tuple[str, int], list[Run]],
    memory: dict[int, dict[str, dict[str, float]]],
    errors: list[str],
) -> None:
    names = {name for name, _ in results}
    for test in ("SET", "GET"):
        if "redis" in names:
            print(
                target_line(
                    f"-P 1 {test} snapkv / redis-server",
                    ratio(results, "snapkv", "redis", 1, test),
                    P1_VS_REDIS,
                    higher_is_better=True,
                )
            )
        if "fakeredis" in names:
            print(
                target_line(
                    f"-P 1 {test} snapkv / fakeredis",
                    ratio(results, "snapkv", "fakeredis", 1, test),
                    P1_VS_FAKEREDIS,
                    higher_is_better=True,
                )
            )
    if "redis" in names:
        for test in ("SET", "GET"):
            print(
                target_line(
                    f"-P 16 {test} snapkv / redis-server",
                    ratio(results, "snapkv", "redis", 16, test),
                    P16_VS_REDIS,
                    higher_is_better=True,
                )
            )
    for size, found in memory.items():
        if "redis" in found:
            print(
                target_line(
                    f"memory per key ({size}-byte values) snapkv RSS / redis used_memory",
                    found["snapkv"]["rss"] / found["redis"]["used"],
                    MEMORY_VS_REDIS,
                )
            )
    ours = [e for e in errors if e.startswith("snapkv ")]
    verdict = "PASS" if not ours else "MISS"
    print(f"Target snapkv: zero errors in every run: {len(ours)} errors -> {verdict}")
    for line in ours[:20]:
        print(f"  {line}")
    others = [e for e in errors if not e.startswith("snapkv ")]
    if others:
        print(f"Errors of the other servers (their runs count as 0 requests/s): {len(others)}")
        for line in others[:20]:
            print(f"  {line}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
