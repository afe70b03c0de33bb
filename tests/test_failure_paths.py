"""Failure paths, syscall order and lock coverage: one test per promise that could break quietly."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import snapkv
from snapkv import FileMedium, MediumError, MemoryMedium, Store, codec
from snapkv.media import file as file_medium

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


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


# ------------------------------------------------- FileMedium error paths


def test_unreadable_generation_is_a_medium_error(tmp_path: Path) -> None:
    with snapkv.open(tmp_path) as store:
        store["k"] = "old"
    (tmp_path / "snapshot-0000000000000009.skv").mkdir()  # read() -> IsADirectoryError
    medium = FileMedium(tmp_path)
    with pytest.raises(MediumError, match="cannot read"):
        medium.read()
    medium.close()
    with pytest.raises(MediumError):
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


# ------------------------------------------------------------ Store restore


class VanishingNewest(MemoryMedium):
    """The newest generation is listed but gone when read (pruned meanwhile)."""

    def read(self, generation: str | None = None) -> bytes | None:
        if generation is not None and generation == self.generations()[0]:
            return None
        return super().read(generation)


def test_restore_skips_a_generation_removed_since_it_was_listed() -> None:
    medium = VanishingNewest(keep=1)
    medium.publish([codec.encode({"k": "older"})])
    medium.publish([codec.encode({"k": "newest"})])
    store = Store(medium)
    report = store.restore()
    assert store.get("k") == "older"
    assert report.generation == medium.generations()[1]


class CannotQuarantine(MemoryMedium):
    def quarantine(self, generation: str) -> str:
        raise MediumError("read-only medium")


def test_fallback_restores_even_if_the_bad_generation_cannot_be_set_aside() -> None:
    medium = CannotQuarantine(keep=1)
    medium.publish([codec.encode({"k": "good"})])
    medium.publish([b"garbage"])
    store = Store(medium)
    report = store.restore(fallback=True)
    assert store.get("k") == "good"
    assert "could not be moved aside: read-only medium" in report.skipped[0][1]


# ----------------------------------------------- the locks, deterministically


class BlockingMedium(MemoryMedium):
    """publish() waits until released, so a test can act while a publish is running."""

    def __init__(self) -> None:
        super().__init__(keep=5)
        self.publishing = threading.Event()
        self.release = threading.Event()

    def publish(self, pieces: Iterable[bytes]) -> None:
        data = b"".join(pieces)
        self.publishing.set()
        assert self.release.wait(10)
        super().publish([data])


@contextmanager
def publish_in_progress(store: Store, medium: BlockingMedium, operation: str) -> Iterator[None]:
    thread = threading.Thread(target=getattr(store, operation))
    thread.start()
    assert medium.publishing.wait(10)
    try:
        yield
    finally:
        medium.release.set()
        thread.join(10)


def blocks(target: object, *args: object) -> tuple[bool, threading.Thread]:
    thread = threading.Thread(target=target, args=args)  # type: ignore[arg-type]
    thread.start()
    thread.join(0.3)
    return thread.is_alive(), thread


@pytest.mark.parametrize("operation", ["close", "restore"])
def test_close_and_restore_wait_for_a_running_save(operation: str) -> None:
    medium = BlockingMedium()
    store = Store(medium)
    store["k"] = "v"
    with publish_in_progress(store, medium, "save"):
        waited, thread = blocks(getattr(store, operation))
        assert waited, f"{operation} ran while a save was publishing"
    thread.join(10)


@pytest.mark.parametrize(
    "write", ["delete", "__delitem__", "clear", "pop", "popitem", "setdefault", "update"]
)
def test_every_mutation_waits_for_a_running_shutdown(write: str) -> None:
    medium = BlockingMedium()
    store = Store(medium)
    store["k"] = "v"
    args = {
        "delete": ("k",),
        "__delitem__": ("k",),
        "pop": ("k", None),
        "setdefault": ("k", "x"),
        "update": ({"k": "x"},),
    }.get(write, ())

    def call() -> None:
        with contextlib.suppress(KeyError):
            getattr(store, write)(*args)

    with publish_in_progress(store, medium, "shutdown"):
        waited, thread = blocks(call)
        assert waited, f"{write} did not wait for shutdown's lock"
    thread.join(10)
    assert codec.decode(medium.read() or b"") == {"k": "v"}, "the snapshot saw the write"


def test_run_operations_on_a_shared_store_goes_through_its_lock() -> None:
    medium = BlockingMedium()
    store = Store(medium)
    with publish_in_progress(store, medium, "shutdown"):
        waited, thread = blocks(lambda: snapkv.run_operations([("set", "k", "v")], store=store))
        assert waited, "run_operations wrote to a shared store without its lock"
    thread.join(10)
    assert store.get("k") == "v", "the write was lost in the dict being shut down"


# ------------------------------------------------------------------ codec


@contextmanager
def chunk_chars(limit: int) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(codec, "MAX_CHUNK_CHARS", limit)
        yield


def test_a_two_entry_chunk_over_the_limit_is_split() -> None:
    with chunk_chars(60):
        data = codec.encode({"a": "x" * 50, "b": "y" * 50})
    assert [c.entries for c in codec.scan(data).chunks] == [1, 1]


def test_a_chunk_over_the_limit_is_split_in_halves() -> None:
    # FORMAT.md section 6: the first floor(N/2) entries and the rest.
    with chunk_chars(50):
        data = codec.encode({f"k{i}": "v" * 20 for i in range(4)})
    assert [c.entries for c in codec.scan(data).chunks] == [2, 2]


# -------------------------------------------------------------------- CLI


def cli(*args: object, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "snapkv", *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_closed_stdout_exits_141() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "snapkv", "run", str(EXAMPLES / "session-cache.jsonl")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as process:
        assert process.stdout is not None
        process.stdout.read(1)
        process.stdout.close()
        assert process.wait(timeout=60) == 141


def test_run_on_a_directory_that_is_a_file_exits_1(tmp_path: Path) -> None:
    ops = tmp_path / "ops.json"
    ops.write_text('[["get", "k"]]')
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    result = cli("run", ops, "--dir", not_a_dir)
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"snapkv run: error: cannot open snapshot directory {not_a_dir}"
    )


def test_inspect_reports_an_unreadable_generation_and_exits_1(tmp_path: Path) -> None:
    with snapkv.open(tmp_path) as store:
        store["k"] = "v"
    (tmp_path / "snapshot-0000000000000009.skv").mkdir()
    result = cli("inspect", tmp_path)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0] == str(tmp_path / "snapshot-0000000000000009.skv")
    assert lines[1].startswith("  status     UNREADABLE: ")
    assert lines[3].split()[:2] == ["status", "ok"]


@pytest.mark.parametrize(
    "text", ["[" * 100_000, '[["get", ' + "1" * 5_000 + "]]"], ids=["deep-nesting", "huge-int"]
)
def test_unusable_json_exits_2_with_one_line(tmp_path: Path, text: str) -> None:
    ops = tmp_path / "ops.json"
    ops.write_text(text)
    result = cli("run", ops)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"snapkv run: error: {ops}")
    assert "Traceback" not in result.stderr
