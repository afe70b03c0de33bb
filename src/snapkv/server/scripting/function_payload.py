"""FUNCTION DUMP's payload (Redis 7.0's ``functionDumpCommand`` / ``functionRestoreCommand``).

A payload is each library's code as an RDB record, then the footer DUMP
payloads share::

    ( RDB_OPCODE_FUNCTION2 (245)  <code: RDB string> )*
    <RDB version: 2 bytes LE>  <CRC-64: 8 bytes LE>

The CRC (``rdb.crc64``) covers everything before it. Codes are written
uncompressed (Redis compresses one over 20 bytes when LZF shortens it);
both forms are read (``rdb.lzf``), and every Redis 7 restores either.
"""

from __future__ import annotations

import struct
from typing import Final

from snapkv.rdb.crc64 import crc64
from snapkv.rdb.lzf import LZFError, decompress

__all__ = ["PayloadError", "decode_payload", "encode_payload"]

RDB_OPCODE_FUNCTION2: Final = 245
#: The RDB version written, and the newest read (Redis 7.0's).
RDB_VERSION: Final = 10
_FOOTER = struct.Struct("<HQ")
_BAD_FOOTER: Final = "ERR DUMP payload version or checksum are wrong"
_BAD_BODY: Final = "ERR failed loading the given functions payload"


class PayloadError(Exception):
    """A payload Redis refuses; the text is its error reply."""


def encode_payload(codes: list[bytes]) -> bytes:
    """The payload of ``codes`` (each a library's whole code)."""
    out = bytearray()
    for code in codes:
        out.append(RDB_OPCODE_FUNCTION2)
        _save_length(out, len(code))
        out += code
    out += struct.pack("<H", RDB_VERSION)
    return bytes(out) + struct.pack("<Q", crc64(0, out))


def decode_payload(payload: bytes) -> list[bytes]:
    """The library codes of ``payload``, its footer checked first (``verifyDumpPayload``)."""
    size = len(payload)
    if size < _FOOTER.size:
        raise PayloadError(_BAD_FOOTER)
    version, crc = _FOOTER.unpack_from(payload, size - _FOOTER.size)
    if version > RDB_VERSION or crc64(0, memoryview(payload)[: size - 8]) != crc:
        raise PayloadError(_BAD_FOOTER)
    codes: list[bytes] = []
    pos, end = 0, size - _FOOTER.size
    while pos < end:
        if payload[pos] != RDB_OPCODE_FUNCTION2:
            raise PayloadError("ERR given type is not a function")
        code, pos = _load_string(payload, pos + 1, end)
        codes.append(code)
    return codes


def _save_length(out: bytearray, value: int) -> None:
    """RDB's length encoding (``rdbSaveLen``)."""
    if value < 1 << 6:
        out.append(value)
    elif value < 1 << 14:
        out += bytes([0x40 | (value >> 8), value & 0xFF])
    elif value < 1 << 32:
        out.append(0x80)
        out += value.to_bytes(4, "big")
    else:
        out.append(0x81)
        out += value.to_bytes(8, "big")


def _load_length(data: bytes, pos: int, end: int) -> tuple[int, bool, int]:
    """(length or encoding, whether it is an encoding, next position)."""
    if pos >= end:
        raise PayloadError(_BAD_BODY)
    first = data[pos]
    kind = first >> 6
    if kind == 0:
        return first, False, pos + 1
    if kind == 1 and pos + 2 <= end:
        return ((first & 0x3F) << 8) | data[pos + 1], False, pos + 2
    if kind == 3:
        return first & 0x3F, True, pos + 1
    if first == 0x80 and pos + 5 <= end:
        return int.from_bytes(data[pos + 1 : pos + 5], "big"), False, pos + 5
    if first == 0x81 and pos + 9 <= end:
        return int.from_bytes(data[pos + 1 : pos + 9], "big"), False, pos + 9
    raise PayloadError(_BAD_BODY)


def _load_string(data: bytes, pos: int, end: int) -> tuple[bytes, int]:
    """An RDB string (raw, integer-encoded or LZF-compressed) at ``pos``."""
    failed = PayloadError(_BAD_BODY)
    value, encoded, pos = _load_length(data, pos, end)
    if not encoded:
        if pos + value > end:
            raise failed
        return data[pos : pos + value], pos + value
    if value in (0, 1, 2):
        size = 1 << value
        if pos + size > end:
            raise failed
        number = int.from_bytes(data[pos : pos + size], "little", signed=True)
        return str(number).encode(), pos + size
    if value == 3:
        compressed, _, pos = _load_length(data, pos, end)
        length, _, pos = _load_length(data, pos, end)
        if pos + compressed > end:
            raise failed
        try:
            return decompress(data[pos : pos + compressed], length), pos + compressed
        except LZFError:
            raise failed from None
    raise failed
