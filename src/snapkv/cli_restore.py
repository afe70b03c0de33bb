"""``snapkv restore URL --to DIR [--at TIME]``: a local directory rebuilt from a bucket.

The result is an ordinary store directory (snapshot and journal files)
that a plain ``snapkv.open(DIR)`` opens. What is read, and every rule of
reading it, is :class:`~snapkv.objstore.reader.PrefixReader`'s, the reader
``snapkv.open(URL)`` and ``snapkv check`` use: only what a manifest names
(its snapshot, its segments and their tail). ``--at`` takes the newest
manifest written at or before that instant and the writes appended by then,
to the precision the segments recorded (each record's append time for a
database written directly; the moment the shipper handed a batch over for
a replica).

Never silently incomplete: a snapshot whose size or CRC-32 is not the
manifest's, a truncated or damaged segment, a missing one (a gap), each
stops the restore with an error naming the object and what is lost, and
nothing is left in DIR but what was there. The error names the choices a
local directory offers, as options of this command: ``--fallback``
restores the newest older snapshot the manifest keeps that passes its
checks instead (the journals after it are replayed on open, so nothing
written is lost when they reach back to it), and ``--repair`` stops the
journals' history before the first missing or damaged segment, saying
what was dropped. Neither writes to the bucket: a restore only reads.

The snapshot is streamed to its file through ranged GETs, bounded memory
whatever its size; progress goes to standard error when it is a terminal.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from snapkv.cli_common import EXIT_OK, InputError
from snapkv.errors import MediumError
from snapkv.journal.format import HEADER_SIZE as JOURNAL_HEADER

if TYPE_CHECKING:
    from snapkv.objstore import layout as lay
    from snapkv.objstore.client import ObjectClient
    from snapkv.objstore.reader import PrefixReader

__all__ = ["add_restore_command", "parse_instant", "restore_to"]

#: Bytes per ranged GET of a snapshot: what a restore holds in memory at once.
CHUNK = 8 << 20


def add_restore_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``restore`` on the ``snapkv`` command's subparsers."""
    parser = subparsers.add_parser(
        "restore",
        help="rebuild a store directory from object storage, now or at an earlier instant",
        description=(
            "Rebuild DIR (new or empty) from the snapshot and journal segments under URL "
            "(s3://bucket/prefix, gs://, az://, file://), at the newest state or --at an "
            "instant still retained. A missing, truncated or damaged object stops the restore "
            "with its name and what is lost."
        ),
    )
    parser.add_argument("url", help="where the store is kept: s3://bucket/prefix and the like")
    parser.add_argument("--to", required=True, metavar="DIR", help="the directory to create")
    parser.add_argument(
        "--at",
        metavar="TIME",
        help="restore the state at TIME: ISO-8601 (2026-12-07T21:00:00Z; no zone: UTC) "
        "or milliseconds since the epoch",
    )
    parser.add_argument(
        "--fallback",
        action="store_true",
        help="if the snapshot is missing or damaged, restore the newest older one the "
        "manifest keeps that passes its checks",
    )
    parser.add_argument(
        "--repair",
        action="store_true",
        help="stop the journals' history before the first missing or damaged segment "
        "(what is dropped is reported) instead of refusing",
    )
    parser.set_defaults(handler=_run)


