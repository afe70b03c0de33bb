"""RESP requests in pure Python: bytes in, commands (lists of ``str``) out, no I/O.

Requests follow Redis exactly (``networking.c``: ``processMultibulkBuffer``,
``processInlineBuffer``), including its leniencies and its error texts
(``-ERR Protocol error: ...``; after one the connection must be closed):

* A request starting with ``*`` is a multibulk: ``*<n>\\r\\n`` then ``n``
  bulk strings ``$<len>\\r\\n<bytes>\\r\\n``. Lengths are parsed as Redis's
  ``string2ll`` does (no sign but ``-``, no leading zeros, no spaces). A
  count of zero or less is skipped silently. As in Redis, the two bytes after
  a bulk are skipped without being checked.
* Anything else is an inline command: one line split on whitespace, with
  ``"..."`` (C escapes, ``\\xHH``) and ``'...'`` quoting (``sdssplitargs``).
  Empty lines are skipped.
* Redis finds a line's end with ``strchr()``, which stops at a NUL byte: a
  header or inline line with a NUL before its end has no end to Redis, which
  waits for one until the line is too long. So does this parser.
* Limits: a header or inline line longer than 64 KiB without its line end,
  a bulk longer than ``max_bulk_len`` (Redis's ``proto-max-bulk-len``), more
  than ``max_args`` arguments, and, before a client has authenticated on a
  server with a password, more than 10 arguments or a bulk over 16 KiB.

Arguments are decoded as UTF-8 with ``surrogateescape`` (see
:mod:`snapkv.server`): every byte string maps to exactly one ``str`` and
back, so binary values survive byte for byte.

The hiredis fast path (:mod:`~snapkv.server.resp.hiredis_reader`) hands
everything it cannot vouch for to this parser, so both give the same
commands and the same errors.
"""

from __future__ import annotations

from typing import Final

from snapkv.errors import SnapkvError
from snapkv.server.resp.text import ENCODING, ERRORS

__all__ = [
    "DEFAULT_MAX_ARGS",
    "DEFAULT_MAX_BULK_LEN",
    "INLINE_MAX_SIZE",
    "UNAUTH_MAX_ARGS",
    "UNAUTH_MAX_BULK_LEN",
    "ProtocolError",
    "PythonParser",
    "split_inline",
    "string2ll",
]

#: Redis's ``PROTO_INLINE_MAX_SIZE``: longest line (inline request or header) without its end.
INLINE_MAX_SIZE: Final = 64 * 1024
#: Redis's default ``proto-max-bulk-len``.
DEFAULT_MAX_BULK_LEN: Final = 512 * 1024 * 1024
#: Most arguments in one request. Redis allows up to INT_MAX; a Python list of
#: a million strings already costs ~60 MB, so the default is lower.
DEFAULT_MAX_ARGS: Final = 1024 * 1024
#: Redis's limits for a client that has not authenticated yet (when a password is set).
UNAUTH_MAX_ARGS: Final = 10
UNAUTH_MAX_BULK_LEN: Final = 16384
_INT_MAX: Final = 2**31 - 1
_LLONG_MAX: Final = 2**63 - 1

_CR, _NL, _STAR, _DOLLAR = 13, 10, 42, 36
_NUL: Final = b"\0"
# Canonical small lengths parse by one dict lookup instead of a validated int().
_SMALL: Final = {b"%d" % i: i for i in range(-1, 1024)}


class ProtocolError(SnapkvError):
    """A client sent bytes that are not a valid request; reply ``-ERR <message>`` and close."""


def string2ll(digits: bytes) -> int | None:
    """Parse like Redis's ``string2ll``: ``-?[1-9][0-9]*|0`` within 64 bits; else ``None``."""
    value = _SMALL.get(digits)
    if value is not None:
        return value
    if not 0 < len(digits) < 21:
        return None
    body = digits[1:] if digits[:1] == b"-" else digits
    if not body.isdigit() or body[:1] == b"0":  # bytes.isdigit is ASCII-only
        return None
    value = int(digits)
    return value if -_LLONG_MAX - 1 <= value <= _LLONG_MAX else None


# --------------------------------------------------------------------- inline

_SPACE: Final = frozenset(b" \t\n\r\x0b\x0c")
#: What ends an unquoted argument (``sdssplitargs``'s switch): not ``\v`` nor ``\f``.
_WORD_END: Final = frozenset(b" \t\n\r\0")
_HEX: Final = frozenset(b"0123456789abcdefABCDEF")
_ESCAPES: Final = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("a"): 7}


