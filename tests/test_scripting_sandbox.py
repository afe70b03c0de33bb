"""The sandbox: each way out that has been a Redis CVE (or a lupa-specific one) stays shut.

Every test runs a script that tries the escape, checks it was refused, then
checks that the next script still sees an intact environment: tampering
must not leak from one script to the next.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("lupa")

from snapkv import Store
from snapkv.server.client import Client
from snapkv.server.dispatch import Dispatcher
from snapkv.server.state import Config


class Lua:
    """EVAL through the dispatcher: ``lua("return 1")`` is the raw reply."""

    def __init__(self) -> None:
        self.store = Store()
        self.server = Dispatcher(self.store, Config())
        self.client = Client(self.server)

    def __call__(self, script: str, *keys_then_args: str, numkeys: int = 0) -> bytes:
        return self.server.execute(self.client, ["EVAL", script, str(numkeys), *keys_then_args])


@pytest.fixture
def lua() -> Iterator[Lua]:
    made = Lua()
    yield made
    made.store.close()


def _intact(lua: Lua) -> None:
    """The environment a fresh script sees is the original one."""
    assert lua("return ('abc'):upper()") == b"$3\r\nABC\r\n"
    assert lua("return string.format('%d', 7)") == b"$1\r\n7\r\n"
    assert lua("return redis.call('ping')") == b"+PONG\r\n"
    assert lua("return tostring(getmetatable('').__index == string)") == b"$4\r\ntrue\r\n"
    assert lua("return type(math.floor)") == b"$8\r\nfunction\r\n"


def test_bytecode_is_never_loaded(lua: Lua) -> None:
    """CVE-2015-4335: a crafted binary chunk corrupts the VM; every loader refuses one."""
    assert lua("return loadstring(string.dump(function() return 1 end))") == b"$-1\r\n"
    refused = lua("return select(2, loadstring(string.dump(function() return 1 end)))")
    assert refused == b"$30\r\nattempt to load a binary chunk\r\n"
    script = (
        "local done = false; local f, e = load(function() if done then return nil end;"
        " done = true; return string.dump(function() return 1 end) end); return {tostring(f), e}"
    )
    assert b"binary chunk" in lua(script)
    reply = lua("\x1bLuaQ\x00")
    assert reply.startswith(b"-ERR Error compiling script (new function): ")
    _intact(lua)


def test_no_python_reaches_a_script(lua: Lua) -> None:
    """lupa's bridges: no python global, no attributes of the Python callables behind redis.*."""
    missing = b"-ERR user_script:1: Script attempted to access nonexistent global variable 'python'"
    assert lua("return python").startswith(missing)
    assert lua("return loadstring('return python')()").startswith(b"-ERR [string")
    denied = lua("return redis.call.__class__")
    assert denied.startswith(b"-ERR Python attribute '__class__' is not accessible")
    assert b"accessible" in lua(
        "local ok, e = pcall(function() return redis.call.__globals__ end) return e"
    )
    assert lua("return getmetatable(redis.call)") == b"$-1\r\n"  # false: locked
    assert lua("return getmetatable(redis.pcall) == getmetatable(redis.call)") == b":1\r\n"
    refused = lua("setmetatable(redis.call, {})")
    assert refused.startswith(b"-ERR bad argument #1 to '?' (table expected, got userdata)") or (
        refused.startswith(b"-")
    )
    _intact(lua)


def test_metatables_of_protected_tables_cannot_change(lua: Lua) -> None:
    """CVE-2024-46981 and the string metatable: no script changes what the next one sees."""
    for script in (
        "getmetatable('').__index = {upper = function() return 'pwned' end}",
        "getmetatable('').__index.upper = function() return 'pwned' end",
        "string.upper = function() return 'pwned' end",
        "rawset(string, 'upper', function() return 'pwned' end)",
        "rawset(getmetatable(''), '__index', {})",
        "setmetatable(string, {__index = function() return 'pwned' end})",
        "redis.call = function() return 'pwned' end",
        "rawset(redis, 'call', function() return 'pwned' end)",
        "setmetatable(_G, nil)",
        "getmetatable(_G).__index = function() return 'pwned' end",
        "rawset(_G, 'redis', {})",
        "math.floor = nil",
        "table.insert = nil",
        "coroutine.create = nil",
    ):
        reply = lua(script)
        assert reply.startswith(b"-ERR ") and b"Attempt to modify a readonly table" in reply, script
    _intact(lua)


