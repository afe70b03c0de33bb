"""Scripts over real sockets: redis-py's script helpers and locks, BUSY and SCRIPT KILL.

The server runs on its own event loop (``Running``), so a script runs on
the engine's script thread while the loop's thread waits for it; past
``busy-reply-threshold`` the other clients get ``-BUSY`` until SCRIPT KILL
(or the script's end) and the script's caller gets its reply through the
connection's wake.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from hashlib import sha1
from typing import Any

import pytest

pytest.importorskip("lupa")
redis = pytest.importorskip("redis")

from snapkv import Store  # noqa: E402
from snapkv.server.client import Client  # noqa: E402
from snapkv.server.dispatch import Dispatcher  # noqa: E402
from snapkv.server.state import Config  # noqa: E402
from support import wait_until  # noqa: E402
from test_server_e2e import DEADLINE, Running  # noqa: E402

BUSY = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
KILLED = "Script killed by user with SCRIPT KILL..."


@pytest.fixture
def serve() -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(**config: Any) -> Running:
        running = Running(Store(), Config(port=0, **config))
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


def test_register_script_and_evalsha_fallback(serve: Callable[..., Running]) -> None:
    r = serve().client()
    incr_by = r.register_script("return redis.call('incrby', KEYS[1], ARGV[1])")
    assert incr_by(keys=["n"], args=[5]) == 5  # EVALSHA: NOSCRIPT, then SCRIPT LOAD, then again
    assert incr_by(keys=["n"], args=[2]) == 7
    assert r.script_exists(incr_by.sha) == [True]
    assert r.script_flush() is True
    assert r.script_exists(incr_by.sha) == [False]
    assert incr_by(keys=["n"], args=[1]) == 8  # NOSCRIPT again, reloaded
    with pytest.raises(redis.exceptions.NoScriptError):
        r.evalsha("0" * 40, 0)


def test_scripts_in_a_pipeline(serve: Callable[..., Running]) -> None:
    r = serve().client()
    add = r.register_script("return redis.call('rpush', KEYS[1], ARGV[1])")
    with r.pipeline(transaction=True) as pipe:
        add(keys=["l"], args=["a"], client=pipe)
        add(keys=["l"], args=["b"], client=pipe)
        pipe.lrange("l", 0, -1)
        assert pipe.execute() == [1, 2, [b"a", b"b"]]
    with r.pipeline(transaction=False) as pipe:
        pipe.eval("return ARGV[1]", 0, "x")
        pipe.evalsha(add.sha, 1, "l", "c")
        assert pipe.execute() == [b"x", 3]


def test_resp3_client_sees_resp3_shapes(serve: Callable[..., Running]) -> None:
    r = serve().client(protocol=3)
    r.hset("h", "f", "v")
    assert r.eval("redis.setresp(3); return redis.call('hgetall', KEYS[1])", 1, "h") == {b"f": b"v"}
    assert r.eval("return {double = 2.5}", 0) == 2.5
    assert r.eval("redis.setresp(3); return false", 0) is False


def test_lock_acquire_extend_release_and_expiry(serve: Callable[..., Running]) -> None:
    r = serve().client()
    lock = r.lock("resource", timeout=0.3, blocking=False)
    assert lock.acquire()
    other = r.lock("resource", timeout=5, blocking=False)
    assert not other.acquire()
    assert lock.extend(1)  # LUA_EXTEND_SCRIPT
    assert r.pttl("resource") > 1000
    assert lock.reacquire()  # LUA_REACQUIRE_SCRIPT: back to its own timeout
    assert r.pttl("resource") <= 300
    lock.release()  # LUA_RELEASE_SCRIPT
    assert r.get("resource") is None
    assert other.acquire()
    lock.local.token = b"someone else"  # the release script compares tokens
    with pytest.raises(redis.exceptions.LockNotOwnedError):
        lock.release()
    assert r.exists("resource") == 1
    short = r.lock("brief", timeout=0.05, blocking=False)
    assert short.acquire()
    wait_until(lambda: r.get("brief") is None, timeout=DEADLINE, what="the lock to expire")
    with pytest.raises(redis.exceptions.LockNotOwnedError):
        short.release()
    assert r.lock("brief", timeout=5, blocking=False).acquire()


def _run_in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    result: list[Any] = []

    def target() -> None:
        try:
            result.append(fn())
        except Exception as exc:
            result.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, result


def _busy(r: Any, kill: str = "SCRIPT") -> bool:
    try:
        r.ping()
    except redis.exceptions.ResponseError as exc:
        assert str(exc) == BUSY.replace("SCRIPT KILL", f"{kill} KILL")
        return True
    return False


def test_busy_script_is_killed(serve: Callable[..., Running]) -> None:
    running = serve(busy_reply_threshold=50)
    caller, other = running.client(), running.client()
    with pytest.raises(redis.exceptions.ResponseError, match="NOTBUSY"):
        other.script_kill()
    thread, result = _run_in_thread(lambda: caller.eval("while true do end", 0))
    wait_until(lambda: _busy(other), timeout=DEADLINE, what="BUSY replies")
    with pytest.raises(redis.exceptions.ResponseError, match=r"^BUSY"):
        other.set("k", "v")
    assert other.script_kill() is True
    thread.join(DEADLINE)
    [error] = result
    assert isinstance(error, redis.exceptions.ResponseError)
    assert str(error).startswith(KILLED + " script: ")
    assert str(error).endswith(", on @user_script:1.")
    assert other.ping() is True  # the gate is open again
    assert caller.eval("return 42", 0) == 42  # and the caller carries on


def test_kill_reaches_a_script_that_catches_errors(serve: Callable[..., Running]) -> None:
    running = serve(busy_reply_threshold=50)
    caller, other = running.client(), running.client()
    script = "while true do pcall(function() while true do end end) end"
    thread, result = _run_in_thread(lambda: caller.eval(script, 0))
    wait_until(lambda: _busy(other), timeout=DEADLINE, what="BUSY replies")
    assert other.script_kill() is True
    thread.join(DEADLINE)
    assert KILLED in str(result[0])


def test_kill_reaches_a_loop_inside_a_coroutine(serve: Callable[..., Running]) -> None:
    running = serve(busy_reply_threshold=50)
    caller, other = running.client(), running.client()
    script = "local co = coroutine.wrap(function() while true do end end); co()"
    thread, result = _run_in_thread(lambda: caller.eval(script, 0))
    wait_until(lambda: _busy(other), timeout=DEADLINE, what="BUSY replies")
    assert other.script_kill() is True
    thread.join(DEADLINE)
    assert KILLED in str(result[0])
    assert other.ping() is True


def test_a_script_that_wrote_is_unkillable(serve: Callable[..., Running]) -> None:
    running = serve(busy_reply_threshold=50)
    caller, other = running.client(), running.client()
    # Writes, then runs about a second (a bounded loop: it cannot be killed).
    script = (
        "redis.call('set', 'w', '1'); local n = 0; for i = 1, 3e7 do n = n + i end; return 'done'"
    )
    thread, result = _run_in_thread(lambda: caller.eval(script, 0))
    wait_until(lambda: _busy(other), timeout=DEADLINE, what="BUSY replies")
    with pytest.raises(redis.exceptions.ResponseError, match=r"^UNKILLABLE Sorry the script"):
        other.script_kill()
    thread.join(DEADLINE)
    assert result == [b"done"]
    assert other.get("w") == b"1"


def test_commands_queued_behind_a_busy_script_run_after_it(serve: Callable[..., Running]) -> None:
    running = serve(busy_reply_threshold=50)
    caller, other = running.client(), running.client()
    with caller.pipeline(transaction=False) as pipe:
        pipe.eval("local n = 0; for i = 1, 2e7 do n = n + 1 end; return n", 0)
        pipe.set("after", "1")
        pipe.get("after")
        thread, result = _run_in_thread(pipe.execute)
        wait_until(lambda: _busy(other), timeout=DEADLINE, what="BUSY replies")
        thread.join(DEADLINE)
    assert result == [[20000000, True, b"1"]]


def test_a_long_script_that_wrote_is_undone_and_run_again_on_its_thread(
    serve: Callable[..., Running],
) -> None:
    """Its first run, on the loop's thread, is stopped after INLINE_SECONDS and undone:
    the run that counts is the one on the script thread, where BUSY is possible."""
    running = serve(busy_reply_threshold=50)
    caller, other = running.client(), running.client()
    script = (
        "local n = redis.call('incr', 'runs'); for i = 1, 3e7 do n = n + 1 end;"
        " return redis.call('get', 'runs')"
    )
    thread, result = _run_in_thread(lambda: caller.eval(script, 0))
    wait_until(lambda: _busy(other), timeout=DEADLINE, what="BUSY replies")
    with pytest.raises(redis.exceptions.ResponseError, match=r"^UNKILLABLE"):
        other.script_kill()
    thread.join(DEADLINE)
    assert result == [b"1"]  # the first run's INCR was undone
    assert other.get("runs") == b"1"


def test_a_long_script_that_published_is_busy_killable_and_published_once(
    serve: Callable[..., Running],
) -> None:
    """PUBLISH cannot be undone: a script reaching it leaves the loop's thread before it
    (so the message is sent once, by the run that counts) and stays killable."""
    running = serve(busy_reply_threshold=50)
    caller, other = running.client(), running.client()
    pubsub = running.client().pubsub()
    pubsub.subscribe("c")
    assert pubsub.get_message(timeout=DEADLINE)["type"] == "subscribe"
    script = "redis.call('publish', 'c', 'm'); while true do end"
    thread, result = _run_in_thread(lambda: caller.eval(script, 0))
    wait_until(lambda: _busy(other), timeout=DEADLINE, what="BUSY replies")
    assert other.script_kill() is True  # PUBLISH is not a write (as in Redis)
    thread.join(DEADLINE)
    assert KILLED in str(result[0])
    message = pubsub.get_message(timeout=DEADLINE)
    assert message is not None and message["data"] == b"m"
    assert other.publish("c", "end") == 1
    message = pubsub.get_message(timeout=DEADLINE)
    assert message is not None and message["data"] == b"end"  # "m" came exactly once


@pytest.mark.parametrize("watcher", ["notifications", "monitor"])
def test_a_busy_script_is_killable_while_its_commands_are_watched(
    serve: Callable[..., Running], watcher: str
) -> None:
    """With keyspace notifications on or a MONITOR connected a script's commands send
    what cannot be undone: it never starts on the loop's thread, so BUSY and SCRIPT
    KILL still reach it (before, the server stopped answering for good)."""
    running = serve(busy_reply_threshold=50)
    caller, other = running.client(), running.client()
    if watcher == "notifications":
        other.config_set("notify-keyspace-events", "KEA")
        monitor = None
    else:
        monitor = running.client().monitor()
        monitor.__enter__()
    try:
        script = "redis.call('get', 'k'); while true do end"
        thread, result = _run_in_thread(lambda: caller.eval(script, 0))
        wait_until(lambda: _busy(other), timeout=DEADLINE, what="BUSY replies")
        assert other.script_kill() is True
        thread.join(DEADLINE)
        assert KILLED in str(result[0])
        if monitor is not None:
            lines: list[str] = []
            while not lines or lines[-1] != "SCRIPT KILL":
                lines.append(monitor.next_command()["command"])
            assert lines.count("get k") == 1  # the script's GET, fed once
    finally:
        if monitor is not None:
            monitor.__exit__(None, None, None)


@pytest.mark.parametrize("script", ["while true do end", "FCALL"])
def test_a_busy_script_inside_exec_is_killable(serve: Callable[..., Running], script: str) -> None:
    """EXEC runs a block holding a script on the script thread: BUSY for the others,
    SCRIPT/FUNCTION KILL ends the script and the rest of the block still runs (Redis)."""
    running = serve(busy_reply_threshold=50)
    caller, other = running.client(), running.client()
    kill = "SCRIPT"
    if script == "FCALL":
        kill = "FUNCTION"
        other.function_load(
            "#!lua name=spin\nredis.register_function('spin', function() while true do end end)"
        )

    def block() -> Any:
        with caller.pipeline(transaction=True) as pipe:
            pipe.set("before", "1")
            if kill == "FUNCTION":
                pipe.fcall("spin", 0)
            else:
                pipe.eval(script, 0)
            pipe.set("after", "1")
            return pipe.execute(raise_on_error=False)

    thread, result = _run_in_thread(block)
    wait_until(lambda: _busy(other, kill), timeout=DEADLINE, what="BUSY replies")
    with pytest.raises(redis.exceptions.ResponseError, match=r"^BUSY"):
        other.get("before")
    if kill == "FUNCTION":
        assert other.function_kill() in (True, b"OK")  # redis-py parses no reply of it
    else:
        assert other.script_kill() is True
    thread.join(DEADLINE)
    [[before, killed, after]] = result
    assert before is True and after is True
    assert KILLED in str(killed)  # the same text for a function, as in Redis
    assert other.get("after") == b"1"  # the block committed, the loop answers again
    assert caller.eval("return 7", 0) == 7


def test_a_slow_function_runs_once(serve: Callable[..., Running]) -> None:
    """A library's own state (``local calls``) sees each FCALL once, as in Redis (a run
    undone and started again would count twice)."""
    r = serve().client()
    r.function_load(
        "#!lua name=counterlib\nlocal calls = 0\n"
        "redis.register_function('bump', function(keys, args)\n"
        "  calls = calls + 1\n"
        "  local t = redis.call('time')\n"
        "  local start = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
        "  while true do\n"
        "    local u = redis.call('time')\n"
        "    if tonumber(u[1]) * 1000000 + tonumber(u[2]) - start > 10000 then break end\n"
        "  end\n"
        "  return calls\n"
        "end)"
    )
    assert [r.fcall("bump", 0) for _ in range(3)] == [1, 2, 3]


NO_WRITES = "#!lua flags=no-writes\nreturn redis.call('get', 'k')"


@pytest.mark.parametrize(
    ("argv", "held"),
    [
        (["EVAL", NO_WRITES, "0"], False),
        (["EVAL", "#!lua\nreturn 1", "0"], True),  # flags without no-writes: a write
        (["EVAL", "return 1", "0"], True),  # no shebang: EVAL's own flags (may-replicate)
        (["EVAL", "#!lua flags=bogus\nreturn 1", "0"], True),  # a bad shebang: the same
        (["EVALSHA", sha1(NO_WRITES.encode()).hexdigest(), "0"], False),
        (["EVALSHA", "0" * 40, "0"], True),
        (["EVAL_RO", NO_WRITES, "0"], False),
        (["FCALL", "reader", "0"], False),
        (["FCALL", "writer", "0"], True),
        (["FCALL", "missing", "0"], True),
        (["GET", "k"], False),
        (["SET", "k", "v"], True),
    ],
)
def test_a_write_pause_holds_scripts_by_their_flags(argv: list[str], held: bool) -> None:
    """Redis derives a script's command flags from its shebang or function flags."""
    store = Store()
    server = Dispatcher(store, Config())
    client = Client(server)
    try:
        server.execute(client, ["SCRIPT", "LOAD", NO_WRITES])
        library = (
            "#!lua name=lib\n"
            "redis.register_function{function_name='reader', callback=function() return 1 end,"
            " flags={'no-writes'}}\n"
            "redis.register_function('writer', function() return 1 end)"
        )
        assert server.execute(client, ["FUNCTION", "LOAD", library]) == b"$3\r\nlib\r\n"
        assert server.execute(client, ["CLIENT", "PAUSE", "100000", "WRITE"]) == b"+OK\r\n"
        cmd = server.table[argv[0].lower()]
        assert server.paused_for(cmd, client, False, argv) is held
        server.unpause()
    finally:
        store.close()


