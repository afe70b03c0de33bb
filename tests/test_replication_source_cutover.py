"""The cutover's promise checked at its edges: what INFO, WAIT and the offsets say is sent.

A user cuts over when ``master_repl_offset`` equals the replica's offset
(or after ``WAIT``): every write answered before must be in the stream by
then, whatever the write (one the stream says from memory after it, a
blocked client served later, a key expired on read).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from replica_support import DEADLINE, Replica, dump_state
from snapkv import Store
from snapkv.server import Config
from snapkv.server.replicas.link import unsent
from snapkv.server.replicas.primary import registry
from support import wait_until
from test_server_e2e import Running

redis = pytest.importorskip("redis")


class Pair:
    def __init__(self, tmp_path: Path, sweep_interval: float | None) -> None:
        self.server = Running(Store(sweep_interval=sweep_interval), Config(port=0))
        self.replica = Replica(tmp_path / "replica", self.server.port)
        self.replica.wait_linked()
        self.r = redis.Redis(port=self.server.port, decode_responses=True)
        self.theirs = self.replica.client

    def offset(self) -> int:
        value: int = self.r.info("replication")["master_repl_offset"]
        return value

    def stop(self) -> None:
        self.r.close()
        self.replica.stop()
        self.server.stop()


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    made = Pair(tmp_path, sweep_interval=None)  # keys expire on read only
    yield made
    made.stop()


def test_a_write_said_from_memory_is_in_the_offset_and_wait_as_soon_as_answered(
    pair: Pair,
) -> None:
    r = pair.r
    r.rpush("l", "a", "b", "c", "b")
    assert r.execute_command("WAIT", 1, 5000) == 1
    before = pair.offset()
    with r.pipeline(transaction=False) as pipe:  # one packet: no tick in between
        pipe.lrem("l", 1, "b")
        pipe.info("replication")
        removed, info = pipe.execute()
    assert removed == 1
    assert info["master_repl_offset"] > before
    with r.pipeline(transaction=False) as pipe:
        pipe.linsert("l", "AFTER", "c", "mid")
        pipe.execute_command("WAIT", 1, 5000)
        pipe.xadd("st", {"f": "v"}, id="1-0")
        pipe.xadd("st", {"f": "v"}, id="2-0")
        pipe.xtrim("st", maxlen=1, approximate=False)
        pipe.execute_command("WAIT", 1, 5000)
        replies = pipe.execute()
    assert replies[1] == 1 and replies[5] == 1
    assert pair.theirs.lrange("l", 0, -1) == ["a", "c", "mid", "b"]
    assert pair.theirs.xlen("st") == 1


def test_the_offsets_agree_only_once_the_last_write_reached_the_replica(pair: Pair) -> None:
    r = pair.r
    r.rpush("l", "x", "y", "z")
    r.lrem("l", 0, "y")  # the last write before the pause
    assert r.execute_command("CLIENT", "PAUSE", 60_000, "WRITE") == "OK"
    try:
        target = pair.offset()
        deadline = 200
        while pair.replica.info()["master_repl_offset"] != target and deadline:
            deadline -= 1
            r.execute_command("WAIT", 1, 50)
        assert pair.replica.info()["master_repl_offset"] == target
        assert pair.theirs.lrange("l", 0, -1) == ["x", "z"]
    finally:
        r.execute_command("CLIENT", "UNPAUSE")


def test_a_write_said_from_memory_then_a_transaction_on_its_key_is_said_once(
    pair: Pair,
) -> None:
    r = pair.r
    r.rpush("l", "a", "b", "c")
    with r.pipeline(transaction=False) as pipe:  # one packet: the LREM waits for memory
        pipe.lrem("l", 1, "b")
        pipe.execute_command("MULTI")
        pipe.rpush("l", "x")
        pipe.hset("h", "f", "v")
        pipe.execute_command("EXEC")
        pipe.execute_command("WAIT", 1, 5000)
        replies = pipe.execute()
    assert replies[-1] == 1
    assert r.lrange("l", 0, -1) == ["a", "c", "x"]
    assert pair.theirs.lrange("l", 0, -1) == ["a", "c", "x"]


def _unsent_to_replicas(running: Running) -> list[int]:
    return running.call(
        lambda: [unsent(link.client) for link in registry(running.server.dispatcher).links]
    )


def _snapshot_threads() -> int:
    return sum(1 for thread in threading.enumerate() if thread.name == "snapkv-repl-snapshot")


def test_a_replica_that_does_not_read_its_full_sync_holds_a_bounded_buffer_then_times_out(
    tmp_path: Path,
) -> None:
    running = Running(Store(sweep_interval=None), Config(port=0, repl_timeout=2))
    try:
        r = redis.Redis(port=running.port)
        value = b"v" * 10_000
        for start in range(0, 4_000, 500):  # a 40 MB snapshot
            r.mset({f"k{i}": value for i in range(start, start + 500)})
        before = _snapshot_threads()
        with socket.create_connection(("127.0.0.1", running.port)) as sock:
            sock.sendall(b"REPLCONF capa eof\r\nPSYNC ? -1\r\n")  # then never reads
            wait_until(
                lambda: running.call(lambda: len(registry(running.server.dispatcher).links)),
                what="the replica to attach",
            )
            most = 0
            started = time.monotonic()
            while running.call(lambda: len(registry(running.server.dispatcher).links)) and (
                time.monotonic() - started < DEADLINE
            ):
                most = max([most, *_unsent_to_replicas(running)])
                assert most < 16 * 1024 * 1024, "the whole snapshot went to the buffer"
                r.ping()
            # No read for repl-timeout: dropped, as Redis drops a full sync that stalls.
            assert running.call(lambda: len(registry(running.server.dispatcher).links)) == 0
            assert time.monotonic() - started >= 2
            wait_until(lambda: _snapshot_threads() == before, what="the snapshot thread to end")
    finally:
        running.stop()


def test_two_replicas_attaching_during_each_others_full_sync_end_identical(
    tmp_path: Path,
) -> None:
    running = Running(Store(sweep_interval=0.01), Config(port=0))
    made: list[Replica] = []
    try:
        r = redis.Redis(port=running.port, decode_responses=True)
        for start in range(0, 20_000, 5_000):
            r.mset({f"k{i}": str(i) for i in range(start, start + 5_000)})
        r.rpush("l", *range(50))
        made.append(Replica(tmp_path / "one", running.port))
        written = 0
        while len(made) < 2 or any(
            replica.info().get("master_link_status") != "up" for replica in made
        ):
            if written == 20:
                made.append(Replica(tmp_path / "two", running.port))
            r.set(f"during{written}", written, px=600_000)
            r.lrem("l", 1, written % 50)
            r.hincrbyfloat("h", "f", 0.1)
            written += 1
        assert r.execute_command("WAIT", 2, 5000) == 2
        ours = dump_state(r)
        for replica in made:
            assert dump_state(replica.client) == ours
        assert r.info("stats")["sync_full"] == 2
    finally:
        for replica in made:
            replica.stop()
        running.stop()


def test_a_chain_of_renames_onto_a_key_rewritten_whole_reaches_every_end(pair: Pair) -> None:
    r = pair.r
    for key in "abcde":
        r.rpush(key, key, "x")
    with r.pipeline(transaction=True) as tx:  # each rename ties the next key to the rewrite
        tx.rename("e", "f")
        tx.rename("d", "e")
        tx.rename("c", "d")
        tx.rename("b", "c")
        tx.rename("a", "b")
        tx.lrem("b", 1, "x")
        tx.execute()
    assert r.execute_command("WAIT", 1, 5000) == 1
    assert dump_state(pair.theirs) == dump_state(r)
    assert pair.theirs.lrange("f", 0, -1) == ["e", "x"]


def test_a_key_expiring_inside_a_transaction_after_swapdb_is_deleted_where_it_was(
    pair: Pair,
) -> None:
    r = pair.r
    r.set("k", "live")
    r1 = redis.Redis(port=pair.server.port, db=1, decode_responses=True)
    r1.set("k", "dying", px=30)
    assert r.execute_command("WAIT", 1, 5000) == 1
    wait_until(lambda: r1.pttl("k") == -2, what="the key to be due")  # due, not reclaimed
    with r.pipeline(transaction=True) as tx:
        tx.execute_command("SWAPDB", 0, 1)
        tx.dbsize()  # reclaims the due key, now in keyspace 0, inside the transaction
        assert tx.execute() == [True, 0]
    assert r.execute_command("WAIT", 1, 5000) == 1
    theirs1 = redis.Redis(port=pair.replica.port, db=1, decode_responses=True)
    assert theirs1.get("k") == "live"
    assert r1.get("k") == "live"
    assert dump_state(pair.theirs) == dump_state(r)
    r1.close()
    theirs1.close()


def test_the_store_written_after_its_server_stopped_keeps_working_quietly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(sweep_interval=None)
    running = Running(store, Config(port=0))
    replica = Replica(tmp_path / "replica", running.port)
    try:
        replica.wait_linked()
    finally:
        replica.stop()
        running.stop()
    store.set("after", "the server")  # the tap is still there; its loop is closed
    store.lists["l"].extend(["a", "b", "a"])
    store.lists["l"].remove("a")
    assert store.get("after") == "the server"
    assert registry(running.server.dispatcher).backlog is None  # nothing piles up
    assert not [record for record in caplog.records if record.levelname == "ERROR"]


def test_a_replica_that_never_acknowledges_its_snapshot_is_dropped_after_repl_timeout(
    tmp_path: Path,
) -> None:
    running = Running(Store(sweep_interval=None), Config(port=0, repl_timeout=1))
    try:
        r = redis.Redis(port=running.port)
        r.set("k", "v")
        old = socket.create_connection(("127.0.0.1", running.port))
        old.sendall(b"SYNC\r\n")  # the old protocol has no ACK: never timed out (Redis's)
        with old, socket.create_connection(("127.0.0.1", running.port)) as sock:
            sock.sendall(b"REPLCONF capa eof\r\nPSYNC ? -1\r\n")
            sock.settimeout(DEADLINE)
            data = b""
            while b"$EOF:" not in data or data.count(data.split(b"$EOF:")[1][:40]) < 2:
                data += sock.recv(65536)  # the whole file, then no REPLCONF ACK ever
            started = time.monotonic()
            for _ in range(200):  # writes pile up for it while it does not load
                r.set("w", "x" * 1000)
            wait_until(
                lambda: running.call(lambda: len(registry(running.server.dispatcher).links)) == 1,
                what="the silent replica to be dropped",
            )
            assert time.monotonic() - started >= 0.5
            old.settimeout(DEADLINE)
            step = 0
            while time.monotonic() - started < 3:  # past repl-timeout, SYNC's replica is fed
                step += 1
                mark = b"<%d>" % step
                r.set("w", mark * 10)
                received = b""
                while mark not in received:
                    chunk = old.recv(1 << 20)
                    assert chunk, "the SYNC replica was dropped"
                    received = received[-16:] + chunk
            assert running.call(lambda: len(registry(running.server.dispatcher).links)) == 1
    finally:
        running.stop()


def test_pops_served_later_restores_and_flushall_async_reach_the_replica(pair: Pair) -> None:
    r = pair.r
    served: dict[str, Any] = {}
    waiter = redis.Redis(port=pair.server.port, decode_responses=True)
    blocked = threading.Thread(target=lambda: served.update(v=waiter.blpop(["bl"], 10)))
    blocked.start()
    wait_until(lambda: r.info("clients")["blocked_clients"] == 1, what="BLPOP to block")
    r.rpush("bl", "first", "second")  # the pop is served after the push, as its own effect
    blocked.join(DEADLINE)
    assert served["v"] == ("bl", "first")
    r.rpush("src", "a", "b")
    r.pexpire("src", 600_000)
    payload = redis.Redis(port=pair.server.port).dump("src")
    r.execute_command("RESTORE", "copy", 0, payload)
    r.execute_command("RESTORE", "copy2", 500_000, payload)
    assert r.execute_command("WAIT", 1, 5000) == 1
    assert dump_state(pair.theirs) == dump_state(r)
    assert pair.theirs.lrange("bl", 0, -1) == ["second"]
    r.flushall(asynchronous=True)
    assert r.execute_command("WAIT", 1, 5000) == 1
    assert pair.theirs.dbsize() == 0
    waiter.close()
