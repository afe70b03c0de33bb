"""Commands snapkv does not have: Redis 7.0's exact unknown-command error, and nothing else.

A server answers a command it lacks with ``commandCheckExistence``'s text
(server.c): ``ERR unknown command '<name>', with args beginning with: `` and
the arguments quoted while the list is under 128 bytes, each cut to what is
left and at its first NUL (C's ``%.*s``), the name cut at 128 bytes, CR and
LF replaced by spaces. Nothing may suggest the command half exists: no key
is created, no type is claimed, a MULTI block holding one is discarded, and
COMMAND does not list it. :func:`redis_unknown` below is that rule written
again from server.c, independently of the dispatcher's code.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serving import DEADLINE, serving
from snapkv import MemoryMedium, Store
from snapkv.server.client import Client
from snapkv.server.dispatch import Dispatcher
from snapkv.server.state import Config

redis = pytest.importorskip("redis")

#: One command of each Redis 7.0 group snapkv does not implement (or a command
#: of an implemented group it lacks), with plausible arguments.
OTHER_COMMANDS = [
    (b"XGROUP", b"CREATE", b"x", b"g", b"$", b"MKSTREAM"),
    (b"PFADD", b"p", b"a"),
    (b"GEOADD", b"g", b"13.361389", b"38.115556", b"Palermo"),
    (b"SETBIT", b"b", b"7", b"1"),
    (b"LCS", b"k", b"k"),
    (b"MIGRATE", b"127.0.0.1", b"1", b"k", b"0", b"100"),
    (b"CLUSTER", b"INFO"),
    (b"READONLY",),
]
CREATED = [b"x", b"p", b"g", b"b"]


def redis_unknown(argv: list[bytes]) -> bytes:
    """The reply Redis 7.0 sends for the unknown command ``argv`` (server.c)."""

    def c_string(arg: bytes, limit: int) -> bytes:  # printf's %.*s of a C string
        return arg.partition(b"\0")[0][:limit]

    args = b""
    for arg in argv[1:]:
        if len(args) >= 128:
            break
        args += b"'" + c_string(arg, 128 - len(args)) + b"' "
    text = b"unknown command '%s', with args beginning with: %s" % (c_string(argv[0], 128), args)
    return b"-ERR " + text.replace(b"\r", b" ").replace(b"\n", b" ") + b"\r\n"


@pytest.fixture
def dispatcher() -> Iterator[Dispatcher]:
    store = Store(MemoryMedium(), sweep_interval=None)
    yield Dispatcher(store, Config())
    store.close()


def run(server: Dispatcher, client: Client, argv: list[bytes]) -> bytes:
    return server.execute(client, [arg.decode("utf-8", "surrogateescape") for arg in argv])


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    directory: Path = tmp_path_factory.mktemp("unknown")
    with serving(directory, "--appendonly", "no", "--save", "") as port:
        yield port


def request(port: int, *commands: tuple[bytes, ...]) -> bytes:
    """Send ``commands`` in one write over a fresh connection; the replies, once all arrived."""
    data = b"".join(
        b"*%d\r\n" % len(argv) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in argv)
        for argv in commands
    )
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as sock:
        sock.sendall(data + b"*1\r\n$4\r\nQUIT\r\n")
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.endswith(b"+OK\r\n")
    return reply[: -len(b"+OK\r\n")]


@pytest.mark.parametrize("argv", OTHER_COMMANDS, ids=lambda argv: argv[0].decode())
def test_other_commands_get_redis_unknown_command_error_over_a_socket(
    port: int, argv: tuple[bytes, ...]
) -> None:
    assert request(port, argv) == redis_unknown(list(argv))


def test_unknown_commands_change_nothing(port: int) -> None:
    replies = request(port, (b"SET", b"k", b"v"), *OTHER_COMMANDS, (b"DBSIZE",), (b"TYPE", b"k"))
    assert replies.endswith(b":1\r\n+string\r\n")
    assert request(port, *((b"EXISTS", key) for key in CREATED)) == b":0\r\n" * len(CREATED)
    assert request(port, (b"GET", b"k")) == b"$1\r\nv\r\n"


def test_an_unknown_command_dooms_its_transaction(port: int) -> None:
    replies = request(
        port,
        (b"MULTI",),
        (b"SET", b"t", b"1"),
        (b"PFADD", b"h", b"*", b"f", b"v"),
        (b"EXEC",),
        (b"EXISTS", b"t", b"h"),
    )
    assert replies == (
        b"+OK\r\n+QUEUED\r\n"
        + redis_unknown([b"PFADD", b"h", b"*", b"f", b"v"])
        + b"-EXECABORT Transaction discarded because of previous errors.\r\n:0\r\n"
    )


def test_the_text_is_cut_and_made_safe_as_redis_does(port: int) -> None:
    cases = [
        (b"x" * 300,),
        (b"PFADD", b"a" * 200, b"b"),
        (b"PFADD", b"a" * 100, b"b" * 100, b"c"),
        (b"PFADD", b"key\0hidden", b"\0", b"v"),
        (b"HS\r\nET", b"line\r\nbreak", b"+OK"),
        (b"\xff\xfe", b"\xc3(", b"caf\xc3\xa9"),
        (b"PFADD",),
    ]
    for argv in cases:
        reply = request(port, argv)
        assert reply == redis_unknown(list(argv)), argv
        assert reply.count(b"\r\n") == 1


def test_redis_py_sees_the_unknown_command_error(port: int) -> None:
    with redis.Redis(port=port, socket_timeout=DEADLINE) as r:
        with pytest.raises(redis.ResponseError) as raised:
            r.pfadd("h", "a", "b")
        assert str(raised.value) == (
            "unknown command 'PFADD', with args beginning with: 'h' 'a' 'b' "
        )
        assert r.exists("h") == 0


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.binary(max_size=150) | st.sampled_from([b"\0", b"\r\n", b"a" * 127]),
        min_size=1,
        max_size=6,
    )
)
def test_any_unknown_request_gets_exactly_redis_text(argv: list[bytes]) -> None:
    store = Store(MemoryMedium(), sweep_interval=None)
    try:
        server = Dispatcher(store, Config())
        client = Client(server)
        known = {name.encode() for name in server.table}
        if argv[0].partition(b"\0")[0] in known or argv[0].lower() in known:
            return
        assert run(server, client, argv) == redis_unknown(argv)
        assert len(store) == 0
    finally:
        store.close()


def test_command_lists_exactly_the_commands_that_exist(dispatcher: Dispatcher) -> None:
    client = Client(dispatcher)
    top = sorted(cmd.name for cmd in dispatcher.commands())
    assert run(dispatcher, client, [b"COMMAND", b"COUNT"]) == b":%d\r\n" % len(top)
    listed = run(dispatcher, client, [b"COMMAND", b"LIST"])
    names = [line for line in listed.split(b"\r\n")[2::2]]
    assert {n.decode() for n in names if b"|" not in n} == set(top)
    for argv in OTHER_COMMANDS:
        name = argv[0].lower()
        assert name not in names
        assert run(dispatcher, client, [b"COMMAND", b"INFO", name]) == b"*1\r\n$-1\r\n"
        assert run(dispatcher, client, [b"COMMAND", b"DOCS", name]) == b"*0\r\n"
    # Every listed name is a command the dispatcher runs (no unknown-command answer).
    for name in names:
        parent, _, sub = name.partition(b"|")
        argv = [parent, sub] if sub else [parent]
        assert not run(dispatcher, client, [b"COMMAND", b"INFO", name]).startswith(b"*1\r\n$-1")
        assert b"unknown command" not in run(dispatcher, client, [b"COMMAND", b"GETKEYS", *argv])
