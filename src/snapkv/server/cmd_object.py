"""OBJECT and MEMORY (Redis's object.c): a key's encoding, reference count, idle time, size.

snapkv keeps every value one way (a ``str``, or a container of
:mod:`snapkv.values`), so OBJECT ENCODING answers what Redis 7.0 would use
for a value of that size and content under the server's thresholds
(``hash-max-listpack-entries`` and friends, CONFIG SET-able):

* a string is ``int`` if it reads as a 64-bit integer in at most 20
  characters, ``embstr`` up to 44 bytes, else ``raw``;
* a hash is ``listpack`` while it has at most ``hash-max-listpack-entries``
  fields and no field or value longer than ``hash-max-listpack-value``
  bytes, else ``hashtable``;
* a list is always ``quicklist`` (7.0; ``listpack`` lists came in 7.2);
* a set is ``intset`` while every member is such an integer and there are at
  most ``set-max-intset-entries``, else ``hashtable`` (7.0 has no set
  listpack);
* a sorted set is ``listpack`` while it has at most
  ``zset-max-listpack-entries`` members, none longer than
  ``zset-max-listpack-value`` bytes, else ``skiplist``.

Where Redis's answer depends on history rather than on the value, snapkv
answers from the value: Redis never converts a hashtable back to a listpack
(a hash that once grew stays ``hashtable`` after shrinking), SORT turns a
listpack sorted set into a skiplist, and APPEND, SETRANGE and INCRBYFLOAT
leave ``raw``/``embstr`` strings that look like integers. Remembering that
would cost a mark per key kept beside the keyspace and kept right by every
write, for a reply that changes nothing else.

OBJECT REFCOUNT is 1, except for the integers 0..9999 that Redis shares
(``OBJ_SHARED_REFCOUNT``, 2147483647) unless an LRU/LFU policy with a
``maxmemory`` forbids sharing. OBJECT IDLETIME and OBJECT FREQ read the
last-use times and LFU counters :mod:`snapkv.server.access` keeps from the
first of them on; under an LFU policy IDLETIME, and otherwise FREQ, refuse
with Redis's words.

MEMORY USAGE estimates the bytes snapkv's process holds for the key: the
key's ``str``, a dict entry, and the value (``sys.getsizeof`` of the
container plus its elements). For a container, as Redis, it measures the
first ``SAMPLES`` elements (default 5, 0: all) and scales their average to
the whole. Strings shared with other keys are counted for each.
"""

from __future__ import annotations

import gc
import itertools
import sys
from typing import TYPE_CHECKING, Any

from snapkv import values
from snapkv.server.access import freq, idle_seconds, start
from snapkv.server.cmd_info import memory_section
from snapkv.server.resp.text import byte_len
from snapkv.server.resp.writer import OK, SimpleString, bulk, integer
from snapkv.server.table import ERR_SYNTAX, CommandError, command, parse_int

if TYPE_CHECKING:
    from snapkv.server.client import Client

__all__ = ["DEFAULT_SAMPLES", "THRESHOLDS", "encoding", "memory_usage"]

_G = "generic"
_KEY = (2, 2, 1)
#: Redis's ``OBJ_SHARED_REFCOUNT``: the reference count of a shared integer.
_SHARED_REFCOUNT = 2**31 - 1
#: Redis's ``OBJ_SHARED_INTEGERS``: 0 up to this (excluded) are shared.
_SHARED_INTEGERS = 10000
_EMBSTR_LIMIT = 44
#: Redis's ``OBJ_COMPUTE_SIZE_DEF_SAMPLES``.
DEFAULT_SAMPLES = 5
#: The encoding thresholds OBJECT ENCODING reads from the server's Config,
#: with Redis 7.0's defaults for a Config that has no attribute for one (the
#: same defaults as snapkv.server.conf.ENCODINGS, which a test checks).
THRESHOLDS: dict[str, int] = {
    "hash_max_listpack_entries": 512,
    "hash_max_listpack_value": 64,
    "set_max_intset_entries": 512,
    "zset_max_listpack_entries": 128,
    "zset_max_listpack_value": 64,
}
_ERR_LFU = (
    "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when "
    "switching between policies at runtime LRU and LFU data will take some time to adjust."
)
_ERR_NOT_LFU = (
    "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note "
    "that when switching between policies at runtime LRU and LFU data will take some time "
    "to adjust."
)
#: A dict entry's bytes in CPython (hash, key and value pointers).
_ENTRY = 24


