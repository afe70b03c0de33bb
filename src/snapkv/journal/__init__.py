"""The journal: every change as an effect record, appended before it is acknowledged.

The byte format and the recovery rules are specified in docs/FORMAT.md
(part 2). The package is cut as LevelDB's log is (``log_format.h``,
``log_reader.cc``, ``log_writer.cc``):

- :mod:`snapkv.journal.format`: constants, the header, the record encoders
  (:func:`set_record`, ... :func:`batch_record`), the decoded operations
  (:data:`Op`) and :func:`decode_record`. Pure.
- :mod:`snapkv.journal.reader`: :func:`scan_journal` and :class:`JournalScan`,
  the recovery rules at the branches that apply them. Pure.
- :mod:`snapkv.journal.writer`: :class:`JournalWriter` (fsync policies, group
  commit, the ``everysec`` thread), which appends to a
  :class:`~snapkv.media.base.JournalFile` and fsyncs it.

Every name is re-exported here, so callers write ``from snapkv import
journal as jr`` and ``jr.set_record(...)`` whatever module defines it.
"""

from __future__ import annotations

from snapkv.journal.format import (
    ALL_KEYSPACES,
    ENTRY,
    ENTRY_SIZE,
    FRAME,
    FRAME_SIZE,
    HEADER,
    HEADER_CRC_OFFSET,
    HEADER_SIZE,
    MAGIC,
    OPTIONAL_TYPE_BIT,
    TYPE_BATCH,
    TYPE_CLEAR,
    TYPE_DEL,
    TYPE_EXPIRE,
    TYPE_SET,
    TYPE_SWAP,
    VERSION,
    BatchOp,
    ClearOp,
    DelOp,
    ExpireOp,
    Op,
    SetOp,
    SimpleOp,
    SwapOp,
    batch_record,
    clear_record,
    decode_record,
    delete_record,
    expire_record,
    header,
    set_record,
    swap_record,
)
from snapkv.journal.reader import (
    TAIL_CLEAN,
    TAIL_DAMAGED,
    TAIL_GARBAGE,
    TAIL_TORN,
    TAIL_ZERO,
    JournalScan,
    scan_journal,
)
from snapkv.journal.writer import (
    FSYNC_ALIASES,
    FSYNC_POLICIES,
    FsyncPolicy,
    JournalSink,
    JournalWriter,
    fsync_policy,
)

__all__ = [
    "ALL_KEYSPACES",
    "ENTRY",
    "ENTRY_SIZE",
    "FRAME",
    "FRAME_SIZE",
    "FSYNC_ALIASES",
    "FSYNC_POLICIES",
    "HEADER",
    "HEADER_CRC_OFFSET",
    "HEADER_SIZE",
    "MAGIC",
    "OPTIONAL_TYPE_BIT",
    "TAIL_CLEAN",
    "TAIL_DAMAGED",
    "TAIL_GARBAGE",
    "TAIL_TORN",
    "TAIL_ZERO",
    "TYPE_BATCH",
    "TYPE_CLEAR",
    "TYPE_DEL",
    "TYPE_EXPIRE",
    "TYPE_SET",
    "TYPE_SWAP",
    "VERSION",
    "BatchOp",
    "ClearOp",
    "DelOp",
    "ExpireOp",
    "FsyncPolicy",
    "JournalScan",
    "JournalSink",
    "JournalWriter",
    "Op",
    "SetOp",
    "SimpleOp",
    "SwapOp",
    "batch_record",
    "clear_record",
    "decode_record",
    "delete_record",
    "expire_record",
    "fsync_policy",
    "header",
    "scan_journal",
    "set_record",
    "swap_record",
]
