"""Object-store URLs: ``s3://bucket/prefix`` and its kin, to a store and a prefix.

One function, :func:`parse_url`, turns a URL into a :class:`Location`: the
obstore store of its bucket (or container, or directory) and the prefix
under which snapkv keeps one database. Everything else in
:mod:`snapkv.objstore` works on a ``Location`` and never looks at a URL
again, so every scheme is decided here once:

=====================  =====================================================
``s3://B/P``           Amazon S3 and S3-compatible stores (MinIO, Ceph, R2)
``gs://B/P``           Google Cloud Storage
``az://C/P``           Azure Blob Storage (``abfs://`` and ``abfss://`` too)
``file:///DIR/P``      a local directory, through obstore's LocalStore (tests,
                       a shared file system); the directory is created
``memory://NAME/P``    an in-process store (tests): every URL naming ``NAME``
                       in this process shares one store, so two Stores can
                       meet on one prefix as two processes meet on a bucket
=====================  =====================================================

Credentials and endpoints come from each cloud's standard environment
variables (obstore reads them; for S3 this module passes
``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_SESSION_TOKEN`` and ``AWS_REGION`` explicitly, so what is used is what
the documentation says), overridden by ``storage_options`` (obstore's
configuration keys, for example ``{"endpoint": "http://127.0.0.1:9000",
"region": "us-east-1"}``). A plain ``http://`` endpoint is refused by the
HTTP client unless allowed; it is allowed here exactly when the endpoint
given is ``http://`` (a local MinIO or moto), never silently for a real
cloud endpoint. ``allow_http`` in ``storage_options`` says it explicitly.

obstore is imported only inside :func:`parse_url`: ``import snapkv`` and
:func:`is_object_url` stay standard-library only (obstore is the ``cloud``
extra).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["SCHEMES", "Location", "is_object_url", "parse_url", "split_url"]

#: The schemes snapkv opens as object storage, and the store each one names.
SCHEMES: dict[str, str] = {
    "s3": "s3",
    "s3a": "s3",
    "gs": "gcs",
    "az": "azure",
    "abfs": "azure",
    "abfss": "azure",
    "file": "local",
    "memory": "memory",
}

_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>.*)", re.DOTALL)

#: Environment variables read for S3 and the obstore configuration key each sets.
_S3_ENV = {
    "AWS_ENDPOINT_URL": "endpoint",
    "AWS_ACCESS_KEY_ID": "access_key_id",
    "AWS_SECRET_ACCESS_KEY": "secret_access_key",
    "AWS_SESSION_TOKEN": "token",
    "AWS_REGION": "region",
}

#: ``memory://NAME`` stores of this process, by name (see the module docstring).
_MEMORY: dict[str, Any] = {}
_MEMORY_LOCK = threading.Lock()


@dataclass(frozen=True)
class Location:
    """Where one database lives: a store, the prefix inside it, and the URL for messages.

    ``prefix`` never starts or ends with ``/``; object names are
    ``f"{prefix}/{name}"`` (just ``name`` when the prefix is empty).
    """

    #: The obstore store (``S3Store``, ``GCSStore``, ``AzureStore``,
    #: ``LocalStore`` or ``MemoryStore``). Not in the repr: an AzureStore
    #: configured from the environment cannot print itself (obstore 0.12).
    store: Any = field(repr=False)
    prefix: str
    #: The URL as given, without credentials: what messages name.
    url: str
    #: ``"s3"``, ``"gcs"``, ``"azure"``, ``"local"`` or ``"memory"``.
    kind: str

    def key(self, name: str) -> str:
        """The full object key of ``name`` under this prefix."""
        return f"{self.prefix}/{name}" if self.prefix else name

    def describe(self, name: str = "") -> str:
        """``name`` as a URL, for messages (``s3://bucket/prefix/manifest/...``)."""
        base = self.url.rstrip("/")
        return f"{base}/{name}" if name else base


def is_object_url(target: object) -> bool:
    """Whether ``target`` is a URL of a scheme snapkv opens as object storage.

    Standard-library only: what ``snapkv.open`` and ``snapkv check`` ask
    before deciding between a directory and a bucket. A string with any
    other ``scheme://`` is not one (it is then a directory name, as it
    always was).
    """
    if not isinstance(target, str):
        return False
    match = _URL.fullmatch(target)
    return match is not None and match.group("scheme").lower() in SCHEMES


def split_url(url: str) -> tuple[str, str, str]:
    """``url`` as ``(scheme, bucket, prefix)``, lower-case scheme, prefix without slashes.

    For ``file://`` the "bucket" is the directory (``/`` for an absolute path)
    and the prefix is empty: the whole path is the store's root.

    :raises ValueError: not a URL of one of :data:`SCHEMES`, or no bucket.
    """
    match = _URL.fullmatch(url) if isinstance(url, str) else None
    if match is None or match.group("scheme").lower() not in SCHEMES:
        known = ", ".join(f"{s}://" for s in SCHEMES)
        raise ValueError(f"not an object-store URL: {url!r} (expected one of {known})")
    scheme, rest = match.group("scheme").lower(), match.group("rest")
    if scheme == "file":
        path = rest.split("?", 1)[0]
        if not path.startswith("/"):
            raise ValueError(f"a file:// URL needs an absolute path (file:///dir): {url!r}")
        return scheme, path.rstrip("/") or "/", ""
    bucket, _, prefix = rest.split("?", 1)[0].partition("/")
    if not bucket:
        raise ValueError(f"the URL names no bucket: {url!r}")
    return scheme, bucket, prefix.strip("/")


def parse_url(url: str, storage_options: Mapping[str, object] | None = None) -> Location:
    """The store and prefix that ``url`` names (see the module docstring for schemes).

    :param storage_options: obstore configuration keys (``endpoint``,
        ``region``, ``access_key_id``, ``allow_http``, ...), over the
        environment's. ``client_options`` and ``retry_config`` may be given
        as nested mappings and go to obstore as they are.
    :raises ValueError: not a URL of a known scheme, or a bad option.
    :raises ImportError: obstore (``pip install snapkv[cloud]``) is missing.
    """
    scheme, bucket, prefix = split_url(url)
    kind = SCHEMES[scheme]
    options = dict(storage_options or {})
    try:
        import obstore.store  # noqa: PLC0415 - the cloud extra, only when a URL is opened
    except ImportError as exc:  # pragma: no cover - the extra is installed in development
        raise ImportError(
            f"opening {url} needs obstore: install snapkv with the cloud extra "
            "(pip install 'snapkv[cloud]')"
        ) from exc
    # Typed loosely: the options are the caller's mappings, checked by obstore.
    obs: Any = obstore.store
    client: dict[str, Any] = dict(_mapping(options.pop("client_options", None)))
    # Retries are the client's (snapkv.objstore.client), counted and
    # resolved there (an ambiguous create must be compared, not blindly
    # resent), so obstore's own retrying is off unless asked for.
    retry: dict[str, Any] = dict(_mapping(options.pop("retry_config", None)) or {"max_retries": 0})
    allow_http = options.pop("allow_http", None)
    if kind == "memory":
        if options:
            raise ValueError(f"memory:// takes no storage options, got {sorted(options)}")
        with _MEMORY_LOCK:
            store = _MEMORY.get(bucket)
            if store is None:
                store = _MEMORY[bucket] = obs.MemoryStore()
        return Location(store, prefix, f"memory://{bucket}/{prefix}".rstrip("/"), kind)
    if kind == "local":
        if options:
            raise ValueError(f"file:// takes no storage options, got {sorted(options)}")
        Path(bucket).mkdir(parents=True, exist_ok=True)
        return Location(obs.LocalStore(bucket), "", f"file://{bucket}", kind)
    config: dict[str, Any] = {}
    if kind == "s3":
        config = {key: os.environ[env] for env, key in _S3_ENV.items() if os.environ.get(env)}
    config.update(options)
    endpoint = str(config.get("endpoint", ""))
    if allow_http is None:
        allow_http = endpoint.lower().startswith("http://")
    if allow_http:
        client["allow_http"] = True
    shown = f"{scheme}://{bucket}/{prefix}".rstrip("/")
    try:
        if kind == "s3":
            store = obs.S3Store(
                bucket, config=config, client_options=client or None, retry_config=retry
            )
        elif kind == "gcs":
            store = obs.GCSStore(
                bucket, config=config, client_options=client or None, retry_config=retry
            )
        else:
            store = obs.AzureStore(
                bucket, config=config, client_options=client or None, retry_config=retry
            )
    except Exception as exc:  # obstore's configuration errors: say which URL
        raise ValueError(f"cannot configure {shown}: {exc}") from exc
    return Location(store, prefix, shown, kind)


def _mapping(value: object) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"expected a mapping of options, not {type(value).__name__}")
    return value
