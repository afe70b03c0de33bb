"""What ``snapkv check`` reports: one dataclass per file, the chain, findings, repair actions.

Plain frozen data, JSON-ready through :meth:`CheckReport.to_dict`, so the
command, tests and other programs read the same report. How each field is
found is :mod:`snapkv.check.verify`; what a repair does with the actions is
:mod:`snapkv.check.repair`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from snapkv import journal as jr
from snapkv.errors import CorruptJournalError, SnapkvError

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

# The journal status of zeros that open() cuts after the newest journal's
# records without loss (FORMAT.md J6 rule 3), as recovery's plan says.
ZEROS = "zeros"
#: A zero-filled tail's kind (``JournalReport.tail``), as the journal reader names it.
TAIL_ZERO = jr.TAIL_ZERO

#: What a repair puts between a file's name and its backup's UTC time stamp.
BACKUP_INFIX = ".bak-"


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

    ``status`` is ``"ok"`` (ends exactly after a record), ``"zeros"`` (only
    in a directory's check: the newest journal's records are followed by
    zeros only, preallocated space a process that did not close the store
    left, which ``open()`` cuts without loss; ``tail`` is ``"zero-filled"``),
    ``"tail"`` (a ``tail`` of kind ``"torn"``, ``"zero-filled"`` or
    ``"garbage"`` follows the last good record and is lost), ``"damaged"``
    (damage before the tail: ``offset`` and ``check`` as
    :class:`~snapkv.errors.CorruptJournalError` gives them, with
    ``discarded_records`` valid-looking records after it),
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


#: What ``open()`` (default options) does with the directory.
OPENS = "opens"  # loads everything
OPENS_WITH_LOSS = "opens-with-loss"  # drops a torn or garbage journal tail (not zeros)
REFUSES = "refuses"  # raises; nothing is loaded


@dataclass(frozen=True)
class Prediction:
    """What ``snapkv.open(directory)`` does, found by the recovery rules ``open()`` runs.

    ``outcome`` is ``"opens"``, ``"opens-with-loss"`` (``lost`` says what is
    dropped, one sentence each) or ``"refuses"``: then ``error`` is the
    exception's class name (``"CorruptSnapshotError"``, ``"CorruptJournalError"``,
    ``"MediumError"``), ``message`` its text, and ``reason``, ``offset`` and
    ``check`` its fields when it has them. ``name`` is the file the error is about.
    """

    outcome: str
    lost: tuple[str, ...] = ()
    error: str = ""
    message: str = ""
    reason: str = ""
    name: str = ""
    offset: int | None = None
    check: str = ""


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
    prediction: Prediction = Prediction(OPENS)

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

    @property
    def removed(self) -> Totals:
        """What truncation cut out of files (the originals are in ``backups``)."""
        return Totals.of(a for a in self.actions if a.kind == "truncate")

    @property
    def set_aside(self) -> Totals:
        """What was only renamed to ``*.corrupt``: still whole on disk, no longer read."""
        return Totals.of(a for a in self.actions if a.kind == "set-aside")

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON-ready data."""
        return {
            "path": self.path,
            "actions": [asdict(action) for action in self.actions],
            "backups": list(self.backups),
            "lost_bytes": self.lost_bytes,
            "lost_records": self.lost_records,
            "removed": asdict(self.removed),
            "set_aside": asdict(self.set_aside),
            "after": self.after.to_dict(),
        }


@dataclass(frozen=True)
class Totals:
    """One kind of repair action, summed: files, bytes, and the records among the bytes.

    ``records`` counts the complete journal records of the files whose
    records can be counted; ``uncounted`` is the number of files whose
    contents cannot be (a corrupt snapshot, a journal with a bad header).
    """

    files: int = 0
    bytes: int = 0
    records: int = 0
    uncounted: int = 0

    @classmethod
    def of(cls, actions: Iterable[RepairAction]) -> Totals:
        """The totals of ``actions``."""
        files = size = records = uncounted = 0
        for action in actions:
            files += 1
            size += action.lost_bytes
            if action.lost_records is None:
                uncounted += 1
            else:
                records += action.lost_records
        return cls(files, size, records, uncounted)


def plural(count: int, noun: str, nouns: str = "") -> str:
    """``"1 record"``, ``"2 records"`` (``nouns`` when adding an s is wrong), with separators."""
    return f"{count:,} {noun if count == 1 else nouns or noun + 's'}"


# ------------------------------------------------------------ record counts

#: The name of each value type code of EDIT and PUT records (FORMAT.md J3; the
#: codes of snapkv.values, frozen on disk), for counting without the values layer.
VALUE_TYPE_NAMES = {1: "hash", 2: "list", 3: "set", 4: "zset", 5: "stream"}


def record_counts(ops: Iterable[jr.Op]) -> dict[str, int]:
    """How many effects of each kind ``ops`` (a journal's decoded records) hold.

    Keys are the record names of FORMAT.md part 2 (``SET``, ``EDIT``,
    ``PUT``, ``RENAME``, ``BATCH``, ...), and for EDIT and PUT also
    ``EDIT hash``, ``PUT zset``, ... by value type (``EDIT type 9`` for a
    code no snapkv knows). A BATCH counts once, and its entries by their own
    kinds. Only kinds present appear, in order of first appearance.
    """
    counts: dict[str, int] = {}

    def count(name: str) -> None:
        counts[name] = counts.get(name, 0) + 1

    for op in ops:
        if op[0] == "batch":
            count("BATCH")
            inner: Iterable[Any] = op[1]
        else:
            inner = (op,)
        for effect in inner:
            name = str(effect[0]).upper()
            count(name)
            if name in ("EDIT", "PUT"):
                code = effect[3]
                count(f"{name} {VALUE_TYPE_NAMES.get(code, f'type {code}')}")
    return counts


def journal_record_counts(data: bytes) -> dict[str, int]:
    """:func:`record_counts` of the good records of a journal's bytes (none if its header is bad).

    The records a check keeps: those before any damage or tail, as
    :func:`~snapkv.journal.scan_journal` with ``repair`` reads them.
    """
    try:
        return record_counts(jr.scan_journal(data, repair=True).ops)
    except CorruptJournalError:
        return {}


#: The record kinds of values other than strings (FORMAT.md part 2, J3).
VALUE_RECORDS = frozenset({"EDIT", "PUT", "RENAME"})


def holds_values(counts: dict[str, int]) -> bool:
    """Whether counted records include EDIT, PUT or RENAME: what a journal's record count
    alone does not say (a journal of strings holds what ``N records`` suggests)."""
    return not VALUE_RECORDS.isdisjoint(counts)


def describe_counts(counts: dict[str, int]) -> str:
    """``"2 SET, 3 EDIT (2 hash, 1 list), 1 PUT (1 set), 1 RENAME"``: counts for people."""
    parts = []
    for name, number in counts.items():
        if " " in name:
            continue  # shown inside its record's parentheses
        kinds = [f"{n} {k.split(' ', 1)[1]}" for k, n in counts.items() if k.startswith(name + " ")]
        parts.append(f"{number:,} {name}" + (f" ({', '.join(kinds)})" if kinds else ""))
    return ", ".join(parts)
