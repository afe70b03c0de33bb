"""What the Lua libraries share: ``lauxlib.c``'s argument checks in Lua, and how a chunk is run.

The library functions are Lua functions over Python helpers (see
:mod:`snapkv.server.scripting.libs` for why). Their chunk is named
:data:`LIBRARY_SOURCE`, so an error handler that reports the script's line
by skipping C frames can skip these frames too.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ARG_ERROR",
    "CALL_HELPER",
    "LIBRARY_SOURCE",
    "PRELUDE",
    "RAW_ERROR",
    "ArgumentError",
    "LibraryError",
    "check_number",
    "check_string",
    "lua_number_text",
    "lua_tonumber",
    "lua_type_name",
    "run_chunk",
]

#: The chunk name of every library's Lua code (``debug.getinfo(f).source``): the
#: scripting prelude's own (``prelude.INTERNAL_SOURCE``), whose frames its error
#: handler skips as it skips C frames, so an error is reported on the script's line.
LIBRARY_SOURCE = "=[snapkv]"


class LibraryError(Exception):
    """A library function's error, raised to Lua as its message alone (``luaL_error``)."""


#: The checks of ``lauxlib.c`` every library uses, as Lua functions. Each
#: takes ``level``: how many calls below the library function it runs
#: (1 when the library function calls it), so the name in the message is
#: the one the script called the library function by.
PRELUDE = r"""
local getinfo, typeofv, tonumber, tostring, fmt, err, next, setmetatable = ...
local aux = {}

-- luaL_argerror. A library function is Lua here, so a script's `return f(x)`
-- is a tail call that leaves no name to read; a C function keeps its name
-- there, so take the function's own (aux.names, filled by register).
local names = setmetatable({}, {__mode = "k"})
aux.names = names
function aux.register(lib)
  for k, v in next, lib do
    if typeofv(v) == "function" then names[v] = k end
  end
  return lib
end

local function argerror(level, narg, extramsg)
  local ar = getinfo(level + 1, "nf")
  local name = ar and ar.name
  if ar and ar.namewhat == "method" then
    narg = narg - 1
    if narg == 0 then
      err(fmt("calling '%s' on bad self (%s)", tostring(name), extramsg), level + 2)
    end
  end
  if name == nil and ar then
    local caller = getinfo(level + 2, "S")
    if caller and caller.what == "tail" then name = names[ar.func] end
  end
  if name == nil then name = "?" end
  err(fmt("bad argument #%d to '%s' (%s)", narg, name, extramsg), level + 2)
end
aux.argerror = argerror

-- luaL_typerror: n is how many arguments the call had (select("#", ...)).
local function typeerror(level, n, narg, v, tname)
  local got = "no value"
  if narg <= n then got = typeofv(v) end
  argerror(level + 1, narg, fmt("%s expected, got %s", tname, got))
end
aux.typeerror = typeerror

-- luaL_checknumber: a number, or a string Lua reads as one.
function aux.checknumber(level, n, narg, v)
  local t = typeofv(v)
  if t == "number" then return v end
  if t == "string" then
    local d = tonumber(v)
    if d then return d end
  end
  typeerror(level + 1, n, narg, v, "number")
end

-- luaL_checklstring: a string, or a number as Lua prints it (%.14g).
function aux.checkstring(level, n, narg, v)
  local t = typeofv(v)
  if t == "string" then return v end
  if t == "number" then return tostring(v) end
  typeerror(level + 1, n, narg, v, "string")
end

-- luaL_checkinteger: lua_tointeger truncates toward zero.
function aux.checkinteger(level, n, narg, v)
  local t, d = typeofv(v), nil
  if t == "number" then d = v elseif t == "string" then d = tonumber(v) end
  if d == nil then typeerror(level + 1, n, narg, v, "number") end
  if d >= 0 then return d - d % 1 end
  return -((-d) - (-d) % 1)
end

return aux
"""


def run_chunk(lua: Any, source: str, *args: Any) -> Any:
    """Run ``source`` (a library's Lua code) with ``args`` as ``...``.

    Its chunk is named :data:`LIBRARY_SOURCE`.
    """
    return lua.execute(source, *args, name=LIBRARY_SOURCE)


