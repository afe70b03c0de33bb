"""A whole value as the commands that build it on a Redis replica (Redis's AOF rewrite).

Used by the feed (:mod:`snapkv.server.replicas.feed`) for a value written
whole (a creation, COPY, a *STORE) and for a key rewritten from memory:
``DEL``, then the type's command in chunks, then ``PEXPIREAT``; scores and
stream IDs written so Redis parses back exactly the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from snapkv.values import hashes, lists, sets, streams, zsets

__all__ = ["MASK", "Cmd", "build", "kind_of", "score", "stream_id", "stream_meta"]

#: Items per command when a whole value is written (Redis's AOF rewrite uses 64).
_CHUNK = 512
MASK = 2**64 - 1

Cmd = tuple[int | None, list[str]]  # the keyspace it runs in (None: any), argv


def score(value: Any) -> str:
    """A score as Redis parses it back to the same double (``repr`` round-trips)."""
    number = float(value)
    if number == float("inf"):
        return "inf"
    if number == float("-inf"):
        return "-inf"
    return repr(number)


def stream_id(ms: Any, seq: Any) -> str:
    """A stream ID as ``ms-seq``, each part as Redis's unsigned 64 bits."""
    return f"{int(ms) & MASK}-{int(seq) & MASK}"


def build(db: int, key: str, vtype: int, items: Sequence[Any], at: int) -> list[Cmd]:
    """DEL, then the commands that create the value of type ``vtype`` from its flat items."""
    cmds: list[Cmd] = [(db, ["DEL", key])]
    texts = [str(item) for item in items]
    if vtype == hashes.CODE:
        cmds += _chunked(db, ["HSET", key], texts, 2)
    elif vtype == lists.CODE:
        cmds += _chunked(db, ["RPUSH", key], texts, 1)
    elif vtype == sets.CODE:
        cmds += _chunked(db, ["SADD", key], texts, 1)
    elif vtype == zsets.CODE:
        pairs: list[str] = []
        for i in range(0, len(items), 2):
            pairs += (score(items[i]), str(items[i + 1]))
        cmds += _chunked(db, ["ZADD", key], pairs, 2)
    elif vtype == streams.CODE:
        cmds += _stream_build(db, key, items)
    else:
        raise ValueError(f"value type {vtype} has no replica commands")
    if at:
        cmds.append((db, ["PEXPIREAT", key, str(at)]))
    return cmds


def kind_of(value: Any) -> Any:
    """The value-type module (``snapkv.values.*``) of a container."""
    for kind in (hashes, lists, sets, zsets, streams):
        if isinstance(value, kind.CLASS):
            return kind
    raise TypeError(f"{type(value).__name__} is not a value type")


def stream_meta(value: streams.Stream) -> tuple[int, int, int, int, int]:
    """Last ID, entries added, max-deleted ID: what XSETID sets."""
    return (*value.last, value.added, *value.deleted)


def _stream_build(db: int, key: str, items: Sequence[Any]) -> list[Cmd]:
    """A stream from its flat form: each entry by XADD with its ID, then XSETID."""
    meta = items[: streams.META_ITEMS]
    cmds: list[Cmd] = []
    pos = streams.META_ITEMS
    while pos < len(items):
        ms, seq, n = items[pos], items[pos + 1], int(items[pos + 2])
        fields = [str(item) for item in items[pos + 3 : pos + 3 + 2 * n]]
        cmds.append((db, ["XADD", key, stream_id(ms, seq), *fields]))
        pos += 3 + 2 * n
    if not cmds:
        # An empty stream exists in Redis too: made by an entry trimmed away at once.
        last = stream_id(meta[0], meta[1])
        cmds.append((db, ["XADD", key, "MAXLEN", "0", last, "x", "y"]))
    last, added, deleted = (
        stream_id(meta[0], meta[1]),
        int(meta[2]) & MASK,
        stream_id(meta[3], meta[4]),
    )
    cmds.append((db, ["XSETID", key, last, "ENTRIESADDED", str(added), "MAXDELETEDID", deleted]))
    return cmds


def _chunked(db: int, head: list[str], texts: Iterable[str], step: int) -> list[Cmd]:
    items = list(texts)
    size = _CHUNK * step
    return [(db, [*head, *items[i : i + size]]) for i in range(0, len(items), size)]
