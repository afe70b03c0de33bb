"""The pub/sub registry (Redis's ``pubsub.c``): who listens to which channel, and publishing.

Three tables, as Redis's ``server.pubsub_channels``, ``pubsub_patterns`` and
``pubsubshard_channels``: a channel, pattern or shard channel maps to its
subscribers in subscription order (PUBLISH delivers in that order, as
Redis walks its list). A name with no subscriber left is removed, so a
client cannot make the server keep millions of dead channels. What a client
subscribes to is also kept on the client (``Client.channels``, ``patterns``,
``shard_channels``: CLIENT LIST's ``sub=``, the dispatcher's subscribed-mode
check); both sides change together, here only.

Publishing costs one lookup, one glob match per distinct pattern (each
compiled once, when its first subscriber arrives) and, per matching
audience, the message encoded once per protocol; each subscriber then has
those bytes appended to its queue. The queues are written once per turn of
the event loop, one ``Client.push`` per client, as Redis writes a client's
output buffer once per event-loop turn (``handleClientsWithPendingWrites``):
a pipeline of 50 PUBLISH to 100 subscribers makes 100 socket writes, not
5,000. The order a client sees stays the order of publication, and it stays
Redis's order against the client's own replies where a client can tell:
its own PUBLISH's message precedes the reply, and a (un)subscribe command
writes what was queued before its confirmation (no message follows the
confirmation that its channel was left). Messages queued by another client
in the same loop turn as a RESP3 client's command may follow that
command's reply: the two were concurrent. Without an event loop (the
dispatcher driven directly) messages are pushed at once.

**Threads.** Subscriptions change only on the event loop's thread (the
commands, RESET, a disconnect), and the queues are only touched there.
:func:`publish` may also run on a script's thread or on the Store's
sweeper thread (keyspace notifications of expired keys). So the tables
change under the registry's lock, a publisher on another thread reads them
under it (copying the audiences it matched: a tuple, cached until the
audience changes) and hands the delivery to the loop
(``threadsafe_call``), and a publisher on the loop's thread, which nothing
can change the tables under, reads them without it. ``push`` is never
called under the lock, so a push that closes a slow client cannot come
back into the registry while it is locked, and a publisher on another
thread sees each subscription whole or not at all. A message published
while a client subscribes reaches it or not, as the order of the two
decides in Redis. (Without an event loop, as when the dispatcher is driven
directly, every publisher takes the lock and pushes at once.)
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from threading import get_ident
from typing import TYPE_CHECKING, Final

from snapkv.server.glob import Glob
from snapkv.server.resp.text import ENCODING, ERRORS
from snapkv.server.resp.writer import bulk

if TYPE_CHECKING:
    from snapkv.server.client import Client
    from snapkv.server.state import ServerState

__all__ = [
    "KINDS",
    "PubSub",
    "counts",
    "install",
    "publish",
    "registry",
    "unsubscribe_all",
]

#: What a client subscribes to: channels (SUBSCRIBE), patterns (PSUBSCRIBE),
#: shard channels (SSUBSCRIBE).
KINDS: Final = ("channel", "pattern", "shard")

#: The head of each push, by protocol (RESP2 array, RESP3 push).
_MESSAGE: Final = (b"*3\r\n$7\r\nmessage\r\n", b">3\r\n$7\r\nmessage\r\n")
_PMESSAGE: Final = (b"*4\r\n$8\r\npmessage\r\n", b">4\r\n$8\r\npmessage\r\n")
_SMESSAGE: Final = (b"*3\r\n$8\r\nsmessage\r\n", b">3\r\n$8\r\nsmessage\r\n")


def _never(channel: str) -> bool:
    return False


def _body(channel: str, message: str) -> bytes:
    """A message's last two elements, channel and payload, as bulk strings (one format)."""
    name = channel.encode(ENCODING, ERRORS)
    data = message.encode(ENCODING, ERRORS)
    return b"$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(name), name, len(data), data)


