"""The Store's use of its journal at the edges: failures, repair, concurrent restore.

Each test pins a behaviour that a review of the integration found wrong once.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import snapkv
from snapkv import Store
from snapkv.errors import MediumError
from snapkv.testing import FaultyMedium


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
    assert report.entries >= 3
    assert {"a", "b", "d"} <= set(store.keys())
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
    reading = threading.Event()
    written = threading.Event()
    original = medium.read_journal

    def read_journal(jid: int) -> bytes | None:
        blob = original(jid)
        reading.set()
        written.wait(0.5)  # the writer below waits for restore instead of slipping in
        return blob

    def writer() -> None:
        reading.wait(10)
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
