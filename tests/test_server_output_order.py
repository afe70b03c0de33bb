"""What a client reads, in which order, when replies meet pushes: the same socket scripts
sent to snapkv serve and to redis-server 7.0, and the bytes compared.

Redis writes a command's reply and the pushes it causes into one output buffer:
a tracking client's own invalidation right after the write's reply, a MONITOR
client's line for its own command right after that reply, a message published
before the write that serves a blocked client before that client's reply;
(un)subscribe confirmations are pushes, so CLIENT REPLY OFF/SKIP never drops
them, and SKIP drops the reply of a blocked or paused command when it comes.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from reference import request as R
from snapkv import Store
from snapkv.server import Config
from test_server_e2e import Running

#: Quiet time that ends a read: everything a step causes arrives within it.
QUIET = 0.4
Steps = list[tuple[str, bytes | None]]


@pytest.fixture
def snapkv_port() -> Iterator[int]:
    running = Running(Store(), Config(port=0))
    try:
        yield running.port
    finally:
        running.stop()


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    return sock


def _drain(sock: socket.socket) -> bytes:
    """Everything that arrives until the connection is quiet for :data:`QUIET` seconds."""
    sock.settimeout(QUIET)
    out = b""
    try:
        while chunk := sock.recv(65536):
            out += chunk
    except TimeoutError:
        pass
    sock.settimeout(5)
    return out


def _normal(data: bytes) -> bytes:
    """Masks what differs between any two servers: client ids, versions, MONITOR's times."""
    data = re.sub(rb"\$2\r\nid\r\n:\d+", b"ID", data)
    data = re.sub(rb"\$7\r\nversion\r\n\$\d+\r\n[\d.]+\r\n", b"VERSION", data)
    data = re.sub(rb"\+\d+\.\d+ \[0 [^\]]*\]", b"+TS", data)
    return re.sub(rb"^:\d+\r\n$", b":N", data)


def _script(port: int, steps: Steps) -> list[tuple[str, bytes]]:
    """Run ``steps`` (who sends what; ``None``: read what arrived) on one server."""
    socks: dict[str, socket.socket] = {}
    out = []
    try:
        for who, data in steps:
            if who not in socks:
                socks[who] = _connect(port)
            if data is None:
                out.append((who, _normal(_drain(socks[who]))))
            else:
                socks[who].sendall(data)
    finally:
        for sock in socks.values():
            sock.close()
    return out


def both(snapkv_port: int, redis_port: int, steps: Steps) -> tuple[list[object], list[object]]:
    return _script(snapkv_port, steps), _script(redis_port, steps)  # type: ignore[return-value]


Both = Callable[[Steps], tuple[list[object], list[object]]]


@pytest.fixture
def run(snapkv_port: int, redis_port: int) -> Iterator[Both]:
    flush: Steps = [("z", R("FLUSHALL")), ("z", None)]
    yield lambda steps: both(snapkv_port, redis_port, flush + steps)


def test_a_monitor_s_own_line_comes_right_after_its_command_s_reply(run: Both) -> None:
    ours, theirs = run([("a", R("MONITOR") + R("PING") + R("RESET") + R("PING")), ("a", None)])
    assert theirs[-1] == ("a", b'+OK\r\n+PONG\r\n+TS "PING"\r\n+RESET\r\n+PONG\r\n')
    assert ours == theirs


