"""A Store with a journal: what open() makes of damaged journals, and the journal's edge cases.

Damage: a directory's journal is cut at every byte of its last records,
zero-filled, and bit-flipped; ``snapkv.open`` must give the state after a
prefix of the writes (exactly the records before the damage) or raise
``CorruptJournalError``, and ``repair=True`` must then give that prefix.
Edges: a failed fsync, journal ids set aside by repair, a write that arrives
while restore replays. Killed processes are ``test_crash_journal.py``'s;
the journal's format and writer are ``test_journal.py``'s.
"""

from __future__ import annotations

import random
import shutil
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

import snapkv
from snapkv import CorruptJournalError, CorruptSnapshotError, Store
from snapkv.errors import MediumError
from snapkv.testing import FaultyMedium
from support import State, WatchedLock, dump, wait_until

DATABASES = 4


# --------------------------------------------------------------------- edges


def _journaled(medium: FaultyMedium) -> Store:
    store = Store(medium, journal=True, fsync="always", sweep_interval=None)
    store.restore()
    return store


def test_after_a_failed_fsync_restore_resumes_and_save_keeps_memory() -> None:
    medium = FaultyMedium()
    store = _journaled(medium)
    store.set("a", "1")
    medium.fail("sync")
    with pytest.raises(MediumError):
        store.set("b", "2")  # written, not confirmed durable
    with pytest.raises(MediumError, match="refuses writes"):
        store.set("c", "3")  # the failed journal takes nothing more
    # save() moves writes to a fresh journal and publishes memory as it is.
    store.save()
    store.set("d", "4")
    assert dict(store.items()) == {"a": "1", "b": "2", "d": "4"}
    # restore() after a failure works too, and gives what is durable.
    medium.fail("sync")
    with pytest.raises(MediumError):
        store.set("e", "5")
    report = store.restore()
    # e's record reached the journal and only its fsync failed: the contract
    # says it may or may not survive, and nothing else may differ.
    durable = {"a": "1", "b": "2", "d": "4"}
    assert dict(store.items()) in (durable, {**durable, "e": "5"})
    assert report.entries == len(store)
    store.set("f", "6")
    store.restore()
    assert store.get("f") == "6"
    store.close()


def test_after_repair_sets_journals_aside_the_chain_stays_consecutive(tmp_path: Path) -> None:
    store = snapkv.open(tmp_path, journal=True)
    store.set("a", "1")
    store.save()  # journal 2 starts
    store.set("b", "2")
    store.save()  # journal 3 starts
    store.set("c", "3")
    store.close()
    # Damage journal 2 in its middle (it is not the newest): repair sets 3 aside.
    two = tmp_path / "journal-0000000000000002.skj"
    three = tmp_path / "journal-0000000000000003.skj"
    data = bytearray(two.read_bytes())
    snapshots = sorted(tmp_path.glob("snapshot-*.skv"))
    snapshots[-1].unlink()  # make recovery start from the older snapshot, before journal 2
    data[30] ^= 0xFF
    two.write_bytes(bytes(data) + three.read_bytes()[24:])
    aside = three.read_bytes()
    store = snapkv.open(tmp_path, journal=True, repair=True)
    assert store.last_restore is not None and store.last_restore.damaged
    assert (tmp_path / "journal-0000000000000003.skj.corrupt").read_bytes() == aside
    store.set("after", "repair")
    # The next rotation creates journal 3 again; the process dies before
    # the snapshot that would cover it is published.
    medium = store.medium

    def crash(_pieces: object) -> None:
        raise MediumError("the process died here")

    medium.publish = crash  # type: ignore[method-assign]
    with pytest.raises(MediumError):
        store.save()
    store.set("later", "write")
    expected = dict(store.items())
    store.close()
    assert sorted(path.name for path in tmp_path.glob("journal-*.skj")) == [
        "journal-0000000000000002.skj",
        "journal-0000000000000003.skj",
    ]
    reopened = snapkv.open(tmp_path, journal=True)
    assert dict(reopened.items()) == expected
    reopened.close()


