"""The Lua libraries Redis 7.0 gives every script: ``cjson``, ``cmsgpack``, ``struct``, ``bit``.

Redis links four C libraries into its Lua (``deps/lua/src/lua_cjson.c``,
``lua_cmsgpack.c``, ``lua_struct.c``, ``lua_bit.c``). Here each is a Lua
table whose functions are written in Lua (argument checks, the walk over a
table, anything whose result depends on how Lua itself prints or parses a
number) over Python helpers (bytes in, bytes out: a double's bytes, a
msgpack or JSON text read into Lua values), one module per library.

Why the checks are in Lua: an error raised from a Python function reaches
Lua as a userdata wrapping the exception, where Redis's libraries raise a
string (``pcall(cjson.decode, "[")`` gives a message a script can print and
match). So every Python helper is called through ``pcall`` and its
exception's text re-raised as a string, positioned as ``luaL_error``
positions it: ``user_script:3: `` when a Lua function called the library
function, nothing when ``pcall`` called it directly. Argument errors are
worded as ``luaL_argerror`` words them, with the name the caller used
(``bad argument #1 to 'band'``; ``'?'`` through ``pcall``), read with
``debug.getinfo`` captured at install time, before the sandbox removes
``debug``. Every case is compared with redis-server in tests/test_lua_libs.py.

One difference remains, and it is Lua's: ``return cjson.decode(s)`` is a
tail call, and a tail call into a Lua function replaces the caller's frame,
so when that call fails the script's line is gone (no ``user_script:1: ``
prefix; Redis's C function keeps its caller). A library function called
any other way (``local t = cjson.decode(s)``, in an expression, through
``pcall``) reports as Redis does.

The library code's chunk is the scripting prelude's own (``=[snapkv]``),
whose frames the error handler skips as it skips C frames.
"""

from __future__ import annotations

from typing import Any

from snapkv.server.scripting import lib_bit, lib_cjson, lib_cmsgpack, lib_struct
from snapkv.server.scripting.lib_aux import CALL_HELPER, PRELUDE, run_chunk

__all__ = ["HIDDEN_SETHOOK", "install_libraries"]

#: The name under which ``debug.sethook`` stays in the Lua state's own globals.
HIDDEN_SETHOOK = "_snapkv_sethook"

#: Where the sandbox leaves its large-input callable (``sandbox.LARGE_INPUT_GLOBAL``):
#: the libraries call it before Python works on an input past 64 KiB (or items).
LARGE_INPUT_GLOBAL = "_snapkv_large_input"


def install_libraries(lua_runtime: Any) -> None:
    """Set the globals ``cjson``, ``cmsgpack``, ``struct`` and ``bit`` in ``lua_runtime``.

    ``lua_runtime`` is a ``lupa.lua51.LuaRuntime`` made with ``encoding=None``
    (Lua strings are bytes, as Redis's are). Call it before the sandbox
    removes ``debug`` and ``loadstring`` and makes the globals read-only.
    """
    g = lua_runtime.globals()
    debug = g.debug
    if debug is not None:
        # Kept in the state's own globals, which scripts never see (their
        # globals are the sandbox's table): FUNCTION LOAD's time limit uses it.
        g[HIDDEN_SETHOOK] = debug.sethook
    getinfo = debug.getinfo if debug is not None else lua_runtime.eval("function() end")
    aux = run_chunk(
        lua_runtime,
        PRELUDE,
        getinfo,
        g.type,
        g.tonumber,
        g.tostring,
        g.string.format,
        g.error,
        g.next,
        g.setmetatable,
    )
    # The sandbox's hook for work on a large input (None without one).
    aux[b"large_input"] = g[LARGE_INPUT_GLOBAL]
    run_chunk(lua_runtime, CALL_HELPER, aux)
    g.bit = lib_bit.build(lua_runtime, aux)
    g.cjson = lib_cjson.build(lua_runtime, aux)
    g.cmsgpack = lib_cmsgpack.build(lua_runtime, aux)
    g.struct = lib_struct.build(lua_runtime, aux)
