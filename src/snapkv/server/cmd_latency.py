"""SLOWLOG and LATENCY (Redis's slowlog.c and latency.c) over the server's :class:`Latency`.

What is measured, and when, is :mod:`snapkv.server.latency`'s; this module
only answers, in Redis 7.0's reply shapes and texts. The latency monitor's
events are ``command`` and ``fast-command`` (snapkv forks nothing and its
journal's writes are not timed as events). LATENCY GRAPH is Redis's
sparkline, character for character.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from snapkv.server.latency import Latency, cumulative_usec
from snapkv.server.resp.writer import OK, SimpleString, bulk, integer
from snapkv.server.table import Command, CommandError, SlowLog, command, parse_int

if TYPE_CHECKING:
    from snapkv.server.client import Client

__all__ = ["latency_of"]

_SRV = "server"
_ADMIN = "admin noscript loading stale"


def latency_of(client: Client) -> Latency:
    """The server's :class:`Latency` (one made on first use for a bare ServerState)."""
    found = client.server.info.get("latency")
    if not isinstance(found, Latency):
        slowlog = client.server.info.get("slowlog")
        if not isinstance(slowlog, SlowLog):
            slowlog = client.server.info["slowlog"] = SlowLog()
        found = client.server.info["latency"] = Latency(client.server, slowlog)
    return found


def _help(client: Client, lines: tuple[str, ...]) -> bytes:
    return client.encode([SimpleString(line) for line in lines])


# ------------------------------------------------------------------ SLOWLOG


@command("slowlog|get", -2, _ADMIN, group=_SRV, summary="Get the slow log's entries")
def slowlog_get(client: Client, argv: list[str]) -> bytes:
    """The newest entries (10, or COUNT; -1: all), as Redis 7.0's ``slowlogCommand``."""
    if len(argv) > 3:
        raise CommandError(
            f"ERR unknown subcommand or wrong number of arguments for '{argv[1]}'. "
            "Try SLOWLOG HELP."
        )
    count = 10
    if len(argv) == 3:
        count = parse_int(argv[2], "ERR count should be greater than or equal to -1")
        if count < -1:
            raise CommandError("ERR count should be greater than or equal to -1")
    entries = latency_of(client).slowlog.entries
    return client.encode(entries if count == -1 else entries[:count])


@command("slowlog|len", 2, _ADMIN, group=_SRV, summary="Get the slow log's length")
def slowlog_len(client: Client, argv: list[str]) -> bytes:
    return integer(len(latency_of(client).slowlog.entries))


@command("slowlog|reset", 2, _ADMIN, group=_SRV, summary="Clear the slow log")
def slowlog_reset(client: Client, argv: list[str]) -> bytes:
    latency_of(client).slowlog.reset()
    return OK


_SLOWLOG_HELP = (
    "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
    "HELP",
    "    Prints this help.",
)


@command("slowlog|help", 2, "loading stale", group=_SRV)
def slowlog_help(client: Client, argv: list[str]) -> bytes:
    return _help(client, _SLOWLOG_HELP)


# ------------------------------------------------------------------ LATENCY


@command("latency|latest", 2, _ADMIN, group=_SRV, summary="Latest latency samples")
def latency_latest(client: Client, argv: list[str]) -> bytes:
    """[event, time of the newest sample, its ms, the all-time maximum ms] per event."""
    rows = [
        [name, event.samples[-1][0], event.samples[-1][1], event.max]
        for name, event in latency_of(client).events.items()
        if event.samples
    ]
    return client.encode(rows)


@command("latency|history", 3, _ADMIN, group=_SRV, summary="An event's latency samples")
def latency_history(client: Client, argv: list[str]) -> bytes:
    event = latency_of(client).events.get(argv[2])
    samples = [] if event is None else [[when, ms] for when, ms in event.samples]
    return client.encode(samples)


@command("latency|reset", -2, _ADMIN, group=_SRV, summary="Reset latency data")
def latency_reset(client: Client, argv: list[str]) -> bytes:
    """The events named (case-insensitively; all if none), and how many there were."""
    events = latency_of(client).events
    if len(argv) == 2:
        count = len(events)
        events.clear()
        return integer(count)
    resets = 0
    for wanted in argv[2:]:
        for name in [n for n in events if n.lower() == wanted.lower()]:
            del events[name]
            resets += 1
    return integer(resets)


@command("latency|graph", 3, _ADMIN, group=_SRV, summary="An event's latency graph")
def latency_graph(client: Client, argv: list[str]) -> bytes:
    """Redis's ``latencyCommandGenSparkeline``: two header lines, then the samples' sparkline."""
    event = latency_of(client).events.get(argv[2])
    if event is None or not event.samples:
        raise CommandError(f"ERR No samples available for event '{argv[2]}'")
    values = [ms for _, ms in event.samples]
    now = int(time.time())
    labels = [_age(now - when) for when, _ in event.samples]
    graph = (
        f"{argv[2]} - high {max(values)} ms, low {min(values)} ms "
        f"(all time high {event.max} ms)\n" + "-" * _GRAPH_COLUMNS + "\n"
    )
    return bulk(graph + sparkline(values, labels))


