"""SLOWLOG's settings, the latency monitor (LATENCY) and the per-command latency histograms.

Commands take as long as the test says: the dispatcher's ``perf_counter``
is replaced by a clock each read of which moves on by ``clock[0]`` seconds.
Reply shapes and texts are compared with redis-server 7.0's where its
answer does not depend on timing (HELP, errors, an empty monitor).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conftest import Twin
from reference import parse
from snapkv.server import dispatch

DEFAULTS = {"slowlog-log-slower-than": "10000", "slowlog-max-len": "128"}
DEFAULTS |= {"latency-monitor-threshold": "0", "latency-tracking": "yes"}
DEFAULTS["latency-tracking-info-percentiles"] = "50 99 99.9"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Each command takes ``clock[0]`` seconds (between the dispatcher's two clock reads)."""
    step = [0.0]
    now = [0.0]

    def perf_counter() -> float:
        now[0] += step[0]
        return now[0]

    monkeypatch.setattr(dispatch, "perf_counter", perf_counter)
    return step


@pytest.fixture
def t(twin: Twin) -> Iterator[Twin]:
    """The twin; the reference server's settings put back afterwards."""
    yield twin
    for name, value in DEFAULTS.items():
        twin.raw("CONFIG", "SET", name, value)
    twin.raw("LATENCY", "RESET")


def run(t: Twin, *argv: str) -> object:
    return parse(t.server.execute(t.snapkv, list(argv)))


# ------------------------------------------------------------------ SLOWLOG


def test_slowlog_threshold_is_a_setting(t: Twin, clock: list[float]) -> None:
    clock[0] = 0.002  # 2 ms: under the default 10 ms
    run(t, "SET", "a", "1")
    assert run(t, "SLOWLOG", "LEN") == 0
    clock[0] = 0.0
    run(t, "CONFIG", "SET", "slowlog-log-slower-than", "2000")
    clock[0] = 0.002
    run(t, "SET", "b", "1")  # exactly the threshold: logged, as Redis's >=
    clock[0] = 0.0019
    run(t, "SET", "c", "1")
    clock[0] = 0.0
    entries = run(t, "SLOWLOG", "GET")
    assert [entry[3] for entry in entries] == [[b"SET", b"b", b"1"]]
    assert entries[0][2] == 2000


def test_slowlog_zero_logs_everything_and_minus_one_nothing(t: Twin, clock: list[float]) -> None:
    run(t, "CONFIG", "SET", "slowlog-log-slower-than", "0")
    run(t, "SLOWLOG", "RESET")
    run(t, "PING")
    run(t, "GET", "x")
    assert run(t, "SLOWLOG", "LEN") == 3  # SLOWLOG RESET itself too, as Redis
    run(t, "CONFIG", "SET", "slowlog-log-slower-than", "-1")
    run(t, "SLOWLOG", "RESET")
    clock[0] = 1.0
    run(t, "PING")
    clock[0] = 0.0
    assert run(t, "SLOWLOG", "LEN") == 0


def test_slowlog_max_len_is_a_setting(t: Twin, clock: list[float]) -> None:
    run(t, "CONFIG", "SET", "slowlog-max-len", "3", "slowlog-log-slower-than", "0")
    for i in range(10):
        run(t, "SET", "k", str(i))
    assert run(t, "SLOWLOG", "LEN") == 3
    # SLOWLOG LEN is logged too (everything is): the newest three.
    assert [e[3] for e in run(t, "SLOWLOG", "GET")] == [
        [b"SLOWLOG", b"LEN"],
        [b"SET", b"k", b"9"],
        [b"SET", b"k", b"8"],
    ]


def test_slowlog_help_is_redis_text(t: Twin) -> None:
    t.same("SLOWLOG", "HELP")


# ------------------------------------------------------------------ LATENCY


def test_an_empty_latency_monitor_answers_as_redis(t: Twin) -> None:
    t.same("LATENCY", "RESET")
    for argv in (
        ("LATENCY", "LATEST"),
        ("LATENCY", "HISTORY", "command"),
        ("LATENCY", "RESET"),
        ("LATENCY", "RESET", "command", "x"),
        ("LATENCY", "GRAPH", "command"),
        ("LATENCY", "DOCTOR"),  # the "Latency monitoring is disabled" text
        ("LATENCY", "HELP"),
        ("LATENCY", "HISTOGRAM", "nosuch"),
    ):
        t.same(*argv)


