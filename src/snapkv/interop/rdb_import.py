"""``snapkv import``: an RDB file (Redis 2.x to 7.4, Valkey) as a new snapkv store.

Why a snapshot written directly, not keys set one by one through a Store:
the whole file becomes one snapshot (:func:`snapkv.codec.iter_encode_snapshot`)
published by the medium in one atomic step (``FileMedium.publish``: a
temporary file, fsync, rename, directory fsync; an object storage prefix's
first snapshot and manifest), so an import is as fast as encoding a
snapshot, and a failure at any point (a corrupt file, a key snapkv cannot
hold, a full disk) leaves no store behind, never a partial one. The file is
read to its end (its CRC-64 checked) before anything is written.

Keys already expired when read are dropped and counted (Redis drops them
when it loads a file, too). Module values, streams with consumer groups and
function libraries are refused by name, or with ``skip_unsupported``
listed in the report. A key twice in one keyspace is refused (Redis stops
loading on one as well). The target must be new or empty, as for ``snapkv
restore``: an import never merges into data.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from snapkv import codec
from snapkv.errors import MediumError
from snapkv.media.base import Medium
from snapkv.rdb.file import RDBFileError, RDBReader, Unsupported
from snapkv.recovery import DEFAULT_DATABASES

__all__ = ["ImportReport", "TargetNotEmptyError", "import_rdb", "read_spaces"]


class TargetNotEmptyError(MediumError):
    """The import's target already holds data (a file in the directory, a manifest)."""


@dataclass
class ImportReport:
    """What an import read and wrote."""

    source: str
    target: str
    version: int = 0
    keys: dict[int, int] = field(default_factory=dict)
    expired: int = 0
    skipped: list[Unsupported] = field(default_factory=list)
    empty: list[Unsupported] = field(default_factory=list)

    def summary(self) -> str:
        """The report: a line of counts, then one line per key skipped."""
        total = sum(self.keys.values())
        spaces = ", ".join(f"db{db}={n}" for db, n in sorted(self.keys.items())) or "none"
        lines = [
            f"imported {total} keys from {self.source} (RDB version {self.version}) to "
            f"{self.target} (keys per keyspace: {spaces}; {self.expired} already expired, "
            f"dropped; {len(self.skipped)} skipped)"
        ]
        if self.empty:
            first = self.empty[0]
            lines.append(
                f"note: {len(self.empty)} empty keys skipped as Redis skips them when it loads "
                f"the file (the first: db {first.db} key {first.key!r}, byte {first.offset})"
            )
        highest = max(self.keys, default=0)
        if highest >= DEFAULT_DATABASES:
            lines.append(
                f"note: keyspace {highest} is beyond the default {DEFAULT_DATABASES}: open the "
                f"store with databases={highest + 1} (snapkv serve --databases {highest + 1})"
            )
        for item in self.skipped:
            where = "function library" if item.db < 0 else f"db {item.db} key"
            lines.append(f"skipped {where} {item.key!r}: {item.type_name} (byte {item.offset})")
        return "\n".join(lines)


Spaces = dict[int, tuple[dict[str, Any], dict[str, int]]]


def read_spaces(path: str, report: ImportReport, *, skip_unsupported: bool = False) -> Spaces:
    """Every live key of the RDB file at ``path``: db -> (entries, expiry times).

    :raises RDBFileError: the file is malformed, or holds what cannot be imported (named).
    """
    spaces: Spaces = {}
    now_ms = time.time() * 1000
    with open(path, "rb") as file:
        reader = RDBReader(file, skip_unsupported=skip_unsupported)
        for db, key, value, expire_at_ms in reader:
            space = spaces.get(db)
            if space is None:
                space = spaces[db] = ({}, {})
            entries, expires = space
            if key in entries or key in expires:
                at = reader.position
                raise RDBFileError(f"key {key!r} appears twice in db {db} (before byte {at})", at)
            if expire_at_ms is not None:
                if expire_at_ms <= now_ms:
                    report.expired += 1
                    expires[key] = -1  # remembered, to catch a duplicate
                    continue
                expires[key] = expire_at_ms
            entries[key] = value
        report.version = reader.version
        report.skipped = reader.skipped
        report.empty = reader.empty
    for _entries, expires in spaces.values():
        for key in [k for k, when in expires.items() if when < 0]:
            del expires[key]
    report.keys = {db: len(space[0]) for db, space in sorted(spaces.items()) if space[0]}
    return spaces


