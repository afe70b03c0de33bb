"""Redis's compact encodings, read: ziplist, listpack, intset and zipmap (a blob -> its entries).

Small hashes, lists, sets and sorted sets are saved by Redis as one
string holding its in-memory compact encoding: a *ziplist* (Redis < 7:
``ziplist.c``), a *listpack* (Redis >= 7: ``listpack.c``), an *intset*
(``intset.c``: sets of integers) or a *zipmap* (Redis < 2.6 hashes:
``zipmap.c``). Each reader here returns the entries in order, a string
entry as ``bytes`` and an integer entry as ``int``; what they mean (a
hash's fields and values, a sorted set's members and scores) is for
:mod:`snapkv.rdb.objects`.

Why every reader validates everything (the equivalent of Redis's deep
sanitization, ``sanitize-dump-payload yes``): the blob comes from a client
(RESTORE). Each header count and length is checked against the blob's
size, every entry must end inside it, back links (ziplist ``prevlen``,
listpack ``backlen``) must agree with the entries, intsets must be
strictly increasing, and the terminator must be the blob's last byte. A
blob that fails raises :class:`CompactError` with the offset inside the
blob, never another exception.
"""

from __future__ import annotations

__all__ = ["CompactError", "Entry", "ListpackWriter", "intset", "listpack", "ziplist", "zipmap"]

#: A string entry (bytes) or an integer entry.
Entry = bytes | int

_END = 0xFF


class CompactError(ValueError):
    """A malformed compact encoding; ``offset`` is where in the blob, ``what`` which encoding."""

    def __init__(self, what: str, message: str, offset: int) -> None:
        super().__init__(f"{what}: {message} (at byte {offset} of the {what})")
        self.what = what
        self.offset = offset


def _le(blob: bytes, pos: int, size: int) -> int:
    return int.from_bytes(blob[pos : pos + size], "little")


def _signed(blob: bytes, pos: int, size: int) -> int:
    return int.from_bytes(blob[pos : pos + size], "little", signed=True)


# ------------------------------------------------------------------ ziplist

_ZL_INTS = {0xC0: 2, 0xD0: 4, 0xE0: 8, 0xF0: 3, 0xFE: 1}


def ziplist(blob: bytes) -> list[Entry]:
    """The entries of a ziplist: ``zlbytes zltail zllen entry... 0xFF``.

    An entry is ``prevlen`` (1 byte, or 0xFE and 4 bytes), an encoding
    (strings: 6-bit, 14-bit big-endian or 32-bit big-endian length;
    integers: int8/16/24/32/64 little-endian or a 4-bit immediate 0..12)
    and the data.
    """
    what = "ziplist"
    size = len(blob)
    if size < 11:
        raise CompactError(what, f"{size} bytes is shorter than a header and its end", 0)
    if _le(blob, 0, 4) != size:
        raise CompactError(what, f"zlbytes says {_le(blob, 0, 4)}, the blob has {size}", 0)
    tail, count = _le(blob, 4, 4), _le(blob, 8, 2)
    if blob[-1] != _END:
        raise CompactError(what, "the last byte is not the end marker", size - 1)
    out: list[Entry] = []
    pos, prev_len, last = 10, 0, 10
    end = size - 1
    while pos < end:
        start = pos
        head = blob[pos]
        if head == 0xFE:
            if pos + 5 > end:
                raise CompactError(what, "an entry's prevlen is cut short", pos)
            prevlen = _le(blob, pos + 1, 4)
            pos += 5
        elif head == _END:
            raise CompactError(what, "an end marker before the end", pos)
        else:
            prevlen = head
            pos += 1
        if prevlen != prev_len:
            raise CompactError(what, f"prevlen {prevlen}, the previous entry has {prev_len}", start)
        if pos >= end:
            raise CompactError(what, "an entry is cut short", start)
        enc = blob[pos]
        kind = enc >> 6
        value: Entry
        if kind < 3:
            if kind == 0:
                length, pos = enc & 0x3F, pos + 1
            elif kind == 1:
                if pos + 2 > end:
                    raise CompactError(what, "a string length is cut short", pos)
                length, pos = ((enc & 0x3F) << 8) | blob[pos + 1], pos + 2
            else:
                if pos + 5 > end:
                    raise CompactError(what, "a string length is cut short", pos)
                length, pos = int.from_bytes(blob[pos + 1 : pos + 5], "big"), pos + 5
            if pos + length > end:
                raise CompactError(what, f"a {length}-byte string goes past the end", start)
            value, pos = blob[pos : pos + length], pos + length
        elif enc in _ZL_INTS:
            width = _ZL_INTS[enc]
            if pos + 1 + width > end:
                raise CompactError(what, "an integer is cut short", start)
            value, pos = _signed(blob, pos + 1, width), pos + 1 + width
        elif 0xF1 <= enc <= 0xFD:
            value, pos = (enc & 0x0F) - 1, pos + 1
        else:
            raise CompactError(what, f"encoding byte 0x{enc:02x} is not one of ziplist's", pos)
        out.append(value)
        prev_len, last = pos - start, start
    if count != 0xFFFF and count != len(out):
        raise CompactError(what, f"zllen says {count} entries, there are {len(out)}", 8)
    if tail != (last if out else 10):
        raise CompactError(what, f"zltail says {tail}, the last entry is at {last}", 4)
    return out