def test_slow_commands_are_latency_events(t: Twin, clock: list[float]) -> None:
    run(t, "CONFIG", "SET", "latency-monitor-threshold", "5")
    clock[0] = 0.004
    run(t, "SET", "quick", "1")  # 4 ms: under the threshold
    clock[0] = 0.020
    run(t, "SET", "a", "1")  # not fast: "command"
    clock[0] = 0.030
    run(t, "GET", "a")  # fast: "fast-command"
    run(t, "SET", "b", "1")  # the same second as the first: the slower one stays
    clock[0] = 0.0
    latest = {row[0]: row[1:] for row in run(t, "LATENCY", "LATEST")}
    assert set(latest) == {b"command", b"fast-command"}
    _, last, worst = latest[b"command"]
    assert (last, worst) in ((30, 30), (20, 30))  # (20, 30) if the second changed between
    history = run(t, "LATENCY", "HISTORY", "command")
    assert [ms for _, ms in history] in ([30], [20, 30])
    assert run(t, "LATENCY", "RESET", "COMMAND", "nosuch") == 1  # names: any case
    assert [row[0] for row in run(t, "LATENCY", "LATEST")] == [b"fast-command"]


def test_latency_doctor_reports_and_advises(t: Twin, clock: list[float]) -> None:
    run(t, "CONFIG", "SET", "latency-monitor-threshold", "5")
    assert run(t, "LATENCY", "DOCTOR").startswith(b"Dave, no latency spike was observed")
    clock[0] = 0.020
    run(t, "SET", "a", "1")
    clock[0] = 0.0
    report = run(t, "LATENCY", "DOCTOR")
    assert report.startswith(
        b"Dave, I have observed latency spikes in this Redis instance. You don't mind "
        b"talking about it, do you Dave?\n\n1. command: 1 latency spikes (average 20ms, "
        b"mean deviation 0ms, period "
    )
    # slowlog-log-slower-than (10 ms) is over the 5 ms threshold: Redis's advice.
    assert b"Please use 'CONFIG SET slowlog-log-slower-than 5000'." in report
    graph = run(t, "LATENCY", "GRAPH", "command")
    assert graph.startswith(b"command - high 20 ms, low 20 ms (all time high 20 ms)\n" + b"-" * 80)


def test_latency_histogram_is_per_command_cumulative(t: Twin, clock: list[float]) -> None:
    clock[0] = 3e-6  # 3 µs: Redis's bucket "4" (up to 4.127 µs)
    for _ in range(10):
        run(t, "SET", "a", "1")
    clock[0] = 100e-6  # 100 µs: bucket "132"
    for _ in range(9):
        run(t, "GET", "a")
    run(t, "CONFIG", "GET", "timeout")
    clock[0] = 0.0
    reply = dict(_pairs(run(t, "LATENCY", "HISTOGRAM", "set", "get", "config", "nosuch")))
    assert set(reply) == {b"set", b"get", b"config|get"}
    set_ = dict(_pairs(reply[b"set"]))
    assert set_[b"calls"] == 10
    assert dict(_pairs(set_[b"histogram_usec"])) == {4: 10}
    get = dict(_pairs(reply[b"get"]))
    assert (get[b"calls"], dict(_pairs(get[b"histogram_usec"]))) == (9, {132: 9})
    # The reply's shape is Redis's: a map of maps (RESP3 too).
    run(t, "HELLO", "3")
    raw = t.server.execute(t.snapkv, ["LATENCY", "HISTOGRAM", "set"])
    assert raw == (
        b"%1\r\n$3\r\nset\r\n%2\r\n$5\r\ncalls\r\n:10\r\n"
        b"$14\r\nhistogram_usec\r\n%1\r\n:4\r\n:10\r\n"
    )


def _pairs(flat: list[object]) -> list[tuple[object, object]]:
    return list(zip(flat[0::2], flat[1::2], strict=True))


