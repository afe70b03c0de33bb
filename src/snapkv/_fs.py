"""File-system recipes for durable changes, written once for every caller.

A file is durable once it is fsynced; a *name* (a creation, a rename, an
unlink) is durable only once its directory is fsynced too, which POSIX does
not do for you. Getting one of these steps wrong loses data only on a power
loss, which no ordinary test sees, so the recipes live here, once: the
FileMedium publishes snapshots and creates journals with them, and
``snapkv check --repair`` writes its backups and truncates with them.

- :func:`atomic_write`: the new file appears whole under its name, or not at
  all (Redis's ``rdbSave``, LevelDB's ``SetCurrentFile``).
- :func:`rename_durably`: a rename that survives a power loss.
- :func:`truncate_durably`: a cut that survives a power loss.
- :func:`unused_name`: ``name``, ``name-1``, ... for a file that must never
  overwrite an earlier one (a backup, a file set aside).
- :func:`fsync_directory`: the step the others share.

POSIX only (``O_DIRECTORY``), like the FileMedium that uses them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "DirectorySyncError",
    "atomic_write",
    "fsync_directory",
    "rename_durably",
    "truncate_durably",
    "unused_name",
]


class DirectorySyncError(OSError):
    """A rename happened, but syncing its directory failed.

    The new name is visible and the rename cannot be undone safely, but
    whether it survives a power loss is unknown: the caller should keep what
    it wrote (its memory) and write again. ``__cause__`` is the failed fsync.
    """


def fsync_directory(directory: str | os.PathLike[str]) -> None:
    """Make the creations, renames and unlinks in ``directory`` durable.

    :raises OSError: the directory cannot be opened or synced.
    """
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(
    directory: str | os.PathLike[str],
    name: str,
    chunks: Iterable[bytes | memoryview],
    *,
    temp_name: str,
) -> int:
    """Make ``directory / name`` hold exactly the concatenation of ``chunks``, durably.

    Writes ``temp_name`` in the same directory (a rename is atomic only
    within one file system), fsyncs it, renames it over ``name`` and fsyncs
    the directory. A crash at any instant leaves the earlier ``name`` (or
    none) or the new one complete on disk, never a torn file, because the
    name points at the new bytes only once they are all synced. A leftover
    ``temp_name`` (from an earlier failure that could not remove it) is
    replaced.

    Whatever fails before the rename (an OSError, or an exception raised
    by ``chunks`` itself, such as an encoder error or KeyboardInterrupt)
    removes the temporary file and propagates, and ``name`` is untouched:
    so a caller that must check what it copied raises from ``chunks``.

    :param temp_name: a name the caller's cleanup recognises after a crash
        (the FileMedium removes every ``.tmp-*`` file when it opens).
    :returns: the number of bytes written.
    :raises OSError: writing, syncing or renaming failed; nothing changed.
    :raises DirectorySyncError: the rename happened, the directory sync failed.
    """
    folder = Path(directory)
    temp = folder / temp_name
    with contextlib.suppress(FileNotFoundError):
        temp.unlink()
    try:
        with temp.open("xb") as out:
            out.writelines(chunks)
            out.flush()
            os.fsync(out.fileno())
            size = out.tell()
        os.replace(temp, folder / name)
    except BaseException:
        # Tolerated: a temporary file that cannot be removed costs disk
        # space until the next open removes it, and hides no data.
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    _sync_after_rename(folder)
    return size


def rename_durably(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target`` (replacing it) in one directory, then sync that directory.

    :raises OSError: the rename failed; nothing changed.
    :raises DirectorySyncError: the rename happened, the directory sync failed.
    """
    os.replace(source, target)
    _sync_after_rename(target.parent)


def _sync_after_rename(directory: Path) -> None:
    try:
        fsync_directory(directory)
    except OSError as exc:
        raise DirectorySyncError(
            exc.errno, f"renamed, but the directory sync failed: {exc.strerror}", str(directory)
        ) from exc


def truncate_durably(file: str | os.PathLike[str] | int, size: int) -> None:
    """Cut ``file`` (a path, or an open descriptor left open) to ``size`` bytes and fsync it.

    Only the file is synced: its name does not change, so its directory
    need not be.

    :raises OSError: the file cannot be opened, truncated or synced.
    """
    if isinstance(file, int):
        os.ftruncate(file, size)
        os.fsync(file)
        return
    fd = os.open(file, os.O_WRONLY)
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    finally:
        os.close(fd)


def unused_name(directory: str | os.PathLike[str], name: str) -> str:
    """``name``, else ``name-1``, ``name-2``, ...: the first that does not exist in ``directory``.

    For a file that must never replace an earlier one, such as a backup or a
    file set aside after damage: each incident keeps its own copy. A dangling
    symbolic link counts as existing.
    """
    folder = Path(directory)
    candidate = name
    number = 0
    while os.path.lexists(folder / candidate):
        number += 1
        candidate = f"{name}-{number}"
    return candidate
