"""INFO: every section and field of Redis 7.0's, in its order and formats.

What is measured (clients, memory as the resident set, persistence, the
command and error counters the dispatcher keeps, CPU, keyspaces) and what
is always 0 (replication, eviction, forks, network bytes) is listed in
docs/SERVER.md; :func:`info_text` builds the report, one builder per section.
"""

from __future__ import annotations

import os
import platform
import re
import resource
import secrets
import sys
import time
from collections import deque
from importlib import metadata
from typing import TYPE_CHECKING

from snapkv.replication.status import replication_info
from snapkv.server.client_info import buffers
from snapkv.server.info_counters import commandstats, errorstats, latencystats
from snapkv.server.pubsub import counts as pubsub_counts
from snapkv.server.replicas.info import replication_fields, sync_stats
from snapkv.server.resp.writer import bulk
from snapkv.server.scripting import cached_scripts, lua_memory
from snapkv.server.scripting.functions import functions_info
from snapkv.server.state import REDIS_VERSION
from snapkv.server.table import ErrorStats, command
from snapkv.server.tracking import counts as tracking_counts

if TYPE_CHECKING:
    from snapkv.server.client import Client
    from snapkv.server.state import ServerState

__all__ = ["info_text", "memory_section"]

_RUN_ID = secrets.token_hex(20)


def _version() -> str:
    try:
        return metadata.version("snapkv")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


_VERSION = _version()

#: Redis 7.0's sections in its order, with their titles (``genRedisInfoString``).
_TITLES = {
    "server": "Server",
    "clients": "Clients",
    "memory": "Memory",
    "persistence": "Persistence",
    "stats": "Stats",
    "replication": "Replication",
    "cpu": "CPU",
    "modules": "Modules",
    "commandstats": "Commandstats",
    "errorstats": "Errorstats",
    "latencystats": "Latencystats",
    "cluster": "Cluster",
    "keyspace": "Keyspace",
}
#: What INFO with no argument (or ``default``) reports (``genInfoSectionDict``).
_DEFAULT_SECTIONS = frozenset(_TITLES) - {"commandstats", "latencystats"}


def _rss() -> int:
    """Resident memory of this process in bytes (what INFO reports as used_memory).

    Python has no cheap total of its allocations (tracemalloc slows every
    allocation), so the resident set size stands in for Redis's allocator
    count: it includes the interpreter and its free lists.
    """
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


#: The resident set when the server's modules were loaded, before any store was
#: restored (INFO's ``used_memory_startup``).
_RSS_AT_START = _rss()


def _system_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (OSError, ValueError):
        return 0


def _compiler_version() -> str:
    """The C compiler that built this Python, as Redis's ``gcc_version`` (``12.2.0``)."""
    found = re.search(r"(\d+)\.(\d+)\.(\d+)", platform.python_compiler())
    return ".".join(found.groups()) if found else "0.0.0"


def _human(size: int) -> str:
    """Redis's ``bytesToHuman``: ``1023B``, ``1.00K``, ``12.34M``."""
    if size < 1024:
        return f"{size}B"
    for unit in "KMGTP":
        size_in = size / 1024 ** ("KMGTP".index(unit) + 1)
        if size_in < 1024 or unit == "P":
            return f"{size_in:.2f}{unit}"
    return f"{size}B"  # pragma: no cover


def _seconds(value: float) -> str:
    """A CPU time as Redis prints it: ``%ld.%06ld``."""
    return f"{value:.6f}"


def _ops_per_sec(server: ServerState, now: float) -> int:
    """Commands per second since an earlier INFO (at least a second back when there is one).

    Redis samples its counter ten times a second from its timer; this
    server keeps no timer for it, so INFO itself takes the samples. A
    client polling INFO (redis-cli --stat, an exporter) gets the rate over
    its own interval; the first INFO gets the average since start.
    """
    samples: deque[tuple[float, int]] = server.info.setdefault("ops_samples", deque(maxlen=64))
    count = server.commands_processed
    then, before = server.started_monotonic, 0
    for at, seen in reversed(samples):
        then, before = at, seen
        if now - at >= 1.0:
            break
    if not samples or now - samples[-1][0] >= 0.1:
        samples.append((now, count))
    elapsed = now - then
    return max(0, round((count - before) / elapsed)) if elapsed > 0 else 0


