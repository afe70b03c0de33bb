"""The one door to object storage: retries, the ambiguous PUT, and counters.

Every snapkv module that touches a bucket goes through :class:`ObjectClient`,
so retrying, counting and the rules below exist once. The client stands on a
:class:`Transport`: the bare operations, one request each, that either
succeed, raise one of the three signals of this module, or raise anything
else (a permanent failure). :class:`ObstoreTransport` is the real one (over
an obstore store); a test wraps a transport to inject faults (failures
before and after a PUT took effect, timeouts, throttling, slow responses,
reordered listings), and the client above cannot tell the difference.

Rules:

* **Retries.** :class:`TransientError` (throttling such as S3's ``503
  SlowDown``, any 5xx, timeouts, connection resets) is retried with
  exponential backoff and full jitter (AWS's "Exponential Backoff And
  Jitter": sleep ``uniform(0, min(cap, base * 2**attempt))``), at most
  ``RetryPolicy.attempts`` tries and ``RetryPolicy.deadline`` seconds; each
  retry is counted in :attr:`ObjectClient.stats`. Anything else is
  permanent and raised at once as :class:`~snapkv.errors.MediumError`
  naming the object.
* **The ambiguous PUT.** A PUT that timed out may have taken effect. Every
  object snapkv writes is either created if absent at a name never reused,
  or (a snapshot's body) written at a name only its writer uses, so a
  retry is harmless: :meth:`ObjectClient.create` that finds the object
  already there reads it and compares bytes. The same bytes: it was this
  request that landed (or an identical one), and the create succeeded.
  Different bytes: someone else holds the name, and the caller learns whose
  bytes they are (for a manifest or a segment: another writer, see
  :mod:`snapkv.objstore.medium`'s fencing).
* **Bounded memory.** :meth:`ObjectClient.stream` reads an object in ranged
  GETs of ``chunk_size`` bytes, each retried on its own; :meth:`ObjectClient.upload`
  sends a seekable file (multipart where the store does it), rewound on a retry.

obstore is imported only when an :class:`ObstoreTransport` is made.
"""

from __future__ import annotations

import contextlib
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, Protocol, TypeVar

from snapkv.errors import MediumError

__all__ = [
    "ClientStats",
    "NotFoundSignal",
    "ObjectClient",
    "ObjectExistsSignal",
    "ObjectInfo",
    "ObstoreTransport",
    "RetryPolicy",
    "TransientError",
    "Transport",
]

_T = TypeVar("_T")


class TransientError(Exception):
    """Transport signal: a failure worth retrying (throttled, 5xx, timeout, reset).

    It may have taken effect (a PUT whose reply was lost): the client's
    rules make a retry harmless.
    """


class NotFoundSignal(Exception):
    """Transport signal: the object does not exist."""


class ObjectExistsSignal(Exception):
    """Transport signal: a create-if-absent PUT found the name taken (S3's 412, GCS's 412, ...)."""


@dataclass(frozen=True)
class ObjectInfo:
    """One object as a listing or a HEAD shows it; ``name`` is relative to the client's prefix."""

    name: str
    size: int
    #: Last modification, epoch seconds (the store's clock).
    modified: float
    etag: str | None = None


class Transport(Protocol):
    """The bare operations, one request each, on full object keys.

    Each raises :class:`TransientError`, :class:`NotFoundSignal` or
    :class:`ObjectExistsSignal` for those outcomes, and any other exception
    for a permanent failure.
    """

    def put(self, key: str, data: bytes, *, create: bool) -> None:
        """Store ``data`` at ``key`` atomically; with ``create``, only if ``key`` is absent."""
        ...

    def upload(self, key: str, file: IO[bytes]) -> None:
        """Store the rest of ``file`` at ``key`` (overwriting), in parts if large; atomic."""
        ...

    def get(self, key: str, start: int | None = None, end: int | None = None) -> bytes:
        """The object's bytes, or bytes ``start`` to ``end`` (exclusive) of it."""
        ...

    def head(self, key: str) -> ObjectInfo:
        """The object's size and time (``name`` is the full key)."""
        ...

    def list(self, prefix: str) -> list[ObjectInfo]:
        """Every object whose key starts with ``prefix`` (``name`` the full key), any order."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key`` (no error if it is already gone)."""
        ...


