"""CLIENT TRACKING: server-assisted client-side caching (Redis's ``tracking.c``).

A tracking client's read commands remember their keys in one table
(key name -> client ids, whatever the keyspace, as Redis's ``TrackingTable``);
when a write changes a remembered key, each of those clients is told once
(``invalidate`` with the key) and the key is forgotten until read again.
In broadcasting mode (BCAST) a client remembers nothing: it is told of
every changed key under its prefixes. The message goes to the client in
RESP3 (``>2 invalidate [keys]``), or to the client it REDIRECTs to: a RESP3
one the same way, a RESP2 one subscribed to ``__redis__:invalidate`` as a
pub/sub message on that channel. A flush (FLUSHDB, FLUSHALL, SWAPDB)
tells every tracking client ``invalidate`` with a null, and empties the table.

Where it hooks in, all through the server's hooks:

* writes: a ``key_listeners`` entry only takes note; the messages go out
  from ``deferred`` once the command has finished, so the client whose
  write it was is told after its own reply (as Redis 7.0 holds a current
  client's invalidations until after its reply); with NOLOOP it is not told;
* keys the Store reclaims because they expired: its ``expired_listener``
  (chained after the one already set), from the sweeper's thread;
* reads: the dispatcher calls :meth:`Tracking.after_command` after every
  command of a tracking client (such a client never takes the fast path).

The table is made on the first CLIENT TRACKING ON and listens to writes
only while a client tracks, so a server whose clients do not track pays
nothing on writes. Unlike Redis, the table has no
``tracking-table-max-keys`` bound.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from snapkv.server.resp.writer import bulk

if TYPE_CHECKING:
    from snapkv.server.client import Client
    from snapkv.server.state import ServerState
    from snapkv.server.table import Command

__all__ = ["Table", "Tracking", "counts", "table"]

_INVALIDATE = b">2\r\n$10\r\ninvalidate\r\n"
#: A RESP2 redirect target subscribed to the channel gets a pub/sub message.
_CHANNEL_MESSAGE = b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n"
_NULLS = {2: b"$-1\r\n", 3: b"_\r\n"}
#: Read-only commands whose keys are not remembered for themselves: the
#: read-only scripts (their keys are remembered only if they read, below).
_NOT_REMEMBERED = frozenset({"eval_ro", "evalsha_ro", "fcall_ro"})
#: The commands that run a script: their KEYS are remembered when a call
#: of the script read something (Redis's ``script_caller`` in ``call()``).
_SCRIPTS = frozenset({"eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"})


class Tracking:
    """One client's tracking state (``client.tracking`` while tracking is on).

    It names its ``owner``: while a script runs for a tracking client, the
    script's client carries the caller's state, and a read-only call of the
    script makes the script command's keys remembered for the caller, as
    Redis's ``script_caller`` (once the script command ends, where Redis
    remembers them at the call: a key the script reads and then writes
    itself is remembered here, told and forgotten there).
    """

    __slots__ = (
        "bcast",
        "broken",
        "caching",
        "noloop",
        "optin",
        "optout",
        "owner",
        "prefixes",
        "redirect",
        "script_read",
    )

    def __init__(self, owner: Client) -> None:
        #: The tracking client (whose id the table remembers).
        self.owner = owner
        #: The id of the client told instead of this one; 0: this one.
        self.redirect = 0
        self.bcast = self.optin = self.optout = self.noloop = False
        #: CLIENT CACHING YES (OPTIN) or NO (OPTOUT), for the next command only.
        self.caching = False
        #: The redirect target was gone when a message was due (``broken_redirect``).
        self.broken = False
        #: BCAST's prefixes ('' for every key), in the order Redis lists them.
        self.prefixes: set[str] = set()
        #: A call of the owner's running script read something.
        self.script_read = False

    def after_command(self, client: Client, cmd: Command, argv: list[str]) -> None:
        """``cmd`` ran for ``client``: remember the keys it read; end a CLIENT CACHING.

        As Redis's ``call()`` (``trackingRememberKeys``: a read-only command,
        unless the client broadcasts or OPTIN/OPTOUT says not this time) and
        ``resetClient`` (the CACHING choice lasts one command, or the
        commands of one MULTI/EXEC block; any CLIENT subcommand keeps it).
        """
        server = client.server
        tracked = table(server)
        owner = self.owner
        if tracked.pending:
            tracked.writer = owner  # its own invalidations wait for its reply
        if client is not owner:
            # A call of the owner's script: Redis remembers the *script
            # command's* keys (its KEYS) for each read-only call, never the
            # call's own; noted here, remembered when the script command ends.
            if cmd.readonly:
                self.script_read = True
            return
        if self.script_read and cmd.name in _SCRIPTS:
            self.script_read = False
            remember = True
        else:
            remember = cmd.readonly and cmd.name not in _NOT_REMEMBERED
        if (
            remember
            and not self.bcast
            and not (self.optin and not self.caching)
            and not (self.optout and self.caching)
        ):
            keys = tracked.keys
            for key in cmd.keys(argv):
                keys.setdefault(key, set()).add(owner.id)
        if (
            self.caching
            and cmd.parent != "client"
            and owner.multi is None
            and not server.store.in_transaction
        ):
            self.caching = False

    def disable(self, client: Client) -> None:
        """CLIENT TRACKING OFF (RESET, a disconnect): forget the client's prefixes and flags."""
        tracked = table(client.server)
        for prefix in self.prefixes:
            ids = tracked.prefixes.get(prefix)
            if ids is not None:
                ids.discard(client.id)
                if not ids:
                    del tracked.prefixes[prefix]
        client.tracking = None
        client.update_plain()
        tracked.clients.discard(client.id)
        if not tracked.clients:
            tracked.idle()