def _is_integer(text: str) -> bool:
    """Whether Redis would keep ``text`` as an integer (``string2ll``, at most 20 characters)."""
    if len(text) > 20:
        return False
    try:
        parse_int(text)
    except CommandError:
        return False
    return True


def encoding(value: Any, limits: dict[str, int]) -> str:
    """Redis 7.0's encoding for ``value`` (a ``str`` or a container) under ``limits``.

    ``limits`` maps each name of :data:`THRESHOLDS` to its value.
    """
    if value.__class__ is str:
        if _is_integer(value):
            return "int"
        return "embstr" if byte_len(value) <= _EMBSTR_LIMIT else "raw"
    kind = values.BY_CLASS[value.__class__]
    if kind is values.lists:
        return "quicklist"
    if kind is values.sets:
        small = len(value) <= limits["set_max_intset_entries"]
        return "intset" if small and all(map(_is_integer, value)) else "hashtable"
    if kind is values.hashes:
        longest = limits["hash_max_listpack_value"]
        small = len(value) <= limits["hash_max_listpack_entries"] and all(
            byte_len(f) <= longest and byte_len(v) <= longest for f, v in value.items()
        )
        return "listpack" if small else "hashtable"
    if kind is values.streams:
        return "stream"
    longest = limits["zset_max_listpack_value"]
    small = len(value) <= limits["zset_max_listpack_entries"] and all(
        byte_len(member) <= longest for member in value.scores
    )
    return "listpack" if small else "skiplist"


def _element_bytes(value: Any, element: Any) -> int:
    """The bytes one element of container ``value`` adds (``element`` as iteration gives it)."""
    size = sys.getsizeof
    if value.__class__ is values.hashes.CLASS:
        return size(element) + size(value[element]) + _ENTRY
    if value.__class__ is values.zsets.CLASS:
        score, member = element
        # The member, its score, the (score, member) pair of the order and
        # the two slots pointing at them (the scores dict's, the order's).
        return size(member) + size(score) + size(element) + _ENTRY + 8
    if value.__class__ is values.streams.CLASS:
        pairs = value[element]  # an entry: its ID, and its fields and values
        return size(element) + size(pairs) + sum(map(size, pairs)) + _ENTRY
    return size(element) + 8  # a set's or a deque's slot


def memory_usage(key: str, value: Any, samples: int) -> int:
    """An estimate of the bytes ``key`` and ``value`` hold (see the module docstring).

    ``samples`` elements of a container are measured (0: all of them).
    """
    total = sys.getsizeof(key) + _ENTRY
    if value.__class__ is str:
        return total + sys.getsizeof(value)
    total += sys.getsizeof(value)
    if value.__class__ is values.zsets.CLASS:
        total += sys.getsizeof(value.scores) + sys.getsizeof(value.order)
    count = len(value)
    taken = list(itertools.islice(iter(value), samples or None))
    if taken:
        measured = sum(_element_bytes(value, element) for element in taken)
        total += measured * count // len(taken)
    return total


def _found(db: Any, key: str, answer: Any) -> Any:
    """``answer(value)`` for the value ``key`` holds, under the Store's lock; None if missing.

    Under the lock because a container is mutable: another thread using the
    Store directly must not change it while it is measured.
    """
    with db._store._lock:
        kind = db.key_type(key)
        if kind is None:
            return None
        value = db.get(key) if kind == "string" else db._lookup(key, values.BY_NAME[kind])
        return None if value is None else answer(value)


def _limits(client: Client) -> dict[str, int]:
    config = client.server.config
    return {name: getattr(config, name, default) for name, default in THRESHOLDS.items()}


def _lfu(client: Client) -> bool:
    return "lfu" in client.server.config.maxmemory_policy


# ------------------------------------------------------------------ OBJECT


@command("object|encoding", 3, "readonly", keys=_KEY, group=_G, since="2.2.3")
def object_encoding(client: Client, argv: list[str]) -> bytes:
    limits = _limits(client)
    return client.bulk_or_null(_found(client.db, argv[2], lambda v: encoding(v, limits)))


