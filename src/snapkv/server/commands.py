"""The command table and the one dispatcher, as Redis's ``processCommand`` and ``call``.

Every command is declared once (name, arity, flags, key positions,
handler) in a family module: :mod:`~snapkv.server.cmd_connection`,
:mod:`~snapkv.server.cmd_server`, :mod:`~snapkv.server.cmd_strings`,
:mod:`~snapkv.server.cmd_keys`, and here for transactions. :class:`Dispatcher`
builds the table from them and runs every request through the same checks,
in Redis's order and with its exact texts:

1. unknown command (``ERR unknown command 'FOO', with args beginning with: 'a' ``)
   or, for a container such as CONFIG, unknown subcommand;
2. arity (``ERR wrong number of arguments for 'get' command``);
3. authentication (``NOAUTH Authentication required.``) unless the command
   is flagged ``noauth``; then, after a failed background save, writes and
   PING get ``MISCONF`` (see ``ServerState.writes_refused``);
4. inside MULTI, every command but EXEC/DISCARD/MULTI/WATCH/QUIT/RESET is
   queued (``+QUEUED``); a request refused by 1-3 makes EXEC fail with
   EXECABORT;
5. the handler runs; a write command counts toward ``save`` rules and fails
   the transactions that WATCH its keys.

The fast path (a known command, right arity, an authenticated client
outside MULTI) is two dict lookups, one comparison of the argument count
and the handler call: the table holds each name in lower and upper case so
that the usual spellings need no ``str.lower()``.
"""

from __future__ import annotations

from snapkv.errors import SnapkvError
from snapkv.server.cmd_connection import COMMANDS as CONNECTION_COMMANDS
from snapkv.server.cmd_keys import COMMANDS as KEYS_COMMANDS
from snapkv.server.cmd_server import COMMANDS as SERVER_COMMANDS
from snapkv.server.cmd_strings import COMMANDS as STRINGS_COMMANDS
from snapkv.server.context import (
    OK,
    QUEUED,
    Client,
    Command,
    CommandError,
    Config,
    ServerState,
    command,
    log,
)
from snapkv.server.resp import error
from snapkv.store import Store

__all__ = ["Dispatcher", "build_table", "unknown_command"]

_COMMANDS: list[Command] = []

#: Commands that run at once even inside MULTI (Redis's list in processCommand).
_NOT_QUEUED = frozenset({"exec", "discard", "multi", "watch", "quit", "reset"})
_NOAUTH_REPLY = error("NOAUTH Authentication required.")
_EXECABORT = error("EXECABORT Transaction discarded because of previous errors.")
#: Redis's ``shared.bgsaveerr``, naming this server.
_MISCONF = error(
    "MISCONF snapkv is configured to save snapshots, but it's currently unable to persist "
    "to disk. Commands that may modify the data set are disabled, because this instance is "
    "configured to report errors during writes if snapshotting fails "
    "(stop-writes-on-bgsave-error option). Please check the server log for details about "
    "the snapshot error."
)


def _quote_args(argv: list[str]) -> str:
    """Redis's ``'a' 'b' `` list of the first arguments: at most ~128 bytes, each quoted."""
    out = b""
    for arg in argv:
        if len(out) >= 128:
            break
        out += b"'" + arg.encode("utf-8", "surrogateescape")[: 128 - len(out)] + b"' "
    return out.decode("utf-8", "surrogateescape")


def _head(text: str) -> str:
    """First 128 bytes of ``text``, as Redis's ``%.128s``."""
    return text.encode("utf-8", "surrogateescape")[:128].decode("utf-8", "surrogateescape")


def unknown_command(argv: list[str]) -> str:
    """The error text for an unknown command."""
    return (
        f"ERR unknown command '{_head(argv[0])}', with args beginning with: {_quote_args(argv[1:])}"
    )


def _queued_write(cmd: Command, client: Client) -> bool:
    """Whether ``cmd`` is an EXEC that would run a write (Redis counts it as a write)."""
    return cmd.name == "exec" and any(queued.write for queued, _ in client.multi or ())


def _arity_error(cmd: Command) -> bytes:
    return error(f"ERR wrong number of arguments for '{cmd.full_name}' command")


def build_table(commands: list[Command]) -> dict[str, Command]:
    """Name -> Command, with subcommands attached to their containers.

    Each name is entered lower-case (what lookups fall back to) and
    upper-case (what clients usually send), so most lookups hit at once.
    """
    table: dict[str, Command] = {}
    subs: dict[str, dict[str, Command]] = {}
    for cmd in commands:
        if cmd.parent is None:
            table[cmd.name] = cmd
        else:
            subs.setdefault(cmd.parent, {})[cmd.name] = cmd
    for parent, children in subs.items():
        container = table[parent]
        container.subcommands = {}
        for name, child in children.items():
            container.subcommands[name] = child
            container.subcommands[name.upper()] = child
    for name in list(table):
        table[name.upper()] = table[name]
    return table


