"""One connection's state (Redis's ``client`` struct): keyspace, protocol, auth, MULTI, WATCH.

The network layer makes one :class:`Client` per connection and passes it
to :meth:`~snapkv.server.dispatch.Dispatcher.execute` with every request;
handlers read and change it (SELECT, HELLO, MULTI, ...) and leave flags
for the network layer (``close_after_reply``). Nothing here does I/O.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from snapkv.server.client_info import info_line as _info_line
from snapkv.server.resp.writer import NULL_ARRAYS, NULLS, bulk
from snapkv.server.resp.writer import encode as encode_reply
from snapkv.server.table import ERR_DB_RANGE, Command, CommandError

if TYPE_CHECKING:
    from snapkv.server.state import ServerState
    from snapkv.store import Keyspace

__all__ = ["REPLY_OFF", "REPLY_ON", "REPLY_SKIP", "REPLY_SKIP_NEXT", "Blocked", "Client"]

#: CLIENT REPLY's modes (``Client.reply_mode``), as Redis's client flags:
#: ``SKIP_NEXT`` is set by CLIENT REPLY SKIP itself (its own reply is not
#: sent) and becomes ``SKIP`` for the next command, whose reply is dropped.
REPLY_ON, REPLY_OFF, REPLY_SKIP, REPLY_SKIP_NEXT = 0, 1, 2, 3


def _no_kill() -> None:
    """Default ``Client.kill``: a client with no connection has nothing to close."""


def _nothing() -> None:
    """Default ``Blocked.cancel``: nothing to undo."""


class Blocked:
    """Why a client waits for its reply, and how the wait ends (Redis's ``blockingState``).

    A handler that must wait (BLPOP on empty lists, a command held by
    CLIENT PAUSE, the caller of a script that outlived
    ``busy-reply-threshold``) sets ``client.blocked`` to one of these and
    returns ``b""``. The connection then runs none of the client's later
    commands, arms a timer for ``deadline`` and waits for ``client.wake``:
    with a reply, that reply is written; with ``None``, ``argv`` runs again
    (a paused command once the pause ends). On the deadline (or CLIENT
    UNBLOCK TIMEOUT) the connection calls ``cancel`` and writes
    ``timeout_reply``; on a disconnect it calls ``cancel`` alone, so
    whoever registered the client forgets it.
    """

    __slots__ = ("argv", "cancel", "deadline", "kind", "timeout_reply", "unblockable")

    def __init__(
        self,
        argv: list[str],
        kind: str,
        *,
        deadline: float | None = None,
        timeout_reply: bytes = b"",
        cancel: Callable[[], None] = _nothing,
        unblockable: bool = True,
    ) -> None:
        #: The command that waits (run again when woken with ``None``).
        self.argv = argv
        #: ``keys`` (BLPOP...: CLIENT UNBLOCK may end it), ``postponed``
        #: (CLIENT PAUSE), ``script`` (a busy script's caller), ``wait`` (WAIT).
        self.kind = kind
        #: ``time.monotonic()`` at which the wait times out; ``None``: never.
        self.deadline = deadline
        #: The reply on timeout (BLPOP's null array, in the client's protocol).
        self.timeout_reply = timeout_reply
        #: Forget the client wherever it was registered (called once, on timeout,
        #: CLIENT UNBLOCK or disconnect; not when it is woken with its reply).
        self.cancel = cancel
        #: Whether CLIENT UNBLOCK may end this wait (Redis: only waits on keys and WAIT).
        self.unblockable = unblockable


class Client:
    """One connection's state: selected keyspace, protocol, auth, transaction, name.

    ``close_after_reply`` asks the network layer to close the connection
    once the current replies are written (QUIT, a killed client);
    ``kill`` (set by the network layer) closes it at once.
    """

    __slots__ = (
        "acl_open",
        "addr",
        "authenticated",
        "blocked",
        "changes",
        "channels",
        "close_after_reply",
        "created",
        "db",
        "db_index",
        "dirty_cas",
        "id",
        "kill",
        "laddr",
        "last_command",
        "last_interaction",
        "lib_name",
        "lib_ver",
        "monitor",
        "multi",
        "multi_failed",
        "name",
        "no_evict",
        "no_touch",
        "null",
        "null_array",
        "outbox",
        "patterns",
        "plain",
        "push",
        "push_after",
        "replica",
        "reply_mode",
        "resp",
        "scripting",
        "server",
        "shard_channels",
        "tracking",
        "user",
        "wake",
        "watched",
    )

    def __init__(self, server: ServerState, *, addr: str = "", laddr: str = "") -> None:
        self.server = server
        self.id = server.next_client_id()
        self.addr = addr
        self.laddr = laddr
        self.name = ""
        self.lib_name = ""
        self.lib_ver = ""
        self.created = self.last_interaction = time.monotonic()
        self.last_command = "NULL"
        self.db_index = 0
        self.db: Keyspace = server.keyspaces[0]
        acl = server.acl  # the default user: logged in at once when on and nopass
        no_password = server.config.requirepass is None
        self.authenticated = acl.default_open() if acl is not None else no_password
        #: The user may run every command on every key and channel (the
        #: default user, usually): no ACL check, the fast path stays open.
        self.acl_open = acl is None or acl.users["default"].unrestricted()
        #: Queued commands while in MULTI, else ``None``.
        self.multi: list[tuple[Command, list[str]]] | None = None
        self.multi_failed = False
        #: WATCHed keys: (keyspace, key) -> the key's expiry when watched.
        self.watched: dict[tuple[int, str], int | None] = {}
        self.dirty_cas = False
        #: Changes the running write command made (MSET of 4 keys: 4, DEL: the
        #: keys it deleted, a SET NX that did not set: 0), counted by its
        #: handler where Redis's do ``server.dirty++``; ``call()`` adds them
        #: to the server's ``dirty`` and zeroes this: the one place that sums them.
        self.changes = 0
        self.close_after_reply = False
        self.kill: Callable[[], None] = _no_kill
        #: Why this client waits for its reply (see :class:`Blocked`), or ``None``.
        self.blocked: Blocked | None = None
        #: Output for a client without a connection (a test's, a script's):
        #: what ``push`` and ``wake`` were given, in order.
        self.outbox: list[bytes] = []
        #: Send ``data`` to this client now, outside any reply (pub/sub
        #: messages, MONITOR lines, invalidations). The connection sets it;
        #: safe to call from any thread (it hands the write to the event loop).
        self.push: Callable[[bytes], None] = self.outbox.append
        #: Send ``data`` right after the reply of the command running now (its
        #: own invalidations, its own MONITOR line), as Redis's output buffer.
        self.push_after: Callable[[bytes], None] = self.outbox.append
        #: End this client's wait (see :class:`Blocked`): its reply, or ``None``
        #: to run the waiting command again. The connection sets it.
        self.wake: Callable[[bytes | None], None] = self._wake_without_connection
        #: Pub/sub subscriptions: channels, patterns, shard channels.
        self.channels: set[str] = set()
        self.patterns: set[str] = set()
        self.shard_channels: set[str] = set()
        #: CLIENT REPLY: :data:`REPLY_ON`, :data:`REPLY_OFF`, :data:`REPLY_SKIP`
        #: or :data:`REPLY_SKIP_NEXT` (the dispatcher drops replies by it).
        self.reply_mode = REPLY_ON
        #: In MONITOR mode (every command the server runs is pushed to it).
        self.monitor = False
        #: CLIENT NO-EVICT and NO-TOUCH (accepted; nothing is ever evicted).
        self.no_evict = False
        self.no_touch = False
        #: CLIENT TRACKING's state while tracking is on, else ``None``.
        self.tracking: Any = None
        #: The client a script's ``redis.call`` runs as (Redis's ``CLIENT_SCRIPT``):
        #: blocking commands do not block for it, MONITOR names it ``lua``.
        self.scripting = False
        #: The ACL user this client is authenticated as.
        self.user = "default"
        #: A replica attached by SYNC or PSYNC (Redis's ``CLIENT_SLAVE``).
        self.replica = False
        self.set_resp(2)
        self.update_plain()

    def _wake_without_connection(self, reply: bytes | None) -> None:
        self.blocked = None
        if reply is not None:
            self.outbox.append(reply)

    def set_resp(self, version: int) -> None:
        """Switch to protocol ``version`` (2 or 3): nulls and aggregates change shape."""
        self.resp = version
        self.null = NULLS[version]
        self.null_array = NULL_ARRAYS[version]

    def update_plain(self) -> None:
        """Recompute the fast-path flag.

        Plain: authenticated, a user with every permission, not inside MULTI,
        not subscribed (RESP2 allows only a few commands then), replies on.
        Whatever changes one of these calls this.
        """
        self.plain = (
            self.authenticated
            and self.acl_open
            and self.multi is None
            and not self.subscribed
            and self.reply_mode == REPLY_ON
            and self.tracking is None
        )

    @property
    def subscribed(self) -> bool:
        """Subscribed to anything (Redis's ``CLIENT_PUSHING`` pub/sub state)."""
        return bool(self.channels or self.patterns or self.shard_channels)

    @property
    def subscriptions(self) -> int:
        """Channels, patterns and shard channels subscribed to (SUBSCRIBE's count)."""
        return len(self.channels) + len(self.patterns) + len(self.shard_channels)

    def select(self, index: int) -> None:
        """Select keyspace ``index``; CommandError if it does not exist."""
        keyspaces = self.server.keyspaces
        if not 0 <= index < len(keyspaces):
            raise CommandError(ERR_DB_RANGE)
        self.db_index = index
        self.db = keyspaces[index]

    def encode(self, value: object) -> bytes:
        """Encode a structured reply for this client's protocol version."""
        return encode_reply(value, self.resp)

    def bulk_or_null(self, value: str | None) -> bytes:
        """A bulk string, or this protocol's null for ``None``."""
        if value is None:
            return self.null
        return bulk(value)

    def unwatch(self) -> None:
        """Forget every WATCHed key."""
        if self.watched:
            self.server.unwatch(self)

    def info_line(self) -> str:
        """This client as one line of CLIENT LIST / CLIENT INFO (for logs and ACL LOG)."""
        return _info_line(self)
