"""``snapkv restore URL --to DIR [--at TIME]``: a local directory rebuilt from a bucket.

The result is an ordinary store directory (snapshot and journal files)
that a plain ``snapkv.open(DIR)`` opens. What is read is only what a
manifest names (:mod:`snapkv.objstore.layout`): its newest snapshot and the
segments from ``segments_from`` through the tail. ``--at`` picks the newest
manifest written at or before that instant and folds its segments up to it
(:func:`~snapkv.objstore.layout.fold_segments`), so the directory holds the
writes appended by then, to the precision the segments recorded.

Never silently incomplete: a snapshot whose size or CRC-32 is not the
manifest's, a truncated or damaged segment, a missing one (a gap), each
stops the restore with an error naming the object and what is lost, and
nothing is left in DIR but what was there. The snapshot is streamed to its
file through ranged GETs, bounded memory whatever its size; progress goes
to standard error when it is a terminal.
"""

from __future__ import annotations

import argparse
import sys
import zlib
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
        ObjectClient.for_location(location), Path(args.to), at_ms=at_ms, progress=_Progress()
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


def _choose(client: ObjectClient, at_ms: int | None) -> lay.Manifest:
    """The newest manifest (written at or before ``at_ms`` when given)."""
    from snapkv.objstore import layout as lay  # noqa: PLC0415

    numbers = sorted(
        (n for n in (lay.manifest_number(i.name) for i in client.list(lay.MANIFEST_DIR)) if n),
        reverse=True,
    )
    if not numbers:
        raise MediumError(f"{client.describe()} holds no manifest: nothing to restore")
    oldest: int | None = None
    for number in numbers:
        name = lay.manifest_name(number)
        data = client.get(name)
        if data is None:
            continue  # removed by retention since the listing
        manifest = lay.decode_manifest(data, client.describe(name))
        if at_ms is None or manifest.heartbeat_ms <= at_ms:
            return manifest
        oldest = manifest.heartbeat_ms
    raise MediumError(
        f"{client.describe()} retains nothing as old as {_iso(at_ms or 0)}: the oldest "
        f"manifest still there was written at {_iso(oldest or 0)}"
    )


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def _segments(client: ObjectClient, manifest: lay.Manifest) -> Iterator[tuple[int, lay.Segment]]:
    """The manifest's segments, then its tail, each verified; a missing one is an error."""
    from snapkv.objstore import layout as lay  # noqa: PLC0415

    for ref in manifest.segments:
        data = client.get(ref.name)
        where = client.describe(ref.name)
        if data is None:
            raise MediumError(
                f"{where} is missing: the journal writes it held (journal {ref.journal} from "
                f"offset {ref.offset}, {ref.length} bytes, {_iso(ref.first_ms)} to "
                f"{_iso(ref.last_ms)}) and every later one cannot be restored (check segment-gap)"
            )
        if len(data) != ref.size or zlib.crc32(data) != ref.crc32:
            raise MediumError(
                f"{where}: {len(data)} bytes with CRC-32 {zlib.crc32(data):08x} where the "
                f"manifest says {ref.size} bytes with {ref.crc32:08x} (truncated or damaged): "
                f"journal {ref.journal}'s writes from {_iso(ref.first_ms)} on are lost"
            )
        yield ref.seq, lay.decode_segment(data, where)
    present = {n for n in (lay.segment_number(i.name) for i in client.list(lay.SEGMENT_DIR)) if n}
    seq = manifest.tail_from
    while seq in present:
        name = lay.segment_name(seq)
        data = client.get(name)
        if data is None:  # removed since the listing: the tail ends here
            break
        yield seq, lay.decode_segment(data, client.describe(name))
        seq += 1
    later = sorted(n for n in present if n > seq)
    if later:
        # Numbers are taken one after another, each only once the one before
        # it exists: a hole below existing segments is a lost object.
        raise MediumError(
            f"{client.describe(lay.segment_name(seq))} is missing but segments "
            f"{later[0]}..{later[-1]} exist: the writes after segment {seq - 1} are lost "
            "(check segment-gap)"
        )


def restore_to(
    client: ObjectClient,
    directory: Path,
    *,
    at_ms: int | None = None,
    progress: object = _quiet,
) -> str:
    """Rebuild ``directory`` from ``client``'s prefix; return a one-line summary.

    :raises InputError: ``directory`` exists and is not empty.
    :raises MediumError: an object is missing, truncated or damaged (named),
        or the bucket cannot be read; ``directory`` is then left empty.
    """
    from snapkv.media import FileMedium  # noqa: PLC0415
    from snapkv.objstore import layout as lay  # noqa: PLC0415

    if directory.exists() and any(directory.iterdir()):
        raise InputError(f"{directory} is not empty: restore into a new or empty directory")
    manifest = _choose(client, at_ms)
    journals = lay.fold_segments(
        _segments(client, manifest), until_ms=at_ms, describe=client.describe("segment")
    )
    directory.mkdir(parents=False, exist_ok=True)
    medium = FileMedium(directory, keep=1)
    try:
        snapshot = manifest.snapshots[0] if manifest.snapshots else None
        if snapshot is not None:
            medium.publish(_verified(client, snapshot, progress))
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
    return (
        f"restored {client.describe()} ({where}, manifest {manifest.number}) to {directory}: "
        f"{what}, {len(journals)} journal(s) of {size} bytes"
    )


def _verified(client: ObjectClient, snapshot: lay.SnapshotRef, progress: object) -> Iterator[bytes]:
    """The snapshot's bytes in chunks, its size and CRC-32 checked before the file is kept."""
    where = client.describe(snapshot.name)
    head = client.head(snapshot.name)
    if head is None:
        raise MediumError(
            f"{where} is missing: the snapshot the manifest names (all of it) is lost"
        )
    if head.size != snapshot.size:
        raise MediumError(
            f"{where} is {head.size} bytes where {snapshot.size} were written: truncated; "
            "the snapshot (all keys it held) cannot be restored"
        )
    crc = done = 0
    report = progress if callable(progress) else _quiet
    for chunk in client.stream(snapshot.name, snapshot.size, CHUNK):
        crc = zlib.crc32(chunk, crc)
        done += len(chunk)
        report(f"snapshot {snapshot.name}", done, snapshot.size)
        yield chunk
    if crc != snapshot.crc32:
        # Raised from the pieces: the medium removes its temporary file.
        raise MediumError(
            f"{where}: CRC-32 {crc:08x} where the manifest says {snapshot.crc32:08x}: the "
            "snapshot is damaged and cannot be restored"
        )
