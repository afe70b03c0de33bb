"""``snapkv serve``'s dealings with the system: Redis's log, logfile, loglevel, pidfile, systemd.

The log and the pidfile are checked through a real ``snapkv serve``
process; systemd's notify protocol with a real AF_UNIX datagram socket
this test binds (a path, and Linux's abstract namespace), as systemd does.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from snapkv import Store
from snapkv.media import FileMedium
from snapkv.server import Config, RespServer
from snapkv.server.network import exposure_warning
from snapkv.server.process import Notifier, remove_logging, setup_logging
from support import wait_until

redis = pytest.importorskip("redis")
from redis.backoff import NoBackoff  # noqa: E402 - after the skip
from redis.retry import Retry  # noqa: E402

DEADLINE = 20.0
#: Redis's line: pid:role day month year time.ms mark message.
LINE = re.compile(r"^(\d+):M \d\d \w{3} \d{4} \d\d:\d\d:\d\d\.\d{3} ([.\-*#]) (.*)$")


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        if process.poll() is None:  # the test failed before stopping it
            process.kill()
        process.communicate()  # waits, and closes its pipes


def _serve(
    started: list[subprocess.Popen[bytes]],
    cwd: Path,
    *args: str,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "snapkv", "serve", "--port", "0", "--dir", str(cwd), *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    started.append(process)
    return process


def _port(log: Path) -> int:
    found: list[int] = []

    def listening() -> bool:
        match = re.search(r"ready to accept connections on [\d.]+:(\d+)", log.read_text())
        if match:
            found.append(int(match.group(1)))
        return bool(match)

    wait_until(listening, timeout=DEADLINE, what="the ready line in the log file")
    return found[0]


def test_logfile_loglevel_and_pidfile_through_a_real_server(
    tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    log, pidfile = tmp_path / "snapkv.log", tmp_path / "snapkv.pid"
    process = _serve(
        started,
        tmp_path,
        "--logfile",
        str(log),
        "--pidfile",
        str(pidfile),
        "--loglevel",
        "verbose",
        "--maxclients",
        "1",
        "--save",
        "",
    )
    wait_until(log.exists, timeout=DEADLINE, what="the log file")
    port = _port(log)
    assert pidfile.read_text() == f"{process.pid}\n"

    with socket.create_connection(("127.0.0.1", port)) as first:
        first.sendall(b"PING\r\n")
        assert first.recv(100) == b"+PONG\r\n"
        with socket.create_connection(("127.0.0.1", port)) as second:  # beyond maxclients
            assert second.recv(100) == b"-ERR max number of clients reached\r\n"
        first.sendall(b"*1\r\n$x\r\n")  # a protocol error: logged at verbose
        assert first.recv(200).startswith(b"-ERR Protocol error")
    wait_until(
        lambda: "refused 1 connection(s): maxclients (1) reached" in log.read_text(),
        timeout=DEADLINE,
        what="the refusal's log line (written once a second)",
    )
    with redis.Redis(port=port, retry=Retry(NoBackoff(), 0)) as r:
        r.set("k", "v")
        assert r.config_get("logfile") == {"logfile": str(log)}
        assert r.config_get("pidfile") == {"pidfile": str(pidfile)}
        with pytest.raises(redis.ConnectionError):
            r.execute_command("SHUTDOWN", "SAVE")
    assert process.wait(DEADLINE) == 0
    stdout, _stderr = process.communicate()
    assert stdout == b""  # a logfile: nothing on standard output
    assert not pidfile.exists()

    lines = [LINE.match(line) for line in log.read_text().splitlines()]
    assert all(lines), log.read_text()
    parsed = [(int(m.group(1)), m.group(2), m.group(3)) for m in lines if m]
    assert {pid for pid, _, _ in parsed} == {process.pid}
    marks = {text.split(":")[0][:40]: mark for _, mark, text in parsed}
    text = log.read_text()
    assert "snapkv serve: ready to accept connections on 127.0.0.1:" in text
    assert f"no data in {tmp_path} yet: starting empty" in text
    assert "User requested shutdown..." in text
    assert "Saving a snapshot (SHUTDOWN)..." in text
    assert re.search(r"DB saved: .*snapshot-\d+\.skv \([\d,]+ bytes in [\d.]+ s\)", text)
    assert "protocol error from 127.0.0.1:" in text
    assert any(mark == "-" for key, mark in marks.items() if key.startswith("protocol error"))
    assert text.rstrip().endswith("snapkv is now ready to exit, bye bye...")


def test_the_log_levels_are_redis_levels(tmp_path: Path) -> None:
    log = tmp_path / "level.log"
    server_log = logging.getLogger("snapkv.server")
    handler = setup_logging("warning", str(log))
    try:
        server_log.debug("verbose line")
        server_log.info("notice line")
        server_log.warning("warning line")
    finally:
        remove_logging(handler)
    text = log.read_text()
    assert "notice line" not in text and "verbose line" not in text
    assert LINE.match(text.splitlines()[0]).group(2) == "#"  # type: ignore[union-attr]
    handler = setup_logging("debug", str(log))
    try:
        server_log.log(5, "debug line")
        server_log.info("notice again")
    finally:
        remove_logging(handler)
    marks = [LINE.match(line).group(2) for line in log.read_text().splitlines()]  # type: ignore[union-attr]
    assert marks == ["#", ".", "*"]
    with pytest.raises(ValueError, match="Can't open the log file"):
        setup_logging("notice", str(tmp_path / "missing" / "x.log"))


def test_a_warning_when_listening_beyond_loopback_without_a_password() -> None:
    assert exposure_warning(["127.0.0.1:6379", "[::1]:6379"], None) is None
    assert exposure_warning(["0.0.0.0:6379"], "secret") is None
    warning = exposure_warning(["127.0.0.1:6379", "0.0.0.0:6379"], None)
    assert warning is not None and "0.0.0.0:6379, beyond loopback, without requirepass" in warning


# ------------------------------------------------------------------ systemd


def _datagrams(sock: socket.socket, until: str) -> list[str]:
    """Every datagram received until one contains ``until``."""
    received: list[str] = []
    sock.settimeout(DEADLINE)
    while not any(until in message for message in received):
        received.append(sock.recv(4096).decode())
    return received


def test_notify_in_the_abstract_namespace() -> None:
    name = f"snapkv-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        notifier = Notifier("auto", {"NOTIFY_SOCKET": "@" + name})
        assert notifier.active
        notifier.send("READY=1", "STATUS=Ready to accept connections")
        assert _datagrams(sock, "READY=1") == ["READY=1\nSTATUS=Ready to accept connections\n"]
    assert not Notifier("auto", {}).active  # auto without systemd: nothing
    assert not Notifier("no", {"NOTIFY_SOCKET": "@" + name}).active


def test_supervised_systemd_says_ready_then_stopping(
    tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        env = {**os.environ, "NOTIFY_SOCKET": str(path)}
        process = _serve(
            started, tmp_path, "--supervised", "systemd", "--logfile", "serve.log", env=env
        )
        ready = _datagrams(sock, "READY=1")
        assert ready[0] == f"STATUS=Loading data from {tmp_path}\n"
        assert ready[-1] == "READY=1\nSTATUS=Ready to accept connections\n"
        process.send_signal(signal.SIGTERM)
        stopping = _datagrams(sock, "STOPPING=1")
        assert stopping == ["STOPPING=1\nSTATUS=Shutting down\n"]
        assert process.wait(DEADLINE) == 0
    assert "supervised by systemd: notifying" in (tmp_path / "serve.log").read_text()


def test_a_journal_compaction_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The Store compacts in its own thread; the server's once-a-second look logs its snapshot."""
    store = Store(FileMedium(tmp_path), journal=True, compact_min_bytes=4096)
    store.restore()
    try:
        server = RespServer(store, Config(appendonly=True, dir=str(tmp_path)))
        server._notice_compaction()  # what the first tick sees: no snapshot yet
        with caplog.at_level(logging.INFO, logger="snapkv.server"):
            for i in range(1000):
                store[f"k{i}"] = "x" * 50
            wait_until(store.medium.generations, timeout=DEADLINE, what="a compaction")
            server._notice_compaction()
        assert "journal compaction (the journal outgrew the last snapshot) wrote" in caplog.text
        assert "snapshot-0000000000000001.skv" in caplog.text
    finally:
        store.close()
