"""MONITOR: redis-cli's view of snapkv and of redis-server, line for line, timestamps masked.

The same requests go to both servers while ``redis-cli --no-raw monitor``
watches each; the lines must be equal once the timestamp and the client's
address (its port differs) are masked: the quoting of every byte, the
keyspace shown, what is skipped (``admin`` commands), the credentials
redacted, the order of MULTI / EXEC and their commands.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from reference import Raw, reply_end, request
from serving import tool
from snapkv import Store
from snapkv.server import Config
from snapkv.server.client import Client
from snapkv.server.dispatch import Dispatcher
from snapkv.server.monitor import redact
from support import wait_until
from test_server_e2e import DEADLINE, Running

SENTINEL = ("ECHO", "monitor-test-done")

#: Requests whose MONITOR lines are compared (each server answers them alike
#: but for HELLO's version and id, which the test does not compare).
REQUESTS: list[tuple[str, ...]] = [
    ("SET", "plain", "value"),
    ("SET", "esc", 'q"b\\n\n\r\t\x07\x08 end'),
    ("SET", "bytes", "caf\u00e9 \x00\x01\x7f"),
    ("GET", "plain"),
    ("SELECT", "3"),
    ("SET", "in3", "x"),
    ("SELECT", "0"),
    ("MULTI",),
    ("INCR", "n"),
    ("GET", "n"),
    ("EXEC",),
    ("AUTH", "secret-password"),
    ("AUTH", "someone", "secret-password"),
    ("HELLO", "3", "AUTH", "someone", "secret-password"),
    ("HELLO", "2", "AUTH", "default", "secret-password", "SETNAME", "me"),
    ("HELLO", "2", "SETNAME", "me2"),
    ("CLIENT", "SETNAME", "named"),
    (
        "EVAL",
        "redis.call('set', KEYS[1], ARGV[1]) return redis.call('get', KEYS[1])",
        "1",
        "s",
        "v",
    ),
    ("EVAL_RO", "return redis.call('get', KEYS[1])", "1", "s"),
    ("EVALSHA", "0" * 40, "0"),
    ("EVAL", "redis.call('select', '2') return redis.call('set', 'in2', 'x\\n')", "0"),
    ("EVAL", "return redis.call('nosuch')", "0"),
    (
        "FUNCTION",
        "LOAD",
        "#!lua name=monlib\nredis.register_function('monf', "
        "function(keys, args) return redis.call('get', keys[1]) end)",
    ),
    ("FCALL", "monf", "1", "s"),
    ("FCALL_RO", "monf", "1", "s"),
    ("FUNCTION", "DELETE", "monlib"),
    ("CLIENT", "LIST"),
    ("CLIENT", "KILL", "ID", "999999"),
    ("CONFIG", "GET", "maxmemory"),
    ("CLIENT", "PAUSE", "0"),
    ("CLIENT", "UNPAUSE"),
    ("PING",),
    ("ECHO", "12345"),
    ("DEL", "plain", "esc"),
    ("FLUSHALL",),
]


@pytest.fixture
def snapkv_port() -> Iterator[int]:
    running = Running(Store(), Config(port=0))
    yield running.port
    running.stop()


def watch(port: int, is_monitoring: Callable[[], bool]) -> subprocess.Popen[bytes]:
    monitor = subprocess.Popen(
        [tool("redis-cli"), "-p", str(port), "--no-raw", "monitor"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    wait_until(is_monitoring, timeout=DEADLINE, what="redis-cli to be in MONITOR mode")
    return monitor


def monitoring(port: int) -> Callable[[], bool]:
    def check() -> bool:
        raw = Raw(port)
        try:
            return b" flags=O " in raw("CLIENT", "LIST")
        finally:
            raw.close()

    return check


def lines_seen(port: int, requests: list[tuple[str, ...]], *, pipelined: bool) -> list[str]:
    """What ``redis-cli monitor`` printed while ``requests`` ran on the server at ``port``."""
    monitor = watch(port, monitoring(port))
    try:
        raw = Raw(port)
        try:
            if pipelined:
                raw.sock.sendall(b"".join(request(*argv) for argv in requests))
                raw(*SENTINEL)
            else:
                for argv in [*requests, SENTINEL]:
                    raw(*argv)
        finally:
            raw.close()
        assert monitor.stdout is not None
        lines: list[str] = []
        while not lines or SENTINEL[1] not in lines[-1]:
            line = monitor.stdout.readline()
            assert line, "redis-cli stopped"
            lines.append(line.decode("utf-8", "surrogateescape").rstrip("\n"))
    finally:
        monitor.terminate()
        monitor.wait(DEADLINE)
        if monitor.stdout is not None:
            monitor.stdout.close()
    return [_mask(line) for line in lines]


def _mask(line: str) -> str:
    """The timestamp and the client's address (its port differs) replaced; ``lua`` kept."""
    line = re.sub(r"^\d+\.\d{6} ", "T ", line)
    return re.sub(r"^T \[(\d+) (?!lua\])[^\]]+\]", r"T [\1 ADDR]", line)


