"""Sorted sets: a key holding ``str`` members with float scores (Redis's ``t_zset.c``).

The container is :class:`ZSet`: a dict member -> score for O(1) ZSCORE and
a ``sortedcontainers.SortedList`` of ``(score, member)`` for O(log n)
insert, remove and rank and O(log n + m) ranges, ordered as Redis orders a
sorted set: by score, then by member. Scores are IEEE doubles; NaN never
enters (the callers refuse it, as Redis does).

Effects (the journal's EDIT records for a sorted set, docs/FORMAT.md J3):

* ``OP_ADD`` items ``score, member, score, member, ...``: the members now
  have these scores (ZADD and ZINCRBY record the score they wrote).
* ``OP_REM`` items ``member, ...``: the members are gone (ZPOPMIN and
  friends record the members they took).

Ordering ties are broken by the member. Redis compares members' bytes
(``memcmp``); Python compares ``str`` code points, which is the same order
for valid text (UTF-8 preserves code point order). A member holding bytes
that are not UTF-8 is decoded with ``surrogateescape`` (U+DC80-U+DCFF) and
sorts by those code points, not by its bytes: such members can sit in
another place among non-ASCII members than in Redis. Not handled, on
purpose: keying every member by its bytes would cost an encode per
comparison for a case binary members rarely meet.

Scores: ``-0.0`` is stored as ``0.0``, as Redis's small sorted sets
(listpacks) store it, so ZSCORE never answers ``-0``. Ranges and ranks are
O(log n) to find and O(m) to walk: :meth:`ZSet.score_span` and
:meth:`ZSet.lex_span` bisect the ordered list, never scan it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from sortedcontainers import SortedList

from snapkv.values.base import Item, Items, epoch

__all__ = [
    "CLASS",
    "CODE",
    "LEX_MAX",
    "LEX_MIN",
    "NAME",
    "OP_ADD",
    "OP_REM",
    "LexBound",
    "Range",
    "ZSet",
    "apply",
    "build",
    "copy",
    "flat",
    "inverse",
    "limit_span",
    "parse_lex_bound",
    "parse_score",
    "parse_score_bound",
    "rank_span",
    "size",
]

CODE = 4
NAME = "zset"
OP_ADD = 1
OP_REM = 2

_INF = math.inf


class LexBound(NamedTuple):
    """One end of a lexicographic range (Redis's ``zlexrangespec`` end).

    ``edge`` is -1 for ``-`` (below every member), 1 for ``+`` (above every
    member), 0 for a member bound, ``[member`` (inclusive) or ``(member``.
    """

    edge: int
    member: str = ""
    exclusive: bool = False


#: ``-`` and ``+``: below and above every member.
LEX_MIN = LexBound(-1)
LEX_MAX = LexBound(1)


class ZSet:
    """Members with scores, ordered by (score, member); ``epoch`` as every container's."""

    __slots__ = ("epoch", "order", "scores")

    def __init__(self, pairs: Any = ()) -> None:
        #: member -> score
        self.scores: dict[str, float] = {}
        #: (score, member), ascending
        self.order: SortedList = SortedList()
        self.epoch = epoch()
        for score, member in pairs:
            self.add(member, score)

    def add(self, member: str, score: float) -> None:
        """Give ``member`` the score ``score`` (adding it if new)."""
        score += 0.0  # -0.0 becomes 0.0 (see the module docstring)
        scores = self.scores
        old = scores.get(member)
        if old is not None:
            if old == score:
                return
            self.order.remove((old, member))
        scores[member] = score
        self.order.add((score, member))

    def discard(self, member: str) -> bool:
        """Remove ``member``; return whether it was there."""
        old = self.scores.pop(member, None)
        if old is None:
            return False
        self.order.remove((old, member))
        return True

    def rank(self, member: str) -> int | None:
        """``member``'s 0-based position in ascending order, or ``None``: O(log n)."""
        score = self.scores.get(member)
        if score is None:
            return None
        rank: int = self.order.index((score, member))
        return rank

    def pairs(self, start: int, stop: int, reverse: bool = False) -> list[tuple[float, str]]:
        """``(score, member)`` at positions ``start`` to ``stop - 1`` (clamped), in order.

        ``reverse`` walks the same positions from the last to the first.
        """
        return list(self.order.islice(max(start, 0), max(stop, 0), reverse=reverse))

    def score_span(self, low: float, low_ex: bool, high: float, high_ex: bool) -> tuple[int, int]:
        """Positions ``[i, j)`` of the members with ``low <(=) score <(=) high``: O(log n).

        A 1-tuple ``(s,)`` sorts before every ``(s, member)``, so bisecting
        with it finds the first member of score ``s``; the first score
        above ``s`` is the first of score ``nextafter(s, inf)``.
        """
        order = self.order
        if low_ex:
            i = len(order) if low == _INF else order.bisect_left((math.nextafter(low, _INF),))
        else:
            i = order.bisect_left((low,))
        if high_ex:
            j = order.bisect_left((high,))
        else:
            j = len(order) if high == _INF else order.bisect_left((math.nextafter(high, _INF),))
        return i, max(i, j)

    def lex_span(self, low: LexBound, high: LexBound) -> tuple[int, int]:
        """Positions ``[i, j)`` of the members between ``low`` and ``high``: O(log n).

        As in Redis, meaningful when every member has the same score (the
        ordering is then the members' alone); bisects with the first score.
        """
        order = self.order
        if not order or low.edge == 1 or high.edge == -1:
            return 0, 0
        score = order[0][0]
        if low.edge == -1:
            i = 0
        elif low.exclusive:
            i = order.bisect_right((score, low.member))
        else:
            i = order.bisect_left((score, low.member))
        if high.edge == 1:
            j = len(order)
        elif high.exclusive:
            j = order.bisect_left((score, high.member))
        else:
            j = order.bisect_right((score, high.member))
        return i, max(i, j)

    def __len__(self) -> int:
        return len(self.scores)

    def __bool__(self) -> bool:
        return bool(self.scores)

    def __contains__(self, member: object) -> bool:
        return member in self.scores

    def __iter__(self) -> Iterator[tuple[float, str]]:
        """``(score, member)`` pairs in order."""
        return iter(self.order)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ZSet) and self.scores == other.scores

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ZSet({list(self.order)!r})"


CLASS = ZSet


def _pairs(items: Items) -> list[tuple[float, str]]:
    if len(items) % 2:
        raise ValueError(f"a sorted set ADD effect has {len(items)} items, not score/member pairs")
    pairs = list(zip(items[0::2], items[1::2], strict=True))
    for score, member in pairs:
        if type(score) is not float or math.isnan(score) or type(member) is not str:
            raise ValueError(f"a sorted set ADD pair is ({score!r}, {member!r})")
    return pairs  # type: ignore[return-value]


def apply(value: ZSet | None, opcode: int, items: Items) -> ZSet | None:
    """Apply one sorted set effect (see the module docstring); ``None`` when it left no member."""
    if opcode == OP_ADD:
        pairs = _pairs(items)
        if value is None:
            value = ZSet()
        for score, member in pairs:
            value.add(member, score)
        return value or None
    if opcode == OP_REM:
        if value is not None:
            for gone in items:
                value.discard(gone)  # type: ignore[arg-type]
        return value or None
    raise ValueError(f"sorted set effect opcode {opcode} is not one of {OP_ADD}, {OP_REM}")


def inverse(value: ZSet | None, opcode: int, items: Items) -> list[tuple[int, tuple[Item, ...]]]:
    """What undoes a sorted set effect on ``value``: old scores back, new members removed."""
    scores = value.scores if value is not None else {}
    members = items[1::2] if opcode == OP_ADD else items
    restore: list[Item] = []
    remove: list[Item] = []
    for member in dict.fromkeys(members):
        old = scores.get(member)  # type: ignore[arg-type]
        if old is None:
            remove.append(member)
        else:
            restore += (old, member)
    undo: list[tuple[int, tuple[Item, ...]]] = []
    if remove and opcode == OP_ADD:
        undo.append((OP_REM, tuple(remove)))
    if restore:
        undo.append((OP_ADD, tuple(restore)))
    return undo


def flat(value: ZSet) -> list[Item]:
    """``score, member, score, member, ...`` in order."""
    out: list[Item] = []
    for pair in value.order:
        out += pair
    return out


def build(items: Items) -> ZSet:
    """A sorted set from ``score, member, ...`` items."""
    made = apply(None, OP_ADD, items)
    if made is None:
        raise ValueError("a sorted set has at least one member")
    return made


def copy(value: ZSet) -> ZSet:
    """An independent copy in the current epoch."""
    made = ZSet()
    made.scores = dict(value.scores)
    made.order = SortedList(value.order)
    return made


def size(value: ZSet) -> int:
    """The number of members."""
    return len(value)


# ------------------------------------------------------------- selections


def rank_span(size: int, start: int, stop: int) -> tuple[int, int]:
    """Redis's ZRANGE index rules: ``[i, j)`` of ranks ``start`` to ``stop`` (inclusive, negatives
    from the end), empty (``i == j``) when the range holds nothing."""
    if start < 0:
        start += size
    if stop < 0:
        stop += size
    start = max(start, 0)
    if start > stop or start >= size:
        return 0, 0
    return start, min(stop, size - 1) + 1


def limit_span(i: int, j: int, offset: int, count: int | None, reverse: bool) -> tuple[int, int]:
    """``[i, j)`` cut by a LIMIT (from the high end when ``reverse``).

    As Redis's LIMIT: a negative ``offset`` gives nothing, a negative (or
    ``None``) ``count`` everything after the offset.
    """
    if offset < 0:
        return i, i
    unlimited = count is None or count < 0
    if reverse:
        j = max(i, j - offset)
        if not unlimited:
            i = max(i, j - count)  # type: ignore[operator]
    else:
        i = min(j, i + offset)
        if not unlimited:
            j = min(j, i + count)  # type: ignore[operator]
    return i, j


@dataclass(frozen=True, slots=True)
class Range:
    """What one ZRANGE selects (all its forms: by rank, score or lex, reversed, LIMIT).

    ``low``/``high`` are ranks (``int``, Redis's inclusive, negative from
    the end, counted from the highest score when ``reverse``), scores
    (``(value, exclusive)``) or :class:`LexBound` s, by ``by``. ``offset``
    and ``count`` are LIMIT's (see :func:`limit_span`), not used by rank.
    """

    by: str
    low: Any
    high: Any
    reverse: bool = False
    offset: int = 0
    count: int | None = None

    def span(self, z: ZSet) -> tuple[int, int, bool]:
        """Positions ``[i, j)`` in ``z`` and the direction to walk them: O(log n)."""
        if self.by == "rank":
            i, j = rank_span(len(z), self.low, self.high)
            if self.reverse:
                i, j = len(z) - j, len(z) - i
            return i, j, self.reverse
        if self.by == "score":
            i, j = z.score_span(*self.low, *self.high)
        else:
            i, j = z.lex_span(self.low, self.high)
        return (*limit_span(i, j, self.offset, self.count, self.reverse), self.reverse)


# ------------------------------------------------- scores and ranges as text
#
# How Redis's t_zset.c reads the text of scores and range ends. Here, not in
# the server, because two command modules need them (sorted set commands,
# and the ones that combine keys) and may not import each other; and
# because they are the sorted set's own vocabulary (``(1.5``, ``[a``, ``+``).

_DECIMAL = re.compile(
    r"[+-]?(?:0[xX](?P<hex>[0-9a-fA-F]+(?:\.[0-9a-fA-F]*)?|\.[0-9a-fA-F]+)(?:[pP][+-]?\d+)?"
    r"|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
    r"|(?P<inf>inf(?:inity)?)|nan)",
    re.IGNORECASE | re.ASCII,
)
_C_SPACE = " \t\n\v\f\r"


def _strtod(text: str) -> tuple[float, str] | None:
    """C's ``strtod`` on ``text``: the value and what is left, ``None`` if nothing parsed.

    The second item is the unparsed rest; a value past double's range
    comes back as an infinity and one that underflows as 0.0 (strtod's
    ERANGE cases, which :func:`parse_score` refuses and ranges accept).
    """
    stripped = text.lstrip(_C_SPACE)
    found = _DECIMAL.match(stripped)
    if found is None:
        return None
    literal = found.group()
    if found.group("hex") is not None:
        sign = -1.0 if literal[0] == "-" else 1.0
        body = literal.lstrip("+-")
        if "p" not in body.lower():
            body += "p0"
        value = sign * float.fromhex(body)
    else:
        value = float(literal)
    return value, stripped[found.end() :]


def _mantissa_nonzero(literal: str) -> bool:
    head = re.split(r"[eEpP]", literal.lstrip("+-"), maxsplit=1)[0]
    if head[:2].lower() == "0x":
        head = head[2:]
    return any(c not in "0." for c in head)


def parse_score(text: str) -> float:
    """A score argument, as Redis's ``getDoubleFromObject`` reads it.

    ``strtod`` over the whole text: no leading space, nothing after the
    number, not NaN, and not out of double's range (``1e400``; a value that
    underflows to zero, ``1e-400``, is refused too). ``inf``, ``-inf``,
    ``infinity`` and hexadecimal floats are scores.

    :raises ValueError: not such a number (the caller words the error).
    """
    if not text or text[0] in _C_SPACE:
        raise ValueError(text)
    parsed = _strtod(text)
    if parsed is None or parsed[1]:
        raise ValueError(text)
    value = parsed[0]
    if math.isnan(value):
        raise ValueError(text)
    if math.isinf(value) and "inf" not in text.lower():
        raise ValueError(text)  # overflow: ERANGE with HUGE_VAL
    if value == 0.0 and _mantissa_nonzero(text):
        raise ValueError(text)  # underflow to zero: ERANGE
    return value


def parse_score_bound(text: str) -> tuple[float, bool]:
    """One end of a score range (``zslParseRange``): ``(value, exclusive)``.

    ``(`` first makes it exclusive. Laxer than :func:`parse_score`, as
    Redis is here: ``strtod`` may skip leading space, an empty text is 0,
    a value past double's range is an infinity, and the text ends at a NUL.

    :raises ValueError: not a number, or NaN.
    """
    exclusive = text[:1] == "("
    body = text[1:] if exclusive else text
    body = body.split("\0", 1)[0]
    if not body.strip(_C_SPACE):
        if body:
            raise ValueError(text)  # only spaces: strtod stops at the first, not the end
        return 0.0, exclusive
    parsed = _strtod(body)
    if parsed is None or parsed[1] or math.isnan(parsed[0]):
        raise ValueError(text)
    return parsed[0], exclusive


def parse_lex_bound(text: str) -> LexBound:
    """One end of a lexicographic range (``zslParseLexRangeItem``).

    :raises ValueError: not ``-``, ``+``, ``[member`` or ``(member``.
    """
    head = text[:1]
    if head in ("-", "+"):
        if text[1:2] not in ("", "\0"):
            raise ValueError(text)
        return LEX_MIN if head == "-" else LEX_MAX
    if head == "(":
        return LexBound(0, text[1:], True)
    if head == "[":
        return LexBound(0, text[1:], False)
    raise ValueError(text)
