"""A stream against a plain Python model, across journal replays, snapshots and transactions.

Hypothesis drives ``StreamView`` on a store in a directory (adds with
explicit and ``ms-*`` IDs, exact MAXLEN/MINID trims, deletes, XSETID,
transactions that fail part way) while a model of Redis 7.0's rules (a
sorted list of entries, the last ID, entries-added, the max deleted ID)
says what must hold. Now and then the store is closed and reopened (the
journal replayed onto the last snapshot) or saved, and every step the
view must read exactly the model: entries, last ID and XINFO's counters.
"""

from __future__ import annotations

import shutil
import tempfile
from typing import Any

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import snapkv
from snapkv.views import StreamView

ID = tuple[int, int]
_ids = st.tuples(st.integers(0, 8), st.integers(0, 3))
_fields = st.lists(
    st.tuples(st.sampled_from(["f", "g", "é"]), st.text("ab\x00|", max_size=3)),
    min_size=1,
    max_size=3,
)


class Model:
    """Redis 7.0's stream rules, spelt out plainly."""

    def __init__(self) -> None:
        self.exists = False
        self.entries: dict[ID, tuple[str, ...]] = {}
        self.last: ID = (0, 0)
        self.added = 0
        self.deleted: ID = (0, 0)

    def next_id(self, given: ID, star_seq: bool) -> ID | None:
        if star_seq:
            if given[0] < self.last[0]:
                return None
            return (given[0], self.last[1] + 1) if given[0] == self.last[0] else (given[0], 0)
        return given if given > self.last else None

    def ordered(self) -> list[tuple[str, tuple[str, ...]]]:
        return [(f"{ms}-{seq}", self.entries[(ms, seq)]) for ms, seq in sorted(self.entries)]

    def snapshot(self) -> tuple[Any, ...]:
        return (self.exists, dict(self.entries), self.last, self.added, self.deleted)

    def restore(self, saved: tuple[Any, ...]) -> None:
        self.exists, self.entries, self.last, self.added, self.deleted = saved
        self.entries = dict(self.entries)


class StreamMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.directory = tempfile.mkdtemp(prefix="snapkv-stream-")
        self.store = snapkv.open(self.directory)
        self.model = Model()

    @property
    def view(self) -> StreamView:
        return StreamView(self.store.db(0), "s")

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _trim_to(self, maxlen: int | None, minid: ID | None) -> None:
        ids = sorted(self.model.entries)
        gone = ids[: max(0, len(ids) - maxlen)] if maxlen is not None else []
        if minid is not None:
            gone = [entry_id for entry_id in ids if entry_id < minid]
        for entry_id in gone:
            del self.model.entries[entry_id]

    @rule(
        given=_ids,
        star_seq=st.booleans(),
        fields=_fields,
        maxlen=st.none() | st.integers(0, 4),
        minid=st.none() | _ids,
    )
    def add(
        self,
        given: ID,
        star_seq: bool,
        fields: list[tuple[str, str]],
        maxlen: int | None,
        minid: ID | None,
    ) -> None:
        if maxlen is not None and minid is not None:
            minid = None
        text = f"{given[0]}-*" if star_seq else f"{given[0]}-{given[1]}"
        minid_text = None if minid is None else f"{minid[0]}-{minid[1]}"
        expected = self.model.next_id(given, star_seq)
        if not star_seq and given == (0, 0):
            expected = None
        if expected is None:
            try:
                self.view.add(fields, text, maxlen=maxlen, minid=minid_text)
            except ValueError:
                return
            raise AssertionError(f"XADD {text} was accepted after {self.model.last}")
        got = self.view.add(fields, text, maxlen=maxlen, minid=minid_text)
        assert got == f"{expected[0]}-{expected[1]}"
        model = self.model
        model.exists = True
        model.entries[expected] = tuple(part for pair in fields for part in pair)
        model.last = expected
        model.added += 1
        self._trim_to(maxlen, minid)

    @rule(ids=st.lists(_ids, min_size=1, max_size=3))
    def delete(self, ids: list[ID]) -> None:
        removed = self.view.delete([f"{ms}-{seq}" for ms, seq in ids])
        present = {entry_id for entry_id in ids if entry_id in self.model.entries}
        assert removed == len(present)
        for entry_id in present:
            del self.model.entries[entry_id]
            self.model.deleted = max(self.model.deleted, entry_id)

    @rule(maxlen=st.none() | st.integers(0, 4), minid=_ids)
    def trim(self, maxlen: int | None, minid: ID) -> None:
        before = len(self.model.entries)
        if maxlen is not None:
            removed = self.view.trim(maxlen=maxlen)
            self._trim_to(maxlen, None)
        else:
            removed = self.view.trim(minid=f"{minid[0]}-{minid[1]}")
            self._trim_to(None, minid)
        assert removed == before - len(self.model.entries)

    @rule(last=_ids, added=st.none() | st.integers(0, 12))
    def set_id(self, last: ID, added: int | None) -> None:
        model = self.model
        top = max(model.entries, default=None)
        refused = (
            not model.exists
            or (top is not None and top > last)
            or (added is not None and added < len(model.entries))
        )
        try:
            self.view.set_id(f"{last[0]}-{last[1]}", entries_added=added)
        except (KeyError, ValueError):
            assert refused
            return
        assert not refused
        model.last = last
        if added is not None:
            model.added = added

    @rule(given=_ids)
    def failed_transaction(self, given: ID) -> None:
        saved = self.model.snapshot()
        try:
            with self.store.transaction():
                self.view.trim(maxlen=1)
                self.view.delete([f"{given[0]}-{given[1]}"])
                self.view.add({"x": "y"}, "*")
                raise KeyboardInterrupt  # any exception: the block is undone
        except KeyboardInterrupt:
            pass
        self.model.restore(saved)

    @rule()
    def reopen(self) -> None:
        self.store.close()
        self.store = snapkv.open(self.directory)

    @precondition(lambda self: self.model.exists)
    @rule()
    def save(self) -> None:
        self.store.save()

    @invariant()
    def reads_as_the_model(self) -> None:
        view, model = self.view, self.model
        assert view.range() == model.ordered()
        if not model.exists:
            assert view.info() is None and "s" not in self.store
            return
        info = view.info()
        assert info is not None
        assert info["last-generated-id"] == f"{model.last[0]}-{model.last[1]}"
        assert info["entries-added"] == model.added
        assert info["max-deleted-entry-id"] == f"{model.deleted[0]}-{model.deleted[1]}"
        assert view.length() == len(model.entries)


StreamMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)
test_stream_matches_the_model = StreamMachine.TestCase
