"""Expiry: ttl / expire_at / keep_ttl, the expiry commands, the sweep and persistence.

Every test injects a :class:`FakeClock` and moves time by hand: nothing
sleeps. A key whose expiry is ``at`` (epoch milliseconds) is expired when
``now_ms >= at``; an expired key is invisible to every read at once, even
before the sweep reclaims its memory. Tests that take ``space`` run on
keyspace 0 (the Store itself) and on another keyspace.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import snapkv
from snapkv import MemoryMedium, Store, codec
from snapkv.errors import StoreClosedError
from snapkv.store import SWEEP_SLICE, Keyspace
from support import START_MS, FakeClock

if TYPE_CHECKING:
    from conftest import MediumFactory

#: 2023-11-14T22:13:20Z in epoch milliseconds: a realistic, exactly representable start.


def seconds(ms: int) -> float:
    """Epoch milliseconds as the epoch seconds ``expire_at`` takes."""
    return ms / 1000


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> Iterator[Store]:
    s = Store(clock=clock, sweep_interval=None)
    yield s
    s.close()


@pytest.fixture(params=[0, 5], ids=["db0", "db5"])
def space(request: pytest.FixtureRequest, store: Store) -> Keyspace:
    """Keyspace 0 (the Store itself) or keyspace 5 of ``store``."""
    return store.db(request.param)


# ------------------------------------------------------------ set with expiry


class TestSetWithExpiry:
    def test_ttl_is_stored_as_an_absolute_time(self, space: Keyspace, clock: FakeClock) -> None:
        space.set("k", "v", ttl=10)
        assert space.expiry_ms("k") == START_MS + 10_000
        assert space.expire_time("k") == (START_MS + 10_000) / 1000
        assert space.ttl("k") == 10.0
        clock.advance(4)
        assert space.ttl("k") == 6.0
        assert space.expiry_ms("k") == START_MS + 10_000
        assert space.get("k") == "v"

    def test_key_lives_until_the_millisecond_it_expires(
        self, space: Keyspace, clock: FakeClock
    ) -> None:
        space.set("k", "v", ttl=1)
        clock.ms = START_MS + 999
        assert space.get("k") == "v"
        assert space.ttl("k") == pytest.approx(0.001)
        clock.ms = START_MS + 1_000  # now_ms >= at: expired
        assert space.get("k") is None
        assert "k" not in space

    def test_fractional_ttl_counts_in_milliseconds(self, space: Keyspace) -> None:
        space.set("a", "v", ttl=0.25)
        space.set("b", "v", ttl=0.001)
        assert space.expiry_ms("a") == START_MS + 250
        assert space.expiry_ms("b") == START_MS + 1

    def test_expire_at_is_absolute_epoch_seconds(self, space: Keyspace) -> None:
        space.set("k", "v", expire_at=seconds(START_MS + 5_000))
        assert space.expiry_ms("k") == START_MS + 5_000
        assert space.ttl("k") == 5.0

    @pytest.mark.parametrize("offset_ms", [0, -1, -86_400_000])
    def test_expire_at_now_or_in_the_past_replaces_then_hides_the_key(
        self, space: Keyspace, offset_ms: int
    ) -> None:
        space.set("k", "old")
        space.set("k", "new", expire_at=seconds(START_MS + offset_ms))
        assert space.get("k") is None
        assert "k" not in space
        assert len(space) == 0
        with pytest.raises(KeyError):
            space.ttl("k")

    def test_plain_set_clears_the_expiry(self, space: Keyspace, clock: FakeClock) -> None:
        space.set("a", "1", ttl=10)
        space.set("b", "1", ttl=10)
        space.set("c", "1", ttl=10)
        space.set("a", "2")
        space["b"] = "2"
        space.update({"c": "2"})
        for key in "abc":
            assert space.ttl(key) is None
        clock.advance(3_600)
        assert dict(space.items()) == {"a": "2", "b": "2", "c": "2"}

    def test_keep_ttl_keeps_the_remaining_time(self, space: Keyspace, clock: FakeClock) -> None:
        space.set("k", "old", ttl=10)
        clock.advance(3)
        space.set("k", "new", keep_ttl=True)
        assert space.get("k") == "new"
        assert space.expiry_ms("k") == START_MS + 10_000
        assert space.ttl("k") == 7.0
        clock.advance(7)
        assert space.get("k") is None

    def test_keep_ttl_on_a_key_without_expiry_or_a_missing_key(self, space: Keyspace) -> None:
        space.set("plain", "old")
        space.set("plain", "new", keep_ttl=True)
        space.set("fresh", "v", keep_ttl=True)
        assert space.ttl("plain") is None
        assert space.ttl("fresh") is None
        assert dict(space.items()) == {"plain": "new", "fresh": "v"}

    def test_keep_ttl_on_an_expired_key_makes_a_fresh_key_without_expiry(
        self, space: Keyspace, clock: FakeClock
    ) -> None:
        space.set("k", "old", ttl=1)
        clock.advance(2)
        space.set("k", "new", keep_ttl=True)  # the old key is dead: no expiry to keep
        assert space.get("k") == "new"
        assert space.ttl("k") is None
        clock.advance(3_600)
        assert space.get("k") == "new"

    def test_a_new_ttl_replaces_the_old_one(self, space: Keyspace, clock: FakeClock) -> None:
        space.set("k", "1", ttl=100)
        space.set("k", "2", ttl=1)
        clock.advance(1)
        assert space.get("k") is None
        space.set("j", "1", ttl=1)
        space.set("j", "2", ttl=100)
        clock.advance(50)
        assert space.get("j") == "2"

    def test_setdefault_keeps_a_live_keys_expiry(self, space: Keyspace) -> None:
        space.set("k", "v", ttl=10)
        assert space.setdefault("k", "other") == "v"
        assert space.expiry_ms("k") == START_MS + 10_000

    def test_set_with_expiry_refuses_non_str_and_stores_nothing(self, space: Keyspace) -> None:
        with pytest.raises(TypeError, match="key must be str, not int"):
            space.set(1, "v", ttl=5)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="value must be str, not bytes"):
            space.set("k", b"v", ttl=5)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="value must be str, not NoneType"):
            space.set("k", None, expire_at=seconds(START_MS + 5_000))  # type: ignore[arg-type]
        assert len(space) == 0

    def test_str_subclasses_are_stored_as_plain_str(self, space: Keyspace) -> None:
        class Name(str):
            pass

        space.set(Name("k"), Name("v"), ttl=5)
        key = next(iter(space))
        assert type(key) is str
        assert type(space["k"]) is str
        assert space.ttl("k") == 5.0


#: (keyword arguments of a bad set, the exception it must raise).
BAD_SET: list[tuple[dict[str, Any], type[Exception]]] = [
    ({"ttl": 0}, ValueError),
    ({"ttl": -1}, ValueError),
    ({"ttl": -0.5}, ValueError),
    ({"ttl": float("nan")}, ValueError),
    ({"ttl": float("inf")}, ValueError),
    ({"ttl": 1e300}, ValueError),
    ({"ttl": "10"}, TypeError),
    ({"ttl": True}, TypeError),
    ({"ttl": b"1"}, TypeError),
    ({"expire_at": 0}, ValueError),
    ({"expire_at": -5.0}, ValueError),
    ({"expire_at": 1e17}, ValueError),  # past 2**64 - 1 ms
    ({"expire_at": float("nan")}, ValueError),
    ({"expire_at": float("-inf")}, ValueError),
    ({"expire_at": "tomorrow"}, TypeError),
    ({"expire_at": False}, TypeError),
    ({"ttl": 10, "expire_at": seconds(START_MS + 10_000)}, ValueError),
    ({"ttl": 10, "keep_ttl": True}, ValueError),
    ({"expire_at": seconds(START_MS + 10_000), "keep_ttl": True}, ValueError),
]


@pytest.mark.parametrize(("kwargs", "error"), BAD_SET, ids=[repr(k) for k, _ in BAD_SET])
def test_bad_expiry_arguments_raise_and_store_nothing(
    space: Keyspace, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    space.set("k", "old", ttl=10)
    with pytest.raises(error):
        space.set("k", "new", **kwargs)
    with pytest.raises(error):
        space.set("fresh", "new", **kwargs)
    assert dict(space.items()) == {"k": "old"}
    assert space.expiry_ms("k") == START_MS + 10_000


# ------------------------------------------------------------ expiry commands


class TestExpiryCommands:
    def test_expire_sets_a_ttl_on_an_existing_key(self, space: Keyspace, clock: FakeClock) -> None:
        space.set("k", "v")
        assert space.expire("k", 10) is True
        assert space.expiry_ms("k") == START_MS + 10_000
        clock.advance(10)
        assert space.get("k") is None

    def test_expire_replaces_an_earlier_expiry(self, space: Keyspace, clock: FakeClock) -> None:
        space.set("k", "v", ttl=1)
        assert space.expire("k", 100) is True
        clock.advance(50)
        assert space.get("k") == "v"
        assert space.ttl("k") == 50.0

    def test_expire_of_a_missing_or_expired_key_creates_nothing(
        self, space: Keyspace, clock: FakeClock
    ) -> None:
        assert space.expire("missing", 10) is False
        space.set("k", "v", ttl=1)
        clock.advance(1)
        assert space.expire("k", 10) is False
        assert "missing" not in space
        assert "k" not in space
        assert len(space) == 0

    @pytest.mark.parametrize("ttl", [0, -1, -0.001, -1e9])
    def test_expire_with_ttl_zero_or_less_deletes_the_key(
        self, space: Keyspace, ttl: float
    ) -> None:
        space.set("k", "v", ttl=10)
        space.set("other", "v")
        assert space.expire("k", ttl) is True
        assert "k" not in space
        assert len(space) == 1
        with pytest.raises(KeyError):
            space.ttl("k")

    def test_expire_at_sets_an_absolute_time(self, space: Keyspace, clock: FakeClock) -> None:
        space.set("k", "v")
        assert space.expire_at("k", seconds(START_MS + 2_500)) is True
        assert space.expiry_ms("k") == START_MS + 2_500
        clock.ms = START_MS + 2_499
        assert space.get("k") == "v"
        clock.ms = START_MS + 2_500
        assert space.get("k") is None
        assert space.expire_at("missing", seconds(START_MS + 2_500)) is False

    @pytest.mark.parametrize("when_ms", [START_MS, START_MS - 1, 1_000, 0, -5_000])
    def test_expire_at_now_or_in_the_past_deletes_the_key(
        self, space: Keyspace, when_ms: int
    ) -> None:
        space.set("k", "v")
        assert space.expire_at("k", seconds(when_ms)) is True
        assert "k" not in space
        assert len(space) == 0

    def test_persist(self, space: Keyspace, clock: FakeClock) -> None:
        space.set("k", "v", ttl=1)
        space.set("plain", "v")
        assert space.persist("k") is True
        assert space.ttl("k") is None
        assert space.persist("k") is False  # no expiry left to remove
        assert space.persist("plain") is False
        assert space.persist("missing") is False
        clock.advance(3_600)
        assert space.get("k") == "v"

    def test_persist_of_an_expired_key_does_not_revive_it(
        self, space: Keyspace, clock: FakeClock
    ) -> None:
        space.set("k", "v", ttl=1)
        clock.advance(1)
        assert space.persist("k") is False
        assert space.get("k") is None

    @pytest.mark.parametrize("query", ["ttl", "expire_time", "expiry_ms"])
    def test_queries_tell_missing_from_no_expiry(
        self, space: Keyspace, clock: FakeClock, query: str
    ) -> None:
        ask: Callable[[str], object] = getattr(space, query)
        space.set("plain", "v")
        space.set("expiring", "v", ttl=2)
        assert ask("plain") is None
        assert ask("expiring") is not None
        with pytest.raises(KeyError):
            ask("missing")
        clock.advance(2)
        with pytest.raises(KeyError):
            ask("expiring")  # expired is missing, not "no expiry"

    def test_query_values_agree(self, space: Keyspace, clock: FakeClock) -> None:
        space.set("k", "v", expire_at=seconds(START_MS + 90_500))
        clock.advance(0.5)
        assert space.expiry_ms("k") == START_MS + 90_500
        assert space.expire_time("k") == (START_MS + 90_500) / 1000
        assert space.ttl("k") == 90.0

    @pytest.mark.parametrize(
        ("call", "error"),
        [
            (lambda s: s.expire("k", "10"), TypeError),
            (lambda s: s.expire("k", True), TypeError),
            (lambda s: s.expire("k", None), TypeError),
            (lambda s: s.expire("k", float("nan")), ValueError),
            (lambda s: s.expire("k", float("inf")), ValueError),
            (lambda s: s.expire("k", 1e300), ValueError),
            (lambda s: s.expire_at("k", "soon"), TypeError),
            (lambda s: s.expire_at("k", float("nan")), ValueError),
            (lambda s: s.expire_at("k", float("inf")), ValueError),
            (lambda s: s.expire_at("k", 1e17), ValueError),
            (lambda s: s.expire(1, 10), TypeError),
            (lambda s: s.expire_at(b"k", seconds(START_MS + 1)), TypeError),
            (lambda s: s.persist(1), TypeError),
        ],
    )
    def test_bad_arguments_raise_and_change_nothing(
        self, space: Keyspace, call: Callable[[Keyspace], object], error: type[Exception]
    ) -> None:
        space.set("k", "v", ttl=10)
        with pytest.raises(error):
            call(space)
        assert dict(space.items()) == {"k": "v"}
        assert space.expiry_ms("k") == START_MS + 10_000

    def test_an_out_of_range_ttl_is_refused_whether_or_not_the_key_exists(
        self, space: Keyspace
    ) -> None:
        # The value is wrong in itself (as Redis's EXPIRE says "invalid expire
        # time" before looking the key up); the answer must not depend on the key.
        space.set("k", "v")
        messages = []
        for key in ("missing", "k"):
            with pytest.raises(ValueError, match="is out of range") as info:
                space.expire(key, 1e300)
            messages.append(str(info.value))
        assert messages[0] == messages[1]
        assert dict(space.items()) == {"k": "v"}


# ------------------------------------------------------- invisible at once


@pytest.fixture
def expired(space: Keyspace, clock: FakeClock) -> Keyspace:
    """``space`` holding ``kept`` (no expiry), ``later`` (live) and ``gone`` (just expired).

    Nothing has reclaimed ``gone``: every read below must hide it by itself.
    """
    space.set("kept", "y")
    space.set("later", "z", ttl=100)
    space.set("gone", "x", ttl=1)
    clock.advance(1)
    return space


class TestExpiredIsInvisibleAtOnce:
    def test_get_and_getitem(self, expired: Keyspace) -> None:
        assert expired.get("gone") is None
        assert expired.get("gone", "default") == "default"
        with pytest.raises(KeyError):
            expired["gone"]

    def test_contains_len_and_iteration(self, expired: Keyspace) -> None:
        assert "gone" not in expired
        assert len(expired) == 2
        assert sorted(expired) == ["kept", "later"]
        assert sorted(expired.keys()) == ["kept", "later"]
        assert sorted(expired.values()) == ["y", "z"]
        assert dict(expired.items()) == {"kept": "y", "later": "z"}
        assert expired == {"kept": "y", "later": "z"}

    def test_pop_delete_and_del(self, expired: Keyspace) -> None:
        with pytest.raises(KeyError):
            expired.pop("gone")
        assert expired.pop("gone", "default") == "default"
        assert expired.delete("gone") is False
        with pytest.raises(KeyError):
            del expired["gone"]
        assert len(expired) == 2

    def test_setdefault_makes_a_fresh_key(self, expired: Keyspace, clock: FakeClock) -> None:
        assert expired.setdefault("gone", "new") == "new"
        assert expired.ttl("gone") is None
        clock.advance(3_600)
        assert expired.get("gone") == "new"

    def test_rename_from_and_onto_an_expired_key(self, expired: Keyspace) -> None:
        with pytest.raises(KeyError):
            expired.rename("gone", "elsewhere")
        assert "elsewhere" not in expired
        expired.rename("later", "gone")  # onto the expired key: an ordinary overwrite
        assert expired.get("gone") == "z"
        assert expired.expiry_ms("gone") == START_MS + 100_000
        assert sorted(expired) == ["gone", "kept"]

    def test_move_of_an_expired_key(self, expired: Keyspace, store: Store) -> None:
        other = store.db(7)
        assert expired.move("gone", 7) is False
        assert "gone" not in other
        assert len(other) == 0

    def test_move_onto_an_expired_key(self, expired: Keyspace, store: Store) -> None:
        other = store.db(7)
        other.set("kept", "stale", expire_at=seconds(START_MS))  # already expired there
        assert expired.move("kept", 7) is True
        assert other.get("kept") == "y"
        assert other.ttl("kept") is None
        assert "kept" not in expired

    def test_expiry_commands(self, expired: Keyspace) -> None:
        assert expired.expire("gone", 10) is False
        assert expired.expire_at("gone", seconds(START_MS + 60_000)) is False
        assert expired.persist("gone") is False
        for query in (expired.ttl, expired.expire_time, expired.expiry_ms):
            with pytest.raises(KeyError):
                query("gone")
        assert "gone" not in expired

    def test_random_key_and_popitem_skip_it(self, space: Keyspace, clock: FakeClock) -> None:
        space.set("live", "v")
        space.set("gone", "x", ttl=1)  # the most recent key: what popitem takes first
        clock.advance(1)
        assert {space.random_key() for _ in range(20)} == {"live"}
        assert space.popitem() == ("live", "v")
        assert space.random_key() is None
        with pytest.raises(KeyError):
            space.popitem()


# ---------------------------------------------------------------------- sweep


def held(space: Keyspace) -> tuple[int, int]:
    """(entries, expiry times) a keyspace holds in memory, expired ones included."""
    return len(space._space[0]), len(space._space[1])


class TestSweep:
    def test_sweep_reclaims_the_memory_of_expired_keys(
        self, store: Store, clock: FakeClock
    ) -> None:
        for i in range(100):
            store.set(f"k{i}", "v", ttl=1)
            store.db(3).set(f"k{i}", "v", ttl=1 + i % 2)
        for i in range(10):
            store.set(f"plain{i}", "v")
        clock.advance(1)
        assert held(store) == (110, 100)  # invisible, but not yet reclaimed
        assert held(store.db(3)) == (100, 100)
        assert store.sweep() == 150
        assert held(store) == (10, 0)
        assert held(store.db(3)) == (50, 50)
        assert store.sweep() == 0
        clock.advance(1)
        assert store.sweep() == 50
        assert held(store.db(3)) == (0, 0)
        assert len(store) == 10

    def test_sweep_follows_expiry_changes(self, store: Store, clock: FakeClock) -> None:
        for key in "abcdef":
            store.set(key, "v", ttl=1)
        store.persist("a")
        store.expire("b", 100)
        store.set("c", "plain")
        store.set("d", "v", ttl=100)
        store.delete("e")
        store.rename("f", "g")  # g carries f's expiry
        clock.advance(2)
        assert store.sweep() == 1  # g only
        assert held(store) == (4, 2)
        assert sorted(store) == ["a", "b", "c", "d"]
        clock.advance(100)
        assert store.sweep() == 2  # b and d
        assert held(store) == (2, 0)

    def test_sweep_with_a_limit(self, store: Store, clock: FakeClock) -> None:
        for i in range(10):
            store.set(f"k{i}", "v", ttl=1)
        clock.advance(1)
        assert store.sweep(limit=3) == 3
        assert held(store) == (7, 7)
        assert store.sweep() == 7

    def test_one_lock_hold_reclaims_at_most_a_slice(self, store: Store, clock: FakeClock) -> None:
        due = 10 * SWEEP_SLICE
        for i in range(due):
            store.set(f"k{i}", "v", ttl=1)
        clock.advance(1)
        # The sweep reads the clock once per lock hold, under the lock: record
        # how many expiry times keyspace 0 still holds at each reading.
        seen: list[int] = []
        locked: list[bool] = []

        def observe() -> None:
            seen.append(len(store._space[1]))
            locked.append(store._lock.locked())

        clock.on_call = observe
        assert store.sweep() == due
        clock.on_call = None
        assert all(locked)
        remaining = [n for n in seen if n] + [0]
        steps = [a - b for a, b in itertools.pairwise(remaining)]
        assert len(steps) >= 10
        assert max(steps) <= SWEEP_SLICE
        assert held(store) == (0, 0)

    def test_outdated_expiry_times_are_also_swept_a_slice_at_a_time(
        self, store: Store, clock: FakeClock
    ) -> None:
        # persist() (like a plain set) leaves the sweeper's heap entry behind;
        # when those times fall due, discarding them is work under the lock too.
        due = 10 * SWEEP_SLICE
        for i in range(due):
            store.set(f"k{i}", "v", ttl=1)
        for i in range(due):
            store.persist(f"k{i}")
        clock.advance(1)
        seen: list[int] = []
        clock.on_call = lambda: seen.append(len(store._space[2]))
        store.sweep()
        clock.on_call = None
        remaining = [n for n in seen if n] + [len(store._space[2])]
        assert max(a - b for a, b in itertools.pairwise(remaining)) <= SWEEP_SLICE

    def test_the_background_sweeper_reclaims_without_being_called(self, clock: FakeClock) -> None:
        store = Store(clock=clock, sweep_interval=0.001)
        try:
            for i in range(50):
                store.set(f"k{i}", "v", ttl=1)
            store.set("plain", "v")
            clock.advance(1)
            emptied = threading.Event()

            def observe() -> None:  # runs in the sweeper thread, under the lock
                if len(store._space[1]) == 0:
                    emptied.set()

            clock.on_call = observe
            assert emptied.wait(timeout=60), "the background sweep never reclaimed the keys"
            clock.on_call = None
            assert held(store) == (1, 0)
            thread = store._sweeper
            assert thread is not None
        finally:
            store.close()
        thread.join(timeout=60)
        assert not thread.is_alive()

    def test_no_sweeper_thread_until_a_key_expires(self, clock: FakeClock) -> None:
        store = Store(clock=clock)
        try:
            store.set("plain", "v")
            assert store._sweeper is None
            store.set("k", "v", ttl=1)
            assert store._sweeper is not None
        finally:
            store.close()

    def test_sweep_of_a_closed_store_does_nothing(self, store: Store, clock: FakeClock) -> None:
        store.set("k", "v", ttl=1)
        clock.advance(1)
        store.close()
        assert store.sweep() == 0

    def test_expiry_methods_on_a_closed_store_raise(self, store: Store) -> None:
        store.set("k", "v", ttl=10)
        store.close()
        for call in (
            lambda: store.ttl("k"),
            lambda: store.expire("k", 5),
            lambda: store.expire_at("k", seconds(START_MS + 5_000)),
            lambda: store.set("k", "v", ttl=5),
            lambda: store.persist("k"),
        ):
            with pytest.raises(StoreClosedError):
                call()


# ---------------------------------------------------------------- persistence


def decoded(store: Store) -> codec.Snapshot:
    blob = store.medium.read()
    assert blob is not None
    return codec.decode_snapshot(blob)


class TestPersistence:
    @pytest.mark.parametrize("cycle", ["save", "shutdown"])
    def test_expiry_survives_as_an_absolute_time(
        self, medium_factory: MediumFactory, clock: FakeClock, cycle: str
    ) -> None:
        store = Store(medium_factory(), clock=clock, sweep_interval=None)
        store.set("a", "1", ttl=10)
        store.set("b", "2")
        store.db(2).set("c", "3", expire_at=seconds(START_MS + 60_000))
        getattr(store, cycle)()
        clock.advance(4)
        report = store.restore()
        assert report.entries == 3
        assert report.expired == 0
        assert store.expiry_ms("a") == START_MS + 10_000
        assert store.ttl("a") == 6.0
        assert store.ttl("b") is None
        assert store.db(2).expiry_ms("c") == START_MS + 60_000
        store.close()

    def test_keys_expired_at_save_time_are_not_written(
        self, medium_factory: MediumFactory, clock: FakeClock
    ) -> None:
        store = Store(medium_factory(), clock=clock, sweep_interval=None)
        store.set("dead", "x", ttl=1)
        store.set("alive", "y", ttl=10)
        store.set("plain", "z")
        store.db(4).set("dead", "x", ttl=1)  # the only key of keyspace 4
        store.db(6).set("dead", "x", ttl=1)
        store.db(6).set("alive", "y", ttl=5)
        clock.advance(1)  # nothing reads before the save: all still held in memory
        store.save()
        snapshot = decoded(store)
        assert snapshot.spaces == {0: {"alive": "y", "plain": "z"}, 6: {"alive": "y"}}
        assert snapshot.expires == {0: {"alive": START_MS + 10_000}, 6: {"alive": START_MS + 5_000}}
        store.close()

    def test_persist_is_saved_as_no_expiry(
        self, medium_factory: MediumFactory, clock: FakeClock
    ) -> None:
        store = Store(medium_factory(), clock=clock, sweep_interval=None)
        store.set("k", "v", ttl=1)
        store.persist("k")
        store.shutdown()
        assert decoded(store).expires == {}
        clock.advance(3_600)
        store.restore()
        assert store.get("k") == "v"
        assert store.ttl("k") is None
        store.close()

    def test_keys_that_expire_while_shut_down_are_gone_after_restore(
        self, medium_factory: MediumFactory, clock: FakeClock
    ) -> None:
        store = Store(medium_factory(), clock=clock, sweep_interval=None)
        store.set("short", "1", ttl=5)
        store.set("long", "2", ttl=50)
        store.set("plain", "3")
        store.db(1).set("short", "4", ttl=5)
        store.shutdown()
        assert decoded(store).expires[0] == {"short": START_MS + 5_000, "long": START_MS + 50_000}
        clock.advance(10)
        report = store.restore()
        assert report.entries == 2
        assert report.expired == 2
        assert dict(store.items()) == {"long": "2", "plain": "3"}
        assert store.ttl("long") == 40.0
        assert len(store.db(1)) == 0
        assert held(store) == (2, 1)  # not merely hidden: never loaded
        store.close()

    def test_a_store_whose_every_key_expired_says_so(
        self, medium_factory: MediumFactory, clock: FakeClock
    ) -> None:
        store = Store(medium_factory(), clock=clock, sweep_interval=None)
        store.set("a", "1", ttl=1)
        store.set("b", "2", ttl=2)
        store.shutdown()
        clock.advance(2)
        report = store.restore()
        assert (report.entries, report.expired) == (0, 2)
        assert report.why_empty is not None
        assert "expired" in report.why_empty
        store.close()

    def test_reopen_from_a_directory(self, tmp_path: Path, clock: FakeClock) -> None:
        directory = tmp_path / "data"
        with snapkv.open(directory, journal=False, clock=clock, sweep_interval=None) as store:
            store.set("a", "1", ttl=10)
            store.set("b", "2", ttl=100)
            store.set("c", "3")
            store.db(9).set("d", "4", expire_at=seconds(START_MS + 30_000))
        later = FakeClock(START_MS + 20_000)  # another clock: only absolute times carry over
        with snapkv.open(directory, journal=False, clock=later, sweep_interval=None) as store:
            assert store.last_restore is not None
            assert store.last_restore.expired == 1
            assert dict(store.items()) == {"b": "2", "c": "3"}
            assert store.expiry_ms("b") == START_MS + 100_000
            assert store.ttl("b") == 80.0
            assert store.db(9).ttl("d") == 10.0
        later.advance(15)
        with snapkv.open(directory, journal=False, clock=later, sweep_interval=None) as store:
            assert dict(store.items()) == {"b": "2", "c": "3"}
            assert len(store.db(9)) == 0

    def test_journal_replays_expiry_as_absolute_times(
        self, tmp_path: Path, clock: FakeClock
    ) -> None:
        directory = tmp_path / "data"
        store = snapkv.open(directory, clock=clock, sweep_interval=None, journal=True)
        store.set("a", "1", ttl=10)
        store.set("b", "2", ttl=1)
        store.persist("b")
        store.set("c", "3")
        store.expire("c", 20)
        store.set("d", "4", ttl=100)
        store.expire("d", 0)  # deleted
        store.db(2).set("e", "5", ttl=5)
        store.set("f", "6", ttl=30)
        store.set("f", "7", keep_ttl=True)
        store.close()  # no snapshot: everything above is only in the journal
        clock.advance(7)
        with snapkv.open(directory, clock=clock, sweep_interval=None, journal=True) as store:
            assert store.last_restore is not None
            assert store.last_restore.journal_records > 0
            assert dict(store.items()) == {"a": "1", "b": "2", "c": "3", "f": "7"}
            assert store.ttl("a") == 3.0
            assert store.ttl("b") is None
            assert store.ttl("c") == 13.0
            assert store.ttl("f") == 23.0
            assert len(store.db(2)) == 0

    def test_snapshot_version_follows_what_it_holds(self, clock: FakeClock) -> None:
        store = Store(MemoryMedium(), clock=clock, sweep_interval=None)
        store.set("a", "1")
        store.save()
        blob = store.medium.read()
        assert blob is not None
        assert int.from_bytes(blob[8:10], "little") == codec.VERSION
        assert codec.decode(blob) == {"a": "1"}  # an old reader's view still works
        store.expire("a", 10)
        store.save()
        blob = store.medium.read()
        assert blob is not None
        assert int.from_bytes(blob[8:10], "little") == codec.VERSION_EXTENDED
        with pytest.raises(ValueError, match="decode_snapshot"):
            codec.decode(blob)
        store.close()

    def test_a_version_1_snapshot_loads_without_expiry(self, clock: FakeClock) -> None:
        medium = MemoryMedium()
        medium.publish([codec.encode({"a": "1", "b": "2"})])
        store = Store(medium, clock=clock, sweep_interval=None)
        store.restore()
        assert dict(store.items()) == {"a": "1", "b": "2"}
        assert store.ttl("a") is None
        clock.advance(10**9)
        assert len(store) == 2
        store.close()
