"""Interchange with Redis: RDB export and import against redis-server's own save and load.

Run from the repository root (redis-server 7.0 and redis-py installed)::

    python bench/interop.py             # --keys N, --repeat R, --quick

Data: N keys (1,000,000 by default) written to a redis-server through
redis-py pipelines: 80% strings (16-character keys, 64-character values),
5% each hashes, lists, sets and sorted sets of 5 elements (Redis keeps them
in listpacks, its compact encoding), one key in ten with an expiry time an
hour away. Its own ``SAVE`` makes ``dump.rdb``; a snapkv store is made from
that file once, untimed (``snapkv import``).

Measured, each with its baseline in the same run, interleaved:

* **Export + load vs SAVE + load**: ``snapkv export`` of the store (in
  process: reading the store, writing the file, fsync and rename) plus a
  fresh redis-server loading that file, against redis-server's own ``SAVE``
  of the same keys plus a fresh redis-server loading ``dump.rdb``. Target:
  within 1.5x.
* **Import vs load**: ``snapkv import`` of ``dump.rdb`` into a new
  directory (in process: reading and checking the whole file, encoding and
  publishing one snapshot) against a fresh redis-server loading the same
  file. Target: within 2x.

A load is timed from the server's start until it answers ``DBSIZE`` with
every key (Redis answers ``-LOADING`` until then); its process start, a
few milliseconds, is in every load alike. Each contender is measured in
wall time and in CPU time (this process's for snapkv, which is
single-threaded; redis-server's own from ``INFO cpu`` for its SAVE and its
load): on a machine shared with other work, CPU time is the steadier of
the two, and both are reported with their targets.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import redis

from _common import (
    describe_machine,
    fmt_bytes,
    fmt_seconds,
    interleaved,
    median,
    median_ratio,
    print_table,
    target_line,
)
from migrate import bench_migrate
from serving import free_port
from snapkv.interop.rdb_export import export_rdb
from snapkv.interop.rdb_import import import_rdb

DEADLINE = 600.0


def _progress(text: str) -> None:
    if sys.stderr.isatty():
        sys.stderr.write(f"\r{text:<60}")
        sys.stderr.flush()


@contextmanager
def redis_server(directory: Path, dbfilename: str = "dump.rdb") -> Iterator[redis.Redis]:
    """A redis-server on a free loopback port over ``directory`` (loading ``dbfilename``)."""
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(directory), "--dbfilename", dbfilename],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(port=port, socket_timeout=DEADLINE)  # a SAVE of 1M keys takes seconds
    try:
        yield client
    finally:
        client.close()
        process.kill()
        process.wait()


def _wait_loaded(client: redis.Redis, keys: int) -> None:
    """Poll until the server answers DBSIZE with ``keys`` (it says -LOADING before)."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        try:
            size = client.dbsize()
        except (redis.ConnectionError, redis.BusyLoadingError):
            time.sleep(0.005)
            continue
        if size != keys:
            raise RuntimeError(f"redis-server loaded {size} keys, not {keys}")
        return
    raise TimeoutError("redis-server did not load the file in time")


def fill(client: redis.Redis, keys: int) -> None:
    """The data set of the module docstring."""
    pipe = client.pipeline(transaction=False)
    for i in range(keys):
        key = f"{i:016x}"
        kind = i % 20
        if kind < 16:
            pipe.set(key, f"{i:064d}")
        elif kind == 16:
            pipe.hset(key, mapping={f"f{j}": f"value-{i}-{j}" for j in range(5)})
        elif kind == 17:
            pipe.rpush(key, *[f"element-{i}-{j}" for j in range(5)])
        elif kind == 18:
            pipe.sadd(key, *[f"member-{i}-{j}" for j in range(5)])
        else:
            pipe.zadd(key, {f"member-{i}-{j}": j * 1.5 for j in range(5)})
        if i % 10 == 0:
            pipe.expire(key, 3600)
        if i % 10_000 == 9_999:
            pipe.execute()
            _progress(f"filling: {i + 1:,} keys")
    pipe.execute()


def server_cpu(client: redis.Redis) -> float:
    """The CPU seconds (user + system) redis-server has used since it started (INFO cpu)."""
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def load_seconds(directory: Path, dbfilename: str, keys: int) -> tuple[float, float]:
    """A fresh redis-server loading ``directory / dbfilename``: (seconds until it holds every
    key, CPU seconds it used for that, its start included)."""
    start = time.perf_counter()
    with redis_server(directory, dbfilename) as client:
        _wait_loaded(client, keys)
        wall = time.perf_counter() - start
        return wall, server_cpu(client)


def save_seconds(client: redis.Redis) -> tuple[float, float]:
    """redis-server's own SAVE (it writes, fsyncs and renames its dump.rdb): (wall, CPU)."""
    before = server_cpu(client)
    start = time.perf_counter()
    client.save()
    wall = time.perf_counter() - start
    return wall, server_cpu(client) - before


def export_seconds(store: Path, target: Path) -> tuple[float, float]:
    """``snapkv export`` in this process: (wall, this process's CPU)."""
    cpu, start = time.process_time(), time.perf_counter()
    export_rdb(str(store), target)
    return time.perf_counter() - start, time.process_time() - cpu


