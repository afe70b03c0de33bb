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

Except the two objects that fence: the first manifest of every epoch (the
claim) and every FENCE segment are never deleted. A writer that was taken
over and comes back later creates its next manifest at the claim's number
and its next segment at the fence's: were they deleted, both creates would
succeed, it would never learn it was fenced, and the writes it acknowledged
would land in no state. So one tiny pair per takeover stays. A kept claim
below the retained run is a *marker*, not a state
(:func:`snapkv.objstore.reader.state_numbers`): what it names may be gone.

Only the writer holding the prefix runs it. It needs no lock against that
writer's own creates: a segment or manifest made meanwhile is numbered
above everything it judges, and a snapshot uploaded meanwhile is younger
than the window.
"""

from __future__ import annotations

from snapkv.errors import StoreFencedError
from snapkv.objstore import layout as lo
from snapkv.objstore.reader import PrefixReader, state_numbers

__all__ = ["apply_retention", "plan_retention"]


def plan_retention(
    reader: PrefixReader, *, now_ms: int, window_ms: int, newest: lo.Manifest | None = None
) -> tuple[list[int], list[lo.Manifest], int]:
    """``(manifests to delete, manifests kept as states, first segment kept)``.

    ``newest`` is the writer's newest manifest (always kept, never re-read).
    Markers (claims kept only to fence) are neither deleted nor states.
    """
    every = reader.manifest_numbers()
    numbers = state_numbers(every)
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
        numbers = state_numbers(sorted({*every, newest.number}))
    if not numbers:
        return [], [], 1
    cutoff = now_ms - window_ms
    kept: list[lo.Manifest] = []
    doomed: list[lo.Manifest] = []
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
            doomed.append(manifest)
    # A claim stays. Right below the kept run it would be read as a state
    # (the run is what readers take as states), so it is kept whole instead.
    claims = _claims(reader, every, [*kept, *doomed])
    while doomed and doomed[0].number in claims:
        kept.append(doomed.pop(0))
    first_segment = min(m.segments_from for m in kept)
    return sorted(m.number for m in doomed if m.number not in claims), kept, first_segment


def _claims(reader: PrefixReader, every: list[int], read: list[lo.Manifest]) -> set[int]:
    """The first manifest number of every epoch (markers below the run included)."""
    first: dict[int, int] = {}
    known = {m.number: m for m in read}
    for number in every:
        manifest = known.get(number) or reader.manifest(number)
        first.setdefault(manifest.epoch, number)
    for manifest in read:
        if manifest.epoch not in first or manifest.number < first[manifest.epoch]:
            first[manifest.epoch] = manifest.number
    return set(first.values())


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
        if seq is not None and seq < first_segment and not _is_fence(reader, seq, info.size):
            client.delete(info.name)
            deleted.append(info.name)
    named = {ref.name for m in kept for ref in m.snapshots} | (protected or set())
    cutoff_s = (now_ms - window_ms) / 1000
    for info in client.list(lo.SNAPSHOT_DIR):
        if info.name not in named and info.modified < cutoff_s:
            client.delete(info.name)
            deleted.append(info.name)
    reader.forget(int(n) for n in map(lo.manifest_number, deleted) if n is not None)
    return deleted


def _is_fence(reader: PrefixReader, seq: int, size: int) -> bool:
    """Segment ``seq`` is a FENCE (read only when its size is an empty segment's)."""
    if size != _EMPTY_SEGMENT:
        return False
    try:
        got = reader.segment(seq)
    except lo.LayoutError:
        return False  # damaged and unneeded: it fences nothing a reader would trust
    return got is not None and got[0].kind == lo.KIND_FENCE


_EMPTY_SEGMENT = len(lo.encode_segment(lo.Segment(lo.KIND_FENCE, 0)))