def test_globals_cannot_be_created_or_read_when_missing(lua: Lua) -> None:
    assert b"Attempt to modify a readonly table" in lua("x = 1")
    assert b"nonexistent global variable 'x'" in lua("return x")
    # A chunk a script loads runs in the same protected globals, not the VM's own.
    assert b"Attempt to modify a readonly table" in lua("loadstring('y = 1')()")
    for name in ("os", "io", "debug", "require", "package", "dofile", "loadfile", "print"):
        reply = lua(f"return loadstring('return {name}')()")
        assert f"nonexistent global variable '{name}'".encode() in reply, name
    # Neither from a coroutine nor a pcall.
    assert b"readonly" in lua("return {coroutine.resume(coroutine.create(function() z = 1 end))}")
    assert b"readonly" in lua("local ok, e = pcall(function() w = 1 end); return e")


def test_functions_redis_leaves_out_are_absent(lua: Lua) -> None:
    for name in ("getfenv", "setfenv", "newproxy", "print", "debug", "module", "gcinfo_typo"):
        assert f"nonexistent global variable '{name}'".encode() in lua(f"return {name}"), name
    assert lua("return type(collectgarbage('count'))") == b"$6\r\nnumber\r\n"
    assert lua("collectgarbage('collect'); return 1") == b":1\r\n"
    _intact(lua)


def test_runaway_memory_ends_the_script_not_the_server(lua: Lua) -> None:
    reply = lua("return string.rep('x', 2^30)")
    assert reply.startswith(b"-ERR Error running script") and b"not enough memory" in reply
    grow = "local t = {}; for i = 1, 1e9 do t[i] = {i, i, i, i, i, i, i, i, i, i, i, i} end"
    assert b"not enough memory" in lua(grow)
    _intact(lua)
    assert lua("return #string.rep('z', 1000000)") == b":1000000\r\n"


def test_kill_without_a_script(lua: Lua) -> None:
    from snapkv.server.scripting import engine_of

    engine = engine_of(lua.server)
    assert engine.kill("script") == b"-NOTBUSY No scripts in execution right now.\r\n"


def test_keys_and_argv_are_fresh_each_run(lua: Lua) -> None:
    assert lua("KEYS[2] = 'extra'; return #KEYS", "a", numkeys=1) == b":2\r\n"
    assert lua("return #KEYS", "a", numkeys=1) == b":1\r\n"
    assert lua("return ARGV[1]") == b"$-1\r\n"


