"""EVAL against the real redis-server 7.0: the same scripts, the same raw reply bytes.

Conversions both ways (Redis reply -> Lua value -> reply), error texts with
their ``script: <sha>, on @user_script:<line>.`` tail, ``redis.pcall``,
KEYS/ARGV, SELECT inside a script, RESP3 under ``redis.setresp(3)`` and for
a RESP3 caller, shebang flags, EVAL_RO, EVALSHA and SCRIPT.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("lupa")

#: Scripts whose reply (value or error) must match Redis byte for byte.
SCRIPTS = [
    # Lua -> reply
    "return 1",
    "return 3.99",
    "return -3.99",
    "return 'hello'",
    "return true",
    "return false",
    "return nil",
    "return {}",
    "return {1, 2, nil, 4}",
    "return {true, false, 1.5, 'x', {1, {2}}}",
    "return {ok = 'fine'}",
    "return {ok = 'line\\r\\nbreak'}",
    "return {err = 'bad thing'}",
    "return {err = 'MYCODE with text'}",
    "return redis.status_reply('OKAY')",
    "return redis.error_reply('x y')",
    "return redis.error_reply('-x y')",
    "return redis.error_reply('lonely')",
    "return redis.status_reply(1)",
    "return redis.error_reply()",
    "return {double = 1.5}",
    "return {big_number = '123456789012345678901234567890'}",
    "return {map = {a = 1}}",
    "return {set = {a = true}}",
    "return 2^53",
    "return -0.5",
    "return 1e300",
    "return redis.sha1hex('')",
    "return redis.sha1hex('abc')",
    "return redis.sha1hex(1)",
    "return redis.replicate_commands()",
    "return redis.breakpoint()",
    "return redis.REPL_ALL + redis.REPL_AOF * 10 + redis.LOG_WARNING * 100",
    "return {redis.set_repl(redis.REPL_NONE)}",
    "return redis.log(redis.LOG_DEBUG, 'quiet')",
    "return _VERSION",
    # reply -> Lua
    "return redis.call('set', 'k', 'v')",
    "return redis.call('get', 'k')",
    "return redis.call('get', 'missing')",
    "return type(redis.call('get', 'missing'))",
    "return redis.call('incr', 'n')",
    "return type(redis.call('incr', 'n'))",
    "return redis.call('rpush', 'l', 'a', 'b', 'c')",
    "return redis.call('lrange', 'l', 0, -1)",
    "return redis.call('ping')",
    "return redis.call('ping')['ok']",
    "return redis.call('hgetall', 'nohash')",
    "return redis.call('set', 'n', 0.1) and redis.call('get', 'n')",
    "return redis.call('set', 'n', 1e20) and redis.call('get', 'n')",
    "return redis.call('set', 'n', 12345678) and redis.call('get', 'n')",
    "return redis.call('exists', 'k', 'missing', 'k')",
    "return {redis.call('mget', 'k', 'missing', 'k')}",
    "return redis.call('mget', 'k', 'missing', 'k')",
    # errors from redis.call and redis.pcall
    "return redis.call('nosuch')",
    "return redis.call()",
    "return redis.call('get', {})",
    "return redis.call('get', nil)",
    "return redis.call('get', true)",
    "return redis.call('incr', 'k', 'x')",
    "return redis.call('incr', 'k')",
    "return redis.pcall('incr', 'k')",
    "return redis.pcall('nosuch')",
    "return redis.pcall()",
    "return {redis.pcall('nosuch')}",
    "local ok, e = pcall(redis.call, 'nosuch'); return e",
    "local ok, e = pcall(redis.call, 'incr', 'k'); return {ok, e}",
    "local r = redis.pcall('incr', 'k'); return r['err']",
    "return redis.call('config', 'get', 'maxmemory')",
    "return redis.call('config')",
    "return redis.call('config', 'nosuch')",
    "return redis.call('multi')",
    "return redis.call('eval', 'return 1', '0')",
    "redis.call('set', 'w', 1); return redis.call('incr', 'k')",
    # Lua errors and the sandbox
    "error('boom')",
    "error()",
    "error(nil)",
    "error(12)",
    "error({err = 12})",
    "error(true)",
    "error('x', 0)",
    "error('x', 2)",
    "return {err = 12}",
    "return {ok = 12}",
    "return {1, {err = 'inner'}, 3}",
    "return {double = 'x'}",
    "return {map = 5}",
    "return {map = {}}",
    "return {set = {}}",
    "error({err = 'X y'})",
    "error('two\\nlines')",
    "\n\nerror('third line')",
    "local a = nil; return a.b",
    "return 1 + {}",
    "return undefined_thing",
    "x = 1",
    "return print",
    "return debug",
    "return getfenv",
    "return setfenv",
    "return newproxy",
    "return os",
    "return io",
    "return require",
    "return loadfile",
    "return dofile",
    "return module",
    "return type(loadstring)",
    "return type(load)",
    "return type(string.dump)",
    "return type(coroutine.create)",
    "return type(collectgarbage)",
    "return loadstring('return 1')()",
    "return loadstring(string.dump(function() return 1 end))",
    "return {loadstring(string.char(27) .. 'LuaQ')}",
    "getmetatable('').__index = 1",
    "getmetatable('').__index.upper = nil",
    "string.upper = nil",
    "redis.call = 1",
    "redis.x = 1",
    "return rawset(redis, 'x', 1)",
    "return rawset(_G, 'x', 1)",
    "setmetatable(_G, nil)",
    "local m = getmetatable(_G); m.__index = nil",
    "return getmetatable(_G) == nil",
    "math.floor = nil",
    "table.insert = nil",
    "cjson = nil",
    "KEYS = {}",
    "return loadstring('y = 1')()",
    "local co = coroutine.create(function() z = 1 end); return {coroutine.resume(co)}",
    "local t = {}; t[1] = 1; return t",
    "local t = setmetatable({}, {__index = function() return 5 end}); return t.x",
    # redis.* argument errors
    "return redis.setresp(4)",
    "return redis.setresp()",
    "return redis.log(99, 'x')",
    "return redis.log(1)",
    "return redis.log('x', 'y')",
    "return redis.set_repl(99)",
    "return redis.set_repl()",
    "return redis.sha1hex()",
    # RESP3 inside the script, for a RESP2 caller
    "redis.setresp(3); return redis.call('hgetall', 'nohash')",
    "redis.setresp(3); return true",
    "redis.setresp(3); return false",
    "redis.setresp(3); return redis.call('get', 'missing')",
    "redis.setresp(3); return type(redis.call('get', 'missing'))",
    "redis.call('hset', 'h', 'a', '1'); redis.setresp(3); return redis.call('hgetall', 'h')",
    "redis.call('hset', 'h', 'a', '1'); redis.setresp(3);"
    " return redis.call('hgetall', 'h')['map']['a']",
    "redis.call('sadd', 's', 'm'); redis.setresp(3); return redis.call('smembers', 's')",
    "redis.call('sadd', 's', 'm'); redis.setresp(3);"
    " return redis.call('smembers', 's')['set']['m']",
    "redis.call('zadd', 'z', 1.5, 'm'); redis.setresp(3); return redis.call('zscore', 'z', 'm')",
    "redis.call('zadd', 'z', 1.5, 'm'); redis.setresp(3);"
    " return redis.call('zscore', 'z', 'm')['double']",
    "redis.setresp(3); return redis.call('exists', 'nothing')",
]


@pytest.mark.parametrize("script", SCRIPTS)
def test_eval_matches_redis(twin: Any, script: str) -> None:
    twin.same("SET", "k", "v")
    twin.same("EVAL", script, "0")


@pytest.mark.parametrize(
    "script",
    [
        "return true",
        "return false",
        "return nil",
        "return {double = 1.5}",
        "return {double = 1/0}",
        "return {big_number = '12345678901234567890'}",
        "return {map = {a = 1}}",
        "return {set = {a = true}}",
        "return {verbatim_string = {format = 'txt', string = 'hello'}}",
        "redis.setresp(3); return true",
        "redis.setresp(3); return false",
        "redis.setresp(3); return redis.call('get', 'missing')",
        "redis.call('hset', 'h', 'a', '1'); redis.setresp(3); return redis.call('hgetall', 'h')",
        "redis.call('hset', 'h', 'a', '1'); return redis.call('hgetall', 'h')",
        "return redis.call('get', 'missing')",
        "return {1, false, 'x'}",
    ],
)
def test_eval_for_a_resp3_caller_matches_redis(twin: Any, script: str) -> None:
    twin("HELLO", "3")  # the greeting names different servers
    twin.same("EVAL", script, "0")


def test_keys_and_argv(twin: Any) -> None:
    twin.same(
        "EVAL", "return {KEYS[1], KEYS[2], ARGV[1], ARGV[2], #KEYS, #ARGV}", "2", "a", "b", "c"
    )
    twin.same("EVAL", "return {#KEYS, #ARGV}", "0")
    twin.same("EVAL", "return redis.call('set', KEYS[1], ARGV[1])", "1", "key", "value")
    twin.same("GET", "key")
    twin.same("EVAL", "KEYS[1] = 'changed'; return KEYS", "1", "k")


@pytest.mark.parametrize(
    "argv",
    [
        ("EVAL", "return 1", "-1"),
        ("EVAL", "return 1", "2", "a"),
        ("EVAL", "return 1", "x"),
        ("EVAL", "return 1", "1.5"),
        ("EVAL", "return (", "0"),
        ("EVAL", "return 1 +", "0"),
        ("EVAL", "#!lua flags=bogus\nreturn 1", "0"),
        ("EVAL", "#!lua name=x\nreturn 1", "0"),
        ("EVAL", "#!notlua\nreturn 1", "0"),
        ("EVAL", "#!lua\nreturn 1", "0"),
        ("EVAL", "#!lua flags=no-writes,allow-oom\nreturn 1", "0"),
        ("EVAL", "#!lua flags=\nreturn 1", "0"),
        ("EVAL", "#!lua flags=no-writes\nreturn redis.call('set', 'a', 'b')", "0"),
        ("EVAL", "#!lua\nerror('second line')", "0"),
        ("EVAL_RO", "return redis.call('set', 'a', 'b')", "0"),
        ("EVAL_RO", "return redis.call('get', 'a')", "0"),
        ("EVAL_RO", "#!lua\nreturn 1", "0"),
        ("EVAL_RO", "#!lua flags=no-writes\nreturn 1", "0"),
        ("EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", "0"),
        ("EVALSHA", "abc", "0"),
        ("EVALSHA_RO", "ffffffffffffffffffffffffffffffffffffffff", "0"),
        ("EVAL",),
        ("EVAL", "return 1"),
        ("SCRIPT", "LOAD", "return ("),
        ("SCRIPT", "LOAD", "#!lua flags=bogus\nreturn 1"),
        ("SCRIPT", "KILL"),
        ("SCRIPT", "FLUSH", "bogus"),
        ("SCRIPT", "FLUSH", "SYNC", "ASYNC"),
        ("SCRIPT", "HELP"),
        ("SCRIPT", "EXISTS"),
        ("SCRIPT", "NOSUCH"),
        ("SCRIPT", "LOAD"),
    ],
)
def test_command_errors_and_shebangs_match_redis(twin: Any, argv: tuple[str, ...]) -> None:
    twin.same(*argv)


def test_script_cache(twin: Any) -> None:
    twin.same("SCRIPT", "FLUSH")
    sha = "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"  # sha1("return 1")
    twin.same("SCRIPT", "EXISTS", sha, sha.upper(), "nope")
    twin.same("SCRIPT", "LOAD", "return 1")
    twin.same("SCRIPT", "EXISTS", sha, sha.upper(), "nope")
    twin.same("EVALSHA", sha, "0")
    twin.same("EVALSHA", sha.upper(), "0")
    twin.same("EVALSHA_RO", sha, "0")
    twin.same("SCRIPT", "FLUSH", "ASYNC")
    twin.same("EVALSHA", sha, "0")
    # EVAL caches the script too (Redis 7.0).
    twin.same("EVAL", "return 1", "0")
    twin.same("EVALSHA", sha, "0")
    twin.same("SCRIPT", "FLUSH", "SYNC")
    twin.same("SCRIPT", "EXISTS", sha)


def test_select_inside_a_script_changes_only_the_script(twin: Any) -> None:
    twin.same("SELECT", "2")
    twin.same(
        "EVAL",
        "redis.call('set', 'a', 'db2'); redis.call('select', 5); redis.call('set', 'a', 'db5');"
        " return redis.call('get', 'a')",
        "0",
    )
    twin.same("GET", "a")  # the caller is still on keyspace 2
    twin.same("SELECT", "5")
    twin.same("GET", "a")
    twin.same("EVAL", "return redis.call('get', 'a')", "0")  # a script starts on the caller's


def test_writes_before_an_error_are_kept(twin: Any) -> None:
    twin.same("EVAL", "redis.call('set', 'kept', '1'); redis.call('incr', 'kept2', 'x')", "0")
    twin.same("EVAL", "redis.call('set', 'kept', '2'); error('after the write')", "0")
    twin.same("GET", "kept")


def test_pcall_keeps_the_script_running(twin: Any) -> None:
    twin.same("SET", "s", "text")
    twin.same(
        "EVAL",
        "local r = redis.pcall('incr', KEYS[1]); redis.call('set', 'after', r['err']);"
        " return redis.call('get', 'after')",
        "1",
        "s",
    )


def test_math_random_is_redis_sequence() -> None:
    """Redis's rand48 from its fixed start: the numbers redis-server 7.0 gave first."""
    from snapkv import Store
    from snapkv.server.client import Client
    from snapkv.server.dispatch import Dispatcher
    from snapkv.server.state import Config

    with Store() as store:
        server = Dispatcher(store, Config())
        client = Client(server)
        run = ["EVAL", "return {math.random(10), math.random(1000000), math.random(1000000)}", "0"]
        first = ["EVAL", "return math.random() * 1000000", "0"]
        assert server.execute(client, first) == b":396464\r\n"
        assert server.execute(client, run) == b"*3\r\n:9\r\n:353337\r\n:446584\r\n"
        seeded = [
            "EVAL",
            "math.randomseed(7); return {math.random(1000000), math.random(1000000)}",
            "0",
        ]
        assert server.execute(client, seeded) == b"*2\r\n:266445\r\n:682036\r\n"


