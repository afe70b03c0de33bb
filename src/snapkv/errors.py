"""Every exception snapkv raises on purpose, in one place.

The hierarchy::

    SnapkvError                     anything snapkv raises on purpose
    ├── CorruptSnapshotError        a snapshot failed a check; carries .path, .offset and
    │                               .check; refused by recovery, the message also says what
    │                               fallback would load and the command that repairs it
    ├── CorruptJournalError         a journal is damaged before its tail, missing, or its
    │                               header is bad; carries .path, .offset and .check, and
    │                               what repair would keep and drop, like CorruptSnapshotError
    ├── StoreLockedError            another Store (in any process) holds the directory, or a
    │                               live writer (recent heartbeat) holds the object-store prefix
    ├── StoreClosedError            the Store was closed; also a ValueError, like a closed file
    ├── StoreShutDownError          a journaled Store was shut down and takes no writes until
    │                               restore()
    ├── MediumError                 the medium could not read or publish (wraps OSError)
    │   ├── NoSpaceError            no room for a journal write; nothing written, the journal
    │   │                           stays usable and takes writes again once there is room
    │   └── StoreFencedError        a newer writer took the object-store prefix over: this
    │                               Store acknowledges no further write and overwrites nothing
    ├── WrongTypeError              a key used as a type it does not hold (a hash read as a
    │                               string, a list as a set); also a TypeError
    ├── TransactionError            an operation a transaction cannot contain (nesting, save,
    │                               shutdown, restore, close inside one), or one too large
    └── InvalidOperationError       a malformed operation for run_operations; also a ValueError

Wrong argument *types* (a non-str key or value) raise the builtin ``TypeError``,
not a SnapkvError: that is what Python callers expect of a mapping.
A missing key is never an error: ``get`` returns ``None`` (or a default).
"""

from __future__ import annotations

from typing import Any, Self

__all__ = [
    "CorruptJournalError",
    "CorruptSnapshotError",
    "InvalidOperationError",
    "MediumError",
    "NoSpaceError",
    "SnapkvError",
    "StoreClosedError",
    "StoreFencedError",
    "StoreLockedError",
    "StoreShutDownError",
    "TransactionError",
    "WrongTypeError",
]


class SnapkvError(Exception):
    """Base class of every exception snapkv raises on purpose."""


class _CheckFailed(SnapkvError):
    """What the corruption errors share: which check failed, where, in what, and what to do.

    ``offset`` is the byte offset where the failed check applies, ``check``
    a short stable name for the check (listed in docs/FORMAT.md), and
    ``source`` (also ``path``) names the file or generation when the error
    comes from a medium. ``advice``, when recovery refused a medium, says
    what recovery would drop if asked to recover, and the command that
    repairs the directory. The message names the file, the offset and the
    check once: ``<file>: <reason> (offset N, check NAME). <advice>``.
    """

    def __init__(
        self, reason: str, *, offset: int, check: str, source: str = "", advice: str = ""
    ) -> None:
        where = f"{source}: " if source else ""
        then = f". {advice}" if advice else ""
        super().__init__(f"{where}{reason} (offset {offset}, check {check}){then}")
        self.reason = reason
        self.offset = offset
        self.check = check
        self.source = source
        self.advice = advice

    @property
    def path(self) -> str:
        """The file (or generation) that failed the check; ``""`` when not from a medium."""
        return self.source

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only arguments: rebuild through a helper so the error
        # survives pickling (multiprocessing, concurrent.futures).
        fields = {
            "offset": self.offset,
            "check": self.check,
            "source": self.source,
            "advice": self.advice,
        }
        return (_rebuild, (type(self), (self.reason,), fields))

    def located(self, source: str) -> Self:
        """Return the same error, naming ``source`` (a file, a generation) in the message."""
        return type(self)(
            self.reason, offset=self.offset, check=self.check, source=source, advice=self.advice
        )

    def advised(self, advice: str) -> Self:
        """Return the same error, its message ending with ``advice`` (what to do next)."""
        return type(self)(
            self.reason, offset=self.offset, check=self.check, source=self.source, advice=advice
        )


