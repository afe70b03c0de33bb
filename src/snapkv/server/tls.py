"""TLS for ``snapkv serve``: the ``ssl.SSLContext`` Redis 7.0's ``tls-*`` settings describe.

As Redis's ``tls.c`` (``tlsConfigure``), the context is built from the
settings in one go, and a start-up failure names the file and what is
wrong with it (missing, not a certificate, a key that does not match the
certificate, a wrong passphrase), so the operator fixes the right line.

What each setting becomes here:

* ``tls-cert-file`` / ``tls-key-file`` / ``tls-key-file-pass``:
  ``load_cert_chain``; the passphrase is always handed over by a callback,
  so OpenSSL never stops the server to prompt on a terminal.
* ``tls-auth-clients yes|optional|no``: ``CERT_REQUIRED`` /
  ``CERT_OPTIONAL`` / ``CERT_NONE``; with the first two a CA
  (``tls-ca-cert-file`` or ``tls-ca-cert-dir``) is required, as in Redis.
* ``tls-protocols``: the lowest and highest version named become the
  context's minimum and maximum (``""``: TLSv1.2 and TLSv1.3, Redis's
  default). Python only offers a range, so a set with a hole
  (``TLSv1 TLSv1.3``) is refused rather than silently widened.
* ``tls-ciphers``: ``set_ciphers`` (TLS 1.2 and older);
  ``tls-prefer-server-ciphers``: ``OP_CIPHER_SERVER_PREFERENCE``;
  ``tls-dh-params-file``: ``load_dh_params``.
* ``tls-session-caching no``: ``OP_NO_TICKET`` (no session tickets);
  ``yes`` leaves OpenSSL's defaults. ``tls-session-cache-size`` and
  ``-timeout`` are accepted and shown but not applied: Python's ``ssl``
  has no call for them.
* ``tls-ciphersuites`` (TLS 1.3 suites): Python's ``ssl`` cannot set them,
  so only ``""`` is accepted (the config reader refuses anything else).
  Refusing is deliberate: an operator who lists suites means to switch
  the others off, and a server that accepted the line while still
  offering every suite would be weaker than its file says.

Hot reload: asyncio fixes a listener's context when it starts serving, so
the listener gets a :class:`ReloadableContext` whose ``wrap_bio`` (what
asyncio's and uvloop's TLS layers call once per connection) uses whichever
context is current. ``CONFIG SET tls-...`` builds a complete new context
first (:meth:`Tls.check`) and swaps it in only if that succeeded: new
connections get it, connections already open keep theirs (a handshake
already begun included).

``maxclients``: a handshake in progress counts as a client, as in Redis
(see :class:`ReloadableContext`).
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import os
import ssl
import time
import warnings
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from snapkv.server.conf import ConfigError
from snapkv.server.table import CommandError

if TYPE_CHECKING:
    from snapkv.server.state import Config

__all__ = ["ReloadableContext", "Tls", "build_context"]

log = logging.getLogger("snapkv.server")

_VERSIONS = {
    "tlsv1": ssl.TLSVersion.TLSv1,
    "tlsv1.1": ssl.TLSVersion.TLSv1_1,
    "tlsv1.2": ssl.TLSVersion.TLSv1_2,
    "tlsv1.3": ssl.TLSVersion.TLSv1_3,
}
_ORDER = list(_VERSIONS)
_VERIFY = {"yes": ssl.CERT_REQUIRED, "optional": ssl.CERT_OPTIONAL, "no": ssl.CERT_NONE}
#: The settings a new context is built from (``tls-port`` only opens listeners).
_CONTEXT_SETTINGS = frozenset(
    {
        "tls-cert-file",
        "tls-key-file",
        "tls-key-file-pass",
        "tls-ca-cert-file",
        "tls-ca-cert-dir",
        "tls-auth-clients",
        "tls-protocols",
        "tls-ciphers",
        "tls-ciphersuites",
        "tls-prefer-server-ciphers",
        "tls-session-caching",
        "tls-session-cache-size",
        "tls-session-cache-timeout",
        "tls-dh-params-file",
    }
)
#: CONFIG SET's refusal when the new context cannot be built (Redis's text).
_RELOAD_FAILED = (
    "ERR CONFIG SET failed (possibly related to argument '{name}') - "
    "Unable to update TLS configuration. Check server logs."
)


def build_context(config: Config) -> ssl.SSLContext:
    """A server-side context from ``config``'s ``tls_*`` fields.

    :raises ConfigError: a setting or a file is wrong; the message names it.
    """
    if not config.tls_cert_file:
        raise ConfigError("No tls-cert-file configured!")
    if not config.tls_key_file:
        raise ConfigError("No tls-key-file configured!")
    verify = _VERIFY[config.tls_auth_clients]
    if verify != ssl.CERT_NONE and not (config.tls_ca_cert_file or config.tls_ca_cert_dir):
        raise ConfigError(
            "Either tls-ca-cert-file or tls-ca-cert-dir must be specified when "
            "tls-auth-clients is enabled (yes or optional)"
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.sslobject_class = _Handshake
    _set_protocols(context, config.tls_protocols)
    _load_identity(context, config.tls_cert_file, config.tls_key_file, config.tls_key_file_pass)
    if config.tls_ca_cert_file or config.tls_ca_cert_dir:
        _load_cas(context, config.tls_ca_cert_file, config.tls_ca_cert_dir)
    context.verify_mode = verify
    if config.tls_ciphers:
        try:
            context.set_ciphers(config.tls_ciphers)
        except ssl.SSLError:
            raise ConfigError(f"Failed to configure ciphers: {config.tls_ciphers}") from None
    if config.tls_ciphersuites:  # the config reader refuses it; a Config built by hand too
        raise ConfigError("tls-ciphersuites cannot be set: Python's ssl cannot choose them")
    if config.tls_prefer_server_ciphers:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    if not config.tls_session_caching:
        context.options |= ssl.OP_NO_TICKET
    if config.tls_dh_params_file:
        path = config.tls_dh_params_file
        _readable(path, "tls-dh-params-file")
        try:
            context.load_dh_params(path)
        except (ssl.SSLError, ValueError) as exc:
            raise ConfigError(
                f"tls-dh-params-file {path}: no DH parameters in it ({exc})"
            ) from None
    return context


def _set_protocols(context: ssl.SSLContext, text: str) -> None:
    words = [w.lower() for w in text.split()] or ["tlsv1.2", "tlsv1.3"]
    if any(w not in _VERSIONS for w in words):
        raise ConfigError(
            "Invalid tls-protocols specified. Use a combination of 'TLSv1', 'TLSv1.1', "
            "'TLSv1.2' and 'TLSv1.3'."
        )
    positions = sorted({_ORDER.index(w) for w in words})
    if positions != list(range(positions[0], positions[-1] + 1)):
        raise ConfigError(
            f"tls-protocols {text!r} leaves a version out between two it names: Python's ssl "
            "accepts a range of versions only (name every version from the lowest to the highest)"
        )
    # TLSv1 and TLSv1.1 are deprecated in Python (a warning on setting them):
    # Redis accepts them, so does this; OpenSSL's security level may still refuse them.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = _VERSIONS[_ORDER[positions[0]]]
        context.maximum_version = _VERSIONS[_ORDER[positions[-1]]]


def _readable(path: str, setting: str) -> None:
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ConfigError(f"{setting} {path}: cannot be read: {exc.strerror or exc}") from None


def _load_identity(context: ssl.SSLContext, cert: str, key: str, passphrase: str) -> None:
    """The certificate and its key, each failure named by its file (Redis's tlsConfigure)."""
    _readable(cert, "tls-cert-file")
    _readable(key, "tls-key-file")
    try:  # a scratch context: does the file hold a certificate at all?
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=cert)
    except ssl.SSLError:
        raise ConfigError(f"Failed to load certificate: {cert}: no PEM certificate in it") from None
    try:
        context.load_cert_chain(cert, key, password=lambda: passphrase)
    except ssl.SSLError as exc:
        raise ConfigError(_key_problem(exc, key, cert, passphrase)) from None


