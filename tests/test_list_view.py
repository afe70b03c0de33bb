"""ListView, the Python API of lists: deque's behaviour where deque has a name for it,
Redis's (LRANGE, LTRIM, LREM, LPOS, LINSERT, LSET, LMOVE) where it has more to say.

Each method is checked against a plain Python list doing the same thing,
then for the rules every view keeps: one journal record per call (so a
reopened directory holds exactly what was acknowledged), WrongTypeError
for another type with nothing changed, TypeError for a non-str element,
expiry and the missing key read as an empty list.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

import snapkv
from snapkv import MemoryMedium, Store
from snapkv.errors import WrongTypeError
from snapkv.journal import scan_journal
from snapkv.values import lists
from snapkv.views import ListView
from support import FakeClock


@pytest.fixture
def store() -> Store:
    return Store()


def made(store: Store, *values: str, key: str = "l") -> ListView:
    view = store.lists[key]
    view.extend(values)
    return view


# ----------------------------------------------------------------- deque-like


def test_pushes_and_pops_behave_as_a_deque(store: Store) -> None:
    view, model = store.lists["l"], deque[str]()
    for name, args in [
        ("append", ("a",)),
        ("appendleft", ("b",)),
        ("extend", (["c", "d"],)),
        ("extendleft", (["e", "f"],)),
        ("append", ("g",)),
    ]:
        getattr(view, name)(*args)
        getattr(model, name)(*args)
        assert list(view) == list(model)
    assert view.pop() == model.pop() and view.popleft() == model.popleft()
    assert list(view) == list(model) and len(view) == len(model)


def test_pop_of_an_empty_or_missing_list_raises_index_error(store: Store) -> None:
    with pytest.raises(IndexError):
        store.lists["missing"].pop()
    with pytest.raises(IndexError):
        store.lists["missing"].popleft()
    view = made(store, "only")
    assert view.popleft() == "only"
    assert "l" not in store  # the last element took the key with it
    with pytest.raises(IndexError):
        view.pop()


def test_pop_many_from_either_end_in_the_order_they_left(store: Store) -> None:
    view = made(store, *"abcdef")
    assert view.pop_many(2) == ["a", "b"]
    assert view.pop_many(3, left=False) == ["f", "e", "d"]
    assert view.pop_many(0) == []
    assert view.pop_many(10) == ["c"] and not view.exists()
    assert view.pop_many(1) == []
    with pytest.raises(ValueError, match="count"):
        view.pop_many(-1)


def test_indexing_and_slices_match_a_python_list(store: Store) -> None:
    values = [str(i) for i in range(200)]
    view = made(store, *values)
    for i in [0, 1, 63, 64, 100, 199, -1, -64, -65, -200]:
        assert view[i] == values[i]
    for bad in [200, -201]:
        with pytest.raises(IndexError):
            view[bad]
        assert view.get(bad, "default") == "default"
    for s in [slice(None), slice(5, 9), slice(190, None), slice(-3, None), slice(10, 2)]:
        assert view[s] == values[s]
    assert view[::7] == values[::7] and view[::-1] == values[::-1]
    assert store.lists["missing"][0:5] == []
    with pytest.raises(IndexError):
        store.lists["missing"][0]


def test_contains_iter_len_and_index(store: Store) -> None:
    view = made(store, "a", "b", "a")
    assert "b" in view and "z" not in view and 3 not in view
    snapshot = iter(view)
    view.append("c")
    assert list(snapshot) == ["a", "b", "a"]  # iteration reads a copy
    assert view.index("a") == 0 and view.index("c") == 3
    with pytest.raises(ValueError, match="not in list"):
        view.index("z")
    assert len(store.lists["missing"]) == 0 and not store.lists["missing"]


def test_setitem_replaces_or_raises_index_error(store: Store) -> None:
    view = made(store, "a", "b", "c")
    view[0] = "A"
    view[-1] = "C"
    assert list(view) == ["A", "b", "C"]
    for bad in [3, -4]:
        with pytest.raises(IndexError):
            view[bad] = "x"
    with pytest.raises(IndexError):
        store.lists["missing"][0] = "x"
    with pytest.raises(KeyError):
        store.lists["missing"].set_at(0, "x")
    assert view.set_at(5, "x") is False and "missing" not in store


@pytest.mark.parametrize("index", [-10, -3, -1, 0, 1, 2, 3, 10])
def test_insert_clips_as_deque_insert(store: Store, index: int) -> None:
    view, model = made(store, "a", "b", "c"), deque(["a", "b", "c"])
    view.insert(index, "x")
    model.insert(index, "x")
    assert list(view) == list(model)


def test_insert_into_a_missing_list_creates_it(store: Store) -> None:
    store.lists["new"].insert(5, "x")
    assert list(store.lists["new"]) == ["x"]


def test_insert_before_and_after_a_pivot_as_linsert(store: Store) -> None:
    view = made(store, "a", "b", "a")
    assert view.insert_before("a", "x") == 4
    assert view.insert_after("a", "y") == 5
    assert list(view) == ["x", "a", "y", "b", "a"]
    assert view.insert_after("zz", "q") == -1
    assert store.lists["missing"].insert_before("a", "b") == 0 and "missing" not in store


# -------------------------------------------------------- Redis's semantics


@pytest.mark.parametrize("count", [0, 1, 2, 5, -1, -2, -5])
def test_remove_as_lrem(store: Store, count: int) -> None:
    values = ["a", "b", "a", "c", "a", "b", "a"]
    view = made(store, *values)
    hits = [i for i, v in enumerate(values) if v == "a"]
    chosen = hits if count == 0 else hits[:count] if count > 0 else hits[count:]
    assert view.remove("a", count) == len(chosen)
    assert list(view) == [v for i, v in enumerate(values) if i not in chosen]
    assert view.remove("zzz", count) == 0
    assert store.lists["missing"].remove("a", count) == 0


def test_remove_of_many_elements_of_a_long_list(store: Store) -> None:
    values = [str(i % 3) for i in range(3000)]
    view = made(store, *values)
    assert view.remove("1", 0) == 1000
    assert list(view) == [v for v in values if v != "1"]


def redis_span(n: int, start: int, stop: int) -> list[int]:
    """Indexes LRANGE start stop names in a list of n, written from Redis's ltrim rules."""
    if start < 0:
        start = n + start
    if stop < 0:
        stop = n + stop
    start = max(start, 0)
    if start > stop or start >= n:
        return []
    return list(range(start, min(stop, n - 1) + 1))


