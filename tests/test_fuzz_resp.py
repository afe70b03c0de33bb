"""Hostile requests to the RESP reader: hypothesis in process, then against redis-server.

In process, both parsers (the pure Python one and the hiredis fast path)
get random bytes and mutated valid frames (wrong and huge lengths,
``*2147483648``, ``$-2``, a bulk past ``proto-max-bulk-len``, RESP3 types
where a request must be an array, inline commands with quotes, NUL, a CR
without its LF). Whatever comes, :meth:`feed` returns commands (lists of
``str``), waits for more, or stops at one of Redis's protocol errors; it
never raises, gives the same result however the bytes are cut into reads,
and allocates nothing for a count or a length it has not received.

Over real sockets, the same kind of input goes to ``snapkv serve`` and to
redis-server 7.0 and everything each answers until it closes is compared
byte for byte: the replies of the commands before the error, then
``-ERR Protocol error: ...``, then the close. Meanwhile another client of
``snapkv serve`` keeps being answered: a hostile request stalls nobody.

Redis accepts a multibulk count up to 2**31 - 1; snapkv refuses one over
``DEFAULT_MAX_ARGS`` (2**20) with the same error, so the differential test
draws no count between the two.
"""

from __future__ import annotations

import os
import socket
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fuzz_vocabulary import TOKENS
from reference import Raw, redis_server
from serving import DEADLINE, serving
from snapkv.server.dispatch import COMMANDS
from snapkv.server.resp import (
    DEFAULT_MAX_BULK_LEN,
    Parser,
    ProtocolError,
    PythonParser,
    make_parser,
)