def test_subscribe_confirmations_come_under_client_reply_off(run: Both) -> None:
    ours, theirs = run([("a", R("CLIENT", "REPLY", "OFF") + R("SUBSCRIBE", "ch")), ("a", None)])
    assert theirs[-1] == ("a", b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n")
    assert ours == theirs


def test_subscribe_confirmations_come_under_client_reply_skip(run: Both) -> None:
    ours, theirs = run(
        [("a", R("CLIENT", "REPLY", "SKIP") + R("SUBSCRIBE", "ch") + R("PING")), ("a", None)]
    )
    assert ours == theirs


def test_a_resp3_unsubscribe_confirmation_comes_under_client_reply_off(run: Both) -> None:
    ours, theirs = run(
        [
            ("a", R("HELLO", "3")),
            ("a", None),
            (
                "a",
                R("SUBSCRIBE", "c")
                + R("CLIENT", "REPLY", "OFF")
                + R("PING")
                + R("UNSUBSCRIBE", "c")
                + R("CLIENT", "REPLY", "ON"),
            ),
            ("a", None),
        ]
    )
    assert b"unsubscribe" in theirs[-1][1]  # type: ignore[index]
    assert ours == theirs


def test_client_reply_skip_drops_the_reply_of_a_pop_served_later(run: Both) -> None:
    ours, theirs = run(
        [
            ("a", R("CLIENT", "REPLY", "SKIP") + R("BLPOP", "l", "0") + R("PING")),
            ("a", None),
            ("b", R("RPUSH", "l", "x")),
            ("b", None),
            ("a", None),
        ]
    )
    assert theirs[-1] == ("a", b"+PONG\r\n")
    assert ours == theirs


def test_client_reply_skip_drops_the_reply_of_a_write_held_by_a_pause(run: Both) -> None:
    ours, theirs = run(
        [
            ("p", R("CLIENT", "PAUSE", "100000", "WRITE")),
            ("p", None),
            ("a", R("CLIENT", "REPLY", "SKIP") + R("SET", "k", "v") + R("PING")),
            ("a", None),
            ("p", R("CLIENT", "UNPAUSE")),
            ("p", None),
            ("a", None),
        ]
    )
    assert theirs[-1] == ("a", b"+PONG\r\n")
    assert ours == theirs


@pytest.mark.parametrize(
    "pipeline",
    [
        R("GET", "k") + R("SET", "k", "1") + R("PING"),
        R("GET", "k") + R("MULTI") + R("SET", "k", "1") + R("GET", "k") + R("EXEC") + R("PING"),
        R("GET", "k") + R("FLUSHALL") + R("PING"),
    ],
    ids=["set", "exec", "flushall"],
)
def test_a_tracking_client_s_own_invalidation_comes_before_its_next_reply(
    run: Both, pipeline: bytes
) -> None:
    ours, theirs = run(
        [
            ("a", R("HELLO", "3")),
            ("a", None),
            ("a", R("CLIENT", "TRACKING", "ON") + pipeline),
            ("a", None),
        ]
    )
    assert theirs[-1][1].endswith(b"+PONG\r\n")  # type: ignore[index]
    assert ours == theirs


def test_a_message_published_before_the_push_precedes_the_pop_s_reply(run: Both) -> None:
    ours, theirs = run(
        [
            ("a", R("HELLO", "3")),
            ("a", None),
            ("a", R("SUBSCRIBE", "ch") + R("BLPOP", "l", "0")),
            ("a", None),
            ("b", R("PUBLISH", "ch", "m") + R("RPUSH", "l", "x")),
            ("b", None),
            ("a", None),
        ]
    )
    assert theirs[-1][1].startswith(b">3\r\n$7\r\nmessage")  # type: ignore[index]
    assert ours == theirs


def _tracking_keys(port: int) -> int:
    sock = _connect(port)
    try:
        sock.sendall(R("INFO", "stats"))
        found = re.search(rb"tracking_total_keys:(\d+)", _drain(sock))
    finally:
        sock.close()
    assert found is not None
    return int(found.group(1))


def _read_then_leave(port: int) -> int:
    """A client tracks, reads 500 keys and leaves; another writes them: the table's size."""
    tracker = _connect(port)
    tracker.sendall(
        R("HELLO", "3")
        + R("CLIENT", "TRACKING", "ON")
        + b"".join(R("GET", f"k{i}") for i in range(500))
    )
    _drain(tracker)
    tracker.close()
    time.sleep(QUIET)  # the server notices the close
    writer = _connect(port)
    writer.sendall(b"".join(R("SET", f"k{i}", "v") for i in range(500)))
    _drain(writer)
    writer.close()
    return _tracking_keys(port)


def test_keys_read_by_a_gone_tracking_client_leave_the_table_when_written(
    snapkv_port: int, redis_port: int
) -> None:
    assert _read_then_leave(redis_port) == 0
    assert _read_then_leave(snapkv_port) == 0
