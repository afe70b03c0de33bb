"""``snapkv.open()``: a Store on a directory or a URL, restored, or nothing left behind.

Every argument is checked before the disk is touched (the Store's settings
by :func:`snapkv.store.check_settings`, the same check ``Store()`` runs),
then the directory is created if missing (not its parents), locked by a
:class:`~snapkv.media.FileMedium` and restored. A call refused at any step
leaves the disk as it found it: a directory this call created is removed
again while it holds nothing but the lock file, and a lock file it created
in an existing directory is removed too. (Only the temporaries an earlier
crash left mid-publish, named as the medium names them, are gone: the
medium removes them once it holds the lock.)

A URL (``s3://bucket/prefix``, ``gs://``, ``az://``, ``abfs://``, ``file://``,
``memory://``; :func:`snapkv.objstore.url.is_object_url` decides, with the
standard library only) opens an :class:`~snapkv.objstore.medium.ObjectMedium`
instead: the same checks first, then the prefix is claimed (a new epoch) and
restored. obstore, the ``cloud`` extra, is imported only then.
"""

from __future__ import annotations

import contextlib
import logging
import operator
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from snapkv import recovery
from snapkv.errors import MediumError, StoreLockedError
from snapkv.media import LOCK_NAME, FileMedium, Medium
from snapkv.objstore.url import is_object_url
from snapkv.store import (
    DEFAULT_COMPACT_MIN_BYTES,
    DEFAULT_COMPACT_RATIO,
    DEFAULT_FSYNC,
    SWEEP_INTERVAL,
    Store,
    check_settings,
)

__all__ = ["open"]

log = logging.getLogger("snapkv")


