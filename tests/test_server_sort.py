"""SORT and SORT_RO against the real Redis 7.0: the same requests, the same reply bytes.

Lists, sets and sorted sets; numeric (strtod's reading, ties by bytes) and
ALPHA; BY (weights, hash fields, constant patterns), GET (``#``, keys,
fields, missing ones), LIMIT's edges, ASC/DESC, STORE (a list, one
record; an empty result deletes) and the errors, in RESP2 and RESP3; then
generated combinations of all of them. A set sorted BY a constant keeps
its iteration order, which is each server's own: compared as sets.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import snapkv
from conftest import Twin
from snapkv.server.client import Client
from snapkv.server.cmd_sort import strtod
from snapkv.server.dispatch import Dispatcher
from snapkv.server.state import Config
from test_server_generic_types import fill, parse, same_contents

NUMBERS = ("3", "1", "2", "10", "-5", "1.5", "01", "1.0", "-0", "0", "inf", "-inf", "0x10", " 7")


@pytest.mark.parametrize(
    "options",
    [
        (),
        ("DESC",),
        ("ASC",),
        ("LIMIT", "0", "2"),
        ("LIMIT", "2", "3", "DESC"),
        ("LIMIT", "1", "-1"),
        ("LIMIT", "-3", "2"),
        ("LIMIT", "5", "100"),
        ("LIMIT", "13", "1"),
        ("LIMIT", "14", "1"),
        ("LIMIT", "100", "1"),
        ("LIMIT", "0", "0"),
        ("LIMIT", "2", "-7"),
        ("LIMIT", "0", "9223372036854775807"),
        ("LIMIT", "-9223372036854775808", "3"),
        ("ALPHA",),
        ("ALPHA", "DESC", "LIMIT", "1", "4"),
        ("BY", "nosort"),
        ("BY", "nosort", "DESC", "LIMIT", "2", "3"),
        ("BY", "nosort", "LIMIT", "20", "3"),
        ("BY", "nosort", "DESC", "LIMIT", "-1", "-1"),
    ],
)
def test_sort_a_list(twin: Twin, options: tuple[str, ...]) -> None:
    fill(twin, "list", "l", *NUMBERS)
    twin.same("SORT", "l", *options)
    twin.same("SORT_RO", "l", *options)


@pytest.mark.parametrize(
    "text", ["1 ", "nan", "abc", " ", "1e", "0x", "1_0", "+.5", "0x1p3", "infinity", "1e400"]
)
def test_numbers_are_read_as_strtod_reads_them(twin: Twin, text: str) -> None:
    fill(twin, "list", "l", "3", "0.5", text)
    twin.same("SORT", "l")
    twin.same("SORT", "l", "ALPHA")


@pytest.mark.parametrize("text", ["4.9e-324", "1e-320", "-1e-400", "0x1p-1074"])
def test_an_underflow_is_refused(twin: Twin, text: str) -> None:
    # After strtod's ERANGE, Redis refuses every non-integer score until its
    # errno changes (a new connection): so one per test, last.
    fill(twin, "list", "l", "3", text)
    twin.same("SORT", "l")


def test_strtod_edges() -> None:
    # "" is 0 here; Redis's answer depends on a stale errno (an error after an
    # ERANGE), so it is not compared.
    assert strtod("") == 0.0
    assert strtod("2.2250738585072014e-308") == 2.2250738585072014e-308
    assert strtod(" \t-.5e1") == -5.0
    assert strtod("0x1.8p1") == 3.0
    assert strtod("10x1") is None
    assert strtod("0.000e-999") == 0.0


def test_sort_a_set(twin: Twin) -> None:
    fill(twin, "set", "ints", "5", "3", "-1", "20", "7")
    fill(twin, "set", "words", "pear", "apple", "fig", "Banana", "z", "10")
    twin.same("SORT", "ints")
    twin.same("SORT", "ints", "DESC", "LIMIT", "1", "2")
    twin.same("SORT", "words")  # not numbers
    twin.same("SORT", "words", "ALPHA")
    twin.same("SORT", "words", "ALPHA", "DESC", "LIMIT", "2", "10")
    # BY a constant: the set's own order (each server's), so compared as sets.
    for options in [(), ("LIMIT", "0", "100"), ("DESC",)]:
        ours, theirs = twin("SORT", "words", "BY", "nosort", *options)
        assert sorted(parse(ours)) == sorted(parse(theirs))
    # ... except when stored: then sorted ALPHA, so the list is the same.
    twin.same("SORT", "words", "BY", "nosort", "STORE", "dst")
    twin.same("SORT", "words", "BY", "nosort", "DESC", "LIMIT", "1", "3", "STORE", "dst2")
    same_contents(twin, "dst", "dst2")


def test_sort_a_sorted_set(twin: Twin) -> None:
    fill(twin, "zset", "z", "3", "10", "1", "30", "2", "20", "2", "5", "-1", "7")
    twin.same("SORT", "z")  # by the members' values, not by score
    twin.same("SORT", "z", "DESC")
    twin.same("SORT", "z", "BY", "nosort")  # score order
    twin.same("SORT", "z", "BY", "nosort", "DESC")
    twin.same("SORT", "z", "BY", "nosort", "LIMIT", "1", "2")
    twin.same("SORT", "z", "BY", "nosort", "DESC", "LIMIT", "1", "3")
    twin.same("SORT", "z", "BY", "nosort", "LIMIT", "9", "3")
    twin.same("SORT", "z", "BY", "nosort", "DESC", "LIMIT", "0", "0")
    twin.same("SORT", "z", "ALPHA", "LIMIT", "1", "-1")


def _weights(twin: Twin) -> None:
    fill(twin, "list", "l", "a", "b", "c", "d", "e")
    for key, value in {"w_a": "30", "w_b": "10", "w_c": "20", "w_e": "x"}.items():
        twin.same("SET", key, value)
    fill(twin, "hash", "h_a", "n", "3", "name", "Ada")
    fill(twin, "hash", "h_b", "n", "1", "name", "Bob")
    fill(twin, "hash", "h_c", "n", "2")
    fill(twin, "hash", "h_d", "n", "4", "name", "Dee")
    fill(twin, "list", "w_d", "wrong", "type")


@pytest.mark.parametrize(
    "options",
    [
        ("BY", "w_*"),  # w_e is not a number
        ("BY", "h_*->n"),
        ("BY", "h_*->n", "DESC"),
        ("BY", "h_*->n", "LIMIT", "1", "2"),
        ("BY", "h_*->name", "ALPHA"),
        ("BY", "h_*->name", "ALPHA", "DESC"),
        ("BY", "h_*->n", "GET", "#", "GET", "h_*->name", "GET", "w_*"),
        ("BY", "h_*->n", "GET", "nostar", "GET", "h_*->", "GET", "h_*->missing"),
        ("BY", "h_*->n", "GET", "w_*", "LIMIT", "1", "2", "DESC"),
        ("BY", "nosort", "GET", "#", "GET", "h_*->n"),
        ("BY", "nosort", "BY", "h_*->n"),  # a constant BY is never undone
        ("BY", "w_*->", "ALPHA"),  # "->" with no field: part of the key name
        ("ALPHA", "GET", "w_*"),
        ("ALPHA", "BY", "w_*", "LIMIT", "0", "3"),
    ],
)
def test_by_and_get_patterns(twin: Twin, options: tuple[str, ...]) -> None:
    _weights(twin)
    twin.same("SORT", "l", *options)
    twin.same("SORT_RO", "l", *options)
    twin("HELLO", "3")
    twin.same("SORT", "l", *options)


def test_store_replaces_the_destination_with_a_list(twin: Twin) -> None:
    _weights(twin)
    twin.same("SET", "dst", "old")
    twin.same("EXPIRE", "dst", "100")
    twin.same("SORT", "l", "BY", "h_*->n", "GET", "h_*->name", "GET", "#", "STORE", "dst")
    twin.same("TYPE", "dst")
    twin.same("TTL", "dst")  # a stored result has no expiry
    same_contents(twin, "dst")
    twin.same("SORT", "l", "ALPHA", "DESC", "LIMIT", "1", "2", "STORE", "dst")
    same_contents(twin, "dst")
    twin.same("SORT", "l", "STORE", "l")  # onto itself (numbers fail first: an error)
    twin.same("SORT", "l", "ALPHA", "STORE", "l")
    same_contents(twin, "l")


def test_store_of_nothing_deletes_the_destination(twin: Twin) -> None:
    fill(twin, "hash", "dst", "f", "v")
    fill(twin, "list", "l", "1")
    twin.same("SORT", "missing", "STORE", "dst")
    twin.same("EXISTS", "dst")
    twin.same("SORT", "missing", "STORE", "dst")
    twin.same("SORT", "l", "LIMIT", "5", "1", "STORE", "dst")
    twin.same("SORT", "missing")
    twin.same("SORT_RO", "missing")


def test_errors_as_redis_orders_them(twin: Twin) -> None:
    fill(twin, "hash", "h", "f", "v")
    twin.same("SET", "s", "1")
    fill(twin, "list", "l", "1", "2")
    twin.same("SORT", "h")
    twin.same("SORT", "s")
    twin.same("SORT", "s", "BADOPTION")  # syntax before type
    twin.same("SORT", "l", "LIMIT", "0")
    twin.same("SORT", "l", "LIMIT", "a", "1")
    twin.same("SORT", "l", "LIMIT", "0", "1.5")
    twin.same("SORT", "l", "BY")
    twin.same("SORT", "l", "GET")
    twin.same("SORT", "l", "STORE")
    twin.same("SORT_RO", "l", "STORE", "dst")
    twin.same("SORT_RO", "h")
    twin.same("SORT")
    twin.same("SORT_RO")
    fill(twin, "list", "bad", "1", "x")
    twin.same("SORT", "bad", "STORE", "dst")
    twin.same("EXISTS", "dst")


def test_store_is_seen_by_watch(twin: Twin) -> None:
    fill(twin, "list", "l", "2", "1")
    twin.same("WATCH", "dst")
    twin.same("MULTI")
    twin.same("SORT", "l", "STORE", "dst")
    twin.same("EXEC")
    other = twin.server.execute
    watcher = Client(twin.server)
    twin.server.add_client(watcher)
    assert other(watcher, ["WATCH", "dst"]) == b"+OK\r\n"
    assert other(watcher, ["MULTI"]) == b"+OK\r\n"
    twin.server.execute(twin.snapkv, ["SORT", "l", "STORE", "dst"])
    assert other(watcher, ["EXEC"]) == b"*-1\r\n"


def test_a_stored_result_is_replayed_from_the_journal(tmp_path: Path) -> None:
    """STORE journals its list (a PUT): a reopened store that replays the journal has it."""
    with snapkv.open(tmp_path, save_on_close=False) as store:
        server = Dispatcher(store, Config())
        client = Client(server)
        server.add_client(client)
        db = store.db(0)
        with store._lock:
            db._write([("edit", 0, "src", 2, 2, ("b", "a", "c"))])
        assert server.execute(client, ["SORT", "src", "ALPHA", "STORE", "dst"]) == b":3\r\n"
        assert server.execute(client, ["SORT", "nothing", "STORE", "src"]) == b":0\r\n"
    with snapkv.open(tmp_path, save_on_close=False) as again:
        assert list(again.lists["dst"]) == ["a", "b", "c"]
        assert "src" not in again


# ------------------------------------------------------------- hypothesis

_ELEMENTS = st.sampled_from(["1", "2", "10", "-3", "2.5", "a", "b", "B", "01", "-0", "7"])
_OPTIONS = st.lists(
    st.one_of(
        st.just(("DESC",)),
        st.just(("ASC",)),
        st.just(("ALPHA",)),
        st.tuples(st.just("LIMIT"), st.integers(-2, 8).map(str), st.integers(-2, 8).map(str)),
        st.tuples(st.just("BY"), st.sampled_from(["w_*", "h_*->f", "nosort", "missing_*"])),
        st.tuples(st.just("GET"), st.sampled_from(["#", "w_*", "h_*->f", "h_*->g", "k"])),
    ),
    max_size=4,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kind=st.sampled_from(["list", "zset", "set"]),
    elements=st.lists(_ELEMENTS, min_size=1, max_size=8),
    options=_OPTIONS,
    store=st.booleans(),
)
def test_generated_sorts_answer_as_redis(
    twin: Twin, kind: str, elements: list[str], options: list[tuple[str, ...]], store: bool
) -> None:
    twin.server.execute(twin.snapkv, ["FLUSHALL"])
    twin.raw("FLUSHALL")
    members = list(dict.fromkeys(elements)) if kind != "list" else elements
    if kind == "zset":
        fill(twin, kind, "k", *[x for i, m in enumerate(members) for x in (str(i % 3), m)])
    else:
        fill(twin, kind, "k", *members)
    # Distinct weights (ties of ALPHA with BY are ordered differently by Redis's partial sort).
    for i, member in enumerate(dict.fromkeys(members)):
        twin.same("SET", f"w_{member}", str((i * 7) % 11))
        fill(twin, "hash", f"h_{member}", "f", f"{(i * 5) % 13}")
    argv = ["SORT", "k", *[word for option in options for word in option]]
    set_unordered = kind == "set" and any(o[:2] == ("BY", "nosort") for o in options)
    # BY a pattern no key matches weighs every element alike: Redis's order is
    # then its hash table's and its partial sort's, which no other program
    # reproduces (the elements are the same).
    all_ties = any(o == ("BY", "missing_*") for o in options) and not any(
        o[:2] == ("BY", "nosort") for o in options
    )
    unordered = set_unordered or all_ties
    if store:
        argv += ["STORE", "dst"]
    ours, theirs = twin(*argv)
    if unordered:
        # The same elements, unless a LIMIT picked some of them.
        if "LIMIT" not in argv:
            if store:
                assert ours == theirs
                ours, theirs = twin("LRANGE", "dst", "0", "-1")
            assert sorted(map(repr, parse(ours))) == sorted(map(repr, parse(theirs)))
    else:
        assert ours == theirs, f"{argv}: {ours!r} != {theirs!r}"
        if store:
            same_contents(twin, "dst")


def test_sort_by_nosort_of_a_small_integer_set_is_in_intset_order(twin: Twin) -> None:
    """Found by review: Redis keeps such a set as an intset, in numeric order."""
    twin.same("SADD", "s", "3", "1", "2", "-7")
    twin.same("SORT", "s", "BY", "nosort")
