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
import os
import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from snapkv.errors import SnapkvError, WrongTypeError
from snapkv.server.client import Blocked
from snapkv.server.conf import DEFAULT_BUFFER_LIMITS, parse_save
from snapkv.server.resp.reader import DEFAULT_MAX_ARGS, DEFAULT_MAX_BULK_LEN
from snapkv.server.resp.writer import error
from snapkv.server.table import Command, CommandError

#: Redis's ``shared.wrongtypeerr``.
WRONGTYPE = error("WRONGTYPE Operation against a key holding the wrong kind of value")

if TYPE_CHECKING:
    from collections.abc import Callable

    from snapkv.server.client import Client
    from snapkv.store import Keyspace, RestoreReport, Store

__all__ = ["REDIS_VERSION", "Config", "ServerState", "parse_save", "store_fsync"]

log = logging.getLogger("snapkv.server")

#: The Redis version whose commands, replies and errors this server matches.
REDIS_VERSION: Final = "7.2.0"


@dataclass
class Config:
    """The server's settings; CONFIG GET/SET reads and writes the mutable ones.

    The defaults are an embedded server's: no directory, no journal, no
    ``save`` rules (``serve(Config())`` keeps its data in memory).
    ``snapkv serve`` starts from redis-server's defaults instead: the
    current directory, ``appendonly yes`` and :data:`~snapkv.server.conf.DEFAULT_SAVE`.
    :mod:`snapkv.server.conf` reads and checks every value (file, options,
    CONFIG SET) with Redis's rules; :meth:`check` checks how they combine.
    """

    #: Redis's ``bind``: one or more addresses separated by spaces; a
    #: leading ``-`` marks one that may be unavailable (``127.0.0.1 -::1``).
    host: str = "127.0.0.1"
    port: int = 6379
    #: The data directory (snapshots and journal); ``None``: none, memory only.
    dir: str | None = None
    requirepass: str | None = None
    appendonly: bool = False
    appendfsync: str = "everysec"
    #: Redis's ``save``: (seconds, changes) pairs; a snapshot is taken when
    #: at least ``changes`` changes were made in the last ``seconds``. SHUTDOWN
    #: and SIGTERM snapshot only when there is at least one (as Redis).
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
    #: Redis's ``loglevel``: debug, verbose, notice or warning.
    loglevel: str = "notice"
    #: Redis's ``logfile``: append the log there; "" is standard output.
    logfile: str = ""
    #: Redis's ``pidfile``: written once the data directory is ours, removed at exit; "" none.
    pidfile: str = ""
    #: Redis's ``supervised``: ``systemd`` (or ``auto`` with NOTIFY_SOCKET set)
    #: sends READY=1 / STOPPING=1 / STATUS= to systemd; ``no``; ``upstart`` is not supported.
    supervised: str = "no"
    #: Redis 7.0's ``shutdown-on-sigterm`` and ``shutdown-on-sigint``: SHUTDOWN's
    #: flags for that signal (``save``, ``nosave``, ``now``, ``force``), or
    #: ``default``: as SHUTDOWN without arguments.
    shutdown_on_sigterm: str = "default"
    shutdown_on_sigint: str = "default"
    #: Redis's ``aof-load-truncated``: always true here, a torn journal tail
    #: is dropped and logged (``no`` is refused by the config reader).
    aof_load_truncated: bool = True
    #: Start from a journal damaged before its end by keeping the records
    #: before the damage (``open(repair=True)``; implies ``rdb_load_fallback``).
    aof_load_repair: bool = False
    #: Load the newest older snapshot when the newest fails its checks (``open(fallback=True)``).
    rdb_load_fallback: bool = False
    #: Accepted and ignored (nothing is ever evicted); CONFIG GET shows them.
    maxmemory: int = 0
    maxmemory_policy: str = "noeviction"
    #: Redis 7.0's compact-encoding thresholds (and their ``ziplist`` aliases):
    #: snapkv's containers do not change with them, but OBJECT ENCODING reports
    #: what Redis would (see server/cmd_object.py and conf.ENCODINGS).
    hash_max_listpack_entries: int = 512
    hash_max_listpack_value: int = 64
    list_max_listpack_size: int = -2
    list_compress_depth: int = 0
    set_max_intset_entries: int = 512
    zset_max_listpack_entries: int = 128
    zset_max_listpack_value: int = 64
    #: Redis's ``notify-keyspace-events`` as flags (``conf.parse_events``): 0, none.
    notify_keyspace_events: int = 0
    #: Redis's ``client-output-buffer-limit``: class -> (hard, soft, soft seconds).
    client_output_buffer_limit: dict[str, tuple[int, int, int]] = field(
        default_factory=lambda: dict(DEFAULT_BUFFER_LIMITS)
    )
    #: Redis's ``busy-reply-threshold`` (``lua-time-limit``), in milliseconds: a
    #: script running longer makes other clients' commands answer ``-BUSY``.
    busy_reply_threshold: int = 5000
    #: Replication to Redis replicas (see :mod:`snapkv.server.replicas`): the
    #: backlog's bytes, seconds it outlives the last replica, seconds between
    #: PINGs in the stream, seconds of a replica's silence before it is dropped,
    #: and ``repl-diskless-sync`` (accepted: the snapshot is always sent from memory).
    repl_backlog_size: int = 1 << 20
    repl_backlog_ttl: int = 3600
    repl_ping_replica_period: int = 10
    repl_timeout: int = 60
    repl_diskless_sync: bool = True
    #: Redis's ``protected-mode``: while the default user has no password, only
    #: clients from 127.0.0.1 and ::1 are served (others get ``-DENIED``).
    protected_mode: bool = True
    #: ACL (see :mod:`snapkv.server.acl`): Redis's ``aclfile`` ("" none), the
    #: ACL LOG's length, whether new users get every channel, and the config
    #: file's ``user`` lines (each: the name, then its rules).
    aclfile: str = ""
    acllog_max_len: int = 128
    acl_pubsub_default: str = "resetchannels"
    acl_users: list[list[str]] = field(default_factory=list)
    #: Redis's ``rename-command`` lines (config file only), in order: (name, new
    #: name), the new name "" disabling the command (see ``server/rename.py``).
    rename_commands: list[tuple[str, str]] = field(default_factory=list)
    #: TLS (``server/tls.py``, Redis's ``tls-*``): a TLS listener on ``tls_port``
    #: (0: none) for every ``bind`` address, with these files and choices.
    tls_port: int = 0
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_key_file_pass: str = ""
    tls_ca_cert_file: str = ""
    tls_ca_cert_dir: str = ""
    tls_auth_clients: str = "yes"
    tls_protocols: str = ""
    tls_ciphers: str = ""
    tls_ciphersuites: str = ""
    tls_prefer_server_ciphers: bool = False
    tls_session_caching: bool = True
    tls_session_cache_size: int = 20480
    tls_session_cache_timeout: int = 300
    tls_dh_params_file: str = ""
    #: The config file the server was started with, as an absolute path ("" none):
    #: INFO server's ``config_file``.
    config_file: str = ""
    #: SLOWLOG: log commands taking at least this many microseconds (-1: none,
    #: 0: all), keeping the newest ``slowlog_max_len`` (Redis's settings).
    slowlog_log_slower_than: int = 10000
    slowlog_max_len: int = 128
    #: LATENCY: record an event taking at least this many milliseconds (0: off).
    latency_monitor_threshold: int = 0
    #: INFO latencystats: a latency histogram per command, and the percentiles shown.
    latency_tracking: bool = True
    latency_tracking_info_percentiles: tuple[float, ...] = (50.0, 99.0, 99.9)
    #: OBJECT FREQ's LFU counter: its logarithm factor and decay minutes.
    lfu_log_factor: int = 10
    lfu_decay_time: int = 1

    @property
    def addresses(self) -> list[tuple[str, bool]]:
        """The ``bind`` addresses as (address, optional): ``*`` is 0.0.0.0, ``::*`` is ``::``."""
        found = []
        for word in self.host.split():
            optional = word.startswith("-")
            address = word[1:] if optional else word
            found.append(({"*": "0.0.0.0", "::*": "::"}.get(address, address), optional))
        return found

    def check(self) -> None:
        """Check what the settings mean together (each one alone is checked as it is read).

        :raises ValueError: naming the setting: ``appendonly yes`` or ``save``
            rules without a directory to write to, or a value out of range.
        """
        if not self.dir:
            if self.appendonly:
                raise ValueError(
                    "appendonly yes needs a data directory (dir) to write the journal to; "
                    "set dir, or appendonly no for a memory-only server"
                )
            if self.save:
                raise ValueError(
                    "save rules need a data directory (dir) to write snapshots to; "
                    'set dir, or save "" for a memory-only server'
                )
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be between 0 and 65535, not {self.port}")
        if self.databases < 1 or self.maxclients < 1 or self.timeout < 0:
            raise ValueError("databases and maxclients must be >= 1, timeout >= 0")
        if not self.addresses:
            raise ValueError("bind needs at least one address")
        if self.aclfile and self.acl_users:
            # Redis's ACLLoadUsersAtStartup refuses to start, with this text.
            raise ValueError(
                "Configuring Redis with users defined in redis.conf and at the same setting "
                "an ACL file path is invalid. This setup is very likely to lead to "
                "configuration errors and security holes, please define either an ACL file "
                "or declare users directly in your redis.conf, but not both."
            )