def test_a_write_during_restore_is_kept_in_memory(tmp_path: Path) -> None:
    store = snapkv.open(tmp_path, journal=True, fsync="always")
    store.set("a", "1")
    medium = store.medium
    lock = store._lock = WatchedLock(store._lock)  # type: ignore[assignment]
    reading = threading.Event()
    written = threading.Event()
    original = medium.read_journal

    def read_journal(jid: int) -> bytes | None:
        blob = original(jid)
        reading.set()
        # Go on once the writer below waits for restore (or, wrongly, slipped in).
        wait_until(lambda: lock.waiting.is_set() or written.is_set(), what="the writer")
        assert not written.is_set(), "a write slipped in while restore replayed the journal"
        return blob

    def writer() -> None:
        assert reading.wait(10)
        store.set("late", "acked")
        written.set()

    medium.read_journal = read_journal  # type: ignore[method-assign]
    thread = threading.Thread(target=writer)
    thread.start()
    store.restore()
    thread.join(10)
    medium.read_journal = original  # type: ignore[method-assign]
    assert store.get("late") == "acked"
    store.close()
    reopened = snapkv.open(tmp_path, journal=True)
    assert reopened.get("late") == "acked"
    assert reopened.get("a") == "1"
    reopened.close()


# -------------------------------------------------------------------- damage


@dataclass
class History:
    """A directory written by a journaled store, and what it held after each write."""

    directory: Path
    journal: Path  # the newest journal
    states: list[State]  # states[i]: after the i-th write
    ends: list[int]  # ends[i]: the newest journal's size after the i-th write


def _write(rng: random.Random, store: Store) -> None:
    space = store.db(rng.randrange(DATABASES))
    key = rng.choice(["a", "b", "c", "é", "\ud800", ""])
    value = "".join(rng.choice("xyz\x00é😀") for _ in range(rng.randint(0, 6)))
    roll = rng.random()
    if roll < 0.45:
        space.set(key, value)
    elif roll < 0.55:
        space.set(key, value, ttl=3600 + rng.random())
    elif roll < 0.7:
        space.update({"b": value, rng.choice("abc"): value[::-1]})
    elif roll < 0.82:
        space.delete(key)
    elif roll < 0.88:
        space.expire(key, 7200)
    elif roll < 0.93:
        store.swap(0, rng.randrange(1, DATABASES))
    else:
        space.move(key, 3 if space.index != 3 else 0)


def _history(directory: Path, seed: int, writes: int = 30, *, keep: int = 1) -> History:
    """Write, save, write: a snapshot, its journal, and a newest journal with ``writes`` records."""
    rng = random.Random(seed)
    store = snapkv.open(directory, keep=keep, journal=True, fsync="never", databases=DATABASES)
    states: list[State] = []
    ends: list[int] = []
    for _ in range(10):
        _write(rng, store)
    store.save()
    medium = store.medium
    assert isinstance(medium, snapkv.FileMedium)
    jid = medium.journal_ids()[-1]
    journal = medium.journal_path(jid)
    # Where the records end: the open journal is preallocated past them
    # (FORMAT.md J2), so ask a handle on it, which shares the writer's end.
    end = medium.open_journal(jid)
    try:
        states.append(dump(store))
        ends.append(end.size)
        for _ in range(writes):
            _write(rng, store)
            states.append(dump(store))
            ends.append(end.size)
    finally:
        end.close()
    store.close()
    assert journal.stat().st_size == ends[-1]  # a clean close cuts the preallocated space
    return History(directory, journal, states, ends)


def _expected(history: History, size: int) -> State:
    """The state after the last write whose record ends within ``size`` bytes."""
    return history.states[max(i for i, end in enumerate(history.ends) if end <= size)]


def _open_state(directory: Path, *, repair: bool = False, fallback: bool = False) -> State:
    store = snapkv.open(
        directory, journal=True, databases=DATABASES, repair=repair, fallback=fallback
    )
    try:
        return dump(store)
    finally:
        store.close()


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    return _history(tmp_path_factory.mktemp("history") / "store", 4)


