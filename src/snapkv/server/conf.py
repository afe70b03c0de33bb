"""The server's settings as Redis 7.0 spells them: redis.conf's syntax, directives, checks.

One table (:data:`SETTINGS`) says, for every directive snapkv implements,
how its arguments are read and checked, which :class:`~snapkv.server.state.Config`
field it sets, how ``CONFIG GET`` shows it and whether ``CONFIG SET`` may
change it. The config file, the ``snapkv serve`` options and ``CONFIG SET``
all go through it, so a value is checked once, the same way, with Redis's
error texts (``argument must be between 0 and 65535 inclusive``).

The file is read as Redis 7.0's ``loadServerConfigFromString`` reads it
(config.c): each line is trimmed; a line whose first character is ``#`` is
a comment (so ``port 7000 # note`` has four arguments, and is refused, as
in Redis); the rest is split by ``sdssplitargs`` (:func:`split_args`):
double quotes with ``\\n \\r \\t \\b \\a \\xHH`` escapes, single quotes with
``\\'``, a closing quote followed by anything but a space is an error; the
directive's name is case-insensitive. ``include PATH`` reads another file
there (with a glob, every match in order; a glob matching nothing is
skipped). ``save`` lines add up, the first one in the files replacing the
default rules, ``save ""`` clearing them.

A directive Redis 7.0 knows but snapkv does not implement (:data:`REDIS_DIRECTIVES`,
taken from redis-server 7.0.15's ``CONFIG GET *`` plus its hidden and
special directives) is ignored and reported once, with its line; a
directive nobody knows is an error, as in Redis, so that a misspelt
``requirepass`` never starts an open server. ``rename-command`` (file
only, as in Redis) is kept in ``Config.rename_commands`` for the command
table; ``user`` lines (file only, as in Redis) add up in ``Config.acl_users``
for the ACL registry (``server/acl.py``), which refuses them beside an ``aclfile``.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from snapkv.server.events import flags_of, show_events

if TYPE_CHECKING:
    from snapkv.server.state import Config

__all__ = [
    "DEFAULT_SAVE",
    "ENCODINGS",
    "LOGLEVELS",
    "REDIS_DIRECTIVES",
    "SETTINGS",
    "ConfigError",
    "ConfigFileError",
    "ConfigReader",
    "Setting",
    "current",
    "lookup",
    "names",
    "parse_save",
    "split_args",
]

#: The Redis whose config file syntax and directive names these are.
REDIS_SYNTAX = "7.0"

#: Redis 7.0's default ``save`` rules (used when no ``save`` line or option is given).
DEFAULT_SAVE: tuple[tuple[int, int], ...] = ((3600, 1), (300, 100), (60, 10000))

#: Redis's ``loglevel`` names -> Python logging levels. ``verbose`` is
#: Python's DEBUG and ``notice`` its INFO, so the library's ``log.info``
#: lines are Redis's notices; ``debug`` is below everything.
LOGLEVELS: dict[str, int] = {"debug": 5, "verbose": 10, "notice": 20, "warning": 30}

_INT_MAX = 2**31 - 1
_UINT_MAX = 2**32 - 1
_LONG_MAX = 2**63 - 1

#: Every directive redis-server 7.0.15 accepts: the names and aliases its
#: ``CONFIG GET *`` lists (Debian's build, with TLS), its hidden settings
#: (found by ``CONFIG GET`` of each name), the directives only the file
#: knows (``include``, ``rename-command``, ``user``, ``loadmodule``,
#: ``sentinel``) and those it accepts and ignores as deprecated.
REDIS_DIRECTIVES: frozenset[str] = frozenset(
    """
    acl-pubsub-default aclfile acllog-max-len active-defrag-cycle-max active-defrag-cycle-min
    active-defrag-ignore-bytes active-defrag-max-scan-fields active-defrag-threshold-lower
    active-defrag-threshold-upper active-expire-effort activedefrag activerehashing
    always-show-logo aof-disable-auto-gc aof-load-truncated aof-rewrite-incremental-fsync
    aof-timestamp-enabled aof-use-rdb-preamble aof_rewrite_cpulist appenddirname appendfilename
    appendfsync appendonly auto-aof-rewrite-min-size auto-aof-rewrite-percentage bgsave_cpulist
    bind bind-source-addr bio_cpulist busy-reply-threshold client-output-buffer-limit
    client-query-buffer-limit cluster-allow-pubsubshard-when-down cluster-allow-reads-when-down
    cluster-allow-replica-migration cluster-announce-bus-port cluster-announce-hostname
    cluster-announce-ip cluster-announce-port cluster-announce-tls-port cluster-config-file
    cluster-enabled cluster-link-sendbuf-limit cluster-migration-barrier cluster-node-timeout
    cluster-port cluster-preferred-endpoint-type cluster-replica-no-failover
    cluster-replica-validity-factor cluster-require-full-coverage cluster-slave-no-failover
    cluster-slave-validity-factor crash-log-enabled crash-memcheck-enabled daemonize databases
    dbfilename dir disable-thp dynamic-hz enable-debug-command enable-module-command
    enable-protected-configs hash-max-listpack-entries hash-max-listpack-value
    hash-max-ziplist-entries hash-max-ziplist-value hll-sparse-max-bytes hz ignore-warnings
    io-threads io-threads-do-reads jemalloc-bg-thread key-load-delay latency-monitor-threshold
    latency-tracking latency-tracking-info-percentiles lazyfree-lazy-eviction lazyfree-lazy-expire
    lazyfree-lazy-server-del lazyfree-lazy-user-del lazyfree-lazy-user-flush lfu-decay-time
    lfu-log-factor list-compress-depth list-max-listpack-size list-max-ziplist-size
    loading-process-events-interval-bytes logfile loglevel lua-enable-deprecated-api
    lua-time-limit masterauth masteruser maxclients maxmemory maxmemory-clients
    maxmemory-eviction-tenacity maxmemory-policy maxmemory-samples min-replicas-max-lag
    min-replicas-to-write min-slaves-max-lag min-slaves-to-write no-appendfsync-on-rewrite
    notify-keyspace-events oom-score-adj oom-score-adj-values pidfile port proc-title-template
    propagation-error-behavior protected-mode proto-max-bulk-len rdb-del-sync-files
    rdb-key-save-delay rdb-save-incremental-fsync rdbchecksum rdbcompression repl-backlog-size
    repl-backlog-ttl repl-disable-tcp-nodelay repl-diskless-load repl-diskless-sync
    repl-diskless-sync-delay repl-diskless-sync-max-replicas repl-ping-replica-period
    repl-ping-slave-period repl-timeout replica-announce-ip replica-announce-port replica-announced
    replica-ignore-disk-write-errors replica-ignore-maxmemory replica-lazy-flush replica-priority
    replica-read-only replica-serve-stale-data replicaof requirepass sanitize-dump-payload save
    server_cpulist set-max-intset-entries set-proc-title shutdown-on-sigint shutdown-on-sigterm
    shutdown-timeout slave-announce-ip slave-announce-port slave-ignore-maxmemory slave-lazy-flush
    slave-priority slave-read-only slave-serve-stale-data slaveof slowlog-log-slower-than
    slowlog-max-len socket-mark-id stop-writes-on-bgsave-error stream-node-max-bytes
    stream-node-max-entries supervised syslog-enabled syslog-facility syslog-ident
    tcp-backlog tcp-keepalive timeout tls-auth-clients tls-ca-cert-dir tls-ca-cert-file
    tls-cert-file tls-ciphers tls-ciphersuites tls-client-cert-file tls-client-key-file
    tls-client-key-file-pass tls-cluster tls-dh-params-file tls-key-file tls-key-file-pass
    tls-port tls-prefer-server-ciphers tls-protocols tls-replication tls-session-cache-size
    tls-session-cache-timeout tls-session-caching tracking-table-max-keys unixsocket unixsocketperm
    use-exit-on-panic watchdog-period zset-max-listpack-entries zset-max-listpack-value
    zset-max-ziplist-entries zset-max-ziplist-value
    include rename-command user loadmodule sentinel
    list-max-ziplist-entries list-max-ziplist-value lua-replicate-commands
    """.split()  # noqa: SIM905 - names as data, read like redis.conf, not 200 quoted strings
)

#: Directives Redis knows that snapkv refuses rather than ignores: each one
#: restricts access, and a server that ignored it would be more open than
#: its file says.
_REFUSED: dict[str, str] = {}


class ConfigError(ValueError):
    """A directive's arguments were refused; the message is Redis's text for the reason."""


class ConfigFileError(ConfigError):
    """A config file could not be used: the message names the file and line, as Redis's."""


