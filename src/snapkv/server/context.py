"""What command handlers work with: the command type, a client's state, the server's state.

A handler is ``handler(client, argv) -> bytes``: ``argv`` is the request
(``argv[0]`` the command name as sent), the result is the encoded reply.
Handlers reach the data only through ``client.db`` (the selected keyspace)
and ``client.server.store``; a handler that refuses raises
:class:`CommandError` with Redis's text. Nothing here does I/O: the network
layer owns the sockets and only calls :meth:`ServerState.execute` (in
:mod:`snapkv.server.commands`) and reads the flags a command leaves on the
client (``close_after_reply``).

All of this runs on the event loop's one thread, so a command is atomic
with respect to every other client, as in Redis: a read-modify-write such
as INCR is a ``get`` then a ``set`` with nothing in between. (Threads that
use the same Store directly, beside the server, are not serialised with
it: the Store keeps each of its own operations atomic, no more.)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from snapkv.server.resp import DEFAULT_MAX_ARGS, DEFAULT_MAX_BULK_LEN, bulk, error, string2ll
from snapkv.server.resp import encode as encode_reply

if TYPE_CHECKING:
    from snapkv.store import Keyspace, Store

__all__ = [
    "OK",
    "REDIS_VERSION",
    "Client",
    "Command",
    "CommandError",
    "Config",
    "Handler",
    "ServerState",
    "byte_len",
    "command",
    "parse_int",
    "parse_save",
]

log = logging.getLogger("snapkv.server")

#: The Redis version whose commands, replies and errors this server matches.
REDIS_VERSION: Final = "7.2.0"

OK: Final = b"+OK\r\n"
QUEUED: Final = b"+QUEUED\r\n"
ZERO: Final = b":0\r\n"
ONE: Final = b":1\r\n"
EMPTY_ARRAY: Final = b"*0\r\n"
EMPTY_BULK: Final = b"$0\r\n\r\n"
#: Null bulk string by protocol version (index 2 or 3).
NULLS: Final = (b"", b"", b"$-1\r\n", b"_\r\n")
#: Null array by protocol version: RESP2 has a distinct one.
NULL_ARRAYS: Final = (b"", b"", b"*-1\r\n", b"_\r\n")

ERR_SYNTAX: Final = "ERR syntax error"
ERR_NOT_INT: Final = "ERR value is not an integer or out of range"
ERR_DB_RANGE: Final = "ERR DB index is out of range"

Handler = Callable[["Client", list[str]], bytes]


class CommandError(Exception):
    """A handler's refusal: the reply is ``-<message>`` (the message starts with its code)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.reply = error(message)


_LLONG_MIN, _LLONG_MAX = -(2**63), 2**63 - 1


def parse_int(text: str, message: str = ERR_NOT_INT) -> int:
    """Parse a 64-bit integer argument exactly as Redis's ``string2ll``; else CommandError."""
    if text.isascii():
        value = string2ll(text.encode())
        if value is not None:
            return value
    raise CommandError(message)


def byte_len(value: str) -> int:
    """Length in bytes on the wire of a value (what STRLEN and APPEND count)."""
    return len(value) if value.isascii() else len(value.encode("utf-8", "surrogateescape"))


@dataclass(slots=True)
class Command:
    """One entry of the command table, as Redis declares it in ``src/commands/*.json``.

    ``arity`` follows Redis: ``n > 0`` means exactly ``n`` arguments
    (the name included), ``-n`` at least ``n``. ``first_key``, ``last_key``
    and ``step`` locate the key arguments (``last_key`` -1: to the end), for
    COMMAND INFO and for WATCH invalidation. ``flags`` are Redis's
    (``write``, ``readonly``, ``fast``, ``noauth``, ``loading``, ...).
    """

    name: str
    arity: int
    flags: frozenset[str]
    handler: Handler
    first_key: int = 0
    last_key: int = 0
    step: int = 0
    group: str = "generic"
    summary: str = ""
    since: str = "1.0.0"
    subcommands: dict[str, Command] | None = None
    #: The container's name for a subcommand (``config`` for ``config|get``).
    parent: str | None = None
    #: ``get``, or ``config|get`` for a subcommand.
    full_name: str = field(init=False)
    min_args: int = field(init=False)
    max_args: int = field(init=False)
    write: bool = field(init=False)
    noauth: bool = field(init=False)

    def __post_init__(self) -> None:
        self.full_name = f"{self.parent}|{self.name}" if self.parent else self.name
        self.min_args = abs(self.arity)
        self.max_args = self.arity if self.arity > 0 else 1 << 62
        self.write = "write" in self.flags
        self.noauth = "noauth" in self.flags

    def keys(self, argv: list[str]) -> list[str]:
        """The key arguments of ``argv``, by the key positions."""
        if not self.first_key:
            return []
        last = self.last_key if self.last_key >= 0 else len(argv) + self.last_key
        return argv[self.first_key : last + 1 : self.step or 1]


