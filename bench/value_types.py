"""Value types benchmark: hashes, lists, sets and sorted sets, served and embedded.

Three measurements, each against a baseline measured in the same run:

1. **Throughput** under ``redis-benchmark -t lpush,rpush,lpop,rpop,sadd,
   hset,spop,zadd,zpopmin,lrange_100,lrange_600 -c 50`` at ``-P 1`` and
   ``-P 16``, against ``snapkv serve --save "" --appendonly no``, Debian's
   redis-server 7.0 (``--save "" --appendonly no``) and fakeredis's TCP
   server (fewer requests: it is much slower). redis-benchmark runs its
   tests in a fixed order whatever ``-t`` says (pushes, pops, SADD, HSET,
   SPOP, ZADD, ZPOPMIN, then an ``LPUSH (needed to benchmark LRANGE)`` that
   fills ``mylist`` before the LRANGE tests), so all of them go in ONE
   invocation, after a FLUSHALL: every server sees the same sequence of
   states (the pops find what the pushes left; SPOP and ZPOPMIN empty what
   SADD and ZADD filled). A command snapkv does not serve yet is left out
   of every server's run, and named.
2. **Memory per element**: 1,000,000 fields or members (``field:%07d``,
   hash values ``%08d``: 8 bytes; sorted-set scores the element's number)
   in ONE key, then the same elements across 100,000 keys (10 a key),
   loaded by a pipelined redis-py client into a fresh server each time.
   snapkv: growth of the process's ``VmRSS``; redis-server: growth of
   INFO's ``used_memory`` (its RSS growth printed beside).
3. **Embedded**: ``store.hashes[k][f] = v``, ``store.lists[k].append(v)``,
   ``store.sets[k].add(m)`` and ``store.zsets[k][m] = s`` against
   ``store.set(k, v)`` on the same store, journal on (``snapkv.open(dir)``,
   fsync everysec) and off (``journal=False``).

Every number is a median over repetitions that interleave the contenders
(the order rotating); a ratio is the median of per-repetition ratios.
Targets are printed as PASS/MISS, never asserted. Run from the repository
root (``--quick`` for a short run)::

    python bench/value_types.py > bench/results/types.txt
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from _common import (
    describe_machine,
    fmt_ratio,
    median,
    median_ratio,
    print_table,
    target_line,
)
from _types_embedded import embedded, report_embedded
from server import (
    Server,
    command,
    fakeredis_server,
    info,
    redis_server,
    rotated,
    rss,
    running,
    snapkv_server,
)

#: Targets (printed as PASS/MISS, never asserted).
P1_VS_REDIS = 0.5
P16_VS_REDIS = 0.3
VS_FAKEREDIS = 10.0
MEMORY_VS_REDIS = 2.0

CLIENTS = 50
KEYSPACE = 100_000
#: redis-benchmark's tests, in the order it runs them, and the commands each needs.
TESTS: dict[str, tuple[str, ...]] = {
    "lpush": ("LPUSH",),
    "rpush": ("RPUSH",),
    "lpop": ("LPOP",),
    "rpop": ("RPOP",),
    "sadd": ("SADD",),
    "hset": ("HSET",),
    "spop": ("SPOP",),
    "zadd": ("ZADD",),
    "zpopmin": ("ZPOPMIN",),
    "lrange_100": ("LPUSH", "LRANGE"),
    "lrange_600": ("LPUSH", "LRANGE"),
}
#: One harmless call of each command, to learn whether a server has it.
PROBES: dict[str, tuple[bytes, ...]] = {
    "LPUSH": (b"LPUSH", b"probe:l", b"a"),
    "RPUSH": (b"RPUSH", b"probe:l", b"b"),
    "LPOP": (b"LPOP", b"probe:l"),
    "RPOP": (b"RPOP", b"probe:l"),
    "LRANGE": (b"LRANGE", b"probe:l", b"0", b"-1"),
    "SADD": (b"SADD", b"probe:s", b"a"),
    "SPOP": (b"SPOP", b"probe:s"),
    "HSET": (b"HSET", b"probe:h", b"f", b"v"),
    "ZADD": (b"ZADD", b"probe:z", b"1", b"a"),
    "ZPOPMIN": (b"ZPOPMIN", b"probe:z"),
}


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- throughput


@dataclass
class Run:
    """One redis-benchmark invocation: requests/s by test (lower-case name)."""

    rps: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def test_name(label: str) -> str | None:
    """redis-benchmark's CSV label as its ``-t`` name; ``None`` for the LRANGE fill."""
    if "needed" in label:
        return None
    return label.split(maxsplit=1)[0].lower()