# ----------------------------------------------------------------- syntax


def split_args(line: bytes) -> list[bytes] | None:
    """Redis's ``sdssplitargs`` (sds.c): one line's arguments, ``None`` if quotes are unbalanced.

    ``None`` also for a closing quote followed by anything but a space
    (``"foo"bar``), as in Redis. A quote in the middle of an unquoted word
    opens a quoted part of the same argument (``a"b c"`` is ``ab c``).
    """
    args: list[bytes] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in b" \t\n\r\v\f":
            i += 1
        if i >= n:
            return args
        current = bytearray()
        in_double = in_single = False
        while True:
            c = line[i] if i < n else None
            if in_double:
                if c is None:
                    return None  # unterminated quotes
                if (
                    c == 0x5C  # backslash
                    and i + 3 < n
                    and line[i + 1] == 0x78  # x
                    and _is_hex(line[i + 2])
                    and _is_hex(line[i + 3])
                ):
                    current.append(int(line[i + 2 : i + 4], 16))
                    i += 3
                elif c == 0x5C and i + 1 < n:
                    i += 1
                    current.append(_ESCAPES.get(line[i], line[i]))
                elif c == 0x22:  # closing " must be followed by a space or the end
                    if i + 1 < n and line[i + 1] not in b" \t\n\r\v\f":
                        return None
                    i += 1
                    break
                else:
                    current.append(c)
            elif in_single:
                if c is None:
                    return None
                if c == 0x5C and i + 1 < n and line[i + 1] == 0x27:
                    i += 1
                    current.append(0x27)
                elif c == 0x27:
                    if i + 1 < n and line[i + 1] not in b" \t\n\r\v\f":
                        return None
                    i += 1
                    break
                else:
                    current.append(c)
            elif c is None or c in b" \n\r\t":
                break
            elif c == 0x22:
                in_double = True
            elif c == 0x27:
                in_single = True
            else:
                current.append(c)
            i += 1
        args.append(bytes(current))


