"""Random arguments for the data-type commands, against redis-server 7.0 (the ``twin``).

The argument fuzz (test_fuzz_commands.py) checks that every request gets a
well-formed reply; this one checks that it is Redis's reply. For each
string, hash, list, set and sorted-set command, requests built from Redis
7.0's grammar (tests/fuzz_requests.py) go to snapkv's dispatcher and to a
real redis-server, both seeded alike, in RESP2 and RESP3, and the raw
replies must be equal byte for byte: the same error text, or the same
reply. Where Redis's reply depends on chance or on its encodings' order
(:data:`UNORDERED`), only the error texts are compared, and whether both
answered one.

Blocking commands are left out: a real server would block the test on
them (their replies when they do not block are test_blocking_commands.py's).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz_requests import requests
from snapkv.server.table import Command
from test_fuzz_commands import ENTRIES, SEED

GROUPS = {"string", "hash", "list", "set", "sorted-set"}
#: Replies whose order or content is Redis's chance or its encodings' order.
UNORDERED = {
    "spop": "random members",
    "srandmember": "random members",
    "hrandfield": "random fields",
    "zrandmember": "random members",
    "smembers": "a set's order (intset sorted, listpack inserted, hashtable hashed)",
    "sinter": "a set's order",
    "sunion": "a set's order",
    "sdiff": "a set's order",
    "sscan": "a set's order",
    "hscan": "a hash's order",
    "zscan": "a sorted set's listpack order is its order, but a cursor is Redis's own",
}
TWIN_ENTRIES = [cmd for cmd in ENTRIES if cmd.group in GROUPS and "blocking" not in cmd.flags]
FUZZ = settings(
    max_examples=int(os.environ.get("SNAPKV_FUZZ_EXAMPLES", "15")),
    deadline=None,
    derandomize=not os.environ.get("SNAPKV_FUZZ_RANDOM"),
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)


@pytest.mark.parametrize("cmd", TWIN_ENTRIES, ids=[cmd.full_name for cmd in TWIN_ENTRIES])
def test_random_arguments_get_redis_reply(twin: Any, cmd: Command) -> None:
    @FUZZ
    @given(requests(cmd.full_name, cmd.arity), st.sampled_from(["2", "3"]))
    def fuzz(argv: list[str], resp: str) -> None:
        twin("HELLO", resp)
        for seed in SEED:
            twin(*seed)
        twin("SELECT", "0")
        ours, theirs = twin(*argv)
        if cmd.full_name in UNORDERED:
            assert ours.startswith(b"-") == theirs.startswith(b"-"), (argv, ours, theirs)
            if ours.startswith(b"-"):
                assert ours == theirs, argv
        else:
            assert ours == theirs, f"{argv}: snapkv {ours!r} != redis {theirs!r}"

    fuzz()


# ------------------------------------------------------------------ found by the fuzz


def test_a_nul_ends_a_scan_cursor_as_in_strtoul(twin: Any) -> None:
    twin.same("ZADD", "z", "1", "a")  # one key: SCAN's order is the keyspace's hash order
    for argv in (
        ("SCAN", "\0"),
        ("SCAN", "0\0x"),
        ("ZSCAN", "z", "\0"),
        ("HSCAN", "missing", "\0junk"),
        ("SCAN", "x\0"),
        ("SCAN", " 0"),
    ):
        twin.same(*argv)
    twin.same("SADD", "s", "a")
    twin.same("SSCAN", "s", "0\0", "COUNT", "5")