@dataclass
class Config:
    """The server's settings; CONFIG GET/SET reads and writes the mutable ones."""

    host: str = "127.0.0.1"
    port: int = 6379
    dir: str | None = None
    requirepass: str | None = None
    appendonly: bool = False
    appendfsync: str = "everysec"
    #: Redis's ``save``: (seconds, changes) pairs; a snapshot is taken when
    #: at least ``changes`` writes happened in the last ``seconds``.
    save: list[tuple[int, int]] = field(default_factory=list)
    databases: int = 16
    maxclients: int = 10000
    #: Close a client idle this many seconds (0: never), as Redis's ``timeout``.
    timeout: int = 0
    proto_max_bulk_len: int = DEFAULT_MAX_BULK_LEN
    max_args: int = DEFAULT_MAX_ARGS
    #: Pause reading from a client whose unsent replies exceed this many bytes.
    output_high_water: int = 1 << 20
    #: Use hiredis's parser when it is installed.
    hiredis: bool = True
    #: Refuse writes (and PING) with ``-MISCONF`` after a failed background
    #: save while ``save`` rules are set, as Redis's option of the same name.
    stop_writes_on_bgsave_error: bool = True


def parse_save(text: str) -> list[tuple[int, int]]:
    """Redis's ``save`` setting: ``"900 1 300 10"`` -> [(900, 1), (300, 10)]; "" -> []."""
    parts = text.split()
    if len(parts) % 2:
        raise ValueError("save needs pairs of <seconds> <changes>")
    rules = [(int(parts[i]), int(parts[i + 1])) for i in range(0, len(parts), 2)]
    if any(secs < 1 or changes < 0 for secs, changes in rules):
        raise ValueError("save needs <seconds> >= 1 and <changes> >= 0")
    return rules