def test_a_no_writes_script_runs_during_a_write_pause(serve: Callable[..., Running]) -> None:
    running = serve()
    ctl, reader = running.client(), running.client()
    assert ctl.execute_command("CLIENT", "PAUSE", "3000", "WRITE") == b"OK"
    start = time.monotonic()
    assert reader.eval(NO_WRITES, 0) is None  # at once, not after the pause
    assert time.monotonic() - start < 1.5
    ctl.execute_command("CLIENT", "UNPAUSE")


def test_short_scripts_never_busy_and_run_in_order(serve: Callable[..., Running]) -> None:
    running = serve()
    r = running.client()
    script = r.register_script("return redis.call('incr', KEYS[1])")
    for expected in range(1, 501):
        assert script(keys=["counter"]) == expected
    assert "errorstat_BUSY" not in r.info("errorstats")  # not one BUSY among them


def test_shutdown_nosave_stops_an_unkillable_script_and_undoes_it(
    serve: Callable[..., Running],
) -> None:
    running = serve(busy_reply_threshold=50)
    caller, other = running.client(), running.client()
    script = "redis.call('set', 'w', '1'); local n = 0; while true do n = n + 1 end"
    thread, result = _run_in_thread(lambda: caller.eval(script, 0))
    wait_until(lambda: _busy(other), timeout=DEADLINE, what="BUSY replies")
    with pytest.raises(redis.exceptions.ResponseError, match=r"^UNKILLABLE"):
        other.script_kill()
    other.shutdown(nosave=True)  # redis-py expects the connection to close
    thread.join(DEADLINE)
    assert isinstance(result[0], redis.exceptions.ConnectionError)
    running.thread.join(DEADLINE)
    assert not running.thread.is_alive()
    assert running.store.get("w") is None  # the script's write was undone


