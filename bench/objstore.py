"""Object storage: replication's lag and cost, and restore from a bucket, against moto on loopback.

Run from the repository root (``pip install -e '.[cloud,test]'``: obstore
and moto's server)::

    python bench/objstore.py            # --keys N (restore), --seconds S (lag), --quick

A real S3 API answers on 127.0.0.1: moto's server mode in its own process
(tests/moto_server.py starts it), so every request goes through HTTP, S3's
signatures and XML. Loopback hides the network's latency and bandwidth:
the costs here are snapkv's and the protocol's, not a cloud's.

Measured, each with its baseline in the same run:

* **Local write cost, replication on vs off**: ``set`` on a journaled
  directory store with a shipper running (interval 1 s) against the same
  without one, interleaved. Target: at most 1.2x.
* **Replication lag at 1,000 and 10,000 writes/s**: a paced writer for a
  few seconds; the shipper's own ``lag`` (an upper bound on the age of the
  oldest write not yet in the bucket) sampled every 20 ms. Target: the
  largest sample at most the interval plus half a second (one upload).
* **CPU per write at those rates, replication on / off**: the process's
  CPU time (every thread, the shipper's included) per write, against the
  same paced writer without a shipper. Target: at most 1.2x.
* **Requests per 1,000 writes** at each rate (every request the client
  made: PUTs, GETs, LISTs, retries).
* **Restore of N keys (1,000,000 by default) from the bucket vs from a
  local directory**: ``snapkv restore`` (in process) plus opening the
  result, against opening the local directory, plus the raw download of
  the same bytes (ranged GETs of the snapshot object, nothing else).
  Target: within 1.5x of local restore + raw download.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import snapkv
from _common import describe_machine, fmt_seconds, median, median_ratio, print_table, target_line
from moto_server import MotoServer, moto_server, s3_env
from snapkv.cli_restore import restore_to
from snapkv.objstore.client import ObjectClient
from snapkv.objstore.url import parse_url
from snapkv.replication import replicate

INTERVAL = 1.0


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _client(url: str) -> ObjectClient:
    return ObjectClient.for_location(parse_url(url))


def write_cost(
    server: MotoServer, root: Path, writes: int, repeat: int
) -> tuple[float, float, float]:
    """Seconds for ``writes`` sets without and with a shipper; the median ratio."""
    off: list[float] = []
    on: list[float] = []
    for rep in range(repeat):
        for replicated in (False, True) if rep % 2 == 0 else (True, False):
            directory = root / f"cost-{rep}-{int(replicated)}"
            store = snapkv.open(directory)
            replicator = None
            if replicated:
                bucket = server.make_bucket(f"cost-{rep}")
                replicator = replicate(directory, bucket.url("db"), interval=INTERVAL)
            keys = [f"key:{i}" for i in range(writes)]
            started = time.perf_counter()
            for key in keys:
                store.set(key, "v" * 64)
            elapsed = time.perf_counter() - started
            store.close()
            if replicator is not None:
                replicator.close()
            (on if replicated else off).append(elapsed)
            shutil.rmtree(directory)
    return median(off), median(on), median_ratio(on, off)


def _paced(store: snapkv.Store, rate: int, seconds: float) -> tuple[int, float, float]:
    """Sets at ``rate`` per second for ``seconds``: (written, seconds, process CPU seconds).

    The process's CPU time counts every thread of it (the shipper's too),
    not moto's, which runs in its own process.
    """
    batch = max(1, rate // 100)
    written = 0
    cpu = time.process_time()
    started = time.perf_counter()
    while (now := time.perf_counter() - started) < seconds:
        due = int(now * rate)
        while written < due:
            for _ in range(batch):
                store.set(f"key:{written % 100_000}", str(written))
                written += 1
        time.sleep(batch / rate / 2)
    return written, time.perf_counter() - started, time.process_time() - cpu


def lag_at(server: MotoServer, root: Path, rate: int, seconds: float) -> dict[str, float]:
    """A writer paced at ``rate`` sets/s for ``seconds``; the lag samples and requests sent."""
    directory = root / f"lag-{rate}"
    bucket = server.make_bucket(f"lag-{rate}")
    store = snapkv.open(directory)
    replicator = replicate(directory, bucket.url("db"), interval=INTERVAL)
    store.set("start", "")  # the journal's creation and the claim are start-up, not steady state
    wait_until_shipped = time.monotonic() + 10 * INTERVAL
    while replicator.status.journal_offset == 0 and time.monotonic() < wait_until_shipped:
        time.sleep(0.01)
    before = replicator.status.requests
    samples: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            samples.append(replicator.status.lag)

    sampler = threading.Thread(target=sample)
    sampler.start()
    written, elapsed, cpu = _paced(store, rate, seconds)
    time.sleep(INTERVAL * 1.5)  # the last writes reach the bucket
    done.set()
    sampler.join()
    requests = replicator.status.requests - before
    store.close()
    replicator.close()
    shutil.rmtree(directory)
    baseline_dir = root / f"paced-{rate}"
    baseline = snapkv.open(baseline_dir)
    baseline.set("start", "")
    base_written, _, base_cpu = _paced(baseline, rate, seconds)
    baseline.close()
    shutil.rmtree(baseline_dir)
    return {
        "cpu_ratio": (cpu / written) / (base_cpu / base_written),
        "rate": written / elapsed,
        "max": max(samples),
        "mean": statistics.fmean(samples),
        "per_1000": requests / written * 1000 if written else 0.0,
        "failures": float(replicator.status.failures),
    }


def restore_times(server: MotoServer, root: Path, keys: int) -> dict[str, float]:
    """Local open vs bucket restore (+ open) of ``keys`` keys, and the raw download."""
    directory = root / "big"
    _progress(f"writing {keys} keys")
    store = snapkv.open(directory, fsync="no")
    with store.transaction():
        for i in range(keys):
            store.set(f"key:{i:09d}", f"value-{i}-" + "x" * 40)
    store.save()
    store.close()
    bucket = server.make_bucket("restore")
    url = bucket.url("db")
    _progress("replicating")
    replicator = replicate(directory, url, interval=INTERVAL)
    replicator.flush()
    replicator.close()
    snapshot_size = max(p.stat().st_size for p in directory.glob("snapshot-*.skv"))

    _progress("local restore")
    started = time.perf_counter()
    local = snapkv.open(directory)
    local_seconds = time.perf_counter() - started
    count = len(local)
    local.close()

    client = _client(url)
    (name,) = [i.name for i in client.list("snapshot")]
    _progress("raw download")
    started = time.perf_counter()
    raw = sum(len(chunk) for chunk in client.stream(name, snapshot_size))
    download_seconds = time.perf_counter() - started
    assert raw == snapshot_size

    _progress("restore from the bucket")
    copy = root / "restored"
    started = time.perf_counter()
    restore_to(_client(url), copy)
    restored = snapkv.open(copy)
    bucket_seconds = time.perf_counter() - started
    same = len(restored) == count
    restored.close()
    return {
        "keys": float(count),
        "bytes": float(snapshot_size),
        "local": local_seconds,
        "download": download_seconds,
        "bucket": bucket_seconds,
        "same": float(same),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000, help="keys restored")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per lag run")
    parser.add_argument("--writes", type=int, default=100_000, help="sets per write-cost run")
    parser.add_argument("--repeat", type=int, default=4, help="write-cost repetitions")
    parser.add_argument("--quick", action="store_true", help="100,000 keys, 3 s, 2 repetitions")
    args = parser.parse_args()
    if args.quick:
        args.keys, args.seconds, args.repeat = 100_000, 3.0, 2
    print(describe_machine())
    print(
        f"Parameters: replicate_interval {INTERVAL:g} s; write cost {args.writes:,} sets x "
        f"{args.repeat}; lag runs {args.seconds:g} s; restore {args.keys:,} keys; "
        "S3: moto server on 127.0.0.1"
    )
    with tempfile.TemporaryDirectory() as scratch, moto_server(Path(scratch)) as server:
        root = Path(scratch)
        os.environ.update(s3_env(server.endpoint))
        _progress("write cost")
        off, on, ratio = write_cost(server, root, args.writes, args.repeat)
        print("\n## Local write cost (journal everysec), replication off vs on\n")
        print_table(
            ["replication", "per set", f"{args.writes:,} sets"],
            [
                ["off", fmt_seconds(off / args.writes), fmt_seconds(off)],
                ["on", fmt_seconds(on / args.writes), fmt_seconds(on)],
            ],
        )
        print()
        print(target_line("write cost with replication / without", ratio, 1.2))

        print("\n## Replication lag and requests\n")
        rows = []
        lines = []
        for rate in (1_000, 10_000):
            _progress(f"lag at {rate}/s")
            got = lag_at(server, root, rate, args.seconds)
            rows.append(
                [
                    f"{rate:,}/s",
                    f"{got['rate']:,.0f}/s",
                    fmt_seconds(got["mean"]),
                    fmt_seconds(got["max"]),
                    f"{got['per_1000']:.2f}",
                    f"{got['cpu_ratio']:.2f}x",
                    f"{got['failures']:.0f}",
                ]
            )
            lines.append(target_line(f"max lag at {rate:,}/s (s)", got["max"], INTERVAL + 0.5))
            lines.append(
                target_line(
                    f"CPU per write at {rate:,}/s, replication on / off", got["cpu_ratio"], 1.2
                )
            )
        print_table(
            [
                "asked",
                "achieved",
                "mean lag",
                "max lag",
                "requests / 1,000 writes",
                "CPU per write, on / off",
                "failures",
            ],
            rows,
        )
        print()
        for line in lines:
            print(line)

        print("\n## Restore: bucket vs local directory\n")
        got = restore_times(server, root, args.keys)
        print_table(
            ["restore", "time"],
            [
                ["local directory (open)", fmt_seconds(got["local"])],
                ["raw download of the snapshot object", fmt_seconds(got["download"])],
                ["snapkv restore from the bucket + open", fmt_seconds(got["bucket"])],
            ],
        )
        print(
            f"\n{got['keys']:,.0f} keys, snapshot {got['bytes'] / 1e6:.1f} MB; "
            f"restored store has the same key count: {bool(got['same'])}"
        )
        baseline = got["local"] + got["download"]
        print(target_line("bucket restore / (local + download)", got["bucket"] / baseline, 1.5))


if __name__ == "__main__":
    main()
