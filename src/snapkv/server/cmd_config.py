"""CONFIG: GET SET RESETSTAT REWRITE HELP over the server's :class:`Config`.

Every name CONFIG GET and CONFIG SET know is a row of
:data:`snapkv.server.conf.SETTINGS`, the table the config file and the
``snapkv serve`` options use too, or of :data:`snapkv.server.conf.ENCODINGS`
(the value types' encoding thresholds, aliases included), so a value is
checked the same way everywhere, with Redis's texts. CONFIG GET matches Redis's glob patterns
against those names; ``dir`` is the data directory the store really uses
("" when it has none). CONFIG SET changes the mutable settings, all or
nothing, naming the argument it refuses. CONFIG REWRITE writes the
settings back into the file the server was started with
(:mod:`snapkv.server.config_rewrite`), atomically.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from snapkv._fs import atomic_write
from snapkv.server.access import policy_changed, start
from snapkv.server.cmd_latency import latency_of
from snapkv.server.conf import DEFAULT_SAVE, LOGLEVELS, ConfigError, assign, lookup, names, show
from snapkv.server.config_rewrite import rewrite
from snapkv.server.glob import Glob
from snapkv.server.resp.writer import OK, SimpleString
from snapkv.server.state import Config
from snapkv.server.table import ERR_SYNTAX, CommandError, command

if TYPE_CHECKING:
    from snapkv.server.client import Client
    from snapkv.server.state import ServerState

__all__: list[str] = []

log = logging.getLogger("snapkv.server")

_SRV = "server"
_ADMIN = "admin noscript loading stale"


def _config_values(server: ServerState) -> dict[str, str]:
    config = server.config
    values = {name: show(config, name) for name in names()}
    values["dir"] = server.data_dir or ""
    return values


@command("config|get", -3, _ADMIN, group=_SRV)
def config_get(client: Client, argv: list[str]) -> bytes:
    values = _config_values(client.server)
    # Each setting once (the first spelling asked for it wins); a name is
    # echoed as it was sent (``PORT``), a pattern's matches as they are named.
    found: dict[str, tuple[str, str]] = {}
    joined = "\n".join(values)
    for pattern in dict.fromkeys(argv[2:]):  # each distinct pattern once
        if len(found) == len(values):
            break
        if not any(special in pattern for special in "[*?"):  # a name: looked up, as Redis
            name = pattern.lower()
            if name in values:
                found.setdefault(name, (pattern, values[name]))
            continue
        candidates = _candidates(pattern, values, joined)
        if not candidates:
            continue
        glob = Glob(pattern, nocase=True)  # Redis: stringmatch(pattern, name, 1)
        for name in candidates:
            if glob.match(name):
                found.setdefault(name, (name, values[name]))
    return client.encode(dict(found.values()))


def _candidates(pattern: str, values: dict[str, str], joined: str) -> list[str]:
    """The names ``pattern`` may match: those holding each of its literal runs.

    A cheap exact filter before the glob: every atom of a pattern matches
    one byte but ``*``, so a name can match only if each run of literals
    between the other atoms (``*``, ``?``, a ``[...]`` set) occurs in it,
    compared lower-case as the names are (Redis's nocase is ASCII
    ``tolower``). Thousands of distinct patterns in one request then cost
    a substring search each instead of a glob per setting.
    """
    runs = [run.lower() for run in _literal_runs(pattern) if run.isascii()]
    if any(run not in joined for run in runs):
        return []
    return [name for name in values if all(run in name for run in runs)]


def _literal_runs(pattern: str) -> list[str]:
    """The runs of literal characters in ``pattern``, as Redis's ``stringmatchlen`` reads it."""
    runs, run, i, size = [], [], 0, len(pattern)
    while i < size:
        ch = pattern[i]
        if ch == "\\" and i + 1 < size:  # an escaped character is a literal
            run.append(pattern[i + 1])
            i += 2
            continue
        if ch not in "*?[":
            run.append(ch)
            i += 1
            continue
        runs.append("".join(run))
        run = []
        i += 1
        if ch == "[":  # skip the set: to its "]", or to the end if it is never closed
            i += pattern[i : i + 1] == "^"
            while i < size and pattern[i] != "]":
                if pattern[i] == "\\" and i + 1 < size:
                    i += 2  # an escaped member
                elif pattern[i + 1 : i + 2] == "-" and i + 2 < size:
                    i += 3  # a range (its end may be "]")
                else:
                    i += 1
            i += 1
    runs.append("".join(run))
    return [r for r in runs if r]


