"""Store: a str -> str dict in memory, snapshotted whole to a Medium.

This is the only stateful class of the core. It knows the medium only
through the :class:`~snapkv.media.base.Medium` interface and the bytes only
through :mod:`snapkv.codec`.

Concurrency design (why it is shaped this way):

* Reads take no lock: ``self._data.get(key)`` is one attribute load and one
  atomic C call, and restore/shutdown replace the dict with one attribute
  store, so a reader sees the old or the new dict whole, never a mix.
  (Binding ``get`` directly to the dict's method would save a Python frame,
  but a caller holding ``store.get`` would then read a stale dict after
  every restore; measured, the frame costs 1.3x a bare dict.get.)
* Every mutation takes ``_lock``, always through ``with``: a bare
  ``acquire()`` followed by ``try`` is ~90 ns cheaper but leaves the lock
  held forever if Ctrl-C lands between the two (signals are delivered when
  a call returns). ``shutdown`` holds it while encoding, so
  a write either lands before the snapshot (and is in it) or after the
  store was cleared; no acknowledged write can fall between the two.
* ``save`` copies the keys and the values into two lists under ``_lock``
  (16 bytes an entry; the strings are shared, and a dict copy would cost
  about 40) and encodes them without it, so writers wait for a copy, not
  for the encoding and the fsync.
* ``_publish_lock`` orders publishes and restores, so two concurrent saves
  can never publish an older copy after a newer one.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import ItemsView, Iterator, KeysView, MutableMapping, ValuesView
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NoReturn

from snapkv import codec
from snapkv.errors import CorruptSnapshotError, MediumError, SnapkvError, StoreClosedError
from snapkv.media import FileMedium, Medium, MemoryMedium

__all__ = ["RestoreReport", "Store", "open"]

log = logging.getLogger("snapkv")


@dataclass(frozen=True)
class RestoreReport:
    """What a restore loaded, and what it had to skip to get there."""

    #: The generation loaded, or ``None`` when the medium had no snapshot.
    generation: str | None
    #: Entries now in memory.
    entries: int
    #: ``(generation, reason)`` for each newer snapshot that failed its
    #: checks and was skipped (only ever non-empty with ``fallback=True``).
    skipped: tuple[tuple[str, str], ...] = ()


def _closed(*_args: object, **_kwargs: object) -> NoReturn:
    raise StoreClosedError("the store is closed")


class _ClosedDict(dict[str, str]):
    """Stands in for the data of a closed Store: every access raises StoreClosedError."""

    get = __getitem__ = __setitem__ = __delitem__ = __contains__ = __len__ = __iter__ = _closed
    pop = popitem = setdefault = update = copy = clear = keys = values = items = _closed


_CLOSED = _ClosedDict()
_MISSING: Any = object()


def _checked(key: object, value: object) -> tuple[str, str]:
    """Slow path of set(): accept str subclasses as plain str, refuse anything else."""
    # type(), not isinstance(): an object can fake __class__ (mock.Mock(spec=str) does).
    if not issubclass(type(key), str):
        raise TypeError(f"key must be str, not {type(key).__name__}")
    if not issubclass(type(value), str):
        raise TypeError(f"value must be str, not {type(value).__name__}")
    return str.__str__(key), str.__str__(value)


class Store(MutableMapping[str, str]):
    """A dict of str to str in memory, with whole-store snapshots on a medium.

    ``Store()`` snapshots to memory; :func:`snapkv.open` gives a Store on a
    directory, restored. ``Store(medium)`` starts EMPTY even if the medium
    holds snapshots: call :meth:`restore` first, or the next shutdown will
    publish the empty store as the newest snapshot.

    Safe for concurrent use from several threads: every
    operation is atomic, and a snapshot is a point-in-time view.

    Keys and values are any ``str``: empty, with NUL or separators, emoji,
    lone surrogates. ``get`` and ``set`` are average O(1).
    """

    def __init__(self, medium: Medium | None = None) -> None:
        self._medium: Medium = medium if medium is not None else MemoryMedium()
        self._lock = threading.Lock()
        self._publish_lock = threading.Lock()
        self._closed = False
        #: The report of the last :meth:`restore`, or ``None`` before any.
        self.last_restore: RestoreReport | None = None
        #: The empty dict the last shutdown installed; see __exit__.
        self._emptied: dict[str, str] | None = None
        self._install({})

    def _install(self, data: dict[str, str]) -> None:
        # One attribute store: readers see the old dict or the new one.
        self._data = data

    def _exclusive_dict(self) -> dict[str, str]:
        """The live dict, for a caller that owns this Store outright and may skip the lock.

        Valid until the next shutdown, restore or close, which install another.
        """
        return self._data

    @property
    def medium(self) -> Medium:
        """The medium snapshots are published to."""
        return self._medium

    # ------------------------------------------------------------- the mapping

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        """Return the value of ``key``, or ``default`` if it is missing (never an error).

        Lock-free (see the module docstring). A key that is not a str is
        never present, so it returns ``default`` (an unhashable key raises
        ``TypeError``, as with ``dict.get``).

        :raises StoreClosedError: the store was closed.
        """
        return self._data.get(key, default)

    def set(self, key: str, value: str) -> None:
        """Set ``key`` to ``value``, replacing any previous value.

        :raises TypeError: ``key`` or ``value`` is not a str; nothing is stored.
        :raises StoreClosedError: the store was closed.
        """
        if type(key) is not str or type(value) is not str:
            key, value = _checked(key, value)
        with self._lock:
            self._data[key] = value

    __setitem__ = set

    def __getitem__(self, key: str) -> str:
        """Return the value of ``key``; raises ``KeyError`` if it is missing."""
        return self._data[key]

    def delete(self, key: str) -> bool:
        """Remove ``key``; return whether it was there. A missing key is not an error."""
        with self._lock:
            return self._data.pop(key, _MISSING) is not _MISSING

    def __delitem__(self, key: str) -> None:
        with self._lock:
            del self._data[key]

    # MutableMapping builds these from several calls; here each is one
    # atomic step under the lock, as "every operation is atomic" promises.

    def pop(self, key: str, default: Any = _MISSING) -> Any:
        """Remove ``key`` and return its value, or ``default``; ``KeyError`` without one."""
        with self._lock:
            if default is _MISSING:
                return self._data.pop(key)
            return self._data.pop(key, default)

    def popitem(self) -> tuple[str, str]:
        """Remove and return the most recently set item; ``KeyError`` if the store is empty."""
        with self._lock:
            return self._data.popitem()

    def setdefault(self, key: str, default: str) -> str:
        """Return the value of ``key``, setting it to ``default`` first if it is missing.

        :raises TypeError: ``key`` or ``default`` is not a str; nothing is stored.
        """
        if type(key) is not str or type(default) is not str:
            key, default = _checked(key, default)
        with self._lock:
            return self._data.setdefault(key, default)

    def update(self, other: Any = (), /, **kwargs: str) -> None:
        """Set several keys in one atomic step: all of them, or none if any is not a str.

        Accepts what ``dict.update`` accepts: a mapping, pairs, keywords.

        :raises TypeError: a key or value is not a str; nothing is stored.
        """
        items = dict(other, **kwargs)
        checked = {}
        for key, value in items.items():
            if type(key) is not str or type(value) is not str:
                key, value = _checked(key, value)  # noqa: PLW2901 - normalised in place
            checked[key] = value
        with self._lock:
            self._data.update(checked)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[str]:
        """Iterate over a point-in-time copy of the keys (safe under concurrent writes)."""
        return iter(self.keys())

    def _copy(self) -> dict[str, str]:
        with self._lock:
            return self._data.copy()

    def keys(self) -> KeysView[str]:
        """The keys of a point-in-time copy of the store."""
        return self._copy().keys()

    def values(self) -> ValuesView[str]:
        """The values of a point-in-time copy of the store."""
        return self._copy().values()

    def items(self) -> ItemsView[str, str]:
        """The items of a point-in-time copy of the store."""
        return self._copy().items()

    def clear(self) -> None:
        """Remove every key from memory (the medium is untouched)."""
        with self._lock:
            self._data.clear()

    # ------------------------------------------------------------ persistence

    def save(self) -> None:
        """Publish a snapshot of the whole store without clearing it (like Redis SAVE).

        Writers wait only while the dict is copied; the snapshot is the
        store as of that copy.

        :raises MediumError: publishing failed; memory and older snapshots are unchanged.
        """
        with self._publish_lock:
            with self._lock:
                self._check_open()
                keys, values = list(self._data), list(self._data.values())
            self._medium.publish(codec.iter_encode_columns(keys, values))

    def shutdown(self) -> None:
        """Publish a snapshot of the whole store as one atomic snapshot, then clear memory.

        An empty store publishes a valid empty snapshot. The store stays
        usable afterwards. If publishing fails, memory is left intact.

        :raises MediumError: publishing failed.
        """
        with self._publish_lock, self._lock:
            self._check_open()
            self._medium.publish(codec.iter_encode(self._data))
            published = self._data
            self._emptied = {}
            self._install(self._emptied)
        # ``published`` is freed here, after the locks: writers need not wait
        # while a million strings are deallocated.
        del published

    def restore(self, *, fallback: bool = False) -> RestoreReport:
        """Replace memory with the newest snapshot; empty if the medium has none. Never merges.

        :param fallback: if the newest snapshot fails its checks, load the
            newest older generation that passes them, set the failed ones
            aside (``Medium.quarantine``), and report what was skipped (also
            logged as a warning).
        :raises CorruptSnapshotError: the newest snapshot (with ``fallback``,
            every generation) failed a check; memory is left unchanged.
        :raises MediumError: the medium could not be read; memory is unchanged.
        """
        with self._publish_lock:
            self._check_open()
            report, data = self._load(fallback)
            with self._lock:
                self._install(data)
            self.last_restore = report
            return report

    def _load(self, fallback: bool) -> tuple[RestoreReport, dict[str, str]]:
        skipped: list[tuple[str, str]] = []
        first_error: SnapkvError | None = None
        for generation in self._medium.generations():
            try:
                blob = self._medium.read(generation)
                if blob is None:  # removed since it was listed
                    continue
                data = codec.decode(blob)
            except CorruptSnapshotError as exc:
                error: SnapkvError = exc.located(self._medium.describe(generation))
            except MediumError as exc:  # unreadable: as unusable as corrupt
                error = exc
            else:
                if skipped:
                    skipped = [(name, self._set_aside(name, reason)) for name, reason in skipped]
                    log.warning("restored older snapshot %s instead", generation)
                return RestoreReport(generation, len(data), tuple(skipped)), data
            if not fallback:
                raise error from None
            first_error = first_error or error
            skipped.append((generation, str(error)))
            log.warning("skipping unusable snapshot: %s", error)
        if first_error is not None:
            raise first_error
        return RestoreReport(None, 0), {}

    def _set_aside(self, generation: str, reason: str) -> str:
        # Left in place, a bad generation would stay "newest" and count
        # toward keep, so the next publishes would prune the good generation
        # just loaded. Failing to move it is reported, not fatal: the data
        # was restored.
        try:
            return f"{reason}; moved aside: {self._medium.quarantine(generation)}"
        except MediumError as exc:
            log.warning("cannot set aside %s: %s", generation, exc)
            return f"{reason}; could not be moved aside: {exc}"

    # -------------------------------------------------------------- lifecycle

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError("the store is closed")

    def close(self) -> None:
        """Release the medium (and its directory lock) WITHOUT saving. Idempotent.

        Any later operation raises :class:`StoreClosedError`.
        """
        with self._publish_lock, self._lock:
            if self._closed:
                return
            self._closed = True
            self._install(_CLOSED)
            self._medium.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Shut down (publish, clear) and close, so another process can open the directory.

        The shutdown happens even if the block raised: every write in it was
        acknowledged. It is skipped when nothing was written since an explicit
        ``shutdown()``: publishing that empty memory would only hide, and
        with ``keep`` eventually prune, the snapshot just written.

        If the final shutdown fails, the store is NOT closed: memory stays
        intact and the directory stays locked, so the caller can retry
        ``shutdown()`` (or give up with ``close()``).
        """
        if self._closed:
            return
        data = self._data
        if not (data is self._emptied and not data):
            try:
                self.shutdown()
            except StoreClosedError:
                return  # closed concurrently: nothing left to do
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._data)} keys"
        return f"<Store {state} on {self._medium!r}>"


def open(  # noqa: A001 - snapkv.open mirrors dbm.open and shelve.open
    directory: str | os.PathLike[str], *, keep: int = 1, fallback: bool = False
) -> Store:
    """Open (creating if needed) the store in ``directory`` and restore its newest snapshot.

    :param keep: older snapshot generations to keep for fallback.
    :param fallback: restore the newest *valid* generation if the newest is corrupt.
    :raises StoreLockedError: another Store, in any process, has the directory open.
    :raises CorruptSnapshotError: the newest snapshot is corrupt (and ``fallback`` is off).
    """
    store = Store(FileMedium(directory, keep=keep))
    try:
        store.restore(fallback=fallback)
    except BaseException:
        store.close()
        raise
    return store
