"""RDB files (Redis's ``rdb.c``): a whole keyspace set as one file, written here, read by
:mod:`snapkv.rdb.file_reader` (re-exported).

A file, as Redis's ``rdbSaveRio`` writes it::

    "REDIS" <version: 4 ASCII digits>
    AUX <name> <value> ...                        (0xFA: redis-ver, redis-bits, ctime, ...)
    per keyspace: SELECTDB <db> RESIZEDB <keys> <keys with an expiry>   (0xFE, 0xFB)
        per key: [EXPIRETIME_MS <8 bytes LE>] <type byte> <key> <value>  (0xFC)
    EOF                                           (0xFF)
    <CRC-64 of every byte before it: 8 bytes LE>

Why version 9: it is Redis 5.0's, the oldest that every Redis since and
every Valkey loads, and what snapkv writes needs nothing newer (the plain
encodings of :func:`snapkv.rdb.objects.save_value`; the loader converts
them to its compact encodings as it would on any write). Strings, names
and values alike, are RDB strings: integer-encoded when canonical 32-bit
integers, never LZF-compressed (compression in pure Python costs more
time than the bytes it saves).

Streaming: :class:`RDBWriter` hands the file to a sink in chunks of about
:data:`CHUNK` bytes, continuing the CRC over each, so a file of any size is
written in bounded memory; the sink decides where the bytes go (a file, a
socket for a replica's full synchronisation). Pure: no I/O of its own.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from snapkv.rdb.crc64 import crc64
from snapkv.rdb.file_reader import (
    DEFAULT_CHUNK,
    Item,
    RDBFileError,
    RDBReader,
    Unsupported,
    read_rdb,
)

from . import objects

__all__ = [
    "CHUNK",
    "DEFAULT_CHUNK",
    "OP_AUX",
    "OP_EOF",
    "OP_EXPIRETIME_MS",
    "OP_RESIZEDB",
    "OP_SELECTDB",
    "WRITE_VERSION",
    "Item",
    "RDBFileError",
    "RDBReader",
    "RDBWriter",
    "Unsupported",
    "read_rdb",
    "write_rdb",
]

#: The version written (Redis 5.0's; see the module docstring).
WRITE_VERSION: Final = 9
#: What the writer buffers before it hands bytes to the sink.
CHUNK: Final = 1 << 20

OP_FUNCTION2, OP_MODULE_AUX, OP_IDLE, OP_FREQ, OP_AUX = 245, 247, 248, 249, 250
OP_RESIZEDB, OP_EXPIRETIME_MS, OP_EXPIRETIME, OP_SELECTDB, OP_EOF = 251, 252, 253, 254, 255

#: The version snapkv's server answers INFO with: what ``redis-ver`` says by default.
_REDIS_VER: Final = "7.0.15"
_MS = struct.Struct("<q")
_CRC = struct.Struct("<Q")
_save_string = objects.save_string


def default_aux() -> dict[str, str]:
    """The AUX fields Redis's ``rdbSaveInfoAuxFields`` writes (as Redis 5.0 named them)."""
    return {
        "redis-ver": _REDIS_VER,
        "redis-bits": "64",
        "ctime": str(int(time.time())),
        "used-mem": "0",
        "aof-preamble": "0",
    }


class RDBWriter:
    """An RDB file of version 9, written to ``sink`` in chunks as keys come.

    Call :meth:`select_db` before each keyspace's keys, :meth:`entry` per
    key, then :meth:`finish` once (EOF and the CRC-64 trailer; the last
    bytes reach the sink then). ``aux`` adds to or replaces the default
    AUX fields (a replication source adds ``repl-id`` and ``repl-offset``).
    """

    def __init__(
        self, sink: Callable[[bytes], None], *, aux: Mapping[str, str] | None = None
    ) -> None:
        self._sink = sink
        self._crc = 0
        self._finished = False
        self._out = bytearray(b"REDIS%04d" % WRITE_VERSION)
        fields = default_aux()
        fields.update(aux or {})
        for name, value in fields.items():
            self._out.append(OP_AUX)
            objects.save_string(self._out, name)
            objects.save_string(self._out, value)

    def select_db(self, db: int, size: int, expires: int) -> None:
        """Start keyspace ``db``, holding ``size`` keys of which ``expires`` have an expiry.

        The two counts are RESIZEDB's: only a hint for the loader's hash
        tables, so a count that turns out wrong costs a rehash, not data.
        """
        out = self._out
        out.append(OP_SELECTDB)
        objects.save_length(out, db)
        out.append(OP_RESIZEDB)
        objects.save_length(out, size)
        objects.save_length(out, expires)

    def entry(self, key: str, value: Any, expire_at_ms: int | None) -> None:
        """One key: its expiry time (epoch milliseconds) if any, type, name and value.

        :raises TypeError: ``value`` is not a value a key can hold.
        """
        out = self._out
        is_string = value.__class__ is str  # most keys: no dispatch on the type
        kind = objects.STRING if is_string else objects.type_of(value)  # raises before a byte
        if expire_at_ms is not None:
            out.append(OP_EXPIRETIME_MS)
            out += _MS.pack(expire_at_ms)
        out.append(kind)
        _save_string(out, key)
        if is_string:
            _save_string(out, value)
        else:
            objects.save_value(out, value)
        if len(out) >= CHUNK:
            self._flush()

    def finish(self) -> None:
        """EOF and the CRC-64 of the whole file; every byte is with the sink when this returns."""
        if self._finished:
            raise RuntimeError("the RDB file is already finished")
        self._finished = True
        self._out.append(OP_EOF)
        self._crc = crc64(self._crc, self._out)
        self._out += _CRC.pack(self._crc)
        self._sink(bytes(self._out))
        self._out = bytearray()

    def _flush(self) -> None:
        data = bytes(self._out)
        self._out = bytearray()
        self._crc = crc64(self._crc, data)
        self._sink(data)


Space = tuple[int, int, int, Iterable[tuple[str, Any, int | None]]]


def write_rdb(
    sink: Callable[[bytes], None],
    spaces: Iterable[Space],
    *,
    aux: Mapping[str, str] | None = None,
) -> None:
    """A whole file: ``spaces`` is ``(db, size, expires, entries)`` per keyspace, each entry
    ``(key, value, expire_at_ms or None)``; a keyspace with no keys may be left out."""
    writer = RDBWriter(sink, aux=aux)
    for db, size, expires, entries in spaces:
        writer.select_db(db, size, expires)
        for key, value, expire_at_ms in entries:
            writer.entry(key, value, expire_at_ms)
    writer.finish()
