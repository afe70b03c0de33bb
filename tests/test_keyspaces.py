"""Numbered keyspaces: db(n) views, isolation, FLUSHDB/FLUSHALL/SWAPDB/MOVE/RENAME, snapshots.

The commands follow Redis's semantics: MOVE refuses (returns False,
changing nothing) when the key is missing here or already present there;
SWAPDB exchanges whole keyspaces, expiry times included; RENAME replaces
the target and carries the source's expiry. A snapshot holds every
keyspace, taken at one instant, and restores them all.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import snapkv
from snapkv import MemoryMedium, Store, codec, run_operations
from snapkv.store import Keyspace
from support import START_MS, FakeClock

if TYPE_CHECKING:
    from conftest import MediumFactory


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> Iterator[Store]:
    s = Store(clock=clock, sweep_interval=None)
    yield s
    s.close()


def contents(store: Store) -> dict[int, dict[str, str]]:
    """Every non-empty keyspace of ``store`` as {number: entries}."""
    result = {}
    for n in range(store.databases):
        entries = dict(store.db(n).items())
        if entries:
            result[n] = entries
    return result


def decoded(store: Store) -> codec.Snapshot:
    blob = store.medium.read()
    assert blob is not None
    return codec.decode_snapshot(blob)


# ---------------------------------------------------------------------- views


class TestViews:
    def test_db0_is_the_store(self, store: Store) -> None:
        assert store.db(0) is store
        store.db(0).set("k", "v")
        assert store.get("k") == "v"

    def test_db_returns_the_same_view_each_time(self, store: Store) -> None:
        assert store.db(3) is store.db(3)
        assert isinstance(store.db(3), Keyspace)
        assert isinstance(store.db(3), MutableMapping)
        assert store.db(3).index == 3
        assert store.index == 0

    def test_default_is_sixteen_keyspaces(self, store: Store) -> None:
        assert store.databases == 16
        assert store.db(15).index == 15

    @pytest.mark.parametrize("n", [-1, 16, 2**31, -(2**40)])
    def test_out_of_range_is_a_value_error(self, store: Store, n: int) -> None:
        with pytest.raises(ValueError, match="out of range"):
            store.db(n)

    @pytest.mark.parametrize("n", ["1", 1.0, None, b"\x01"])
    def test_a_non_integer_number_is_a_type_error(self, store: Store, n: object) -> None:
        with pytest.raises(TypeError, match="cannot be interpreted as an integer"):
            store.db(n)  # type: ignore[arg-type]

    def test_databases_is_configurable(self, clock: FakeClock) -> None:
        store = Store(databases=4, clock=clock, sweep_interval=None)
        assert store.databases == 4
        store.db(3).set("k", "v")
        with pytest.raises(ValueError, match=r"keyspace 4 is out of range 0\.\.3"):
            store.db(4)
        single = Store(databases=1)
        assert single.db(0) is single
        with pytest.raises(ValueError, match=r"keyspace 1 is out of range 0\.\.0"):
            single.db(1)
        store.close()
        single.close()

    @pytest.mark.parametrize("databases", [0, -1, 2**31 + 1])
    def test_a_bad_number_of_databases_is_refused(self, databases: int) -> None:
        with pytest.raises(
            ValueError, match=f"databases must be between 1 and 2\\*\\*31, not {databases}"
        ):
            Store(databases=databases)

    def test_a_keyspace_has_the_whole_mapping_api(self, store: Store) -> None:
        space = store.db(7)
        space.update({"a": "1", "b": "2"}, c="3")
        space["d"] = "4"
        assert space.setdefault("a", "x") == "1"
        assert space.pop("b") == "2"
        assert space.popitem() == ("d", "4")
        del space["c"]
        assert space.delete("a") is True
        assert space.random_key() is None
        space.set("e", "5")
        space.rename("e", "f")
        assert space == {"f": "5"}
        assert space.random_key() == "f"
        space.clear()
        assert len(space) == 0

    def test_a_keyspace_refuses_non_str_like_the_store(self, store: Store) -> None:
        space = store.db(2)
        with pytest.raises(TypeError, match="key must be str, not int"):
            space.set(1, "v")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="value must be str, not bytes"):
            space["k"] = b"v"  # type: ignore[assignment]
        with pytest.raises(TypeError, match="value must be str, not int"):
            space.update({"ok": "v", "bad": 1})  # type: ignore[dict-item]
        assert len(space) == 0


class TestIsolation:
    def test_the_same_key_in_each_keyspace(self, store: Store) -> None:
        for n in range(store.databases):
            store.db(n).set("k", f"v{n}")
        for n in range(store.databases):
            assert store.db(n)["k"] == f"v{n}"
            assert len(store.db(n)) == 1
        store.db(4).delete("k")
        assert "k" not in store.db(4)
        assert all("k" in store.db(n) for n in range(store.databases) if n != 4)

    def test_clear_and_expiry_stay_in_their_keyspace(self, store: Store, clock: FakeClock) -> None:
        store.set("k", "0")
        store.db(1).set("k", "1", ttl=1)
        store.db(2).set("k", "2")
        store.db(2).clear()
        clock.advance(1)
        assert store.get("k") == "0"
        assert store.ttl("k") is None
        assert store.db(1).get("k") is None
        assert store.db(2).get("k") is None
        store.db(3).set("k", "3")
        store.db(3).expire("k", 5)
        assert store.ttl("k") is None

    def test_a_keyspace_other_than_0_is_empty_at_first(self, store: Store) -> None:
        store.set("k", "v")
        assert store.db(1).get("k") is None
        assert list(store.db(1)) == []


# ------------------------------------------------------------------- commands


class TestFlush:
    def test_flush_empties_one_keyspace(self, store: Store) -> None:
        for n in (0, 1, 2):
            store.db(n).set("k", str(n))
        store.flush(1)
        assert contents(store) == {0: {"k": "0"}, 2: {"k": "2"}}
        store.flush(0)
        assert contents(store) == {2: {"k": "2"}}

    def test_flush_all_empties_every_keyspace(self, store: Store) -> None:
        for n in range(store.databases):
            store.db(n).set("k", "v", ttl=10)
        store.flush_all()
        assert contents(store) == {}
        assert all(len(store.db(n)) == 0 for n in range(store.databases))
        store.db(5).set("again", "v")
        assert contents(store) == {5: {"again": "v"}}

    def test_flush_of_a_bad_keyspace(self, store: Store) -> None:
        store.set("k", "v")
        with pytest.raises(ValueError, match="keyspace 16 is out of range"):
            store.flush(16)
        assert store.get("k") == "v"


class TestSwap:
    def test_swap_exchanges_contents_and_expiry(self, store: Store, clock: FakeClock) -> None:
        store.set("a", "0", ttl=10)
        store.set("shared", "0")
        store.db(3).set("b", "3")
        store.db(3).set("shared", "3", ttl=20)
        view0, view3 = store.db(0), store.db(3)
        store.swap(0, 3)
        assert store.db(0) is view0
        assert view3.index == 3
        assert dict(store.items()) == {"b": "3", "shared": "3"}
        assert dict(view3.items()) == {"a": "0", "shared": "0"}
        assert store.ttl("shared") == 20.0
        assert view3.ttl("a") == 10.0
        assert view3.ttl("shared") is None
        clock.advance(10)
        assert "a" not in view3
        store.swap(3, 0)
        assert dict(store.items()) == {"shared": "0"}
        assert dict(view3.items()) == {"b": "3", "shared": "3"}

    def test_swap_with_an_empty_keyspace_and_itself(self, store: Store) -> None:
        store.db(1).set("k", "v")
        store.swap(1, 9)
        assert contents(store) == {9: {"k": "v"}}
        store.swap(9, 9)
        assert contents(store) == {9: {"k": "v"}}

    def test_writes_after_a_swap_go_to_the_swapped_contents(self, store: Store) -> None:
        store.db(1).set("k", "1")
        store.swap(1, 2)
        store.db(2).set("k2", "x")
        store.db(1).set("k3", "y")
        assert contents(store) == {1: {"k3": "y"}, 2: {"k": "1", "k2": "x"}}

    @pytest.mark.parametrize(("a", "b"), [(0, 16), (-1, 0), (16, 16)])
    def test_swap_of_a_bad_keyspace_changes_nothing(self, store: Store, a: int, b: int) -> None:
        store.set("k", "v")
        with pytest.raises(ValueError, match=r"is out of range 0\.\.15"):
            store.swap(a, b)
        assert contents(store) == {0: {"k": "v"}}


class TestMove:
    def test_move_moves_the_key_and_its_expiry(self, store: Store, clock: FakeClock) -> None:
        store.set("k", "v", ttl=10)
        store.set("plain", "p")
        assert store.move("k", 4) is True
        assert store.move("plain", 4) is True
        assert "k" not in store
        assert store.db(4)["k"] == "v"
        assert store.db(4).expiry_ms("k") == START_MS + 10_000
        assert store.db(4).ttl("plain") is None
        clock.advance(10)
        assert "k" not in store.db(4)

    def test_move_of_a_missing_key_is_false(self, store: Store) -> None:
        assert store.move("missing", 4) is False
        assert contents(store) == {}

    def test_move_onto_an_existing_key_is_false_and_changes_nothing(self, store: Store) -> None:
        store.set("k", "here", ttl=10)
        store.db(4).set("k", "there")
        assert store.move("k", 4) is False
        assert contents(store) == {0: {"k": "here"}, 4: {"k": "there"}}
        assert store.ttl("k") == 10.0
        assert store.db(4).ttl("k") is None

    def test_move_from_another_keyspace_to_0(self, store: Store) -> None:
        store.db(6).set("k", "v")
        assert store.db(6).move("k", 0) is True
        assert contents(store) == {0: {"k": "v"}}

    def test_move_to_the_same_or_a_bad_keyspace(self, store: Store) -> None:
        store.set("k", "v")
        store.db(2).set("k", "v2")
        with pytest.raises(ValueError, match="keyspaces are the same"):
            store.move("k", 0)
        with pytest.raises(ValueError, match="keyspaces are the same"):
            store.db(2).move("k", 2)
        with pytest.raises(ValueError, match="keyspace 16 is out of range"):
            store.move("k", 16)
        with pytest.raises(TypeError, match="cannot be interpreted as an integer"):
            store.move("k", "1")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="key must be str, not int"):
            store.move(1, 1)  # type: ignore[arg-type]
        assert contents(store) == {0: {"k": "v"}, 2: {"k": "v2"}}


class TestRename:
    def test_rename_replaces_the_target_and_keeps_the_source_expiry(
        self, store: Store, clock: FakeClock
    ) -> None:
        store.set("src", "v", ttl=10)
        store.set("dst", "old", ttl=100)
        store.rename("src", "dst")
        assert dict(store.items()) == {"dst": "v"}
        assert store.expiry_ms("dst") == START_MS + 10_000
        clock.advance(10)
        assert len(store) == 0

    def test_rename_of_a_key_without_expiry_clears_the_targets(
        self, store: Store, clock: FakeClock
    ) -> None:
        store.set("src", "v")
        store.set("dst", "old", ttl=1)
        store.rename("src", "dst")
        assert store.ttl("dst") is None
        clock.advance(10)
        assert dict(store.items()) == {"dst": "v"}

    def test_rename_of_a_missing_key_raises(self, store: Store) -> None:
        store.set("dst", "old")
        with pytest.raises(KeyError):
            store.rename("missing", "dst")
        assert dict(store.items()) == {"dst": "old"}

    def test_rename_onto_itself_keeps_everything(self, store: Store) -> None:
        store.set("k", "v", ttl=10)
        store.rename("k", "k")
        assert dict(store.items()) == {"k": "v"}
        assert store.ttl("k") == 10.0
        with pytest.raises(KeyError):
            store.rename("missing", "missing")

    def test_rename_stays_inside_its_keyspace(self, store: Store) -> None:
        store.db(3).set("a", "v")
        store.db(4).set("b", "other")
        store.db(3).rename("a", "b")
        assert contents(store) == {3: {"b": "v"}, 4: {"b": "other"}}

    def test_rename_refuses_non_str(self, store: Store) -> None:
        store.set("k", "v")
        with pytest.raises(TypeError, match="key must be str, not int"):
            store.rename("k", 1)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="key must be str, not bytes"):
            store.rename(b"k", "j")  # type: ignore[arg-type]
        assert dict(store.items()) == {"k": "v"}


# ------------------------------------------------------------------ snapshots


def fill(store: Store) -> dict[int, dict[str, str]]:
    store.set("a", "0")
    store.set("exp", "0", ttl=50)
    store.db(3).update({"a": "3", "b": "3"})
    store.db(15).set("last", "15", ttl=100)
    return {0: {"a": "0", "exp": "0"}, 3: {"a": "3", "b": "3"}, 15: {"last": "15"}}


class TestSnapshots:
    def test_one_snapshot_holds_every_keyspace(
        self, medium_factory: MediumFactory, clock: FakeClock
    ) -> None:
        medium = medium_factory()
        store = Store(medium, clock=clock, sweep_interval=None)
        expected = fill(store)
        store.save()
        assert len(medium.generations()) == 1
        snapshot = decoded(store)
        assert snapshot.spaces == expected
        assert snapshot.expires == {0: {"exp": START_MS + 50_000}, 15: {"last": START_MS + 100_000}}
        store.close()

    def test_shutdown_clears_every_keyspace_and_restore_brings_them_back(
        self, medium_factory: MediumFactory, clock: FakeClock
    ) -> None:
        store = Store(medium_factory(), clock=clock, sweep_interval=None)
        expected = fill(store)
        store.shutdown()
        assert contents(store) == {}
        store.db(7).set("unsaved", "x")
        report = store.restore()
        assert report.entries == 5
        assert contents(store) == expected  # replaced, never merged
        assert store.db(15).ttl("last") == 100.0
        store.close()

    def test_restore_after_swap_and_move(
        self, medium_factory: MediumFactory, clock: FakeClock
    ) -> None:
        store = Store(medium_factory(), clock=clock, sweep_interval=None)
        fill(store)
        store.swap(3, 8)
        assert store.db(8).move("a", 2) is True
        store.rename("exp", "renamed")
        store.save()
        store.flush_all()
        store.restore()
        assert contents(store) == {
            0: {"a": "0", "renamed": "0"},
            2: {"a": "3"},
            8: {"b": "3"},
            15: {"last": "15"},
        }
        assert store.ttl("renamed") == 50.0
        store.close()

    def test_reopen_from_a_directory(self, tmp_path: Path, clock: FakeClock) -> None:
        with snapkv.open(
            tmp_path / "data", journal=False, clock=clock, sweep_interval=None
        ) as store:
            expected = fill(store)
        with snapkv.open(
            tmp_path / "data", journal=False, clock=clock, sweep_interval=None
        ) as store:
            assert contents(store) == expected
            assert store.ttl("exp") == 50.0
            store.flush(3)
        with snapkv.open(
            tmp_path / "data", journal=False, clock=clock, sweep_interval=None
        ) as store:
            del expected[3]
            assert contents(store) == expected

    def test_a_store_of_keyspace_0_only_writes_a_version_1_snapshot(self) -> None:
        store = Store(MemoryMedium())
        store.update({"a": "1"})
        store.db(5).set("x", "y")
        store.db(5).delete("x")  # an emptied keyspace is not written
        store.save()
        blob = store.medium.read()
        assert blob is not None
        assert int.from_bytes(blob[8:10], "little") == codec.VERSION
        assert codec.decode(blob) == {"a": "1"}
        store.db(5).set("x", "y")
        store.save()
        blob = store.medium.read()
        assert blob is not None
        assert int.from_bytes(blob[8:10], "little") == codec.VERSION_EXTENDED
        with pytest.raises(ValueError, match="decode_snapshot"):
            codec.decode(blob)
        store.close()

    def test_a_snapshot_is_one_instant_of_every_keyspace(self) -> None:
        # A thread keeps moving one key between keyspaces 0 and 1 and swapping
        # keyspaces 2 and 3; every snapshot taken meanwhile must hold the key
        # exactly once and both halves of the swap.
        store = Store(MemoryMedium())
        store.set("token", "t")
        store.db(2).set("left", "l")
        store.db(3).set("right", "r")
        stop = threading.Event()
        errors: list[BaseException] = []

        def churn() -> None:
            try:
                while not stop.is_set():
                    assert store.move("token", 1)
                    store.swap(2, 3)
                    assert store.db(1).move("token", 0)
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=churn)
        thread.start()
        try:
            for _ in range(200):
                store.save()
                spaces = decoded(store).spaces
                holders = [n for n in (0, 1) if "token" in spaces.get(n, {})]
                assert len(holders) == 1, spaces
                assert spaces[2].keys() | spaces[3].keys() == {"left", "right"}
                assert len(spaces[2]) == len(spaces[3]) == 1
        finally:
            stop.set()
            thread.join(timeout=60)
        assert not errors
        store.close()


class TestTooFewDatabases:
    def test_restore_refuses_a_keyspace_beyond_databases(
        self, medium_factory: MediumFactory, clock: FakeClock
    ) -> None:
        medium = medium_factory()
        writer = Store(medium, clock=clock, sweep_interval=None)
        writer.set("a", "0")
        writer.db(10).set("k", "10")
        writer.shutdown()
        writer.close()
        medium = medium_factory.reopen(medium)
        small = Store(medium, databases=4, clock=clock, sweep_interval=None)
        small.set("mine", "m")
        small.db(3).set("also", "mine")
        with pytest.raises(ValueError, match=r"keyspace 10.*databases=11"):
            small.restore()
        assert contents(small) == {0: {"mine": "m"}, 3: {"also": "mine"}}  # memory unchanged
        small.set("still", "usable")
        assert small.get("still") == "usable"
        small.close()

    def test_open_refuses_it_and_leaves_the_directory_usable(
        self, tmp_path: Path, clock: FakeClock
    ) -> None:
        directory = tmp_path / "data"
        with snapkv.open(directory, databases=32) as store:
            store.db(31).set("k", "v")
        with pytest.raises(ValueError, match="keyspace 31"):
            snapkv.open(directory)  # default: 16 keyspaces
        with snapkv.open(directory, databases=32) as store:  # not left locked
            assert store.db(31)["k"] == "v"

    def test_a_journal_writing_beyond_databases_is_refused(self, tmp_path: Path) -> None:
        directory = tmp_path / "data"
        store = snapkv.open(directory, databases=32, journal=True)
        store.db(20).set("k", "v")
        store.close()  # the write is only in the journal
        with pytest.raises(ValueError, match="keyspace 20"):
            snapkv.open(directory, journal=True)
        with snapkv.open(directory, databases=32, journal=True) as store:
            assert contents(store) == {20: {"k": "v"}}

    def test_a_journaled_swap_beyond_databases_is_refused(self, tmp_path: Path) -> None:
        directory = tmp_path / "data"
        store = snapkv.open(directory, databases=32, journal=True)
        store.set("k", "v")
        store.swap(0, 20)
        store.close()
        with pytest.raises(ValueError, match="keyspace 20"):
            snapkv.open(directory, journal=True).close()

    def test_a_larger_store_restores_a_smaller_ones_snapshot(self, clock: FakeClock) -> None:
        medium = MemoryMedium()
        small = Store(medium, databases=2)
        small.db(1).set("k", "v")
        small.shutdown()
        big = Store(medium, databases=64)
        big.restore()
        assert contents(big) == {1: {"k": "v"}}
        small.close()
        big.close()


class TestRunOperations:
    def test_the_contract_is_unchanged(self) -> None:
        ops = [
            ("set", "a", "1"),
            ("get", "a"),
            ("shutdown",),
            ("get", "a"),
            ("restore",),
            ("get", "a"),
            ("get", "missing"),
        ]
        assert run_operations(ops) == ["1", None, "1", None]

    def test_it_works_on_keyspace_0_of_a_given_store(self, clock: FakeClock) -> None:
        store = Store(MemoryMedium(), clock=clock, sweep_interval=None)
        store.db(2).set("a", "two")
        results = run_operations(
            [("set", "a", "zero"), ("shutdown",), ("restore",), ("get", "a")], store=store
        )
        assert results == ["zero"]
        assert contents(store) == {0: {"a": "zero"}, 2: {"a": "two"}}
        store.close()
