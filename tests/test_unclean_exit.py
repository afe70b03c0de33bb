"""A process that exits without close() loses nothing, and the next open does not say it did.

A journal is preallocated while it is written (FORMAT.md section J2), so a
process killed with SIGKILL, or one that simply never calls ``close()``,
leaves zeros after its last record. Under every ``fsync`` policy those zeros
never held an acknowledged write the policy promised to keep (J6 rule 3), so
the next open cuts them, durably, and reports them as what they are: not as
damage. Each case runs real processes on real files:

* a script that writes with the default ``snapkv.open(dir)`` and is killed:
  ``snapkv check`` on the directory predicts that it opens (exit 0), and the
  next open has every acknowledged key, ``damaged`` false, no WARNING logged
  (an INFO line says what was cut) and the file cut back to its records;
* a real ``snapkv serve`` killed with ``kill -9`` and started again: no
  "loaded with losses" line, every acknowledged key served;
* a torn or garbage tail (a record the crash cut short) is still a loss,
  and zeros after an older journal's records are still damage.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import snapkv
from serving import serving
from snapkv import journal as jr
from snapkv.check import OPENS, OPENS_WITH_LOSS, REFUSES, check_directory
from snapkv.errors import CorruptJournalError

SRC = Path(__file__).resolve().parent.parent / "src"
TIMEOUT = 120

# Writes ``count`` keys with the defaults of snapkv.open (a journal, fsync
# everysec), prints each acknowledged key, then kills itself ("kill") or
# just ends ("exit"): no close() either way.
CHILD = textwrap.dedent(
    """
    import os, signal, sys
    import snapkv

    directory, count, end = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    store = snapkv.open(directory)
    for i in range(count):
        store.set(f"k{i}", f"v{i}" * 10)
        print(f"k{i}", flush=True)
    if end == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    """
)


def killed_writer(directory: Path, count: int = 50, *, end: str = "kill") -> set[str]:
    """Run CHILD; return the keys it acknowledged before it was killed (or ended)."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    argv = [sys.executable, "-c", CHILD, str(directory), str(count), end]
    done = subprocess.run(
        argv, capture_output=True, text=True, env=env, timeout=TIMEOUT, check=False
    )
    assert done.returncode == (-signal.SIGKILL if end == "kill" else 0), done.stderr
    acked = set(done.stdout.split())
    assert len(acked) == count
    return acked


def the_journal(directory: Path) -> Path:
    (journal,) = sorted(directory.glob("journal-*.skj"))
    return journal


def records_end(path: Path) -> int:
    return jr.scan_journal(path.read_bytes()).valid_end


def check_cli(directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "snapkv", "check", str(directory)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


@pytest.fixture(scope="module")
def killed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[str]]:
    """A directory a killed writer left, and the keys it acknowledged."""
    directory = tmp_path_factory.mktemp("killed") / "db"
    return directory, killed_writer(directory)


@pytest.fixture
def data(killed: tuple[Path, set[str]], tmp_path: Path) -> Path:
    """A fresh copy of the killed writer's directory (without its LOCK)."""
    target = tmp_path / "db"
    target.mkdir()
    for path in killed[0].iterdir():
        if path.name != "LOCK":
            (target / path.name).write_bytes(path.read_bytes())
    return target


# ------------------------------------------------------------- killed writer


def test_the_killed_writer_left_zeros_after_its_records(data: Path) -> None:
    journal = the_journal(data)
    raw, end = journal.read_bytes(), records_end(journal)
    assert len(raw) > end and raw[end:] == bytes(len(raw) - end)


def test_check_predicts_that_it_opens_and_exits_0(data: Path) -> None:
    journal = the_journal(data)
    size, end = journal.stat().st_size, records_end(journal)
    report = check_directory(data)
    assert report.prediction.outcome == OPENS and report.prediction.lost == ()
    assert report.verdict == "ok" and report.repairs == ()
    (checked,) = report.journals
    assert (checked.status, checked.tail) == ("zeros", jr.TAIL_ZERO)
    assert (checked.valid_end, checked.dropped_bytes) == (end, size - end)

    result = check_cli(data)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "open(): opens, loading everything" in result.stdout
    (line,) = [line for line in result.stdout.splitlines() if line.startswith(journal.name)]
    assert line.split(maxsplit=1)[1] == (
        f"OK  50 records, {end:,} bytes, then {size - end:,} bytes of zeros (preallocated "
        "space left by a process that did not close the store): open() cuts them, nothing is "
        "lost  [replayed]"
    )
    assert "drop" not in result.stdout and "--repair" not in result.stdout
    assert journal.stat().st_size == size  # checking changes nothing


