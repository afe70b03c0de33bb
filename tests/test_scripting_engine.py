"""Where a script runs: first on the caller's (the event loop's) thread, then, past
INLINE_SECONDS, undone and run again from the start on the script thread.

The dispatcher is given a stand-in for the event loop's ``threadsafe_call``
(it runs the callable at once), which is all the engine needs to use its
script thread.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("lupa")

from snapkv import Store
from snapkv.server.client import Client
from snapkv.server.dispatch import Dispatcher
from snapkv.server.scripting import engine_of
from snapkv.server.scripting.sandbox import LARGE_INPUT, LARGE_INPUT_GLOBAL
from snapkv.server.state import Config

#: Long enough to leave the loop's thread (2 ms), short enough for a test.
SPIN = "local n = 0; for i = 1, 2e6 do n = n + 1 end;"


class Server:
    def __init__(self, *, with_loop: bool) -> None:
        self.store = Store()
        self.server = Dispatcher(self.store, Config())
        self.threads: set[int] = set()
        if with_loop:
            self.server.threadsafe_call = lambda fn: fn()
        self.client = Client(self.server)

    def __call__(self, *argv: str) -> bytes:
        return self.server.execute(self.client, list(argv))


@pytest.fixture
def servers() -> Iterator[tuple[Server, Server]]:
    plain, looped = Server(with_loop=False), Server(with_loop=True)
    yield plain, looped
    plain.store.close()
    looped.store.close()


def _thread_of_run(server: Server) -> list[int]:
    """Record the thread each redis.call of the server's scripts runs on."""
    seen: list[int] = []
    table: Any = server.server.table
    ping = table["ping"]
    original = ping.handler

    def handler(client: Client, argv: list[str]) -> bytes:
        if client.scripting:
            seen.append(threading.get_ident())
        return original(client, argv)

    ping.handler = handler
    return seen


def test_a_short_script_stays_on_the_callers_thread(servers: tuple[Server, Server]) -> None:
    _plain, looped = servers
    seen = _thread_of_run(looped)
    assert looped("EVAL", "return redis.call('ping')", "0") == b"+PONG\r\n"
    assert seen == [threading.get_ident()]


def test_a_long_script_is_run_again_on_the_script_thread_with_nothing_left_of_the_first(
    servers: tuple[Server, Server],
) -> None:
    plain, looped = servers
    script = (
        "redis.call('ping'); local r = math.random(1000000);"
        " local runs = redis.call('incr', 'runs');"
        + SPIN
        + " return {r, runs, math.random(1000000)}"
    )
    seen = _thread_of_run(looped)
    expected = plain("EVAL", script, "0")
    assert looped("EVAL", script, "0") == expected  # same random numbers, INCR done once
    assert looped("GET", "runs") == b"$1\r\n1\r\n"
    assert len(seen) == 2 and seen[0] == threading.get_ident() != seen[1]


def test_a_script_leaves_the_loop_thread_before_it_publishes(
    servers: tuple[Server, Server],
) -> None:
    """PUBLISH cannot be undone: the run on the loop's thread stops before it, and the
    script runs again (publishing once) where BUSY and SCRIPT KILL can reach it."""
    _plain, looped = servers
    seen = _thread_of_run(looped)
    script = "redis.call('ping'); redis.call('publish', 'c', 'm'); redis.call('ping'); return 1"
    assert looped("EVAL", script, "0") == b":1\r\n"
    here = threading.get_ident()
    assert len(seen) == 3 and seen[0] == here and here not in seen[1:]


def test_with_notifications_on_a_script_never_starts_on_the_loop_thread(
    servers: tuple[Server, Server],
) -> None:
    _plain, looped = servers
    assert looped("CONFIG", "SET", "notify-keyspace-events", "KEA") == b"+OK\r\n"
    seen = _thread_of_run(looped)
    assert looped("EVAL", "return redis.call('ping')", "0") == b"+PONG\r\n"
    assert len(seen) == 1 and seen[0] != threading.get_ident()


def test_an_exec_holding_a_script_runs_its_block_on_the_script_thread(
    servers: tuple[Server, Server],
) -> None:
    """The whole block (one transaction) goes where BUSY and SCRIPT KILL can reach it;
    an EXEC without a script stays on the caller's thread."""
    _plain, looped = servers
    seen = _thread_of_run(looped)
    looped("MULTI")
    looped("EVAL", "redis.call('ping'); redis.call('set', 'x', '1');" + SPIN + " return 1", "0")
    looped("GET", "x")
    assert looped("EXEC") == b"*2\r\n:1\r\n$1\r\n1\r\n"
    assert len(seen) == 1 and seen[0] != threading.get_ident()
    assert looped("GET", "x") == b"$1\r\n1\r\n"
    looped("MULTI")
    looped("PING")
    assert looped("EXEC") == b"*1\r\n+PONG\r\n"


def test_a_function_runs_once_on_the_script_thread(servers: tuple[Server, Server]) -> None:
    """A library's upvalues outlive an undo: a function never starts on the loop's thread,
    so a long FCALL is run (and counted) once."""
    _plain, looped = servers
    library = (
        "#!lua name=counter\nlocal calls = 0\n"
        "redis.register_function('bump', function() calls = calls + 1; redis.call('ping');"
        + SPIN
        + " return calls end)"
    )
    assert looped("FUNCTION", "LOAD", library) == b"$7\r\ncounter\r\n"
    seen = _thread_of_run(looped)
    assert [looped("FCALL", "bump", "0") for _ in range(3)] == [b":1\r\n", b":2\r\n", b":3\r\n"]
    assert len(seen) == 3 and threading.get_ident() not in seen


def test_a_long_script_logs_once(
    servers: tuple[Server, Server], caplog: pytest.LogCaptureFixture
) -> None:
    """redis.log cannot be undone: the run on the loop's thread stops before it."""
    _plain, looped = servers
    script = "redis.log(redis.LOG_WARNING, 'written once') " + SPIN + " return 1"
    with caplog.at_level("WARNING", logger="snapkv.server"):
        assert looped("EVAL", script, "0") == b":1\r\n"
    assert [r.getMessage() for r in caplog.records].count("written once") == 1


@pytest.mark.parametrize(("size", "moved"), [(LARGE_INPUT + 1, True), (LARGE_INPUT, False)])
def test_a_library_call_on_a_large_input_leaves_the_loop_thread_before_the_work(
    servers: tuple[Server, Server], size: int, moved: bool
) -> None:
    """The libraries ask before a long Python call (one the count hook cannot stop):
    the run leaves the loop's thread first, so the work is done once, where BUSY is."""
    _plain, looped = servers
    engine = engine_of(looped.server)

    def extra(real: Any, redis: Any) -> None:
        # What a library does: call the state's hidden global before the work.
        real[b"probe"] = engine.eval_vm.lua.globals()[LARGE_INPUT_GLOBAL]

    vm = engine.new_vm(extra)
    assert vm.lua.globals()[LARGE_INPUT_GLOBAL] is not None
    fn = vm.compile(b"redis.call('ping'); probe(tonumber(ARGV[1])); redis.call('ping'); return 1")
    seen = _thread_of_run(looped)
    reply = engine.run(
        looped.client, vm, fn, [], [str(size)], name="probe", command=["EVAL", "probe", "0"]
    )
    assert reply == b":1\r\n"
    here = threading.get_ident()
    if moved:
        assert len(seen) == 3 and seen[0] == here and here not in seen[1:]
    else:
        assert seen == [here, here]