def redis_benchmark(port: int, tests: list[str], requests: int, pipeline: int) -> Run:
    """All ``tests`` in one invocation (see the module docstring), after a FLUSHALL."""
    if command(port, b"FLUSHALL") != b"+OK\r\n":
        raise SystemExit(f"FLUSHALL failed on port {port}")
    argv = ["redis-benchmark", "-p", str(port), "-t", ",".join(tests), "-n", str(requests)]
    argv += ["-c", str(CLIENTS), "-r", str(KEYSPACE), "-P", str(pipeline), "--csv"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=3600, check=False)
    run = Run()
    rows = [ln for ln in result.stdout.splitlines() if ln.startswith('"')]
    for row in csv.reader(io.StringIO("\n".join(rows))):
        name = test_name(row[0]) if row and row[0] != "test" else None
        if name is not None:
            run.rps[name] = float(row[1])
    noise = ("WARNING: Could not fetch server CONFIG",)
    for line in (result.stdout + result.stderr).splitlines():
        if "rror" in line and not line.startswith(noise):
            run.errors.append(line.strip())
    if result.returncode != 0:
        run.errors.append(f"redis-benchmark exited {result.returncode}")
    run.errors.extend(f"no result for {t}" for t in tests if t not in run.rps)
    return run


def unserved(port: int) -> set[str]:
    """The commands of :data:`PROBES` the server answers with an error (not served yet)."""
    missing = {name for name, args in PROBES.items() if command(port, *args).startswith(b"-")}
    command(port, b"FLUSHALL")
    return missing


Results = dict[tuple[str, int], list[Run]]


def throughput(
    servers: dict[str, Server], requests: dict[str, int], repeat: int, tests: list[str]
) -> Results:
    """Every server at -P 1 and -P 16, interleaved, each run all of ``tests``."""
    results: Results = {}
    with contextlib.ExitStack() as stack:
        for server in servers.values():
            stack.enter_context(running(server))
        for rep in range(repeat):
            for pipeline in (1, 16):
                for name in rotated(list(servers), rep):
                    progress(f"throughput rep {rep + 1}/{repeat}: -P {pipeline} {name}")
                    run = redis_benchmark(servers[name].port, tests, requests[name], pipeline)
                    results.setdefault((name, pipeline), []).append(run)
    return results


def ratio(results: Results, name: str, base: str, pipeline: int, test: str) -> float:
    ours = [r.rps.get(test, 0.0) for r in results[(name, pipeline)]]
    theirs = [r.rps.get(test, 0.0) or float("nan") for r in results[(base, pipeline)]]
    return median_ratio(ours, theirs)


def report_throughput(results: Results, targets: list[str]) -> None:
    names = sorted({n for n, _ in results}, key=["snapkv", "redis", "fakeredis"].index)
    bases = [n for n in names if n != "snapkv"]
    tests = [t for t in TESTS if any(t in r.rps for r in results.get(("snapkv", 1), []))]
    for pipeline in (1, 16):
        headers = ["test", *(f"{n} req/s" for n in names), *(f"snapkv / {b}" for b in bases)]
        rows: list[list[object]] = []
        for test in tests:
            row: list[object] = [test.upper()]
            for name in names:
                row.append(
                    f"{median(r.rps.get(test, 0.0) for r in results[(name, pipeline)]):,.0f}"
                )
            for base in bases:
                found = ratio(results, "snapkv", base, pipeline, test)
                row.append(fmt_ratio(found))
                limit = VS_FAKEREDIS if base == "fakeredis" else P1_VS_REDIS
                if base == "redis" and pipeline == 16:
                    limit = P16_VS_REDIS
                what = f"-P {pipeline} {test.upper()} snapkv / {base}"
                targets.append(target_line(what, found, limit, higher_is_better=True))
            rows.append(row)
        print(f"\nThroughput, -P {pipeline}, {CLIENTS} clients:\n")
        print_table(headers, rows)
    errors = [
        f"{name} -P {p}: {e}" for (name, p), runs in results.items() for r in runs for e in r.errors
    ]
    ours = [e for e in errors if e.startswith("snapkv ")]
    verdict = "PASS" if not ours else "MISS"
    targets.append(f"Target snapkv: zero errors in every run: {len(ours)} errors -> {verdict}")
    targets.extend(f"  {line}" for line in errors[:20])


