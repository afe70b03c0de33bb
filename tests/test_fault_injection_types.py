"""Simulated power loss (FaultyMedium) while a store writes hashes, lists, sets, sorted sets.

As ``test_fault_injection.py`` does for strings: seeded runs drive a
journaled Store with ``fsync="always"`` through random writes through the
views (EDIT records), copies (PUT), renames (RENAME), moves (BATCH),
deletes, saves (format-v3 snapshots), shutdowns and restarts, taking crash
images in every crash mode before random steps of the medium (inside a
record's write, between the steps of a save). Each image is restored in a
new Store, which must open and hold exactly the state before the step or
after it: every acknowledged write, nothing half written, nothing garbled.
A lax policy (``fsync="never"``) must give the state after some prefix of
the steps, never less than what a save made durable.

Then a crash before every single step of a save and of a shutdown of a
typed store, and a failed publish of a typed snapshot.
"""

from __future__ import annotations

import contextlib
import math
import random
from typing import Any

import pytest

from snapkv import CorruptJournalError, MediumError, Store
from snapkv.testing import CRASH_MODES, FAULT_KINDS, FaultyMedium
from test_crash_types import State, dump

DATABASES = 3
TEXT = "abxy\x00é😀\ud800"


class Clock:
    """A wall clock that stands still: nothing expires during a run."""

    def __call__(self) -> float:
        return 1_700_000_000.0


def _text(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(TEXT) for _ in range(n))


def typed_write(rng: random.Random, store: Store) -> None:
    """One random write of a value other than a string, through the public API."""
    db = rng.randrange(DATABASES)
    kind = rng.choice("hlsz")
    key = kind + str(rng.randrange(4))
    space = store.db(db)
    size = rng.randint(100, 300) if rng.random() < 0.05 else rng.randint(1, 4)
    roll = rng.random()
    if roll < 0.05:
        space.delete(key)
    elif roll < 0.1:
        with contextlib.suppress(KeyError):
            space.rename(key, kind + str(rng.randrange(4)))
    elif roll < 0.14:
        space.move(key, (db + 1) % DATABASES)
    elif roll < 0.18:
        with contextlib.suppress(ValueError):
            space.copy_key(
                key, kind + str(rng.randrange(4)), db=rng.randrange(DATABASES), replace=True
            )
    elif roll < 0.21:
        space.expire_at(key, 1_800_000_000 + rng.randrange(1000))
    elif kind == "h":
        if rng.random() < 0.7:
            space.hashes[key].update({_text(rng, 2): _text(rng, 3) for _ in range(size)})
        else:
            space.hashes[key].delete_many([_text(rng, 2) for _ in range(3)])
    elif kind == "l":
        view = space.lists[key]
        r = rng.random()
        if r < 0.5:
            (view.extend if rng.random() < 0.5 else view.extendleft)(
                [_text(rng, 2) for _ in range(size)]
            )
        elif r < 0.7:
            with contextlib.suppress(IndexError):
                view.pop() if rng.random() < 0.5 else view.popleft()
        elif r < 0.8:
            with contextlib.suppress(KeyError):
                view.set_at(rng.randrange(4), _text(rng, 2))
        elif r < 0.9:
            view.remove(rng.choice(TEXT), rng.randint(-1, 1))
        else:
            view.trim(rng.randrange(2), rng.randrange(6))
    elif kind == "s":
        if rng.random() < 0.7:
            space.sets[key].add_many([_text(rng, 2) for _ in range(size)])
        else:
            space.sets[key].remove_many([_text(rng, 2) for _ in range(3)])
    elif rng.random() < 0.7:
        scores = [rng.choice([rng.uniform(-9, 9), math.inf, -math.inf]) for _ in range(size)]
        space.zsets[key].update({_text(rng, 2): s for s in scores})
    else:
        space.zsets[key].remove(*[_text(rng, 2) for _ in range(3)])


