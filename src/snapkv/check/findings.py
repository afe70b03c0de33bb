"""The sentences of ``snapkv check``'s verdict: what open() does, then each file's problem.

Each finding has a severity: damage makes the verdict ``damaged``, loss makes
it ``recoverable-with-loss``, a note changes nothing. The first findings come
from the prediction (what ``open()`` does, found by :mod:`snapkv.recovery`);
the rest are about files ``open()`` does not read but a fallback or the next
save would (older snapshots, journals an older generation needs, leftovers).
A problem is reported once: the file ``open()`` refuses is not reported again.
"""

from __future__ import annotations

from collections.abc import Iterator

from snapkv import recovery
from snapkv.check.report import (
    DAMAGE,
    FALLBACK,
    LOSS,
    NEWER,
    NOTE,
    REFUSES,
    REPLAYED,
    UNREACHABLE,
    ZEROS,
    Finding,
    JournalReport,
    OtherFile,
    Prediction,
    SnapshotReport,
    plural,
)

__all__ = [
    "journal_findings",
    "journal_problem",
    "other_findings",
    "prediction_findings",
    "snapshot_findings",
    "where",
]


def where(offset: int | None, reason: str, check: str) -> str:
    return f"at offset {offset}: {reason} (check {check})"


def prediction_findings(
    prediction: Prediction, strict: recovery.Plan | None, journals: tuple[JournalReport, ...]
) -> Iterator[Finding]:
    """The verdict's first sentences: open() refuses (and why), or what it drops."""
    if prediction.outcome == REFUSES and prediction.error == "ValueError":
        yield Finding(
            NOTE, prediction.name, f"open() with default options refuses: {prediction.message}"
        )
        return
    if prediction.outcome == REFUSES:
        what = (
            where(prediction.offset, prediction.reason, prediction.check)
            if prediction.reason
            else prediction.message
        )
        yield Finding(DAMAGE, prediction.name, f"open() refuses: {prediction.error} {what}")
        return
    if strict is None:
        return
    replayed = set(strict.journals.journals)
    for journal in journals:
        # Zeros cut after the newest journal's records are no loss (the
        # plan says which: their journal's status is ZEROS).
        if journal.jid in replayed and journal.dropped_bytes and journal.status != ZEROS:
            yield Finding(LOSS, journal.name, f"open() drops a {journal_problem(journal)}")
    for name, reason in strict.snapshot.skipped:
        yield Finding(LOSS, name, f"open() skips it: {reason}")


def snapshot_findings(
    snapshots: tuple[SnapshotReport, ...], prediction: Prediction
) -> Iterator[Finding]:
    for snap in snapshots:
        if snap.status == "ok" or snap.name == prediction.name:
            continue  # the one open() refuses is the verdict's first finding
        what = (
            where(snap.offset, snap.error, snap.check)
            if snap.status == "corrupt"
            else f"unreadable: {snap.error}"
        )
        if snap.role == NEWER:
            yield Finding(DAMAGE, snap.name, f"snapshot {what}; open(fallback=True) skips it")
        else:
            yield Finding(
                DAMAGE,
                snap.name,
                f"older snapshot {what}: open() does not read it, but it cannot serve "
                "as a fallback",
            )


def journal_findings(
    journals: tuple[JournalReport, ...], prediction: Prediction
) -> Iterator[Finding]:
    for journal in journals:
        if journal.name == prediction.name:
            continue  # the verdict's first finding is about it
        if journal.role == UNREACHABLE:
            if journal.status in ("bad-header", "unreadable"):
                held = f"its records (not countable: {journal_problem(journal)})"
            else:
                held = f"its {plural(journal.records, 'record')}"
            yield Finding(
                DAMAGE,
                journal.name,
                "open() never replays it: it comes after a missing or damaged journal, so "
                f"{held} were written after lost ones",
            )
            continue
        if journal.status == "ok" or journal.role == REPLAYED:
            continue  # a replayed journal's problem is open()'s outcome, reported above
        what = journal_problem(journal)
        if journal.role == FALLBACK:
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


def journal_problem(journal: JournalReport) -> str:
    """What is wrong with a journal, in a few words (for findings and repair reasons)."""
    if journal.status == "unreadable":
        return f"unreadable: {journal.error}"
    if journal.status in ("bad-header", "damaged"):
        return where(journal.offset, journal.error, journal.check)
    return (
        f"{journal.tail} tail at offset {journal.valid_end}: {journal.dropped_bytes} bytes "
        f"after {plural(journal.records, 'good record')}"
    )


def other_findings(others: tuple[OtherFile, ...], busy: bool) -> Iterator[Finding]:
    for other in others:
        if other.kind == "temporary":
            yield Finding(
                NOTE,
                other.name,
                "a publish in progress, or left by an interrupted one"
                if busy
                else "left by an interrupted publish or journal creation; the next open() "
                "removes it",
            )
        elif other.kind == "set-aside":
            yield Finding(NOTE, other.name, "set aside as corrupt earlier; never read")
        elif other.kind == "backup":
            yield Finding(NOTE, other.name, "backup made by an earlier repair; never read")
        else:
            yield Finding(NOTE, other.name, "not a snapkv file; ignored")