_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("a"): 7}


def _is_hex(byte: int) -> bool:
    return chr(byte) in "0123456789abcdefABCDEF"


# ----------------------------------------------------------------- values

_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")


def _integer(text: str, low: int, high: int) -> int:
    """Redis's ``string2ll`` then the range check of a numeric config."""
    if not _INTEGER.fullmatch(text) or len(text) > 20 or not -(2**63) <= int(text) < 2**63:
        raise ConfigError("argument couldn't be parsed into an integer")
    value = int(text)
    if not low <= value <= high:
        raise ConfigError(f"argument must be between {low} and {high} inclusive")
    return value


_MEMORY = re.compile(r"([0-9]+)(k|kb|m|mb|g|gb|b)?", re.IGNORECASE)
_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1024,
    "m": 10**6,
    "mb": 1 << 20,
    "g": 10**9,
    "gb": 1 << 30,
}


def _memory(text: str, low: int, high: int) -> int:
    """Redis's ``memtoull``: a number with an optional unit (1k = 1000, 1kb = 1024, ...).

    A sign is not a memory value (``maxmemory -1`` is refused so, as in Redis);
    nothing at all is 0.
    """
    match = _MEMORY.fullmatch(text or "0")
    if not match:
        raise ConfigError("argument must be a memory value")
    value = int(match.group(1)) * _UNITS[(match.group(2) or "").lower()]
    if not low <= value <= high:
        raise ConfigError(f"argument must be between {low} and {high} inclusive")
    return value


def _yes_no(text: str) -> bool:
    lowered = text.lower()
    if lowered not in ("yes", "no"):
        raise ConfigError("argument must be 'yes' or 'no'")
    return lowered == "yes"


def _one_of(text: str, names: Sequence[str]) -> str:
    lowered = text.lower()
    if lowered not in names:
        raise ConfigError(f"argument(s) must be one of the following: {', '.join(names)}")
    return lowered


def parse_save(args: Sequence[str] | str) -> list[tuple[int, int]]:
    """Redis's ``save``: ``"3600 1 300 100"`` (or its words) -> [(3600, 1), (300, 100)].

    ``""`` -> []. As Redis 7.0's ``setConfigSaveOption``: pairs of <seconds> >= 1 and
    <changes> >= 0; anything else is ``Invalid save parameters``.
    """
    words = args.split() if isinstance(args, str) else _words(args)
    problem = "Invalid save parameters"
    if len(words) % 2 or "" in words:
        raise ConfigError(problem)
    rules: list[tuple[int, int]] = []
    for i in range(0, len(words), 2):
        try:
            rules.append((_integer(words[i], 1, _LONG_MAX), _integer(words[i + 1], 0, _INT_MAX)))
        except ConfigError:
            raise ConfigError(problem) from None
    return rules


def _words(args: Sequence[str]) -> list[str]:
    """A multi-word setting's words, as Redis's CONFIG SET splits its value (on each space).

    ``""`` alone is no words (the setting cleared); any other empty word, from
    a doubled, leading or trailing space, is kept for the parser to refuse, as
    Redis does.
    """
    words = [w for a in args for w in a.split(" ")]
    return [] if words in ([], [""]) else words


def _show_save(rules: Sequence[tuple[int, int]]) -> str:
    return " ".join(f"{secs} {changes}" for secs, changes in rules)


def _bind(args: Sequence[str]) -> str:
    words = [w for a in args for w in a.split(" ") if w]
    if not words:
        raise ConfigError("bind needs at least one address (snapkv has no unix socket)")
    if len(words) > 16:
        raise ConfigError("Too many bind addresses specified.")
    return " ".join(words)


_SHUTDOWN_FLAGS = ("default", "save", "nosave", "now", "force")