class _Audience:
    """The subscribers of one channel or pattern, in subscription order.

    ``members`` is a dict used as an ordered set (O(1) to add and remove);
    ``snapshot`` is its tuple, rebuilt by the first publish after a change,
    so a burst of PUBLISH copies nothing.
    """

    __slots__ = ("head", "match", "members", "snapshot")

    def __init__(self, name: str, match: Callable[[str], bool] | None = None) -> None:
        self.members: dict[Client, None] = {}
        self.snapshot: tuple[Client, ...] | None = None
        #: A pattern's compiled matcher (a channel's is never called).
        self.match = match or _never
        #: A pattern's ``$len`` bulk, encoded once for every pmessage.
        self.head = bulk(name) if match is not None else b""

    def clients(self) -> tuple[Client, ...]:
        snapshot = self.snapshot
        if snapshot is None:
            snapshot = self.snapshot = tuple(self.members)
        return snapshot


#: Some subscribers and one message, in RESP2's and RESP3's bytes.
_Batch = tuple[tuple["Client", ...], bytes, bytes]


class PubSub:
    """The three tables and their lock (see the module docstring)."""

    __slots__ = (
        "_order",
        "_pending",
        "_scheduled",
        "channels",
        "lock",
        "patterns",
        "server",
        "shard_channels",
    )

    def __init__(self, server: ServerState) -> None:
        self.server = server
        self.lock = threading.Lock()
        self.channels: dict[str, _Audience] = {}
        self.patterns: dict[str, _Audience] = {}
        self.shard_channels: dict[str, _Audience] = {}
        #: (client, kind) -> its names of that kind in subscription order: an
        #: UNSUBSCRIBE without arguments goes through them in that order (Redis
        #: 7.0 keeps a client's patterns in a list; its channels in a dict,
        #: whose order is its hash's, seeded at random when it starts).
        self._order: dict[tuple[Client, str], dict[str, None]] = {}
        #: Messages published since the last flush, per client, in order.
        self._pending: dict[Client, list[bytes]] = {}
        #: A flush is scheduled on the event loop.
        self._scheduled = False

    # ------------------------------------------------------------- changes

    def subscribe(self, client: Client, name: str, kind: str) -> bool:
        """Add ``client`` to ``name`` (``kind``: channel, pattern or shard); False if it was."""
        key = (client, kind)
        mine = self._order.get(key)
        if mine is not None and name in mine:
            return False
        table = self._table(kind)
        with self.lock:
            if mine is None:
                mine = self._order[key] = {}
            mine[name] = None
            audience = table.get(name)
            if audience is None:
                match = Glob(name).match if kind == "pattern" else None
                audience = table[name] = _Audience(name, match)
            audience.members[client] = None
            audience.snapshot = None
            _client_set(client, kind).add(name)
        return True

    def unsubscribe(self, client: Client, name: str, kind: str) -> bool:
        """Remove ``client`` from ``name``; False if it was not subscribed."""
        key = (client, kind)
        mine = self._order.get(key)
        if mine is None or name not in mine:
            return False
        table = self._table(kind)
        with self.lock:
            del mine[name]
            if not mine:
                del self._order[key]
            _client_set(client, kind).discard(name)
            audience = table[name]
            del audience.members[client]
            audience.snapshot = None
            if not audience.members:
                del table[name]
        return True

    def subscriptions(self, client: Client, kind: str) -> list[str]:
        """``client``'s names of ``kind``, in the order it subscribed to them."""
        return list(self._order.get((client, kind), ()))

    def _table(self, kind: str) -> dict[str, _Audience]:
        if kind == "channel":
            return self.channels
        if kind == "pattern":
            return self.patterns
        return self.shard_channels

    # ------------------------------------------------------------ publish

    def publish(self, channel: str, message: str, sender: Client | None = None) -> int:
        """Send ``message`` to ``channel``'s subscribers and matching patterns; how many got it.

        ``sender``: the client whose PUBLISH this is; if it listens too, its
        copy goes out before its reply, as in Redis 7.0.
        """
        loop = self.server.loop_thread
        on_loop = loop is not None and get_ident() == loop
        if on_loop and not self.patterns:
            # The common case, kept lean: a channel's subscribers on the loop.
            audience = self.channels.get(channel)
            if audience is None:
                return 0
            clients = audience.snapshot or audience.clients()
            name = channel.encode(ENCODING, ERRORS)
            data = message.encode(ENCODING, ERRORS)
            body = b"$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(name), name, len(data), data)
            resp2, resp3 = _MESSAGE[0] + body, _MESSAGE[1] + body
            if self.server.threadsafe_call is None:
                self._deliver([(clients, resp2, resp3)], sender, True)
                return len(clients)
            # _queue's loop, inline: this is most of what PUBLISH costs.
            pending = self._pending
            for client in clients:
                queued = pending.get(client)
                if queued is None:
                    pending[client] = [resp3 if client.resp == 3 else resp2]
                else:
                    queued.append(resp3 if client.resp == 3 else resp2)
            if not self._scheduled or (sender is not None and sender in pending):
                self._queued(sender)
            return len(clients)
        if on_loop:
            direct, matched = self._match(channel)
        else:
            with self.lock:
                direct, matched = self._match(channel)
        if not direct and not matched:
            return 0
        body = _body(channel, message)
        batches = [(direct, _MESSAGE[0] + body, _MESSAGE[1] + body)] if direct else []
        receivers = len(direct)
        for head, clients in matched:
            receivers += len(clients)
            tail = head + body
            batches.append((clients, _PMESSAGE[0] + tail, _PMESSAGE[1] + tail))
        self._deliver(batches, sender, on_loop)
        return receivers

    def spublish(self, channel: str, message: str, sender: Client | None = None) -> int:
        """SPUBLISH: a shard channel's subscribers only (patterns never see shard messages)."""
        on_loop = self._on_loop()
        if on_loop:
            clients = self._shard_match(channel)
        else:
            with self.lock:
                clients = self._shard_match(channel)
        if clients:
            body = _body(channel, message)
            self._deliver([(clients, _SMESSAGE[0] + body, _SMESSAGE[1] + body)], sender, on_loop)
        return len(clients)

    def _shard_match(self, channel: str) -> tuple[Client, ...]:
        audience = self.shard_channels.get(channel)
        return audience.clients() if audience is not None else ()

    def _on_loop(self) -> bool:
        """Whether the caller runs on the event loop's thread (the only one that changes tables)."""
        loop = self.server.loop_thread
        return loop is not None and get_ident() == loop

    def _match(
        self, channel: str
    ) -> tuple[tuple[Client, ...], list[tuple[bytes, tuple[Client, ...]]]]:
        """The channel's subscribers and each matching pattern's (its bulk, its clients)."""
        audience = self.channels.get(channel)
        direct = audience.clients() if audience is not None else ()
        patterns = self.patterns
        if not patterns:
            return direct, []
        return direct, [(a.head, a.clients()) for a in patterns.values() if a.match(channel)]

    def _deliver(self, batches: list[_Batch], sender: Client | None, on_loop: bool) -> None:
        """Queue each message for its clients, on the event loop's thread.

        Without an event loop (the dispatcher driven directly) they are pushed at once.
        """
        schedule = self.server.threadsafe_call
        if schedule is None:
            for clients, resp2, resp3 in batches:
                for client in clients:
                    client.push(resp3 if client.resp == 3 else resp2)
        elif on_loop:
            self._queue(batches, sender)
        else:
            # RuntimeError: the loop is closed (the server stopped while the
            # sweeper or a script still ran): there is nobody left to deliver to.
            with contextlib.suppress(RuntimeError):
                schedule(lambda: self._queue(batches, None))

    def _queue(self, batches: list[_Batch], sender: Client | None) -> None:
        """Append to the clients' queues and make sure a flush comes (event loop's thread only)."""
        pending = self._pending
        for clients, resp2, resp3 in batches:
            for client in clients:
                queued = pending.get(client)
                if queued is None:
                    pending[client] = [resp3 if client.resp == 3 else resp2]
                else:
                    queued.append(resp3 if client.resp == 3 else resp2)
        self._queued(sender)

    def _queued(self, sender: Client | None) -> None:
        """Messages were queued: make sure a flush comes; the sender's own go out now."""
        if not self._scheduled:
            self._scheduled = True
            try:
                # On the loop's own thread no wake-up is needed: call_soon runs
                # the flush before the loop polls for more input.
                asyncio.get_running_loop().call_soon(self._flush)
            except RuntimeError:  # no running loop here: the server's way in
                assert self.server.threadsafe_call is not None
                self.server.threadsafe_call(self._flush)
        if sender is not None and sender in self._pending:
            self.flush(sender)

    def _flush(self) -> None:
        """Write every queued message, one push per client (event loop's thread only)."""
        pending, self._pending = self._pending, {}
        self._scheduled = False
        for client, queued in pending.items():
            client.push(queued[0] if len(queued) == 1 else b"".join(queued))

    def flush(self, client: Client) -> None:
        """Write ``client``'s queued messages now (before a reply that must follow them)."""
        queued = self._pending.pop(client, None)
        if queued:
            client.push(b"".join(queued))

    # -------------------------------------------------------------- reads

    def names(self, kind: str) -> list[str]:
        """The channels (or patterns, shard channels) with a subscriber, oldest first."""
        with self.lock:
            return list(self._table(kind))

    def listeners(self, name: str, kind: str) -> int:
        """How many clients subscribe to ``name`` (PUBSUB NUMSUB / SHARDNUMSUB)."""
        audience = self._table(kind).get(name)
        return len(audience.members) if audience is not None else 0


