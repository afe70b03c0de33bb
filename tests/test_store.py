"""Store: the mapping, persistence, the context manager, data types, misuse, corrupt snapshots.

Grouped by concern, like CPython's test_dbm_sqlite3. Tests that take the
``medium_factory`` fixture run once per medium (memory and file); the rest
are about the directory a FileMedium owns.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import snapkv
from snapkv import (
    CorruptSnapshotError,
    FileMedium,
    Medium,
    MediumError,
    MemoryMedium,
    RestoreReport,
    Store,
    StoreClosedError,
    StoreLockedError,
    codec,
)

if TYPE_CHECKING:
    from conftest import MediumFactory


def flip_bit(data: bytes, offset: int, bit: int = 0) -> bytes:
    """``data`` with one bit of the byte at ``offset`` inverted."""
    damaged = bytearray(data)
    damaged[offset] ^= 1 << bit
    return bytes(damaged)


def snapshot_files(directory: Path) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.startswith("snapshot-"))


def temp_files(directory: Path) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.startswith(".tmp-"))


def newest(medium: Medium) -> dict[str, str]:
    """The mapping the medium's newest snapshot holds."""
    blob = medium.read()
    assert blob is not None
    return codec.decode(blob)


@pytest.fixture
def store(medium_factory: MediumFactory) -> Iterator[Store]:
    s = Store(medium_factory())
    yield s
    s.close()


# ---------------------------------------------------------------- read/write


class TestReadWrite:
    def test_get_missing_returns_none_or_default(self, store: Store) -> None:
        assert store.get("missing") is None
        assert store.get("missing", "fallback") == "fallback"
        assert store.get("missing", default="fallback") == "fallback"

    def test_set_then_get(self, store: Store) -> None:
        store.set("a", "1")
        assert store.get("a") == "1"
        assert store.get("a", "fallback") == "1"

    def test_set_overwrites(self, store: Store) -> None:
        store.set("a", "1")
        store.set("a", "2")
        assert store.get("a") == "2"
        assert len(store) == 1

    def test_delete_reports_whether_the_key_was_there(self, store: Store) -> None:
        store.set("a", "1")
        assert store.delete("a") is True
        assert store.delete("a") is False
        assert store.delete("never") is False
        assert store.get("a") is None

    def test_is_a_mutable_mapping(self, store: Store) -> None:
        assert isinstance(store, MutableMapping)
        store["a"] = "1"
        assert store["a"] == "1"
        del store["a"]
        assert "a" not in store

    def test_missing_item_raises_key_error(self, store: Store) -> None:
        with pytest.raises(KeyError):
            store["missing"]
        with pytest.raises(KeyError):
            del store["missing"]

    def test_len_contains_iteration_items(self, store: Store) -> None:
        data = {"a": "1", "b": "2", "c": "3"}
        for key, value in data.items():
            store[key] = value
        assert len(store) == 3
        assert "b" in store
        assert "z" not in store
        assert sorted(store) == ["a", "b", "c"]
        assert dict(store.items()) == data
        assert sorted(store.keys()) == ["a", "b", "c"]
        assert sorted(store.values()) == ["1", "2", "3"]
        assert store == data

    def test_mapping_mixins(self, store: Store) -> None:
        store.update({"a": "1", "b": "2"}, c="3")
        assert store.setdefault("a", "other") == "1"
        assert store.pop("b") == "2"
        assert store.pop("b", "gone") == "gone"
        assert dict(store.items()) == {"a": "1", "c": "3"}

    def test_iteration_is_a_point_in_time_copy(self, store: Store) -> None:
        for i in range(10):
            store[f"k{i}"] = "v"
        seen = []
        for key in store:  # mutating while iterating must not raise
            seen.append(key)
            store.delete(key)
            store[key + "-new"] = "v"
        assert sorted(seen) == sorted(f"k{i}" for i in range(10))
        assert len(store) == 10

    def test_clear_empties_memory_but_not_the_medium(self, store: Store) -> None:
        store["a"] = "1"
        store.save()
        store["b"] = "2"
        store.clear()
        assert len(store) == 0
        store.restore()
        assert dict(store.items()) == {"a": "1"}

    def test_get_of_a_non_str_key_is_missing(self, store: Store) -> None:
        store["1"] = "one"
        assert store.get(1) is None  # type: ignore[arg-type]
        assert store.get(b"1", "d") == "d"  # type: ignore[arg-type]
        assert 1 not in store  # type: ignore[comparison-overlap]


# --------------------------------------------------------------- persistence


