"""``snapkv serve`` as a subprocess on a free loopback port, for tests that need a real process.

Used by the tests that point real tools at the server (redis-cli --stat,
redis_exporter) or check what a real socket answers. The server is told its
port (one found free just before), and the helper waits until it answers
PING; it kills the server by its pid at the end.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from support import wait_until

DEADLINE = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def tool(name: str) -> str:
    """Path of a system tool; skipped locally when missing, but a failure under CI."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not on PATH (scripts/test-deps.sh installs it)")
        pytest.skip(f"{name} is not on PATH")
    return path


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def serving(directory: Path, *args: str) -> Iterator[int]:
    """Run ``snapkv serve`` with its data in ``directory``; yield its port."""
    port = free_port()
    log = directory / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "snapkv",
                "serve",
                "--port",
                str(port),
                "--dir",
                str(directory),
                *args,
            ],
            cwd=directory,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(
            lambda: process.poll() is not None or _answers(port),
            timeout=DEADLINE,
            what="snapkv serve to answer PING",
        )
        assert process.poll() is None, log.read_text()
        yield port
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(DEADLINE)
