"""The one dispatcher, as Redis's ``processCommand``: every request passes the same checks.

The table is built from every family module's declarations (see
:mod:`snapkv.server.table`); :class:`Dispatcher` runs each request through
the same checks, in Redis's order and with its exact texts:

1. unknown command (``ERR unknown command 'FOO', with args beginning with: 'a' ``)
   or, for a container such as CONFIG, unknown subcommand;
2. arity (``ERR wrong number of arguments for 'get' command``);
3. authentication (``NOAUTH Authentication required.``) unless the command
   is flagged ``noauth``;
4. inside MULTI, a command flagged ``no_multi`` (SAVE, SHUTDOWN) gets
   ``ERR Command not allowed inside a transaction``;
4a. a client whose ACL user has limits (``Client.acl_open`` false) runs
   only what the user's rules allow (``NOPERM ...``, see :mod:`snapkv.server.acl`);
5. after a failed background save, writes and PING get ``MISCONF`` (see
   ``ServerState.writes_refused``);
6. inside MULTI, every command but EXEC/DISCARD/MULTI/WATCH/QUIT/RESET is
   queued (``+QUEUED``); a request refused by 1-5 makes EXEC fail with
   EXECABORT;
7. :meth:`~snapkv.server.state.ServerState.call` runs the handler; the
   changes a write command made (``Client.changes``, which its handler
   counts as Redis's handlers count ``server.dirty``) are added to ``dirty``
   for the ``save`` rules, and it fails the transactions that WATCH its keys.

The fast path (a known command, right arity, an authenticated client
outside MULTI) is two dict lookups, one comparison of the argument count
and the handler call: the table holds each name in lower and upper case so
that the usual spellings need no ``str.lower()``.

Statistics, as Redis's ``call()`` and ``rejectCommand`` keep them for INFO:
a command that ran counts one call and its time (``perf_counter`` before
and after: two clock reads and a few attribute updates, 0.15 to 0.2 µs of the
0.5-0.7 µs ``execute`` of a GET or SET took before), and ``failed_calls``
if it answered an error; one refused by
checks 2-5 counts ``rejected_calls``. Every error reply, refusals and
unknown commands included, counts in errorstats by its code
(:class:`~snapkv.server.table.ErrorStats`). ``commands_processed`` counts
calls, as Redis's ``total_commands_processed``: a refused or queued request
is not one (the queued command counts when EXEC runs it).
"""

from __future__ import annotations

from time import perf_counter

# The family modules declare their commands when imported (see table.py).
import snapkv.server.cmd_acl
import snapkv.server.cmd_blocking
import snapkv.server.cmd_client
import snapkv.server.cmd_config
import snapkv.server.cmd_connection
import snapkv.server.cmd_dump
import snapkv.server.cmd_expire
import snapkv.server.cmd_function
import snapkv.server.cmd_hash
import snapkv.server.cmd_info
import snapkv.server.cmd_introspection
import snapkv.server.cmd_keys
import snapkv.server.cmd_latency
import snapkv.server.cmd_list
import snapkv.server.cmd_multi
import snapkv.server.cmd_object
import snapkv.server.cmd_persistence
import snapkv.server.cmd_pubsub
import snapkv.server.cmd_replication
import snapkv.server.cmd_scripting
import snapkv.server.cmd_set
import snapkv.server.cmd_sort
import snapkv.server.cmd_stream
import snapkv.server.cmd_strings
import snapkv.server.cmd_zset
import snapkv.server.cmd_zset_store  # noqa: F401 - imported for its declarations
from snapkv.server.acl import install as install_acl
from snapkv.server.acl import refusal as acl_refusal
from snapkv.server.blocking import install as install_blocking
from snapkv.server.client import REPLY_ON, REPLY_SKIP, REPLY_SKIP_NEXT, Client
from snapkv.server.latency import SAMPLE_MASK, Latency
from snapkv.server.monitor import feed_monitors
from snapkv.server.notify import install as install_notify
from snapkv.server.pubsub import install as install_pubsub
from snapkv.server.rename import apply_renames
from snapkv.server.replicas.primary import install as install_replicas
from snapkv.server.resp.text import to_bytes, to_text
from snapkv.server.resp.writer import QUEUED, error
from snapkv.server.scripting import install as install_scripting
from snapkv.server.state import Config, ServerState
from snapkv.server.table import (
    COMMANDS,
    Command,
    ErrorStats,
    SlowLog,
    build_table,
)
from snapkv.store import Store

