"""``snapkv serve`` as a process: signals, SHUTDOWN from a client, kill -9 in the middle of EXEC.

Each test runs ``python -m snapkv serve`` in a subprocess on a free port and
talks to it with redis-py, then opens its data directory in this process to
see what a restart recovers. Waits poll for a condition with a deadline; the
one deliberate delay is the random moment at which a kill lands.

``SNAPKV_EXEC_KILL_RUNS`` sets how many kills land in an EXEC (default 3, a
few seconds); ``SNAPKV_SEED`` replays the delays of a failing run.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import snapkv
from support import wait_until

redis = pytest.importorskip("redis")
from redis.backoff import NoBackoff  # noqa: E402 - after the skip
from redis.retry import Retry  # noqa: E402

DEADLINE = 20.0
NO_RETRY = Retry(NoBackoff(), 0)
#: SIGTERM or SHUTDOWN must stop a busy server within this many seconds.
STOP_WITHIN = 1.0
EXEC_KILL_RUNS = int(os.environ.get("SNAPKV_EXEC_KILL_RUNS", "3"))
TRANSACTION_SETS = 60_000


def spawn(directory: Path, *args: str) -> tuple[subprocess.Popen[bytes], int]:
    """``snapkv serve --port 0 --dir directory/data`` in a subprocess; it and its port."""
    log = directory / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "snapkv",
                "serve",
                "--port",
                "0",
                "--dir",
                str(directory / "data"),
                *args,
            ],
            stdout=out,  # the log, as redis-server's without a logfile
            stderr=subprocess.STDOUT,
        )
    ready = re.compile(rb"ready to accept connections on [\d.]+:(\d+)")
    wait_until(
        lambda: process.poll() is not None or ready.search(log.read_bytes()),
        timeout=DEADLINE,
        what="the server to listen",
    )
    found = ready.search(log.read_bytes())
    assert found, log.read_text()
    return process, int(found.group(1))


def test_sigterm_saves_then_exits(tmp_path: Path) -> None:
    process, port = spawn(tmp_path, "--appendonly", "no")
    try:
        with redis.Redis(port=port) as r:
            r.mset({f"k{i}": str(i) for i in range(100)})
        process.send_signal(signal.SIGTERM)
        assert process.wait(DEADLINE) == 0
    finally:
        process.kill()
        process.wait()
    with snapkv.open(tmp_path / "data") as store:  # no journal: this is the SIGTERM snapshot
        assert len(store) == 100 and store.get("k42") == "42"


def test_sigkill_loses_no_acknowledged_write_with_appendfsync_always(tmp_path: Path) -> None:
    process, port = spawn(tmp_path, "--appendfsync", "always")
    try:
        with redis.Redis(port=port) as r:
            for i in range(200):
                r.set(f"k{i}", str(i))
            with r.pipeline(transaction=True) as pipe:
                pipe.incr("n").incr("n")
                pipe.execute()
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    with snapkv.open(tmp_path / "data", journal=True) as store:
        assert [store.get(f"k{i}") for i in range(200)] == [str(i) for i in range(200)]
        assert store.get("n") == "2"


# ------------------------------------------------------------ stopping a busy server


class Writers:
    """Clients that pipeline writes until the server goes away.

    Each one sets its own counter key ``w<i>`` to 1, 2, 3, ... (plus filler
    keys) in pipelines of 100 commands, and remembers the highest value the
    server acknowledged.
    """

    def __init__(self, port: int, count: int = 16) -> None:
        self.acked = [0] * count
        self.errors: list[BaseException] = []
        self.threads = [
            threading.Thread(target=self._run, args=(port, i), daemon=True) for i in range(count)
        ]
        for thread in self.threads:
            thread.start()

    def _run(self, port: int, i: int) -> None:
        value = 0
        try:
            # No retries: a refused reconnection ends the writer at once.
            with redis.Redis(port=port, socket_timeout=DEADLINE, retry=NO_RETRY) as r:
                while True:
                    pipe = r.pipeline(transaction=False)
                    for j in range(50):
                        value += 1
                        pipe.set(f"w{i}", str(value))
                        pipe.set(f"filler:{i}:{j}", "x" * 64)
                    pipe.execute()
                    self.acked[i] = value
        except redis.ConnectionError:
            return  # the server stopped: the end of this client
        except BaseException as exc:  # anything else is a failure the test reports
            self.errors.append(exc)

    def join(self) -> None:
        for thread in self.threads:
            thread.join(DEADLINE)
            assert not thread.is_alive(), "a writer did not notice the server stopping"


@pytest.mark.parametrize("how", ["SIGTERM", "SHUTDOWN"])
def test_a_busy_server_stops_within_a_second_with_its_snapshot(tmp_path: Path, how: str) -> None:
    """Every write acknowledged before the stop is in the snapshot; nothing runs after it."""
    process, port = spawn(tmp_path, "--appendonly", "no")
    try:
        writers = Writers(port)
        wait_until(lambda: all(writers.acked), timeout=DEADLINE, what="every writer to be busy")
        start = time.monotonic()
        if how == "SIGTERM":
            process.send_signal(signal.SIGTERM)
        else:
            with redis.Redis(port=port, socket_timeout=DEADLINE, retry=NO_RETRY) as admin:
                admin.shutdown()  # the connection closes without a reply, as in Redis
        wait_until(
            lambda: process.poll() is not None,
            timeout=STOP_WITHIN,
            what=f"the server to exit after {how}",
        )
        took = time.monotonic() - start
        assert process.returncode == 0, (process.returncode, took)
        writers.join()
    finally:
        process.kill()
        process.wait()
    assert not writers.errors, writers.errors
    with snapkv.open(tmp_path / "data") as store:  # no journal: the snapshot alone
        saved = [int(store.get(f"w{i}") or 0) for i in range(len(writers.acked))]
    late = [(i, a, s) for i, (a, s) in enumerate(zip(writers.acked, saved, strict=True)) if s < a]
    assert not late, f"acknowledged after the snapshot (writer, acked, saved): {late}"


# ------------------------------------------------------------------ kill -9 in EXEC


def test_kill_9_during_exec_keeps_all_of_the_transaction_or_none(tmp_path: Path) -> None:
    """A redis-py connection queues MULTI and 60,000 SETs, sends EXEC, and the server is killed.

    The kill lands at a random moment after EXEC was sent, spread over about
    twice the time the queueing took (EXEC of the queue takes about as long),
    so some kills land before the journal record is written and some after.
    With ``appendfsync always``, a reply that arrived means all of it.
    """
    seed = int(os.environ.get("SNAPKV_SEED", random.randrange(2**32)))
    rng = random.Random(seed)
    outcomes: list[tuple[float, bool, int]] = []
    for run in range(EXEC_KILL_RUNS):
        directory = tmp_path / f"run{run}"
        directory.mkdir()
        process, port = spawn(directory, "--appendonly", "yes", "--appendfsync", "always")
        try:
            with redis.Redis(port=port, socket_timeout=DEADLINE) as r:
                r.set("before", "1")
                connection = r.connection_pool.get_connection()
                started = time.monotonic()
                connection.send_packed_command(
                    connection.pack_commands(
                        [("MULTI",)] + [("SET", f"t:{i}", str(i)) for i in range(TRANSACTION_SETS)]
                    )
                )
                replies = [connection.read_response() for _ in range(TRANSACTION_SETS + 1)]
                assert replies[0] == b"OK" and set(replies[1:]) == {b"QUEUED"}
                delay = rng.uniform(0, 2 * (time.monotonic() - started))
                connection.send_command("EXEC")
                # The kill's random moment; can_read returns early if the reply came first.
                replied = connection.can_read(timeout=delay)
                assert process.poll() is None, "the server died before the kill"
                process.send_signal(signal.SIGKILL)
                process.wait(DEADLINE)
        finally:
            process.kill()
            process.wait()
        with snapkv.open(directory / "data", journal=True) as store:
            assert store.get("before") == "1"
            count = len(store) - 1
        outcomes.append((round(delay, 3), replied, count))
        context = f"seed {seed}: (delay, replied, keys) per run {outcomes}"
        assert count in (0, TRANSACTION_SETS), context
        assert count == TRANSACTION_SETS or not replied, context
