"""The journal's bytes: constants, header, record encoders and the record body decoders.

The byte format is specified in docs/FORMAT.md (part 2); every constant
below mirrors a name there (section J9), as LevelDB's ``log_format.h``
points at ``log_format.md``. Shape of a journal file::

    HEADER   magic, version, flags, journal id, CRC-32      24 bytes
    record*  crc u32 | length u32 | type u8 | body          the snapshot's record frame
    BATCH body: entry*, entry = length u32 | type u8 | body (no CRC of its own)

The header's shape, the record frame and their checks are the snapshot's
and live in :mod:`snapkv._frame`, so the two formats cannot drift apart.

Records hold *effects* (set this key to this value with this absolute
expiry), never commands, so replaying a journal is deterministic whatever
the clock says at replay time. Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from struct import Struct
from struct import error as StructError
from typing import Any, Literal, TypeAlias

from snapkv._binary import TEXT_ENCODING, TEXT_ERRORS, U32, U32_MAX, crc32
from snapkv._frame import (
    FRAME,
    FRAME_SIZE,
    FRAME_TAIL,
    OPTIONAL_TYPE_BIT,
    FileHeader,
    as_view,
    check_frame,
    checked_text,
    seal,
)
from snapkv.errors import CorruptJournalError

__all__ = [
    "ALL_KEYSPACES",
    "DECODERS",
    "ENTRY",
    "ENTRY_SIZE",
    "FRAME",
    "FRAME_SIZE",
    "HEADER",
    "HEADER_CRC_OFFSET",
    "HEADER_SIZE",
    "JOURNAL_HEADER",
    "MAGIC",
    "OPTIONAL_TYPE_BIT",
    "TYPE_BATCH",
    "TYPE_CLEAR",
    "TYPE_DEL",
    "TYPE_EDIT",
    "TYPE_EXPIRE",
    "TYPE_PUT",
    "TYPE_RENAME",
    "TYPE_SET",
    "TYPE_SWAP",
    "VERSION",
    "BatchOp",
    "ClearOp",
    "DelOp",
    "EditOp",
    "ExpireOp",
    "Op",
    "PutOp",
    "RenameOp",
    "SetOp",
    "SimpleOp",
    "SwapOp",
    "batch_record",
    "clear_record",
    "decode_record",
    "delete_record",
    "edit_record",
    "encode",
    "expire_record",
    "header",
    "put_record",
    "rename_record",
    "set_record",
    "swap_record",
]

#: First eight bytes of every journal: the snapshot magic's scheme with ``SKJ``.
MAGIC = b"\x89SKJ\r\n\x1a\n"
#: Bumped only when a version-1 reader could misread a new journal.
VERSION = 1
HEADER = Struct("<8sHHQI")  # magic, version, flags, journal id, CRC-32 of bytes 0..19
HEADER_SIZE = HEADER.size  # 24
HEADER_CRC_OFFSET = 20
#: The header as :mod:`snapkv._frame` writes and verifies it.
JOURNAL_HEADER = FileHeader("journal", MAGIC, HEADER, (VERSION,), CorruptJournalError)

#: An entry of a BATCH body: a record frame without its CRC (the BATCH's covers it).
ENTRY = Struct("<IB")  # body length, type
ENTRY_SIZE = ENTRY.size  # 5

TYPE_SET = 0x10
TYPE_DEL = 0x11
TYPE_CLEAR = 0x12
TYPE_EXPIRE = 0x13
TYPE_SWAP = 0x14
TYPE_BATCH = 0x15
TYPE_EDIT = 0x16
TYPE_PUT = 0x17
TYPE_RENAME = 0x18

#: ``clear_record(ALL_KEYSPACES)`` clears every keyspace; decoded as ``("clear", -1)``.
ALL_KEYSPACES = -1
_ALL_ON_DISK = U32_MAX

# The frame fields the CRC covers (length, type), then each type's fixed body
# fields, as one Struct per type: an encoder packs everything in one call.
_SET_HEAD = Struct("<IBIQI")  # length, type | db, expire_at, key length
_DEL_HEAD = Struct("<IBI")  # length, type | db
_CLEAR_HEAD = Struct("<IBI")  # length, type | db
_EXPIRE_HEAD = Struct("<IBIQ")  # length, type | db, expire_at
_SWAP_HEAD = Struct("<IBII")  # length, type | db_a, db_b
_SET_FIXED = _SET_HEAD.size - FRAME_TAIL.size  # 16 body bytes before the key
_pack_set_head = _SET_HEAD.pack
_pack_u32 = U32.pack
_EXPIRE_FIXED = _EXPIRE_HEAD.size - FRAME_TAIL.size  # 12
_BODY_SET = Struct("<IQI")
_BODY_EXPIRE = Struct("<IQ")
_BODY_DB = Struct("<I")
_BODY_SWAP = Struct("<II")
_EDIT_HEAD = Struct("<IBIBBI")  # length, type | db, value type, opcode, key length
_PUT_HEAD = Struct("<IBIBQI")  # length, type | db, value type, expire_at, key length
_RENAME_HEAD = Struct("<IBIII")  # length, type | db, target db, key length
_EDIT_FIXED = _EDIT_HEAD.size - FRAME_TAIL.size  # 10
_PUT_FIXED = _PUT_HEAD.size - FRAME_TAIL.size  # 17
_RENAME_FIXED = _RENAME_HEAD.size - FRAME_TAIL.size  # 12
_BODY_EDIT = Struct("<IBBI")
_BODY_PUT = Struct("<IBQI")
_BODY_RENAME = Struct("<III")
# Items (FORMAT.md J3): a tag byte, then a u32 length and UTF-8 bytes (str),
# an i64 (int) or an f64 (float), all little-endian.
ITEM_STR = 0
ITEM_INT = 1
ITEM_FLOAT = 2
_STR_ITEM = Struct("<BI")
_INT_ITEM = Struct("<Bq")
_FLOAT_ITEM = Struct("<Bd")
_pack_str_item = _STR_ITEM.pack
_pack_int_item = _INT_ITEM.pack
_pack_float_item = _FLOAT_ITEM.pack

# Decoded operations (effects). ``db`` is a keyspace number; ``at`` an
# absolute expiry in milliseconds since the epoch, 0 meaning none.
SetOp: TypeAlias = tuple[Literal["set"], int, str, str, int]
DelOp: TypeAlias = tuple[Literal["del"], int, str]
ClearOp: TypeAlias = tuple[Literal["clear"], int]
ExpireOp: TypeAlias = tuple[Literal["expire"], int, str, int]
SwapOp: TypeAlias = tuple[Literal["swap"], int, int]
#: A value type's effect on a key (``values``' opcodes and items).
EditOp: TypeAlias = tuple[Literal["edit"], int, str, int, int, tuple[str | int | float, ...]]
#: A key now holds this whole value (type code, flat items), expiring at ``at``.
PutOp: TypeAlias = tuple[Literal["put"], int, str, int, tuple[str | int | float, ...], int]
#: ``key`` of keyspace ``db`` moved to ``target`` of keyspace ``target_db`` (replacing it).
RenameOp: TypeAlias = tuple[Literal["rename"], int, str, int, str]
SimpleOp: TypeAlias = SetOp | DelOp | ClearOp | ExpireOp | SwapOp | EditOp | PutOp | RenameOp
BatchOp: TypeAlias = tuple[Literal["batch"], tuple[SimpleOp, ...]]
Op: TypeAlias = SimpleOp | BatchOp


# --------------------------------------------------------------------- encoders


def header(jid: int) -> bytes:
    """The 24-byte header of journal ``jid``."""
    return JOURNAL_HEADER.pack(VERSION, jid)


def _text(value: str, what: str) -> bytes:
    try:
        return value.encode(TEXT_ENCODING, TEXT_ERRORS)
    except AttributeError:
        raise TypeError(f"journal {what} must be str, not {type(value).__name__}") from None


def _framed(head: bytes, *pieces: bytes | memoryview) -> bytes:
    """Frame a record whose CRC-covered part is ``head`` followed by ``pieces``."""
    return b"".join((seal(head, *pieces), *pieces))


def set_record(db: int, key: str, value: str, expire_at: int = 0) -> bytes:
    """SET: ``key`` in keyspace ``db`` now holds ``value``, expiring at ``expire_at`` ms (0: never).

    On the write path of every set, so written for the interpreter: the
    struct methods are bound once (``_pack_set_head``, ``_pack_u32``), each
    length is taken once, and for small values (the common case) the record
    is concatenated once and checksummed in one call, which measured ~30%
    cheaper than chaining three checksum calls; above 4 KiB the checksum is
    chained over the pieces instead, so the value is copied once (by the
    final join), not twice. The checks cost nothing until they fail: a
    non-str has no ``encode`` (AttributeError), a number out of its field's
    range fails the pack.

    :raises TypeError: ``key`` or ``value`` is not a str.
    :raises ValueError: a number does not fit its field.
    """
    try:
        try:
            # str.encode() without arguments is UTF-8 and ~15 ns cheaper a
            # call; it gives the bytes TEXT_ERRORS does for every str but
            # one holding a lone surrogate, which it refuses: that one takes
            # the full path.
            k = key.encode()
            v = value.encode()
        except UnicodeEncodeError:
            k = key.encode(TEXT_ENCODING, TEXT_ERRORS)
            v = value.encode(TEXT_ENCODING, TEXT_ERRORS)
    except AttributeError:
        _text(key, "key")
        _text(value, "value")
        raise
    klen = len(k)
    vlen = len(v)
    try:
        head = _pack_set_head(_SET_FIXED + klen + vlen, TYPE_SET, db, expire_at, klen)
    except StructError:
        raise _out_of_range(db=db, expire_at=expire_at) from None
    if vlen < 4096:
        # seal()'s recipe inlined: the call with its argument tuple cost
        # ~10% of the record (bench/journal.py).
        body = head + k + v
        return _pack_u32(crc32(body)) + body
    return _framed(head, k, v)


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


def _items(items: Iterable[str | int | float]) -> bytearray:
    """The items of an EDIT or PUT body (FORMAT.md J3), in one buffer.

    On the write path of every container change: a str is encoded with the
    argument-less ``encode()`` (UTF-8, ~15 ns cheaper a call) unless it holds
    a lone surrogate, which takes the full path, as in :func:`set_record`.
    """
    out = bytearray()
    for item in items:
        kind = type(item)
        if kind is str:
            try:
                data = item.encode()  # type: ignore[union-attr]
            except UnicodeEncodeError:
                data = item.encode(TEXT_ENCODING, TEXT_ERRORS)  # type: ignore[union-attr]
            out += _pack_str_item(ITEM_STR, len(data))
            out += data
        elif kind is float:
            if math.isnan(item):  # type: ignore[arg-type]  # no sorted set holds a NaN
                raise ValueError("a journal item cannot be NaN")
            out += _pack_float_item(ITEM_FLOAT, item)
        elif kind is int:
            try:
                out += _pack_int_item(ITEM_INT, item)
            except StructError:
                raise ValueError(f"journal integer item {item} does not fit 64 bits") from None
        else:
            raise TypeError(f"a journal item is a str, int or float, not {kind.__name__}")
    return out


def _sealed(head: bytes, key: bytes, items: bytes | bytearray) -> bytes:
    """A whole record from its CRC-covered head, key and items (``set_record``'s recipe)."""
    body = head + key + items
    return _pack_u32(crc32(body)) + body


def _small_edit(db: int, key: str, vtype: int, opcode: int, items: tuple[Any, ...]) -> bytes | None:
    """EDIT of one or two str items (one field set, one member added, one value pushed).

    The commonest container writes, so every piece is concatenated once,
    as :func:`set_record` does (measured ~45% cheaper than the general
    loop). ``None``: not all str, a lone surrogate or a number out of
    range, for :func:`edit_record`'s general path to encode or refuse.
    """
    try:
        k = key.encode()
        x = items[0].encode()
        body = _pack_str_item(ITEM_STR, len(x)) + x
        if len(items) == 2:
            y = items[1].encode()
            body += _pack_str_item(ITEM_STR, len(y)) + y
        head = _EDIT_HEAD.pack(
            _EDIT_FIXED + len(k) + len(body), TYPE_EDIT, db, vtype, opcode, len(k)
        )
    except (AttributeError, UnicodeEncodeError, StructError):
        return None
    whole: bytes = head + k + body
    return _pack_u32(crc32(whole)) + whole


def edit_record(
    db: int, key: str, vtype: int, opcode: int, items: Iterable[str | int | float]
) -> bytes:
    """EDIT: the value of type ``vtype`` at ``key`` changed by effect ``opcode`` with ``items``.

    What each (type, opcode) means is :mod:`snapkv.values`'; the journal
    only frames it. A missing key is created by the effect; an effect that
    leaves the value empty removes the key.
    """
    if items.__class__ is tuple and 0 < len(items) <= 2:
        small = _small_edit(db, key, vtype, opcode, items)
        if small is not None:
            return small
    try:
        # The common case, every item a str without a lone surrogate: one
        # pass, no dispatch (measured ~20% of the record); anything else
        # takes _items, which checks and encodes each kind.
        k = key.encode()
        pieces: list[bytes] = []
        for item in items:
            if item.__class__ is not str:
                raise TypeError
            data = item.encode()
            pieces += (_pack_str_item(ITEM_STR, len(data)), data)
        body: bytes | bytearray = b"".join(pieces)
    except (AttributeError, TypeError, UnicodeEncodeError):
        k = _text(key, "key")
        body = _items(items)
    try:
        head = _EDIT_HEAD.pack(
            _EDIT_FIXED + len(k) + len(body), TYPE_EDIT, db, vtype, opcode, len(k)
        )
    except StructError:
        raise _out_of_range(db=db, vtype=vtype, opcode=opcode) from None
    return _sealed(head, k, body)


def put_record(
    db: int, key: str, vtype: int, items: Iterable[str | int | float], expire_at: int = 0
) -> bytes:
    """PUT: ``key`` now holds the whole value of type ``vtype`` whose flat items are ``items``."""
    k = _text(key, "key")
    body = _items(items)
    try:
        head = _PUT_HEAD.pack(
            _PUT_FIXED + len(k) + len(body), TYPE_PUT, db, vtype, expire_at, len(k)
        )
    except StructError:
        raise _out_of_range(db=db, vtype=vtype, expire_at=expire_at) from None
    return _sealed(head, k, body)


def rename_record(db: int, key: str, target_db: int, target: str) -> bytes:
    """RENAME: ``key`` of keyspace ``db`` is now ``target`` of ``target_db``, expiry included.

    Whatever ``target`` held is replaced. One record whatever the value's
    size, so renaming a million-element hash costs what renaming a string does.
    """
    k = _text(key, "key")
    t = _text(target, "key")
    try:
        head = _RENAME_HEAD.pack(
            _RENAME_FIXED + len(k) + len(t), TYPE_RENAME, db, target_db, len(k)
        )
    except StructError:
        raise _out_of_range(db=db, other=target_db) from None
    return _framed(head, k, t)


def encode(op: SimpleOp) -> bytes:
    """The record of one decoded effect: the inverse of its decoder."""
    o: Any = op  # the tuple's shape follows from its first field, which mypy cannot see
    kind = o[0]
    if kind == "set":
        return set_record(o[1], o[2], o[3], o[4])
    if kind == "del":
        return delete_record(o[1], o[2])
    if kind == "expire":
        return expire_record(o[1], o[2], o[3])
    if kind == "clear":
        return clear_record(o[1])
    if kind == "swap":
        return swap_record(o[1], o[2])
    if kind == "edit":
        return edit_record(o[1], o[2], o[3], o[4], o[5])
    if kind == "put":
        return put_record(o[1], o[2], o[3], o[4], o[5])
    if kind == "rename":
        return rename_record(o[1], o[2], o[3], o[4])
    raise ValueError(f"not a journal effect: {kind!r}")


def batch_record(records: Iterable[bytes]) -> bytes:
    """BATCH: the given records (from the encoders above, no BATCH), applied all or nothing.

    One record with one CRC over the lot, so a crash keeps all of them or
    none. Each record is stored as an *entry*, without its own CRC: the
    bytes of an entry are then never a valid record frame by itself, so the
    bytes of a BATCH whose start a crash garbled cannot pass for records
    written after it (which would turn a garbage tail into mid-file damage).

    :raises ValueError: an item is not one complete record of a type other
        than BATCH whose CRC holds.
    """
    entries = [_batch_entry(record) for record in records]
    length = sum(map(len, entries))
    return _framed(FRAME_TAIL.pack(length, TYPE_BATCH), *entries)


def _batch_entry(record: bytes) -> memoryview:
    """``record`` without its CRC, once it is known to be one whole record of a BATCH type.

    The CRC is checked before it is dropped: a record altered after it was
    encoded would otherwise be sealed under the BATCH's valid CRC.
    """
    view = as_view(record)
    try:
        record_type, end = check_frame(view, 0, CorruptJournalError)
    except CorruptJournalError as exc:
        raise ValueError(f"batch_record takes whole records only: {exc.reason}") from None
    if end != len(view):
        raise ValueError("batch_record takes whole records only, one per item")
    if record_type not in _INNER_TYPES:
        raise ValueError(f"a batch cannot hold a record of type 0x{record_type:02x}")
    return view[4:]


def _out_of_range(**fields: int) -> ValueError:
    shown = ", ".join(f"{name}={value}" for name, value in fields.items())
    return ValueError(
        f"journal field out of range ({shown}): keyspaces are 0..{_ALL_ON_DISK - 1}, "
        "times 0..2**64-1 ms"
    )


# --------------------------------------------------------------------- decoders


def decode_record(record: bytes | bytearray | memoryview) -> Op:
    """The operation of one whole record, as the encoders above produce it.

    For a caller that holds a record it has not written yet (a buffered
    transaction learning which keys it touches): the same checks and body
    decoders as :func:`~snapkv.journal.reader.scan_journal`, with offsets
    counted from the record's first byte.

    :raises CorruptJournalError: the frame fails a check (``record-header``,
        ``record-length``, ``record-crc``), bytes follow the record
        (``record-length``), its type is not one of the format's
        (``record-type``), or its body is malformed.
    """
    view = as_view(record)
    record_type, end = check_frame(view, 0, CorruptJournalError)
    if end != len(view):
        raise CorruptJournalError(
            f"{len(view) - end} bytes after the record", offset=end, check="record-length"
        )
    decoder = DECODERS.get(record_type)
    if decoder is None:
        raise CorruptJournalError(
            f"record type 0x{record_type:02x} is not an operation", offset=0, check="record-type"
        )
    return decoder(view, FRAME_SIZE, end)


def _str(view: memoryview, start: int, end: int) -> str:
    return checked_text(view[start:end], start, CorruptJournalError)


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


def _decode_items(view: memoryview, pos: int, end: int) -> tuple[str | int | float, ...]:
    items: list[str | int | float] = []
    append = items.append
    while pos < end:
        tag = view[pos]
        if tag == ITEM_STR:
            if end - pos < _STR_ITEM.size:
                raise _body_error("an item's length runs past its record", pos)
            length = U32.unpack_from(view, pos + 1)[0]
            start = pos + _STR_ITEM.size
            pos = start + length
            if pos > end:
                raise _body_error(f"an item of length {length} runs past its record", start - 4)
            append(_str(view, start, pos))
        elif tag in (ITEM_INT, ITEM_FLOAT):
            if end - pos < 9:
                raise _body_error("a number item runs past its record", pos)
            number = (_INT_ITEM if tag == ITEM_INT else _FLOAT_ITEM).unpack_from(view, pos)[1]
            if tag == ITEM_FLOAT and math.isnan(number):
                raise _body_error("a float item is NaN", pos)
            append(number)
            pos += 9
        else:
            raise _body_error(f"item tag {tag} is not 0 (str), 1 (int) or 2 (float)", pos)
    return tuple(items)


def _decode_edit(view: memoryview, start: int, end: int) -> EditOp:
    if end - start < _EDIT_FIXED:
        raise _body_error(f"EDIT body has {end - start} bytes, needs {_EDIT_FIXED}", start)
    db, vtype, opcode, klen = _BODY_EDIT.unpack_from(view, start)
    key_end = start + _EDIT_FIXED + klen
    if key_end > end:
        raise _body_error(f"EDIT key length {klen} runs past its body", start + 6)
    key = _str(view, start + _EDIT_FIXED, key_end)
    return ("edit", db, key, vtype, opcode, _decode_items(view, key_end, end))


def _decode_put(view: memoryview, start: int, end: int) -> PutOp:
    if end - start < _PUT_FIXED:
        raise _body_error(f"PUT body has {end - start} bytes, needs {_PUT_FIXED}", start)
    db, vtype, at, klen = _BODY_PUT.unpack_from(view, start)
    key_end = start + _PUT_FIXED + klen
    if key_end > end:
        raise _body_error(f"PUT key length {klen} runs past its body", start + 13)
    key = _str(view, start + _PUT_FIXED, key_end)
    return ("put", db, key, vtype, _decode_items(view, key_end, end), at)


def _decode_rename(view: memoryview, start: int, end: int) -> RenameOp:
    if end - start < _RENAME_FIXED:
        raise _body_error(f"RENAME body has {end - start} bytes, needs {_RENAME_FIXED}", start)
    db, target_db, klen = _BODY_RENAME.unpack_from(view, start)
    key_end = start + _RENAME_FIXED + klen
    if key_end > end:
        raise _body_error(f"RENAME key length {klen} runs past its body", start + 8)
    return (
        "rename",
        db,
        _str(view, start + _RENAME_FIXED, key_end),
        target_db,
        _str(view, key_end, end),
    )


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
    TYPE_EDIT: _decode_edit,
    TYPE_PUT: _decode_put,
    TYPE_RENAME: _decode_rename,
}
#: The body decoder of every record type a version-1 reader knows, called as
#: ``decoder(view, body_start, body_end)``; it raises CorruptJournalError
#: with the offset in ``view`` of a malformed field.
DECODERS: dict[int, Callable[[memoryview, int, int], Op]] = {
    **_INNER_DECODERS,
    TYPE_BATCH: _decode_batch,
}
_INNER_TYPES = frozenset(_INNER_DECODERS)
