"""FUNCTION and FCALL against the real redis-server 7.0 (the twin fixture), and end to end.

Each request goes to snapkv's dispatcher and to redis-server, and the raw
replies must be equal: library metadata errors, ``redis.register_function``
in both forms and every refusal of it, the load-time sandbox (only
``redis.register_function``, ``redis.log`` and the version fields exist
while a library loads), name collisions, FCALL's key checks and
FCALL_RO's flag check, errors raised inside a function, FUNCTION LIST's
shapes (RESP2 and RESP3, LIBRARYNAME, WITHCODE), STATS, DELETE, FLUSH,
DUMP and RESTORE with each policy.
"""

# ruff: noqa: E501 - library sources are kept on one line each, as a client sends them

from __future__ import annotations

from typing import Any

import pytest
import redis

from snapkv import Store
from snapkv.server.state import Config
from test_server_e2e import Running

pytest.importorskip("lupa")


def lib(name: str, body: str) -> str:
    return f"#!lua name={name}\n{body}"


F1 = lib("lib1", "redis.register_function('f1', function(keys, args) return {keys, args} end)")
RO = lib(
    "libro",
    "redis.register_function{function_name='ro', callback=function(keys) "
    "return redis.call('get', keys[1]) end, flags={'no-writes'}, description='reads'}",
)
WRITER = lib(
    "libw",
    "redis.register_function('setter', function(keys, args) "
    "return redis.call('set', keys[1], args[1]) end)",
)


@pytest.fixture
def fresh(twin: Any) -> Any:
    twin.same("FUNCTION", "FLUSH")
    yield twin
    twin.same("FUNCTION", "FLUSH")


@pytest.mark.parametrize(
    "code",
    [
        "return 1",
        "#!lua\nreturn 1",
        "#!lua",
        "#!lua name=a name=b\nreturn 1",
        "#!lua foo=bar\nreturn 1",
        "#!luax name=x\nreturn 1",
        "#!lua name=lib-2\nreturn 1",
        "#!lua name=\nreturn 1",
        lib("x", "return 1"),
        lib("x", "return +"),
        lib("x", "redis.call('ping')"),
        lib("x", "local s = string.len('a')"),
        lib("x", "x = 1"),
        lib("x", "local y = z"),
        lib("x", "redis.register_function()"),
        lib("x", "redis.register_function('f', function() end, 3)"),
        lib("x", "redis.register_function('f x', function() end)"),
        lib("x", "redis.register_function('f2', 'x')"),
        lib("x", "redis.register_function(1, function() end)"),
        lib("x", "redis.register_function('f2')"),
        lib(
            "x",
            "redis.register_function{function_name='f3', callback=function() end, flags={'bad'}}",
        ),
        lib(
            "x",
            "redis.register_function{function_name='f3', callback=function() end, flags='no-writes'}",
        ),
        lib("x", "redis.register_function{function_name='f3', callback=function() end, foo=1}"),
        lib("x", "redis.register_function{function_name='f3'}"),
        lib("x", "redis.register_function{callback=function() end}"),
        lib("x", "redis.register_function{function_name=1, callback=function() end}"),
        lib("x", "redis.register_function{[1]='g'}"),
        lib(
            "x",
            "redis.register_function{function_name='g', callback=function() end, description=5}",
        ),
        lib(
            "x",
            "redis.register_function('f', function() end)\nredis.register_function('f', function() end)",
        ),
        lib(
            "x",
            "redis.log(redis.LOG_WARNING, 'loading')\nredis.register_function('g', function() return redis.REDIS_VERSION_NUM ~= nil end)",
        ),
    ],
)
def test_load_refusals_and_texts_as_redis(fresh: Any, code: str) -> None:
    fresh.same("FUNCTION", "LOAD", code)