BOUNDS = [-12, -10, -6, -5, -1, 0, 1, 4, 5, 6, 11]


@pytest.mark.parametrize(("start", "stop"), list(itertools.product(BOUNDS, BOUNDS)))
def test_range_and_trim_take_inclusive_redis_indexes(store: Store, start: int, stop: int) -> None:
    values = [f"v{i}" for i in range(10)]
    view = made(store, *values)
    expected = [values[i] for i in redis_span(10, start, stop)]
    assert view.range(start, stop) == expected
    assert view.trim(start, stop) == 10 - len(expected)
    assert list(view) == expected
    assert view.exists() == bool(expected)


def test_range_near_either_end_reads_few_elements(store: Store) -> None:
    values = [str(i) for i in range(100_000)]
    view = made(store, *values)
    assert view.range(0, 2) == ["0", "1", "2"]
    assert view.range(-3, -1) == values[-3:]
    assert view.range(99_990, 200_000) == values[99_990:]
    assert lists.window(lists.List(values), 50_000, 50_002) == values[50_000:50_003]


@pytest.mark.parametrize(
    ("first", "last"), [(0, 0), (0, 63), (0, 64), (10, 300), (700, 999), (1, 998), (450, 550)]
)
def test_window_reads_short_and_long_ranges_from_either_end(first: int, last: int) -> None:
    values = [str(i) for i in range(1000)]
    assert lists.window(lists.List(values), first, last) == values[first : last + 1]


