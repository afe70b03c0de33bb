"""Model-based tests of hashes and sets: the views against plain Python dicts and sets.

One state machine per type. The model is, per keyspace, ``{key: (value,
expiry_ms or None)}`` holding only live keys (a ``dict`` for a hash, a
``set`` for a set, a ``str`` for a key of another type). A clock the test
moves expires keys; rules write through the views, across keyspaces, and
the invariant compares every key the run used with the model. The store
is journaled in a directory: ``reopen`` closes it and opens the directory
again, ``shutdown_restore`` publishes a snapshot (containers included) and
restores it, ``save`` snapshots while writes go on, and ``failed_transaction``
runs writes in ``store.transaction()`` and raises, which must leave nothing
of them. Using a key of another type must raise WrongTypeError and change
nothing.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import snapkv
from snapkv import Store
from snapkv.errors import WrongTypeError
from support import FakeClock

DATABASES = 3
KEYS = st.sampled_from(["a", "b", "c", "s"])
ITEMS = st.sampled_from(["x", "y", "z", "1", ""])
VALUES = st.sampled_from(["v", "1", "-2", "2.5", ""])
DB = st.integers(0, DATABASES - 1)
TTL_MS = st.integers(1, 2_000)
STEP_MS = st.integers(0, 2_500)


class Abort(Exception):
    """Raised at the end of a transaction's block to roll it back."""


class ContainerMachine(RuleBasedStateMachine):
    """What both machines share: the store, the clock, the model and the lifecycle rules."""

    KIND: type = dict

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.directory = Path(tempfile.mkdtemp(prefix="snapkv-stateful-"))
        self.store = self._open()
        self.model: list[dict[str, tuple[Any, int | None]]] = [{} for _ in range(DATABASES)]

    def _open(self) -> Store:
        return snapkv.open(
            self.directory,
            clock=self.clock,
            sweep_interval=None,
            databases=DATABASES,
            fsync="no",  # durability is not what these rules check; fsyncs would dominate
        )

    def teardown(self) -> None:
        if not self.store.closed:
            self.store.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    # ----------------------------------------------------------- the model

    def now(self) -> int:
        return self.clock.ms

    def live(self, db: int, key: str) -> Any:
        """The model's value at ``key`` (``None``: missing or expired)."""
        entry = self.model[db].get(key)
        if entry is None:
            return None
        value, at = entry
        if at is not None and at <= self.now():
            del self.model[db][key]
            return None
        return value

    def put(self, db: int, key: str, value: Any, *, keep_ttl: bool = True) -> None:
        """Set the model's ``key``; an empty container removes the key."""
        if not value and not isinstance(value, str):
            self.model[db].pop(key, None)
            return
        old = self.model[db].get(key)
        at = old[1] if keep_ttl and old is not None and self.live(db, key) is not None else None
        self.model[db][key] = (value, at)

    def own(self, db: int, key: str) -> Any:
        """A copy of the model's container at ``key``; ``None`` if it holds a string."""
        value = self.live(db, key)
        if value is None:
            return self.KIND()
        if isinstance(value, str):
            return None
        return self.KIND(value)

    # ----------------------------------------------------------- lifecycle

    @rule(db=DB, key=KEYS, value=VALUES)
    def set_string(self, db: int, key: str, value: str) -> None:
        self.store.db(db).set(key, value)
        self.model[db][key] = (value, None)

    @rule(db=DB, key=KEYS, ttl=TTL_MS)
    def expire(self, db: int, key: str, ttl: int) -> None:
        present = self.live(db, key) is not None
        assert self.store.db(db).expire(key, ttl / 1000) == present
        if present:
            self.model[db][key] = (self.model[db][key][0], self.now() + ttl)

    @rule(db=DB, key=KEYS)
    def delete(self, db: int, key: str) -> None:
        assert self.store.db(db).delete(key) == (self.live(db, key) is not None)
        self.model[db].pop(key, None)

    @rule(ms=STEP_MS)
    def advance(self, ms: int) -> None:
        self.clock.ms += ms

    @rule()
    def reopen(self) -> None:
        self.store.close()
        self.store = self._open()

    @rule()
    def shutdown_restore(self) -> None:
        self.store.shutdown()
        self.store.restore()

    @rule()
    def save(self) -> None:
        self.store.save()

    @invariant()
    def matches_the_model(self) -> None:
        for db in range(DATABASES):
            keyspace = self.store.db(db)
            for key in ("a", "b", "c", "s"):
                expected = self.live(db, key)
                if expected is None:
                    assert keyspace.key_type(key) is None, (db, key)
                elif isinstance(expected, str):
                    assert keyspace.get(key) == expected, (db, key)
                else:
                    assert self.read(db, key) == expected, (db, key)
                    at = self.model[db][key][1]
                    assert keyspace.expiry_ms(key) == at, (db, key)

    def read(self, db: int, key: str) -> Any:
        raise NotImplementedError