#: An HTTP status in obstore's error text ("... status code: 503 Service Unavailable").
_STATUS = re.compile(r"status(?: code)?:? (\d{3})\b", re.IGNORECASE)
#: Words of a failure below HTTP (no status at all) worth retrying: the request
#: may not have reached the store, or its reply was lost.
_TRANSPORT_WORDS = (
    "timed out",
    "timeout",
    "connection",
    "reset by peer",
    "broken pipe",
    "error sending request",
    "request or response body error",
    "slowdown",
    "slow down",
)


_XML_ERROR = re.compile(r"<Code>(.*?)</Code>.*?<Message>(.*?)</Message>", re.DOTALL)


def brief(error: BaseException) -> str:
    """An obstore error in one line: no debug dump, an S3 XML error as its code and message."""
    text = str(error).split("\n\nDebug source:", 1)[0]
    xml = _XML_ERROR.search(text)
    if xml:
        text = f"{text.split('<?xml', 1)[0].rstrip(': ')}: {xml.group(1)}: {xml.group(2)}"
    text = " ".join(text.split())
    return text if len(text) <= 400 else text[:397] + "..."


def _transient(text: str) -> bool:
    """Whether an obstore error's text says the failure is worth retrying.

    With an HTTP status: 5xx (S3's ``503 SlowDown`` among them), 408 and
    429, nothing else (a 404 for a missing bucket is final). Without one:
    a transport failure (timeout, reset, refused connection).
    """
    match = _STATUS.search(text)
    if match:
        code = int(match.group(1))
        return code >= 500 or code in (408, 429)
    lowered = text.lower()
    return any(word in lowered for word in _TRANSPORT_WORDS)


class ObstoreTransport:
    """:class:`Transport` over an obstore store; obstore's errors mapped to the signals."""

    def __init__(self, store: Any) -> None:
        import obstore  # noqa: PLC0415 - the cloud extra, only when a bucket is used
        import obstore.exceptions as obx  # noqa: PLC0415

        self._obs = obstore
        self._x = obx
        self.store = store

    def _call(self, fn: Callable[[], _T]) -> _T:
        x = self._x
        try:
            return fn()
        except (x.AlreadyExistsError, x.PreconditionError) as exc:
            raise ObjectExistsSignal(str(exc)) from exc
        except (x.NotFoundError, FileNotFoundError) as exc:
            raise NotFoundSignal(str(exc)) from exc
        except (x.PermissionDeniedError, x.UnauthenticatedError, x.NotSupportedError):
            raise
        except (ConnectionError, TimeoutError) as exc:
            raise TransientError(str(exc)) from exc
        except Exception as exc:
            if _transient(str(exc)):
                raise TransientError(brief(exc)) from exc
            raise

    def put(self, key: str, data: bytes, *, create: bool) -> None:
        mode = "create" if create else "overwrite"
        self._call(lambda: self._obs.put(self.store, key, data, mode=mode, use_multipart=False))

    def upload(self, key: str, file: IO[bytes]) -> None:
        self._call(lambda: self._obs.put(self.store, key, file))

    def get(self, key: str, start: int | None = None, end: int | None = None) -> bytes:
        if start is None:
            return self._call(lambda: bytes(self._obs.get(self.store, key).bytes()))
        stop = end if end is not None else start + 1
        obs = self._obs
        return self._call(lambda: bytes(obs.get_range(self.store, key, start=start, end=stop)))

    def head(self, key: str) -> ObjectInfo:
        return _info(self._call(lambda: self._obs.head(self.store, key)))

    def list(self, prefix: str) -> list[ObjectInfo]:
        def run() -> list[ObjectInfo]:
            out: list[ObjectInfo] = []
            for chunk in self._obs.list(self.store, prefix, chunk_size=1000):
                out.extend(_info(meta) for meta in chunk)
            return out

        return self._call(run)

    def delete(self, key: str) -> None:
        with contextlib.suppress(NotFoundSignal):
            self._call(lambda: self._obs.delete(self.store, key))


