"""INFO's counter sections: commandstats, errorstats and latencystats (Redis 7.0's formats).

What the dispatcher counts per command and per error code, and the
per-command latency histograms :mod:`snapkv.server.latency` keeps, as
``genRedisInfoString`` prints them; :mod:`snapkv.server.cmd_info` builds
the other sections and puts them together.
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING

from snapkv.server.conf import show_percentile
from snapkv.server.latency import Latency, percentile_usec

if TYPE_CHECKING:
    from snapkv.server.state import ServerState
    from snapkv.server.table import ErrorStats

__all__ = ["commandstats", "errorstats", "latencystats"]

_name = operator.attrgetter("name")
#: Characters Redis's ``getSafeInfoString`` replaces in names it prints.
_UNSAFE = str.maketrans("#:\n\r", "____")


def commandstats(server: ServerState) -> dict[str, object]:
    """``cmdstat_<name>`` for every command and subcommand that ran or was refused."""
    stats: dict[str, object] = {}
    for cmd in sorted((c for n, c in server.table.items() if n == c.name), key=_name):
        subs = {id(s): s for s in (cmd.subcommands or {}).values()}.values()
        for counted in (cmd, *sorted(subs, key=_name)):
            if counted.calls or counted.failed_calls or counted.rejected_calls:
                usec = int(counted.seconds * 1_000_000)
                per_call = usec / counted.calls if counted.calls else 0
                stats[f"cmdstat_{counted.full_name.translate(_UNSAFE)}"] = (
                    f"calls={counted.calls},usec={usec},usec_per_call={per_call:.2f},"
                    f"rejected_calls={counted.rejected_calls},failed_calls={counted.failed_calls}"
                )
    return stats


def errorstats(server: ServerState, errors: ErrorStats) -> dict[str, object]:
    """``errorstat_<CODE>:count=N`` by code, in Redis's (sorted) order.

    Protocol errors are written by the connection, not the dispatcher:
    they are ``-ERR Protocol error: ...`` replies, so they count as ERR.
    """
    codes = dict(errors.codes)
    if server.protocol_errors:
        codes["ERR"] = codes.get("ERR", 0) + server.protocol_errors
    return {
        f"errorstat_{code.translate(_UNSAFE)}": f"count={n}" for code, n in sorted(codes.items())
    }


def latencystats(server: ServerState) -> dict[str, object]:
    """``latency_percentiles_usec_<name>:p50=...`` per command that ran, as Redis 7.0.

    The percentiles are ``latency-tracking-info-percentiles``; nothing while
    ``latency-tracking`` is off (its histograms are dropped then).
    """
    latency = server.info.get("latency")
    config = server.config
    if not isinstance(latency, Latency) or not config.latency_tracking:
        return {}
    commands = [
        counted
        for cmd in server.table.values()
        for counted in (cmd, *(cmd.subcommands or {}).values())
    ]
    latency.fold_all({id(c): c for c in commands}.values())
    stats: dict[str, object] = {}
    for name, histogram in sorted(latency.histograms.items()):
        if histogram:
            stats[f"latency_percentiles_usec_{name.translate(_UNSAFE)}"] = ",".join(
                f"p{show_percentile(p)}={percentile_usec(histogram, p):.3f}"
                for p in config.latency_tracking_info_percentiles
            )
    return stats
