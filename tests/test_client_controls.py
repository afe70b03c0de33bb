"""CLIENT REPLY, PAUSE, UNPAUSE, UNBLOCK, NO-EVICT, NO-TOUCH, HELP and RESET, against redis-server.

Replies and error texts are compared byte for byte with a real redis-server
7.0 (the ``twin`` fixture); what only snapkv can show (its Client's state
after RESET, NO-TOUCH, which 7.0 lacks) is checked on the dispatcher.
"""

from __future__ import annotations

from typing import Any

import pytest

from reference import parse, request
from snapkv import Store
from snapkv.server.client import REPLY_ON, Blocked, Client
from snapkv.server.dispatch import Dispatcher
from snapkv.server.state import Config

ERRORS = [
    ("CLIENT", "PAUSE", "abc"),
    ("CLIENT", "PAUSE", "-1"),
    ("CLIENT", "PAUSE", "1.5"),
    ("CLIENT", "PAUSE", "10", "foo"),
    ("CLIENT", "PAUSE", "abc", "foo"),
    ("CLIENT", "PAUSE", "10", "write", "x"),
    ("CLIENT", "PAUSE"),
    ("CLIENT", "UNPAUSE", "x"),
    ("CLIENT", "REPLY", "maybe"),
    ("CLIENT", "REPLY"),
    ("CLIENT", "UNBLOCK", "abc"),
    ("CLIENT", "UNBLOCK", "1", "foo"),
    ("CLIENT", "UNBLOCK", "abc", "foo"),
    ("CLIENT", "UNBLOCK", "1", "error", "x"),
    ("CLIENT", "UNBLOCK", "999999"),
    ("CLIENT", "UNBLOCK", "999999", "ERROR"),
    ("CLIENT", "NO-EVICT", "maybe"),
    ("CLIENT", "NO-EVICT", "on"),
    ("CLIENT", "NO-EVICT", "OFF"),
    ("CLIENT", "NO-EVICT"),
    ("RESET", "x"),
    ("MONITOR", "x"),
]


@pytest.mark.parametrize("argv", ERRORS, ids=" ".join)
def test_replies_and_errors_are_redis_s(twin: Any, argv: tuple[str, ...]) -> None:
    twin.same(*argv)


def test_pause_and_unpause_answer_ok(twin: Any) -> None:
    twin.same("CLIENT", "PAUSE", "0", "WRITE")
    twin.same("CLIENT", "UNPAUSE")
    twin.same("CLIENT", "PAUSE", "0")
    twin.same("CLIENT", "UNPAUSE")
    # Redis 7.0 adds its clock to this unchecked: the end wraps, nothing is held.
    twin.same("CLIENT", "PAUSE", "9223372036854775807", "WRITE")
    twin.same("SET", "k", "v")
    twin.same("CLIENT", "UNPAUSE")


@pytest.mark.parametrize(
    "name",
    [
        "client|pause",
        "client|unpause",
        "client|reply",
        "client|unblock",
        "client|no-evict",
        "client|list",
        "client|kill",
        "client|help",
        "client|tracking",
        "client|caching",
        "client|getredir",
        "client|trackinginfo",
        "monitor",
        "reset",
    ],
)
def test_arity_and_flags_are_redis_s(twin: Any, name: str) -> None:
    """COMMAND INFO's arity and flags (``admin`` decides what MONITOR shows)."""
    ours, theirs = (parse(reply)[0] for reply in twin("COMMAND", "INFO", name))
    assert ours[1] == theirs[1]
    assert set(ours[2]) == set(theirs[2])