def test_fcall_runs_with_keys_and_args_and_checks_as_redis(fresh: Any) -> None:
    fresh.same("FUNCTION", "LOAD", F1)
    fresh.same("FCALL", "f1", "2", "k1", "k2", "a1")
    fresh.same("FCALL", "f1", "0")
    fresh.same("FCALL", "nope", "0")
    fresh.same("FCALL", "f1", "3", "k")
    fresh.same("FCALL", "f1", "-1")
    fresh.same("FCALL", "f1", "x")
    fresh.same("FCALL_RO", "f1", "0")
    fresh.same("FUNCTION", "LOAD", F1)
    fresh.same("FUNCTION", "LOAD", "REPLACE", F1)
    fresh.same("FUNCTION", "LOAD", lib("other", "redis.register_function('f1', function() end)"))
    # Every argument but the last is an option.
    fresh.same("FUNCTION", "LOAD", "REPLACE", "x", "y")
    fresh.same("FUNCTION", "LOAD", "x", "REPLACE", "y")
    fresh.same("FUNCTION", "LOAD", "REPLACE")
    fresh.same("FUNCTION", "LOAD", "REPLACE", "replace", F1)
    fresh.same("FCALL", "f1", "1", "k")


def test_function_errors_and_globals_at_run_time(fresh: Any) -> None:
    fresh.same(
        "FUNCTION",
        "LOAD",
        lib(
            "errs",
            "redis.register_function('boom', function() local x = nil; return x.y end)\n"
            "redis.register_function('keysglobal', function() return KEYS end)\n"
            "redis.register_function('libs', function() return cjson.encode({1, 2}) end)\n"
            "redis.register_function('noreg', function() return redis.register_function end)\n"
            "redis.register_function('status', function() return redis.status_reply('FINE') end)",
        ),
    )
    for name in ("boom", "keysglobal", "libs", "noreg", "status"):
        fresh.same("FCALL", name, "0")


def test_fcall_inside_multi_and_select_inside_a_function(fresh: Any) -> None:
    fresh.same("FUNCTION", "LOAD", F1)
    fresh.same(
        "FUNCTION",
        "LOAD",
        lib(
            "sel",
            "redis.register_function('sel', function(keys) redis.call('select', 1) "
            "redis.call('set', keys[1], 'v') return redis.call('dbsize') end)",
        ),
    )
    fresh.same("MULTI")
    fresh.same("FCALL", "f1", "1", "k")
    fresh.same("FCALL", "sel", "1", "kk")
    fresh.same("EXEC")
    fresh.same("DBSIZE")
    fresh.same("SELECT", "1")
    fresh.same("DBSIZE")
    fresh.same("FLUSHDB")
    fresh.same("SELECT", "0")


def test_writes_and_readonly_functions(fresh: Any) -> None:
    fresh.same("FUNCTION", "LOAD", WRITER)
    fresh.same("FUNCTION", "LOAD", RO)
    fresh.same("FCALL", "setter", "1", "k", "v")
    fresh.same("FCALL_RO", "ro", "1", "k")
    fresh.same("FCALL", "ro", "1", "k")
    fresh.same("FCALL_RO", "setter", "1", "k", "w")
    assert fresh.store.get("k") == "v"


def test_list_stats_delete_flush_as_redis(fresh: Any) -> None:
    fresh.same("FUNCTION", "LOAD", RO)
    fresh.same("FUNCTION", "LIST")
    fresh.same("FUNCTION", "LIST", "WITHCODE")
    fresh.same("FUNCTION", "LIST", "LIBRARYNAME", "LIB*")
    fresh.same("FUNCTION", "LIST", "LIBRARYNAME", "nomatch", "WITHCODE")
    fresh.same("FUNCTION", "LIST", "LIBRARYNAME")
    fresh.same("FUNCTION", "LIST", "WITHCODE", "WITHCODE")
    fresh.same("FUNCTION", "LIST", "foo")
    fresh("HELLO", "3")
    fresh.same("FUNCTION", "LIST", "WITHCODE")
    fresh.same("FUNCTION", "STATS")
    fresh("HELLO", "2")
    fresh.same("FUNCTION", "STATS")
    fresh.same("FUNCTION", "DELETE", "nope")
    fresh.same("FUNCTION", "DELETE", "libro")
    fresh.same("FCALL", "ro", "0")
    fresh.same("FUNCTION", "FLUSH", "foo")
    fresh.same("FUNCTION", "FLUSH", "SYNC", "x")
    fresh.same("FUNCTION", "FLUSH", "ASYNC")
    fresh.same("FUNCTION", "KILL")
    fresh.same("FUNCTION", "HELP")


