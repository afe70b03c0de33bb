"""RDB files read (Redis's ``rdbLoadRio``): every key of a file written by Redis 2.x to 7.4 or
Valkey, streamed from a binary file in bounded memory.

What is read: the magic ``REDIS`` with versions 1 to 12, or ``VALKEY`` with
versions 80 and up (Valkey 9; Valkey 7.2 and 8 write ``REDIS0011``); every
opcode of Redis's ``rdb.h``: AUX (kept in :attr:`RDBReader.aux`),
RESIZEDB (a hint, ignored), EXPIRETIME (seconds) and EXPIRETIME_MS, FREQ
and IDLE (eviction hints, ignored), SELECTDB, SLOT_INFO (Redis 7.4's
cluster hint, ignored), MODULE_AUX (skipped: its annotated data says where
it ends; a module's own state is nothing snapkv could keep), FUNCTION2 (a
function library: refused, or recorded and skipped with
``skip_unsupported``), EOF, then the CRC-64 (from version 5; zero means the
writer had checksums off, as Redis's ``rdbchecksum no``, and is accepted as
Redis accepts it). Values are :func:`snapkv.rdb.objects.load_value`'s.

Unsupported keys (a module value, a stream with consumer groups) are an
error naming the key, its type and the offset, unless ``skip_unsupported``:
then each one is recorded in :attr:`RDBReader.skipped` and the reading
goes on. Every error is :class:`RDBFileError` with the byte offset in the
file where it was found; nothing is yielded past a fault, and a file whose
checksum fails raises after its last key: a caller that imports must
hold what it read until the iteration ends (the import writes its target
only then).

Bounded memory: the file is read in chunks of ``chunk`` bytes; a value
longer than what is held makes the reader read more (doubling) and parse
it again, so memory is about the largest value plus one chunk.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from typing import IO, Any, Final, NamedTuple

from snapkv.rdb.crc64 import crc64
from snapkv.rdb.objects import RDBError

from . import file_parse, objects
from .file_parse import OBJECTS, Item

__all__ = ["DEFAULT_CHUNK", "Item", "RDBFileError", "RDBReader", "Unsupported", "read_rdb"]

DEFAULT_CHUNK: Final = 4 << 20
_MAX_REDIS_VERSION: Final = 12
_FIRST_VALKEY_VERSION: Final = 80
#: A store's most keyspaces (``check_settings``): a SELECTDB at or past it cannot be imported.
_MAX_KEYSPACES: Final = 1 << 31

_SLOT_INFO, _FUNCTION2, _FUNCTION_PRE_GA, _MODULE_AUX = 244, 245, 246, 247
_IDLE, _FREQ, _AUX, _RESIZEDB = 248, 249, 250, 251
_EXPIRETIME_MS, _EXPIRETIME, _SELECTDB, _EOF = 252, 253, 254, 255
_MODULE_PRE_GA, _MODULE_2 = 6, 7
_STREAM_TYPES = (15, 19, 21)
#: Valkey 9's hash whose fields may have expiry times (RDB 80): ``len {field value ms}...``.
_HASH_2 = 22


class Unsupported(NamedTuple):
    """A key skipped because snapkv holds no such value: where, which key, what type."""

    db: int
    key: str
    type_name: str
    offset: int


class RDBFileError(RDBError):
    """A file that is not a valid RDB file, or holds what cannot be imported; ``offset`` in it."""


class _Window:
    """The part of the file being parsed: ``data`` from file offset ``base``; the CRC so far.

    Bytes leave the window only once parsed; the CRC is continued over them then, so the
    checksum covers the file exactly once whatever the chunking.
    """

    def __init__(self, source: IO[bytes], chunk: int, size: int | None) -> None:
        self.source, self.chunk, self.size = source, chunk, size
        self.data = b""
        self.base = 0
        self.crc = 0
        self.eof = False

    def release(self, pos: int) -> None:
        """Bytes before ``pos`` (window-relative) are parsed: CRC them and let them go."""
        self.crc = crc64(self.crc, memoryview(self.data)[:pos])
        self.data = self.data[pos:]
        self.base += pos

    def more(self, wanted: int) -> bool:
        """Read about ``wanted`` more bytes (at least a chunk); False at the end of the file."""
        if self.eof:
            return False
        piece = self.source.read(max(wanted, self.chunk))
        if not piece:
            self.eof = True
            return False
        self.data += piece
        return True


class RDBReader:
    """Iterate over the keys of the RDB file ``source`` (a binary file object or bytes).

    After the iteration: :attr:`version`, :attr:`aux` (the AUX fields),
    :attr:`skipped` (with ``skip_unsupported``: the keys and function
    libraries left out; a function library's key is its name, db -1),
    :attr:`empty` (keys holding a container of no elements, left out as
    Redis's loader leaves them out) and :attr:`checksum` (``None``: the
    writer had checksums off).
    """

    def __init__(
        self,
        source: IO[bytes] | bytes,
        *,
        skip_unsupported: bool = False,
        chunk: int = DEFAULT_CHUNK,
    ) -> None:
        if isinstance(source, bytes | bytearray | memoryview):
            source = io.BytesIO(bytes(source))
        self.skip_unsupported = skip_unsupported
        self.version = 0
        self.aux: dict[str, str] = {}
        self.skipped: list[Unsupported] = []
        self.empty: list[Unsupported] = []
        self.checksum: int | None = None
        self._w = _Window(source, chunk, _size_of(source))
        self._pos = 0

    @property
    def position(self) -> int:
        """The file offset parsing has reached: every key yielded so far ends at or before it."""
        return self._w.base + self._pos

    # -- primitives over the window ---------------------------------------

    def _fail(self, message: str, at: int) -> RDBFileError:
        return RDBFileError(message, self._w.base + at)

    def _need(self, size: int) -> None:
        w = self._w
        while len(w.data) - self._pos < size:
            if not w.more(size - (len(w.data) - self._pos)):
                raise self._fail(
                    f"the file ends early: {size} bytes wanted, {len(w.data) - self._pos} left",
                    self._pos,
                )

    def _take(self, size: int) -> bytes:
        self._need(size)
        start = self._pos
        self._pos += size
        return self._w.data[start : self._pos]

    def _parse(self, parse: Any) -> Any:
        """``parse(data, pos, end) -> (result, end)`` at the cursor, reading more while the
        window is too short for it; a fault the whole file does not cure is raised."""
        w = self._w
        while True:
            try:
                result, end = parse(w.data, self._pos, len(w.data))
            except RDBError as exc:
                message = str(exc).rsplit(" (at byte ", 1)[0]
                beyond = (
                    exc.needed is not None and w.size is not None and (w.base + exc.needed > w.size)
                )
                if beyond:  # a length past the file's end: refused before reading up to it
                    assert exc.needed is not None
                    message = (
                        f"{message.split(',')[0].split(' cannot fit')[0]}: "
                        f"{exc.needed - exc.offset} bytes from here, "
                        f"past the file's end at byte {w.size}"
                    )
                elif exc.short and w.more(max(len(w.data) - self._pos, 1)):
                    continue
                raise RDBFileError(message, w.base + exc.offset) from None
            self._pos = end
            return result

    def _length(self) -> int:
        at = self._pos
        value, special = self._parse(file_parse.length)
        if special:
            raise self._fail("a length is an encoded string", at)
        return int(value)

    def _string(self) -> bytes:
        return bytes(self._parse(objects.load_string))

    def _text(self) -> str:
        return self._string().decode("utf-8", "surrogateescape")

    def _compact(self) -> None:
        """Let the parsed bytes go once they are a good part of the window."""
        if self._pos >= self._w.chunk:
            self._w.release(self._pos)
            self._pos = 0

    # -- the file ---------------------------------------------------------

    def _header(self) -> None:
        head = self._take(9)
        if head[:5] == b"REDIS" and head[5:].isdigit():
            version = int(head[5:])
            if not 1 <= version <= _MAX_REDIS_VERSION:
                raise self._fail(f"RDB version {version} is not one snapkv reads (1 to 12)", 5)
        elif head[:6] == b"VALKEY" and head[6:].isdigit():
            version = int(head[6:])
            if version < _FIRST_VALKEY_VERSION:
                raise self._fail(f"Valkey RDB version {version} is not one Valkey writes", 6)
        else:
            raise self._fail(f"not an RDB file: it starts {head!r}, not REDIS or VALKEY", 0)
        self.version = version

    def __iter__(self) -> Iterator[Item]:
        self._header()
        db = 0
        expire: int | None = None
        while True:
            self._compact()
            if expire is None:
                batch, self._pos = file_parse.strings(self._w.data, self._pos, db)
                if batch:
                    yield from batch
                    continue
            at = self._pos
            kind = self._take(1)[0]
            if kind == _EXPIRETIME_MS:
                expire = int.from_bytes(self._take(8), "little", signed=True)
            elif kind == _EXPIRETIME:
                expire = int.from_bytes(self._take(4), "little", signed=True) * 1000
            elif kind == _FREQ:
                self._take(1)
            elif kind == _IDLE:
                self._length()
            elif kind == _SELECTDB:
                db = self._length()
                if db >= _MAX_KEYSPACES:  # Redis stops at a db beyond its ``databases`` too
                    raise self._fail(
                        f"keyspace {db} is beyond any store's (databases is at most 2**31)", at
                    )
            elif kind == _RESIZEDB:
                self._length()
                self._length()
            elif kind == _SLOT_INFO:
                for _ in range(3):
                    self._length()
            elif kind == _AUX:
                name = self._text()
                self.aux[name] = self._text()
            elif kind == _MODULE_AUX:
                self._length()  # the module's id
                self._length()  # when (before or after the keys)
                self._module_value()
            elif kind == _FUNCTION2:
                self._function(at)
            elif kind == _FUNCTION_PRE_GA:
                raise self._fail("a function library in Redis 7.0's pre-release format", at)
            elif kind == _EOF:
                self._trailer()
                return
            else:
                item = self._key(kind, db, expire, at)
                expire = None
                if item is not None:
                    yield item

    def _key(self, kind: int, db: int, expire: int | None, at: int) -> Item | None:
        if kind in OBJECTS:  # the name and the value in one pass (the general path's cost)
            key, value = self._parse(lambda d, s, e: file_parse.key_value(d, kind, s, e))
            if value is file_parse.EMPTY:  # Redis's loader skips it too, and counts it
                self.empty.append(Unsupported(db, key, "empty key", self._w.base + at))
                return None
            return Item(db, key, value, expire)
        key = self._text()
        if kind == _MODULE_2:
            self._length()  # the module type's id
            self._module_value()
            self._unsupported(db, key, "module", at)
            return None
        if kind == _MODULE_PRE_GA:
            raise self._fail(f"key {key!r} holds a module value of Redis 4.0's pre-release", at)
        if kind in _STREAM_TYPES:
            stream, groups = self._parse(lambda d, s, e: file_parse.stream(d, kind, s, e))
            if groups:
                self._unsupported(db, key, "stream with consumer groups", at)
                return None
            return Item(db, key, stream, expire)
        if kind == _HASH_2 and self.version >= _FIRST_VALKEY_VERSION:  # Redis 7.4: another type
            value, volatile = self._parse(file_parse.hash_2)
            if volatile:
                self._unsupported(db, key, "hash with field expiry times", at)
                return None
            return Item(db, key, value, expire)
        if kind not in objects.TYPE_NAMES:
            raise self._fail(f"key {key!r}: RDB type {kind} is not one snapkv reads", at)
        value = self._parse(lambda d, s, e: objects.load_value(d, kind, s, e))
        return Item(db, key, value, expire)

    def _unsupported(self, db: int, key: str, type_name: str, at: int) -> None:
        offset = self._w.base + at
        if not self.skip_unsupported:
            raise RDBFileError(
                f"key {key!r} in db {db} is a {type_name}, which snapkv does not hold "
                "(skip such keys with --skip-unsupported)",
                offset,
            )
        self.skipped.append(Unsupported(db, key, type_name, offset))

    def _function(self, at: int) -> None:
        code = self._text()
        first = code.split("\n", 1)[0]
        name = next((w[5:] for w in first.split() if w.startswith("name=")), "?")
        if not self.skip_unsupported:
            raise self._fail(
                f"function library {name!r}: snapkv does not import functions "
                "(skip them with --skip-unsupported)",
                at,
            )
        self.skipped.append(Unsupported(-1, name, "function library", self._w.base + at))

    def _module_value(self) -> None:
        """Skip a module's annotated data (``rdbLoadCheckModuleValue``): typed items to EOF."""
        while True:
            at = self._pos
            opcode = self._length()
            if opcode == 0:
                return
            if opcode in (1, 2):
                self._length()
            elif opcode == 3:
                self._take(4)
            elif opcode == 4:
                self._take(8)
            elif opcode == 5:
                self._string()
            else:
                raise self._fail(f"module data item type {opcode} does not exist", at)

    def _trailer(self) -> None:
        """The CRC-64 after EOF (from version 5), then nothing: a file that goes on is refused."""
        self._w.release(self._pos)
        self._pos = 0
        if self.version >= 5:
            expected = self._w.crc
            stored = int.from_bytes(self._take(8), "little")
            if stored and stored != expected:
                raise self._fail(
                    f"the CRC-64 is {stored:016x}, the file's bytes make {expected:016x}", 0
                )
            self.checksum = stored or None
        if len(self._w.data) > self._pos or self._w.more(1):
            raise self._fail("bytes after the end of the RDB file", self._pos)


def _size_of(source: IO[bytes]) -> int | None:
    try:
        return os.fstat(source.fileno()).st_size
    except (OSError, AttributeError, io.UnsupportedOperation):
        return None


def read_rdb(source: IO[bytes] | bytes, *, skip_unsupported: bool = False) -> Iterator[Item]:
    """The keys of an RDB file, in file order (see :class:`RDBReader` for what else it says)."""
    return iter(RDBReader(source, skip_unsupported=skip_unsupported))
