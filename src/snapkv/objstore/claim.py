"""Opening a prefix to write: the holder's lock, the epoch's manifest, the fence (FORMAT.md O8).

One function, :func:`claim_prefix`, the three steps in order:

1. read the newest manifest and its tail; a writer that has not released
   the prefix holds it while its heartbeat (the later of its manifest's and
   its last segment's) is younger than the timeout: refused with
   :class:`~snapkv.errors.StoreLockedError` naming it, unless ``takeover``;
2. create the next manifest with the next epoch (create if absent: of two
   openers one wins; the other reads again and starts over);
3. create a FENCE segment at the first free segment number. A number
   taken meanwhile holds a segment the old writer put after step 1: it is
   history (the old writer acknowledged its writes), and the fence goes to
   the next number. From the fence on, the old writer's next segment and
   next manifest find their names taken: it is fenced.

Split from :mod:`snapkv.objstore.medium` at its seam: what happens once,
before the medium writes anything, and what the medium then starts from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from snapkv.errors import MediumError, StoreFencedError, StoreLockedError
from snapkv.objstore import layout as lo
from snapkv.objstore.client import ObjectClient
from snapkv.objstore.reader import PrefixReader

__all__ = ["Claim", "claim_prefix"]

_ATTEMPTS = 20


@dataclass(frozen=True)
class Claim:
    """What a writer starts from once it holds the prefix."""

    #: The manifest that claimed the epoch.
    manifest: lo.Manifest
    #: Every segment from the manifest's ``segments_from`` up to the fence, in order.
    pairs: tuple[tuple[int, lo.Segment], ...]
    #: How a manifest names each of them, the fence included.
    refs: tuple[lo.SegmentRef, ...]
    #: The first free segment number after the fence.
    next_seq: int
    #: The highest time read (records, PUTs): the writer's times start there.
    clock_ms: int
    #: With ``repair``: what the history stopped short of, in words (empty: nothing).
    lost: tuple[str, ...] = ()


def claim_prefix(
    client: ObjectClient,
    reader: PrefixReader,
    *,
    writer: lo.Writer,
    takeover: bool,
    heartbeat_timeout: float,
    retention_ms: int,
    clock: Callable[[], float],
    repair: bool = False,
    takeover_from: str | None = None,
) -> Claim:
    """Claim the next epoch of ``client``'s prefix for ``writer`` (see the module docstring).

    With ``repair``, a missing or damaged segment ends the history read
    instead of refusing (:meth:`PrefixReader.segments`); ``Claim.lost`` says
    what was dropped, and the caller rewrites the journals after the fence.

    ``takeover_from`` (a replica's shipper, whose writer id is stable per
    directory) takes over at once a prefix whose holder is that writer (its
    own earlier run, killed); any other live holder is refused as without
    ``takeover`` (a promoted replica is never silently fenced).

    :raises StoreLockedError: a live writer holds the prefix and ``takeover`` is off.
    :raises StoreFencedError: a newer opener claimed it meanwhile and fenced this one.
    :raises MediumError: the prefix cannot be read or written (objects named).
    """
    for _ in range(_ATTEMPTS):
        state = reader.at(None, repair=repair)
        newest = state.manifest
        own = takeover_from is not None and newest is not None and newest.writer.id == takeover_from
        if newest is not None and not newest.released and not (takeover or own):
            _refuse_if_held(
                client,
                newest,
                max(newest.heartbeat_ms, state.last_put_ms),
                heartbeat_timeout,
                clock,
            )
        clock_ms = max(int(clock() * 1000), state.clock_ms)
        manifest = lo.Manifest(
            number=newest.number + 1 if newest else 1,
            epoch=newest.epoch + 1 if newest else 1,
            writer=writer,
            heartbeat_ms=clock_ms,
            snapshots=newest.snapshots if newest else (),
            next_generation=newest.next_generation if newest else 1,
            segments_from=newest.segments_from if newest else 1,
            segments=tuple(state.refs),
            tail_from=state.tail_end,
            retention_ms=retention_ms,
            clock_ms=clock_ms,
        )
        if client.create(manifest.name, lo.encode_manifest(manifest)) is None:
            break
        # Another opener took that number: read again.
    else:
        raise MediumError(f"cannot claim {client.describe()}: its manifest keeps moving")
    pairs = list(state.pairs)
    refs = list(state.refs)
    # After every segment that exists: with repair, damaged ones stay where they are.
    seq = state.end
    while True:
        clock_ms = max(int(clock() * 1000), clock_ms)
        fence = lo.Segment(lo.KIND_FENCE, manifest.epoch, written_ms=clock_ms)
        data = lo.encode_segment(fence)
        theirs = client.create(lo.segment_name(seq), data)
        if theirs is None:
            refs.append(fence.ref(seq, data))
            break
        where = client.describe(lo.segment_name(seq))
        late = lo.decode_segment(theirs, where)
        if late.epoch >= manifest.epoch:
            raise StoreFencedError(f"{where}: a newer writer (epoch {late.epoch}) took over")
        pairs.append((seq, late))
        refs.append(late.ref(seq, theirs))
        seq += 1
    clock_ms = max([clock_ms, *(segment.last_ms for _, segment in pairs)])
    return Claim(manifest, tuple(pairs), tuple(refs), seq + 1, clock_ms, state.lost)


def _refuse_if_held(
    client: ObjectClient,
    newest: lo.Manifest,
    heartbeat_ms: int,
    timeout: float,
    clock: Callable[[], float],
) -> None:
    age = clock() - heartbeat_ms / 1000
    if age < timeout:
        when = datetime.fromtimestamp(heartbeat_ms / 1000, UTC).isoformat(timespec="milliseconds")
        raise StoreLockedError(
            f"{client.describe()} is held by {newest.writer}, epoch {newest.epoch}: "
            f"last heartbeat {when} ({age:.1f} s ago, within the {timeout:g} s heartbeat "
            "timeout); open it with takeover=True (--takeover) to fence that writer"
        )