@pytest.mark.parametrize(
    "command",
    [
        "'blpop', 'l', '0'",
        "'brpoplpush', 'l', 'm', '0'",
        "'subscribe', 'c'",
        "'monitor'",
        "'client', 'list'",
        "'client', 'setname', 'x'",
        "'config', 'set', 'maxmemory', '0'",
        "'script', 'load', 'return 1'",
        "'save'",
        "'shutdown'",
        "'watch', 'x'",
        "'hello'",
        "'auth', 'x'",
        "'select', '99'",
        "'publish', 'c', 'm'",
        "'lpop', 'nolist'",
        "'flushall'",
        "'set', 'k', 'v', 'GET'",
        "'sort', 'nolist'",
        "'object', 'help'",
    ],
)
def test_what_a_script_may_call_matches_redis(twin: Any, command: str) -> None:
    """Commands flagged noscript are refused; the others answer as from a client."""
    twin.same("EVAL", f"return redis.call({command})", "0")
    twin.same("EVAL", f"return redis.pcall({command})", "0")


def test_scripts_inside_multi_and_watch(twin: Any) -> None:
    twin.same("MULTI")
    twin.same("EVAL", "return redis.call('incr', 'm')", "0")
    twin.same("EVAL", "return redis.call('nosuch')", "0")
    twin.same("EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", "0")
    twin.same("EXEC")
    twin.same("WATCH", "w")
    twin.same("EVAL", "return redis.call('set', 'w', '1')", "0")
    twin.same("MULTI")
    twin.same("GET", "w")
    twin.same("EXEC")  # the script's write failed the transaction


