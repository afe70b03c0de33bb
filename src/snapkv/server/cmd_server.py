"""Server commands: COMMAND CONFIG INFO TIME SAVE BGSAVE LASTSAVE SHUTDOWN DEBUG, and scripting.

There is no scripting: EVAL, SCRIPT LOAD and FUNCTION LOAD say so, and the
rest answers as a Redis whose script cache and function libraries are
empty (EVALSHA ``NOSCRIPT``, SCRIPT EXISTS all 0, FUNCTION LIST empty,
SCRIPT/FUNCTION FLUSH ``OK``, FCALL ``Function not found``).
"""

from __future__ import annotations

import os
import platform
import resource
import secrets
import sys
import time
from collections.abc import Callable
from importlib import metadata
from typing import Any

from snapkv.server.context import (
    ERR_SYNTAX,
    OK,
    REDIS_VERSION,
    Client,
    Command,
    CommandError,
    Config,
    Handler,
    command,
    log,
    parse_save,
)
from snapkv.server.resp import SimpleString, bulk, integer

__all__ = ["COMMANDS", "info_text"]

COMMANDS: list[Command] = []

_SRV = "server"
_ERR_NO_SCRIPTS = "ERR this server does not run scripts"
_NOTBUSY = "NOTBUSY No scripts in execution right now."
_RUN_ID = secrets.token_hex(20)


def _version() -> str:
    try:
        return metadata.version("snapkv")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


_VERSION = _version()


def _container(name: str, arity: int, group: str = _SRV) -> None:
    def container(client: Client, argv: list[str]) -> bytes:  # pragma: no cover
        raise CommandError(ERR_SYNTAX)  # the dispatcher always resolves a subcommand

    command(COMMANDS, name, arity, "", group=group, summary=f"A container for {name} commands")(
        container
    )


def _help(parent: str, lines: tuple[str, ...]) -> None:
    def help_(client: Client, argv: list[str]) -> bytes:
        return client.encode([SimpleString(line) for line in lines])

    command(COMMANDS, "help", 2, "loading stale", group=_SRV, parent=parent)(help_)


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


@command(COMMANDS, "command", -1, "loading stale", group=_SRV, summary="Command details")
def command_(client: Client, argv: list[str]) -> bytes:
    """COMMAND with no subcommand: every command's info."""
    return client.encode([_info(cmd, client.resp) for cmd in _top(client)])


def _command_sub(name: str, arity: int) -> Callable[[Handler], Handler]:
    return command(COMMANDS, name, arity, "loading stale", group=_SRV, parent="command")


@_command_sub("count", 2)
def command_count(client: Client, argv: list[str]) -> bytes:
    return integer(len(_top(client)))


@_command_sub("list", -2)
def command_list(client: Client, argv: list[str]) -> bytes:
    names = []
    for cmd in _top(client):
        names.append(cmd.name)
        subs = {id(s): s for s in (cmd.subcommands or {}).values()}.values()
        names.extend(s.full_name for s in sorted(subs, key=_name))
    return client.encode(names)


@_command_sub("info", -2)
def command_info(client: Client, argv: list[str]) -> bytes:
    if len(argv) == 2:
        return client.encode([_info(cmd, client.resp) for cmd in _top(client)])
    found = [_lookup(client, name) for name in argv[2:]]
    return client.encode([None if c is None else _info(c, client.resp) for c in found])


@_command_sub("docs", -2)
def command_docs(client: Client, argv: list[str]) -> bytes:
    wanted = _top(client) if len(argv) == 2 else [_lookup(client, n) for n in argv[2:]]
    return client.encode({c.full_name: _docs(c) for c in wanted if c is not None})


@_command_sub("getkeys", -3)
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


_help("command", ("COMMAND <subcommand>", "COUNT", "DOCS", "GETKEYS", "INFO", "LIST", "HELP"))


# ------------------------------------------------------------------- CONFIG

_IMMUTABLE = ("bind", "port", "dir", "databases", "appendonly", "appendfsync")


def _config_values(config: Config) -> dict[str, str]:
    return {
        "bind": config.host,
        "port": str(config.port),
        "dir": config.dir or os.getcwd(),
        "requirepass": config.requirepass or "",
        "appendonly": "yes" if config.appendonly else "no",
        "appendfsync": "no" if config.appendfsync == "never" else config.appendfsync,
        "save": " ".join(f"{secs} {changes}" for secs, changes in config.save),
        "databases": str(config.databases),
        "maxclients": str(config.maxclients),
        "timeout": str(config.timeout),
        "proto-max-bulk-len": str(config.proto_max_bulk_len),
        "maxmemory": "0",
        "maxmemory-policy": "noeviction",
        "stop-writes-on-bgsave-error": "yes" if config.stop_writes_on_bgsave_error else "no",
    }


_container("config", -2)


