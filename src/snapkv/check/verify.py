"""Checking a store directory: every file verified, and open()'s outcome predicted.

Each snapshot generation is decoded in full (:func:`snapkv.codec.scan`) and
each journal scanned (:func:`snapkv.journal.scan_journal`), so the report
says for every file what it holds or where and why it fails. What
``open()`` does with them is not re-derived here: it is
:func:`snapkv.recovery.plan_recovery`, the function ``open()`` runs, over the
file medium's read side without its lock
(:class:`~snapkv.media.file.DirectoryReader`). Its strict run (default options) is the
prediction and the verdict; its repair run (``repair=True``) is the chain of
journals, each journal's role, and the repair plan, so that
``snapkv check --repair`` makes exactly the changes ``open(repair=True)``
would, and leaves a directory that opens to the same data.

Checking takes no lock and is safe while a Store has the directory open: a
Store only appends to journals, publishes snapshots by rename and removes
whole files, so a reader sees each file as it was or as it is (see
:func:`check_directory`).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from snapkv import codec, recovery
from snapkv import journal as jr
from snapkv.check import findings as says
from snapkv.check.report import (
    FALLBACK,
    LOADED,
    NEWER,
    NOTE,
    OBSOLETE,
    OLDER,
    OPENS,
    OPENS_WITH_LOSS,
    REFUSES,
    REPLAYED,
    UNREACHABLE,
    ZEROS,
    ChainReport,
    CheckReport,
    Finding,
    JournalReport,
    KeyspaceCount,
    OtherFile,
    Prediction,
    RepairAction,
    SnapshotReport,
)
from snapkv.errors import CorruptJournalError, CorruptSnapshotError, SnapkvError
from snapkv.media.file import (
    _JOURNAL,
    _SNAPSHOT,
    _TEMP_PREFIX,
    LOCK_NAME,
    REPLICA_NAME,
    DirectoryReader,
    _journal_name,
)

if sys.platform != "win32":  # FileMedium is POSIX only; `import snapkv` works anywhere
    import fcntl

__all__ = ["check_directory", "in_use", "is_journal", "journal_report"]

_BACKUP = re.compile(r".+\.bak-\d{8}T\d{6}Z(?:-\d+)?")
_SET_ASIDE = re.compile(r".+\.corrupt(?:-\d+)?")
#: Extra reads of a directory in use whose files change during the check.
_RETRIES = 3


def check_directory(path: str | os.PathLike[str]) -> CheckReport:
    """Verify every snapshot and journal in ``path`` and predict what ``open()`` does.

    Reads only; safe while a Store has the directory open.

    :raises OSError: ``path`` cannot be listed (missing, not a directory).
    """
    directory = Path(path)
    os.listdir(directory)
    busy = in_use(directory)
    report = check(directory, busy=busy)
    # A live Store may publish and prune while the files are read: the
    # listing would then mix two states (a journal seemingly missing). Read
    # again while the set of files keeps changing under the check.
    for _attempt in range(_RETRIES):
        if not busy or _data_files(directory) == _data_files_of(report):
            return report
        report = check(directory, busy=busy)
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


def in_use(directory: Path) -> bool:
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


def check(directory: Path, *, busy: bool) -> CheckReport:
    """One pass over ``directory``: the files, the prediction, the chain and the repair plan."""
    names = sorted(os.listdir(directory))
    view = DirectoryReader(directory)
    snapshots = _check_snapshots(directory, names)
    scans = {}
    for jid in sorted(int(m.group(1)) for m in map(_JOURNAL.fullmatch, names) if m):
        scanned = _scan_journal(directory, jid)
        if scanned is not None:  # None: removed by a live Store since the listing
            scans[jid] = scanned
    prediction, strict = _predict(view)
    try:
        repairable: recovery.Plan | None = recovery.plan_recovery(view, repair=True)
    except SnapkvError:
        repairable = None  # no generation passes its checks: open(repair=True) refuses too
    chain, roles = _chain(view, snapshots, scans, repairable)
    zeros = _zeros_cut(strict or repairable)
    journals = tuple(
        replace(scans[jid], role=roles[jid], status=ZEROS if jid == zeros else scans[jid].status)
        for jid in sorted(scans)
    )
    others = tuple(_others(directory, names))
    findings: list[Finding] = []
    if busy:
        findings.append(
            Finding(
                NOTE,
                "",
                "a Store (or a repair) has this directory open: checked anyway (files are "
                "only appended, renamed or removed), but a journal tail may be a write in "
                "progress",
            )
        )
    findings += says.prediction_findings(prediction, strict, journals)
    findings += says.snapshot_findings(snapshots, prediction)
    findings += says.journal_findings(journals, prediction)
    findings += says.other_findings(others, busy)
    return CheckReport(
        path=str(directory),
        in_use=busy,
        snapshots=snapshots,
        journals=journals,
        others=others,
        chain=chain,
        findings=tuple(findings),
        repairs=tuple(_plan(snapshots, journals, repairable)),
        prediction=prediction,
    )


def _predict(view: DirectoryReader) -> tuple[Prediction, recovery.Plan | None]:
    """What ``open()`` (default options) does: the recovery it runs, run here."""
    try:
        plan = recovery.plan_recovery(view)
    except SnapkvError as exc:
        source = getattr(exc, "source", "")
        return (
            Prediction(
                REFUSES,
                error=type(exc).__name__,
                message=str(exc),
                reason=getattr(exc, "reason", ""),
                name=Path(source).name if source else "",
                offset=getattr(exc, "offset", None),
                check=getattr(exc, "check", ""),
            ),
            None,
        )
    needed = plan.keyspaces
    if needed > recovery.DEFAULT_DATABASES:
        # Not damage: the store was written with more keyspaces than open()'s default.
        message = (
            f"the data names keyspace {needed - 1}, but open() has "
            f"{recovery.DEFAULT_DATABASES} by default (use databases={needed} or more)"
        )
        return Prediction(REFUSES, error="ValueError", message=message), plan
    if plan.damaged:
        return Prediction(OPENS_WITH_LOSS, lost=plan.lost), plan
    return Prediction(OPENS), plan


def _zeros_cut(plan: recovery.Plan | None) -> int | None:
    """The journal whose tail recovery cuts as zeros that lose nothing (J6 rule 3), if any.

    Recovery decides it (``JournalPlan.zeros_cut``): only the newest journal
    may have a tail, and zeros there held no acknowledged write.
    """
    if plan is None or plan.journals.cut is None or not plan.journals.zeros_cut:
        return None
    return plan.journals.cut[0]


def _check_snapshots(directory: Path, names: list[str]) -> tuple[SnapshotReport, ...]:
    reports: list[SnapshotReport] = []
    loaded = False
    for name in sorted((n for n in names if _SNAPSHOT.fullmatch(n)), reverse=True):
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
    name = _journal_name(jid)
    path = directory / name
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None  # removed by a live Store since the listing
    except OSError as exc:
        return JournalReport(name, jid, _size(path), "unreadable", "", error=str(exc))
    return journal_report(name, data, jid)


def is_journal(data: bytes) -> bool:
    """Whether ``data`` starts with the journal's magic (how ``snapkv inspect`` knows one)."""
    return data.startswith(jr.MAGIC)