# -------------------------------------------------------------------- memory

ELEMENTS = 1_000_000
PER_KEY = 10
TYPES = ("hash", "list", "set", "zset")
COUNTERS = {"hash": "HLEN", "list": "LLEN", "set": "SCARD", "zset": "ZCARD"}
MEMORY_COMMANDS = {"hash": "HSET", "list": "RPUSH", "set": "SADD", "zset": "ZADD"}


def element_commands(kind: str, key: str, first: int, count: int) -> list[Any]:
    """One command adding elements ``first`` .. ``first + count - 1`` to ``key``."""
    members = [f"field:{i:07d}" for i in range(first, first + count)]
    if kind == "hash":
        pairs = [x for i, m in enumerate(members, first) for x in (m, f"{i:08d}")]
        return ["HSET", key, *pairs]
    if kind == "list":
        return ["RPUSH", key, *members]
    if kind == "set":
        return ["SADD", key, *members]
    return ["ZADD", key, *(x for i, m in enumerate(members, first) for x in (i, m))]


def load_elements(port: int, kind: str, elements: int, per_key: int | None) -> None:
    """Load ``elements`` into one key (``per_key`` None) or ``per_key`` to a key, pipelined."""
    import redis  # the project's test dependency; only this measurement needs it

    client = redis.Redis(port=port, socket_timeout=300)
    step = per_key or 100
    pipe = client.pipeline(transaction=False)
    for first in range(0, elements, step):
        key = "one" if per_key is None else f"key:{first // per_key:07d}"
        pipe.execute_command(*element_commands(kind, key, first, min(step, elements - first)))  # type: ignore[no-untyped-call]
        if len(pipe) == 1000:
            pipe.execute()
    pipe.execute()
    held = client.dbsize() * (per_key or elements)
    if per_key is None:
        with contextlib.suppress(redis.ResponseError):  # not served yet: the key count must do
            held = client.execute_command(COUNTERS[kind], "one")  # type: ignore[no-untyped-call]
    client.close()
    if held != elements:
        raise SystemExit(f"{kind}: the server holds {held} elements, not {elements}")


def memory_once(server: Server, kind: str, elements: int, per_key: int | None) -> dict[str, float]:
    """Bytes per element: RSS growth (both) and used_memory growth (redis-server)."""
    with running(server):
        time.sleep(0.3)  # the process settles after its start
        rss_before = rss(server.pid)
        used_before = int(info(server.port, "memory").get("used_memory", "0"))
        load_elements(server.port, kind, elements, per_key)
        time.sleep(0.3)
        rss_after = rss(server.pid)
        used_after = int(info(server.port, "memory").get("used_memory", "0"))
    return {
        "rss": (rss_after - rss_before) / elements,
        "used": (used_after - used_before) / elements,
    }


Memory = dict[tuple[str, str], dict[str, list[dict[str, float]]]]


def memory(tmp: str, elements: int, repeat: int, with_redis: bool, kinds: list[str]) -> Memory:
    found: Memory = {}
    makers: dict[str, Callable[[], Server | None]] = {"snapkv": lambda: snapkv_server(tmp)}
    if with_redis:
        makers["redis"] = lambda: redis_server(tmp)
    for rep in range(repeat):
        for kind in kinds:
            for layout, per_key in (("one key", None), (f"{PER_KEY} a key", PER_KEY)):
                for name in rotated(list(makers), rep):
                    progress(f"memory rep {rep + 1}/{repeat}: {kind}, {layout}: {name}")
                    server = makers[name]()
                    assert server is not None
                    got = memory_once(server, kind, elements, per_key)
                    found.setdefault((kind, layout), {}).setdefault(name, []).append(got)
    return found


def report_memory(found: Memory, elements: int, targets: list[str]) -> None:
    print(f"\nMemory per element, {elements:,} elements (bytes per element, medians):\n")
    headers = ["type", "layout", "snapkv RSS growth"]
    with_redis = any("redis" in v for v in found.values())
    if with_redis:
        headers += ["redis used_memory growth", "redis RSS growth", "snapkv / redis used_memory"]
    rows: list[list[object]] = []
    for (kind, layout), by_name in found.items():
        ours = [m["rss"] for m in by_name["snapkv"]]
        row: list[object] = [kind, layout, f"{median(ours):.1f}"]
        if "redis" in by_name:
            used = [m["used"] for m in by_name["redis"]]
            found_ratio = median_ratio(ours, used)
            row += [f"{median(used):.1f}", f"{median(m['rss'] for m in by_name['redis']):.1f}"]
            row.append(fmt_ratio(found_ratio))
            what = f"memory {kind} ({layout}) snapkv RSS / redis used_memory"
            targets.append(target_line(what, found_ratio, MEMORY_VS_REDIS))
        rows.append(row)
    print_table(headers, rows)


