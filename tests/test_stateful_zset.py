"""Model-based test of sorted sets: SortedSetView against dicts, with expiry and persistence.

The model is, per keyspace, ``{key: (value, expiry_ms or None)}`` of live
keys only, where a value is a ``str`` (a string key, there to be used as
the wrong type) or a non-empty ``dict`` member -> score (a sorted set).
Each rule runs one operation on the Store and on the model and compares the
answers; WrongTypeError must come exactly when the model's key holds a
string, and change nothing; an increment making NaN must raise and change
nothing. The invariant compares every key the run used, in every keyspace:
its type, its ``(member, score)`` pairs in Redis's order and its expiry.

Time moves only when a rule says so (an injected clock). Transactions run a
batch of operations and sometimes raise at the end: memory must then be as
before (undo through each effect's inverse). The journaled machine reopens
its directory and shuts down and restores (every acknowledged write comes
back); the snapshot machine saves, shuts down and restores from a medium.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import snapkv
from snapkv import MemoryMedium, Store
from snapkv.errors import WrongTypeError
from snapkv.store import Keyspace
from snapkv.views.zset import NotANumberError
from support import FakeClock

DATABASES = 2
KEYS = ["a", "b", "c"]
Entry = tuple[Any, int | None]
Space = dict[str, Entry]

INF = math.inf
key_ = st.sampled_from(KEYS)
member = st.sampled_from(["x", "y", "z", "w", "", "\u00e9"])
score = st.sampled_from([-INF, -1.5, -0.0, 0.0, 1.0, 2.0, 2.5, INF])
pairs = st.lists(st.tuples(member, score), min_size=1, max_size=5)
FLAGS = st.sampled_from(["", "nx", "xx", "gt", "lt", "xx gt", "xx lt"])
index = st.integers(-6, 6)

ADD = st.tuples(st.just("add"), key_, pairs, FLAGS, st.booleans())
OPERATIONS = st.one_of(
    ADD,
    ADD,
    ADD,
    st.tuples(st.just("incr"), key_, member, score),
    st.tuples(st.just("remove"), key_, st.lists(member, min_size=1, max_size=3)),
    st.tuples(st.just("pop"), key_, st.booleans(), st.integers(0, 3)),
    st.tuples(st.just("remrank"), key_, index, index),
    st.tuples(st.just("remscore"), key_, score, score, st.booleans(), st.booleans()),
    st.tuples(st.just("rank"), key_, index, index, st.booleans()),
    st.tuples(st.just("score"), key_, score, score, st.booleans(), st.booleans()),
    st.tuples(st.just("position"), key_, member, st.booleans()),
    st.tuples(st.just("clear"), key_),
    st.tuples(st.just("string"), key_, member),
)
STEPS = st.lists(OPERATIONS, min_size=1, max_size=4)


class WrongType(Exception):
    """The model's answer where the Store must raise WrongTypeError."""


def ordered(z: dict[str, float]) -> list[tuple[str, float]]:
    return [(m, s) for s, m in sorted((s, m) for m, s in z.items())]


def redis_span(n: int, start: int, stop: int) -> range:
    start = start + n if start < 0 else start
    stop = stop + n if stop < 0 else stop
    start = max(start, 0)
    if start > stop or start >= n:
        return range(0)
    return range(start, min(stop, n - 1) + 1)


def in_range(s: float, low: float, high: float, low_ex: bool, high_ex: bool) -> bool:
    return (s > low if low_ex else s >= low) and (s < high if high_ex else s <= high)


