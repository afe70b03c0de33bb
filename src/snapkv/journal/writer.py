"""Writing a journal: :class:`JournalWriter`, its fsync policies and group commit.

The one module of the journal that does I/O, as LevelDB's ``log_writer``
is the one that appends: it writes records (encoded by
:mod:`snapkv.journal.format`) to a file it is given and fsyncs it by policy.
The file is anything shaped like :class:`JournalSink`;
:class:`snapkv.media.JournalFile` is one, handed over by the Store, so the
journal never imports the media.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from typing import Literal, Protocol, TypeAlias

from snapkv.errors import MediumError, NoSpaceError

__all__ = [
    "FSYNC_ALIASES",
    "FSYNC_POLICIES",
    "FsyncPolicy",
    "JournalSink",
    "JournalWriter",
    "fsync_policy",
]

log = logging.getLogger("snapkv")

#: The writer's durability policies (FORMAT.md section J7), spelt as
#: Redis's ``appendfsync`` values everywhere (Python API, CLI, server config);
#: defined here only, checked by :func:`fsync_policy`.
FSYNC_POLICIES = ("always", "everysec", "no")
FsyncPolicy: TypeAlias = Literal["always", "everysec", "no"]
#: Other accepted spellings: ``never`` was the Python API's name for ``no``.
FSYNC_ALIASES = {"never": "no"}


def fsync_policy(name: object) -> FsyncPolicy:
    """``name`` as one of :data:`FSYNC_POLICIES` (``"never"`` is accepted for ``"no"``).

    :raises ValueError: ``name`` is no policy; the message lists the choices.
    """
    policy = FSYNC_ALIASES.get(name, name) if isinstance(name, str) else name
    if policy not in FSYNC_POLICIES:
        choices = ", ".join(repr(p) for p in FSYNC_POLICIES)
        raise ValueError(f"fsync must be one of {choices} (or 'never' for 'no'), not {name!r}")
    return policy  # type: ignore[return-value]


class JournalSink(Protocol):
    """What :class:`JournalWriter` needs of a file: :class:`snapkv.media.JournalFile` is one.

    Spelled out here so that the journal (like the codec) never imports the
    media: the Store hands one to the other.
    """

    @property
    def size(self) -> int: ...
    def write(self, data: bytes) -> None: ...
    def sync(self) -> None: ...
    def truncate(self, size: int) -> None: ...
    def close(self) -> None: ...


class JournalWriter:
    """Appends records to one journal and makes them durable by the fsync policy.

    ``append`` is called with the caller's lock held (the Store's), so it
    is one write to the OS and nothing more: once it returns, the record
    survives a crash of the process (not of the machine). ``commit`` is
    called after that lock is released and, with ``fsync="always"``,
    returns once the record survives a power loss too. The durability
    contract:

    ============  ==================================  =================================
    policy        a killed process loses              a power loss loses
    ============  ==================================  =================================
    ``always``    nothing appended                    nothing committed
    ``everysec``  nothing appended                    about the last ``interval`` seconds
    ``no``        nothing appended                    whatever the OS had not written
    ============  ==================================  =================================

    Group commit: the first committer becomes the leader and fsyncs
    everything appended so far, outside any lock; committers that arrive
    meanwhile wait on a condition and are all woken when that fsync ends:
    those it covered return at once, and one of the others leads the next
    fsync. Many threads share one fsync (as a database's group commit does),
    and a covered thread never queues behind the next fsync. ``everysec`` runs a
    daemon thread that fsyncs at most ``interval`` seconds after a write, and
    only if something was written since the last fsync.

    After any failed write or fsync the writer is *failed*: every later
    ``append``, ``commit`` of an unsynced record and ``sync`` raises
    :class:`~snapkv.errors.MediumError` naming the first failure. A retried
    fsync may report success for data the OS already dropped, and a record
    after a torn one would turn a tail into mid-file damage; so nothing is
    retried and nothing is written silently. The one exception is a write
    the file refused for want of room (:class:`~snapkv.errors.NoSpaceError`)
    before taking a byte of it (its ``size`` unchanged):
    that record is refused, the writer stays healthy, and a later record
    is written once there is room.

    Threads: ``append`` and ``close`` are serialised by the caller's lock
    (the Store holds its own for both), so records never interleave and no
    record is appended while the file closes; the writer takes no lock of
    its own for them (one cost ~5% of a journaled set). ``commit``,
    ``sync`` and the ``everysec`` thread may run at any moment in any thread.
    """

    def __init__(
        self, file: JournalSink, fsync: FsyncPolicy | str = "everysec", *, interval: float = 1.0
    ) -> None:
        fsync = fsync_policy(fsync)
        if not interval > 0:
            raise ValueError(f"interval must be > 0 seconds, not {interval}")
        self.fsync = fsync
        self.interval = interval
        self._file = file
        self._always = fsync == "always"
        # What append writes with: the file's write while the writer is
        # healthy, a refusal once it failed or closed (one call either way,
        # no test of the state on every record).
        self._write: Callable[[bytes], None] = file.write
        self._sync_done = threading.Condition(threading.Lock())
        self._syncing = False
        # The file's content so far is durable: create_journal and
        # open_journal promise it.
        self._written = self._synced = file.size
        self._failure: str | None = None
        self._closed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if fsync == "everysec":
            self._thread = threading.Thread(
                target=_sync_every,
                args=(weakref.ref(self), self._stop, interval),
                name="snapkv-journal-fsync",
                daemon=True,
            )
            self._thread.start()

    @property
    def written(self) -> int:
        """Offset after the last appended record: the ``lsn`` of the newest append."""
        return self._written

    @property
    def synced(self) -> int:
        """Offset up to which the journal is known durable."""
        return self._synced

    @property
    def failure(self) -> str | None:
        """The first write or fsync failure, or ``None`` while the writer is healthy."""
        return self._failure

    def append(self, record: bytes) -> int:
        """Write ``record`` to the OS now; return its lsn (the journal's size after it).

        :raises MediumError: the write failed (the writer is failed from now
            on), or the writer had already failed or is closed.
        """
        try:
            self._write(record)
            # Inside the try: an interrupt that lands once the bytes are
            # written fails the writer too, so ``written`` never lags a
            # record a healthy writer holds.
            self._written = lsn = self._written + len(record)
        except BaseException as exc:
            # A closed writer refused: no failure. The disk had no room and
            # the file took no byte of the record (NoSpaceError): this record is
            # refused, and the next one may find room; the file is as it
            # was, so nothing can follow a torn record.
            if not self._closed and not (
                isinstance(exc, NoSpaceError) and self._file.size == self._written
            ):
                self._fail(exc)
            raise
        return lsn

    def _refuse(self, _record: bytes) -> None:
        raise self._refusal()

    def commit(self, lsn: int) -> None:
        """Wait until the record ending at ``lsn`` is as durable as the policy promises.

        ``always``: blocks until it is fsynced (sharing one fsync with every
        concurrent committer). ``everysec`` and ``no``: returns at once.

        :raises MediumError: the fsync failed, now or before.
        """
        if self._always and lsn > self._synced:
            self._sync_to(lsn)

    def sync(self) -> None:
        """Make every record appended so far durable, whatever the policy.

        :raises MediumError: the fsync failed, now or before.
        """
        if self._failure is not None:
            raise self._refusal()
        self._sync_to(self._written)

    def sync_pending(self) -> bool:
        """Fsync if anything was appended since the last fsync; True if it did.

        What the ``everysec`` thread runs each ``interval``. A failure is
        recorded (the next append raises it) and logged, not raised.
        """
        if self._written <= self._synced or self._failure is not None or self._closed:
            return False
        try:
            self._sync_to(self._written)
        except MediumError as exc:
            log.error("journal fsync failed; refusing further writes: %s", exc)
            return False
        return True

    def _sync_to(self, lsn: int) -> None:
        done = self._sync_done
        with done:
            while True:
                if self._synced >= lsn:
                    return  # a concurrent committer's fsync covered this record
                if self._failure is not None:
                    raise self._refusal()
                if not self._syncing:
                    break
                done.wait()
            self._syncing = True  # this thread leads the next fsync
            target = self._written  # everything appended before the fsync starts
        try:
            self._file.sync()
        except BaseException as exc:
            with done:
                self._fail(exc)
                self._syncing = False
                done.notify_all()
            raise
        with done:
            self._synced = target
            self._syncing = False
            done.notify_all()

    def _fail(self, exc: BaseException) -> None:
        if self._failure is None:
            self._failure = str(exc) or type(exc).__name__
        self._write = self._refuse

    def _refusal(self) -> MediumError:
        if self._failure is not None:
            return MediumError(
                f"the journal refuses writes after an earlier failure: {self._failure}"
            )
        return MediumError("the journal writer is closed")

    def close(self) -> None:
        """Stop the fsync thread, fsync what was appended, close the file. Idempotent.

        Syncs under every policy, as Redis does at shutdown: a clean close
        leaves nothing to a power loss. A failed writer first cuts the file
        back to its last whole record: a write that failed part-way left a
        torn record, and writes go on in the next journal, after which a
        torn record here would be damage before the tail (FORMAT.md J6
        rule 6), refusing the next open.

        :raises MediumError: the final fsync failed, or an earlier failure
            left appended records not durable (the file is closed anyway).
        """
        if self._closed:
            return
        self._closed = True
        self._write = self._refuse
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        try:
            if self._failure is not None and self._file.size > self._written:
                try:
                    self._file.truncate(self._written)
                except Exception as exc:  # the failure already raised says more
                    log.error("cannot cut a failed journal back to its last record: %s", exc)
            if self._written > self._synced:
                if self._failure is not None:
                    raise self._refusal()
                self._sync_to(self._written)
        finally:
            self._file.close()

    def __repr__(self) -> str:
        state = "failed" if self._failure else "closed" if self._closed else self.fsync
        return f"<JournalWriter {state} written={self._written} synced={self._synced}>"


def _sync_every(ref: weakref.ref[JournalWriter], stop: threading.Event, interval: float) -> None:
    """The ``everysec`` loop; holds the writer only weakly, so an unclosed writer can be freed."""
    while not stop.wait(interval):
        writer = ref()
        if writer is None:
            return
        writer.sync_pending()
        del writer
