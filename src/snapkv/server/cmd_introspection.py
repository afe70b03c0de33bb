"""Introspection: COMMAND (COUNT INFO DOCS LIST GETKEYS), TIME, SLOWLOG, LATENCY, DEBUG.

COMMAND answers from the table the dispatcher built (``ServerState.table``),
so what it reports is what the dispatcher checks. SLOWLOG lists the
commands that took 10 ms or more (the dispatcher logs them); LATENCY
answers as Redis with its latency monitor off. DEBUG has SLEEP (blocks the
whole server, as in Redis), RELOAD (save, drop memory, restore) and LOG.
INFO is its own family (:mod:`snapkv.server.cmd_info`).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from snapkv.server.commandmeta import categories
from snapkv.server.resp.writer import OK, SimpleString, integer
from snapkv.server.table import Command, CommandError, SlowLog, command, parse_int

if TYPE_CHECKING:
    from snapkv.server.client import Client

__all__: list[str] = []

log = logging.getLogger("snapkv.server")

_SRV = "server"
_ADMIN = "admin noscript loading stale"


# ------------------------------------------------------------------ COMMAND


def _flag_names(cmd: Command) -> list[str]:
    names = sorted("no_auth" if flag == "noauth" else flag for flag in cmd.flags)
    if cmd.find_keys is not None:
        names.append("movablekeys")  # keys found at run time (Redis's getkeys_proc)
    return names


def _info(cmd: Command, resp_version: int) -> list[Any]:
    """One command's COMMAND INFO entry (Redis 7's ten fields)."""
    flags = [SimpleString(f) for f in _flag_names(cmd)]
    cats = [SimpleString("@" + c) for c in categories(cmd)]
    subs = sorted({id(s): s for s in (cmd.subcommands or {}).values()}.values(), key=_name)
    return [
        cmd.full_name,
        cmd.arity,
        set(flags) if resp_version == 3 else flags,
        cmd.first_key,
        cmd.last_key,
        cmd.step,
        set(cats) if resp_version == 3 else cats,
        [],
        [],
        [_info(sub, resp_version) for sub in subs],
    ]


def _name(cmd: Command) -> str:
    return cmd.name


def _docs(cmd: Command) -> dict[str, Any]:
    doc: dict[str, Any] = {"summary": cmd.summary or cmd.name, "since": cmd.since}
    doc["group"] = cmd.group
    if cmd.subcommands:
        subs = {id(s): s for s in cmd.subcommands.values()}.values()
        doc["subcommands"] = {s.full_name: _docs(s) for s in sorted(subs, key=_name)}
    return doc


def _top(client: Client) -> list[Command]:
    table = client.server.table
    return sorted((c for n, c in table.items() if n == c.name), key=_name)


def _lookup(client: Client, name: str) -> Command | None:
    parent, _, sub = name.lower().partition("|")
    cmd = client.server.table.get(parent)
    if sub and cmd is not None:
        return (cmd.subcommands or {}).get(sub)
    return cmd


@command("command", -1, "loading stale", group=_SRV, summary="Command details")
def command_(client: Client, argv: list[str]) -> bytes:
    """COMMAND with no subcommand: every command's info."""
    return client.encode([_info(cmd, client.resp) for cmd in _top(client)])


@command("command|count", 2, "loading stale", group=_SRV)
def command_count(client: Client, argv: list[str]) -> bytes:
    return integer(len(_top(client)))


@command("command|list", -2, "loading stale", group=_SRV)
def command_list(client: Client, argv: list[str]) -> bytes:
    names = []
    for cmd in _top(client):
        names.append(cmd.name)
        subs = {id(s): s for s in (cmd.subcommands or {}).values()}.values()
        names.extend(s.full_name for s in sorted(subs, key=_name))
    return client.encode(names)


@command("command|info", -2, "loading stale", group=_SRV)
def command_info(client: Client, argv: list[str]) -> bytes:
    if len(argv) == 2:
        return client.encode([_info(cmd, client.resp) for cmd in _top(client)])
    found = [_lookup(client, name) for name in argv[2:]]
    # Each distinct command is encoded once: a request may name one a million times.
    entries: dict[str, bytes] = {}
    for cmd in found:
        name = "" if cmd is None else cmd.full_name
        if name not in entries:
            entries[name] = client.encode(None if cmd is None else _info(cmd, client.resp))
    return b"*%d\r\n%s" % (
        len(found),
        b"".join(entries["" if c is None else c.full_name] for c in found),
    )