def import_seconds(dump: Path, target: Path) -> tuple[float, float]:
    """``snapkv import`` in this process into a new directory: (wall, this process's CPU)."""
    shutil.rmtree(target, ignore_errors=True)
    cpu, start = time.process_time(), time.perf_counter()
    import_rdb(str(dump), directory=str(target))
    return time.perf_counter() - start, time.process_time() - cpu


def rdb_both_ways(root: Path, keys: int, repeat: int) -> dict[str, Any]:
    """The two comparisons of the module docstring: per-repetition times and their ratios."""
    source = root / "redis"
    source.mkdir()
    exported = root / "exported"
    exported.mkdir()
    store = root / "store"
    with redis_server(source) as client:
        _wait_loaded(client, 0)
        fill(client, keys)
        client.save()
        import_rdb(str(source / "dump.rdb"), directory=str(store))  # the store, untimed

        def baseline() -> dict[str, tuple[float, float]]:
            saved = save_seconds(client)
            return {"save": saved, "load": load_seconds(source, "dump.rdb", keys)}

        def snapkv_export() -> dict[str, tuple[float, float]]:
            written = export_seconds(store, exported / "snapkv.rdb")
            return {"export": written, "load": load_seconds(exported, "snapkv.rdb", keys)}

        def snapkv_import() -> dict[str, tuple[float, float]]:
            return {"import": import_seconds(source / "dump.rdb", root / "imported")}

        runs = interleaved(
            {"redis": baseline, "export": snapkv_export, "import": snapkv_import},
            repeat,
            progress=_progress,
        )
    _progress("")
    result: dict[str, Any] = {
        "runs": runs,
        "sizes": {
            "dump.rdb": (source / "dump.rdb").stat().st_size,
            "snapkv.rdb": (exported / "snapkv.rdb").stat().st_size,
        },
    }
    for at, what in ((0, "wall"), (1, "cpu")):
        base = [r["save"][at] + r["load"][at] for r in runs["redis"]]
        ours = [r["export"][at] + r["load"][at] for r in runs["export"]]
        loads = [r["load"][at] for r in runs["redis"]]
        imports = [r["import"][at] for r in runs["import"]]
        result[what] = {
            "export_ratios": [o / b for o, b in zip(ours, base, strict=True)],
            "export_ratio": median_ratio(ours, base),
            "import_ratios": [i / b for i, b in zip(imports, loads, strict=True)],
            "import_ratio": median_ratio(imports, loads),
        }
    return result


def report_rdb(result: dict[str, Any], keys: int) -> None:
    runs = result["runs"]

    def med(name: str, phase: str, at: int) -> float:
        return median(r[phase][at] for r in runs[name])

    print(f"\n## RDB export and import, {keys:,} keys\n")
    sizes = result["sizes"]
    print(
        f"Files: redis-server's dump.rdb {fmt_bytes(sizes['dump.rdb'])} (compact encodings, "
        f"LZF), snapkv's export {fmt_bytes(sizes['snapkv.rdb'])} (plain encodings)\n"
    )
    rows = []
    for at, what in ((0, "wall"), (1, "CPU")):
        rows += [
            [f"redis-server SAVE + load ({what})", fmt_seconds(med("redis", "save", at)),
             fmt_seconds(med("redis", "load", at)),
             fmt_seconds(med("redis", "save", at) + med("redis", "load", at))],
            [f"snapkv export + load ({what})", fmt_seconds(med("export", "export", at)),
             fmt_seconds(med("export", "load", at)),
             fmt_seconds(med("export", "export", at) + med("export", "load", at))],
            [f"snapkv import ({what})", fmt_seconds(med("import", "import", at)), "-",
             fmt_seconds(med("import", "import", at))],
        ]  # fmt: skip
    print_table(["contender", "write", "redis-server load", "total"], rows)
    print(
        "\nCPU: this process's for snapkv (single-threaded), redis-server's own (INFO cpu) for "
        "its SAVE and its load; on a shared machine CPU time is the steadier measure."
    )
    for what in ("wall", "cpu"):
        ratios = result[what]
        print(target_line(f"export + load / SAVE + load ({what})", ratios["export_ratio"], 1.5))
        print(target_line(f"import / redis-server load ({what})", ratios["import_ratio"], 2.0))
    print("Per-repetition ratios behind the targets:")
    for what in ("wall", "cpu"):
        ratios = result[what]
        print(f"  export ({what}): " + " ".join(f"{r:.2f}" for r in ratios["export_ratios"]))
        print(f"  import ({what}): " + " ".join(f"{r:.2f}" for r in ratios["import_ratios"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000, help="keys in the data set")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved repetitions")
    parser.add_argument("--quick", action="store_true", help="100,000 keys, 2 repetitions")
    args = parser.parse_args()
    if args.quick:
        args.keys, args.repeat = 100_000, 2
    print(describe_machine())
    version = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True, check=True
    ).stdout.split()[2]
    print(
        f"Parameters: {args.keys:,} keys (80% strings, 5% each hash/list/set/zset of 5 "
        f"elements, 10% with an expiry), {args.repeat} interleaved repetitions (medians "
        f"shown); redis-server {version.removeprefix('v=')}; files in {tempfile.gettempdir()}"
    )
    with tempfile.TemporaryDirectory() as scratch:
        report_rdb(rdb_both_ways(Path(scratch), args.keys, args.repeat), args.keys)
    print()
    bench_migrate(args.keys, args.repeat)  # bench/migrate.py: migrate into a 3-node cluster


if __name__ == "__main__":
    main()
