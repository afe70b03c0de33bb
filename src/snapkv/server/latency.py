"""How long commands take: the slow log's threshold, the latency monitor, per-command histograms.

Redis's ``call()`` measures every command once and feeds three consumers;
so does :class:`Latency`, the dispatcher's one door to them:

* the slow log (``slowlog-log-slower-than`` µs, -1 none, 0 all;
  ``slowlog-max-len`` entries), kept by :class:`~snapkv.server.table.SlowLog`;
* the latency monitor (latency.c): with ``latency-monitor-threshold`` ms
  set, a command that took at least that long is a sample of the event
  ``command`` (``fast-command`` for one flagged ``fast``); each event keeps
  its newest 160 samples, one per second (the slowest of that second), and
  its all-time maximum, for LATENCY LATEST/HISTORY/DOCTOR/GRAPH;
* a latency histogram per command (``latency-tracking``), for INFO
  latencystats and LATENCY HISTOGRAM.

The dispatcher compares each call's time with :attr:`Latency.slow_after`
(the smaller of the two thresholds) and calls :meth:`Latency.slow` only
past it, so a fast command costs one comparison.

The histograms are *sampled*: the first call of a command and every 8th
after it (``calls & SAMPLE_MASK == 1``, one test on the counter the
dispatcher keeps anyway) put their time in ``Command.samples``; every
``FOLD_AT`` samples, and before any report, :meth:`Latency.fold` sorts them
(C) and counts them per bucket with one bisection per non-empty bucket.
Recording every call cost about 85 ns of a GET's 700 ns in the dispatcher
(measured), over the 3% a pipelined GET may spend on it; one call in 8
costs about 15. The percentiles are those of the sample (an unbiased
estimate: the calls sampled are picked by count, not by time); LATENCY
HISTOGRAM's ``calls`` is the command's real call count and its buckets'
counts are the sample's scaled to it. Buckets are 16 per power of two of
nanoseconds (4.4% wide; Redis's HDR histogram has 2 significant digits),
from 1 ns to 2^30 ns (Redis clips at 1 s too); a percentile is reported
as its bucket's upper bound, as HDR reports a value's highest equivalent
value.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from snapkv.server.monitor import redact
from snapkv.server.table import Command, SlowLog

#: What the slow log shows for a secret argument.
REDACTED = "(redacted)"

if TYPE_CHECKING:
    from snapkv.server.client import Client
    from snapkv.server.state import ServerState

__all__ = [
    "EVENT_SAMPLES",
    "FOLD_AT",
    "SAMPLE_MASK",
    "Event",
    "Latency",
    "cumulative_usec",
    "percentile_usec",
]

#: Samples a command keeps unsorted before they are folded into its histogram.
FOLD_AT = 256
#: A call is sampled when ``calls & SAMPLE_MASK == 1``: the first and every 8th.
SAMPLE_MASK = 7
#: Samples an event keeps (Redis's ``LATENCY_TS_LEN``).
EVENT_SAMPLES = 160
#: Buckets per power of two, and the powers of two of nanoseconds covered.
_PER_OCTAVE = 16
_OCTAVES = 30
#: Each bucket's upper bound, in seconds (what samples are) and in nanoseconds.
_BOUNDS_NS = [2 ** (i / _PER_OCTAVE) for i in range(_PER_OCTAVE * _OCTAVES + 1)]
_BOUNDS = [ns / 1e9 for ns in _BOUNDS_NS]
_LAST = len(_BOUNDS) - 1


@dataclass(slots=True)
class Event:
    """One latency event's samples (Redis's ``latencyTimeSeries``)."""

    #: (Unix second, milliseconds), oldest first, at most :data:`EVENT_SAMPLES`.
    samples: list[tuple[int, int]] = field(default_factory=list)
    #: The slowest sample ever (kept when older samples are dropped).
    max: int = 0

    def add(self, when: int, ms: int) -> None:
        """A sample; one in the same second as the newest replaces it if slower."""
        self.max = max(self.max, ms)
        if self.samples and self.samples[-1][0] == when:
            if ms > self.samples[-1][1]:
                self.samples[-1] = (when, ms)
            return
        self.samples.append((when, ms))
        del self.samples[:-EVENT_SAMPLES]


class Latency:
    """The slow log, the latency monitor's events and the per-command histograms of a server."""

    def __init__(self, server: ServerState, slowlog: SlowLog) -> None:
        self.server = server
        self.slowlog = slowlog
        #: Event name -> its samples, in the order events first happened.
        self.events: dict[str, Event] = {}
        #: Command full name -> bucket index -> calls (see the module docstring).
        self.histograms: dict[str, dict[int, int]] = {}
        #: Seconds from which a call is handed to :meth:`slow` (inf: never).
        self.slow_after = math.inf
        self.refresh()

    def refresh(self) -> None:
        """Read the thresholds again (after CONFIG SET or a config file)."""
        config = self.server.config
        limits = []
        if config.slowlog_log_slower_than >= 0:
            limits.append(config.slowlog_log_slower_than / 1e6)
        if config.latency_monitor_threshold > 0:
            limits.append(config.latency_monitor_threshold / 1e3)
        self.slow_after = min(limits, default=math.inf)
        self.slowlog.max_len = config.slowlog_max_len

    # ------------------------------------------------------------ recording

    def slow(self, client: Client, cmd: Command, argv: list[str], took: float) -> None:
        """A call that took ``took`` seconds, at least :attr:`slow_after`: log it where due."""
        config = self.server.config
        usec = int(took * 1_000_000)  # Redis measures in whole microseconds
        slower_than = config.slowlog_log_slower_than
        if 0 <= slower_than <= usec and not cmd.skip_slowlog:
            self.slowlog.max_len = config.slowlog_max_len
            # A script's own commands come from Redis's Lua client, which has no peer.
            addr = "?:0" if client.scripting else client.addr
            self.slowlog.add(redacted(argv), took, addr, client.name)
        threshold = config.latency_monitor_threshold
        if threshold and usec // 1000 >= threshold:
            self.add_sample("fast-command" if "fast" in cmd.flags else "command", usec // 1000)

    def add_sample(self, event: str, ms: int) -> None:
        """Redis's ``latencyAddSample``: ``event`` took ``ms`` milliseconds now."""
        self.events.setdefault(event, Event()).add(int(time.time()), ms)

    def record(self, cmd: Command, took: float) -> None:
        """A call's time for ``cmd``'s histogram, if it is one sampled (see the docstring).

        Called after ``cmd.calls`` counted the call; the dispatcher's fast
        path makes the sampling test itself before calling.
        """
        if cmd.calls & SAMPLE_MASK != 1:
            return
        samples = cmd.samples
        samples.append(took)
        if len(samples) >= FOLD_AT:
            self.fold(cmd)

    def fold(self, cmd: Command) -> None:
        """Count ``cmd``'s waiting samples into its histogram (dropped if tracking is off)."""
        samples = cmd.samples
        if not samples:
            return
        if not self.server.config.latency_tracking:
            samples.clear()
            return
        samples.sort()
        histogram = self.histograms.setdefault(cmd.full_name, {})
        i, n = 0, len(samples)
        while i < n:
            bucket = min(bisect_left(_BOUNDS, samples[i]), _LAST)
            end = n if bucket == _LAST else bisect_right(samples, _BOUNDS[bucket], i)
            histogram[bucket] = histogram.get(bucket, 0) + end - i
            i = end
        samples.clear()

    def fold_all(self, commands: Iterable[Command]) -> None:
        """Fold every command's waiting samples (before a report)."""
        for cmd in commands:
            if cmd.samples:
                self.fold(cmd)

    def reset_histograms(self, commands: Iterable[Command]) -> None:
        """CONFIG RESETSTAT: forget every command's latencies."""
        for cmd in commands:
            cmd.samples.clear()
        self.histograms.clear()


def percentile_usec(histogram: dict[int, int], percentile: float) -> float:
    """The latency (µs) at ``percentile`` of ``histogram``: HDR's ``value_at_percentile``."""
    total = sum(histogram.values())
    wanted = max(1, int(percentile / 100 * total + 0.5))
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= wanted:
            return _BOUNDS_NS[bucket] / 1000
    return 0.0


def cumulative_usec(histogram: dict[int, int], calls: int) -> dict[int, int]:
    """LATENCY HISTOGRAM's buckets: µs bound (Redis's powers of two from 1) -> calls up to it.

    As Redis's ``fillCommandCDF``: powers of two of 1024 ns, each named by
    its highest equivalent value in µs (1, 2, 4, 8, 16, 33, 66, ...), a
    bucket listed only when the count grows there. The sample's counts are
    scaled to ``calls`` (the last bucket holds them all).
    """
    scaled: dict[int, int] = {}
    total_samples = sum(histogram.values())
    for bound, seen in _cumulative(histogram).items():
        count = round(seen * calls / total_samples) if seen < total_samples else calls
        if count > max(scaled.values(), default=0):
            scaled[bound] = count
    return scaled


def _cumulative(histogram: dict[int, int]) -> dict[int, int]:
    out: dict[int, int] = {}
    seen = previous = 0
    ordered = sorted(histogram.items())
    at = 0
    total = sum(histogram.values())
    power = 0
    while previous < total:
        bound = _PER_OCTAVE * (10 + power)  # the bucket ending at 1024 * 2**power ns
        while at < len(ordered) and ordered[at][0] <= bound:
            seen += ordered[at][1]
            at += 1
        if power + 10 >= _OCTAVES:  # the last bucket takes what is left
            seen = total
        if seen > previous:
            out[(1032 * 2**power - 1) // 1000] = seen
        previous = seen
        power += 1
    return out


#: Settings whose CONFIG SET value Redis 7.0 hides (its ``SENSITIVE_CONFIG``).
_SECRET_SETTINGS = frozenset(
    {"requirepass", "masterauth", "tls-key-file-pass", "tls-client-key-file-pass"}
)


def redacted(argv: list[str]) -> list[str]:
    """``argv`` as the slow log keeps it: its secrets ``(redacted)``, the rest as sent.

    As Redis 7.0's ``redactClientCommandArgument``: AUTH's and HELLO AUTH's
    credentials (:func:`snapkv.server.monitor.redact`), the value of each
    sensitive setting in CONFIG SET (wherever the pair stands: the safe side
    of Redis, which stops at the first unknown name); ACL SETUSER redacts
    its own arguments in place before they get here.
    """
    name = argv[0].lower()
    if name in ("auth", "hello"):
        hidden = redact(argv)
    elif name == "config" and len(argv) > 3 and argv[1].lower() == "set":
        pairs = range(2, len(argv) - 1, 2)
        hidden = {i + 1 for i in pairs if argv[i].lower() in _SECRET_SETTINGS}
    else:
        return argv
    return [REDACTED if i in hidden else arg for i, arg in enumerate(argv)]