# ----------------------------------------------------------------- listpack

_LP_INTS = {0xF1: 2, 0xF2: 3, 0xF3: 4, 0xF4: 8}


def _backlen(length: int) -> bytes:
    """Listpack's ``lpEncodeBacklen``: ``length`` in 7-bit groups, read from the right."""
    groups = [length & 127]
    length >>= 7
    while length:
        groups.append(length & 127)
        length >>= 7
    # The first byte written (the highest group) has no continuation bit.
    return bytes([groups[-1], *(g | 128 for g in reversed(groups[:-1]))])


def listpack(blob: bytes) -> list[Entry]:
    """The entries of a listpack: ``total-bytes num-elements entry... 0xFF``.

    An entry is an encoding with its data (7-bit unsigned, 13/16/24/32/64-
    bit signed integers, strings with a 6-bit, 12-bit or 32-bit length),
    then ``backlen``, the size of those two in 7-bit groups so the list
    can be walked backwards.
    """
    what = "listpack"
    size = len(blob)
    if size < 7:
        raise CompactError(what, f"{size} bytes is shorter than a header and its end", 0)
    if _le(blob, 0, 4) != size:
        raise CompactError(what, f"total-bytes says {_le(blob, 0, 4)}, the blob has {size}", 0)
    count = _le(blob, 4, 2)
    if blob[-1] != _END:
        raise CompactError(what, "the last byte is not the end marker", size - 1)
    out: list[Entry] = []
    pos, end = 6, size - 1
    while pos < end:
        start = pos
        enc = blob[pos]
        value: Entry
        if enc < 0x80:
            value, pos = enc, pos + 1
        elif enc < 0xC0:
            length = enc & 0x3F
            value, pos = blob[pos + 1 : pos + 1 + length], pos + 1 + length
        elif enc < 0xE0:
            if pos + 2 > end:
                raise CompactError(what, "an integer is cut short", start)
            raw = ((enc & 0x1F) << 8) | blob[pos + 1]
            value, pos = raw - (1 << 13) if raw >= 1 << 12 else raw, pos + 2
        elif enc < 0xF0:
            if pos + 2 > end:
                raise CompactError(what, "a string length is cut short", start)
            length = ((enc & 0x0F) << 8) | blob[pos + 1]
            value, pos = blob[pos + 2 : pos + 2 + length], pos + 2 + length
        elif enc == 0xF0:
            if pos + 5 > end:
                raise CompactError(what, "a string length is cut short", start)
            length = _le(blob, pos + 1, 4)
            value, pos = blob[pos + 5 : pos + 5 + length], pos + 5 + length
        elif enc in _LP_INTS:
            width = _LP_INTS[enc]
            value, pos = _signed(blob, pos + 1, width), pos + 1 + width
        else:
            raise CompactError(what, f"encoding byte 0x{enc:02x} is not one of listpack's", start)
        if pos > end:
            raise CompactError(what, "an entry goes past the end", start)
        if pos - start < 128:  # most entries: a backlen of one byte, the size itself
            if blob[pos] != pos - start:
                raise CompactError(what, "an entry's backlen does not match its size", pos)
            pos += 1
        else:
            back = _backlen(pos - start)
            if blob[pos : pos + len(back)] != back:
                raise CompactError(what, "an entry's backlen does not match its size", pos)
            pos += len(back)
        if pos > end:
            raise CompactError(what, "an entry's backlen goes past the end", start)
        out.append(value)
    if count != 0xFFFF and count != len(out):
        raise CompactError(what, f"num-elements says {count}, there are {len(out)}", 4)
    return out


# ------------------------------------------------------------------- intset


