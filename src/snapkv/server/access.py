"""When each key was last used (OBJECT IDLETIME) and how often (OBJECT FREQ), kept by the server.

Redis keeps a 24-bit clock in every value and updates it on each lookup
(``lookupKey``), except the lookups flagged ``LOOKUP_NOTOUCH``: TYPE,
EXISTS, TTL, PTTL, EXPIRETIME, PEXPIRETIME, OBJECT and MEMORY USAGE (and
any lookup of a client in CLIENT NO-TOUCH mode, but TOUCH's). snapkv's
store has no room for it, and must not pay for it on its lock-free reads,
so the server keeps the times beside the keyspaces, in one dict per
keyspace: key -> ``perf_counter`` time of its last use (the dispatcher's
clock), and under an LFU ``maxmemory-policy`` key -> [Redis's LFU counter,
the minute it last decayed].

Keeping them costs every keyed command a call and a dict store (about
0.1 µs, measured: 3% of a pipelined GET), so they are kept only once they
are wanted: from the first OBJECT IDLETIME or OBJECT FREQ, or while
``maxmemory-policy`` is an LRU or LFU one. Before that, a key counts as
last used when keeping began (Redis counts a key loaded at start as used
then, likewise). Keeping is switched on by wrapping the handlers of the
keyed commands in the server's own command table (:func:`start`), so the
dispatcher's fast path is the same code either way.

Entries of deleted keys are dropped when a dict grows past twice its
keyspace's size (and 1,024); FLUSHDB and FLUSHALL drop their keyspaces'
at once and SWAPDB swaps them. RENAME and MOVE stamp the source name (the
value's time moves with it in Redis; here the new name counts from when
keeping began until its next use).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from snapkv.server.table import Command

if TYPE_CHECKING:
    from snapkv.server.client import Client
    from snapkv.server.state import ServerState

__all__ = ["Access", "access_of", "freq", "idle_seconds", "policy_changed", "start"]

#: Commands whose lookups do not touch (Redis 7.0's ``LOOKUP_NOTOUCH`` users).
NO_TOUCH = frozenset({"type", "exists", "ttl", "pttl", "expiretime", "pexpiretime", "memory|usage"})
#: Redis's ``LFU_INIT_VAL``: a new key's counter.
LFU_INIT = 5


@dataclass
class Access:
    """The last-use times (and LFU counters) of one server's keys, once keeping began."""

    #: The clock of the times (seconds; tests replace it).
    clock: Callable[[], float] = time.perf_counter
    #: When keeping began (a key never stamped was last used then).
    since: float = field(default_factory=time.perf_counter)
    #: Per keyspace: key -> last use (``perf_counter``).
    times: dict[int, dict[str, float]] = field(default_factory=dict)
    #: Per keyspace: key -> [LFU counter, minute of its last decay].
    counters: dict[int, dict[str, list[int]]] = field(default_factory=dict)
    #: Whether an LFU ``maxmemory-policy`` is set (the counters are kept then).
    lfu: bool = False
    #: Entries a keyspace's dict may hold before the deleted keys' are dropped.
    limit: int = 1024

    def table(self, db_index: int) -> dict[str, float]:
        """Keyspace ``db_index``'s times (made on first use)."""
        found = self.times.get(db_index)
        if found is None:
            found = self.times[db_index] = {}
        return found

    def stamp(self, server: ServerState, db_index: int, keys: list[str]) -> None:
        """``keys`` of keyspace ``db_index`` were used now."""
        now = self.clock()
        times = self.table(db_index)
        for key in keys:
            times[key] = now
        if self.lfu:
            self.count(server, db_index, keys)
        if len(times) > self.limit:
            self.prune(server, db_index)

    def count(self, server: ServerState, db_index: int, keys: list[str]) -> None:
        """One more use of each of ``keys`` on its LFU counter (Redis's ``updateLFU``).

        A key not there (yet) is not used: Redis's lookup finds nothing to
        touch, and a key the command makes starts at ``LFU_INIT``.
        """
        counters = self.counters.setdefault(db_index, {})
        db = server.keyspaces[db_index]
        for key in keys:
            if key not in db:
                counters[key] = [LFU_INIT, _minutes()]
                continue
            entry = counters.setdefault(key, [LFU_INIT, _minutes()])
            entry[0] = _incremented(server, _decayed(server, entry))
            entry[1] = _minutes()

    def prune(self, server: ServerState, db_index: int) -> None:
        """Drop the entries of keys that no longer exist; allow twice the keys left."""
        db = server.keyspaces[db_index]
        for table in (self.times.get(db_index, {}), self.counters.get(db_index, {})):
            for key in [k for k in table if k not in db]:
                del table[key]
        self.limit = max(1024, 2 * max(len(t) for t in self.times.values()))