def _columns(spaces: Spaces) -> list[tuple[int, list[str], list[Any], list[int] | None]]:
    out = []
    for db, (entries, expires) in sorted(spaces.items()):
        if not entries:
            continue
        keys = list(entries)
        expiries = [expires.get(key, 0) for key in keys] if expires else None
        out.append((db, keys, list(entries.values()), expiries))
    return out


def _refuse_non_empty(folder: Path) -> None:
    """Refuse a directory that holds anything but a lock file (an earlier import that failed
    leaves only that, and a retry must be let in)."""
    from snapkv.media.file import LOCK_NAME  # noqa: PLC0415 - only a directory needs it

    if folder.exists() and (
        not folder.is_dir() or any(p.name != LOCK_NAME for p in folder.iterdir())
    ):
        raise TargetNotEmptyError(f"{folder} is not empty: import into a new or empty directory")


def _refuse_non_empty_prefix(url: str) -> None:
    """Refuse a prefix that holds a manifest, read only (opening the medium would claim it)."""
    from snapkv.objstore.client import ObjectClient  # noqa: PLC0415 - the cloud extra
    from snapkv.objstore.reader import PrefixReader  # noqa: PLC0415
    from snapkv.objstore.url import parse_url  # noqa: PLC0415

    client = ObjectClient.for_location(parse_url(url))
    if PrefixReader(client).at().manifest is not None:
        raise TargetNotEmptyError(f"{url} already holds a store: import into a new prefix")


def _target(directory: str | None, url: str | None) -> Medium:
    """The target medium, opened (and locked) only when new or empty."""
    if url is not None:
        from snapkv.objstore.medium import ObjectMedium  # noqa: PLC0415 - the cloud extra

        _refuse_non_empty_prefix(url)
        claimed = ObjectMedium.from_url(url)
        if claimed.generations():  # again under the claim: another import may have been first
            claimed.close()
            raise TargetNotEmptyError(f"{url} already holds a store: import into a new prefix")
        return claimed
    from snapkv.media.file import FileMedium  # noqa: PLC0415

    assert directory is not None
    folder = Path(directory)
    _refuse_non_empty(folder)
    folder.mkdir(parents=True, exist_ok=True)
    medium = FileMedium(folder)
    try:  # again under the lock: another import may have written it since the last look
        _refuse_non_empty(folder)
    except TargetNotEmptyError:
        medium.close()
        raise
    return medium


def import_rdb(
    path: str,
    *,
    directory: str | None = None,
    url: str | None = None,
    skip_unsupported: bool = False,
) -> ImportReport:
    """Import the RDB file ``path`` into a new store at ``directory`` (or object storage ``url``).

    :raises TargetNotEmptyError: the target holds data; nothing is read or written.
    :raises RDBFileError: the file is malformed or holds what cannot be imported (nothing is
        written).
    :raises MediumError: the store cannot be written.
    """
    if (directory is None) == (url is None):
        raise ValueError("give exactly one target: a directory or a URL")
    target = url if url is not None else str(directory)
    report = ImportReport(path, target)
    # Before reading: a mistake costs nothing.
    if directory is not None:
        _refuse_non_empty(Path(directory))
    else:
        _refuse_non_empty_prefix(target)
    spaces = read_spaces(path, report, skip_unsupported=skip_unsupported)
    medium = _target(directory, url)
    try:
        medium.publish(codec.iter_encode_snapshot(_columns(spaces)))
    finally:
        medium.close()
    return report