def test_binary_keys_arguments_and_replies(twin: Any) -> None:
    binary = "a\x00b\udcff\r\n"  # NUL, a byte that is not UTF-8, CR LF
    twin.same("EVAL", "return {KEYS[1], #KEYS[1], ARGV[1], #ARGV[1]}", "1", binary, binary)
    twin.same(
        "EVAL",
        "redis.call('set', KEYS[1], ARGV[1]); return redis.call('get', KEYS[1])",
        "1",
        binary,
        binary,
    )
    twin.same("GET", binary)
    twin.same("EVAL", "return {err = ARGV[1]}", "0", binary)
    twin.same("EVAL", "return {ok = ARGV[1]}", "0", binary)
    twin.same("EVAL", "error(ARGV[1])", "0", binary)


def test_errorstats_count_a_script_error_once(twin: Any) -> None:
    """An error a command returns inside a script is counted once (Redis's
    ignore_error_stats_update); a refused command counts where it is refused."""
    twin("CONFIG", "RESETSTAT")
    twin.same("SET", "str", "abc")
    twin.same("EVAL", "return redis.call('incr', 'str')", "0")
    twin.same("EVAL", "return redis.pcall('incr', 'str')", "0")
    twin.same("EVAL", "error('x')", "0")
    twin.same("EVAL", "return redis.call('nosuch')", "0")
    twin.same("EVAL", "return redis.call('incr', 'a', 'b')", "0")
    twin.same("EVAL", "return redis.call()", "0")
    twin.same("EVAL_RO", "return redis.call('set', 'a', 'b')", "0")
    twin.same("EVAL", "local ok = pcall(redis.call, 'incr', 'str'); return redis.setresp(9)", "0")
    twin.same("INFO", "errorstats")