class VanishingNewest(MemoryMedium):
    """The newest generation is listed but gone when read (pruned meanwhile)."""

    def read(self, generation: str | None = None) -> bytes | None:
        if generation is not None and generation == self.generations()[0]:
            return None
        return super().read(generation)


class CannotQuarantine(MemoryMedium):
    """A read-only medium: setting a corrupt generation aside fails."""

    def quarantine(self, generation: str) -> str:
        raise MediumError("read-only medium")


class TestPersistence:
    def test_shutdown_publishes_one_snapshot_then_clears(
        self, medium_factory: MediumFactory
    ) -> None:
        medium = medium_factory()
        store = Store(medium)
        store.update({"a": "1", "b": "2"})
        store.shutdown()
        assert len(store) == 0
        assert len(medium.generations()) == 1
        assert newest(medium) == {"a": "1", "b": "2"}

    def test_empty_store_publishes_a_valid_empty_snapshot(
        self, medium_factory: MediumFactory
    ) -> None:
        medium = medium_factory()
        store = Store(medium)
        store.shutdown()
        assert len(medium.generations()) == 1
        assert newest(medium) == {}
        store["stale"] = "x"
        report = store.restore()
        assert report.generation == medium.generations()[0]
        assert report.entries == 0
        assert len(store) == 0

    def test_store_stays_usable_after_shutdown(self, medium_factory: MediumFactory) -> None:
        store = Store(medium_factory())
        store["a"] = "1"
        store.shutdown()
        store["b"] = "2"
        assert store.get("b") == "2"
        store.shutdown()
        store.restore()
        assert dict(store.items()) == {"b": "2"}

    def test_restore_replaces_never_merges(self, medium_factory: MediumFactory) -> None:
        store = Store(medium_factory())
        store["a"] = "1"
        store.shutdown()
        store["b"] = "2"
        store["a"] = "changed"
        store.restore()
        assert dict(store.items()) == {"a": "1"}

    def test_restore_without_snapshot_empties_memory(self, medium_factory: MediumFactory) -> None:
        store = Store(medium_factory())
        store["a"] = "1"
        report = store.restore()
        assert report == RestoreReport(generation=None, entries=0)
        assert store.last_restore == report
        assert len(store) == 0

    def test_save_publishes_without_clearing(self, medium_factory: MediumFactory) -> None:
        medium = medium_factory()
        store = Store(medium)
        store["a"] = "1"
        store.save()
        assert dict(store.items()) == {"a": "1"}
        assert newest(medium) == {"a": "1"}
        store["a"] = "2"
        store["b"] = "3"
        assert newest(medium) == {"a": "1"}, "a snapshot must not follow later writes"
        store.restore()
        assert dict(store.items()) == {"a": "1"}

    def test_restore_reports_the_generation_loaded(self, medium_factory: MediumFactory) -> None:
        medium = medium_factory()
        store = Store(medium)
        store.update({"a": "1", "b": "2"})
        store.save()
        report = store.restore()
        assert report.generation == medium.generations()[0]
        assert report.entries == 2
        assert report.skipped == ()
        assert store.last_restore is report

    def test_snapshot_survives_reopening_the_medium(self, medium_factory: MediumFactory) -> None:
        medium = medium_factory()
        store = Store(medium)
        store.update({"a": "1", "b": "2"})
        store.shutdown()
        store.close()
        again = Store(medium_factory.reopen(medium))
        again.restore()
        assert dict(again.items()) == {"a": "1", "b": "2"}
        again.close()

    def test_many_keys_span_several_chunks(self, medium_factory: MediumFactory) -> None:
        medium = medium_factory()
        store = Store(medium)
        count = codec.MAX_CHUNK_ENTRIES + 1000
        store.update({str(i): f"v{i}" for i in range(count)})
        store.shutdown()
        store.restore()
        assert len(store) == count
        assert store.get("0") == "v0"
        assert store.get(str(count - 1)) == f"v{count - 1}"

    def test_restore_skips_a_generation_removed_since_it_was_listed(self) -> None:
        medium = VanishingNewest(keep=1)
        medium.publish([codec.encode({"k": "older"})])
        medium.publish([codec.encode({"k": "newest"})])
        store = Store(medium)
        report = store.restore()
        assert store.get("k") == "older"
        assert report.generation == medium.generations()[1]

    def test_open_restores_the_newest_snapshot(self, tmp_path: Path) -> None:
        directory = tmp_path / "db"
        with snapkv.open(directory, journal=False) as store:
            store["a"] = "1"
        store = snapkv.open(str(directory), journal=False)
        assert isinstance(store.medium, FileMedium)
        assert dict(store.items()) == {"a": "1"}
        assert store.last_restore is not None
        assert store.last_restore.generation == store.medium.generations()[0]
        store.close()


