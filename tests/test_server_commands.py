"""The dispatcher and the command handlers, without sockets: requests in, reply bytes out.

Expected replies are byte for byte what redis-server 7.0 answers to the
same requests (error texts included), except where a comment says why not.
The Store runs on an injected clock, so expiry is tested without waiting.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snapkv import MemoryMedium, Store
from snapkv.errors import MediumError
from snapkv.server.client import Client
from snapkv.server.dispatch import Dispatcher
from snapkv.server.glob import stringmatch as glob_matches
from snapkv.server.state import Config
from snapkv.testing import FaultyMedium

START = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


class Session:
    """One client of a dispatcher: ``s("SET", "k", "v")`` returns the reply bytes."""

    def __init__(self, server: Dispatcher) -> None:
        self.server = server
        self.client = Client(server, addr="127.0.0.1:1000", laddr="127.0.0.1:6379")
        server.add_client(self.client)

    def __call__(self, *argv: str) -> bytes:
        return self.server.execute(self.client, list(argv))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> Iterator[Store]:
    store = Store(MemoryMedium(), clock=clock, sweep_interval=None)
    yield store
    store.close()


@pytest.fixture
def server(store: Store) -> Dispatcher:
    return Dispatcher(store, Config())


@pytest.fixture
def s(server: Dispatcher) -> Session:
    return Session(server)


def error(text: str) -> bytes:
    return b"-" + text.encode() + b"\r\n"


# ------------------------------------------------------------- dispatching


def test_unknown_command_quotes_its_first_arguments(s: Session) -> None:
    assert s("FOO", "a", "b", "c") == error(
        "ERR unknown command 'FOO', with args beginning with: 'a' 'b' 'c' "
    )
    assert s("FOO") == error("ERR unknown command 'FOO', with args beginning with: ")


def test_unknown_command_text_is_cut_like_redis(s: Session) -> None:
    reply = s("FOO", "a" * 200, "b")
    assert reply == error(f"ERR unknown command 'FOO', with args beginning with: '{'a' * 128}' ")
    assert s("x" * 300) == error(f"ERR unknown command '{'x' * 128}', with args beginning with: ")


def test_newlines_in_user_text_cannot_break_the_reply(s: Session) -> None:
    reply = s("FOO\r\n+OK", "a\nb")
    assert reply.count(b"\r\n") == 1
    assert reply.startswith(b"-ERR unknown command 'FOO  +OK'")


def test_lookup_is_case_insensitive(s: Session) -> None:
    assert s("pInG") == b"+PONG\r\n"
    assert s("CONFIG", "gEt", "maxclients") == b"*2\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n"


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (("GET",), "get"),
        (("GET", "a", "b"), "get"),
        (("PING", "a", "b"), "ping"),
        (("ECHO",), "echo"),
        (("MSET", "a"), "mset"),
        (("MSET", "a", "1", "b"), "mset"),
        (("MSETNX", "a", "1", "b"), "msetnx"),
        (("CLIENT",), "client"),
        (("CONFIG", "GET"), "config|get"),
        (("WATCH",), "watch"),
        (("UNLINK",), "unlink"),
    ],
)
def test_arity_errors(s: Session, argv: tuple[str, ...], name: str) -> None:
    assert s(*argv) == error(f"ERR wrong number of arguments for '{name}' command")


@pytest.mark.parametrize("container", ["CONFIG", "CLIENT", "COMMAND", "DEBUG"])
def test_unknown_subcommand(s: Session, container: str) -> None:
    assert s(container, "FOO") == error(f"ERR unknown subcommand 'FOO'. Try {container} HELP.")


def test_every_command_is_declared_once_with_a_handler(server: Dispatcher) -> None:
    names = [cmd.name for cmd in server.commands()]
    assert len(names) == len(set(names))
    for cmd in server.commands():
        assert cmd.arity != 0 and callable(cmd.handler)
        assert cmd.name == cmd.name.lower()
        for sub in (cmd.subcommands or {}).values():
            assert sub.full_name == f"{cmd.name}|{sub.name}"


# ------------------------------------------------------------- connection


def test_ping_echo(s: Session) -> None:
    assert s("PING") == b"+PONG\r\n"
    assert s("PING", "hi") == b"$2\r\nhi\r\n"
    assert s("ECHO", "") == b"$0\r\n\r\n"


def test_hello_switches_protocol_and_answers_redis_fields(s: Session) -> None:
    reply = s("HELLO", "3")
    assert reply.startswith(b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n")
    assert b"$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:" in reply
    assert reply.endswith(
        b"$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n"
    )
    assert s("GET", "missing") == b"_\r\n"
    assert s("HELLO", "2").startswith(b"*14\r\n")
    assert s("GET", "missing") == b"$-1\r\n"
    assert s("HELLO").startswith(b"*14\r\n")


@pytest.mark.parametrize(
    ("argv", "reply"),
    [
        (("HELLO", "4"), "NOPROTO unsupported protocol version"),
        (("HELLO", "1"), "NOPROTO unsupported protocol version"),
        (("HELLO", "abc"), "ERR Protocol version is not an integer or out of range"),
        (("HELLO", "3", "FOO"), "ERR Syntax error in HELLO option 'FOO'"),
        (("HELLO", "3", "AUTH", "a"), "ERR Syntax error in HELLO option 'AUTH'"),
        (
            ("HELLO", "3", "SETNAME", "a b"),
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ),
    ],
)
def test_hello_errors(s: Session, argv: tuple[str, ...], reply: str) -> None:
    assert s(*argv) == error(reply)


def test_auth_without_a_password_configured(s: Session) -> None:
    assert s("AUTH", "x") == error(
        "ERR AUTH <password> called without any password configured for the default user. "
        "Are you sure your configuration is correct?"
    )
    assert s("AUTH", "a", "b") == error(
        "WRONGPASS invalid username-password pair or user is disabled."
    )
    assert s("AUTH", "default", "anything") == b"+OK\r\n"  # the default user is nopass
    assert s("AUTH", "a", "b", "c") == error("ERR syntax error")


def test_requirepass(store: Store) -> None:
    server = Dispatcher(store, Config(requirepass="sesame"))
    s = Session(server)
    assert s("GET", "a") == error("NOAUTH Authentication required.")
    assert s("FOO") == error("ERR unknown command 'FOO', with args beginning with: ")
    assert s("GET") == error("ERR wrong number of arguments for 'get' command")
    assert s("HELLO", "3").startswith(b"-NOAUTH HELLO must be called with the client already")
    assert s("PING") == error("NOAUTH Authentication required.")
    assert s("AUTH", "wrong") == error(
        "WRONGPASS invalid username-password pair or user is disabled."
    )
    assert s("AUTH", "sesame") == b"+OK\r\n"
    assert s("PING") == b"+PONG\r\n"
    assert s("RESET") == b"+RESET\r\n"
    assert s("PING") == error("NOAUTH Authentication required.")
    assert s("HELLO", "3", "AUTH", "default", "sesame").startswith(b"%7\r\n")
    assert s("QUIT") == b"+OK\r\n" and s.client.close_after_reply


def test_select_and_keyspaces(s: Session) -> None:
    assert s("SET", "k", "zero") == b"+OK\r\n"
    assert s("SELECT", "1") == b"+OK\r\n"
    assert s("GET", "k") == b"$-1\r\n"
    assert s("SET", "k", "one") == b"+OK\r\n"
    assert s("SELECT", "16") == error("ERR DB index is out of range")
    assert s("SELECT", "-1") == error("ERR DB index is out of range")
    assert s("SELECT", "x") == error("ERR value is not an integer or out of range")
    assert s("SELECT", "0") == b"+OK\r\n"
    assert s("GET", "k") == b"$4\r\nzero\r\n"
    assert s("SWAPDB", "0", "1") == b"+OK\r\n"
    assert s("GET", "k") == b"$3\r\none\r\n"
    assert s("SWAPDB", "0", "x") == error("ERR invalid second DB index")
    assert s("SWAPDB", "x", "0") == error("ERR invalid first DB index")
    assert s("SWAPDB", "0", "99") == error("ERR DB index is out of range")


def test_client_commands(server: Dispatcher, s: Session) -> None:
    assert s("CLIENT", "ID") == b":%d\r\n" % s.client.id
    assert s("CLIENT", "GETNAME") == b"$-1\r\n"
    assert s("CLIENT", "SETNAME", "a b") == error(
        "ERR Client names cannot contain spaces, newlines or special characters."
    )
    assert s("CLIENT", "SETNAME", "worker") == b"+OK\r\n"
    assert s("CLIENT", "GETNAME") == b"$6\r\nworker\r\n"
    assert s("CLIENT", "SETINFO", "lib-name", "redis-py") == b"+OK\r\n"
    assert s("CLIENT", "SETINFO", "foo", "x") == error("ERR Unrecognized option 'foo'")
    info = s("CLIENT", "INFO")
    assert b"name=worker" in info and b"lib-name=redis-py" in info and b"cmd=client|info" in info
    other = Session(server)
    listing = s("CLIENT", "LIST")
    assert listing.count(b" addr=") == 2 and b"id=%d " % other.client.id in listing
    killed: list[int] = []
    other.client.kill = lambda: killed.append(other.client.id)
    assert s("CLIENT", "KILL", "1.2.3.4:5") == error("ERR No such client")
    assert s("CLIENT", "KILL", "ID", "999") == b":0\r\n"
    assert s("CLIENT", "KILL", "ID", str(other.client.id)) == b":1\r\n"
    assert killed == [other.client.id]
    assert s("CLIENT", "KILL", "ID") == error("ERR No such client")  # the old one-address form
    assert s("CLIENT", "KILL", "ID", "1", "SKIPME") == error("ERR syntax error")


# ----------------------------------------------------------------- strings


def test_get_set(s: Session) -> None:
    assert s("GET", "k") == b"$-1\r\n"
    assert s("SET", "k", "v") == b"+OK\r\n"
    assert s("GET", "k") == b"$1\r\nv\r\n"
    assert s("SET", "k", "") == b"+OK\r\n"
    assert s("GET", "k") == b"$0\r\n\r\n"


def test_set_options(s: Session, clock: Clock) -> None:
    assert s("SET", "k", "1", "NX") == b"+OK\r\n"
    assert s("SET", "k", "2", "NX") == b"$-1\r\n"
    assert s("SET", "k", "2", "XX", "GET") == b"$1\r\n1\r\n"
    assert s("SET", "nokey", "v", "XX") == b"$-1\r\n"
    assert s("SET", "nokey", "v", "NX", "GET") == b"$-1\r\n"
    assert s("GET", "nokey") == b"$1\r\nv\r\n"
    assert s("SET", "k", "3", "EX", "10") == b"+OK\r\n"
    assert s("TTL", "k") == b":10\r\n"
    assert s("SET", "k", "4", "KEEPTTL") == b"+OK\r\n"
    assert s("PTTL", "k") == b":10000\r\n"
    assert s("SET", "k", "5") == b"+OK\r\n"
    assert s("TTL", "k") == b":-1\r\n"
    assert s("SET", "k", "6", "PX", "1500") == b"+OK\r\n"
    assert s("PTTL", "k") == b":1500\r\n"
    at = int(START) + 100
    assert s("SET", "k", "7", "EXAT", str(at)) == b"+OK\r\n"
    assert s("EXPIRETIME", "k") == b":%d\r\n" % at
    assert s("SET", "k", "8", "PXAT", str(at * 1000 + 5)) == b"+OK\r\n"
    assert s("PEXPIRETIME", "k") == b":%d\r\n" % (at * 1000 + 5)
    assert s("SET", "k", "9", "EXAT", "1") == b"+OK\r\n"  # in the past: gone at once
    assert s("EXISTS", "k") == b":0\r\n"
    clock.now += 0  # the clock is injected: nothing above waited


@pytest.mark.parametrize(
    ("options", "reply"),
    [
        (("NX", "XX"), "ERR syntax error"),
        (("EX", "10", "PX", "5"), "ERR syntax error"),
        (("KEEPTTL", "EX", "5"), "ERR syntax error"),
        (("FOO",), "ERR syntax error"),
        (("EX",), "ERR syntax error"),
        (("EX", "0"), "ERR invalid expire time in 'set' command"),
        (("EX", "-5"), "ERR invalid expire time in 'set' command"),
        (("EX", "9999999999999999"), "ERR invalid expire time in 'set' command"),
        (("EX", "abc"), "ERR value is not an integer or out of range"),
        (("PERSIST",), "ERR syntax error"),
    ],
)
def test_set_option_errors(s: Session, options: tuple[str, ...], reply: str) -> None:
    assert s("SET", "k", "v", *options) == error(reply)
    assert s("EXISTS", "k") == b":0\r\n"


def test_setex_psetex_getex(s: Session, clock: Clock) -> None:
    assert s("SETEX", "k", "10", "v") == b"+OK\r\n"
    assert s("TTL", "k") == b":10\r\n"
    assert s("SETEX", "k", "0", "v") == error("ERR invalid expire time in 'setex' command")
    assert s("PSETEX", "k", "-1", "v") == error("ERR invalid expire time in 'psetex' command")
    assert s("PSETEX", "k", "2500", "v") == b"+OK\r\n"
    assert s("PTTL", "k") == b":2500\r\n"
    assert s("GETEX", "k", "PERSIST") == b"$1\r\nv\r\n"
    assert s("TTL", "k") == b":-1\r\n"
    assert s("GETEX", "k", "EX", "5") == b"$1\r\nv\r\n"
    assert s("TTL", "k") == b":5\r\n"
    assert s("GETEX", "k", "PERSIST", "EX", "1") == error("ERR syntax error")
    assert s("GETEX", "k", "NX") == error("ERR syntax error")
    assert s("GETEX", "missing", "EX", "5") == b"$-1\r\n"
    clock.now += 5
    assert s("GET", "k") == b"$-1\r\n"


def test_multi_key_strings(s: Session) -> None:
    assert s("MSET", "a", "1", "b", "2") == b"+OK\r\n"
    assert s("MGET", "a", "x", "b") == b"*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n"
    assert s("MSETNX", "b", "9", "c", "3") == b":0\r\n"
    assert s("EXISTS", "c") == b":0\r\n"
    assert s("MSETNX", "c", "3", "d", "4") == b":1\r\n"
    assert s("SETNX", "a", "x") == b":0\r\n"
    assert s("SETNX", "e", "5") == b":1\r\n"
    assert s("GETSET", "a", "10") == b"$1\r\n1\r\n"
    assert s("GETSET", "new", "1") == b"$-1\r\n"
    assert s("GETDEL", "a") == b"$2\r\n10\r\n"
    assert s("GETDEL", "a") == b"$-1\r\n"


def test_lengths_count_bytes(s: Session) -> None:
    assert s("APPEND", "k", "ab") == b":2\r\n"
    assert s("APPEND", "k", "é") == b":4\r\n"  # é is two bytes on the wire
    assert s("STRLEN", "k") == b":4\r\n"
    assert s("STRLEN", "missing") == b":0\r\n"
    assert s("GETRANGE", "k", "0", "-1") == b"$4\r\nab\xc3\xa9\r\n"
    assert s("GETRANGE", "k", "2", "2") == b"$1\r\n\xc3\r\n"  # half a character, exactly
    assert s("SUBSTR", "k", "1", "5") == b"$3\r\nb\xc3\xa9\r\n"
    assert s("GETRANGE", "k", "-1", "-2") == b"$0\r\n\r\n"
    assert s("GETRANGE", "k", "5", "9") == b"$0\r\n\r\n"
    assert s("GETRANGE", "missing", "0", "-1") == b"$0\r\n\r\n"
    assert s("GETRANGE", "k", "x", "1") == error("ERR value is not an integer or out of range")


def test_setrange(s: Session) -> None:
    assert s("SETRANGE", "k", "3", "xy") == b":5\r\n"
    assert s("GET", "k") == b"$5\r\n\x00\x00\x00xy\r\n"
    assert s("SETRANGE", "k", "0", "ab") == b":5\r\n"
    assert s("GET", "k") == b"$5\r\nab\x00xy\r\n"
    assert s("SETRANGE", "missing", "0", "") == b":0\r\n"
    assert s("EXISTS", "missing") == b":0\r\n"
    assert s("SETRANGE", "k", "-1", "x") == error("ERR offset is out of range")
    assert s("SETRANGE", "k", "536870912", "x") == error(
        "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
    )


def test_counters(s: Session) -> None:
    assert s("INCR", "n") == b":1\r\n"
    assert s("INCRBY", "n", "10") == b":11\r\n"
    assert s("DECR", "n") == b":10\r\n"
    assert s("DECRBY", "n", "20") == b":-10\r\n"
    assert s("INCRBY", "n", "x") == error("ERR value is not an integer or out of range")
    assert s("SET", "s", "abc") == b"+OK\r\n"
    assert s("INCR", "s") == error("ERR value is not an integer or out of range")
    assert s("SET", "s", " 1") == b"+OK\r\n"
    assert s("INCR", "s") == error("ERR value is not an integer or out of range")
    assert s("SET", "i", "9223372036854775807") == b"+OK\r\n"
    assert s("INCR", "i") == error("ERR increment or decrement would overflow")
    assert s("DECRBY", "i", "-9223372036854775808") == error("ERR decrement would overflow")


def test_counters_keep_the_expiry(s: Session) -> None:
    assert s("SET", "n", "1", "EX", "100") == b"+OK\r\n"
    assert s("INCR", "n") == b":2\r\n"
    assert s("TTL", "n") == b":100\r\n"
    assert s("APPEND", "n", "0") == b":2\r\n"
    assert s("TTL", "n") == b":100\r\n"


def test_incrbyfloat(s: Session) -> None:
    assert s("SET", "f", "10.50") == b"+OK\r\n"
    assert s("INCRBYFLOAT", "f", "0.1") == b"$4\r\n10.6\r\n"
    assert s("INCRBYFLOAT", "f", "-5.6") == b"$1\r\n5\r\n"
    assert s("INCRBYFLOAT", "f", "1e20") == b"$21\r\n100000000000000000000\r\n"
    assert s("INCRBYFLOAT", "f", "x") == error("ERR value is not a valid float")
    assert s("INCRBYFLOAT", "f", " 1") == error("ERR value is not a valid float")
    assert s("INCRBYFLOAT", "f", "nan") == error("ERR value is not a valid float")
    assert s("INCRBYFLOAT", "f", "inf") == error("ERR increment would produce NaN or Infinity")
    assert s("INCRBYFLOAT", "new", "3") == b"$1\r\n3\r\n"


# ---------------------------------------------------------------- keyspace


def test_del_exists_type_touch(s: Session) -> None:
    s("MSET", "a", "1", "b", "2")
    assert s("EXISTS", "a", "a", "x") == b":2\r\n"
    assert s("TOUCH", "a", "x") == b":1\r\n"
    assert s("TYPE", "a") == b"+string\r\n"
    assert s("TYPE", "x") == b"+none\r\n"
    assert s("DEL", "a", "x", "a") == b":1\r\n"
    assert s("UNLINK", "b") == b":1\r\n"
    assert s("DBSIZE") == b":0\r\n"


def test_rename_copy_move(s: Session) -> None:
    assert s("RENAME", "nokey", "b") == error("ERR no such key")
    s("SET", "a", "1", "EX", "100")
    assert s("RENAME", "a", "b") == b"+OK\r\n"
    assert s("TTL", "b") == b":100\r\n"
    assert s("RENAME", "b", "b") == b"+OK\r\n"
    s("SET", "c", "3")
    assert s("RENAMENX", "b", "c") == b":0\r\n"
    assert s("RENAMENX", "b", "b") == b":0\r\n"
    assert s("RENAMENX", "b", "d") == b":1\r\n"
    assert s("COPY", "d", "d") == error("ERR source and destination objects are the same")
    assert s("COPY", "d", "c") == b":0\r\n"
    assert s("COPY", "d", "c", "REPLACE") == b":1\r\n"
    assert s("GET", "c") == b"$1\r\n1\r\n"
    assert s("TTL", "c") == b":100\r\n"
    assert s("COPY", "d", "e", "DB", "3") == b":1\r\n"
    assert s("COPY", "d", "e", "DB", "x") == error("ERR value is not an integer or out of range")
    assert s("COPY", "d", "e", "REPLACE", "FOO") == error("ERR syntax error")
    assert s("COPY", "missing", "e") == b":0\r\n"
    assert s("MOVE", "d", "0") == error("ERR source and destination objects are the same")
    assert s("MOVE", "d", "x") == error("ERR value is not an integer or out of range")
    assert s("MOVE", "d", "99") == error("ERR DB index is out of range")
    assert s("MOVE", "d", "3") == b":1\r\n"
    assert s("MOVE", "d", "3") == b":0\r\n"
    s("SELECT", "3")
    assert s("MGET", "d", "e") == b"*2\r\n$1\r\n1\r\n$1\r\n1\r\n"


def test_expire_family(s: Session, clock: Clock) -> None:
    assert s("EXPIRE", "missing", "10") == b":0\r\n"
    assert s("TTL", "missing") == b":-2\r\n"
    assert s("PEXPIRETIME", "missing") == b":-2\r\n"
    s("SET", "k", "v")
    assert s("TTL", "k") == b":-1\r\n"
    assert s("EXPIRETIME", "k") == b":-1\r\n"
    assert s("EXPIRE", "k", "100", "XX") == b":0\r\n"
    assert s("EXPIRE", "k", "100", "GT") == b":0\r\n"  # no expiry counts as infinite
    assert s("EXPIRE", "k", "100", "NX") == b":1\r\n"
    assert s("EXPIRE", "k", "50", "GT") == b":0\r\n"
    assert s("EXPIRE", "k", "50", "LT") == b":1\r\n"
    assert s("PEXPIRE", "k", "60000", "LT") == b":0\r\n"
    assert s("TTL", "k") == b":50\r\n"
    at = int(START) + 200
    assert s("EXPIREAT", "k", str(at)) == b":1\r\n"
    assert s("EXPIRETIME", "k") == b":%d\r\n" % at
    assert s("PEXPIREAT", "k", str(at * 1000 + 1)) == b":1\r\n"
    assert s("PEXPIRETIME", "k") == b":%d\r\n" % (at * 1000 + 1)
    assert s("PERSIST", "k") == b":1\r\n"
    assert s("PERSIST", "k") == b":0\r\n"
    assert s("EXPIRE", "k", "10") == b":1\r\n"
    clock.now += 9.6
    assert s("TTL", "k") == b":0\r\n"  # rounded as Redis rounds: (ms + 500) / 1000
    assert s("PTTL", "k") == b":400\r\n"
    clock.now += 0.4
    assert s("GET", "k") == b"$-1\r\n"
    s("SET", "k", "v")
    assert s("EXPIRE", "k", "-1") == b":1\r\n"  # in the past: deleted
    assert s("EXISTS", "k") == b":0\r\n"


@pytest.mark.parametrize(
    ("argv", "reply"),
    [
        (
            ("EXPIRE", "k", "10", "NX", "XX"),
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ),
        (
            ("EXPIRE", "k", "10", "GT", "LT"),
            "ERR GT and LT options at the same time are not compatible",
        ),
        (("EXPIRE", "k", "10", "FOO"), "ERR Unsupported option FOO"),
        (("EXPIRE", "k", "abc"), "ERR value is not an integer or out of range"),
        (("EXPIRE", "k", "9223372036854775807"), "ERR invalid expire time in 'expire' command"),
        (("PEXPIRE", "k", "9223372036854775807"), "ERR invalid expire time in 'pexpire' command"),
    ],
)
def test_expire_errors(s: Session, argv: tuple[str, ...], reply: str) -> None:
    s("SET", "k", "v")
    assert s(*argv) == error(reply)


def test_keys_and_randomkey(s: Session) -> None:
    assert s("RANDOMKEY") == b"$-1\r\n"
    s("MSET", "hello", "1", "hallo", "2", "hxllo", "3", "world", "4")
    assert sorted(s("KEYS", "h?llo").split(b"\r\n")[2::2]) == [b"hallo", b"hello", b"hxllo"]
    assert s("KEYS", "h[ae]llo").startswith(b"*2\r\n")
    assert s("KEYS", "h[^e]llo").startswith(b"*2\r\n")
    assert s("KEYS", "*").startswith(b"*4\r\n")
    assert s("KEYS", "[") == b"*0\r\n"
    assert s("RANDOMKEY") in {b"$5\r\n%s\r\n" % k for k in (b"hello", b"hallo", b"hxllo", b"world")}


def test_dbsize_flushdb_flushall(s: Session) -> None:
    s("MSET", "a", "1", "b", "2")
    s("SELECT", "1")
    s("SET", "c", "3")
    assert s("DBSIZE") == b":1\r\n"
    assert s("FLUSHDB", "FOO") == error("ERR syntax error")
    assert s("FLUSHDB", "ASYNC") == b"+OK\r\n"
    assert s("DBSIZE") == b":0\r\n"
    s("SELECT", "0")
    assert s("DBSIZE") == b":2\r\n"
    assert s("FLUSHALL", "SYNC") == b"+OK\r\n"
    assert s("DBSIZE") == b":0\r\n"


def scan_all(
    s: Session, *options: str, write: Sequence[tuple[str, ...]] | None = None
) -> list[str]:
    seen: list[str] = []
    cursor = "0"
    step = 0
    while True:
        reply = s("SCAN", cursor, *options)
        parts = reply.split(b"\r\n")
        cursor = parts[2].decode()
        seen.extend(p.decode() for p in parts[5::2])
        if write and step < len(write):
            s(*write[step])
        step += 1
        if cursor == "0":
            return seen


def test_scan_returns_every_key_once_despite_writes(s: Session) -> None:
    s("MSET", *[x for i in range(100) for x in (f"k{i}", "v")])
    writes = [("DEL", f"k{i}") for i in range(90, 100)] + [
        ("SET", f"new{i}", "v") for i in range(5)
    ]
    seen = scan_all(s, "COUNT", "7", write=writes)
    assert len(seen) == len(set(seen))
    # Keys present for the whole walk (k0..k89) are all returned.
    assert {f"k{i}" for i in range(90)} <= set(seen)


def test_scan_options(s: Session) -> None:
    s("MSET", "a1", "1", "a2", "2", "b1", "3")
    assert sorted(scan_all(s, "MATCH", "a*")) == ["a1", "a2"]
    assert scan_all(s, "TYPE", "list") == []
    assert sorted(scan_all(s, "TYPE", "string", "COUNT", "1")) == ["a1", "a2", "b1"]
    assert s("SCAN", "0", "COUNT", "0") == error("ERR syntax error")
    assert s("SCAN", "0", "COUNT") == error("ERR syntax error")
    assert s("SCAN", "x") == error("ERR invalid cursor")
    assert s("SCAN", "18446744073709551616") == error("ERR invalid cursor")


def test_scan_cursor_works_from_another_connection(server: Dispatcher, s: Session) -> None:
    s("MSET", *[x for i in range(30) for x in (f"k{i}", "v")])
    first = s("SCAN", "0", "COUNT", "10").split(b"\r\n")
    other = Session(server)
    seen = first[5:-1:2]
    cursor = first[2].decode()
    while cursor != "0":
        parts = other("SCAN", cursor, "COUNT", "10").split(b"\r\n")
        cursor = parts[2].decode()
        seen.extend(parts[5:-1:2])
    assert sorted(seen) == sorted(f"k{i}".encode() for i in range(30))


def test_a_stale_cursor_never_continues_another_walk(server: Dispatcher, s: Session) -> None:
    """A walk pushed out by 70,000 newer ones (past any 16-bit numbering) misses no key."""
    s("MSET", "a", "v", "b", "v", "c", "v", "d", "v")
    first = s("SCAN", "0", "COUNT", "2").split(b"\r\n")
    seen = first[5:-1:2]
    cursor = first[2].decode()
    s("DEL", *(key.decode() for key in seen))  # what remains (two keys) stays to the end
    other = Session(server)
    for _ in range(70_000):  # newer walks over the two keys left, each abandoned
        other("SCAN", "0", "COUNT", "1")
    rest: list[bytes] = []
    while cursor != "0":
        parts = s("SCAN", cursor, "COUNT", "2").split(b"\r\n")
        cursor = parts[2].decode()
        rest.extend(parts[5:-1:2])
    assert set(rest) == {b"a", b"b", b"c", b"d"} - set(seen)


# ------------------------------------------------------------ transactions


def test_multi_exec(s: Session) -> None:
    assert s("MULTI") == b"+OK\r\n"
    assert s("SET", "n", "abc") == b"+QUEUED\r\n"
    assert s("INCR", "n") == b"+QUEUED\r\n"
    assert s("SET", "n", "5") == b"+QUEUED\r\n"
    assert s("INCR", "n") == b"+QUEUED\r\n"
    assert s("EXEC") == (
        b"*4\r\n+OK\r\n-ERR value is not an integer or out of range\r\n+OK\r\n:6\r\n"
    )


def test_multi_errors(s: Session) -> None:
    assert s("EXEC") == error("ERR EXEC without MULTI")
    assert s("DISCARD") == error("ERR DISCARD without MULTI")
    s("MULTI")
    assert s("MULTI") == error("ERR MULTI calls can not be nested")
    assert s("WATCH", "a") == error("ERR WATCH inside MULTI is not allowed")
    assert s("EXEC") == b"*0\r\n"  # neither error dooms the transaction
    s("MULTI")
    s("SET", "a", "1")
    assert s("FOO") == error("ERR unknown command 'FOO', with args beginning with: ")
    assert s("GET", "a", "b") == error("ERR wrong number of arguments for 'get' command")
    assert s("EXEC") == error("EXECABORT Transaction discarded because of previous errors.")
    assert s("EXISTS", "a") == b":0\r\n"
    s("MULTI")
    s("SET", "a", "1")
    assert s("DISCARD") == b"+OK\r\n"
    assert s("EXISTS", "a") == b":0\r\n"


@pytest.mark.parametrize("argv", [("SAVE",), ("SHUTDOWN",), ("SHUTDOWN", "NOSAVE")])
def test_no_multi_commands_are_refused_inside_multi(
    s: Session, server: Dispatcher, argv: tuple[str, ...]
) -> None:
    """Redis 7 flags SAVE and SHUTDOWN ``no-multi``: refused while queueing, EXEC aborts."""
    s("MULTI")
    s("SET", "a", "1")
    assert s(*argv) == error("ERR Command not allowed inside a transaction")
    assert s("EXEC") == error("EXECABORT Transaction discarded because of previous errors.")
    assert s("EXISTS", "a") == b":0\r\n"
    assert server.shutdown_requested is None and not s.client.close_after_reply


def journaled(clock: Clock) -> tuple[FaultyMedium, Store, Session]:
    medium = FaultyMedium()
    store = Store(medium, clock=clock, journal=True, fsync="never", sweep_interval=None)
    store.restore()
    return medium, store, Session(Dispatcher(store, Config(appendonly=True)))


def test_exec_writes_one_journal_record(clock: Clock) -> None:
    medium, store, s = journaled(clock)
    writes: list[int] = []
    medium.on_event = lambda number, kind: writes.append(number) if kind == "write" else None
    s("MULTI")
    for i in range(100):
        s("SET", f"k{i}", str(i))
    s("INCR", "k0")
    s("INCR", "not-a-number-key")
    s("SELECT", "1")
    s("SET", "k0", "in db 1")
    s("GET", "k0")  # reads inside see the transaction's own writes
    reply = s("EXEC")
    assert reply.startswith(b"*105\r\n+OK\r\n") and reply.endswith(b"+OK\r\n$7\r\nin db 1\r\n")
    assert len(writes) == 1  # one record for the whole block, not one per write
    killed = medium.crash("keep")  # what a kill -9 now would leave
    store.close()
    with Store(killed, journal=True, sweep_interval=None) as again:
        again.restore()
        assert len(again) == 101 and again.get("k0") == "1" and again.get("k99") == "99"
        assert again.db(1).get("k0") == "in db 1"


def test_exec_whose_record_the_journal_refuses_leaves_nothing(clock: Clock) -> None:
    medium, store, s = journaled(clock)
    assert s("SET", "before", "1") == b"+OK\r\n"
    s("MULTI")
    s("SET", "a", "1")
    s("DEL", "before")
    medium.fail("write")
    reply = s("EXEC")
    assert reply.startswith(b"-ERR exec: ") and b"injected failure" in reply
    assert s("EXISTS", "a") == b":0\r\n"  # every write of the block undone
    assert s("GET", "before") == b"$1\r\n1\r\n"
    with contextlib.suppress(MediumError):  # the journal stays failed: it says so again
        store.close()


def test_an_exception_escaping_exec_undoes_every_write(
    s: Session, server: Dispatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(client: Client, argv: list[str]) -> bytes:
        raise KeyboardInterrupt  # not an Exception: call() does not make it a reply

    monkeypatch.setattr(server.table["echo"], "handler", interrupted)
    s("SET", "kept", "1")
    s("MULTI")
    s("SET", "a", "1")
    s("DEL", "kept")
    s("ECHO", "x")
    with pytest.raises(KeyboardInterrupt):
        s("EXEC")
    assert s("EXISTS", "a") == b":0\r\n"
    assert s("GET", "kept") == b"$1\r\n1\r\n"


def test_multi_in_resp3_uses_resp3_nulls(s: Session) -> None:
    s("HELLO", "3")
    s("MULTI")
    s("GET", "zz")
    s("SET", "q", "1", "GET")
    assert s("EXEC") == b"*2\r\n_\r\n_\r\n"


def test_watch_fails_exec_when_another_client_writes(server: Dispatcher, s: Session) -> None:
    other = Session(server)
    assert s("WATCH", "w") == b"+OK\r\n"
    other("SET", "w", "changed")
    s("MULTI")
    s("SET", "w", "mine")
    assert s("EXEC") == b"*-1\r\n"
    assert s("GET", "w") == b"$7\r\nchanged\r\n"
    # The WATCH ended with EXEC: the next transaction goes through.
    s("MULTI")
    s("SET", "w", "mine")
    assert s("EXEC") == b"*1\r\n+OK\r\n"


@pytest.mark.parametrize(
    "write",
    [
        ("DEL", "w"),
        ("EXPIRE", "w", "100"),
        ("RENAME", "w", "z"),
        ("FLUSHDB",),
        ("FLUSHALL",),
        ("SWAPDB", "0", "1"),
        ("MSET", "x", "1", "w", "2"),
        ("INCR", "w"),
    ],
)
def test_watch_sees_every_kind_of_write(
    server: Dispatcher, s: Session, write: tuple[str, ...]
) -> None:
    s("SET", "w", "1")
    other = Session(server)
    s("WATCH", "w")
    other(*write)
    s("MULTI")
    s("PING")
    assert s("EXEC") == b"*-1\r\n"


def test_watch_ignores_other_keys_and_unwatch(server: Dispatcher, s: Session) -> None:
    other = Session(server)
    s("WATCH", "w")
    other("SET", "unrelated", "1")
    other("SELECT", "1")
    other("SET", "w", "other keyspace")
    s("MULTI")
    assert s("EXEC") == b"*0\r\n"
    s("WATCH", "w")
    s("UNWATCH")
    Session(server)("SET", "w", "1")
    s("MULTI")
    assert s("EXEC") == b"*0\r\n"


def test_watch_fails_exec_when_the_key_expires(s: Session, clock: Clock) -> None:
    s("SET", "w", "1", "PX", "100")
    s("WATCH", "w")
    clock.now += 1
    s("MULTI")
    assert s("EXEC") == b"*-1\r\n"


# ------------------------------------------------------------------ server


def test_command_introspection(s: Session, server: Dispatcher) -> None:
    assert s("COMMAND", "COUNT") == b":%d\r\n" % len(server.commands())
    info = s("COMMAND", "INFO", "get", "nosuch")
    assert info.startswith(b"*2\r\n*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n")
    assert info.endswith(b"$-1\r\n")
    assert b"config|get" in s("COMMAND", "LIST")
    assert s("COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2") == b"*2\r\n$1\r\na\r\n$1\r\nb\r\n"
    assert s("COMMAND", "GETKEYS", "PING", "x") == error("ERR The command has no key arguments")
    assert s("COMMAND").startswith(b"*%d\r\n" % len(server.commands()))
    assert s("COMMAND", "DOCS", "get").startswith(b"*2\r\n$3\r\nget\r\n")


def test_config(s: Session, server: Dispatcher) -> None:
    assert s("CONFIG", "GET", "maxclients") == b"*2\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n"
    assert s("CONFIG", "SET", "maxclients", "abc") == error(
        "ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument couldn't "
        "be parsed into an integer"
    )
    assert s("CONFIG", "SET", "foo", "1") == error(
        "ERR Unknown option or number of arguments for CONFIG SET - 'foo'"
    )
    assert s("CONFIG", "SET", "databases", "3") == error(
        "ERR CONFIG SET failed (possibly related to argument 'databases') - can't set immutable "
        "config"
    )
    assert s("CONFIG", "SET", "maxclients", "5", "timeout", "30") == b"+OK\r\n"
    assert (server.config.maxclients, server.config.timeout) == (5, 30)
    assert s("CONFIG", "SET", "save", "900 1 300 10") == b"+OK\r\n"
    assert server.config.save == [(900, 1), (300, 10)]
    assert s("CONFIG", "GET", "save") == b"*2\r\n$4\r\nsave\r\n$12\r\n900 1 300 10\r\n"
    assert s("CONFIG", "RESETSTAT") == b"+OK\r\n"


def test_info_reports_what_clients_read(s: Session) -> None:
    s("SET", "a", "1")
    s("SELECT", "2")
    s("SET", "b", "1")
    reply = s("INFO").decode()
    fields = dict(line.split(":", 1) for line in reply.split("\r\n") if ":" in line)
    assert fields["redis_version"] == "7.2.0"
    assert fields["snapkv_version"]
    assert fields["arch_bits"] in ("32", "64")
    assert fields["cluster_enabled"] == "0"
    assert int(fields["used_memory"]) > 0
    assert fields["rdb_changes_since_last_save"] == "2"
    assert "aof_enabled" in fields and "rdb_last_save_time" in fields
    assert fields["db0"].startswith("keys=1,") and fields["db2"].startswith("keys=1,")
    assert s("INFO", "keyspace").decode().count("# ") == 1
    s("HELLO", "3")
    assert s("INFO", "server").startswith(b"=")  # RESP3: a verbatim string, as Redis


def test_info_keyspace_counts_keys_with_an_expiry(s: Session, clock: Clock) -> None:
    s("SET", "plain", "1")
    s("SET", "soon", "1", "PX", "100")
    s("SET", "later", "1", "EX", "100")
    s("SELECT", "3")
    s("SET", "x", "1", "EX", "5")

    def keyspace() -> dict[str, str]:
        lines = s("INFO", "keyspace").decode().split("\r\n")
        return dict(line.split(":", 1) for line in lines if line.startswith("db"))

    assert keyspace() == {
        "db0": "keys=3,expires=2,avg_ttl=0",
        "db3": "keys=1,expires=1,avg_ttl=0",
    }
    clock.now += 1  # "soon" is due: keys= no longer counts it, nor does expires=
    assert keyspace()["db0"] == "keys=2,expires=1,avg_ttl=0"
    s("SELECT", "0")
    s("PERSIST", "later")
    assert keyspace()["db0"] == "keys=2,expires=0,avg_ttl=0"


def test_save_lastsave_and_debug_reload(s: Session, store: Store) -> None:
    s("SET", "a", "1")
    before = int(s("LASTSAVE")[1:-2])
    assert s("SAVE") == b"+OK\r\n"
    assert int(s("LASTSAVE")[1:-2]) >= before
    assert len(store.medium.generations()) >= 1
    s("SET", "a", "2")
    assert s("DEBUG", "RELOAD") == b"+OK\r\n"
    assert s("GET", "a") == b"$1\r\n2\r\n"
    assert s("DEBUG", "LOG", "hello") == b"+OK\r\n"
    assert s("DEBUG", "SLEEP", "0") == b"+OK\r\n"
    assert s("DEBUG", "FOO") == error("ERR unknown subcommand 'FOO'. Try DEBUG HELP.")


def test_a_failed_background_save_stops_writes_like_redis(clock: Clock) -> None:
    medium = FaultyMedium()
    store = Store(medium, clock=clock, sweep_interval=None)
    server = Dispatcher(store, Config(save=[(900, 1)]))
    s = Session(server)
    assert s("SET", "a", "1") == b"+OK\r\n"
    medium.fail("publish")
    assert s("BGSAVE") == b"+Background saving started\r\n"
    assert server.bgsave_thread is not None
    server.bgsave_thread.join()
    misconf = s("SET", "a", "2")
    assert misconf.startswith(b"-MISCONF ") and b"stop-writes-on-bgsave-error" in misconf
    assert s("PING") == misconf  # as Redis: PING tells a client the server cannot persist
    assert s("GET", "a") == b"$1\r\n1\r\n"  # reads go on
    assert "rdb_last_bgsave_status:err" in s("INFO", "persistence").decode()
    assert s("MULTI") == b"+OK\r\n"
    assert s("GET", "a") == b"+QUEUED\r\n"
    assert s("INCR", "a") == misconf  # refused while queueing: dooms the transaction
    assert s("EXEC") == error("EXECABORT Transaction discarded because of previous errors.")
    admin = Session(server)  # CONFIG SET from another connection while this one is in MULTI
    assert s("MULTI") == b"+OK\r\n"
    assert admin("CONFIG", "SET", "stop-writes-on-bgsave-error", "no") == b"+OK\r\n"
    assert s("INCR", "a") == b"+QUEUED\r\n"
    assert admin("CONFIG", "SET", "stop-writes-on-bgsave-error", "yes") == b"+OK\r\n"
    reason = misconf[1:-2].decode()
    assert s("EXEC") == error(f"EXECABORT Transaction discarded because of: {reason}")
    assert s("GET", "a") == b"$1\r\n1\r\n"  # not in MULTI any more; nothing ran
    assert s("CONFIG", "GET", "stop-writes-on-bgsave-error") == (
        b"*2\r\n$27\r\nstop-writes-on-bgsave-error\r\n$3\r\nyes\r\n"
    )
    assert s("SAVE") == b"+OK\r\n"  # a good snapshot lifts the refusal, as in Redis
    assert s("SET", "a", "3") == b"+OK\r\n"
    assert s("PING") == b"+PONG\r\n"
    store.close()


def test_without_save_rules_a_failed_save_does_not_stop_writes(store: Store) -> None:
    server = Dispatcher(store, Config())
    server.last_bgsave_ok = False  # what a failed BGSAVE leaves
    assert Session(server)("SET", "a", "1") == b"+OK\r\n"  # Redis: only with save rules


def test_shutdown(s: Session, server: Dispatcher, store: Store) -> None:
    assert s("SHUTDOWN", "FOO") == error("ERR syntax error")
    assert s("SHUTDOWN", "ABORT") == error("ERR No shutdown in progress.")
    s("SET", "a", "1")
    assert s("SHUTDOWN") == b""  # no reply: the connection closes
    assert server.shutdown_requested and s.client.close_after_reply
    # No save rules (Config()'s default): no snapshot, as Redis's prepareForShutdown;
    # SHUTDOWN SAVE and save rules are tested in test_serve_persistence.py.
    assert store.medium.read() is None


def test_commands_of_types_snapkv_lacks_are_unknown(s: Session) -> None:
    assert s("PFADD", "x", "a", "b") == error(
        "ERR unknown command 'PFADD', with args beginning with: 'x' 'a' 'b' "
    )


def test_binary_values_round_trip(s: Session) -> None:
    for value in [bytes([b]) for b in range(256)] + [bytes(range(256)), b"\xff\xfe\xc3"]:
        key = value.decode("utf-8", "surrogateescape")
        assert s("SET", key, key) == b"+OK\r\n"
        assert s("GET", key) == b"$%d\r\n%s\r\n" % (len(value), value)
        assert s("STRLEN", key) == b":%d\r\n" % len(value)


# ---------------------------------------------------------------- patterns


def stringmatch(pattern: bytes, string: bytes) -> bool:
    """Redis's stringmatchlen (util.c), transcribed: the reference for glob_matches."""
    p, s, plen = 0, 0, len(pattern)
    while p < plen and s < len(string):
        c = pattern[p]
        if c == 42:  # *
            while p + 1 < plen and pattern[p + 1] == 42:
                p += 1
            if p + 1 == plen:
                return True
            # C tries the rest of the pattern against every non-empty suffix only.
            return any(stringmatch(pattern[p + 1 :], string[i:]) for i in range(s, len(string)))
        if c == 63:  # ?
            s += 1
        elif c == 91:  # [
            p += 1
            negate = p < plen and pattern[p] == 94
            if negate:
                p += 1
            match = False
            while True:
                if p < plen and pattern[p] == 92 and plen - p >= 2:
                    p += 1
                    match |= pattern[p] == string[s]
                elif p < plen and pattern[p] == 93:
                    break
                elif p >= plen:
                    p -= 1
                    break
                elif plen - p >= 3 and pattern[p + 1] == 45:
                    low, high = sorted((pattern[p], pattern[p + 2]))
                    p += 2
                    match |= low <= string[s] <= high
                else:
                    match |= pattern[p] == string[s]
                p += 1
            if negate:
                match = not match
            if not match:
                return False
            s += 1
        else:
            if c == 92 and plen - p >= 2:
                p += 1
            if pattern[p] != string[s]:
                return False
            s += 1
        p += 1
        if s == len(string):
            while p < plen and pattern[p] == 42:
                p += 1
            break
    return p >= plen and s == len(string)


