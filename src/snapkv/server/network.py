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
        self.pending = []
        if self.client is not None:
            self.dispatcher.remove_client(self.client)
        self.server.connections.discard(self)

    def close(self) -> None:
        """Close now, dropping unsent replies (CLIENT KILL, idle timeout, server stop)."""
        self.closing = True
        self.pending = []
        if self.transport is not None:
            self.transport.abort()

    # ----------------------------------------------------------------- data

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        client = self.client
        parser = self.parser
        assert client is not None and parser is not None
        client.last_interaction = time.monotonic()
        commands = parser.feed(data)
        if self.paused or self.pending:
            self.pending.extend(commands)
        elif len(commands) == 1 and client.plain:
            # The common case (one request per read) without list juggling.
            reply = self.execute(client, commands[0])
            if not (client.close_after_reply or parser.unauthenticated):
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
                    transport.write(b"".join(out))
                    out, size = [], 0
                    if client.close_after_reply or self.closing:
                        self._finish()
                        return
                    if self.paused:
                        self.pending = pending[i + 1 :]
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
            transport.write(b"".join(out))
        if parser.error is not None:
            self._protocol_error()
        elif self.dispatcher.shutdown_requested is not None:
            self.server.request_stop()

    def _finish(self) -> None:
        """After a command asked to close (QUIT, SHUTDOWN, CLIENT KILL of itself)."""
        self.closing = True
        self.pending = []
        if self.transport is not None:
            self.transport.close()  # sends what was written first
        if self.dispatcher.shutdown_requested is not None:
            self.server.request_stop()

    def _protocol_error(self) -> None:
        parser = self.parser
        assert parser is not None and parser.error is not None and self.transport is not None
        self.dispatcher.protocol_errors += 1
        log.info("protocol error from %s: %s", self.client and self.client.addr, parser.error)
        self.transport.write(error(f"ERR {parser.error}"))
        self.closing = True
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
        if self.pending:
            self._run()
        if not self.paused and not self.closing and self.transport is not None:
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
    """

    def __init__(self, store: Store, config: Config | None = None) -> None:
        self.dispatcher = Dispatcher(store, config)
        self.config = self.dispatcher.config
        self.connections: set[Connection] = set()
        self.port = self.config.port
        self._server: asyncio.Server | None = None
        self._stopped: asyncio.Event | None = None
        self._cron: asyncio.TimerHandle | None = None
        self._on_stop: list[Callable[[], None]] = []

    async def start(self) -> None:
        """Bind and start accepting connections."""
        loop = asyncio.get_running_loop()
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
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.close()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

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