def test_help_is_redis_s_plus_the_72_subcommands(twin: Any) -> None:
    ours, theirs = twin("CLIENT", "HELP")
    added = [
        b"+SETINFO <option> <value>\r\n",
        b"+    Set client meta attr. Options are:\r\n",
        b"+    * LIB-NAME: the client lib name.\r\n",
        b"+    * LIB-VER: the client lib version.\r\n",
        b"+NO-TOUCH (ON|OFF)\r\n",
        b"+    Will not touch LRU/LFU stats when this mode is on.\r\n",
    ]
    ours_lines = ours.split(b"\r\n")[1:]
    theirs_lines = theirs.split(b"\r\n")[1:]
    assert [line for line in ours_lines if line + b"\r\n" not in added] == theirs_lines
    assert int(ours[1:].split(b"\r\n")[0]) == int(theirs[1:].split(b"\r\n")[0]) + len(added)


def pipeline_same(twin: Any, steps: list[tuple[str, ...]]) -> bytes:
    """Send ``steps`` as one pipeline to both servers (then a PING): the same bytes back.

    A pipeline, because under CLIENT REPLY OFF a request waits for no reply.
    """
    ours = b"".join(twin.server.execute(twin.snapkv, list(argv)) for argv in [*steps, ("PING",)])
    raw = twin.raw
    raw.sock.sendall(b"".join(request(*argv) for argv in [*steps, ("PING",)]))
    theirs = raw.buf
    while not theirs.endswith(b"+PONG\r\n"):
        theirs += raw.sock.recv(65536)
    raw.buf = b""
    assert ours == theirs, f"{steps}: snapkv {ours!r} != redis {theirs!r}"
    return ours


def test_reply_off_skip_on_sequences(twin: Any) -> None:
    """OFF answers nothing until ON; SKIP drops the next reply only; SKIP under OFF is ignored."""
    steps = [
        ("CLIENT", "REPLY", "OFF"),
        ("SET", "k", "1"),
        ("GET", "k"),
        ("CLIENT", "REPLY", "SKIP"),
        ("GET", "k"),
        ("CLIENT", "REPLY", "ON"),
        ("GET", "k"),
        ("CLIENT", "REPLY", "SKIP"),
        ("INCR", "k"),
        ("GET", "k"),
        ("CLIENT", "REPLY", "SKIP"),
        ("CLIENT", "REPLY", "SKIP"),
        ("GET", "k"),
        ("GET", "k"),
        ("CLIENT", "REPLY", "SKIP"),
        ("NOSUCH",),
        ("GET", "k"),
    ]
    assert (
        pipeline_same(twin, steps)
        == b"+OK\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n2\r\n$1\r\n2\r\n+PONG\r\n"
    )


def test_reset_from_every_state_matches_redis(twin: Any) -> None:
    """Each state RESET leaves, shown by what the next command answers on both servers."""
    steps = [
        # MULTI and WATCH are gone: EXEC has nothing to run.
        [("WATCH", "w"), ("MULTI",), ("SET", "k", "1"), ("RESET",), ("EXEC",), ("GET", "k")],
        # Back to keyspace 0.
        [("SELECT", "3"), ("SET", "in3", "x"), ("RESET",), ("GET", "in3"), ("DBSIZE",)],
        # Back to RESP2: a map is a flat array again.
        [("HELLO", "3"), ("HSET", "h", "f", "v"), ("RESET",), ("HGETALL", "h")],
        # The name is cleared.
        [("CLIENT", "SETNAME", "named"), ("RESET",), ("CLIENT", "GETNAME")],
        # Out of subscribed mode, silently.
        [("SUBSCRIBE", "ch"), ("RESET",), ("GET", "k"), ("PUBSUB", "NUMSUB", "ch")],
        # Tracking off.
        [("CLIENT", "TRACKING", "ON"), ("RESET",), ("CLIENT", "TRACKINGINFO")],
        [("CLIENT", "TRACKING", "ON"), ("RESET",), ("CLIENT", "GETREDIR")],
        # CLIENT REPLY OFF ends: RESET itself answers.
        [("CLIENT", "REPLY", "OFF"), ("RESET",), ("PING",)],
        # A pending SKIP drops RESET's own reply, then ends.
        [("CLIENT", "REPLY", "SKIP"), ("RESET",), ("PING",)],
        # From a MULTI that already failed.
        [("MULTI",), ("NOSUCH",), ("RESET",), ("PING",)],
    ]
    for sequence in steps:
        if sequence[0][0] == "HELLO":
            twin(*sequence[0])  # its reply names each server's version and id: not compared
            sequence = sequence[1:]
        pipeline_same(twin, sequence)
        twin.same("FLUSHALL")