@command(COMMANDS, "get", -3, "admin noscript loading stale", group=_SRV, parent="config")
def config_get(client: Client, argv: list[str]) -> bytes:
    from snapkv.server.cmd_keys import glob_to_regex  # noqa: PLC0415 - sibling family module

    values = _config_values(client.server.config)
    found: dict[str, str] = {}
    for pattern in argv[2:]:
        regex = glob_to_regex(pattern.lower().encode("utf-8", "surrogateescape"))
        for name, value in values.items():
            if regex.fullmatch(name.encode()):
                found[name] = value
    return client.encode(found)


def _set_one(config: Config, name: str, value: str) -> None:
    def number(low: int, high: int) -> int:
        try:
            parsed = int(value)
        except ValueError:
            raise ValueError("argument couldn't be parsed into an integer") from None
        if not low <= parsed <= high:
            raise ValueError(f"argument must be between {low} and {high} inclusive")
        return parsed

    if name == "maxclients":
        config.maxclients = number(1, 2**32 - 1)
    elif name == "timeout":
        config.timeout = number(0, 2**31 - 1)
    elif name == "proto-max-bulk-len":
        config.proto_max_bulk_len = number(1024 * 1024, 2**63 - 1)
    elif name == "requirepass":
        config.requirepass = value or None
    elif name == "save":
        config.save = parse_save(value)
    elif name == "stop-writes-on-bgsave-error":
        if value.lower() not in ("yes", "no"):
            raise ValueError("argument must be 'yes' or 'no'")
        config.stop_writes_on_bgsave_error = value.lower() == "yes"
    elif name in ("maxmemory", "maxmemory-policy"):
        pass  # accepted and ignored: nothing is ever evicted
    else:
        raise ValueError("can't set immutable config")


@command(COMMANDS, "set", -4, "admin noscript loading stale", group=_SRV, parent="config")
def config_set(client: Client, argv: list[str]) -> bytes:
    config = client.server.config
    settable = set(_config_values(config))
    pairs = list(zip(argv[2::2], argv[3::2], strict=False))
    if len(argv) % 2 or any(name.lower() not in settable for name, _ in pairs):
        bad = next((n for n, _ in pairs if n.lower() not in settable), argv[-1])
        raise CommandError(f"ERR Unknown option or number of arguments for CONFIG SET - '{bad}'")
    for name, value in pairs:
        try:
            _set_one(config, name.lower(), value)
        except ValueError as exc:
            raise CommandError(
                f"ERR CONFIG SET failed (possibly related to argument '{name}') - {exc}"
            ) from None
    return OK


@command(COMMANDS, "resetstat", 2, "admin noscript loading stale", group=_SRV, parent="config")
def config_resetstat(client: Client, argv: list[str]) -> bytes:
    client.server.reset_stats()
    return OK


@command(COMMANDS, "rewrite", 2, "admin noscript loading stale", group=_SRV, parent="config")
def config_rewrite(client: Client, argv: list[str]) -> bytes:
    raise CommandError("ERR The server is running without a config file")


_help("config", ("CONFIG <subcommand>", "GET <pattern>", "SET <name> <value>", "RESETSTAT"))


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
    store = server.store
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
    del store
    return "\r\n".join(blocks)


@command(COMMANDS, "info", -1, "loading stale", group=_SRV, summary="Server information")
def info(client: Client, argv: list[str]) -> bytes:
    text = info_text(client, argv[1:])
    if client.resp == 3:
        data = text.encode()
        return b"=%d\r\ntxt:%s\r\n" % (len(data) + 4, data)
    return bulk(text)