__all__ = ["Dispatcher", "unknown_command"]

#: Commands that run at once even inside MULTI (Redis's list in processCommand).
_NOT_QUEUED = frozenset({"exec", "discard", "multi", "watch", "quit", "reset"})
#: What a RESP2 client may send while subscribed (Redis's processCommand).
_SUBSCRIBED_MODE = frozenset(
    {
        "ping",
        "subscribe",
        "ssubscribe",
        "unsubscribe",
        "sunsubscribe",
        "psubscribe",
        "punsubscribe",
        "quit",
        "reset",
    }
)
_NOAUTH_REPLY = error("NOAUTH Authentication required.")
_NO_MULTI_REPLY = error("ERR Command not allowed inside a transaction")
#: A MONITOR client is a replica to Redis: it may not read or write keys.
_MONITOR_KEYSPACE = error("ERR Replica can't interact with the keyspace")
#: Redis's ``shared.bgsaveerr``, naming this server.
_MISCONF = error(
    "MISCONF snapkv is configured to save snapshots, but it's currently unable to persist "
    "to disk. Commands that may modify the data set are disabled, because this instance is "
    "configured to report errors during writes if snapshotting fails "
    "(stop-writes-on-bgsave-error option). Please check the server log for details about "
    "the snapshot error."
)


def _c_string(text: str, limit: int) -> bytes:
    """``text`` as C's ``%.*s`` prints it: up to its first NUL, at most ``limit`` bytes."""
    return to_bytes(text).partition(b"\0")[0][:limit]


def _quote_args(argv: list[str]) -> str:
    """Redis's ``'a' 'b' `` list of the first arguments: at most ~128 bytes, each quoted.

    As ``commandCheckExistence``: arguments are added while the list is
    under 128 bytes, each cut to what is left of them (so the list ends at
    most 128 + 3 bytes long) and at its first NUL.
    """
    out = b""
    for arg in argv:
        if len(out) >= 128:
            break
        out += b"'" + _c_string(arg, 128 - len(out)) + b"' "
    return to_text(out)


def _head(text: str) -> str:
    """First 128 bytes of ``text`` (up to a NUL), as Redis's ``%.128s``."""
    return to_text(_c_string(text, 128))


def unknown_command(argv: list[str]) -> str:
    """The error text for an unknown command."""
    return (
        f"ERR unknown command '{_head(argv[0])}', with args beginning with: {_quote_args(argv[1:])}"
    )


def _queued_write(cmd: Command, client: Client) -> bool:
    """Whether ``cmd`` is an EXEC that would run a write (Redis counts it as a write)."""
    return cmd.name == "exec" and any(queued.write for queued, _ in client.multi or ())


def _with_subs(cmd: Command) -> list[Command]:
    """``cmd`` and each of its subcommands once."""
    return [cmd, *{id(s): s for s in (cmd.subcommands or {}).values()}.values()]


def _arity_error(cmd: Command) -> bytes:
    return error(f"ERR wrong number of arguments for '{cmd.full_name}' command")