POSITIONS_CASES = [
    ((1, 1, 0), [0]),
    ((1, 0, 0), [0, 3, 5, 7]),
    ((2, 2, 0), [3, 5]),
    ((-1, 1, 0), [7]),
    ((-2, 0, 0), [5, 3, 0]),
    ((1, 0, 4), [0, 3]),
    ((-1, 0, 3), [7, 5]),
    ((9, 0, 0), []),
]


@pytest.mark.parametrize(("args", "expected"), POSITIONS_CASES)
def test_positions_as_lpos(store: Store, args: tuple[int, int, int], expected: list[int]) -> None:
    view = made(store, "a", "b", "c", "a", "b", "a", "c", "a")
    assert view.positions("a", *args) == expected
    assert view.positions("zz", *args) == []
    assert store.lists["missing"].positions("a", *args) == []


def test_positions_refuses_rank_zero_and_negative_count_or_maxlen(store: Store) -> None:
    view = made(store, "a")
    for kwargs in ({"rank": 0}, {"count": -1}, {"maxlen": -1}):
        with pytest.raises(ValueError):
            view.positions("a", **kwargs)


def test_move_to_between_lists_and_onto_itself(store: Store) -> None:
    source, target = made(store, "a", "b", "c"), made(store, "x", key="t")
    assert source.move_to("t") == "c"  # RPOPLPUSH by default
    assert list(source) == ["a", "b"] and list(target) == ["c", "x"]
    assert source.move_to("t", from_left=True, to_left=False) == "a"
    assert list(target) == ["c", "x", "a"]
    assert target.move_to("t", from_left=True, to_left=False) == "c"
    assert list(target) == ["x", "a", "c"]
    assert source.move_to("new") == "b" and "l" not in store
    assert source.move_to("t") is None
    assert list(store.lists["new"]) == ["b"]


def test_a_one_element_rotation_keeps_the_key_and_its_expiry() -> None:
    now = [1000.0]
    store = Store(clock=lambda: now[0])
    made(store, "x")
    store.expire("l", 10)
    assert store.lists["l"].move_to("l") == "x"
    assert store.ttl("l") == 10 and list(store.lists["l"]) == ["x"]


def test_the_steps_the_blocking_commands_share(store: Store) -> None:
    made(store, "1", "2", "3", key="b")
    lists = store.lists
    assert lists["missing"].pop_count(1) is None
    assert lists["b"].pop_count(0) == []
    assert ListView.pop_first([lists["missing"], lists["b"]], False, 2) == ("b", ["3", "2"])
    assert ListView.pop_first([lists["missing"]], True, 1) is None
    assert ListView.pop_first([], True, 1) is None
    assert lists["b"].move_to("c", from_left=True, to_left=True) == "1"
    assert lists["b"].move_to("c") is None
    store.set("s", "v")
    with pytest.raises(WrongTypeError):
        ListView.pop_first([lists["missing"], lists["s"], lists["c"]], True, 1)
    assert list(store.lists["c"]) == ["1"]  # the first key of another type stops the call


def test_clear_deletes_the_key(store: Store) -> None:
    view = made(store, "a")
    view.clear()
    assert "l" not in store and not view.exists()
    view.clear()


# ---------------------------------------------------------------- the rules


def test_push_returns_lengths_and_pushx_leaves_a_missing_list_missing(store: Store) -> None:
    view = store.lists["l"]
    assert view.push(["a"], existing=True) == 0 and "l" not in store
    assert view.push(["a", "b"], left=True) == 2
    assert view.push(["c"], existing=True) == 3
    assert view.push([]) == 3
    assert list(view) == ["b", "a", "c"]


