"""A real redis-server replica of ``snapkv serve``, and the whole state of two servers compared.

Shared by the replication-source tests: each replica is a redis-server
process on a free loopback port with its own directory (so a restart keeps
its replication ID and offset when it was shut down with SHUTDOWN SAVE),
stopped by its pid at the end.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from typing import Any

import redis

from serving import free_port, tool
from support import wait_until

DEADLINE = 30.0


class Replica:
    """``redis-server --replicaof 127.0.0.1 <primary>`` in ``directory``."""

    def __init__(self, directory: Path, primary_port: int | None, *extra: str) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.primary_port = primary_port
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        args = [tool("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--dir", str(self.directory), "--logfile", "replica.log"]
        args += ["--repl-diskless-load", "disabled", *self.extra]
        if self.primary_port is not None:
            args += ["--replicaof", "127.0.0.1", str(self.primary_port)]
        self.process = subprocess.Popen(args, cwd=self.directory)
        self.client = redis.Redis(port=self.port, decode_responses=True)
        wait_until(self._answers, timeout=DEADLINE, what="redis-server to answer PING")

    def _answers(self) -> bool:
        try:
            return bool(self.client.ping())
        except redis.ConnectionError:
            return False

    def info(self, section: str = "replication") -> dict[str, Any]:
        info: dict[str, Any] = self.client.info(section)
        return info

    def wait_linked(self) -> None:
        wait_until(
            lambda: (
                self.info().get("master_link_status") == "up"
                and not self.info().get("master_sync_in_progress")
            ),
            timeout=DEADLINE,
            what="the replica's link to snapkv to be up",
        )

    def log(self) -> str:
        return (self.directory / "replica.log").read_text()

    def shutdown_saving(self) -> None:
        """SHUTDOWN SAVE: the RDB keeps its replication ID and offset for a partial resync."""
        # A raw socket: redis-py retries a command whose connection closes, for seconds.
        with socket.create_connection(("127.0.0.1", self.port), timeout=DEADLINE) as sock:
            sock.sendall(b"SHUTDOWN SAVE\r\n")
            while sock.recv(4096):
                pass
        self.client.close()
        assert self.process is not None
        self.process.wait(DEADLINE)

    def stop(self) -> None:
        self.client.close()
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(DEADLINE)


def dump_state(client: redis.Redis, databases: int = 16) -> dict[int, dict[str, Any]]:
    """Every key of every keyspace: its type, value and absolute expiry (PEXPIRETIME).

    Pipelined (three round trips a keyspace), so a few thousand keys take
    milliseconds. A stream is its entries, last ID, entries-added,
    max-deleted ID and length.
    """
    state: dict[int, dict[str, Any]] = {}
    for db in range(databases):
        client.execute_command("SELECT", db)
        names = sorted(client.scan_iter(count=1000))
        if not names:
            continue
        # Each pipeline selects the keyspace itself: it may hold another connection.
        with client.pipeline(transaction=False) as pipe:
            pipe.execute_command("SELECT", db)
            for key in names:
                pipe.type(key)
            kinds = pipe.execute()[1:]
        with client.pipeline(transaction=False) as pipe:
            pipe.execute_command("SELECT", db)
            for key, kind in zip(names, kinds, strict=True):
                if kind == "string":
                    pipe.get(key)
                elif kind == "hash":
                    pipe.hgetall(key)
                elif kind == "list":
                    pipe.lrange(key, 0, -1)
                elif kind == "set":
                    pipe.smembers(key)
                elif kind == "zset":
                    pipe.zrange(key, 0, -1, withscores=True)
                elif kind == "stream":
                    pipe.xrange(key)
                    pipe.xinfo_stream(key)
                else:
                    raise AssertionError(f"{key}: type {kind}")
                pipe.pexpiretime(key)
            replies = iter(pipe.execute()[1:])
        keys: dict[str, Any] = {}
        for key, kind in zip(names, kinds, strict=True):
            value: Any = next(replies)
            if kind == "set":
                value = sorted(value)
            elif kind == "stream":
                info = next(replies)
                value = (value, info["last-generated-id"], info["entries-added"])
                value += (info["max-deleted-entry-id"], info["length"])
            keys[key] = (kind, value, next(replies))
        state[db] = keys
    client.execute_command("SELECT", 0)
    return state
