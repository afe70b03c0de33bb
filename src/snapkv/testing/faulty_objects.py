"""An object store that misbehaves on purpose: :class:`FaultyTransport`, for tests.

It wraps any :class:`~snapkv.objstore.client.Transport` (the bare requests
:class:`~snapkv.objstore.client.ObjectClient` retries) and makes requests
fail the ways object storage does, so that the client's retries, the
ambiguous PUT, the shipper's backoff and restore's checks are tested
against the failures themselves, not against a mock of the client:

``reset``
    the connection drops before the request reaches the store (nothing
    happened): :class:`~snapkv.objstore.client.TransientError`.
``throttle``
    the store refuses the request for now (S3's ``503 SlowDown``): nothing
    happened, TransientError.
``lost_reply``
    the request took effect, then the reply was lost (a timeout): a PUT is
    *there* although the caller saw an error, the ambiguous PUT.
``slow``
    the request succeeds after ``slow_seconds``.

Faults come from a ``random.Random(seed)`` with a probability per kind,
so a failing run is replayed exactly from its seed; :meth:`FaultyTransport.script`
queues exact faults for the next requests of one operation, for tests that
need one precise failure; :attr:`FaultyTransport.down` makes every request
fail (an unreachable bucket) until it is cleared. Listings come back
shuffled with ``reorder`` (stores promise no order across pages), and
:attr:`FaultyTransport.injected` counts every fault by kind.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from typing import IO, TypeVar

from snapkv.objstore.client import ObjectInfo, TransientError, Transport

__all__ = ["FAULTS", "OPERATIONS", "FaultyTransport"]

#: The faults a request can be given (see the module docstring).
FAULTS = ("reset", "throttle", "lost_reply", "slow")
#: The transport's operations, as :meth:`FaultyTransport.script` names them.
OPERATIONS = ("put", "upload", "get", "head", "list", "delete")

_T = TypeVar("_T")


class FaultyTransport:
    """A :class:`~snapkv.objstore.client.Transport` that injects faults into ``inner``'s requests.

    :param inner: the transport that does the real work.
    :param seed: the faults' randomness: the same seed, the same faults for
        the same sequence of requests.
    :param rates: probability of each fault kind per request (``{"reset":
        0.1, "lost_reply": 0.05}``); kinds left out never happen at random.
    :param operations: the operations random faults may hit (default: all).
    :param reorder: shuffle every listing.
    :param slow_seconds: how long a ``slow`` request takes longer.
    :param sleep: how a ``slow`` request waits (tests may pass a recorder).
    """

    def __init__(
        self,
        inner: Transport,
        *,
        seed: int = 0,
        rates: Mapping[str, float] | None = None,
        operations: tuple[str, ...] = OPERATIONS,
        reorder: bool = False,
        slow_seconds: float = 0.05,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        unknown = set(rates or {}) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {FAULTS}")
        self.inner = inner
        self.rates = dict(rates or {})
        self.operations = frozenset(operations)
        self.reorder = reorder
        self.slow_seconds = slow_seconds
        #: While true, every request fails before reaching the store.
        self.down = False
        #: Faults injected so far, by kind (``"down"`` for refusals while down).
        self.injected: Counter[str] = Counter()
        #: Requests seen, by operation (each try counts).
        self.calls: Counter[str] = Counter()
        self._rng = random.Random(seed)
        self._sleep = sleep
        self._lock = threading.Lock()
        self._scripted: dict[str, deque[str | None]] = {op: deque() for op in OPERATIONS}

    def script(self, operation: str, *faults: str | None) -> None:
        """Give the next requests of ``operation`` these faults, in order (``None``: no fault)."""
        if operation not in OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}; known: {OPERATIONS}")
        for fault in faults:
            if fault is not None and fault not in FAULTS:
                raise ValueError(f"unknown fault {fault!r}; known: {FAULTS}")
        with self._lock:
            self._scripted[operation].extend(faults)

    def _choose(self, operation: str) -> str | None:
        with self._lock:
            self.calls[operation] += 1
            if self.down:
                self.injected["down"] += 1
                return "down"
            queue = self._scripted[operation]
            if queue:
                fault = queue.popleft()
            elif operation in self.operations:
                fault = next((k for k, p in self.rates.items() if self._rng.random() < p), None)
            else:
                fault = None
            if fault is not None:
                self.injected[fault] += 1
            return fault

    def _request(self, operation: str, call: Callable[[], _T]) -> _T:
        fault = self._choose(operation)
        if fault == "down":
            raise TransientError("connection refused (the store is unreachable)")
        if fault == "reset":
            raise TransientError("connection reset by peer")
        if fault == "throttle":
            raise TransientError(
                "503 Service Unavailable: SlowDown: please reduce your request rate"
            )
        if fault == "slow":
            self._sleep(self.slow_seconds)
        result = call()
        if fault == "lost_reply":
            raise TransientError(f"{operation} timed out waiting for the reply")
        return result

    # -------------------------------------------------------------- Transport

    def put(self, key: str, data: bytes, *, create: bool) -> None:
        self._request("put", lambda: self.inner.put(key, data, create=create))

    def upload(self, key: str, file: IO[bytes]) -> None:
        self._request("upload", lambda: self.inner.upload(key, file))

    def get(self, key: str, start: int | None = None, end: int | None = None) -> bytes:
        return self._request("get", lambda: self.inner.get(key, start, end))

    def head(self, key: str) -> ObjectInfo:
        return self._request("head", lambda: self.inner.head(key))

    def list(self, prefix: str) -> list[ObjectInfo]:
        infos = self._request("list", lambda: self.inner.list(prefix))
        if self.reorder:
            infos = list(infos)
            with self._lock:
                self._rng.shuffle(infos)
        return infos

    def delete(self, key: str) -> None:
        self._request("delete", lambda: self.inner.delete(key))