class Dispatcher(ServerState):
    """The server's state plus the command table and :meth:`execute`.

    :param store: the Store to serve (its keyspaces are Redis's databases).
    :param config: the settings (a default :class:`Config` if omitted).
    """

    def __init__(self, store: Store, config: Config | None = None) -> None:
        super().__init__(store, config)
        self.table = build_table(
            [
                *CONNECTION_COMMANDS,
                *SERVER_COMMANDS,
                *STRINGS_COMMANDS,
                *KEYS_COMMANDS,
                *_COMMANDS,
            ]
        )

    def commands(self) -> list[Command]:
        """Every top-level command, once each."""
        return [cmd for name, cmd in self.table.items() if name == cmd.name]

    def execute(self, client: Client, argv: list[str]) -> bytes:
        """Run one request for ``client`` and return its encoded reply."""
        self.commands_processed += 1
        cmd = self.table.get(argv[0])
        if (
            cmd is None
            or not cmd.min_args <= len(argv) <= cmd.max_args
            or cmd.subcommands is not None
            or not client.plain
            or not self.last_bgsave_ok
        ):
            return self._checked(client, argv)
        # The fast path: call() inlined (a Python call costs as much as the dict lookups).
        client.last_command = cmd.full_name
        try:
            reply = cmd.handler(client, argv)
        except Exception as exc:
            return self._failed(cmd, exc)
        if cmd.write:
            self.dirty += 1
            if self.watched:
                self.touch(client.db_index, cmd.keys(argv))
        return reply

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
                        f"ERR unknown subcommand '{_head(argv[1])}'. Try {cmd.name.upper()} HELP."
                    ),
                )
            cmd = sub
            if not cmd.min_args <= len(argv) <= cmd.max_args:
                return self._reject(client, _arity_error(cmd))
        if not client.authenticated and not cmd.noauth:
            return self._reject(client, _NOAUTH_REPLY)
        if self.writes_refused() and (
            cmd.write or cmd.name == "ping" or _queued_write(cmd, client)
        ):
            return self._reject(client, _MISCONF, cmd)
        if client.multi is not None and cmd.name not in _NOT_QUEUED:
            client.multi.append((cmd, argv))
            return QUEUED
        return self.call(client, cmd, argv)

    def _reject(self, client: Client, reply: bytes, cmd: Command | None = None) -> bytes:
        """A request refused before running: inside MULTI this dooms the transaction.

        A refused EXEC ends the transaction at once, as Redis's
        ``execCommandAbort``: ``EXECABORT ... because of: <the refusal>``.
        """
        if client.multi is not None:
            if cmd is not None and cmd.name == "exec":
                client.multi = None
                client.multi_failed = False
                client.update_plain()
                client.unwatch()
                reason = reply[1:-2].decode("utf-8", "surrogateescape")
                return error(f"EXECABORT Transaction discarded because of: {reason}")
            client.multi_failed = True
        return reply

    def call(self, client: Client, cmd: Command, argv: list[str]) -> bytes:
        """Run ``cmd``'s handler (no checks) and account for it."""
        client.last_command = cmd.full_name
        try:
            reply = cmd.handler(client, argv)
        except Exception as exc:
            return self._failed(cmd, exc)
        if cmd.write:
            self.dirty += 1
            if self.watched:
                self.touch(client.db_index, cmd.keys(argv))
        return reply

    def _failed(self, cmd: Command, exc: Exception) -> bytes:
        """The reply for a handler that raised."""
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


# ------------------------------------------------------------- transactions


@command(_COMMANDS, "multi", 1, "noscript loading stale fast allow_busy", group="transactions")
def multi(client: Client, argv: list[str]) -> bytes:
    """Start queueing commands."""
    if client.multi is not None:
        raise CommandError("ERR MULTI calls can not be nested")
    client.multi = []
    client.multi_failed = False
    client.update_plain()
    return OK


@command(_COMMANDS, "discard", 1, "noscript loading stale fast allow_busy", group="transactions")
def discard(client: Client, argv: list[str]) -> bytes:
    """Drop the queued commands and every WATCH."""
    if client.multi is None:
        raise CommandError("ERR DISCARD without MULTI")
    client.multi = None
    client.multi_failed = False
    client.update_plain()
    client.unwatch()
    return OK


@command(_COMMANDS, "exec", 1, "noscript loading stale skip_slowlog", group="transactions")
def exec_(client: Client, argv: list[str]) -> bytes:
    """Run the queued commands as one atomic step, unless a WATCHed key changed."""
    queued = client.multi
    if queued is None:
        raise CommandError("ERR EXEC without MULTI")
    client.multi = None
    client.update_plain()
    server: Dispatcher = client.server  # type: ignore[assignment]
    if client.multi_failed:
        client.multi_failed = False
        client.unwatch()
        return _EXECABORT
    aborted = client.dirty_cas or (client.watched and server.watch_expired(client))
    client.unwatch()
    if aborted:
        return client.null_array
    replies = [server.call(client, cmd, args) for cmd, args in queued]
    return b"*%d\r\n%s" % (len(replies), b"".join(replies))


@command(
    _COMMANDS,
    "watch",
    -2,
    "noscript loading stale fast allow_busy",
    (1, -1, 1),
    group="transactions",
)
def watch(client: Client, argv: list[str]) -> bytes:
    """Make the next EXEC fail if any of these keys is written before it."""
    if client.multi is not None:
        raise CommandError("ERR WATCH inside MULTI is not allowed")
    for key in argv[1:]:
        client.server.watch(client, key)
    return OK


@command(_COMMANDS, "unwatch", 1, "noscript loading stale fast allow_busy", group="transactions")
def unwatch(client: Client, argv: list[str]) -> bytes:
    """Forget every WATCHed key."""
    client.unwatch()
    return OK