def on_model(live: Space, op: tuple[Any, ...]) -> Any:
    """What ``op`` answers, done on the model (raises WrongType where the Store must)."""
    name, key = op[0], op[1]
    if name == "string":
        live[key] = (op[2], None)
        return None
    entry = live.get(key)
    if entry is not None and isinstance(entry[0], str):
        raise WrongType
    z: dict[str, float] = dict(entry[0]) if entry is not None else {}
    result: Any = None
    if name == "add":
        flags, ch = op[3].split(), op[4]
        added = changed = 0
        for m, s in op[2]:
            if m not in z:
                if "xx" in flags:
                    continue
                added += 1
            else:
                current = z[m]
                if "nx" in flags or ("gt" in flags and s <= current):
                    continue
                if "lt" in flags and s >= current:
                    continue
                if s == current:
                    continue
                changed += 1
            z[m] = s + 0.0
        result = added + changed if ch else added
    elif name == "incr":
        new = z.get(op[2], 0.0) + op[3] if op[2] in z else op[3]
        if math.isnan(new):
            return NotANumberError
        z[op[2]] = new + 0.0
        result = new
    elif name == "remove":
        gone = set(op[2]) & set(z)
        for m in gone:
            del z[m]
        result = len(gone)
    elif name == "pop":
        order = ordered(z)
        taken = order[::-1][: op[3]] if op[2] else order[: op[3]]
        for m, _ in taken:
            del z[m]
        result = taken
    elif name == "remrank":
        order = ordered(z)
        taken = [order[i] for i in redis_span(len(order), op[2], op[3])]
        for m, _ in taken:
            del z[m]
        result = len(taken)
    elif name == "remscore":
        taken = [m for m, s in z.items() if in_range(s, *op[2:6])]
        for m in taken:
            del z[m]
        result = len(taken)
    elif name == "rank":
        order = ordered(z)[::-1] if op[4] else ordered(z)
        return [order[i] for i in redis_span(len(order), op[2], op[3])]
    elif name == "score":
        return [(m, s) for m, s in ordered(z) if in_range(s, *op[2:6])]
    elif name == "position":
        order = [m for m, _ in ordered(z)]
        if op[2] not in order:
            return None
        found = order.index(op[2])
        return len(order) - 1 - found if op[3] else found
    elif name == "clear":
        z = {}
    if not z:
        live.pop(key, None)
    else:
        live[key] = (z, entry[1] if entry is not None else None)
    return result


def on_store(space: Keyspace, op: tuple[Any, ...]) -> Any:
    """What ``op`` answers, done on the Store through SortedSetView."""
    name, key = op[0], op[1]
    view = space.zsets[key]
    if name == "add":
        flags = {flag: True for flag in op[3].split()}
        return view.add(op[2], ch=op[4], **flags)
    if name == "incr":
        try:
            return view.incr(op[2], op[3])
        except NotANumberError:
            return NotANumberError
    if name == "remove":
        return view.remove(*op[2])
    if name == "pop":
        return view.pop_max(op[3]) if op[2] else view.pop_min(op[3])
    if name == "remrank":
        return view.remove_range_by_rank(op[2], op[3])
    if name == "remscore":
        low, high, low_ex, high_ex = op[2:6]
        return view.remove_range_by_score(low, high, min_exclusive=low_ex, max_exclusive=high_ex)
    if name == "rank":
        return view.range_by_rank(op[2], op[3], reverse=op[4], with_scores=True)
    if name == "score":
        low, high, low_ex, high_ex = op[2:6]
        return view.range_by_score(
            low, high, min_exclusive=low_ex, max_exclusive=high_ex, with_scores=True
        )
    if name == "position":
        return view.rank(op[2], reverse=op[3])
    if name == "clear":
        return view.clear()
    space.set(key, op[2])
    return None


class Rollback(Exception):
    """Raised at the end of a transaction's block to undo it."""


