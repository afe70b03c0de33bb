"""A key written with the typed commands, for a server that refuses RESTORE.

RESTORE is refused by a user whose ACL lacks it (``-restore``, or only
``+@write`` minus ``@dangerous``) and by a server that does not read the
payload's RDB version. Such a server still takes the commands any client
sends, so the key is rebuilt from its decoded value: ``SET ... PXAT`` for a
string; for a container ``DEL``, then ``HSET`` / ``RPUSH`` / ``SADD`` /
``ZADD`` / ``XADD`` in slices of :data:`SLICE` elements (a command with a
million arguments would stall the server and hit its query buffer limit),
then ``PEXPIREAT``. The commands of one key run inside MULTI/EXEC, so no
client ever sees the key half built and a failure leaves the old value.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from snapkv.interop.migrate_records import Record, key_bytes
from snapkv.values import hashes, lists, sets, streams, zsets

__all__ = ["SLICE", "commands"]

#: Elements per command (pairs for HSET and ZADD).
SLICE: Final = 1000

Command = tuple[Any, ...]


def _b(text: str) -> bytes:
    return key_bytes(text)  # values cross as keys do: UTF-8 with surrogateescape


def _sliced(head: tuple[Any, ...], args: list[bytes], width: int) -> Iterator[Command]:
    step = SLICE * width
    for start in range(0, len(args), step):
        yield (*head, *args[start : start + step])


def commands(record: Record) -> list[Command]:
    """The commands that make ``record``'s key hold its value and expiry, replacing it.

    :raises rdb.PayloadError, rdb.RDBError: the payload cannot be decoded
        (a module type, say): such a key cannot be rebuilt by commands.
    """
    value = record.decoded()
    key = record.key
    at = record.expire_at
    if value.__class__ is str:
        if at is None:
            return [("SET", key, _b(value))]
        return [("SET", key, _b(value), "PXAT", at)]
    out: list[Command] = [("DEL", key)]
    if isinstance(value, hashes.CLASS):
        flat = [_b(text) for pair in value.items() for text in pair]
        out += _sliced(("HSET", key), flat, 2)
    elif isinstance(value, lists.CLASS):
        out += _sliced(("RPUSH", key), [_b(text) for text in value], 1)
    elif isinstance(value, sets.CLASS):
        out += _sliced(("SADD", key), [_b(text) for text in value], 1)
    elif isinstance(value, zsets.CLASS):
        # repr() gives the shortest text that reads back as the same double,
        # and "inf" / "-inf" as ZADD spells them.
        flat = [
            part
            for member, score in value.scores.items()
            for part in (repr(score).encode(), _b(member))
        ]
        out += _sliced(("ZADD", key), flat, 2)
    elif isinstance(value, streams.CLASS):
        out += _stream(key, value)
    else:
        raise TypeError(f"not a snapkv value: {type(value).__name__}")
    if at is not None:
        out.append(("PEXPIREAT", key, at))
    return out


def _stream(key: bytes, value: Any) -> list[Command]:
    """XADD of every entry with its own ID, then XSETID so the next ``*`` is the source's."""
    out: list[Command] = []
    for (ms, seq), pairs in value.items():
        out.append(("XADD", key, f"{ms}-{seq}", *(_b(text) for text in pairs)))
    last_ms, last_seq = value.last
    if value:
        out.append(("XSETID", key, f"{last_ms}-{last_seq}"))
    return out