class HashMachine(ContainerMachine):
    KIND = dict

    def read(self, db: int, key: str) -> Any:
        return self.store.db(db).hashes[key].to_dict()

    def _write(self, db: int, key: str, change: Any) -> None:
        """Run ``change(view)`` on the store and on the model's copy, or expect WRONGTYPE."""
        expected = self.own(db, key)
        view = self.store.db(db).hashes[key]
        if expected is None:
            with pytest.raises(WrongTypeError):
                change(view)
            return
        ours = change(view)
        theirs = change(expected)
        assert ours == theirs
        self.put(db, key, expected)

    @rule(db=DB, key=KEYS, field=ITEMS, value=VALUES)
    def set_field(self, db: int, key: str, field: str, value: str) -> None:
        self._write(db, key, lambda h: h.__setitem__(field, value))

    @rule(db=DB, key=KEYS, pairs=st.dictionaries(ITEMS, VALUES, max_size=3))
    def update(self, db: int, key: str, pairs: dict[str, str]) -> None:
        self._write(db, key, lambda h: h.update(pairs))

    @rule(db=DB, key=KEYS, field=ITEMS)
    def pop(self, db: int, key: str, field: str) -> None:
        self._write(db, key, lambda h: h.pop(field, None))

    @rule(db=DB, key=KEYS, fields=st.lists(ITEMS, max_size=3))
    def delete_many(self, db: int, key: str, fields: list[str]) -> None:
        def delete(h: Any) -> int:
            if isinstance(h, dict):
                return sum(h.pop(f, None) is not None for f in set(fields))
            return int(h.delete_many(fields))

        self._write(db, key, delete)

    @rule(db=DB, key=KEYS, field=ITEMS, amount=st.integers(-5, 5))
    def incr(self, db: int, key: str, field: str, amount: int) -> None:
        def incr(h: Any) -> Any:
            if isinstance(h, dict):
                old = h.get(field, "0")
                if not old.lstrip("-").isdigit():
                    return "error"
                h[field] = str(int(old) + amount)
                return int(h[field])
            try:
                return h.incr(field, amount)
            except ValueError:
                return "error"

        self._write(db, key, incr)

    @rule(db=DB, key=KEYS, field=ITEMS, value=VALUES)
    def set_if_missing(self, db: int, key: str, field: str, value: str) -> None:
        def setnx(h: Any) -> bool:
            if isinstance(h, dict):
                if field in h:
                    return False
                h[field] = value
                return True
            return bool(h.set_if_missing(field, value))

        self._write(db, key, setnx)

    @rule(db=DB, key=KEYS)
    def clear(self, db: int, key: str) -> None:
        self._write(db, key, lambda h: h.clear())

    @rule(db=DB, key=KEYS, field=ITEMS, value=VALUES)
    def failed_transaction(self, db: int, key: str, field: str, value: str) -> None:
        if isinstance(self.live(db, key), str):
            return
        with pytest.raises(Abort), self.store.transaction():
            self.store.db(db).hashes[key][field] = value
            self.store.db(db).hashes[key].pop(field, None)
            self.store.db(db).hashes[key].update({field: value, "extra": "1"})
            raise Abort


