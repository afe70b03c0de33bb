"""``snapkv migrate`` into a 3-node Redis Cluster against ``redis-cli --pipe`` of the same SETs.

Run from the repository root (redis-server 7.0, redis-cli and redis-py
installed)::

    python bench/migrate.py > bench/results/migrate.txt     # --keys N, --repeat R, --quick

Data: N string keys (1,000,000 by default; 16-character keys, 64-character
values, ``_common.ascii_items``) in a snapkv store directory, made once,
untimed. The cluster: three redis-server 7.0 primaries on loopback created
as the tests create theirs (tests/redis_cluster.py), emptied (FLUSHALL on
each node) before every run.

Contenders, interleaved, each run timed from its start until the last
byte is acknowledged:

* **snapkv migrate**: ``python -m snapkv migrate STORE redis://node --cluster``
  as a user runs it, a process of its own: interpreter start, loading the
  store from its snapshot, the plan, and the copy (pages of 1,000 keys, each
  split by slot owner and written to its node in one round trip). Its own
  summary line gives its time without the interpreter's start (the store
  loaded, the plan, the copy), reported beside.
* **redis-cli --pipe**: the equivalent ``SET key value`` commands, in RESP,
  written beforehand (untimed) into one file per node holding the keys of
  that node's slots (``redis-cli --pipe`` does not follow MOVED, so the
  commands must be split as a cluster client would), then one
  ``redis-cli -p PORT --pipe < file`` per node, the three at once. The
  baseline thus gets its input for free and sends from three processes in
  parallel: a lower bound on what loading the cluster costs.

Both are checked: every node's DBSIZE adds up to N afterwards. The ratio is
the median of the per-repetition ratios (migrate / redis-cli). Target
(printed as PASS/MISS, never asserted): a ratio of at most 1.0.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import redis
from redis.crc import key_slot

import snapkv
from _common import (
    ascii_items,
    describe_machine,
    fmt_ratio,
    fmt_seconds,
    interleaved,
    median,
    median_ratio,
    print_table,
    target_line,
)
from redis_cluster import redis_cluster


def _load() -> str:
    """The machine's load averages: other work on a shared machine slows every contender."""
    return ", ".join(f"{load:.1f}" for load in os.getloadavg())


def _progress(text: str) -> None:
    if sys.stderr.isatty():
        sys.stderr.write(f"\r{text:<60}")
        sys.stderr.flush()


def _owners(port: int) -> list[int]:
    """The port of each slot's primary (CLUSTER SLOTS)."""
    owner = [0] * 16384
    with redis.Redis(port=port) as client:
        for start, end, primary, *_ in client.execute_command("CLUSTER SLOTS"):
            for slot in range(start, end + 1):
                owner[slot] = primary[1]
    return owner


def _resp_files(items: dict[str, str], owner: list[int], root: Path) -> dict[int, Path]:
    """One file of ``SET key value`` commands per node, for the keys of its slots."""
    chunks: dict[int, list[bytes]] = {port: [] for port in set(owner)}
    for key, value in items.items():
        k, v = key.encode(), value.encode()
        chunks[owner[key_slot(k)]].append(
            b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(v), v)
        )
    files = {}
    for port, commands in chunks.items():
        files[port] = root / f"node-{port}.resp"
        files[port].write_bytes(b"".join(commands))
    return files


def _flush(ports: list[int]) -> None:
    for port in ports:
        with redis.Redis(port=port) as client:
            client.flushall()


def _count(ports: list[int]) -> int:
    total = 0
    for port in ports:
        with redis.Redis(port=port) as client:
            total += int(client.dbsize())
    return total


def bench_migrate(keys: int = 1_000_000, repeat: int = 3) -> dict[str, Any]:
    """Run the comparison of the module docstring; print its table and return the numbers."""
    with tempfile.TemporaryDirectory(prefix="bench-migrate-") as tmp:
        root = Path(tmp)
        items = ascii_items(keys)
        _progress("writing the store")
        with snapkv.open(root / "store", journal=False) as store:
            store.update(items)
        with redis_cluster(root / "cluster") as ports:
            files = _resp_files(items, _owners(ports[0]), root)
            del items

            def migrate() -> dict[str, float]:
                _flush(ports)
                start = time.perf_counter()
                done = subprocess.run(
                    [sys.executable, "-m", "snapkv", "migrate", str(root / "store"),
                     f"redis://127.0.0.1:{ports[0]}", "--cluster"],
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                seconds = time.perf_counter() - start
                copy = re.search(r" in ([\d.]+) s \(", done.stdout)
                assert copy is not None, done.stdout
                assert _count(ports) == keys
                return {"total": seconds, "copy": float(copy[1])}

            def pipe() -> dict[str, float]:
                _flush(ports)
                start = time.perf_counter()
                runs = []
                for port, path in files.items():
                    with path.open("rb") as commands:
                        runs.append(
                            subprocess.Popen(
                                ["redis-cli", "-p", str(port), "--pipe"],
                                stdin=commands,
                                stdout=subprocess.DEVNULL,
                            )
                        )
                for run in runs:
                    assert run.wait() == 0
                seconds = time.perf_counter() - start
                assert _count(ports) == keys
                return {"total": seconds}

            runs = interleaved(
                {"snapkv migrate": migrate, "redis-cli --pipe": pipe}, repeat, progress=_progress
            )
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    mig = [r["total"] for r in runs["snapkv migrate"]]
    copy = [r["copy"] for r in runs["snapkv migrate"]]
    base = [r["total"] for r in runs["redis-cli --pipe"]]
    ratio = median_ratio(mig, base)
    print(f"## Migrate {keys:,} keys into a 3-node Redis Cluster ({repeat} repetitions)")
    print()
    print_table(
        ["contender", "median time", "keys/s", "vs redis-cli --pipe"],
        [
            ["snapkv migrate (process: start, load, copy)", fmt_seconds(median(mig)),
             f"{keys / median(mig):,.0f}", fmt_ratio(ratio)],
            ["snapkv migrate, its own timing (load + copy)", fmt_seconds(median(copy)),
             f"{keys / median(copy):,.0f}", fmt_ratio(median_ratio(copy, base))],
            ["redis-cli --pipe, 3 at once (input prepared)", fmt_seconds(median(base)),
             f"{keys / median(base):,.0f}", "1.00x"],
        ],
    )  # fmt: skip
    print()
    print(target_line("migrate / redis-cli --pipe", ratio, 1.0))
    return {"migrate": mig, "copy": copy, "pipe": base, "ratio": ratio}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000, help="keys in the data set")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved repetitions")
    parser.add_argument("--quick", action="store_true", help="100,000 keys, 2 repetitions")
    args = parser.parse_args()
    keys, repeat = (100_000, 2) if args.quick else (args.keys, args.repeat)
    print(describe_machine())
    print(f"Load average at the start (1, 5, 15 min): {_load()}")
    print()
    bench_migrate(keys, repeat)
    print()
    print(f"Load average at the end (1, 5, 15 min): {_load()}")


if __name__ == "__main__":
    main()