def parse_instant(text: str) -> int:
    """``--at``'s value as epoch milliseconds: digits are milliseconds, else ISO-8601 (UTC default).

    :raises InputError: neither.
    """
    if text.isdigit():
        return int(text)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(
            f"--at {text!r}: not an ISO-8601 time (2026-12-07T21:00:00Z) or epoch milliseconds"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def _run(args: argparse.Namespace) -> int:
    at_ms = parse_instant(args.at) if args.at is not None else None
    try:
        from snapkv.objstore.client import ObjectClient  # noqa: PLC0415 - the cloud extra
        from snapkv.objstore.url import parse_url  # noqa: PLC0415
    except ImportError as exc:
        raise InputError(f"object storage needs the cloud extra (obstore): {exc}") from None
    try:
        location = parse_url(args.url)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    summary = restore_to(
        ObjectClient.for_location(location),
        Path(args.to),
        at_ms=at_ms,
        progress=_Progress(),
        fallback=args.fallback,
        repair=args.repair,
    )
    print(summary)
    return EXIT_OK


class _Progress:
    """Bytes downloaded so far, on one rewritten line of standard error, only on a terminal."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()

    def __call__(self, what: str, done: int, total: int) -> None:
        if self.enabled:
            percent = 100 * done // total if total else 100
            sys.stderr.write(f"\r{what}: {done}/{total} bytes ({percent}%)")
            if done >= total:
                sys.stderr.write("\n")
            sys.stderr.flush()


def _quiet(what: str, done: int, total: int) -> None:
    del what, done, total


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def restore_to(
    client: ObjectClient,
    directory: Path,
    *,
    at_ms: int | None = None,
    progress: object = _quiet,
    fallback: bool = False,
    repair: bool = False,
) -> str:
    """Rebuild ``directory`` from ``client``'s prefix; return a one-line summary.

    ``fallback`` and ``repair`` are the module docstring's choices; what
    they cost is in the summary.

    :raises InputError: ``directory`` exists and is not empty.
    :raises MediumError: an object is missing, truncated or damaged (named,
        with the option that would get past it), or the bucket cannot be
        read; ``directory`` is then left empty.
    """
    from snapkv.media import FileMedium  # noqa: PLC0415
    from snapkv.objstore.reader import PrefixReader  # noqa: PLC0415

    if directory.exists() and any(directory.iterdir()):
        raise InputError(f"{directory} is not empty: restore into a new or empty directory")
    reader = PrefixReader(client, repair_option="snapkv restore --repair")
    state = reader.at(at_ms, repair=repair)
    if state.manifest is None:
        raise MediumError(f"{client.describe()} holds no manifest: nothing to restore")
    journals = state.journals
    snapshots = [s for s in state.manifest.snapshots if at_ms is None or s.time_ms <= at_ms]
    directory.mkdir(parents=False, exist_ok=True)
    medium = FileMedium(directory, keep=1)
    notes: list[str] = [f"repair: {line}" for line in state.lost]
    snapshot = snapshots[0] if snapshots else None
    try:
        for index, candidate in enumerate(snapshots):
            try:
                medium.publish(_verified(reader, candidate, progress))
            except MediumError as exc:
                older = snapshots[index + 1 :]
                if not fallback:
                    raise type(exc)(f"{exc}; {_fallback_advice(older)}") from None
                if not older:
                    raise type(exc)(
                        f"{exc}; no older snapshot the manifest keeps is left to fall back to"
                    ) from None
                notes.append(f"fallback: set aside {candidate.name}: {exc}")
                continue
            snapshot = candidate
            break
        for jid, data in sorted(journals.items()):
            journal = medium.create_journal(jid, bytes(data[:JOURNAL_HEADER]))
            journal.write(bytes(data[JOURNAL_HEADER:]))
            journal.sync()
            journal.close()
    except BaseException:
        medium.close()
        for child in directory.iterdir():
            child.unlink()
        raise
    medium.close()
    size = sum(len(d) for d in journals.values())
    where = f"as of {_iso(at_ms)}" if at_ms is not None else "newest state"
    what = f"snapshot {snapshot.name}" if snapshot is not None else "no snapshot"
    summary = (
        f"restored {client.describe()} ({where}, manifest {state.manifest.number}) to {directory}: "
        f"{what}, {len(journals)} journal(s) of {size} bytes"
    )
    return "; ".join([summary, *notes])


def _fallback_advice(older: list[lay.SnapshotRef]) -> str:
    if not older:
        return "the manifest keeps no older snapshot to fall back to (--fallback cannot help)"
    return (
        f"snapkv restore --fallback restores {older[0].name} instead (the journals after it "
        "are replayed on open)"
    )


def _verified(reader: PrefixReader, snapshot: lay.SnapshotRef, progress: object) -> Iterator[bytes]:
    """The snapshot's bytes in chunks (the reader checks size and CRC-32), with progress."""
    where = reader.client.describe(snapshot.name)
    head = reader.client.head(snapshot.name)
    if head is None:
        raise MediumError(f"{where} is missing: the snapshot the manifest names is lost")
    if head.size != snapshot.size:
        raise MediumError(
            f"{where} is {head.size} bytes where {snapshot.size} were written: truncated; "
            "the snapshot (every key it held) cannot be restored"
        )
    done = 0
    report = progress if callable(progress) else _quiet
    # A CRC mismatch raises from these pieces: the medium removes its temporary file.
    for chunk in reader.snapshot_chunks(snapshot, CHUNK):
        done += len(chunk)
        report(f"snapshot {snapshot.name}", done, snapshot.size)
        yield chunk
