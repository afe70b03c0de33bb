"""The file medium's preallocated, memory-mapped journals (FORMAT.md section J2).

A journal file is longer than its records while it is written: the space
after them is allocated ahead (``posix_fallocate``) and zero. What must
hold, each checked here with real files and, for crashes, a real process
killed with SIGKILL:

* a killed writer loses no acknowledged write, and the zeros it leaves are a
  zero-filled tail that the next open cuts, records appended after it, and
  reports as no loss;
* only the newest journal that holds records ends in zeros: rotation cuts the
  journal it leaves before any record reaches the next one;
* a clean close leaves the file exactly as long as its records;
* a full disk is a MediumError from the allocation, before anything is
  written: the write is refused, memory unchanged, the process alive, and
  every write acknowledged before it is still there after a reopen;
* a forked child lets go of its copy of the mapping without touching the file.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import snapkv
from snapkv import FileMedium, MediumError
from snapkv import journal as jr
from snapkv.check import check_directory
from snapkv.media import file as file_medium
from snapkv.media import journal_file

SRC = Path(__file__).resolve().parent.parent / "src"

# Writes ``count`` keys to a journaled store (the given fsync policy),
# optionally saving (a journal rotation) after each third (with keep=1 the
# second save keeps the journal the first one started), prints each
# acknowledged key, then kills itself with SIGKILL: no close, no sync.
CHILD = textwrap.dedent(
    """
    import os, signal, sys
    import snapkv

    directory, fsync, count, rotate = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    store = snapkv.open(directory, journal=True, fsync=fsync)
    for i in range(count):
        if rotate == "rotate" and i in (count // 3, 2 * count // 3):
            store.save()
        store.set(f"k{i}", f"v{i}" * 20)
        print(f"k{i}", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def _killed_writer(directory: Path, count: int, *, fsync: str, rotate: bool = False) -> set[str]:
    """Run CHILD; return the keys it acknowledged before it was killed."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    argv = [sys.executable, "-c", CHILD, str(directory), fsync, str(count)]
    argv.append("rotate" if rotate else "-")
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == -signal.SIGKILL, done.stderr
    return set(done.stdout.split())


def _journals(directory: Path) -> list[Path]:
    return sorted(directory.glob("journal-*.skj"))


def _records_end(path: Path) -> int:
    """Where the records of the journal at ``path`` end, by the reader's own rules."""
    return jr.scan_journal(path.read_bytes()).valid_end


# ------------------------------------------------------------ killed writers


@pytest.mark.parametrize("fsync", ["everysec", "always"])
def test_a_killed_writer_leaves_zeros_that_the_next_open_cuts(tmp_path: Path, fsync: str) -> None:
    directory = tmp_path / "db"
    acked = _killed_writer(directory, 300, fsync=fsync)
    assert len(acked) == 300
    (journal,) = _journals(directory)
    data = journal.read_bytes()
    end = _records_end(journal)
    # The preallocated space the process never wrote: zeros to the end.
    assert len(data) > end and data[end:] == bytes(len(data) - end)
    scan = jr.scan_journal(data)
    assert scan.tail == jr.TAIL_ZERO and len(scan.ops) == 300
    assert check_directory(directory).prediction.outcome == "opens"

    store = snapkv.open(directory, journal=True)
    try:
        assert {k for k in acked if store.get(k) == f"v{k[1:]}" * 20} == acked
        report = store.last_restore
        assert report is not None and not report.damaged and report.journal_dropped == ()
        assert report.journal_zeros_cut == len(data) - end
        assert journal.stat().st_size == end  # cut before anything is appended
        store.set("after", "the cut")  # appended where the records ended
    finally:
        store.close()
    # A clean close: exactly the records, and a directory that opens as is.
    assert journal.stat().st_size == _records_end(journal)
    assert check_directory(directory).verdict == "ok"
    with snapkv.open(directory, journal=True) as store:
        assert store.get("after") == "the cut" and len(store) == 301


def test_kills_in_a_row_keep_every_acknowledged_write(tmp_path: Path) -> None:
    directory = tmp_path / "db"
    for _ in range(3):
        # Each child rewrites k0..k199 and is killed; the zeros of the last
        # are cut by the next open, so the records stay one run.
        assert len(_killed_writer(directory, 200, fsync="everysec")) == 200
    store = snapkv.open(directory, journal=True)
    try:
        assert store.last_restore is not None and store.last_restore.journals == (1,)
        assert len(store) == 200 and all(store[f"k{i}"] == f"v{i}" * 20 for i in range(200))
    finally:
        store.close()


def test_rotation_cuts_the_journal_it_leaves_so_only_the_newest_ends_in_zeros(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "db"
    acked = _killed_writer(directory, 400, fsync="everysec", rotate=True)
    older, newest = _journals(directory)
    assert older.stat().st_size == _records_end(older)  # cut at the rotation
    assert newest.stat().st_size > _records_end(newest)  # the killed writer's zeros
    # Recovery drops the tail of the newest journal only: it opens.
    with snapkv.open(directory, journal=True) as store:
        assert {k for k in acked if k in store} == acked


# ----------------------------------------------------------- clean files


def test_a_clean_close_leaves_exactly_the_records(tmp_path: Path) -> None:
    store = snapkv.open(tmp_path / "db", journal=True, fsync="no")
    store.set("k", "v")
    (journal,) = _journals(tmp_path / "db")
    assert journal.stat().st_size >= 1 << 20  # preallocated while open
    medium = store.medium
    assert isinstance(medium, FileMedium)
    # The medium's own reader sees the records; a reader without the lock
    # (snapkv check) sees what a crash now would leave.
    assert medium.read_journal(1) == jr.header(1) + jr.set_record(0, "k", "v")
    assert file_medium.DirectoryReader(tmp_path / "db").read_journal(1) == journal.read_bytes()
    store.close()
    assert journal.read_bytes() == jr.header(1) + jr.set_record(0, "k", "v")


def test_a_journal_is_preallocated_only_once_it_holds_a_record(tmp_path: Path) -> None:
    medium = FileMedium(tmp_path)
    file = medium.create_journal(1, jr.header(1))
    path = medium.journal_path(1)
    assert path.stat().st_size == jr.HEADER_SIZE
    record = jr.set_record(0, "k", "v")
    file.write(record)
    assert path.stat().st_size >= 1 << 20 and file.size == jr.HEADER_SIZE + len(record)
    file.close()
    assert path.read_bytes() == jr.header(1) + record
    medium.close()


def test_records_larger_than_a_step_and_across_steps_are_written_whole(tmp_path: Path) -> None:
    medium = FileMedium(tmp_path)
    file = medium.create_journal(1, jr.header(1))
    records = [jr.set_record(0, f"k{i}", "x" * n) for i, n in enumerate((3 << 20, 10, 700_000) * 3)]
    for record in records:
        file.write(record)
    assert medium.read_journal(1) == jr.header(1) + b"".join(records)
    file.close()
    scan = jr.scan_journal(medium.journal_path(1).read_bytes())
    assert scan.tail == jr.TAIL_CLEAN and len(scan.ops) == len(records)
    medium.close()


# ------------------------------------------------------------ a full disk


def _fallocate_fails_after(
    monkeypatch: pytest.MonkeyPatch, calls: int
) -> list[tuple[int, int, int]]:
    """Let ``calls`` allocations through, then fail every later one with ENOSPC."""
    seen: list[tuple[int, int, int]] = []
    real = os.posix_fallocate

    def posix_fallocate(fd: int, offset: int, length: int) -> None:
        seen.append((fd, offset, length))
        if len(seen) > calls:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd, offset, length)

    monkeypatch.setattr(os, "posix_fallocate", posix_fallocate)
    return seen


def test_a_full_disk_refuses_the_write_loses_nothing_and_recovers_with_room(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "db"
    store = snapkv.open(directory, journal=True, fsync="everysec")
    calls = _fallocate_fails_after(monkeypatch, 1)
    big = "v" * 200_000  # the first step (1 MiB) holds five
    acked = []
    with pytest.raises(MediumError, match=r"cannot allocate .* No space left on device"):
        for i in range(100):
            store.set(f"k{i}", big)
            acked.append(f"k{i}")
    # The step, then only the pages the record needs, were asked for.
    assert len(calls) == 3 and calls[2][2] < calls[1][2]
    assert 3 <= len(acked) <= 6
    refused = f"k{len(acked)}"
    assert refused not in store  # memory unchanged
    assert sorted(store.keys()) == sorted(acked)
    # Nothing was written: the writer stays healthy, and once there is
    # room again (space freed), writes go on without a save or a restart.
    assert store._writer.failure is None
    monkeypatch.undo()
    store.set(refused, big)
    acked.append(refused)
    store.close()
    (journal,) = _journals(directory)
    assert journal.stat().st_size == _records_end(journal)  # cut back on close
    with snapkv.open(directory, journal=True) as reopened:
        assert sorted(reopened.keys()) == sorted(acked)
        assert all(reopened[k] == big for k in acked)


def test_a_nearly_full_disk_still_takes_a_record_that_fits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A whole preallocation step does not fit, the record's own pages do: it is written."""
    medium = FileMedium(tmp_path)
    file = medium.create_journal(1, jr.header(1))
    writer = jr.JournalWriter(file, "no")
    real = os.posix_fallocate
    asked: list[int] = []

    def posix_fallocate(fd: int, offset: int, length: int) -> None:
        asked.append(length)
        if length > 64 * 1024:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd, offset, length)

    monkeypatch.setattr(os, "posix_fallocate", posix_fallocate)
    record = jr.set_record(0, "k", "v")
    writer.append(record)
    assert writer.failure is None and len(asked) == 2 and asked[1] <= 64 * 1024
    monkeypatch.undo()
    writer.close()
    assert medium.journal_path(1).read_bytes() == jr.header(1) + record
    medium.close()


def test_a_full_disk_at_the_first_record_refuses_it_and_takes_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    medium = FileMedium(tmp_path)
    file = medium.create_journal(1, jr.header(1))
    writer = jr.JournalWriter(file, "no")
    _fallocate_fails_after(monkeypatch, 0)
    with pytest.raises(MediumError, match="cannot allocate"):
        writer.append(jr.set_record(0, "k", "v"))
    assert writer.failure is None and writer.written == jr.HEADER_SIZE
    assert medium.read_journal(1) == jr.header(1)
    monkeypatch.undo()
    record = jr.set_record(0, "k2", "v2")
    writer.append(record)
    writer.close()
    assert medium.journal_path(1).read_bytes() == jr.header(1) + record
    medium.close()


def test_a_failed_cut_at_close_is_a_medium_error_and_releases_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    medium = FileMedium(tmp_path)
    file = medium.create_journal(1, jr.header(1))
    file.write(jr.set_record(0, "k", "v"))

    def fail(_file: object, _size: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(journal_file._fs, "truncate_durably", fail)
    with pytest.raises(MediumError, match=r"cannot cut journal .* Input/output error"):
        file.close()
    file.close()  # released: idempotent
    with pytest.raises(MediumError, match="closed"):
        file.write(b"x")
    monkeypatch.undo()
    medium.close()
    # What a crash would have left: a zero-filled tail, which recovery cuts.
    scan = jr.scan_journal((tmp_path / "journal-0000000000000001.skj").read_bytes())
    assert scan.tail == jr.TAIL_ZERO and len(scan.ops) == 1


# --------------------------------------------------------------- handles


def test_handles_on_one_journal_share_its_end(tmp_path: Path) -> None:
    medium = FileMedium(tmp_path)
    first = medium.create_journal(1, jr.header(1))
    first.write(b"a" * 10)
    second = medium.open_journal(1)
    assert second.size == first.size == 34
    second.write(b"b" * 5)
    first.write(b"c" * 5)
    assert medium.read_journal(1) == jr.header(1) + b"a" * 10 + b"b" * 5 + b"c" * 5
    first.close()  # not the last handle: nothing is cut under the other
    second.write(b"d")
    second.close()
    assert medium.journal_path(1).read_bytes() == (
        jr.header(1) + b"a" * 10 + b"b" * 5 + b"c" * 5 + b"d"
    )
    medium.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_leaves_the_parents_journal_alone(tmp_path: Path) -> None:
    directory = tmp_path / "db"
    store = snapkv.open(directory, journal=True, fsync="no")
    store.set("before", "fork")
    pid = os.fork()
    if pid == 0:  # the child: fork hooks have let go of the journal; exit at once
        os._exit(0)
    assert os.waitpid(pid, 0)[1] == 0
    # The parent writes on, past where the child saw the journal end.
    for i in range(20_000):
        store.set(f"k{i}", "v" * 64)
    store.close()
    with snapkv.open(directory, journal=True) as reopened:
        assert reopened["before"] == "fork" and len(reopened) == 20_001


def test_a_failed_cut_when_the_medium_closes_still_releases_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    medium = FileMedium(tmp_path)
    file = medium.create_journal(1, jr.header(1))
    file.write(jr.set_record(0, "k", "v"))

    def fail(_file: object, _size: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(journal_file._fs, "truncate_durably", fail)
    with pytest.raises(MediumError, match="cannot cut journal"):
        medium.close()
    with pytest.raises(MediumError, match="closed"):
        file.write(b"x")
    monkeypatch.undo()
    FileMedium(tmp_path).close()  # the lock was released


# ------------------------------------------- file systems that cannot map


@pytest.mark.parametrize("failing", ["posix_fallocate", "mmap"])
def test_a_file_system_that_cannot_preallocate_or_map_gets_pwrite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    def unsupported(*_args: object, **_kwargs: object) -> None:
        raise OSError(errno.EOPNOTSUPP if failing == "posix_fallocate" else errno.ENODEV, "no")

    if failing == "mmap":
        monkeypatch.setattr(journal_file.mmap, "mmap", unsupported)
    else:
        monkeypatch.setattr(os, "posix_fallocate", unsupported)
    store = snapkv.open(tmp_path / "db", journal=True, fsync="everysec")
    for i in range(2000):
        store.set(f"k{i}", "v" * 700)  # past the first step
    (journal,) = _journals(tmp_path / "db")
    medium = store.medium
    assert isinstance(medium, FileMedium)
    data = medium.read_journal(1)
    assert data is not None and jr.scan_journal(data).tail == jr.TAIL_CLEAN
    if failing == "posix_fallocate":  # nothing preallocated: the file is its records
        assert journal.stat().st_size == len(data)
    store.close()
    assert journal.stat().st_size == _records_end(journal)
    monkeypatch.undo()
    with snapkv.open(tmp_path / "db", journal=True) as reopened:
        assert len(reopened) == 2000 and reopened["k1999"] == "v" * 700


def test_a_write_torn_by_a_full_disk_is_cut_before_writes_move_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pwrite (no preallocation) takes half a record, then the disk is full.

    The writer fails; a save switches to the next journal but its snapshot
    fails too, and later writes are acknowledged in the next journal. The
    failed journal must have been cut back to its last whole record, or
    its torn record would be damage before the tail and refuse the open
    that should bring those later writes back.
    """
    directory = tmp_path / "db"
    monkeypatch.delattr(os, "posix_fallocate")  # the pwrite path (_Appender)
    store = snapkv.open(directory, journal=True, fsync="no")
    for i in range(10):
        store.set(f"k{i}", "v" * 100)
    real_pwrite = os.pwrite
    calls: list[int] = []

    def pwrite(fd: int, data: bytes | memoryview, offset: int) -> int:
        calls.append(len(data))
        if len(calls) == 1:
            return real_pwrite(fd, bytes(data)[: len(data) // 2], offset)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "pwrite", pwrite)
    with pytest.raises(MediumError, match="No space left on device"):
        store.set("torn", "v" * 100)
    monkeypatch.setattr(os, "pwrite", real_pwrite)
    medium = store.medium

    def full(_pieces: object) -> None:
        raise MediumError("cannot publish: No space left on device")

    monkeypatch.setattr(medium, "publish", full)
    with pytest.raises(MediumError, match="cannot publish"):
        store.save()
    for i in range(10, 20):
        store.set(f"k{i}", "w" * 100)  # acknowledged, in the next journal
    copy = tmp_path / "copy"  # what a kill -9 leaves, read while the store is open
    copy.mkdir()
    for path in directory.iterdir():
        if path.name != "LOCK":
            (copy / path.name).write_bytes(path.read_bytes())
    assert check_directory(copy).prediction.outcome == "opens"
    with snapkv.open(copy, journal=True) as reopened:
        assert "torn" not in reopened
        assert sorted(reopened.keys()) == sorted(f"k{i}" for i in range(20))
    monkeypatch.undo()
    store.close()