# ------------------------------------------------------------ context manager

INTERRUPTED_WRITER = """
import sys
import snapkv

try:
    with snapkv.open(sys.argv[1], journal=False) as store:
        n = 0
        while True:
            n += 1
            store.set("k", str(n))
            if n == 1:
                print("ready", flush=True)
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


class TestContextManager:
    """``with snapkv.open(...)``: shut down (publish) and close on exit, whatever happens."""

    def test_exit_shuts_down_and_releases(self, tmp_path: Path) -> None:
        with snapkv.open(tmp_path, journal=False) as store:
            store["a"] = "1"
        assert store.closed
        assert len(snapshot_files(tmp_path)) == 1
        with snapkv.open(tmp_path, journal=False) as again:
            assert dict(again.items()) == {"a": "1"}

    def test_exit_releases_the_lock_when_the_body_raises(self, tmp_path: Path) -> None:
        class Failure(Exception):
            pass

        with pytest.raises(Failure), snapkv.open(tmp_path, journal=False) as store:
            store["a"] = "1"
            raise Failure
        assert store.closed
        with snapkv.open(tmp_path, journal=False) as again:  # not locked out
            assert dict(again.items()) == {"a": "1"}  # exit shut the store down

    def test_exit_after_an_explicit_close_publishes_nothing(self, tmp_path: Path) -> None:
        with snapkv.open(tmp_path, journal=False, save_on_close=False) as store:
            store["a"] = "1"
            store.close()
        assert snapshot_files(tmp_path) == []
        with snapkv.open(tmp_path, journal=False) as store:
            assert len(store) == 0

    def test_explicit_shutdown_then_exit_does_not_hide_the_snapshot(self, tmp_path: Path) -> None:
        with snapkv.open(tmp_path, journal=False) as store:
            store["k"] = "important"
            store.shutdown()
        # Two more sessions that write nothing: with keep=1 an empty snapshot
        # published on exit would, by now, have pruned the one holding "k".
        for _ in range(2):
            with snapkv.open(tmp_path, journal=False) as store:
                assert dict(store.items()) == {"k": "important"}
        assert len(snapshot_files(tmp_path)) == 2

    def test_writes_after_an_explicit_shutdown_are_published_on_exit(self, tmp_path: Path) -> None:
        with snapkv.open(tmp_path, journal=False) as store:
            store["old"] = "1"
            store.shutdown()
            store["new"] = "2"
        with snapkv.open(tmp_path, journal=False) as store:
            assert dict(store.items()) == {"new": "2"}

    def test_a_failing_final_shutdown_keeps_memory_and_the_directory(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def no_space(fd: int) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        store = snapkv.open(tmp_path, journal=False)
        with monkeypatch.context() as patch:
            patch.setattr(os, "fsync", no_space)
            with pytest.raises(MediumError), store:
                store["k"] = "unsaved"
        assert not store.closed
        assert store.get("k") == "unsaved"
        with pytest.raises(StoreLockedError):
            snapkv.open(tmp_path, journal=False)
        store.shutdown()  # the disk is back: retrying works
        store.close()
        with snapkv.open(tmp_path, journal=False) as again:
            assert again.get("k") == "unsaved"

    @pytest.mark.parametrize("attempt", range(6))
    def test_ctrl_c_during_writes_publishes_and_never_leaves_the_store_locked(
        self, tmp_path: Path, attempt: int
    ) -> None:
        child = subprocess.Popen(
            [sys.executable, "-c", INTERRUPTED_WRITER, str(tmp_path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"  # after its first write
        # Where in the write loop the interrupt lands: the variety under test.
        time.sleep(0.005 * attempt)
        child.send_signal(signal.SIGINT)
        try:
            output, _ = child.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            # Which signals the child blocked or ignored (inherited from this
            # process, e.g. a test that left SIGINT ignored), and its stack state.
            status = Path(f"/proc/{child.pid}/status")
            signals = [
                line
                for line in (status.read_text().splitlines() if status.exists() else [])
                if line.startswith(("SigBlk", "SigIgn", "SigCgt", "State"))
            ]
            child.kill()
            child.communicate()
            pytest.fail(f"the writer hung after Ctrl-C: a lock was left held? {signals}")
        assert output == "interrupted\n"
        with snapkv.open(tmp_path, journal=False) as store:
            assert int(store["k"]) > 0  # __exit__ published the last write


# ---------------------------------------------------------------- data types


class Shouty(str):
    """A str subclass whose __str__ lies; the store must keep the text itself."""

    __slots__ = ()

    def __str__(self) -> str:
        return self.upper()


class AlwaysEqual(str):
    """A str subclass with a hostile __eq__/__hash__; the store must keep a plain str."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return 0


