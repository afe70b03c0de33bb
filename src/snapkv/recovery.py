"""Recovery: what a medium's snapshots and journals add up to, as a plan. Pure.

docs/FORMAT.md's recovery rules (part 1 section 8 for snapshots, part 2
section J6 for journals) have exactly one implementation, here. Everything
that must agree with them calls it: :meth:`snapkv.Store.restore` (and so
:func:`snapkv.open`), ``snapkv check`` (its verdict is a prediction of what
``open()`` does) and ``snapkv check --repair`` (which makes on disk exactly
the changes ``open(repair=True)`` would make). Nothing here writes: the plan
says what to load, what to cut and what to set aside, and the caller does it
(the Store only once everything has loaded, so a refused restore changes
nothing).

Recovery runs in two steps because the Store needs a lock between them:
:func:`choose_snapshot` (the newest generation that passes every check, or
with ``fallback`` the newest valid one) runs while writers go on, and
:func:`plan_journals` (the chain of journals from the snapshot's
``journal_next``) runs under the Store's lock, so that no record is appended
between reading the journals and continuing the newest one.
:func:`plan_recovery` does both, for readers that hold no lock.

The journal rules, in the order they are applied:

* the ids from ``journal_next`` on are consecutive (``journal-sequence``);
* each journal's header is valid, and damage before its tail is refused
  (``scan_journal``);
* only the newest journal that holds records may have a torn, zero-filled or
  garbage tail (``tail-not-newest``): a writer syncs a journal before it
  writes to the next, so a tail lost in an older one lost acknowledged
  records;
* in the newest journal, a torn or garbage tail is a loss (``dropped``), but
  a zero-filled one is not (``zeros_cut``, ``notes``): it is the space a
  writer preallocated and a process that did not close the store left, or
  what a power loss never made durable, and under every ``fsync`` policy
  no acknowledged write the policy promised to keep is in it. It is cut
  all the same, so that new records follow the last good one. This is the
  one place that decides it: ``Plan.damaged`` and ``Plan.lost`` (what
  ``restore`` reports and ``snapkv check`` predicts) follow from it;
* with ``repair``, each of those refusals instead stops history at the
  damage: the good records before it are kept, the damaged bytes are cut and
  every later journal is set aside, so what is loaded is a prefix of the
  history, never a state with a hole in it. ``repair`` implies ``fallback``.

:mod:`snapkv.rebuild` turns a plan into keyspaces: the snapshot's entries
(outside any lock), then every effect of the replayed records applied in
order and keys already expired dropped.

A refusal is one message, built here and shown as it is by ``open()``,
``snapkv run --dir``, ``snapkv serve --dir`` and ``snapkv check``'s
prediction: the file, the offset and the check, once; what recovery would
drop if asked (the plan these rules make with ``fallback`` or ``repair``,
put into words by :mod:`snapkv.recovery_advice`); and, on a directory, the
``snapkv check DIR --repair`` command that makes those changes with backups.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from snapkv import codec, rebuild
from snapkv import journal as jr
from snapkv import recovery_advice as advice
from snapkv.errors import CorruptJournalError, CorruptSnapshotError, MediumError, SnapkvError

__all__ = [
    "DEFAULT_DATABASES",
    "JournalPlan",
    "Plan",
    "SnapshotChoice",
    "Source",
    "choose_snapshot",
    "plan_journals",
    "plan_recovery",
]


#: Keyspaces a Store has unless told otherwise (Redis's ``databases``); a
#: snapshot or journal naming a higher one needs ``databases=`` to load.
DEFAULT_DATABASES = 16


class Source(Protocol):
    """What recovery reads of a medium: the read side of :class:`~snapkv.media.base.Medium`."""

    def generations(self) -> list[str]: ...
    def read(self, generation: str | None = None) -> bytes | None: ...
    def describe(self, generation: str | None = None) -> str: ...
    def journal_ids(self) -> list[int]: ...
    def read_journal(self, jid: int) -> bytes | None: ...
    def describe_journal(self, jid: int) -> str: ...


@dataclass(frozen=True)
class SnapshotChoice:
    """The snapshot recovery starts from, and the newer ones it had to skip.

    ``generation`` is ``None`` when the medium holds no snapshot (recovery
    starts empty). ``snapshot`` is the decoded snapshot when it was asked
    for (``load=True``), else ``None``; ``journal_next`` is its first
    journal either way, and ``keyspaces`` one more than the highest keyspace
    it holds. ``skipped`` holds ``(generation, reason)`` for each newer
    generation that failed a check (only with ``fallback``): the Store sets
    them aside once the restore has succeeded.
    """

    generation: str | None
    journal_next: int
    size: int = 0
    keyspaces: int = 0
    snapshot: codec.Snapshot | None = field(default=None, repr=False, compare=False)
    skipped: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class JournalPlan:
    """The journals recovery replays on top of a snapshot, and what it drops.

    ``scans`` are the replayed journals, oldest first, each with its effects
    (``scan.ops``). ``cut`` is ``(journal id, size)`` when the last replayed
    journal must be truncated (a dropped tail, or with ``repair`` damage) so
    that new records follow its last good one. ``aside`` are the journals
    ``repair`` sets aside, after a hole in the history. ``dropped`` says, one
    sentence each, what is lost; ``missing`` the absent ids as inclusive
    ``(first, last)`` ranges. ``zeros_cut`` is the number of bytes ``cut``
    removes when they are only zeros after the newest journal's records
    (FORMAT.md J6 rule 3): cut, but not lost, so not in ``dropped``;
    ``notes`` says so in one sentence.
    """

    scans: tuple[jr.JournalScan, ...] = ()
    cut: tuple[int, int] | None = None
    aside: tuple[int, ...] = ()
    dropped: tuple[str, ...] = ()
    missing: tuple[tuple[int, int], ...] = ()
    zeros_cut: int = 0
    notes: tuple[str, ...] = ()

    @property
    def journals(self) -> tuple[int, ...]:
        """The ids replayed, oldest first."""
        return tuple(scan.jid for scan in self.scans)

    @property
    def records(self) -> int:
        """Journal records replayed."""
        return sum(len(scan.ops) for scan in self.scans)

    @property
    def ops(self) -> Iterator[jr.Op]:
        """Every effect to apply, in order."""
        for scan in self.scans:
            yield from scan.ops


@dataclass(frozen=True)
class Plan:
    """A whole recovery: the snapshot, then the journals (see :func:`plan_recovery`)."""

    snapshot: SnapshotChoice
    journals: JournalPlan

    @property
    def damaged(self) -> bool:
        """Whether recovery skips or drops anything (zeros it cuts are no loss: not counted)."""
        return bool(self.snapshot.skipped or self.journals.dropped or self.journals.aside)

    @property
    def keyspaces(self) -> int:
        """What ``databases`` must be at least for the store to load this (0: no data)."""
        return max(self.snapshot.keyspaces, rebuild.keyspaces_written(self.journals.ops))

    @property
    def lost(self) -> tuple[str, ...]:
        """One sentence per thing recovery skips or drops."""
        skipped = tuple(f"{name}: {reason}" for name, reason in self.snapshot.skipped)
        return skipped + self.journals.dropped


def plan_recovery(source: Source, *, fallback: bool = False, repair: bool = False) -> Plan:
    """The whole plan for ``source``, as :meth:`snapkv.Store.restore` would make it.

    The snapshot is verified (:func:`snapkv.codec.scan`: the same checks as
    decoding, without building dicts), not decoded.

    :raises CorruptSnapshotError: what ``restore`` raises; likewise
        :class:`CorruptJournalError` and :class:`MediumError`.
    """
    choice = choose_snapshot(source, fallback=fallback or repair, load=False)
    return Plan(choice, plan_journals(source, choice.journal_next, repair=repair))


def choose_snapshot(source: Source, *, fallback: bool = False, load: bool = True) -> SnapshotChoice:
    """The newest generation that passes every check (part 1, section 8).

    A generation the medium cannot read counts as one that fails a check.
    Without ``fallback`` the first failure is raised; with it, the newest
    valid generation is chosen and the failed ones reported in ``skipped``.

    :raises CorruptSnapshotError: or :class:`MediumError`: the newest
        generation (with ``fallback``, every generation) is unusable.
        Without ``fallback``, the error's message also says what
        ``fallback=True`` would load instead and how to repair (:func:`_advice`).
    """
    try:
        return _choose(source, fallback=fallback, load=load)
    except CorruptSnapshotError as exc:
        if fallback:
            raise
        raise exc.advised(_advice(source)) from None


def _choose(source: Source, *, fallback: bool, load: bool) -> SnapshotChoice:
    skipped: list[tuple[str, str]] = []
    first_error: SnapkvError | None = None
    for generation in source.generations():
        try:
            blob = source.read(generation)
            if blob is None:  # removed since it was listed
                continue
            if load:
                decoded = codec.decode_snapshot(blob)
                snapshot: codec.Snapshot | None = decoded
                journal_next = decoded.journal_next
                keyspaces = max(decoded.spaces, default=-1) + 1
            else:
                info = codec.scan(blob)
                snapshot = None
                journal_next = info.journal_next
                keyspaces = max((k.number for k in info.keyspaces), default=-1) + 1
        except CorruptSnapshotError as exc:
            error: SnapkvError = exc.located(source.describe(generation))
        except MediumError as exc:  # unreadable: as unusable as corrupt
            error = exc
        else:
            return SnapshotChoice(
                generation, journal_next, len(blob), keyspaces, snapshot, tuple(skipped)
            )
        if not fallback:
            raise error from None
        first_error = first_error or error
        skipped.append((generation, str(error)))
    if first_error is not None:
        raise first_error
    return SnapshotChoice(None, 0, 0, 0, codec.Snapshot({}, {}, 0) if load else None)


def plan_journals(source: Source, first: int, *, repair: bool = False) -> JournalPlan:
    """The journals to replay from id ``first`` on (part 2, section J6).

    :raises CorruptJournalError: a missing id, a bad header, damage before a
        tail, a tail in a journal that is not the newest (unless ``repair``);
        its message also says what ``repair=True`` would keep and drop, and
        how to repair (:func:`_advice`).
    :raises MediumError: a journal could not be read (unless ``repair``).
    """
    try:
        return _plan_journals(source, first, repair=repair)
    except CorruptJournalError as exc:
        if repair:
            raise
        raise exc.advised(_advice(source, journal_first=first)) from None


def _plan_journals(source: Source, first: int, *, repair: bool) -> JournalPlan:
    ids = [jid for jid in source.journal_ids() if jid >= first]
    if not ids:
        return JournalPlan()
    start = first or ids[0]
    chain = list(range(start, start + len(ids)))
    missing = _missing(start, ids)
    dropped: list[str] = []
    aside: list[int] = []
    if ids != chain:
        consecutive: list[int] = []
        for jid, want in zip(ids, chain, strict=True):
            if jid != want:
                break
            consecutive.append(jid)
        shown = ", ".join(str(a) if a == b else f"{a}..{b}" for a, b in missing)
        if not repair:
            # The error is about the file that is not there: the first missing one.
            others = "" if missing == ((missing[0][0], missing[0][0]),) else f" (missing: {shown})"
            raise CorruptJournalError(
                f"missing: recovery replays every journal from {start} on, but finds only "
                f"{advice.ids(ids)}{others}",
                offset=0,
                check="journal-sequence",
                source=source.describe_journal(missing[0][0]),
            )
        aside = ids[len(consecutive) :]
        dropped.append(
            f"journal(s) {shown} missing: history stops at the hole; journals {aside} are "
            "set aside, their records not replayed"
        )
        ids = consecutive
    scans: list[jr.JournalScan] = []
    for position, jid in enumerate(ids):
        described = source.describe_journal(jid)
        try:
            blob = source.read_journal(jid)
            if blob is None:
                raise MediumError(f"{described} was listed but vanished while being read")
            scans.append(jr.scan_journal(blob, jid=jid, repair=repair))
        except (CorruptJournalError, MediumError) as exc:
            error = exc.located(described) if isinstance(exc, CorruptJournalError) else exc
            if not repair:
                raise error from None
            # Nothing in it can be trusted (a bad header) or read: a hole.
            aside = ids[position:] + aside
            dropped.append(
                f"{error}; history stops here: journals {aside} are set aside, their "
                "records not replayed"
            )
            break
    # Rotation syncs a journal before creating the next, so only the newest
    # journal that holds anything can have lost its tail to a crash.
    # (Journals after it can be empty: a creation whose directory sync
    # failed leaves one behind while writes go on in the previous one.)
    newest = max(
        (
            i
            for i, scan in enumerate(scans)
            if scan.ops or scan.skipped_records or scan.dropped_bytes
        ),
        default=len(scans) - 1,
    )
    cut = None
    zeros = 0
    notes: tuple[str, ...] = ()
    for position, scan in enumerate(scans):
        if not scan.dropped_bytes:
            continue
        described = source.describe_journal(scan.jid)
        if position == newest and scan.tail == jr.TAIL_ZERO:
            # Rule 3 where the rules allow a tail: zeros after the newest
            # journal's records held nothing a sync made durable or a
            # killed process had handed over. Cut, and said, but no loss.
            cut = (scan.jid, scan.valid_end)
            zeros, notes = scan.dropped_bytes, (f"{described}: {scan.describe_zeros()}",)
            continue
        if position < newest and not repair:
            raise CorruptJournalError(
                f"{scan.tail} tail of {advice.count(scan.dropped_bytes, 'byte')} after "
                f"{advice.count(len(scan.ops), 'good record')} in a journal that is not the "
                f"newest: it was synced before journal {scans[position + 1].jid} began, so those "
                "bytes held acknowledged records",
                offset=scan.valid_end,
                check="tail-not-newest",
                source=described,
            )
        dropped.append(f"{described}: {scan.describe()}")
        cut = (scan.jid, scan.valid_end)
        if position < newest:
            later = [s.jid for s in scans[position + 1 :]] + aside
            dropped.append(
                f"history stops at the damage: journals {later} are set aside, their records "
                "not replayed"
            )
            return JournalPlan(
                tuple(scans[: position + 1]), cut, tuple(later), tuple(dropped), missing
            )
    return JournalPlan(tuple(scans), cut, tuple(aside), tuple(dropped), missing, zeros, notes)


# ------------------------------------------------------------------ refusals
#
# A refusal names the file, the offset and the check once (the error's own
# fields), then says what recovery would drop if asked to recover: the plan
# is made here, by the same rules with fallback or repair, and put into
# words by snapkv.recovery_advice (with the ``snapkv check DIR --repair``
# command that makes those changes on disk, when the medium is a directory).


def _advice(source: Source, *, journal_first: int | None = None) -> str:
    """What to do about a refusal of ``source``: what recovery would drop if asked, and the fix.

    With ``journal_first`` (the snapshot's ``journal_next``) the refusal is
    about the journals: ``repair=True`` keeps what comes before the damage.
    Without, it is about the newest snapshot: ``fallback=True`` loads the
    newest valid generation instead (``repair=True`` when its journals are
    damaged too). Reads the medium again; never raises.
    """
    try:
        if journal_first is None:
            return _snapshot_advice(source)
        plan = _plan_journals(source, journal_first, repair=True)
        return advice.journal_advice(source, plan)
    except SnapkvError as exc:  # the advice must never hide the refusal itself
        return advice.unreadable_advice(source, exc)


def _snapshot_advice(source: Source) -> str:
    try:
        choice = _choose(source, fallback=True, load=False)
    except SnapkvError:
        return advice.no_fallback_advice(source)
    try:
        journals = _plan_journals(source, choice.journal_next, repair=False)
    except (CorruptJournalError, MediumError):
        journals = _plan_journals(source, choice.journal_next, repair=True)
        return advice.snapshot_advice(source, choice, journals, "repair=True")
    return advice.snapshot_advice(source, choice, journals, "fallback=True")


def _missing(start: int, ids: list[int]) -> tuple[tuple[int, int], ...]:
    gaps: list[tuple[int, int]] = []
    previous = start - 1
    for jid in ids:
        if jid > previous + 1:
            gaps.append((previous + 1, jid - 1))
        previous = jid
    return tuple(gaps)
