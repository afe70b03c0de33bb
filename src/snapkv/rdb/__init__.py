"""Redis's serialization: DUMP payloads (and the RDB objects inside them), read and written.

A DUMP payload, as Redis's ``dumpCommand`` makes it and ``restoreCommand``
checks it (``cluster.c``)::

    <object: type byte + value (rdb.objects)> <RDB version: 2 bytes LE> <CRC-64: 8 bytes LE>

The CRC (:mod:`.crc64`) covers everything before it. :func:`dump` writes
version :data:`DUMP_VERSION` (9, Redis 5.0's: every Redis since loads it,
and the plain encodings written need nothing newer); :func:`restore`
accepts versions up to :data:`RDB_VERSION` (10, Redis 7.0's), as Redis
7.0 does. Pure: bytes in, values out; no store, no I/O. docs/RDB.md
describes what is read and written and why; whole RDB files are
:mod:`snapkv.rdb.file`'s (docs/FORMAT.md part 4).
"""

from __future__ import annotations

import struct
from typing import Any, Final

from snapkv.rdb.crc64 import crc64
from snapkv.rdb.objects import TYPE_NAMES, RDBError, load, save

__all__ = [
    "DUMP_VERSION",
    "RDB_VERSION",
    "TYPE_NAMES",
    "PayloadError",
    "RDBError",
    "crc64",
    "dump",
    "load",
    "restore",
    "save",
]

#: The newest RDB version RESTORE accepts (Redis 7.0's ``RDB_VERSION``).
RDB_VERSION: Final = 10
#: The version DUMP writes in the footer.
DUMP_VERSION: Final = 9
_FOOTER: Final = 10
_VERSION = struct.Struct("<H")
_CRC = struct.Struct("<Q")


class PayloadError(ValueError):
    """The payload's footer is wrong: too short, a version too new, or a checksum mismatch.

    Distinct from :class:`RDBError` (a footer that checks out around a
    malformed object) because Redis answers the two differently.
    """


def dump(value: Any) -> bytes:
    """``value`` (a ``str`` or a snapkv container) as a DUMP payload."""
    body = save(value) + _VERSION.pack(DUMP_VERSION)
    return body + _CRC.pack(crc64(0, body))


def restore(payload: bytes, max_version: int = RDB_VERSION) -> Any:
    """The value a DUMP payload holds.

    :raises PayloadError: the footer's version is above ``max_version`` or
        its CRC does not match (Redis's ``verifyDumpPayload``).
    :raises RDBError: the object inside is malformed or of a type snapkv
        has no value for.
    """
    size = len(payload)
    if size < _FOOTER:
        raise PayloadError(f"a DUMP payload has at least {_FOOTER} bytes, this one {size}")
    (version,) = _VERSION.unpack_from(payload, size - _FOOTER)
    if version > max_version:
        raise PayloadError(f"RDB version {version} is newer than {max_version}")
    (crc,) = _CRC.unpack_from(payload, size - 8)
    if crc64(0, memoryview(payload)[: size - 8]) != crc:
        raise PayloadError("the CRC-64 does not match")
    # As Redis's restoreCommand: the object is read from the whole payload
    # (footer included) and what follows it is not looked at.
    value, _ = load(payload)
    return value
