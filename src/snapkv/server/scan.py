"""The SCAN family's cursor walk: SCAN over a keyspace, HSCAN/SSCAN/ZSCAN over one container.

A walk is a snapshot of the names it visits (keys, or a container's fields
or members), taken when the cursor is 0 (8 bytes a name, held by the
server until the walk ends or newer walks push it out) and paged by the
cursor. The cursor encodes the position and the walk (a number never given
to another walk until 2**32 - 1 more have started), so any connection can
continue a walk, and a stale cursor never continues another walk's
snapshot. A name present for the whole walk is returned exactly once; one
removed before its turn is not returned (Redis guarantees the first, and
may repeat names). A walk whose snapshot was pushed out starts again from
the beginning of a fresh one: it then repeats names but still misses none,
as Redis's guarantee requires.

Why a snapshot rather than Redis's reverse-binary cursor over hash buckets:
Python's dicts and sets expose no buckets, and a stateless order (sorting
by a hash of each name at every call) costs O(N log N) per call, so a walk
of a million-member set would take hours. Here a call costs O(COUNT), and
starting a walk copies the names once, O(N) at C speed, like KEYS.

Bounds (the server is one thread; each call must end quickly): one call
looks at no more than ``SCAN_MAX_COUNT`` names whatever its COUNT (COUNT is
a hint in Redis too, whose call visits at most ten times COUNT buckets);
snapshots are kept for at most ``SCAN_SLOTS`` walks and hold at most
``SCAN_HELD_PER_KEY`` entries per live key of the server or per name of
the newest walk, whichever is more (plus ``SCAN_HELD_MIN``), so a client
that starts walk after walk cannot make the server hold a copy of the
keyspace per call. The walk pushed out is the one continued least recently,
and a walk continued in the last ``SCAN_ACTIVE_SECONDS`` is pushed out only
past ``SCAN_HARD_FACTOR`` times that budget: clients that keep walking big
containers side by side (each walk a snapshot of its own) do not push one
another back to the start for ever, as a plain least-recent rule would.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING

from snapkv.server.table import ERR_SYNTAX, CommandError, parse_int

if TYPE_CHECKING:
    from snapkv.server.client import Client

__all__ = [
    "EMPTY_SCAN",
    "SCAN_ACTIVE_SECONDS",
    "SCAN_HARD_FACTOR",
    "SCAN_HELD_MIN",
    "SCAN_HELD_PER_KEY",
    "SCAN_MAX_COUNT",
    "SCAN_SLOTS",
    "Walk",
    "page",
    "parse_cursor",
    "parse_options",
]

#: Walks the server keeps snapshots for; the oldest is dropped beyond this.
SCAN_SLOTS = 1024
#: Names one call looks at, at most, whatever its COUNT.
SCAN_MAX_COUNT = 10_000
#: Snapshot entries kept for all walks together: this many per live key (or
#: per name of the newest walk, if more), plus SCAN_HELD_MIN.
SCAN_HELD_PER_KEY = 4
SCAN_HELD_MIN = 1 << 20
#: A walk continued this recently is kept past the budget (up to SCAN_HARD_FACTOR times it).
SCAN_ACTIVE_SECONDS = 10.0
SCAN_HARD_FACTOR = 4
#: SCAN's reply for a missing key: cursor 0, nothing.
EMPTY_SCAN = b"*2\r\n$1\r\n0\r\n*0\r\n"
#: Low bits of a cursor: the walk's number; the high bits are its position.
_WALK_BITS = 32

#: What a walk visits (a keyspace number; (keyspace, type, key) for a
#: container), the snapshot of its names, and when it was last continued.
Walk = tuple[Hashable, list[str], float]


def parse_cursor(text: str) -> int:
    """Redis's ``parseScanCursorOrReply`` (``strtoul``): unsigned 64-bit, ``-1`` wraps, "" is 0.

    ``strtoul`` reads a C string: a NUL ends the cursor (``"0\\0x"`` is 0).
    """
    text = text.partition("\0")[0]
    if not text:
        return 0
    if text.isascii() and re.fullmatch(r"[+-]?[0-9]+", text):
        digits = text.lstrip("+-").lstrip("0")
        if len(digits) <= 20:  # int() of a longer string would be slow, and is out of range
            value = int(text)
            if -(2**64) < value < 2**64:
                return value % 2**64
    raise CommandError("ERR invalid cursor")


def parse_options(argv: list[str], start: int, *, with_type: bool) -> tuple[int, str, str | None]:
    """``[MATCH pattern] [COUNT count] [TYPE type]`` from ``argv[start:]``: (count, pattern, type).

    As Redis's ``scanGenericCommand``: options in any order, the last one
    wins, COUNT below 1 or a missing value is a syntax error; TYPE only for
    SCAN (``with_type``).
    """
    count, pattern, kind = 10, "*", None
    for i in range(start, len(argv), 2):
        option = argv[i].lower()
        if i + 1 >= len(argv):
            raise CommandError(ERR_SYNTAX)
        if option == "count":
            count = parse_int(argv[i + 1])
            if count < 1:
                raise CommandError(ERR_SYNTAX)
        elif option == "match":
            pattern = argv[i + 1]
        elif option == "type" and with_type:
            kind = argv[i + 1].lower()
        else:
            raise CommandError(ERR_SYNTAX)
    return count, pattern, kind


def page(
    client: Client, owner: Hashable, cursor: int, count: int, names: Callable[[], list[str]]
) -> tuple[list[str], int]:
    """The next names of the walk ``cursor`` continues over ``owner``: (names, next cursor).

    ``names()`` is called to snapshot a new walk (cursor 0, or a walk whose
    snapshot is gone or belongs to something else). The names returned
    may since have left the container: the caller keeps the live ones.
    """
    count = min(count, SCAN_MAX_COUNT)
    server = client.server
    scans = server.scans
    number, offset = cursor & ((1 << _WALK_BITS) - 1), cursor >> _WALK_BITS
    walk = scans.get(number) if cursor else None
    now = time.monotonic()
    if walk is None or walk[0] != owner:
        # A new walk, or one whose snapshot is gone: from the start of a fresh one.
        server.scan_walks = server.scan_walks % ((1 << _WALK_BITS) - 1) + 1
        number = server.scan_walks
        walk = (owner, names(), now)
        live = max(sum(map(len, server.keyspaces)), len(walk[1]))
        _keep(scans, number, walk, live, now)
        offset = 0
    else:
        del scans[number]  # the most recently continued walk goes last
        walk = scans[number] = (walk[0], walk[1], now)
    snapshot = walk[1]
    batch = snapshot[offset : offset + count]
    offset += count
    if offset >= len(snapshot):
        scans.pop(number, None)
        return batch, 0
    return batch, (offset << _WALK_BITS) | number


def _keep(scans: dict[int, Walk], number: int, walk: Walk, live: int, now: float) -> None:
    """Keep ``walk``'s snapshot; push out the least recently continued others over the budgets.

    A walk continued within ``SCAN_ACTIVE_SECONDS`` is pushed out only past
    ``SCAN_HARD_FACTOR`` times the entry budget (see the module docstring).
    """
    scans.pop(number, None)
    scans[number] = walk  # the newest: the last to go
    budget = SCAN_HELD_PER_KEY * live + SCAN_HELD_MIN
    held = sum(len(names) for _, names, _ in scans.values())
    while len(scans) > 1 and (len(scans) > SCAN_SLOTS or held > budget):
        oldest = next(iter(scans))
        active = now - scans[oldest][2] < SCAN_ACTIVE_SECONDS
        if active and len(scans) <= SCAN_SLOTS and held <= SCAN_HARD_FACTOR * budget:
            break
        held -= len(scans.pop(oldest)[1])
