"""Redis's glob patterns (KEYS, SCAN MATCH, CONFIG GET) in time bounded by pattern x key length.

The language is Redis's ``stringmatchlen`` (``src/util.c``), over bytes:

* ``*`` matches any run of bytes, ``?`` exactly one byte, ``\\x`` the byte
  ``x`` (a ``\\`` that ends the pattern is itself);
* ``[...]`` matches one byte of a set: single bytes, ranges ``a-z`` (ends in
  either order), escapes ``\\x``, and ``^`` first to negate. ``[]`` matches
  no byte, ``[^]`` any byte; a ``[`` never closed takes the rest of the
  pattern as its set. A range's ends and the byte compare as C ``char``,
  which is signed on x86-64, where redis-server runs: ``[a-\\xff]`` means
  -1 to 97, so it holds 0xff and 0x00-0x61, not 0x62-0xfe (on arm64, where
  ``char`` is unsigned, Redis answers otherwise; we follow x86-64).
* A non-empty pattern never matches the empty string, not even ``*``
  (Redis's loop never starts); KEYS and SCAN special-case a lone ``*``,
  which :func:`keys_matching` does too.
* With ``nocase`` (CONFIG GET's matching) ASCII letters compare through C's
  ``tolower``, except a byte escaped inside brackets, which Redis compares
  exactly, and range ends, which are swapped before they are lowered.

Why not Redis's algorithm, or ``re``: Redis recurses at every ``*`` and
tries every split; before 7.0.9 that was exponential (``a*a*a*...b``
against a long key ran for minutes, CVE-2022-36021), since then a flag cuts
the search ("skipLongerMatches"), and 7.2.6 caps the recursion at 1,000
levels because deep patterns overflowed the stack. A translation to Python's
``re`` backtracks exactly like the old recursion. Here nothing recurses or
backtracks: every atom but ``*`` (a byte, ``?``, a set) consumes exactly one
byte, so the runs of atoms between stars, the *segments*, have fixed
lengths. The pattern matches iff its first segment matches at the start,
its last at the end, and the middle ones fit in between, in order, without
overlapping; placing each middle segment at its leftmost match is never
worse than a later one (it leaves more room for the rest), so no choice is
ever revisited. Each candidate position is tried once per segment, in at
most the segment's length steps: O(len(pattern) x len(key)) in all, and
usually a few C-speed ``find`` calls for the segment's longest literal run.
Answers equal Redis 7.0's (whose cut keeps its answers too), also past
7.2.6's 1,000 levels, where Redis gives up and says "no match".

Keys are ``str`` decoded from the wire with ``surrogateescape``; matching
is on their bytes (``?`` is one byte, not one character). A pattern of
ASCII literals and stars only is matched on the ``str`` itself, without
encoding each key: an ASCII byte in a key's encoding only ever comes from an
ASCII character, so where an ASCII run occurs is the same question on both.

The pattern is compiled once per command: literal runs and runs of ``*``
and ``?`` are sliced or skipped at C speed, the rest costs Python steps. A
huge pattern needing more bytes than the longest key holds cannot match
anything, so compiling stops there (``longest``).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import AnyStr, Final

from snapkv.server.resp.text import to_bytes

__all__ = ["Glob", "keys_matching", "stringmatch"]

_STAR, _QMARK, _OPEN, _CLOSE, _ESCAPE, _CARET, _DASH = b"*?[]\\^-"
#: Patterns up to this size are compiled once and kept (most recently used first).
_CACHED_SIZE: Final = 4096
_NOT_LITERAL: Final = frozenset((_STAR, _QMARK, _OPEN))
_UPPER: Final = ((1 << 91) - 1) ^ ((1 << 65) - 1)  # bits 65..90: 'A'..'Z'


def _signed(byte: int) -> int:
    """A byte as C's (signed, on x86-64) ``char``."""
    return byte - 256 if byte > 127 else byte


def _tolower(c: int) -> int:
    """C's ``tolower`` in the C locale: ASCII only, other values unchanged."""
    return c + 32 if 65 <= c <= 90 else c


def _span(low: int, high: int) -> int:
    """Bits ``low``..``high`` (raw byte values) set."""
    return ((1 << (high + 1)) - 1) ^ ((1 << low) - 1)


def _range_bits(first: int, second: int, nocase: bool) -> int:
    """The bytes a range item ``first-second`` holds (Redis: swap, then ``tolower``)."""
    low, high = _signed(first), _signed(second)
    if low > high:
        low, high = high, low
    if nocase:
        low, high = _tolower(low), _tolower(high)
    bits = 0
    if max(low, 0) <= min(high, 127):
        bits |= _span(max(low, 0), min(high, 127))
    if max(low, -128) <= min(high, -1):
        bits |= _span(max(low, -128) + 256, min(high, -1) + 256)
    if nocase:  # an upper-case byte is compared as its lower-case letter
        bits = (bits & ~_UPPER) | ((bits >> 32) & _UPPER)
    return bits


