"""Model-based test of lists: ListView against Python lists, with expiry, keyspaces and persistence.

The model is, per keyspace, ``{key: (value, expiry_ms or None)}`` of live
keys only, where a value is a ``str`` (a string key, there to be used as
the wrong type) or a non-empty Python ``list`` (a list key). Each rule runs
one operation on the Store and on the model and compares the answers;
WrongTypeError must come exactly when the model's key holds a string, and
change nothing. The invariant compares every key the run used, in every
keyspace: its type, elements and expiry time.

Time moves only when a rule says so (an injected clock), so expired keys
meet operations before any sweep. Transactions run a batch of operations
and sometimes raise at the end: memory must then be exactly as before.
The journaled machine reopens its directory (every acknowledged write
must come back) and shuts down and restores; the snapshot machine saves,
shuts down and restores from a medium (the last snapshot must come back).
"""

from __future__ import annotations

import shutil
import tempfile
from collections import deque
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
from support import FakeClock

DATABASES = 2
#: Where the journaled machine's directories go: memory-backed when the
#: system has it, as the machine opens and syncs a directory many times a run.
SCRATCH = "/dev/shm" if Path("/dev/shm").is_dir() else None
KEYS = ["a", "b", "c"]
Entry = tuple[Any, int | None]
Space = dict[str, Entry]

key_ = st.sampled_from(KEYS)
element = st.sampled_from(["x", "y", "z", "", "\u00e9"])
elements = st.lists(element, min_size=1, max_size=6)
index = st.integers(-6, 6)
count = st.integers(-4, 4)

#: (push, key, values, at the head, only if the list exists (1 in 4), which method).
PUSH = st.tuples(
    st.just("push"),
    key_,
    elements,
    st.booleans(),
    st.sampled_from([False, False, False, True]),
    st.integers(0, 2),
)
#: Pushes are drawn as often as everything else together, so lists grow long enough to matter.
OPERATIONS = st.one_of(
    PUSH,
    PUSH,
    PUSH,
    PUSH,
    st.tuples(st.just("pop"), key_, st.booleans(), st.one_of(st.none(), st.integers(0, 4))),
    st.tuples(st.just("set_at"), key_, index, element),
    st.tuples(st.just("insert"), key_, index, element),
    st.tuples(st.just("pivot"), key_, st.booleans(), element, element),
    st.tuples(st.just("remove"), key_, element, count),
    st.tuples(st.just("trim"), key_, index, index),
    st.tuples(st.just("move"), key_, key_, st.booleans(), st.booleans()),
    st.tuples(st.just("clear"), key_),
    st.tuples(st.just("range"), key_, index, index),
    st.tuples(st.just("positions"), key_, element, st.sampled_from([1, 2, -1, -2]), count),
    st.tuples(st.just("get"), key_, index),
    st.tuples(st.just("string"), key_, element),
)
#: What a rule runs: a few operations, so the other rules do not crowd them out.
STEPS = st.lists(OPERATIONS, min_size=1, max_size=4)


class WrongType(Exception):
    """The model's answer where the Store must raise WrongTypeError."""


def model_list(live: Space, key: str) -> list[str] | None:
    entry = live.get(key)
    if entry is None:
        return None
    if isinstance(entry[0], str):
        raise WrongType
    items: list[str] = entry[0]
    return items


def store_list(live: Space, key: str, items: list[str]) -> None:
    """The model after a write: an empty list is no key; a new one has no expiry."""
    if not items:
        live.pop(key, None)
    elif key in live:
        live[key] = (items, live[key][1])
    else:
        live[key] = (items, None)


def redis_span(n: int, start: int, stop: int) -> range:
    start = start + n if start < 0 else start
    stop = stop + n if stop < 0 else stop
    start = max(start, 0)
    if start > stop or start >= n:
        return range(0)
    return range(start, min(stop, n - 1) + 1)


