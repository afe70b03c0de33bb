"""Introspection: COMMAND (COUNT INFO DOCS LIST GETKEYS), INFO, TIME, DEBUG.

COMMAND answers from the table the dispatcher built (``ServerState.table``),
so what it reports is what the dispatcher checks. INFO reports Redis's
sections and fields where this server has an equivalent (see
:func:`info_text`). DEBUG has SLEEP (blocks the whole server, as in Redis),
RELOAD (save, drop memory, restore) and LOG.
"""

from __future__ import annotations

import logging
import os
import platform
import resource
import secrets
import sys
import time
from importlib import metadata
from typing import TYPE_CHECKING, Any

from snapkv.server.resp.writer import OK, SimpleString, bulk, integer
from snapkv.server.state import REDIS_VERSION
from snapkv.server.table import Command, CommandError, command

if TYPE_CHECKING:
    from snapkv.server.client import Client

__all__ = ["info_text"]

log = logging.getLogger("snapkv.server")

_SRV = "server"
_ADMIN = "admin noscript loading stale"
_RUN_ID = secrets.token_hex(20)


def _version() -> str:
    try:
        return metadata.version("snapkv")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


_VERSION = _version()


# ------------------------------------------------------------------ COMMAND


def _flag_names(cmd: Command) -> list[str]:
    return sorted("no_auth" if flag == "noauth" else flag for flag in cmd.flags)


def _categories(cmd: Command) -> list[str]:
    found = []
    if cmd.write:
        found.append("@write")
    if "readonly" in cmd.flags:
        found.append("@read")
    found.append("@fast" if "fast" in cmd.flags else "@slow")
    group = {"generic": "@keyspace", "transactions": "@transaction"}.get(cmd.group)
    found.append(group or f"@{cmd.group}")
    return found


def _info(cmd: Command, resp_version: int) -> list[Any]:
    """One command's COMMAND INFO entry (Redis 7's ten fields)."""
    flags = [SimpleString(f) for f in _flag_names(cmd)]
    categories = [SimpleString(c) for c in _categories(cmd)]
    subs = sorted({id(s): s for s in (cmd.subcommands or {}).values()}.values(), key=_name)
    return [
        cmd.full_name,
        cmd.arity,
        set(flags) if resp_version == 3 else flags,
        cmd.first_key,
        cmd.last_key,
        cmd.step,
        set(categories) if resp_version == 3 else categories,
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


# --------------------------------------------------------------------- INFO

_DEFAULT_SECTIONS = (
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "cluster",
    "keyspace",
)


def _rss() -> int:
    """Resident memory of this process in bytes (what INFO reports as used_memory).

    Python has no cheap total of its allocations, so the resident set size
    stands in for Redis's allocator count (it includes the interpreter).
    """
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _human(size: int) -> str:
    for unit in ("B", "K", "M", "G"):
        if size < 1024 or unit == "G":
            return f"{size}{unit}" if unit == "B" else f"{size:.2f}{unit}"
        size /= 1024  # type: ignore[assignment]
    return str(size)  # pragma: no cover


def info_text(client: Client, sections: list[str]) -> str:
    """The INFO report for ``sections`` (empty: the default ones).

    Keyspace lines are Redis's ``db<n>:keys=K,expires=E,avg_ttl=0``: ``keys``
    counts live keys (due keys are reclaimed first), ``expires`` the keys
    with an expiry time (as in Redis, one that fell due a moment ago may
    still be counted until it is swept). ``avg_ttl`` is always 0: Redis
    derives it from the keys its expiry sweep happens to sample, a moving
    estimate no client can rely on, and 0 is what Redis itself reports
    before it has one.
    """
    server = client.server
    wanted = {s.lower() for s in sections} or {"default"}
    if wanted & {"all", "everything", "default"}:
        wanted |= set(_DEFAULT_SECTIONS)
    now = time.time()
    uptime = int(time.monotonic() - server.started_monotonic)
    rss = _rss()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    bgsave = server.bgsave_thread is not None and server.bgsave_thread.is_alive()
    extra = server.info
    parts: dict[str, dict[str, object]] = {
        "server": {
            "redis_version": REDIS_VERSION,
            "snapkv_version": _VERSION,
            "redis_git_sha1": "00000000",
            "redis_git_dirty": 0,
            "redis_build_id": "0",
            "redis_mode": "standalone",
            "os": f"{platform.system()} {platform.release()} {platform.machine()}",
            "arch_bits": 64 if sys.maxsize > 2**32 else 32,
            "multiplexing_api": extra.get("event_loop", "asyncio"),
            "python_version": platform.python_version(),
            "parser": extra.get("parser", "python"),
            "process_id": os.getpid(),
            "run_id": _RUN_ID,
            "tcp_port": extra.get("port", server.config.port),
            "server_time_usec": int(now * 1_000_000),
            "uptime_in_seconds": uptime,
            "uptime_in_days": uptime // 86400,
            "hz": 10,
            "executable": sys.executable,
            "config_file": "",
        },
        "clients": {
            "connected_clients": len(server.clients),
            "maxclients": server.config.maxclients,
            "blocked_clients": 0,
            "watching_clients": sum(1 for c in server.clients.values() if c.watched),
            "total_watched_keys": len(server.watched),
        },
        "memory": {
            "used_memory": rss,
            "used_memory_human": _human(rss),
            "used_memory_rss": rss,
            "used_memory_rss_human": _human(rss),
            "used_memory_peak": usage.ru_maxrss * 1024,
            "maxmemory": 0,
            "maxmemory_policy": "noeviction",
            "mem_allocator": "pymalloc",
        },
        "persistence": {
            "loading": 0,
            "async_loading": 0,
            "rdb_changes_since_last_save": server.dirty,
            "rdb_bgsave_in_progress": int(bgsave),
            "rdb_last_save_time": server.last_save,
            "rdb_last_bgsave_status": "ok" if server.last_bgsave_ok else "err",
            "rdb_saves": server.saves,
            "aof_enabled": int(server.config.appendonly),
            "aof_rewrite_in_progress": 0,
            "aof_last_write_status": "ok" if server.last_save_ok else "err",
            "aof_fsync": server.config.appendfsync,
        },
        "stats": {
            "total_connections_received": server.connections_received,
            "total_commands_processed": server.commands_processed,
            "rejected_connections": server.rejected_connections,
            "total_protocol_errors": server.protocol_errors,
            "expired_keys": 0,
            "evicted_keys": 0,
        },
        "replication": {"role": "master", "connected_slaves": 0},
        "cpu": {
            "used_cpu_sys": f"{usage.ru_stime:.6f}",
            "used_cpu_user": f"{usage.ru_utime:.6f}",
        },
        "cluster": {"cluster_enabled": 0},
        "keyspace": {
            f"db{i}": f"keys={size},expires={db.expiring_count()},avg_ttl=0"
            for i, db in enumerate(server.keyspaces)
            if (size := len(db))
        },
    }
    blocks = []
    for name, fields in parts.items():
        if name in wanted:
            lines = [f"# {name.capitalize()}"]
            lines.extend(f"{key}:{value}" for key, value in fields.items())
            blocks.append("\r\n".join(lines) + "\r\n")
    return "\r\n".join(blocks)


@command("info", -1, "loading stale", group=_SRV, summary="Server information")
def info(client: Client, argv: list[str]) -> bytes:
    text = info_text(client, argv[1:])
    if client.resp == 3:
        data = text.encode()
        return b"=%d\r\ntxt:%s\r\n" % (len(data) + 4, data)
    return bulk(text)


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
