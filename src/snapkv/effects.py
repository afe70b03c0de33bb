"""Effects on keys: what each journal record does to a keyspace's memory, once.

A keyspace's memory is a :data:`Space`: the entries dict (key -> ``str`` or
a container of :mod:`snapkv.values`), the ``expires`` dict (key -> absolute
epoch milliseconds, only for keys that expire) and a heap of
``(expires_at, key)`` for the sweeper, replaced together as one tuple.

:func:`apply_key` is the meaning of every key-level record (SET, DEL,
EXPIRE, EDIT, PUT, RENAME; docs/FORMAT.md part 2, J3). The live write path
of the containers (``Keyspace._write``), the journal's replay
(:mod:`snapkv.rebuild`) and a transaction's undo (:mod:`snapkv.transaction`)
all change memory through it, so what replay builds is what the writes
built. (The string ``set`` path inlines the SET case for speed; it is the
same three lines.)
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

from snapkv import values

__all__ = ["EffectError", "Space", "apply_key", "new_space", "reclaim", "unfreeze"]


class EffectError(ValueError):
    """An EDIT, PUT or RENAME that cannot apply to what the key holds; memory is unchanged."""


Space = tuple[dict[str, Any], dict[str, int], list[tuple[int, str]]]


def new_space(
    entries: dict[str, Any] | None = None, expires: dict[str, int] | None = None
) -> Space:
    """A keyspace's memory from its entries and expiry times, with the heap built."""
    entries = {} if entries is None else entries
    expires = {} if expires is None else expires
    heap = list(zip(expires.values(), expires, strict=True))  # C-level, unlike a comprehension
    heapq.heapify(heap)
    return entries, expires, heap


def reclaim(
    space: Space,
    now_ms: float,
    limit: int | None = None,
    gone: list[tuple[str, Any, int]] | None = None,
) -> tuple[int, bool]:
    """Remove the keys of ``space`` due at ``now_ms``; return (keys removed, more may be due).

    ``limit`` bounds the heap entries looked at, stale ones included (left
    by persist or a plain set), so one call's work is bounded. ``gone``, if
    given, receives ``(key, value, expiry)`` of each key removed (a
    transaction's undo must be able to put them back: reclaiming is never
    journaled). The sweeper, locked reads and recovery all reclaim through
    this one loop.
    """
    data, expires, heap = space
    removed = popped = 0
    while heap and heap[0][0] <= now_ms:
        if limit is not None and popped >= limit:
            return removed, True
        at, key = heapq.heappop(heap)
        popped += 1
        if expires.get(key) == at:
            if gone is not None:
                gone.append((key, data.get(key), at))
            # Entry first: a lock-free reader between the two deletions
            # must still find the expiry time, or it would see the key live.
            data.pop(key, None)
            del expires[key]
            removed += 1
    return removed, False


def unfreeze(data: dict[str, Any], key: str, value: Any, frozen_below: int) -> Any:
    """``value`` (held by ``key``), replaced by a copy first if a running save reads it.

    The copy-on-write rule of :mod:`snapkv.values.base`: a container made
    before the running save started (epoch below ``frozen_below``) is being
    encoded, so a write goes to a copy that takes its place in ``data``.
    """
    if value is not None and value.__class__ is not str and value.epoch < frozen_below:
        value = values.BY_CLASS[value.__class__].copy(value)
        data[key] = value
    return value


def _set_expiry(space: Space, key: str, at: int) -> None:
    _, expires, heap = space
    if at:
        expires[key] = at
        heapq.heappush(heap, (at, key))
    else:
        expires.pop(key, None)


def apply_key(space_of: Callable[[int], Space], op: Any, frozen_below: int = 0) -> None:
    """Apply one key-level effect (a decoded SET, DEL, EXPIRE, EDIT, PUT or RENAME record).

    ``space_of(db)`` gives keyspace ``db``'s memory. ``frozen_below`` is the
    epoch of a running save (0: none), see :func:`unfreeze`.

    :raises EffectError: an EDIT or PUT that its value type refuses (a
        journal no writer of this format can have made), or an EDIT on a
        key that holds another type. (An apply that fails part way, as a
        list POP whose values disagree with the list, may have changed the
        value: replay then refuses the whole store.)
    """
    kind = op[0]
    space = space_of(op[1])
    data, expires, _ = space
    key = op[2]
    if kind == "set":
        data[key] = op[3]
        _set_expiry(space, key, op[4])
    elif kind == "del":
        data.pop(key, None)
        expires.pop(key, None)
    elif kind == "expire":
        if key in data:
            _set_expiry(space, key, op[3])
    elif kind == "edit":
        kind_of = values.BY_CODE.get(op[3])
        if kind_of is None:
            raise EffectError(f"an EDIT of {key!r} names value type {op[3]}, which does not exist")
        value = unfreeze(data, key, data.get(key), frozen_below)
        if value is not None and value.__class__ is not kind_of.CLASS:
            raise EffectError(
                f"an EDIT changes {key!r} as a {kind_of.NAME}, "
                f"but it holds a {values.type_name(value)}"
            )
        try:
            result = kind_of.apply(value, op[4], op[5])
        except (ValueError, TypeError, IndexError) as exc:
            raise EffectError(f"an EDIT of {key!r} as a {kind_of.NAME}: {exc}") from None
        if result is None:
            data.pop(key, None)
            expires.pop(key, None)
        elif result is not value:
            data[key] = result
            expires.pop(key, None)  # a new key: nothing of an older one's expiry is left
    elif kind == "put":
        kind_of = values.BY_CODE.get(op[3])
        if kind_of is None:
            raise EffectError(f"a PUT of {key!r} names value type {op[3]}, which does not exist")
        try:
            data[key] = kind_of.build(op[4])
        except (ValueError, TypeError, IndexError) as exc:
            raise EffectError(f"a PUT of {key!r} as a {kind_of.NAME}: {exc}") from None
        _set_expiry(space, key, op[5])
    elif kind == "rename":
        if key not in data:
            return
        value, at = data.pop(key), expires.pop(key, None)
        target = space_of(op[3])
        target[0][op[4]] = value
        _set_expiry(target, op[4], at or 0)
    else:
        raise ValueError(f"{kind!r} is not a key-level effect")
