"""A real S3 API on loopback for the tests: moto's server mode, one per session, a bucket per test.

moto (``moto[server]``, in the test extra) answers the S3 REST API as S3
does, conditional writes (``If-None-Match: *``) included, so the object-store
code is tested through real HTTP requests, signatures and XML, not a mock of
the client. The server runs as a separate process (``python -m moto.server``)
rather than a thread of the test process: its request handling then takes no
time from the code under test (two cores are shared by everything), and a test
that kills its writer with SIGKILL leaves the bucket's state intact.

Use it from a test module by importing the fixture (pytest finds fixtures by
name in the module's namespace)::

    from moto_server import S3Bucket, moto_endpoint, moto_s3  # noqa: F401 (fixtures)

    def test_something(moto_s3: S3Bucket) -> None:
        store = snapkv.open(moto_s3.url("prefix"))   # AWS_* already set
        ...
        subprocess.run([...], env=moto_s3.process_env())  # for a child process

``moto_s3`` is a fresh bucket (a unique name) on the session's server, with
the standard S3 environment variables set for the test (``AWS_ENDPOINT_URL``,
dummy keys, ``AWS_REGION``, ``AWS_ALLOW_HTTP``) and put back afterwards.
``moto_server()`` is the same server as a context manager, for a benchmark.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

#: The region moto's buckets live in; any name works as long as client and bucket agree.
REGION = "us-east-1"

#: How long moto may take to answer its first request (importing moto's
#: service table is most of it: about a second on an idle machine).
START_TIMEOUT = 30.0

#: Variables that would point a client at real credentials or another endpoint.
_FOREIGN = ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE")


def s3_env(endpoint: str) -> dict[str, str]:
    """The standard S3 variables that point a client at ``endpoint`` with dummy keys.

    ``AWS_ALLOW_HTTP`` is the explicit permission plain-http endpoints need
    (clients refuse ``http://`` otherwise); moto accepts any key pair.
    """
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ALLOW_HTTP": "true",
    }


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class MotoServer:
    """One ``python -m moto.server`` process bound to 127.0.0.1 on a free port.

    ``start()`` returns once the server answers an HTTP request; ``stop()``
    ends that process (and only it). Requests are logged to ``log_path``:
    moto logs a line per request, and a pipe nobody reads would block it.
    """

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._names = itertools.count(1)
        self._client: Any = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.port = _free_port()
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"moto server exited with {self._process.returncode}: "
                    f"{self.log_path.read_text(errors='replace')[-2000:]}"
                )
            try:
                with urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=1.0):
                    return
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"moto server did not answer on {self.endpoint}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def client(self) -> Any:
        """A boto3 S3 client of this server: to make buckets and to inspect or damage objects."""
        if self._client is None:
            import boto3  # moto's own dependency; imported only by tests that use S3

            self._client = boto3.client(
                "s3",
                endpoint_url=self.endpoint,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                region_name=REGION,
            )
        return self._client

    def make_bucket(self, hint: str = "b") -> S3Bucket:
        """A new, empty bucket with a name no other bucket of this server has."""
        clean = "".join(c if c.isalnum() else "-" for c in hint.lower()).strip("-")[:40]
        name = f"snapkv-{next(self._names)}-{clean or 'b'}"
        self.client().create_bucket(Bucket=name)
        return S3Bucket(endpoint=self.endpoint, bucket=name, server=self)


@dataclass(frozen=True)
class S3Bucket:
    """A bucket of the test's moto server: where it is and how to reach it."""

    endpoint: str
    bucket: str
    server: MotoServer

    @property
    def env(self) -> dict[str, str]:
        """The S3 variables for this server (see :func:`s3_env`)."""
        return s3_env(self.endpoint)

    def url(self, prefix: str = "") -> str:
        """``s3://bucket/prefix`` (``s3://bucket`` for the bucket's root)."""
        return f"s3://{self.bucket}/{prefix}" if prefix else f"s3://{self.bucket}"

    def process_env(self) -> dict[str, str]:
        """A child process's environment: this one's, minus foreign keys, plus :attr:`env`."""
        env = {k: v for k, v in os.environ.items() if k not in _FOREIGN}
        env.update(self.env)
        return env

    def keys(self, prefix: str = "") -> list[str]:
        """Every object name in the bucket under ``prefix``, sorted (all pages)."""
        client = self.server.client()
        names: list[str] = []
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        ):
            names.extend(item["Key"] for item in page.get("Contents", ()))
        return sorted(names)

    def read(self, key: str) -> bytes:
        """The bytes of one object, read past any snapkv code."""
        body: bytes = self.server.client().get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body

    def write(self, key: str, data: bytes) -> None:
        """Overwrite (or create) one object, as damage from outside snapkv would."""
        self.server.client().put_object(Bucket=self.bucket, Key=key, Body=data)

    def remove(self, key: str) -> None:
        """Delete one object, as a lost object would look."""
        self.server.client().delete_object(Bucket=self.bucket, Key=key)


@contextlib.contextmanager
def moto_server(log_dir: Path) -> Iterator[MotoServer]:
    """A running moto server for the block's duration (its request log in ``log_dir``)."""
    server = MotoServer(log_dir / "moto.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """The session's moto server, started by the first test that needs S3."""
    with moto_server(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture
def moto_s3(
    moto_endpoint: MotoServer, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> S3Bucket:
    """A fresh bucket on the session's moto server, the S3 variables set for this test."""
    for name in _FOREIGN:
        monkeypatch.delenv(name, raising=False)
    bucket = moto_endpoint.make_bucket(request.node.name)
    for name, value in bucket.env.items():
        monkeypatch.setenv(name, value)
    return bucket
