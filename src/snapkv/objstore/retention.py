"""Retention: which objects the window lets go, and deleting them (FORMAT.md part 3, O8).

Point-in-time restore reaches back ``retention`` (default 24 h): a moment
in the window is restored from the newest manifest written at or before
it, so every manifest written in the window is kept, and so is the newest
one written before the window began (it was the state at the window's
start). Then:

* a segment is kept while any kept manifest needs it: every number from the
  lowest ``segments_from`` of the kept manifests on;
* a snapshot is kept while any kept manifest names it; one no kept manifest
  names (pruned by ``keep`` long ago, set aside, or written by a writer
  whose manifest was refused) is deleted once it is older than the window,
  so an upload still waiting for its manifest is never deleted;
* a manifest not kept is deleted first (oldest first), so a pass cut short
  leaves only objects no manifest names, which the next pass deletes.

Only the writer holding the prefix runs it. It needs no lock against that
writer's own creates: a segment or manifest made meanwhile is numbered
above everything it judges, and a snapshot uploaded meanwhile is younger
than the window.
"""

from __future__ import annotations

from snapkv.errors import StoreFencedError
from snapkv.objstore import layout as lo
from snapkv.objstore.reader import PrefixReader

__all__ = ["apply_retention", "plan_retention"]


def plan_retention(
    reader: PrefixReader, *, now_ms: int, window_ms: int, newest: lo.Manifest | None = None
) -> tuple[list[int], list[lo.Manifest], int]:
    """``(manifests to delete, manifests kept, first segment kept)``.

    ``newest`` is the writer's newest manifest (always kept, never re-read).
    """
    numbers = reader.manifest_numbers()
    if newest is not None and numbers and max(numbers) > newest.number:
        latest = reader.manifest(max(numbers))
        if (latest.writer, latest.epoch) != (newest.writer, newest.epoch):
            # A newer writer took over: what it is uploading is named by no
            # manifest yet, and only the holder may judge what is unneeded.
            raise StoreFencedError(
                f"{reader.client.describe()}: {latest.name} is {latest.writer}'s; "
                "retention is the holder's"
            )
        newest = latest  # this writer's own, written meanwhile
    if newest is not None and newest.number not in numbers:
        numbers.append(newest.number)
    if not numbers:
        return [], [], 1
    cutoff = now_ms - window_ms
    kept: list[lo.Manifest] = []
    doomed: list[int] = []
    before_window = False
    for number in sorted(numbers, reverse=True):
        manifest = newest if newest is not None and number == newest.number else None
        manifest = manifest or reader.manifest(number)
        if not kept or manifest.heartbeat_ms >= cutoff:
            kept.append(manifest)
        elif not before_window:
            kept.append(manifest)  # the state when the window began
            before_window = True
        else:
            doomed.append(number)
    first_segment = min(m.segments_from for m in kept)
    return sorted(doomed), kept, first_segment


def apply_retention(
    reader: PrefixReader,
    *,
    now_ms: int,
    window_ms: int,
    newest: lo.Manifest | None = None,
    protected: set[str] | None = None,
) -> list[str]:
    """Delete what :func:`plan_retention` lets go; return the object names deleted.

    ``protected`` names snapshots never deleted whatever their age (the
    writer's current ones).
    """
    client = reader.client
    doomed, kept, first_segment = plan_retention(
        reader, now_ms=now_ms, window_ms=window_ms, newest=newest
    )
    deleted: list[str] = []
    for number in doomed:
        name = lo.manifest_name(number)
        client.delete(name)
        deleted.append(name)
    for info in client.list(lo.SEGMENT_DIR):
        seq = lo.segment_number(info.name)
        if seq is not None and seq < first_segment:
            client.delete(info.name)
            deleted.append(info.name)
    named = {ref.name for m in kept for ref in m.snapshots} | (protected or set())
    cutoff_s = (now_ms - window_ms) / 1000
    for info in client.list(lo.SNAPSHOT_DIR):
        if info.name not in named and info.modified < cutoff_s:
            client.delete(info.name)
            deleted.append(info.name)
    return deleted