def _server_section(server: ServerState, now: float, uptime: int) -> dict[str, object]:
    config = server.config
    extra = server.info
    return {
        "redis_version": REDIS_VERSION,
        "redis_git_sha1": "00000000",
        "redis_git_dirty": 0,
        "redis_build_id": "0",
        "redis_mode": "standalone",
        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
        "arch_bits": 64 if sys.maxsize > 2**32 else 32,
        "monotonic_clock": "POSIX clock_gettime",
        "multiplexing_api": extra.get("event_loop", "asyncio"),
        "atomicvar_api": "gil",
        "gcc_version": _compiler_version(),
        "process_id": os.getpid(),
        "process_supervised": "no",
        "run_id": _RUN_ID,
        "tcp_port": extra.get("port", config.port),
        "server_time_usec": int(now * 1_000_000),
        "uptime_in_seconds": uptime,
        "uptime_in_days": uptime // 86400,
        "hz": 1,
        "configured_hz": 1,
        "lru_clock": int(now) & 0xFFFFFF,
        "executable": sys.executable,
        "config_file": config.config_file,
        "io_threads_active": 0,
        "snapkv_version": _VERSION,
        "python_version": platform.python_version(),
        "parser": extra.get("parser", "python"),
    }


def _clients_section(server: ServerState) -> dict[str, object]:
    held = [buffers(client) for client in server.clients.values()]
    return {
        "connected_clients": len(server.clients),
        "cluster_connections": 0,
        "maxclients": server.config.maxclients,
        # The largest now (Redis: the largest of the last few seconds).
        "client_recent_max_input_buffer": max((b[0] for b in held), default=0),
        "client_recent_max_output_buffer": max((b[1] for b in held), default=0),
        # Every kind of wait, as Redis's server.blocked_clients (CLIENT PAUSE's too).
        "blocked_clients": sum(1 for c in server.clients.values() if c.blocked is not None),
        "tracking_clients": sum(1 for c in server.clients.values() if c.tracking is not None),
        "clients_in_timeout_table": sum(
            1
            for c in server.clients.values()
            if c.blocked is not None and c.blocked.deadline is not None
        ),
        "watching_clients": sum(1 for c in server.clients.values() if c.watched),
        "total_watched_keys": len(server.watched),
    }


