"""``snapkv migrate FROM TO``: one command from a store or a server to another.

The migration itself is :mod:`snapkv.interop.migrate`.
What the command adds to the migration itself: the options, progress on
a terminal (keys/s, bytes, ETA; nothing when standard error is not a
terminal, so logs and pipes stay clean), the closing summary, and the exit
status: 0 when everything arrived (and verified, if asked), 1 when a key
did not arrive or differs (the first 20 are listed, then how many in all),
or a server could not be reached, 2 for a usage problem (bad options, a
cluster sent keyspaces it does not have), with nothing written.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from snapkv.cli_common import EXIT_DATA, EXIT_OK, EXIT_USAGE
from snapkv.errors import SnapkvError
from snapkv.interop.migrate import (
    Options,
    PlanError,
    Summary,
    migrate,
    open_source,
    open_target,
    parse_db_map,
)
from snapkv.interop.migrate_records import Failure, is_server_url
from snapkv.rdb.file import RDBFileError

__all__ = ["add_migrate_command"]

#: Failed keys listed before "and N more".
SHOWN = 20


def add_migrate_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``migrate`` on the ``snapkv`` command's subparsers."""
    parser = subparsers.add_parser(
        "migrate",
        help="copy every key, with its expiry, between stores and Redis or Valkey servers",
        description=(
            "Copy every key of every keyspace, with its expiry, from FROM to TO. Each is a "
            "snapkv store (a directory, an s3:// gs:// az:// file:// or memory:// prefix, or "
            "an .rdb file as FROM) or a server URL (redis://host:port, rediss://...). Into a "
            "server the keys go as pipelined RESTORE ... ABSTTL REPLACE (the typed commands "
            "where RESTORE is refused); from a server they are read with SCAN, DUMP and PTTL."
        ),
    )
    parser.add_argument("source", metavar="FROM", help="where the keys are")
    parser.add_argument("target", metavar="TO", help="where they go")
    parser.add_argument(
        "--cluster", action="store_true", help="TO is a Redis or Valkey cluster (any node's URL)"
    )
    parser.add_argument(
        "--from-cluster", action="store_true", help="FROM is a Redis or Valkey cluster"
    )
    parser.add_argument(
        "--db-map",
        metavar="SRC:DST[,...]",
        help="send keyspace SRC to database DST (required for keyspaces 1-15 into a cluster, "
        "which has database 0 only); keyspaces sent into one database never overwrite each "
        "other: a name in both keeps the first one read, and the other is listed as not written",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="read FROM and say what would be done; write nothing",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="skip the keys TO already holds with the same value and expiry (after an "
        "interrupted run)",
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="afterwards, compare every key's value and expiry, and the counts per keyspace "
        "and type",
    )
    parser.add_argument(
        "--verify-sample", type=int, metavar="N", help="as --verify, for N keys drawn at random"
    )
    parser.set_defaults(handler=_migrate)


class _Meter:
    """Progress on standard error when it is a terminal: keys/s, bytes, ETA."""

    def __init__(self) -> None:
        self.live = sys.stderr.isatty()
        self.started = time.monotonic()
        self.shown = 0.0

    def __call__(self, done: int, size: int, total: int) -> None:
        now = time.monotonic()
        if not self.live or now - self.shown < 0.25:
            return
        self.shown = now
        rate = done / max(now - self.started, 1e-6)
        eta = f", ETA {(total - done) / rate:,.0f} s" if total > done and rate else ""
        sys.stderr.write(f"\r{done:,}/{total:,} keys, {rate:,.0f} keys/s, {_size(size)}{eta}   ")
        sys.stderr.flush()

    def end(self) -> None:
        if self.live and self.shown:
            sys.stderr.write("\n")


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _keyname(key: bytes) -> str:
    return repr(key)[2:-1]


def _listed(title: str, failures: list[Failure]) -> None:
    print(f"{title}: {len(failures):,}")
    for db, key, why in failures[:SHOWN]:
        print(f"  db{db} {_keyname(key)}: {why}" if key else f"  {why}")
    if len(failures) > SHOWN:
        print(f"  ... and {len(failures) - SHOWN:,} more")


