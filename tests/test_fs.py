"""The durable file-system recipes of ``snapkv._fs``: what each leaves, on success and failure.

The order of the system calls (fsync before rename, directory after) is
checked where the FileMedium uses the recipes, in ``test_file_medium.py``;
this file checks each recipe's contract, failures included.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from snapkv import _fs


class Boom(Exception):
    """Raised from the chunks of an atomic write, as an encoder error would be."""


def fail_directory_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)


# ------------------------------------------------------------------ atomic_write


def test_atomic_write_writes_the_concatenation_and_returns_its_size(tmp_path: Path) -> None:
    chunks = [b"ab", memoryview(b"cd"), b"", b"e" * 10_000]
    size = _fs.atomic_write(tmp_path, "file", chunks, temp_name=".tmp-x")
    assert (tmp_path / "file").read_bytes() == b"abcd" + b"e" * 10_000
    assert size == 10_004
    assert sorted(os.listdir(tmp_path)) == ["file"]


def test_atomic_write_replaces_the_file_and_a_leftover_temporary(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"old")
    (tmp_path / ".tmp-x").write_bytes(b"left by an earlier failure")
    _fs.atomic_write(str(tmp_path), "file", [b"new"], temp_name=".tmp-x")
    assert (tmp_path / "file").read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path)) == ["file"]


def test_an_error_from_the_chunks_leaves_the_file_and_no_temporary(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"old")

    def chunks() -> Iterator[bytes]:
        yield b"partial"
        raise Boom

    with pytest.raises(Boom):
        _fs.atomic_write(tmp_path, "file", chunks(), temp_name=".tmp-x")
    assert (tmp_path / "file").read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["file"]


def test_a_failed_file_fsync_leaves_the_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError) as info:
        _fs.atomic_write(tmp_path, "file", [b"new"], temp_name=".tmp-x")
    assert info.value.errno == errno.ENOSPC
    assert not isinstance(info.value, _fs.DirectorySyncError)
    assert os.listdir(tmp_path) == []


def test_a_failed_directory_fsync_after_the_rename_is_a_directory_sync_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_directory_fsync(monkeypatch)
    with pytest.raises(_fs.DirectorySyncError) as info:
        _fs.atomic_write(tmp_path, "file", [b"new"], temp_name=".tmp-x")
    # The rename happened: the new file is visible, its durability unconfirmed.
    assert (tmp_path / "file").read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path)) == ["file"]
    assert isinstance(info.value, OSError)
    assert (info.value.errno, info.value.filename) == (errno.EIO, str(tmp_path))
    assert isinstance(info.value.__cause__, OSError)


# ------------------------------------------------------------------ rename_durably


def test_rename_durably_replaces_the_target(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"a")
    (tmp_path / "b").write_bytes(b"b")
    _fs.rename_durably(tmp_path / "a", tmp_path / "b")
    assert os.listdir(tmp_path) == ["b"]
    assert (tmp_path / "b").read_bytes() == b"a"


def test_rename_durably_of_a_missing_file_changes_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "missing"))):
        _fs.rename_durably(tmp_path / "missing", tmp_path / "b")
    assert os.listdir(tmp_path) == []


def test_rename_durably_reports_a_failed_directory_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a").write_bytes(b"a")
    fail_directory_fsync(monkeypatch)
    with pytest.raises(_fs.DirectorySyncError, match="renamed, but the directory sync failed"):
        _fs.rename_durably(tmp_path / "a", tmp_path / "b")
    assert os.listdir(tmp_path) == ["b"]


# ------------------------------------------------------------------ truncate_durably


def test_truncate_durably_by_path(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"0123456789")
    _fs.truncate_durably(path, 4)
    assert path.read_bytes() == b"0123"


def test_truncate_durably_by_descriptor_leaves_it_open(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"0123456789")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        _fs.truncate_durably(fd, 3)
        os.write(fd, b"x")  # still open, and appends after the cut
    finally:
        os.close(fd)
    assert path.read_bytes() == b"012x"


def test_truncate_durably_of_a_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "missing"))):
        _fs.truncate_durably(tmp_path / "missing", 0)
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------ unused_name


def test_unused_name_counts_up_past_every_existing_name(tmp_path: Path) -> None:
    assert _fs.unused_name(tmp_path, "x.corrupt") == "x.corrupt"
    (tmp_path / "x.corrupt").write_bytes(b"")
    assert _fs.unused_name(tmp_path, "x.corrupt") == "x.corrupt-1"
    (tmp_path / "x.corrupt-1").mkdir()
    (tmp_path / "x.corrupt-2").symlink_to(tmp_path / "nowhere")  # dangling: still taken
    assert _fs.unused_name(str(tmp_path), "x.corrupt") == "x.corrupt-3"


# ------------------------------------------------------------------ fsync_directory


def test_fsync_directory_of_a_file_or_a_missing_path_raises(tmp_path: Path) -> None:
    _fs.fsync_directory(tmp_path)
    (tmp_path / "f").write_bytes(b"")
    with pytest.raises(NotADirectoryError, match=re.escape(str(tmp_path / "f"))):
        _fs.fsync_directory(tmp_path / "f")
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "missing"))):
        _fs.fsync_directory(tmp_path / "missing")
