"""Keyspace: one numbered namespace of keys in memory, with expiry.

A key holds a ``str`` or a container of :mod:`snapkv.values` (a hash, list,
set or sorted set). The mapping API (``get``, ``set``, ``ks[key]``,
``items()``) is the strings'; a key of another type raises
:class:`~snapkv.errors.WrongTypeError` there, and the containers are reached
through their views (``ks.hashes[key]``, ``ks.lists[key]``, ``ks.sets[key]``,
``ks.zsets[key]``), which read under the lock and write through
:meth:`Keyspace._edit` and :meth:`Keyspace._write`. What does not depend on
the type (delete, expiry, rename, move, copy, ``in``, ``len``, iteration of
the keys) works on every key alike.

The in-memory half of the store, apart from persistence: :class:`Keyspace`
is the mapping API (get/set/delete/..., expiry, rename/move) over one
*space*, a tuple of three objects replaced together: the entries dict, an
``expires`` dict (key -> absolute wall-clock milliseconds, only for keys that
expire) and a heap of ``(expires_at, key)`` that lets the sweeper find due
keys without scanning. :class:`~snapkv.store.Store` is keyspace 0 and owns
the rest: the lock, the clock, the journal writer and the medium, which a
Keyspace reaches through the small :class:`Engine` protocol.

Reads take no lock: ``get`` loads the space tuple once (one attribute load)
and does atomic C dict lookups on it; restore, shutdown and swap replace a
keyspace's space with one attribute store, so a reader sees the old or the
new keyspace whole, never new entries with old expiry times. Every mutation
takes the engine's lock and, with a journal, writes its effect record
before memory changes (``Engine._log``), then waits for durability after
the lock is released (``Engine._commit``).

Expiry works like Redis's: an expired key is invisible to every read at
once (checked against the engine's clock), and its memory is reclaimed by an
incremental sweep that looks at most ``SWEEP_SLICE`` heap entries per lock
hold.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Callable, ItemsView, Iterator, KeysView, MutableMapping, ValuesView
from typing import Any, NoReturn, Protocol

from snapkv import journal as jr
from snapkv import values as vtypes  # not `values`: Keyspace.values() shadows it in the class
from snapkv._binary import U64_MAX
from snapkv.effects import Space, apply_key, new_space, reclaim
from snapkv.errors import StoreClosedError
from snapkv.views import HashView, ListView, SetView, SortedSetView, StreamView, Views

__all__ = ["SWEEP_SLICE", "Engine", "Keyspace", "Space", "reclaim"]

#: Heap entries the sweeper looks at per lock hold: bounds the pause writers see.
SWEEP_SLICE = 64
#: Largest expiry time a snapshot or journal can hold (u64 milliseconds).
_MAX_MS = U64_MAX
#: Bound once: every plain set encodes one (see Keyspace.set).
_set_record = jr.set_record


class Engine(Protocol):
    """What a Keyspace needs of its Store: the lock, the clock and the journal hooks."""

    _lock: Any  # a threading.Lock, or a transaction's HeldLock
    _clock: Callable[[], float]
    _writer: Any
    expired_listener: Callable[[int, list[str]], None] | None
    #: The epoch of a running save (0: none): containers older than it are copied on write.
    _frozen_below: int
    _closed: bool

    def now_ms(self) -> int: ...
    def db(self, index: int) -> Keyspace: ...
    def _check_open(self) -> None: ...
    def _log(self, make: Callable[..., bytes], *args: Any) -> tuple[Any, int] | None: ...
    def _commit(self, ticket: tuple[Any, int] | None) -> None: ...
    def _after_append(self, writer: Any, lsn: int) -> None: ...
    def _wake_sweeper(self) -> None: ...


def _closed(*_args: object, **_kwargs: object) -> NoReturn:
    raise StoreClosedError("the store is closed")


class _ClosedDict(dict[Any, Any]):
    """Stands in for the data of a closed Store: every access raises StoreClosedError."""

    get = __getitem__ = __setitem__ = __delitem__ = __contains__ = __len__ = __iter__ = _closed
    pop = popitem = setdefault = update = copy = clear = keys = values = items = _closed


_CLOSED: Space = (_ClosedDict(), _ClosedDict(), [])
_MISSING: Any = object()
_ABSENT: Any = object()  # delete()'s default for pop(): "no KeyError, tell me it was absent"


_new_space = new_space


def _checked(key: object, value: object) -> tuple[str, str]:
    """Slow path of set(): accept str subclasses as plain str, refuse anything else."""
    # type(), not isinstance(): an object can fake __class__ (mock.Mock(spec=str) does).
    if not issubclass(type(key), str):
        raise TypeError(f"key must be str, not {type(key).__name__}")
    if not issubclass(type(value), str):
        raise TypeError(f"value must be str, not {type(value).__name__}")
    return str.__str__(key), str.__str__(value)


def _checked_key(key: object) -> str:
    if type(key) is str:
        return key
    if not isinstance(key, str):
        raise TypeError(f"key must be str, not {type(key).__name__}")
    return str.__str__(key)


def _duration_ms(seconds: float, what: str) -> int:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise TypeError(f"{what} must be a number of seconds, not {type(seconds).__name__}")
    if not math.isfinite(seconds):
        raise ValueError(f"{what} must be finite, not {seconds}")
    return round(seconds * 1000)


def _epoch_ms(when: float, what: str) -> int:
    ms = _duration_ms(when, what)
    if not 0 < ms <= _MAX_MS:
        raise ValueError(f"{what} {when} is out of range (1 ms after the epoch to 2**64-1 ms)")
    return ms


class Keyspace(MutableMapping[str, str]):
    """One numbered keyspace of a :class:`Store`: a dict of str to str with expiry.

    Get one with ``store.db(n)``; the Store itself is keyspace 0. Every
    operation is atomic and safe from several threads; ``get`` and ``set``
    are average O(1). Keys and values are any ``str``.
    """

    _space: Space
    _views: tuple[
        Views[HashView],
        Views[ListView],
        Views[SetView],
        Views[SortedSetView],
        Views[StreamView],
    ]

    def __init__(self, store: Engine, index: int) -> None:
        self._store = store
        self._index = index
        self._space = _new_space()
        self._make_views()

    def _make_views(self) -> None:
        # Made once: ``store.lists[k]`` on a hot path should not build one each time.
        self._views = (
            Views(self, HashView),
            Views(self, ListView),
            Views(self, SetView),
            Views(self, SortedSetView),
            Views(self, StreamView),
        )

    @property
    def index(self) -> int:
        """This keyspace's number."""
        return self._index

    # ------------------------------------------------------------- reading

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        """Return the value of ``key``, or ``default`` if it is missing or expired.

        Lock-free (see the module docstring). A key that is not a str is
        never present, so it returns ``default`` (an unhashable key raises
        ``TypeError``, as with ``dict.get``).

        :raises WrongTypeError: the key holds a hash, list, set or sorted set.
        :raises StoreClosedError: the store was closed.
        """
        data, expires, _ = self._space
        if expires:
            at = expires.get(key)
            if at is not None and at <= self._store._clock() * 1000:
                return default
        value = data.get(key, default)
        if value.__class__ is str or value is default:
            return value
        raise vtypes.wrong_type(key, value, "string")

    def __getitem__(self, key: str) -> str:
        """Return the value of ``key``; raises ``KeyError`` if it is missing or expired."""
        value = self.get(key, _MISSING)
        if value is _MISSING or value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` exists (holding a value of any type) and has not expired."""
        data, expires, _ = self._space
        if key not in data:
            return False
        at = expires.get(key) if expires else None  # type: ignore[call-overload,unused-ignore]
        return at is None or at > self._store._clock() * 1000

    def __len__(self) -> int:
        """Live keys (expired ones are reclaimed first, so the count is exact)."""
        if self._space[1]:
            with self._store._lock:
                self._reclaim(None)
        return len(self._space[0])

    def __iter__(self) -> Iterator[str]:
        """Iterate over a point-in-time copy of the keys (safe under concurrent writes)."""
        return iter(self.keys())

    def _copy(self) -> dict[str, str]:
        with self._store._lock:
            if self._space[1]:
                self._reclaim(None)
            return self._space[0].copy()

    def keys(self) -> KeysView[str]:
        """The keys of a point-in-time copy of this keyspace."""
        return self._copy().keys()

    def _strings(self) -> dict[str, str]:
        copied = self._copy()
        for key, value in copied.items():
            if value.__class__ is not str:
                raise vtypes.wrong_type(key, value, "string")
        return copied

    def values(self) -> ValuesView[str]:
        """The values of a point-in-time copy of this keyspace.

        :raises WrongTypeError: a key holds a hash, list, set or sorted set
            (as ``self[key]`` would for it).
        """
        return self._strings().values()

    def items(self) -> ItemsView[str, str]:
        """The items of a point-in-time copy of this keyspace.

        :raises WrongTypeError: a key holds a hash, list, set or sorted set.
        """
        return self._strings().items()

    def key_type(self, key: str) -> str | None:
        """What ``key`` holds, in Redis's TYPE words: ``"string"``, ``"hash"``, ``"list"``,
        ``"set"``, ``"zset"``; ``None`` if it is missing or expired."""
        data, expires, _ = self._space
        value = data.get(key)
        if value is None or (expires and self._expired(key, expires)):
            return None
        return vtypes.type_name(value)

    # ------------------------------------------------------- value types

    @property
    def hashes(self) -> Views[HashView]:
        """The hash at a key: ``store.hashes["user:1"]["name"] = "Ada"``."""
        return self._views[0]

    @property
    def lists(self) -> Views[ListView]:
        """The list at a key: ``store.lists["jobs"].append("j1")``."""
        return self._views[1]

    @property
    def sets(self) -> Views[SetView]:
        """The set at a key: ``store.sets["tags"].add("new")``."""
        return self._views[2]

    @property
    def zsets(self) -> Views[SortedSetView]:
        """The sorted set at a key: ``store.zsets["board"]["ada"] = 42.0``."""
        return self._views[3]

    @property
    def streams(self) -> Views[StreamView]:
        """The stream at a key: ``store.streams["events"].add({"kind": "login"})``."""
        return self._views[4]

    def _lookup(self, key: str, kind: vtypes.ValueType) -> Any:
        """The container ``key`` holds (``None``: missing or expired); caller holds the lock.

        :raises WrongTypeError: the key holds another type.
        """
        data, expires, _ = self._space
        value = data.get(key)
        if value is None:
            return None
        if expires and self._expired(key, expires):
            return None
        if value.__class__ is not kind.CLASS:
            raise vtypes.wrong_type(key, value, kind.NAME)
        return value

    def _write(self, ops: list[Any]) -> tuple[Any, int] | None:
        """Journal ``ops`` (decoded effects) as one record, then apply them; caller holds the lock.

        The write path of the value types (and of copy/rename of them): one
        record (a BATCH for several effects, so a multi-key command is all or
        nothing after a crash), then memory changes through
        :func:`snapkv.effects.apply_key`, the function replay uses. An EDIT
        that creates its key (missing, or present but expired) follows a DEL
        of it in the same record, for the reason :meth:`_edit` gives. The
        caller has checked every effect: ``apply_key`` raising here is a bug.
        Returns the ticket for ``Engine._commit``.
        """
        store = self._store
        final: list[Any] = []
        seen: set[tuple[int, str]] = set()  # keys an earlier effect of this record wrote
        for op in ops:
            if op[0] == "edit" and (op[1], op[2]) not in seen:
                data, expires, _ = store.db(op[1])._space
                if op[2] not in data or (expires and self._expired(op[2], expires)):
                    # A container this record creates: see _edit on why replay
                    # must drop whatever the key held before.
                    final.append(("del", op[1], op[2]))
            seen.add((op[1], op[2]))
            if op[0] == "rename":
                seen.add((op[3], op[4]))
            final.append(op)
        frozen = store._frozen_below
        if getattr(store._writer, "per_effect", False):
            # A transaction's recorder: its record is one BATCH in the end
            # anyway, and effect by effect it takes each inverse just before
            # its effect applies (an inverse taken before the whole batch
            # would be wrong for a second effect on one key).
            ticket = None
            for op in final:
                store._log(jr.encode, op)
                self._apply(op, frozen)
            return ticket
        if len(final) == 1:
            ticket = store._log(jr.encode, final[0])
        else:
            ticket = store._log(lambda: jr.batch_record([jr.encode(op) for op in final]))
        for op in final:
            self._apply(op, frozen)
        return ticket

    def _apply(self, op: Any, frozen: int) -> None:
        apply_key(self._space_of, op, frozen)
        if op[0] == "rename" or (op[0] == "put" and op[5]):
            self._store._wake_sweeper()  # an expiry time may have arrived in a keyspace

    def _edit(
        self, key: str, kind: vtypes.ValueType, opcode: int, items: tuple[Any, ...]
    ) -> tuple[Any, int] | None:
        """:meth:`_write` of one EDIT of ``key`` here: the path of every single-key container write.

        The same rules as ``_write`` and ``effects.apply_key`` (record first,
        copy on write, an emptied key removed), spelt out for the one-effect
        case: the generic path's loop and dispatch cost as much as the effect.
        The caller holds the lock and has checked the type (``_lookup``).

        A write that creates the key (missing, or present but expired) is
        journaled as a PUT of the new value, not as an EDIT: the journal may
        still hold an older value of the key that expired and was reclaimed
        without a record (expiry is never journaled: replay drops expired
        keys by their absolute times, at its end), and an EDIT replayed onto
        it would merge with it and inherit its expiry. A PUT replaces it.
        """
        store = self._store
        data, expires, _ = self._space
        value = data.get(key)
        if value is not None and expires and self._expired(key, expires):
            value = None
        if value is None:
            result = kind.apply(None, opcode, items)
            if result is None:
                return None  # nothing to create (an effect that adds nothing)
            ticket = store._log(jr.put_record, self._index, key, kind.CODE, kind.flat(result), 0)
            data[key] = result
            if expires:
                expires.pop(key, None)
            return ticket
        writer = store._writer
        if writer is None:
            if store._closed:
                _closed()
            ticket = None
        else:
            ticket = (
                writer,
                writer.append(jr.edit_record(self._index, key, kind.CODE, opcode, items)),
            )
        if value.epoch < store._frozen_below:
            value = data[key] = kind.copy(value)
        result = kind.apply(value, opcode, items)
        if result is None:
            del data[key]
            if expires:
                expires.pop(key, None)
        elif result is not value:
            data[key] = result
        return ticket

    def _space_of(self, db: int) -> Space:
        return self._store.db(db)._space

    def expiring_count(self) -> int:
        """Keys with an expiry time (Redis INFO's ``expires=``); may count due, unswept keys."""
        return len(self._space[1])

    def random_key(self) -> str | None:
        """A key chosen at random, or ``None`` if the keyspace is empty. O(n) in the worst case."""
        with self._store._lock:
            if self._space[1]:
                self._reclaim(None)
            data = self._space[0]
            if not data:
                return None
            return next(itertools.islice(iter(data), random.randrange(len(data)), None))

    # --------------------------------------------------------------- expiry

    def _live_expiry(self, key: str) -> int | None:
        """Expiry of ``key`` in ms (``None`` if none); ``KeyError`` if missing or expired."""
        data, expires, _ = self._space
        at = expires.get(key) if expires else None
        if key not in data or (at is not None and at <= self._store._clock() * 1000):
            raise KeyError(key)
        return at

    def expiry_ms(self, key: str) -> int | None:
        """Absolute expiry time of ``key`` in epoch milliseconds; ``None`` if it never expires.

        :raises KeyError: the key is missing (or already expired).
        """
        return self._live_expiry(key)

    def expire_time(self, key: str) -> float | None:
        """Absolute expiry time of ``key`` in epoch seconds; ``None`` if it never expires.

        :raises KeyError: the key is missing (or already expired).
        """
        at = self._live_expiry(key)
        return None if at is None else at / 1000

    def ttl(self, key: str) -> float | None:
        """Seconds until ``key`` expires; ``None`` if it never expires.

        :raises KeyError: the key is missing (or already expired): a distinct
            answer from "never expires".
        """
        at = self._live_expiry(key)
        if at is None:
            return None
        return max(0.0, (at - self._store._clock() * 1000) / 1000)

    def expire(self, key: str, ttl: float) -> bool:
        """Make ``key`` expire ``ttl`` seconds from now; return whether the key exists.

        A ``ttl`` of zero or less deletes the key at once, as in Redis.
        """
        return self._set_expiry(key, self._store.now_ms() + _duration_ms(ttl, "ttl"))

    def expire_at(self, key: str, when: float) -> bool:
        """Make ``key`` expire at ``when`` (epoch seconds); return whether the key exists.

        A time in the past deletes the key at once.
        """
        at = _duration_ms(when, "expire_at")
        return self._set_expiry(key, _epoch_ms(when, "expire_at") if at > 0 else 0)

    def _set_expiry(self, key: str, at: int) -> bool:
        key = _checked_key(key)
        if at > _MAX_MS:
            raise ValueError(f"expiry {at} ms is out of range (at most 2**64-1 ms)")
        store = self._store
        with store._lock:
            data, expires, heap = self._space
            if key not in data or self._expired(key, expires):
                return False
            if at <= store.now_ms():
                ticket = store._log(jr.delete_record, self._index, key)
                del data[key]
                expires.pop(key, None)
            else:
                ticket = store._log(jr.expire_record, self._index, key, at)
                expires[key] = at
                self._push(heap, at, key)
        store._commit(ticket)
        return True

    def persist(self, key: str) -> bool:
        """Remove the expiry of ``key``; return whether it had one (and still exists)."""
        key = _checked_key(key)
        store = self._store
        with store._lock:
            expires = self._space[1]
            if key not in expires or self._expired(key, expires):
                return False
            ticket = store._log(jr.expire_record, self._index, key, 0)
            del expires[key]  # its heap entry goes stale and is skipped later
        store._commit(ticket)
        return True

    def _expired(self, key: str, expires: dict[str, int]) -> bool:
        at = expires.get(key)
        return at is not None and at <= self._store._clock() * 1000

    def _push(self, heap: list[tuple[int, str]], at: int, key: str) -> None:
        heapq.heappush(heap, (at, key))
        expires = self._space[1]
        # Stale entries (expiry changed or removed) accumulate; rebuild
        # when they outnumber the live ones, so the heap stays O(live).
        if len(heap) > 2 * len(expires) + 64:
            heap[:] = [(t, k) for k, t in expires.items()]
            heapq.heapify(heap)
        self._store._wake_sweeper()

    def _reclaim(self, limit: int | None) -> tuple[int, bool]:
        """Remove due keys; caller holds the lock. Returns (keys removed, more may be due).

        Not journaled: the journal holds absolute expiry times, so replay
        drops these keys by itself. See :func:`reclaim`. Inside a
        transaction (a reading call of its own thread reclaims too) the
        recorder is told what went, so a rollback puts it back.
        """
        store = self._store
        writer = store._writer
        told = getattr(writer, "per_effect", False)
        listener = store.expired_listener
        if told or listener is not None:
            gone: list[tuple[str, Any, int]] = []
            result = reclaim(self._space, store._clock() * 1000, limit, gone)
            if told:
                writer.reclaimed(self._space, gone)
            if listener is not None and gone:
                listener(self._index, [key for key, _value, _at in gone])
            return result
        return reclaim(self._space, store._clock() * 1000, limit)

    # -------------------------------------------------------------- writing

    def set(
        self,
        key: str,
        value: str,
        *,
        ttl: float | None = None,
        expire_at: float | None = None,
        keep_ttl: bool = False,
    ) -> None:
        """Set ``key`` to ``value``, replacing any previous value.

        :param ttl: expire the key this many seconds from now (> 0).
        :param expire_at: expire the key at this absolute time (epoch seconds).
        :param keep_ttl: keep the key's current expiry (by default a plain
            set clears it, as Redis's SET does).
        :raises TypeError: ``key`` or ``value`` is not a str; nothing is stored.
        :raises ValueError: a bad ttl/expiry, or more than one of them given.
        :raises StoreShutDownError: the store was shut down with a journal on
            and not yet restored.
        :raises MediumError: the journal refused the write (nothing is stored),
            or with ``fsync="always"`` could not make it durable (the write is
            in memory and the journal file but unconfirmed; the journal then
            refuses further writes until ``save()`` or ``restore()``).
        :raises StoreClosedError: the store was closed.
        """
        if type(key) is not str or type(value) is not str:
            key, value = _checked(key, value)
        if ttl is None and expire_at is None and not keep_ttl:
            # The path of every plain set, journaled or not: the rules are
            # Engine._log's and _commit's (record before memory, under the
            # lock; durability after it), spelt out inline because two more
            # calls and a ticket tuple cost ~10% of a journaled set.
            store = self._store
            with store._lock:
                writer = store._writer
                if writer is not None:
                    lsn = writer.append(_set_record(self._index, key, value, 0))
                data, expires, _ = self._space
                data[key] = value
                if expires:
                    expires.pop(key, None)
            if writer is not None:
                store._after_append(writer, lsn)
            return
        self._set_expiring(key, value, ttl, expire_at, keep_ttl)

    __setitem__ = set

    def _set_expiring(
        self, key: str, value: str, ttl: float | None, expire_at: float | None, keep_ttl: bool
    ) -> None:
        if (ttl is not None) + (expire_at is not None) + bool(keep_ttl) > 1:
            raise ValueError("give at most one of ttl, expire_at and keep_ttl")
        store = self._store
        at = None
        if ttl is not None:
            duration = _duration_ms(ttl, "ttl")
            if duration <= 0:
                raise ValueError(f"ttl must be > 0 seconds, not {ttl}")
        elif expire_at is not None:
            at = _epoch_ms(expire_at, "expire_at")
        with store._lock:
            data, expires, heap = self._space
            if ttl is not None:
                at = store.now_ms() + duration
                if at > _MAX_MS:
                    raise ValueError(f"ttl {ttl} is out of range")
            elif keep_ttl:
                at = None if self._expired(key, expires) else expires.get(key)
            ticket = store._log(jr.set_record, self._index, key, value, at or 0)
            data[key] = value
            if at is None:
                expires.pop(key, None)
            else:
                expires[key] = at
                self._push(heap, at, key)
        store._commit(ticket)

    def delete(self, key: str) -> bool:
        """Remove ``key``; return whether it was there. A missing key is not an error."""
        return self.pop(key, _ABSENT) is not _ABSENT

    def __delitem__(self, key: str) -> None:
        self.pop(key)

    # MutableMapping builds these from several calls; here each is one
    # atomic step under the lock, as "every operation is atomic" promises.

    def pop(self, key: str, default: Any = _MISSING) -> Any:
        """Remove ``key`` and return its value, or ``default``; ``KeyError`` without one.

        :raises WrongTypeError: the key holds another type than a string (it
            stays; :meth:`delete` removes a key of any type).
        """
        store = self._store
        with store._lock:
            data, expires, _ = self._space
            if key not in data or (expires and self._expired(key, expires)):
                if default is _MISSING:
                    raise KeyError(key)
                return default
            if default is not _ABSENT and data[key].__class__ is not str:
                raise vtypes.wrong_type(key, data[key], "string")
            ticket = store._log(jr.delete_record, self._index, key)
            value = data.pop(key)
            if expires:
                expires.pop(key, None)
        store._commit(ticket)
        return value

    def popitem(self) -> tuple[str, str]:
        """Remove and return the most recently set item; ``KeyError`` if the keyspace is empty."""
        store = self._store
        with store._lock:
            if self._space[1]:
                self._reclaim(None)
            data, expires, _ = self._space
            if not data:
                raise KeyError("popitem(): keyspace is empty")
            key = next(reversed(data))
            if data[key].__class__ is not str:
                raise vtypes.wrong_type(key, data[key], "string")
            ticket = store._log(jr.delete_record, self._index, key)
            item = data.popitem()
            expires.pop(key, None)
        store._commit(ticket)
        return item

    def setdefault(self, key: str, default: str) -> str:
        """Return the value of ``key``, setting it to ``default`` first if it is missing.

        :raises TypeError: ``key`` or ``default`` is not a str; nothing is stored.
        """
        if type(key) is not str or type(default) is not str:
            key, default = _checked(key, default)
        store = self._store
        with store._lock:
            data, expires, _ = self._space
            if key in data and not (expires and self._expired(key, expires)):
                value = data[key]
                if value.__class__ is not str:
                    raise vtypes.wrong_type(key, value, "string")
                return value
            ticket = store._log(jr.set_record, self._index, key, default, 0)
            data[key] = default
            if expires:
                expires.pop(key, None)
        store._commit(ticket)
        return default

    def update(self, other: Any = (), /, **kwargs: str) -> None:
        """Set several keys in one atomic step: all of them, or none if any is not a str.

        Accepts what ``dict.update`` accepts: a mapping, pairs, keywords.
        With a journal, the keys are one record: after a crash, all or none.

        :raises TypeError: a key or value is not a str; nothing is stored.
        """
        items = dict(other, **kwargs)
        checked = {}
        for key, value in items.items():
            if type(key) is not str or type(value) is not str:
                key, value = _checked(key, value)  # noqa: PLW2901 - normalised in place
            checked[key] = value
        if not checked:
            return
        store = self._store
        with store._lock:
            ticket = None
            if store._writer is not None:
                records = [jr.set_record(self._index, k, v, 0) for k, v in checked.items()]
                ticket = store._log(jr.batch_record, records)
            data, expires, _ = self._space
            data.update(checked)
            if expires:
                for key in checked:
                    expires.pop(key, None)
        store._commit(ticket)

    set_many = update

    def clear(self) -> None:
        """Remove every key of this keyspace from memory (and, with a journal, for good)."""
        store = self._store
        with store._lock:
            store._check_open()
            ticket = store._log(jr.clear_record, self._index)
            self._space = _new_space()
        store._commit(ticket)

    def copy_key(
        self, source: str, target: str, *, db: int | None = None, replace: bool = False
    ) -> bool:
        """Copy the value of ``source`` (any type) and its expiry to ``target``, as Redis's COPY.

        ``db`` is the target keyspace (default: this one). Returns False,
        changing nothing, if ``source`` is missing or ``target`` exists and
        ``replace`` is false. A container is copied whole: O(its size).

        :raises ValueError: ``source`` and ``target`` are the same key.
        """
        source, target = _checked_key(source), _checked_key(target)
        store = self._store
        dest = self if db is None else store.db(db)
        if dest is self and source == target:
            raise ValueError("source and destination objects are the same")
        with store._lock:
            data, expires, _ = self._space
            if source not in data or (expires and self._expired(source, expires)):
                return False
            if not replace and target in dest:
                return False
            value, at = data[source], expires.get(source) or 0
            if value.__class__ is str:
                ticket = self._write([("set", dest._index, target, value, at)])
            else:
                kind = vtypes.BY_CLASS[value.__class__]
                ticket = self._write(
                    [("put", dest._index, target, kind.CODE, kind.flat(value), at)]
                )
        store._commit(ticket)
        return True

    def restore_value(
        self, key: str, value: Any, expire_at_ms: int | None = None, *, replace: bool = True
    ) -> str:
        """Put ``value`` (a ``str`` or a container of :mod:`snapkv.values`) at ``key`` with an
        absolute expiry, as one record: RESTORE's and ``snapkv migrate``'s write.

        The value is taken as it is (not copied): the caller hands over a
        value it made. Returns what happened, in Redis's RESTORE terms:
        ``"refused"`` (``key`` exists and ``replace`` is false: nothing
        changed), ``"expired"`` (``expire_at_ms`` is already past: the value
        is not stored), ``"deleted"`` (already past, and the key it replaces
        is deleted), ``"replaced"`` or ``"created"``.
        """
        key = _checked_key(key)
        store = self._store
        with store._lock:
            store._check_open()
            exists = key in self
            if exists and not replace:
                return "refused"
            now = store.now_ms()
            at = expire_at_ms or 0
            ops: list[Any] = [("del", self._index, key)] if exists else []
            if at and (at <= now or at > U64_MAX >> 1):
                if not exists:
                    return "expired"
                outcome = "deleted"
            elif value.__class__ is str:
                outcome = "replaced" if exists else "created"
                ops.append(("set", self._index, key, value, at))
            else:
                outcome = "replaced" if exists else "created"
                kind = vtypes.BY_CLASS[value.__class__]
                ops.append(("put", self._index, key, kind.CODE, kind.flat(value), at))
            ticket = self._write(ops)
        store._commit(ticket)
        return outcome

    def rename(self, source: str, target: str) -> None:
        """Rename ``source`` to ``target``, replacing it; the expiry moves along.

        :raises KeyError: ``source`` is missing.
        """
        source, target = _checked_key(source), _checked_key(target)
        store = self._store
        with store._lock:
            data, expires, _ = self._space
            if source not in data or (expires and self._expired(source, expires)):
                raise KeyError(source)
            if source == target:
                return
            ticket = self._transfer(source, self, target)
        store._commit(ticket)

    def move(self, key: str, db: int) -> bool:
        """Move ``key`` (with its expiry) to keyspace ``db``, as Redis's MOVE.

        Returns False, changing nothing, if the key is missing here or
        already present there.
        """
        key = _checked_key(key)
        store = self._store
        target = store.db(db)
        if target is self:
            raise ValueError("source and destination keyspaces are the same")
        with store._lock:
            data, expires, _ = self._space
            if key not in data or (expires and self._expired(key, expires)):
                return False
            tdata, texpires, _ = target._space
            if key in tdata and not (texpires and target._expired(key, texpires)):
                return False
            ticket = self._transfer(key, target, key)
        store._commit(ticket)
        return True

    def _transfer(self, source: str, target: Keyspace, key: str) -> tuple[Any, int] | None:
        """Move ``source`` here to ``key`` in ``target`` (maybe self), expiry included.

        The caller holds the lock and has checked both ends. One BATCH
        record, so after a crash the key is in one place, never two or none.
        """
        data, expires, _ = self._space
        value, at = data[source], expires.get(source)
        if value.__class__ is not str:
            # One RENAME record whatever the container's size.
            return self._write([("rename", self._index, source, target._index, key)])
        ticket = self._store._log(
            lambda: jr.batch_record(
                [
                    jr.delete_record(self._index, source),
                    jr.set_record(target._index, key, value, at or 0),
                ]
            )
        )
        del data[source]
        expires.pop(source, None)
        tdata, texpires, theap = target._space
        tdata[key] = value
        if at is None:
            texpires.pop(key, None)
        else:
            texpires[key] = at
            target._push(theap, at, key)
        return ticket

    def __repr__(self) -> str:
        return f"<Keyspace {self._index} of {self._store!r}>"
