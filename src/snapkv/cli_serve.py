"""``snapkv serve``: its options, its config file (redis.conf) and its start.

As redis-server: the settings start from Redis 7.0's defaults (data in
the current directory, the journal on, ``save 3600 1 300 100 60 10000``),
then the config file's directives apply, then the command line's options,
each one a directive of the same name (``--port 6380`` is ``port 6380``;
``--save`` lines add to the file's, as in Redis). Every value goes through
:data:`snapkv.server.conf.SETTINGS`, so the file, the options and CONFIG
SET accept and refuse the same values with the same words.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

from snapkv.cli_common import EXIT_OK, InputError
from snapkv.objstore.url import is_object_url

if TYPE_CHECKING:
    from snapkv.server.conf import ConfigReader
    from snapkv.server.state import Config

__all__ = ["add_serve_command", "read_serve_config", "serve_defaults"]

_DESCRIPTION = """\
Serve a store over the Redis protocol (RESP2/RESP3) until SHUTDOWN, SIGTERM or
SIGINT. As redis-server: CONFIG is a redis.conf (Redis 7.0's syntax; directives
snapkv does not implement are logged and ignored, unknown ones are refused), and
each option is the directive of the same name, applied after the file. Without
--dir the data lives in the current directory: snapshots (save rules 3600 1 300
100 60 10000) and a journal of every write (appendonly yes). --save "" with
--appendonly no keeps the data in memory only (SAVE still writes a snapshot).
SHUTDOWN, SIGTERM and SIGINT snapshot first when save rules are set."""


#: ``snapkv serve``'s options: (directive, metavar, help), in --help's order.
#: Each is the directive of the same name in :data:`snapkv.server.conf.SETTINGS`
#: (a test checks the two lists agree); they live here so that parsing the
#: command line does not import the server.
OPTIONS: tuple[tuple[str, str, str], ...] = (
    (
        "bind",
        "ADDR",
        "addresses to listen on, each one (a leading '-': skipped if "
        "unavailable; *: every IPv4 address); default 127.0.0.1",
    ),
    ("port", "N", "TCP port, 0-65535 (0: a free one, logged); default 6379"),
    (
        "dir",
        "DIR",
        "data directory: snapshots and journal, restored on start; "
        'default: the current directory ("": none, memory only)',
    ),
    ("requirepass", "PASS", "password clients must AUTH with"),
    ("appendonly", "yes|no", "journal every write before its reply; default yes"),
    ("appendfsync", "always|everysec|no", "when the journal is forced to disk; default everysec"),
    (
        "save",
        "SECS CHANGES",
        "snapshot after SECS seconds if at least CHANGES writes; pairs add "
        'up, "" for none; default 3600 1 300 100 60 10000',
    ),
    ("databases", "N", "keyspaces, SELECT 0 to N-1 (N >= 1); default 16"),
    ("maxclients", "N", "connections beyond N are refused (N >= 1); default 10000"),
    ("timeout", "SECS", "close clients idle SECS seconds, 0 never; default 0"),
    ("proto-max-bulk-len", "BYTES", "largest argument of a request, >= 1mb; default 512mb"),
    ("stop-writes-on-bgsave-error", "yes|no", "refuse writes while snapshots fail; default yes"),
    ("loglevel", "debug|verbose|notice|warning", "how much to log; default notice"),
    ("logfile", "FILE", 'append the log to FILE ("": standard output); default ""'),
    ("pidfile", "FILE", "write the process id to FILE while running"),
    (
        "supervised",
        "no|systemd|auto",
        "notify systemd (NOTIFY_SOCKET) when ready and stopping; "
        "auto: when NOTIFY_SOCKET is set; default no",
    ),
    (
        "shutdown-on-sigterm",
        "FLAGS",
        "SHUTDOWN's flags for SIGTERM: save, nosave, force (now is accepted) or default; "
        "default: default (a snapshot only with save rules)",
    ),
    ("shutdown-on-sigint", "FLAGS", "the same for SIGINT (Ctrl-C)"),
    (
        "aof-load-truncated",
        "yes",
        "drop a torn last journal record at start and log it (only yes is supported); default yes",
    ),
    (
        "aof-load-repair",
        "yes|no",
        "start from a journal damaged before its end, keeping the "
        "records before the damage, as redis-check-aof --fix; default no: refuse to start",
    ),
    (
        "rdb-load-fallback",
        "yes|no",
        "if the newest snapshot fails its checks, load the newest "
        "older one that passes; default no: refuse to start",
    ),
    ("maxmemory", "BYTES", "accepted and ignored: nothing is evicted"),
    ("maxmemory-policy", "POLICY", "accepted and ignored: nothing is evicted"),
    (
        "notify-keyspace-events",
        "CLASSES",
        "keyspace and keyevent notifications to publish (Redis's 'KEA' letters; '' none)",
    ),
    (
        "client-output-buffer-limit",
        "'CLASS HARD SOFT SECONDS ...'",
        "close a client whose unsent output passes these (normal, replica, pubsub)",
    ),
    (
        "busy-reply-threshold",
        "MS",
        "after a script ran this long, other clients get -BUSY (default 5000)",
    ),
    ("lua-time-limit", "MS", "the older name of busy-reply-threshold"),
    ("aclfile", "FILE", "ACL users from this file (ACL SAVE writes it, ACL LOAD reads it)"),
    ("acllog-max-len", "N", "entries the ACL LOG keeps (default 128)"),
    (
        "acl-pubsub-default",
        "allchannels|resetchannels",
        "the channels a new ACL user may use; default resetchannels",
    ),
    (
        "protected-mode",
        "yes|no",
        "while no password is set, serve only clients from 127.0.0.1 and ::1; default yes",
    ),
    ("tls-port", "N", "also listen for TLS on port N of every bind address (0: no TLS)"),
    ("tls-cert-file", "FILE", "the server's certificate (PEM, with its chain)"),
    ("tls-key-file", "FILE", "the certificate's private key (PEM)"),
    ("tls-key-file-pass", "PASS", "the passphrase of an encrypted tls-key-file"),
    ("tls-ca-cert-file", "FILE", "CA certificates (PEM) that client certificates must chain to"),
    ("tls-ca-cert-dir", "DIR", "a directory of CA certificates (OpenSSL's c_rehash layout)"),
    ("tls-protocols", "'TLSv1.2 TLSv1.3'", "TLS versions to accept; default TLSv1.2 TLSv1.3"),
    ("tls-ciphers", "LIST", "OpenSSL cipher list for TLS 1.2 and older"),
    ("tls-dh-params-file", "FILE", "DH parameters (PEM) for DHE ciphers"),
    ("tls-ciphersuites", '""', "TLS 1.3 suites: only empty is accepted (Python cannot set them)"),
    (
        "tls-auth-clients",
        "yes|no|optional",
        "client certificates: required, not asked for, or checked when sent; default yes",
    ),
    ("tls-prefer-server-ciphers", "yes|no", "choose the cipher by the server's order; default no"),
    ("tls-session-caching", "yes|no", "TLS session resumption (tickets); default yes"),
    ("tls-session-cache-size", "N", "accepted and shown; Python's ssl cannot size the cache"),
    ("tls-session-cache-timeout", "SECS", "accepted and shown; Python's ssl cannot set it"),
    ("repl-backlog-size", "BYTES", "bytes of stream kept for replicas that reconnect (1mb)"),
    ("repl-backlog-ttl", "SECS", "free the backlog after this long without replicas (3600)"),
    ("repl-ping-replica-period", "SECS", "PING replicas this often (default 10)"),
    ("repl-ping-slave-period", "SECS", "the older name of repl-ping-replica-period"),
    ("repl-timeout", "SECS", "drop a replica silent this long (default 60)"),
    ("repl-diskless-sync", "yes|no", "accepted: a replica's snapshot is always sent from memory"),
)
#: Directives that take several words (Redis's multi-argument configs).
_MULTI = {"bind", "save", "shutdown-on-sigterm", "shutdown-on-sigint", "client-output-buffer-limit"}


def _dest(name: str) -> str:
    return name.replace("-", "_")


def add_serve_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``serve`` on the ``snapkv`` command's subparsers."""
    serve = subparsers.add_parser(
        "serve",
        help="serve the store over the Redis protocol (redis-cli, redis-py, ...)",
        description=_DESCRIPTION,
        # argparse would print CONFIG last, where a --save or --bind list would take it.
        usage="snapkv serve [CONFIG] [--DIRECTIVE VALUE ...]",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument(
        "config",
        nargs="?",
        metavar="CONFIG",
        help="a redis.conf-style config file (the options override it)",
    )
    # No defaults in argparse: an option not given must leave the file's value.
    for name, metavar, text in OPTIONS:
        names = [f"--{name}", "--host"] if name == "bind" else [f"--{name}"]
        if name == "save":  # each --save adds its pairs, as a save line does
            serve.add_argument(
                *names, dest="save", nargs="+", action="append", metavar=metavar, help=text
            )
        elif name in _MULTI:
            serve.add_argument(*names, dest=_dest(name), nargs="+", metavar=metavar, help=text)
        else:
            serve.add_argument(*names, dest=_dest(name), metavar=metavar, help=text)
    # Not a redis.conf directive: replication to object storage is snapkv's own.
    serve.add_argument(
        "--replicate",
        metavar="URL",
        help="ship the data directory's snapshots and journal to URL (s3://bucket/prefix, "
        "gs://, az://, file://), at most --replicate-interval seconds behind",
    )
    serve.add_argument(
        "--replicate-interval",
        type=float,
        default=1.0,
        metavar="SECS",
        help="how far behind the bucket may be; default 1",
    )
    serve.set_defaults(handler=_serve)


def serve_defaults() -> Config:
    """redis-server 7.0's defaults, as ``snapkv serve`` starts from them."""
    from snapkv.server import DEFAULT_SAVE, Config  # noqa: PLC0415

    return Config(dir=".", appendonly=True, save=list(DEFAULT_SAVE))


def read_serve_config(path: str, config: Config | None = None) -> ConfigReader:
    """Read a redis.conf-style file onto ``config`` (default: :func:`serve_defaults`).

    Returns the reader: ``reader.config`` holds the settings, ``reader.notes``
    one line per Redis directive that was ignored.

    :raises InputError: the file cannot be read, or a line is refused; the
        message is Redis's (``*** FATAL CONFIG FILE ERROR ...``, the line
        number, the line, the reason).
    """
    from snapkv.server.conf import ConfigError, ConfigReader  # noqa: PLC0415

    reader = ConfigReader(config if config is not None else serve_defaults())
    try:
        reader.read(path)
    except ConfigError as exc:
        raise InputError(str(exc)) from None
    reader.finish()
    reader.config.config_file = os.path.abspath(path)
    return reader


def _serve(args: argparse.Namespace) -> int:
    from snapkv.server import serve  # noqa: PLC0415 - the server loads only for serve
    from snapkv.server.conf import ConfigError, ConfigReader  # noqa: PLC0415

    if args.config is not None:
        reader = read_serve_config(args.config)
    else:
        reader = ConfigReader(serve_defaults())
    for name, _metavar, _help in OPTIONS:
        given = getattr(args, _dest(name))
        if given is None:
            continue
        try:
            if name == "save":
                for words in given:
                    reader.directive("save", words)
            else:
                reader.directive(name, given if name in _MULTI else [given])
        except ConfigError as exc:
            raise InputError(f"--{name}: {exc}") from None
    config = reader.config
    # As Redis's dir: "" names no directory (here: a memory-only server).
    # An object-store URL (s3://bucket/prefix) is the medium itself, not a path.
    if config.dir and not is_object_url(config.dir):
        config.dir = os.path.abspath(config.dir)
    config.dir = config.dir or None
    try:
        config.check()
    except ValueError as exc:
        raise InputError(str(exc)) from None
    replicator = _replicator(args, config.dir)
    try:
        serve(config, configure_logging=True, notes=reader.notes)
    except ValueError as exc:  # the settings (a log file that cannot be opened)
        raise InputError(str(exc)) from None
    except OSError as exc:
        raise InputError(f"cannot listen on {config.host} port {config.port}: {exc}") from None
    finally:
        if replicator is not None:
            replicator.close()  # one last upload of what the server wrote before it stopped
    return EXIT_OK


def _replicator(args: argparse.Namespace, directory: str | None) -> Any:
    """``--replicate URL``: the shipper of the data directory (it reads only its files)."""
    if args.replicate is None:
        return None
    if not directory:
        raise InputError("--replicate needs a data directory (--dir)")
    from snapkv.replication import replicate  # noqa: PLC0415 - the cloud extra

    os.makedirs(directory, exist_ok=True)
    try:
        return replicate(directory, args.replicate, interval=args.replicate_interval)
    except (ValueError, ImportError) as exc:
        raise InputError(f"--replicate: {exc}") from None
