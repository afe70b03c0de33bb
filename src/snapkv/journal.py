"""The journal: every change as an effect record, appended before it is acknowledged.

The byte format and the recovery rules are specified in docs/FORMAT.md (the
journal part); the constants and ``check`` names below mirror it. Shape of
a journal file::

    HEADER   magic, version, flags, journal id, CRC-32      24 bytes
    record*  crc u32 | length u32 | type u8 | body          the snapshot's record frame
    BATCH body: entry*, entry = length u32 | type u8 | body (no CRC of its own)

Records hold *effects* (set this key to this value with this absolute
expiry), never commands, so replaying a journal is deterministic whatever
the clock says at replay time.

This module is pure except for :class:`JournalWriter`, which appends to a
:class:`~snapkv.media.base.JournalFile` and fsyncs it by policy. Reading is
:func:`scan_journal`, which applies the recovery policy: a torn, zero-filled
or garbage *tail* is what a crash leaves and is dropped (and reported);
damage *before* the tail is never guessed around: it raises
:class:`~snapkv.errors.CorruptJournalError`, unless ``repair=True`` asks to
keep the records before it and report exactly what was discarded. This is
the split of LevelDB's ``log_reader`` (a torn tail is EOF, not corruption)
and of Redis's AOF loader (a truncated tail is tolerated, a format error in
the middle stops the load and names the fix).
"""

from __future__ import annotations

import logging
import re
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from struct import Struct
from struct import error as StructError
from typing import Literal, Protocol, TypeAlias

from snapkv._binary import TEXT_ENCODING, TEXT_ERRORS, U32, crc32
from snapkv.errors import CorruptJournalError, MediumError

__all__ = [
    "ALL_KEYSPACES",
    "FSYNC_POLICIES",
    "HEADER_SIZE",
    "MAGIC",
    "VERSION",
    "JournalScan",
    "JournalWriter",
    "Op",
    "batch_record",
    "clear_record",
    "delete_record",
    "expire_record",
    "header",
    "scan_journal",
    "set_record",
    "swap_record",
]

log = logging.getLogger("snapkv")

#: First eight bytes of every journal: the snapshot magic's scheme with ``SKJ``.
MAGIC = b"\x89SKJ\r\n\x1a\n"
#: Bumped only when a version-1 reader could misread a new journal.
VERSION = 1
HEADER = Struct("<8sHHQI")  # magic, version, flags, journal id, CRC-32 of bytes 0..19
HEADER_SIZE = HEADER.size  # 24
HEADER_CRC_OFFSET = 20

FRAME = Struct("<IIB")  # crc, body length, type: the snapshot's frame
FRAME_SIZE = FRAME.size  # 9
#: An entry of a BATCH body: a record frame without its CRC (the BATCH's covers it).
ENTRY = Struct("<IB")  # body length, type
ENTRY_SIZE = ENTRY.size  # 5

TYPE_SET = 0x10
TYPE_DEL = 0x11
TYPE_CLEAR = 0x12
TYPE_EXPIRE = 0x13
TYPE_SWAP = 0x14
TYPE_BATCH = 0x15
#: Record types with this bit set may be skipped by readers that do not know them.
OPTIONAL_TYPE_BIT = 0x80

#: ``clear_record(ALL_KEYSPACES)`` clears every keyspace; decoded as ``("clear", -1)``.
ALL_KEYSPACES = -1
_ALL_ON_DISK = 0xFFFF_FFFF

# The frame fields the CRC covers (length, type), then each type's fixed body
# fields, as one Struct per type: an encoder packs everything in one call.
_SET_HEAD = Struct("<IBIQI")  # length, type | db, expire_at, key length
_DEL_HEAD = Struct("<IBI")  # length, type | db
_CLEAR_HEAD = Struct("<IBI")  # length, type | db
_EXPIRE_HEAD = Struct("<IBIQ")  # length, type | db, expire_at
_SWAP_HEAD = Struct("<IBII")  # length, type | db_a, db_b
_TAIL = Struct("<IB")  # length, type
_SET_FIXED = _SET_HEAD.size - _TAIL.size  # 16 body bytes before the key
_EXPIRE_FIXED = _EXPIRE_HEAD.size - _TAIL.size  # 12
_BODY_SET = Struct("<IQI")
_BODY_EXPIRE = Struct("<IQ")
_BODY_DB = Struct("<I")
_BODY_SWAP = Struct("<II")

