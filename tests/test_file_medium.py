"""FileMedium: the directory it owns, the order of its system calls, its errors, its lock.

The Medium contract (publish, read, generations, quarantine, journals) is
checked for every medium by the conformance kit (``test_media_contract.py``);
this file holds what only a directory has: fsync and rename order, OS errors
turned into MediumError, names of generations, of journals and of files set
aside, and the ``flock`` that keeps one writer per directory, in this process
and across processes (the lock is held by a real child process).
"""

from __future__ import annotations

import errno
import gc
import logging
import os
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import snapkv
from snapkv import FileMedium, MediumError, StoreLockedError, codec
from snapkv import journal as jr
from snapkv.media import file as file_medium

# ----------------------------------------------------------- syscall order


@pytest.fixture
def syscalls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[object, ...]]:
    """Record fsync (file size at that moment, or 'dir') and replace, in order."""
    events: list[tuple[object, ...]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        st = os.fstat(fd)
        events.append(
            ("fsync-dir", st.st_ino) if stat.S_ISDIR(st.st_mode) else ("fsync-file", st.st_size)
        )
        real_fsync(fd)

    def replace(src: object, dst: object) -> None:
        events.append(("replace", Path(str(src)).name[:5], Path(str(dst)).name))
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return events


def test_publish_syncs_every_byte_then_renames_then_syncs_the_directory(
    tmp_path: Path, syscalls: list[tuple[object, ...]]
) -> None:
    medium = FileMedium(tmp_path)
    blob = codec.encode({"k": "v" * 100})
    syscalls.clear()
    medium.publish([blob[:10], blob[10:]])
    assert syscalls == [
        ("fsync-file", len(blob)),  # every byte reached the OS before the fsync
        ("replace", ".tmp-", "snapshot-0000000000000001.skv"),
        ("fsync-dir", tmp_path.stat().st_ino),  # after the rename, not before
    ]
    medium.close()


def test_quarantine_syncs_the_directory_after_the_rename(
    tmp_path: Path, syscalls: list[tuple[object, ...]]
) -> None:
    medium = FileMedium(tmp_path)
    medium.publish([b"x"])
    syscalls.clear()
    medium.quarantine("snapshot-0000000000000001.skv")
    assert syscalls == [
        ("replace", "snaps", "snapshot-0000000000000001.skv.corrupt"),
        ("fsync-dir", tmp_path.stat().st_ino),
    ]
    medium.close()


def test_a_new_directory_is_made_durable_in_its_parent(
    tmp_path: Path, syscalls: list[tuple[object, ...]]
) -> None:
    FileMedium(tmp_path / "new").close()
    assert ("fsync-dir", tmp_path.stat().st_ino) in syscalls


# ------------------------------------------------------------- error paths


def test_unreadable_generation_is_a_medium_error(tmp_path: Path) -> None:
    with snapkv.open(tmp_path) as store:
        store["k"] = "old"
    (tmp_path / "snapshot-0000000000000009.skv").mkdir()  # read() -> IsADirectoryError
    medium = FileMedium(tmp_path)
    with pytest.raises(MediumError, match="cannot read"):
        medium.read()
    medium.close()
    with pytest.raises(MediumError, match=r"cannot read .*snapshot-0000000000000009\.skv"):
        snapkv.open(tmp_path)
    with snapkv.open(tmp_path, fallback=True) as store:
        assert store.get("k") == "old"


def test_listing_a_vanished_directory_is_a_medium_error(tmp_path: Path) -> None:
    medium = FileMedium(tmp_path / "d")
    shutil.rmtree(tmp_path / "d")
    with pytest.raises(MediumError, match="cannot list"):
        medium.generations()
    medium.close()


def test_quarantine_of_a_missing_generation_is_a_medium_error(tmp_path: Path) -> None:
    medium = FileMedium(tmp_path)
    with pytest.raises(MediumError, match="cannot move corrupt snapshot"):
        medium.quarantine("snapshot-0000000000000009.skv")
    medium.close()


@pytest.mark.parametrize(
    "name", ["LOCK", "../LOCK", "snapshot-1.skv", "snapshot-0000000000000001.skv.corrupt"]
)
def test_names_that_are_not_generations_are_refused(tmp_path: Path, name: str) -> None:
    medium = FileMedium(tmp_path)
    with pytest.raises(ValueError, match="not a snapshot generation name"):
        medium.read(name)
    with pytest.raises(ValueError, match="not a snapshot generation name"):
        medium.quarantine(name)
    medium.close()


def test_a_closed_file_medium_refuses_to_publish_read_or_quarantine(tmp_path: Path) -> None:
    medium = FileMedium(tmp_path)
    medium.publish([b"x"])
    medium.close()
    for call in (
        lambda: medium.publish([b"y"]),
        medium.read,
        lambda: medium.quarantine("snapshot-0000000000000001.skv"),
    ):
        with pytest.raises(MediumError, match="closed"):
            call()
    assert sorted(os.listdir(tmp_path)) == ["LOCK", "snapshot-0000000000000001.skv"]


def test_an_old_generation_that_cannot_be_removed_is_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    medium = FileMedium(tmp_path, keep=0)
    (tmp_path / "snapshot-0000000000000001.skv").mkdir()  # unlink() fails with EISDIR
    (tmp_path / "snapshot-0000000000000001.skv" / "f").touch()
    with caplog.at_level(logging.WARNING, logger="snapkv"):
        medium.publish([b"new"])
    assert medium.read("snapshot-0000000000000002.skv") == b"new"
    assert any("cannot remove old snapshot" in r.getMessage() for r in caplog.records)
    medium.close()


def test_a_failure_after_locking_releases_the_lock_even_while_the_error_is_alive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_listdir(path: object) -> list[str]:
        raise OSError(errno.EIO, "Input/output error")

    (tmp_path / "data").mkdir()
    with monkeypatch.context() as patch:
        patch.setattr(file_medium.os, "listdir", broken_listdir)
        with pytest.raises(MediumError, match="cannot prepare") as info:
            FileMedium(tmp_path / "data")
    # info's traceback keeps the half-built medium alive: only an explicit close
    # (not the garbage-collection finalizer) can have released the lock here.
    FileMedium(tmp_path / "data").close()
    del info


# ------------------------------------------------- generation names and keep


def test_quarantined_files_are_never_overwritten(tmp_path: Path) -> None:
    medium = FileMedium(tmp_path, keep=2)
    medium.publish([b"good"])
    medium.publish([b"bad one"])
    first = medium.quarantine(medium.generations()[0])
    medium.publish([b"bad two"])
    second = medium.quarantine(medium.generations()[0])
    assert first != second
    assert Path(first).read_bytes() == b"bad one"
    assert Path(second).read_bytes() == b"bad two"
    medium.close()


def test_generation_numbers_grow_past_quarantined_ones(tmp_path: Path) -> None:
    medium = FileMedium(tmp_path)
    medium.publish([b"a"])
    medium.publish([b"b"])
    medium.quarantine(medium.generations()[0])
    medium.publish([b"c"])
    assert medium.generations()[0] == "snapshot-0000000000000003.skv"
    medium.close()


@pytest.mark.parametrize("keep", [1.5, "1", None])
def test_keep_must_be_an_integer(tmp_path: Path, keep: object) -> None:
    with pytest.raises(TypeError, match="cannot be interpreted as an integer"):
        FileMedium(tmp_path, keep=keep)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="cannot be interpreted as an integer"):
        snapkv.MemoryMedium(keep=keep)  # type: ignore[arg-type]


