"""Stream commands against the real redis-server 7.0 (the ``twin`` fixture): XADD ... XINFO STREAM.

Every request goes to snapkv's dispatcher and to redis-server and the raw
reply bytes must be equal, in RESP2 and RESP3. IDs are explicit (``ms-seq``
or ``ms-*``) so both sides generate the same ones.
"""

from __future__ import annotations

from typing import Any

import pytest

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
    twin.same("HELLO", resp) if False else twin("HELLO", resp)
    for argv in SEQUENCES[sequence]:
        twin.same(*argv)
