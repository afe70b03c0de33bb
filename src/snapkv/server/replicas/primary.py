"""snapkv as a Redis primary: replicas attach, get a snapshot, then every write (``replication.c``).

The registry (``server.replicas``, made by :func:`install`) holds the
backlog, the :class:`~snapkv.server.replicas.feed.Feed` and the attached
replicas (:class:`~snapkv.server.replicas.link.Link`):

* The first replica creates the backlog (a new replication ID, as Redis's
  ``createReplicationBacklog``) and taps the Store: from then on every
  record the Store commits becomes commands (the feed, under the Store's
  lock, on whichever thread wrote), fed to the backlog and queued for the
  replicas; :meth:`Primary.ship`, on the event loop's thread, hands the
  queue to each replica's connection. Without replicas for
  ``repl-backlog-ttl`` seconds the backlog is freed and the tap removed.
* ``PSYNC replid offset`` continues from the backlog (``+CONTINUE``) when
  it holds that offset; otherwise (and for ``SYNC``) a full
  resynchronisation: ``+FULLRESYNC <replid> <offset>``, the Store's frozen
  copy taken at exactly that offset, written as an RDB file by a thread
  (never the event loop's) and sent as it comes (``$EOF:`` framing) or as
  one bulk; the stream after the offset is buffered for that replica until
  the file is sent.
* Every second (Redis's ``replicationCron``): a ``PING`` into the stream
  every ``repl-ping-replica-period`` seconds, replicas silent for
  ``repl-timeout`` dropped, the output bound checked.
* ``REPLCONF ACK`` offsets give each replica's lag and serve ``WAIT``.

The snapshot is written in memory, not to disk: ``repl-diskless-sync`` is
accepted and changes nothing (see docs/SERVER.md).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from snapkv.server.client import Blocked
from snapkv.server.replicas.backlog import Backlog, new_replid
from snapkv.server.replicas.feed import Feed, command
from snapkv.server.replicas.link import Link
from snapkv.server.replicas.snapshot import send_snapshot
from snapkv.server.resp.writer import integer

if TYPE_CHECKING:
    from snapkv.server.client import Client
    from snapkv.server.state import ServerState

__all__ = ["Primary", "install", "registry"]

log = logging.getLogger("snapkv.server")

_PING = command(["PING"])
_GETACK = command(["REPLCONF", "GETACK", "*"])


class _Waiter:
    __slots__ = ("client", "count", "offset", "timer")

    def __init__(self, client: Client, count: int, offset: int) -> None:
        self.client = client
        self.count = count
        self.offset = offset
        self.timer: Any = None


class Primary:
    """The replicas of one server, its backlog and its stream (see the module docstring)."""

    def __init__(self, server: ServerState) -> None:
        self.server = server
        self.store = server.store
        self.backlog: Backlog | None = None
        #: The replication ID INFO shows before any replica (the backlog makes a new one).
        self.replid = new_replid()
        self.feed = Feed(self.store, self._emit)
        self.links: list[Link] = []
        #: INFO stats' sync_full, sync_partial_ok, sync_partial_err.
        self.sync_full = 0
        self.sync_partial_ok = 0
        self.sync_partial_err = 0
        self._mutex = threading.Lock()  # backlog and queue; taken after the Store's lock
        self._queue: list[tuple[int, bytes]] = []
        self._shipping = False
        self._waiters: list[_Waiter] = []
        self._cron: Any = None
        self._last_ping = 0.0
        self._alone_since = time.monotonic()
        self._listener_before: Any = None
        self._broken = False
        #: REPLCONF listening-port / ip-address / capa of clients not yet replicas.
        self.handshakes: dict[int, tuple[int, str, set[str]]] = {}

    # ------------------------------------------------------------ stream

    def _emit(self, data: bytes) -> None:
        """The feed's bytes (caller holds the Store's lock): into the backlog and the queue."""
        with self._mutex:
            backlog = self.backlog
            if backlog is None:
                return
            self._queue.append((backlog.offset, data))
            backlog.feed(data)
            if self._shipping:
                return
            self._shipping = True
        server = self.server
        if server.loop_thread == threading.get_ident() and server.call_later is not None:
            server.call_later(0, self.ship)  # after this command; no wake-up write
        elif server.threadsafe_call is not None:
            try:
                server.threadsafe_call(self.ship)
            except RuntimeError:  # the loop is closed: the server stopped, no replica is left
                with self._mutex:
                    self.backlog = None  # nothing more is kept for a replica
                    self._queue = []
                return
        else:
            self.ship()

    def _guarded(self, call: Any, *args: Any) -> None:
        """Run a feed step on the write path, which must never fail because of a replica.

        A record the feed cannot translate would leave the replicas' stream
        wrong: it is logged, and the next delivery starts a new history (a
        new replication ID), so every replica syncs in full again.
        """
        try:
            call(*args)
        except Exception:
            log.exception("Replication stream: a record could not be translated")
            self._broken = True

    def settle(self) -> None:
        """Translate a record that waited for memory after it, now (Feed.settle).

        Called as soon as such a write is in memory (the Store's ``settled``
        hook), and before the offset is read (INFO, ROLE, WAIT): every write
        already answered is in the stream then, so ``master_repl_offset``
        equal to a replica's means it has every write (the cutover's test).
        Skipped inside a transaction (memory holds its uncommitted writes)
        and when another thread holds the Store's lock (its record settles it).
        """
        if self.feed.waiting and not self.store.in_transaction:
            self.store.under_lock(lambda: self._guarded(self.feed.settle), blocking=False)

    def ship(self) -> None:
        """Hand the queued stream to each replica (on the event loop's thread)."""
        self.settle()
        if self._broken:
            self._restart_history()
            return
        backlog = self.backlog
        size = self.server.config.repl_backlog_size
        if backlog is not None and backlog.size != size:
            with self._mutex:
                backlog.resize(size)  # CONFIG SET repl-backlog-size
        with self._mutex:
            queue, self._queue = self._queue, []
            self._shipping = False
        if not queue:
            return
        limits = self.server.config.client_output_buffer_limit["replica"]
        for link in list(self.links):
            for start, data in queue:
                link.deliver(start, data)
            if link.over_limit(limits):
                self.drop(link, "for overcoming of output buffer limits.")

    def _restart_history(self) -> None:
        """After a translation failure: a new replication ID, every replica dropped to resync."""
        self._broken = False
        with self._mutex:
            if self.backlog is not None:
                size = self.server.config.repl_backlog_size
                self.backlog = Backlog(size, offset=self.backlog.offset)
            self._queue = []
        for link in list(self.links):
            self.drop(link, "to resynchronize after a replication stream error.")

    def drop(self, link: Link, why: str) -> None:
        log.warning("Client %s scheduled to be closed ASAP %s", link.client.info_line(), why)
        self.forget(link.client)
        link.client.kill()

    def _start(self) -> Backlog:
        """The first replica: a backlog with a new replication ID, the Store tapped."""
        backlog = self.backlog
        if backlog is not None:
            return backlog
        with self._mutex:
            self.backlog = backlog = Backlog(self.server.config.repl_backlog_size)
        store = self.store
        before = store.expired_listener
        feed = self.feed

        def expired(db: int, keys: list[str]) -> None:
            if before is not None:
                before(db, keys)
            self._guarded(feed.expired, db, keys)

        self._listener_before = before
        store.expired_listener = expired
        store.tap(lambda record: self._guarded(feed.record, record), self.settle)
        self._arm()
        return backlog

    def _stop(self) -> None:
        """No replica for ``repl-backlog-ttl``: free the backlog, stop listening."""
        store = self.store
        store.tap(None)
        store.expired_listener = self._listener_before
        with self._mutex:
            self.backlog = None
            self._queue = []
        self.feed.restart()
        log.info(
            "Replication backlog freed after %d seconds without connected replicas.",
            self.server.config.repl_backlog_ttl,
        )

    # -------------------------------------------------------------- sync

    def attach(self, client: Client, link: Link, replid: str | None, offset: int) -> bytes:
        """SYNC (``replid`` None) or PSYNC: the reply, and the replica registered."""
        client.replica = True  # CLIENT LIST: flags=S, TYPE replica
        backlog = self.backlog
        if replid is not None and backlog is not None and backlog.can_continue(replid, offset):
            with self._mutex:
                data = backlog.since(offset)
                link.sent = backlog.offset
                link.ack_offset = offset - 1
                link.state = "online"
                self.links.append(link)
            self.sync_partial_ok += 1
            log.info(
                "Partial resynchronization request from %s accepted. Sending %d bytes of "
                "backlog starting from offset %d.",
                link.name(),
                len(data),
                offset,
            )
            return b"+CONTINUE %s\r\n%s" % (backlog.replid.encode(), data)
        link.pre_psync = replid is None
        if replid is not None and replid != "?":
            self.sync_partial_err += 1
        self.sync_full += 1
        backlog = self._start()

        def mark() -> int:
            self.feed.settle()
            self.feed.restart()  # the replica's stream selects its keyspace anew
            with self._mutex:
                link.sent = backlog.offset
                self.links.append(link)
                offset = backlog.offset
            self.feed.stream_counters()  # what RDB 9 cannot say, first in the stream
            return offset

        copy = self.store.frozen_copy(mark)
        at: int = copy.mark
        log.info("Full resync requested by replica %s", link.name())
        thread = threading.Thread(
            target=send_snapshot,
            args=(self, link, copy, backlog.replid, at),
            name="snapkv-repl-snapshot",
            daemon=True,
        )
        thread.start()
        if replid is None:
            return b""  # SYNC: the bulk alone
        return b"+FULLRESYNC %s %d\r\n" % (backlog.replid.encode(), at)

    def snapshot_sent(self, link: Link, end: bytes) -> None:
        """The ``$EOF:`` file's end mark: the stream waits for the replica's first ACK.

        The replica finds the end by the mark being the last bytes it read, so
        nothing may follow until it has loaded the file and says so (Redis's
        ``repl_put_online_on_ack``).
        """
        if link in self.links:
            link.send_snapshot(end)
            link.online_on_ack = True
            link.ack_time = time.monotonic()  # repl-timeout counts from here (Redis's)

    def snapshot_whole(self, link: Link, pieces: list[bytes]) -> None:
        if link not in self.links:
            return  # gone meanwhile
        for piece in pieces:
            link.send_snapshot(piece)
        link.online_on_ack = False
        self.ship()  # what the queue holds goes into its buffer first
        link.go_online()
        log.info(
            "Synchronization with replica %s succeeded (%d bytes of snapshot)",
            link.name(),
            link.bulk,
        )

    def call_on_loop(self, call: Any) -> bool:
        """Run ``call`` on the loop's thread; ``False`` when the loop is closed (it stopped)."""
        threadsafe = self.server.threadsafe_call
        try:
            if threadsafe is None:
                call()
            else:
                threadsafe(call)
        except RuntimeError:
            return False
        return True

    # ------------------------------------------------------------ replicas

    def link_of(self, client: Client) -> Link | None:
        for link in self.links:
            if link.client is client:
                return link
        return None

    def forget(self, client: Client) -> None:
        link = self.link_of(client)
        if link is not None:
            self.links.remove(link)
            log.info("Connection with replica %s lost.", link.name())
            if not self.links:
                self._alone_since = time.monotonic()

    def acked(self, client: Client, offset: int) -> None:
        """REPLCONF ACK ``offset`` from a replica."""
        link = self.link_of(client)
        if link is None:
            return
        link.ack_offset = max(link.ack_offset, offset)
        link.ack_time = time.monotonic()
        if link.online_on_ack:
            self.snapshot_whole(link, [])
        if self._waiters:
            self._serve_waiters()

    def acknowledged(self, offset: int) -> int:
        """How many online replicas acknowledged ``offset``."""
        return sum(1 for link in self.links if link.state == "online" and link.ack_offset >= offset)

    @property
    def offset(self) -> int:
        """``master_repl_offset``, every write answered so far in it."""
        self.settle()
        backlog = self.backlog
        return backlog.offset if backlog is not None else 0

    # ---------------------------------------------------------------- WAIT

    def wait(self, client: Client, count: int, timeout_ms: int) -> bytes:
        """WAIT: the reply now, or ``b""`` with ``client`` blocked until enough replicas ack."""
        target = self.offset
        have = self.acknowledged(target)
        if have >= count or client.scripting or self.store.in_transaction:
            return integer(have)
        waiter = _Waiter(client, count, target)
        self._waiters.append(waiter)
        client.blocked = Blocked(  # CLIENT UNBLOCK answers the count so far
            [], "wait", timeout_reply=integer(have), cancel=lambda: self._unwait(waiter)
        )
        self.store.under_lock(lambda: self._emit(_GETACK))
        later = self.server.call_later
        if timeout_ms > 0 and later is not None:
            waiter.timer = later(timeout_ms / 1000, lambda: self._timeout(waiter))
        return b""

    def _unwait(self, waiter: _Waiter) -> None:
        if waiter in self._waiters:
            self._waiters.remove(waiter)
        if waiter.timer is not None:
            waiter.timer.cancel()

    def _timeout(self, waiter: _Waiter) -> None:
        if waiter in self._waiters:
            self._waiters.remove(waiter)
            waiter.client.wake(integer(self.acknowledged(waiter.offset)))

    def _serve_waiters(self) -> None:
        for waiter in list(self._waiters):
            have = self.acknowledged(waiter.offset)
            if have >= waiter.count:
                self._unwait(waiter)
                waiter.client.wake(integer(have))

    # ---------------------------------------------------------------- cron

    def _arm(self) -> None:
        later = self.server.call_later
        if self._cron is None and later is not None:
            self._cron = later(1.0, self._tick)

    def _tick(self) -> None:
        """Once a second while there is a backlog (Redis's ``replicationCron``)."""
        self._cron = None
        if self.backlog is None:
            return
        config = self.server.config
        now = time.monotonic()
        for link in list(self.links):
            # Online, or sent its whole snapshot and not yet loaded it (Redis counts both).
            streaming = link.state == "online" or link.online_on_ack
            if streaming and not link.pre_psync and now - link.ack_time > config.repl_timeout:
                log.warning("Disconnecting timedout replica (streaming sync): %s", link.name())
                self.forget(link.client)
                link.client.kill()
        paused = self.server.pause_mode is not None  # offsets stay still for a cutover
        if self.links and not paused and now - self._last_ping >= config.repl_ping_replica_period:
            self._last_ping = now
            self.store.under_lock(lambda: self._emit(_PING))
        self.ship()
        ttl = config.repl_backlog_ttl
        if not self.links and ttl and now - self._alone_since >= ttl:
            self._stop()
            return
        self._arm()

    def client_gone(self, client: Client) -> None:
        self.handshakes.pop(client.id, None)
        self.forget(client)
        for waiter in list(self._waiters):
            if waiter.client is client:
                self._unwait(waiter)


def install(server: ServerState) -> None:
    """Give ``server`` its replicas registry (``server.replicas``)."""
    primary = Primary(server)
    server.replicas = primary
    server.client_gone.append(primary.client_gone)


def registry(server: ServerState) -> Primary:
    """The server's :class:`Primary` (made on first use for a server built without it)."""
    primary = server.replicas
    if primary is None:
        install(server)
        primary = server.replicas
    assert isinstance(primary, Primary)
    return primary
