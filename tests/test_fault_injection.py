"""Simulated power loss with snapkv.testing.FaultyMedium: acknowledged writes survive it.

FaultyMedium remembers what was synced and, on ``crash()``, keeps, drops,
zeroes or garbles every unsynced write sector by sector (SQLite's crash VFS)
and may undo directory changes not yet synced (LevelDB's fault injection
test). Seeded runs drive a journaled Store through random writes in every
keyspace, saves, shutdowns, injected failures and crashes, taking crash
images before random steps of the medium (inside a write, between the
steps of a save or a shutdown), then restore each image in a new Store:

* ``fsync="always"``: the store opens, and holds exactly the acknowledged
  writes, plus possibly the one write in flight. Nothing else, nothing
  garbled.
* ``fsync="never"`` / ``"everysec"``: the store holds the state after SOME
  prefix of the writes, never less than what a save, shutdown or sync made
  durable; damage a power loss left before the journal's tail may need
  ``repair=True``, which then gives such a prefix.

The live Store is the oracle: after every step its whole state (every
keyspace, values and expiry times) is recorded, so "a prefix of the
history" is checked exactly. The model of what expiry means is the Store's
own (tested elsewhere); what is tested here is that recovery reproduces it.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pytest

from snapkv import CorruptJournalError, MediumError, Store, StoreShutDownError
from snapkv.media import JournalFile, Medium
from snapkv.testing import CRASH_MODES, FAULT_KINDS, FaultyMedium, check_medium
from support import State, dump

DATABASES = 4
BASE_SECONDS = 1_700_000_000
#: Clock steps of 1/8 s: every clock reading times 1000 is an exact integer,
#: so "expired" (at <= now) means the same to the Store and to this test.
TICK = 0.125


class Clock:
    """An injected wall clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.ticks = 0

    def __call__(self) -> float:
        return BASE_SECONDS + self.ticks * TICK

    @property
    def ms(self) -> int:
        return BASE_SECONDS * 1000 + self.ticks * 125


def visible(state: State, now_ms: int) -> State:
    """``state`` as seen at ``now_ms``: keys that expired since are gone."""
    seen: State = {}
    for number, space in state.items():
        live = {key: kept for key, kept in space.items() if not 0 < kept[1] <= now_ms}
        if live:
            seen[number] = live
    return seen


def difference(got: State, want: State) -> str:
    """A short account of how ``got`` differs from ``want``, for failure messages."""
    lines = []
    for number in sorted(set(got) | set(want)):
        mine, theirs = got.get(number, {}), want.get(number, {})
        for key in sorted(set(mine) | set(theirs)):
            if mine.get(key) != theirs.get(key):
                show = [None if k is None else (k[0][:20], k[1]) for k in (mine.get(key),)]
                lines.append(
                    f"db {number} key {key[:20]!r}: got {show[0]}, want "
                    f"{None if key not in theirs else (theirs[key][0][:20], theirs[key][1])}"
                )
    return "; ".join(lines[:8]) + (f"; ... {len(lines) - 8} more" if len(lines) > 8 else "")


# ------------------------------------------------------------------ the writes

KEYS = ["a", "b", "c", "é", "\ud800", "", "key:with|separators", "k" * 70]