def _client_set(client: Client, kind: str) -> set[str]:
    """The client's own record of ``kind`` (CLIENT LIST, the subscribed-mode check)."""
    if kind == "channel":
        return client.channels
    if kind == "pattern":
        return client.patterns
    return client.shard_channels


# ------------------------------------------------------- the module's API


def install(server: ServerState) -> None:
    """Give ``server`` its registry (``server.pubsub``); a disconnect unsubscribes everything."""
    server.pubsub = PubSub(server)
    server.client_gone.append(unsubscribe_all)


def registry(server: ServerState) -> PubSub:
    """``server``'s registry, typed."""
    pubsub: PubSub = server.pubsub
    return pubsub


def publish(server: ServerState, channel: str, message: str, sender: Client | None = None) -> int:
    """PUBLISH ``message`` to ``channel`` from anywhere (keyspace events, scripts); receivers.

    Safe on any thread (see the module docstring). ``sender``: the client
    whose command this message comes from (a keyspace event of its write),
    if any: should it listen, its copy goes out before its reply, as in
    Redis 7.0, instead of after it with the loop turn's other messages.
    """
    pubsub: PubSub = server.pubsub
    return pubsub.publish(channel, message, sender)


def unsubscribe_all(client: Client) -> None:
    """Drop every subscription of ``client``, silently (a disconnect, RESET).

    As Redis's ``freeClient`` and ``clearClientConnectionState``: no
    unsubscribe confirmation is sent, and the client leaves subscribed mode.
    """
    if not client.subscribed:
        return
    pubsub: PubSub = client.server.pubsub
    pubsub.flush(client)  # what was published before (RESET's reply follows it)
    for kind in KINDS:
        for name in pubsub.subscriptions(client, kind):
            pubsub.unsubscribe(client, name, kind)
    client.update_plain()


def counts(server: ServerState) -> tuple[int, int, int]:
    """INFO's ``pubsub_channels``, ``pubsub_patterns``, ``pubsubshard_channels``.

    Distinct names with at least one subscriber, as Redis 7.0 counts its dicts.
    """
    pubsub: PubSub = server.pubsub
    return len(pubsub.channels), len(pubsub.patterns), len(pubsub.shard_channels)