# ----------------------------------------------------------- journal files


def test_file_journals_are_named_and_numbered_apart_from_snapshots(tmp_path: Path) -> None:
    medium = FileMedium(tmp_path / "d")
    medium.create_journal(7, jr.header(7)).close()
    assert (tmp_path / "d" / "journal-0000000000000007.skj").read_bytes() == jr.header(7)
    assert medium.describe_journal(7) == str(tmp_path / "d" / "journal-0000000000000007.skj")
    medium.publish([b"snapshot"])
    assert medium.generations() == ["snapshot-0000000000000001.skv"]
    (tmp_path / "d" / "journal-12.skj").write_bytes(b"not ours")  # wrong width: ignored
    assert medium.journal_ids() == [7]
    medium.close()


def test_file_medium_removes_an_unfinished_journal_and_closes_its_journals(
    tmp_path: Path,
) -> None:
    leftover = tmp_path / "d" / ".tmp-journal-0000000000000003-99"
    leftover.parent.mkdir()
    leftover.write_bytes(b"\x89SKJ")
    medium = FileMedium(tmp_path / "d")
    assert not leftover.exists()
    assert medium.journal_ids() == []
    file = medium.create_journal(3, jr.header(3))
    medium.close()  # releases the lock: no write may land after it
    with pytest.raises(MediumError, match="closed"):
        file.write(jr.set_record(0, "a", "1"))
    with pytest.raises(MediumError, match="closed"):
        medium.journal_ids()