FSYNC_POLICIES = ("always", "everysec", "never")
FsyncPolicy: TypeAlias = Literal["always", "everysec", "never"]

# Decoded operations (effects). ``db`` is a keyspace number; ``at`` an
# absolute expiry in milliseconds since the epoch, 0 meaning none.
SetOp: TypeAlias = tuple[Literal["set"], int, str, str, int]
DelOp: TypeAlias = tuple[Literal["del"], int, str]
ClearOp: TypeAlias = tuple[Literal["clear"], int]
ExpireOp: TypeAlias = tuple[Literal["expire"], int, str, int]
SwapOp: TypeAlias = tuple[Literal["swap"], int, int]
SimpleOp: TypeAlias = SetOp | DelOp | ClearOp | ExpireOp | SwapOp
BatchOp: TypeAlias = tuple[Literal["batch"], tuple[SimpleOp, ...]]
Op: TypeAlias = SimpleOp | BatchOp


class JournalSink(Protocol):
    """What :class:`JournalWriter` needs of a file: :class:`snapkv.media.JournalFile` is one.

    Spelled out here so that the journal (like the codec) never imports the
    media: the Store hands one to the other.
    """

    @property
    def size(self) -> int: ...
    def write(self, data: bytes) -> None: ...
    def sync(self) -> None: ...
    def close(self) -> None: ...


# --------------------------------------------------------------------- encoders


def header(jid: int) -> bytes:
    """The 24-byte header of journal ``jid``."""
    head = HEADER.pack(MAGIC, VERSION, 0, jid, 0)[:HEADER_CRC_OFFSET]
    return head + U32.pack(crc32(head))


def _text(value: str, what: str) -> bytes:
    try:
        return value.encode(TEXT_ENCODING, TEXT_ERRORS)
    except AttributeError:
        raise TypeError(f"journal {what} must be str, not {type(value).__name__}") from None


def _framed(head: bytes, *pieces: bytes | memoryview) -> bytes:
    """Frame a record whose CRC-covered part is ``head`` followed by ``pieces``."""
    crc = crc32(head)
    for piece in pieces:
        crc = crc32(piece, crc)
    return b"".join((U32.pack(crc), head, *pieces))


def set_record(db: int, key: str, value: str, expire_at: int = 0) -> bytes:
    """SET: ``key`` in keyspace ``db`` now holds ``value``, expiring at ``expire_at`` ms (0: never).

    On the write path of every set. For small values (the common case) the
    record is concatenated once and checksummed in one call, which measured
    ~30% cheaper than chaining three checksum calls; above 4 KiB the
    checksum is chained over the pieces instead, so the value is copied once
    (by the final join), not twice.

    :raises TypeError: ``key`` or ``value`` is not a str.
    :raises ValueError: a number does not fit its field.
    """
    try:
        k = key.encode(TEXT_ENCODING, TEXT_ERRORS)
        v = value.encode(TEXT_ENCODING, TEXT_ERRORS)
    except AttributeError:
        _text(key, "key")
        _text(value, "value")
        raise
    try:
        head = _SET_HEAD.pack(_SET_FIXED + len(k) + len(v), TYPE_SET, db, expire_at, len(k))
    except StructError:
        raise _out_of_range(db=db, expire_at=expire_at) from None
    if len(v) < 4096:
        body = head + k + v
        return U32.pack(crc32(body)) + body
    crc = crc32(v, crc32(k, crc32(head)))
    return b"".join((U32.pack(crc), head, k, v))


def delete_record(db: int, key: str) -> bytes:
    """DEL: ``key`` no longer exists in keyspace ``db``."""
    k = _text(key, "key")
    try:
        head = _DEL_HEAD.pack(_BODY_DB.size + len(k), TYPE_DEL, db)
    except StructError:
        raise _out_of_range(db=db) from None
    return _framed(head, k)