def _literal_bits(byte: int, nocase: bool) -> int:
    """The bytes a one-byte item holds: itself, and with ``nocase`` its other case."""
    bits = 1 << byte
    if nocase and 65 <= byte <= 90:
        bits |= 1 << (byte + 32)
    elif nocase and 97 <= byte <= 122:
        bits |= 1 << (byte - 32)
    return bits


@lru_cache(maxsize=1024)
def _table(bits: int) -> bytes:
    """A set as a 256-byte table (1: member), usable with ``bytes.translate``."""
    return bytes((bits >> i) & 1 for i in range(256))


class _Next:
    """Where ``byte`` next occurs at or after a position; each occurrence found once."""

    __slots__ = ("at", "byte", "data")

    def __init__(self, data: bytes, byte: int) -> None:
        self.data = data
        self.byte = byte
        self.at = -1

    def after(self, i: int) -> int:
        """The first position >= ``i`` holding the byte, or ``len(data)``."""
        if self.at < i:
            found = self.data.find(self.byte, i)
            self.at = len(self.data) if found < 0 else found
        return self.at


def _skip(data: bytes, i: int, byte: bytes) -> int:
    """The first position >= ``i`` not holding ``byte`` (C speed, no copy of the rest)."""
    size = 64
    while True:
        chunk = data[i : i + size]
        rest = len(chunk.lstrip(byte))
        if rest or len(chunk) < size:
            return i + len(chunk) - rest
        i += size
        size *= 2


# ------------------------------------------------------------------ segments


def _size(run: tuple[int, bytes]) -> int:
    return len(run[1])


class _Segment:
    """Atoms between two stars: literal runs and sets at fixed offsets; ``?`` only adds length."""

    __slots__ = ("anchor", "length", "runs", "sets")

    def __init__(self, length: int, runs: list[tuple[int, bytes]], sets: list[tuple[int, bytes]]):
        self.length = length
        self.runs = runs
        self.sets = sets
        #: The longest literal run: candidates are found by searching for it.
        self.anchor = runs[0] if len(runs) == 1 else max(runs, key=_size) if runs else None

    def at(self, raw: bytes, low: bytes, i: int) -> bool:
        """Whether the segment matches ``raw`` at ``i`` (literals are compared in ``low``)."""
        for offset, run in self.runs:
            if not low.startswith(run, i + offset):
                return False
        return all(table[raw[i + offset]] for offset, table in self.sets)

    def find(self, raw: bytes, low: bytes, start: int, end: int) -> int:
        """The first ``i`` >= ``start`` where the segment matches and ends by ``end``; else -1."""
        last = end - self.length
        if last < start:
            return -1
        if self.anchor is not None:
            offset, probe = self.anchor
            haystack = low
        elif self.sets:
            first, table = self.sets[0]
            # 1 where the first set matches, for the candidates start..last only.
            haystack = raw[start + first : last + first + 1].translate(table)
            offset, probe = -start, b"\x01"
        else:
            return start  # only '?': it fits anywhere
        i = start
        while i <= last:
            found = haystack.find(probe, i + offset, last + offset + len(probe))
            if found < 0:
                return -1
            i = found - offset
            if self.at(raw, low, i):
                return i
            i += 1
        return -1


def _parse_set(pattern: bytes, p: int, nocase: bool, finds: dict[int, _Next]) -> tuple[int, int]:
    """Parse the set after the ``[`` at ``p - 1``: (its bits, the position after it).

    Redis's loop, item by item: ``\\x`` (when a byte follows), ``]`` ends
    the set, the pattern's end ends it too, ``x-y`` is a range when two
    bytes follow the ``x`` (even a ``]``: ``[a-]`` is a range up to ``]``
    and leaves the set open), anything else is one byte. A stretch of plain
    bytes (up to the next ``\\``, ``]``, or byte before a ``-``) is taken
    at once.
    """
    n = len(pattern)
    negate = p < n and pattern[p] == _CARET
    if negate:
        p += 1
    bits = 0
    plain: set[int] = set()
    ranges: set[tuple[int, int]] = set()
    while p < n:
        c = pattern[p]
        if c == _ESCAPE and n - p >= 2:
            bits |= 1 << pattern[p + 1]  # exact, even with nocase (as Redis)
            p += 2
        elif c == _CLOSE:
            break
        elif n - p >= 3 and pattern[p + 1] == _DASH:
            ranges.add((c, pattern[p + 2]))
            p += 3
        else:
            stop = min(
                finds[_ESCAPE].after(p),
                finds[_CLOSE].after(p),
                finds[_DASH].after(p + 1) - 1,
            )
            stop = max(stop, p + 1)
            plain.update(pattern[p:stop])
            p = stop
    # Unclosed: the set ends with the pattern (Redis steps back onto the last byte).
    for byte in plain:
        bits |= _literal_bits(byte, nocase)
    for first, second in ranges:
        bits |= _range_bits(first, second, nocase)
    if negate:
        bits ^= (1 << 256) - 1
    return bits, p + 1


