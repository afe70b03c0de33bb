"""``snapkv migrate FROM TO``: every key of one side, with its expiry, written to the other.

Each side is a server (:mod:`.migrate_redis`: one server or a cluster) or
a snapkv store (:mod:`.migrate_store`: a directory or a prefix). The run:

1. *Plan*, before anything is written: the source's keyspaces and their
   counts, and where each goes (:func:`plan_keyspaces`). A cluster holds
   database 0 only, so keys in keyspaces 1-15 go to one only through an
   explicit ``--db-map`` (a Valkey 9 cluster with ``cluster-databases``
   takes them 1:1); otherwise the run is refused naming the keyspaces and
   their counts, with nothing written.
2. *Copy*, a page of keys at a time: keys already expired are left out
   (counted); with ``resume`` each page is first fetched from the target
   and the keys already there with the same value and expiry are skipped,
   so a run interrupted at any point continues where it stopped; what the
   target refused is collected as failures.
3. *Verify* (optional, :mod:`.migrate_verify`): the source read again and
   every key (or a sample) compared with the target's decoded value and
   expiry, and the counts per keyspace and type compared.

``dry_run`` does step 1, reads the source through once to count its keys,
types and bytes, checks that the target answers, and writes nothing.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from snapkv.interop.migrate_records import (
    BATCH,
    Failure,
    Record,
    is_server_url,
    same_entry,
    strings_of,
    type_of,
)
from snapkv.interop.migrate_store import StoreSource, StoreTarget
from snapkv.interop.migrate_verify import verify

if TYPE_CHECKING:
    from snapkv.interop.migrate_redis import Server

__all__ = [
    "Options",
    "PlanError",
    "Source",
    "Summary",
    "Target",
    "migrate",
    "open_source",
    "open_target",
    "parse_db_map",
    "plan_keyspaces",
]


#: The most bytes of keys and values sent in one write (see :func:`_parts`).
PAGE_BYTES = 16 << 20


class PlanError(Exception):
    """The migration cannot be planned as asked (a usage problem): nothing was written."""


class Source(Protocol):
    """Where keys are read: pages of records of one keyspace each (a server, a store)."""

    vanished: int  # keys deleted between being listed and being read: skipped, counted

    def describe(self) -> str: ...
    def keyspace_counts(self) -> dict[int, int]: ...
    def read(self) -> Iterator[list[Record]]: ...
    def close(self) -> None: ...


class Target(Protocol):
    """Where keys are written, and read back for ``--resume`` and ``--verify``.

    ``write`` may leave its page in flight and report its failures with a
    later call; ``flush`` settles everything sent.
    """

    def describe(self) -> str: ...
    def write(self, records: list[Record]) -> list[Failure]: ...
    def flush(self) -> list[Failure]: ...
    def fetch(
        self, index: int, keys: list[bytes], strings: frozenset[bytes] = ...
    ) -> list[Record | None]: ...
    def keyspace_counts(self) -> dict[int, int]: ...
    def type_counts(self, index: int, kinds: list[str]) -> dict[str, int]: ...
    def close(self) -> None: ...


@dataclass
class Options:
    """What ``snapkv migrate`` was asked to do."""

    db_map: dict[int, int] | None = None
    dry_run: bool = False
    resume: bool = False
    verify: bool = False
    verify_sample: int | None = None


@dataclass
class Summary:
    """What a run did, for the closing lines and the exit status."""

    plan: dict[int, int] = field(default_factory=dict)  # source keyspace -> target keyspace
    counts: dict[int, int] = field(default_factory=dict)  # keys per source keyspace
    types: Counter[str] = field(default_factory=Counter)
    read: int = 0
    written: int = 0
    identical: int = 0  # skipped by resume: already on the target
    expired: int = 0
    vanished: int = 0
    bytes: int = 0
    seconds: float = 0.0  # the copy's
    verify_seconds: float = 0.0
    failures: list[Failure] = field(default_factory=list)
    verified: int | None = None
    mismatches: list[Failure] = field(default_factory=list)
    count_notes: list[str] = field(default_factory=list)
    #: Keys the target held before the copy, per target keyspace written to (without
    #: ``resume``): a key of the same name there was replaced, which the user should know.
    held_before: dict[int, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures and not self.mismatches


#: ``progress(keys done, bytes done, keys in all)``.
Progress = Callable[[int, int, int], None]


def parse_db_map(text: str) -> dict[int, int]:
    """``"1:0,2:0"`` as ``{1: 0, 2: 0}``.

    :raises PlanError: a pair that is not ``SRC:DST`` with two keyspace numbers.
    """
    mapping: dict[int, int] = {}
    for part in text.split(","):
        src, sep, dst = part.strip().partition(":")
        if not sep or not src.isdigit() or not dst.isdigit():
            raise PlanError(f"--db-map: {part.strip()!r} is not SRC:DST (two keyspace numbers)")
        if int(src) in mapping:
            raise PlanError(f"--db-map: keyspace {src} is mapped twice")
        mapping[int(src)] = int(dst)
    return mapping


def plan_keyspaces(
    counts: dict[int, int],
    db_map: dict[int, int] | None,
    cluster_databases: int | None,
    store_databases: int | None = None,
) -> dict[int, int]:
    """Where each source keyspace goes: ``{source: target}``.

    ``cluster_databases`` is ``None`` when the target is not a cluster, else
    how many keyspaces its nodes hold (1 but on Valkey 9 with
    ``cluster-databases``); ``store_databases`` how many keyspaces a store
    target has (``None``: not a store). A keyspace a ``db_map`` does not
    name keeps its number.

    :raises PlanError: a cluster or a store would be sent keys of a keyspace
        it does not have; the message names them and how many keys each holds.
    """
    plan = {db: (db_map or {}).get(db, db) for db in counts}
    if store_databases is not None:
        beyond = {db: n for db, n in counts.items() if plan[db] >= store_databases}
        if beyond:
            listed = ", ".join(f"db{db} ({n:,} keys) -> {plan[db]}" for db, n in beyond.items())
            raise PlanError(
                f"the target store has keyspaces 0 to {store_databases - 1}, and the source "
                f"has keys for others: {listed}; choose where they go with --db-map SRC:DST"
            )
    if cluster_databases is not None:
        refused = {db: n for db, n in counts.items() if plan[db] >= cluster_databases}
        if refused:
            listed = ", ".join(f"db{db} ({n:,} keys)" for db, n in refused.items())
            if db_map is None:
                raise PlanError(
                    f"the source has keys in keyspaces a cluster does not have: {listed}; "
                    "a Redis Cluster holds database 0 only: choose where they go with "
                    "--db-map SRC:DST[,...] (for instance --db-map "
                    + ",".join(f"{db}:0" for db in refused)
                    + ")"
                )
            raise PlanError(
                f"--db-map sends keyspaces to databases the cluster does not have: {listed} "
                f"(its nodes hold {cluster_databases})"
            )
    return plan


def open_source(location: str, *, cluster: bool, batch: int = BATCH) -> Source:
    """The source at ``location``: a server URL, else a snapkv store.

    :raises PlanError: a cluster node named without ``cluster``.
    """
    if is_server_url(location):
        return _server(location, cluster, "--from-cluster")
    return StoreSource(location, batch)


def open_target(location: str, *, cluster: bool) -> Target:
    """The target at ``location`` (a store is opened, and created if missing).

    :raises PlanError: a cluster node named without ``cluster``.
    """
    if is_server_url(location):
        return _server(location, cluster, "--cluster")
    return StoreTarget(location)


def _server(location: str, cluster: bool, option: str) -> Server:
    """A server side: redis-py is needed only for one (the ``redis`` package)."""
    try:
        # Imported here, not at the top: redis-py is optional, needed only for a server.
        from snapkv.interop.migrate_redis import Server  # noqa: PLC0415
    except ImportError as exc:
        raise PlanError(
            f"{location}: a server needs redis-py: pip install 'snapkv[migrate]' ({exc})"
        ) from None
    server = Server(location, cluster=cluster)
    if not cluster and server.cluster_enabled():
        server.close()
        raise PlanError(f"{server.describe()} is a cluster node: add {option}")
    return server


def _now_ms() -> int:
    return int(time.time() * 1000)


def _remap(page: list[Record], plan: dict[int, int]) -> list[Record]:
    to = plan[page[0].db]
    if to != page[0].db:
        for record in page:
            record.db = to
    return page


def migrate(
    source: Source,
    target: Target | None,
    options: Options,
    *,
    cluster_databases: int | None = None,
    progress: Progress | None = None,
) -> Summary:
    """Run a migration (see the module docstring); ``target`` is ``None`` for a dry run
    (as is ``options.dry_run``: the target is then not written, nor read).

    :raises PlanError: the keyspaces cannot go where asked; nothing written.
    """
    started = time.monotonic()
    summary = Summary()
    if options.dry_run:
        target = None
    summary.counts = source.keyspace_counts()
    store_databases = target.databases if isinstance(target, StoreTarget) else None
    summary.plan = plan_keyspaces(
        summary.counts, options.db_map, cluster_databases, store_databases
    )
    total = sum(summary.counts.values())
    if target is not None and not options.resume:
        summary.held_before = _held(target, set(summary.plan.values()))
    merged = _Merged(summary.plan)
    collisions: list[Failure] = []  # never written, so not taken off ``written`` below
    for page in source.read():
        summary.read += len(page)
        now = _now_ms()
        live = [r for r in page if r.expire_at is None or r.expire_at > now]
        summary.expired += len(page) - len(live)
        if live and merged.watched(live[0].db):
            live = merged.first_of_each(live, collisions)
        live = _remap(live, summary.plan) if live else live
        if target is None:
            for record in live:
                summary.types[_type_or_unknown(record)] += 1
                summary.bytes += record.size()
        elif live:
            if options.resume:
                there = target.fetch(live[0].db, [r.key for r in live], strings_of(live))
                fresh = [r for r, t in zip(live, there, strict=True) if not _same(r, t)]
                summary.identical += len(live) - len(fresh)
                live = fresh
            for part, size in _parts(live):
                summary.failures += target.write(part)
                summary.bytes += size
            summary.written += len(live)
        if progress is not None:
            progress(summary.read, summary.bytes, total)
    if target is not None:
        summary.failures += target.flush()
    summary.written -= len(summary.failures)
    summary.failures += collisions
    summary.vanished = source.vanished
    summary.seconds = time.monotonic() - started
    if target is not None and (options.verify or options.verify_sample):
        started = time.monotonic()
        verify(source, target, summary, options.verify_sample)
        summary.verify_seconds = time.monotonic() - started
    return summary


def _held(target: Target, written_to: set[int]) -> dict[int, int]:
    """Keys the target holds in the keyspaces the copy writes to; ``{}`` when it cannot say
    (a user without INFO, which is @dangerous): a note, never a reason to stop."""
    try:
        counts = target.keyspace_counts()
    except Exception:  # redis-py's errors are optional here; the copy reports its own
        return {}
    return {db: n for db, n in counts.items() if db in written_to and n}


class _Merged:
    """Keyspaces a ``--db-map`` sends into one database: a key name both hold would have the
    later one's value silently replace the first's. The first one read is kept; each later
    one is a failure naming both keyspaces (so the run exits 1 and the user decides).

    Costs a set of the key names of those keyspaces only; none without such a map.
    """

    def __init__(self, plan: dict[int, int]) -> None:
        sources: dict[int, list[int]] = {}
        for db, to in plan.items():
            sources.setdefault(to, []).append(db)
        self._into = {db: to for db, to in plan.items() if len(sources[to]) > 1}
        self._seen: dict[int, dict[bytes, int]] = {to: {} for to in set(self._into.values())}

    def watched(self, db: int) -> bool:
        return db in self._into

    def first_of_each(self, page: list[Record], failures: list[Failure]) -> list[Record]:
        """The records of ``page`` (one source keyspace) whose name no other keyspace sent
        into the same database before; a failure for each of the others."""
        db = page[0].db
        to = self._into[db]
        seen = self._seen[to]
        kept = []
        for record in page:
            first = seen.setdefault(record.key, db)
            if first == db:
                kept.append(record)
                continue
            failures.append(
                (
                    db,
                    record.key,
                    f"not written: keyspaces {first} and {db} both go to {to} (--db-map) "
                    f"and both hold this key; keyspace {first}'s was kept",
                )
            )
        return kept


def _parts(page: list[Record]) -> Iterator[tuple[list[Record], int]]:
    """``page`` in runs of at most :data:`PAGE_BYTES` (a run has at least one record),
    each with its size.

    A page is 1,000 keys; 1,000 large hashes would be one write of
    gigabytes, held in memory here and in the server's query buffer.
    """
    start, size = 0, 0
    for i, record in enumerate(page):
        more = record.size()
        if size + more > PAGE_BYTES and i > start:
            yield page[start:i], size
            start, size = i, 0
        size += more
    yield page[start:], size


def _same(record: Record, there: Record | None) -> bool:
    try:
        return same_entry(record, there)
    except (ValueError, TypeError):
        return False  # cannot compare: write it again, RESTORE REPLACE is idempotent


def _type_or_unknown(record: Record) -> str:
    try:
        return type_of(record.decoded())
    except (ValueError, TypeError):
        return "other"