class SetMachine(ContainerMachine):
    KIND = set

    def read(self, db: int, key: str) -> Any:
        return self.store.db(db).sets[key].to_set()

    def _write(self, db: int, key: str, change: Any) -> None:
        expected = self.own(db, key)
        view = self.store.db(db).sets[key]
        if expected is None:
            with pytest.raises(WrongTypeError):
                change(view)
            return
        assert change(view) == change(expected)
        self.put(db, key, expected)

    @rule(db=DB, key=KEYS, members=st.lists(ITEMS, max_size=4))
    def add_many(self, db: int, key: str, members: list[str]) -> None:
        def add(s: Any) -> int:
            if isinstance(s, set):
                new = set(members) - s
                s |= new
                return len(new)
            return int(s.add_many(members))

        self._write(db, key, add)

    @rule(db=DB, key=KEYS, members=st.lists(ITEMS, max_size=4))
    def remove_many(self, db: int, key: str, members: list[str]) -> None:
        def remove(s: Any) -> int:
            if isinstance(s, set):
                gone = set(members) & s
                s -= gone
                return len(gone)
            return int(s.remove_many(members))

        self._write(db, key, remove)

    @rule(db=DB, key=KEYS, count=st.integers(0, 4))
    def pop_many(self, db: int, key: str, count: int) -> None:
        expected = self.own(db, key)
        view = self.store.db(db).sets[key]
        if expected is None:
            with pytest.raises(WrongTypeError):
                view.pop_many(count)
            return
        taken = view.pop_many(count)
        assert len(taken) == min(count, len(expected)) and set(taken) <= expected
        self.put(db, key, expected - set(taken))

    @rule(db=DB, source=KEYS, other=KEYS, member=ITEMS)
    def move(self, db: int, source: str, other: str, member: str) -> None:
        target = other
        src, dst = self.own(db, source), self.own(db, target)
        view = self.store.db(db).sets[source]
        if src is None or (src and dst is None):
            with pytest.raises(WrongTypeError):
                view.move(member, target)
            return
        moved = view.move(member, target)
        assert moved == (member in src)
        if moved and source != target:
            self.put(db, source, src - {member})
            self.put(db, target, dst | {member})

    @rule(
        db=DB,
        how=st.sampled_from(["intersection", "union", "difference"]),
        dest=KEYS,
        keys=st.lists(KEYS, min_size=1, max_size=3),
    )
    def store_algebra(self, db: int, how: str, dest: str, keys: list[str]) -> None:
        sets_ = [self.own(db, key) for key in keys]
        view = self.store.db(db).sets[keys[0]]
        call = getattr(view, f"{how}_store")
        if any(s is None for s in sets_):
            with pytest.raises(WrongTypeError):
                call(dest, *keys[1:])
            return
        if how == "intersection":
            result = set.intersection(*sets_)
        elif how == "union":
            result = set.union(*sets_)
        else:
            result = sets_[0].difference(*sets_[1:])
        assert call(dest, *keys[1:]) == len(result)
        if result:
            self.model[db][dest] = (result, None)  # a STORE replaces the key and its expiry
        else:
            self.model[db].pop(dest, None)

    @rule(db=DB, key=KEYS, member=ITEMS)
    def failed_transaction(self, db: int, key: str, member: str) -> None:
        if isinstance(self.live(db, key), str):
            return
        with pytest.raises(Abort), self.store.transaction():
            sets_ = self.store.db(db).sets
            sets_[key].add(member)
            sets_[key].pop_many(2)
            sets_[key].union_store("c", key)
            raise Abort


SETTINGS = settings(
    max_examples=25,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestHashMachine = HashMachine.TestCase
TestHashMachine.settings = SETTINGS
TestSetMachine = SetMachine.TestCase
TestSetMachine.settings = SETTINGS