class _Program:
    """A compiled pattern.

    ``words`` when every atom is a literal (the segments are plain byte
    strings; ``text`` has them as ``str`` when they are ASCII), else
    ``segments``; neither when the pattern needs more bytes than the
    longest key has (``never``).
    """

    __slots__ = ("empty", "never", "nocase", "segments", "text", "words")

    def __init__(
        self,
        nocase: bool,
        *,
        empty: bool = False,
        segments: list[_Segment] | None = None,
        words: list[bytes] | None = None,
    ) -> None:
        self.nocase = nocase
        #: The pattern is empty (it matches only the empty string).
        self.empty = empty
        self.never = segments is None and words is None
        self.segments = segments
        self.words = tuple(words) if words is not None else None
        self.text: tuple[str, ...] | None = None
        if self.words is not None and all(w.isascii() for w in self.words):
            self.text = tuple(w.decode("ascii") for w in self.words)


def _compile_words(pattern: bytes, nocase: bool, longest: int | None) -> _Program:
    """A pattern of literals and stars only: its words, split at C speed."""
    words: list[bytes] = []
    needed = 0
    i = 0
    while True:
        j = pattern.find(b"*", i)
        word = pattern[i:] if j < 0 else pattern[i:j]
        words.append(word.lower() if nocase else word)
        needed += len(word)
        if longest is not None and needed > longest:
            return _Program(nocase)
        if j < 0:
            return _Program(nocase, empty=not pattern, words=words)
        i = _skip(pattern, j, b"*")


def _compile(pattern: bytes, nocase: bool, longest: int | None) -> _Program:
    if _QMARK not in pattern and _OPEN not in pattern and _ESCAPE not in pattern:
        return _compile_words(pattern, nocase, longest)
    n = len(pattern)
    star, qmark = _Next(pattern, _STAR), _Next(pattern, _QMARK)
    bracket, escape = _Next(pattern, _OPEN), _Next(pattern, _ESCAPE)
    inside = {byte: _Next(pattern, byte) for byte in (_ESCAPE, _CLOSE, _DASH)}
    segments: list[_Segment] = []
    # The segment being built: its literal runs and sets (at their offsets),
    # its length, and the literal run being built (its pieces and offset).
    runs: list[tuple[int, bytes]] = []
    sets: list[tuple[int, bytes]] = []
    length = 0
    pieces: list[bytes] = []
    literal_at = 0
    needed = 0  # bytes a match needs: every atom but '*' consumes one
    i = 0
    while i < n:
        c = pattern[i]
        if c in _NOT_LITERAL and pieces:
            runs.append((literal_at, b"".join(pieces)))
            pieces = []
        if c == _STAR:
            segments.append(_Segment(length, runs, sets))
            runs, sets, length = [], [], 0
            i = _skip(pattern, i, b"*")
            continue
        if c == _QMARK:
            j = _skip(pattern, i, b"?")
            length += j - i
            needed += j - i
            i = j
        elif c == _OPEN:
            bits, i = _parse_set(pattern, i + 1, nocase, inside)
            sets.append((length, _table(bits)))
            length += 1
            needed += 1
        else:
            if c == _ESCAPE:
                literal = pattern[i + 1 : i + 2] if i + 1 < n else b"\\"
                i += 2
            else:
                j = min(star.after(i), qmark.after(i), bracket.after(i), escape.after(i))
                literal = pattern[i:j]
                i = j
            if not pieces:
                literal_at = length
            pieces.append(literal.lower() if nocase else literal)
            length += len(literal)
            needed += len(literal)
        if longest is not None and needed > longest:
            return _Program(nocase)
    if pieces:
        runs.append((literal_at, b"".join(pieces)))
    segments.append(_Segment(length, runs, sets))
    if all(not s.sets and s.length == sum(len(run) for _, run in s.runs) for s in segments):
        # Only literals after all (escapes): match as words.
        return _Program(nocase, words=[s.runs[0][1] if s.runs else b"" for s in segments])
    return _Program(nocase, segments=segments)