# ---------------------------------------------------------------------- main


def cpu_pressure() -> str:
    """The share of the last 5 minutes in which some task waited for a CPU (Linux PSI)."""
    try:
        with open("/proc/pressure/cpu", encoding="ascii") as pressure:
            fields = dict(f.split("=") for f in pressure.readline().split()[1:])
    except (OSError, ValueError):
        return "unknown"
    return f"{fields.get('avg300', '?')}%"


def describe_servers(tmp: str, redis: Server | None, fake: Server | None) -> set[str]:
    """Print the contenders' versions; return the commands snapkv does not serve yet."""
    with running(snapkv_server(tmp)) as probe:
        facts = info(probe.port, "server")
        missing = unserved(probe.port)
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

        print(f"fakeredis {version('fakeredis')} (TcpFakeServer)")
    else:
        print("fakeredis: not importable, skipped (pip install fakeredis to compare)")
    if missing:
        print(f"Not served by snapkv yet (left out everywhere): {', '.join(sorted(missing))}")
    return missing


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000, help="-n a test (100,000)")
    parser.add_argument("--fake-requests", type=int, default=10_000, help="-n for fakeredis")
    parser.add_argument("--repeat", type=int, default=3, help="throughput repetitions (3)")
    parser.add_argument("--elements", type=int, default=ELEMENTS, help="memory: elements")
    parser.add_argument("--memory-repeat", type=int, default=3, help="memory repetitions (3)")
    parser.add_argument("--ops", type=int, default=20_000, help="embedded: writes a window")
    parser.add_argument("--embedded-repeat", type=int, default=9, help="embedded repetitions")
    parser.add_argument("--quick", action="store_true", help="short run of everything")
    for part in ("throughput", "memory", "embedded"):
        parser.add_argument(f"--no-{part}", action="store_true", help=f"skip {part}")
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.fake_requests, args.repeat = 20_000, 2_000, 1
        args.elements, args.memory_repeat, args.ops, args.embedded_repeat = 100_000, 1, 5_000, 3
    targets: list[str] = []
    with tempfile.TemporaryDirectory(prefix="snapkv-bench-types-") as tmp:
        redis, fake = redis_server(tmp), fakeredis_server(tmp)
        print(describe_machine())
        missing = describe_servers(tmp, redis, fake)
        tests = [t for t, needs in TESTS.items() if not missing.intersection(needs)]
        kinds = [k for k in TYPES if MEMORY_COMMANDS[k] not in missing]
        if not args.no_throughput and tests:
            if shutil.which("redis-benchmark") is None:
                raise SystemExit(
                    "redis-benchmark is not on PATH (Debian: apt-get install redis-tools)"
                )
            servers: dict[str, Server] = {"snapkv": snapkv_server(tmp)}
            requests = {"snapkv": args.requests}
            if redis is not None:
                servers["redis"], requests["redis"] = redis, args.requests
            if fake is not None:
                servers["fakeredis"], requests["fakeredis"] = fake, args.fake_requests
            print(
                f"\nThroughput: redis-benchmark -t {','.join(tests)} -c {CLIENTS} "
                f"-r {KEYSPACE:,}, -n {args.requests:,} (fakeredis -n {args.fake_requests:,}), "
                f"FLUSHALL before each run, {args.repeat} interleaved repetitions"
            )
            report_throughput(throughput(servers, requests, args.repeat, tests), targets)
        if not args.no_memory and kinds:
            found = memory(tmp, args.elements, args.memory_repeat, redis is not None, kinds)
            report_memory(found, args.elements, targets)
    if not args.no_embedded:
        report_embedded(embedded(args.ops, args.embedded_repeat), args.ops, targets)
    print(f"\nCPU pressure over the last 5 minutes of the run: {cpu_pressure()} (other load)")
    print("\nTargets (printed, not asserted):")
    for line in targets:
        print(line)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