def _command_counts(info: bytes) -> dict[str, tuple[str, ...]]:
    """``cmdstat_<name>``: calls, rejected_calls, failed_calls (not the times)."""
    counts = {}
    for line in info.decode().splitlines():
        if line.startswith("cmdstat_"):
            name, _, fields = line.partition(":")
            values = dict(field.split("=") for field in fields.split(","))
            counts[name] = (values["calls"], values["rejected_calls"], values["failed_calls"])
    return counts


def test_commandstats_of_scripts_and_their_commands(twin: Any) -> None:
    twin("CONFIG", "RESETSTAT")
    twin.same("SET", "str", "abc")
    twin.same("EVAL", "return redis.call('incr', 'str')", "0")
    twin.same("EVAL", "return redis.pcall('incr', 'str')", "0")
    twin.same("EVAL", "return redis.call('get', 'str')", "0")
    twin.same("EVAL", "return redis.call('incr', 'a', 'b')", "0")
    twin.same("EVAL_RO", "return redis.call('set', 'a', 'b')", "0")
    ours, theirs = twin("INFO", "commandstats")
    assert _command_counts(ours) == _command_counts(theirs)


@pytest.mark.parametrize(
    "body",
    [
        "return cjson.decode(ARGV[1])",
        "return cjson.encode(setmetatable({}, {}), ARGV[1], ARGV[1])",
        "return cmsgpack.unpack()",
        "return struct.unpack('i', ARGV[1])",
        "local x = cjson.decode(ARGV[1]) return x",  # not a tail call
        "\n\nreturn cjson.decode(ARGV[1])",
        "local function f(s) return cjson.decode(s) end return f(ARGV[1])",
        "return {pcall(cjson.decode, ARGV[1])}",
    ],
)
def test_a_library_error_in_a_tail_call_names_the_scripts_line(twin: Any, body: str) -> None:
    """Redis's libraries are C functions: `return cjson.decode(s)` keeps the script's
    frame, so the error names its line (`user_script:1: ...`, `on @user_script:1.`)."""
    twin.same("EVAL", body, "0", "{")


def test_a_library_error_in_a_functions_tail_call_names_its_line(twin: Any) -> None:
    twin.same(
        "FUNCTION",
        "LOAD",
        "REPLACE",
        "#!lua name=taillib\n"
        "redis.register_function('dec', function(keys, args) return cjson.decode(args[1]) end)",
    )
    twin.same("FCALL", "dec", "0", "{")
    twin.same("FUNCTION", "DELETE", "taillib")
