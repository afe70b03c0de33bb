"""A script's writes on disk: one journal record, all of them or none after a crash.

A script runs inside ``store.transaction()``: its writes become ONE journal
record when it ends. A script that fails keeps the writes it made before
the error (as Redis, no rollback): the record is written all the same. A
process killed (SIGKILL) while a script runs leaves none of its writes.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

pytest.importorskip("lupa")
redis = pytest.importorskip("redis")

import snapkv  # noqa: E402
from serving import DEADLINE, serving  # noqa: E402
from snapkv.server.client import Client  # noqa: E402
from snapkv.server.dispatch import Dispatcher  # noqa: E402
from snapkv.server.state import Config  # noqa: E402
from support import wait_until  # noqa: E402

WRITE_100 = "for i = 1, 100 do redis.call('set', 'k' .. i, i) end"


def _journal_records(directory: Path) -> int:
    """Records in the store's journals (each a whole write or transaction)."""
    from snapkv.journal import scan_journal

    total = 0
    for path in sorted(directory.glob("journal-*.skj")):
        total += len(scan_journal(path.read_bytes()).ops)
    return total


def test_a_script_is_one_journal_record(tmp_path: Path) -> None:
    with snapkv.open(tmp_path) as store:
        server = Dispatcher(store, Config())
        client = Client(server)
        before = _journal_records(tmp_path)
        assert server.execute(client, ["EVAL", WRITE_100 + "; return 1", "0"]) == b":1\r\n"
        assert _journal_records(tmp_path) == before + 1
        failed = server.execute(client, ["EVAL", "redis.call('set', 'a', 1); error('no')", "0"])
        assert failed.startswith(b"-ERR user_script:1: no")
        assert _journal_records(tmp_path) == before + 2  # kept: written as its own record
        server.execute(client, ["EVAL", "return redis.call('get', 'k1')", "0"])
        assert _journal_records(tmp_path) == before + 2  # a read-only script writes nothing
    with snapkv.open(tmp_path) as store:
        assert store.get("k100") == "100"
        assert store.get("a") == "1"


def test_sigkill_during_a_script_leaves_none_of_its_writes(tmp_path: Path) -> None:
    pidfile = tmp_path / "serve.pid"
    args = ("--appendonly", "yes", "--busy-reply-threshold", "50", "--pidfile", str(pidfile))
    with serving(tmp_path, *args) as port:
        first = redis.Redis(port=port, socket_timeout=DEADLINE)
        caller = redis.Redis(port=port, socket_timeout=DEADLINE)
        # A whole script: all of its writes are acknowledged, then on disk.
        assert first.eval(WRITE_100 + "; return 'ok'", 0) == b"ok"
        # This one writes, then loops for ever (UNKILLABLE): it never ends.
        loop = "for i = 1, 100 do redis.call('set', 'lost' .. i, i) end; while true do end"
        outcome: list[BaseException] = []

        def call() -> None:
            try:
                caller.eval(loop, 0)
            except redis.ConnectionError as exc:  # the server dies under it
                outcome.append(exc)

        thread = threading.Thread(target=call, daemon=True)
        thread.start()

        def busy() -> bool:
            try:
                first.ping()
            except redis.ResponseError:
                return True
            return False

        wait_until(busy, timeout=DEADLINE, what="the script to be busy")
        os.kill(int(pidfile.read_text()), signal.SIGKILL)
        thread.join(DEADLINE)
        assert len(outcome) == 1
        first.close()
        caller.close()
    pidfile.unlink(missing_ok=True)
    with serving(tmp_path, "--appendonly", "yes") as port:
        again = redis.Redis(port=port, socket_timeout=DEADLINE)
        assert again.get("k100") == b"100"
        assert again.exists(*[f"lost{i}" for i in range(1, 101)]) == 0
        assert again.dbsize() == 100
        again.close()
