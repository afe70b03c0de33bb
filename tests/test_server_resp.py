"""The RESP parser and encoder, byte for byte.

Every parser test runs against both parsers (pure Python, and hiredis's C
reader with its Python fallback): they must agree on commands, leniencies
and Redis's exact error texts. Expected texts were taken from redis-server
7.0 answering the same bytes.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snapkv.server import resp
from snapkv.server.resp import (
    HiredisParser,
    Parser,
    ProtocolError,
    PythonParser,
    encode,
    hiredis_reader,
    split_inline,
    string2ll,
)

KINDS = ["python", "hiredis"]


def make(kind: str, **kwargs: int | bool) -> Parser:
    if kind == "hiredis":
        pytest.importorskip("hiredis")
        return HiredisParser(**kwargs)
    return PythonParser(**kwargs)  # type: ignore[arg-type]


@pytest.fixture(params=KINDS)
def new(request: pytest.FixtureRequest) -> Callable[..., Parser]:
    return lambda **kwargs: make(request.param, **kwargs)


def multibulk(*args: bytes | str) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else arg
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def parse_all(parser: Parser, data: bytes) -> tuple[list[list[str]], str | None]:
    commands = parser.feed(data)
    # Unauthenticated parsers hand out one command per call.
    while parser.unauthenticated and (more := parser.parse()):
        commands.extend(more)
    return commands, None if parser.error is None else str(parser.error)


# ---------------------------------------------------------------- multibulk


def test_one_command(new: Callable[..., Parser]) -> None:
    assert new().feed(multibulk("SET", "k", "v")) == [["SET", "k", "v"]]


def test_pipelined_commands_come_out_in_order(new: Callable[..., Parser]) -> None:
    data = b"".join(multibulk("INCR", str(i)) for i in range(100))
    assert new().feed(data) == [["INCR", str(i)] for i in range(100)]


@pytest.mark.parametrize("step", [1, 2, 3, 7, 64])
def test_any_split_gives_the_same_commands(new: Callable[..., Parser], step: int) -> None:
    data = multibulk("SET", "key", "x" * 100) + b"PING\r\n" + multibulk("GET", "") * 3
    parser = new()
    commands = []
    for i in range(0, len(data), step):
        commands.extend(parser.feed(data[i : i + step]))
    assert commands == [["SET", "key", "x" * 100], ["PING"], ["GET", ""], ["GET", ""], ["GET", ""]]
    assert parser.error is None
    assert parser.buffered == 0


def test_a_large_value_arriving_in_pieces_is_not_rescanned(new: Callable[..., Parser]) -> None:
    value = b"v" * (3 << 20)
    data = multibulk(b"SET", b"k", value)
    parser = new()
    got = []
    for i in range(0, len(data), 65536):
        got.extend(parser.feed(data[i : i + 65536]))
    assert got == [["SET", "k", text(value)]]


def test_empty_and_negative_multibulk_counts_are_skipped(new: Callable[..., Parser]) -> None:
    # Redis: "*0" and "*-10" are not commands; the next request is served.
    assert new().feed(b"*-10\r\n*0\r\n" + multibulk("PING")) == [["PING"]]


def test_two_bytes_after_a_bulk_are_skipped_unchecked(new: Callable[..., Parser]) -> None:
    # redis-server answers "*1\r\n$4\r\nPINGxx" with +PONG: so must we.
    assert new().feed(b"*1\r\n$4\r\nPINGxx") == [["PING"]]


def test_empty_bulk_and_empty_command_name(new: Callable[..., Parser]) -> None:
    assert new().feed(b"*2\r\n$0\r\n\r\n$0\r\n\r\n") == [["", ""]]


# ------------------------------------------------------------------- inline


def test_inline_commands(new: Callable[..., Parser]) -> None:
    data = b"PING\r\nSET a  b\nGET a\r\n"
    assert new().feed(data) == [["PING"], ["SET", "a", "b"], ["GET", "a"]]


def test_empty_inline_lines_are_skipped(new: Callable[..., Parser]) -> None:
    assert new().feed(b"\r\n\r\n   \r\nPING\n") == [["PING"]]


def test_inline_quoting_as_sdssplitargs() -> None:
    assert split_inline(b'SET \'a b\' "c\\x41\\n\\""') == [b"SET", b"a b", b'cA\n"']
    assert split_inline(b'ECHO ""') == [b"ECHO", b""]
    assert split_inline(b"ECHO 'it\\'s'") == [b"ECHO", b"it's"]
    assert split_inline(b'ECHO "\\xZZ"') == [b"ECHO", b"xZZ"]
    # Every isspace() byte separates arguments, but only space, tab, CR and LF
    # end an unquoted one: Redis 7.0 answers "a\vb\r\n" with "unknown command 'a\vb'".
    assert split_inline(b"a\tb\x0bc") == [b"a", b"b\x0bc"]
    assert split_inline(b"a \x0b\x0c b\x0c") == [b"a", b"b\x0c"]
    assert split_inline(b'"a"\x0bb') == [b"a", b"b"]  # any isspace() may follow a closing quote
    assert split_inline(b'ECHO "abc"d') is None  # a closing quote must end the argument
    assert split_inline(b"ECHO 'abc") is None
    assert split_inline(b'ECHO "abc') is None


def test_inline_and_multibulk_mix(new: Callable[..., Parser]) -> None:
    data = multibulk("GET", "a") + b"PING\r\n" + multibulk("GET", "b")
    assert new().feed(data) == [["GET", "a"], ["PING"], ["GET", "b"]]


# ------------------------------------------------------------- protocol errors

ERRORS = [
    (b"*1\r\n$-1\r\n", "Protocol error: invalid bulk length"),
    (b"*1\r\n:4\r\n", "Protocol error: expected '$', got ':'"),
    (b"*1\r\n+PING\r\n", "Protocol error: expected '$', got '+'"),
    (b"*1\r\n=7\r\ntxt:abc\r\n", "Protocol error: expected '$', got '='"),
    (b"*2\r\n=7\r\ntxt:abc\r\n+x\r\n", "Protocol error: expected '$', got '='"),
    (b"*1\r\n*1\r\n$1\r\na\r\n", "Protocol error: expected '$', got '*'"),
    (b"*abc\r\n", "Protocol error: invalid multibulk length"),
    (b"*01\r\n$4\r\nPING\r\n", "Protocol error: invalid multibulk length"),
    (b"*3000000000\r\n", "Protocol error: invalid multibulk length"),
    (b"*1\r\n$abc\r\n", "Protocol error: invalid bulk length"),
    (b"*1\r\n$04\r\nPING\r\n", "Protocol error: invalid bulk length"),
    (b"*1\r\n$+4\r\nPING\r\n", "Protocol error: invalid bulk length"),
    (b"*1\r\n$600000000\r\n", "Protocol error: invalid bulk length"),
    (b'PING "unbalanced\r\n', "Protocol error: unbalanced quotes in request"),
    (b"x" * 70000, "Protocol error: too big inline request"),
    (b"*" + b"1" * 70000, "Protocol error: too big mbulk count string"),
    (b"*1\r\n$" + b"1" * 70000, "Protocol error: too big bulk count string"),
]


@pytest.mark.parametrize(("data", "message"), ERRORS, ids=[m for _, m in ERRORS])
def test_protocol_errors_use_redis_texts(
    new: Callable[..., Parser], data: bytes, message: str
) -> None:
    parser = new()
    assert parser.feed(data) == []
    assert str(parser.error) == message
    assert isinstance(parser.error, ProtocolError)


def test_commands_before_an_error_are_returned_and_the_parser_stops(
    new: Callable[..., Parser],
) -> None:
    parser = new()
    commands = parser.feed(multibulk("SET", "a", "1") + b"*1\r\n$-1\r\n" + multibulk("PING"))
    assert commands == [["SET", "a", "1"]]
    assert str(parser.error) == "Protocol error: invalid bulk length"
    assert parser.feed(multibulk("PING")) == []


def test_max_bulk_len_is_configurable(new: Callable[..., Parser]) -> None:
    parser = new(max_bulk_len=10)
    assert parser.feed(multibulk("SET", "k", "x" * 10)) == [["SET", "k", "x" * 10]]
    assert parser.feed(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$11\r\n") == []
    assert str(parser.error) == "Protocol error: invalid bulk length"


def test_max_args_is_configurable(new: Callable[..., Parser]) -> None:
    parser = new(max_args=3)
    assert parser.feed(multibulk("SET", "k", "v")) == [["SET", "k", "v"]]
    assert parser.feed(multibulk("MSET", "a", "1", "b", "2")) == []
    assert str(parser.error) == "Protocol error: invalid multibulk length"


def test_unauthenticated_limits(new: Callable[..., Parser]) -> None:
    parser = new(unauthenticated=True)
    assert parse_all(parser, multibulk(*"x" * 10)) == ([list("x" * 10)], None)
    assert parser.feed(multibulk(*"x" * 11)) == []
    assert str(parser.error) == "Protocol error: unauthenticated multibulk length"
    parser = new(unauthenticated=True)
    assert parser.feed(multibulk("SET", "k", "v" * 16384)) == [["SET", "k", "v" * 16384]]
    assert parser.feed(multibulk("SET", "k", "v" * 16385)) == []
    assert str(parser.error) == "Protocol error: unauthenticated bulk length"


def test_unauthenticated_parsers_return_one_command_at_a_time(
    new: Callable[..., Parser],
) -> None:
    # The second command may follow an AUTH: it must be parsed after AUTH ran.
    parser = new(unauthenticated=True)
    big = multibulk("SET", "k", "v" * 20000)
    assert parser.feed(multibulk("AUTH", "pw") + big) == [["AUTH", "pw"]]
    parser.unauthenticated = False
    assert parser.parse() == [["SET", "k", "v" * 20000]]
    assert parser.error is None


# ------------------------------------------------------------------ binary


def test_every_byte_value_round_trips(new: Callable[..., Parser]) -> None:
    values = [bytes([b]) for b in range(256)] + [bytes(range(256)), b"\xff\xfe\x80", b"\xc3"]
    parser = new()
    commands = parser.feed(b"".join(multibulk(b"SET", v, v) for v in values))
    assert [c[1].encode("utf-8", "surrogateescape") for c in commands] == values
    assert [resp.bulk(c[2]) for c in commands] == [resp.bulk(v) for v in values]


def test_valid_utf8_decodes_to_its_text(new: Callable[..., Parser]) -> None:
    assert new().feed(multibulk("SET", "ключ", "🔑")) == [["SET", "ключ", "🔑"]]


# --------------------------------------------------------------- agreement


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    parts = []
    for _ in range(draw(st.integers(1, 5))):
        args = draw(st.lists(st.binary(max_size=20), min_size=1, max_size=4))
        parts.append(multibulk(*args))
    return b"".join(parts)


@settings(max_examples=150, deadline=None)
@given(requests(), st.lists(st.integers(0, 200), max_size=4))
def test_both_parsers_agree_on_valid_input_split_anywhere(data: bytes, cuts: list[int]) -> None:
    pytest.importorskip("hiredis")
    results = []
    for parser in (PythonParser(), HiredisParser()):
        commands: list[list[str]] = []
        start = 0
        for cut in [*sorted(c % (len(data) + 1) for c in cuts), len(data)]:
            commands.extend(parser.feed(data[start:cut]))
            start = max(start, cut)
        results.append((commands, parser.error))
    assert results[0] == results[1]
    assert results[0][1] is None


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            requests(),
            st.sampled_from(
                [b"*", b"$", b"\r\n", b"+x\r\n", b":1\r\n", b"*-1\r\n", b"$-1\r\n", b"*0\r\n"]
            ),
            st.binary(max_size=6),
        ),
        max_size=6,
    )
)
def test_both_parsers_agree_on_any_input(pieces: list[bytes]) -> None:
    pytest.importorskip("hiredis")
    data = b"*1\r\n$4\r\nPING\r\n" + b"".join(pieces)
    python, hiredis_ = PythonParser(max_bulk_len=1000), HiredisParser(max_bulk_len=1000)
    assert parse_all(python, data) == parse_all(hiredis_, data)


#: The one-regex definition of what HiredisParser leaves to the Python parser.
UNSAFE_FOR_HIREDIS = re.compile(rb"\n[+=|~>]|[*%~>|][0-9]{6}")
RESP_BYTES = st.sampled_from([b"\r", b"\n", b"*", b"$", b"+", b"=", b"|", b"%", b"~", b">"])


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.one_of(RESP_BYTES, st.binary(max_size=4), st.from_regex(rb"\A[0-9]{1,8}\Z")),
        max_size=12,
    )
)
def test_the_fast_hiredis_guard_is_the_regex(pieces: list[bytes]) -> None:
    data = b"".join(pieces)
    assert hiredis_reader._unsafe_for_hiredis(data) == (UNSAFE_FOR_HIREDIS.search(data) is not None)


def test_the_hiredis_guard_on_examples() -> None:
    unsafe = [b"*1\r\n+OK\r\n", b"x\n=1", b"x\n|", b"*100000\r\n", b"ab%123456", b"~999999"]
    unsafe += [b"x\n~1", b"x\n>1"]  # a set or a push would come back as a list
    safe = [b"*3\r\n$3\r\nSET\r\n$16\r\nkey:000000012345\r\n$3\r\nx+=\r\n", b"*99999\r\n"]
    assert all(hiredis_reader._unsafe_for_hiredis(d) for d in unsafe)
    assert not any(hiredis_reader._unsafe_for_hiredis(d) for d in safe)


def test_string2ll_is_strict() -> None:
    assert string2ll(b"0") == 0
    assert string2ll(b"-1") == -1
    assert string2ll(b"9223372036854775807") == 2**63 - 1
    assert string2ll(b"-9223372036854775808") == -(2**63)
    for bad in [b"", b"-", b"-0", b"01", b"+1", b" 1", b"1 ", b"1_0", b"9223372036854775808"]:
        assert string2ll(bad) is None, bad


# ----------------------------------------------------------------- encoder


def test_simple_and_error_replies_cannot_break_the_framing() -> None:
    assert resp.simple("OK") == b"+OK\r\n"
    assert resp.error("ERR bad\r\nthing") == b"-ERR bad  thing\r\n"


def test_scalars() -> None:
    assert resp.integer(-5) == b":-5\r\n"
    assert resp.bulk("") == b"$0\r\n\r\n"
    assert resp.bulk("é") == b"$2\r\n\xc3\xa9\r\n"
    assert resp.bulk(b"\x00\xff") == b"$2\r\n\x00\xff\r\n"


@pytest.mark.parametrize(
    ("value", "resp2", "resp3"),
    [
        (None, b"$-1\r\n", b"_\r\n"),
        (resp.NULL_ARRAY, b"*-1\r\n", b"_\r\n"),
        (True, b":1\r\n", b"#t\r\n"),
        (False, b":0\r\n", b"#f\r\n"),
        (1.5, b"$3\r\n1.5\r\n", b",1.5\r\n"),
        (float("inf"), b"$3\r\ninf\r\n", b",inf\r\n"),
        (float("-inf"), b"$4\r\n-inf\r\n", b",-inf\r\n"),
        ([1, "a"], b"*2\r\n:1\r\n$1\r\na\r\n", b"*2\r\n:1\r\n$1\r\na\r\n"),
        ({"k": 1}, b"*2\r\n$1\r\nk\r\n:1\r\n", b"%1\r\n$1\r\nk\r\n:1\r\n"),
        ({"x"}, b"*1\r\n$1\r\nx\r\n", b"~1\r\n$1\r\nx\r\n"),
        (resp.SimpleString("OK"), b"+OK\r\n", b"+OK\r\n"),
        (resp.ErrorReply("ERR x"), b"-ERR x\r\n", b"-ERR x\r\n"),
        ([[], {}], b"*2\r\n*0\r\n*0\r\n", b"*2\r\n*0\r\n%0\r\n"),
    ],
)
def test_structured_replies(value: object, resp2: bytes, resp3: bytes) -> None:
    assert encode(value, 2) == resp2
    assert encode(value, 3) == resp3


def test_unencodable_values_are_refused() -> None:
    with pytest.raises(TypeError, match="cannot encode object as a RESP reply"):
        encode(object())
