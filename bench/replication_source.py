"""Replication lag of a redis-server replica of ``snapkv serve``, against a redis-server primary.

Run from the repository root (redis-server 7.0 and redis-py installed)::

    python bench/replication_source.py      # --rate 10000 --seconds 10 --repeat 3

Each contender is a primary on a free loopback port with a stock
redis-server replica attached (``--replicaof``): ``snapkv serve`` (its
defaults: the journal on, ``appendfsync everysec``) and, as the baseline in
the same run, a redis-server primary (``--save ""``). The contenders run
one after the other, in rotating order per repetition.

Load: ``--rate`` SETs a second (16-character keys over 100,000 names,
64-character values), sent by one client in pipelines of up to 5 ms worth.
Lag: every 20 ms a probe SET carries its send time; a second client polls
the replica's copy of the probe key and takes the time it first sees each
new value. The lag of a probe is that time minus its send time (one clock,
one machine). Reported: the median and the 99th percentile over every probe
of every repetition, and the write rate reached. Target: median under
100 ms at 10,000 writes/s.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import redis

from _common import describe_machine, median, print_table, target_line
from serving import free_port

DEADLINE = 60.0
PROBE_EVERY = 0.02


def _wait(predicate: Any, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while True:
        try:
            if predicate():
                return
        except redis.ConnectionError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.01)


@contextmanager
def _process(args: list[str], port: int, cwd: Path) -> Iterator[redis.Redis]:
    log = (cwd / "server.log").open("ab")
    process = subprocess.Popen(args, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    client = redis.Redis(port=port, decode_responses=True)
    try:
        _wait(client.ping, f"{args[0]} on port {port}")
        yield client
    finally:
        client.close()
        process.kill()
        process.wait(DEADLINE)
        log.close()


def _primary(kind: str, directory: Path, port: int) -> list[str]:
    if kind == "snapkv":
        return [
            sys.executable,
            "-m",
            "snapkv",
            "serve",
            "--port",
            str(port),
            "--dir",
            str(directory),
        ]
    return ["redis-server", "--port", str(port), "--save", "", "--dir", str(directory)]


def run_once(kind: str, root: Path, rate: int, seconds: float) -> tuple[list[float], float]:
    """Probe lags (seconds) and the write rate reached, for one primary and its replica."""
    primary_dir, replica_dir = root / f"{kind}-primary", root / f"{kind}-replica"
    for directory in (primary_dir, replica_dir):
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
    primary_port, replica_port = free_port(), free_port()
    replica_args = ["redis-server", "--port", str(replica_port), "--save", "", "--dir"]
    replica_args += [str(replica_dir), "--replicaof", "127.0.0.1", str(primary_port)]
    with (
        _process(_primary(kind, primary_dir, primary_port), primary_port, primary_dir) as primary,
        _process(replica_args, replica_port, replica_dir) as replica,
    ):
        _wait(lambda: replica.info("replication")["master_link_status"] == "up", "the link")
        sent: dict[str, float] = {}
        seen: dict[str, float] = {}
        stop = threading.Event()

        def watch() -> None:
            watcher = redis.Redis(port=replica_port, decode_responses=True)
            last = None
            while not stop.is_set():
                value = watcher.get("probe")
                if value is not None and value != last:
                    seen[value] = time.perf_counter()
                    last = value
            watcher.close()

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        writes = 0
        value = "v" * 64
        batch = max(1, rate // 200)  # 5 ms worth
        started = time.perf_counter()
        next_probe = started
        probe = 0
        pipe = primary.pipeline(transaction=False)
        while (now := time.perf_counter()) - started < seconds:
            due = int((now - started) * rate)
            if writes < due:  # one pipeline per turn, so probes go out on time
                for _ in range(min(batch, due - writes)):
                    pipe.set(f"key:{writes % 100_000:012d}", value)
                    writes += 1
                pipe.execute()
            if now >= next_probe:
                probe += 1
                sent[str(probe)] = time.perf_counter()
                primary.set("probe", str(probe))
                next_probe += PROBE_EVERY
            if writes >= int((time.perf_counter() - started) * rate):
                time.sleep(0.0005)
        elapsed = time.perf_counter() - started
        _wait(lambda: str(probe) in seen, "the last probe on the replica")
        stop.set()
        thread.join(DEADLINE)
    lags = [seen[name] - at for name, at in sent.items() if name in seen]
    return lags, writes / elapsed


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=10_000, help="SETs per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="per run")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(describe_machine())
    results: dict[str, tuple[list[float], list[float]]] = {"snapkv": ([], []), "redis": ([], [])}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeat):
            order = ["snapkv", "redis"] if rep % 2 == 0 else ["redis", "snapkv"]
            for kind in order:
                lags, reached = run_once(kind, Path(tmp), args.rate, args.seconds)
                results[kind][0].extend(lags)
                results[kind][1].append(reached)
    rows = []
    for kind, (lags, rates) in results.items():
        rows.append(
            [
                f"{kind} primary -> redis-server replica",
                f"{median(rates):,.0f}/s",
                f"{median(lags) * 1000:.2f} ms",
                f"{_percentile(lags, 0.99) * 1000:.2f} ms",
                str(len(lags)),
            ]
        )
    print(f"\nReplication lag at {args.rate:,} SETs/s ({args.seconds:g} s x {args.repeat})")
    print_table(["primary", "writes reached", "median lag", "p99 lag", "probes"], rows)
    snapkv_median = median(results["snapkv"][0]) * 1000
    print(target_line("median lag of snapkv's replica, ms", snapkv_median, 100.0))


if __name__ == "__main__":
    main()