def _dispatcher(**config: Any) -> tuple[Dispatcher, Client]:
    server = Dispatcher(Store(), Config(**config))
    client = Client(server, addr="127.0.0.1:1")
    server.add_client(client)
    return server, client


def test_reset_clears_what_client_list_shows() -> None:
    server, client = _dispatcher()
    for argv in (
        ["CLIENT", "NO-EVICT", "on"],
        ["CLIENT", "NO-TOUCH", "on"],
        ["CLIENT", "TRACKING", "on"],
        ["MONITOR"],
        ["SELECT", "2"],
        ["MULTI"],
    ):
        server.execute(client, argv)
    flags = client.info_line().split(" flags=")[1].split(" ")[0]
    assert set(flags) == set("OxteT")
    assert server.execute(client, ["RESET"]) == b"+RESET\r\n"
    line = client.info_line()
    assert " flags=N " in line and " db=0 " in line and " multi=-1 " in line
    assert not server.monitors and not server.gate
    assert client.reply_mode == REPLY_ON and client.plain
    server.store.close()


def test_reset_deauthenticates_to_the_default_user() -> None:
    server, client = _dispatcher(requirepass="secret")
    assert server.execute(client, ["AUTH", "secret"]) == b"+OK\r\n"
    assert server.execute(client, ["SET", "k", "v"]) == b"+OK\r\n"
    assert server.execute(client, ["RESET"]) == b"+RESET\r\n"
    assert server.execute(client, ["GET", "k"]) == b"-NOAUTH Authentication required.\r\n"
    server.store.close()


def test_no_evict_and_no_touch_are_client_flags() -> None:
    server, client = _dispatcher()
    assert server.execute(client, ["CLIENT", "NO-EVICT", "ON"]) == b"+OK\r\n"
    assert server.execute(client, ["CLIENT", "NO-TOUCH", "on"]) == b"+OK\r\n"
    assert client.no_evict and client.no_touch
    assert server.execute(client, ["CLIENT", "NO-TOUCH", "off"]) == b"+OK\r\n"
    assert server.execute(client, ["CLIENT", "NO-EVICT", "off"]) == b"+OK\r\n"
    assert not client.no_evict and not client.no_touch
    assert server.execute(client, ["CLIENT", "NO-TOUCH", "x"]) == b"-ERR syntax error\r\n"
    server.store.close()


def test_unblock_ends_only_an_unblockable_wait() -> None:
    """TIMEOUT answers the wait's timeout reply, ERROR ``-UNBLOCKED``; a paused command stays."""
    server, admin = _dispatcher()
    waiter = Client(server, addr="127.0.0.1:2")
    server.add_client(waiter)
    cancelled: list[int] = []
    for reason, reply in (("TIMEOUT", b"*-1\r\n"), ("ERROR", None)):
        waiter.blocked = Blocked(
            ["BLPOP", "l", "0"],
            "keys",
            timeout_reply=b"*-1\r\n",
            cancel=lambda: cancelled.append(1),
        )
        unblock = ["CLIENT", "UNBLOCK", str(waiter.id), reason]
        assert server.execute(admin, unblock) == b":1\r\n"
        expected = reply or b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n"
        assert waiter.outbox.pop() == expected
        assert waiter.blocked is None
    assert cancelled == [1, 1]
    waiter.blocked = Blocked(["SET", "k", "v"], "postponed", unblockable=False)
    assert server.execute(admin, ["CLIENT", "UNBLOCK", str(waiter.id)]) == b":0\r\n"
    assert waiter.blocked is not None
    assert server.execute(admin, ["CLIENT", "UNBLOCK", str(admin.id)]) == b":0\r\n"
    server.store.close()