def _shutdown_flags(args: Sequence[str]) -> str:
    """Redis 7.0's ``shutdown-on-sigterm``/``-sigint``: SHUTDOWN's flags for that signal."""
    words = {w.lower() for a in args for w in a.split(" ") if w}
    if not words or not words <= set(_SHUTDOWN_FLAGS):
        raise ConfigError(f"argument(s) must be one of the following: {', '.join(_SHUTDOWN_FLAGS)}")
    if {"save", "nosave"} <= words:
        raise ConfigError("shutdown options SAVE and NOSAVE can't be used simultaneously")
    return " ".join(f for f in _SHUTDOWN_FLAGS[1:] if f in words) or "default"


def _aof_load_truncated(text: str) -> bool:
    if not _yes_no(text):
        raise ConfigError(
            "aof-load-truncated no is not supported: snapkv always drops a torn journal tail "
            "and logs where it cut (run 'snapkv check DIR' before starting to see one)"
        )
    return True


# ------------------------------------------------------ notify-keyspace-events


def parse_events(text: str) -> int:
    """``notify-keyspace-events``' classes as flags (:mod:`snapkv.server.events`' letters)."""
    flags = flags_of(text)
    if flags is None:
        raise ConfigError("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")
    return flags


# --------------------------------------------------- client-output-buffer-limit

#: The client classes of ``client-output-buffer-limit``, in CONFIG GET's order
#: (``replica`` is shown under its older name ``slave``, as Redis 7.0 does).
BUFFER_CLASSES = ("normal", "replica", "pubsub")
#: Redis's defaults: (hard limit, soft limit, soft seconds) per class.
DEFAULT_BUFFER_LIMITS: dict[str, tuple[int, int, int]] = {
    "normal": (0, 0, 0),
    "replica": (256 << 20, 64 << 20, 60),
    "pubsub": (32 << 20, 8 << 20, 60),
}


def _buffer_limits(args: Sequence[str]) -> dict[str, tuple[int, int, int]]:
    """Redis's ``client-output-buffer-limit <class> <hard> <soft> <seconds> ...``.

    An empty value (``CONFIG SET client-output-buffer-limit ""``) changes
    nothing, as in Redis: the result names only the classes given.
    """
    if list(args) == [""]:
        return {}
    if not args or len(args) % 4:
        raise ConfigError("Wrong number of arguments in buffer limit configuration.")
    limits: dict[str, tuple[int, int, int]] = {}
    for i in range(0, len(args), 4):
        name = args[i].lower()
        name = "replica" if name == "slave" else name
        if name not in DEFAULT_BUFFER_LIMITS:
            raise ConfigError("Invalid client class specified in buffer limit configuration.")
        try:
            hard = _memory(args[i + 1], 0, _LONG_MAX)
            soft = _memory(args[i + 2], 0, _LONG_MAX)
            seconds = _integer(args[i + 3], 0, _LONG_MAX)
        except ConfigError:
            raise ConfigError(
                "Error in hard, soft or soft_seconds setting in buffer limit configuration."
            ) from None
        limits[name] = (hard, soft, seconds)
    return limits


def _show_buffer_limits(limits: dict[str, tuple[int, int, int]]) -> str:
    return " ".join(
        f"{'slave' if name == 'replica' else name} {' '.join(map(str, limits[name]))}"
        for name in BUFFER_CLASSES
    )


def _count_ms(text: str) -> int:
    return _integer(text, 0, _LONG_MAX)


def _count_int(text: str) -> int:
    return _integer(text, 0, _INT_MAX)


def _ciphersuites(text: str) -> str:
    """``tls-ciphersuites``: only "" (OpenSSL's TLS 1.3 suites), see server/tls.py for why."""
    if text:
        raise ConfigError(
            "tls-ciphersuites cannot be set: Python's ssl module offers no way to choose "
            "TLS 1.3 cipher suites, so every suite OpenSSL enables stays on (leave it empty; "
            "tls-protocols TLSv1.2 with tls-ciphers restricts the ciphers)"
        )
    return text


def _merge_limits(
    old: dict[str, tuple[int, int, int]], new: dict[str, tuple[int, int, int]]
) -> dict[str, tuple[int, int, int]]:
    return {**old, **new}


def _percentiles(args: Sequence[str]) -> tuple[float, ...]:
    """Redis 7.0's ``latency-tracking-info-percentiles``: numbers in [0, 100], "" for none."""
    found = []
    for word in _words(args):
        try:
            value = float(word)
        except ValueError:
            raise ConfigError("Invalid latency-tracking-info-percentiles parameters") from None
        if not 0.0 <= value <= 100.0:
            raise ConfigError(
                "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]"
            )
        found.append(value)
    return tuple(found)


def show_percentile(value: float) -> str:
    """A percentile as Redis prints it (``%f`` without its trailing zeros): ``99.9``, ``50``."""
    return f"{value:f}".rstrip("0").rstrip(".")