@pytest.fixture
def damaged(history: History, tmp_path: Path) -> History:
    """A private copy of the history's directory, to damage."""
    copy = tmp_path / "store"
    shutil.copytree(history.directory, copy)
    return History(copy, copy / history.journal.name, history.states, history.ends)


def test_a_journal_cut_at_every_byte_of_its_last_records_opens_to_that_prefix(
    damaged: History,
) -> None:
    data = damaged.journal.read_bytes()
    start = damaged.ends[-5]  # the last four records, every byte
    assert len(data) - start > 40
    for size in range(start, len(data) + 1):
        damaged.journal.write_bytes(data[:size])
        assert _open_state(damaged.directory) == _expected(damaged, size), size
        # Recovery cut the torn record: the journal ends at a record again.
        assert damaged.journal.stat().st_size in damaged.ends


def test_a_zero_filled_tail_is_dropped_and_nothing_before_it(damaged: History) -> None:
    data = damaged.journal.read_bytes()
    rng = random.Random(11)
    cuts = sorted(
        {*damaged.ends[-6:], *(rng.randrange(damaged.ends[-6], len(data)) for _ in range(8))}
    )
    for size in cuts:
        # The file system extended the file but never wrote the data.
        damaged.journal.write_bytes(data[:size] + bytes(len(data) - size + rng.randrange(600)))
        assert _open_state(damaged.directory) == _expected(damaged, size), size


def _first_damaged(history: History, offsets: list[int]) -> int:
    """Index of the state before the record that holds the first damaged byte."""
    first = min(offsets)
    return max(i for i, end in enumerate(history.ends) if end <= first)


def test_random_bit_flips_give_the_prefix_before_them_or_a_clear_error(damaged: History) -> None:
    data = damaged.journal.read_bytes()
    rng = random.Random(12)
    outcomes: Counter[str] = Counter()
    last = max(end for end in damaged.ends if end < len(data))  # where the last record starts
    for attempt in range(40):
        low = last if attempt % 5 == 0 else damaged.ends[0]
        offsets = [rng.randrange(low, len(data)) for _ in range(rng.choice([1, 1, 3]))]
        flipped = bytearray(data)
        for offset in offsets:
            flipped[offset] ^= 1 << rng.randrange(8)
        damaged.journal.write_bytes(flipped)
        prefix = damaged.states[_first_damaged(damaged, offsets)]
        try:
            got = _open_state(damaged.directory)
        except CorruptJournalError as exc:
            assert exc.offset >= damaged.ends[0] and exc.check, exc
            outcomes["error"] += 1
            damaged.journal.write_bytes(flipped)
            got = _open_state(damaged.directory, repair=True)
            # After repair the damage is cut away: a plain open works again.
            assert _open_state(damaged.directory) == prefix
        else:
            outcomes["tail"] += 1
        assert got == prefix, offsets
        damaged.journal.write_bytes(data)
    assert set(outcomes) == {"error", "tail"}, outcomes


def test_a_damaged_journal_header_is_refused_and_repair_sets_the_journal_aside(
    damaged: History,
) -> None:
    data = damaged.journal.read_bytes()
    for offset in (0, 9, 13, 21):
        flipped = bytearray(data)
        flipped[offset] ^= 0x10
        damaged.journal.write_bytes(flipped)
        with pytest.raises(CorruptJournalError, match=r"offset \d+, check"):
            _open_state(damaged.directory)
        # Nothing in the journal can be trusted: repair keeps the history
        # before it (the snapshot) and sets the journal aside, untouched.
        assert _open_state(damaged.directory, repair=True) == damaged.states[0]
        aside = damaged.journal.with_name(damaged.journal.name + ".corrupt")
        assert aside.read_bytes() == flipped
        aside.unlink()
        damaged.journal.write_bytes(data)