@command("object|refcount", 3, "readonly", keys=_KEY, group=_G, since="2.2.3")
def object_refcount(client: Client, argv: list[str]) -> bytes:
    config = client.server.config
    # Redis shares small integers unless an LRU/LFU policy with a memory
    # limit needs each value's own access clock.
    policy = config.maxmemory_policy
    shared = config.maxmemory == 0 or not policy.startswith(("allkeys-l", "volatile-l"))

    def count(value: Any) -> int:
        integral = shared and value.__class__ is str and _is_integer(value)
        return _SHARED_REFCOUNT if integral and 0 <= int(value) < _SHARED_INTEGERS else 1

    found = _found(client.db, argv[2], count)
    return client.null if found is None else integer(found)


@command("object|idletime", 3, "readonly", keys=_KEY, group=_G, since="2.2.3")
def object_idletime(client: Client, argv: list[str]) -> bytes:
    access = start(client.server)  # times are kept from the first question on
    if _found(client.db, argv[2], lambda v: True) is None:
        return client.null
    if _lfu(client):
        raise CommandError(_ERR_LFU)
    return integer(idle_seconds(access, client.db_index, argv[2]))


@command("object|freq", 3, "readonly", keys=_KEY, group=_G, since="4.0.0")
def object_freq(client: Client, argv: list[str]) -> bytes:
    access = start(client.server)
    if _found(client.db, argv[2], lambda v: True) is None:
        return client.null
    if not _lfu(client):
        raise CommandError(_ERR_NOT_LFU)
    return integer(freq(client.server, access, client.db_index, argv[2]))


_OBJECT_HELP = (
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
)


@command("object|help", 2, "loading stale", group=_G, since="6.2.0")
def object_help(client: Client, argv: list[str]) -> bytes:
    return client.encode([SimpleString(line) for line in _OBJECT_HELP])


# ------------------------------------------------------------------ MEMORY


@command("memory|usage", -3, "readonly", keys=_KEY, group="server", since="4.0.0")
def memory_usage_command(client: Client, argv: list[str]) -> bytes:
    """MEMORY USAGE key [SAMPLES count]: the options are read before the key, as Redis."""
    samples = DEFAULT_SAMPLES
    i = 3
    while i < len(argv):
        if argv[i].lower() != "samples" or i + 1 >= len(argv):
            raise CommandError(ERR_SYNTAX)
        samples = parse_int(argv[i + 1])
        if samples < 0:
            raise CommandError(ERR_SYNTAX)
        i += 2
    key = argv[2]
    found = _found(client.db, key, lambda v: memory_usage(key, v, samples))
    return client.null if found is None else integer(found)