def _show_percentiles(values: Sequence[float]) -> str:
    return " ".join(map(show_percentile, values))


# ----------------------------------------------------------------- the table


@dataclass(frozen=True)
class Setting:
    """One directive snapkv implements: how to read it, where it goes, who may change it."""

    #: The directive's name, as in redis.conf and CONFIG GET.
    name: str
    #: The :class:`Config` attribute it sets.
    field: str
    #: Reads the directive's arguments (already split), raising ConfigError with Redis's text.
    parse: Callable[[Sequence[str]], Any]
    #: The value as CONFIG GET shows it.
    show: Callable[[Any], str] = str
    #: Whether CONFIG SET may change it while the server runs.
    mutable: bool = False
    #: Takes several arguments (Redis's MULTI_ARG_CONFIG: ``save``, ``bind``).
    multi: bool = False
    #: For a directive Redis changes at runtime and snapkv cannot: CONFIG
    #: SET's refusal of a new value, saying why and what to do instead
    #: (``{value}`` is the value asked for). Setting the current value is a no-op.
    restart_only: str = ""
    #: The value when the :class:`Config` has no attribute for it (see :data:`ENCODINGS`).
    default: Any = None
    #: For a directive whose value names only what changes (``client-output-buffer-limit
    #: pubsub 0 0 0`` leaves the other classes as they were): the new value from
    #: the current one and the parsed one. See :func:`assign`.
    merge: Callable[[Any, Any], Any] | None = None


def _single(parse: Callable[[str], Any]) -> Callable[[Sequence[str]], Any]:
    def read(args: Sequence[str]) -> Any:
        if len(args) != 1:
            raise ConfigError("wrong number of arguments")
        return parse(args[0])

    return read


def _yn(value: bool) -> str:
    return "yes" if value else "no"


def _text(value: str | None) -> str:
    return value or ""


_FSYNC = ("everysec", "always", "no")  # Redis's order, which its error lists
_POLICIES = (
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "noeviction",
)

SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting(
            "bind",
            "host",
            _bind,
            multi=True,
        ),
        Setting(
            "port",
            "port",
            _single(lambda t: _integer(t, 0, 65535)),
        ),
        Setting(
            "dir",
            "dir",
            _single(str),
            show=_text,
        ),
        Setting(
            "requirepass",
            "requirepass",
            _single(lambda t: t or None),
            show=_text,
            mutable=True,
        ),
        # Redis 7.0 changes it at runtime; the Store decides when it opens
        # whether it keeps a journal, so CONFIG SET says so rather than pretend.
        Setting(
            "appendonly",
            "appendonly",
            _single(_yes_no),
            show=_yn,
            restart_only=(
                "can't change appendonly while the server runs: the store opens with or "
                "without its journal. Run SHUTDOWN SAVE, then start again with --appendonly "
                "{value}: the snapshot keeps every key"
            ),
        ),
        Setting(
            "appendfsync",
            "appendfsync",
            _single(lambda t: _one_of(t, _FSYNC)),
            mutable=True,  # ServerState.set_appendfsync switches the journal's policy
        ),
        Setting(
            "save",
            "save",
            parse_save,
            show=_show_save,
            mutable=True,
            multi=True,
        ),
        Setting(
            "databases",
            "databases",
            _single(lambda t: _integer(t, 1, _INT_MAX)),
        ),
        Setting(
            "maxclients",
            "maxclients",
            _single(lambda t: _integer(t, 1, _UINT_MAX)),
            mutable=True,
        ),
        Setting(
            "timeout",
            "timeout",
            _single(lambda t: _integer(t, 0, _INT_MAX)),
            mutable=True,
        ),
        Setting(
            "proto-max-bulk-len",
            "proto_max_bulk_len",
            _single(lambda t: _memory(t, 1 << 20, _LONG_MAX)),
            mutable=True,
        ),
        Setting(
            "stop-writes-on-bgsave-error",
            "stop_writes_on_bgsave_error",
            _single(_yes_no),
            show=_yn,
            mutable=True,
        ),
        Setting(
            "loglevel",
            "loglevel",
            _single(lambda t: _one_of(t, tuple(LOGLEVELS))),
            mutable=True,
        ),
        Setting(
            "logfile",
            "logfile",
            _single(str),
        ),
        Setting(
            "pidfile",
            "pidfile",
            _single(str),
        ),
        Setting(
            "supervised",
            "supervised",
            _single(lambda t: _one_of(t, ("upstart", "systemd", "auto", "no"))),
        ),
        Setting(
            "shutdown-on-sigterm", "shutdown_on_sigterm", _shutdown_flags, mutable=True, multi=True
        ),
        Setting(
            "shutdown-on-sigint", "shutdown_on_sigint", _shutdown_flags, mutable=True, multi=True
        ),
        Setting(
            "aof-load-truncated",
            "aof_load_truncated",
            _single(_aof_load_truncated),
            show=_yn,
        ),
        Setting(
            "aof-load-repair",
            "aof_load_repair",
            _single(_yes_no),
            show=_yn,
        ),
        Setting(
            "rdb-load-fallback",
            "rdb_load_fallback",
            _single(_yes_no),
            show=_yn,
        ),
        Setting(
            "maxmemory",
            "maxmemory",
            _single(lambda t: _memory(t, 0, 2**64 - 1)),
            mutable=True,
        ),
        Setting(
            "maxmemory-policy",
            "maxmemory_policy",
            _single(lambda t: _one_of(t, _POLICIES)),
            mutable=True,
        ),
        Setting(
            "notify-keyspace-events",
            "notify_keyspace_events",
            _single(parse_events),
            show=show_events,
            mutable=True,
        ),
        Setting(
            "client-output-buffer-limit",
            "client_output_buffer_limit",
            _buffer_limits,
            show=_show_buffer_limits,
            mutable=True,
            multi=True,
            merge=_merge_limits,
        ),
        # Redis 7.0's name and its older alias, one value.
        *(
            Setting(name, "busy_reply_threshold", _single(_count_ms), mutable=True)
            for name in ("busy-reply-threshold", "lua-time-limit")
        ),
        # ACL (server/acl.py): the users' file, the log's length, new users' channels.
        Setting("aclfile", "aclfile", _single(str), show=_text),
        Setting(
            "acllog-max-len",
            "acllog_max_len",
            _single(lambda t: _integer(t, 0, _LONG_MAX)),
            mutable=True,
        ),
        Setting(
            "acl-pubsub-default",
            "acl_pubsub_default",
            _single(lambda t: _one_of(t, ("allchannels", "resetchannels"))),
            mutable=True,
        ),
        # Access: protected mode, and TLS (server/tls.py builds the context from these).
        Setting("protected-mode", "protected_mode", _single(_yes_no), show=_yn, mutable=True),
        Setting(
            "tls-port",
            "tls_port",
            _single(lambda t: _integer(t, 0, 65535)),
            restart_only="can't change tls-port while the server runs: restart with --tls-port "
            "{value} (the listeners are opened at start)",
        ),
        *(
            Setting(name, name.replace("-", "_"), _single(str), show=_text, mutable=True)
            for name in (
                "tls-cert-file",
                "tls-key-file",
                "tls-key-file-pass",
                "tls-ca-cert-file",
                "tls-ca-cert-dir",
                "tls-protocols",
                "tls-ciphers",
                "tls-dh-params-file",
            )
        ),
        Setting(
            "tls-ciphersuites", "tls_ciphersuites", _single(_ciphersuites), show=_text, mutable=True
        ),
        Setting(
            "tls-auth-clients",
            "tls_auth_clients",
            _single(lambda t: _one_of(t, ("no", "yes", "optional"))),
            mutable=True,
        ),
        *(
            Setting(name, name.replace("-", "_"), _single(_yes_no), show=_yn, mutable=True)
            for name in ("tls-prefer-server-ciphers", "tls-session-caching")
        ),
        *(
            Setting(name, name.replace("-", "_"), _single(_count_int), mutable=True)
            for name in ("tls-session-cache-size", "tls-session-cache-timeout")
        ),
        # Replication to Redis replicas (server/replicas): the backlog and the link's timers.
        Setting(
            "repl-backlog-size",
            "repl_backlog_size",
            # Redis raises a smaller backlog to CONFIG_REPL_BACKLOG_MIN_SIZE.
            _single(lambda t: max(_memory(t, 1, _LONG_MAX), 16 * 1024)),
            mutable=True,
        ),
        Setting(
            "repl-backlog-ttl",
            "repl_backlog_ttl",
            _single(lambda t: _integer(t, 0, _LONG_MAX)),
            mutable=True,
        ),
        *(
            Setting(
                name,
                "repl_ping_replica_period",
                _single(lambda t: _integer(t, 1, _INT_MAX)),
                mutable=True,
            )
            for name in ("repl-ping-replica-period", "repl-ping-slave-period")
        ),
        Setting(
            "repl-timeout",
            "repl_timeout",
            _single(lambda t: _integer(t, 1, _INT_MAX)),
            mutable=True,
        ),
        Setting(
            "repl-diskless-sync",
            "repl_diskless_sync",
            _single(_yes_no),
            show=_yn,
            mutable=True,
        ),
    )
}


# ------------------------------------------------- the value types' encodings


def _count(text: str) -> int:
    return _integer(text, 0, _LONG_MAX)


def _length(text: str) -> int:
    return _memory(text, 0, _LONG_MAX)