@settings(max_examples=400, deadline=None)
@given(
    st.binary(max_size=6).map(lambda b: bytes(b"ab*?[]^-\\"[x % 9] for x in b)),
    st.binary(max_size=6).map(lambda b: bytes(b"ab-^]\\"[x % 6] for x in b)),
)
def test_glob_matches_redis_stringmatch(pattern: bytes, string: bytes) -> None:
    assert glob_matches(pattern, string) == stringmatch(pattern, string)


def test_glob_examples() -> None:
    assert glob_matches(b"h\\*llo", b"h*llo")
    assert not glob_matches(b"h\\*llo", b"hello")
    assert glob_matches(b"[z-a]", b"m")
    assert glob_matches(b"*", b"a\nb")
    assert glob_matches(b"a?c", b"a\nc")
    assert not glob_matches(b"*", b"")  # Redis: only KEYS * and MATCH * (special-cased) see ""


def test_save_rules_and_bgsave(s: Session, server: Dispatcher, store: Store) -> None:
    server.config.save = [(60, 2)]
    s("SET", "a", "1")
    assert not server.save_due(server.last_save + 3600)  # one change: not enough
    s("SET", "b", "2")
    assert not server.save_due(server.last_save + 30)  # two changes, too soon
    assert server.save_due(server.last_save + 60)
    assert s("BGSAVE") == b"+Background saving started\r\n"
    assert server.bgsave_thread is not None
    server.bgsave_thread.join()
    assert server.dirty == 0 and server.saves == 1 and server.last_bgsave_ok
    assert store.medium.read() is not None
    assert s("BGSAVE", "FOO") == error("ERR syntax error")


def test_a_failing_handler_answers_an_error_and_the_server_goes_on(s: Session) -> None:
    s.server.store.set("bad", "\ud800")  # a lone surrogate cannot be sent as UTF-8
    assert s("GET", "bad").startswith(b"-ERR internal error in 'get': UnicodeEncodeError")
    assert s("PING") == b"+PONG\r\n"


def test_cli_refuses_bad_save_rules(capsys: pytest.CaptureFixture[str]) -> None:
    from snapkv.cli import main

    assert main(["serve", "--save", "900"]) == 2
    assert "Invalid save parameters" in capsys.readouterr().err


def test_expiretime_rounds_to_the_nearest_second_as_redis_does(s: Session) -> None:
    # redis-server 7.0.15: PXAT ...600 -> EXPIRETIME ...801, PXAT ...400 -> ...800.
    assert s("SET", "k", "v", "PXAT", "4102444800600") == b"+OK\r\n"
    assert s("EXPIRETIME", "k") == b":4102444801\r\n"
    assert s("SET", "k", "v", "PXAT", "4102444800400") == b"+OK\r\n"
    assert s("EXPIRETIME", "k") == b":4102444800\r\n"