class Table:
    """The server's tracking table (``server.tracking``): remembered keys and BCAST prefixes."""

    def __init__(self, server: ServerState) -> None:
        self.server = server
        #: Key name -> the ids of the clients that read it since it last changed.
        self.keys: dict[str, set[int]] = {}
        #: BCAST prefix -> the ids of the clients listening to it.
        self.prefixes: dict[str, set[int]] = {}
        #: Keys changed since the last :meth:`flush` (``None``: a flush of everything).
        self.pending: list[str | None] = []
        #: The tracking client whose command changed the pending keys (NOLOOP, ordering).
        self.writer: Client | None = None
        #: The ids of the clients tracking now: with none, writes are not listened to.
        self.clients: set[int] = set()
        self._lock = threading.Lock()
        self._scheduled = False

    def add(self, client: Client) -> None:
        """``client`` tracks from now on; the first one makes writes heard."""
        if not self.clients:
            self.server.key_listeners.append(self.changed)
        self.clients.add(client.id)

    def idle(self) -> None:
        """No client tracks any more: stop listening to writes.

        A server whose last tracking client left pays nothing on writes again
        (the dispatcher touches keys only while someone listens). The keys
        stay remembered, as in Redis a client that turns tracking off and on
        is still told of the keys it read before; a key written meanwhile is
        then told once more than Redis would, never once less.
        """
        # No write will drop a key from now on: forget those only gone clients read.
        live = self.server.clients.keys()
        for key, ids in list(self.keys.items()):
            ids.intersection_update(live)
            if not ids:
                del self.keys[key]
        if self.changed in self.server.key_listeners:
            self.server.key_listeners.remove(self.changed)

    # ------------------------------------------------------------- hooks

    def changed(self, db: int | None, keys: list[str] | None, *, expired: bool = False) -> None:
        """A ``key_listeners`` entry: note the keys (``None``: a keyspace emptied).

        The flush runs after the command (``deferred``); from another thread
        (the sweeper, a script's), or for keys a read reclaimed (the fast
        path runs ``deferred`` after writes only), on the event loop's next turn.
        """
        with self._lock:
            if keys is None:
                self.pending.append(None)
            else:
                self.pending.extend(keys)
            if self._scheduled:
                return
            self._scheduled = True
        server = self.server
        loop_thread = server.loop_thread
        if loop_thread is not None and (expired or threading.get_ident() != loop_thread):
            assert server.threadsafe_call is not None
            server.threadsafe_call(self.flush)
        else:
            server.deferred.append(self.flush)

    def expired(self, db: int, keys: list[str]) -> None:
        """Keys the Store reclaimed: invalidated as written ones (``deleteExpiredKey``)."""
        if self.clients:
            self.changed(db, keys, expired=True)

    def client_gone(self, client: Client) -> None:
        """A disconnect ends the client's tracking (its ids left in the table are skipped)."""
        if client.tracking is not None:
            client.tracking.disable(client)

    # ---------------------------------------------------------- messages

    def flush(self) -> None:
        """Tell every client concerned of the keys changed since the last flush."""
        with self._lock:
            pending, self.pending = self.pending, []
            writer, self.writer = self.writer, None
            self._scheduled = False
        changed: list[str] = []
        for key in pending:
            if key is None:
                self._flushed(writer)
                changed = []
                continue
            changed.append(key)
            ids = self.keys.pop(key, None)
            for client_id in sorted(ids or ()):
                target = self.server.clients.get(client_id)
                state = target.tracking if target is not None else None
                if target is None or state is None or state.bcast:
                    continue
                if state.noloop and target is writer:
                    continue
                self._send(target, _array([key]), writer)
        if self.prefixes and changed:
            self._broadcast(changed, writer)

    def _flushed(self, writer: Client | None) -> None:
        """A keyspace was emptied: a null invalidation to every tracking client."""
        self.keys.clear()
        for client in list(self.server.clients.values()):
            if client.tracking is not None:
                self._send(client, _NULLS[client.resp], writer)

    def _broadcast(self, changed: list[str], writer: Client | None) -> None:
        """BCAST: one message per prefix, its changed keys in byte order, to its listeners."""
        unique = sorted(set(changed), key=lambda k: k.encode("utf-8", "surrogateescape"))
        for prefix, ids in list(self.prefixes.items()):
            keys = [key for key in unique if key.startswith(prefix)]
            if not keys:
                continue
            for client_id in sorted(ids):
                target = self.server.clients.get(client_id)
                if target is None or target.tracking is None:
                    continue
                if target.tracking.noloop and target is writer:
                    continue
                self._send(target, _array(keys), writer)

    def _send(self, client: Client, payload: bytes, writer: Client | None) -> None:
        """Redis's ``sendTrackingMessage``: to ``client`` or its redirect target, if it can."""
        state = client.tracking
        assert state is not None
        target = client
        redirected = False
        if state.redirect:
            found = self.server.clients.get(state.redirect)
            if found is None:
                state.broken = True
                if client.resp == 3:
                    _push(
                        client,
                        b">2\r\n$21\r\ntracking-redir-broken\r\n:%d\r\n" % state.redirect,
                        writer,
                    )
                return
            target, redirected = found, True
        if target.resp == 3:
            _push(target, _INVALIDATE + payload, writer)
        elif redirected and target.subscribed:
            _push(target, _CHANNEL_MESSAGE + payload, writer)
        # Else a RESP2 client without redirection: it cannot be told anything.


