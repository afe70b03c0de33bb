"""``snapkv serve --replicate URL`` end to end: redis-py writes, a restore elsewhere reads them."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

import snapkv
from moto_server import S3Bucket, moto_endpoint, moto_s3  # noqa: F401 (fixtures)
from support import wait_until

redis = pytest.importorskip("redis")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_serve_replicate_ships_what_clients_wrote(
    moto_s3: S3Bucket,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    port = _free_port()
    url = moto_s3.url("served")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "snapkv",
            "serve",
            "--port",
            str(port),
            "--dir",
            str(tmp_path / "data"),
            "--replicate",
            url,
            "--replicate-interval",
            "0.2",
        ],
        env=moto_s3.process_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(port=port, socket_timeout=5)
        wait_until(lambda: _pings(client), timeout=20, what="the server to answer")
        for i in range(300):
            client.set(f"key:{i}", f"value {i}")
        client.hset("h", mapping={"a": "1"})
        client.delete("key:7")
        wait_until(
            lambda: any(k.startswith("served/segment/") for k in moto_s3.keys("served/")),
            timeout=20,
            what="a segment in the bucket",
        )
        info = client.info("replication")
        assert info["role"] == "master"  # Redis's own fields stay as they were
        assert info["replication_url"] == url
        assert info["replication_failures"] == 0
        assert info["replication_requests"] >= 2
        client.shutdown(nosave=False)
    except redis.ConnectionError:
        pass  # SHUTDOWN closes the connection
    finally:
        server.wait(timeout=30)
    done = subprocess.run(
        [sys.executable, "-m", "snapkv", "restore", url, "--to", str(tmp_path / "copy")],
        env=moto_s3.process_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    with snapkv.open(tmp_path / "copy") as store:
        assert dict(store.hashes["h"]) == {"a": "1"}
        strings = {i: store.get(f"key:{i}") for i in range(300)}
    assert strings == {i: (None if i == 7 else f"value {i}") for i in range(300)}


def _pings(client: object) -> bool:
    try:
        return bool(client.ping())  # type: ignore[attr-defined]
    except redis.ConnectionError:
        return False


def _serve_on(url: str, port: int, env: dict[str, str], *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "snapkv", "serve", "--port", str(port), "--dir", url, *extra],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_serve_with_the_bucket_as_its_medium_keeps_every_write_across_kill_and_restart(
    moto_s3: S3Bucket,  # noqa: F811 - the fixture imported above
) -> None:
    """``--dir s3://...``: no local state; appendfsync always acknowledges after the PUT."""
    url = moto_s3.url("medium")
    env = moto_s3.process_env()
    port = _free_port()
    server = _serve_on(url, port, env, "--appendfsync", "always", "--save", "")
    try:
        client = redis.Redis(port=port, socket_timeout=10)
        wait_until(lambda: _pings(client), timeout=30, what="the server to answer")
        for i in range(50):
            client.set(f"key:{i}", f"value {i}")
        client.rpush("jobs", "a", "b", "c")
        client.delete("key:3")
        assert client.config_get("appendfsync") == {"appendfsync": "always"}
    finally:
        server.kill()  # every reply above came after its segment was stored
        server.communicate(timeout=30)
    port = _free_port()
    # The killed server's claim is still fresh: a second server must take it over
    # explicitly (as a new writer would), so the first is fenced; snapkv.open() does.
    with snapkv.open(url, takeover=True) as store:
        assert store.get("key:0") == "value 0"
        assert "key:3" not in store
        assert list(store.lists["jobs"]) == ["a", "b", "c"]
        assert len(store) == 50
    server = _serve_on(url, port, env, "--appendfsync", "always", "--save", "")
    try:
        client = redis.Redis(port=port, socket_timeout=10)
        wait_until(lambda: _pings(client), timeout=30, what="the restarted server to answer")
        assert client.get("key:49") == b"value 49"
        assert client.lrange("jobs", 0, -1) == [b"a", b"b", b"c"]
        client.shutdown(nosave=True)
    except redis.ConnectionError:
        pass  # SHUTDOWN closes the connection
    finally:
        _out, err = server.communicate(timeout=30)
    assert server.returncode == 0, err.decode(errors="replace")