def open(  # noqa: A001 - snapkv.open mirrors dbm.open and shelve.open
    directory: str | os.PathLike[str],
    *,
    journal: bool = True,
    fsync: str = DEFAULT_FSYNC,
    keep: int = 1,
    fallback: bool = False,
    repair: bool = False,
    databases: int = recovery.DEFAULT_DATABASES,
    clock: Callable[[], float] | None = None,
    compact_ratio: float = DEFAULT_COMPACT_RATIO,
    compact_min_bytes: int = DEFAULT_COMPACT_MIN_BYTES,
    sweep_interval: float | None = SWEEP_INTERVAL,
    save_on_close: bool | None = None,
    storage_options: Mapping[str, object] | None = None,
    takeover: bool = False,
    retention: float | None = None,
    replicate: str | None = None,
    replicate_interval: float = 1.0,
) -> Store:
    """Open (creating if needed) the store in ``directory`` and restore it.

    The defaults lose no acknowledged write: every write is journaled
    before it returns, so neither ``close()`` nor a killed process loses
    one (``fsync="everysec"``: a power loss loses at most about a second).
    With ``journal=False`` the store keeps snapshots only: ``close()``
    publishes one if anything changed since the last save, shutdown or
    restore, and a process that dies without ``close()`` loses every write
    since the last snapshot. See :meth:`Store.close`.

    ``directory`` is created if it is missing, but not its parents. Every
    argument is checked before the disk is touched, so a refused call
    leaves nothing behind; if the directory was created by this call and
    opening fails later, it is removed again.

    :param journal: append every write to a journal before acknowledging it
        (default). ``False`` opts out: snapshots only.
    :param fsync: with a journal, when its writes are forced to the disk:
        ``"always"`` (before each write returns: survives a power loss),
        ``"everysec"`` (default: a power loss loses at most about a second
        of writes) or ``"no"`` (the OS decides; ``"never"`` is an alias).
        A killed process loses nothing under any of them.
    :param keep: older snapshot generations kept besides the newest, for
        ``fallback``. The default, 1, means two snapshot files on disk: the
        newest and one older generation. 0 keeps only the newest.
    :param fallback: restore the newest *valid* generation if the newest is corrupt.
    :param repair: recover from a journal damaged in the middle by keeping
        what comes before the damage (reported in ``store.last_restore``).
    :param databases: number of keyspaces.
    :param clock: wall-clock seconds for expiry (tests inject one).
    :param compact_ratio: with a journal, snapshot (and start a new journal)
        once the journal is this many times the last snapshot's size.
    :param compact_min_bytes: ... and at least this large (default 4 MiB).
    :param sweep_interval: seconds between background expiry sweeps; ``None``
        disables the thread.
    :param save_on_close: without a journal, whether ``close()`` publishes
        unsaved changes; by default it does (``snapkv run --dir`` passes
        ``False`` to keep the seed contract). Refused with a journal.
    :param storage_options: with a URL, obstore's options over the
        environment's (``endpoint``, ``region``, ``allow_http``, ...).
    :param takeover: with a URL, open even while another live writer holds
        the prefix; that writer is fenced (its next write raises
        :class:`~snapkv.errors.StoreFencedError`).
    :param replicate: with a directory, an object-store URL to ship its
        snapshots and journal to continuously (``store.replication`` reports
        the lag; an unreachable bucket never blocks or fails a write).
    :param replicate_interval: with ``replicate``, seconds the bucket may lag.
    :param retention: with a URL, seconds old snapshots and journal
        segments are kept for point-in-time restore (default 24 hours).
        With a URL the journal is acknowledged once its segment is stored:
        ``fsync="always"`` loses no acknowledged write, ``everysec`` at most
        about a second, ``no`` everything since the last rotation.
    :raises TypeError: an argument of the wrong type (nothing was touched).
    :raises ValueError: an argument out of range, or a journal option
        (``fsync``, ``compact_ratio``, ``compact_min_bytes``) other than its
        default with ``journal=False`` (nothing was touched).
    :raises MediumError: ``directory`` is a file, or its parent does not
        exist, or it cannot be created, locked or read.
    :raises StoreLockedError: another Store, in any process, has the directory open
        (with a URL: a writer with a recent heartbeat holds the prefix).
    :raises CorruptSnapshotError: the newest snapshot is corrupt (and ``fallback`` is off).
    :raises CorruptJournalError: a journal is damaged in the middle (and ``repair`` is off).
    """
    try:
        try:
            path = Path(directory)
        except TypeError:
            kind = type(directory).__name__
            raise TypeError(f"directory must be a str or os.PathLike, not {kind}") from None
        try:
            keep = operator.index(keep)
        except TypeError:
            raise TypeError(f"keep must be an int, not {type(keep).__name__}") from None
        if keep < 0:
            raise ValueError(f"keep must be >= 0, not {keep}")
        for name, flag in (("fallback", fallback), ("repair", repair)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be True or False, not {flag!r}")
        if save_on_close is None:
            save_on_close = not journal
        url = is_object_url(directory)
        _check_object_options(
            url,
            storage_options=storage_options,
            takeover=takeover,
            retention=retention,
            replicate=replicate,
            replicate_interval=replicate_interval,
        )
        check_settings(
            databases=databases,
            clock=clock,
            journal=journal,
            fsync=fsync,
            compact_ratio=compact_ratio,
            compact_min_bytes=compact_min_bytes,
            sweep_interval=sweep_interval,
            save_on_close=save_on_close,
        )
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"snapkv.open(): {exc}") from None
    settings: dict[str, object] = {
        "databases": databases,
        "clock": clock,
        "journal": journal,
        "fsync": fsync,
        "compact_ratio": compact_ratio,
        "compact_min_bytes": compact_min_bytes,
        "sweep_interval": sweep_interval,
        "save_on_close": save_on_close,
    }
    if url:
        return _open_url(
            str(directory),
            settings,
            keep=keep,
            fallback=fallback,
            repair=repair,
            storage_options=storage_options,
            takeover=takeover,
            retention=retention,
        )
    created = _check_directory(path)
    lock_existed = created is False and os.path.lexists(path / LOCK_NAME)
    try:
        medium = FileMedium(path, keep=keep)
    except StoreLockedError:
        raise  # another process created it meanwhile and holds it: not ours to remove
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                path.rmdir()  # only if still empty
        raise
    try:
        store = Store(
            medium,
            databases=databases,
            clock=clock,
            journal=journal,
            fsync=fsync,
            compact_ratio=compact_ratio,
            compact_min_bytes=compact_min_bytes,
            sweep_interval=sweep_interval,
            save_on_close=save_on_close,
        )
        store.restore(fallback=fallback, repair=repair)
    except BaseException:
        try:
            if created:
                _remove_created(path)
            elif not lock_existed:
                _remove_lock(path)
        finally:
            medium.close()
        raise
    if replicate is not None:
        from snapkv.replication import replicate as start  # noqa: PLC0415 - the cloud extra

        try:
            store.replication = start(
                path, replicate, interval=replicate_interval, storage_options=storage_options
            )
        except BaseException:
            store.close()
            raise
    return store