def intset(blob: bytes) -> list[int]:
    """The members of an intset: ``encoding length`` (uint32 LE each), then sorted integers."""
    what = "intset"
    if len(blob) < 8:
        raise CompactError(what, f"{len(blob)} bytes is shorter than its header", 0)
    width, count = _le(blob, 0, 4), _le(blob, 4, 4)
    if width not in (2, 4, 8):
        raise CompactError(what, f"encoding {width} is not 2, 4 or 8", 0)
    if 8 + width * count != len(blob):
        raise CompactError(what, f"{count} members of {width} bytes do not fill {len(blob)}", 4)
    out = [_signed(blob, 8 + i * width, width) for i in range(count)]
    for i in range(1, count):
        if out[i] <= out[i - 1]:
            raise CompactError(what, "the members are not strictly increasing", 8 + i * width)
    return out


# ------------------------------------------------------------------- zipmap


def _zipmap_len(blob: bytes, pos: int, end: int) -> tuple[int, int]:
    """A zipmap length at ``pos``: (length, next position); 255 (the end) -> (-1, pos + 1)."""
    head = blob[pos]
    if head < 254:
        return head, pos + 1
    if head == 255:
        return -1, pos + 1
    if pos + 5 > end:
        raise CompactError("zipmap", "a length is cut short", pos)
    return _le(blob, pos + 1, 4), pos + 5


def zipmap(blob: bytes) -> list[Entry]:
    """The keys and values of a zipmap (``zmlen``, then ``len key len free value`` ... 0xFF)."""
    what = "zipmap"
    size = len(blob)
    if size < 2:
        raise CompactError(what, f"{size} bytes is shorter than a header and its end", 0)
    count = blob[0]
    out: list[Entry] = []
    pos = 1
    while True:
        if pos >= size:
            raise CompactError(what, "no end marker", pos)
        length, pos = _zipmap_len(blob, pos, size)
        if length < 0:
            break
        if pos + length > size:
            raise CompactError(what, "a key goes past the end", pos)
        out.append(blob[pos : pos + length])
        pos += length
        if pos >= size:
            raise CompactError(what, "a key has no value", pos)
        length, pos = _zipmap_len(blob, pos, size)
        if length < 0 or pos >= size:
            raise CompactError(what, "a key has no value", pos)
        free = blob[pos]
        pos += 1
        if pos + length + free > size:
            raise CompactError(what, "a value goes past the end", pos)
        out.append(blob[pos : pos + length])
        pos += length + free
    if pos != size:
        raise CompactError(what, "bytes after the end marker", pos)
    if count < 254 and count != len(out) // 2:
        raise CompactError(what, f"zmlen says {count} pairs, there are {len(out) // 2}", 0)
    return out


# ------------------------------------------------------------ listpack, written


class ListpackWriter:
    """A listpack built entry by entry (``lpAppend``, ``lpAppendInteger``): a stream's nodes.

    Integers take listpack's smallest integer encoding; strings are kept as
    strings (Redis would store a canonical integer string as an integer; read
    back, both are the same text).
    """

    def __init__(self) -> None:
        self._body = bytearray()
        self._count = 0

    def _entry(self, encoded: bytes) -> None:
        self._body += encoded
        self._body += _backlen(len(encoded))
        self._count += 1

    def integer(self, value: int) -> None:
        """Append an integer (a signed 64-bit value)."""
        if 0 <= value <= 127:
            self._entry(bytes([value]))
        elif -4096 <= value <= 4095:
            raw = value & 0x1FFF
            self._entry(bytes([0xC0 | (raw >> 8), raw & 0xFF]))
        else:
            for code, width in _LP_INTS.items():
                if -(1 << (8 * width - 1)) <= value < 1 << (8 * width - 1):
                    self._entry(bytes([code]) + value.to_bytes(width, "little", signed=True))
                    return
            raise OverflowError(f"{value} does not fit a listpack integer")

    def string(self, text: str) -> None:
        """Append a string (UTF-8 with ``surrogateescape``, the server's mapping)."""
        data = text.encode("utf-8", "surrogateescape")
        size = len(data)
        if size < 64:
            head = bytes([0x80 | size])
        elif size < 4096:
            head = bytes([0xE0 | (size >> 8), size & 0xFF])
        else:
            head = b"\xf0" + size.to_bytes(4, "little")
        self._entry(head + data)

    def finish(self) -> bytes:
        """The listpack: total bytes, element count (65535: too many to say), entries, end."""
        total = 6 + len(self._body) + 1
        count = min(self._count, 0xFFFF)
        return total.to_bytes(4, "little") + count.to_bytes(2, "little") + self._body + b"\xff"