@command("config|set", -4, _ADMIN, group=_SRV)
def config_set(client: Client, argv: list[str]) -> bytes:
    config = client.server.config
    if len(argv) % 2:  # Redis 7.0 checks the count before the names
        raise CommandError(ERR_SYNTAX)
    pairs = list(zip(argv[2::2], argv[3::2], strict=False))
    settings = [lookup(name.lower()) for name, _ in pairs]
    if None in settings:
        bad = next(n for (n, _), s in zip(pairs, settings, strict=True) if s is None)
        raise CommandError(f"ERR Unknown option or number of arguments for CONFIG SET - '{bad}'")
    # As Redis's configSetCommand: every value is checked before any is set.
    parsed: dict[str, Any] = {}
    for (name, value), setting in zip(pairs, settings, strict=True):
        assert setting is not None
        try:
            if not setting.mutable and not setting.restart_only:
                raise ConfigError("can't set immutable config")
            if setting.name in parsed:
                raise ConfigError("duplicate parameter")
            args = value.split(" ") if setting.multi else [value]
            parsed[setting.name] = setting.parse(args)
            if setting.restart_only and parsed[setting.name] != getattr(config, setting.field):
                raise ConfigError(
                    setting.restart_only.format(value=setting.show(parsed[setting.name]))
                )
        except ConfigError as exc:
            raise CommandError(
                f"ERR CONFIG SET failed (possibly related to argument '{name}') - {exc}"
            ) from None
    # Each check sees every parsed value and refuses them all (CommandError), or
    # returns what installs its part (TLS: the new context it built; ACL: the
    # default user's password), run once nothing else can fail.
    installs = [check(parsed) for check in client.server.config_checks]
    fsync = parsed.pop("appendfsync", None)
    if fsync is not None and fsync != config.appendfsync:
        # First: the one change that can fail (a new journal), before any other is made.
        try:
            client.server.set_appendfsync(fsync)
        except Exception as exc:
            raise CommandError(
                f"ERR CONFIG SET failed (possibly related to argument 'appendfsync') - {exc}"
            ) from None
    for name, value in parsed.items():
        chosen = lookup(name)
        assert chosen is not None
        assign(config, chosen, value)
        if name == "loglevel":
            logging.getLogger("snapkv").setLevel(LOGLEVELS[value])
    for install in installs:
        if install is not None:
            install()
    latency_of(client).refresh()  # the slow log's and latency monitor's thresholds
    if config.maxmemory_policy.startswith(("allkeys-l", "volatile-l")):
        start(client.server)  # an LRU or LFU policy: keep each key's last use from now
    policy_changed(client.server)
    return OK


@command("config|resetstat", 2, _ADMIN, group=_SRV)
def config_resetstat(client: Client, argv: list[str]) -> bytes:
    """Redis's ``resetServerStats`` and friends: the counters, each command's, errors, latencies.

    ``rdb_saves`` too (Redis 7.0 resets ``stat_rdb_saves``); the slow log,
    the latency monitor's events and the memory peak are left, as in Redis.
    """
    client.server.reset_stats()
    client.server.saves = 0
    return OK


@command("config|rewrite", 2, _ADMIN, group=_SRV)
def config_rewrite(client: Client, argv: list[str]) -> bytes:
    """Write the current settings into the file the server started with (atomically)."""
    path = client.server.config.config_file
    if not path:
        raise CommandError("ERR The server is running without a config file")
    try:
        try:
            old = Path(path).read_text("utf-8", "surrogateescape")
        except FileNotFoundError:
            old = ""  # Redis writes a new file when the old one is gone
        acl = client.server.acl  # the users, where no aclfile holds them
        users = None if acl is None else acl.config_user_lines()
        text = rewrite(old, client.server.config, _defaults(), users)
        directory, name = os.path.split(path)
        atomic_write(
            directory or ".",
            name,
            [text.encode("utf-8", "surrogateescape")],
            temp_name=f"{name}.tmp-{os.getpid()}",
        )
    except OSError as exc:
        log.warning("CONFIG REWRITE failed: %s", exc.strerror or exc)
        raise CommandError(f"ERR Rewriting config file: {exc.strerror or exc}") from None
    log.info("CONFIG REWRITE executed with success.")
    return OK


def _defaults() -> Config:
    """redis-server 7.0's defaults, as ``snapkv serve`` starts from them."""
    return Config(dir=".", appendonly=True, save=list(DEFAULT_SAVE))


_HELP = (
    "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "REWRITE",
    "    Rewrite the configuration file.",
    "HELP",
    "    Prints this help.",
)


@command("config|help", 2, "loading stale", group=_SRV)
def config_help(client: Client, argv: list[str]) -> bytes:
    return client.encode([SimpleString(line) for line in _HELP])