def test_inspect_on_the_killed_writers_journal_says_open_cuts_the_zeros(data: Path) -> None:
    journal = the_journal(data)
    size, end = journal.stat().st_size, records_end(journal)
    result = subprocess.run(
        [sys.executable, "-m", "snapkv", "inspect", str(journal)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (status,) = [line for line in result.stdout.splitlines() if "status" in line]
    assert f"then {size - end:,} bytes of zeros: if this is the newest journal" in status
    assert "open() cuts without loss" in status
    assert "dropped" not in result.stdout


def test_the_next_open_keeps_everything_cuts_the_zeros_and_warns_of_nothing(
    killed: tuple[Path, set[str]], data: Path, caplog: pytest.LogCaptureFixture
) -> None:
    acked = killed[1]
    journal = the_journal(data)
    size, end = journal.stat().st_size, records_end(journal)
    caplog.set_level(logging.INFO, logger="snapkv")
    store = snapkv.open(data)
    try:
        # Cut durably before anything is appended: the file is its records.
        assert journal.stat().st_size == end
        report = store.last_restore
        assert report is not None
        assert report.damaged is False and report.why_empty is None
        assert report.journal_dropped == () and report.skipped == ()
        assert report.journal_zeros_cut == size - end
        assert report.journal_records == len(acked) == len(store)
        assert all(store[key] == f"v{key[1:]}" * 10 for key in acked)
    finally:
        store.close()
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    (said,) = [r.getMessage() for r in caplog.records if "zeros" in r.getMessage()]
    assert said == (
        f"journal recovery: {journal}: 50 records; cut {size - end:,} bytes of zeros after "
        "them (preallocated space left by a process that did not close the store, or writes "
        "a power loss never made durable)"
    )
    assert journal.stat().st_size == end  # a clean close: exactly the records
    assert check_directory(data).ok


def test_a_script_that_ends_without_close_loses_nothing_and_is_not_damaged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "db"
    acked = killed_writer(directory, end="exit")
    journal = the_journal(directory)
    size, end = journal.stat().st_size, records_end(journal)
    assert size > end  # its preallocated space, never cut
    assert check_cli(directory).returncode == 0
    with snapkv.open(directory) as store:
        report = store.last_restore
        assert report is not None and not report.damaged
        assert report.journal_zeros_cut == size - end
        assert {key for key in acked if key in store} == acked
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_an_empty_store_that_was_killed_is_not_empty_by_damage(tmp_path: Path) -> None:
    """Every key deleted, then killed: empty because the data is, not because of the zeros."""
    directory = tmp_path / "db"
    store = snapkv.open(directory)
    store.set("a", "1")
    store.delete("a")
    # What a kill leaves: the journal as it is while open, zeros included.
    raw = the_journal(directory).read_bytes()
    store.close()
    the_journal(directory).write_bytes(raw)
    assert raw.endswith(bytes(64))
    with snapkv.open(directory) as reopened:
        report = reopened.last_restore
        assert report is not None and not report.damaged
        assert report.why_empty == "the stored data is empty"


# ------------------------------------------------------------------ a server


def _command(port: int, *words: str) -> bytes:
    request = f"*{len(words)}\r\n" + "".join(f"${len(w)}\r\n{w}\r\n" for w in words)
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(request.encode())
        reply = b""
        while not _complete(reply):
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
        return reply


def _complete(reply: bytes) -> bool:
    """A simple reply is one line; a bulk string (not the null one) is two."""
    if reply.startswith(b"$") and not reply.startswith(b"$-1"):
        return reply.count(b"\r\n") >= 2
    return reply.endswith(b"\r\n")


def test_a_server_killed_with_kill_9_restarts_without_losses(tmp_path: Path) -> None:
    with serving(tmp_path) as port:
        for i in range(20):
            assert _command(port, "SET", f"k{i}", f"v{i}") == b"+OK\r\n"
        # serving() ends with SIGKILL: no SHUTDOWN, no close().
    journal = the_journal(tmp_path)
    assert journal.stat().st_size > records_end(journal)  # the zeros a kill leaves
    with serving(tmp_path) as port:
        assert _command(port, "GET", "k19") == b"$3\r\nv19\r\n"
        assert _command(port, "DBSIZE") == b":20\r\n"
        log = (tmp_path / "serve.log").read_text(encoding="utf-8")
    assert "DB loaded from disk: 20 keys" in log, log
    assert "loaded with losses" not in log, log
    assert "dropped" not in log, log


# ------------------------------------------------------- still losses, still damage


@pytest.mark.parametrize("tail", ["torn", "garbage"])
def test_a_record_cut_short_is_still_a_loss(
    data: Path, tail: str, caplog: pytest.LogCaptureFixture
) -> None:
    journal = the_journal(data)
    end = records_end(journal)
    record = jr.set_record(0, "late", "never acknowledged")
    raw = journal.read_bytes()[:end]
    if tail == "torn":  # the file ends inside the record's header
        journal.write_bytes(raw + record[:5])
    else:  # the copy stopped inside the record: the rest of it is the preallocated zeros
        journal.write_bytes(raw + record[:20] + bytes(4096))
    report = check_directory(data)
    assert report.prediction.outcome == OPENS_WITH_LOSS
    assert report.verdict == "recoverable-with-loss"
    assert report.journals[0].status == "tail" and report.journals[0].tail == tail
    assert check_cli(data).returncode == 1

    caplog.set_level(logging.INFO, logger="snapkv")
    with snapkv.open(data) as store:
        restored = store.last_restore
        assert restored is not None and restored.damaged
        assert restored.journal_zeros_cut == 0
        (dropped,) = restored.journal_dropped
        assert f"dropped a {tail}" in dropped
        assert "late" not in store and len(store) == 50
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned == [f"journal recovery: {journal}: {dropped.split(': ', 1)[1]}"]


def test_zeros_after_an_older_journals_records_are_still_damage(tmp_path: Path) -> None:
    live, directory = tmp_path / "live", tmp_path / "db"
    directory.mkdir()
    with snapkv.open(live) as store:
        store.set("a", "1")
        store.save()
        store.set("b", "2")
        store.save()  # the older generation and the journal it needs are kept (keep=1)
        store.set("c", "3")
        for path in live.iterdir():  # the files as a kill would leave them
            if path.name != "LOCK":
                (directory / path.name).write_bytes(path.read_bytes())
    *_, newest = sorted(directory.glob("snapshot-*.skv"))
    newest.unlink()  # the older generation replays both journals
    older, _newer = sorted(directory.glob("journal-*.skj"))
    older.write_bytes(older.read_bytes() + bytes(4096))
    report = check_directory(directory)
    assert report.prediction.outcome == REFUSES
    assert report.prediction.check == "tail-not-newest"
    with pytest.raises(CorruptJournalError) as raised:
        snapkv.open(directory)
    assert raised.value.check == "tail-not-newest"