def _encoding_settings() -> dict[str, Setting]:
    """Redis 7.0's compact-encoding thresholds (config.c), each under its name and its alias.

    OBJECT ENCODING reports a value's encoding from its size and these (see
    :mod:`snapkv.server.cmd_object`); snapkv's containers are the same
    whatever they are, so the settings change what is reported, never the
    memory. Each alias is a name of its own, as Redis 7.0's CONFIG GET lists
    both and CONFIG SET takes both in one call. 7.0 has no
    ``set-max-listpack-*`` (7.2's) and no ``list-max-listpack-*`` entries or
    value: unknown there, unknown here. The ``*-value`` ones are memory
    values (``1k``), as in Redis.
    """
    rows = (
        ("hash-max-listpack-entries", "hash-max-ziplist-entries", _count, 512),
        ("hash-max-listpack-value", "hash-max-ziplist-value", _length, 64),
        ("list-max-listpack-size", "list-max-ziplist-size", _list_size, -2),
        ("list-compress-depth", "", lambda t: _integer(t, 0, _INT_MAX), 0),
        ("set-max-intset-entries", "", _count, 512),
        ("zset-max-listpack-entries", "zset-max-ziplist-entries", _count, 128),
        ("zset-max-listpack-value", "zset-max-ziplist-value", _length, 64),
    )
    table: dict[str, Setting] = {}
    for name, alias, parse, default in rows:
        for spelt in (name, alias) if alias else (name,):
            table[spelt] = Setting(
                spelt, name.replace("-", "_"), _single(parse), mutable=True, default=default
            )
    return table


def _list_size(text: str) -> int:
    return _integer(text, -(2**31), _INT_MAX)


#: The encoding thresholds, by name and alias (kept apart from :data:`SETTINGS`,
#: whose rows are ``snapkv serve``'s options too): a config file's line and
#: CONFIG SET set the :class:`Config` field of the same name.
ENCODINGS: dict[str, Setting] = _encoding_settings()


#: The introspection settings (SLOWLOG, LATENCY, INFO latencystats, OBJECT
#: FREQ), with Redis 7.0's ranges and defaults: for the config file and
#: CONFIG SET, not ``snapkv serve`` options (kept apart from :data:`SETTINGS` so).
MONITORING: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting(
            "slowlog-log-slower-than",
            "slowlog_log_slower_than",
            _single(lambda t: _integer(t, -1, _LONG_MAX)),
            mutable=True,
        ),
        Setting(
            "slowlog-max-len",
            "slowlog_max_len",
            _single(lambda t: _integer(t, 0, _LONG_MAX)),
            mutable=True,
        ),
        Setting(
            "latency-monitor-threshold",
            "latency_monitor_threshold",
            _single(lambda t: _integer(t, 0, _LONG_MAX)),
            mutable=True,
        ),
        Setting("latency-tracking", "latency_tracking", _single(_yes_no), show=_yn, mutable=True),
        Setting(
            "latency-tracking-info-percentiles",
            "latency_tracking_info_percentiles",
            _percentiles,
            show=_show_percentiles,
            mutable=True,
            multi=True,
        ),
        Setting(
            "lfu-log-factor",
            "lfu_log_factor",
            _single(lambda t: _integer(t, 0, _INT_MAX)),
            mutable=True,
        ),
        Setting(
            "lfu-decay-time",
            "lfu_decay_time",
            _single(lambda t: _integer(t, 0, _INT_MAX)),
            mutable=True,
        ),
    )
}


def lookup(name: str) -> Setting | None:
    """The setting named ``name`` (lower case): a row of SETTINGS, ENCODINGS or MONITORING."""
    return SETTINGS.get(name) or ENCODINGS.get(name) or MONITORING.get(name)


def names() -> list[str]:
    """Every name CONFIG GET and CONFIG SET know, aliases included."""
    return [*SETTINGS, *ENCODINGS, *MONITORING]


def apply(config: Config, name: str, args: Sequence[str]) -> None:
    """Set directive ``name`` (lower case) on ``config`` from its arguments.

    :raises ConfigError: unknown here, or the arguments were refused (Redis's text).
    """
    setting = lookup(name)
    if setting is None:
        raise ConfigError("Bad directive or wrong number of arguments")
    assign(config, setting, setting.parse(args))


def assign(config: Config, setting: Setting, value: Any) -> None:
    """Set ``setting``'s field on ``config`` to ``value`` (merged, for a ``merge`` setting)."""
    if setting.merge is not None:
        value = setting.merge(getattr(config, setting.field), value)
    setattr(config, setting.field, value)


def current(config: Config, name: str) -> Any:
    """The value of setting ``name`` on ``config`` (its default if the Config has none)."""
    setting = lookup(name)
    if setting is None:
        raise KeyError(name)
    return getattr(config, setting.field, setting.default)


def show(config: Config, name: str) -> str:
    """Directive ``name``'s value as CONFIG GET shows it."""
    setting = lookup(name)
    if setting is None:
        raise KeyError(name)
    return setting.show(current(config, name))