@pytest.mark.parametrize("pipelined", [False, True], ids=["one by one", "pipelined"])
def test_monitor_lines_are_redis_s(redis_port: int, snapkv_port: int, pipelined: bool) -> None:
    ours = lines_seen(snapkv_port, REQUESTS, pipelined=pipelined)
    theirs = lines_seen(redis_port, REQUESTS, pipelined=pipelined)
    assert ours == theirs
    # And they are what the test expects to see, not merely equal.
    assert 'T [0 ADDR] "HELLO" "2" "AUTH" "(redacted)" "(redacted)" "SETNAME" "me"' in ours
    assert 'T [3 ADDR] "SELECT" "3"' in ours
    assert 'T [0 ADDR] "AUTH" "(redacted)" "(redacted)"' in ours
    assert not any("secret" in line for line in ours)
    assert not any("CONFIG" in line or "PAUSE" in line for line in ours)
    assert [line for line in ours if "lua]" in line or '"EVAL' in line][:3] == [
        "T [0 ADDR] \"EVAL\" \"redis.call('set', KEYS[1], ARGV[1]) return redis.call('get', "
        'KEYS[1])" "1" "s" "v"',
        'T [0 lua] "set" "s" "v"',
        'T [0 lua] "get" "s"',
    ]
    assert 'T [2 lua] "set" "in2" "x\\n"' in ours
    fcall = ours.index('T [0 ADDR] "FCALL" "monf" "1" "s"')
    assert ours[fcall + 1] == 'T [0 lua] "get" "s"'
    assert [line for line in ours if '"INCR"' in line or "MULTI" in line or "EXEC" in line] == [
        'T [0 ADDR] "MULTI"',
        'T [0 ADDR] "INCR" "n"',
        'T [0 ADDR] "EXEC"',
    ]


@pytest.mark.parametrize("argv", [("GET", "k"), ("SET", "k", "v"), ("PING",), ("ECHO", "e")])
def test_a_monitor_s_own_commands_as_redis(
    redis_port: int, snapkv_port: int, argv: tuple[str, ...]
) -> None:
    """Keyspace commands refused (and not shown); others answered, then shown after the reply."""
    seen = []
    for port in (snapkv_port, redis_port):
        raw = Raw(port)
        try:
            assert raw("MONITOR") == b"+OK\r\n"
            replies = [raw(*argv), raw("PING")]
            replies += [next_message(raw) for _ in range(2 if argv[0] in ("PING", "ECHO") else 1)]
            seen.append([_mask(reply.decode()[1:]) for reply in replies])
        finally:
            raw.close()
    assert seen[0] == seen[1]


def next_message(raw: Raw) -> bytes:
    """The next message the server sent without a request (a MONITOR line)."""
    while (end := reply_end(raw.buf)) < 0:
        raw.buf += raw.sock.recv(65536)
    message, raw.buf = raw.buf[:end], raw.buf[end:]
    return message


def test_monitor_inside_multi_is_refused_as_redis(twin: Any) -> None:
    twin.same("MULTI")
    twin.same("MONITOR")
    twin.same("EXEC")


