"""``--verify`` and ``--verify-sample N``: did every key arrive, with its value and expiry?

The source is read again and each key (or ``N`` of them, drawn uniformly
by reservoir sampling over the whole read, so the sample does not favour
the first keyspace) is fetched from the target and compared by decoded
value and expiry (:func:`~snapkv.interop.migrate_records.same_entry`):
comparing DUMP payloads would report every small hash as different,
because Redis and snapkv encode it differently. A key that expired since
it was copied is not a difference.

The counts are compared too, per target keyspace and per type: a target
with fewer keys than the source sent it lost some; one with more held keys
of its own before, which is said but is not a failure.
"""

from __future__ import annotations

import random
import time
from collections import Counter, defaultdict
from typing import TYPE_CHECKING

from snapkv.interop.migrate_records import (
    Record,
    same_entry,
    same_expiry,
    strings_of,
    type_of,
)

if TYPE_CHECKING:
    from snapkv.interop.migrate import Source, Summary, Target

__all__ = ["verify"]


def _live(record: Record, now: int) -> bool:
    return record.expire_at is None or record.expire_at > now


def verify(source: Source, target: Target, summary: Summary, sample: int | None) -> None:
    """Compare the target with the source; fill ``summary``'s verification fields."""
    expected: dict[int, Counter[str]] = defaultdict(Counter)
    chosen: list[Record] = []
    seen = 0
    rng = random.Random()
    for read in source.read():
        now = int(time.time() * 1000)
        page = [r for r in read if _live(r, now)]
        for record in page:
            record.db = summary.plan.get(record.db, record.db)
            expected[record.db][_kind(record)] += 1
        if sample is None:
            _compare(target, page, summary)
            continue
        for record in page:  # reservoir sampling (Algorithm R)
            seen += 1
            if len(chosen) < sample:
                chosen.append(record)
            else:
                slot = rng.randrange(seen)
                if slot < sample:
                    chosen[slot] = record
    if sample is not None:
        by_db: dict[int, list[Record]] = defaultdict(list)
        for record in chosen:
            by_db[record.db].append(record)
        for records in by_db.values():
            for start in range(0, len(records), 1000):
                _compare(target, records[start : start + 1000], summary)
    _compare_counts(target, expected, summary)


def _kind(record: Record) -> str:
    try:
        return type_of(record.decoded())
    except (ValueError, TypeError):
        return "other"


def _compare(target: Target, page: list[Record], summary: Summary) -> None:
    if not page:
        return
    there = target.fetch(page[0].db, [r.key for r in page], strings_of(page))
    now = int(time.time() * 1000)
    for record, found in zip(page, there, strict=True):
        summary.verified = (summary.verified or 0) + 1
        if found is None:
            if _live(record, now):
                summary.mismatches.append((record.db, record.key, "missing on the target"))
            continue
        try:
            same = same_entry(record, found)
        except (ValueError, TypeError) as exc:
            summary.mismatches.append((record.db, record.key, f"cannot compare: {exc}"))
            continue
        if not same:
            why = "value differs"
            if not same_expiry(record.expire_at, found.expire_at):
                why = f"expiry differs: {record.expire_at} (source), {found.expire_at} (target)"
            summary.mismatches.append((record.db, record.key, why))


def _compare_counts(target: Target, expected: dict[int, Counter[str]], summary: Summary) -> None:
    held = target.keyspace_counts()
    for db in sorted(expected):
        want = sum(expected[db].values())
        have = held.get(db, 0)
        if have < want:
            summary.mismatches.append(
                (db, b"", f"keyspace {db}: the source has {want:,} keys, the target {have:,}")
            )
            continue
        if have > want:
            summary.count_notes.append(
                f"keyspace {db}: the target holds {have - want:,} keys the source does not"
            )
        types = target.type_counts(db, sorted(kind for kind in expected[db] if kind != "other"))
        for kind, n in sorted(expected[db].items()):
            if kind != "other" and types.get(kind, 0) < n:
                summary.mismatches.append(
                    (
                        db,
                        b"",
                        f"keyspace {db}: {n:,} {kind} keys sent, {types.get(kind, 0):,} there",
                    )
                )
