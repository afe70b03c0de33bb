"""Model-based test of the mapping: a Store against a plain dict plus the last published snapshot.

Keyspace 0 only, no expiry, no journal: the MutableMapping methods, save,
shutdown, restore and reopen, with text full of the codec's separators and
surrogate halves. Keyspaces, expiry, the journal and transactions are
modelled in ``test_store_stateful_keyspaces.py``.

As in Hypothesis's ``DatabaseComparison`` example, every rule applies one
operation to the Store and to the model, and the invariants check after each
step that they agree. A failure shrinks to a short program of rule calls.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
)

import snapkv
from snapkv import MemoryMedium, Store, codec

# Characters the codec must survive: its separators, surrogate halves that
# could pair up across a boundary, and multi-byte code points.
SPECIAL = [*codec.SEPARATORS, "\ud800", "\udbff", "\udc00", "\udfff", "😀", "e", "\u0301", "|"]
TEXT = st.text(
    alphabet=st.one_of(st.sampled_from(SPECIAL), st.characters(exclude_categories=())),
    max_size=12,
)


class StoreComparison(RuleBasedStateMachine):
    """Store vs. ``model`` (memory) and ``published`` (newest snapshot, or None)."""

    keys = Bundle("keys")

    def __init__(self) -> None:
        super().__init__()
        self.model: dict[str, str] = {}
        self.published: dict[str, str] | None = None
        self.store = self.open_store()

    def open_store(self) -> Store:
        raise NotImplementedError

    def reopen_store(self) -> Store:
        raise NotImplementedError

    def teardown(self) -> None:
        self.store.close()

    @initialize(target=keys, first=st.lists(TEXT, min_size=1, max_size=4))
    def first_keys(self, first: list[str]) -> MultipleResults[str]:
        return multiple(*first)

    @rule(target=keys, key=TEXT)
    def new_key(self, key: str) -> str:
        return key

    @rule(key=keys, value=TEXT)
    def set(self, key: str, value: str) -> None:
        self.store.set(key, value)
        self.model[key] = value

    @rule(key=keys, value=TEXT)
    def setitem(self, key: str, value: str) -> None:
        self.store[key] = value
        self.model[key] = value

    @rule(key=keys)
    def get(self, key: str) -> None:
        assert self.store.get(key) == self.model.get(key)
        assert (key in self.store) == (key in self.model)

    @rule(key=keys)
    def delete(self, key: str) -> None:
        assert self.store.delete(key) == (key in self.model)
        self.model.pop(key, None)

    @rule(key=keys)
    def delitem(self, key: str) -> None:
        if key in self.model:
            del self.store[key]
            del self.model[key]
        else:
            with pytest.raises(KeyError):
                del self.store[key]

    @rule()
    def clear(self) -> None:
        self.store.clear()
        self.model.clear()

    @rule()
    def save(self) -> None:
        self.store.save()
        self.published = dict(self.model)

    @rule()
    def shutdown(self) -> None:
        self.store.shutdown()
        self.published = dict(self.model)
        self.model.clear()

    @rule()
    def restore(self) -> None:
        report = self.store.restore()
        self.model = dict(self.published or {})
        assert report.entries == len(self.model)
        assert (report.generation is None) == (self.published is None)

    @rule()
    def reopen(self) -> None:
        self.store.close()
        self.store = self.reopen_store()
        self.model = dict(self.published or {})

    @invariant()
    def contents_agree(self) -> None:
        assert len(self.store) == len(self.model)
        assert dict(self.store.items()) == self.model

    @invariant()
    def newest_snapshot_agrees(self) -> None:
        blob = self.store.medium.read()
        if self.published is None:
            assert blob is None
        else:
            assert blob is not None
            assert codec.decode(blob) == self.published


class MemoryStoreComparison(StoreComparison):
    def open_store(self) -> Store:
        self.medium = MemoryMedium()
        return Store(self.medium)

    def reopen_store(self) -> Store:
        store = Store(self.medium)
        store.restore()
        return store


class FileStoreComparison(StoreComparison):
    def open_store(self) -> Store:
        self.directory = Path(tempfile.mkdtemp(prefix="snapkv-stateful-"))
        return self.reopen_store()

    def reopen_store(self) -> Store:
        # Snapshots only, and the model's reopen loads what was published:
        # close publishes nothing.
        return snapkv.open(self.directory, journal=False, save_on_close=False)

    def teardown(self) -> None:
        try:
            super().teardown()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


SETTINGS = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

TestMemoryStore = MemoryStoreComparison.TestCase
TestMemoryStore.settings = SETTINGS
TestFileStore = FileStoreComparison.TestCase
TestFileStore.settings = SETTINGS
