"""File-system recipes shared by the file medium and the repair tool, each written once.

POSIX makes a change durable in two places: a file's data (``fsync`` on the
file) and its name (``fsync`` on the directory that holds the entry). Every
recipe here syncs both, in the order that leaves, after a crash at any
instant, either the old state or the new one, never a half-written file
under its final name. This is LevelDB's ``SetCurrentFile`` and Redis's
``rdbSave``: temporary file, fsync, rename, fsync the directory, remove the
temporary on failure.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["atomic_write", "fsync_directory", "truncate_durably", "unused_name"]


def fsync_directory(path: str | os.PathLike[str]) -> None:
    """Make a rename, creation or removal of an entry in ``path`` durable.

    :raises OSError: the directory cannot be opened or synced.
    """
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(
    directory: str | os.PathLike[str], name: str, chunks: Iterable[bytes], *, temp_name: str
) -> int:
    """Write ``chunks`` to ``directory/name`` so that the name holds all of them or nothing.

    The bytes go to ``temp_name`` (in the same directory, so the rename is
    atomic), which is synced, renamed to ``name`` (replacing it) and the
    directory synced. If anything fails, or ``chunks`` raises, the temporary
    file is removed and the exception propagates; ``name`` is untouched.
    Returns the number of bytes written.

    :raises OSError: a write, sync or rename failed.
    """
    folder = Path(directory)
    temp = folder / temp_name
    written = 0
    try:
        with temp.open("wb") as out:
            for chunk in chunks:
                out.write(chunk)
                written += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, folder / name)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    fsync_directory(folder)
    return written


def truncate_durably(path: str | os.PathLike[str], size: int) -> None:
    """Cut ``path`` to ``size`` bytes and sync it (the new size is data fsync covers).

    :raises OSError: the file cannot be opened, truncated or synced.
    """
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    finally:
        os.close(fd)


def unused_name(directory: str | os.PathLike[str], name: str) -> str:
    """``name``, or ``name-1``, ``name-2``...: the first that does not exist in ``directory``.

    For files set aside or backed up: an earlier incident's file is never
    overwritten by a later one.
    """
    folder = Path(directory)
    candidate = name
    number = 0
    while os.path.lexists(folder / candidate):
        number += 1
        candidate = f"{name}-{number}"
    return candidate
