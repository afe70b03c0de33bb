"""CONFIG: GET SET RESETSTAT REWRITE HELP over the server's :class:`Config`.

CONFIG GET matches Redis's glob patterns against the names below; CONFIG
SET changes the mutable settings, checking each value as Redis does and
naming the argument it refuses. The file a server was started with is
read, never written: CONFIG REWRITE says so, with Redis's text.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from snapkv.server.glob import Glob
from snapkv.server.resp.writer import OK, SimpleString
from snapkv.server.state import Config, parse_save
from snapkv.server.table import CommandError, command

if TYPE_CHECKING:
    from snapkv.server.client import Client

__all__: list[str] = []

_SRV = "server"
_ADMIN = "admin noscript loading stale"


def _config_values(config: Config) -> dict[str, str]:
    return {
        "bind": config.host,
        "port": str(config.port),
        "dir": config.dir or os.getcwd(),
        "requirepass": config.requirepass or "",
        "appendonly": "yes" if config.appendonly else "no",
        "appendfsync": config.appendfsync,
        "save": " ".join(f"{secs} {changes}" for secs, changes in config.save),
        "databases": str(config.databases),
        "maxclients": str(config.maxclients),
        "timeout": str(config.timeout),
        "proto-max-bulk-len": str(config.proto_max_bulk_len),
        "maxmemory": "0",
        "maxmemory-policy": "noeviction",
        "stop-writes-on-bgsave-error": "yes" if config.stop_writes_on_bgsave_error else "no",
    }


@command("config|get", -3, _ADMIN, group=_SRV)
def config_get(client: Client, argv: list[str]) -> bytes:
    values = _config_values(client.server.config)
    found: dict[str, str] = {}
    for pattern in dict.fromkeys(argv[2:]):  # each distinct pattern once
        if len(found) == len(values):
            break
        if not any(special in pattern for special in "[*?"):  # a name: looked up, as Redis
            name = pattern.lower()
            if name in values:
                found[name] = values[name]
            continue
        glob = Glob(pattern, nocase=True)  # Redis: stringmatch(pattern, name, 1)
        found.update((name, value) for name, value in values.items() if glob.match(name))
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


@command("config|set", -4, _ADMIN, group=_SRV)
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


@command("config|resetstat", 2, _ADMIN, group=_SRV)
def config_resetstat(client: Client, argv: list[str]) -> bytes:
    client.server.reset_stats()
    return OK


@command("config|rewrite", 2, _ADMIN, group=_SRV)
def config_rewrite(client: Client, argv: list[str]) -> bytes:
    raise CommandError("ERR The server is running without a config file")


@command("config|help", 2, "loading stale", group=_SRV)
def config_help(client: Client, argv: list[str]) -> bytes:
    lines = ("CONFIG <subcommand>", "GET <pattern>", "SET <name> <value>", "RESETSTAT")
    return client.encode([SimpleString(line) for line in lines])