class Client:
    """One connection's state: selected keyspace, protocol, auth, transaction, name.

    ``close_after_reply`` asks the network layer to close the connection
    once the current replies are written (QUIT, a killed client);
    ``kill`` (set by the network layer) closes it at once.
    """

    __slots__ = (
        "addr",
        "authenticated",
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


def command(
    registry: list[Command],
    name: str,
    arity: int,
    flags: str = "",
    keys: tuple[int, int, int] = (0, 0, 0),
    *,
    group: str = "generic",
    summary: str = "",
    since: str = "1.0.0",
    parent: str | None = None,
) -> Callable[[Handler], Handler]:
    """Declare ``handler`` as command ``name`` in ``registry`` (a module's table part)."""

    def declare(handler: Handler) -> Handler:
        registry.append(
            Command(
                name,
                arity,
                frozenset(flags.split()),
                handler,
                *keys,
                group=group,
                summary=summary,
                since=since,
                parent=parent,
            )
        )
        return handler

    return declare


def _no_kill() -> None:
    """Default ``Client.kill``: a client with no connection has nothing to close."""


class ServerState:
    """Everything the server knows besides the sockets: store, settings, clients, counters.

    :class:`snapkv.server.commands.Dispatcher` subclasses it with the
    command table and ``execute``; the network layer registers a
    :class:`Client` per connection and calls ``execute``.
    """

    def __init__(self, store: Store, config: Config | None = None) -> None:
        self.store = store
        self.config = config if config is not None else Config()
        self.keyspaces: list[Keyspace] = [store.db(i) for i in range(store.databases)]
        self.config.databases = len(self.keyspaces)
        self.clients: dict[int, Client] = {}
        self._next_id = 0
        self.started = time.time()
        self.started_monotonic = time.monotonic()
        # Counters reported by INFO (CONFIG RESETSTAT zeroes the stats).
        self.commands_processed = 0
        self.connections_received = 0
        self.rejected_connections = 0
        self.protocol_errors = 0
        #: Writes since the last successful save (Redis's ``dirty``).
        self.dirty = 0
        self.last_save = int(self.started)
        self.last_save_ok = True
        self.bgsave_thread: threading.Thread | None = None
        self.last_bgsave_ok = True
        self.saves = 0
        #: WATCHed keys: (keyspace, key) -> the clients watching it.
        self.watched: dict[tuple[int, str], set[Client]] = {}
        #: Snapshots of the key lists SCAN walks, by cursor slot (see cmd_keys).
        self.scans: dict[int, tuple[int, list[str]]] = {}
        #: Set by SHUTDOWN (whether to save first); the network layer then stops.
        self.shutdown_requested: bool | None = None
        #: The command table (lower-case name -> Command), set by the dispatcher.
        self.table: dict[str, Command] = {}
        #: Snapkv and network facts INFO reports, filled in by the network layer.
        self.info: dict[str, Any] = {}

    def next_client_id(self) -> int:
        """A new client id (never reused, as Redis's)."""
        self._next_id += 1
        return self._next_id

    def add_client(self, client: Client) -> None:
        self.clients[client.id] = client
        self.connections_received += 1

    def remove_client(self, client: Client) -> None:
        client.unwatch()
        self.clients.pop(client.id, None)

    def reset_stats(self) -> None:
        """CONFIG RESETSTAT."""
        self.commands_processed = 0
        self.connections_received = 0
        self.rejected_connections = 0
        self.protocol_errors = 0

    # ------------------------------------------------------------------ watch

    def watch(self, client: Client, key: str) -> None:
        """Watch ``key`` in the client's keyspace for EXEC's check-and-set."""
        slot = (client.db_index, key)
        if slot in client.watched:
            return
        try:
            expiry = client.db.expiry_ms(key)
        except KeyError:
            expiry = None
        client.watched[slot] = expiry
        self.watched.setdefault(slot, set()).add(client)

    def unwatch(self, client: Client) -> None:
        for slot in client.watched:
            watchers = self.watched.get(slot)
            if watchers is not None:
                watchers.discard(client)
                if not watchers:
                    del self.watched[slot]
        client.watched.clear()
        client.dirty_cas = False

    def touch(self, db: int, keys: list[str]) -> None:
        """Keys of keyspace ``db`` were written: fail the transactions watching them."""
        watched = self.watched
        for key in keys:
            for client in watched.get((db, key), ()):
                client.dirty_cas = True

    def touch_db(self, db: int | None) -> None:
        """Keyspace ``db`` (``None``: every one) was emptied or swapped."""
        for (index, _key), clients in self.watched.items():
            if db is None or index == db:
                for client in clients:
                    client.dirty_cas = True

    def watch_expired(self, client: Client) -> bool:
        """Whether a key the client watched has expired since (Redis fails EXEC then too)."""
        now = self.store.now_ms()
        return any(at is not None and at <= now for at in client.watched.values())

    # ---------------------------------------------------------------- persist

    def save(self) -> None:
        """Snapshot now (SAVE); raises the store's error."""
        try:
            self.store.save()
        except Exception:
            self.last_save_ok = False
            raise
        # A good snapshot ends a bgsave error, as Redis's rdbSave does.
        self.last_save_ok = self.last_bgsave_ok = True
        self.dirty = 0
        self.last_save = int(time.time())
        self.saves += 1

    def bgsave(self) -> bool:
        """Start a snapshot in a thread (BGSAVE); False if one is already running.

        ``Store.save`` copies references to every entry under the store's
        lock (16 bytes an entry: the strings themselves are shared and never
        mutated) and encodes without it, so the snapshot is point-in-time
        without forking while clients keep writing; the thread competes
        with the event loop only for the interpreter lock.
        """
        if self.bgsave_thread is not None and self.bgsave_thread.is_alive():
            return False
        dirty_before = self.dirty

        def run() -> None:
            try:
                self.store.save()
            except Exception as exc:  # a thread has no caller to raise to
                log.error("background save failed: %s", exc)
                self.last_bgsave_ok = self.last_save_ok = False
                return
            self.last_bgsave_ok = self.last_save_ok = True
            self.dirty = max(0, self.dirty - dirty_before)
            self.last_save = int(time.time())
            self.saves += 1

        self.bgsave_thread = threading.Thread(target=run, name="snapkv-bgsave", daemon=True)
        self.bgsave_thread.start()
        return True

    def writes_refused(self) -> bool:
        """Whether writes get ``-MISCONF`` (Redis's ``writeCommandsDeniedByDiskError``).

        A write accepted while snapshots fail would be lost at the next
        restart without anyone being told; so, as Redis does by default,
        the server refuses writes until a snapshot succeeds again (or
        ``stop-writes-on-bgsave-error`` is turned off). With a journal, a
        failing disk already makes every write fail: the Store refuses.
        """
        config = self.config
        return not self.last_bgsave_ok and config.stop_writes_on_bgsave_error and bool(config.save)

    def save_due(self, now: float) -> bool:
        """Whether a ``save`` rule asks for a snapshot now."""
        elapsed = now - self.last_save
        return any(self.dirty >= changes and elapsed >= secs for secs, changes in self.config.save)
