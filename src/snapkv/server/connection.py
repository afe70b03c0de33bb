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
* A blocked client (BLPOP on empty lists, a command held by CLIENT PAUSE, the
  caller of a busy script: ``Client.blocked``) runs none of its later
  commands until ``Client.wake`` gives its reply (or asks for the command
  to run again); its wait times out on a timer here. Its later input is
  still read, up to :data:`_MAX_WAITING` commands, as Redis keeps reading
  a blocked client's query buffer.
* ``Client.push`` writes outside any reply (pub/sub messages, MONITOR), from
  any thread; the class's ``client-output-buffer-limit`` closes a client
  that does not read them (Redis's ``checkClientOutputBufferLimits``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from snapkv.server.client import REPLY_ON, REPLY_SKIP, Client
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
#: Commands read from a blocked client before reading pauses until it is woken.
_MAX_WAITING = 1024
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
        #: The client is blocked (``client.blocked``): later commands wait in ``pending``.
        self.waiting = False
        #: The blocked client's timeout.
        self.block_timer: asyncio.TimerHandle | None = None
        #: Since when the unsent output is over the class's soft limit (monotonic).
        self.soft_since: float | None = None
        #: The replies ``_run`` is joining, while it runs: pushes join them in order.
        self.batch: list[bytes] | None = None
        #: A wake that came before the connection saw the wait start (the
        #: blocking command's own turn): ``(reply,)``, delivered by ``_wait``.
        self.early_wake: tuple[bytes | None] | None = None
        #: Pushes that go right after the running command's reply.
        self.after: list[bytes] = []

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
        client.push = self.push
        client.push_after = self.push_after
        client.wake = self.wake
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
        self._unblock()
        if self.client is not None:
            self.dispatcher.remove_client(self.client)
        self.server.connections.discard(self)

    def close(self) -> None:
        """Close now, dropping unsent replies (CLIENT KILL, idle timeout, server stop)."""
        self.closing = True
        self._drop()
        self._unblock()
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
        if self.paused or self.pending or self.held_full or self.waiting:
            self.pending.extend(commands)
            if self.waiting and len(self.pending) > _MAX_WAITING and self.transport is not None:
                self.transport.pause_reading()
            return
        if len(commands) == 1 and client.plain:
            # The common case (one request per read) without list juggling.
            reply = self.execute(client, commands[0])
            if not (
                client.close_after_reply or parser.unauthenticated or client.blocked is not None
            ):
                if self.hold:
                    self._hold(reply)
                else:
                    assert self.transport is not None
                    self.transport.write(reply)
                if self.after:
                    self._flush_after()
                if parser.error is not None:
                    self._protocol_error()
                elif self.dispatcher.shutdown_requested is not None:
                    self.server.request_stop()
                return
            self.pending = [commands[0]]
            self._run(reply)
            return
        self.pending = commands
        self._run()

    def _run(self, first: bytes | None = None) -> None:
        """Run pending commands until none are left or the client stops reading.

        ``first``: the reply of a command already run (the fast path's),
        still at the head of ``pending``. While it runs, ``batch`` is the
        list of replies it joins, so a push lands after the replies before it.
        """
        if self.server.stopping:
            self.pending = []
            return
        if self.waiting:
            return
        out: list[bytes] = []
        self.batch = out
        try:
            self._run_batch(out, first)
        finally:
            self.batch = None

    def _run_batch(self, out: list[bytes], first: bytes | None) -> None:
        client = self.client
        parser = self.parser
        transport = self.transport
        assert client is not None and parser is not None and transport is not None
        execute = self.execute
        hold = self.hold
        write = self._hold if hold else transport.write
        high = self.server.config.output_high_water
        size = 0
        while True:
            pending = self.pending
            self.pending = []
            for i, argv in enumerate(pending):
                if first is not None:
                    reply, first = first, None
                else:
                    reply = execute(client, argv)
                if client.blocked is not None:
                    # This command waits (its reply comes through wake());
                    # the ones after it wait for it.
                    if out:
                        write(b"".join(out))
                        out.clear()
                    self.pending = pending[i + 1 :]
                    self.batch = None
                    self._wait()
                    return
                out.append(reply)
                size += len(reply)
                if self.after:
                    out.extend(self.after)
                    self.after.clear()
                if not hold and self.hold:
                    # CONFIG SET appendfsync always ran in this batch: the
                    # replies after it wait for the group sync, as every
                    # later one does. (The other way round the batch keeps
                    # holding: a reply sent at once would pass held ones.)
                    write(b"".join(out))
                    out.clear()
                    size = 0
                    hold, write = True, self._hold
                if size >= _FLUSH_AT or client.close_after_reply:
                    write(b"".join(out))
                    out.clear()
                    size = 0
                    if client.close_after_reply or self.closing:
                        self.batch = None
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
            if parser.unauthenticated or not client.authenticated:
                # One command at a time until AUTH: the next one must be
                # parsed with the limits that hold after this one ran (and
                # hold again for a client logged out by RESET or ACL DELUSER).
                parser.unauthenticated = not client.authenticated
                more = parser.parse()
                if more:
                    self.pending = more
                    continue
            break
        self.batch = None
        if out:
            write(b"".join(out))
            out.clear()
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

    # -------------------------------------------------- blocked, push, limits

    def _wait(self) -> None:
        """The client is blocked: arm its timeout; its later commands stay in ``pending``."""
        client = self.client
        assert client is not None
        self.waiting = True
        if self.early_wake is not None:
            (reply,), self.early_wake = self.early_wake, None
            self.wake(reply)
            return
        assert client.blocked is not None
        deadline = client.blocked.deadline
        if deadline is not None:
            delay = max(0.0, deadline - time.monotonic())
            self.block_timer = asyncio.get_running_loop().call_later(delay, self._timed_out)
        if len(self.pending) > _MAX_WAITING and self.transport is not None:
            self.transport.pause_reading()

    def _timed_out(self) -> None:
        self.block_timer = None
        client = self.client
        if client is None or client.blocked is None:
            return
        blocked = client.blocked
        blocked.cancel()
        self.wake(blocked.timeout_reply)

    def _unblock(self) -> None:
        """The connection ends: forget a wait (the registry must not wake a dead client)."""
        if self.block_timer is not None:
            self.block_timer.cancel()
            self.block_timer = None
        client = self.client
        if client is not None and client.blocked is not None:
            blocked, client.blocked = client.blocked, None
            blocked.cancel()
        self.waiting = False

    def wake(self, reply: bytes | None) -> None:
        """End the client's wait: write ``reply``, or run the waiting command again (``None``).

        Callable from any thread. The commands after the waiting one run
        on the next turn of the event loop, as Redis serves unblocked clients
        in ``beforeSleep``, never inside the command that woke this one.
        """
        if self._handed_to_loop(lambda: self.wake(reply)):
            return
        client = self.client
        if client is not None and not self.waiting and client.blocked is not None:
            # Woken during the very command that blocked: _wait delivers it.
            self.early_wake = (reply,)
            return
        if self.block_timer is not None:
            self.block_timer.cancel()
            self.block_timer = None
        blocked = client.blocked if client is not None else None
        if client is not None:
            client.blocked = None
        if self.closing or client is None or not self.waiting:
            return
        transport = self.transport
        assert transport is not None
        if reply is None:
            if blocked is not None:
                self.pending.insert(0, blocked.argv)
        elif reply and client.reply_mode == REPLY_SKIP:
            client.reply_mode = REPLY_ON  # the skipped reply was this one
            client.update_plain()
        elif reply and client.reply_mode == REPLY_ON:
            # Messages published before the write that served this client precede its reply.
            self.dispatcher.pubsub.flush(client)
            if self.hold:
                self._hold(reply)
            else:
                transport.write(reply)
                self._check_output()
        asyncio.get_running_loop().call_soon(self._resume)

    def _handed_to_loop(self, call: Callable[[], None]) -> bool:
        """Off the event loop's thread (a script's, the sweeper's): hand ``call`` to it."""
        dispatcher = self.dispatcher
        if dispatcher.loop_thread is None or threading.get_ident() == dispatcher.loop_thread:
            return False
        assert dispatcher.threadsafe_call is not None
        dispatcher.threadsafe_call(call)
        return True

    def _resume(self) -> None:
        """Carry on after a wait: the commands read meanwhile, then reading again."""
        self.waiting = False
        if self.closing or self.transport is None:
            return
        if self.pending and not (self.paused or self.held_full):
            self._run()
        if not (self.paused or self.closing or self.held_full or self.waiting):
            self.transport.resume_reading()

    def push(self, data: bytes) -> None:
        """Write ``data`` outside any reply (pub/sub, MONITOR), from any thread."""
        if self._handed_to_loop(lambda: self.push(data)):
            return
        transport = self.transport
        client = self.client
        if self.closing or transport is None or transport.is_closing() or client is None:
            return
        batch = self.batch
        if batch is not None:
            # Pushed by a command of the batch _run is joining (a RESP3
            # subscriber's own PUBLISH): after the replies before it, as in
            # Redis's one output buffer. (CLIENT REPLY OFF drops replies, not
            # pushes: Redis writes pub/sub and invalidations whatever the mode.)
            batch.append(data)
            return
        if self.hold:
            self._hold(data)
        else:
            transport.write(data)
        self._check_output()

    def push_after(self, data: bytes) -> None:
        """Push ``data`` right after the reply of the command running now.

        From another thread (a script's, whose command's reply the event loop
        writes once the script ends) it is handed to the loop, after that reply.
        """
        if self._handed_to_loop(lambda: self.push(data)):
            return
        if not self.after:
            asyncio.get_running_loop().call_soon(self._flush_after)
        self.after.append(data)

    def _flush_after(self) -> None:
        if self.after:
            after, self.after = self.after, []
            self.push(b"".join(after))

    def _check_output(self) -> None:
        """Close a client whose unsent output passes its class's limits (Redis's rules).

        The hard limit closes at once; the soft one once the output stayed
        over it for its seconds. Normal clients have none by default: they
        are held back by back-pressure instead (see the module docstring).
        """
        client = self.client
        transport = self.transport
        if client is None or transport is None:
            return
        hard, soft, seconds = self.dispatcher.config.client_output_buffer_limit[
            "pubsub" if client.subscribed else "normal"
        ]
        if not (hard or soft):
            return
        size = transport.get_write_buffer_size() + self.held_size
        over = bool(hard and size >= hard)
        if not over and soft and size >= soft:
            now = time.monotonic()
            if self.soft_since is None:
                self.soft_since = now
            over = now - self.soft_since > seconds  # Redis: more than the seconds
        elif size < soft or not soft:
            self.soft_since = None
        if over:
            log.warning(
                "Client %s scheduled to be closed ASAP for overcoming of output buffer limits.",
                client.info_line(),
            )
            self.close()

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
