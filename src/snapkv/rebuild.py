"""Rebuild: a recovery plan into keyspaces. Pure.

:mod:`snapkv.recovery` decides what to load (a snapshot, then the effects of
the journals it plans); this module builds memory from it, in two steps
because the Store needs a lock between them: :func:`snapshot_spaces` (the
snapshot's keyspaces and their expiry heaps, the slow part, built while
writers go on) and :func:`replay` (under the Store's lock: every effect
applied in order, then keys already expired dropped). :func:`apply` is the
meaning of each journal record type (docs/FORMAT.md part 2, J3), in one
place; :func:`keyspaces_written` is what ``databases`` must be for
:func:`replay` to accept a plan.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from snapkv import codec
from snapkv import journal as jr
from snapkv.effects import EffectError, Space, apply_key, new_space, reclaim

__all__ = ["ReplayError", "apply", "keyspaces_written", "replay", "snapshot_spaces"]


def snapshot_spaces(snapshot: codec.Snapshot, *, databases: int) -> dict[int, Space]:
    """The keyspaces a snapshot holds, each with its expiry heap built.

    The slow half of building memory (a heap over every expiry time), which
    needs no lock: the Store runs it before it stops writers for the journals.

    :raises ValueError: the snapshot holds a keyspace ``>= databases``.
    """
    spaces: dict[int, Space] = {}
    for index, entries in snapshot.spaces.items():
        if index >= databases:
            raise ValueError(
                f"the snapshot holds keyspace {index}, but this store has {databases} "
                f"(use databases={index + 1} or more)"
            )
        spaces[index] = new_space(entries, snapshot.expires.get(index))
    return spaces


def replay(spaces: dict[int, Space], ops: Iterable[jr.Op], *, databases: int, now_ms: float) -> int:
    """Apply every effect of ``ops`` (a plan's, in order) to ``spaces``, then drop keys now expired.

    Returns how many keys were dropped as expired (at or before ``now_ms``).

    :raises ValueError: a record names a keyspace ``>= databases``.
    :raises ReplayError: a record's effect cannot apply (see the class).
    """
    replaying = _Replay(spaces, databases)
    index = -1
    try:
        for index, op in enumerate(ops):  # noqa: B007 - the index names a failing record
            replaying.apply(op)
    except EffectError as exc:
        raise ReplayError(str(exc), record=index) from None
    return sum(reclaim(space, now_ms)[0] for space in spaces.values())


class ReplayError(ValueError):
    """A record whose effect cannot apply: one no writer of this format can have made.

    Its CRC held, so this is not a torn or damaged write: an EDIT of a key
    of another type, an effect its value type refuses. ``record`` is its
    index among the replayed records (from 0), for the caller to find the
    journal and offset and say so (the Store raises CorruptJournalError).
    """

    def __init__(self, message: str, *, record: int) -> None:
        super().__init__(message)
        self.record = record


def keyspaces_written(ops: Iterable[jr.Op]) -> int:
    """One more than the highest keyspace the replayed records name (0: none).

    What ``databases`` must be at least for :func:`replay` to accept them.
    """
    highest = -1
    for op in ops:
        for inner in op[1] if op[0] == "batch" else (op,):
            if inner[0] in ("swap", "rename"):
                highest = max(highest, inner[1], inner[2] if inner[0] == "swap" else inner[3])
            elif inner[1] != jr.ALL_KEYSPACES:
                highest = max(highest, inner[1])
    return highest + 1


def apply(spaces: dict[int, Space], op: Any, databases: int) -> None:
    """Apply one effect (a decoded journal record) to ``spaces``.

    The meaning of each record type (FORMAT.md part 2, J3): the keyspace-wide
    ones (BATCH, CLEAR, SWAP) here, the key-level ones in
    :func:`snapkv.effects.apply_key`, which the live write path uses too.

    :raises ValueError: a record names a keyspace ``>= databases``, or a
        value type refuses an effect (see ``apply_key``).
    """
    _Replay(spaces, databases).apply(op)


class _Replay:
    """Applies effects to a dict of spaces; one per replay, so ``space_of`` is bound once."""

    __slots__ = ("databases", "spaces")

    def __init__(self, spaces: dict[int, Space], databases: int) -> None:
        self.spaces = spaces
        self.databases = databases

    def space_of(self, db: int) -> Space:
        if db >= self.databases:
            raise ValueError(
                f"the journal writes keyspace {db}, but this store has {self.databases}"
            )
        space = self.spaces.get(db)
        if space is None:
            space = self.spaces[db] = new_space()
        return space

    def apply(self, op: Any) -> None:
        kind = op[0]
        spaces = self.spaces
        if kind == "batch":
            for inner in op[1]:
                self.apply(inner)
        elif kind == "clear":
            if op[1] == jr.ALL_KEYSPACES:
                spaces.clear()
            else:
                spaces.pop(op[1], None)
        elif kind == "swap":
            if max(op[1], op[2]) >= self.databases:
                raise ValueError(
                    f"the journal swaps keyspace {max(op[1], op[2])}, "
                    f"but this store has {self.databases}"
                )
            a, b = spaces.pop(op[1], None), spaces.pop(op[2], None)
            if a is not None:
                spaces[op[2]] = a
            if b is not None:
                spaces[op[1]] = b
        else:
            apply_key(self.space_of, op)