#: Redis's ``LATENCY_GRAPH_COLS`` and the sparkline's rows and characters (sparkline.c).
_GRAPH_COLUMNS = 80
_GRAPH_ROWS = 4
_CHARSET = "_o#"  # Redis 7.0 draws it filled (SPARKLINE_FILL): "|" below a sample's top


def sparkline(values: list[int], labels: list[str]) -> str:
    """Redis 7.0's ``sparklineRender`` (filled): four rows of bars, then the labels downwards.

    Runs of up to 80 samples, each scaled between the lowest and highest
    of all; four rows of three levels each; a blank line, then the labels
    written vertically, one character a line.
    """
    low, high = min(values), max(values)
    span = (high - low) or 1
    steps = len(_CHARSET) * _GRAPH_ROWS
    out = []
    for start in range(0, len(values), _GRAPH_COLUMNS):
        if start:
            out.append("\n")
        part = range(start, min(start + _GRAPH_COLUMNS, len(values)))
        row = 0
        while True:
            chars = [" "] * len(part)
            more = False
            for j, i in enumerate(part):
                if row < _GRAPH_ROWS:
                    step = min(max(int((values[i] - low) * steps / span), 0), steps - 1)
                    index = step - (_GRAPH_ROWS - row - 1) * len(_CHARSET)
                    more = True
                    if 0 <= index < len(_CHARSET):
                        chars[j] = _CHARSET[index]
                    elif index >= len(_CHARSET):
                        chars[j] = "|"
                elif row - _GRAPH_ROWS < 1:  # the blank line before the labels
                    more = True
                    break
                elif len(labels[i]) > row - _GRAPH_ROWS - 1:
                    more = True
                    chars[j] = labels[i][row - _GRAPH_ROWS - 1]
            if not more:
                break
            out.append("".join(chars) + "\n")
            row += 1
    return "".join(out)