class Run:
    """One seeded run; ``history`` holds every state since the last recovery."""

    def __init__(self, seed: int, fsync: str) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.fsync = fsync
        self.history: list[State] = [{}]
        self.floor = 0  # index of the newest state known durable
        self.images: list[tuple[FaultyMedium, str, int]] = []
        self.capture = self.rng.choice([0.1, 0.3])
        self.checked = 0
        self.medium = FaultyMedium(
            keep=self.rng.choice([0, 1]), sector_size=self.rng.choice([16, 512])
        )
        self.medium.on_event = self._on_event
        self.store = self._open(self.medium)

    def _open(self, medium: FaultyMedium, *, repair: bool = False) -> Store:
        store = Store(
            medium,
            databases=DATABASES,
            clock=Clock(),
            journal=True,
            fsync=self.fsync,
            compact_min_bytes=1 << 40,
            sweep_interval=None,
        )
        store.restore(repair=repair)
        return store

    def _on_event(self, _number: int, _kind: str) -> None:
        if self.rng.random() < self.capture:
            mode = self.rng.choice(CRASH_MODES)
            image = self.medium.crash(mode, random.Random(self.rng.random()))
            self.images.append((image, mode, len(self.history)))

    def fail(self, message: str) -> AssertionError:
        return AssertionError(f"seed {self.seed}, fsync={self.fsync}: {message}")

    def recover(self, medium: FaultyMedium, mode: str, allowed: list[State]) -> tuple[Store, int]:
        try:
            store = self._open(medium)
        except CorruptJournalError:
            if self.fsync == "always":
                raise
            store = self._open(medium, repair=True)  # damage before the tail: lax only
        got = dump(store)
        matches = [i for i, state in enumerate(allowed) if state == got]
        if not matches:
            store.close()
            raise self.fail(f"a {mode} crash image recovered none of {len(allowed)} allowed states")
        self.checked += 1
        return store, matches[-1]

    def allowed(self, end: int, after: State | None) -> list[State]:
        if self.fsync == "always":
            states = self.history[end - 1 : end]
        else:
            states = self.history[self.floor : end]
        return states if after is None else [*states, after]

    def check_images(self, after: State | None) -> None:
        images, self.images = self.images, []
        for image, mode, end in images:
            allowed = self.allowed(end, after)
            if mode == "keep":  # a process crash keeps everything written
                allowed = [*self.history[end - 1 : end], *([] if after is None else [after])]
            store, _ = self.recover(image, mode, allowed)
            store.close()

    def restart(self, after: State | None = None) -> None:
        """Lose power now; ``after``: memory after a write whose sync failed (maybe durable)."""
        with contextlib.suppress(MediumError):
            self.store.close()  # a failed writer refuses its final sync; closed anyway
        self.check_images(None)
        mode = self.rng.choice(CRASH_MODES)
        image = self.medium.crash(mode, random.Random(self.rng.random()))
        allowed = self.allowed(len(self.history), after)
        if mode == "keep":
            allowed = [self.history[-1], *([] if after is None else [after])]
        self.medium = image
        image.on_event = self._on_event
        self.store, index = self.recover(image, mode, allowed)
        self.history, self.floor = [allowed[index]], 0
        self.images.clear()  # taken during recovery: a recovery of a recovery, not tracked

    def step(self, action: Any) -> None:
        before = self.history[-1]
        try:
            action()
        except MediumError:
            after = dump(self.store)  # a failed sync leaves the write in memory
            self.check_images(after)
            self.restart(after)
            return
        after = dump(self.store)
        self.check_images(after)
        if after != before:
            self.history.append(after)
        if self.fsync == "always":
            self.floor = len(self.history) - 1

    def durable(self, action: Any) -> None:
        """A save or a shutdown (then a restore): on success, everything so far is durable."""
        before = self.history[-1]
        try:
            action()
        except MediumError:
            self.check_images(None)
            self.restart()
            return
        self.check_images(None)
        self.floor = len(self.history) - 1
        if dump(self.store) != before:
            raise self.fail("a save or a shutdown and restore changed the data")

    def run(self, steps: int) -> None:
        for _ in range(steps):
            roll = self.rng.random()
            if roll < 0.8:
                self.step(lambda: typed_write(self.rng, self.store))
            elif roll < 0.86:
                self.durable(self.store.save)
            elif roll < 0.9:
                self.durable(lambda: (self.store.shutdown(), self.store.restore()))
            elif roll < 0.94:
                self.check_images(None)
                self.restart()
            else:
                kind = self.rng.choice(FAULT_KINDS)
                self.medium.fail(kind, after=self.rng.randint(0, 3), torn=self.rng.random() < 0.5)
        self.check_images(None)
        self.restart()
        self.store.close()


@pytest.mark.parametrize("chunk", range(2))
def test_always_keeps_every_acknowledged_typed_write_through_any_crash(chunk: int) -> None:
    checked = 0
    for seed in range(chunk * 12, chunk * 12 + 12):
        run = Run(seed, "always")
        run.run(50)
        checked += run.checked
    assert checked > 100, "too few crash images were checked: the runs proved little"


def test_a_lax_policy_recovers_a_prefix_of_typed_writes_and_never_wrong_data() -> None:
    checked = 0
    for seed in range(500, 512):
        run = Run(seed, "never")
        run.run(50)
        checked += run.checked
    assert checked > 50


def _typed_store(medium: FaultyMedium) -> Store:
    store = Store(
        medium,
        databases=DATABASES,
        clock=Clock(),
        journal=True,
        fsync="always",
        compact_min_bytes=1 << 40,
        sweep_interval=None,
    )
    store.restore()
    return store


@pytest.mark.parametrize("step", ["save", "shutdown"])
def test_a_crash_before_every_step_of_a_typed_save_or_shutdown(step: str) -> None:
    medium = FaultyMedium(keep=1, sector_size=32)
    store = _typed_store(medium)
    rng = random.Random(3)
    for _ in range(60):
        typed_write(rng, store)
    store.save()  # an older typed snapshot and journal: pruning has work to do
    for _ in range(60):
        typed_write(rng, store)
    expected = dump(store)
    assert {kind for space in expected.values() for kind, *_ in space.values()} == {
        "hash",
        "list",
        "set",
        "zset",
    }
    images: list[tuple[str, FaultyMedium]] = []

    def before_each(number: int, kind: str) -> None:
        for mode in CRASH_MODES:
            images.append((f"{mode} before event {number} ({kind})", medium.crash(mode, rng)))

    medium.on_event = before_each
    getattr(store, step)()
    medium.on_event = None
    images.append(("after", medium.crash("drop", rng)))
    assert len(images) > len(CRASH_MODES)
    for name, image in images:
        recovered = _typed_store(image)
        assert dump(recovered) == expected, name
        recovered.db(0).hashes["still"]["writable"] = "yes"
        recovered.close()


def test_a_failed_publish_of_a_typed_snapshot_keeps_memory_and_the_store_goes_on() -> None:
    medium = FaultyMedium()
    store = _typed_store(medium)
    rng = random.Random(9)
    for _ in range(40):
        typed_write(rng, store)
    expected = dump(store)
    medium.fail("publish")
    with pytest.raises(MediumError):
        store.save()
    assert dump(store) == expected
    store.db(1).sets["after"].add("failure")
    store.save()
    store.close()
    reopened = _typed_store(medium.crash("drop"))
    assert dump(reopened) == {
        **expected,
        1: {**expected.get(1, {}), "after": ("set", {"failure"}, 0)},
    }
    reopened.close()