def _minutes() -> int:
    return int(time.time() // 60) & 0xFFFF  # Redis's LFUGetTimeInMinutes


def _decayed(server: ServerState, entry: list[int]) -> int:
    """Redis's ``LFUDecrAndReturn``: one off per ``lfu-decay-time`` minutes since the last."""
    period = server.config.lfu_decay_time
    elapsed = (_minutes() - entry[1]) & 0xFFFF
    return max(0, entry[0] - elapsed // period) if period else entry[0]


def _incremented(server: ServerState, counter: int) -> int:
    """Redis's ``LFULogIncr``: logarithmic, less likely the higher the counter."""
    if counter >= 255:
        return 255
    base = max(0, counter - LFU_INIT)
    if random.random() < 1.0 / (base * server.config.lfu_log_factor + 1):
        return counter + 1
    return counter


def access_of(server: ServerState) -> Access | None:
    """The server's :class:`Access`, or None while no times are kept."""
    found = server.info.get("access")
    return found if isinstance(found, Access) else None


def start(server: ServerState) -> Access:
    """Begin keeping times (once): every keyed command that touches stamps its keys."""
    found = access_of(server)
    if found is not None:
        return found
    access = server.info["access"] = Access()
    policy_changed(server)
    seen: set[int] = set()
    for cmd in server.table.values():
        for counted in (cmd, *(cmd.subcommands or {}).values()):
            if id(counted) in seen:
                continue
            seen.add(id(counted))
            keyed = counted.first_key or counted.find_keys
            if keyed and counted.full_name not in NO_TOUCH and counted.parent != "object":
                counted.handler = _stamping(counted, access, server)
            elif counted.name in ("swapdb", "flushdb", "flushall"):
                counted.handler = _following(counted, access)
    return access


def _following(cmd: Command, access: Access) -> Callable[[Client, list[str]], bytes]:
    """SWAPDB, FLUSHDB, FLUSHALL's handler, moving or dropping the times with the keys."""
    handler = cmd.handler

    def follow(client: Client, argv: list[str]) -> bytes:
        reply = handler(client, argv)
        if reply[:1] == b"-":
            return reply
        if cmd.name == "swapdb":
            first, second = (int(arg) for arg in argv[1:3])
            _swap(access.times, first, second)
            _swap(access.counters, first, second)
        else:
            indexes = [client.db_index] if cmd.name == "flushdb" else list(access.times)
            for index in indexes:
                access.times.pop(index, None)
                access.counters.pop(index, None)
        return reply

    return follow


def _swap(tables: dict[int, Any], first: int, second: int) -> None:
    """Keyspaces ``first`` and ``second`` exchange their entries (SWAPDB)."""
    a, b = tables.pop(first, None), tables.pop(second, None)
    if a is not None:
        tables[second] = a
    if b is not None:
        tables[first] = b


def policy_changed(server: ServerState) -> None:
    """Keep LFU counters from now if ``maxmemory-policy`` is an LFU one (else stop)."""
    access = access_of(server)
    if access is not None:
        access.lfu = "lfu" in server.config.maxmemory_policy


def _stamping(
    cmd: Command, access: Access, server: ServerState
) -> Callable[[Client, list[str]], bytes]:
    """``cmd``'s handler, stamping the keys of each call first (as Redis's lookup does).

    A command with one key (GET, SET, ...) stamps it inline: the call this
    wrapper adds is most of what keeping times costs.
    """
    handler = cmd.handler
    if cmd.name == "touch":  # TOUCH touches even for a NO-TOUCH client

        def touching(client: Client, argv: list[str]) -> bytes:
            access.stamp(server, client.db_index, cmd.keys(argv))
            return handler(client, argv)

        return touching
    if cmd.find_keys is not None or cmd.first_key != cmd.last_key:
        keys = cmd.keys

        def stamped(client: Client, argv: list[str]) -> bytes:
            if not client.no_touch:
                access.stamp(server, client.db_index, keys(argv))
            return handler(client, argv)

        return stamped
    at = cmd.first_key

    def stamped_one(client: Client, argv: list[str]) -> bytes:
        if not client.no_touch:
            times = access.table(client.db_index)
            times[argv[at]] = access.clock()
            if access.lfu:
                access.count(server, client.db_index, [argv[at]])
            if len(times) > access.limit:
                access.prune(server, client.db_index)
        return handler(client, argv)

    return stamped_one


def idle_seconds(access: Access, db_index: int, key: str) -> int:
    """OBJECT IDLETIME: whole seconds since ``key`` was last used (or keeping began)."""
    used = access.times.get(db_index, {}).get(key, access.since)
    return int(access.clock() - used)


def freq(server: ServerState, access: Access, db_index: int, key: str) -> int:
    """OBJECT FREQ: the key's LFU counter, decayed to now (Redis's ``LFUDecrAndReturn``)."""
    entry = access.counters.get(db_index, {}).get(key)
    if entry is None:  # not used since keeping began: a new key's counter
        return LFU_INIT
    return _decayed(server, entry)