def _key_problem(exc: ssl.SSLError, key: str, cert: str, passphrase: str) -> str:
    if exc.reason == "KEY_VALUES_MISMATCH":
        return f"Failed to load private key: {key}: it does not match the certificate in {cert}"
    try:
        with open(key, "rb") as file:
            encrypted = b"ENCRYPTED" in file.read(4096)
    except OSError:  # read a moment ago; the first error says enough
        encrypted = False
    if encrypted:
        wrong = "is wrong" if passphrase else "is not set (tls-key-file-pass)"
        return f"Failed to load private key: {key}: it is encrypted and its passphrase {wrong}"
    return f"Failed to load private key: {key}: no PEM private key in it ({exc})"


def _load_cas(context: ssl.SSLContext, cafile: str, cadir: str) -> None:
    if cafile:
        _readable(cafile, "tls-ca-cert-file")
    if cadir and not os.path.isdir(cadir):
        raise ConfigError(f"tls-ca-cert-dir {cadir}: not a directory")
    try:
        context.load_verify_locations(cafile=cafile or None, capath=cadir or None)
    except ssl.SSLError:
        raise ConfigError(
            f"Failed to configure CA certificate(s) file/directory: {cafile or cadir}: "
            "no PEM certificate in it"
        ) from None


class ReloadableContext(ssl.SSLContext):
    """The context a TLS listener is given: each new connection uses :attr:`active`.

    asyncio and uvloop keep the context a listener was started with and call
    its ``wrap_bio`` once per accepted connection; delegating that call is
    what lets CONFIG SET change the certificate (and everything else the
    context holds) for new connections without closing the listener.

    ``wrap_bio`` is also the first moment a TLS connection is seen (asyncio
    calls the protocol only after the handshake), so it is where
    ``maxclients`` counts it, as Redis's ``acceptCommonHandler`` counts a
    client before its handshake: :attr:`admit` says whether one more
    connection may start; a connection refused gets a context with no
    certificate, whose handshake fails at the client's first message
    (a TLS alert, then the close), so an unfinished handshake holds no
    socket beyond ``maxclients``. :meth:`handshaking` counts those in
    progress.
    """

    active: ssl.SSLContext
    #: Whether a new connection may start its handshake (set by the listener's owner).
    admit: Callable[[], bool] | None = None
    #: Seconds a handshake may take: an entry older than this is gone in any case.
    handshake_timeout: float = 10.0

    def __init__(self, protocol: int = ssl.PROTOCOL_TLS_SERVER) -> None:
        """``protocol`` is taken by ``SSLContext.__new__``; here: the handshake count."""
        super().__init__()
        #: Handshakes in progress, when each started (weak keys: see :meth:`handshaking`).
        self._started_at: weakref.WeakKeyDictionary[ssl.SSLObject, float] = (
            weakref.WeakKeyDictionary()
        )
        self._collected_at = 0.0

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        context = self.active
        admitted = self.admit is None or self.admit()
        if not admitted:
            context = _refusing()
        sslobj = context.wrap_bio(incoming, outgoing, server_side, server_hostname, session)
        if admitted and isinstance(sslobj, _Handshake):
            started = self._started_at
            started[sslobj] = time.monotonic()
            sslobj.counted_in = started  # weak keys: no cycle through it
        return sslobj

    def handshaking(self, *, exact: bool = False) -> int:
        """Handshakes started and not yet finished, failed or timed out.

        A failed one is forgotten when OpenSSL refuses it (:class:`_Handshake`)
        or its connection is freed (the weak reference); the timeout bounds
        it whatever happens. A client that hangs up mid-handshake (a TCP
        health check: connect, close) is freed by uvloop at once, but by
        asyncio only when the garbage collector breaks the cycle its
        exception's traceback makes: ``exact`` (asked at the limit) runs the
        collector first, at most once a second, so such clients cannot keep
        others out.
        """
        if exact and self._started_at:
            now = time.monotonic()
            if now - self._collected_at >= 1.0:
                self._collected_at = now
                gc.collect()
        started = self._started_at
        oldest = time.monotonic() - self.handshake_timeout - 1.0
        stale = []
        for sslobj, when in started.items():  # in the order they started: the stale first
            if when >= oldest:
                break
            stale.append(sslobj)
        for sslobj in stale:
            started.pop(sslobj, None)
        return len(started)

    def handshake_done(self, sslobj: ssl.SSLObject) -> None:
        """A connection finished its handshake: it is a client now, counted as one."""
        self._started_at.pop(sslobj, None)