FUZZ = settings(
    max_examples=int(os.environ.get("SNAPKV_FUZZ_EXAMPLES", "200")),
    deadline=None,
    derandomize=not os.environ.get("SNAPKV_FUZZ_RANDOM"),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
#: Every message a request may be refused with (Redis's networking.c).
PROTOCOL_ERRORS = {
    "Protocol error: invalid multibulk length",
    "Protocol error: invalid bulk length",
    "Protocol error: unbalanced quotes in request",
    "Protocol error: too big inline request",
    "Protocol error: too big mbulk count string",
    "Protocol error: too big bulk count string",
    "Protocol error: unauthenticated multibulk length",
    "Protocol error: unauthenticated bulk length",
}
EXPECTED_DOLLAR = "Protocol error: expected '$', got '"


def parsers() -> list[type[PythonParser]]:
    kinds: list[type[PythonParser]] = [PythonParser]
    made = make_parser()
    if type(made) is not PythonParser:
        kinds.append(type(made))
    return kinds


KINDS = parsers()

# ------------------------------------------------------------------ inputs


def frame(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


SAFE_NAMES = [b"PING", b"ping", b"ECHO", b"echo", b"NOSUCH", b"pInG", b""]
ARGS = st.one_of(
    st.sampled_from([b"a", b"", b"hello world", b"\0", b"\r", b"\n", b"\r\n", b"'", b'"']),
    st.binary(max_size=12),
)
#: Headers and fragments at and past each check of processMultibulkBuffer.
EDGES = [
    b"*2147483648\r\n",
    b"*2147483647\r\n",
    b"*-1\r\n",
    b"*-2147483649\r\n",
    b"*0\r\n",
    b"*01\r\n",
    b"*+1\r\n",
    b"* 1\r\n",
    b"*1 \r\n",
    b"*\r\n",
    b"$-2\r\n",
    b"$-1\r\n",
    b"$0\r\n\r\n",
    b"$%d\r\n" % (DEFAULT_MAX_BULK_LEN + 1),
    b"$9223372036854775808\r\n",
    b"$04\r\n",
    b"$4\r\nPING",
    b"%1\r\n+a\r\n+b\r\n",
    b"~1\r\n$1\r\na\r\n",
    b">1\r\n+x\r\n",
    b"#t\r\n",
    b",1.5\r\n",
    b"(12345678901234567890\r\n",
    b"_\r\n",
    b"=7\r\ntxt:abc\r\n",
    b"|1\r\n+a\r\n+b\r\n",
    b":1\r\n",
    b"+OK\r\n",
    b"-ERR x\r\n",
    b"\r",
    b"\n",
    b"\r\n",
    b"\0",
    b"\r\r\n",
]
INLINE = st.lists(
    st.one_of(
        st.sampled_from([b"PING", b"ECHO", b"ping", b"NOSUCH"]),
        st.sampled_from([b'"a b"', b"'a b'", b'"\\x41\\x4"', b'"\\n"', b"'it\\'s'", b'"x"y']),
        st.sampled_from([b'"open', b"'open", b"\0", b"\t", b"\r", b" "]),
        ARGS.filter(lambda b: b"\n" not in b),
    ),
    max_size=4,
).map(lambda words: b" ".join(words) + b"\r\n")


@st.composite
def mutated_frames(draw: st.DrawFn) -> bytes:
    """A valid frame with one of its bytes or lengths changed, or none."""
    args = [draw(st.sampled_from(SAFE_NAMES)), *draw(st.lists(ARGS, max_size=3))]
    data = bytearray(frame(*args))
    how = draw(st.integers(0, 4))
    if how == 1 and data:  # one byte replaced
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    elif how == 2 and data:  # cut short
        del data[draw(st.integers(0, len(data) - 1)) :]
    elif how == 3:  # a length off by a little
        digits = [i for i, b in enumerate(data) if 48 <= b <= 57]
        if digits:
            i = draw(st.sampled_from(digits))
            data[i] = 48 + (data[i] - 48 + draw(st.integers(1, 9))) % 10
    elif how == 4:  # one byte inserted
        data.insert(draw(st.integers(0, len(data))), draw(st.integers(0, 255)))
    return bytes(data)


HOSTILE = st.lists(
    st.one_of(mutated_frames(), st.sampled_from(EDGES), INLINE, st.binary(max_size=8)),
    min_size=1,
    max_size=5,
).map(b"".join)


def parse_in_pieces(kind: type[PythonParser], pieces: list[bytes]) -> tuple[list[list[str]], str]:
    """Feed ``pieces`` one read at a time: the commands, then the error text ("" if none)."""
    parser = kind()
    commands: list[list[str]] = []
    for piece in pieces:
        commands.extend(parser.feed(piece))
    return commands, "" if parser.error is None else str(parser.error)


# ------------------------------------------------------------------ in process


@pytest.mark.parametrize("kind", KINDS, ids=[k.__name__ for k in KINDS])
@FUZZ
@given(data=HOSTILE)
def test_any_input_gives_commands_or_a_redis_protocol_error(
    kind: type[PythonParser], data: bytes
) -> None:
    parser = kind()
    commands = parser.feed(data)
    assert all(type(c) is list and all(type(a) is str for a in c) for c in commands)
    assert all(commands), "an empty request is skipped, never returned"
    if parser.error is not None:
        assert isinstance(parser.error, ProtocolError)
        message = str(parser.error)
        assert message in PROTOCOL_ERRORS or (
            message.startswith(EXPECTED_DOLLAR) and message.endswith("'")
        ), message
        assert parser.feed(b"*1\r\n$4\r\nPING\r\n") == [], "a failed parser takes nothing more"
    else:
        assert parser.buffered <= len(data)


@pytest.mark.parametrize("kind", KINDS, ids=[k.__name__ for k in KINDS])
@FUZZ
@given(data=HOSTILE)
def test_every_cut_into_two_reads_gives_the_same_result(
    kind: type[PythonParser], data: bytes
) -> None:
    whole = parse_in_pieces(PythonParser, [data])
    for cut in range(len(data) + 1):
        assert parse_in_pieces(kind, [data[:cut], data[cut:]]) == whole, cut


@pytest.mark.parametrize("kind", KINDS, ids=[k.__name__ for k in KINDS])
@FUZZ
@given(data=HOSTILE)
def test_byte_by_byte_gives_the_same_result(kind: type[PythonParser], data: bytes) -> None:
    whole = parse_in_pieces(PythonParser, [data])
    assert parse_in_pieces(kind, [data[i : i + 1] for i in range(len(data))]) == whole


HEADERS = [
    b"*1000000000\r\n",
    b"*1048576\r\n",
    b"*2147483647\r\n",
    b"*1\r\n$536870912\r\n",
    b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870912\r\n",
    b"*1048576\r\n$536870912\r\n",
]


@pytest.mark.parametrize("kind", KINDS, ids=[k.__name__ for k in KINDS])
@pytest.mark.parametrize("header", HEADERS)
def test_a_count_or_length_not_yet_received_allocates_nothing(
    kind: type[PythonParser], header: bytes
) -> None:
    parser: Parser = kind()
    tracemalloc.start()
    try:
        for _ in range(100):  # and asking again and again costs nothing either
            parser.feed(header if not parser.buffered else b"")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024, f"{header!r}: {peak} bytes"
    assert parser.buffered <= len(header)


# ------------------------------------------------------------------ over sockets


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    """(snapkv serve's port, redis-server 7.0's port), both private to this module."""
    with (
        redis_server(tmp_path_factory.mktemp("fuzz-redis")) as theirs,
        serving(tmp_path_factory.mktemp("fuzz-snapkv")) as ours,
    ):
        yield ours, theirs


def exchange(port: int, data: bytes) -> bytes:
    """Send ``data``, end our side, and return everything the server sends until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


#: Every command name either server may know (snapkv's table, and Redis's beyond it).
KNOWN = {cmd.parent or cmd.name for cmd in COMMANDS} | set(TOKENS) | {"shutdown", "debug"}


def harmless(data: bytes) -> bool:
    """Whether every command in ``data`` is PING, ECHO or unknown: safe on both servers.

    And whether both servers must refuse alike: no multibulk count between
    snapkv's limit and Redis's (see the module docstring).
    """
    as_redis = PythonParser(max_args=2**31 - 1)
    commands = as_redis.feed(data)
    error = "" if as_redis.error is None else str(as_redis.error)
    if (commands, error) != parse_in_pieces(PythonParser, [data]):
        return False
    for command in commands:
        name = command[0].lower()
        if name in KNOWN and name not in ("ping", "echo"):
            return False
    return True


@settings(FUZZ, max_examples=max(FUZZ.max_examples // 2, 1))
@given(data=HOSTILE)
def test_snapkv_serve_answers_hostile_input_as_redis(servers: tuple[int, int], data: bytes) -> None:
    ours, theirs = servers
    assume(harmless(data))
    assert exchange(ours, data) == exchange(theirs, data)


# ------------------------------------------------------------------ found by the fuzz

#: A NUL before a line's end hides the end from Redis's strchr(): it waits for more.
NUL_WAITS = [
    (b"\0\n", "too big inline request"),
    (b"PING\0x\r\n", "too big inline request"),
    (b"*1\0\r\n", "too big mbulk count string"),
    (b"*1\r\n$4\0\r\nPING\r\n", "too big bulk count string"),
    (b"*1\r\n\0$4\r\nPING\r\n", "too big bulk count string"),
]


@pytest.mark.parametrize("kind", KINDS, ids=[k.__name__ for k in KINDS])
@pytest.mark.parametrize(("data", "message"), NUL_WAITS)
def test_a_nul_before_the_line_end_waits_for_more_as_redis(
    kind: type[PythonParser], data: bytes, message: str
) -> None:
    parser = kind()
    assert parser.feed(data) == []
    assert parser.error is None
    parser.feed(b"x" * 70_000)  # until the line is too long
    assert str(parser.error) == f"Protocol error: {message}"


@pytest.mark.parametrize("kind", KINDS, ids=[k.__name__ for k in KINDS])
def test_an_empty_multibulk_then_a_cut_command_is_not_taken_for_a_boundary(
    kind: type[PythonParser],
) -> None:
    # hiredis's fast path used to see the chunk's own *0 as its end-of-chunk sentinel.
    assert parse_in_pieces(kind, [b"*0\r\n*1\r\n$4\r\nP", b"ING\r\n"]) == ([["PING"]], "")


@pytest.mark.parametrize("kind", KINDS, ids=[k.__name__ for k in KINDS])
def test_a_read_that_ends_right_after_a_bulk_keeps_its_command_open(
    kind: type[PythonParser],
) -> None:
    # The Python parser had consumed every byte (its arguments so far kept apart),
    # and hiredis's fast path took the next read for the start of a new command.
    data = b"*2\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n"
    assert parse_in_pieces(kind, [data[:14], data[14:]]) == (
        [],
        "Protocol error: expected '$', got '*'",
    )
    assert parse_in_pieces(kind, [b"*2\r\n$4\r\nECHO\r\n", b"*1\r\n$1\r\nx\r\n"])[0] == []


@pytest.mark.parametrize(
    "data",
    [data for data, _ in NUL_WAITS]
    + [b"a\x0bb\r\n", b"\x0b\r\n", b"ECHO a\x0c\r\n", b"*1\r\n\x80$4\r\nPING\r\n"],
)
def test_nul_vertical_space_and_binary_as_redis(servers: tuple[int, int], data: bytes) -> None:
    ours, theirs = servers
    assert exchange(ours, data) == exchange(theirs, data)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")  # pragma: no cover - Linux only, as the CI


def test_hostile_clients_stall_no_one_and_cost_no_memory(servers: tuple[int, int]) -> None:
    """Half-sent requests with huge counts and lengths: the server waits for them without
    allocating what they announce, refuses what it must, and keeps answering others."""
    ours, _ = servers
    good = Raw(ours)
    info = good("INFO", "server").decode()
    pid = int(info.split("process_id:")[1].split()[0])
    before = rss_kib(pid)
    waiting = []
    for data in [
        b"*1048576\r\n",
        b"*1\r\n$536870912\r\nxx",
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870912\r\n",
        b"GET " + b"k" * 60_000,
        b"*2\r\n$4\r\nECHO\r\n$5\r\nab",
    ]:
        sock = socket.create_connection(("127.0.0.1", ours), timeout=DEADLINE)
        sock.sendall(data)
        waiting.append(sock)
    try:
        for data, message in [
            (b"*1000000000\r\n", b"invalid multibulk length"),
            (b"*2147483648\r\n", b"invalid multibulk length"),
            (b"*1\r\n$-2\r\n", b"invalid bulk length"),
            (b"*1\r\n$536870913\r\n", b"invalid bulk length"),
            (b"*1\r\n%1\r\n+a\r\n+b\r\n", b"expected '$', got '%'"),
        ]:
            assert exchange(ours, data) == b"-ERR Protocol error: " + message + b"\r\n"
            assert good("PING") == b"+PONG\r\n"
        assert good("SET", "k", "v") == b"+OK\r\n"
        assert good("GET", "k") == b"$1\r\nv\r\n"
        assert rss_kib(pid) - before < 32 * 1024, "half-sent requests cost memory"
    finally:
        for sock in waiting:
            sock.close()
        good.close()


@pytest.mark.parametrize("kind", KINDS, ids=[k.__name__ for k in KINDS])
@pytest.mark.parametrize(
    "data",
    [
        b"*1\r\n$4\r\nPING\r\n~1\r\n$1\r\na\r\n",  # a set, read as a list by hiredis
        b"*1\r\n$4\r\nPING\r\n>1\r\n$1\r\na\r\n",  # a push, likewise
        b"*1\r\n$4\r\nPING\r\n%1\r\n*1\r\n$1\r\na\r\n$1\r\nb\r\n",  # a map keyed by a list
    ],
)
def test_resp3_aggregates_after_a_request_are_inline_commands(
    kind: type[PythonParser], data: bytes
) -> None:
    commands, error = parse_in_pieces(kind, [data])
    assert (commands, error) == parse_in_pieces(PythonParser, [data])
    assert commands[0] == ["PING"] and commands[1][0] in ("~1", ">1", "%1")
