"""The hiredis fast path: hiredis's C reader splits well-formed multibulk chunks.

:class:`HiredisParser` is a :class:`~snapkv.server.resp.reader.PythonParser`
that lets hiredis parse only what it provably parses as Redis does, and
falls back to the Python parser for everything else (partial chunks, inline
commands, malformed input), so errors and leniencies are identical.
:func:`make_parser` picks it when hiredis is installed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from itertools import chain
from typing import Any, Final

from snapkv.server.resp.reader import PythonParser
from snapkv.server.resp.text import ENCODING, ERRORS

__all__ = ["HiredisParser", "Parser", "make_parser"]

_STAR: Final = 42
#: Fed after each chunk: its reply, last, shows hiredis ended at the chunk's end.
_SENTINEL: Final = b"*0\r\n"


class HiredisParser(PythonParser):
    """:class:`PythonParser` with hiredis's C reader as the fast path.

    Only a chunk that arrives at a command boundary and starts with ``*``
    goes to hiredis, and its result is used only when it is certainly what
    the Python parser would return:

    * hiredis ended exactly at the chunk's end: a sentinel empty multibulk
      (``*0``) fed after the chunk comes back as the last reply. Had the
      chunk ended inside a command, the sentinel would have been swallowed
      by it. For that to hold, the chunk itself must not hold the bytes
      ``*0\r\n`` anywhere (its own empty multibulk followed by a cut
      command would look like the sentinel): such a chunk, which clients
      hardly ever send, goes to the Python parser.
    * every reply is a list and every argument a ``str``: any other RESP
      type inside a request (integers, nils, nested arrays, ...) comes back
      as another Python type.
    * the chunk holds no RESP3 simple, verbatim, attribute, set or push
      marker after a line end (``+``, ``=``, ``|``, ``~``, ``>``): hiredis
      would turn the first ones into strings and a set or a push into a
      list, which would pass for a request; and no aggregate header of
      100,000 elements or more: hiredis allocates the whole list when it
      reads the header, so ``*3000000000`` would cost gigabytes (and
      seconds) before any element arrived. (A value that merely contains
      such bytes only costs a trip through Python.)
    * the chunk is shorter than ``max_bulk_len`` and no command has more
      than ``max_args`` arguments: hiredis enforces neither limit.

    hiredis's own number parsing is as strict as Redis's (it is the same
    ``string2ll``), and on any hiredis error the Python parser takes over.
    Every other chunk (inline commands, a command split across reads,
    malformed input) is parsed by the Python parser from its first byte, so
    both give identical results and errors, and hiredis keeps no state
    between chunks.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        import hiredis  # noqa: PLC0415 - optional: only this class needs it

        self._hiredis_error: type[Exception] = hiredis.ProtocolError
        self._reader_type: Callable[..., Any] = hiredis.Reader
        self._reader: Any = self._new_reader()

    def _new_reader(self) -> Any:
        return self._reader_type(encoding=ENCODING, errors=ERRORS)

    def feed(self, data: bytes) -> list[list[str]]:
        """Add ``data`` and return the commands it completed."""
        if (
            self._size
            or self._args is not None  # inside a command whose bulks so far were all read
            or self.unauthenticated
            or not data
            or data[0] != _STAR
            or self.error is not None
            or len(data) >= self.max_bulk_len
            or _SENTINEL in data
            or _unsafe_for_hiredis(data)
        ):
            return super().feed(data)
        reader = self._reader
        reader.feed(data)
        reader.feed(_SENTINEL)
        commands: list[Any] = []
        try:
            while (command := reader.gets()) is not False:
                commands.append(command)
            if commands.pop() == [] and _all_strings(commands, self.max_args):
                return commands
        except Exception:
            # Whatever hiredis makes of it (its ProtocolError, a TypeError for a
            # map keyed by an array, ...), the Python parser decides.
            pass
        self._reader = self._new_reader()
        return super().feed(data)


# What sends a chunk to the Python parser instead of hiredis (see
# HiredisParser) is a match of ``\n[+=|~>]|[*%~>|][0-9]{6}`` anywhere in it.
# That one regex, with its leading character class, costs ~50 ns a byte (it
# tries both branches at every offset): 15% of the server's time under
# ``redis-benchmark -P 16`` and 7 ms for a 100 KB value. So it is split: a
# big count after a literal ``*`` is a fast search; every other match needs
# one of six rarer bytes, found with one C-speed ``translate`` and ``in``,
# and only a chunk that has one pays for the rest of the regex.
_BIG_ARRAY: Final = re.compile(rb"\*[0-9]{6}")
_OTHER_UNSAFE: Final = re.compile(rb"\n[+=|~>]|[%~>|][0-9]{6}")
_RARE: Final = bytes.maketrans(b"+=|%~>", b"++++++")


def _unsafe_for_hiredis(data: bytes) -> bool:
    """Whether ``data`` may hold a RESP element hiredis would read unlike Redis (see above)."""
    if _BIG_ARRAY.search(data) is not None:
        return True
    if b"+" not in data.translate(_RARE):
        return False
    return _OTHER_UNSAFE.search(data) is not None


def _all_strings(commands: list[Any], max_args: int) -> bool:
    """Whether ``commands`` is a list of lists of ``str``, none longer than ``max_args``."""
    for command in commands:
        if type(command) is not list or len(command) > max_args:
            return False
    try:
        if not all(map(str.isascii, chain.from_iterable(commands))) and not all(
            type(arg) is str for arg in chain.from_iterable(commands)
        ):
            return False
    except TypeError:  # str.isascii of an integer, a nil, a nested array...
        return False
    return True


Parser = PythonParser | HiredisParser


def make_parser(*, prefer_hiredis: bool = True, **kwargs: Any) -> Parser:
    """A :class:`HiredisParser` if hiredis is installed (and preferred), else a Python one."""
    if prefer_hiredis:
        try:
            return HiredisParser(**kwargs)
        except ImportError:
            pass
    return PythonParser(**kwargs)