@command("command|docs", -2, "loading stale", group=_SRV)
def command_docs(client: Client, argv: list[str]) -> bytes:
    wanted = _top(client) if len(argv) == 2 else [_lookup(client, n) for n in argv[2:]]
    return client.encode({c.full_name: _docs(c) for c in wanted if c is not None})


@command("command|getkeys", -3, "loading stale", group=_SRV)
def command_getkeys(client: Client, argv: list[str]) -> bytes:
    cmd = _lookup(client, argv[2])
    args = argv[2:]
    if cmd is not None and cmd.subcommands and len(args) > 1:
        cmd = cmd.subcommands.get(args[1].lower())
    if cmd is None:
        raise CommandError("ERR Invalid command specified")
    if not cmd.min_args <= len(args) <= cmd.max_args:
        raise CommandError("ERR Invalid number of arguments specified for command")
    keys = cmd.keys(args)
    if not keys:
        raise CommandError("ERR The command has no key arguments")
    return client.encode(keys)


@command("command|help", 2, "loading stale", group=_SRV)
def command_help(client: Client, argv: list[str]) -> bytes:
    lines = ("COMMAND <subcommand>", "COUNT", "DOCS", "GETKEYS", "INFO", "LIST", "HELP")
    return client.encode([SimpleString(line) for line in lines])


@command("time", 1, "loading stale fast", group=_SRV)
def time_(client: Client, argv: list[str]) -> bytes:
    now = time.time_ns() // 1000
    return client.encode([str(now // 1_000_000), str(now % 1_000_000)])


# --------------------------------------------------------- SLOWLOG, LATENCY


def _slowlog(client: Client) -> SlowLog:
    found = client.server.info.get("slowlog")
    if not isinstance(found, SlowLog):  # a bare ServerState, without a dispatcher
        found = client.server.info["slowlog"] = SlowLog()
    return found


@command("slowlog|get", -2, _ADMIN, group=_SRV, summary="Get the slow log's entries")
def slowlog_get(client: Client, argv: list[str]) -> bytes:
    """The newest entries (10, or COUNT; -1: all), as Redis 7.0's ``slowlogCommand``."""
    if len(argv) > 3:
        raise CommandError(
            f"ERR unknown subcommand or wrong number of arguments for '{argv[1]}'. "
            "Try SLOWLOG HELP."
        )
    count = 10
    if len(argv) == 3:
        count = parse_int(argv[2], "ERR count should be greater than or equal to -1")
        if count < -1:
            raise CommandError("ERR count should be greater than or equal to -1")
    entries = _slowlog(client).entries
    return client.encode(entries if count == -1 else entries[:count])


@command("slowlog|len", 2, _ADMIN, group=_SRV, summary="Get the slow log's length")
def slowlog_len(client: Client, argv: list[str]) -> bytes:
    return integer(len(_slowlog(client).entries))


@command("slowlog|reset", 2, _ADMIN, group=_SRV, summary="Clear the slow log")
def slowlog_reset(client: Client, argv: list[str]) -> bytes:
    _slowlog(client).reset()
    return OK


@command("slowlog|help", 2, "loading stale", group=_SRV)
def slowlog_help(client: Client, argv: list[str]) -> bytes:
    lines = ("SLOWLOG <subcommand>", "GET [<count>]", "LEN", "RESET", "HELP")
    return client.encode([SimpleString(line) for line in lines])


# The latency monitor is off, as by Redis's default (latency-monitor-threshold
# 0), and so is per-command latency tracking (a histogram per command would
# cost every request): the answers are Redis's when it has recorded nothing.


@command("latency|latest", 2, _ADMIN, group=_SRV, summary="Latest latency spikes (none)")
def latency_latest(client: Client, argv: list[str]) -> bytes:
    return client.encode([])


@command("latency|history", 3, _ADMIN, group=_SRV, summary="An event's latency spikes (none)")
def latency_history(client: Client, argv: list[str]) -> bytes:
    return client.encode([])


@command("latency|reset", -2, _ADMIN, group=_SRV, summary="Reset latency data (none)")
def latency_reset(client: Client, argv: list[str]) -> bytes:
    return integer(0)


@command("latency|histogram", -2, _ADMIN, group=_SRV, summary="Latency histograms (none)")
def latency_histogram(client: Client, argv: list[str]) -> bytes:
    return client.encode({})


@command("latency|help", 2, "loading stale", group=_SRV)
def latency_help(client: Client, argv: list[str]) -> bytes:
    lines = (
        "LATENCY <subcommand>",
        "LATEST",
        "HISTORY <event>",
        "RESET [<event> ...]",
        "HISTOGRAM [<command> ...]",
        "HELP",
    )
    return client.encode([SimpleString(line) for line in lines])


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