def journal_report(name: str, data: bytes, jid: int | None = None) -> JournalReport:
    """What one journal holds, read alone: its good records, and what follows them.

    ``jid`` is the id the header must carry; by default the one the file's
    name promises (any, for another name). The ``role`` is left empty: only
    the directory's chain gives one.
    """
    if jid is None and (named := _JOURNAL.fullmatch(name)):
        jid = int(named.group(1))
    try:
        # repair=True raises only for a bad header, and otherwise reports
        # damage before the tail instead of raising: one pass tells all.
        scan = jr.scan_journal(data, jid=jid, repair=True)
    except CorruptJournalError as exc:
        return JournalReport(
            name,
            -1 if jid is None else jid,
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
        scan.jid,
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
    view: DirectoryReader,
    snapshots: tuple[SnapshotReport, ...],
    journals: dict[int, JournalReport],
    plan: recovery.Plan | None,
) -> tuple[ChainReport, dict[int, str]]:
    """The journals recovery replays (as ``open(repair=True)`` reads them), and every role."""
    base = next((s for s in snapshots if s.status == "ok"), None)
    first = base.journal_next if base is not None else 0
    if plan is None:
        try:
            chain = recovery.plan_journals(view, first, repair=True)
        except SnapkvError:
            chain = recovery.JournalPlan()
    else:
        chain = plan.journals
    replay, aside = chain.journals, chain.aside
    roles: dict[int, str] = {}
    # Journals the loaded snapshot contains: still needed if an older valid
    # generation would replay them (a snapshot without META replays all).
    older_next = [s.journal_next for s in snapshots if s.status == "ok" and s is not base]
    for jid in journals:
        if jid in replay:
            roles[jid] = REPLAYED
        elif jid in aside or jid >= first:
            roles[jid] = UNREACHABLE
        elif any(n <= jid for n in older_next):
            roles[jid] = FALLBACK
        else:
            roles[jid] = OBSOLETE
    report = ChainReport(
        snapshot=base.name if base is not None else None,
        journal_next=first,
        replay=tuple(jid for jid in replay if jid in journals),
        missing=chain.missing,
        unreachable=tuple(jid for jid in sorted(journals) if roles[jid] == UNREACHABLE),
        fallback=tuple(jid for jid in sorted(journals) if roles[jid] == FALLBACK),
        obsolete=tuple(jid for jid in sorted(journals) if roles[jid] == OBSOLETE),
    )
    return report, roles


