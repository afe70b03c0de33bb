"""The asyncio layer: accept connections, move bytes, and nothing else.

Each connection is a :class:`Connection` (an ``asyncio.Protocol``): bytes
go to its parser, complete commands to the dispatcher, replies back to the
transport. Parsing and command semantics live elsewhere, so this module
only decides *when* to read, write and close:

* Pipelining: every command a read completes is run in order and the
  replies are written with one ``write`` per 64 KiB, not one per command.
* Back-pressure: when the transport's unsent replies pass
  ``Config.output_high_water`` asyncio calls ``pause_writing``; the
  connection then stops reading *and* keeps the commands it already parsed
  but did not run, until the client has read enough (``resume_writing``).
  A client that pipelines without reading costs at most one read's worth
  of commands plus the high-water mark of replies.
* ``maxclients``: a connection beyond it gets Redis's
  ``-ERR max number of clients reached`` and is closed.
* A protocol error: the commands before it run, then the error is written
  and that connection alone is closed.
* Idle connections are closed after ``Config.timeout`` seconds (0: never);
  TCP keepalive (as Redis's ``tcp-keepalive 300``) ends half-open ones.
* ``Config.save`` rules are checked once a second; snapshots are taken in a
  thread (see ``ServerState.bgsave``).

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
import contextlib
import socket
import time
from collections.abc import Callable
from typing import Any, cast

from snapkv.server.commands import Dispatcher
from snapkv.server.context import Client, Config, log
from snapkv.server.resp import Parser, error, make_parser
from snapkv.store import Store

__all__ = ["Connection", "RespServer"]

_MAX_CLIENTS = error("ERR max number of clients reached")
#: Replies are joined and written in pieces of about this size.
_FLUSH_AT = 64 * 1024
_KEEPALIVE_SECONDS = 300


class Connection(asyncio.Protocol):
    """One client connection: parser in, dispatcher, transport out."""

    def __init__(self, server: RespServer) -> None:
        self.server = server
        self.dispatcher = server.dispatcher
        self.execute = server.dispatcher.execute
        self.transport: asyncio.Transport | None = None
        self.client: Client | None = None
        self.parser: Parser | None = None
        #: Parsed commands not yet run because the client is not reading.
        self.pending: list[list[str]] = []
        self.paused = False
        self.closing = False
        #: Replies wait for the server's group sync (see the module docstring).
        self.hold = server.group_sync
        #: Replies produced but not yet written because they wait for the sync.
        self.held: list[bytes] = []
        self.held_size = 0
        #: Reading stopped because ``held_size`` passed the high-water mark.
        self.held_full = False
        #: What to do once the held replies are written (close, protocol error).
        self.after_held: Callable[[], None] | None = None

    # ------------------------------------------------------------ lifecycle

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        dispatcher = self.dispatcher
        config = dispatcher.config
        if len(dispatcher.clients) >= config.maxclients:
            dispatcher.rejected_connections += 1
            transport.write(_MAX_CLIENTS)
            transport.close()
            self.closing = True
            return
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):  # keepalive is best effort
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
                if hasattr(socket, "TCP_KEEPIDLE"):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, _KEEPALIVE_SECONDS)
        client = Client(
            dispatcher,
            addr=_address(transport.get_extra_info("peername")),
            laddr=_address(transport.get_extra_info("sockname")),
        )
        client.kill = self.close
        self.client = client
        self.parser = make_parser(
            prefer_hiredis=config.hiredis,
            max_bulk_len=config.proto_max_bulk_len,
            max_args=config.max_args,
            unauthenticated=not client.authenticated,
        )
        transport.set_write_buffer_limits(high=config.output_high_water)
        dispatcher.add_client(client)
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self._drop()
        if self.client is not None:
            self.dispatcher.remove_client(self.client)
        self.server.connections.discard(self)

    def close(self) -> None:
        """Close now, dropping unsent replies (CLIENT KILL, idle timeout, server stop)."""
        self.closing = True
        self._drop()
        if self.transport is not None:
            self.transport.abort()

    def _drop(self) -> None:
        self.pending = []
        self.held = []
        self.held_size = 0
        self.after_held = None

    # ----------------------------------------------------------------- data

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        client = self.client
        parser = self.parser
        assert client is not None and parser is not None
        client.last_interaction = time.monotonic()
        commands = parser.feed(data)
        if self.paused or self.pending or self.held_full:
            self.pending.extend(commands)
        elif len(commands) == 1 and client.plain:
            # The common case (one request per read) without list juggling.
            reply = self.execute(client, commands[0])
            if not (client.close_after_reply or parser.unauthenticated):
                if self.hold:
                    self._hold(reply)
                else:
                    assert self.transport is not None
                    self.transport.write(reply)
                if parser.error is not None:
                    self._protocol_error()
                elif self.dispatcher.shutdown_requested is not None:
                    self.server.request_stop()
                return
            self.pending = [commands[0]]
            self._run(reply)
            return
        else:
            self.pending = commands
        self._run()

    def _run(self, first: bytes | None = None) -> None:
        """Run pending commands until none are left or the client stops reading.

        ``first``: the reply of a command already run (the fast path's),
        still at the head of ``pending``.
        """
        client = self.client
        parser = self.parser
        transport = self.transport
        assert client is not None and parser is not None and transport is not None
        execute = self.execute
        hold = self.hold
        write = self._hold if hold else transport.write
        high = self.server.config.output_high_water
        out: list[bytes] = []
        size = 0
        while True:
            pending = self.pending
            self.pending = []
            for i, argv in enumerate(pending):
                if first is not None:
                    reply, first = first, None
                else:
                    reply = execute(client, argv)
                out.append(reply)
                size += len(reply)
                if size >= _FLUSH_AT or client.close_after_reply:
                    write(b"".join(out))
                    out, size = [], 0
                    if client.close_after_reply or self.closing:
                        self._finish()
                        return
                    if self.paused or (hold and self.held_size >= high):
                        self.pending = pending[i + 1 :]
                        if not self.paused:
                            # Held replies are not in the transport, so asyncio
                            # cannot push back: stop reading until they are sent.
                            self.held_full = True
                            transport.pause_reading()
                        return
            if parser.unauthenticated:
                # One command at a time until AUTH: the next one must be
                # parsed with the limits that hold after this one ran.
                parser.unauthenticated = not client.authenticated
                more = parser.parse()
                if more:
                    self.pending = more
                    continue
            break
        if out:
            write(b"".join(out))
        if parser.error is not None:
            self._protocol_error()
        elif self.dispatcher.shutdown_requested is not None:
            self.server.request_stop()

    def _finish(self) -> None:
        """After a command asked to close (QUIT, SHUTDOWN, CLIENT KILL of itself)."""
        self.closing = True
        self.pending = []
        if self.held:
            self.after_held = self._finish
            return
        if self.transport is not None:
            self.transport.close()  # sends what was written first
        if self.dispatcher.shutdown_requested is not None:
            self.server.request_stop()

    def _protocol_error(self) -> None:
        parser = self.parser
        assert parser is not None and parser.error is not None and self.transport is not None
        if self.held:  # the replies before the error go first
            self.closing = True
            self.after_held = self._protocol_error
            return
        self.dispatcher.protocol_errors += 1
        log.info("protocol error from %s: %s", self.client and self.client.addr, parser.error)
        self.transport.write(error(f"ERR {parser.error}"))
        self.closing = True
        self.transport.close()

    # ----------------------------------------------------------- group sync

    def _hold(self, data: bytes) -> None:
        """Keep ``data`` until the server's next sync (see the module docstring)."""
        if not self.held:
            self.server.hold(self)
        self.held.append(data)
        self.held_size += len(data)

    def take_held(self) -> tuple[bytes, Callable[[], None] | None]:
        """The held replies (joined) and the action after them; both are reset."""
        data = self.held[0] if len(self.held) == 1 else b"".join(self.held)
        after = self.after_held
        self.held = []
        self.held_size = 0
        self.after_held = None
        return data, after

    def release(self, data: bytes, after: Callable[[], None] | None) -> None:
        """The sync covering ``data`` succeeded: write it, then carry on where ``_run`` stopped."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return  # closed meanwhile: the client will never read it
        if data:
            transport.write(data)
        if after is not None:
            after()
            return
        if self.held_full and not self.held:
            self.held_full = False
            if self.closing or self.paused:
                return  # resume_writing continues once the client reads
            if self.pending:
                self._run()
            if not (self.paused or self.closing or self.held_full):
                transport.resume_reading()

    def sync_failed(self, exc: Exception) -> None:
        """The sync covering this connection's held replies failed: never acknowledge them."""
        self._drop()
        self.closing = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(
                error(f"ERR journal sync failed, replies withheld, server stopping: {exc}")
            )
            self.transport.close()

    # -------------------------------------------------------- back-pressure

    def pause_writing(self) -> None:
        self.paused = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.paused = False
        if self.closing:
            return
        if self.pending and not self.held_full:
            self._run()
        if not (self.paused or self.closing or self.held_full) and self.transport is not None:
            self.transport.resume_reading()


def _address(name: Any) -> str:
    if isinstance(name, tuple) and len(name) >= 2:
        host = f"[{name[0]}]" if ":" in str(name[0]) else str(name[0])
        return f"{host}:{name[1]}"
    return str(name or "")


class RespServer:
    """A listening Redis-protocol server over a Store, on the running event loop.

    ``await start()`` binds (``port=0`` picks a free port: read :attr:`port`);
    ``await serve_until_stopped()`` returns after :meth:`request_stop`
    (SHUTDOWN, a signal) with every connection closed. The Store is not
    closed here: whoever opened it closes it.

    With ``config.appendonly`` and ``config.appendfsync == "always"``
    replies wait for one group sync per turn of the event loop (see the
    module docstring); the Store should then journal with ``fsync="never"``
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
        #: Group syncs done (each one ``store.sync()``: at most one fsync).
        self.syncs = 0
        self._held: list[Connection] = []
        self._sync_handle: asyncio.Handle | None = None
        #: The journal sync failure that stopped the server, if any.
        self.fatal: Exception | None = None
        self._server: asyncio.Server | None = None
        self._stopped: asyncio.Event | None = None
        self._cron: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        """Bind and start accepting connections."""
        loop = self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        self._server = await loop.create_server(
            lambda: Connection(self),
            self.config.host,
            self.config.port,
            reuse_address=True,
            backlog=511,
        )
        sockets = self._server.sockets
        if sockets:
            self.port = sockets[0].getsockname()[1]
        info = self.dispatcher.info
        info["port"] = self.port
        info["event_loop"] = type(loop).__module__.split(".")[0]
        info["parser"] = type(make_parser(prefer_hiredis=self.config.hiredis)).__name__
        self._cron = loop.call_later(1.0, self._tick)

    def request_stop(self) -> None:
        """Stop accepting, close every connection, and let :meth:`serve_until_stopped` return."""
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
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.close()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    # ----------------------------------------------------------- group sync

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
        """Once a second: idle timeouts and ``save`` rules (Redis's ``serverCron``)."""
        loop = asyncio.get_running_loop()
        self._cron = loop.call_later(1.0, self._tick)
        timeout = self.config.timeout
        if timeout:
            limit = time.monotonic() - timeout
            for connection in list(self.connections):
                client = connection.client
                if client is not None and client.last_interaction < limit:
                    connection.close()
        dispatcher = self.dispatcher
        if dispatcher.config.save and dispatcher.save_due(time.time()):
            dispatcher.bgsave()