class CorruptSnapshotError(_CheckFailed):
    """A snapshot failed one of the decoder's checks; nothing from it was loaded.

    ``offset`` is the byte offset in the snapshot where the failed check
    applies, and ``check`` is a short stable name for the check (for example
    ``"record-crc"`` or ``"magic"``), listed in docs/FORMAT.md. ``source``
    names the file or generation when the error comes from a medium.
    """


class CorruptJournalError(_CheckFailed):
    """A journal is damaged where recovery must not guess; nothing after the damage was applied.

    Raised for a bad journal header and for damage *before* the tail: a
    record that fails its checks while a valid record follows it, or a
    record whose checksum holds but whose body is malformed. A torn, zero
    or garbage tail is not an error (recovery drops it and says so). The
    fields mean what they mean in :class:`CorruptSnapshotError`: ``offset``
    is the byte offset in the journal file, ``check`` a stable name listed
    in docs/FORMAT.md, ``source`` the file or journal id.
    """


class StoreLockedError(SnapkvError):
    """Another Store, in this process or another one, already holds the directory.

    On object storage: a writer whose heartbeat is recent holds the prefix;
    the message names it and its last heartbeat, and ``takeover=True``
    opens the prefix anyway (fencing that writer).
    """


class StoreClosedError(SnapkvError, ValueError):
    """The Store was closed; it accepts no further operations."""


class StoreShutDownError(SnapkvError):
    """A journaled Store was shut down: a write would belong to no snapshot until restore()."""


class MediumError(SnapkvError):
    """The medium failed to read or publish a snapshot; the cause is chained."""


class NoSpaceError(MediumError):
    """The disk (or the quota) had no room for a journal write; nothing of it was written.

    Unlike other medium failures, this one leaves the journal as it was, so
    the journal stays usable: the refused write changed nothing (not memory,
    not the file), and a later write succeeds once there is room again.
    """


class StoreFencedError(MediumError):
    """A newer writer claimed the object-store prefix (a takeover): this Store is fenced.

    Raised by the fenced Store's next write that reaches the bucket (a
    journal segment, a snapshot's manifest): that write is not acknowledged,
    and neither is any later one. Nothing the new writer made is changed:
    every object is created only if absent, at a number the new writer
    already took. Reopen the prefix (with ``takeover=True`` to take it back)
    to continue from the new writer's state.
    """


class WrongTypeError(SnapkvError, TypeError):
    """A key was used as a type it does not hold: nothing changed.

    Redis's WRONGTYPE: ``get`` of a key holding a hash, ``hash(k)`` of a key
    holding a list. The message names the key, what it holds and what the
    call wanted; ``key``, ``holds`` and ``wanted`` carry the same.
    """

    def __init__(self, key: str, holds: str, wanted: str) -> None:
        super().__init__(f"key {key!r} holds a {holds}, not a {wanted}")
        self.key = key
        self.holds = holds
        self.wanted = wanted

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), (self.key, self.holds, self.wanted), {}))


class TransactionError(SnapkvError):
    """The operation cannot run inside a transaction, or the transaction cannot be committed.

    Raised for a nested ``store.transaction()``, for ``save``, ``shutdown``,
    ``restore`` or ``close`` inside one (each would publish or replace a
    state the transaction has not committed), and for a transaction whose
    writes do not fit in one journal record. The transaction's writes are
    undone when it escapes the block.
    """


class InvalidOperationError(SnapkvError, ValueError):
    """An operation given to run_operations is malformed; the message names its index."""

    def __init__(self, message: str, *, index: int) -> None:
        super().__init__(f"operation {index}: {message}")
        self.message = message
        self.index = index

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), (self.message,), {"index": self.index}))


def _rebuild(cls: type[Exception], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Exception:
    return cls(*args, **kwargs)
