"""``snapkv export SOURCE --rdb FILE`` and ``snapkv import FILE --dir DIR`` (or ``--to URL``).

The way to and from Redis and Valkey through their own file format:
:mod:`snapkv.interop.rdb_export` writes what ``open()`` would load from a
store (a directory, a running server's ``--dir``, an object storage
prefix) as an RDB file of version 9; :mod:`snapkv.interop.rdb_import`
makes a new store from an RDB file of Redis 2.x to 7.4 or Valkey. Both
print what they did in one line (the import adds one line per key it
skipped), and both leave the target untouched when they fail.
"""

from __future__ import annotations

import argparse
import sys

from snapkv.cli_common import EXIT_DATA, EXIT_OK, InputError
from snapkv.rdb.file import RDBFileError

__all__ = ["add_export_command", "add_import_command"]


def add_export_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``export`` on the ``snapkv`` command's subparsers."""
    parser = subparsers.add_parser(
        "export",
        help="write a store as an RDB file that Redis (5.0 and later) and Valkey load",
        description=(
            "Write every keyspace, type and expiry of SOURCE (a store directory, a running "
            "server's --dir, or s3://bucket/prefix and the like) to FILE as an RDB file of "
            "version 9. The state written is what opening SOURCE would load now; keys already "
            "expired are left out. FILE is replaced atomically."
        ),
    )
    parser.add_argument("source", help="a store directory or an object storage URL")
    parser.add_argument("--rdb", required=True, metavar="FILE", help="the RDB file to write")
    parser.set_defaults(handler=_export)


def add_import_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``import`` on the ``snapkv`` command's subparsers."""
    parser = subparsers.add_parser(
        "import",
        help="make a new store from an RDB file written by Redis or Valkey",
        description=(
            "Read FILE (RDB versions 1 to 12: Redis 2.x to 7.4; Valkey's) and write its keys "
            "as a new store in DIR (new or empty) or at URL. Keys already expired are dropped "
            "and counted. A module value, a stream with consumer groups or a function library "
            "stops the import with its name, unless --skip-unsupported, which lists each one "
            "skipped. Nothing is written unless the whole file reads back and its checksum holds."
        ),
    )
    parser.add_argument("file", help="the RDB file (dump.rdb)")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--dir", metavar="DIR", help="the store directory to create")
    target.add_argument("--to", metavar="URL", help="an object storage prefix to create")
    parser.add_argument(
        "--skip-unsupported",
        action="store_true",
        help="skip (and list) what snapkv cannot hold instead of refusing the file",
    )
    parser.set_defaults(handler=_import)


def _export(args: argparse.Namespace) -> int:
    from snapkv.interop.rdb_export import export_rdb  # noqa: PLC0415 - only this command's

    try:
        report = export_rdb(args.source, args.rdb)
    except OSError as exc:
        raise InputError(f"cannot write {args.rdb}: {exc}") from None
    except RDBFileError as exc:  # the source itself is an RDB file, and a malformed one
        print(f"snapkv export: error: {args.source}: {exc}", file=sys.stderr)
        return EXIT_DATA
    print(report.summary())
    return EXIT_OK


def _import(args: argparse.Namespace) -> int:
    from snapkv.interop.rdb_import import TargetNotEmptyError, import_rdb  # noqa: PLC0415

    try:
        report = import_rdb(
            args.file, directory=args.dir, url=args.to, skip_unsupported=args.skip_unsupported
        )
    except TargetNotEmptyError as exc:
        raise InputError(str(exc)) from None
    except OSError as exc:  # not found, a directory, not readable
        if exc.filename != args.file:
            raise  # not the file's: the command's general handling says it
        raise InputError(f"cannot read {args.file}: {exc.strerror}") from None
    except RDBFileError as exc:
        print(f"snapkv import: error: {args.file}: {exc}", file=sys.stderr)
        return EXIT_DATA
    print(report.summary())
    return EXIT_OK