def split_inline(line: bytes) -> list[bytes] | None:
    """Split an inline request line as Redis's ``sdssplitargs``; ``None``: unbalanced quotes.

    ``sdssplitargs`` skips every ``isspace()`` byte between arguments, but
    only a space, tab, CR, LF or NUL ends an unquoted one: a vertical tab or
    a form feed inside a word is part of it (``a\\vb`` is one argument).
    """
    if b'"' not in line and b"'" not in line and b"\v" not in line and b"\f" not in line:
        return line.split()  # splits on exactly C's isspace() set
    args: list[bytes] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in _SPACE:
            i += 1
        if i >= n:
            return args
        current = bytearray()
        in_double = in_single = done = False
        while not done:
            if in_double:
                if i >= n:
                    return None  # no closing quote
                c = line[i]
                if c == 92 and i + 3 < n and line[i + 1] == 120:  # \xHH
                    if line[i + 2] in _HEX and line[i + 3] in _HEX:
                        current.append(int(line[i + 2 : i + 4], 16))
                        i += 3
                    else:
                        i += 1
                        current.append(line[i])
                elif c == 92 and i + 1 < n:
                    i += 1
                    current.append(_ESCAPES.get(line[i], line[i]))
                elif c == 34:
                    # A closing quote must be followed by a space or the end.
                    if i + 1 < n and line[i + 1] not in _SPACE:
                        return None
                    done = True
                else:
                    current.append(c)
            elif in_single:
                if i >= n:
                    return None
                c = line[i]
                if c == 92 and i + 1 < n and line[i + 1] == 39:
                    i += 1
                    current.append(39)
                elif c == 39:
                    if i + 1 < n and line[i + 1] not in _SPACE:
                        return None
                    done = True
                else:
                    current.append(c)
            elif i >= n or line[i] in _WORD_END:
                done = True
            elif line[i] == 34:
                in_double = True
            elif line[i] == 39:
                in_single = True
            else:
                current.append(line[i])
            if i < n:
                i += 1
        args.append(bytes(current))


# --------------------------------------------------------------------- parser