def test_a_corrupt_newest_snapshot_falls_back_with_every_write(tmp_path: Path) -> None:
    # Saved twice with keep=1: the older snapshot's journals are kept, so a
    # fallback to it replays them and loses nothing.
    history = _history(tmp_path / "store", 5)
    store = snapkv.open(history.directory, journal=True, databases=DATABASES)
    store.save()
    store.set("after", "the second save")
    expected = dump(store)
    store.close()
    newest = snapkv.FileMedium(history.directory)
    path = newest.path(newest.generations()[0])
    newest.close()
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    path.write_bytes(blob)
    with pytest.raises(CorruptSnapshotError):
        _open_state(history.directory)
    assert _open_state(history.directory, fallback=True) == expected


def _two_journals(directory: Path) -> tuple[Path, list[State], list[int]]:
    """Journals J and J+1 both needed, as a crash between creating J+1 and publishing leaves.

    Built with the store, then the newest snapshot is removed: what remains
    is the older snapshot, journal J (the writes after it) and J+1.
    """
    history = _history(directory, 6, writes=12, keep=1)
    store = snapkv.open(directory, keep=1, journal=True, fsync="never", databases=DATABASES)
    store.save()
    medium = store.medium
    assert isinstance(medium, snapkv.FileMedium)
    older = medium.journal_path(medium.journal_ids()[-2])
    states = list(history.states)
    rng = random.Random(7)
    for _ in range(6):
        _write(rng, store)
        states.append(dump(store))
    store.close()
    files = snapkv.FileMedium(directory)
    files.path(files.generations()[0]).unlink()
    files.close()
    return older, states, history.ends


def test_repair_of_an_older_journal_gives_a_prefix(tmp_path: Path) -> None:
    older, states, ends = _two_journals(tmp_path / "store")
    assert _open_state(tmp_path / "store") == states[-1]
    data = bytearray(older.read_bytes())
    # Damage a record in the middle of journal J (write i's record).
    i = next(i for i in range(5, len(ends)) if ends[i] > ends[i - 1])
    assert ends[i] < len(data)
    data[ends[i - 1] + 2] ^= 0x40
    older.write_bytes(data)
    with pytest.raises(CorruptJournalError, match="a valid record follows"):
        _open_state(tmp_path / "store")
    # Replaying journal J+1 after the hole would not be a prefix: it is set aside.
    assert _open_state(tmp_path / "store", repair=True) == states[i - 1]
    assert _open_state(tmp_path / "store") == states[i - 1], "repair must leave it opening"
    assert [p.name for p in (tmp_path / "store").glob("*.corrupt*")], "nothing set aside"


def test_an_unreadable_journal_is_refused_and_repair_stops_history_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = snapkv.open(tmp_path, journal=True)
    store.set("a", "1")
    store.save()  # journal 2 starts
    store.set("b", "2")
    snapshot_then_two = dump(store)
    store.save()  # journal 3 starts, snapshot 2 covers journal 2
    store.set("c", "3")
    store.close()
    # Fall back to the older snapshot, so journals 2 and 3 are both replayed.
    sorted(tmp_path.glob("snapshot-*.skv"))[-1].unlink()
    read_journal = snapkv.FileMedium.read_journal

    def failing(medium: snapkv.FileMedium, jid: int) -> bytes | None:
        if jid == 3:
            raise MediumError(f"cannot read journal {medium.journal_path(jid)}: EIO")
        return read_journal(medium, jid)

    monkeypatch.setattr(snapkv.FileMedium, "read_journal", failing)
    with pytest.raises(MediumError, match=r"cannot read journal .*journal-0000000000000003"):
        snapkv.open(tmp_path, journal=True)
    store = snapkv.open(tmp_path, journal=True, repair=True)
    report = store.last_restore
    assert report is not None and report.journals == (2,)
    assert any("history stops here: journals [3]" in line for line in report.journal_dropped)
    assert dump(store) == snapshot_then_two
    store.close()
    assert (tmp_path / "journal-0000000000000003.skj.corrupt").exists()