def clear_record(db: int) -> bytes:
    """CLEAR: keyspace ``db`` is empty; ``ALL_KEYSPACES`` (-1) empties every keyspace."""
    number = _ALL_ON_DISK if db == ALL_KEYSPACES else db
    if not 0 <= number <= _ALL_ON_DISK or (number == _ALL_ON_DISK and db != ALL_KEYSPACES):
        raise _out_of_range(db=db)
    return _framed(_CLEAR_HEAD.pack(_BODY_DB.size, TYPE_CLEAR, number))


def expire_record(db: int, key: str, expire_at: int) -> bytes:
    """EXPIRE: ``key`` in keyspace ``db`` now expires at ``expire_at`` ms; 0 removes its expiry."""
    k = _text(key, "key")
    try:
        head = _EXPIRE_HEAD.pack(_EXPIRE_FIXED + len(k), TYPE_EXPIRE, db, expire_at)
    except StructError:
        raise _out_of_range(db=db, expire_at=expire_at) from None
    return _framed(head, k)


def swap_record(a: int, b: int) -> bytes:
    """SWAP: keyspaces ``a`` and ``b`` exchange their contents (expiry times included)."""
    try:
        return _framed(_SWAP_HEAD.pack(_BODY_SWAP.size, TYPE_SWAP, a, b))
    except StructError:
        raise _out_of_range(db=a, other=b) from None


def batch_record(records: Iterable[bytes]) -> bytes:
    """BATCH: the given records (from the encoders above, no BATCH), applied all or nothing.

    One record with one CRC over the lot, so a crash keeps all of them or
    none: this is what makes ``update`` and ``rename`` atomic across a crash.
    Each record goes in without its CRC, as an entry ``length | type | body``:
    an entry is then never a valid record frame by itself, so the bytes of a
    BATCH whose start a crash garbled cannot pass for records written after
    it (which would turn a garbage tail into mid-file damage).

    :raises ValueError: an item is not one complete SET/DEL/CLEAR/EXPIRE/SWAP
        record whose CRC holds.
    """
    entries = [_batch_entry(record) for record in records]
    length = sum(map(len, entries))
    return _framed(_TAIL.pack(length, TYPE_BATCH), *entries)


def _batch_entry(record: bytes) -> memoryview:
    """``record`` without its CRC, once it is known to be one whole record of a BATCH type.

    The CRC is checked before it is dropped: a record altered after it was
    encoded would otherwise be sealed under the BATCH's valid CRC.
    """
    view = memoryview(record)
    if len(view) < FRAME_SIZE:
        raise ValueError("batch_record takes whole records only")
    stored, length, record_type = FRAME.unpack_from(view)
    if record_type not in _INNER_TYPES:
        raise ValueError(f"a batch cannot hold a record of type 0x{record_type:02x}")
    if len(view) != FRAME_SIZE + length:
        raise ValueError("batch_record takes whole records only, one per item")
    entry = view[4:]
    if crc32(entry) != stored:
        raise ValueError("batch_record takes whole records only: checksum mismatch")
    return entry


def _out_of_range(**fields: int) -> ValueError:
    shown = ", ".join(f"{name}={value}" for name, value in fields.items())
    return ValueError(
        f"journal field out of range ({shown}): keyspaces are 0..{_ALL_ON_DISK - 1}, "
        "times 0..2**64-1 ms"
    )


# --------------------------------------------------------------------- decoders


def _str(view: memoryview, start: int, end: int) -> str:
    try:
        return str(view[start:end], TEXT_ENCODING, TEXT_ERRORS)
    except UnicodeDecodeError as exc:
        raise CorruptJournalError(
            f"text is not valid UTF-8: {exc.reason}", offset=start + exc.start, check="text-utf8"
        ) from None


def _body_error(what: str, offset: int) -> CorruptJournalError:
    return CorruptJournalError(what, offset=offset, check="record-body")


