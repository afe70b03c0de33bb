"""The server's state (Redis's ``redisServer``): settings, store, clients, counters, WATCH.

:class:`Config` holds the settings (CONFIG GET/SET reads and writes the
mutable ones). :class:`ServerState` is everything the server knows besides
the sockets; :class:`~snapkv.server.dispatch.Dispatcher` adds the command
table and the request checks to it, and :meth:`ServerState.call` runs a
command that passed them (Redis's ``call()``).

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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from snapkv.errors import SnapkvError
from snapkv.server.resp.reader import DEFAULT_MAX_ARGS, DEFAULT_MAX_BULK_LEN
from snapkv.server.resp.writer import error
from snapkv.server.table import Command, CommandError

if TYPE_CHECKING:
    from snapkv.server.client import Client
    from snapkv.store import Keyspace, Store

__all__ = ["REDIS_VERSION", "Config", "ServerState", "parse_save"]

log = logging.getLogger("snapkv.server")

#: The Redis version whose commands, replies and errors this server matches.
REDIS_VERSION: Final = "7.2.0"


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


class ServerState:
    """Everything the server knows besides the sockets: store, settings, clients, counters.

    :class:`snapkv.server.dispatch.Dispatcher` subclasses it with the
    command table and ``execute``; the network layer registers a
    :class:`~snapkv.server.client.Client` per connection and calls ``execute``.
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
        #: Snapshots of the key lists SCAN walks, by walk number (see cmd_keys).
        self.scans: dict[int, tuple[int, list[str]]] = {}
        #: The number of the newest SCAN walk (numbers wrap after 2**32 - 1).
        self.scan_walks = 0
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

    def call(self, client: Client, cmd: Command, argv: list[str]) -> bytes:
        """Run ``cmd``'s handler (no checks) and account for it (Redis's ``call()``).

        The dispatcher's fast path inlines this (a Python call costs as much
        as its dict lookups): a change here is a change there.
        """
        client.last_command = cmd.full_name
        try:
            reply = cmd.handler(client, argv)
        except Exception as exc:
            return self.failed(cmd, exc)
        if cmd.write:
            self.dirty += 1
            if self.watched:
                self.touch(client.db_index, cmd.keys(argv))
        return reply

    def failed(self, cmd: Command, exc: Exception) -> bytes:
        """The reply for a handler that raised ``exc``."""
        if isinstance(exc, CommandError):
            return exc.reply
        if isinstance(exc, SnapkvError):
            # The store refused (a failing disk, a parked journal): say so
            # loudly, as Redis's MISCONF does, and keep serving.
            log.error("%s failed: %s", cmd.full_name, exc)
            return error(f"ERR {cmd.full_name}: {exc}")
        # A bug: this client gets an error, everyone else keeps being served.
        log.error("%s failed", cmd.full_name, exc_info=exc)
        return error(f"ERR internal error in '{cmd.full_name}': {type(exc).__name__}: {exc}")

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
