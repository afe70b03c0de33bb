"""The file header and record frame that snapshots and journals share, and their checks.

docs/FORMAT.md defines both in part 1 (sections 2 and 3); part 2 says the
journal's record frame "is the snapshot's, byte for byte" and gives its
header the same shape. So the bytes are encoded and verified here, once, as
LevelDB's log reader and writer share ``log_format.h``: a check cannot say
one thing for snapshots and another for journals. Each format passes its own
error class (:class:`~snapkv.errors.CorruptSnapshotError` or
:class:`~snapkv.errors.CorruptJournalError`); the ``check`` names are the
ones both check tables of FORMAT.md list::

    header := magic (8 bytes) | version u16 | flags u16 | format's fields | header_crc u32
    record := crc u32 | length u32 | type u8 | body (length bytes)

``header_crc`` is the CRC-32 of every header byte before it; a record's
``crc`` covers its length, type and body, not itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from struct import Struct
from typing import Any, TypeAlias

from snapkv._binary import U32, crc32, decode_text
from snapkv.errors import CorruptJournalError, CorruptSnapshotError

__all__ = [
    "FRAME",
    "FRAME_SIZE",
    "FRAME_TAIL",
    "OPTIONAL_TYPE_BIT",
    "CorruptError",
    "FileHeader",
    "as_view",
    "check_frame",
    "checked_text",
    "frame_end",
    "seal",
]

FRAME = Struct("<IIB")  # crc32, body length, record type
FRAME_SIZE = FRAME.size  # 9
FRAME_TAIL = Struct("<IB")  # the frame fields the CRC covers: length, type
#: Record types with this bit set may be skipped by readers that do not know them.
OPTIONAL_TYPE_BIT = 0x80

#: The error a format raises for bytes that fail a check.
CorruptError: TypeAlias = type[CorruptSnapshotError] | type[CorruptJournalError]


def as_view(data: bytes | bytearray | memoryview) -> memoryview:
    """``data`` as a flat memoryview of bytes, which the checks below slice without copying."""
    view = memoryview(data)
    if not view.c_contiguous:  # zlib and str() need contiguous memory: copy a strided view
        view = memoryview(view.tobytes())
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


# --------------------------------------------------------------------- header


@dataclass(frozen=True)
class FileHeader:
    """One format's header: magic, version, flags, the format's own fields, a CRC-32.

    ``layout`` starts with ``8sHH`` (magic, version, flags) and ends with
    ``I`` (the CRC-32 of every byte before it); ``versions`` are the ones
    this reader knows; ``noun`` names the format in messages.
    """

    noun: str
    magic: bytes
    layout: Struct
    versions: tuple[int, ...]
    error: CorruptError

    @property
    def size(self) -> int:
        return self.layout.size

    @property
    def crc_offset(self) -> int:
        return self.layout.size - U32.size

    def pack(self, version: int, *fields: int) -> bytes:
        """The header of a file of ``version`` whose own fields are ``fields`` (flags are 0)."""
        head = self.layout.pack(self.magic, version, 0, *fields, 0)[: self.crc_offset]
        return head + U32.pack(crc32(head))

    def check(self, view: memoryview) -> tuple[Any, ...]:
        """Verify the header at the start of ``view``; return ``(version, *fields)``.

        The checks run in FORMAT.md's order: ``magic``, ``header-length``,
        ``header-crc`` (before the fields it covers, so a damaged version is
        reported as damage, not as a newer format), ``version``, ``flags``.
        """
        error, noun, size = self.error, self.noun, len(view)
        if size < self.size:
            if bytes(view[:8]) != self.magic[: min(8, size)]:
                raise error(f"not a snapkv {noun}: bad magic", offset=0, check="magic")
            raise error(
                f"{noun} header needs {self.size} bytes, the {noun} has {size}",
                offset=0,
                check="header-length",
            )
        magic, version, flags, *fields, stored = self.layout.unpack_from(view, 0)
        if magic != self.magic:
            raise error(f"not a snapkv {noun}: bad magic {magic.hex()}", offset=0, check="magic")
        if crc32(view[: self.crc_offset]) != stored:
            raise error(
                f"{noun} header checksum mismatch", offset=self.crc_offset, check="header-crc"
            )
        if version not in self.versions:
            known = " and ".join(map(str, self.versions))
            raise error(
                f"unsupported {noun} version {version} (this reader knows {known}; "
                "written by a newer snapkv?)",
                offset=8,
                check="version",
            )
        if flags:
            raise error(
                f"reserved {noun} header flags 0x{flags:04x} are set", offset=10, check="flags"
            )
        return (version, *fields)


# --------------------------------------------------------------------- records


def seal(head: bytes, *rest: bytes | memoryview) -> bytes:
    """``head`` behind the record CRC over ``head`` and ``rest``; the caller appends ``rest``.

    ``head`` starts with the frame's length and type (:data:`FRAME_TAIL`),
    often followed by the body's fixed fields packed in the same call. The
    CRC is chained over the pieces, so a large value is never concatenated
    just to be checksummed, and a snapshot's text is written as a piece of
    its own, never copied.
    """
    crc = crc32(head)
    for piece in rest:
        crc = crc32(piece, crc)
    return U32.pack(crc) + head


def check_frame(view: memoryview, pos: int, error: CorruptError) -> tuple[int, int]:
    """Verify the record frame at ``pos``; return its type and the offset after the record.

    :raises error: with check ``record-header`` (fewer than 9 bytes left),
        ``record-length`` (the body runs past the end) or ``record-crc``, in
        that order, each at offset ``pos``.
    """
    size = len(view)
    if size - pos < FRAME_SIZE:
        raise error(
            f"record header needs {FRAME_SIZE} bytes, {size - pos} left",
            offset=pos,
            check="record-header",
        )
    stored, length, record_type = FRAME.unpack_from(view, pos)
    end: int = pos + FRAME_SIZE + length
    if end > size:
        # The length itself may be the damaged field: nothing after it is trusted.
        raise error(
            f"record length {length} runs past the end ({size - pos - FRAME_SIZE} bytes left)",
            offset=pos,
            check="record-length",
        )
    actual = crc32(view[pos + 4 : end])
    if actual != stored:
        raise error(
            f"record checksum mismatch: stored {stored:08x}, computed {actual:08x}",
            offset=pos,
            check="record-crc",
        )
    return record_type, end


def frame_end(view: memoryview, pos: int) -> int | None:
    """The offset after the record at ``pos`` if :func:`check_frame` accepts it, else ``None``.

    For the journal's search for a later valid record after damage, where
    most candidates fail: the check raises, and this says only whether it did.
    """
    try:
        return check_frame(view, pos, CorruptJournalError)[1]
    except CorruptJournalError:
        return None


def checked_text(data: memoryview, offset: int, error: CorruptError) -> str:
    """Decode text that starts at ``offset`` of its file.

    :raises error: check ``text-utf8``, at the first byte of the first
        invalid sequence.
    """
    try:
        return decode_text(data)
    except UnicodeDecodeError as exc:
        raise error(
            f"text is not valid UTF-8: {exc.reason}", offset=offset + exc.start, check="text-utf8"
        ) from None