def _decode_set(view: memoryview, start: int, end: int) -> SetOp:
    if end - start < _SET_FIXED:
        raise _body_error(f"SET body has {end - start} bytes, needs {_SET_FIXED}", start)
    db, at, klen = _BODY_SET.unpack_from(view, start)
    key_end = start + _SET_FIXED + klen
    if key_end > end:
        raise _body_error(f"SET key length {klen} runs past its body", start + 12)
    return ("set", db, _str(view, start + _SET_FIXED, key_end), _str(view, key_end, end), at)


def _decode_del(view: memoryview, start: int, end: int) -> DelOp:
    if end - start < _BODY_DB.size:
        raise _body_error(f"DEL body has {end - start} bytes, needs 4", start)
    return ("del", _BODY_DB.unpack_from(view, start)[0], _str(view, start + 4, end))


def _decode_clear(view: memoryview, start: int, end: int) -> ClearOp:
    if end - start != _BODY_DB.size:
        raise _body_error(f"CLEAR body has {end - start} bytes, not 4", start)
    db = _BODY_DB.unpack_from(view, start)[0]
    return ("clear", ALL_KEYSPACES if db == _ALL_ON_DISK else db)


def _decode_expire(view: memoryview, start: int, end: int) -> ExpireOp:
    if end - start < _EXPIRE_FIXED:
        raise _body_error(f"EXPIRE body has {end - start} bytes, needs 12", start)
    db, at = _BODY_EXPIRE.unpack_from(view, start)
    return ("expire", db, _str(view, start + _EXPIRE_FIXED, end), at)


def _decode_swap(view: memoryview, start: int, end: int) -> SwapOp:
    if end - start != _BODY_SWAP.size:
        raise _body_error(f"SWAP body has {end - start} bytes, not 8", start)
    a, b = _BODY_SWAP.unpack_from(view, start)
    return ("swap", a, b)


def _decode_batch(view: memoryview, start: int, end: int) -> BatchOp:
    # The BATCH's CRC held, so every failure here is the writer's, not a crash's.
    ops: list[SimpleOp] = []
    pos = start
    while pos < end:
        if end - pos < ENTRY_SIZE:
            raise CorruptJournalError(
                "BATCH body ends inside an entry header", offset=pos, check="batch-record"
            )
        length, record_type = ENTRY.unpack_from(view, pos)
        body = pos + ENTRY_SIZE
        inner_end = body + length
        if inner_end > end:
            raise CorruptJournalError(
                f"BATCH entry of length {length} runs past the BATCH body",
                offset=pos,
                check="batch-record",
            )
        decoder = _INNER_DECODERS.get(record_type)
        if decoder is not None:
            ops.append(decoder(view, body, inner_end))
        elif not record_type & OPTIONAL_TYPE_BIT:
            raise CorruptJournalError(
                f"a BATCH cannot hold a record of type 0x{record_type:02x}",
                offset=pos,
                check="batch-record",
            )
        pos = inner_end
    return ("batch", tuple(ops))


_INNER_DECODERS: dict[int, Callable[[memoryview, int, int], SimpleOp]] = {
    TYPE_SET: _decode_set,
    TYPE_DEL: _decode_del,
    TYPE_CLEAR: _decode_clear,
    TYPE_EXPIRE: _decode_expire,
    TYPE_SWAP: _decode_swap,
}
_DECODERS: dict[int, Callable[[memoryview, int, int], Op]] = {
    **_INNER_DECODERS,
    TYPE_BATCH: _decode_batch,
}
_INNER_TYPES = frozenset(_INNER_DECODERS)
#: A type byte that can start a record a version-1 writer writes: what the
#: search for a later valid record looks for after damage.
_KNOWN_TYPE_BYTE = re.compile(rb"[\x10-\x15]")


# ------------------------------------------------------------------ recovery

TAIL_CLEAN = "clean"
TAIL_TORN = "torn"
TAIL_ZERO = "zero-filled"
TAIL_GARBAGE = "garbage"
TAIL_DAMAGED = "damaged"


