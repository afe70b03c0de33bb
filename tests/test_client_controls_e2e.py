"""CLIENT PAUSE / UNPAUSE, CLIENT REPLY and RESET over real sockets to ``snapkv serve``.

A held command is seen held through the server's own state (its client in
``postponed``), never by sleeping; a timeout is measured from outside.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from reference import Raw, reply_end, request
from snapkv import Store
from snapkv.server import Config
from support import wait_until
from test_server_e2e import DEADLINE, Running

pytest.importorskip("redis")


@pytest.fixture
def serve() -> Iterator[Callable[..., Running]]:
    """Start ``snapkv serve`` in-process (stopped at the end of the test)."""
    started: list[Running] = []

    def start(**config: Any) -> Running:
        running = Running(Store(), Config(port=0, **config))
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


def read_replies(sock: socket.socket, count: int) -> list[bytes]:
    """Read exactly ``count`` whole replies."""
    buf = b""
    replies: list[bytes] = []
    while len(replies) < count:
        end = reply_end(buf)
        if end < 0:
            chunk = sock.recv(65536)
            assert chunk, "the server closed the connection"
            buf += chunk
            continue
        replies.append(buf[:end])
        buf = buf[end:]
    assert not buf
    return replies


def nothing_to_read(sock: socket.socket) -> bool:
    """No reply has arrived (the server wrote nothing; a closed socket is not nothing)."""
    sock.setblocking(False)
    try:
        sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    finally:
        sock.settimeout(DEADLINE)
    return False


def held(running: Running, count: int) -> None:
    wait_until(
        lambda: running.call(lambda: len(running.server.dispatcher.postponed)) == count,
        timeout=DEADLINE,
        what=f"{count} postponed clients",
    )


def test_pause_write_holds_writes_until_unpause_while_reads_go_on(
    serve: Callable[..., Running],
) -> None:
    running = serve()
    admin, writer, reader = (running.connect() for _ in range(3))
    writer.sendall(request("SET", "k", "before"))
    assert read_replies(writer, 1) == [b"+OK\r\n"]
    admin.sendall(request("CLIENT", "PAUSE", "60000", "WRITE"))
    assert read_replies(admin, 1) == [b"+OK\r\n"]
    # A write and the read pipelined after it: both wait, in order.
    writer.sendall(request("SET", "k", "after") + request("GET", "k"))
    held(running, 1)
    assert nothing_to_read(writer)
    # Another client's reads go on (and see the old value).
    reader.sendall(request("GET", "k") + request("EXISTS", "k"))
    assert read_replies(reader, 2) == [b"$6\r\nbefore\r\n", b":1\r\n"]
    assert nothing_to_read(writer)
    admin.sendall(request("CLIENT", "UNPAUSE"))
    assert read_replies(admin, 1) == [b"+OK\r\n"]
    assert read_replies(writer, 2) == [b"+OK\r\n", b"$5\r\nafter\r\n"]


def test_pause_all_holds_reads_and_held_clients_keep_their_order(
    serve: Callable[..., Running],
) -> None:
    running = serve()
    admin = running.connect()
    first, second, third = (running.connect() for _ in range(3))
    admin.sendall(request("CLIENT", "PAUSE", "60000", "ALL"))
    assert read_replies(admin, 1) == [b"+OK\r\n"]
    first.sendall(request("SET", "k", "1"))
    held(running, 1)
    second.sendall(request("SET", "k", "2"))
    held(running, 2)
    third.sendall(request("GET", "k"))
    held(running, 3)
    assert nothing_to_read(third)
    # The pausing client is held too under ALL; another connection ends it.
    running.call(running.server.dispatcher.unpause)
    assert read_replies(first, 1) == [b"+OK\r\n"]
    assert read_replies(second, 1) == [b"+OK\r\n"]
    assert read_replies(third, 1) == [b"$1\r\n2\r\n"]


def test_pause_write_holds_an_exec_with_a_write_until_the_timeout(
    serve: Callable[..., Running],
) -> None:
    running = serve()
    admin, client = running.connect(), running.connect()
    client.sendall(request("MULTI") + request("INCR", "n"))
    assert read_replies(client, 2) == [b"+OK\r\n", b"+QUEUED\r\n"]
    started = time.monotonic()
    admin.sendall(request("CLIENT", "PAUSE", "300", "WRITE"))
    assert read_replies(admin, 1) == [b"+OK\r\n"]
    client.sendall(request("EXEC"))
    assert read_replies(client, 1) == [b"*1\r\n:1\r\n"]
    assert time.monotonic() - started >= 0.29
    # An EXEC of reads only is not held.
    admin.sendall(request("CLIENT", "PAUSE", "60000", "WRITE"))
    assert read_replies(admin, 1) == [b"+OK\r\n"]
    client.sendall(request("MULTI") + request("GET", "n") + request("EXEC"))
    assert read_replies(client, 3) == [b"+OK\r\n", b"+QUEUED\r\n", b"*1\r\n$1\r\n1\r\n"]
    admin.sendall(request("CLIENT", "UNPAUSE"))
    assert read_replies(admin, 1) == [b"+OK\r\n"]


def test_client_reply_off_skip_on_over_a_socket(serve: Callable[..., Running]) -> None:
    running = serve()
    sock = running.connect()
    sock.sendall(
        request("CLIENT", "REPLY", "OFF")
        + request("SET", "k", "1")
        + request("CLIENT", "REPLY", "SKIP")
        + request("CLIENT", "REPLY", "ON")
        + request("CLIENT", "REPLY", "SKIP")
        + request("GET", "k")
        + request("INCR", "k")
    )
    assert read_replies(sock, 2) == [b"+OK\r\n", b":2\r\n"]


def test_reset_leaves_monitor_subscriptions_and_multi_over_a_socket(
    serve: Callable[..., Running],
) -> None:
    running = serve()
    sock, other = running.connect(), running.connect()
    sock.sendall(request("MONITOR"))
    assert read_replies(sock, 1) == [b"+OK\r\n"]
    sock.sendall(request("RESET"))
    assert read_replies(sock, 1) == [b"+RESET\r\n"]
    other.sendall(request("SET", "x", "1"))
    assert read_replies(other, 1) == [b"+OK\r\n"]
    sock.sendall(
        request("SUBSCRIBE", "ch") + request("RESET") + request("MULTI") + request("RESET")
    )
    assert read_replies(sock, 4) == [
        b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n",
        b"+RESET\r\n",
        b"+OK\r\n",
        b"+RESET\r\n",
    ]
    # Not subscribed, nothing queued, and the SET was never monitored.
    sock.sendall(request("GET", "x"))
    assert read_replies(sock, 1) == [b"$1\r\n1\r\n"]
    assert running.call(lambda: running.server.dispatcher.monitors) == []


@pytest.fixture
def snapkv_port(serve: Callable[..., Running]) -> int:
    port: int = serve().port
    return port


@pytest.mark.parametrize("resp", ["2", "3"])
@pytest.mark.parametrize(
    "reason", [(), ("TIMEOUT",), ("ERROR",)], ids=["default", "timeout", "error"]
)
def test_client_unblock_ends_a_blpop_as_redis(
    redis_port: int, snapkv_port: int, resp: str, reason: tuple[str, ...]
) -> None:
    """The waiting client gets the timeout's null or -UNBLOCKED, then runs its next command."""
    seen = []
    for port in (snapkv_port, redis_port):
        waiter, admin = Raw(port), Raw(port)
        try:
            waiter("HELLO", resp)
            waiter_id = waiter("CLIENT", "ID")[1:-2].decode()
            waiter.sock.sendall(request("BLPOP", "nolist", "0") + request("PING"))
            wait_until(
                lambda admin=admin, waiter_id=waiter_id: any(
                    f"id={waiter_id} " in line and "flags=b" in line
                    for line in admin("CLIENT", "LIST").decode().splitlines()
                ),
                timeout=DEADLINE,
                what="the BLPOP to wait",
            )
            unblocked = admin("CLIENT", "UNBLOCK", waiter_id, *reason)
            again = admin("CLIENT", "UNBLOCK", waiter_id, *reason)
            seen.append([unblocked, again, *read_replies(waiter.sock, 2)])
        finally:
            waiter.close()
            admin.close()
    assert seen[0] == seen[1]
    assert seen[0][:2] == [b":1\r\n", b":0\r\n"]