#: How a Python helper's argument error reaches Lua: ``ARG_ERROR`` + ``<narg>:<message>``,
#: which the Lua side turns into ``luaL_argerror``'s text with the caller's name for the function.
ARG_ERROR = "\x01arg"

#: The prefix of an error raised without a position (one Lua's own C API raises).
RAW_ERROR = "\x01raw"

#: The Lua side of a Python helper: call it protected, re-raise its error as Lua would.
CALL_HELPER = r"""
local aux = ...
local pcall, tostring, tonumber, error = pcall, tostring, tonumber, error
local argerror = aux.argerror
-- call(py, ...): py's result, or its error as a string, positioned as luaL_error
-- positions it (where the library function was called from; nothing from C).
function aux.call(py, ...)
  local ok, r = pcall(py, ...)
  if ok then return r end
  local text = tostring(r)
  local narg, msg = text:match("^\1arg(%-?%d+):(.*)$")
  if narg then argerror(2, tonumber(narg), msg) end
  local raw = text:match("^\1raw(.*)$")
  if raw then error(raw, 0) end  -- an error Lua's C API raises (no position)
  error(text, 3)  -- luaL_error: the position of the library function's caller
end

-- guard(...): before Python works on the arguments, tell the engine when they are
-- large (aux.large_input, the sandbox's; it may raise to move the run to the
-- script thread, where BUSY and SCRIPT KILL reach it). Python work runs between
-- two Lua instructions, where the count hook cannot stop it; counting here is Lua.
local LARGE, large_input, select, next, typeofv = 65536, aux.large_input, select, next, type
local function size(v, depth, budget)
  local t = typeofv(v)
  if t == "string" then return #v end
  if t ~= "table" or depth > 16 then return 1 end
  local n = 0
  for _, x in next, v do
    n = n + 1
    if typeofv(x) == "table" then n = n + size(x, depth + 1, budget - n) end
    if n > budget then return n end
  end
  return n
end
function aux.guard(...)
  if not large_input then return end
  local total = 0
  for i = 1, select("#", ...) do
    total = total + size((select(i, ...)), 0, LARGE - total)
    if total > LARGE then
      large_input(total)
      return
    end
  end
end
return aux
"""


class ArgumentError(LibraryError):
    """A bad argument, worded by Lua as ``bad argument #<narg> to '<name>' (<message>)``."""

    def __init__(self, narg: int, message: str) -> None:
        super().__init__(f"{ARG_ERROR}{narg}:{message}")


def lua_type_name(value: Any) -> str:
    """Lua's ``type()`` of a value lupa handed to Python."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, bytes):
        return "string"
    from lupa import lua51  # noqa: PLC0415 - lupa is optional; only a runtime reaches here

    name = lua51.lua_type(value)
    return str(name) if name else "userdata"


def lua_tonumber(value: Any) -> float | None:
    """``lua_tonumber``: a number, a string Lua reads as one (``luaO_str2d``), else ``None``."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, bytes):
        return None
    from snapkv.server.scripting.lib_cjson_decode import strtod  # noqa: PLC0415 - a cycle

    text = value.split(b"\0", 1)[0]
    start = len(text) - len(text.lstrip(b" \t\n\v\f\r"))
    read = strtod(text, start)
    if read is None:
        return None
    if text[read[1] :].strip(b" \t\n\v\f\r"):
        return None
    return read[0]


def check_number(args: tuple[Any, ...], narg: int) -> float:
    """``luaL_checknumber`` on the ``narg``-th (1-based) of ``args``."""
    value = args[narg - 1] if narg <= len(args) else None
    number = lua_tonumber(value)
    if number is None:
        got = lua_type_name(value) if narg <= len(args) else "no value"
        raise ArgumentError(narg, f"number expected, got {got}")
    return number


def check_string(args: tuple[Any, ...], narg: int) -> bytes:
    """``luaL_checklstring`` on the ``narg``-th of ``args`` (a number as ``%.14g``)."""
    value = args[narg - 1] if narg <= len(args) else None
    if isinstance(value, bytes):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return lua_number_text(float(value))
    got = lua_type_name(value) if narg <= len(args) else "no value"
    raise ArgumentError(narg, f"string expected, got {got}")


def lua_number_text(number: float) -> bytes:
    """A number as Lua 5.1 prints it (``LUA_NUMBER_FMT``, ``%.14g``)."""
    return b"%.14g" % number
