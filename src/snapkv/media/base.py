"""The Medium interface: where snapshots live. A medium moves opaque bytes and never parses them.

The contract every medium keeps (``snapkv.testing.check_medium`` checks it):

* :meth:`Medium.publish` makes the concatenation of the given pieces the
  newest snapshot *atomically*: after a crash at any instant, a reader finds
  either the previous newest snapshot or the complete new one, never a torn
  one. If publish raises, the previous snapshots are untouched, except in
  one case a medium must name in its error: the new snapshot became visible
  but its durability could not be confirmed (FileMedium: the directory sync
  after the rename failed). Either way the caller keeps its data.
* :meth:`Medium.generations` lists the retained snapshots, newest first;
  an empty list means "no snapshot yet", which a Store restores as empty.
* :meth:`Medium.read` returns a snapshot's bytes exactly as published.

Like TinyDB's ``Storage``, the interface only ever moves a whole snapshot.
Unlike TinyDB's ``JSONStorage``, it never overwrites one in place.

A medium may also hold journals (append-only logs, numbered from 1, never
reused; their bytes are defined in docs/FORMAT.md and parsed only by
:mod:`snapkv.journal`). The journal methods are optional: a medium that
cannot hold a journal keeps the defaults here, which raise MediumError, so
a Store asked to journal on it fails at once rather than losing writes.
The journal contract:

* :meth:`Medium.create_journal` returns a new journal holding exactly the
  given header, already durable, directory entry included; a leftover file
  of the same id (from a crash) is replaced.
* :meth:`JournalFile.write` appends to the OS at once (a killed process
  loses nothing written), :meth:`JournalFile.sync` makes it durable (a power
  loss loses nothing synced). Nothing else is promised about unsynced bytes:
  after a power loss they may be missing, zero, or garbage.
* A journal may be *preallocated*: its file longer than its records, the
  rest zero bytes (FORMAT.md section J2). Then ``size`` and
  :meth:`Medium.read_journal` of a journal open on the medium count its
  records only, a clean :meth:`JournalFile.close` leaves it as long as its
  records, and a process that dies leaves the zeros after them: a
  zero-filled tail, which recovery cuts. A medium preallocates a journal
  only once a record is written to it, so that only the newest journal
  that holds records can end in zeros.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable

from snapkv.errors import MediumError

__all__ = ["JournalFile", "Medium"]


class JournalFile(ABC):
    """One open journal: an append-only byte sequence with an explicit sync.

    Every method raises :class:`~snapkv.errors.MediumError` (naming the file
    and the OS error) when the medium fails. Writes from several threads must
    be serialised by the caller (``JournalWriter`` does), so that records
    never interleave.
    """

    #: Bytes in the journal so far, header included: the offset the next
    #: :meth:`write` starts at (preallocated space after it is not counted).
    size: int

    @abstractmethod
    def write(self, data: bytes) -> None:
        """Append all of ``data`` to the OS (not necessarily durable yet).

        After a failure part of ``data`` may have been appended; ``size``
        counts what was, and the caller must not append further (a later
        record after a torn one would turn a torn tail into mid-file damage).
        A medium that preallocates allocates the space for real before it
        writes there, so a full disk is this MediumError (nothing of
        ``data`` written), never a signal.
        """

    @abstractmethod
    def sync(self) -> None:
        """Make everything written so far durable (``fsync``)."""

    @abstractmethod
    def truncate(self, size: int) -> None:
        """Cut the journal to ``size`` bytes and make that durable (recovery, repair)."""

    @abstractmethod
    def close(self) -> None:
        """Release the handle without syncing its records. Idempotent.

        A preallocated journal is cut back to its records when its last
        handle closes, durably (so that a power loss cannot bring the zeros
        back after writes moved on to the next journal).

        :raises MediumError: that cut failed (the handle is released anyway).
        """


class Medium(ABC):
    """Somewhere to publish whole snapshots atomically and read them back."""

    @abstractmethod
    def publish(self, pieces: Iterable[bytes]) -> None:
        """Atomically make ``b"".join(pieces)`` the newest snapshot.

        ``pieces`` is consumed once, as it is written, so a medium never
        needs a second copy of the snapshot in memory.

        :raises MediumError: the snapshot could not be published and the
            previously published snapshots are unchanged; or (said in the
            message) it is visible but not confirmed durable.
        """

    @abstractmethod
    def generations(self) -> list[str]:
        """Names of the retained snapshots, newest first; ``[]`` if there is none."""

    @abstractmethod
    def read(self, generation: str | None = None) -> bytes | None:
        """Bytes of the newest snapshot (or of ``generation``); ``None`` if there is none.

        :raises MediumError: the snapshot exists but could not be read.
        """

    def read_head(self, generation: str, size: int) -> bytes | None:
        """The first ``size`` bytes of ``generation`` (``None`` if there is none).

        Enough to peek a snapshot's first record (its ``journal_next``)
        without reading all of it: a medium where a whole read is costly
        (object storage: a download) reads only the head.
        """
        data = self.read(generation)
        return None if data is None else data[:size]

    @abstractmethod
    def quarantine(self, generation: str) -> str:
        """Set aside a generation that failed verification; return where it went.

        Afterwards the generation is no longer listed, so it can neither
        shadow a good snapshot nor count toward the media's ``keep`` and push
        the last good generation out. Called by ``Store.restore(fallback=True)``.
        """

    def describe(self, generation: str | None = None) -> str:
        """A human-readable name for a generation, for error messages."""
        return f"{type(self).__name__} generation {generation}"

    def close(self) -> None:  # noqa: B027 - optional hook; most media hold nothing
        """Release what the medium holds (locks, handles). Idempotent."""

    # ----------------------------------------------------------------- journals
    # Optional: the defaults say the medium cannot hold a journal.

    def _no_journal(self) -> MediumError:
        return MediumError(f"{type(self).__name__} cannot hold a journal")

    def journal_ids(self) -> list[int]:
        """Ids of the journals on the medium, ascending (``[]`` if none).

        A medium that cannot hold a journal holds none: restoring from it
        works, only writing a journal to it fails.
        """
        return []

    def read_journal(self, jid: int) -> bytes | None:
        """All bytes of journal ``jid`` as they are now; ``None`` if it does not exist.

        While the journal is open on this medium, its records only (not the
        space preallocated after them).
        """
        return None

    def create_journal(self, jid: int, header: bytes) -> JournalFile:
        """Create journal ``jid`` holding exactly ``header``, durable, and open it for appends.

        When this returns, the journal and its directory entry survive a power
        loss. A leftover journal of the same id (one that a crash left behind
        before its id was recorded anywhere) is replaced.
        """
        raise self._no_journal()

    def open_journal(self, jid: int) -> JournalFile:
        """Open existing journal ``jid`` for appends at its end.

        Its current content is made durable first: after a process crash it
        may still sit unsynced in the OS, and new records must not be
        acknowledged on top of bytes a power loss could still take away.

        :raises MediumError: the journal does not exist or cannot be opened.
        """
        raise self._no_journal()

    def remove_journals(self, below: int) -> None:
        """Remove every journal whose id is below ``below`` (no error if there is none)."""
        raise self._no_journal()

    def quarantine_journal(self, jid: int) -> str:
        """Set aside journal ``jid`` (after a repair cut history before it); return where it went.

        Afterwards the journal is no longer listed, so recovery never replays
        it on top of a history that has a hole.
        """
        raise self._no_journal()

    def describe_journal(self, jid: int) -> str:
        """A human-readable name for journal ``jid`` (its path), for messages."""
        return f"{type(self).__name__} journal {jid}"