def test_file_medium_errors_name_the_path(tmp_path: Path) -> None:
    medium = FileMedium(tmp_path / "d")
    file = medium.create_journal(1, jr.header(1))
    (tmp_path / "d" / "journal-0000000000000001.skj").unlink()
    with pytest.raises(MediumError, match=r"journal-0000000000000001\.skj"):
        medium.open_journal(1)
    (tmp_path / "d" / "journal-0000000000000002.skj").mkdir()  # unreadable as a file
    with pytest.raises(MediumError, match=r"journal-0000000000000002\.skj"):
        medium.read_journal(2)
    with pytest.raises(MediumError, match=r"journal-0000000000000002\.skj"):
        medium.create_journal(2, jr.header(2))
    file.close()
    medium.close()


# --------------------------------------------------- the lock, in this process


def test_an_unclosed_medium_releases_its_lock_when_collected(tmp_path: Path) -> None:
    medium = FileMedium(tmp_path)
    del medium
    gc.collect()
    FileMedium(tmp_path).close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_keep_the_directory_locked(tmp_path: Path) -> None:
    store = snapkv.open(tmp_path)
    started_read, started_write = os.pipe()
    release_read, release_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: say it runs (fork hooks have run by now), then wait
        os.write(started_write, b"!")
        os.read(release_read, 1)
        os._exit(0)
    try:
        assert os.read(started_read, 1) == b"!"
        store.close()
        snapkv.open(tmp_path).close()  # the child is alive, and holds nothing
    finally:
        os.write(release_write, b"!")
        os.waitpid(pid, 0)
        for fd in (started_read, started_write, release_read, release_write):
            os.close(fd)


# -------------------------------------------------- the lock, across processes

# Opens the directory, saves one key, says "ready", then holds the lock until
# its stdin closes (or it is killed). It never closes the Store itself.
HOLDER = """
import sys
import snapkv

store = snapkv.open(sys.argv[1])
store["child"] = "1"
store.save()
print("ready", flush=True)
sys.stdin.read()
"""

# Tries to open the directory and prints what happened.
PROBE = """
import sys
import snapkv

try:
    snapkv.open(sys.argv[1]).close()
except snapkv.StoreLockedError as exc:
    print(exc)
    sys.exit(3)
print("opened")
"""

TIMEOUT = 30


@pytest.fixture
def spawn_holder() -> Iterator[Callable[[Path], subprocess.Popen[str]]]:
    children: list[subprocess.Popen[str]] = []

    def spawn(directory: Path) -> subprocess.Popen[str]:
        child = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(directory)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        children.append(child)
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n", "the holder did not start"
        return child

    yield spawn
    for child in children:
        if child.poll() is None:
            child.kill()
        child.wait(TIMEOUT)
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                stream.close()


def probe(directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PROBE, str(directory)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def test_other_process_holds_the_lock_until_it_exits(
    tmp_path: Path, spawn_holder: Callable[[Path], subprocess.Popen[str]]
) -> None:
    child = spawn_holder(tmp_path)
    with pytest.raises(StoreLockedError, match=f"lock held by pid {child.pid}\\b"):
        snapkv.open(tmp_path)
    assert child.stdin is not None
    child.stdin.close()  # the child exits without closing its Store
    assert child.wait(TIMEOUT) == 0
    with snapkv.open(tmp_path) as store:
        assert dict(store.items()) == {"child": "1"}


def test_lock_dies_with_a_killed_process(
    tmp_path: Path, spawn_holder: Callable[[Path], subprocess.Popen[str]]
) -> None:
    child = spawn_holder(tmp_path)
    with pytest.raises(StoreLockedError, match=str(child.pid)):
        snapkv.open(tmp_path)
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait(TIMEOUT) == -signal.SIGKILL
    with snapkv.open(tmp_path) as store:
        assert dict(store.items()) == {"child": "1"}


def test_other_process_is_locked_out_while_this_one_holds(tmp_path: Path) -> None:
    store = snapkv.open(tmp_path)
    result = probe(tmp_path)
    assert result.returncode == 3, result.stderr
    assert f"lock held by pid {os.getpid()}" in result.stdout
    store.close()
    result = probe(tmp_path)
    assert (result.returncode, result.stdout) == (0, "opened\n"), result.stderr
