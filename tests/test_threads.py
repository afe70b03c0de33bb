"""Concurrent use of one Store: memory and snapshots must never be torn or lose writes.

The stress tests run their threads for a fixed wall-clock time with a very
short GIL switch interval, so that threads interleave inside Store methods as
often as possible, then check invariants that a torn (not point-in-time)
snapshot or a lost write would break. The lock tests at the end are
deterministic: a publish is held in place and each call must be seen waiting
for it.
"""

from __future__ import annotations

import contextlib
import random
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import pytest

import snapkv
from snapkv import Medium, MemoryMedium, Store, StoreClosedError, codec
from support import WatchedLock, wait_until

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


# --------------------------------------------------------- atomic methods


def test_pop_setdefault_popitem_are_single_atomic_steps() -> None:
    store = Store()
    errors: list[BaseException] = []
    results: list[str] = []

    def racer() -> None:
        try:
            for _ in range(2_000):
                store.set("k", "v")
                store.pop("k", None)
                results.append(store.setdefault("d", threading.current_thread().name))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=racer, name=f"t{i}") for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(results)) == 1, "setdefault must give every caller the same value"
    assert store.popitem() == ("d", results[0])
    with pytest.raises(KeyError):
        store.popitem()
    with pytest.raises(KeyError):
        store.pop("missing")
    with pytest.raises(TypeError, match="value must be str"):
        store.setdefault("x", None)  # type: ignore[arg-type]


# ----------------------------------------------- the locks, deterministically


class BlockingMedium(MemoryMedium):
    """publish() waits until released, so a test can act while a publish is running."""

    def __init__(self) -> None:
        super().__init__(keep=5)
        self.publishing = threading.Event()
        self.release = threading.Event()

    def publish(self, pieces: Iterable[bytes]) -> None:
        data = b"".join(pieces)
        self.publishing.set()
        assert self.release.wait(10)
        super().publish([data])


@contextmanager
def publish_in_progress(store: Store, medium: BlockingMedium, operation: str) -> Iterator[None]:
    thread = threading.Thread(target=getattr(store, operation))
    thread.start()
    assert medium.publishing.wait(10)
    try:
        yield
    finally:
        medium.release.set()
        thread.join(10)


def blocks(store: Store, target: object, *args: object) -> tuple[bool, threading.Thread]:
    """Start ``target`` in a thread; True if it waits for one of the store's locks.

    It either finishes (it did not wait) or is seen waiting on a lock that
    the running publish holds: no sleep decides which.
    """
    locks = [WatchedLock(store._lock), WatchedLock(store._publish_lock)]
    store._lock, store._publish_lock = locks  # type: ignore[assignment]
    thread = threading.Thread(target=target, args=args)  # type: ignore[arg-type]
    thread.start()

    def waiting() -> bool:
        return any(lock.waiting.is_set() for lock in locks)

    wait_until(lambda: waiting() or not thread.is_alive(), what="the call to wait or end")
    return waiting() and thread.is_alive(), thread


@pytest.mark.parametrize("operation", ["close", "restore"])
def test_close_and_restore_wait_for_a_running_save(operation: str) -> None:
    medium = BlockingMedium()
    store = Store(medium)
    store["k"] = "v"
    with publish_in_progress(store, medium, "save"):
        waited, thread = blocks(store, getattr(store, operation))
        assert waited, f"{operation} ran while a save was publishing"
    thread.join(10)


@pytest.mark.parametrize(
    "write", ["delete", "__delitem__", "clear", "pop", "popitem", "setdefault", "update"]
)
def test_every_mutation_waits_for_a_running_shutdown(write: str) -> None:
    medium = BlockingMedium()
    store = Store(medium)
    store["k"] = "v"
    args = {
        "delete": ("k",),
        "__delitem__": ("k",),
        "pop": ("k", None),
        "setdefault": ("k", "x"),
        "update": ({"k": "x"},),
    }.get(write, ())

    def call() -> None:
        with contextlib.suppress(KeyError):
            getattr(store, write)(*args)

    with publish_in_progress(store, medium, "shutdown"):
        waited, thread = blocks(store, call)
        assert waited, f"{write} did not wait for shutdown's lock"
    thread.join(10)
    assert codec.decode(medium.read() or b"") == {"k": "v"}, "the snapshot saw the write"


def test_run_operations_on_a_shared_store_goes_through_its_lock() -> None:
    medium = BlockingMedium()
    store = Store(medium)
    with publish_in_progress(store, medium, "shutdown"):
        waited, thread = blocks(
            store, lambda: snapkv.run_operations([("set", "k", "v")], store=store)
        )
        assert waited, "run_operations wrote to a shared store without its lock"
    thread.join(10)
    assert store.get("k") == "v", "the write was lost in the dict being shut down"
