"""Verify a store directory offline, and repair it: what ``snapkv check`` runs.

The model is Redis's pair of tools, ``redis-check-rdb`` (verify every
snapshot) and ``redis-check-aof --fix`` (truncate a damaged log after asking):
one report for the whole directory, then, if asked, a repair that keeps a
backup of everything it changes.

:func:`check_directory` reads every file and judges it exactly as recovery
(:meth:`snapkv.Store.restore`) would:

* every snapshot generation is decoded in full (:func:`snapkv.codec.scan`):
  entries and expiry times per keyspace and ``journal_next``, or the check
  that failed and its offset;
* every journal is scanned (:func:`snapkv.journal.scan_journal`): its good
  records, and its tail (clean, torn, zero-filled, garbage) or the offset and
  check of damage before the tail;
* the chain: the newest valid snapshot, and the journals ``open()`` would
  replay on top of it (ids from its ``journal_next`` on, consecutive), the
  ids missing from that chain, the journals an older generation still needs,
  the obsolete ones, and leftovers (unfinished temporary files, files set
  aside as corrupt, backups of earlier repairs).

The verdict says what ``snapkv.open()`` (default options) would do:
``ok`` (it loads everything), ``recoverable-with-loss`` (it succeeds but
drops a torn, zero-filled or garbage journal tail: the report says how many
bytes) or ``damaged`` (it refuses, and the report says why; or a file that
only a fallback would read fails its checks).

:func:`repair_directory` makes ``open()`` succeed again while keeping a
*prefix* of the history, as ``redis-check-aof --fix`` does: damage in a
journal is truncated to the last good record, every later journal of the
chain is set aside (their writes came after the lost ones, so applying them
would produce a state that never existed), and corrupt snapshots are set
aside as ``Store.restore(fallback=True)`` does. Note that this is stricter
than ``open(repair=True)``, which skips only the damaged bytes and goes on
with later journals. Files are never deleted: a truncated file is first
copied to ``<name>.bak-<UTC time>`` (synced before the original changes),
and a file set aside is renamed to ``<name>.corrupt``, which is its own
backup. Actions run in an order that is safe against a crash between any
two: set-asides (newest journals first) before truncations, so a partial
repair leaves a directory that ``open()`` either still refuses or opens to
the same prefix, never one that replays writes after a hole; checking and
repairing again completes it.

Concurrency: checking takes no lock and is safe while a Store has the
directory open, because a Store only appends to journals, publishes
snapshots by rename and removes whole files: a reader sees each file as it
was or as it is. The report then says ``in_use``, and a journal tail may be a
write in progress rather than damage. Whether the directory is in use is
found by trying a shared ``flock`` on ``LOCK`` and releasing it at once; a
Store opening in that same instant fails with StoreLockedError and can
retry. Repairing takes the ``LOCK`` exclusively (non-blocking; a Store that
has the directory open makes it fail with
:class:`~snapkv.errors.StoreLockedError`), re-checks under the lock, and
refuses (:class:`DirectoryChangedError`) if anything changed since the
report it was given, so that what the user confirmed is exactly what runs.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from snapkv import codec
from snapkv import journal as jr
from snapkv.errors import (
    CorruptJournalError,
    CorruptSnapshotError,
    MediumError,
    SnapkvError,
    StoreLockedError,
)

# The names FileMedium gives its files: one definition, shared.
from snapkv.media.file import _JOURNAL, _SNAPSHOT, _TEMP_PREFIX, CORRUPT_SUFFIX, LOCK_NAME

if sys.platform != "win32":  # FileMedium is POSIX only; `import snapkv` works anywhere
    import fcntl

__all__ = [
    "DAMAGE",
    "LOSS",
    "NOTE",
    "VERDICT_DAMAGED",
    "VERDICT_LOSS",
    "VERDICT_OK",
    "ChainReport",
    "CheckReport",
    "DirectoryChangedError",
    "Finding",
    "JournalReport",
    "KeyspaceCount",
    "OtherFile",
    "RepairAction",
    "RepairResult",
    "SnapshotReport",
    "check_directory",
    "repair_directory",
]

VERDICT_OK = "ok"
VERDICT_LOSS = "recoverable-with-loss"
VERDICT_DAMAGED = "damaged"

# Finding severities: damage makes the verdict "damaged", loss makes it
# "recoverable-with-loss", a note changes nothing.
DAMAGE, LOSS, NOTE = "damage", "loss", "note"

# Snapshot roles.
LOADED = "loaded"  # the generation open() loads: the newest that passes every check
NEWER = "newer"  # newer than the loaded one, and failed a check: open() refuses
OLDER = "older"  # kept for fallback

# Journal roles.
REPLAYED = "replayed"  # open() replays it on top of the loaded snapshot
UNREACHABLE = "unreachable"  # after a missing journal or a damaged one: open() refuses
FALLBACK = "fallback"  # contained in the loaded snapshot, needed by an older generation
OBSOLETE = "obsolete"  # needed by no valid snapshot; the next save removes it

# Backups of truncated files and the names of files set aside.
BACKUP_INFIX = ".bak-"
_BACKUP = re.compile(r".+\.bak-\d{8}T\d{6}Z(?:-\d+)?")
_SET_ASIDE = re.compile(r".+\.corrupt(?:-\d+)?")
_COPY_CHUNK = 1 << 20
#: Extra reads of a directory in use whose files change during the check.
_RETRIES = 3


class DirectoryChangedError(SnapkvError):
    """The directory changed between the check and the repair; nothing was repaired.

    Repair only ever does what the report it was given planned (what the
    user confirmed): check again, then repair.
    """


# ---------------------------------------------------------------- the report


@dataclass(frozen=True)
class KeyspaceCount:
    """Entries of one keyspace in a snapshot, and how many of them have an expiry time."""

    number: int
    entries: int
    expiring: int


@dataclass(frozen=True)
class SnapshotReport:
    """One snapshot generation: what it holds, or the check it failed and where.

    ``status`` is ``"ok"``, ``"corrupt"`` (``error``, ``offset`` and ``check``
    say why, as :class:`~snapkv.errors.CorruptSnapshotError` does) or
    ``"unreadable"`` (the OS refused; ``error`` says why). ``role`` is
    ``"loaded"`` (what ``open()`` loads), ``"newer"`` (newer than that one,
    so ``open()`` refuses) or ``"older"`` (kept for fallback).
    """

    name: str
    generation: int
    size: int
    status: str
    role: str
    version: int = 0
    entries: int = 0
    expiring: int = 0
    keyspaces: tuple[KeyspaceCount, ...] = ()
    journal_next: int = 0
    records: int = 0
    error: str = ""
    offset: int | None = None
    check: str = ""


@dataclass(frozen=True)
class JournalReport:
    """One journal: its good records, and what follows them.

    ``status`` is ``"ok"`` (ends exactly after a record), ``"tail"`` (a
    ``tail`` of kind ``"torn"``, ``"zero-filled"`` or ``"garbage"`` follows
    the last good record), ``"damaged"`` (damage before the tail: ``offset``
    and ``check`` as :class:`~snapkv.errors.CorruptJournalError` gives them,
    with ``discarded_records`` valid-looking records after it),
    ``"bad-header"`` (nothing in it can be trusted) or ``"unreadable"``.
    ``records`` counts the good records before ``valid_end``; the
    ``dropped_bytes`` after it are what recovery (or a repair) drops.
    ``role`` is ``"replayed"``, ``"unreachable"``, ``"fallback"`` or
    ``"obsolete"`` (see the module docstring).
    """

    name: str
    jid: int
    size: int
    status: str
    role: str
    records: int = 0
    valid_end: int = 0
    tail: str = jr.TAIL_CLEAN
    dropped_bytes: int = 0
    discarded_records: int = 0
    description: str = ""
    error: str = ""
    offset: int | None = None
    check: str = ""


@dataclass(frozen=True)
class OtherFile:
    """A file that is neither a snapshot nor a journal.

    ``kind``: ``"temporary"`` (an unfinished publish or journal creation,
    removed by the next ``open()``), ``"set-aside"`` (a ``.corrupt`` file,
    never read again), ``"backup"`` (a copy made by a repair) or
    ``"unknown"`` (not snapkv's; ignored).
    """

    name: str
    kind: str
    size: int


@dataclass(frozen=True)
class ChainReport:
    """What recovery reads: the loaded snapshot, then the journals it replays.

    ``snapshot`` is ``None`` when no snapshot passes its checks (recovery
    starts from an empty store). ``replay`` is what ``open()`` replays, in
    order, up to the first missing or damaged journal; ``missing`` lists the
    absent ids as inclusive ``(first, last)`` ranges; ``unreachable`` the
    journals after the first break, which ``open()`` refuses to skip.
    """

    snapshot: str | None
    journal_next: int
    replay: tuple[int, ...] = ()
    missing: tuple[tuple[int, int], ...] = ()
    unreachable: tuple[int, ...] = ()
    fallback: tuple[int, ...] = ()
    obsolete: tuple[int, ...] = ()


@dataclass(frozen=True)
class Finding:
    """One sentence of the verdict: ``severity`` is ``"damage"``, ``"loss"`` or ``"note"``."""

    severity: str
    name: str
    message: str


@dataclass(frozen=True)
class RepairAction:
    """One change a repair makes to one file, and exactly what it loses.

    ``kind`` is ``"truncate"`` (cut the file to ``keep`` bytes, after
    copying it to ``backup``) or ``"set-aside"`` (rename it to ``target``,
    filled in once done, so recovery no longer reads it). ``lost_bytes`` are
    the bytes recovery no longer reads; ``lost_records`` the complete
    records among them, ``None`` when they cannot be counted (a corrupt
    snapshot, a journal with a bad header).
    """

    kind: str
    name: str
    reason: str
    size: int
    keep: int
    lost_bytes: int
    lost_records: int | None
    target: str = ""
    backup: str = ""


@dataclass(frozen=True)
class CheckReport:
    """Everything :func:`check_directory` found, the verdict, and the repair it would make."""

    path: str
    in_use: bool
    snapshots: tuple[SnapshotReport, ...]
    journals: tuple[JournalReport, ...]
    others: tuple[OtherFile, ...]
    chain: ChainReport
    findings: tuple[Finding, ...]
    repairs: tuple[RepairAction, ...]

    @property
    def verdict(self) -> str:
        """``"ok"``, ``"recoverable-with-loss"`` or ``"damaged"`` (see the module docstring)."""
        severities = {finding.severity for finding in self.findings}
        if DAMAGE in severities:
            return VERDICT_DAMAGED
        if LOSS in severities:
            return VERDICT_LOSS
        return VERDICT_OK

    @property
    def ok(self) -> bool:
        """Whether every file passed every check and ``open()`` would load everything."""
        return self.verdict == VERDICT_OK

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready data (``snapkv check --json`` prints it)."""
        data = asdict(self)
        data["verdict"] = self.verdict
        return data


@dataclass(frozen=True)
class RepairResult:
    """What :func:`repair_directory` did, what was lost, and the check made afterwards."""

    path: str
    actions: tuple[RepairAction, ...]
    after: CheckReport
    backups: tuple[str, ...] = field(default=())

    @property
    def lost_bytes(self) -> int:
        """Bytes recovery no longer reads (still on disk, in backups or set-aside files)."""
        return sum(action.lost_bytes for action in self.actions)

    @property
    def lost_records(self) -> int:
        """Complete journal records no longer replayed (countable ones only)."""
        return sum(action.lost_records or 0 for action in self.actions)

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON-ready data."""
        return {
            "path": self.path,
            "actions": [asdict(action) for action in self.actions],
            "backups": list(self.backups),
            "lost_bytes": self.lost_bytes,
            "lost_records": self.lost_records,
            "after": self.after.to_dict(),
        }


# ----------------------------------------------------------------- checking


def check_directory(path: str | os.PathLike[str]) -> CheckReport:
    """Verify every snapshot and journal in ``path`` and judge what ``open()`` would do.

    Reads only; safe while a Store has the directory open (see the module
    docstring).

    :raises OSError: ``path`` cannot be listed (missing, not a directory).
    """
    directory = Path(path)
    in_use = _in_use(directory)
    report = _check(directory, in_use=in_use)
    # A live Store may publish and prune while the files are read: the
    # listing would then mix two states (a journal seemingly missing). Read
    # again while the set of files keeps changing under the check.
    for _attempt in range(_RETRIES):
        if not in_use or _data_files(directory) == _data_files_of(report):
            return report
        report = _check(directory, in_use=in_use)
    changing = Finding(
        NOTE,
        "",
        "the files changed while they were checked (a Store is saving): the report may "
        "mix two states; check again",
    )
    return replace(report, findings=(*report.findings, changing))


def _data_files(directory: Path) -> set[str]:
    return {n for n in os.listdir(directory) if _SNAPSHOT.fullmatch(n) or _JOURNAL.fullmatch(n)}


def _data_files_of(report: CheckReport) -> set[str]:
    return {s.name for s in report.snapshots} | {j.name for j in report.journals}


def _in_use(directory: Path) -> bool:
    """Whether a Store holds ``LOCK``: try a shared flock and release it at once."""
    if sys.platform == "win32":  # pragma: no cover - FileMedium needs POSIX locks
        return False
    try:
        fd = os.open(directory / LOCK_NAME, os.O_RDONLY)
    except FileNotFoundError:
        return False  # never opened by a Store, or the LOCK was removed: no Store has it
    except OSError:
        return False  # unreadable LOCK: cannot tell; the files are checked all the same
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases the probe's lock
    return False


def _check(directory: Path, *, in_use: bool) -> CheckReport:
    names = sorted(os.listdir(directory))
    findings: list[Finding] = []
    if in_use:
        findings.append(
            Finding(
                NOTE,
                "",
                "a Store (or a repair) has this directory open: checked anyway (files are "
                "only appended, renamed or removed), but a journal tail may be a write in "
                "progress",
            )
        )
    snapshot_names = sorted(
        (name for name in names if _SNAPSHOT.fullmatch(name)), reverse=True
    )  # zero-padded numbers: name order is number order
    journal_ids = sorted(int(m.group(1)) for m in map(_JOURNAL.fullmatch, names) if m)
    snapshots = _check_snapshots(directory, snapshot_names)
    base = next((s for s in snapshots if s.status == "ok"), None)
    first = base.journal_next if base is not None else 0
    scans: dict[int, JournalReport] = {}
    for jid in journal_ids:
        scanned = _scan_journal(directory, jid)
        if scanned is not None:  # None: removed by a live Store since the listing
            scans[jid] = scanned
    chain, roles = _chain(base, snapshots, scans, first)
    journals = tuple(replace(scans[jid], role=roles[jid]) for jid in sorted(scans))
    others = tuple(_others(directory, names))
    findings += _snapshot_findings(snapshots, base)
    findings += _journal_findings(journals, chain)
    findings += _other_findings(others, in_use)
    return CheckReport(
        path=str(directory),
        in_use=in_use,
        snapshots=snapshots,
        journals=journals,
        others=others,
        chain=chain,
        findings=tuple(findings),
        repairs=tuple(_plan(snapshots, journals)),
    )


def _check_snapshots(directory: Path, names: list[str]) -> tuple[SnapshotReport, ...]:
    reports: list[SnapshotReport] = []
    loaded = False
    for name in names:
        number = int(name[len("snapshot-") : -len(".skv")])
        path = directory / name
        role = OLDER if loaded else NEWER
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue  # pruned by a live Store since the listing: not ours to judge
        except OSError as exc:
            size = _size(path)
            reports.append(SnapshotReport(name, number, size, "unreadable", role, error=str(exc)))
            continue
        try:
            info = codec.scan(data)
        except CorruptSnapshotError as exc:
            reports.append(
                SnapshotReport(
                    name,
                    number,
                    len(data),
                    "corrupt",
                    role,
                    error=exc.reason,
                    offset=exc.offset,
                    check=exc.check,
                )
            )
            continue
        reports.append(
            SnapshotReport(
                name,
                number,
                info.size,
                "ok",
                OLDER if loaded else LOADED,
                version=info.version,
                entries=info.entries,
                expiring=info.expiring,
                keyspaces=tuple(
                    KeyspaceCount(k.number, k.entries, k.expiring) for k in info.keyspaces
                ),
                journal_next=info.journal_next,
                records=info.records,
            )
        )
        loaded = True
    return tuple(reports)


def _scan_journal(directory: Path, jid: int) -> JournalReport | None:
    name = f"journal-{jid:016d}.skj"
    path = directory / name
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None  # removed by a live Store since the listing
    except OSError as exc:
        return JournalReport(name, jid, _size(path), "unreadable", "", error=str(exc))
    try:
        # repair=True raises only for a bad header, and otherwise reports
        # damage before the tail instead of raising: one pass tells all.
        scan = jr.scan_journal(data, jid=jid, repair=True)
    except CorruptJournalError as exc:
        return JournalReport(
            name,
            jid,
            len(data),
            "bad-header",
            "",
            dropped_bytes=len(data),
            description=f"bad header: {exc.reason}",
            error=exc.reason,
            offset=exc.offset,
            check=exc.check,
        )
    damage = scan.damage
    status = {jr.TAIL_CLEAN: "ok", jr.TAIL_DAMAGED: "damaged"}.get(scan.tail, "tail")
    return JournalReport(
        name,
        jid,
        scan.size,
        status,
        "",
        records=len(scan.ops) + scan.skipped_records,
        valid_end=scan.valid_end,
        tail=scan.tail,
        dropped_bytes=scan.dropped_bytes,
        discarded_records=scan.discarded_records,
        description=scan.describe(),
        error=damage.reason if damage is not None else "",
        offset=damage.offset if damage is not None else None,
        check=damage.check if damage is not None else "",
    )


def _chain(
    base: SnapshotReport | None,
    snapshots: tuple[SnapshotReport, ...],
    journals: dict[int, JournalReport],
    first: int,
) -> tuple[ChainReport, dict[int, str]]:
    """The journals recovery replays, as ``Store.restore`` chooses them; and every role."""
    ids = sorted(journals)
    candidates = [jid for jid in ids if jid >= first]
    roles: dict[int, str] = {}
    # Journals the loaded snapshot contains: still needed if an older valid
    # generation would replay them (a snapshot without META replays all).
    older_next = [s.journal_next for s in snapshots if s.status == "ok" and s is not base]
    for jid in ids:
        if jid < first:
            roles[jid] = FALLBACK if any(n <= jid for n in older_next) else OBSOLETE
    replay: list[int] = []
    unreachable: list[int] = []
    expected = first or (candidates[0] if candidates else 0)
    broken = False
    for jid in candidates:
        if broken or jid != expected:
            broken = True
            unreachable.append(jid)
            continue
        replay.append(jid)
        expected += 1
        if journals[jid].status in ("bad-header", "unreadable", "damaged") or (
            journals[jid].status == "tail" and jid != candidates[-1]
        ):
            broken = True  # open() refuses here: what follows is never replayed
    missing: list[tuple[int, int]] = []
    previous = (first or (candidates[0] if candidates else 0)) - 1
    for jid in candidates:
        if jid > previous + 1:
            missing.append((previous + 1, jid - 1))
        previous = jid
    for jid in replay:
        roles[jid] = REPLAYED
    for jid in unreachable:
        roles[jid] = UNREACHABLE
    chain = ChainReport(
        snapshot=base.name if base is not None else None,
        journal_next=first,
        replay=tuple(replay),
        missing=tuple(missing),
        unreachable=tuple(unreachable),
        fallback=tuple(jid for jid in ids if roles[jid] == FALLBACK),
        obsolete=tuple(jid for jid in ids if roles[jid] == OBSOLETE),
    )
    return chain, roles


def _others(directory: Path, names: list[str]) -> Iterator[OtherFile]:
    for name in names:
        if name == LOCK_NAME or _SNAPSHOT.fullmatch(name) or _JOURNAL.fullmatch(name):
            continue
        if name.startswith(_TEMP_PREFIX):
            kind = "temporary"
        elif _SET_ASIDE.fullmatch(name):
            kind = "set-aside"
        elif _BACKUP.fullmatch(name):
            kind = "backup"
        else:
            kind = "unknown"
        yield OtherFile(name, kind, _size(directory / name))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _where(offset: int | None, reason: str, check: str) -> str:
    return f"at offset {offset}: {reason} (check {check})"


def _snapshot_findings(
    snapshots: tuple[SnapshotReport, ...], base: SnapshotReport | None
) -> Iterator[Finding]:
    for snap in snapshots:
        if snap.status == "ok":
            continue
        what = (
            _where(snap.offset, snap.error, snap.check)
            if snap.status == "corrupt"
            else f"unreadable: {snap.error}"
        )
        if snap.role == NEWER:
            instead = (
                f"open(fallback=True) would load {base.name} instead"
                if base is not None
                else "no generation passes its checks: even open(fallback=True) refuses"
            )
            yield Finding(DAMAGE, snap.name, f"open() refuses: snapshot {what}; {instead}")
        else:
            yield Finding(
                DAMAGE,
                snap.name,
                f"older snapshot {what}: open() does not read it, but it cannot serve "
                "as a fallback",
            )


def _journal_findings(journals: tuple[JournalReport, ...], chain: ChainReport) -> Iterator[Finding]:
    if chain.missing:
        shown = ", ".join(str(a) if a == b else f"{a}..{b}" for a, b in chain.missing)
        origin = (
            f"the chain of {chain.snapshot} (journal_next {chain.journal_next})"
            if chain.snapshot is not None
            else "the chain of journals"
        )
        yield Finding(
            DAMAGE,
            "",
            f"open() refuses: journal(s) {shown} missing from {origin}; "
            f"journal(s) {_ids(chain.unreachable)} come after the gap",
        )
    last = chain.replay[-1] if chain.replay else None
    for journal in journals:
        if journal.role == UNREACHABLE:
            if journal.status in ("bad-header", "unreadable"):
                held = f"its records (not countable: {_journal_problem(journal)})"
            else:
                held = f"its {plural(journal.records, 'record')}"
            yield Finding(
                DAMAGE,
                journal.name,
                "open() never replays it: it comes after a missing or damaged journal, so "
                f"{held} were written after lost ones",
            )
            continue
        if journal.status == "ok":
            continue
        what = _journal_problem(journal)
        if journal.role == REPLAYED:
            if journal.status == "tail" and journal.jid == last and not chain.unreachable:
                yield Finding(LOSS, journal.name, f"open() drops a {what}")
            elif journal.status == "tail":
                yield Finding(
                    DAMAGE,
                    journal.name,
                    f"open() refuses: a {what}, but a newer journal follows (check "
                    "tail-not-newest)",
                )
            else:
                yield Finding(DAMAGE, journal.name, f"open() refuses: journal damaged {what}")
        elif journal.role == FALLBACK:
            yield Finding(
                DAMAGE,
                journal.name,
                f"journal damaged {what}: open() does not read it (the loaded snapshot "
                "contains it), but an older generation would need it",
            )
        else:
            yield Finding(
                NOTE,
                journal.name,
                f"obsolete journal damaged {what}: no snapshot needs it; the next save removes it",
            )


def _journal_problem(journal: JournalReport) -> str:
    """What is wrong with a journal, in a few words (for findings and repair reasons)."""
    if journal.status == "unreadable":
        return f"unreadable: {journal.error}"
    if journal.status in ("bad-header", "damaged"):
        return _where(journal.offset, journal.error, journal.check)
    return (
        f"{journal.tail} tail at offset {journal.valid_end}: {journal.dropped_bytes} bytes "
        f"after {plural(journal.records, 'good record')}"
    )


def plural(count: int, noun: str, nouns: str = "") -> str:
    """``"1 record"``, ``"2 records"`` (``nouns`` when adding an s is wrong), with separators."""
    return f"{count:,} {noun if count == 1 else nouns or noun + 's'}"


def _ids(ids: tuple[int, ...]) -> str:
    return ", ".join(map(str, ids)) or "none"


def _other_findings(others: tuple[OtherFile, ...], in_use: bool) -> Iterator[Finding]:
    for other in others:
        if other.kind == "temporary":
            yield Finding(
                NOTE,
                other.name,
                "a publish in progress, or left by an interrupted one"
                if in_use
                else "left by an interrupted publish or journal creation; the next open() "
                "removes it",
            )
        elif other.kind == "set-aside":
            yield Finding(NOTE, other.name, "set aside as corrupt earlier; never read")
        elif other.kind == "backup":
            yield Finding(NOTE, other.name, "backup made by an earlier repair; never read")
        else:
            yield Finding(NOTE, other.name, "not a snapkv file; ignored")


# ------------------------------------------------------------------ planning


def _plan(
    snapshots: tuple[SnapshotReport, ...], journals: tuple[JournalReport, ...]
) -> Iterator[RepairAction]:
    """The repair, in the order it runs: set-asides (newest journal first), then truncations."""
    for snap in snapshots:
        if snap.status != "ok":
            why = (
                _where(snap.offset, snap.error, snap.check)
                if snap.status == "corrupt"
                else snap.error
            )
            reason = f"snapshot {snap.status}: {why}"
            yield RepairAction("set-aside", snap.name, reason, snap.size, 0, snap.size, None)
    asides: list[RepairAction] = []
    truncations: list[RepairAction] = []
    for journal in journals:
        if journal.role == OBSOLETE:
            continue  # nothing reads it, and the next save removes it
        if journal.role == UNREACHABLE:
            asides.append(_set_aside_journal(journal, "comes after a missing or damaged journal"))
        elif journal.status in ("bad-header", "unreadable"):
            asides.append(_set_aside_journal(journal, f"journal {journal.status}"))
        elif journal.status in ("tail", "damaged"):
            truncations.append(
                RepairAction(
                    "truncate",
                    journal.name,
                    f"journal {'damaged ' if journal.status == 'damaged' else ''}"
                    f"{_journal_problem(journal)}",
                    journal.size,
                    journal.valid_end,
                    journal.dropped_bytes,
                    journal.discarded_records,
                )
            )
    yield from sorted(asides, key=lambda action: action.name, reverse=True)
    yield from truncations


def _set_aside_journal(journal: JournalReport, reason: str) -> RepairAction:
    countable = journal.status not in ("bad-header", "unreadable")
    records = journal.records + journal.discarded_records if countable else None
    return RepairAction("set-aside", journal.name, reason, journal.size, 0, journal.size, records)


# ------------------------------------------------------------------ repairing


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
    with _locked(directory):
        fresh = _check(directory, in_use=False)
        if _fingerprint(fresh) != _fingerprint(report):
            raise DirectoryChangedError(
                f"{directory} changed since it was checked; nothing was repaired: check it again"
            )
        done: list[RepairAction] = []
        backups: list[str] = []
        try:
            for action in fresh.repairs:
                if action.kind == "set-aside":
                    target = _unused(directory, action.name + CORRUPT_SUFFIX)
                    os.rename(directory / action.name, directory / target)
                    _fsync_directory(directory)
                    done.append(replace(action, target=target))
                else:
                    backup = _backup(directory, action, clock)
                    backups.append(backup)
                    _truncate(directory / action.name, action.keep)
                    done.append(replace(action, backup=backup))
        except OSError as exc:
            what = "; ".join(f"{a.kind} {a.name}" for a in done) or "nothing"
            raise MediumError(
                f"repair of {directory} failed at {exc.filename or directory}: {exc}; "
                f"done before the failure: {what}"
            ) from exc
        after = _check(directory, in_use=False)
    return RepairResult(str(directory), tuple(done), after, tuple(backups))


def _fingerprint(report: CheckReport) -> tuple[Any, ...]:
    """What must not change between a check and its repair (leftovers may come and go)."""
    return report.snapshots, report.journals, report.repairs


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold ``LOCK`` exclusively, as a Store does, so no Store can open the directory meanwhile."""
    if sys.platform == "win32":  # pragma: no cover - FileMedium needs POSIX locks
        raise MediumError("repair needs POSIX file locking (fcntl)")
    try:
        fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise MediumError(f"cannot open {directory / LOCK_NAME}: {exc}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise StoreLockedError(
                f"refusing to repair {directory}: a Store has it open (lock held by pid "
                f"{holder}); close it first"
            ) from None
        # The pid is for the message a Store opening meanwhile prints.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield
    finally:
        os.close(fd)


def _unused(directory: Path, name: str) -> str:
    """``name``, or ``name-1``, ``name-2``...: the first that does not exist in ``directory``."""
    candidate = name
    number = 0
    while os.path.lexists(directory / candidate):
        number += 1
        candidate = f"{name}-{number}"
    return candidate


def _backup(directory: Path, action: RepairAction, clock: Callable[[], float]) -> str:
    """Copy the file to ``<name>.bak-<UTC time>``, durably, before it is changed.

    Written under a ``.tmp-`` name (which the next ``open()`` removes if the
    copy is interrupted), synced, then renamed and the directory synced: a
    backup exists under its final name only once it is complete on disk.
    """
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(clock()))
    name = _unused(directory, f"{action.name}{BACKUP_INFIX}{stamp}")
    temp = directory / f"{_TEMP_PREFIX}check-{os.getpid()}"
    try:
        with (directory / action.name).open("rb") as source, temp.open("wb") as out:
            shutil.copyfileobj(source, out, _COPY_CHUNK)
            out.flush()
            os.fsync(out.fileno())
            copied = out.tell()
        if copied != action.size:
            raise DirectoryChangedError(
                f"{action.name} changed during the repair ({copied} bytes, checked "
                f"{action.size}); it was not truncated"
            )
        os.rename(temp, directory / name)
        _fsync_directory(directory)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    return name


def _truncate(path: Path, size: int) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
