"""Compaction pause: how long a writer waits while the journal is compacted.

Compaction is ``save()`` on a background thread: under the store's lock it
syncs the journal, creates the next one and copies references to every
entry; encoding, writing and fsyncing the snapshot happen without the lock.
The promise: writers wait no longer than that copy step.

A writer thread sets keys in a loop on a journaled store of N keys
(``fsync="never"``, so the fsync policy does not hide the pause) while the
main thread runs compactions. Reported, per compaction: the time the lock
was held (the journal switch plus the reference copy, timed by wrapping
the two private steps that run under it), the writer's longest single
``set`` during the compaction and during an equally long stretch without
one (CPython's garbage collector and GIL hand-offs pause a thread now and
then whatever the store does), and the whole compaction time. The baseline
is ``list(d), list(d.values())`` on the same dict: the in-memory copy step.

    python bench/compaction.py [--keys 1000000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time

import snapkv
from _common import describe_machine, fmt_seconds, median, print_table, target_line


def _writer(
    store: snapkv.Store, stop: threading.Event, latencies: list[tuple[float, float]]
) -> None:
    clock = time.perf_counter
    i = 0
    while not stop.is_set():
        start = clock()
        store.set(f"w{i % 50_000}", "x" * 64)
        end = clock()
        latencies.append((start, end - start))
        i += 1


def _timing_lock_steps(held: list[float]) -> None:
    """Wrap the two steps save() runs under the store's lock, adding their time to ``held``."""
    for name in ("_rotate", "_columns"):
        original = getattr(snapkv.Store, name)

        def timed(self: snapkv.Store, *args: object, _original: object = original) -> object:
            start = time.perf_counter()
            try:
                return _original(self, *args)  # type: ignore[operator]
            finally:
                held.append(time.perf_counter() - start)

        setattr(snapkv.Store, name, timed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(describe_machine())
    print(f"store: {args.keys:,} keys of 16 + 64 chars, journal fsync=never\n")
    with tempfile.TemporaryDirectory() as directory:
        store = snapkv.open(
            directory, journal=True, fsync="never", compact_min_bytes=2**62, sweep_interval=None
        )
        store.update({f"key-{i:012d}": "v" * 64 for i in range(args.keys)})
        rows = []
        held: list[float] = []
        _timing_lock_steps(held)
        holds, baselines = [], []
        for _ in range(args.rounds):
            data = store._exclusive_dict()
            start = time.perf_counter()
            _ = (list(data), list(data.values()))
            baselines.append(time.perf_counter() - start)
            latencies: list[tuple[float, float]] = []
            stop = threading.Event()
            thread = threading.Thread(target=_writer, args=(store, stop, latencies))
            thread.start()
            time.sleep(0.2)
            held.clear()
            began = time.perf_counter()
            store.save()
            ended = time.perf_counter()
            time.sleep(ended - began)  # a stretch as long, without compaction
            stop.set()
            thread.join()
            during = [took for at, took in latencies if began <= at + took and at <= ended]
            quiet = [took for at, took in latencies if at > ended]
            holds.append(sum(held))
            rows.append(
                [
                    fmt_seconds(ended - began),
                    fmt_seconds(holds[-1]),
                    fmt_seconds(baselines[-1]),
                    fmt_seconds(max(during, default=0.0)),
                    fmt_seconds(max(quiet, default=0.0)),
                    fmt_seconds(median(during)),
                ]
            )
        store.close()
    print_table(
        [
            "compaction",
            "lock held",
            "copy baseline",
            "longest set during",
            "longest set without",
            "median set during",
        ],
        rows,
    )
    print()
    print(
        target_line(
            "lock held by compaction vs the in-memory copy step (median ratio)",
            median(holds) / median(baselines),
            1.5,
        )
    )


if __name__ == "__main__":
    main()
