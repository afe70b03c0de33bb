"""One connection's state (Redis's ``client`` struct): keyspace, protocol, auth, MULTI, WATCH.

The network layer makes one :class:`Client` per connection and passes it
to :meth:`~snapkv.server.dispatch.Dispatcher.execute` with every request;
handlers read and change it (SELECT, HELLO, MULTI, ...) and leave flags
for the network layer (``close_after_reply``). Nothing here does I/O.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from snapkv.server.resp.writer import NULL_ARRAYS, NULLS, bulk
from snapkv.server.resp.writer import encode as encode_reply
from snapkv.server.table import ERR_DB_RANGE, Command, CommandError

if TYPE_CHECKING:
    from snapkv.server.state import ServerState
    from snapkv.store import Keyspace

__all__ = ["Client"]


def _no_kill() -> None:
    """Default ``Client.kill``: a client with no connection has nothing to close."""


class Client:
    """One connection's state: selected keyspace, protocol, auth, transaction, name.

    ``close_after_reply`` asks the network layer to close the connection
    once the current replies are written (QUIT, a killed client);
    ``kill`` (set by the network layer) closes it at once.
    """

    __slots__ = (
        "addr",
        "authenticated",
        "changes",
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
        "multi",
        "multi_failed",
        "name",
        "null",
        "null_array",
        "plain",
        "resp",
        "server",
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
        self.authenticated = server.config.requirepass is None
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
        self.set_resp(2)
        self.update_plain()

    def set_resp(self, version: int) -> None:
        """Switch to protocol ``version`` (2 or 3): nulls and aggregates change shape."""
        self.resp = version
        self.null = NULLS[version]
        self.null_array = NULL_ARRAYS[version]

    def update_plain(self) -> None:
        """Recompute the fast-path flag: authenticated and not inside MULTI."""
        self.plain = self.authenticated and self.multi is None

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
        """This client as one line of CLIENT LIST / CLIENT INFO."""
        now = time.monotonic()
        flags = ("x" if self.multi is not None else "") + ("d" if self.dirty_cas else "")
        return (
            f"id={self.id} addr={self.addr} laddr={self.laddr} fd=-1 name={self.name} "
            f"age={int(now - self.created)} idle={int(now - self.last_interaction)} "
            f"flags={flags or 'N'} db={self.db_index} sub=0 psub=0 ssub=0 "
            f"multi={-1 if self.multi is None else len(self.multi)} "
            f"watch={len(self.watched)} cmd={self.last_command} user=default "
            f"lib-name={self.lib_name} lib-ver={self.lib_ver} resp={self.resp}"
        )
