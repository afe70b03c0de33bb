"""The asyncio layer: listen, accept, sync, tick, stop; each connection is a Connection.

:class:`RespServer` binds the address, makes a
:class:`~snapkv.server.connection.Connection` per client (which moves its
bytes), and does what concerns all of them:

* Idle connections are closed after ``Config.timeout`` seconds (0: never);
  TCP keepalive (as Redis's ``tcp-keepalive 300``) ends half-open ones.
* ``Config.save`` rules are checked once a second; snapshots are taken in a
  thread (see ``ServerState.bgsave``).
* TLS (``tls-port``): a second listener per ``bind`` address whose
  connections are the same :class:`Connection` over asyncio's TLS
  transport (:mod:`snapkv.server.tls` builds the context; CONFIG SET
  swaps it for new connections). With ``tls-port`` set, ``port 0`` means
  no plaintext listener at all, as in Redis. A handshake that fails
  (plaintext on the TLS port, an unknown CA, no client certificate) or
  does not finish within :attr:`RespServer.tls_handshake_timeout` seconds
  only closes that connection: asyncio logs it at debug level, no traceback.
  A handshake in progress counts against ``maxclients`` as Redis counts
  it (see :meth:`RespServer._admit_tls`): beyond it the handshake is
  refused at once, so clients that never finish cannot hold more sockets.
* Protected mode (:mod:`snapkv.server.protected`): a client it refuses
  gets Redis's ``-DENIED`` text as soon as it is accepted (after maxclients,
  and after the TLS handshake, as in Redis) and is closed; it counts as a
  rejected connection.
* Stopping (SHUTDOWN, SIGTERM, SIGINT): from the moment it is decided no
  command runs any more (so none is acknowledged after the final
  snapshot), then every connection is closed on the next turn of the loop.

Group sync (``appendonly`` with ``appendfsync always``): a write may be
acknowledged only once its journal record is on disk, but one fsync per
write would cap the server at the disk's fsync rate and stall every
client while it waits. So, as Redis does (``beforeSleep`` fsyncs the AOF,
then ``handleClientsWithPendingWrites`` sends the replies), the Store
journals without syncing and replies are *held*: every connection that
produced replies during one turn of the event loop is queued, and a
single ``call_soon`` callback, which runs before the loop polls for more
input, fsyncs once for everything written in that turn and then writes
every held reply. Replies to reads are held too, so no client can see a
write before it is durable. If the fsync fails, held replies are never
sent: each waiting client gets an error and is disconnected, and the
Store refuses every later write.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import threading
import time
from typing import TYPE_CHECKING

from snapkv.server.connection import Connection
from snapkv.server.dispatch import Dispatcher
from snapkv.server.protected import DENIED, refused
from snapkv.server.resp.hiredis_reader import make_parser
from snapkv.server.state import Config
from snapkv.server.tls import Tls
from snapkv.store import Store

if TYPE_CHECKING:
    from snapkv.server.process import Notifier

__all__ = ["RespServer", "exposure_warning", "tls_for"]

log = logging.getLogger("snapkv.server")

#: Seconds a TLS client has to finish its handshake before it is dropped.
TLS_HANDSHAKE_TIMEOUT = 10.0


class RespServer:
    """A listening Redis-protocol server over a Store, on the running event loop.

    ``await start()`` binds (``port=0`` picks a free port: read :attr:`port`;
    with ``tls_port`` set, ``port=0`` opens no plaintext listener);
    ``await serve_until_stopped()`` returns after :meth:`request_stop`
    (SHUTDOWN, a signal) with every connection closed. The Store is not
    closed here: whoever opened it closes it.

    With ``config.appendonly`` and ``config.appendfsync == "always"``
    replies wait for one group sync per turn of the event loop (see the
    module docstring); the Store should then journal with ``fsync="no"``
    (as :func:`snapkv.server.open_for` opens it), or every write also pays
    its own fsync.
    """

    def __init__(self, store: Store, config: Config | None = None) -> None:
        self.dispatcher = Dispatcher(store, config)
        self.store = store
        self.config = self.dispatcher.config
        self.connections: set[Connection] = set()
        self.port = self.config.port
        #: Hold replies until the journal is synced (``appendfsync always``).
        self.group_sync = self.config.appendonly and self.config.appendfsync == "always"
        self.dispatcher.group_sync_changed = self._set_group_sync
        #: Group syncs done (each one ``store.sync()``: at most one fsync).
        self.syncs = 0
        self._held: list[Connection] = []
        self._sync_handle: asyncio.Handle | None = None
        #: Set by :meth:`request_stop`: connections run no more commands.
        self.stopping = False
        #: The journal sync failure that stopped the server, if any.
        self.fatal: Exception | None = None
        self._servers: list[asyncio.Server] = []
        #: Every address:port listened on, as Redis prints them.
        self.listening: list[str] = []
        #: The same for the TLS listeners (``tls_port``).
        self.listening_tls: list[str] = []
        self.tls_port = self.config.tls_port
        #: The TLS context and its reload, when ``tls_port`` is set (built by :meth:`start`).
        self.tls: Tls | None = None
        #: Seconds a TLS client has to finish its handshake.
        self.tls_handshake_timeout = TLS_HANDSHAKE_TIMEOUT
        #: Told STOPPING=1 when the server stops (``serve`` sets it under systemd).
        self.notifier: Notifier | None = None
        self._refused_logged = 0
        #: Clients protected mode refused (they count in ``rejected_connections`` too).
        self.denied = 0
        self._denied_logged = 0
        self._newest_seen: str | None = None
        self._stopped: asyncio.Event | None = None
        self._cron: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        """Bind every ``bind`` address and start accepting connections.

        As Redis: an address marked optional (``-::1``) that cannot be bound
        is skipped with a log line; any other failure raises ``OSError``.
        With ``port`` 0 the first address picks a free port and the others
        use the same one.
        """
        loop = self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        # What the server's threads (scripts, the sweeper's expired events)
        # and timers (CLIENT PAUSE) need of the event loop.
        dispatcher = self.dispatcher
        dispatcher.loop_thread = threading.get_ident()
        dispatcher.threadsafe_call = loop.call_soon_threadsafe
        dispatcher.call_later = loop.call_later
        if self.config.tls_port:
            self.tls = tls_for(self.config)  # a wrong file stops the start, named
            self.tls.context.admit = self._admit_tls
            self.tls.context.handshake_timeout = self.tls_handshake_timeout
            dispatcher.config_checks.append(self.tls.check)
        port = self.config.port
        if port or not self.config.tls_port:
            port = await self._listen(port, None, self.listening)
        if self.tls is not None:
            self.tls_port = await self._listen(self.config.tls_port, self.tls, self.listening_tls)
        if not self._servers:
            raise OSError(f"cannot listen on any of {self.config.host!r}")
        self.port = port
        info = self.dispatcher.info
        info["port"] = self.port
        info["event_loop"] = type(loop).__module__.split(".")[0]
        info["parser"] = type(make_parser(prefer_hiredis=self.config.hiredis)).__name__
        self._cron = loop.call_later(1.0, self._tick)
        warning = exposure_warning(
            self.listening + self.listening_tls,
            self.config.requirepass,
            protected_mode=self.config.protected_mode,
        )
        if warning is not None:
            log.warning("%s", warning)

    def _admit_tls(self) -> bool:
        """Whether one more TLS handshake may start: its client would fit ``maxclients``.

        Handshakes in progress count as clients (Redis's acceptCommonHandler
        counts a client before its handshake), so unauthenticated clients
        that never finish cannot hold more sockets than ``maxclients``.
        """
        assert self.tls is not None
        dispatcher = self.dispatcher
        clients, limit = len(dispatcher.clients), dispatcher.config.maxclients
        if clients + self.tls.context.handshaking() < limit:
            return True
        if clients + self.tls.context.handshaking(exact=True) < limit:
            return True
        dispatcher.rejected_connections += 1
        return False

    async def _listen(self, port: int, tls: Tls | None, listening: list[str]) -> int:
        """Listen on ``port`` of every ``bind`` address (TLS with ``tls``); the port bound.

        As Redis: an address marked optional (``-::1``) that cannot be bound
        is skipped with a log line; any other failure closes what was bound
        and raises ``OSError``. Port 0 picks a free port on the first
        address and uses it on the others.
        """
        loop = asyncio.get_running_loop()
        for address, optional in self.config.addresses:
            try:
                if tls is None:
                    server = await loop.create_server(
                        lambda: _Accepted(self), address, port, reuse_address=True, backlog=511
                    )
                else:
                    server = await loop.create_server(
                        lambda: _Accepted(self),
                        address,
                        port,
                        reuse_address=True,
                        backlog=511,
                        ssl=tls.context,
                        ssl_handshake_timeout=self.tls_handshake_timeout,
                    )
            except OSError as exc:
                if not optional:
                    for bound in self._servers:
                        bound.close()
                    raise OSError(exc.errno, f"cannot listen on {address}:{port}: {exc}") from exc
                log.info("skipping optional bind address %s: %s", address, exc.strerror or exc)
                continue
            self._servers.append(server)
            for sock in server.sockets:
                name = sock.getsockname()
                listening.append(_address(name[0], name[1]))
                port = name[1]
        return port

    def request_stop(self) -> None:
        """Stop now: no command runs after this call; :meth:`serve_until_stopped` then returns.

        As Redis's SHUTDOWN exits inside the command, so that no write can
        be acknowledged after the final snapshot: from here on no connection
        runs another command (replies already produced are still written,
        after the group sync that covers them), no new connection is
        accepted, and no more requests are read. :meth:`close`, on the
        next turn of the loop, closes everything.
        """
        if not self.stopping and self.notifier is not None:
            self.notifier.send("STOPPING=1", "STATUS=Shutting down")
        self.stopping = True
        for server in self._servers:
            server.close()  # stop accepting; idempotent
        for connection in self.connections:
            connection.stop_reading()
        if self._stopped is not None:
            self._stopped.set()

    async def serve_until_stopped(self) -> None:
        """Serve until :meth:`request_stop`; then close the listener and all connections."""
        assert self._stopped is not None
        await self._stopped.wait()
        await self.close()

    async def close(self) -> None:
        """Close the listener and every connection (unsent replies are dropped)."""
        if self._cron is not None:
            self._cron.cancel()
            self._cron = None
        if self._sync_handle is not None:
            # Replies already produced (SHUTDOWN's own, those before it) are
            # sent if their writes can be made durable.
            self._sync_handle.cancel()
            self._sync_and_release()
        for server in self._servers:
            server.close()
        for connection in list(self.connections):
            connection.close()
        servers, self._servers = self._servers, []
        for server in servers:
            await server.wait_closed()

    # ----------------------------------------------------------- group sync

    def _set_group_sync(self, on: bool) -> None:
        """CONFIG SET appendfsync: start or stop holding replies for the group sync.

        Replies already held stay held: the sync already scheduled for them
        (``call_soon``, before the loop reads more input) releases them
        before any reply written straight away, so every client's replies
        keep their order. The connection that ran the CONFIG SET holds the
        replies after it in the same batch (so a pipelined write after
        ``appendfsync always`` waits for its fsync); holding stops at a
        connection's next batch of input.
        """
        self.group_sync = on
        for connection in self.connections:
            connection.hold = on

    def hold(self, connection: Connection) -> None:
        """``connection`` has replies waiting for the sync: queue it, schedule the sync."""
        self._held.append(connection)
        if self._sync_handle is None:
            assert self._loop is not None
            self._sync_handle = self._loop.call_soon(self._sync_and_release)

    def _sync_and_release(self) -> None:
        """One fsync for every write of this loop turn, then every held reply.

        The fsync runs on the loop thread, so every client waits for it, as
        in Redis. Running it in a worker thread (taking the held replies
        first, so that later ones wait for the next sync) keeps replies
        ordered too, but was no faster when measured (docs/SERVER.md).
        """
        self._sync_handle = None
        batch, self._held = self._held, []
        taken = [(connection, *connection.take_held()) for connection in batch]
        try:
            self.store.sync()
        except Exception as exc:
            # As Redis with appendfsync always: a write that cannot be made
            # durable is never acknowledged, and the server stops rather
            # than serve data the disk refused.
            log.error("journal sync failed; withholding replies and stopping: %s", exc)
            for connection, _data, _after in taken:
                connection.sync_failed(exc)
            if self.fatal is None:
                self.fatal = exc
            self.request_stop()
            return
        self.syncs += 1
        for connection, data, after in taken:
            connection.release(data, after)

    def _tick(self) -> None:
        """Once a second: idle timeouts, ``save`` rules, and log lines (Redis's ``serverCron``)."""
        loop = asyncio.get_running_loop()
        self._cron = loop.call_later(1.0, self._tick)
        timeout = self.config.timeout
        limit = time.monotonic() - timeout
        for connection in list(self.connections):
            client = connection.client
            if client is None:
                continue
            # Blocked and subscribed clients are exempt, as in Redis's clientsCronHandleTimeout.
            if (
                timeout
                and client.last_interaction < limit
                and client.blocked is None
                and not client.subscribed
                and not client.monitor
            ):
                connection.close()
            elif connection.soft_since is not None:
                connection._check_output()  # a soft limit's seconds may have passed
        dispatcher = self.dispatcher
        if dispatcher.config.save:
            now = time.time()
            rule = dispatcher.save_due(now)
            if rule:
                log.info(
                    "%d changes in %d seconds. Saving...",
                    dispatcher.dirty,
                    now - dispatcher.last_save,
                )
                dispatcher.bgsave("save rule")
        # Both count in rejected_connections (as Redis's stat); the log says which.
        denied = self.denied - self._denied_logged
        refused = dispatcher.rejected_connections - self._refused_logged - denied
        if refused > 0:
            log.warning(
                "refused %d connection(s): maxclients (%d) reached", refused, self.config.maxclients
            )
        if denied > 0:
            log.warning(
                "refused %d connection(s) beyond loopback: protected mode (no password for "
                "the default user)",
                denied,
            )
        self._refused_logged = dispatcher.rejected_connections
        self._denied_logged = self.denied
        if self.config.appendonly:
            self._notice_compaction()

    def _notice_compaction(self) -> None:
        """Log a snapshot the Store's journal compaction published (it runs in its own thread)."""
        bgsave = self.dispatcher.bgsave_thread
        if bgsave is not None and bgsave.is_alive():
            return  # its snapshot may be published before it says so: look again later
        try:
            generations = self.store.medium.generations()
        except Exception:  # only a log line is at stake; the store reports its own errors
            return
        newest = generations[0] if generations else None
        if self._newest_seen is None:
            self._newest_seen = newest or ""
        elif newest and newest != self._newest_seen:
            self._newest_seen = newest
            if newest != self.dispatcher.newest_saved:
                log.info(
                    "journal compaction (the journal outgrew the last snapshot) wrote %s",
                    self.store.medium.describe(newest),
                )


class _Accepted(Connection):
    """A :class:`Connection` that protected mode may refuse as soon as it is made."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Redis checks maxclients first (acceptCommonHandler), then protected
        # mode (clientAcceptHandler, after a TLS handshake): so here.
        sslobj = transport.get_extra_info("ssl_object")
        if sslobj is not None and self.server.tls is not None:  # a client from here on
            self.server.tls.context.handshake_done(sslobj)
        super().connection_made(transport)
        if self.closing or not refused(self.dispatcher, transport.get_extra_info("peername")):
            return
        self.dispatcher.rejected_connections += 1
        self.server.denied += 1
        self.closing = True  # no request is read; connection_lost forgets the client
        if self.transport is not None:
            self.transport.write(DENIED)
            self.transport.close()  # after DENIED is sent


def tls_for(config: Config) -> Tls:
    """The TLS state for ``config`` (``tls_port`` set); a failure is logged, then raised.

    ``serve`` calls it before loading the data too, so that a wrong key or
    certificate stops the start at once, as in Redis, not after a long load.

    :raises ConfigError: the setting and file at fault, named.
    """
    try:
        return Tls(config)
    except Exception as exc:  # ConfigError; in the log too (it may be all one reads)
        log.warning("cannot configure TLS: %s", exc)
        raise


def exposure_warning(
    listening: list[str], requirepass: str | None, *, protected_mode: bool = False
) -> str | None:
    """The warning for addresses beyond loopback that anyone may use: no password, and
    protected mode off (with it on, Redis's DENIED refuses such clients instead)."""
    exposed = [a for a in listening if not _loopback(a)]
    if requirepass is not None or not exposed or protected_mode:
        return None
    return (
        f"WARNING: listening on {', '.join(exposed)}, beyond loopback, without requirepass: "
        "anyone who can reach it can read and change every key (set requirepass, or bind "
        "127.0.0.1)"
    )


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _loopback(address: str) -> bool:
    host = address.rsplit(":", 1)[0].strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