class _Handshake(ssl.SSLObject):
    """An ``SSLObject`` that tells its listener when its handshake fails.

    asyncio's failed handshake stays referenced by its exception's
    traceback until the garbage collector runs, so the weak reference
    alone would count it against ``maxclients`` for up to the timeout.
    """

    #: Set by :meth:`ReloadableContext.wrap_bio`: the handshakes this one is counted in.
    counted_in: weakref.WeakKeyDictionary[ssl.SSLObject, float] | None = None

    def do_handshake(self) -> None:
        try:
            super().do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise
        except BaseException:
            if self.counted_in is not None:
                self.counted_in.pop(self, None)
            raise


_REFUSING: list[ssl.SSLContext] = []


def _refusing() -> ssl.SSLContext:
    """A server context without a certificate: every handshake with it fails at once."""
    if not _REFUSING:
        _REFUSING.append(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
    return _REFUSING[0]


class Tls:
    """The server's TLS state: the context its listeners hand out, and its reload."""

    def __init__(self, config: Config) -> None:
        """Build the context from ``config``; :raises ConfigError: as :func:`build_context`."""
        self.context = ReloadableContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.active = build_context(config)
        self.config = config
        #: Contexts built by CONFIG SET (how many times the certificate was reloaded).
        self.reloads = 0

    def check(self, parsed: dict[str, Any]) -> Callable[[], None] | None:
        """CONFIG SET's hook: the new values' context, built before any value is set.

        All or nothing, as Redis's ``applyTlsCfg``: if the new context
        cannot be built the old one stays and the whole CONFIG SET is
        refused with Redis's text; the reason goes to the log.
        """
        changed = [name for name in parsed if name in _CONTEXT_SETTINGS]
        if not changed:
            return None
        fields = {name.replace("-", "_"): parsed[name] for name in changed}
        proposed = dataclasses.replace(self.config, **fields)
        try:
            context = build_context(proposed)
        except ConfigError as exc:
            log.warning("%s", exc)
            log.warning(
                "Failed applying new configuration. Possibly related to new %s setting. "
                "Restoring previous settings.",
                changed[0],
            )
            raise CommandError(_RELOAD_FAILED.format(name=changed[0])) from None

        def install() -> None:  # once every other part of the CONFIG SET applies
            self.context.active = context
            self.reloads += 1
            log.info("TLS configuration reloaded (%s)", ", ".join(changed))

        return install