def _check_object_options(
    url: bool,
    *,
    storage_options: Mapping[str, object] | None,
    takeover: object,
    retention: object,
    replicate: object,
    replicate_interval: object,
) -> None:
    """Refuse an object-storage option that does not fit the target, before anything is touched.

    :raises TypeError: an option of the wrong type.
    :raises ValueError: an option that applies to a URL given for a
        directory (or the other way round), or out of range.
    """
    if not isinstance(takeover, bool):
        raise TypeError(f"takeover must be True or False, not {takeover!r}")
    if retention is not None:
        if isinstance(retention, bool) or not isinstance(retention, int | float):
            raise TypeError(f"retention must be a number of seconds, not {retention!r}")
        if not retention >= 0:
            raise ValueError(f"retention must be >= 0 seconds, not {retention}")
    if isinstance(replicate_interval, bool) or not isinstance(replicate_interval, int | float):
        raise TypeError(
            f"replicate_interval must be a number of seconds, not {replicate_interval!r}"
        )
    if not replicate_interval > 0:
        raise ValueError(f"replicate_interval must be > 0 seconds, not {replicate_interval}")
    if replicate is not None:
        if url:
            raise ValueError(
                "replicate= ships a directory; this store is already on object storage"
            )
        if not is_object_url(replicate):
            raise ValueError(
                f"replicate must be an object-store URL (s3://bucket/prefix), not {replicate!r}"
            )
    elif replicate_interval != 1.0:
        raise ValueError("replicate_interval applies with replicate= only")
    if not url:
        given: dict[str, object] = {"takeover": takeover or None, "retention": retention}
        if replicate is None:
            given["storage_options"] = storage_options
        extra = sorted(name for name, value in given.items() if value is not None)
        if extra:
            raise ValueError(f"{', '.join(extra)} apply to object-store URLs only")


def _open_url(
    url: str,
    settings: dict[str, object],
    *,
    keep: int,
    fallback: bool,
    repair: bool,
    storage_options: Mapping[str, object] | None,
    takeover: bool,
    retention: float | None,
) -> Store:
    """``open()`` of an object-store URL: the prefix claimed, a Store on it, restored.

    A refused restore lets the prefix go again (a released manifest), so
    the next opener needs no takeover.
    """
    from snapkv.objstore.medium import DEFAULT_RETENTION, ObjectMedium  # noqa: PLC0415

    try:
        medium: Medium = ObjectMedium.from_url(
            url,
            storage_options=storage_options,
            keep=keep,
            takeover=takeover,
            repair=repair,
            retention=DEFAULT_RETENTION if retention is None else retention,
        )
    except ValueError as exc:
        raise ValueError(f"snapkv.open(): {exc}") from None
    try:
        store = Store(medium, **settings)  # type: ignore[arg-type]
        store.restore(fallback=fallback, repair=repair)
    except BaseException:
        medium.close()
        raise
    return store


def _check_directory(path: Path) -> bool:
    """Refuse a ``path`` open() cannot use, before touching it; return whether open creates it."""
    if path.is_dir():
        return False
    if path.exists() or path.is_symlink():
        what = "is a file, not a directory" if path.is_file() else "is not a directory"
        raise MediumError(f"snapkv.open(): {path} {what}")
    parent = path.parent
    if not parent.is_dir():
        why = "is not a directory" if parent.exists() else "does not exist"
        raise MediumError(
            f"snapkv.open(): cannot create {path}: its parent {parent} {why} "
            "(open() creates the store's directory, not its parents)"
        )
    return True


def _remove_lock(path: Path) -> None:
    """Undo a failed open's lock file in a directory that had none; caller holds its lock.

    Removed while its lock is held; an opener that opened it meanwhile finds
    it gone once it holds the lock, and opens the new one (FileMedium's rule).
    """
    try:
        os.unlink(path / LOCK_NAME)
    except OSError as exc:
        log.warning("cannot remove %s, created by a failed open(): %s", path / LOCK_NAME, exc)


def _remove_created(path: Path) -> None:
    """Undo a failed open's new directory; caller still holds its lock.

    Removed only while it holds nothing but the lock file: anything else
    was written by someone, and is not ours to delete. The lock file goes
    first, while its lock is held, so no other opener can be holding it.
    """
    try:
        names = os.listdir(path)
        if set(names) <= {LOCK_NAME}:
            if names:
                os.unlink(path / LOCK_NAME)
            path.rmdir()
    except OSError as exc:
        log.warning("cannot remove %s, created by a failed open(): %s", path, exc)