def test_wrong_type_raises_and_changes_nothing(store: Store) -> None:
    store.set("s", "v")
    store.hashes["h"]["f"] = "v"
    view = store.lists["s"]
    made(store, "a")
    calls = [
        lambda: view.append("x"),
        lambda: view.appendleft("x"),
        lambda: view.extend(["x"]),
        view.pop,
        lambda: view.pop_many(1),
        lambda: view[0],
        lambda: view.range(0, -1),
        lambda: len(view),
        lambda: "x" in view,
        lambda: view.positions("x"),
        lambda: view.insert(0, "x"),
        lambda: view.insert_before("x", "y"),
        lambda: view.remove("x"),
        lambda: view.trim(0, 0),
        lambda: view.set_at(0, "x"),
        view.clear,
        lambda: view.move_to("l"),
        lambda: store.lists["l"].move_to("h"),
        lambda: store.lists["h"].append("x"),
    ]
    for call in calls:
        with pytest.raises(WrongTypeError):
            call()
    assert store["s"] == "v" and list(store.lists["l"]) == ["a"]
    assert dict(store.hashes["h"]) == {"f": "v"}


def test_elements_must_be_str(store: Store) -> None:
    view = store.lists["l"]
    for call in [
        lambda: view.append(1),  # type: ignore[arg-type]
        lambda: view.appendleft(b"x"),  # type: ignore[arg-type]
        lambda: view.extend(["a", 2]),  # type: ignore[list-item]
        lambda: view.insert(0, None),  # type: ignore[arg-type]
        lambda: view.remove(1),  # type: ignore[arg-type]
    ]:
        with pytest.raises(TypeError):
            call()
    assert "l" not in store  # a refused extend pushed none of its elements
    with pytest.raises(TypeError):
        store.lists[1]  # type: ignore[index]


def test_str_subclasses_are_stored_as_plain_str(store: Store) -> None:
    class Name(str):
        pass

    view = store.lists["l"]
    view.append(Name("a"))
    view.extend([Name("b")])
    assert [type(v) for v in view] == [str, str]


def test_an_expired_list_reads_empty_and_a_push_starts_afresh() -> None:
    now = [1000.0]
    store = Store(clock=lambda: now[0])
    made(store, "a", "b")
    store.expire("l", 5)
    store.lists["l"].append("c")  # an expiring list keeps its expiry
    assert store.ttl("l") == 5
    now[0] += 6
    view = store.lists["l"]
    assert len(view) == 0 and list(view) == [] and view.range(0, -1) == []
    view.append("new")
    assert list(view) == ["new"] and store.ttl("l") is None


def test_keyspaces_hold_separate_lists() -> None:
    store = Store(databases=4)
    store.lists["k"].append("zero")
    store.db(3).lists["k"].append("three")
    assert list(store.lists["k"]) == ["zero"] and list(store.db(3).lists["k"]) == ["three"]
    assert "k" in store.db(3).lists and "k" not in store.db(1).lists


def test_every_call_is_one_record_replayed_on_reopen(tmp_path: Path) -> None:
    store = snapkv.open(tmp_path / "db")
    view = store.lists["l"]
    view.extend([str(i) for i in range(20)])
    view.append("tail")
    view.appendleft("head")
    view.remove("3", 0)
    view.trim(1, -2)
    view.insert_after("5", "five")
    view.insert(2, "two")
    view[0] = "first"
    view.pop_many(2, left=False)
    view.move_to("other", from_left=True)
    store.lists["other"].move_to("other")
    expected = list(view), list(store.lists["other"])
    store.close()
    reopened = snapkv.open(tmp_path / "db")
    try:
        assert (list(reopened.lists["l"]), list(reopened.lists["other"])) == expected
    finally:
        reopened.close()


