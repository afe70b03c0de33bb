"""What INFO says of replication (Redis's ``genRedisInfoString``, replication and stats parts).

snapkv is always the primary: its replicas with their state, acknowledged
offset and lag (seconds since their last ``REPLCONF ACK``), the replication
IDs and offsets, and the backlog; and INFO stats' resynchronisation counters.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from snapkv.server.replicas.backlog import ZERO_ID
from snapkv.server.replicas.primary import registry

if TYPE_CHECKING:
    from snapkv.server.state import ServerState

__all__ = ["replication_fields", "sync_stats"]


def replication_fields(server: ServerState) -> dict[str, object]:
    """INFO replication as a Redis primary shows it: its replicas, IDs, offsets, backlog."""
    primary = registry(server)
    backlog = primary.backlog
    now = time.monotonic()
    fields: dict[str, object] = {"role": "master", "connected_slaves": len(primary.links)}
    for i, link in enumerate(primary.links):
        lag = int(now - link.ack_time)
        fields[f"slave{i}"] = (
            f"ip={link.ip},port={link.listening_port},state={link.state},"
            f"offset={link.ack_offset},lag={lag}"
        )
    fields["master_failover_state"] = "no-failover"
    fields["master_replid"] = backlog.replid if backlog is not None else primary.replid
    fields["master_replid2"] = backlog.replid2 if backlog is not None else ZERO_ID
    fields["master_repl_offset"] = primary.offset
    fields["second_repl_offset"] = backlog.second_offset if backlog is not None else -1
    fields["repl_backlog_active"] = int(backlog is not None)
    fields["repl_backlog_size"] = backlog.size if backlog is not None else 0
    fields["repl_backlog_first_byte_offset"] = (
        backlog.first_byte_offset if backlog is not None else 0
    )
    fields["repl_backlog_histlen"] = backlog.histlen if backlog is not None else 0
    return fields


def sync_stats(server: ServerState) -> dict[str, object]:
    """INFO stats' full and partial resynchronisation counters."""
    primary = registry(server)
    return {
        "sync_full": primary.sync_full,
        "sync_partial_ok": primary.sync_partial_ok,
        "sync_partial_err": primary.sync_partial_err,
    }