def on_model(live: Space, op: tuple[Any, ...]) -> Any:
    """What ``op`` answers, done on the model (raises WrongType where the Store must)."""
    name, key = op[0], op[1]
    if name == "string":
        live[key] = (op[2], None)
        return None
    if name == "move":
        source = model_list(live, key)
        if source is None:
            return None
        target = model_list(live, op[2])
        moved = source[0] if op[3] else source[-1]
        if key == op[2] and len(source) == 1:
            return moved
        source = source[1:] if op[3] else source[:-1]
        store_list(live, key, source)
        target = list(source) if key == op[2] else list(target or [])
        target = [moved, *target] if op[4] else [*target, moved]
        store_list(live, op[2], target)
        return moved
    found = model_list(live, key)
    items = list(found or [])
    result: Any = None
    if name == "push":
        _, _, values, left, existing, _ = op
        if found is None and existing:
            return 0
        for value in values:
            if left:
                items.insert(0, value)
            else:
                items.append(value)
        result = len(items)
    elif name == "pop":
        left, many = op[2], op[3]
        if many is None:
            if not items:
                return IndexError
            result = items.pop(0 if left else -1)
        else:
            result = items[:many] if left else items[::-1][:many]
            items = items[len(result) :] if left else items[: len(items) - len(result)]
    elif name == "set_at":
        if found is None:
            return KeyError
        if not -len(items) <= op[2] < len(items):
            return False
        items[op[2]] = op[3]
        result = True
    elif name == "insert":
        model = deque(items)
        model.insert(op[2], op[3])
        items = list(model)
    elif name == "pivot":
        if found is None:
            return 0
        if op[3] not in items:
            return -1
        items.insert(items.index(op[3]) + op[2], op[4])
        result = len(items)
    elif name == "remove":
        value, n = op[2], op[3]
        hits = [i for i, v in enumerate(items) if v == value]
        chosen = set(hits if n == 0 else hits[:n] if n > 0 else hits[n:])
        items = [v for i, v in enumerate(items) if i not in chosen]
        result = len(chosen)
    elif name == "trim":
        kept = redis_span(len(items), op[2], op[3])
        result = len(items) - len(kept) if found is not None else 0
        items = [items[i] for i in kept]
    elif name == "clear":
        items = []
    elif name == "range":
        return [items[i] for i in redis_span(len(items), op[2], op[3])]
    elif name == "positions":
        value, rank, n = op[2], op[3], abs(op[4])
        indexes = [i for i, v in enumerate(items) if v == value]
        if rank < 0:
            indexes.reverse()
        indexes = indexes[abs(rank) - 1 :]
        return indexes[:n] if n else indexes
    elif name == "get":
        return items[op[2]] if -len(items) <= op[2] < len(items) else None
    store_list(live, key, items)
    return result


def on_store(space: Keyspace, op: tuple[Any, ...]) -> Any:
    """What ``op`` answers, done on the Store through ListView."""
    name, key = op[0], op[1]
    view = space.lists[key]
    if name == "push":
        _, _, values, left, existing, how = op
        if existing or how == 0:
            return view.push(values, left=left, existing=existing)
        if how == 1 and len(values) == 1:
            view.appendleft(values[0]) if left else view.append(values[0])
            return len(view)
        return view.extendleft(values) if left else view.extend(values)
    if name == "pop":
        left, many = op[2], op[3]
        if many is None:
            try:
                return view.popleft() if left else view.pop()
            except IndexError:
                return IndexError
        return view.pop_many(many, left=left)
    if name == "set_at":
        try:
            return view.set_at(op[2], op[3])
        except KeyError:
            return KeyError
    if name == "insert":
        return view.insert(op[2], op[3])
    if name == "pivot":
        return view.insert_after(op[3], op[4]) if op[2] else view.insert_before(op[3], op[4])
    if name == "remove":
        return view.remove(op[2], op[3])
    if name == "trim":
        return view.trim(op[2], op[3])
    if name == "move":
        return view.move_to(op[2], from_left=op[3], to_left=op[4])
    if name == "clear":
        return view.clear()
    if name == "range":
        return view.range(op[2], op[3])
    if name == "positions":
        return view.positions(op[2], op[3], abs(op[4]))
    if name == "get":
        return view.get(op[2])
    space.set(key, op[2])
    return None


class Rollback(Exception):
    """Raised at the end of a transaction's block to undo it."""


class ListMachine(RuleBasedStateMachine):
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
            {k: (list(v) if isinstance(v, list) else v, at) for k, (v, at) in s.items()}
            for s in self.model
        ]

    def run(self, op: tuple[Any, ...]) -> None:
        live = self.model[self.current]
        before = {k: (list(v) if isinstance(v, list) else v, at) for k, (v, at) in live.items()}
        try:
            expected = on_model(live, op)
        except WrongType:
            self.model[self.current] = before
            with pytest.raises(WrongTypeError):
                on_store(self.space, op)
            return
        assert on_store(self.space, op) == expected, op

    # ---------------------------------------------------------------- rules

    @initialize(seeds=st.lists(st.lists(element, min_size=2, max_size=8), min_size=3, max_size=3))
    def seed(self, seeds: list[list[str]]) -> None:
        """Lists of a few elements in the first keyspace, so operations meet real lists."""
        for key, values in zip(KEYS, seeds, strict=True):
            self.run(("push", key, values, False, False, 0))

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
                    assert space.key_type(key) == "list"
                    assert list(space.lists[key]) == value, (db, key)
                assert space.expiry_ms(key) == at


class JournalMachine(ListMachine):
    """On a journaled directory: a reopen, or a shutdown and restore, brings back every write."""

    def open_store(self) -> Store:
        self.directory = Path(tempfile.mkdtemp(prefix="snapkv-stateful-list-", dir=SCRATCH))
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


class SnapshotMachine(ListMachine):
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
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestJournaledLists = JournalMachine.TestCase
TestJournaledLists.settings = SETTINGS
TestSnapshotLists = SnapshotMachine.TestCase
TestSnapshotLists.settings = SETTINGS
