"""``cjson``: lua-cjson 2.1.0 as Redis 7.0 links it (``deps/lua/src/lua_cjson.c``).

The encoder is Lua: it walks tables with ``next`` in Lua's own order,
formats numbers with ``string.format("%.14g")`` (C's ``%g``, as
``fpconv_g_fmt`` does; the precision is settable), refuses what the C
refuses with the same words (``Cannot serialise table: excessively sparse
array``, ``Cannot serialise, excessive nesting (1001)``, ``Cannot serialise
number: must not be NaN or Inf``, ``Cannot serialise function: type not
supported``) and encodes an empty table as ``{}``. The decoder is
:mod:`~snapkv.server.scripting.lib_cjson_decode`. Settings are shared by
every table ``cjson.new()`` returns, as Redis's copy keeps one configuration
in the registry: ``encode_sparse_array``,
``encode_max_depth``, ``decode_max_depth``, ``encode_number_precision``,
``encode_keep_buffer`` (a setting only: there is no buffer to keep),
``encode_invalid_numbers`` (``off``/``on``/``null``) and
``decode_invalid_numbers``, each with lua-cjson's argument checks.

``cjson.null`` is a userdata (Redis's is a NULL light userdata, which Lua
code cannot make) whose ``tostring`` is Redis's ``userdata: (nil)``.
"""

from __future__ import annotations

from typing import Any

from snapkv.server.scripting.lib_aux import run_chunk
from snapkv.server.scripting.lib_cjson_decode import decode

__all__ = ["build"]