def _value(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.1:
        return ""
    if roll < 0.2:
        # Large values span several sectors: a torn write can land mid-record.
        return "".join(rng.choice("xyzé😀\x00") for _ in range(rng.randint(300, 1500)))
    return "".join(rng.choice("abcdefé😀\ud800\x00|:") for _ in range(rng.randint(1, 20)))


def _other(rng: random.Random, db: int) -> int:
    return rng.choice([n for n in range(DATABASES) if n != db])


def _write(
    rng: random.Random, store: Store, clock: Clock, announce: Callable[[str], None] | None = None
) -> None:
    """One random write (or a no-op write, like deleting a missing key).

    ``announce`` hears the write's name before it starts.
    """
    db = rng.randrange(DATABASES)
    space = store.db(db)
    key = rng.choice(KEYS)
    kind = rng.choices(
        [
            "set",
            "set_ttl",
            "set_keep_ttl",
            "update",
            "delete",
            "pop",
            "setdefault",
            "expire",
            "expire_at",
            "persist",
            "rename",
            "move",
            "clear",
            "flush_all",
            "swap",
        ],
        weights=[30, 10, 3, 10, 10, 3, 2, 6, 3, 3, 3, 3, 2, 1, 2],
    )[0]
    if announce is not None:
        announce(kind)
    if kind == "set":
        space.set(key, _value(rng))
    elif kind == "set_ttl":
        space.set(key, _value(rng), ttl=rng.choice([0.125, 0.5, 1.0, 2.5, 30.0]))
    elif kind == "set_keep_ttl":
        space.set(key, _value(rng), keep_ttl=True)
    elif kind == "update":
        space.update({rng.choice(KEYS): _value(rng) for _ in range(rng.randint(1, 5))})
    elif kind == "delete":
        space.delete(key)
    elif kind == "pop":
        space.pop(key, None)
    elif kind == "setdefault":
        space.setdefault(key, _value(rng))
    elif kind == "expire":
        space.expire(key, rng.choice([-1.0, 0.0, 0.25, 1.0, 20.0]))
    elif kind == "expire_at":
        space.expire_at(key, clock() + rng.choice([-5.0, 0.5, 10.0]))
    elif kind == "persist":
        space.persist(key)
    elif kind == "rename":
        with contextlib.suppress(KeyError):  # a missing key: nothing is written
            space.rename(key, rng.choice(KEYS))
    elif kind == "move":
        space.move(key, _other(rng, db))
    elif kind == "clear":
        space.clear()
    elif kind == "flush_all":
        store.flush_all()
    else:
        store.swap(db, _other(rng, db))


# ------------------------------------------------------------------ the runner


class _RolledBack(Exception):
    """Raised inside a transaction to roll it back."""


@dataclass
class Image:
    """A crash image taken before some step of the medium, and what it may hold."""

    medium: FaultyMedium
    mode: str
    step: str
    floor: int  # history index: everything up to here was durable
    end: int  # history length when the image was taken


class Run:
    """One seeded run: random writes, saves, shutdowns, failures and crashes, checked as it goes.

    ``history`` holds every state the store went through since the last
    recovery; ``floor`` is the index of the newest state known durable.
    ``strict`` (``fsync="always"``) demands the newest acknowledged state.
    """

    def __init__(self, seed: int, fsync: str, *, strict: bool | None = None) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.fsync = fsync
        self.strict = fsync == "always" if strict is None else strict
        self.clock = Clock()
        self.history: list[State] = [{}]
        self.floor = 0
        self.images: list[Image] = []
        self.step = "start"
        self.capture = self.rng.choice([0.05, 0.2, 0.5])
        self.checked = 0
        self.recovered_from_damage = 0
        medium = FaultyMedium(
            keep=self.rng.choice([0, 1, 2]), sector_size=self.rng.choice([16, 64, 512])
        )
        self.medium = medium
        self.store = self._store(medium)
        self.store.restore()

    # -- plumbing

    def _store(self, medium: FaultyMedium) -> Store:
        medium.on_event = self._on_event
        return Store(
            medium,
            databases=DATABASES,
            clock=self.clock,
            journal=True,
            fsync=self.fsync,
            compact_min_bytes=1 << 40,  # compaction is a save in a thread: tested by real kills
            sweep_interval=None,
        )

    def _on_event(self, _number: int, _kind: str) -> None:
        if self.rng.random() < self.capture:
            mode = self.rng.choice(CRASH_MODES)
            image = self.medium.crash(mode, random.Random(self.rng.random()))
            self.images.append(Image(image, mode, self.step, self.floor, len(self.history)))

    def announce(self, step: str) -> None:
        self.step = step

    def fail(self, message: str) -> AssertionError:
        return AssertionError(f"seed {self.seed}, fsync={self.fsync}: {message}")

    # -- checking a crash image

    def recover(
        self, medium: FaultyMedium, mode: str, candidates: list[State]
    ) -> tuple[Store, int]:
        """Restore ``medium`` in a new Store; its state must be one of ``candidates``.

        Returns the store and the index of the candidate it matched (the
        newest one, when several are equal).
        """
        store = Store(
            medium,
            databases=DATABASES,
            clock=self.clock,
            journal=True,
            fsync=self.fsync,
            compact_min_bytes=1 << 40,
            sweep_interval=None,
        )
        try:
            store.restore()
        except CorruptJournalError as exc:
            if self.strict:
                raise self.fail(f"{mode} crash at {self.step}: store does not open: {exc}") from exc
            # Under a lax policy a power loss can damage unsynced records
            # before the tail (and a "keep" image taken while such a recovery
            # ran still holds that damage): repair must then give one of the
            # candidates.
            store.restore(repair=True)
            self.recovered_from_damage += 1
        now = self.clock.ms
        got = visible(dump(store), now)
        matches = [i for i, state in enumerate(candidates) if visible(state, now) == got]
        if not matches:
            raise self.fail(
                f"{mode} crash at {self.step}: recovered state is none of the "
                f"{len(candidates)} allowed states; against the newest: "
                f"{difference(got, visible(candidates[-1], now))}"
            )
        self.checked += 1
        return store, matches[-1]

    def candidates(self, floor: int, end: int, after: State | None) -> list[State]:
        """The states a crash image may hold: strict keeps only the newest acknowledged."""
        allowed = self.history[end - 1 : end] if self.strict else self.history[floor:end]
        return allowed if after is None else [*allowed, after]

    def check_images(self, after: State | None) -> None:
        """Restore every image taken during the last step; ``after``: the step's result."""
        images, self.images = self.images, []
        for image in images:
            if image.mode == "keep" and not self.strict:
                # A process crash keeps everything written: the strict check.
                allowed = [*self.history[image.end - 1 : image.end]]
                allowed += [] if after is None else [after]
            else:
                allowed = self.candidates(image.floor, image.end, after)
            self.step = image.step
            store, _ = self.recover(image.medium, image.mode, allowed)
            store.close()

    def restart(self, after: State | None = None) -> None:
        """Lose power now; continue on what the disk holds."""
        cause = self.step  # first in every step name: what was in flight
        self.step = f"{cause}, then a crash"
        with contextlib.suppress(MediumError):
            self.store.close()  # a failed writer refuses its final sync; closed anyway
        self.check_images(None)  # crashes inside close()
        mode = self.rng.choice(CRASH_MODES)
        image = self.medium.crash(mode, random.Random(self.rng.random()))
        allowed = self.candidates(self.floor, len(self.history), after)
        if mode == "keep" and not self.strict:
            allowed = [self.history[-1]] if after is None else [self.history[-1], after]
        self.medium = image
        image.on_event = self._on_event
        self.step = f"{cause}, then recovery after a {mode} crash"
        self.store, index = self.recover(image, mode, allowed)
        self.history = [allowed[index]]
        self.floor = 0
        for taken in self.images:  # crashes during the recovery: it starts over
            taken.floor, taken.end = 0, 1
        self.check_images(None)

    def settle(self) -> None:
        """After a successful step: with ``always`` everything acknowledged is durable."""
        if self.fsync == "always":
            self.floor = len(self.history) - 1

    # -- the steps

    def write(self) -> None:
        before = self.history[-1]
        self.clock.ticks += self.rng.choice([0, 0, 1, 2, 8])
        try:
            _write(self.rng, self.store, self.clock, self.announce)
        except MediumError:
            after = dump(self.store)  # a failed sync leaves the write in memory
            self.check_images(after)
            self.restart(after)
            return
        after = dump(self.store)
        self.check_images(after)
        if after != before:
            self.history.append(after)
        self.settle()

    def transaction(self) -> None:
        """Several random writes as one transaction; a quarter of them roll back.

        The history gains only the state after the whole transaction: a crash
        image holding any state in between fails the check.
        """
        before = self.history[-1]
        self.clock.ticks += self.rng.choice([0, 1, 8])
        self.step = "transaction"
        abort = self.rng.random() < 0.25
        try:
            with self.store.transaction():
                for _ in range(self.rng.randint(2, 8)):
                    _write(self.rng, self.store, self.clock)
                if abort:
                    raise _RolledBack
        except _RolledBack:
            self.check_images(None)
            if visible(dump(self.store), self.clock.ms) != visible(before, self.clock.ms):
                raise self.fail("a rolled-back transaction changed memory") from None
            return
        except MediumError:
            after = dump(self.store)  # refused: rolled back; a failed fsync: kept in memory
            self.check_images(after)
            self.restart(after)
            return
        after = dump(self.store)
        self.check_images(after)
        if after != before:
            self.history.append(after)
        self.settle()

    def save(self, kind: str) -> None:
        before = self.history[-1]
        self.step = kind
        try:
            if kind == "save":
                self.store.save()
            elif kind == "sync":
                self.store.sync()
            else:
                self.store.shutdown()
        except MediumError:
            self.check_images(None)
            if dump(self.store) != visible(before, self.clock.ms):
                raise self.fail(f"a failed {kind} changed memory") from None
            # Writing on after a failed publish or journal creation must work;
            # half the time, restart instead.
            if self.rng.random() < 0.5:
                self.restart()
            return
        self.check_images(None)
        self.floor = len(self.history) - 1
        if kind != "shutdown":
            if dump(self.store) != visible(before, self.clock.ms):
                raise self.fail(f"{kind} changed the data")
            return
        if dump(self.store) != {}:
            raise self.fail("shutdown left data in memory")
        with pytest.raises(StoreShutDownError):
            self.store.set("refused", "after shutdown")
        self.step = "restore after shutdown"
        try:
            self.store.restore()
        except MediumError:
            self.check_images(None)
            self.restart()
            return
        self.check_images(None)
        if dump(self.store) != visible(before, self.clock.ms):
            raise self.fail("restore after shutdown did not give back the data")

    def inject(self) -> None:
        self.medium.fail(
            self.rng.choice(FAULT_KINDS),
            after=self.rng.randint(0, 3),
            torn=self.rng.random() < 0.5,
        )

    def run(self, steps: int) -> None:
        for _ in range(steps):
            roll = self.rng.random()
            if roll < 0.70:
                self.write()
            elif roll < 0.75:
                self.transaction()
            elif roll < 0.80:
                self.save("save")
            elif roll < 0.85:
                self.save("shutdown")
            elif roll < 0.87:
                self.save("sync")
            elif roll < 0.91:
                self.check_images(None)
                self.step = "idle"
                self.restart()
            else:
                self.inject()
        self.check_images(None)
        self.restart()
        self.store.close()


# ------------------------------------------------------------------ the runs


@pytest.mark.parametrize("chunk", range(4))
def test_always_keeps_every_acknowledged_write_through_any_crash(chunk: int) -> None:
    checked = 0
    for seed in range(chunk * 40, chunk * 40 + 40):
        run = Run(seed, "always")
        run.run(60)
        checked += run.checked
    assert checked > 400, "too few crash images were checked: the runs proved little"


@pytest.mark.parametrize("fsync", ["never", "everysec"])
def test_lax_policies_recover_a_prefix_and_never_wrong_data(fsync: str) -> None:
    checked = damaged = 0
    for seed in range(1000, 1060):
        run = Run(seed, fsync)
        run.run(60)
        checked += run.checked
        damaged += run.recovered_from_damage
    assert checked > 300, "too few crash images were checked: the runs proved little"
    assert damaged > 0, "no run needed repair: the crashes never damaged the journal"


def test_the_runs_catch_a_policy_that_loses_acknowledged_writes() -> None:
    # The same runs, demanding "always"'s promise from "never": some power
    # loss must drop an acknowledged write, and the checks must say so.
    with pytest.raises(AssertionError, match=r"allowed states|does not open"):
        for seed in range(50):
            Run(seed, "never", strict=True).run(60)


# ---------------------------------------- a crash at each step of save and shutdown


def _journaled_store(medium: Medium, clock: Clock) -> Store:
    store = Store(
        medium,
        databases=DATABASES,
        clock=clock,
        journal=True,
        fsync="always",
        compact_min_bytes=1 << 40,
        sweep_interval=None,
    )
    store.restore()
    return store


def _populate(store: Store, clock: Clock, seed: int, writes: int) -> None:
    rng = random.Random(seed)
    for _ in range(writes):
        clock.ticks += rng.choice([0, 1])
        _write(rng, store, clock)


@pytest.mark.parametrize("keep", [0, 1])
@pytest.mark.parametrize("step", ["save", "shutdown", "restore"])
def test_a_crash_before_every_step_of_save_shutdown_and_restore(step: str, keep: int) -> None:
    """Every instant of the rotation (sync J, create J+1, publish, prune) is safe."""
    clock = Clock()
    medium = FaultyMedium(keep=keep, sector_size=32)
    store = _journaled_store(medium, clock)
    _populate(store, clock, 7, 40)
    store.save()  # an older snapshot and journal, so pruning has work to do
    _populate(store, clock, 8, 40)
    expected = dump(store)
    if step == "restore":
        # Leave half a record behind, so that recovery has a tail to cut.
        medium.fail("write", torn=True)
        with pytest.raises(MediumError):
            store.set("torn", "x" * 300)
        # A crash now, not a close: closing would cut the torn record itself.
        medium = medium.crash("keep")
        store = Store(medium, databases=DATABASES, clock=clock, journal=True, fsync="always")
    images: list[tuple[str, FaultyMedium]] = []
    rng = random.Random(keep)

    def before_each(number: int, kind: str) -> None:
        for mode in CRASH_MODES:
            images.append((f"{mode} before event {number} ({kind})", medium.crash(mode, rng)))

    medium.on_event = before_each
    getattr(store, step)()
    medium.on_event = None
    images.append(("after", medium.crash("drop", rng)))
    # The journal was already synced, so the rotation is: create J+1, publish, prune.
    steps = ["open", "truncate", "open"] if step == "restore" else ["create", "publish", "remove"]
    assert [name.split("(")[1][:-1] for name, _ in images[:-1:6]] == steps
    for name, image in images:
        recovered = _journaled_store(image, clock)
        assert dump(recovered) == expected, name
        recovered.set("still", "writable")  # and the recovered store takes writes
        recovered.close()


# ------------------------------------------------------- injected failures, one by one


def test_a_failed_publish_keeps_memory_and_the_store_goes_on() -> None:
    clock = Clock()
    medium = FaultyMedium()
    store = _journaled_store(medium, clock)
    _populate(store, clock, 1, 30)
    before = dump(store)
    medium.fail("publish", torn=True)  # visible, but the directory sync failed
    with pytest.raises(MediumError, match="not confirmed durable"):
        store.shutdown()
    assert dump(store) == before, "a failed shutdown must leave memory intact"
    store.set("after", "the failure")
    expected = dump(store)
    for mode in CRASH_MODES:
        recovered = _journaled_store(medium.crash(mode, random.Random(3)), clock)
        assert dump(recovered) == expected, mode
        recovered.close()


def test_a_failed_journal_creation_then_a_crash_mid_write_still_opens() -> None:
    clock = Clock()
    medium = FaultyMedium()
    store = _journaled_store(medium, clock)
    store.set("a", "1")
    medium.fail("create", torn=True)
    with pytest.raises(MediumError, match="not confirmed durable"):
        store.save()
    assert medium.journal_ids() == [1, 2]
    store.set("b", "2")  # acknowledged: in journal 1
    medium.fail("write", torn=True)
    with pytest.raises(MediumError):
        store.set("c", "x" * 100)  # in flight: half written when the power went
    recovered = _journaled_store(medium.crash("keep"), clock)
    assert dump(recovered) == {0: {"a": ("1", 0), "b": ("2", 0)}}


def test_a_garbled_start_of_a_batch_in_flight_is_a_garbage_tail() -> None:
    clock = Clock()
    medium = FaultyMedium(sector_size=16)
    store = _journaled_store(medium, clock)
    store.set("a", "1")
    medium.fail("sync")
    with pytest.raises(MediumError):
        store.update({f"key-{i}": "v" * 40 for i in range(4)})  # written, never synced
    synced = medium.synced_size(1)
    data = medium.read_journal(1)
    assert data is not None
    # One possible power loss: the sector holding the BATCH's frame header is
    # garbage, the sectors after it reached the disk intact.
    garbled = data[:synced] + bytes(b ^ 0x5A for b in data[synced : synced + 16])
    image = medium.crash("keep")
    image.create_journal(1, garbled + data[synced + 16 :]).close()
    recovered = _journaled_store(image, clock)
    assert dump(recovered) == {0: {"a": ("1", 0)}}


def test_save_between_shutdown_and_restore_loses_nothing() -> None:
    # Publishing the emptied memory would replace the shutdown's snapshot; a
    # compaction started before a shutdown runs its save() right after it.
    clock = Clock()
    medium = FaultyMedium()
    store = _journaled_store(medium, clock)
    store.set("a", "1")
    store.shutdown()
    with contextlib.suppress(StoreShutDownError):  # refusing is fine too
        store.save()
    store.restore()
    assert dump(store) == {0: {"a": ("1", 0)}}


def test_a_failed_journal_write_leaves_memory_unchanged_and_refuses_later_writes() -> None:
    clock = Clock()
    medium = FaultyMedium()
    store = _journaled_store(medium, clock)
    store.set("kept", "1")
    medium.fail("write", torn=True)
    with pytest.raises(MediumError, match="torn write"):
        store.set("refused", "x" * 100)
    assert dump(store) == {0: {"kept": ("1", 0)}}
    with pytest.raises(MediumError, match="refuses writes after an earlier failure"):
        store.set("later", "2")
    for mode in CRASH_MODES:
        recovered = _journaled_store(medium.crash(mode, random.Random(5)), clock)
        assert dump(recovered) == {0: {"kept": ("1", 0)}}, mode
        recovered.close()


def test_a_failed_fsync_is_reported_and_the_write_may_or_may_not_survive() -> None:
    clock = Clock()
    medium = FaultyMedium()
    store = _journaled_store(medium, clock)
    store.set("kept", "1")
    medium.fail("sync")
    with pytest.raises(MediumError, match="injected failure: sync"):
        store.set("unsure", "2")
    outcomes = set()
    for mode in CRASH_MODES:
        for seed in range(10):
            recovered = _journaled_store(medium.crash(mode, random.Random(seed)), clock)
            state = dump(recovered)
            assert state[0]["kept"] == ("1", 0)
            assert set(state[0]) <= {"kept", "unsure"}
            outcomes.add("unsure" in state[0])
            recovered.close()
    assert outcomes == {True, False}


# ------------------------------------------------------------ the medium itself


def test_faulty_medium_keeps_the_medium_contract() -> None:
    check_medium(FaultyMedium)
    check_medium(lambda: FaultyMedium(keep=2, sector_size=1))


def _journal_with(medium: FaultyMedium, synced: bytes, unsynced: bytes) -> None:
    file = medium.create_journal(1, synced[:4])
    file.write(synced[4:])
    file.sync()
    file.write(unsynced)


def test_crash_modes_do_what_they_say_to_unsynced_bytes() -> None:
    synced, unsynced = b"head" + b"S" * 60, b"U" * 200
    medium = FaultyMedium(sector_size=16)
    _journal_with(medium, synced, unsynced)
    assert medium.synced_size(1) == 64
    rng = random.Random(1)

    def after(mode: str) -> bytes:
        data = medium.crash(mode, rng).read_journal(1)
        assert data is not None
        assert data[:64] == synced, f"{mode} damaged synced bytes"
        return data[64:]

    assert after("keep") == unsynced
    assert after("drop") == b""
    assert after("zero") == bytes(200)
    garbage = after("garbage")
    assert len(garbage) == 200 and garbage != unsynced
    torn = {after("torn") for _ in range(50)}
    assert all(unsynced.startswith(t) for t in torn) and len(torn) > 10
    mixed = [after("mixed") for _ in range(200)]
    sectors = {m[i : i + 16] for m in mixed for i in range(0, len(m) - 16, 16)}
    assert {b"U" * 16, bytes(16)} <= sectors and len(sectors) > 10, "mixed must vary by sector"
    assert len({len(m) for m in mixed}) > 5
    # A new medium from a crash holds everything durably, and reboots again unchanged.
    rebooted = medium.crash("keep").crash("drop")
    assert rebooted.read_journal(1) == synced + unsynced


def test_directory_changes_not_yet_synced_may_be_undone() -> None:
    medium = FaultyMedium(keep=0)
    medium.publish([b"one"])
    medium.create_journal(1, b"j1").close()
    medium.publish([b"two"])  # prunes "one", without a directory sync
    medium.remove_journals(2)  # not synced either
    assert medium.generations() == ["2"] and medium.journal_ids() == []
    kept = medium.crash("keep")
    assert kept.generations() == ["2"] and kept.journal_ids() == []
    dropped = medium.crash("drop")
    assert dropped.generations() == ["2", "1"] and dropped.journal_ids() == [1]
    # A torn create or publish is visible, but a power loss may take it away.
    medium.fail("create", torn=True)
    with pytest.raises(MediumError, match="not confirmed durable"):
        medium.create_journal(2, b"j2")
    assert medium.journal_ids() == [2]
    assert medium.crash("drop").journal_ids() == [1]
    medium.fail("publish", torn=True)
    with pytest.raises(MediumError):
        medium.publish([b"three"])
    assert medium.read() == b"three"
    assert medium.crash("drop").read() == b"two"
    # The next directory sync makes everything before it durable.
    medium.publish([b"four"])
    assert medium.crash("drop").journal_ids() == [2]
    assert medium.crash("keep").generations() == ["4"]
    assert medium.crash("drop").generations() == ["4", "3", "2"], "pruned after the sync"


def test_faults_fire_on_the_chosen_operation_and_the_hook_sees_every_change() -> None:
    medium = FaultyMedium()
    seen: list[tuple[int, str]] = []
    medium.on_event = lambda number, kind: seen.append((number, kind))
    file = medium.create_journal(1, b"h")
    medium.fail("write", after=2)
    file.write(b"1")
    file.write(b"2")
    with pytest.raises(MediumError, match="injected failure: write journal 1"):
        file.write(b"3")
    file.write(b"4")  # a fault fires once
    file.sync()
    assert medium.read_journal(1) == b"h124"
    assert [kind for _, kind in seen] == ["create", "write", "write", "write", "write", "sync"]
    assert [number for number, _ in seen] == list(range(1, 7)) and medium.events == 6
    assert medium.fired == ["write journal 1 (event 4)"]
    with pytest.raises(ValueError, match="kind must be one of"):
        medium.fail("explode")
    with pytest.raises(ValueError, match="mode must be one of"):
        medium.crash("meteor")
    medium.close()
    with pytest.raises(MediumError, match="closed"):
        file.write(b"5")
    with pytest.raises(MediumError, match="closed"):
        medium.publish([b"x"])
    assert medium.crash("keep").read_journal(1) == b"h124"


# --------------------------------------------- check_medium's journal checks can fail


class RemovesEverything(FaultyMedium):
    def remove_journals(self, below: int) -> None:
        super().remove_journals(10**15)


class KeepsLeftovers(FaultyMedium):
    def create_journal(self, jid: int, header: bytes) -> JournalFile:
        if jid in self.journal_ids():
            return self.open_journal(jid)
        return super().create_journal(jid, header)


class OpensAtTheStart(FaultyMedium):
    def open_journal(self, jid: int) -> JournalFile:
        data = self.read_journal(jid) or b""
        journal = super().open_journal(jid)
        journal.size -= len(data)
        return journal


class UnsortedIds(FaultyMedium):
    def journal_ids(self) -> list[int]:
        return super().journal_ids()[::-1]


class SilentlyJournalless(FaultyMedium):
    """Says it holds no journal, but accepts one."""

    def journal_ids(self) -> list[int]:
        return []


class SnapshotsOnly(Medium):
    """A medium that keeps the defaults: it cannot hold a journal, and says so."""

    def __init__(self) -> None:
        self._inner = FaultyMedium()

    def publish(self, pieces: Iterable[bytes]) -> None:
        self._inner.publish(pieces)

    def generations(self) -> list[str]:
        return self._inner.generations()

    def read(self, generation: str | None = None) -> bytes | None:
        return self._inner.read(generation)

    def quarantine(self, generation: str) -> str:
        return self._inner.quarantine(generation)


BROKEN: dict[str, tuple[Callable[[], Medium], str]] = {
    "removes-everything": (RemovesEverything, "remove_journals must remove exactly"),
    "keeps-leftovers": (KeepsLeftovers, "create_journal must replace a leftover"),
    "opens-at-the-start": (OpensAtTheStart, "open_journal must open at the journal's end"),
    "unsorted-ids": (UnsortedIds, "journal_ids must list every id, ascending"),
    "silently-journalless": (SilentlyJournalless, "journal_ids must list a created journal"),
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_check_medium_catches_broken_journals(name: str) -> None:
    make, message = BROKEN[name]
    with pytest.raises(AssertionError, match=message):
        check_medium(make)


def test_a_medium_without_journals_passes_by_saying_so() -> None:
    check_medium(SnapshotsOnly)
