"""A newcomer's first hour, end to end, through real processes and only what snapkv prints.

Each step is what a new user does without reading the source: open, write,
close, reopen; ``snapkv serve`` without options, write, SHUTDOWN, start
again; damage a journal and follow the advice printed in the error. Every
acknowledged write must still be there at the end of each.
"""

from __future__ import annotations

import re
import shlex
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import snapkv
from serving import DEADLINE, free_port
from snapkv import journal as jr
from support import wait_until

TIMEOUT = 60


def python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def test_open_write_close_reopen_in_two_processes(tmp_path: Path) -> None:
    wrote = python(
        """
        import snapkv
        db = snapkv.open("data")
        db["k"] = "v"
        db.close()
        db = snapkv.open("data")
        db["forgotten"] = "close() was never called"
        """,
        tmp_path,
    )
    assert wrote.returncode == 0, wrote.stderr
    assert wrote.stderr == ""  # nothing alarming printed
    read = python(
        """
        import snapkv
        db = snapkv.open("data")
        print(db["k"], db["forgotten"], db.last_restore.damaged, sep="|")
        db.close()
        """,
        tmp_path,
    )
    assert read.returncode == 0, read.stderr
    assert read.stdout.strip() == "v|close() was never called|False"
    assert read.stderr == ""


def _command(port: int, *words: str) -> bytes:
    request = b"*%d\r\n" % len(words) + b"".join(
        b"$%d\r\n%s\r\n" % (len(w.encode()), w.encode()) for w in words
    )
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as sock:
        sock.sendall(request)
        reply = b""
        while not reply.endswith(b"\r\n") or (reply.startswith(b"$") and reply.count(b"\r\n") < 2):
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
        return reply


def _start(cwd: Path, port: int) -> subprocess.Popen[bytes]:
    """``snapkv serve`` with no option but the port, as a newcomer runs it; its log in cwd."""
    with (cwd / "serve.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "snapkv", "serve", "--port", str(port)],
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def answers() -> bool:
        try:
            return _command(port, "PING") == b"+PONG\r\n"
        except OSError:
            return process.poll() is not None

    wait_until(answers, timeout=DEADLINE, what="snapkv serve to answer")
    assert process.poll() is None
    return process


def test_serve_without_options_write_shutdown_restart(tmp_path: Path) -> None:
    port = free_port()
    server = _start(tmp_path, port)
    try:
        assert _command(port, "SET", "greeting", "hello") == b"+OK\r\n"
        assert _command(port, "SET", "count", "1") == b"+OK\r\n"
        _command(port, "SHUTDOWN")
        assert server.wait(DEADLINE) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    log = (tmp_path / "serve.log").read_text()
    assert f"data in {tmp_path}" in log  # the start-up log says where the data lives
    server = _start(tmp_path, port)
    try:
        assert _command(port, "GET", "greeting") == b"$5\r\nhello\r\n"
        assert _command(port, "SET", "count", "2") == b"+OK\r\n"
        server.send_signal(signal.SIGKILL)  # no goodbye this time
        server.wait(DEADLINE)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    server = _start(tmp_path, port)
    try:
        assert _command(port, "GET", "count") == b"$1\r\n2\r\n"
        _command(port, "SHUTDOWN")
        server.wait(DEADLINE)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_damage_a_journal_and_follow_the_printed_advice(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with snapkv.open(data) as store:
        store.save()  # a snapshot, then everything below lives in the journal
        for i in range(20):
            store.set(f"k{i}", f"v{i}")
        store.close()  # not shutdown: the journal holds the writes
    (journal,) = data.glob("journal-*.skj")
    raw = bytearray(journal.read_bytes())
    scan = jr.scan_journal(bytes(raw))
    assert len(scan.ops) == 20
    middle = len(raw) // 2
    raw[middle] ^= 0xFF  # one flipped byte in the middle
    journal.write_bytes(bytes(raw))

    refused = subprocess.run(
        [sys.executable, "-m", "snapkv", "run", "-", "--dir", str(data)],
        input='[["get", "k0"]]',
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert refused.returncode == 1
    message = refused.stderr
    assert journal.name in message and "offset" in message
    advice = re.search(r"run: (snapkv check .*? --repair)", message)
    assert advice is not None, message
    command = shlex.split(advice.group(1))
    assert "add --yes in a script" in message
    repaired = subprocess.run(
        [sys.executable, "-m", *command, "--yes"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    with snapkv.open(data) as store:
        kept = sorted(store.keys(), key=lambda k: int(k[1:]))
        assert kept == [f"k{i}" for i in range(len(kept))]  # a prefix of the history
        assert 0 < len(kept) < 20
        assert all(store[k] == f"v{k[1:]}" for k in kept)
        store.close()