@dataclass(frozen=True)
class JournalScan:
    """What :func:`scan_journal` read from a journal, and what recovery dropped.

    ``ops`` are the operations of every good record, in order. The journal's
    good part ends at ``valid_end``; the ``dropped_bytes`` after it are the
    ``tail`` kind: ``"clean"`` (nothing dropped), ``"torn"``,
    ``"zero-filled"``, ``"garbage"``, or ``"damaged"`` (only with
    ``repair=True``: the bytes from the first damage on, which held
    ``discarded_records`` records that still looked valid; ``damage`` is the
    error a strict scan raises). Recovery truncates the file to ``valid_end``
    before appending to it.
    """

    jid: int
    ops: list[Op]
    valid_end: int
    size: int
    tail: str = TAIL_CLEAN
    skipped_records: int = 0
    discarded_records: int = 0
    damage: CorruptJournalError | None = field(default=None, compare=False)

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
            return f"{kept}; dropped a zero-filled tail ({n} bytes at offset {at})"
        if self.tail == TAIL_GARBAGE:
            return f"{kept}; dropped a garbage tail ({n} bytes at offset {at})"
        reason = self.damage.reason if self.damage is not None else "damage"
        return (
            f"{kept}; REPAIRED damage at offset {at} ({reason}): dropped {n} bytes "
            f"holding {self.discarded_records} later records that looked valid"
        )


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
    view = _view(data)
    size = len(view)
    found_jid = _check_header(view, jid)
    ops: list[Op] = []
    scanned = _Scanned(found_jid, ops)
    pos = HEADER_SIZE
    unpack_frame = FRAME.unpack_from
    decoders = _DECODERS
    while pos < size:
        if size - pos < FRAME_SIZE:
            return _after_bad_record(view, pos, "record-header", scanned, repair=repair)
        stored, length, record_type = unpack_frame(view, pos)
        end = pos + FRAME_SIZE + length
        if end > size:
            # The length may be the damaged field: nothing after it is trusted.
            return _after_bad_record(view, pos, "record-length", scanned, repair=repair)
        if crc32(view[pos + 4 : end]) != stored:
            return _after_bad_record(view, pos, "record-crc", scanned, repair=repair)
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


def _view(data: bytes | bytearray | memoryview) -> memoryview:
    view = memoryview(data)
    if not view.c_contiguous:  # zlib and str() need contiguous memory
        view = memoryview(view.tobytes())
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


def _check_header(view: memoryview, jid: int | None) -> int:
    size = len(view)
    if size < HEADER_SIZE:
        if bytes(view[:8]) != MAGIC[: min(8, size)]:
            raise CorruptJournalError("not a snapkv journal: bad magic", offset=0, check="magic")
        raise CorruptJournalError(
            f"journal header needs {HEADER_SIZE} bytes, the file has {size}",
            offset=0,
            check="header-length",
        )
    magic, version, flags, found, stored = HEADER.unpack_from(view, 0)
    if magic != MAGIC:
        raise CorruptJournalError(
            f"not a snapkv journal: bad magic {magic.hex()}", offset=0, check="magic"
        )
    if crc32(view[:HEADER_CRC_OFFSET]) != stored:
        raise CorruptJournalError(
            "journal header checksum mismatch", offset=HEADER_CRC_OFFSET, check="header-crc"
        )
    if version != VERSION:
        raise CorruptJournalError(
            f"unsupported journal version {version} (this reader knows {VERSION}; "
            "written by a newer snapkv?)",
            offset=8,
            check="version",
        )
    if flags:
        raise CorruptJournalError(
            f"reserved journal header flags 0x{flags:04x} are set", offset=10, check="flags"
        )
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
    if view[pos:].tobytes().count(0) == size - pos:
        # Rule 3: a file system that extended the file but never wrote the
        # data shows zeros. A zero frame never passes its CRC.
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
    reason = f"{what}, but a valid record follows at offset {later}"
    error = CorruptJournalError(reason, offset=pos, check=check)
    if not repair:
        raise error
    return _repaired(view, pos, error, scanned)