def store_fsync(appendfsync: str) -> str:
    """The Store's fsync policy for the server's ``appendfsync``.

    ``always`` is ``no`` for the Store: the server fsyncs once per turn of
    its event loop before any reply goes out (group sync, see
    :mod:`snapkv.server.network`) instead of once per write.
    """
    return "no" if appendfsync == "always" else appendfsync


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
        #: Changes since the last successful save (Redis's ``server.dirty``):
        #: what ``save`` rules count and INFO's ``rdb_changes_since_last_save``,
        #: summed by ``call()`` from each write's ``Client.changes``.
        self.dirty = 0
        self.last_save = int(self.started)
        self.last_save_ok = True
        self.bgsave_thread: threading.Thread | None = None
        self.last_bgsave_ok = True
        self.saves = 0
        #: When the running BGSAVE started (``time.monotonic()``), or ``None``:
        #: INFO's ``rdb_current_bgsave_time_sec``.
        self.bgsave_started: float | None = None
        #: Seconds the last successful snapshot took (SAVE, BGSAVE, save rules,
        #: SHUTDOWN), or ``None`` before any: INFO's ``rdb_last_bgsave_time_sec``.
        self.last_save_seconds: float | None = None
        #: Bytes of the last successful snapshot, or ``None`` (unknown, or before any).
        self.last_save_bytes: int | None = None
        #: The generation the server's last successful snapshot published.
        self.newest_saved: str | None = None
        #: The absolute path of the directory the store's snapshots and journal
        #: live in, or ``None`` when the store has none (a memory medium: SAVE
        #: then keeps its snapshot in this process only). CONFIG GET dir shows it.
        directory = getattr(store.medium, "directory", None)
        self.data_dir: str | None = None if directory is None else os.path.abspath(directory)
        #: What the store loaded at start (``Store.last_restore``): keys loaded,
        #: keys found expired, snapshot, journal records; ``None`` if it was not restored.
        self.restore_report: RestoreReport | None = store.last_restore
        #: Seconds the start-up restore took (``serve`` sets it; 0.0 if unknown).
        self.load_seconds = 0.0
        #: WATCHed keys: (keyspace, key) -> the clients watching it.
        self.watched: dict[tuple[int, str], set[Client]] = {}
        #: Snapshots of the names SCAN, HSCAN, SSCAN and ZSCAN walk, by walk
        #: number: (what is walked, the names, when last continued) (see server/scan.py).
        self.scans: dict[int, tuple[Hashable, list[str], float]] = {}
        #: The number of the newest SCAN walk (numbers wrap after 2**32 - 1).
        self.scan_walks = 0
        #: Set by SHUTDOWN (whether to save first); the network layer then stops.
        self.shutdown_requested: bool | None = None
        #: The command table (lower-case name -> Command), set by the dispatcher.
        self.table: dict[str, Command] = {}
        #: Snapkv and network facts INFO reports, filled in by the network layer.
        self.info: dict[str, Any] = {}
        #: Told by :meth:`set_appendfsync` whether replies now wait for a group
        #: sync (``appendfsync always``); the network layer sets it.
        self.group_sync_changed: Callable[[bool], None] | None = None
        #: Called with CONFIG SET's parsed values (name -> value) before any is
        #: set; one raises CommandError to refuse them all (the TLS listener
        #: builds its new context there).
        self.config_checks: list[Callable[[dict[str, Any]], Callable[[], None] | None]] = []
        #: What a command inside EXEC left to do once EXEC's transaction ends.
        self.after_transaction: list[Callable[[], None]] = []
        #: Told ``(keyspace, keys)`` after a write changed those keys, or
        #: ``(keyspace, None)`` when a whole keyspace was emptied or swapped
        #: (``None`` keyspace: every one), wherever it came from: a command,
        #: EXEC's queue, a script. Blocked clients (their keys became ready)
        #: and client-side caching (invalidations) listen. A listener only
        #: takes note; what it must *do* goes to :attr:`deferred`.
        self.key_listeners: list[Callable[[int | None, list[str] | None], None]] = []
        #: Work to run once the command being executed has finished, before
        #: the next one (Redis's ``handleClientsBlockedOnKeys`` after ``call``):
        #: serving clients blocked on keys a write made ready. See :meth:`run_deferred`.
        self.deferred: list[Callable[[], None]] = []
        #: Clients in MONITOR mode.
        self.monitors: list[Client] = []
        #: Told each client that disconnects (after its WATCHes are dropped):
        #: pub/sub unsubscribes it, MONITOR and tracking forget it.
        self.client_gone: list[Callable[[Client], None]] = []
        #: While a script has run past ``busy-reply-threshold``: the ``-BUSY``
        #: reply every command without ``allow_busy`` gets; else ``None``.
        self.busy_reply: bytes | None = None
        #: CLIENT PAUSE: ``"write"`` or ``"all"`` while a pause holds, else ``None``;
        #: until ``time.monotonic()`` reaches ``pause_until``.
        self.pause_mode: str | None = None
        self.pause_until = 0.0
        #: Clients whose command waits for the pause to end, in arrival order.
        self.postponed: list[Client] = []
        #: Whether a request must take the dispatcher's checked path whatever
        #: its client (MONITOR feeds, a busy script, a pause, MISCONF): one flag
        #: the fast path reads. See :meth:`update_gate`.
        self.gate = False
        #: Run a callable on the event loop's thread, from any thread
        #: (``loop.call_soon_threadsafe``); ``None`` without an event loop,
        #: where everything runs on the caller's thread. The network layer sets it.
        self.threadsafe_call: Callable[[Callable[[], None]], object] | None = None
        #: Run a callable after a delay in seconds on the event loop
        #: (``loop.call_later``, returning something with ``cancel()``);
        #: ``None`` without one. The network layer sets it.
        self.call_later: Callable[[float, Callable[[], None]], Any] | None = None
        #: The identity of the event loop's thread (``threading.get_ident()``), or
        #: ``None`` without one: a push from another thread goes through ``threadsafe_call``.
        self.loop_thread: int | None = None
        self._pause_timer: Any = None
        # The registries, each set by its module's install() (the dispatcher
        # calls them): typed there, through each module's accessor.
        #: :mod:`snapkv.server.pubsub`'s registry of subscriptions.
        self.pubsub: Any = None
        #: :mod:`snapkv.server.blocking`'s registry of clients blocked on keys.
        self.blocking: Any = None
        #: :mod:`snapkv.server.scripting`'s engine (scripts and functions).
        self.scripts: Any = None
        #: CLIENT TRACKING's table of tracked keys (see :mod:`snapkv.server.cmd_client`).
        self.tracking: Any = None
        #: :mod:`snapkv.server.replicas`' primary: the Redis replicas, backlog and stream.
        self.replicas: Any = None
        #: :mod:`snapkv.server.acl`'s registry: the users, their rules, the ACL LOG.
        self.acl: Any = None

    # ---------------------------------------------------------- gate, hooks

    def update_gate(self) -> None:
        """Recompute :attr:`gate` after a MONITOR, a busy script, a pause or a save changed."""
        self.gate = bool(
            self.monitors
            or self.busy_reply is not None
            or self.pause_mode is not None
            or not self.last_bgsave_ok
        )

    def run_deferred(self) -> None:
        """Run :attr:`deferred` until it is empty (a job may add more: a served pop pushes)."""
        if self.busy_reply is not None:
            # A script still runs (on its thread, holding the Store): the
            # work waits for its end, where the scripting engine runs it.
            return
        deferred = self.deferred
        while deferred:
            job = deferred.pop(0)
            try:
                job()
            except Exception:  # one failing job must not stop the others
                log.exception("deferred work failed")

    # ---------------------------------------------------------- CLIENT PAUSE

    def pause(self, mode: str, seconds: float) -> None:
        """CLIENT PAUSE: hold ``mode``'s commands (``write`` or ``all``) for ``seconds``.

        As Redis's ``pauseClients``: a pause never shortens one already in
        force, and ``all`` wins over ``write``.
        """
        until = time.monotonic() + seconds
        if self.pause_mode is not None:
            until = max(until, self.pause_until)
            if self.pause_mode == "all":
                mode = "all"
        self.pause_mode = mode
        self.pause_until = until
        self.update_gate()
        if self._pause_timer is not None:
            self._pause_timer.cancel()
        if self.call_later is not None:
            self._pause_timer = self.call_later(max(0.0, until - time.monotonic()), self._end_pause)

    def _end_pause(self) -> None:
        self._pause_timer = None
        if self.pause_mode is not None and time.monotonic() >= self.pause_until - 0.001:
            self.unpause()
        elif self.pause_mode is not None and self.call_later is not None:
            delay = self.pause_until - time.monotonic()
            self._pause_timer = self.call_later(delay, self._end_pause)

    def unpause(self) -> None:
        """End the pause: every postponed command runs again, in arrival order."""
        self.pause_mode = None
        self.update_gate()
        if self._pause_timer is not None:
            self._pause_timer.cancel()
            self._pause_timer = None
        waiting, self.postponed = self.postponed, []
        for client in waiting:
            if client.blocked is not None and client.blocked.kind == "postponed":
                client.wake(None)

    def paused_for(
        self, cmd: Command, client: Client, queued_write: bool, argv: list[str] | None = None
    ) -> bool:
        """Whether ``cmd`` from ``client`` must wait for the pause to end (Redis's processCommand).

        ``queued_write``: ``cmd`` is an EXEC whose queue holds a write.
        ``argv``: the request; a script's (EVAL*, FCALL*) flags decide
        whether it is a write, as Redis derives them (``no-writes`` runs
        during a WRITE pause).
        """
        mode = self.pause_mode
        if mode is None:
            return False
        if time.monotonic() >= self.pause_until:
            self.unpause()
            return False
        if mode == "all":
            return True
        if argv is not None:
            from snapkv.server.scripting import script_writes  # noqa: PLC0415 - a cycle

            writes = script_writes(self, cmd, argv)
            if writes is not None:
                return writes or queued_write
        return cmd.pausable or queued_write

    def postpone(self, client: Client, argv: list[str]) -> None:
        """Hold ``client``'s command until the pause ends (Redis's ``blockPostponeClient``)."""

        def cancel() -> None:
            if client in self.postponed:
                self.postponed.remove(client)

        client.blocked = Blocked(argv, "postponed", cancel=cancel, unblockable=False)
        self.postponed.append(client)

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
        for gone in self.client_gone:
            gone(client)

    def call(self, client: Client, cmd: Command, argv: list[str]) -> bytes:
        """Run ``cmd``'s handler (no checks) and account for it (Redis's ``call()``).

        The dispatcher's fast path inlines this (a Python call costs as much
        as its dict lookups): a change here is a change there.
        """
        client.last_command = cmd.full_name
        try:
            reply = cmd.handler(client, argv)
        except Exception as exc:
            self.dirty += client.changes
            client.changes = 0
            return self.failed(cmd, exc)
        if cmd.write and client.changes:
            # Only a write that changed something (Redis's signalModifiedKey
            # goes with its server.dirty): a no-op write fails no WATCH.
            self.dirty += client.changes
            client.changes = 0
            if self.watched or self.key_listeners:
                self.touch(client.db_index, cmd.keys(argv))
        return reply

    def failed(self, cmd: Command, exc: Exception) -> bytes:
        """The reply for a handler that raised ``exc``."""
        if isinstance(exc, CommandError):
            return exc.reply
        if isinstance(exc, WrongTypeError):
            # The Store's refusal of a key of another type, in Redis's words.
            return WRONGTYPE
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
        """Keys of keyspace ``db`` were written: fail the transactions watching
        them, and tell the :attr:`key_listeners`."""
        watched = self.watched
        for key in keys:
            for client in watched.get((db, key), ()):
                client.dirty_cas = True
        for listener in self.key_listeners:
            listener(db, keys)

    def touch_db(self, db: int | None) -> None:
        """Keyspace ``db`` (``None``: every one) was emptied or swapped."""
        for (index, _key), clients in self.watched.items():
            if db is None or index == db:
                for client in clients:
                    client.dirty_cas = True
        for listener in self.key_listeners:
            listener(db, None)

    def watch_expired(self, client: Client) -> bool:
        """Whether a key the client watched has expired since (Redis fails EXEC then too)."""
        now = self.store.now_ms()
        return any(at is not None and at <= now for at in client.watched.values())

    # ---------------------------------------------------------------- persist

    @property
    def memory_only(self) -> bool:
        """No automatic persistence: no ``save`` rules and no journal (Redis's
        ``save ""`` with ``appendonly no``): data lives in memory until a SAVE."""
        return not self.config.save and not self.config.appendonly

    def set_appendfsync(self, appendfsync: str) -> None:
        """CONFIG SET appendfsync: journal under the new policy from the next write on.

        With a journal, the Store switches its policy (a rotation to a new
        journal, :meth:`Store.set_fsync`) and the network layer starts or
        stops holding replies for the group sync. Without one, the value
        is only kept. Raises the Store's error, changing nothing.
        """
        config = self.config
        if config.appendonly and self.data_dir is not None:
            if self.store.in_transaction:
                # Inside EXEC (one Store transaction): the switch, a journal
                # rotation, runs once the block's record is written.
                self.after_transaction.append(lambda: self.set_appendfsync(appendfsync))
                return
            self.store.set_fsync(store_fsync(appendfsync))
        config.appendfsync = appendfsync
        if self.group_sync_changed is not None:
            self.group_sync_changed(config.appendonly and appendfsync == "always")
        log.info("appendfsync is now %s", appendfsync)

    def describe_persistence(self) -> str:
        """One sentence: where the data lives and what keeps it (the start-up log's)."""
        config = self.config
        where = self.data_dir
        if where is None:
            return (
                "no data directory: data lives in memory only and is lost at exit "
                "(SAVE keeps a snapshot in this process only)"
            )
        if self.memory_only:
            return (
                f'no automatic persistence (save "", appendonly no): data lives in memory '
                f"only and is lost at exit unless SAVE or BGSAVE writes a snapshot to {where}"
            )
        rules = " ".join(f"{secs} {changes}" for secs, changes in config.save)
        snapshots = f"save {rules}" if rules else 'save "": only on SAVE, BGSAVE, compaction'
        if config.appendonly:
            journal = (
                f"journal journal-*.skj (appendonly yes, appendfsync {config.appendfsync}: "
                "every write before its reply)"
            )
        else:
            journal = (
                "no journal (appendonly no: writes since the last snapshot are lost at a crash)"
            )
        return f"data in {where}: snapshots snapshot-*.skv ({snapshots}); {journal}"

    def newest_snapshot(self) -> tuple[str, int | None]:
        """The newest snapshot's generation and size in bytes: ``("", None)`` if none.

        The size is ``None`` when it cannot be read (only a detail is lost:
        the log line's, INFO's ``aof_base_size``). On a directory it is one
        ``listdir`` and one ``stat``.
        """
        medium = self.store.medium
        name, size = "", None
        try:
            generations = medium.generations()
            if generations:
                name = generations[0]
                path = getattr(medium, "path", None)
                if path is not None:
                    size = os.stat(path(name)).st_size
                else:
                    blob = medium.read(name)
                    size = None if blob is None else len(blob)
        except (OSError, SnapkvError) as exc:
            log.debug("cannot size the newest snapshot: %s", exc)
        return name, size

    def _saved(self, started: float) -> None:
        """Bookkeeping and the log line after a successful snapshot."""
        took = time.monotonic() - started
        self.last_save_seconds = took
        medium = self.store.medium
        name, size = self.newest_snapshot()
        self.last_save_bytes = size
        self.newest_saved = name or None
        where = medium.describe(name) if name else "the medium"
        amount = f"{size:,} bytes" if size is not None else "size unknown"
        log.info("DB saved: %s (%s in %.3f s)", where, amount, took)

    def save(self, why: str = "SAVE") -> None:
        """Snapshot now, on the caller's thread (SAVE, SHUTDOWN); raises the store's error."""
        started = time.monotonic()
        log.info("Saving a snapshot (%s)...", why)
        try:
            self.store.save()
        except Exception:
            self.last_save_ok = False
            raise
        # A good snapshot ends a bgsave error, as Redis's rdbSave does.
        self.last_save_ok = self.last_bgsave_ok = True
        self.update_gate()
        self.dirty = 0
        self.last_save = int(time.time())
        self.saves += 1
        self._saved(started)

    def bgsave(self, why: str = "BGSAVE") -> bool:
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
        started = self.bgsave_started = time.monotonic()
        log.info("Background saving started (%s)", why)

        def run() -> None:
            try:
                self.store.save()
            except Exception as exc:  # a thread has no caller to raise to
                log.error("Background saving error: %s", exc)
                self.last_bgsave_ok = self.last_save_ok = False
                self.update_gate()
                self.bgsave_started = None
                return
            self.last_bgsave_ok = self.last_save_ok = True
            self.update_gate()
            self.dirty = max(0, self.dirty - dirty_before)
            self.last_save = int(time.time())
            self.saves += 1
            self.bgsave_started = None
            self._saved(started)

        self.bgsave_thread = threading.Thread(target=run, name="snapkv-bgsave", daemon=True)
        self.bgsave_thread.start()
        return True

    def prepare_shutdown(self, *, save: bool | None = None, force: bool = False) -> bool:
        """Get ready to exit (Redis's ``prepareForShutdown``); False: keep running.

        :param save: snapshot first (SHUTDOWN SAVE), never (NOSAVE), or
            ``None``: only when ``save`` rules are configured, as Redis
            (SHUTDOWN without arguments, SIGTERM, SIGINT).
        :param force: exit even if the snapshot or the journal sync fails.
        With a journal, the journal is synced (closing the store syncs it
        again): everything acknowledged is then on disk whether or not a
        snapshot was taken.
        """
        why = "NOSAVE" if save is False else "no save rules"
        if save is None:
            save = bool(self.config.save)
        if save:
            log.info("Saving the final snapshot before exiting.")
            try:
                self.save("SHUTDOWN")
            except Exception as exc:
                log.error("Error trying to save the DB, can't exit: %s", exc)
                if not force:
                    return False
                log.warning("FORCE: exiting anyway; the final snapshot failed")
        elif self.config.appendonly:
            log.info("Not saving a snapshot (%s); the journal holds every write.", why)
        else:
            keys = sum(len(space) for space in self.keyspaces)
            log.warning(
                "Not saving (%s) and appendonly no: %d keys in memory are dropped.", why, keys
            )
        if self.config.appendonly:
            try:
                self.store.sync()
            except Exception as exc:
                log.error("Error trying to sync the journal, can't exit: %s", exc)
                if not force:
                    return False
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