@command("memory|stats", 2, "", group="server", since="4.0.0")
def memory_stats(client: Client, argv: list[str]) -> bytes:
    """Redis 7.0's MEMORY STATS fields, in its order, from INFO memory's figures.

    The allocator's own figures are the process's: ``total.allocated`` is
    the resident set (INFO's ``used_memory``), ``startup.allocated`` the
    resident set before any store was loaded, so ``dataset.bytes`` is what
    the keys and the server's state added since. The hash tables' overhead
    is snapkv's per-key dict entry (24 bytes, as MEMORY USAGE counts it).
    """
    server = client.server
    figures = memory_section(server)
    used = _int(figures["used_memory"])
    peak = _int(figures["used_memory_peak"])
    startup = _int(figures["used_memory_startup"])
    lua = _int(figures["used_memory_lua"])
    functions = _int(figures["used_memory_vm_functions"])
    stats: list[tuple[str, Any]] = [
        ("peak.allocated", peak),
        ("total.allocated", used),
        ("startup.allocated", startup),
        ("replication.backlog", 0),
        ("clients.slaves", 0),
        ("clients.normal", 0),
        ("cluster.links", 0),
        ("aof.buffer", 0),
        ("lua.caches", lua),
        ("functions.caches", functions),
    ]
    keys = 0
    overhead = startup + lua + functions
    for index, db in enumerate(server.keyspaces):
        count, expiring = len(db), db.expiring_count()
        if count or expiring:
            keys += count
            main, expires = count * _ENTRY, expiring * _ENTRY
            overhead += main + expires
            stats.append(
                (
                    f"db.{index}",
                    {
                        "overhead.hashtable.main": main,
                        "overhead.hashtable.expires": expires,
                        "overhead.hashtable.slot-to-keys": 0,
                    },
                )
            )
    net = max(used - startup, 0)
    dataset = max(used - overhead, 0)
    stats += [
        ("overhead.total", overhead),
        ("keys.count", keys),
        ("keys.bytes-per-key", net // keys if keys else 0),
        ("dataset.bytes", dataset),
        ("dataset.percentage", dataset * 100 / net if net else 0.0),
        ("peak.percentage", used * 100 / peak if peak else 0.0),
        ("allocator.allocated", used),
        ("allocator.active", used),
        ("allocator.resident", used),
        ("allocator-fragmentation.ratio", 1.0),
        ("allocator-fragmentation.bytes", 0),
        ("allocator-rss.ratio", 1.0),
        ("allocator-rss.bytes", 0),
        ("rss-overhead.ratio", 1.0),
        ("rss-overhead.bytes", 0),
        ("fragmentation", 1.0),
        ("fragmentation.bytes", 0),
    ]
    return client.encode(dict(stats))


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0


#: Redis's ``getMemoryDoctorReport`` below 5 MB of data: too little to judge.
_DOCTOR_EMPTY = (
    "Hi Sam, this instance is empty or is using very little memory, my issues detector can't "
    "be used in these conditions. Please, leave for your mission on Earth and fill it with "
    "some data. The new Sam and I will be back to our programming as soon as I finished "
    "rebooting.\n"
)
_DOCTOR_FINE = (
    "Hi Sam, I can't find any memory issue in your instance. I can only account for what "
    "occurs on this base.\n"
)


def dataset_estimate(client: Client, keys_per_db: int = 16) -> int:
    """The keys' bytes, estimated as MEMORY USAGE does: a few keys of each keyspace, scaled."""
    total = 0
    for db in client.server.keyspaces:
        count = len(db)
        if not count:
            continue
        # The entries dict must not change while it is iterated; iter(db) would
        # copy every key (and take this same, non-reentrant lock).
        with db._store._lock:
            first = list(itertools.islice(db._space[0], keys_per_db))
        sizes = [
            size
            for key in first
            if (size := _found(db, key, lambda v, k=key: memory_usage(k, v, DEFAULT_SAMPLES)))
            is not None
        ]
        if sizes:
            total += sum(sizes) * count // len(sizes)
    return total


@command("memory|doctor", 2, "", group="server", since="4.0.0")
def memory_doctor(client: Client, argv: list[str]) -> bytes:
    """Redis's report on the data's memory (under 5 MB of keys: too little to judge).

    snapkv has no fragmentation or buffer figures to find fault with, so
    beyond that it reports nothing, as Redis does when all is well.
    """
    text = _DOCTOR_EMPTY if dataset_estimate(client) < 5 << 20 else _DOCTOR_FINE
    if client.resp == 3:
        raw = text.encode()
        return b"=%d\r\ntxt:%s\r\n" % (len(raw) + 4, raw)
    return bulk(text)


@command("memory|malloc-stats", 2, "", group="server", since="4.0.0")
def memory_malloc_stats(client: Client, argv: list[str]) -> bytes:
    """What Redis built without jemalloc answers: CPython's allocator keeps no such report."""
    return bulk("Stats not supported for the current allocator")


@command("memory|purge", 2, "", group="server", since="4.0.0")
def memory_purge(client: Client, argv: list[str]) -> bytes:
    """Give back what can be given back cheaply (Redis: jemalloc's purge).

    The young generations only: a full collection walks every container in
    the heap while holding the event loop, seconds with millions of keys,
    and the store's data is not cyclic garbage anyway.
    """
    gc.collect(1)
    return OK


_MEMORY_HELP = (
    "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return memory problems reports.",
    "MALLOC-STATS",
    "    Return internal statistics report from the memory allocator.",
    "PURGE",
    "    Attempt to purge dirty pages for reclamation by the allocator.",
    "STATS",
    "    Return information about the memory usage of the server.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
    "HELP",
    "    Prints this help.",
)


@command("memory|help", 2, "loading stale", group="server", since="4.0.0")
def memory_help(client: Client, argv: list[str]) -> bytes:
    """MEMORY HELP: Redis 7.0's text."""
    return client.encode([SimpleString(line) for line in _MEMORY_HELP])