def _latencystats(t: Twin) -> dict[str, dict[str, float]]:
    text = t.server.execute(t.snapkv, ["INFO", "latencystats"]).decode()
    stats = {}
    for line in text.split("\r\n"):
        if line.startswith("latency_percentiles_usec_"):
            name, values = line[len("latency_percentiles_usec_") :].split(":")
            stats[name] = {k: float(v) for k, v in (p.split("=") for p in values.split(","))}
    return stats


def test_info_latencystats_percentiles(t: Twin, clock: list[float]) -> None:
    # Calls 1, 9, 17, ... are sampled: 792 quick ones, then 8 slow ones of
    # which one is sampled: 1 slow sample in 100, past p99, within p99.9.
    clock[0] = 3e-6
    for _ in range(792):
        run(t, "INCR", "n")
    clock[0] = 5e-3
    for _ in range(8):
        run(t, "INCR", "n")
    clock[0] = 0.0
    stats = _latencystats(t)["incr"]
    assert list(stats) == ["p50", "p99", "p99.9"]
    # Within a bucket (4.4%) of the times taken, as Redis's HDR reports them.
    assert 3.0 <= stats["p50"] <= 3.0 * 1.045
    assert 5000 <= stats["p99.9"] <= 5000 * 1.045
    run(t, "CONFIG", "SET", "latency-tracking-info-percentiles", "0 99.99 100")
    assert list(_latencystats(t)["incr"]) == ["p0", "p99.99", "p100"]
    run(t, "CONFIG", "SET", "latency-tracking", "no")
    assert _latencystats(t) == {}


def test_latency_histograms_sample_one_call_in_eight(t: Twin, clock: list[float]) -> None:
    """Calls are counted exactly; their times are sampled (see server/latency.py)."""
    clock[0] = 3e-6
    for _ in range(1000):
        run(t, "SET", "a", "1")
    clock[0] = 0.0
    command = t.server.table["set"]
    latency = t.server.latency
    latency.fold(command)
    assert sum(latency.histograms["set"].values()) == 125  # calls 1, 9, ..., 993
    set_ = dict(_pairs(dict(_pairs(run(t, "LATENCY", "HISTOGRAM", "set")))[b"set"]))
    assert set_[b"calls"] == 1000


def test_latency_graph_is_redis_sparkline() -> None:
    """Samples of 10, 30, 50 and 23 ms, 4, 2, 1 and 0 s old: redis-server 7.0.15's graph."""
    from snapkv.server.cmd_latency import sparkline

    assert sparkline([10, 30, 50, 23], ["4s", "2s", "1s", "0s"]) == (
        "  # \n _| \n ||_\n_|||\n    \n4210\nssss\n"
    )
    assert sparkline([20], ["0s"]) == " \n \n \n_\n \n0\ns\n"  # one sample
    wide = sparkline(list(range(100)), ["59s"] * 100)  # 80 columns, then the rest
    first, second = wide.split("\n\n", 1)
    assert len(first.split("\n")[0]) == 80 and len(second.split("\n")[0]) == 20


def test_a_failed_call_is_in_the_histogram_too(t: Twin, clock: list[float]) -> None:
    run(t, "SET", "s", "text")
    clock[0] = 3e-6
    assert t.server.execute(t.snapkv, ["INCR", "s"]).startswith(b"-ERR")
    clock[0] = 0.0
    reply = dict(_pairs(run(t, "LATENCY", "HISTOGRAM", "incr")))
    assert dict(_pairs(reply[b"incr"])) == {b"calls": 1, b"histogram_usec": [4, 1]}


def test_a_scripts_commands_are_logged_with_redis_address_for_it(t: Twin) -> None:
    """A command a script runs is logged on its own too, from "?:0" (Redis's Lua client)."""
    pytest.importorskip("lupa")
    run(t, "CONFIG", "SET", "slowlog-log-slower-than", "0")
    run(t, "SLOWLOG", "RESET")
    run(t, "EVAL", "redis.call('set','a','b') return 1", "0")
    entries = run(t, "SLOWLOG", "GET")
    assert [(entry[3], entry[4]) for entry in entries[:2]] == [
        ([b"EVAL", b"redis.call('set','a','b') return 1", b"0"], b"127.0.0.1:1000"),
        ([b"set", b"a", b"b"], b"?:0"),
    ]
