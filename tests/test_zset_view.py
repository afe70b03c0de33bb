"""store.zsets[key]: the sorted set's Python API, and the container's ranges under it.

The ranges (by rank, score and lex, exclusive ends, LIMIT, reversed) are
checked against a brute-force filter of the sorted pairs; the writes for
their flags (ZADD's NX/XX/GT/LT/CH), their refusals (NaN, wrong type,
non-str members) and their journal: one record per call, replayed on reopen.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import snapkv
from snapkv import Store
from snapkv.errors import WrongTypeError
from snapkv.journal import scan_journal
from snapkv.values.zsets import LexBound, ZSet, limit_span, parse_lex_bound, rank_span
from snapkv.views.zset import NotANumberError


@pytest.fixture
def store() -> Store:
    made = Store()
    yield made  # type: ignore[misc]
    made.close()


def test_a_missing_key_reads_as_empty(store: Store) -> None:
    z = store.zsets["nothing"]
    assert (len(z), list(z), z.get("a"), "a" in z, z.rank("a")) == (0, [], None, False, None)
    assert z.range_by_rank(0, -1) == [] and z.pop_min() == [] and z.random() is None
    assert z.random(3) == [] and z.count() == 0 and z.remove("a") == 0
    with pytest.raises(KeyError):
        z["a"]
    assert "nothing" not in store


def test_mapping_reads_and_writes_in_score_then_member_order(store: Store) -> None:
    z = store.zsets["board"]
    z["carol"] = 3
    z["bob"] = 1.5
    z["alice"] = 1.5
    z.update({"dave": -1.0})
    assert list(z) == ["dave", "alice", "bob", "carol"]
    assert dict(z.items()) == {"dave": -1.0, "alice": 1.5, "bob": 1.5, "carol": 3.0}
    assert z["carol"] == 3.0 and type(z["carol"]) is float
    del z["bob"]
    with pytest.raises(KeyError):
        del z["bob"]
    assert store.key_type("board") == "zset" and "board" in store.zsets
    z.clear()
    assert "board" not in store


def test_add_flags_follow_zadd(store: Store) -> None:
    z = store.zsets["k"]
    assert z.add({"a": 1, "b": 2}) == 2
    assert z.add({"a": 5, "c": 3}, nx=True) == 1 and z["a"] == 1
    assert z.add({"a": 5, "d": 4}, xx=True, ch=True) == 1 and "d" not in z
    assert z.add({"a": 0, "b": 9}, gt=True, ch=True) == 1 and z["a"] == 5 and z["b"] == 9
    assert z.add({"a": 0, "b": 99}, lt=True, ch=True) == 1 and z["a"] == 0
    assert z.add([("q", 1), ("q", 2)], ch=True) == 2 and z["q"] == 2
    assert z.add({"q": 2}, ch=True) == 0
    for flags in ({"nx": True, "xx": True}, {"gt": True, "lt": True}, {"nx": True, "gt": True}):
        with pytest.raises(ValueError):
            z.add({"a": 1}, **flags)


def test_incr_returns_the_new_score_or_none_when_a_flag_stops_it(store: Store) -> None:
    z = store.zsets["k"]
    assert z.incr("a") == 1.0 and z.incr("a", 2.5) == 3.5
    assert z.incr("a", 1, nx=True) is None and z.incr("new", 1, xx=True) is None
    assert z.incr("a", -1, gt=True) is None and z.incr("a", -1, lt=True) == 2.5
    z["inf"] = math.inf
    with pytest.raises(NotANumberError):
        z.incr("inf", -math.inf)
    assert z["inf"] == math.inf


def test_nan_non_numbers_and_non_str_members_are_refused_and_change_nothing(store: Store) -> None:
    z = store.zsets["k"]
    with pytest.raises(ValueError):
        z["a"] = math.nan
    with pytest.raises(ValueError):
        z.range_by_score(math.nan, 1)
    with pytest.raises(TypeError):
        z["a"] = "1"  # type: ignore[assignment]
    with pytest.raises(TypeError):
        z["a"] = True
    with pytest.raises(TypeError):
        z.add({1: 1.0})  # type: ignore[dict-item]
    with pytest.raises(ValueError):
        z.range_by_lex("a", "+")
    assert "k" not in store


def test_another_type_raises_wrong_type_and_stays(store: Store) -> None:
    store["s"] = "text"
    z = store.zsets["s"]
    for call in (lambda: z.add({"a": 1}), lambda: z.get("a"), lambda: len(z), z.pop_min, z.clear):
        with pytest.raises(WrongTypeError):
            call()
    assert store["s"] == "text"
    store.zsets["z"]["a"] = 1
    with pytest.raises(WrongTypeError):
        store["z"]
    with pytest.raises(WrongTypeError):
        store.hashes["z"].get("a")


def test_negative_zero_is_stored_as_zero(store: Store) -> None:
    z = store.zsets["k"]
    z["a"] = -0.0
    assert math.copysign(1, z["a"]) == 1.0


def test_ranks_ranges_and_counts(store: Store) -> None:
    z = store.zsets["k"]
    z.add({"a": 1, "b": 2, "c": 2, "d": 3, "e": math.inf, "f": -math.inf})
    assert z.rank("c") == 3 and z.rank("c", reverse=True) == 2 and z.rank("zz") is None
    assert z.range_by_rank(-2, -1) == ["d", "e"]
    assert z.range_by_rank(0, 1, reverse=True, with_scores=True) == [("e", math.inf), ("d", 3.0)]
    assert z.range_by_score(1, 3, min_exclusive=True) == ["b", "c", "d"]
    assert z.range_by_score(2, 3, max_exclusive=True, reverse=True) == ["c", "b"]
    assert z.range_by_score(-math.inf, math.inf, offset=1, count=2) == ["a", "b"]
    assert z.range_by_score(-math.inf, math.inf, reverse=True, offset=1, count=2) == ["d", "c"]
    assert z.range_by_score(-math.inf, math.inf, offset=-1) == []
    assert z.count(2, 2) == 2 and z.count(math.inf, math.inf, min_exclusive=True) == 0
    assert z.count() == 6


def test_lex_ranges_on_equal_scores(store: Store) -> None:
    z = store.zsets["k"]
    z.add(dict.fromkeys("abcdef", 0.0))
    assert z.range_by_lex("[b", "(e") == ["b", "c", "d"]
    assert z.range_by_lex("-", "+", reverse=True, offset=1, count=2) == ["e", "d"]
    assert z.range_by_lex("(a", "[c", with_scores=True) == [("b", 0.0), ("c", 0.0)]
    assert z.lex_count("+", "-") == 0 and z.lex_count("-", "+") == 6
    assert z.remove_range_by_lex("[e", "+") == 2 and list(z) == ["a", "b", "c", "d"]


def test_pops_and_range_removals(store: Store) -> None:
    z = store.zsets["k"]
    z.add({"a": 1, "b": 2, "c": 3, "d": 4, "e": 5})
    assert z.pop_min() == [("a", 1.0)]
    assert z.pop_max(2) == [("e", 5.0), ("d", 4.0)]
    assert z.pop_min(0) == [] and z.pop_max(-1) == []
    assert z.remove_range_by_rank(-1, -1) == 1 and list(z) == ["b"]
    z.add({"x": 10, "y": 20})
    assert z.remove_range_by_score(10, 20, max_exclusive=True) == 1 and list(z) == ["b", "y"]
    assert z.pop_min(10) == [("b", 2.0), ("y", 20.0)]
    assert "k" not in store


def test_random_distinct_repeating_and_whole(store: Store) -> None:
    z = store.zsets["k"]
    z.add({m: float(i) for i, m in enumerate("abcdef")})
    assert z.random() in set("abcdef")
    picked = z.random(4)
    assert len(picked) == len(set(picked)) == 4 and set(picked) <= set("abcdef")
    assert len(z.random(-20)) == 20
    assert z.random(10) == list("fedcba")
    member, score = z.random(2, with_scores=True)[0]
    assert score == float("abcdef".index(member))
    assert z.random(0) == []


def test_each_write_is_one_journal_record_and_reopen_replays_it(tmp_path: Path) -> None:
    directory = tmp_path / "data"
    store = snapkv.open(directory, fsync="no")

    def records() -> int:
        store.sync()
        return len(scan_journal(sorted(directory.glob("journal-*.skj"))[-1].read_bytes()).ops)

    z = store.zsets["k"]
    start = records()
    z.add({f"m{i}": float(i) for i in range(50)})
    z.incr("m1", 100)
    z.remove("m2", "m3", "nope")
    z.pop_min(3)
    z.remove_range_by_score(10, 20)
    z.add({"x": 1}, nx=True)
    assert records() == start + 6
    z.add({"x": 5}, nx=True)  # changes nothing: no record
    z.remove("nope")
    assert records() == start + 6
    expected = list(z.items())
    store.close()
    again = snapkv.open(directory)
    try:
        assert list(again.zsets["k"].items()) == expected
    finally:
        again.close()


# ------------------------------------------------------- the container itself

_score = st.sampled_from([-math.inf, -2.0, -1.0, 0.0, 0.5, 1.0, 2.0, math.inf])
_member = st.text(alphabet="abcé", max_size=3)


def _bound_ok(score: float, edge: float, exclusive: bool, low: bool) -> bool:
    if low:
        return score > edge if exclusive else score >= edge
    return score < edge if exclusive else score <= edge


@settings(max_examples=150, deadline=None)
@given(
    pairs=st.dictionaries(_member, _score, max_size=12),
    low=_score,
    high=_score,
    low_ex=st.booleans(),
    high_ex=st.booleans(),
)
def test_score_span_is_the_brute_force_filter(
    pairs: dict[str, float], low: float, high: float, low_ex: bool, high_ex: bool
) -> None:
    z = ZSet((s, m) for m, s in pairs.items())
    ordered = sorted((s, m) for m, s in pairs.items())
    i, j = z.score_span(low, low_ex, high, high_ex)
    want = [
        p
        for p in ordered
        if _bound_ok(p[0], low, low_ex, True) and _bound_ok(p[0], high, high_ex, False)
    ]
    assert z.pairs(i, j) == want


_lex_text = st.sampled_from(["-", "+", "[", "(", "[a", "(a", "[b", "(bé", "[c", "(é"])


def _lex_ok(member: str, bound: LexBound, low: bool) -> bool:
    if bound.edge:
        return (bound.edge == -1) == low
    if low:
        return member > bound.member if bound.exclusive else member >= bound.member
    return member < bound.member if bound.exclusive else member <= bound.member


@settings(max_examples=150, deadline=None)
@given(members=st.sets(_member, max_size=10), low=_lex_text, high=_lex_text)
def test_lex_span_is_the_brute_force_filter(members: set[str], low: str, high: str) -> None:
    z = ZSet((0.0, m) for m in members)
    lo, hi = parse_lex_bound(low), parse_lex_bound(high)
    i, j = z.lex_span(lo, hi)
    want = [m for m in sorted(members) if _lex_ok(m, lo, True) and _lex_ok(m, hi, False)]
    assert [m for _, m in z.pairs(i, j)] == want


@given(
    size=st.integers(0, 8),
    start=st.integers(-10, 10),
    stop=st.integers(-10, 10),
    offset=st.integers(-2, 9),
    count=st.none() | st.integers(-2, 9),
    reverse=st.booleans(),
)
def test_rank_and_limit_spans_match_python_slicing(
    *, size: int, start: int, stop: int, offset: int, count: int | None, reverse: bool
) -> None:
    items = list(range(size))
    i, j = rank_span(size, start, stop)
    norm_start = max(start + size if start < 0 else start, 0)
    norm_stop = stop + size if stop < 0 else stop
    assert items[i:j] == items[norm_start : max(norm_stop + 1, 0)]
    i, j = limit_span(0, size, offset, count, reverse)
    walk = items[::-1] if reverse else items
    if offset < 0:
        want: list[int] = []
    else:
        want = walk[offset:] if count is None or count < 0 else walk[offset : offset + count]
    got = items[i:j][::-1] if reverse else items[i:j]
    assert got == want


def test_threads_writing_and_reading_see_whole_steps(store: Store) -> None:
    """Each call is one step under the lock: readers never see a half-applied ZADD."""
    z = store.zsets["k"]
    errors: list[BaseException] = []

    def writer(base: int) -> None:
        try:
            for i in range(300):
                z.add({f"w{base}:{i}:a": float(i), f"w{base}:{i}:b": float(i)})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def reader() -> None:
        try:
            for _ in range(300):
                pairs = z.range_by_rank(0, -1, with_scores=True)
                assert len(pairs) % 2 == 0  # both members of an add, or neither
                assert [s for _, s in pairs] == sorted(s for _, s in pairs)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    threads += [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(z) == 3 * 300 * 2