def _info(meta: Any) -> ObjectInfo:
    modified = meta["last_modified"]
    seconds = modified.timestamp() if isinstance(modified, datetime) else float(modified)
    return ObjectInfo(meta["path"], int(meta["size"]), seconds, meta.get("e_tag"))


@dataclass(frozen=True)
class RetryPolicy:
    """How transient failures are retried: full-jitter exponential backoff, bounded."""

    #: Tries per operation, the first included.
    attempts: int = 8
    #: Seconds: the first backoff's cap; each retry doubles it ...
    base: float = 0.05
    #: ... up to this many seconds.
    cap: float = 2.0
    #: Give up once this many seconds have passed since the first try.
    deadline: float = 60.0


@dataclass
class ClientStats:
    """What a client sent and received, counted per request (each try counts)."""

    requests: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    failures: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0

    @property
    def total_requests(self) -> int:
        """Every request made, of every kind."""
        return sum(self.requests.values())

    def copy(self) -> ClientStats:
        """A snapshot of the counters (they keep moving)."""
        return ClientStats(
            dict(self.requests), self.retries, self.failures, self.bytes_sent, self.bytes_received
        )


class ObjectClient:
    """Retrying, counting access to the objects under one prefix (names are relative to it).

    Thread-safe: counters are updated under a lock; requests run in the
    calling thread. ``describe(name)`` is what every message calls the object.

    :param transport: the bare operations (:class:`ObstoreTransport` for a real store).
    :param prefix: the database's prefix in the store (no leading or trailing ``/``).
    :param url: the prefix's URL, for messages.
    :param sleep: how to wait between tries (tests pass a recorder).
    :param rng: jitter's randomness (tests seed it).
    """

    def __init__(
        self,
        transport: Transport,
        prefix: str = "",
        *,
        url: str = "",
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.transport = transport
        self.prefix = prefix.strip("/")
        self.url = url.rstrip("/") or self.prefix
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self.stats = ClientStats()

    @classmethod
    def for_location(cls, location: Any, **kwargs: Any) -> ObjectClient:
        """A client over :class:`snapkv.objstore.url.Location` ``location``'s store and prefix."""
        return cls(ObstoreTransport(location.store), location.prefix, url=location.url, **kwargs)

    def key(self, name: str) -> str:
        """The full key of ``name``."""
        return f"{self.prefix}/{name}" if self.prefix else name

    def describe(self, name: str = "") -> str:
        """``name`` as a URL, for messages."""
        return f"{self.url}/{name}" if name else self.url

    # ------------------------------------------------------------- plumbing

    def _count(self, kind: str, sent: int = 0) -> None:
        with self._lock:
            self.stats.requests[kind] = self.stats.requests.get(kind, 0) + 1
            self.stats.bytes_sent += sent

    def _received(self, n: int) -> None:
        with self._lock:
            self.stats.bytes_received += n

    def _retry(self, kind: str, name: str, call: Callable[[], _T], sent: int = 0) -> _T:
        """``call`` until it succeeds or fails for good; the not-found and exists signals pass."""
        start = time.monotonic()
        attempt = 0
        while True:
            self._count(kind, sent)
            try:
                return call()
            except TransientError as exc:
                attempt += 1
                elapsed = time.monotonic() - start
                if attempt >= self.policy.attempts or elapsed >= self.policy.deadline:
                    with self._lock:
                        self.stats.failures += 1
                    raise MediumError(
                        f"cannot {kind} {self.describe(name)}: {exc} "
                        f"(gave up after {attempt} tries in {elapsed:.1f} s)"
                    ) from exc
                with self._lock:
                    self.stats.retries += 1
                ceiling = min(self.policy.cap, self.policy.base * 2 ** (attempt - 1))
                self._sleep(self._rng.uniform(0, ceiling))
            except (NotFoundSignal, ObjectExistsSignal):
                raise
            except Exception as exc:
                with self._lock:
                    self.stats.failures += 1
                raise MediumError(f"cannot {kind} {self.describe(name)}: {brief(exc)}") from exc

    # ----------------------------------------------------------- operations

    def create(self, name: str, data: bytes) -> bytes | None:
        """Create ``name`` holding ``data`` if absent; ``None`` once ``data`` is what it holds.

        Returns the bytes of the object already there when they differ from
        ``data`` (another writer holds the name; nothing was changed). The
        same bytes count as success: a retried request that had landed, or
        an identical write (see the module docstring).

        :raises MediumError: the store failed for good.
        """
        key = self.key(name)
        try:
            self._retry("put", name, lambda: self.transport.put(key, data, create=True), len(data))
        except ObjectExistsSignal:
            there = self.get(name)
            if there is None:  # deleted between the two requests: not ours to fight over
                raise MediumError(
                    f"cannot create {self.describe(name)}: it existed, then vanished"
                ) from None
            return None if there == data else there
        return None

    def put(self, name: str, data: bytes) -> None:
        """Store ``data`` at ``name``, overwriting (only for names one writer alone uses)."""
        key = self.key(name)
        self._retry("put", name, lambda: self.transport.put(key, data, create=False), len(data))

    def upload(self, name: str, file: IO[bytes], size: int) -> None:
        """Store seekable ``file`` (``size`` bytes from offset 0) at ``name``, overwriting.

        For large objects in bounded memory: the transport sends it in
        parts; a retry rewinds the file.
        """
        key = self.key(name)

        def send() -> None:
            file.seek(0)
            self.transport.upload(key, file)

        self._retry("put", name, send, size)

    def get(self, name: str) -> bytes | None:
        """The bytes of ``name``; ``None`` if it does not exist."""
        key = self.key(name)
        try:
            data = self._retry("get", name, lambda: self.transport.get(key))
        except NotFoundSignal:
            return None
        self._received(len(data))
        return data

    def get_range(self, name: str, start: int, end: int) -> bytes:
        """Bytes ``start`` to ``end`` (exclusive) of ``name``.

        :raises MediumError: it does not exist, or the store failed.
        """
        key = self.key(name)
        try:
            data = self._retry("get", name, lambda: self.transport.get(key, start, end))
        except NotFoundSignal:
            raise MediumError(f"{self.describe(name)} does not exist") from None
        self._received(len(data))
        return data

    def stream(self, name: str, size: int, chunk_size: int = 8 << 20) -> Iterator[bytes]:
        """``name``'s first ``size`` bytes in chunks of at most ``chunk_size``: bounded memory.

        Each chunk is one ranged GET, retried on its own.

        :raises MediumError: the object is missing or shorter than ``size``.
        """
        offset = 0
        while offset < size:
            end = min(size, offset + chunk_size)
            chunk = self.get_range(name, offset, end)
            if len(chunk) != end - offset:
                raise MediumError(
                    f"{self.describe(name)} is truncated: {offset + len(chunk)} bytes "
                    f"where {size} were written"
                )
            offset = end
            yield chunk

    def head(self, name: str) -> ObjectInfo | None:
        """Size and time of ``name``; ``None`` if it does not exist."""
        key = self.key(name)
        try:
            info = self._retry("head", name, lambda: self.transport.head(key))
        except NotFoundSignal:
            return None
        return ObjectInfo(name, info.size, info.modified, info.etag)

    def list(self, folder: str) -> list[ObjectInfo]:
        """Every object under ``folder`` (relative names, sorted): one or more LIST requests.

        Sorted here, whatever order the store (or a fault) gave them in.
        """
        base = self.key(folder.rstrip("/") + "/")
        cut = len(self.key(""))
        infos = self._retry("list", folder, lambda: self.transport.list(base))
        return sorted(
            (ObjectInfo(i.name[cut:], i.size, i.modified, i.etag) for i in infos),
            key=lambda i: i.name,
        )

    def delete(self, name: str) -> None:
        """Remove ``name`` (no error if it is gone)."""
        key = self.key(name)
        with contextlib.suppress(NotFoundSignal):
            self._retry("delete", name, lambda: self.transport.delete(key))
