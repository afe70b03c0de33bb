"""Repairing a store directory: the changes ``open(repair=True)`` would make, with backups.

The model is ``redis-check-aof --fix``: keep a *prefix* of the history.
Damage in a journal is cut back to the last good record, every later
journal is set aside (its writes came after the lost ones, so applying them
would produce a state that never existed), and corrupt snapshots are set
aside as ``open(fallback=True)`` does. The plan comes from the report
(:mod:`snapkv.check.verify`, which gets it from :mod:`snapkv.recovery`), so a
repaired directory opens to exactly the data ``open(repair=True)`` loads.

Files are never deleted: a truncated file is first copied to
``<name>.bak-<UTC time>`` (synced before the original changes), and a file
set aside is renamed to ``<name>.corrupt``, which is its own backup.
Repairing opens the directory as a Store does (a
:class:`~snapkv.media.FileMedium`: its ``LOCK`` taken exclusively,
non-blocking), checks again under it, and refuses (:class:`DirectoryChangedError`) if anything
changed since the report it was given: what the user confirmed is exactly
what runs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from snapkv import _fs
from snapkv.check.report import (
    BACKUP_INFIX,
    CheckReport,
    DirectoryChangedError,
    RepairAction,
    RepairResult,
)
from snapkv.check.verify import check
from snapkv.errors import MediumError, StoreLockedError
from snapkv.media.file import _JOURNAL, _TEMP_PREFIX, FileMedium

__all__ = ["repair_directory"]

_COPY_CHUNK = 1 << 20


def repair_directory(
    path: str | os.PathLike[str],
    report: CheckReport,
    *,
    clock: Callable[[], float] = time.time,
) -> RepairResult:
    """Carry out ``report.repairs`` on ``path`` under its lock; return what was done and lost.

    ``clock`` (epoch seconds) stamps the backup names.

    :raises StoreLockedError: a Store has the directory open; nothing was touched.
    :raises DirectoryChangedError: the directory no longer matches ``report``
        (check again); nothing was touched.
    :raises MediumError: a file could not be copied, renamed or truncated;
        the message says which actions were done before the failure (the
        directory is then no worse: run check and repair again).
    :raises OSError: ``path`` cannot be listed.
    """
    directory = Path(path)
    os.listdir(directory)
    # A FileMedium holds the directory's lock as a Store does (no Store can
    # open it meanwhile), and sets files aside as recovery does.
    try:
        medium = FileMedium(directory)
    except StoreLockedError as exc:
        raise StoreLockedError(f"refusing to repair: {exc}; close it first") from None
    try:
        fresh = check(directory, busy=False)
        if _fingerprint(fresh) != _fingerprint(report):
            raise DirectoryChangedError(
                f"{directory} changed since it was checked; nothing was repaired: check it again"
            )
        done: list[RepairAction] = []
        backups: list[str] = []
        try:
            for action in fresh.repairs:
                if action.kind == "set-aside":
                    match = _JOURNAL.fullmatch(action.name)
                    if match:
                        target = medium.quarantine_journal(int(match.group(1)))
                    else:
                        target = medium.quarantine(action.name)
                    done.append(replace(action, target=Path(target).name))
                else:
                    backup = _backup(directory, action, clock)
                    backups.append(backup)
                    _fs.truncate_durably(directory / action.name, action.keep)
                    done.append(replace(action, backup=backup))
        except (OSError, MediumError) as exc:
            what = "; ".join(f"{a.kind} {a.name}" for a in done) or "nothing"
            raise MediumError(
                f"repair of {directory} failed: {exc}; done before the failure: {what}"
            ) from exc
        after = check(directory, busy=False)
    finally:
        medium.close()
    return RepairResult(str(directory), tuple(done), after, tuple(backups))


def _fingerprint(report: CheckReport) -> tuple[Any, ...]:
    """What must not change between a check and its repair (leftovers may come and go)."""
    return report.snapshots, report.journals, report.repairs


def _backup(directory: Path, action: RepairAction, clock: Callable[[], float]) -> str:
    """Copy the file to ``<name>.bak-<UTC time>``, durably, before it is changed.

    Written under a ``.tmp-`` name (which the next ``open()`` removes if the
    copy is interrupted), synced, then renamed and the directory synced: a
    backup exists under its final name only once it is complete on disk.
    """
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(clock()))
    name = _fs.unused_name(directory, f"{action.name}{BACKUP_INFIX}{stamp}")
    copied = 0

    def chunks() -> Iterator[bytes]:
        nonlocal copied
        with (directory / action.name).open("rb") as source:
            while chunk := source.read(_COPY_CHUNK):
                copied += len(chunk)
                yield chunk
        if copied != action.size:
            raise DirectoryChangedError(
                f"{action.name} changed during the repair ({copied} bytes, checked "
                f"{action.size}); it was not truncated"
            )

    _fs.atomic_write(directory, name, chunks(), temp_name=f"{_TEMP_PREFIX}check-{os.getpid()}")
    return name
