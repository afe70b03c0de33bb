"""The view of a sorted set: ``store.zsets[key]``, member -> score with ranks and ranges.

Each method is one atomic step and at most one journal record, as Redis's
commands are: ``add`` of many members is one ZADD, a pop records the
members it took (so replay never chooses), a range removal records the
members it removed. Ranks and ranges follow Redis's rules (negative ranks
count from the end, ``stop`` is inclusive, ``offset``/``count`` are
ZRANGEBYSCORE's LIMIT) so that the server's commands are thin parsers over
these methods; the Python caller gets the same answers redis-py would.

Scores are ``float``; an ``int`` is taken as its float. NaN is refused
(``ValueError``), as Redis refuses it; an increment that would make NaN
(``inf`` plus ``-inf``) raises :class:`NotANumberError` and changes nothing.
"""

from __future__ import annotations

import math
import random as _random
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from typing import Any, ClassVar

from snapkv.values import Item, ValueType, zsets
from snapkv.views.base import View, checked_text

__all__ = ["NotANumberError", "SortedSetView"]

_INF = math.inf
Pair = tuple[str, float]


class NotANumberError(ValueError):
    """An increment whose result is NaN (``inf`` plus ``-inf``): Redis refuses it too."""


def _score(value: object) -> float:
    """A score argument as a float; ``TypeError`` for a non-number, ``ValueError`` for NaN."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"a score must be a number, not {type(value).__name__}")
    score = float(value)
    if math.isnan(score):
        raise ValueError("a score must not be NaN")
    return score


def _lex(bound: str | zsets.LexBound) -> zsets.LexBound:
    return (
        bound
        if isinstance(bound, zsets.LexBound)
        else zsets.parse_lex_bound(checked_text(bound, "bound"))
    )


class SortedSetView(View, MutableMapping[str, float]):
    """A sorted set at a key: members are ``str``, scores ``float``; each method one atomic step.

    As a mapping it is member -> score; iteration is in Redis's order
    (ascending score, then member) over a point-in-time copy.
    """

    __slots__ = ()
    KIND: ClassVar[ValueType] = zsets

    # ------------------------------------------------------------ mapping

    def __getitem__(self, member: str) -> float:
        with self._keyspace._store._lock:
            value = self._current()
            if value is None or member not in value.scores:
                raise KeyError(member)
            score: float = value.scores[member]
            return score

    def get(self, member: str, default: Any = None) -> Any:
        """The score of ``member`` (ZSCORE), or ``default``."""
        with self._keyspace._store._lock:
            value = self._current()
            return default if value is None else value.scores.get(member, default)

    def scores(self, members: Iterable[str]) -> list[float | None]:
        """The score of each of ``members``, ``None`` for a missing one (ZMSCORE)."""
        with self._keyspace._store._lock:
            value = self._current()
            found = value.scores if value is not None else {}
            return [found.get(member) for member in members]

    def __setitem__(self, member: str, score: float) -> None:
        """ZADD of one member (the common write, so spelt out: a third faster than ``add``)."""
        member, score = checked_text(member, "member"), _score(score)
        store = self._keyspace._store
        with store._lock:
            value = self._current()
            if value is not None and value.scores.get(member) == score:
                return
            ticket = self._edit(zsets.OP_ADD, (score, member))
        store._commit(ticket)

    def __delitem__(self, member: str) -> None:
        """ZREM of one member; ``KeyError`` if it is missing."""
        if not self.remove(member):
            raise KeyError(member)

    def __iter__(self) -> Iterator[str]:
        """The members of a point-in-time copy, lowest score first."""
        with self._keyspace._store._lock:
            value = self._current()
            return iter([m for _, m in value.order] if value is not None else [])

    def __len__(self) -> int:
        return View.__len__(self)

    def __contains__(self, member: object) -> bool:
        with self._keyspace._store._lock:
            value = self._current()
            return value is not None and member in value.scores

    # ------------------------------------------------------------ writing

    def update(self, other: Any = (), /, **kwargs: float) -> None:
        """ZADD of every pair given, in one step and one record."""
        self.add([*_pairs(other), *kwargs.items()])

    def add(
        self,
        mapping: Mapping[str, float] | Iterable[tuple[str, float]],
        *,
        nx: bool = False,
        xx: bool = False,
        gt: bool = False,
        lt: bool = False,
        ch: bool = False,
    ) -> int:
        """ZADD: give members scores in one step and one record; the number added.

        ``mapping`` is a mapping or ``(member, score)`` pairs, applied in
        order (a member given twice counts as added, then changed, as in
        Redis). ``nx``: only add new members; ``xx``: only update existing
        ones; ``gt``/``lt``: only update when the new score is greater/less.
        ``ch``: return the members added or changed instead.

        :raises ValueError: a NaN score, or incompatible flags (Redis's
            rules: not ``nx`` with ``xx``, ``gt``, ``lt``; not ``gt`` with ``lt``).
        """
        added, changed, _ = self.zadd(_pairs(mapping), nx=nx, xx=xx, gt=gt, lt=lt)
        return added + changed if ch else added

    def incr(
        self,
        member: str,
        amount: float = 1.0,
        *,
        nx: bool = False,
        xx: bool = False,
        gt: bool = False,
        lt: bool = False,
    ) -> float | None:
        """ZINCRBY (ZADD INCR with flags): the new score, ``None`` if the flags stopped it.

        :raises NotANumberError: the sum is NaN; nothing changes.
        """
        _, _, score = self.zadd([(member, amount)], nx=nx, xx=xx, gt=gt, lt=lt, incr=True)
        return score

    def zadd(
        self,
        pairs: list[tuple[str, float]],
        *,
        nx: bool = False,
        xx: bool = False,
        gt: bool = False,
        lt: bool = False,
        incr: bool = False,
    ) -> tuple[int, int, float | None]:
        """Redis's ``zsetAdd`` over ``pairs`` in order: (added, changed, the last score written).

        The last item is the score of the last pair that was not stopped by
        a flag (``None`` if it was): ZADD INCR's reply. One record holds the
        final score of every member that changed.
        """
        if nx and xx:
            raise ValueError("XX and NX options at the same time are not compatible")
        if (gt and nx) or (lt and nx) or (gt and lt):
            raise ValueError("GT, LT, and/or NX options at the same time are not compatible")
        checked = [(checked_text(m, "member"), _score(s)) for m, s in pairs]
        if not checked:
            return 0, 0, None
        store = self._keyspace._store
        with store._lock:
            value = self._current()
            old: dict[str, float] = value.scores if value is not None else {}
            new: dict[str, float] = {}
            added = changed = 0
            last: float | None = None
            for member, given in checked:
                score = given
                current = new.get(member, old.get(member))
                if current is None:
                    if xx:
                        last = None
                        continue
                    added += 1
                else:
                    if nx:
                        last = None
                        continue
                    if incr:
                        score += current
                        if math.isnan(score):
                            raise NotANumberError("resulting score is not a number (NaN)")
                    if (lt and score >= current) or (gt and score <= current):
                        last = None
                        continue
                    if score != current:
                        changed += 1
                    elif member not in new:
                        last = score
                        continue
                new[member] = score
                last = score
            if not new:
                return added, changed, last
            items: list[Item] = []
            for member, score in new.items():
                items += (score, member)
            ticket = self._edit(zsets.OP_ADD, items)
        store._commit(ticket)
        return added, changed, last

    def remove(self, *members: str) -> int:
        """ZREM: remove ``members`` in one step; the number that were there."""
        store = self._keyspace._store
        with store._lock:
            value = self._current()
            if value is None:
                return 0
            gone = [m for m in dict.fromkeys(members) if m in value.scores]
            if not gone:
                return 0
            ticket = self._edit(zsets.OP_REM, gone)
        store._commit(ticket)
        return len(gone)

    def _remove_span(self, span: Any) -> list[Pair]:
        """Remove the members at the positions ``span(zset)`` gives; return them, in order."""
        store = self._keyspace._store
        with store._lock:
            value: zsets.ZSet | None = self._current()
            if value is None:
                return []
            i, j, reverse = span(value)
            taken = [(m, s) for s, m in value.pairs(i, j, reverse)]
            if not taken:
                return []
            ticket = self._edit(zsets.OP_REM, [m for m, _ in taken])
        store._commit(ticket)
        return taken

    def pop_min(self, count: int = 1) -> list[Pair]:
        """ZPOPMIN: remove and return up to ``count`` lowest ``(member, score)``, lowest first."""
        return self._remove_span(lambda z: (0, count, False))

    def pop_max(self, count: int = 1) -> list[Pair]:
        """ZPOPMAX: remove and return up to ``count`` highest ``(member, score)``, highest first."""
        return self._remove_span(lambda z: (len(z) - count, len(z), True))

    def remove_range_by_rank(self, start: int, stop: int) -> int:
        """ZREMRANGEBYRANK (``stop`` inclusive, negatives from the end); the number removed."""
        return len(self._remove_span(lambda z: (*zsets.rank_span(len(z), start, stop), False)))

    def remove_range_by_score(
        self,
        min: float,  # noqa: A002 - Redis's and redis-py's name
        max: float,  # noqa: A002
        *,
        min_exclusive: bool = False,
        max_exclusive: bool = False,
    ) -> int:
        """ZREMRANGEBYSCORE; the number removed."""
        low, high = _score(min), _score(max)
        return len(
            self._remove_span(
                lambda z: (*z.score_span(low, min_exclusive, high, max_exclusive), False)
            )
        )

    def remove_range_by_lex(self, min: str | zsets.LexBound, max: str | zsets.LexBound) -> int:  # noqa: A002
        """ZREMRANGEBYLEX (bounds as Redis writes them: ``[a``, ``(a``, ``-``, ``+``)."""
        low, high = _lex(min), _lex(max)
        return len(self._remove_span(lambda z: (*z.lex_span(low, high), False)))

    # ------------------------------------------------------------ reading

    def rank(self, member: str, reverse: bool = False) -> int | None:
        """ZRANK (ZREVRANK with ``reverse``): 0-based, ``None`` if ``member`` is missing."""
        with self._keyspace._store._lock:
            value: zsets.ZSet | None = self._current()
            found = None if value is None else value.rank(member)
            if found is None or not reverse:
                return found
            return len(value) - 1 - found  # type: ignore[arg-type]

    def _read(self, span: Any, with_scores: bool) -> list[Any]:
        with self._keyspace._store._lock:
            value: zsets.ZSet | None = self._current()
            if value is None:
                return []
            i, j, reverse = span(value)
            pairs = value.pairs(i, j, reverse)
        if with_scores:
            return [(m, s) for s, m in pairs]
        return [m for _, m in pairs]

    def select(
        self,
        by: str,
        low: Any,
        high: Any,
        *,
        reverse: bool = False,
        offset: int = 0,
        count: int | None = None,
        with_scores: bool = False,
    ) -> list[Any]:
        """What one ZRANGE selects, in its order: O(log n + m) (see ``zsets.Range``)."""
        return self._read(zsets.Range(by, low, high, reverse, offset, count).span, with_scores)

    def range_by_rank(
        self, start: int, stop: int, reverse: bool = False, with_scores: bool = False
    ) -> list[Any]:
        """ZRANGE by rank: ``stop`` inclusive, negatives from the end; members or pairs.

        ``reverse`` ranks from the highest score (ZREVRANGE).
        """
        return self.select("rank", start, stop, reverse=reverse, with_scores=with_scores)

    def range_by_score(
        self,
        min: float,  # noqa: A002
        max: float,  # noqa: A002
        *,
        min_exclusive: bool = False,
        max_exclusive: bool = False,
        reverse: bool = False,
        offset: int = 0,
        count: int | None = None,
        with_scores: bool = False,
    ) -> list[Any]:
        """ZRANGEBYSCORE (ZREVRANGEBYSCORE with ``reverse``): O(log n + m).

        ``min``/``max`` are the low and high ends in either direction;
        ``offset``/``count`` are LIMIT's (see ``zsets.limit_span``).
        """
        low, high = (_score(min), min_exclusive), (_score(max), max_exclusive)
        rng = zsets.Range("score", low, high, reverse, offset, count)
        return self._read(rng.span, with_scores)

    def range_by_lex(
        self,
        min: str | zsets.LexBound,  # noqa: A002
        max: str | zsets.LexBound,  # noqa: A002
        *,
        reverse: bool = False,
        offset: int = 0,
        count: int | None = None,
        with_scores: bool = False,
    ) -> list[Any]:
        """ZRANGEBYLEX (bounds ``[a``, ``(a``, ``-``, ``+``); for members of equal scores."""
        rng = zsets.Range("lex", _lex(min), _lex(max), reverse, offset, count)
        return self._read(rng.span, with_scores)

    def store_range(
        self,
        destination: str,
        by: str,
        low: Any,
        high: Any,
        *,
        reverse: bool = False,
        offset: int = 0,
        count: int | None = None,
    ) -> tuple[int, bool]:
        """ZRANGESTORE: ``destination`` (any type, this keyspace) becomes what is selected.

        The selection is :meth:`select`'s.
        One record: a PUT of the new sorted set (no expiry), or a DEL of
        ``destination`` when nothing is selected. Returns the members
        stored and whether an existing ``destination`` was deleted.
        """
        destination = checked_text(destination, "destination")
        rng = zsets.Range(by, low, high, reverse, offset, count)
        ks = self._keyspace
        store = ks._store
        with store._lock:
            value: zsets.ZSet | None = self._current()
            pairs = value.pairs(*rng.span(value)) if value is not None else []
            if pairs:
                items = [x for pair in pairs for x in pair]
                op: Any = ("put", ks._index, destination, zsets.CODE, items, 0)
            elif destination in ks:
                op = ("del", ks._index, destination)
            else:
                return 0, False
            ticket = ks._write([op])
        store._commit(ticket)
        return len(pairs), not pairs

    def count(
        self,
        min: float = -_INF,  # noqa: A002
        max: float = _INF,  # noqa: A002
        *,
        min_exclusive: bool = False,
        max_exclusive: bool = False,
    ) -> int:
        """ZCOUNT: members with scores in the range, O(log n)."""
        low, high = _score(min), _score(max)
        with self._keyspace._store._lock:
            value: zsets.ZSet | None = self._current()
            if value is None:
                return 0
            i, j = value.score_span(low, min_exclusive, high, max_exclusive)
            return j - i

    def lex_count(self, min: str | zsets.LexBound, max: str | zsets.LexBound) -> int:  # noqa: A002
        """ZLEXCOUNT, O(log n)."""
        low, high = _lex(min), _lex(max)
        with self._keyspace._store._lock:
            value: zsets.ZSet | None = self._current()
            if value is None:
                return 0
            i, j = value.lex_span(low, high)
            return j - i

    def random(self, count: int | None = None, with_scores: bool = False) -> Any:
        """ZRANDMEMBER: one member (``None`` if empty) or, with ``count``, a list.

        A positive ``count`` gives distinct members (all of them, highest
        score first, when it reaches the size); a negative one ``-count`` draws that may
        repeat. With ``with_scores`` the items are ``(member, score)``.
        """
        with self._keyspace._store._lock:
            value: zsets.ZSet | None = self._current()
            if value is None:
                return None if count is None else []
            order = value.order
            size = len(order)
            if count is None:
                score, member = order[_random.randrange(size)]
                return (member, score) if with_scores else member
            if count >= size:
                picked = list(reversed(order))  # as Redis 7.0 answers: highest first
            elif count >= 0:
                picked = [order[i] for i in sorted(_random.sample(range(size), count))]
                _random.shuffle(picked)
            else:
                picked = [order[_random.randrange(size)] for _ in range(-count)]
        if with_scores:
            return [(m, s) for s, m in picked]
        return [m for _, m in picked]


def _pairs(mapping: Mapping[str, float] | Iterable[tuple[str, float]]) -> list[tuple[str, float]]:
    if isinstance(mapping, Mapping):
        return list(mapping.items())
    return list(mapping)