class PythonParser:
    """Incremental request parser in pure Python (see the module docstring for the rules).

    ``feed(data)`` returns every command completed by ``data``, in order.
    A protocol error does not raise: the commands before it are returned,
    :attr:`error` is set, and the parser accepts nothing more, so the caller
    runs those commands, replies the error and closes, as Redis does.

    While :attr:`unauthenticated` is true (a password is set and the client
    has not authenticated), :meth:`feed` and :meth:`parse` return at most one
    command: the next one must be parsed with the limits that hold *after*
    this one ran (it may be AUTH). Call :meth:`parse` again to get it.
    """

    def __init__(
        self,
        *,
        max_bulk_len: int = DEFAULT_MAX_BULK_LEN,
        max_args: int = DEFAULT_MAX_ARGS,
        unauthenticated: bool = False,
    ) -> None:
        self.max_bulk_len = max_bulk_len
        self.max_args = max_args
        #: Apply Redis's tighter limits for clients that have not authenticated.
        self.unauthenticated = unauthenticated
        #: The protocol error that stopped this parser, if any.
        self.error: ProtocolError | None = None
        # Unparsed input: chunks not yet joined, and their total length. They
        # are joined only once ``_need`` bytes are there, so a large value
        # arriving in many reads is copied once, not once per read.
        self._chunks: list[bytes] = []
        self._size = 0
        self._need = 0
        # A multibulk interrupted by the end of the input: its arguments so
        # far and how many are still to come (Redis keeps the same state).
        self._args: list[str] | None = None
        self._left = 0

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete command (for memory limits)."""
        return self._size

    def feed(self, data: bytes) -> list[list[str]]:
        """Add ``data`` and return the commands it completed (see the class docstring)."""
        if self.error is not None:
            return []
        if data:
            self._chunks.append(data)
            self._size += len(data)
        if self._size < self._need:
            return []
        return self.parse()

    def parse(self) -> list[list[str]]:
        """Return the complete commands in what was fed so far."""
        if self.error is not None or not self._size or self._size < self._need:
            return []
        chunks = self._chunks
        buf = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        commands: list[list[str]] = []
        pos = self._parse(buf, 0, commands)
        rest = buf[pos:] if pos else buf
        self._chunks = [rest] if rest else []
        self._size = len(rest)
        return commands

    def _fail(self, message: str) -> int:
        self.error = ProtocolError(f"Protocol error: {message}")
        self._args = None
        return -1

    def _parse(self, buf: bytes, pos: int, commands: list[list[str]]) -> int:
        """Parse from ``pos``; append commands; return where parsing stopped."""
        n = len(buf)
        self._need = 0
        one = self.unauthenticated
        while pos < n:
            args = self._args
            if args is None:
                if buf[pos] != _STAR:
                    end = self._inline(buf, pos, commands)
                    if end < 0:
                        self._need = n - pos + 1 if end == -2 else 0
                        return pos if end == -2 else n
                    pos = end
                    if one and commands:
                        return pos
                    continue
                nl = buf.find(b"\r", pos)
                if nl < 0 or nl > n - 2:  # the line, with its \n, is not all there
                    if n - pos > INLINE_MAX_SIZE:
                        self._fail("too big mbulk count string")
                        return n
                    self._need = n - pos + 1
                    return pos
                count = string2ll(buf[pos + 1 : nl])
                if count is None and _NUL in buf[pos:nl]:
                    # Redis finds the line's end with strchr(), which stops at a
                    # NUL: to it the line has no end yet, and it waits for one
                    # until the line is too long.
                    if n - pos > INLINE_MAX_SIZE:
                        self._fail("too big mbulk count string")
                        return n
                    self._need = n - pos + 1
                    return pos
                if count is None or count > _INT_MAX or count > self.max_args:
                    self._fail("invalid multibulk length")
                    return n
                if one and count > UNAUTH_MAX_ARGS:
                    self._fail("unauthenticated multibulk length")
                    return n
                pos = nl + 2
                if count <= 0:
                    continue
                args = []
                left = count
            else:
                left = self._left
            pos = self._bulks(buf, pos, args, left)
            if pos < 0:
                return n
            if self._args is not None:  # interrupted: wait for more
                return pos
            commands.append(args)
            if one:
                return pos
        return pos

    def _bulks(self, buf: bytes, pos: int, args: list[str], left: int) -> int:
        """Read ``left`` bulk strings into ``args``; sets ``_args`` if the input ends first."""
        n = len(buf)
        limit = UNAUTH_MAX_BULK_LEN if self.unauthenticated else self.max_bulk_len
        find = buf.find
        while left:
            nl = find(b"\r", pos)
            if nl < 0 or nl > n - 2:
                if n - pos > INLINE_MAX_SIZE:
                    return self._fail("too big bulk count string")
                self._need = n - pos + 1
                break
            size = _SMALL.get(buf[pos + 1 : nl]) if buf[pos] == _DOLLAR else None
            if size is None:
                if _NUL in buf[pos:nl]:
                    # No line end yet to Redis's strchr() (see the count above).
                    if n - pos > INLINE_MAX_SIZE:
                        return self._fail("too big bulk count string")
                    self._need = n - pos + 1
                    break
                if buf[pos] != _DOLLAR:
                    # The byte as sent (a byte past ASCII is not a character).
                    got = buf[pos : pos + 1].decode(ENCODING, ERRORS)
                    return self._fail(f"expected '$', got '{got}'")
                size = string2ll(buf[pos + 1 : nl])
            if size is None or size < 0 or size > self.max_bulk_len:
                return self._fail("invalid bulk length")
            if size > limit:
                return self._fail("unauthenticated bulk length")
            end = nl + 2 + size
            if end + 2 > n:
                self._need = end + 2 - pos
                break
            args.append(buf[nl + 2 : end].decode(ENCODING, ERRORS))
            pos = end + 2
            left -= 1
        if left:
            self._args, self._left = args, left
        else:
            self._args = None
        return pos

    def _inline(self, buf: bytes, pos: int, commands: list[list[str]]) -> int:
        """Parse one inline line; return the position after it, -2 if incomplete, -1 on error."""
        nl = buf.find(b"\n", pos)
        if nl < 0 or _NUL in buf[pos:nl]:  # a NUL hides the line end from strchr()
            if len(buf) - pos > INLINE_MAX_SIZE:
                return self._fail("too big inline request")
            return -2
        end = nl - 1 if nl > pos and buf[nl - 1] == _CR else nl
        parts = split_inline(buf[pos:end])
        if parts is None:
            return self._fail("unbalanced quotes in request")
        if parts:
            commands.append([p.decode(ENCODING, ERRORS) for p in parts])
        return nl + 1