# ----------------------------------------------------------------- the file


def _fields(config: Config) -> set[str]:
    """The attributes ``config``'s class declares (what ``dataclasses.replace`` keeps)."""
    return {f.name for f in dataclasses.fields(config)}


@dataclass
class ConfigReader:
    """Reads directives into a Config as Redis does: files first, then the command line's options.

    ``notes`` collects one line per ignored Redis directive (its first
    place, and how many more times it appeared), to be logged once logging
    is set up; ``files`` every file read, in order.
    """

    config: Config
    notes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    #: Whether a ``save`` directive was read yet: the first one replaces the
    #: default rules, later ones add to it (Redis 7.0's ``save_loaded``).
    save_loaded: bool = False
    _ignored: dict[str, list[str]] = field(default_factory=dict)
    _reading: list[str] = field(default_factory=list)

    def directive(self, name: str, args: Sequence[str]) -> None:
        """Apply one directive (``name`` lower case); file-only directives are not handled here."""
        if name == "save":
            rules = parse_save(args)
            if not self.save_loaded or args in ([""], ("",)):
                self.config.save = []
            self.save_loaded = True
            self.config.save = [*self.config.save, *rules]
            return
        apply(self.config, name, args)

    def read(self, path: str) -> None:
        """Read one config file (and the files it includes).

        :raises ConfigFileError: it cannot be read, or a line is refused.
        """
        absolute = os.path.abspath(path)
        if absolute in self._reading:
            raise ConfigFileError(f"{path}: includes itself (through {' -> '.join(self._reading)})")
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ConfigFileError(
                f"Fatal error, can't open config file '{path}': {exc.strerror or exc}"
            ) from None
        self.files.append(absolute)
        self._reading.append(absolute)
        try:
            for number, raw in enumerate(data.split(b"\n"), 1):
                line = raw.strip(b" \t\r\n")
                if not line or line.startswith(b"#"):
                    continue
                try:
                    self._line(line, path, number)
                except ConfigFileError:
                    raise
                except ConfigError as exc:
                    text = line.decode("utf-8", "replace")
                    raise ConfigFileError(
                        f"\n*** FATAL CONFIG FILE ERROR (Redis {REDIS_SYNTAX} syntax) ***\n"
                        f"Reading the configuration file {path}, at line {number}\n"
                        f">>> '{text}'\n{exc}"
                    ) from None
        finally:
            self._reading.pop()

    def _line(self, line: bytes, path: str, number: int) -> None:
        words = split_args(line)
        if words is None:
            raise ConfigError("Unbalanced quotes in configuration line")
        if not words:
            return
        # Arguments become text as the wire's do (UTF-8, surrogateescape): a
        # requirepass of any bytes matches what a client sends.
        name = words[0].decode("utf-8", "surrogateescape").lower()
        args = [w.decode("utf-8", "surrogateescape") for w in words[1:]]
        setting = lookup(name)
        if setting is not None and setting.field not in _fields(self.config):
            setting = None  # an encoding threshold the server's Config cannot keep yet
        if setting is not None:
            if not setting.multi and len(args) != 1:
                raise ConfigError("wrong number of arguments")
            self.directive(name, args)
        elif name == "include" and len(args) == 1:
            pattern = args[0]
            if any(c in pattern for c in "*?["):
                for match in sorted(glob.glob(pattern)):
                    self.read(match)
            else:
                self.read(pattern)
        elif name == "rename-command":
            # File only, as in Redis; applied when the command table is built (server/rename.py).
            if len(args) != 2:
                raise ConfigError("Bad directive or wrong number of arguments")
            self.config.rename_commands = [*self.config.rename_commands, (args[0], args[1])]
        elif name == "user":
            # File only, as in Redis; the rules are checked when the server's ACL is built.
            if not args:
                raise ConfigError("Bad directive or wrong number of arguments")
            if any(words[0] == args[0] for words in self.config.acl_users):
                raise ConfigError(
                    f"Error in user declaration '{args[0]}': Duplicate user found. A user "
                    "can only be defined once in config files"
                )
            self.config.acl_users = [*self.config.acl_users, list(args)]
        elif name in _REFUSED:
            raise ConfigError(_REFUSED[name])
        elif name in REDIS_DIRECTIVES and name != "include":
            self._ignored.setdefault(name, []).append(f"{path}:{number}")
        else:
            raise ConfigError("Bad directive or wrong number of arguments")

    def finish(self) -> None:
        """Turn the ignored directives into ``notes`` (one line each)."""
        for name, places in self._ignored.items():
            more = f" (and {len(places) - 1} more)" if len(places) > 1 else ""
            self.notes.append(
                f"{places[0]}{more}: '{name}' is a Redis {REDIS_SYNTAX} directive snapkv "
                "does not implement: ignored"
            )
        self._ignored.clear()