class ZSetMachine(RuleBasedStateMachine):
    """A Store with an injected clock against the model."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.model: list[Space] = [{} for _ in range(DATABASES)]
        self.current = 0
        self.store = self.open_store()

    def open_store(self) -> Store:
        raise NotImplementedError

    def teardown(self) -> None:
        self.store.close()

    @property
    def space(self) -> Keyspace:
        return self.store.db(self.current)

    def copy_model(self) -> list[Space]:
        return [
            {k: (dict(v) if isinstance(v, dict) else v, at) for k, (v, at) in s.items()}
            for s in self.model
        ]

    def run(self, op: tuple[Any, ...]) -> None:
        before = self.copy_model()
        try:
            expected = on_model(self.model[self.current], op)
        except WrongType:
            self.model = before
            with pytest.raises(WrongTypeError):
                on_store(self.space, op)
            return
        assert on_store(self.space, op) == expected, op

    # ---------------------------------------------------------------- rules

    @initialize(seeds=st.lists(pairs, min_size=3, max_size=3))
    def seed(self, seeds: list[list[tuple[str, float]]]) -> None:
        """Sorted sets of a few members in the first keyspace, so operations meet real ones."""
        for key, chosen in zip(KEYS, seeds, strict=True):
            self.run(("add", key, chosen, "", False))

    @rule(ops=STEPS)
    def operations(self, ops: list[tuple[Any, ...]]) -> None:
        for op in ops:
            self.run(op)

    @rule(db=st.integers(0, DATABASES - 1))
    def select(self, db: int) -> None:
        self.current = db

    @rule(key=key_, ttl_ms=st.integers(1, 3000))
    def expire(self, key: str, ttl_ms: int) -> None:
        live = self.model[self.current]
        assert self.space.expire(key, ttl_ms / 1000) is (key in live)
        if key in live:
            live[key] = (live[key][0], self.clock.ms + ttl_ms)

    @rule(ms=st.integers(0, 3000))
    def advance(self, ms: int) -> None:
        self.clock.ms += ms
        for live in self.model:
            for key in [k for k, (_, at) in live.items() if at is not None and at <= self.clock.ms]:
                del live[key]

    @rule(ops=st.lists(OPERATIONS, min_size=1, max_size=6), fail=st.booleans())
    def transaction(self, ops: list[tuple[Any, ...]], fail: bool) -> None:
        before = self.copy_model()
        try:
            with self.store.transaction():
                for op in ops:
                    self.run(op)
                if fail:
                    raise Rollback
        except Rollback:
            self.model = before

    # ------------------------------------------------------------ invariant

    @invariant()
    def matches_the_model(self) -> None:
        for db, live in enumerate(self.model):
            space = self.store.db(db)
            for key in KEYS:
                entry = live.get(key)
                if entry is None:
                    assert space.key_type(key) is None, (db, key)
                    continue
                value, at = entry
                if isinstance(value, str):
                    assert space.get(key) == value
                else:
                    assert space.key_type(key) == "zset"
                    assert list(space.zsets[key].items()) == ordered(value), (db, key)
                assert space.expiry_ms(key) == at


class JournalMachine(ZSetMachine):
    """On a journaled directory: a reopen, or a shutdown and restore, brings back every write."""

    def open_store(self) -> Store:
        self.directory = Path(tempfile.mkdtemp(prefix="snapkv-stateful-zset-"))
        return self.reopen_store()

    def reopen_store(self) -> Store:
        return snapkv.open(
            self.directory,
            databases=DATABASES,
            clock=self.clock,
            sweep_interval=None,
            fsync="never",
        )

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    @rule()
    def reopen(self) -> None:
        self.store.close()
        self.store = self.reopen_store()

    @rule()
    def shutdown_and_restore(self) -> None:
        self.store.shutdown()
        assert len(self.store) == 0
        self.store.restore()

    @rule()
    def save(self) -> None:
        self.store.save()


class SnapshotMachine(ZSetMachine):
    """On a memory medium without a journal: what comes back is the last snapshot."""

    def open_store(self) -> Store:
        self.medium = MemoryMedium()
        self.durable: list[Space] = [{} for _ in range(DATABASES)]
        return Store(self.medium, databases=DATABASES, clock=self.clock, sweep_interval=None)

    @rule()
    def save(self) -> None:
        self.store.save()
        self.durable = self.copy_model()

    @rule()
    def shutdown(self) -> None:
        self.store.shutdown()
        self.durable = self.copy_model()
        self.model = [{} for _ in range(DATABASES)]

    @rule()
    def restore(self) -> None:
        self.store.restore()
        self.model = [
            {k: e for k, e in space.items() if e[1] is None or e[1] > self.clock.ms}
            for space in self.durable
        ]
        self.durable = self.copy_model()


SETTINGS = settings(
    max_examples=30,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestJournaledSortedSets = JournalMachine.TestCase
TestJournaledSortedSets.settings = SETTINGS
TestSnapshotSortedSets = SnapshotMachine.TestCase
TestSnapshotSortedSets.settings = SETTINGS