def _age(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


_ADVICE_SLOWLOG_ENABLE = (
    "- There are latency issues with potentially slow commands you are using. Try to enable "
    "the Slow Log Redis feature using the command 'CONFIG SET slowlog-log-slower-than {}'. "
    "If the Slow log is disabled Redis is not able to log slow commands execution for you.\n"
)
_ADVICE_SLOWLOG_TUNE = (
    "- Your current Slow Log configuration only logs events that are slower than your "
    "configured latency monitor threshold. Please use 'CONFIG SET slowlog-log-slower-than {}'.\n"
)
_ADVICE_SLOWLOG_INSPECT = (
    "- Check your Slow Log to understand what are the commands you are running which are too "
    "slow to execute. Please check https://redis.io/commands/slowlog for more information.\n"
)
_ADVICE_SCHEDULER = (
    "- The system is slow to execute Redis code paths not containing system calls. This "
    "usually means the system does not provide Redis CPU time to run for long periods. You "
    "should try to:\n"
    "  1) Lower the system load.\n"
    "  2) Use a computer / VM just for Redis if you are running other software in the same "
    "system.\n"
    '  3) Check if you have a "noisy neighbour" problem.\n'
    "  4) Check with 'redis-cli --intrinsic-latency 100' what is the intrinsic latency in "
    "your system.\n"
    "  5) Check if the problem is allocator-related by recompiling Redis with MALLOC=libc, if "
    "you are using Jemalloc. However this may create fragmentation problems.\n"
)
_ADVICE_LARGE_OBJECTS = (
    "- Deleting, expiring or evicting (because of maxmemory policy) large objects is a "
    "blocking operation. If you have very large objects that are often deleted, expired, or "
    "evicted, try to fragment those objects into multiple smaller objects.\n"
)


def doctor_report(latency: Latency, slower_than: int, threshold: int) -> str:
    """Redis 7.0's ``createLatencyReport`` for the events snapkv records."""
    if not latency.events and threshold == 0:
        return (
            "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis "
            'instance. You may use "CONFIG SET latency-monitor-threshold <milliseconds>." in '
            "order to enable it. If we weren't in a deep space mission I'd suggest to take a "
            "look at https://redis.io/topics/latency-monitor.\n"
        )
    report = ""
    enable = tune = inspect = scheduler = False
    now = int(time.time())
    for number, (name, event) in enumerate(latency.events.items(), 1):
        if number == 1:
            report += (
                "Dave, I have observed latency spikes in this Redis instance. "
                "You don't mind talking about it, do you Dave?\n\n"
            )
        values = [ms for _, ms in event.samples]
        count = len(values)
        avg = sum(values) // count if count else 0
        mad = sum(abs(avg - ms) for ms in values) // count if count else 0
        period = max(1, now - min(w for w, _ in event.samples)) if count else 0
        report += (
            f"{number}. {name}: {count} latency spikes (average {avg}ms, mean deviation "
            f"{mad}ms, period {period / count if count else 0:.2f} sec). Worst all time event "
            f"{event.max}ms."
        )
        if name == "command":
            if slower_than < 0:
                enable = True
            elif slower_than // 1000 > threshold:
                tune = True
            inspect = True
        if name == "fast-command":
            scheduler = True
        report += "\n"
    if not latency.events:
        return (
            "Dave, no latency spike was observed during the lifetime of this Redis instance, "
            "not in the slightest bit. I honestly think you ought to sit down calmly, take a "
            "stress pill, and think things over.\n"
        )
    if not (enable or tune or inspect or scheduler):
        return report + (
            "\nWhile there are latency events logged, I'm not able to suggest any easy fix. "
            "Please use the Redis community to get some help, providing this report in your "
            "help request.\n"
        )
    report += "\nI have a few advices for you:\n\n"
    if enable:
        report += _ADVICE_SLOWLOG_ENABLE.format(threshold * 1000)
    if tune:
        report += _ADVICE_SLOWLOG_TUNE.format(threshold * 1000)
    if inspect:
        report += _ADVICE_SLOWLOG_INSPECT
    if scheduler:
        report += _ADVICE_SCHEDULER
    if inspect:
        report += _ADVICE_LARGE_OBJECTS
    return report


@command("latency|doctor", 2, _ADMIN, group=_SRV, summary="A latency analysis report")
def latency_doctor(client: Client, argv: list[str]) -> bytes:
    config = client.server.config
    text = doctor_report(
        latency_of(client), config.slowlog_log_slower_than, config.latency_monitor_threshold
    )
    if client.resp == 3:  # a verbatim string, as Redis's addReplyVerbatim
        data = text.encode()
        return b"=%d\r\ntxt:%s\r\n" % (len(data) + 4, data)
    return bulk(text)


def _histogram_entry(latency: Latency, cmd: Command) -> dict[str, Any] | None:
    histogram = latency.histograms.get(cmd.full_name)
    if not histogram:
        return None
    calls = max(cmd.calls, 1)
    return {"calls": calls, "histogram_usec": cumulative_usec(histogram, calls)}


def _commands(client: Client) -> list[Command]:
    table = client.server.table
    found = []
    for name, cmd in table.items():
        if name == cmd.name:
            found.append(cmd)
            found.extend({id(s): s for s in (cmd.subcommands or {}).values()}.values())
    return found


@command("latency|histogram", -2, _ADMIN, group=_SRV, summary="Per-command latency histograms")
def latency_histogram(client: Client, argv: list[str]) -> bytes:
    """Each command's calls and cumulative µs histogram (every command that ran if none named).

    A container's name (CONFIG) stands for itself and each of its subcommands,
    as Redis's ``latencySpecificCommandsFillCDF``; unknown names are skipped.
    """
    latency = latency_of(client)
    everything = _commands(client)
    latency.fold_all(everything)
    wanted: list[Command] = []
    if len(argv) == 2:
        wanted = everything
    else:
        table = client.server.table
        for name in argv[2:]:
            parent, _, sub = name.lower().partition("|")
            cmd = table.get(parent)
            if cmd is None:
                continue
            if sub:
                found = (cmd.subcommands or {}).get(sub)
                wanted.extend([found] if found is not None else [])
                continue
            wanted.append(cmd)
            wanted.extend({id(s): s for s in (cmd.subcommands or {}).values()}.values())
    reply: dict[str, Any] = {}
    for cmd in wanted:
        entry = _histogram_entry(latency, cmd)
        if entry is not None:
            reply[cmd.full_name] = entry
    return client.encode(reply)


_LATENCY_HELP = (
    "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return a human readable latency analysis report.",
    "GRAPH <event>",
    "    Return an ASCII latency graph for the <event> class.",
    "HISTORY <event>",
    "    Return time-latency samples for the <event> class.",
    "LATEST",
    "    Return the latest latency samples for all events.",
    "RESET [<event> ...]",
    "    Reset latency data of one or more <event> classes.",
    "    (default: reset all data for all event classes)",
    "HISTOGRAM [COMMAND ...]",
    "    Return a cumulative distribution of latencies in the format of a histogram for the "
    "specified command names.",
    "    If no commands are specified then all histograms are replied.",
    "HELP",
    "    Prints this help.",
)


@command("latency|help", 2, "loading stale", group=_SRV)
def latency_help(client: Client, argv: list[str]) -> bytes:
    return _help(client, _LATENCY_HELP)
