"""Reading a journal: :func:`scan_journal` and the recovery rules of docs/FORMAT.md.

The split of LevelDB's ``log_reader`` (a torn tail is EOF, not corruption)
and of Redis's AOF loader (a truncated tail is tolerated, a format error in
the middle stops the load and names the fix): a torn, zero-filled or
garbage *tail* is what a crash leaves and is dropped (and reported: a
zero-filled one, in the newest journal, as the preallocated space it is,
not as a loss, which :mod:`snapkv.recovery` decides); damage
*before* the tail is never guessed around: it raises
:class:`~snapkv.errors.CorruptJournalError`, unless ``repair=True`` asks to
keep the records before it and report exactly what was discarded. Each rule
(FORMAT.md section J6) is stated at the branch that applies it. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from snapkv._frame import FRAME_SIZE, OPTIONAL_TYPE_BIT, as_view, check_frame, frame_end
from snapkv.errors import CorruptJournalError
from snapkv.journal.format import (
    DECODERS,
    HEADER_SIZE,
    JOURNAL_HEADER,
    TYPE_BATCH,
    TYPE_SET,
    Op,
)

__all__ = [
    "TAIL_CLEAN",
    "TAIL_DAMAGED",
    "TAIL_GARBAGE",
    "TAIL_TORN",
    "TAIL_ZERO",
    "JournalScan",
    "scan_journal",
]

TAIL_CLEAN = "clean"
TAIL_TORN = "torn"
TAIL_ZERO = "zero-filled"
TAIL_GARBAGE = "garbage"
TAIL_DAMAGED = "damaged"

#: A type byte that can start a record a version-1 writer writes (the types
#: are consecutive): what the search for a later valid record looks for.
_KNOWN_TYPE_BYTE = re.compile(b"[" + bytes([TYPE_SET]) + b"-" + bytes([TYPE_BATCH]) + b"]")
_NOT_ZERO = re.compile(b"[^\x00]")


@dataclass(frozen=True)
class JournalScan:
    """What :func:`scan_journal` read from a journal, and what recovery dropped.

    ``ops`` are the operations of every good record, in order. The journal's
    good part ends at ``valid_end``; the ``dropped_bytes`` after it are the
    ``tail`` kind: ``"clean"`` (nothing dropped), ``"torn"``,
    ``"zero-filled"``, ``"garbage"``, or ``"damaged"`` (only with
    ``repair=True``: the bytes from the first damage on, which held
    ``discarded_records`` records that still looked valid; ``damage`` is the
    error a strict scan raises; ``resumes_at`` is where the first of those
    records starts, when the damage failed a frame check, J5 checks 7..9).
    Recovery truncates the file to ``valid_end`` before appending to it.
    """

    jid: int
    ops: list[Op]
    valid_end: int
    size: int
    tail: str = TAIL_CLEAN
    skipped_records: int = 0
    discarded_records: int = 0
    damage: CorruptJournalError | None = field(default=None, compare=False)
    resumes_at: int | None = None

    @property
    def dropped_bytes(self) -> int:
        """Bytes after ``valid_end`` that recovery drops."""
        return self.size - self.valid_end

    def describe(self) -> str:
        """One sentence for logs and reports: what was kept, what was dropped and why."""
        kept = f"{len(self.ops)} records kept"
        n, at = self.dropped_bytes, self.valid_end
        if self.tail == TAIL_CLEAN:
            return f"clean: {kept}"
        if self.tail == TAIL_TORN:
            return f"{kept}; dropped a torn last record ({n} bytes at offset {at})"
        if self.tail == TAIL_ZERO:
            # Where the rules allow a tail (the newest journal), recovery
            # says what describe_zeros() says instead: nothing is lost.
            return (
                f"{kept}; dropped a zero-filled tail ({n} bytes at offset {at}: space "
                "preallocated for records, or data a power loss never wrote)"
            )
        if self.tail == TAIL_GARBAGE:
            return f"{kept}; dropped a garbage tail ({n} bytes at offset {at})"
        reason = self.damage.reason if self.damage is not None else "damage"
        return (
            f"{kept}; REPAIRED damage at offset {at} ({reason}): dropped {n} bytes "
            f"holding {self.discarded_records} later records that looked valid"
        )

    def describe_zeros(self) -> str:
        """One sentence for a zero-filled tail that recovery cuts without loss (J6 rule 3).

        Only the newest journal may have a tail; there, zeros after the last
        record never held an acknowledged write (:mod:`snapkv.recovery`
        decides when this applies).
        """
        return (
            f"{_count(len(self.ops), 'record')}; cut {_count(self.dropped_bytes, 'byte')} of "
            "zeros after them (preallocated space left by a process that did not close the "
            "store, or writes a power loss never made durable)"
        )


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun if number == 1 else noun + 's'}"


def scan_journal(
    data: bytes | bytearray | memoryview, *, jid: int | None = None, repair: bool = False
) -> JournalScan:
    """Read a journal, applying the recovery rules of docs/FORMAT.md.

    Linear in the journal's size; only after damage does it search the rest
    for a later valid record (to tell a tail from mid-file damage).

    :param jid: the id the journal must carry in its header (its file name's).
    :param repair: instead of raising for mid-file damage, keep the records
        before it and report what was discarded (``tail == "damaged"``).
    :raises CorruptJournalError: the header is bad (even with ``repair``:
        nothing in the file can then be trusted), or, without ``repair``,
        there is damage before the tail.
    """
    view = as_view(data)
    size = len(view)
    found_jid = _check_header(view, jid)
    ops: list[Op] = []
    scanned = _Scanned(found_jid, ops)
    pos = HEADER_SIZE
    decoders = DECODERS
    while pos < size:
        try:
            record_type, end = check_frame(view, pos, CorruptJournalError)
        except CorruptJournalError as exc:
            # Checks 7..9 (record-header, -length, -crc): what a crash can
            # cause; the rules below tell a tail from damage.
            return _after_bad_record(view, pos, exc.check, scanned, repair=repair)
        decoder = decoders.get(record_type)
        try:
            if decoder is not None:
                ops.append(decoder(view, pos + FRAME_SIZE, end))
            elif record_type & OPTIONAL_TYPE_BIT:
                scanned.skipped += 1
            else:
                # A required type this reader does not know may change the
                # meaning of what follows: refuse rather than misread.
                raise CorruptJournalError(
                    f"unknown required record type 0x{record_type:02x} "
                    "(written by a newer snapkv?)",
                    offset=pos,
                    check="record-type",
                )
        except CorruptJournalError as exc:
            # Rule 5: the checksum held, so the writer wrote these bytes: a
            # malformed body is never a crash artefact.
            if not repair:
                raise
            return _repaired(view, pos, exc, scanned)
        pos = end
    # Rule 1: the journal ends exactly after a record.
    return JournalScan(found_jid, ops, pos, size, TAIL_CLEAN, scanned.skipped)


def _check_header(view: memoryview, jid: int | None) -> int:
    """Checks 1..6: the shared header checks, then the id the file name promises."""
    _version, found = JOURNAL_HEADER.check(view)
    if jid is not None and found != jid:
        raise CorruptJournalError(
            f"header says journal {found}, expected journal {jid}", offset=12, check="journal-id"
        )
    return int(found)


@dataclass
class _Scanned:
    """What the scan had read when it met a bad record."""

    jid: int
    ops: list[Op]
    skipped: int = 0


def _after_bad_record(
    view: memoryview, pos: int, check: str, scanned: _Scanned, *, repair: bool
) -> JournalScan:
    """Classify the bytes from the first record at ``pos`` that failed ``check``."""
    size = len(view)
    if _NOT_ZERO.search(view, pos) is None:
        # Rule 3: zeros to the end. The space a writer preallocated ahead of
        # its records, left by a process that died (J2), or a file system
        # that extended the file but never wrote the data. A zero frame
        # never passes its CRC. (Searched in C, without a copy: a killed
        # writer leaves up to 64 MiB of them.) Nothing acknowledged is lost
        # in them; recovery, which knows which journal is the newest, says so.
        return JournalScan(scanned.jid, scanned.ops, pos, size, TAIL_ZERO, scanned.skipped)
    later = _find_record(view, pos + 1)
    if later is None:
        # Rule 2 (the writer died inside the last record) or rule 4 (the
        # last record's bytes are garbage): no record follows, so dropping
        # the rest loses nothing written after the damage.
        tail = TAIL_TORN if check != "record-crc" else TAIL_GARBAGE
        return JournalScan(scanned.jid, scanned.ops, pos, size, tail, scanned.skipped)
    # Rule 5: a valid record after a bad one means the damage is not a tail.
    what = {
        "record-header": "record header cut short",
        "record-length": "record length runs past the end",
        "record-crc": "record checksum mismatch",
    }[check]
    # One offset per message: the error's own, ``pos``. Where the later
    # record starts is data (``resumes_at`` of a repairing scan), not words.
    reason = f"{what}, and a valid record follows it (damage, not a torn tail)"
    error = CorruptJournalError(reason, offset=pos, check=check)
    if not repair:
        raise error
    return _repaired(view, pos, error, scanned, later)


def _repaired(
    view: memoryview,
    pos: int,
    error: CorruptJournalError,
    scanned: _Scanned,
    resumes_at: int | None = None,
) -> JournalScan:
    discarded = _count_records(view, pos)
    return JournalScan(
        scanned.jid,
        scanned.ops,
        pos,
        len(view),
        TAIL_DAMAGED,
        scanned.skipped,
        discarded,
        error,
        resumes_at,
    )


def _find_record(view: memoryview, start: int) -> int | None:
    """Offset of the first valid record at or after ``start``, or ``None``.

    Only frames whose type a version-1 writer writes count. The type byte is
    searched for in C (``re``), so random garbage costs one rejected
    candidate (about 2 microseconds: the shared frame check raises its error)
    for about 1 byte in 40, some 70 ms a MB, and zero runs cost nothing. The
    entries of a BATCH have no CRC, so those of a damaged BATCH are never
    taken for later records.
    """
    search = _KNOWN_TYPE_BYTE.search
    match = search(view, start + FRAME_SIZE - 1)
    while match is not None:
        candidate = match.start() - (FRAME_SIZE - 1)
        if frame_end(view, candidate) is not None:
            return candidate
        match = search(view, match.start() + 1)
    return None


def _count_records(view: memoryview, start: int) -> int:
    """Records that still look valid from ``start`` on: what a repair discards.

    Resynchronises like a reader would: after a valid record, the next one
    is expected right at its end, so a frame inside a valid record's value
    is not counted.
    """
    size = len(view)
    count = 0
    pos: int | None = start
    while pos is not None:
        end = frame_end(view, pos)
        if end is None:
            pos = _find_record(view, pos + 1)
            continue
        count += 1
        pos = end if end < size else None
    return count