def test_without_lupa_scripting_commands_say_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server starts without the Lua runtime; EVAL then names the extra to install."""
    from snapkv.server.scripting import sandbox

    monkeypatch.setattr(sandbox, "lupa_available", lambda: False)
    lua = Lua()
    try:
        for argv in (["EVAL", "return 1", "0"], ["SCRIPT", "LOAD", "return 1"]):
            reply = lua.server.execute(lua.client, argv)
            assert reply.startswith(b"-ERR Lua scripting is not available") and (
                b"install snapkv[server]" in reply
            ), argv
        assert lua.server.execute(lua.client, ["PING"]) == b"+PONG\r\n"
    finally:
        lua.store.close()


def test_redis_log_writes_to_the_server_log(lua: Lua, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(5, logger="snapkv.server"):
        assert lua("redis.log(redis.LOG_WARNING, 'disk', 'at', 93.5, {})") == b"$-1\r\n"
        assert lua("redis.log(redis.LOG_DEBUG, 'below notice')") == b"$-1\r\n"
    warnings = [r for r in caplog.records if r.levelno == 30 and r.name == "snapkv.server"]
    assert [r.getMessage() for r in warnings] == ["disk at 93.5"]
    # The server's loglevel (notice) drops LOG_DEBUG, as Redis's does.
    assert not any("below notice" in r.getMessage() for r in caplog.records)


def test_an_error_object_caught_by_xpcall_opens_nothing(lua: Lua) -> None:
    """xpcall hands the script the error a redis.call raised (a Python object underneath)."""
    catch = "local ok, e = xpcall(function() redis.call('nosuch') end, function(e) return e end);"
    assert lua(catch + " return tostring(e)") == (
        b"$44\r\nERR Unknown Redis command called from script\r\n"
    )
    assert lua(catch + " return getmetatable(e)") == b"$-1\r\n"
    assert b"is not accessible" in lua(catch + " return e.args")
    assert b"is not accessible" in lua(catch + " return e.__traceback__")
    assert lua(catch + " return e") == b"$-1\r\n"  # no value a reply can carry
    assert b"must be strings or integers" in lua(catch + " return redis.call('get', e)")
    _intact(lua)


#: Each way a script could reach the writable table behind a readonly one:
#: the write must be refused with Redis's text and the next script must see
#: the untouched environment (EVAL's VM is shared by every client).
ESCAPES = {
    "pairs-globals": "local _, r = pairs(_G) r.newglobal = 1 return 1",
    "pairs-string": "local _, s = pairs(string) s.len = function() return 42 end return 1",
    "ipairs-globals": "local _, r = ipairs(_G) r.redis = {call = function() return 'x' end}",
    "pairs-redis": "local _, r = pairs(redis) r.call = function() return 'x' end",
    "pairs-string-meta": "local _, m = pairs(getmetatable('')) m.__index = {}",
    "pairs-globals-meta": "local _, m = pairs(getmetatable(_G)) m.__index = {}",
    "next-state": "local f, r = pairs(math) local k = f(r, nil) r.floor = 1",
    "table-insert": "table.insert(_G, function() end)",
    "table-insert-string": "table.insert(string, 1, 'x')",
    "rawset": "rawset(_G, 'newglobal', 1)",
    "rawset-string": "rawset(string, 'len', 1)",
    "setmetatable": "setmetatable(string, {})",
}


@pytest.mark.parametrize("escape", list(ESCAPES.values()), ids=list(ESCAPES))
def test_no_way_reaches_the_table_behind_a_readonly_one(twin: Any, escape: str) -> None:
    """pairs/ipairs/table.* of a protected table never hand out the real one."""
    refused = twin.same("EVAL", escape, "0")
    assert b"Attempt to modify a readonly table" in refused
    twin.same("EVAL", "return tostring(rawget(_G, 'newglobal'))", "0")
    twin.same("EVAL", "return {string.len('abc'), redis.call('ping'), math.floor(1.5)}", "0")
    twin.same("EVAL", "return ('abc'):upper()", "0")


def test_iterating_a_readonly_table_sees_its_contents(twin: Any) -> None:
    """The safe pairs/ipairs/table.* still read what is behind the proxy."""
    twin.same("EVAL", "local n = 0 for k in pairs(string) do n = n + 1 end return n", "0")
    twin.same("EVAL", "local n = 0 for k, v in pairs(_G) do n = n + 1 end return n > 20", "0")
    twin.same(
        "EVAL", "local t = {} table.foreach(string, function(k) t[#t+1] = k end) return #t", "0"
    )
    twin.same(
        "EVAL", "return {table.getn(_G), table.maxn(_G), table.concat(KEYS, ',')}", "2", "a", "b"
    )
    twin.same(
        "EVAL", "local s = 0 for i, v in ipairs({4, 5, 6}) do s = s + i * v end return s", "0"
    )
    twin.same("EVAL", "local f, s, i = pairs(_G) return tostring(s == _G)", "0")