def test_a_failed_transaction_puts_every_list_back() -> None:
    store = Store()
    made(store, *"abcdefgh")
    made(store, "x", key="t")
    before = list(store.lists["l"]), list(store.lists["t"])
    with pytest.raises(RuntimeError), store.transaction():
        view = store.lists["l"]
        view.remove("c", 0)
        view.trim(1, -1)
        view.pop_many(2)
        view.insert_before("g", "G")
        view[0] = "zero"
        view.move_to("t")
        store.lists["t"].clear()
        store.lists["new"].append("n")
        raise RuntimeError("undo")
    assert (list(store.lists["l"]), list(store.lists["t"])) == before
    assert "new" not in store


class PausingMedium(MemoryMedium):
    """A memory medium that runs ``during`` when a save publishes, before the snapshot is read."""

    during: Callable[[], None] | None = None

    def publish(self, pieces: Iterable[bytes]) -> None:
        if self.during is not None:
            self.during()
        super().publish(pieces)


def test_writes_during_a_save_leave_the_saved_lists_as_they_were() -> None:
    medium = PausingMedium()
    store = Store(medium)
    made(store, "a", key="plain")
    made(store, "x", key="expiring")
    store.expire("expiring", 100)

    def write() -> None:  # the save has copied references and is encoding them
        store.lists["plain"].append("b")  # the unjournaled fast path
        store.lists["plain"].appendleft("z")
        store.lists["expiring"].append("y")
        store.lists["expiring"].pop_many(1)

    medium.during = write
    store.save()
    medium.during = None
    assert list(store.lists["plain"]) == ["z", "a", "b"]
    assert list(store.lists["expiring"]) == ["y"]
    saved = Store(medium)
    saved.restore()
    assert list(saved.lists["plain"]) == ["a"] and list(saved.lists["expiring"]) == ["x"]


MAKERS: dict[str, Callable[[Store], None]] = {
    "append": lambda s: s.lists["l"].append("new"),
    "appendleft": lambda s: s.lists["l"].appendleft("new"),
    "extend": lambda s: s.lists["l"].extend(["new"]),
    "insert": lambda s: s.lists["l"].insert(0, "new"),
    "move_to": lambda s: s.lists["src"].move_to("l"),
}


@pytest.mark.parametrize("how", sorted(MAKERS))
def test_a_list_made_where_an_expired_one_was_reclaimed_replays_alone(
    tmp_path: Path, how: str
) -> None:
    clock = FakeClock()
    store = snapkv.open(tmp_path / "db", clock=clock, sweep_interval=None)
    made(store, "old", "old")
    made(store, "new", key="src")
    store.expire("l", 0.001)
    clock.ms += 1
    assert len(store) == 1  # reclaims the expired list: no record says so
    MAKERS[how](store)
    store.close()
    reopened = snapkv.open(tmp_path / "db", clock=clock, sweep_interval=None)
    try:
        assert list(reopened.lists["l"]) == ["new"] and reopened.ttl("l") is None
    finally:
        reopened.close()


def journal_ops(directory: Path) -> list[Any]:
    """Every operation in the directory's journal files, in order (one per record)."""
    return [
        op
        for path in sorted(directory.glob("journal-*.skj"))
        for op in scan_journal(path.read_bytes()).ops
    ]


def test_each_call_writes_one_record_and_a_move_one_batch(tmp_path: Path) -> None:
    store = snapkv.open(tmp_path / "db")
    made(store, "a", "b", "c")
    made(store, "x", key="t")
    before = len(journal_ops(tmp_path / "db"))
    view = store.lists["l"]
    view.extend(["d", "e"])
    view.pop_many(2)
    view.move_to("t")
    view.move_to("fresh")
    store.close()
    ops = journal_ops(tmp_path / "db")[before:]
    assert [op[0] for op in ops] == ["edit", "edit", "batch", "batch"]
    assert [inner[0] for inner in ops[2][1]] == ["edit", "edit"]
    assert [inner[0] for inner in ops[3][1]] == ["edit", "del", "edit"]