def test_asyncio_client_scripts(serve: Callable[..., Running]) -> None:
    import asyncio

    from redis import asyncio as aioredis

    port = serve().port

    async def main() -> list[Any]:
        client = aioredis.Redis(port=port, socket_timeout=DEADLINE)
        try:
            script = client.register_script("return redis.call('incrby', KEYS[1], ARGV[1])")
            results = await asyncio.gather(*(script(keys=["n"], args=[1]) for _ in range(20)))
            lock = client.lock("alock", timeout=5)
            assert await lock.acquire(blocking=False)
            await lock.release()
            return sorted(results)
        finally:
            await client.aclose()

    assert asyncio.run(main()) == list(range(1, 21))


def test_script_kill_does_not_kill_a_function(serve: Callable[..., Running]) -> None:
    running = serve(busy_reply_threshold=50)
    caller, other = running.client(), running.client()
    body = "#!lua name=spin\nredis.register_function('spin', function() while true do end end)"
    assert other.function_load(body) in ("spin", b"spin")
    thread, result = _run_in_thread(lambda: caller.fcall("spin", 0))
    wait_until(lambda: _busy(other, "FUNCTION"), timeout=DEADLINE, what="BUSY replies")
    with pytest.raises(redis.exceptions.ResponseError) as refused:
        other.script_kill()
    assert str(refused.value) == BUSY.replace("SCRIPT KILL", "FUNCTION KILL")
    assert other.execute_command("FUNCTION", "KILL") in (b"OK", "OK", True)
    thread.join(DEADLINE)
    assert str(result[0]).startswith(KILLED)  # Redis's hook says SCRIPT KILL for both