def _migrate(args: argparse.Namespace) -> int:
    try:
        options = Options(
            db_map=parse_db_map(args.db_map) if args.db_map else None,
            dry_run=args.dry_run,
            resume=args.resume,
            verify=args.verify,
            verify_sample=args.verify_sample,
        )
        if args.verify_sample is not None and args.verify_sample < 1:
            raise PlanError("--verify-sample takes a positive number of keys")
    except PlanError as exc:
        print(f"snapkv migrate: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.cluster and not is_server_url(args.target):
        print("snapkv migrate: error: --cluster needs a server URL as TO", file=sys.stderr)
        return EXIT_USAGE
    if _same_place(args.source, args.target):
        print(
            f"snapkv migrate: error: FROM and TO are the same store ({args.target}); "
            "nothing was written",
            file=sys.stderr,
        )
        return EXIT_USAGE
    meter = _Meter()
    source: Any = None
    target: Any = None
    try:
        source = open_source(args.source, cluster=args.from_cluster)
        if args.dry_run:
            # A server target is asked what it is (a cluster, its databases); a store is
            # not opened, which would create it.
            server = is_server_url(args.target)
            if server:
                target = open_target(args.target, cluster=args.cluster)
            words = target.describe() if target else f"snapkv store {args.target}"
            databases = _cluster_databases(target, args.cluster)
            summary = migrate(source, None, options, cluster_databases=databases)
            _print_plan(source.describe(), words, summary, server=server)
            return EXIT_OK
        target = open_target(args.target, cluster=args.cluster)
        databases = _cluster_databases(target if is_server_url(args.target) else None, args.cluster)
        summary = migrate(source, target, options, cluster_databases=databases, progress=meter)
        words = target.describe()
    except PlanError as exc:
        print(f"snapkv migrate: error: {exc}; nothing was written", file=sys.stderr)
        return EXIT_USAGE
    except RDBFileError as exc:  # only FROM is ever read as an RDB file
        meter.end()
        print(f"snapkv migrate: error: {args.source}: {exc}", file=sys.stderr)
        return EXIT_DATA
    except _errors() as exc:
        # A server that does not answer or refuses us, a store that cannot be opened.
        meter.end()
        print(f"snapkv migrate: error: {exc}", file=sys.stderr)
        return EXIT_DATA
    finally:
        for side in (source, target):
            if side is not None:
                side.close()
    meter.end()
    _print_summary(words, summary)
    return EXIT_OK if summary.ok else EXIT_DATA


def _same_place(source: str, target: str) -> bool:
    """Whether FROM and TO name one store (two spellings of a directory alike): copying a
    store onto itself would rewrite every key with itself, or duplicate it with --db-map."""
    if is_server_url(source) or is_server_url(target) or "://" in source or "://" in target:
        return source.rstrip("/") == target.rstrip("/")
    return os.path.realpath(source) == os.path.realpath(target)


def _errors() -> tuple[type[Exception], ...]:
    """What ends a run with status 1: a store that cannot be opened, a server that does not
    answer or refuses us (redis-py's errors, when it is installed: only a server needs it)."""
    try:
        from redis.exceptions import RedisError  # noqa: PLC0415 - optional dependency
    except ImportError:
        return (SnapkvError, OSError)
    return (RedisError, SnapkvError, OSError)


def _cluster_databases(server: Any, cluster: bool) -> int | None:
    if server is None or not cluster:
        return None
    databases: int = server.cluster_databases()
    return databases


def _print_plan(source: str, target: str, summary: Summary, *, server: bool) -> None:
    print(f"dry run: nothing written. From {source} to {target}:")
    for db, n in summary.counts.items():
        print(f"  keyspace {db} -> {summary.plan[db]}: {n:,} keys")
    kinds = ", ".join(f"{n:,} {kind}" for kind, n in sorted(summary.types.items()))
    keys = summary.read - summary.expired
    print(f"would write {keys:,} keys ({kinds}), {summary.bytes:,} bytes of payloads")
    if summary.expired:
        print(f"would leave out {summary.expired:,} keys already expired")
    if server:
        print(
            "each key with RESTORE key at payload ABSTTL REPLACE (a string read from a store: "
            "SET key value PXAT at), 1,000 keys a round trip (on a cluster, per slot's node); "
            "the typed commands (HSET, RPUSH, ...) where RESTORE is refused"
        )
    else:
        print("each key as one journal record of the store (its value and expiry time)")


def _print_summary(target: str, summary: Summary) -> None:
    rate = summary.written / summary.seconds if summary.seconds else 0.0
    print(
        f"migrated {summary.written:,} keys into {target} in {summary.seconds:.1f} s "
        f"({rate:,.0f} keys/s, {_size(summary.bytes)})"
    )
    for db, n in summary.counts.items():
        print(f"  keyspace {db} -> {summary.plan[db]}: {n:,} keys")
    if summary.held_before:
        held = ", ".join(f"db{db}: {n:,}" for db, n in sorted(summary.held_before.items()))
        print(
            f"note: the target held keys before the copy ({held}); any of the same name as "
            "a source key was replaced"
        )
    if summary.identical:
        print(f"skipped {summary.identical:,} keys already there, identical (--resume)")
    if summary.expired:
        print(f"left out {summary.expired:,} keys that had expired")
    if summary.vanished:
        print(f"skipped {summary.vanished:,} keys deleted on the source while it was read")
    if summary.failures:
        _listed("keys that did not arrive", summary.failures)
    if summary.verified is not None:
        if summary.mismatches:
            _listed(f"verify: {summary.verified:,} keys compared; differences", summary.mismatches)
        else:
            print(
                f"verify: {summary.verified:,} keys compared, all identical; counts match "
                f"({summary.verify_seconds:.1f} s)"
            )
        for note in summary.count_notes:
            print(f"verify: {note}")