def memory_section(server: ServerState) -> dict[str, object]:
    """INFO memory's fields (MEMORY STATS reads the same figures)."""
    used = _rss()
    peak = max(used, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    startup = min(_RSS_AT_START, used)
    system = _system_memory()
    memory: dict[str, object] = {
        "used_memory": used,
        "used_memory_human": _human(used),
        "used_memory_rss": used,
        "used_memory_rss_human": _human(used),
        "used_memory_peak": peak,
        "used_memory_peak_human": _human(peak),
        "used_memory_peak_perc": f"{used * 100 / peak:.2f}%",
        "used_memory_overhead": startup,
        "used_memory_startup": startup,
        "used_memory_dataset": used - startup,
        "used_memory_dataset_perc": "100.00%" if used > startup else "0.00%",
        "allocator_allocated": 0,
        "allocator_active": 0,
        "allocator_resident": 0,
        "total_system_memory": system,
        "total_system_memory_human": _human(system),
    }
    # The Lua interpreter (EVAL's and FUNCTION's share one), and the scripts cached.
    lua = lua_memory(server)
    functions, functions_vm = functions_info(server)
    memory.update(
        {
            "used_memory_lua": lua,
            "used_memory_vm_eval": lua,
            "used_memory_lua_human": _human(lua),
            "used_memory_scripts_eval": 0,
            "number_of_cached_scripts": cached_scripts(server),
            "number_of_functions": functions,
            "number_of_libraries": 0,
            "used_memory_vm_functions": functions_vm,
            "used_memory_vm_total": lua + functions_vm,
            "used_memory_vm_total_human": _human(lua + functions_vm),
            "used_memory_functions": 0,
            "used_memory_scripts": 0,
            "used_memory_scripts_human": "0B",
        }
    )
    memory.update(
        {
            "maxmemory": 0,
            "maxmemory_human": "0B",
            "maxmemory_policy": "noeviction",
            "allocator_frag_ratio": "1.00",
            "allocator_frag_bytes": 0,
            "allocator_rss_ratio": "1.00",
            "allocator_rss_bytes": 0,
            "rss_overhead_ratio": "1.00",
            "rss_overhead_bytes": 0,
            "mem_fragmentation_ratio": "1.00",
            "mem_fragmentation_bytes": 0,
            "mem_not_counted_for_evict": 0,
            "mem_replication_backlog": 0,
            "mem_total_replication_buffers": 0,
            "mem_clients_slaves": 0,
            "mem_clients_normal": sum(buffers(c)[2] for c in server.clients.values()),
            "mem_cluster_links": 0,
            "mem_aof_buffer": 0,
            "mem_allocator": "pymalloc",
            "active_defrag_running": 0,
            "lazyfree_pending_objects": 0,
            "lazyfreed_objects": 0,
        }
    )
    return memory


def _persistence_section(server: ServerState, monotonic: float) -> dict[str, object]:
    config = server.config
    bgsave = server.bgsave_thread is not None and server.bgsave_thread.is_alive()
    started = server.bgsave_started
    took = server.last_save_seconds
    loaded = server.restore_report
    journaled = config.appendonly and server.data_dir is not None
    journal_failed = server.store.journal_failure is not None
    section: dict[str, object] = {
        "loading": 0,
        "async_loading": 0,
        "current_cow_peak": 0,
        "current_cow_size": 0,
        "current_cow_size_age": 0,
        "current_fork_perc": "0.00",
        "current_save_keys_processed": 0,
        "current_save_keys_total": 0,
        "rdb_changes_since_last_save": server.dirty,
        "rdb_bgsave_in_progress": int(bgsave),
        "rdb_last_save_time": server.last_save,
        "rdb_last_bgsave_status": "ok" if server.last_bgsave_ok else "err",
        "rdb_last_bgsave_time_sec": -1 if took is None else int(took),
        "rdb_current_bgsave_time_sec": int(monotonic - started) if bgsave and started else -1,
        "rdb_saves": server.saves,
        "rdb_last_cow_size": 0,
        "rdb_last_load_keys_expired": loaded.expired if loaded else 0,
        "rdb_last_load_keys_loaded": loaded.entries if loaded else 0,
        "aof_enabled": int(journaled),
        "aof_rewrite_in_progress": 0,
        "aof_rewrite_scheduled": 0,
        "aof_last_rewrite_time_sec": -1,
        "aof_current_rewrite_time_sec": -1,
        "aof_last_bgrewrite_status": "ok",
        "aof_rewrites": 0,
        "aof_rewrites_consecutive_failures": 0,
        "aof_last_write_status": "err" if journal_failed else "ok",
        "aof_last_cow_size": 0,
        "module_fork_in_progress": 0,
        "module_fork_last_cow_size": 0,
    }
    if journaled:
        # Redis 7's AOF is a base file plus the increments after it: here the
        # newest snapshot plus the journal after it (what a restart replays),
        # so current - base grows as Store's compaction rule measures it.
        _name, base = server.newest_snapshot()
        base = base or 0
        section.update(
            aof_current_size=base + server.store.journal_size,
            aof_base_size=base,
            aof_pending_rewrite=0,
            # Each record reaches the OS before its reply: nothing is buffered.
            aof_buffer_length=0,
            aof_pending_bio_fsync=0,
            aof_delayed_fsync=0,
        )
    return section


def _stats_section(server: ServerState, errors: ErrorStats, ops: int) -> dict[str, object]:
    stats: dict[str, object] = {
        "total_connections_received": server.connections_received,
        "total_commands_processed": server.commands_processed,
        "instantaneous_ops_per_sec": ops,
    }
    zero = (
        "total_net_input_bytes total_net_output_bytes total_net_repl_input_bytes "
        "total_net_repl_output_bytes instantaneous_input_kbps instantaneous_output_kbps "
        "instantaneous_input_repl_kbps instantaneous_output_repl_kbps"
    )
    stats.update((name, "0.00" if name.endswith("kbps") else 0) for name in zero.split())
    stats["rejected_connections"] = server.rejected_connections
    zero = (
        "sync_full sync_partial_ok sync_partial_err expired_keys expired_stale_perc "
        "expired_time_cap_reached_count expire_cycle_cpu_milliseconds evicted_keys "
        "evicted_clients total_eviction_exceeded_time current_eviction_exceeded_time "
        "keyspace_hits keyspace_misses pubsub_channels pubsub_patterns pubsubshard_channels "
        "latest_fork_usec total_forks migrate_cached_sockets slave_expires_tracked_keys "
        "active_defrag_hits active_defrag_misses active_defrag_key_hits "
        "active_defrag_key_misses total_active_defrag_time current_active_defrag_time "
        "tracking_total_keys tracking_total_items tracking_total_prefixes "
        "unexpected_error_replies"
    )
    stats.update((name, "0.00" if name == "expired_stale_perc" else 0) for name in zero.split())
    stats.update(sync_stats(server))
    keys, items, prefixes = tracking_counts(server)
    stats["tracking_total_keys"] = keys
    stats["tracking_total_items"] = items
    stats["tracking_total_prefixes"] = prefixes
    channels, patterns, shard_channels = pubsub_counts(server)
    stats["pubsub_channels"] = channels
    stats["pubsub_patterns"] = patterns
    stats["pubsubshard_channels"] = shard_channels
    stats["total_error_replies"] = errors.total + server.protocol_errors
    zero = (
        "dump_payload_sanitizations total_reads_processed total_writes_processed "
        "io_threaded_reads_processed io_threaded_writes_processed reply_buffer_shrinks "
        "reply_buffer_expands"
    )
    stats.update((name, 0) for name in zero.split())
    return stats


def _replication_section(server: ServerState) -> dict[str, object]:
    # snapkv as a Redis primary: its replicas, IDs, offsets and backlog (server/replicas).
    return replication_fields(server)


def _cpu_section() -> dict[str, object]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu: dict[str, object] = {
        "used_cpu_sys": _seconds(own.ru_stime),
        "used_cpu_user": _seconds(own.ru_utime),
        "used_cpu_sys_children": _seconds(children.ru_stime),
        "used_cpu_user_children": _seconds(children.ru_utime),
    }
    if hasattr(resource, "RUSAGE_THREAD"):  # Linux: INFO runs on the event loop's thread
        loop = resource.getrusage(resource.RUSAGE_THREAD)
        cpu["used_cpu_sys_main_thread"] = _seconds(loop.ru_stime)
        cpu["used_cpu_user_main_thread"] = _seconds(loop.ru_utime)
    return cpu


def _sections(argv: list[str]) -> set[str]:
    """The sections INFO's arguments ask for, as Redis's ``genInfoSectionDict``."""
    if not argv:
        return set(_DEFAULT_SECTIONS)
    wanted: set[str] = set()
    for arg in argv:
        name = arg.lower()
        if name == "default":
            wanted |= _DEFAULT_SECTIONS
        elif name in ("all", "everything"):
            wanted |= set(_TITLES)
        elif name == "module_list":
            wanted.add("modules")
        else:
            wanted.add(name)
    return wanted


def info_text(client: Client, sections: list[str]) -> str:
    """The INFO report for ``sections`` (INFO's arguments; none: the default ones).

    Every section and field of Redis 7.0's INFO, in its order and formats;
    docs/SERVER.md says which fields are measured and which are always 0.
    Keyspace lines are Redis's ``db<n>:keys=K,expires=E,avg_ttl=0``: ``keys``
    counts live keys (due keys are reclaimed first), ``expires`` the keys
    with an expiry time (as in Redis, one that fell due a moment ago may
    still be counted until it is swept). ``avg_ttl`` is always 0: Redis
    derives it from the keys its expiry sweep happens to sample, a moving
    estimate no client can rely on, and 0 is what Redis itself reports
    before it has one.
    """
    server = client.server
    wanted = _sections(sections)
    errors = server.info.get("errors")
    if not isinstance(errors, ErrorStats):  # a bare ServerState, without a dispatcher
        errors = ErrorStats()
    now = time.time()
    monotonic = time.monotonic()
    uptime = int(monotonic - server.started_monotonic)
    blocks = []
    for name, title in _TITLES.items():
        if name not in wanted:
            continue
        fields: dict[str, object]
        if name == "server":
            fields = _server_section(server, now, uptime)
        elif name == "clients":
            fields = _clients_section(server)
        elif name == "memory":
            fields = memory_section(server)
        elif name == "persistence":
            fields = _persistence_section(server, monotonic)
        elif name == "stats":
            fields = _stats_section(server, errors, _ops_per_sec(server, monotonic))
        elif name == "replication":
            fields = _replication_section(server) | replication_info(server)
        elif name == "cpu":
            fields = _cpu_section()
        elif name == "commandstats":
            fields = commandstats(server)
        elif name == "errorstats":
            fields = errorstats(server, errors)
        elif name == "latencystats":
            fields = latencystats(server)
        elif name == "cluster":
            fields = {"cluster_enabled": 0}
        elif name == "keyspace":
            fields = {}
            for i, db in enumerate(server.keyspaces):
                keys, expires = len(db), db.expiring_count()
                if keys or expires:
                    fields[f"db{i}"] = f"keys={keys},expires={expires},avg_ttl=0"
        else:  # modules (none can be loaded)
            fields = {}
        lines = [f"# {title}", *(f"{key}:{value}" for key, value in fields.items())]
        blocks.append("\r\n".join(lines) + "\r\n")
    return "\r\n".join(blocks)


@command("info", -1, "loading stale", group="server", summary="Server information")
def info(client: Client, argv: list[str]) -> bytes:
    text = info_text(client, argv[1:])
    if client.resp == 3:
        data = text.encode()
        return b"=%d\r\ntxt:%s\r\n" % (len(data) + 4, data)
    return bulk(text)