@lru_cache(maxsize=256)
def _compile_cached(pattern: bytes, nocase: bool) -> _Program:
    return _compile(pattern, nocase, None)


def _match_words(words: tuple[AnyStr, ...], key: AnyStr) -> bool:
    """Literal segments: the first starts the key, the last ends it, the others fit between."""
    if len(words) == 1:
        return key == words[0]
    first, last = words[0], words[-1]
    end = len(key) - len(last)
    if len(first) > end or not key.startswith(first) or not key.endswith(last):
        return False
    pos = len(first)
    for word in words[1:-1]:
        found = key.find(word, pos, end)
        if found < 0:
            return False
        pos = found + len(word)
    return True


# ---------------------------------------------------------------------- API


class Glob:
    """A compiled Redis glob pattern (see the module docstring for the language).

    :param pattern: as received (``str`` decoded with ``surrogateescape``) or as bytes.
    :param nocase: compare letters case-insensitively (Redis's ``nocase``, CONFIG GET).
    :param longest: the longest key, in bytes, that will be matched, if
        known: a pattern needing more bytes matches nothing and is not
        compiled further. Matching a longer key then raises ``ValueError``.
    """

    __slots__ = ("_longest", "_program")

    def __init__(
        self, pattern: str | bytes, *, nocase: bool = False, longest: int | None = None
    ) -> None:
        if isinstance(pattern, str):
            pattern = to_bytes(pattern)
        if len(pattern) <= _CACHED_SIZE:
            self._program = _compile_cached(pattern, nocase)
        else:
            self._program = _compile(pattern, nocase, longest)
        self._longest = longest

    def match(self, key: str) -> bool:
        """Whether ``key`` (a ``str`` as decoded from the wire) matches."""
        program = self._program
        text = program.text
        if text is not None and not program.nocase:
            return _match_words(text, key) if key else program.empty
        if text is not None and key.isascii():  # str.lower() is C's tolower on ASCII only
            return _match_words(text, key.lower()) if key else program.empty
        return self.match_bytes(to_bytes(key))

    def match_bytes(self, data: bytes) -> bool:
        """Whether ``data`` matches, exactly as Redis's ``stringmatchlen``."""
        program = self._program
        if not data:
            return program.empty
        if program.never:
            if self._longest is not None and len(data) > self._longest:
                raise ValueError(f"a key of {len(data)} bytes is longer than longest")
            return False
        if program.words is not None:
            return _match_words(program.words, data.lower() if program.nocase else data)
        segments = program.segments
        assert segments is not None
        low = data.lower() if program.nocase else data
        n = len(data)
        if len(segments) == 1:
            return segments[0].length == n and segments[0].at(data, low, 0)
        first, last = segments[0], segments[-1]
        end = n - last.length
        if first.length > end or not first.at(data, low, 0) or not last.at(data, low, end):
            return False
        pos = first.length
        for segment in segments[1:-1]:
            found = segment.find(data, low, pos, end)
            if found < 0:
                return False
            pos = found + segment.length
        return True

    def filter(self, keys: Iterable[str]) -> list[str]:
        """The keys that match, in order (the common shapes at C speed per key)."""
        text = self._program.text
        if text is None or self._program.nocase:
            return [key for key in keys if self.match(key)]
        if len(text) == 1:
            return [key for key in keys if key == text[0]]
        if len(text) == 2:
            first, last = text
            if not last:
                return [key for key in keys if key.startswith(first) and key]
            if not first:
                return [key for key in keys if key.endswith(last)]
        if len(text) == 3 and not text[0] and not text[2]:
            return [key for key in keys if text[1] in key and key]
        return [key for key in keys if key and _match_words(text, key)]


def stringmatch(pattern: bytes, string: bytes, *, nocase: bool = False) -> bool:
    """Redis's ``stringmatchlen(pattern, string, nocase)``, as one call."""
    return Glob(pattern, nocase=nocase).match_bytes(string)


def keys_matching(pattern: str, keys: list[str]) -> list[str]:
    """The keys KEYS or SCAN MATCH returns for ``pattern``: a lone ``*`` keeps every key.

    Redis checks for ``*`` before matching (``allkeys`` in ``keysCommand``,
    ``use_pattern`` in ``scanGenericCommand``), so only that pattern returns
    the empty key.
    """
    if pattern == "*":
        return keys
    longest = None
    if len(pattern) > _CACHED_SIZE:
        # A UTF-8 character is at most 4 bytes (a surrogate escape is one).
        longest = 4 * max(map(len, keys), default=0)
    return Glob(pattern, longest=longest).filter(keys)
