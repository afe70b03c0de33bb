"""Stream commands against the real redis-server 7.0 (the ``twin`` fixture): XADD ... XINFO STREAM.

Every request goes to snapkv's dispatcher and to redis-server and the raw
reply bytes must be equal, in RESP2 and RESP3. IDs are explicit (``ms-seq``
or ``ms-*``) so both sides generate the same ones.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SEQUENCES: list[list[tuple[str, ...]]] = [
    [
        ("XADD", "s", "1-1", "a", "1"),
        ("XADD", "s", "1-*", "b", "2", "c", "3"),
        ("XADD", "s", "5-*", "d", "4"),
        ("XADD", "s", "5", "e", "5"),
        ("XADD", "s", "5-1", "e", "5"),
        ("XADD", "s", "0-0", "e", "5"),
        ("XADD", "s", "0", "e", "5"),
        ("XADD", "s", "abc", "e", "5"),
        ("XADD", "s", "7-1", "e"),
        ("XADD", "s", "7-1"),
        ("XLEN", "s"),
        ("XLEN", "nope"),
        ("XRANGE", "s", "-", "+"),
        ("XRANGE", "s", "1", "1"),
        ("XRANGE", "s", "(1-1", "+", "COUNT", "2"),
        ("XRANGE", "s", "-", "(5-0"),
        ("XRANGE", "s", "-", "+", "COUNT", "0"),
        ("XRANGE", "s", "-", "+", "COUNT", "-3"),
        ("XRANGE", "s", "(-", "+"),
        ("XRANGE", "s", "x", "+"),
        ("XRANGE", "s", "-", "+", "LIMIT", "2"),
        ("XREVRANGE", "s", "+", "-"),
        ("XREVRANGE", "s", "+", "-", "COUNT", "1"),
        ("XREVRANGE", "s", "(5-0", "(1-1"),
        ("XRANGE", "nope", "-", "+"),
        ("XDEL", "s", "1-2", "9-9"),
        ("XDEL", "s", "bad"),
        ("XRANGE", "s", "-", "+"),
        ("XINFO", "STREAM", "s"),
        ("XINFO", "STREAM", "nope"),
        ("XINFO", "STREAM", "s", "FULL"),
        ("XINFO", "STREAM", "s", "FULL", "COUNT", "1"),
        ("XINFO", "STREAM", "s", "FULL", "COUNT", "0"),
        ("XINFO", "STREAM", "s", "FULL", "COUNT", "-1"),
        ("XINFO", "STREAM", "s", "FULL", "LIMIT", "1"),
        ("XINFO", "STREAM", "s", "BOGUS"),
        ("XINFO", "STREAM", "s", "FULL", "COUNT"),
        ("XINFO", "STREAM", "nope", "FULL"),
        ("XINFO", "STREAM", "nope", "BOGUS"),
        ("XINFO", "STREAM", "s", "FULL", "COUNT", "x"),
    ],
    [
        *[("XADD", "t", f"{n}-0", "f", str(n)) for n in range(1, 13)],
        ("XTRIM", "t", "MAXLEN", "10"),
        ("XTRIM", "t", "MAXLEN", "=", "8"),
        ("XTRIM", "t", "MINID", "6"),
        ("XTRIM", "t", "MAXLEN", "~", "2"),
        ("XTRIM", "t", "MAXLEN", "~", "0"),
        ("XLEN", "t"),
        ("XINFO", "STREAM", "t"),
        ("XADD", "t", "3-0", "f", "v"),
        ("XADD", "t", "12-*", "f", "v"),
        ("XTRIM", "t", "MAXLEN", "-1"),
        ("XTRIM", "t", "LIMIT", "5"),
        ("XTRIM", "t"),
        ("XTRIM", "t", "MAXLEN", "1", "LIMIT", "5"),
        ("XTRIM", "t", "MAXLEN", "1", "MINID", "5"),
        ("XTRIM", "t", "BOGUS", "1"),
        ("XADD", "t", "MAXLEN", "1", "13-0", "a", "b"),
        ("XRANGE", "t", "-", "+"),
        ("XADD", "u", "NOMKSTREAM", "1-0", "a", "b"),
        ("EXISTS", "u"),
        ("XADD", "u", "MAXLEN", "0", "1-0", "a", "b"),
        ("EXISTS", "u"),
        ("XLEN", "u"),
        ("XADD", "u", "MINID", "~", "5", "LIMIT", "10", "2-0", "a", "b"),
        ("XADD", "u", "MAXLEN", "~", "5", "LIMIT", "-1", "3-0", "a", "b"),
        ("XADD", "u", "MAXLEN", "5", "LIMIT", "1", "3-0", "a", "b"),
        ("XADD", "u", "LIMIT", "1", "3-0", "a", "b"),
        ("XINFO", "STREAM", "u"),
    ],
    [
        ("XADD", "s", "3-0", "a", "1"),
        ("XADD", "r", "4-0", "b", "2"),
        ("XREAD", "STREAMS", "s", "r", "0", "0"),
        ("XREAD", "COUNT", "1", "STREAMS", "s", "r", "2", "3-9"),
        ("XREAD", "STREAMS", "s", "r", "$", "$"),
        ("XREAD", "STREAMS", "s", "r", "0"),
        ("XREAD", "STREAMS", "s", "bad"),
        ("XREAD", "BLOCK", "-1", "STREAMS", "s", "0"),
        ("XREAD", "BLOCK", "x", "STREAMS", "s", "0"),
        ("XREAD", "STREAMS", "nope", "0"),
        ("XREAD", "STREAMS", "s", "s", "0", "2"),
        ("XREAD", "STREAMS", "s", ">"),
        ("XREAD", "STREAMS", "s", "+"),
        ("XREAD", "COUNT", "x", "STREAMS", "s", "0"),
        ("XREAD", "STREAMS", "s", "-"),
        ("XREAD", "STREAMS", "s", "str", "0", "0"),
        ("XSETID", "s", "10-0"),
        ("XSETID", "s", "2-0"),
        ("XSETID", "nope", "2-0"),
        ("XSETID", "s", "11-0", "ENTRIESADDED", "5", "MAXDELETEDID", "3-5"),
        ("XSETID", "s", "11-0", "ENTRIESADDED", "0"),
        ("XSETID", "s", "11-0", "MAXDELETEDID", "12-0"),
        ("XINFO", "STREAM", "s"),
        ("XADD", "s", "10-5", "x", "y"),
        ("XADD", "s", "11-*", "x", "y"),
        ("SET", "str", "v"),
        ("XADD", "str", "1-0", "a", "b"),
        ("XRANGE", "str", "-", "+"),
        ("XLEN", "str"),
        ("XREAD", "STREAMS", "s", "str", "0", "0"),
        ("XREAD", "STREAMS", "s", "str", "0", "$"),
        ("XINFO", "STREAM", "str"),
        ("XSETID", "str", "1-0"),
        ("XDEL", "str", "1-0"),
        ("XDEL", "str", "bad"),
        ("XDEL", "nope", "bad"),
        ("XTRIM", "nope", "MAXLEN", "x"),
        ("XTRIM", "str", "MAXLEN", "x"),
        ("XRANGE", "str", "x", "+"),
        ("XRANGE", "nope", "x", "+"),
        ("XSETID", "nope", "bad"),
        ("XSETID", "str", "bad"),
        ("XADD", "str", "bad", "a", "b"),
        ("XADD", "str", "NOMKSTREAM", "1-0", "a", "b"),
        ("XTRIM", "str", "MAXLEN", "1"),
        ("XDEL", "s", "11-1"),
        ("XDEL", "s", "3-0"),
        ("XLEN", "s"),
        ("XINFO", "STREAM", "s"),
        ("XRANGE", "s", "-", "+"),
    ],
]


@pytest.mark.parametrize("resp", ["2", "3"])
@pytest.mark.parametrize("sequence", range(len(SEQUENCES)))
def test_sequence_matches_redis(twin: Any, resp: str, sequence: int) -> None:
    twin("HELLO", resp)
    for argv in SEQUENCES[sequence]:
        twin.same(*argv)


def test_type_and_object_encoding_name_stream(twin: Any) -> None:
    twin.same("XADD", "s", "1-0", "a", "b")
    assert twin.same("TYPE", "s") == b"+stream\r\n"
    assert twin.same("OBJECT", "ENCODING", "s") == b"$6\r\nstream\r\n"


def test_xread_and_blocking_forms_inside_multi_answer_at_once(twin: Any) -> None:
    twin.same("XADD", "s", "1-0", "a", "b")
    twin.same("MULTI")
    twin.same("XREAD", "BLOCK", "0", "STREAMS", "s", "$")
    twin.same("XADD", "s", "2-0", "c", "d")
    twin.same("XREAD", "BLOCK", "0", "STREAMS", "s", "0")
    twin.same("EXEC")


# ------------------------------------------------------ generated sequences

_ids = st.builds("{}-{}".format, st.integers(0, 6), st.integers(0, 3))
_id_or_ms = st.one_of(_ids, st.integers(0, 6).map(str))
_pairs = st.lists(st.sampled_from(["f", "g", "h"]), min_size=1, max_size=2).map(
    lambda fields: [part for field in fields for part in (field, field.upper())]
)


@st.composite
def _trim(draw: Any) -> list[str]:
    how = draw(st.sampled_from(["MAXLEN", "MINID"]))
    op = draw(st.sampled_from([[], ["="], ["~"]]))
    arg = str(draw(st.integers(0, 4))) if how == "MAXLEN" else draw(_id_or_ms)
    limit = ["LIMIT", str(draw(st.integers(0, 3)))] if op == ["~"] and draw(st.booleans()) else []
    return [how, *op, arg, *limit]


@st.composite
def _command(draw: Any) -> tuple[str, ...]:
    key = draw(st.sampled_from(["s", "t"]))
    kind = draw(st.integers(0, 9))
    if kind <= 2:
        options = draw(st.sampled_from([[], ["NOMKSTREAM"]]))
        trim = draw(_trim()) if draw(st.booleans()) else []
        entry = draw(st.one_of(_ids, st.integers(0, 6).map("{}-*".format)))
        return ("XADD", key, *options, *trim, entry, *draw(_pairs))
    if kind == 3:
        return ("XTRIM", key, *draw(_trim()))
    if kind == 4:
        return ("XDEL", key, *draw(st.lists(_ids, min_size=1, max_size=3)))
    if kind == 5:
        name = draw(st.sampled_from(["XRANGE", "XREVRANGE"]))
        bound = st.one_of(st.just("-"), st.just("+"), _id_or_ms, _ids.map("({}".format))
        count = ["COUNT", str(draw(st.integers(-1, 3)))] if draw(st.booleans()) else []
        return (name, key, draw(bound), draw(bound), *count)
    if kind == 6:
        count = ["COUNT", str(draw(st.integers(0, 2)))] if draw(st.booleans()) else []
        return ("XREAD", *count, "STREAMS", "s", "t", draw(_id_or_ms), draw(_id_or_ms))
    if kind == 7:
        extra = ["ENTRIESADDED", str(draw(st.integers(0, 9)))] if draw(st.booleans()) else []
        return ("XSETID", key, draw(_ids), *extra)
    if kind == 8:
        full = draw(st.sampled_from([[], ["FULL"], ["FULL", "COUNT", "2"]]))
        return ("XINFO", "STREAM", key, *full)
    return (draw(st.sampled_from(["XLEN", "EXISTS"])), key)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(resp=st.sampled_from(["2", "3"]), commands=st.lists(_command(), min_size=1, max_size=30))
def test_generated_sequences_answer_as_redis(
    twin: Any, resp: str, commands: list[tuple[str, ...]]
) -> None:
    twin("FLUSHALL")
    twin("HELLO", resp)
    for argv in commands:
        twin.same(*argv)


def test_memory_usage_of_a_stream_counts_its_entries(twin: Any) -> None:
    twin.same("XADD", "small", "1-0", "f", "v")
    twin.same("XADD", "large", "1-0", "f", "v" * 10_000)
    small, _ = twin("MEMORY", "USAGE", "small", "SAMPLES", "0")
    large, _ = twin("MEMORY", "USAGE", "large", "SAMPLES", "0")
    assert int(large[1:-2]) - int(small[1:-2]) >= 9_000  # the value, not just the ID
