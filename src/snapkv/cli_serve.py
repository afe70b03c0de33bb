"""``snapkv serve``: its options, its config file (redis.conf's syntax) and its start.

The options and the config file name the same settings (``SERVE_DEFAULTS``);
an option given on the command line overrides the file, and the defaults
apply only to what neither gives.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from snapkv.cli_common import EXIT_OK, InputError

__all__ = ["SERVE_DEFAULTS", "add_serve_command", "read_serve_config"]


def add_serve_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``serve`` on the ``snapkv`` command's subparsers."""
    serve = subparsers.add_parser(
        "serve",
        help="serve the store over the Redis protocol (redis-cli, redis-py, ...)",
        description="Serve a store over RESP2/RESP3 until SHUTDOWN, SIGTERM or SIGINT, "
        "each of which snapshots first (SHUTDOWN NOSAVE does not).",
    )
    # Defaults live in SERVE_DEFAULTS, not in argparse: an option given on the
    # command line must override the config file, and one not given must not.
    serve.add_argument(
        "config",
        nargs="?",
        metavar="CONFIG",
        help="a config file of 'directive value' lines, as redis.conf (options override it)",
    )
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="default 6379")
    serve.add_argument("--dir", metavar="DATA", help="data directory (default: in memory only)")
    serve.add_argument("--requirepass", metavar="PASS", help="password clients must AUTH with")
    serve.add_argument(
        "--appendonly", choices=("yes", "no"), help="journal every write in DATA (default yes)"
    )
    serve.add_argument(
        "--appendfsync", choices=("always", "everysec", "no"), help="default everysec"
    )
    serve.add_argument(
        "--save",
        metavar='"SECS CHANGES ..."',
        help='snapshot rules, as Redis\'s save: "900 1 300 10"',
    )
    serve.add_argument("--databases", type=int, help="default 16")
    serve.add_argument("--maxclients", type=int, help="default 10000")
    serve.add_argument("--timeout", type=int, help="close idle clients after SECS (default 0)")
    serve.set_defaults(handler=_serve)


#: ``snapkv serve`` settings: name -> (default, converter). Redis's ``bind``
#: is accepted as an alias of ``host`` in a config file.
SERVE_DEFAULTS: dict[str, tuple[object, Any]] = {
    "host": ("127.0.0.1", str),
    "port": (6379, int),
    "dir": (None, str),
    "requirepass": (None, str),
    "appendonly": ("yes", str),
    "appendfsync": ("everysec", str),
    "save": ("", str),
    "databases": (16, int),
    "maxclients": (10000, int),
    "timeout": (0, int),
}
_CHOICES = {"appendonly": ("yes", "no"), "appendfsync": ("always", "everysec", "no")}


def read_serve_config(path: str) -> dict[str, object]:
    """Settings from a redis.conf-style file: ``directive value`` lines, ``#`` comments.

    A directive given twice keeps the last value, except ``save``, whose
    lines add up (as in Redis). Unknown directives are refused with the line
    number: a misspelt ``requirepass`` must not start an open server.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read config file: {exc}") from None
    settings: dict[str, object] = {}
    saves: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split("#", 1)[0].split(maxsplit=1)
        if not words:
            continue
        name = {"bind": "host"}.get(words[0].lower(), words[0].lower())
        value = words[1].strip().strip('"') if len(words) > 1 else ""
        if name not in SERVE_DEFAULTS:
            raise InputError(f"{path}:{number}: unknown directive {words[0]!r}")
        if name == "save":
            saves.append(value)
            continue
        if name in _CHOICES and value not in _CHOICES[name]:
            choices = ", ".join(_CHOICES[name])
            raise InputError(f"{path}:{number}: {name} must be one of {choices}, not {value!r}")
        try:
            settings[name] = SERVE_DEFAULTS[name][1](value)
        except ValueError:
            raise InputError(f"{path}:{number}: {name} needs a number, not {value!r}") from None
    if saves:
        settings["save"] = " ".join(saves)
    return settings


def _serve(args: argparse.Namespace) -> int:
    import logging  # noqa: PLC0415 - the server and its extras load only for serve

    from snapkv.server import Config, parse_save, serve  # noqa: PLC0415

    settings = {name: default for name, (default, _) in SERVE_DEFAULTS.items()}
    if args.config is not None:
        settings.update(read_serve_config(args.config))
    settings.update(
        {name: value for name in SERVE_DEFAULTS if (value := getattr(args, name)) is not None}
    )
    directory = settings["dir"]
    try:
        config = Config(
            host=str(settings["host"]),
            port=int(settings["port"]),  # type: ignore[call-overload]
            dir=directory,  # type: ignore[arg-type]
            requirepass=settings["requirepass"],  # type: ignore[arg-type]
            appendonly=settings["appendonly"] == "yes" and directory is not None,
            appendfsync=str(settings["appendfsync"]),
            save=parse_save(str(settings["save"])),
            databases=int(settings["databases"]),  # type: ignore[call-overload]
            maxclients=int(settings["maxclients"]),  # type: ignore[call-overload]
            timeout=int(settings["timeout"]),  # type: ignore[call-overload]
        )
    except ValueError as exc:
        raise InputError(f"save: {exc}") from None
    args.host, args.port, args.dir = config.host, config.port, directory
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        serve(config, directory=args.dir)
    except OSError as exc:
        raise InputError(f"cannot listen on {args.host}:{args.port}: {exc}") from None
    return EXIT_OK