class Dispatcher(ServerState):
    """The server's state plus the command table and :meth:`execute`.

    :param store: the Store to serve (its keyspaces are Redis's databases).
    :param config: the settings (a default :class:`Config` if omitted).
    """

    def __init__(self, store: Store, config: Config | None = None) -> None:
        super().__init__(store, config)
        self.table = build_table(COMMANDS)
        apply_renames(self.table, self.config.rename_commands)  # the config file's rename-command
        #: Error replies by code (INFO errorstats).
        self.errors = ErrorStats()
        self.info["errors"] = self.errors
        #: Requests that took 10 ms or more (SLOWLOG).
        self.slowlog = SlowLog()
        self.info["slowlog"] = self.slowlog
        #: Slow log thresholds, latency monitor, per-command histograms (server/latency.py).
        self.latency = Latency(self, self.slowlog)
        self.info["latency"] = self.latency
        # The registries the families share (see each module).
        install_acl(self)  # first: a Client made by the others asks it about its user
        install_pubsub(self)
        install_blocking(self)
        install_scripting(self)
        install_notify(self)
        install_replicas(self)

    def commands(self) -> list[Command]:
        """Every top-level command, once each."""
        # Once each by identity: a renamed command is in the table under its new name only.
        return list({id(cmd): cmd for cmd in self.table.values()}.values())

    def execute(self, client: Client, argv: list[str]) -> bytes:
        """Run one request for ``client`` and return its encoded reply."""
        cmd = self.table.get(argv[0])
        if (
            cmd is None
            or not cmd.min_args <= len(argv) <= cmd.max_args
            or cmd.subcommands is not None
            or not client.plain
            or self.gate
        ):
            reply = self._checked(client, argv)
            if client.reply_mode != REPLY_ON and client.blocked is None:
                reply = self._reply_mode(client, reply)
            if self.deferred:
                self.run_deferred()
            return reply
        # The fast path: call() inlined (a Python call costs as much as the dict lookups).
        client.last_command = cmd.full_name
        start = perf_counter()
        try:
            reply = cmd.handler(client, argv)
        except Exception as exc:
            return self._raised(client, cmd, argv, exc, start)
        took = perf_counter() - start
        cmd.seconds += took
        cmd.calls += 1
        self.commands_processed += 1
        if took >= self.latency.slow_after:
            self._slow(client, cmd, argv, took)
        if cmd.calls & SAMPLE_MASK == 1:  # Latency.record's test, inlined
            self.latency.record(cmd, took)
        # A handler refuses by raising (table.py's contract), so no reply of
        # the fast path is an error: only EXEC answers EXECABORT without
        # raising, and EXEC runs through call() (its client is in MULTI).
        if cmd.write and client.changes:
            # Only a write that changed something (Redis's signalModifiedKey
            # goes with its server.dirty): a no-op write fails no WATCH.
            self.dirty += client.changes
            client.changes = 0
            if self.watched or self.key_listeners:
                self.touch(client.db_index, cmd.keys(argv))
                if self.deferred:
                    self.run_deferred()
        return reply

    def call(self, client: Client, cmd: Command, argv: list[str]) -> bytes:
        """Run ``cmd``'s handler (no checks) and account for it (Redis's ``call()``).

        The same steps as :meth:`execute`'s fast path (which inlines them):
        a change here is a change there. EXEC runs its queue through here,
        so each queued command counts as its own call.
        """
        client.last_command = cmd.full_name
        start = perf_counter()
        try:
            reply = cmd.handler(client, argv)
        except Exception as exc:
            reply = self._raised(client, cmd, argv, exc, start)
        else:
            took = perf_counter() - start
            cmd.seconds += took
            cmd.calls += 1
            self.commands_processed += 1
            if took >= self.latency.slow_after:
                self._slow(client, cmd, argv, took)
            self.latency.record(cmd, took)
            if reply and reply[0] == 45:  # b"-": an error reply (EXEC's EXECABORT)
                cmd.failed_calls += 1
                self.errors.count(reply)
            if cmd.write and client.changes:
                # Only a write that changed something (Redis's signalModifiedKey
                # goes with its server.dirty): a no-op write fails no WATCH.
                self.dirty += client.changes
                client.changes = 0
                if self.watched or self.key_listeners:
                    self.touch(client.db_index, cmd.keys(argv))
        if self.monitors and not cmd.skip_monitor:
            # After the command whatever it answered, as Redis 7.0's call():
            # MULTI, its commands, then EXEC; a refused AUTH too.
            feed_monitors(self, client, argv)
        if client.tracking is not None:
            # Redis's trackingRememberKeys in call(), and CACHING's reset.
            client.tracking.after_command(client, cmd, argv)
        return reply

    def _reply_mode(self, client: Client, reply: bytes) -> bytes:
        """CLIENT REPLY OFF / SKIP: the reply is dropped (see ``client.REPLY_*``)."""
        mode = client.reply_mode
        if mode == REPLY_SKIP_NEXT:
            client.reply_mode = REPLY_SKIP
        elif mode == REPLY_SKIP:
            client.reply_mode = REPLY_ON
            client.update_plain()
        return b""

    def _raised(
        self, client: Client, cmd: Command, argv: list[str], exc: Exception, start: float
    ) -> bytes:
        """A handler raised: its reply is an error, and the call a failed one.

        (Whether the journal still takes writes, INFO's
        ``aof_last_write_status``, INFO asks the Store: a write refused for
        want of room leaves the journal usable.)
        """
        # Changes made before the error are made (Redis's dirty counts them too).
        self.dirty += client.changes
        client.changes = 0
        reply = self.failed(cmd, exc)
        took = perf_counter() - start
        if took >= self.latency.slow_after:
            self._slow(client, cmd, argv, took)
        cmd.seconds += took
        cmd.calls += 1
        cmd.failed_calls += 1
        self.commands_processed += 1
        self.latency.record(cmd, took)  # after the count: it samples by it
        self.errors.count(reply)
        return reply

    def _slow(self, client: Client, cmd: Command, argv: list[str], took: float) -> None:
        """A command took at least a threshold: the slow log and the latency monitor decide."""
        self.latency.slow(client, cmd, argv, took)

    def reset_stats(self) -> None:
        """CONFIG RESETSTAT: the server's counters, every command's and the error counts."""
        super().reset_stats()
        for cmd in self.commands():
            for counted in (cmd, *{id(s): s for s in (cmd.subcommands or {}).values()}.values()):
                counted.calls = counted.rejected_calls = counted.failed_calls = 0
                counted.seconds = 0.0
        self.errors.reset()
        self.latency.reset_histograms(c for cmd in self.commands() for c in _with_subs(cmd))

    def _checked(self, client: Client, argv: list[str]) -> bytes:
        """Every check of the module docstring, in Redis's order; then run or queue."""
        cmd = self.table.get(argv[0]) or self.table.get(argv[0].lower())
        if cmd is None:
            return self._reject(client, error(unknown_command(argv)))
        if not cmd.min_args <= len(argv) <= cmd.max_args:
            return self._reject(client, _arity_error(cmd), cmd)
        if cmd.subcommands is not None and len(argv) > 1:  # COMMAND alone is valid
            sub = cmd.subcommands.get(argv[1]) or cmd.subcommands.get(argv[1].lower())
            if sub is None:
                return self._reject(
                    client,
                    error(
                        f"ERR unknown subcommand '{_head(argv[1])}'. Try {argv[0].upper()} HELP."
                    ),
                )
            cmd = sub
            if not cmd.min_args <= len(argv) <= cmd.max_args:
                return self._reject(client, _arity_error(cmd), cmd)
        if not client.authenticated and not cmd.noauth:
            return self._reject(client, _NOAUTH_REPLY, cmd)
        if client.multi is not None and cmd.no_multi:
            return self._reject(client, _NO_MULTI_REPLY, cmd)
        if not client.acl_open:  # a user with limits: Redis's ACLCheckAllPerm (server/acl.py)
            denied = acl_refusal(self, client, cmd, argv)
            if denied is not None:
                return self._reject(client, denied, cmd)
        if self.writes_refused() and (
            cmd.write or cmd.name == "ping" or _queued_write(cmd, client)
        ):
            return self._reject(client, _MISCONF, cmd)
        if client.resp == 2 and client.subscribed and cmd.name not in _SUBSCRIBED_MODE:
            return self._reject(
                client,
                error(
                    f"ERR Can't execute '{cmd.full_name}': only (P|S)SUBSCRIBE / "
                    "(P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
                ),
                cmd,
            )
        if client.monitor and (cmd.write or cmd.readonly or cmd.pausable):
            return self._reject(client, _MONITOR_KEYSPACE, cmd)
        if self.busy_reply is not None and not cmd.allow_busy:
            return self._reject(client, self.busy_reply, cmd)
        if self.pause_mode is not None and self.paused_for(
            cmd, client, _queued_write(cmd, client), argv
        ):
            self.postpone(client, argv)
            return b""
        if client.multi is not None and cmd.name not in _NOT_QUEUED:
            client.multi.append((cmd, argv))
            return QUEUED
        return self.call(client, cmd, argv)

    def _reject(self, client: Client, reply: bytes, cmd: Command | None = None) -> bytes:
        """A request refused before running: inside MULTI this dooms the transaction.

        ``cmd``, when the request named one, counts a rejected call (Redis's
        ``rejectCommand``); an unknown command or subcommand counts only as
        an error reply. A refused EXEC ends the transaction at once, as
        Redis's ``execCommandAbort``: ``EXECABORT ... because of: <the refusal>``.
        """
        if cmd is not None:
            cmd.rejected_calls += 1
        if client.multi is not None:
            if cmd is not None and cmd.name == "exec":
                client.multi = None
                client.multi_failed = False
                client.update_plain()
                client.unwatch()
                reason = to_text(reply[1:-2])
                reply = error(f"EXECABORT Transaction discarded because of: {reason}")
                self.errors.count(reply)
                return reply
            client.multi_failed = True
        self.errors.count(reply)
        return reply
