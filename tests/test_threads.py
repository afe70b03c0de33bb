"""Concurrent use of one Store: memory and snapshots must never be torn or lose writes.

Each test runs its threads for a fixed wall-clock time with a very short GIL
switch interval, so that threads interleave inside Store methods as often as
possible, then checks invariants that a torn (not point-in-time) snapshot or
a lost write would break.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

from snapkv import Medium, Store, StoreClosedError, codec
from support import wait_until

if TYPE_CHECKING:
    from conftest import MediumFactory

WRITERS = 4
RUN_SECONDS = 1.0
KEEP_ALL = 1_000_000  # keep every snapshot, to check each one afterwards
MAX_SNAPSHOTS = 400  # bounds the time spent checking them afterwards
MAX_WRITES = 10_000  # per writer, for the same reason


@pytest.fixture(autouse=True)
def fast_thread_switching() -> Iterator[None]:
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(interval)


def run_threads(targets: list[Callable[[threading.Event], None]], seconds: float) -> None:
    """Run each target(stop) in a thread for ``seconds``; re-raise the first failure."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def guarded(target: Callable[[threading.Event], None]) -> None:
        try:
            target(stop)
        except BaseException as exc:
            errors.append(exc)
            stop.set()

    threads = [threading.Thread(target=guarded, args=(t,), daemon=True) for t in targets]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + seconds
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
        assert not thread.is_alive(), "a thread did not finish"
    if errors:
        raise errors[0]


def all_snapshots(medium: Medium) -> list[dict[str, str]]:
    """Every retained snapshot, decoded (which verifies every byte of it), oldest first."""
    snapshots = []
    for generation in reversed(medium.generations()):
        blob = medium.read(generation)
        assert blob is not None
        snapshots.append(codec.decode(blob))
    return snapshots


# ------------------------------------------------------------- point in time
#
# Writer i repeats, for n = 1, 2, ...:
#     set x{i}-{n}; delete x{i}-{n-1}; set w{i} = n; set w{i}-copy = n
# At every instant, with w = w{i} and c = w{i}-copy:
#     c <= w <= c + 1                 (the copy is written last)
#     the x{i}-* keys are {w}, {w, w+1} or {w+1}; just {w} while c < w
# A snapshot taken while the writer runs, instead of at one instant, can see
# w before an update and the copy after it, or an x key from the wrong step.


def writer_step(store: Store, i: int, n: int) -> None:
    store.set(f"x{i}-{n}", "")
    store.delete(f"x{i}-{n - 1}")
    store.set(f"w{i}", str(n))
    store.set(f"w{i}-copy", str(n))
    # Churn on keys of this writer only: resizes and reorders the dict.
    store.set(f"c{i}-{n % 97}", str(n))
    store.delete(f"c{i}-{(n * 7) % 97}")


def check_point_in_time(view: dict[str, str]) -> None:
    for i in range(WRITERS):
        xs = sorted(int(key.split("-")[1]) for key in view if key.startswith(f"x{i}-"))
        if f"w{i}" not in view:
            assert f"w{i}-copy" not in view
            assert xs in ([], [1]), f"writer {i}: x keys {xs} before any w"
            continue
        w = int(view[f"w{i}"])
        c = int(view.get(f"w{i}-copy", "0"))
        assert c <= w <= c + 1, f"writer {i}: copy {c} vs original {w}: torn view"
        if c < w:
            assert xs == [w], f"writer {i}: x keys {xs} with w={w}, copy={c}"
        else:
            assert xs in ([w], [w, w + 1], [w + 1]), f"writer {i}: x keys {xs} with w={w}"


def test_snapshots_are_point_in_time_views(medium_factory: MediumFactory) -> None:
    medium = medium_factory(keep=KEEP_ALL)
    store = Store(medium)
    views_checked = [0]

    def writer(i: int) -> Callable[[threading.Event], None]:
        def run(stop: threading.Event) -> None:
            n = 1
            while not stop.is_set():
                writer_step(store, i, n)
                n += 1

        return run

    def saver(stop: threading.Event) -> None:
        for _ in range(MAX_SNAPSHOTS):
            store.save()
            if stop.wait(0.001):
                break

    def reader(stop: threading.Event) -> None:
        last = [0] * WRITERS
        while not stop.is_set():
            for i in range(WRITERS):
                value = store.get(f"w{i}")
                current = int(value) if value is not None else 0
                assert current >= last[i], f"w{i} went back from {last[i]} to {current}"
                last[i] = current
            check_point_in_time(dict(store.items()))
            views_checked[0] += 1

    run_threads([*map(writer, range(WRITERS)), saver, reader], RUN_SECONDS)

    snapshots = all_snapshots(medium)
    assert len(snapshots) >= 3, "the saver should have published several snapshots"
    assert views_checked[0] >= 3
    for snapshot in snapshots:
        check_point_in_time(snapshot)
    # Snapshots are published in order: each writer's counter never goes back.
    for i in range(WRITERS):
        counters = [int(s.get(f"w{i}", "0")) for s in snapshots]
        assert counters == sorted(counters), f"w{i} went back between snapshots"
    store.save()
    assert all_snapshots(medium)[-1] == dict(store.items())
    store.close()