@command(COMMANDS, "time", 1, "loading stale fast", group=_SRV)
def time_(client: Client, argv: list[str]) -> bytes:
    now = time.time_ns() // 1000
    return client.encode([str(now // 1_000_000), str(now % 1_000_000)])


@command(COMMANDS, "lastsave", 1, "loading stale fast", group=_SRV)
def lastsave(client: Client, argv: list[str]) -> bytes:
    return integer(client.server.last_save)


@command(COMMANDS, "save", 1, "admin noscript", group=_SRV, summary="Snapshot synchronously")
def save(client: Client, argv: list[str]) -> bytes:
    server = client.server
    if server.bgsave_thread is not None and server.bgsave_thread.is_alive():
        raise CommandError("ERR Background save already in progress")
    try:
        server.save()
    except Exception as exc:
        log.error("SAVE failed: %s", exc)
        raise CommandError(f"ERR snapshot failed: {exc}") from None
    return OK


@command(COMMANDS, "bgsave", -1, "admin noscript", group=_SRV, since="1.0.0")
def bgsave(client: Client, argv: list[str]) -> bytes:
    if len(argv) > 2 or (len(argv) == 2 and argv[1].lower() != "schedule"):
        raise CommandError(ERR_SYNTAX)
    if not client.server.bgsave():
        raise CommandError("ERR Background save already in progress")
    return b"+Background saving started\r\n"


@command(COMMANDS, "shutdown", -1, "admin noscript loading stale", group=_SRV)
def shutdown(client: Client, argv: list[str]) -> bytes:
    """SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE]: snapshot (unless NOSAVE), then stop the server.

    On success the connection closes without a reply, as in Redis; if the
    snapshot fails the server keeps running and says so (FORCE stops anyway).
    """
    options = {a.lower() for a in argv[1:]}
    if not options <= {"nosave", "save", "now", "force", "abort"} or {"save", "nosave"} <= options:
        raise CommandError(ERR_SYNTAX)
    if "abort" in options:
        if len(options) > 1:
            raise CommandError(ERR_SYNTAX)
        raise CommandError("ERR No shutdown in progress.")
    server = client.server
    if "nosave" not in options:
        try:
            server.save()
        except Exception as exc:
            log.error("SHUTDOWN: snapshot failed: %s", exc)
            if "force" not in options:
                raise CommandError("ERR Errors trying to SHUTDOWN. Check logs.") from None
    server.shutdown_requested = True
    client.close_after_reply = True
    return b""


# -------------------------------------------------------------------- DEBUG

_container("debug", -2)


def _debug(name: str, arity: int) -> Callable[[Handler], Handler]:
    return command(COMMANDS, name, arity, "admin noscript loading stale", parent="debug")


@_debug("sleep", 3)
def debug_sleep(client: Client, argv: list[str]) -> bytes:
    """Block the whole server for the given seconds, as Redis's DEBUG SLEEP does."""
    try:
        seconds = float(argv[2])
    except ValueError:
        raise CommandError("ERR value is not a valid float") from None
    time.sleep(max(seconds, 0.0))
    return OK


@_debug("reload", -2)
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


@_debug("log", 3)
def debug_log(client: Client, argv: list[str]) -> bytes:
    log.warning("DEBUG LOG: %s", argv[2])
    return OK


_help("debug", ("DEBUG <subcommand>", "SLEEP <seconds>", "RELOAD", "LOG <message>"))


# ---------------------------------------------------------------- scripting


def _no_scripts(client: Client, argv: list[str]) -> bytes:
    raise CommandError(_ERR_NO_SCRIPTS)


def _noscript(client: Client, argv: list[str]) -> bytes:
    raise CommandError("NOSCRIPT No matching script. Please use EVAL.")


def _no_function(client: Client, argv: list[str]) -> bytes:
    raise CommandError("ERR Function not found")


def _not_busy(client: Client, argv: list[str]) -> bytes:
    raise CommandError(_NOTBUSY)


def _ok(client: Client, argv: list[str]) -> bytes:
    if len(argv) > 3 or (len(argv) == 3 and argv[2].lower() not in ("async", "sync")):
        raise CommandError(ERR_SYNTAX)
    return OK


_SCRIPTING = "scripting"
for _name_, _handler in (("eval", _no_scripts), ("eval_ro", _no_scripts)):
    command(COMMANDS, _name_, -3, "noscript", group=_SCRIPTING)(_handler)
for _name_, _handler in (("evalsha", _noscript), ("evalsha_ro", _noscript)):
    command(COMMANDS, _name_, -3, "noscript", group=_SCRIPTING)(_handler)
for _name_ in ("fcall", "fcall_ro"):
    command(COMMANDS, _name_, -3, "noscript", group=_SCRIPTING)(_no_function)

_container("script", -2, _SCRIPTING)
_container("function", -2, _SCRIPTING)


def _script(name: str, arity: int, handler: Any) -> None:
    command(COMMANDS, name, arity, "noscript", group=_SCRIPTING, parent="script")(handler)


def _function(name: str, arity: int, handler: Any) -> None:
    command(COMMANDS, name, arity, "noscript", group=_SCRIPTING, parent="function")(handler)


def _script_exists(client: Client, argv: list[str]) -> bytes:
    return client.encode([0] * (len(argv) - 2))


def _library_not_found(client: Client, argv: list[str]) -> bytes:
    raise CommandError("ERR Library not found")


def _function_list(client: Client, argv: list[str]) -> bytes:
    i = 2
    while i < len(argv):
        option = argv[i].lower()
        if option == "withcode":
            i += 1
        elif option == "libraryname" and i + 1 < len(argv):
            i += 2
        else:
            raise CommandError(f"ERR Unknown argument {argv[i]}")
    return client.encode([])


def _function_stats(client: Client, argv: list[str]) -> bytes:
    return client.encode({"running_script": None, "engines": {}})


_script("exists", -3, _script_exists)
_script("flush", -2, _ok)
_script("load", 3, _no_scripts)
_script("kill", 2, _not_busy)
_function("list", -2, _function_list)
_function("flush", -2, _ok)
_function("stats", 2, _function_stats)
_function("load", -3, _no_scripts)
_function("dump", 2, _no_scripts)
_function("restore", -3, _no_scripts)
_function("delete", 3, _library_not_found)
_function("kill", 2, _not_busy)
_help("script", ("SCRIPT <subcommand>", "EXISTS <sha1>", "FLUSH", "KILL", "LOAD <script>"))
_help("function", ("FUNCTION <subcommand>", "LIST", "FLUSH", "STATS", "DELETE", "KILL"))