_LUA = r"""
local aux, decode_py, null = ...
local type, next, select, tostring, pcall, error = type, next, select, tostring, pcall, error
local fmt, gsub, concat = string.format, string.gsub, table.concat
local floor, huge = math.floor, math.huge
local argerror, checkinteger, checkstring = aux.argerror, aux.checkinteger, aux.checkstring
local guard = aux.guard
local INT_MAX = 2147483647

local ESCAPES = {['"'] = '\\"', ["\\"] = "\\\\", ["/"] = "\\/", ["\b"] = "\\b", ["\t"] = "\\t",
                 ["\n"] = "\\n", ["\f"] = "\\f", ["\r"] = "\\r", ["\127"] = "\\u007f"}
for i = 0, 31 do
  local c = string.char(i)
  if not ESCAPES[c] then ESCAPES[c] = fmt("\\u%04x", i) end
end

local function fail(message) error(message, 0) end

-- json_arg_init: at most `args` arguments.
local function arg_init(n, args)
  if n > args then argerror(2, args + 1, "found too many arguments") end
end

-- json_integer_option (its range error always names argument #1, as the C does)
local function integer_option(n, narg, v, current, min, max)
  if v == nil then return current end
  local value = checkinteger(2, n, narg, v)
  if value < min or value > max then
    argerror(2, 1, fmt("expected integer between %d and %d", min, max))
  end
  return value
end

-- json_enum_option with options {"off", "on", ...}: a boolean or an option name
local function enum_option(n, narg, v, current, options)
  if v == nil then return current end
  if type(v) == "boolean" then return v and 1 or 0 end
  local name = checkstring(2, n, narg, v)
  for i = 1, #options do
    if options[i] == name then return i - 1 end
  end
  argerror(2, narg, fmt("invalid option '%s'", name))
end

local function enum_value(setting, options)
  if setting == 0 or setting == 1 then return setting == 1 end
  return options[setting + 1]
end

local BOOL_OPTIONS = {"off", "on"}
local INVALID_OPTIONS = {"off", "on", "null"}

-- One configuration for every table cjson.new() makes, as Redis's copy keeps
-- its configuration in the registry: a setting made through one is seen by all.
local cfg = {
  sparse_convert = 0, sparse_ratio = 2, sparse_safe = 10,
  encode_max_depth = 1000, decode_max_depth = 1000,
  encode_invalid_numbers = 0, decode_invalid_numbers = 1,
  keep_buffer = 1, precision = 14, numfmt = "%.14g",
}

local function new()
  local cjson = {}

  local function number(v, buf, k)
    if v ~= v or v == huge or v == -huge then
      local mode = cfg.encode_invalid_numbers
      if mode == 0 then fail("Cannot serialise number: must not be NaN or Inf") end
      if mode == 2 then buf[k] = "null" return end
      if v ~= v then buf[k] = "nan" return end
    end
    buf[k] = fmt(cfg.numfmt, v)
  end

  -- lua_array_length: the largest index of a pure array, or -1 for an object.
  local function array_length(t)
    local max, items = 0, 0
    for k in next, t do
      if type(k) == "number" and k >= 1 and floor(k) == k then
        if k > max then max = k end
        items = items + 1
      else
        return -1
      end
    end
    if cfg.sparse_ratio > 0 and max > items * cfg.sparse_ratio and max > cfg.sparse_safe then
      if cfg.sparse_convert == 0 then fail("Cannot serialise table: excessively sparse array") end
      return -1
    end
    return max
  end

  local append

  -- slots: Lua stack slots the C would hold here (the argument, an element per
  -- enclosing array, a key and value per enclosing object; lua_checkstack's 8000).
  local function table_value(t, depth, buf, slots)
    depth = depth + 1
    if depth > cfg.encode_max_depth or slots + 3 > 8000 then
      fail(fmt("Cannot serialise, excessive nesting (%d)", depth))
    end
    local len = array_length(t)
    if len > 0 then
      buf[#buf + 1] = "["
      for i = 1, len do
        if i > 1 then buf[#buf + 1] = "," end
        append(rawget(t, i), depth, buf, slots + 1)
      end
      buf[#buf + 1] = "]"
      return
    end
    buf[#buf + 1] = "{"
    local comma = false
    for k, v in next, t do
      if comma then buf[#buf + 1] = "," else comma = true end
      local kt = type(k)
      if kt == "number" then
        buf[#buf + 1] = '"'
        number(k, buf, #buf + 1)
        buf[#buf + 1] = '":'
      elseif kt == "string" then
        buf[#buf + 1] = '"' .. gsub(k, '[%z\1-\31"\\/\127]', ESCAPES) .. '":'
      else
        fail(fmt("Cannot serialise %s: table key must be a number or string", kt))
      end
      append(v, depth, buf, slots + 2)
    end
    buf[#buf + 1] = "}"
  end

  append = function(v, depth, buf, slots)
    local t = type(v)
    if t == "string" then
      buf[#buf + 1] = '"' .. gsub(v, '[%z\1-\31"\\/\127]', ESCAPES) .. '"'
    elseif t == "number" then
      number(v, buf, #buf + 1)
    elseif t == "boolean" then
      buf[#buf + 1] = v and "true" or "false"
    elseif t == "table" then
      table_value(v, depth, buf, slots)
    elseif v == nil or v == null then
      buf[#buf + 1] = "null"
    else
      fail(fmt("Cannot serialise %s: type not supported", t))
    end
  end

  local function encode(v)
    local buf = {}
    append(v, 0, buf, 1)
    return concat(buf)
  end

  function cjson.encode(...)
    if select("#", ...) ~= 1 then argerror(1, 1, "expected 1 argument") end
    local ok, r = pcall(encode, (...))
    if not ok then error(r, 2) end  -- luaL_error: positioned at the caller
    return r
  end

  function cjson.decode(...)
    local n = select("#", ...)
    if n ~= 1 then argerror(1, 1, "expected 1 argument") end
    local text = checkstring(1, n, 1, (...))
    guard(text)
    local ok, value = pcall(decode_py, text, null, cfg.decode_invalid_numbers == 1,
                            cfg.decode_max_depth)
    if not ok then error(tostring(value), 2) end
    return value
  end

  function cjson.encode_sparse_array(...)
    local n = select("#", ...)
    arg_init(n, 3)
    local convert, ratio, safe = ...
    cfg.sparse_convert = enum_option(n, 1, convert, cfg.sparse_convert, BOOL_OPTIONS)
    local r1 = enum_value(cfg.sparse_convert, BOOL_OPTIONS)
    cfg.sparse_ratio = integer_option(n, 2, ratio, cfg.sparse_ratio, 0, INT_MAX)
    cfg.sparse_safe = integer_option(n, 3, safe, cfg.sparse_safe, 0, INT_MAX)
    return r1, cfg.sparse_ratio, cfg.sparse_safe
  end

  function cjson.encode_max_depth(...)
    local n = select("#", ...)
    arg_init(n, 1)
    cfg.encode_max_depth = integer_option(n, 1, (...), cfg.encode_max_depth, 1, INT_MAX)
    return cfg.encode_max_depth
  end

  function cjson.decode_max_depth(...)
    local n = select("#", ...)
    arg_init(n, 1)
    cfg.decode_max_depth = integer_option(n, 1, (...), cfg.decode_max_depth, 1, INT_MAX)
    return cfg.decode_max_depth
  end

  function cjson.encode_number_precision(...)
    local n = select("#", ...)
    arg_init(n, 1)
    cfg.precision = integer_option(n, 1, (...), cfg.precision, 1, 14)
    cfg.numfmt = "%." .. cfg.precision .. "g"
    return cfg.precision
  end

  function cjson.encode_keep_buffer(...)
    local n = select("#", ...)
    arg_init(n, 1)
    cfg.keep_buffer = enum_option(n, 1, (...), cfg.keep_buffer, BOOL_OPTIONS)
    return enum_value(cfg.keep_buffer, BOOL_OPTIONS)
  end

  function cjson.encode_invalid_numbers(...)
    local n = select("#", ...)
    arg_init(n, 1)
    cfg.encode_invalid_numbers = enum_option(n, 1, (...), cfg.encode_invalid_numbers,
                                             INVALID_OPTIONS)
    return enum_value(cfg.encode_invalid_numbers, INVALID_OPTIONS)
  end

  function cjson.decode_invalid_numbers(...)
    local n = select("#", ...)
    arg_init(n, 1)
    cfg.decode_invalid_numbers = enum_option(n, 1, (...), cfg.decode_invalid_numbers,
                                             BOOL_OPTIONS)
    return enum_value(cfg.decode_invalid_numbers, BOOL_OPTIONS)
  end

  cjson.new = new
  cjson.null = null
  cjson._NAME = "cjson"
  cjson._VERSION = "2.1.0"
  return aux.register(cjson)
end

return new()
"""

_NULL_LUA = r"""
local newproxy = ...
if not newproxy then return nil end
local null = newproxy(true)
getmetatable(null).__tostring = function() return "userdata: (nil)" end
getmetatable(null).__metatable = false
return null
"""


class _Null:
    """``cjson.null`` where the runtime has no ``newproxy``: a userdata printed as Redis's."""

    def __str__(self) -> str:
        return "userdata: (nil)"


def build(lua: Any, aux: Any) -> Any:
    """The ``cjson`` table for ``lua``."""
    null = run_chunk(lua, _NULL_LUA, lua.globals().newproxy)
    if null is None:
        null = _Null()
    new_table = lua.table

    def decode_py(text: bytes, null: Any, invalid_numbers: bool, max_depth: float) -> Any:
        return decode(text, new_table, null, invalid_numbers, int(max_depth))

    return run_chunk(lua, _LUA, aux, decode_py, null)
