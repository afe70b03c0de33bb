"""Verify a store directory offline, and repair it: what ``snapkv check`` runs.

The model is Redis's pair of tools, ``redis-check-rdb`` (verify every
snapshot) and ``redis-check-aof --fix`` (truncate a damaged log after asking):
one report for the whole directory, then, if asked, a repair that keeps a
backup of everything it changes.

* :mod:`snapkv.check.report`: the report's data (files, chain, findings,
  prediction, repair actions), JSON-ready;
* :mod:`snapkv.check.verify`: :func:`check_directory` reads every file and
  predicts what ``open()`` does by running the recovery ``open()`` runs
  (:mod:`snapkv.recovery`) over the file medium's read side, without its lock;
* :mod:`snapkv.check.repair`: :func:`repair_directory` makes the changes
  ``open(repair=True)`` would make, with backups, under the directory's lock.

The verdict: ``ok`` (``open()`` loads everything and every file passes its
checks), ``recoverable-with-loss`` (``open()`` succeeds but drops a torn or
garbage journal tail: the report says how many bytes; zeros after the newest
journal's records are cut without loss, so they leave the verdict ``ok``) or
``damaged`` (``open()`` refuses, and the report says why; or a file that only
a fallback would read fails its checks). ``report.prediction`` says what
``open()`` does, exactly: opens, opens with loss, or refuses with which error.
"""

from snapkv.check.repair import repair_directory
from snapkv.check.report import (
    DAMAGE,
    LOSS,
    NOTE,
    OPENS,
    OPENS_WITH_LOSS,
    REFUSES,
    TAIL_ZERO,
    VERDICT_DAMAGED,
    VERDICT_LOSS,
    VERDICT_OK,
    ZEROS,
    ChainReport,
    CheckReport,
    DirectoryChangedError,
    Finding,
    JournalReport,
    KeyspaceCount,
    OtherFile,
    Prediction,
    RepairAction,
    RepairResult,
    SnapshotReport,
    Totals,
    plural,
)
from snapkv.check.verify import check_directory, is_journal, journal_report

__all__ = [
    "DAMAGE",
    "LOSS",
    "NOTE",
    "OPENS",
    "OPENS_WITH_LOSS",
    "REFUSES",
    "TAIL_ZERO",
    "VERDICT_DAMAGED",
    "VERDICT_LOSS",
    "VERDICT_OK",
    "ZEROS",
    "ChainReport",
    "CheckReport",
    "DirectoryChangedError",
    "Finding",
    "JournalReport",
    "KeyspaceCount",
    "OtherFile",
    "Prediction",
    "RepairAction",
    "RepairResult",
    "SnapshotReport",
    "Totals",
    "check_directory",
    "is_journal",
    "journal_report",
    "plural",
    "repair_directory",
]