def test_dump_and_restore_policies(fresh: Any) -> None:
    fresh.same("FUNCTION", "LOAD", F1)
    ours, theirs = fresh("FUNCTION", "DUMP")
    assert ours[:1] == theirs[:1] == b"$"
    payload = theirs.split(b"\r\n", 1)[1][:-2].decode("utf-8", "surrogateescape")
    own = ours.split(b"\r\n", 1)[1][:-2].decode("utf-8", "surrogateescape")
    fresh.same("FUNCTION", "RESTORE", payload)
    fresh.same("FUNCTION", "RESTORE", payload, "REPLACE")
    fresh.same("FUNCTION", "RESTORE", payload, "bogus")
    fresh.same("FUNCTION", "RESTORE", "not a payload")
    fresh.same("FUNCTION", "FLUSH")
    fresh.same("FUNCTION", "LOAD", lib("clash", "redis.register_function('f1', function() end)"))
    fresh.same("FUNCTION", "RESTORE", payload)
    fresh.same("FUNCTION", "RESTORE", payload, "FLUSH")
    fresh.same("FUNCTION", "LIST")
    fresh.same("FCALL", "f1", "1", "k")
    # snapkv's own payload (uncompressed) restores in redis-server and in snapkv alike.
    fresh.same("FUNCTION", "RESTORE", own, "REPLACE")
    fresh.same("FUNCTION", "LIST", "WITHCODE")


def test_restore_reads_a_compressed_payload_from_redis(fresh: Any) -> None:
    long_code = lib(
        "big",
        "redis.register_function('big', function() return 'x' end)\n" + "-- padding\n" * 40,
    )
    fresh.raw("FUNCTION", "LOAD", long_code)
    theirs = fresh.raw("FUNCTION", "DUMP")
    payload = theirs.split(b"\r\n", 1)[1][:-2]
    assert len(payload) < len(long_code)  # redis-server compressed it (LZF)
    fresh.raw("FUNCTION", "FLUSH")
    text = payload.decode("utf-8", "surrogateescape")
    fresh.same("FUNCTION", "RESTORE", text)
    fresh.same("FCALL", "big", "0")
    fresh.same("FUNCTION", "LIST", "WITHCODE")


def test_fcall_over_a_socket_with_redis_py() -> None:
    running = Running(Store(), Config(port=0))
    try:
        client = running.client()
        assert client.function_load(RO.replace("libro", "e2e")) == b"e2e"
        client.set("k", "v")
        assert client.fcall_ro("ro", 1, "k") == b"v"
        assert client.fcall("ro", 1, "k") == b"v"
        assert [entry[1] for entry in client.function_list()] == [b"e2e"]
        assert client.function_delete("e2e")
        with pytest.raises(redis.ResponseError, match="Function not found"):
            client.fcall("ro", 1, "k")
    finally:
        running.stop()


def test_monitor_shows_fcall_before_its_calls(fresh: Any) -> None:
    from snapkv.server.client import Client

    server = fresh.server
    watcher = Client(server, addr="127.0.0.1:1001", laddr="127.0.0.1:6379")
    server.add_client(watcher)
    assert server.execute(watcher, ["MONITOR"]) == b"+OK\r\n"
    fresh.same("FUNCTION", "LOAD", RO)
    fresh.same("FCALL", "ro", "1", "k")
    fresh.same("FCALL", "nope", "0")
    lines = b"".join(watcher.outbox).split(b"\r\n")
    shown = [line.split(b"] ", 1)[1] for line in lines if b"] " in line]
    assert shown[-3:] == [b'"FCALL" "ro" "1" "k"', b'"get" "k"', b'"FCALL" "nope" "0"']
    assert [b"[0 lua]" in line for line in lines if b"] " in line][-3:] == [False, True, False]


