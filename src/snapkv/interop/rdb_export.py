"""``snapkv export``: a store (directory or object storage prefix) as one RDB file.

The state exported is what ``open()`` would load at the moment of reading
(:mod:`snapkv.interop.source`: the newest valid snapshot and its journals,
read without the lock, so a running server's ``--dir`` may be exported),
keys already expired left out. The file is RDB version 9
(:class:`snapkv.rdb.file.RDBWriter`), which every Redis since 5.0 and every
Valkey loads, and it appears whole or not at all: it is written to a
temporary file beside it, synced and renamed over the target
(:func:`snapkv._fs.atomic_write`), so a failure or a crash halfway leaves
an earlier file of that name untouched.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from snapkv import _fs
from snapkv.interop.source import open_source
from snapkv.rdb.file import RDBWriter

__all__ = ["ExportReport", "export_rdb"]


@dataclass
class ExportReport:
    """What an export wrote: keys per keyspace, keys left out as expired, the file's size."""

    source: str
    target: str
    keys: dict[int, int] = field(default_factory=dict)
    expired: int = 0
    size: int = 0

    def summary(self) -> str:
        """The report in one line."""
        total = sum(self.keys.values())
        spaces = ", ".join(f"db{db}={n}" for db, n in sorted(self.keys.items())) or "none"
        return (
            f"exported {total} keys from {self.source} to {self.target} "
            f"({self.size} bytes, RDB version 9; keys per keyspace: {spaces}; "
            f"{self.expired} already expired, left out)"
        )


def _chunks(
    spaces: dict[int, tuple[dict[str, Any], dict[str, int]]], report: ExportReport
) -> Iterator[bytes]:
    """The file's bytes as the writer makes them, keyspace by keyspace."""
    pending: list[bytes] = []
    writer = RDBWriter(pending.append)
    for db, (entries, expires) in spaces.items():
        writer.select_db(db, len(entries), len(expires))
        get = expires.get
        entry = writer.entry
        for key, value in entries.items():
            entry(key, value, get(key))
            if pending:
                yield from pending
                pending.clear()
        report.keys[db] = len(entries)
    writer.finish()
    yield from pending


def export_rdb(location: str, target: str | os.PathLike[str]) -> ExportReport:
    """Write the store at ``location`` to the RDB file ``target``; return what was written.

    :raises MediumError: the store cannot be read; recovery's own errors as ``open()`` raises
        them (a corrupt snapshot, a damaged journal).
    :raises OSError: the file cannot be written (an earlier file there is left as it was).
    """
    path = Path(target)
    report = ExportReport(location, str(path))
    source = open_source(location)
    spaces = source.spaces()
    report.expired = source.expired
    directory = path.parent if str(path.parent) else Path()
    report.size = _fs.atomic_write(
        directory, path.name, _chunks(spaces, report), temp_name=f".tmp-{path.name}-{os.getpid()}"
    )
    return report
