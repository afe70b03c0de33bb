"""What a migration moves: one key as a :class:`Record`, and when two keys are the same.

A key read from a server arrives as a DUMP payload; a key read from a
snapkv store arrives as a value. Each side is turned into the other only
when something needs it (:meth:`Record.payload_bytes` for RESTORE,
:meth:`Record.decoded` for a snapkv target, the typed commands and
verification), so a server-to-server migration never decodes a payload
and passes every type through, streams included.

Two keys are the same when their *decoded* values are equal and their
expiry times agree to within :data:`TTL_SLACK_MS`: comparing payloads is
not enough, because one value has several encodings (a small hash is a
listpack on Redis 7, a plain hash in snapkv's payloads) and each side
writes its own. Payloads that are byte for byte equal are still the same
value, which makes the common case (nothing changed) cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from snapkv import rdb
from snapkv.values import hashes, lists, sets, streams, zsets

__all__ = [
    "BATCH",
    "TTL_SLACK_MS",
    "Failure",
    "Record",
    "canonical",
    "is_server_url",
    "key_bytes",
    "key_text",
    "same_entry",
    "same_expiry",
    "strings_of",
    "type_of",
]

#: Keys per page: per SCAN, per pipeline, per resume lookup.
BATCH: Final = 1000

#: A key that did not arrive: (keyspace, key, why); ``b""`` for a count that differs.
Failure = tuple[int, bytes, str]

#: How far two expiry times may differ and still be the same: a server's
#: expiry is read as a remaining PTTL and turned into an instant with the
#: server's own clock, so the two readings of one instant can differ by the
#: time between two commands.
TTL_SLACK_MS: Final = 1000

# The server's mapping of wire bytes to a store's str (UTF-8 with
# surrogateescape, snapkv.server.resp.text): every byte string has exactly
# one str and back, so a key that is not UTF-8 keeps its bytes.
_ENCODING: Final = "utf-8"
_ERRORS: Final = "surrogateescape"


def is_server_url(location: str) -> bool:
    """Whether ``location`` names a server rather than a snapkv store."""
    return location.startswith(("redis://", "rediss://", "unix://"))


def key_bytes(key: str) -> bytes:
    """The wire bytes of a store's key."""
    return key.encode(_ENCODING, _ERRORS)


def key_text(key: bytes) -> str:
    """The store's key for wire bytes."""
    return key.decode(_ENCODING, _ERRORS)


@dataclass(slots=True)
class Record:
    """One key on its way: keyspace, name, value (as a payload, a value or both), expiry.

    ``expire_at`` is an absolute instant in Unix milliseconds, ``None`` for
    a key that does not expire.
    """

    db: int
    key: bytes
    expire_at: int | None
    payload: bytes | None = None
    value: Any = None

    def payload_bytes(self) -> bytes:
        """The DUMP payload (RDB 9: every Redis since 5.0 restores it); made once."""
        if self.payload is None:
            self.payload = rdb.dump(self.value)
        return self.payload

    def decoded(self) -> Any:
        """The value (``str`` or a snapkv container); decoded once.

        :raises rdb.PayloadError, rdb.RDBError: a payload snapkv cannot read
            (a stream or a module type from Redis, a newer RDB version).
        """
        if self.value is None:
            assert self.payload is not None  # a record holds one or the other
            self.value = rdb.restore(self.payload, max_version=255)
        return self.value

    def size(self) -> int:
        """Bytes moved for this key (its name and payload, or a string's bytes): what
        progress counts. A string is counted without making its payload, which costs
        a CRC-64 in Python and which a string sent as SET never needs."""
        value = self.value
        if self.payload is None and value.__class__ is str:
            return len(self.key) + (len(value) if value.isascii() else len(key_bytes(value)))
        return len(self.key) + len(self.payload_bytes())


def strings_of(records: list[Record]) -> frozenset[bytes]:
    """The keys of ``records`` that hold a string value at hand (read from a store): a
    server target reads those back with GET, without a payload to check and decode."""
    return frozenset(r.key for r in records if r.payload is None and r.value.__class__ is str)


def type_of(value: Any) -> str:
    """Redis's TYPE name of a decoded value."""
    if value.__class__ is str:
        return "string"  # Redis's word
    for module in (hashes, lists, sets, zsets, streams):
        if isinstance(value, module.CLASS):
            name: str = module.NAME
            return name
    raise TypeError(f"not a snapkv value: {type(value).__name__}")


def canonical(value: Any) -> Any:
    """A plain, comparable form of a decoded value: equal exactly when the values are.

    A sorted set compares member to score (the order follows from them); a
    stream compares its entries and its last ID, which XADD's next ``*``
    depends on.
    """
    if value.__class__ is str:
        return value
    if isinstance(value, hashes.CLASS):
        return dict(value)
    if isinstance(value, lists.CLASS):
        return list(value)
    if isinstance(value, sets.CLASS):
        return frozenset(value)
    if isinstance(value, zsets.CLASS):
        return dict(value.scores)
    if isinstance(value, streams.CLASS):
        return (list(value.items()), value.last)
    raise TypeError(f"not a snapkv value: {type(value).__name__}")


def same_expiry(a: int | None, b: int | None) -> bool:
    """Whether two expiry instants (``None``: none) are the same, to :data:`TTL_SLACK_MS`."""
    if a is None or b is None:
        return a is b
    return abs(a - b) <= TTL_SLACK_MS


def same_entry(source: Record, target: Record | None) -> bool:
    """Whether ``target`` holds what ``source`` holds: the same value and expiry.

    :raises rdb.PayloadError, rdb.RDBError: a payload that differs byte-wise
        and cannot be decoded to compare.
    """
    if target is None:
        return False
    if not same_expiry(source.expire_at, target.expire_at):
        return False
    if source.payload is not None and source.payload == target.payload:
        return True
    return bool(canonical(source.decoded()) == canonical(target.decoded()))