def _array(keys: list[str]) -> bytes:
    return b"*%d\r\n%s" % (len(keys), b"".join([bulk(key) for key in keys]))


def _push(client: Client, data: bytes, writer: Client | None) -> None:
    """Push now; to the writer itself after its reply (the event loop's next turn)."""
    server = client.server
    if client is writer and server.threadsafe_call is not None:
        client.push_after(data)
    else:
        client.push(data)


def table(server: ServerState) -> Table:
    """``server``'s tracking table, made (and hooked in) on first use."""
    made: Table | None = server.tracking
    if made is None:
        made = Table(server)
        server.tracking = made
        server.client_gone.append(made.client_gone)
        store = server.store
        before = store.expired_listener

        def expired(db: int, keys: list[str]) -> None:
            if before is not None:
                before(db, keys)
            made.expired(db, keys)

        store.expired_listener = expired
    return made


def counts(server: ServerState) -> tuple[int, int, int]:
    """INFO stats' ``tracking_total_keys``, ``tracking_total_items``, ``tracking_total_prefixes``.

    Keys remembered, (key, client) pairs among them, BCAST prefixes listened
    to: Redis's ``TrackingTable`` size, ``TrackingTableTotalItems`` and ``PrefixTable`` size.
    """
    made: Table | None = server.tracking
    if made is None:
        return 0, 0, 0
    return len(made.keys), sum(len(ids) for ids in made.keys.values()), len(made.prefixes)