def _others(directory: Path, names: list[str]) -> Iterator[OtherFile]:
    for name in names:
        if name in (LOCK_NAME, REPLICA_NAME) or _SNAPSHOT.fullmatch(name):
            continue
        if _JOURNAL.fullmatch(name):
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


# ------------------------------------------------------------------ planning


def _plan(
    snapshots: tuple[SnapshotReport, ...],
    journals: tuple[JournalReport, ...],
    plan: recovery.Plan | None,
) -> Iterator[RepairAction]:
    """The changes ``open(repair=True)`` would make, in a crash-safe order.

    Set-asides first (snapshots, then journals newest first), truncation
    last: a crash between two leaves a directory that ``open()`` still
    refuses or opens to the same prefix, never one that replays writes
    after a hole. Corrupt older snapshots are set aside too: no recovery
    reads them, but they would count toward ``keep``.
    """
    if plan is None:
        return  # no generation passes its checks: nothing recovery could load
    for snap in snapshots:
        if snap.status != "ok":
            why = (
                says.where(snap.offset, snap.error, snap.check)
                if snap.status == "corrupt"
                else snap.error
            )
            reason = f"snapshot {snap.status}: {why}"
            yield RepairAction("set-aside", snap.name, reason, snap.size, 0, snap.size, None)
    by_id = {journal.jid: journal for journal in journals}
    for jid in sorted(plan.journals.aside, reverse=True):
        journal = by_id.get(jid)
        if journal is None:
            continue
        if journal.role == UNREACHABLE and journal.status == "ok":
            reason = "comes after a missing or damaged journal"
        elif journal.status in ("bad-header", "unreadable"):
            reason = f"journal {journal.status}: {says.journal_problem(journal)}"
        else:
            problem = says.journal_problem(journal)
            reason = f"comes after a missing or damaged journal; itself {problem}"
        countable = journal.status not in ("bad-header", "unreadable")
        records = journal.records + journal.discarded_records if countable else None
        yield RepairAction(
            "set-aside", journal.name, reason, journal.size, 0, journal.size, records
        )
    # Zeros after the newest journal's records are cut by open() itself and
    # lose nothing: no repair is needed for them.
    if plan.journals.cut is not None and not plan.journals.zeros_cut:
        jid, keep = plan.journals.cut
        journal = by_id.get(jid)
        if journal is not None:
            yield RepairAction(
                "truncate",
                journal.name,
                f"journal {'damaged ' if journal.status == 'damaged' else ''}"
                f"{says.journal_problem(journal)}",
                journal.size,
                keep,
                journal.size - keep,
                journal.discarded_records,
            )