def _repaired(
    view: memoryview, pos: int, error: CorruptJournalError, scanned: _Scanned
) -> JournalScan:
    discarded = _count_records(view, pos)
    return JournalScan(
        scanned.jid, scanned.ops, pos, len(view), TAIL_DAMAGED, scanned.skipped, discarded, error
    )


def _frame_end(view: memoryview, pos: int, limit: int) -> int | None:
    """End of the CRC-valid record frame at ``pos`` that ends by ``limit``, else ``None``."""
    if limit - pos < FRAME_SIZE:
        return None
    stored, length, _type = FRAME.unpack_from(view, pos)
    end: int = pos + FRAME_SIZE + length
    if end > limit or crc32(view[pos + 4 : end]) != stored:
        return None
    return end


def _find_record(view: memoryview, start: int) -> int | None:
    """Offset of the first valid record at or after ``start``, or ``None``.

    Only frames whose type a version-1 writer writes count. The type byte is
    searched for in C (``re``), so random garbage costs a Python step for
    about 1 byte in 40, and zero runs cost none. The entries of a BATCH have
    no CRC, so those of a damaged BATCH are never taken for later records.
    """
    size = len(view)
    search = _KNOWN_TYPE_BYTE.search
    match = search(view, start + FRAME_SIZE - 1)
    while match is not None:
        candidate = match.start() - (FRAME_SIZE - 1)
        if _frame_end(view, candidate, size) is not None:
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
        end = _frame_end(view, pos, size)
        if end is None:
            pos = _find_record(view, pos + 1)
            continue
        count += 1
        pos = end if end < size else None
    return count


# -------------------------------------------------------------------- writer