class ClaimsToBeStr:
    """Not a str, but its __class__ says so (as unittest.mock.Mock(spec=str) does)."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        return str

    def __hash__(self) -> int:
        return 0


STRANGE_STRINGS = [
    "",
    "\x00",
    "a\x00b\x00",
    "😀",
    "e\u0301",
    "\ud800",
    "\udfff",
    "\ud83d\ude00",  # a surrogate pair as two code points, not "😀"
    "a\ud800b",
    "\n\r\t",
    "|:;=,",
    codec.SEPARATORS,
    "\U0010ffff",
    "x" * 100_000,
]


class TestDataTypes:
    @pytest.mark.parametrize("text", STRANGE_STRINGS, ids=ascii)
    def test_strange_keys_and_values_round_trip(
        self, medium_factory: MediumFactory, text: str
    ) -> None:
        store = Store(medium_factory())
        data = {text: "plain", "plain": text, text + "!": text * 2}
        store.update(data)
        assert store.get(text) == "plain"
        store.shutdown()
        store.restore()
        assert dict(store.items()) == data

    def test_all_strange_strings_in_one_snapshot(self, medium_factory: MediumFactory) -> None:
        # Every separator occurs in the data, so the encoder must fall back to
        # its length-prefixed layout; surrogate halves end up side by side.
        store = Store(medium_factory())
        data = {f"{i}{text}": text[::-1] for i, text in enumerate(STRANGE_STRINGS)}
        data["\ud83d"] = "\ude00"
        store.update(data)
        store.shutdown()
        store.restore()
        assert dict(store.items()) == data
        assert "😀" not in store

    def test_surrogate_pair_is_not_the_emoji(self, store: Store) -> None:
        store["\ud83d\ude00"] = "pair"
        store["😀"] = "emoji"
        store.shutdown()
        store.restore()
        assert store["\ud83d\ude00"] == "pair"
        assert store["😀"] == "emoji"
        assert len(store) == 2

    def test_str_subclasses_are_stored_as_plain_str(self, medium_factory: MediumFactory) -> None:
        store = Store(medium_factory())
        store.set(Shouty("key"), Shouty("value"))
        store[AlwaysEqual("other")] = AlwaysEqual("thing")
        assert store.get("key") == "value"
        assert store.get("missing") is None
        for key, value in store.items():
            assert type(key) is str
            assert type(value) is str
        assert dict(store.items()) == {"key": "value", "other": "thing"}
        store.shutdown()
        store.restore()
        assert dict(store.items()) == {"key": "value", "other": "thing"}

    @pytest.mark.parametrize("bad", [1, 1.5, b"k", bytearray(b"k"), None, ["k"], ("k",)], ids=repr)
    def test_non_str_key_raises_type_error_naming_the_type(self, store: Store, bad: Any) -> None:
        name = type(bad).__name__
        with pytest.raises(TypeError, match=f"key must be str, not {name}"):
            store.set(bad, "v")
        with pytest.raises(TypeError, match=name):
            store[bad] = "v"
        assert len(store) == 0

    @pytest.mark.parametrize("bad", [1, b"v", None, ["v"]], ids=repr)
    def test_non_str_value_raises_and_stores_nothing(self, store: Store, bad: Any) -> None:
        store["k"] = "old"
        name = type(bad).__name__
        with pytest.raises(TypeError, match=f"value must be str, not {name}"):
            store.set("k", bad)
        with pytest.raises(TypeError, match=name):
            store["new"] = bad
        assert dict(store.items()) == {"k": "old"}
        store.shutdown()  # nothing unencodable got in
        store.restore()
        assert dict(store.items()) == {"k": "old"}

    def test_update_validates_everything_before_storing_anything(self, store: Store) -> None:
        with pytest.raises(TypeError, match="key must be str, not int"):
            store.update({"a": "1", 3: "x"})  # type: ignore[dict-item]
        with pytest.raises(TypeError, match="value must be str, not NoneType"):
            store.update([("a", "1")], b=None)  # type: ignore[arg-type]
        assert len(store) == 0
        store.update({"a": "1"}, b="2")
        assert dict(store.items()) == {"a": "1", "b": "2"}

    def test_object_faking_its_class_is_refused(self, store: Store) -> None:
        with pytest.raises(TypeError, match="ClaimsToBeStr"):
            store.set(ClaimsToBeStr(), "v")  # type: ignore[arg-type]
        assert len(store) == 0


# --------------------------------------------------------------------- misuse

AFTER_CLOSE: dict[str, Callable[[Store], object]] = {
    "get": lambda s: s.get("k"),
    "getitem": lambda s: s["k"],
    "set": lambda s: s.set("k", "v"),
    "setitem": lambda s: s.__setitem__("k", "v"),
    "delete": lambda s: s.delete("k"),
    "delitem": lambda s: s.__delitem__("k"),
    "len": len,
    "contains": lambda s: "k" in s,
    "iter": list,
    "items": lambda s: s.items(),
    "keys": lambda s: s.keys(),
    "values": lambda s: s.values(),
    "update": lambda s: s.update({"k": "v"}),
    "pop": lambda s: s.pop("k", None),
    "popitem": lambda s: s.popitem(),
    "setdefault": lambda s: s.setdefault("k", "v"),
    "clear": lambda s: s.clear(),
    "save": lambda s: s.save(),
    "shutdown": lambda s: s.shutdown(),
    "restore": lambda s: s.restore(),
    "restore-fallback": lambda s: s.restore(fallback=True),
}


class TestMisuse:
    def test_double_close(self, medium_factory: MediumFactory) -> None:
        store = Store(medium_factory())
        store.close()
        store.close()
        assert store.closed

    @pytest.mark.parametrize("operation", list(AFTER_CLOSE))
    def test_use_after_close_raises(self, medium_factory: MediumFactory, operation: str) -> None:
        store = Store(medium_factory())
        store["k"] = "v"
        store.save()
        store.close()
        with pytest.raises(StoreClosedError, match="closed"):
            AFTER_CLOSE[operation](store)
        assert "closed" in repr(store)

    def test_store_closed_error_is_a_value_error(self, medium_factory: MediumFactory) -> None:
        store = Store(medium_factory())
        store.close()
        with pytest.raises(ValueError):
            store.get("k")

    def test_close_publishes_nothing_and_loses_unsaved_writes(
        self, medium_factory: MediumFactory
    ) -> None:
        medium = medium_factory()
        store = Store(medium)
        store["saved"] = "1"
        store.shutdown()
        store["unsaved"] = "2"
        generations = medium.generations()
        store.close()
        medium = medium_factory.reopen(medium)
        assert medium.generations() == generations
        again = Store(medium)
        again.restore()
        assert dict(again.items()) == {"saved": "1"}
        again.close()

    def test_negative_keep_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="keep"):
            MemoryMedium(keep=-1)
        with pytest.raises(ValueError, match="keep"):
            FileMedium(tmp_path, keep=-1)
        with pytest.raises(ValueError, match="keep"):
            snapkv.open(tmp_path, keep=-1, journal=False)
        snapkv.open(tmp_path, journal=False).close()  # the failed opens left no lock behind

    def test_second_opener_in_process_is_locked_out(self, tmp_path: Path) -> None:
        store = snapkv.open(tmp_path, journal=False)
        with pytest.raises(StoreLockedError, match=f"pid {os.getpid()}"):
            snapkv.open(tmp_path, journal=False)
        with pytest.raises(StoreLockedError):
            FileMedium(tmp_path)
        # A failed opener must not release the holder's lock on its way out.
        with pytest.raises(StoreLockedError):
            snapkv.open(tmp_path / ".." / tmp_path.name, journal=False)
        store["a"] = "1"
        store.shutdown()
        store.close()

    def test_open_after_close(self, tmp_path: Path) -> None:
        store = snapkv.open(tmp_path, journal=False)
        store["a"] = "1"
        store.shutdown()
        store.close()
        again = snapkv.open(tmp_path, journal=False)
        assert dict(again.items()) == {"a": "1"}
        again.close()

    def test_close_without_save_loses_unsaved_writes(self, tmp_path: Path) -> None:
        # The seed contract (snapkv run --dir): without save_on_close, close publishes nothing.
        with snapkv.open(tmp_path, journal=False) as store:
            store["saved"] = "1"
        store = snapkv.open(tmp_path, journal=False, save_on_close=False)
        store["unsaved"] = "2"
        store.close()
        with snapkv.open(tmp_path, journal=False) as again:
            assert dict(again.items()) == {"saved": "1"}

    def test_open_on_a_regular_file_is_a_medium_error(self, tmp_path: Path) -> None:
        path = tmp_path / "not-a-directory"
        path.write_bytes(b"")
        with pytest.raises(MediumError, match="not-a-directory"):
            snapkv.open(path, journal=False)

    def test_failed_open_releases_the_directory(self, tmp_path: Path) -> None:
        for value in ("1", "2"):
            with snapkv.open(tmp_path, journal=False) as store:
                store["a"] = value
        (tmp_path / snapshot_files(tmp_path)[-1]).write_bytes(b"")
        with pytest.raises(CorruptSnapshotError):
            snapkv.open(tmp_path, journal=False)
        with pytest.raises(CorruptSnapshotError):
            snapkv.open(tmp_path, journal=False)  # the first failure did not keep the lock
        snapkv.open(tmp_path, fallback=True, journal=False).close()


# ---------------------------------------------------------- corrupt snapshots


def store_with_corrupt_newest(medium: Medium, damaged: bytes) -> Store:
    """A Store whose medium holds a valid {"old": "1"} and then ``damaged`` as newest."""
    store = Store(medium)
    store["old"] = "1"
    store.shutdown()
    medium.publish([damaged])
    store["memory"] = "unchanged"
    return store


GOOD = codec.encode({"key": "value" * 20, "other": "x"})
DAMAGE = {
    "zero-bytes": b"",
    "magic": flip_bit(GOOD, 3),
    "header-crc": flip_bit(GOOD, 13),
    "record-crc": flip_bit(GOOD, 16),
    "record-length": flip_bit(GOOD, 20, 7),
    "text": flip_bit(GOOD, len(GOOD) // 2),
    "end-record": flip_bit(GOOD, len(GOOD) - 2),
    "truncated": GOOD[:-1],
    "trailing": GOOD + b"\x00",
}


class TestCorruptSnapshot:
    @pytest.mark.parametrize("damage", list(DAMAGE))
    def test_corrupt_newest_raises_and_leaves_memory(
        self, medium_factory: MediumFactory, damage: str
    ) -> None:
        medium = medium_factory()
        store = store_with_corrupt_newest(medium, DAMAGE[damage])
        before = store.last_restore
        with pytest.raises(CorruptSnapshotError) as info:
            store.restore()
        assert info.value.source == medium.describe(medium.generations()[0])
        assert info.value.source in str(info.value)
        assert dict(store.items()) == {"memory": "unchanged"}
        assert store.last_restore is before

    def test_fallback_loads_the_older_generation_and_reports_it(
        self, medium_factory: MediumFactory, caplog: pytest.LogCaptureFixture
    ) -> None:
        medium = medium_factory(keep=1)
        store = store_with_corrupt_newest(medium, flip_bit(GOOD, 30))
        corrupt, older = medium.generations()
        with caplog.at_level(logging.WARNING, logger="snapkv"):
            report = store.restore(fallback=True)
        assert dict(store.items()) == {"old": "1"}
        assert report.generation == older
        assert report.entries == 1
        assert [name for name, _ in report.skipped] == [corrupt]
        assert medium.describe(corrupt) in report.skipped[0][1]
        assert store.last_restore is report
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert any(medium.describe(corrupt) in r.getMessage() for r in warnings)

    def test_fallback_sets_the_corrupt_generation_aside_so_pruning_keeps_the_good_one(
        self, medium_factory: MediumFactory
    ) -> None:
        medium = medium_factory(keep=1)
        store = store_with_corrupt_newest(medium, flip_bit(GOOD, 30))
        _corrupt, older = medium.generations()
        report = store.restore(fallback=True)
        assert "moved aside" in report.skipped[0][1]
        assert medium.generations() == [older]
        store["new"] = "2"
        store.save()
        assert medium.generations()[1] == older, "the good generation must survive pruning"
        assert store.restore().generation == medium.generations()[0]
        assert dict(store.items()) == {"old": "1", "new": "2"}

    def test_fallback_with_a_valid_newest_skips_nothing(
        self, medium_factory: MediumFactory
    ) -> None:
        medium = medium_factory()
        store = Store(medium)
        store["a"] = "1"
        store.shutdown()
        report = store.restore(fallback=True)
        assert report.skipped == ()
        assert report.generation == medium.generations()[0]

    def test_fallback_when_every_generation_is_corrupt_raises(
        self, medium_factory: MediumFactory
    ) -> None:
        medium = medium_factory(keep=1)
        medium.publish([b""])
        medium.publish([flip_bit(GOOD, 30)])
        store = Store(medium)
        store["memory"] = "unchanged"
        with pytest.raises(CorruptSnapshotError) as info:
            store.restore(fallback=True)
        assert info.value.source == medium.describe(medium.generations()[0])
        assert dict(store.items()) == {"memory": "unchanged"}

    def test_fallback_without_older_generations_raises(self, medium_factory: MediumFactory) -> None:
        medium = medium_factory(keep=0)
        store = store_with_corrupt_newest(medium, b"")
        assert len(medium.generations()) == 1
        with pytest.raises(CorruptSnapshotError):
            store.restore(fallback=True)
        assert dict(store.items()) == {"memory": "unchanged"}

    def test_fallback_skips_an_unreadable_generation(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        with snapkv.open(tmp_path, journal=False) as store:
            store["k"] = "old"
        with snapkv.open(tmp_path, journal=False) as store:
            store["k"] = "new"
        newest = snapshot_files(tmp_path)[-1]
        real_read = FileMedium.read

        def read(self: FileMedium, generation: str | None = None) -> bytes | None:
            if generation == newest:
                raise MediumError(f"cannot read {generation}: Input/output error")
            return real_read(self, generation)

        monkeypatch.setattr(FileMedium, "read", read)
        with pytest.raises(MediumError):
            snapkv.open(tmp_path, journal=False)
        store = snapkv.open(tmp_path, fallback=True, journal=False)
        assert store.get("k") == "old"
        assert store.last_restore is not None
        assert [name for name, _ in store.last_restore.skipped] == [newest]
        store.close()

    def test_fallback_restores_even_if_the_bad_generation_cannot_be_set_aside(self) -> None:
        medium = CannotQuarantine(keep=1)
        medium.publish([codec.encode({"k": "good"})])
        medium.publish([b"garbage"])
        store = Store(medium)
        report = store.restore(fallback=True)
        assert store.get("k") == "good"
        assert "could not be moved aside: read-only medium" in report.skipped[0][1]

    def test_zero_byte_newest_file(self, tmp_path: Path) -> None:
        with snapkv.open(tmp_path, journal=False) as store:
            store["a"] = "1"
        with snapkv.open(tmp_path, journal=False) as store:
            store["b"] = "2"
        path = tmp_path / snapshot_files(tmp_path)[-1]
        path.write_bytes(b"")
        with pytest.raises(CorruptSnapshotError) as info:
            snapkv.open(tmp_path, journal=False)
        assert info.value.source == str(path)
        assert str(path) in str(info.value)
        with snapkv.open(tmp_path, fallback=True, journal=False) as store:
            assert dict(store.items()) == {"a": "1"}
            assert store.last_restore is not None
            assert [name for name, _ in store.last_restore.skipped] == [path.name]

    def test_bit_flipped_newest_file_leaves_memory_unchanged(self, tmp_path: Path) -> None:
        store = snapkv.open(tmp_path, journal=False)
        store["a"] = "1"
        store.save()
        path = tmp_path / snapshot_files(tmp_path)[-1]
        path.write_bytes(flip_bit(path.read_bytes(), 25, 3))
        store["a"] = "changed"
        with pytest.raises(CorruptSnapshotError) as info:
            store.restore()
        assert info.value.source == str(path)
        assert (info.value.check, info.value.offset) == ("record-crc", 16)
        assert dict(store.items()) == {"a": "changed"}
        store.close()


# ----------------------------------------------------------- failed publishes


class TestPublishFailure:
    """A full disk, injected at fsync."""

    @staticmethod
    def fail_fsync(monkeypatch: pytest.MonkeyPatch, target: str) -> None:
        real_fsync = os.fsync

        def fsync(fd: int) -> None:
            is_directory = stat.S_ISDIR(os.fstat(fd).st_mode)
            if is_directory == (target == "directory"):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            real_fsync(fd)

        # FileMedium calls os.fsync for the temporary file and for the directory.
        monkeypatch.setattr(os, "fsync", fsync)

    @pytest.mark.parametrize("operation", ["shutdown", "save"])
    def test_failed_publish_raises_medium_error_and_keeps_everything(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, operation: str
    ) -> None:
        store = snapkv.open(tmp_path, journal=False, save_on_close=False)
        store["a"] = "1"
        store.save()
        store["b"] = "2"
        files = snapshot_files(tmp_path)
        self.fail_fsync(monkeypatch, "file")
        with pytest.raises(MediumError) as info:
            getattr(store, operation)()
        assert isinstance(info.value.__cause__, OSError)
        assert info.value.__cause__.errno == errno.ENOSPC
        assert dict(store.items()) == {"a": "1", "b": "2"}, "memory must be intact"
        assert temp_files(tmp_path) == []
        assert snapshot_files(tmp_path) == files
        monkeypatch.undo()
        store.close()
        with snapkv.open(tmp_path, journal=False) as again:
            assert dict(again.items()) == {"a": "1"}, "the previous snapshot must restore"
            again["c"] = "3"
        with snapkv.open(tmp_path, journal=False) as again:
            assert dict(again.items()) == {"a": "1", "c": "3"}

    def test_failed_directory_sync_keeps_memory_and_leaves_no_temporary(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # The rename has happened: the new snapshot is visible, only its
        # durability is unconfirmed, and memory is kept for another attempt.
        store = snapkv.open(tmp_path, journal=False, save_on_close=False)
        store["a"] = "1"
        store.save()
        store["b"] = "2"
        self.fail_fsync(monkeypatch, "directory")
        with pytest.raises(MediumError, match="published but not confirmed durable"):
            store.shutdown()
        assert dict(store.items()) == {"a": "1", "b": "2"}, "memory must be intact"
        assert temp_files(tmp_path) == []
        assert len(snapshot_files(tmp_path)) == 2, "the renamed snapshot is visible"
        monkeypatch.undo()
        store.restore()
        assert dict(store.items()) == {"a": "1", "b": "2"}
        store["c"] = "3"
        store.shutdown()  # the disk is back: a new attempt publishes
        store.close()
        with snapkv.open(tmp_path, journal=False) as again:
            assert dict(again.items()) == {"a": "1", "b": "2", "c": "3"}


# ---------------------------------------------------------------- generations


class TestGenerations:
    @pytest.mark.parametrize("keep", [0, 1, 3])
    def test_keep_prunes_to_keep_plus_one(self, medium_factory: MediumFactory, keep: int) -> None:
        medium = medium_factory(keep=keep)
        store = Store(medium)
        for i in range(keep + 4):
            store["i"] = str(i)
            store.save()
        generations = medium.generations()
        assert len(generations) == keep + 1
        expected = [str(i) for i in reversed(range(keep + 4))][: keep + 1]
        for generation, value in zip(generations, expected, strict=True):
            blob = medium.read(generation)
            assert blob is not None
            assert codec.decode(blob) == {"i": value}
        if isinstance(medium, FileMedium):
            assert snapshot_files(medium.directory) == sorted(generations)

    def test_open_passes_keep_to_the_medium(self, tmp_path: Path) -> None:
        for _ in range(6):
            with snapkv.open(tmp_path, keep=2, journal=False):
                pass
        assert len(snapshot_files(tmp_path)) == 3

    def test_leftover_temporaries_are_removed_on_open(self, tmp_path: Path) -> None:
        with snapkv.open(tmp_path, journal=False) as store:
            store["a"] = "1"
        (tmp_path / ".tmp-0000000000000002-99999").write_bytes(GOOD[:10])
        (tmp_path / ".tmp-0000000000000003-1").write_bytes(b"")
        with snapkv.open(tmp_path, journal=False) as store:
            assert temp_files(tmp_path) == []
            assert dict(store.items()) == {"a": "1"}

    def test_unrelated_files_are_not_generations(self, tmp_path: Path) -> None:
        (tmp_path / "notes.txt").write_text("hello")
        (tmp_path / "snapshot-1.skv").write_bytes(b"")
        (tmp_path / "snapshot-0000000000000009.skv.bak").write_bytes(b"")
        with snapkv.open(tmp_path, journal=False) as store:
            assert len(store) == 0
            assert store.medium.generations() == []
            store["a"] = "1"
        with snapkv.open(tmp_path, journal=False) as store:
            assert dict(store.items()) == {"a": "1"}
        assert (tmp_path / "notes.txt").read_text() == "hello"

    def test_generations_are_newest_first(self, medium_factory: MediumFactory) -> None:
        medium = medium_factory(keep=2)
        for i in range(3):
            medium.publish([codec.encode({"i": str(i)})])
        values = []
        for generation in medium.generations():
            blob = medium.read(generation)
            assert blob is not None
            values.append(codec.decode(blob)["i"])
        assert values == ["2", "1", "0"]
