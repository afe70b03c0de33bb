"""Where ``snapkv serve`` keeps its data and when it saves, as redis-server does: real processes.

Without ``--dir`` the data lives in the current directory (each test runs
the server in its own temporary directory); ``--save "" --appendonly no``
keeps it in memory only, and then SHUTDOWN and SIGTERM save nothing while
SAVE still writes a snapshot; a journal alone (``--save ""``) loses
nothing either. A directory another server holds, or one that fails its
checks, stops the start with the store's message and exit status 1; the
recovery options start it anyway, as ``open(fallback=..., repair=...)``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import snapkv
from support import wait_until

redis = pytest.importorskip("redis")
from redis.backoff import NoBackoff  # noqa: E402 - after the skip
from redis.retry import Retry  # noqa: E402

DEADLINE = 20.0
READY = re.compile(rb"ready to accept connections on [\d.]+:(\d+)")


#: Servers started by the running test; any still running at its end is killed.
STARTED: list[subprocess.Popen[bytes]] = []


@pytest.fixture(autouse=True)
def _kill_leftovers() -> Iterator[None]:
    yield
    while STARTED:
        process = STARTED.pop()
        if process.poll() is None:  # the test failed before stopping it
            process.kill()
            process.wait()


class Server:
    """``python -m snapkv serve --port 0 ARGS`` run in ``cwd``; its log is its standard output."""

    def __init__(self, cwd: Path, *args: str) -> None:
        self.log = cwd / f"serve-{len(list(cwd.glob('serve-*.log')))}.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "snapkv", "serve", "--port", "0", *args],
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        STARTED.append(self.process)
        wait_until(
            lambda: self.process.poll() is not None or READY.search(self.log.read_bytes()),
            timeout=DEADLINE,
            what="the server to listen",
        )
        found = READY.search(self.log.read_bytes())
        assert found, self.text
        self.port = int(found.group(1))

    @property
    def text(self) -> str:
        return self.log.read_text(encoding="utf-8")

    def client(self) -> Any:
        # No retries: SHUTDOWN closes the connection without a reply, and a retry
        # would only wait for a server that is gone.
        return redis.Redis(port=self.port, socket_timeout=DEADLINE, retry=Retry(NoBackoff(), 0))

    def stop(self, how: str = "SHUTDOWN", *args: str) -> int:
        """SHUTDOWN [args] from a client, or a signal; the exit status."""
        try:
            if how == "SHUTDOWN":
                with self.client() as r:
                    r.execute_command("SHUTDOWN", *args)
            else:
                self.process.send_signal(getattr(signal, how))
            return self.process.wait(DEADLINE)
        except redis.ConnectionError:  # SHUTDOWN's connection closes without a reply
            return self.process.wait(DEADLINE)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()


def run_refused(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "snapkv", "serve", "--port", "0", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def snapshots(directory: Path) -> list[Path]:
    return sorted(directory.glob("snapshot-*.skv"))


def test_without_dir_the_data_lives_in_the_current_directory(tmp_path: Path) -> None:
    server = Server(tmp_path)
    assert f"data in {tmp_path}: snapshots snapshot-*.skv (save 3600 1 300 100 60 10000)" in (
        server.text
    )
    assert "journal journal-*.skj (appendonly yes, appendfsync everysec" in server.text
    assert f"no data in {tmp_path} yet: starting empty" in server.text
    with server.client() as r:
        r.mset({f"k{i}": str(i) for i in range(50)})
        assert r.config_get("dir") == {"dir": str(tmp_path)}
        assert r.config_get("appendonly") == {"appendonly": "yes"}
    assert list(tmp_path.glob("journal-*.skj"))
    assert server.stop() == 0  # save rules are set: SHUTDOWN snapshots
    assert snapshots(tmp_path)
    again = Server(tmp_path)
    assert re.search(
        r"DB loaded from disk: 50 keys in [\d.]+ s from snapshot snapshot-", again.text
    )
    with again.client() as r:
        assert r.get("k42") == b"42"
    again.stop("SIGTERM")


def test_memory_only_saves_only_when_asked(tmp_path: Path) -> None:
    server = Server(tmp_path, "--save", "", "--appendonly", "no")
    assert (
        'no automatic persistence (save "", appendonly no): data lives in memory only and is '
        f"lost at exit unless SAVE or BGSAVE writes a snapshot to {tmp_path}" in server.text
    )
    with server.client() as r:
        r.set("a", "1")
        assert r.config_get("save") == {"save": ""}
        assert r.config_get("dir") == {"dir": str(tmp_path)}  # where SAVE writes: true
        assert r.info("persistence")["aof_enabled"] == 0
    assert not list(tmp_path.glob("journal-*.skj")) and not snapshots(tmp_path)
    assert server.stop() == 0  # no save rules: no snapshot, as Redis
    assert not snapshots(tmp_path)
    assert "Not saving (no save rules) and appendonly no: 1 keys in memory are dropped" in (
        server.text
    )

    server = Server(tmp_path, "--save", "", "--appendonly", "no")
    with server.client() as r:
        assert r.get("a") is None
        r.set("b", "2")
        assert r.save() is True  # SAVE writes to dir whatever the rules
        r.set("c", "3")  # after the snapshot: lost at exit
    assert len(snapshots(tmp_path)) == 1
    assert server.stop("SIGTERM") == 0  # SIGTERM as SHUTDOWN: no snapshot
    assert re.search(r"DB saved: .*snapshot-\d+\.skv \([\d,]+ bytes in", server.text)
    with snapkv.open(tmp_path) as store:
        assert dict(store.items()) == {"b": "2"}
        store.close()


def test_shutdown_save_forces_a_snapshot_and_nosave_skips_it(tmp_path: Path) -> None:
    server = Server(tmp_path, "--save", "", "--appendonly", "no")
    with server.client() as r:
        r.set("a", "1")
    assert server.stop("SHUTDOWN", "SAVE") == 0
    assert len(snapshots(tmp_path)) == 1
    server = Server(tmp_path, "--appendonly", "no")  # default save rules
    with server.client() as r:
        assert r.get("a") == b"1"  # the snapshot was loaded at start
        r.set("a", "2")
    assert server.stop("SHUTDOWN", "NOSAVE") == 0
    assert "Not saving (NOSAVE) and appendonly no: 1 keys in memory are dropped" in server.text
    with snapkv.open(tmp_path) as store:
        assert store.get("a") == "1"
        store.close()


def test_a_journal_without_save_rules_loses_nothing(tmp_path: Path) -> None:
    server = Server(tmp_path, "--save", "")
    with server.client() as r:
        r.mset({"a": "1", "b": "2"})
    assert server.stop() == 0
    assert not snapshots(tmp_path)  # no rules: SHUTDOWN took none; the journal holds all
    assert "Not saving a snapshot (no save rules); the journal holds every write" in server.text
    again = Server(tmp_path, "--save", "")
    assert "plus 1 journal records" in again.text or "plus 2 journal records" in again.text
    with again.client() as r:
        assert r.mget("a", "b") == [b"1", b"2"]
    again.stop()


def test_a_second_server_on_the_same_directory_is_refused(tmp_path: Path) -> None:
    first = Server(tmp_path, "--pidfile", "first.pid")
    try:
        refused = run_refused(tmp_path, "--pidfile", "first.pid")
        assert refused.returncode == 1
        assert "is already open in another Store" in refused.stderr
        assert "Traceback" not in refused.stderr + refused.stdout
        # The refused server never wrote (nor removed) the first one's pidfile.
        assert (tmp_path / "first.pid").read_text() == f"{first.process.pid}\n"
    finally:
        assert first.stop() == 0


def _two_generations(directory: Path) -> None:
    with snapkv.open(directory, keep=1, journal=False) as store:
        store["gen"] = "1"
        store.save()
        store["gen"] = "2"
        store.save()
        store.close()


def test_a_corrupt_snapshot_stops_the_start_unless_fallback(tmp_path: Path) -> None:
    _two_generations(tmp_path)
    newest = snapshots(tmp_path)[-1]
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0xFF
    newest.write_bytes(bytes(data))
    refused = run_refused(tmp_path, "--appendonly", "no")
    assert refused.returncode == 1
    assert newest.name in refused.stderr and "Traceback" not in refused.stderr + refused.stdout
    server = Server(tmp_path, "--appendonly", "no", "--rdb-load-fallback", "yes")
    assert "loaded with losses: 1 damaged snapshot(s) skipped (snapshot-" in server.text
    with server.client() as r:
        assert r.get("gen") == b"1"
    server.stop("SHUTDOWN", "NOSAVE")


def test_a_journal_damaged_in_the_middle_stops_the_start_unless_repair(tmp_path: Path) -> None:
    with snapkv.open(tmp_path, journal=True, fsync="always") as store:
        for i in range(20):
            store[f"k{i}"] = "x" * 100
        store.close()  # no snapshot: everything is in the journal
    (journal,) = tmp_path.glob("journal-*.skj")
    data = bytearray(journal.read_bytes())
    data[len(data) // 2] ^= 0xFF
    journal.write_bytes(bytes(data))
    refused = run_refused(tmp_path, "--save", "")
    assert refused.returncode == 1
    assert journal.name in refused.stderr and "Traceback" not in refused.stderr + refused.stdout
    server = Server(tmp_path, "--save", "", "--aof-load-repair", "yes")
    assert "snapshot(s) skipped (none), 1 piece(s) of journal dropped" in server.text
    with server.client() as r:
        kept = r.dbsize()
        assert 0 < kept < 20 and r.get("k0") == b"x" * 100
    server.stop()


def test_the_pidfile_names_the_process_while_it_runs(tmp_path: Path) -> None:
    server = Server(tmp_path, "--pidfile", "snapkv.pid", "--save", "", "--appendonly", "no")
    pidfile = tmp_path / "snapkv.pid"
    assert pidfile.read_text() == f"{server.process.pid}\n"
    assert server.process.pid != os.getpid()
    assert server.stop("SIGTERM") == 0
    assert not pidfile.exists()


def test_shutdown_on_sigterm_and_sigint_give_the_signal_shutdowns_flags(tmp_path: Path) -> None:
    server = Server(tmp_path, "--appendonly", "no", "--shutdown-on-sigterm", "nosave")
    with server.client() as r:
        r.set("a", "1")
        assert r.config_get("shutdown-on-sigterm") == {"shutdown-on-sigterm": "nosave"}
    assert server.stop("SIGTERM") == 0  # save rules are set, but the flags say nosave
    assert not snapshots(tmp_path)
    server = Server(tmp_path, "--save", "", "--appendonly", "no", "--shutdown-on-sigint", "save")
    with server.client() as r:
        r.set("b", "2")
    assert server.stop("SIGINT") == 0  # no save rules, but the flags say save
    with snapkv.open(tmp_path, journal=False) as store:
        assert dict(store.items()) == {"b": "2"}
        store.close()


def test_without_a_directory_nothing_touches_the_disk_and_nothing_claims_to(tmp_path: Path) -> None:
    server = Server(tmp_path, "--dir", "", "--save", "", "--appendonly", "no")
    assert "no data directory: data lives in memory only and is lost at exit" in server.text
    with server.client() as r:
        r.set("a", "1")
        assert r.config_get("dir") == {"dir": ""}  # not the current directory
        assert r.save() is True  # kept in this process only, as the log said
    assert server.stop("SHUTDOWN", "SAVE") == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [server.log.name]


def test_flushall_with_save_rules_snapshots_so_a_crash_cannot_bring_keys_back(
    tmp_path: Path,
) -> None:
    """As Redis's flushAllDataAndResetRDB: with save rules, FLUSHALL saves the empty store."""
    server = Server(tmp_path, "--appendonly", "no", "--save", "3600 1")
    with server.client() as r:
        r.set("a", "1")
        r.save()
        r.set("b", "2")
        r.flushall()
        persistence = r.info("persistence")
        assert persistence["rdb_changes_since_last_save"] == 0
    assert server.stop("SIGKILL") == -signal.SIGKILL
    server = Server(tmp_path, "--appendonly", "no", "--save", "3600 1")
    with server.client() as r:
        assert r.dbsize() == 0
    server.stop("SHUTDOWN", "NOSAVE")