class JournalWriter:
    """Appends records to one journal and makes them durable by the fsync policy.

    ``append`` is called with the caller's lock held, so it is one write to
    the OS and nothing more: once it returns, the record survives a crash of
    the process (not of the machine). ``commit`` is called after that lock
    is released and, with ``fsync="always"``, returns once the record
    survives a power loss too. The durability contract:

    ============  ==================================  =================================
    policy        a killed process loses              a power loss loses
    ============  ==================================  =================================
    ``always``    nothing appended                    nothing committed
    ``everysec``  nothing appended                    about the last ``interval`` seconds
    ``never``     nothing appended                    whatever the OS had not written
    ============  ==================================  =================================

    Group commit: the first committer becomes the leader and fsyncs
    everything appended so far, outside any lock; committers that arrive
    meanwhile wait on a condition and are all woken when that fsync ends:
    those it covered return at once, and one of the others leads the next
    fsync. Many threads share one fsync (as a database's group commit does),
    and a covered thread never queues behind the next fsync. ``everysec`` runs a
    daemon thread that fsyncs at most ``interval`` seconds after a write, and
    only if something was written since the last fsync.

    After any failed write or fsync the writer is *failed*: every later
    ``append``, ``commit`` of an unsynced record and ``sync`` raises
    :class:`~snapkv.errors.MediumError` naming the first failure. A retried
    fsync may report success for data the OS already dropped, and a record
    after a torn one would turn a tail into mid-file damage; so nothing is
    retried and nothing is written silently. Thread-safe.
    """

    def __init__(
        self, file: JournalSink, fsync: FsyncPolicy | str = "everysec", *, interval: float = 1.0
    ) -> None:
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"fsync must be one of {', '.join(FSYNC_POLICIES)}, not {fsync!r}")
        if not interval > 0:
            raise ValueError(f"interval must be > 0 seconds, not {interval}")
        self.fsync = fsync
        self.interval = interval
        self._file = file
        self._always = fsync == "always"
        self._append_lock = threading.Lock()
        self._sync_done = threading.Condition(threading.Lock())
        self._syncing = False
        # The file's content so far is durable: create_journal and
        # open_journal promise it.
        self._written = self._synced = file.size
        self._failure: str | None = None
        self._closed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if fsync == "everysec":
            self._thread = threading.Thread(
                target=_sync_every,
                args=(weakref.ref(self), self._stop, interval),
                name="snapkv-journal-fsync",
                daemon=True,
            )
            self._thread.start()

    @property
    def written(self) -> int:
        """Offset after the last appended record: the ``lsn`` of the newest append."""
        return self._written

    @property
    def synced(self) -> int:
        """Offset up to which the journal is known durable."""
        return self._synced

    @property
    def failure(self) -> str | None:
        """The first write or fsync failure, or ``None`` while the writer is healthy."""
        return self._failure

    def append(self, record: bytes) -> int:
        """Write ``record`` to the OS now; return its lsn (the journal's size after it).

        :raises MediumError: the write failed (the writer is failed from now
            on), or the writer had already failed or is closed.
        """
        with self._append_lock:
            if self._failure is not None or self._closed:
                raise self._refusal()
            try:
                self._file.write(record)
            except BaseException as exc:
                self._fail(exc)
                raise
            self._written = lsn = self._written + len(record)
        return lsn

    def commit(self, lsn: int) -> None:
        """Wait until the record ending at ``lsn`` is as durable as the policy promises.

        ``always``: blocks until it is fsynced (sharing one fsync with every
        concurrent committer). ``everysec`` and ``never``: returns at once.

        :raises MediumError: the fsync failed, now or before.
        """
        if self._always and lsn > self._synced:
            self._sync_to(lsn)

    def sync(self) -> None:
        """Make every record appended so far durable, whatever the policy.

        :raises MediumError: the fsync failed, now or before.
        """
        if self._failure is not None:
            raise self._refusal()
        self._sync_to(self._written)

    def sync_pending(self) -> bool:
        """Fsync if anything was appended since the last fsync; True if it did.

        What the ``everysec`` thread runs each ``interval``. A failure is
        recorded (the next append raises it) and logged, not raised.
        """
        if self._written <= self._synced or self._failure is not None or self._closed:
            return False
        try:
            self._sync_to(self._written)
        except MediumError as exc:
            log.error("journal fsync failed; refusing further writes: %s", exc)
            return False
        return True

    def _sync_to(self, lsn: int) -> None:
        done = self._sync_done
        with done:
            while True:
                if self._synced >= lsn:
                    return  # a concurrent committer's fsync covered this record
                if self._failure is not None:
                    raise self._refusal()
                if not self._syncing:
                    break
                done.wait()
            self._syncing = True  # this thread leads the next fsync
            target = self._written  # everything appended before the fsync starts
        try:
            self._file.sync()
        except BaseException as exc:
            with done:
                self._fail(exc)
                self._syncing = False
                done.notify_all()
            raise
        with done:
            self._synced = target
            self._syncing = False
            done.notify_all()

    def _fail(self, exc: BaseException) -> None:
        if self._failure is None:
            self._failure = str(exc) or type(exc).__name__

    def _refusal(self) -> MediumError:
        if self._failure is not None:
            return MediumError(
                f"the journal refuses writes after an earlier failure: {self._failure}"
            )
        return MediumError("the journal writer is closed")

    def close(self) -> None:
        """Stop the fsync thread, fsync what was appended, close the file. Idempotent.

        Syncs under every policy, as Redis does at shutdown: a clean close
        leaves nothing to a power loss.

        :raises MediumError: the final fsync failed, or an earlier failure
            left appended records not durable (the file is closed anyway).
        """
        with self._append_lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        try:
            if self._written > self._synced:
                if self._failure is not None:
                    raise self._refusal()
                self._sync_to(self._written)
        finally:
            self._file.close()

    def __repr__(self) -> str:
        state = "failed" if self._failure else "closed" if self._closed else self.fsync
        return f"<JournalWriter {state} written={self._written} synced={self._synced}>"


def _sync_every(ref: weakref.ref[JournalWriter], stop: threading.Event, interval: float) -> None:
    """The ``everysec`` loop; holds the writer only weakly, so an unclosed writer can be freed."""
    while not stop.wait(interval):
        writer = ref()
        if writer is None:
            return
        writer.sync_pending()
        del writer
