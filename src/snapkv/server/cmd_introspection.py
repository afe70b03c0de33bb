"""Introspection: COMMAND (COUNT INFO DOCS LIST GETKEYS GETKEYSANDFLAGS), TIME, DEBUG.

COMMAND answers from the table the dispatcher built (``ServerState.table``),
so the arity, flags and subcommands it reports are what the dispatcher
checks, beside Redis 7.0's own metadata (categories, tips, key
specifications, docs: :mod:`snapkv.server.commandmeta`). SLOWLOG and LATENCY are
:mod:`snapkv.server.cmd_latency`'s. DEBUG has SLEEP (blocks the
whole server, as in Redis), RELOAD (save, drop memory, restore) and LOG.
INFO is its own family (:mod:`snapkv.server.cmd_info`).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from snapkv.server.commandmeta import (
    categories,
    command_keys,
    docs_reply,
    has_key_arguments,
    info_reply,
    keys_reply,
)
from snapkv.server.glob import Glob
from snapkv.server.resp.text import to_bytes
from snapkv.server.resp.writer import OK, SimpleString, integer
from snapkv.server.table import ERR_SYNTAX, Command, CommandError, command

if TYPE_CHECKING:
    from snapkv.server.client import Client

__all__: list[str] = []

log = logging.getLogger("snapkv.server")

_SRV = "server"
_ADMIN = "admin noscript loading stale"


# ------------------------------------------------------------------ COMMAND


def _name(cmd: Command) -> str:
    return cmd.name


def _top(client: Client) -> list[Command]:
    """Each command once, under its own name even when rename-command moved it (as Redis)."""
    table = client.server.table
    unique = {id(c): c for n, c in table.items() if n == n.lower()}
    return sorted(unique.values(), key=_name)


def _lookup(client: Client, name: str) -> Command | None:
    """A command by name, ``container|sub`` for a subcommand (Redis's ``lookupCommandBySds``)."""
    parent, _, sub = name.lower().partition("|")
    cmd = client.server.table.get(parent)
    if sub and cmd is not None:
        return (cmd.subcommands or {}).get(sub)
    return cmd


def _with_subcommands(client: Client) -> list[Command]:
    found = []
    for cmd in _top(client):
        found.append(cmd)
        subs = {s.full_name: s for s in (cmd.subcommands or {}).values()}
        found.extend(subs[name] for name in sorted(subs))
    return found


@command("command", -1, "loading stale", group=_SRV, summary="Command details")
def command_(client: Client, argv: list[str]) -> bytes:
    """COMMAND with no subcommand: every command's info."""
    return info_reply(_top(client), client.resp)


@command("command|count", 2, "loading stale", group=_SRV)
def command_count(client: Client, argv: list[str]) -> bytes:
    return integer(len(_top(client)))


@command("command|list", -2, "loading stale", group=_SRV)
def command_list(client: Client, argv: list[str]) -> bytes:
    """Every command and subcommand name, or those FILTERBY MODULE, ACLCAT or PATTERN keeps.

    As Redis's ``commandListCommand``: one FILTERBY at most counts (the last),
    anything else is a syntax error; no module is loaded, so MODULE keeps
    none, and an unknown category keeps none.
    """
    kind = pattern = ""
    i = 2
    while i < len(argv):
        if argv[i].lower() != "filterby" or len(argv) - 1 - i != 2:
            raise CommandError(ERR_SYNTAX)
        kind, pattern = argv[i + 1].lower(), argv[i + 2]
        if kind not in ("module", "aclcat", "pattern"):
            raise CommandError(ERR_SYNTAX)
        i += 3
    found = _with_subcommands(client)
    if kind == "module":
        found = []
    elif kind == "aclcat":
        category = pattern.lower()
        found = [cmd for cmd in found if category in categories(cmd)]
    elif kind == "pattern":
        glob = Glob(to_bytes(pattern), nocase=True)
        found = [cmd for cmd in found if glob.match_bytes(to_bytes(cmd.full_name))]
    return client.encode([cmd.full_name for cmd in found])


@command("command|info", -2, "loading stale", group=_SRV)
def command_info(client: Client, argv: list[str]) -> bytes:
    if len(argv) == 2:
        return info_reply(_top(client), client.resp)
    return info_reply((_lookup(client, name) for name in argv[2:]), client.resp)


@command("command|docs", -2, "loading stale", group=_SRV)
def command_docs(client: Client, argv: list[str]) -> bytes:
    if len(argv) == 2:
        return docs_reply(_top(client), client.resp)
    found = (_lookup(client, name) for name in argv[2:])
    return docs_reply((cmd for cmd in found if cmd is not None), client.resp)


def _getkeys(client: Client, argv: list[str], with_flags: bool) -> bytes:
    """COMMAND GETKEYS and GETKEYSANDFLAGS, as Redis 7.0's ``getKeysSubcommandImpl``."""
    args = argv[2:]
    cmd = client.server.table.get(args[0]) or client.server.table.get(args[0].lower())
    if cmd is not None and cmd.subcommands and len(args) > 1:
        cmd = cmd.subcommands.get(args[1]) or cmd.subcommands.get(args[1].lower())
    if cmd is None:
        raise CommandError("ERR Invalid command specified")
    if not has_key_arguments(cmd):
        raise CommandError("ERR The command has no key arguments")
    if not cmd.min_args <= len(args) <= cmd.max_args:
        raise CommandError("ERR Invalid number of arguments specified for command")
    keys = command_keys(cmd, args)
    if not keys and "no_mandatory_keys" not in cmd.flags:
        raise CommandError("ERR Invalid arguments specified for command")
    return keys_reply(args, keys, with_flags, client.resp)


@command("command|getkeys", -4, "loading stale", group=_SRV)
def command_getkeys(client: Client, argv: list[str]) -> bytes:
    return _getkeys(client, argv, with_flags=False)


@command("command|getkeysandflags", -4, "loading stale", group=_SRV)
def command_getkeysandflags(client: Client, argv: list[str]) -> bytes:
    return _getkeys(client, argv, with_flags=True)


_COMMAND_HELP = (
    "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
    "GETKEYSANDFLAGS <full-command>",
    "    Return the keys and the access flags from a full Redis command.",
    "HELP",
    "    Prints this help.",
)


@command("command|help", 2, "loading stale", group=_SRV)
def command_help(client: Client, argv: list[str]) -> bytes:
    return client.encode([SimpleString(line) for line in _COMMAND_HELP])


@command("time", 1, "loading stale fast", group=_SRV)
def time_(client: Client, argv: list[str]) -> bytes:
    now = time.time_ns() // 1000
    return client.encode([str(now // 1_000_000), str(now % 1_000_000)])


# -------------------------------------------------------------------- DEBUG


@command("debug|sleep", 3, _ADMIN, group=_SRV)
def debug_sleep(client: Client, argv: list[str]) -> bytes:
    """Block the whole server for the given seconds, as Redis's DEBUG SLEEP does."""
    try:
        seconds = float(argv[2])
    except ValueError:
        raise CommandError("ERR value is not a valid float") from None
    time.sleep(max(seconds, 0.0))
    return OK


@command("debug|reload", -2, _ADMIN, group=_SRV)
def debug_reload(client: Client, argv: list[str]) -> bytes:
    """Snapshot, drop memory, and load the snapshot back."""
    server = client.server
    try:
        server.save()
        server.store.restore()
    except Exception as exc:
        log.error("DEBUG RELOAD failed: %s", exc)
        raise CommandError(f"ERR Error trying to load the snapshot: {exc}") from None
    server.touch_db(None)
    return OK


@command("debug|log", 3, _ADMIN, group=_SRV)
def debug_log(client: Client, argv: list[str]) -> bytes:
    log.warning("DEBUG LOG: %s", argv[2])
    return OK


@command("debug|help", 2, "loading stale", group=_SRV)
def debug_help(client: Client, argv: list[str]) -> bytes:
    lines = ("DEBUG <subcommand>", "SLEEP <seconds>", "RELOAD", "LOG <message>")
    return client.encode([SimpleString(line) for line in lines])
