"""One client connection on the event loop: bytes in, commands to the dispatcher, replies out.

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
* With group sync (see :mod:`snapkv.server.network`) replies are *held*
  until the server's next sync, and written in order once it succeeded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from snapkv.server.client import Client
from snapkv.server.resp.hiredis_reader import Parser, make_parser
from snapkv.server.resp.writer import error

if TYPE_CHECKING:
    from snapkv.server.network import RespServer

__all__ = ["Connection"]

log = logging.getLogger("snapkv.server")

_MAX_CLIENTS = error("ERR max number of clients reached")
#: Replies are joined and written in pieces of about this size.
_FLUSH_AT = 64 * 1024
_KEEPALIVE_SECONDS = 300
#: After a protocol error: how long input is still read (and dropped) once
#: the error reply and a FIN have gone out, before the socket is closed.
_LINGER_SECONDS = 1.0


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
        if self.server.stopping:  # accepted in the same turn as the stop
            self.closing = True
            transport.abort()
            return
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

    def stop_reading(self) -> None:
        """The server is stopping: read no more requests (what is written still goes out)."""
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.pause_reading()

    def _drop(self) -> None:
        self.pending = []
        self.held = []
        self.held_size = 0
        self.after_held = None

    # ----------------------------------------------------------------- data

    def data_received(self, data: bytes) -> None:
        if self.closing or self.server.stopping:
            return
        client = self.client
        parser = self.parser
        assert client is not None and parser is not None
        client.last_interaction = time.monotonic()
        # CONFIG SET proto-max-bulk-len applies to every connection at once,
        # as in Redis (the parser is sans-I/O and knows no config).
        parser.max_bulk_len = self.dispatcher.config.proto_max_bulk_len
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
        if self.server.stopping:
            self.pending = []
            return
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
                if not hold and self.hold:
                    # CONFIG SET appendfsync always ran in this batch: the
                    # replies after it wait for the group sync, as every
                    # later one does. (The other way round the batch keeps
                    # holding: a reply sent at once would pass held ones.)
                    write(b"".join(out))
                    out, size = [], 0
                    hold, write = True, self._hold
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
        if self.dispatcher.shutdown_requested is not None:
            # At once, not after the held replies: no other client's command
            # may run (and be acknowledged) after SHUTDOWN's snapshot.
            self.server.request_stop()
        if self.held:
            self.after_held = self._finish
            return
        if self.transport is not None:
            self.transport.close()  # sends what was written first

    def _protocol_error(self) -> None:
        parser = self.parser
        assert parser is not None and parser.error is not None and self.transport is not None
        if self.held:  # the replies before the error go first
            self.closing = True
            self.after_held = self._protocol_error
            return
        self.dispatcher.protocol_errors += 1
        # Redis logs these at verbose: a client's mistake, not the server's.
        log.debug("protocol error from %s: %s", self.client and self.client.addr, parser.error)
        transport = self.transport
        transport.write(error(f"ERR {parser.error}"))
        self.closing = True
        # Closing a socket whose peer's bytes are still unread sends a reset,
        # which can reach the client before the error reply and discard it.
        # So: the reply, then a FIN (write_eof), and input is read and dropped
        # (closing is set) until the client closes or the linger time ends.
        if transport.can_write_eof():
            transport.write_eof()
            asyncio.get_running_loop().call_later(_LINGER_SECONDS, transport.close)
        else:
            transport.close()

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