def test_a_library_that_never_finishes_loading_is_refused(fresh: Any) -> None:
    fresh.same("FUNCTION", "LOAD", lib("spin", "local i = 0 while true do i = i + 1 end"))
    fresh.same("FUNCTION", "LIST")


def test_the_load_time_hook_stays_out_of_scripts_reach(fresh: Any) -> None:
    fresh.same("EVAL", "return _snapkv_sethook", "0")
    fresh.same(
        "FUNCTION",
        "LOAD",
        lib("peek", "redis.register_function('peek', function() return _snapkv_sethook end)"),
    )
    fresh.same("FCALL", "peek", "0")
    fresh.same("FUNCTION", "LOAD", lib("peek2", "local h = _snapkv_sethook"))


def test_flags_replies_and_redis_api_inside_functions(fresh: Any) -> None:
    fresh.same(
        "FUNCTION",
        "LOAD",
        lib(
            "api",
            "redis.register_function{function_name='nw', callback=function(keys) "
            "return redis.call('set', keys[1], 'x') end, flags={'no-writes'}}\n"
            "redis.register_function('r3', function() redis.setresp(3) "
            "return redis.call('hgetall', 'h') end)\n"
            "redis.register_function('er', function() return redis.error_reply('MY custom') end)\n"
            "redis.register_function('pc', function() return redis.pcall('nosuch') end)\n"
            "redis.register_function('nested', function() return redis.call('fcall', 'er', 0) end)",
        ),
    )
    fresh.same("FCALL", "nw", "1", "k")
    fresh.same("FCALL_RO", "nw", "1", "k")
    fresh.same("HSET", "h", "a", "1")
    fresh.same("FCALL", "r3", "0")
    fresh("HELLO", "3")
    fresh.same("FCALL", "r3", "0")
    fresh("HELLO", "2")
    fresh.same("FCALL", "er", "0")
    fresh.same("FCALL", "pc", "0")
    fresh.same("FCALL", "nested", "0")
    fresh.same("EVAL", "return redis.call('fcall', 'er', 0)", "0")
    fresh.same("EVAL", "return redis.call('function', 'list')", "0")


def test_info_counts_functions(fresh: Any) -> None:
    from snapkv.server.scripting.functions import functions_info

    fresh.same("FUNCTION", "LOAD", F1)
    fresh.same("FUNCTION", "LOAD", RO)
    count, memory = functions_info(fresh.server)
    assert count == 2
    assert memory > 0
    fresh.same("FUNCTION", "FLUSH")
    assert functions_info(fresh.server) == (0, 0)


@pytest.mark.parametrize(
    "shebang",
    [
        '#!lua name="q1"',
        '#!lua "name=q2"',
        '#!lua name="q3',
        "#!lua name=q\\x41",
        '#!lua name="q\\x41"',
        "#!lua name=a'b'",
        '#!lua name="a"b',
        "#!lua name=cr\r",
    ],
)
def test_metadata_is_split_as_redis_splits_arguments(fresh: Any, shebang: str) -> None:
    fresh.same(
        "FUNCTION", "LOAD", shebang + "\nredis.register_function('qf', function() return 1 end)"
    )
    fresh.same("FUNCTION", "FLUSH")


def test_register_function_kept_for_later_is_refused_at_run_time(fresh: Any) -> None:
    fresh.same(
        "FUNCTION",
        "LOAD",
        lib(
            "late",
            "local reg = redis.register_function\n"
            "redis.register_function('late', function() reg('g', function() end) return 1 end)\n"
            "redis.register_function('late2', function() return {pcall(reg, 'g', function() end)} end)",
        ),
    )
    fresh.same("FCALL", "late", "0")
    fresh.same("FCALL", "late2", "0")
