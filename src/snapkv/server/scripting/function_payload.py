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
from snapkv.rdb.objects import RDBError, load_string, save_length

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
        save_length(out, len(code))
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
        try:
            code, pos = load_string(payload, pos + 1, end)
        except RDBError:
            raise PayloadError(_BAD_BODY) from None
        codes.append(code)
    return codes