def test_a_second_monitor_gets_no_reply_and_a_disconnect_stops_the_feed() -> None:
    server = Dispatcher(Store(), Config())
    watcher = Client(server, addr="127.0.0.1:2")
    other = Client(server, addr="127.0.0.1:3")
    server.add_client(watcher)
    server.add_client(other)
    assert server.execute(watcher, ["MONITOR"]) == b"+OK\r\n"
    assert server.execute(watcher, ["MONITOR"]) == b""
    assert server.monitors == [watcher] and server.gate
    server.execute(other, ["SET", "k", "v"])
    assert watcher.outbox[-1].endswith(b' [0 127.0.0.1:3] "SET" "k" "v"\r\n')
    server.remove_client(watcher)
    assert server.monitors == [] and not server.gate
    server.store.close()


def test_a_monitor_under_client_reply_off_gets_no_lines() -> None:
    server = Dispatcher(Store(), Config())
    watcher = Client(server, addr="127.0.0.1:2")
    server.add_client(watcher)
    server.execute(watcher, ["MONITOR"])
    server.execute(watcher, ["CLIENT", "REPLY", "OFF"])
    seen = len(watcher.outbox)
    server.execute(watcher, ["PING"])
    assert len(watcher.outbox) == seen
    server.execute(watcher, ["CLIENT", "REPLY", "ON"])
    assert watcher.outbox[-1].endswith(b'"CLIENT" "REPLY" "ON"\r\n')
    server.store.close()


@pytest.mark.parametrize(
    ("argv", "hidden"),
    [
        (["AUTH", "pw"], {1}),
        (["auth", "user", "pw"], {1, 2}),
        (["AUTH", "a", "b", "c"], set()),  # a syntax error before redaction
        (["HELLO", "3", "AUTH", "u", "p"], {3, 4}),
        (["HELLO", "4", "AUTH", "u", "p"], set()),  # NOPROTO first
        (["HELLO", "x", "AUTH", "u", "p"], set()),
        (["HELLO", "2", "SETNAME", "n", "AUTH", "u"], set()),  # the syntax error stops it
        (["HELLO", "2", "AUTH", "u", "p", "BAD"], {3, 4}),  # redacted before the error
        (["HELLO", "2", "SETNAME", "n", "AUTH", "u", "p"], {5, 6}),
        (["GET", "AUTH"], set()),
    ],
)
def test_redaction_follows_redis_parsing_order(argv: list[str], hidden: set[int]) -> None:
    assert redact(argv) == hidden


def test_a_blocking_pop_is_shown_once_when_it_waits(redis_port: int, snapkv_port: int) -> None:
    """BLPOP is shown when it runs and starts waiting, not again when a push serves it."""
    seen = []
    for port in (snapkv_port, redis_port):
        watcher, waiter, pusher = Raw(port), Raw(port), Raw(port)
        try:
            assert watcher("MONITOR") == b"+OK\r\n"
            waiter_id = waiter("CLIENT", "ID")[1:-2].decode()
            waiter.sock.sendall(request("BLPOP", "queue", "0"))
            wait_until(
                lambda pusher=pusher, waiter_id=waiter_id: waits(pusher, waiter_id),
                timeout=DEADLINE,
                what="the BLPOP to wait",
            )
            assert pusher("RPUSH", "queue", "job") == b":1\r\n"
            assert next_message(waiter) == b"*2\r\n$5\r\nqueue\r\n$3\r\njob\r\n"
            assert pusher("ECHO", "done") == b"$4\r\ndone\r\n"
            lines = []
            while not lines or b'"done"' not in lines[-1]:
                lines.append(next_message(watcher))
            seen.append([_mask(line.decode()[1:]) for line in lines])
        finally:
            for raw in (watcher, waiter, pusher):
                raw.close()
    assert seen[0] == seen[1]
    assert [line.split("] ")[1] for line in seen[0]] == [
        '"CLIENT" "ID"\r\n',
        '"BLPOP" "queue" "0"\r\n',
        '"RPUSH" "queue" "job"\r\n',
        '"ECHO" "done"\r\n',
    ]


def waits(raw: Raw, client_id: str) -> bool:
    """Whether the client ``client_id`` is blocked (``b`` in its CLIENT LIST flags)."""
    for line in raw("CLIENT", "LIST").decode().splitlines():
        if line.startswith(f"id={client_id} "):
            return "b" in line.split(" flags=")[1].split(" ")[0]
    return False
