"""Clients blocked on keys (Redis 7.0's ``blocking.c``): who waits for which key, served in order.

A blocking pop that finds nothing to take (:mod:`.cmd_blocking`) registers
its client here with :meth:`Blocking.block`: the keys it waits on, the kind
of value it takes (a list or a sorted set) and how to serve it (a function
that pops for that client from one key and returns its reply). The client
is then ``client.blocked`` (see :class:`~snapkv.server.client.Blocked`):
its connection runs none of its later commands until it is woken.

How a waiting client is served, as Redis 7.0 does it:

* Any write that changes keys tells ``ServerState.touch`` (commands, the
  commands of EXEC's queue, a script's calls), which tells the
  ``key_listeners``; this module's listener only *notes* the keys some
  client waits on (Redis's ``signalKeyAsReady``) and queues one
  ``server.deferred`` job. The dispatcher runs that job once the top-level
  command has finished (Redis's ``handleClientsBlockedOnKeys`` after
  ``call``), never in the middle of an EXEC or a script: a transaction that
  pushes then pops in one block leaves nothing, and nobody is served.
* The job takes the noted keys in the order they were noted. For each, the
  clients waiting on it are served first come, first served, while the
  key holds a value of the kind they take; a served client is forgotten
  on every key it waited on, and woken with its reply (``client.wake``).
  A pop that moves an element (BLMOVE) makes its destination ready in
  turn, served in the same job.
* A key that now holds a value of another type serves nobody: the clients
  keep waiting (Redis 7.0 serves only ``o->type`` matching the wait; 7.2
  changed this). A client waiting for a list is passed over when the key
  is a sorted set, and the other way round.
* A stream is read, not consumed (XREAD BLOCK, :mod:`.cmd_stream`): every
  client waiting on a stream key is tried, each for the entries after its
  own ID, and one with nothing new keeps waiting.
* On timeout, CLIENT UNBLOCK or disconnect the connection calls the wait's
  ``cancel``: the client is forgotten here.

The listener is registered only while someone waits, so a server with no
blocked client pays nothing per write for blocking.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, cast

from snapkv.server.client import Blocked
from snapkv.server.resp.writer import error

if TYPE_CHECKING:
    from snapkv.server.client import Client
    from snapkv.server.state import ServerState

log = logging.getLogger("snapkv.server")

__all__ = ["UNBLOCKED", "Blocking", "Serve", "Waiter", "install", "registry", "unblock"]

#: The reply of a wait ended by CLIENT UNBLOCK ... ERROR (Redis's text).
UNBLOCKED: Final = error("UNBLOCKED client unblocked via CLIENT UNBLOCK")
#: Longer waits than this (about 30 years) never end by themselves: an event
#: loop's timer cannot be armed that far (Redis's own deadline overflows there).
_FOREVER_SECONDS: Final = 1e9

#: Pop for the waiting client from one key: its reply and the keys it changed
#: (the key, and a move's destination), or ``None`` when there is nothing to take.
Serve = Callable[[str], "tuple[bytes, list[str]] | None"]


class Waiter:
    """One blocked client: where it waits, for what kind of value, and how it is served."""

    __slots__ = ("client", "db", "keys", "kind", "serve")

    def __init__(self, client: Client, keys: list[str], kind: str, serve: Serve) -> None:
        self.client = client
        #: The keyspace the keys are in (the client's when it blocked).
        self.db = client.db_index
        self.keys = keys
        #: ``"list"``, ``"zset"`` or ``"stream"``: the TYPE of value that serves this client.
        self.kind = kind
        self.serve = serve


class Blocking:
    """The clients blocked on keys (Redis's ``db->blocking_keys``) and the keys ready to serve."""

    def __init__(self, server: ServerState) -> None:
        self.server = server
        #: (keyspace, key) -> the clients waiting on it, in the order they came.
        self.waiting: dict[tuple[int, str], dict[Waiter, None]] = {}
        #: Client id -> its wait.
        self.waiters: dict[int, Waiter] = {}
        #: Keys noted ready since the last service, in the order they were noted.
        self.ready: dict[tuple[int, str], None] = {}
        self._queued = False
        self._listening = False

    def __len__(self) -> int:
        """Clients blocked on keys (INFO's ``blocked_clients`` counts these and other waits)."""
        return len(self.waiters)

    # ------------------------------------------------------------ registry

    def block(
        self,
        client: Client,
        argv: list[str],
        keys: list[str],
        kind: str,
        serve: Serve,
        *,
        timeout_ms: int,
        timeout_reply: bytes,
    ) -> bytes:
        """Make ``client`` wait on ``keys`` (Redis's ``blockForKeys``); the handler returns this.

        ``timeout_ms`` 0 waits forever. A key named twice is waited on once.
        """
        waiter = Waiter(client, list(dict.fromkeys(keys)), kind, serve)
        waiting = self.waiting
        for key in waiter.keys:
            waiting.setdefault((waiter.db, key), {})[waiter] = None
        self.waiters[client.id] = waiter
        deadline = None
        if 0 < timeout_ms < _FOREVER_SECONDS * 1000:
            deadline = time.monotonic() + timeout_ms / 1000
        client.blocked = Blocked(
            argv,
            "keys",
            deadline=deadline,
            timeout_reply=timeout_reply,
            cancel=lambda: self.forget(waiter),
        )
        if not self._listening:
            self._listening = True
            # A new list rather than an append (and a removal below): a
            # script's thread may be walking the old one in ``touch``.
            self.server.key_listeners = [*self.server.key_listeners, self.note]
        return b""

    def forget(self, waiter: Waiter) -> None:
        """Remove ``waiter`` from every key it waits on (served, timed out, gone)."""
        if self.waiters.get(waiter.client.id) is not waiter:
            return
        del self.waiters[waiter.client.id]
        waiting = self.waiting
        for key in waiter.keys:
            slot = (waiter.db, key)
            clients = waiting.get(slot)
            if clients is not None:
                clients.pop(waiter, None)
                if not clients:
                    del waiting[slot]
        if not self.waiters and self._listening and not self._queued:
            self._stop_listening()

    def _stop_listening(self) -> None:
        self._listening = False
        self.ready.clear()
        server = self.server
        server.key_listeners = [hook for hook in server.key_listeners if hook != self.note]

    # ------------------------------------------------------------- service

    def note(self, db: int | None, keys: list[str] | None) -> None:
        """The ``key_listeners`` hook: note the written keys someone waits on; serve later.

        Only takes note (it may run inside EXEC or a script, on the
        script's thread): the service is one ``deferred`` job.
        """
        waiting = self.waiting
        ready = self.ready
        if keys is None:  # a keyspace emptied or swapped: Redis scans it for waited keys
            for slot in list(waiting):  # (a timeout on the loop's thread may forget one)
                if db is None or slot[0] == db:
                    ready[slot] = None
        elif db is not None:
            for key in keys:
                slot = (db, key)
                if slot in waiting:
                    ready[slot] = None
        if ready and not self._queued:
            self._queued = True
            self.server.deferred.append(self.serve_ready)

    def serve_ready(self) -> None:
        """Serve the clients waiting on the keys noted ready (``handleClientsBlockedOnKeys``)."""
        ready = self.ready
        try:
            while ready:
                slot = next(iter(ready))
                del ready[slot]
                self._serve_key(slot)
        finally:
            self._queued = False
            if not self.waiters and self._listening:
                self._stop_listening()

    def _serve_key(self, slot: tuple[int, str]) -> None:
        """Serve the clients waiting on one key, first come first served, while it has values."""
        clients = self.waiting.get(slot)
        if not clients:
            return
        server = self.server
        db, key = slot
        keyspace = server.keyspaces[db]
        kind = keyspace.key_type(key)
        if kind is None:
            return
        for waiter in list(clients):
            if waiter.kind != kind or self.waiters.get(waiter.client.id) is not waiter:
                continue  # waits for the other type, or was served through another key
            client = waiter.client
            try:
                served = waiter.serve(key)
            except Exception as exc:  # the Store refused (a failing journal), or a bug
                log.error("serving a client blocked on %r failed: %s", key, exc)
                served = (error(f"ERR {exc}"), [])
            if served is None:
                if waiter.kind == "stream":
                    continue  # each XREAD waits for entries after its own ID
                break
            reply, changed = served
            self.forget(waiter)
            # What call() does after a command: count the changes, tell
            # WATCH and the listeners (a move's destination becomes ready).
            server.dirty += client.changes
            client.changes = 0
            if changed:
                server.touch(db, changed)
            client.wake(reply)
            if keyspace.key_type(key) != kind:
                break


def install(server: ServerState) -> None:
    """Give ``server`` its registry of blocked clients (``server.blocking``)."""
    server.blocking = Blocking(server)


def registry(server: ServerState) -> Blocking:
    """``server.blocking``, typed."""
    return cast(Blocking, server.blocking)


def unblock(server: ServerState, client_id: int, error: bool) -> bool:
    """CLIENT UNBLOCK id [TIMEOUT|ERROR]: end a client's wait; False if it is not waiting.

    Only a wait that CLIENT UNBLOCK may end (``Blocked.unblockable``: on
    keys, not a command held by CLIENT PAUSE or a busy script's caller).
    TIMEOUT answers as the wait's timeout would (a null); ERROR answers
    ``-UNBLOCKED client unblocked via CLIENT UNBLOCK``.
    """
    client = server.clients.get(client_id)
    if client is None:
        return False
    blocked = client.blocked
    if blocked is None or not blocked.unblockable:
        return False
    blocked.cancel()
    client.wake(UNBLOCKED if error else blocked.timeout_reply)
    return True