# ------------------------------------------------------------- no lost write


def test_shutdown_never_loses_an_acknowledged_write(medium_factory: MediumFactory) -> None:
    medium = medium_factory(keep=KEEP_ALL)
    store = Store(medium)
    acknowledged: list[list[str]] = [[] for _ in range(WRITERS)]

    def writer(i: int) -> Callable[[threading.Event], None]:
        def run(stop: threading.Event) -> None:
            for n in range(MAX_WRITES):
                if stop.is_set():
                    break
                key = f"a{i}-{n}"
                store.set(key, str(n))
                acknowledged[i].append(key)

        return run

    def shutter(stop: threading.Event) -> None:
        while not stop.wait(0.01):
            store.shutdown()

    run_threads([*map(writer, range(WRITERS)), shutter], RUN_SECONDS)

    snapshots = all_snapshots(medium)
    assert len(snapshots) >= 3
    places = [*snapshots, dict(store.items())]
    acked = {key for keys in acknowledged for key in keys}
    assert len(acked) == sum(map(len, acknowledged))
    seen: dict[str, int] = {}
    for place in places:
        for key in place:
            seen[key] = seen.get(key, 0) + 1
    lost = acked - seen.keys()
    assert not lost, f"{len(lost)} acknowledged writes lost, e.g. {sorted(lost)[:5]}"
    twice = [key for key, count in seen.items() if count != 1]
    assert not twice, f"keys in more than one snapshot (memory not cleared atomically): {twice[:5]}"
    assert seen.keys() == acked
    # Each writer's keys land in snapshots in the order they were written.
    where = {key: index for index, place in enumerate(places) for key in place}
    for keys in acknowledged:
        indexes = [where[key] for key in keys]
        assert indexes == sorted(indexes), "a later write was published before an earlier one"
    store.close()


# ------------------------------------------------------------------- mayhem


def test_mixed_operations_keep_store_and_snapshots_consistent(
    medium_factory: MediumFactory,
) -> None:
    medium = medium_factory(keep=MAX_SNAPSHOTS)
    store = Store(medium)

    def worker(seed: int) -> Callable[[threading.Event], None]:
        def run(stop: threading.Event) -> None:
            rng = random.Random(seed)
            while not stop.is_set():
                key = f"k{rng.randrange(50)}"
                action = rng.random()
                if action < 0.4:
                    store.set(key, str(rng.random()))
                elif action < 0.6:
                    store.delete(key)
                elif action < 0.75:
                    store.get(key)
                elif action < 0.85:
                    items = dict(store.items())
                    assert all(k.startswith("k") for k in items)
                elif action < 0.92:
                    store.save()
                elif action < 0.97:
                    store.shutdown()
                else:
                    store.restore()

        return run

    run_threads([worker(seed) for seed in range(5)], RUN_SECONDS)

    for snapshot in all_snapshots(medium):
        assert all(key.startswith("k") for key in snapshot)
    assert len(store) == len(dict(store.items())) == len(list(store))
    store.shutdown()
    store.restore()
    store.close()


def test_close_while_in_use_raises_only_store_closed(medium_factory: MediumFactory) -> None:
    store = Store(medium_factory())
    closed = threading.Event()
    finished: list[int] = []
    progress = [0] * WRITERS

    def worker(i: int) -> Callable[[threading.Event], None]:
        def run(stop: threading.Event) -> None:
            n = 0
            try:
                while True:
                    store.set(f"k{i}", str(n))
                    store.get(f"k{i}")
                    if n % 50 == 0:
                        store.save()
                    store.delete(f"k{i}-{n - 1}")
                    n += 1
                    progress[i] = n
                    if stop.is_set() and not closed.is_set():
                        raise AssertionError("the store was not closed")
            except StoreClosedError:
                assert closed.is_set()
                finished.append(i)

        return run

    def closer(stop: threading.Event) -> None:
        # Close while every worker is mid-loop (each has saved and written).
        wait_until(lambda: min(progress) >= 60, what="every worker to be writing")
        closed.set()
        store.close()

    run_threads([*map(worker, range(WRITERS)), closer], RUN_SECONDS)
    assert sorted(finished) == list(range(WRITERS))
