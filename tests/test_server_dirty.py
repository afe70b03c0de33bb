"""``save`` rules count changes, as Redis's ``server.dirty``: not write commands.

INFO's ``rdb_changes_since_last_save`` after each command of one client's
session, from Redis 7.0's rules (``server.dirty++`` and ``server.dirty +=``
in t_string.c, db.c, expire.c): MSET of n keys n, DEL the keys it deleted,
FLUSHDB/FLUSHALL the keys they removed, a write that changed nothing 0.
When redis-server is installed, the same session runs against a real one
(started here on a free port, without persistence) and must count the same.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from serving import free_port, tool
from snapkv import MemoryMedium, Store
from snapkv.server.client import Client
from snapkv.server.dispatch import Dispatcher
from snapkv.server.state import Config
from support import wait_until

#: (command, the changes Redis counts for it) in one session.
SESSION: list[tuple[tuple[str, ...], int]] = [
    (("MSET", "a", "1", "b", "2", "c", "3", "d", "4"), 4),
    (("DEL", "a", "b", "c", "nokey"), 3),
    (("SET", "x", "1", "NX"), 1),
    (("SET", "x", "1", "NX"), 0),
    (("EXPIRE", "nokey", "10"), 0),
    (("SET", "y", "1", "XX"), 0),
    (("SET", "y", "1", "GET"), 1),
    (("SET", "x", "2"), 1),
    (("SETNX", "y", "2"), 0),
    (("SETNX", "y2", "2"), 1),
    (("SETEX", "s", "10", "v"), 1),
    (("PSETEX", "s", "10000", "v"), 1),
    (("GETSET", "s", "w"), 1),
    (("GETDEL", "s"), 1),
    (("GETDEL", "s"), 0),
    (("GETEX", "y"), 0),
    (("GETEX", "y", "PERSIST"), 0),
    (("GETEX", "y", "EX", "100"), 1),
    (("GETEX", "y", "PERSIST"), 1),
    (("MSETNX", "y", "1", "z", "2"), 0),
    (("MSETNX", "p", "1", "q", "2"), 2),
    (("APPEND", "p", ""), 1),
    (("APPEND", "new", ""), 1),
    (("SETRANGE", "p", "0", ""), 0),
    (("SETRANGE", "nope", "0", ""), 0),
    (("SETRANGE", "p", "1", "x"), 1),
    (("INCR", "n"), 1),
    (("DECRBY", "n", "5"), 1),
    (("INCRBYFLOAT", "n", "1.5"), 1),
    (("RENAME", "p", "p"), 0),
    (("RENAME", "p", "p2"), 1),
    (("RENAMENX", "p2", "q"), 0),
    (("RENAMENX", "p2", "p3"), 1),
    (("COPY", "p3", "p4"), 1),
    (("COPY", "p3", "p4"), 0),
    (("MOVE", "p4", "1"), 1),
    (("MOVE", "p4", "1"), 0),
    (("SWAPDB", "0", "1"), 1),
    (("SWAPDB", "0", "1"), 1),
    (("EXPIRE", "q", "100"), 1),
    (("EXPIRE", "q", "100", "NX"), 0),
    (("PERSIST", "q"), 1),
    (("PERSIST", "q"), 0),
    (("PEXPIREAT", "q", "1"), 1),
    (("UNLINK", "q", "x"), 1),
    (("MULTI",), 0),
    (("MSET", "m1", "1", "m2", "2"), 0),
    (("DEL", "m1", "nokey"), 0),
    (("EXEC",), 3),
    (("SELECT", "1"), 0),
    (("FLUSHDB",), 1),
    (("FLUSHDB",), 0),
    (("MSET", "e", "1", "f", "2"), 2),
    (("SELECT", "0"), 0),
    (("FLUSHALL",), 9),  # the keys left in keyspaces 0 and 1
    (("FLUSHALL",), 0),
    (("SET", "k", "v", "EX", "100"), 1),
]


def _changes(info: bytes) -> int:
    for line in info.split(b"\r\n"):
        if line.startswith(b"rdb_changes_since_last_save:"):
            return int(line.split(b":")[1])
    raise AssertionError("no rdb_changes_since_last_save in INFO")


def test_save_rules_count_changes_as_redis() -> None:
    store = Store(MemoryMedium(), sweep_interval=None)
    try:
        server = Dispatcher(store, Config(save=[]))
        client, observer = Client(server), Client(server)  # INFO is queued inside MULTI
        server.add_client(client)
        server.add_client(observer)
        before = _changes(server.execute(observer, ["INFO", "persistence"]))
        counted = []
        for argv, _ in SESSION:
            reply = server.execute(client, list(argv))
            assert not reply.startswith(b"-"), (argv, reply)
            after = _changes(server.execute(observer, ["INFO", "persistence"]))
            counted.append((argv, after - before))
            before = after
        assert counted == [(argv, n) for argv, n in SESSION]
    finally:
        store.close()


# ------------------------------------------------------- against a real Redis


class _Resp:
    """The least RESP2 client: send a command, read one whole reply."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5.0)
        self.file = self.sock.makefile("rb")

    def __call__(self, *argv: str) -> object:
        out = [b"*%d\r\n" % len(argv)]
        for arg in argv:
            data = arg.encode()
            out.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self.sock.sendall(b"".join(out))
        return self._reply()

    def _reply(self) -> object:
        line = self.file.readline()[:-2]
        kind, rest = line[:1], line[1:]
        if kind == b"-":
            raise AssertionError(line.decode())
        if kind == b"+":
            return line
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            return None if size < 0 else self.file.read(size + 2)[:-2]
        assert kind == b"*", line
        return [self._reply() for _ in range(int(rest))]

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@contextmanager
def _redis_server() -> Iterator[int]:
    binary = tool("redis-server")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--save", "", "--appendonly", "no", "--port", str(port), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def answers() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
                    sock.sendall(b"PING\r\n")
                    return sock.recv(64).startswith(b"+PONG")
            except OSError:
                return False

        wait_until(answers, timeout=10.0, what="redis-server answers PING")
        yield port
    finally:
        process.kill()
        process.wait()


def test_the_session_counts_the_same_on_a_real_redis() -> None:
    with _redis_server() as port:
        r, observer = _Resp(port), _Resp(port)
        try:
            info = observer("INFO", "persistence")
            assert isinstance(info, bytes)
            before = _changes(info)
            counted = []
            for argv, _ in SESSION:
                r(*argv)  # an error reply raises
                info = observer("INFO", "persistence")
                assert isinstance(info, bytes)
                after = _changes(info)
                counted.append((argv, after - before))
                before = after
        finally:
            r.close()
            observer.close()
    assert counted == [(argv, n) for argv, n in SESSION]
