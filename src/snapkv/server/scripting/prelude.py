"""The Lua side of the sandbox: Redis's ``redis`` API, the scripts' globals and their protections.

One chunk of Lua 5.1, run once per VM by :mod:`snapkv.server.scripting.sandbox`
(after :mod:`~snapkv.server.scripting.convert`, whose functions it is
given) with the Python callbacks it needs, before anything is sandboxed. It
keeps what scripts must never reach (``debug``, ``setfenv``, the Python
callbacks) in its own locals, so a script reaches them only through the
functions built here. Its source name is ``=[snapkv]``: the error handler
skips those frames, so an error is placed on the script's line, as Redis
places it.

Why the conversions are Lua and not Python: a ``redis.call`` crosses from
Lua into Python once with the arguments and once back with the command's
RESP reply, which ``convert``'s ``parse`` turns into Lua values with
``string.find``/``string.sub``; the script's result is turned into RESP by
``encode`` and crosses back as one string. Building Lua tables from Python
through lupa costs a crossing per element.

The ``redis`` functions that may raise are Python callables (a C call for
Lua): ``return redis.call(...)``, a tail call, then keeps the script's frame
for the error's ``on @user_script:<line>``, as Redis's C functions do.

Readonly tables (Redis 7.0.15's ``lua_enablereadonlytable``, which needs a
patched Lua) are emulated with proxies: an empty table whose metatable
reads through to the real one and refuses writes with Redis's text; the
raw functions (``rawset``, ``setmetatable``, ``next``, ``rawget``,
``pairs``, ``ipairs``, ``unpack``, ``table.*``) are wrapped to see through a
proxy or refuse it, and never hand the real table to a script: EVAL's VM is
shared, so a script that held one could change what every later script sees.

A script's coroutines get its count hook (``debug.sethook`` keeps one per
coroutine), so SCRIPT KILL reaches a loop inside one.
"""

from __future__ import annotations

from typing import Final

__all__ = ["INTERNAL_SOURCE", "LIBRARY_SOURCE", "PRELUDE"]

#: The chunk name of the prelude: frames from it are not the script's.
INTERNAL_SOURCE: Final = "=[snapkv]"
#: The chunk name of the libraries' Lua (``scripting.libs``): not the script's frames either.
LIBRARY_SOURCE: Final = "=[redis lib]"

PRELUDE: Final = r"""
local conv, py_call, py_pcall, py_sha1hex, py_log, py_setresp, py_set_repl, py_acl,
      py_interrupted, py_random, py_seed, py_resp, py_rawset, py_setmetatable = ...
local dbg = debug
local sethook, getinfo = dbg.sethook, dbg.getinfo
local byte = string.byte
local concat = table.concat
local type, tostring, tonumber, select, error, next, rawget, rawset, rawequal =
      type, tostring, tonumber, select, error, next, rawget, rawset, rawequal
local setmetatable, getmetatable, unpack, pcall, xpcall, setfenv, loadstring, load =
      setmetatable, getmetatable, unpack, pcall, xpcall, setfenv, loadstring, load
local floor = math.floor
local INTERNAL = "=[snapkv]"
local READONLY = "Attempt to modify a readonly table"

local G = _G                      -- the real globals; scripts see `env`, a proxy
local state = conv.state          -- the running script's RESP version (redis.setresp)
local error_table, err_handler, encode, error_reply =
      conv.error_table, conv.err_handler, conv.encode, conv.error_reply
local proxies = setmetatable({}, {__mode = "k"})  -- proxy -> real table

-- ------------------------------------------------------- the redis API

-- The functions that may raise are Python callables: calling one is a C
-- call, so even `return redis.call(...)` (a tail call) keeps the script's
-- frame, and the error handler finds the script's line, as Redis's C
-- functions let it. Their errors arrive as Python exceptions (userdata).
local redis = {
  call = py_call,
  pcall = py_pcall,
  sha1hex = py_sha1hex,
  log = py_log,
  setresp = py_setresp,
  set_repl = py_set_repl,
  acl_check_cmd = py_acl,
  error_reply = function(...)
    local s = ...
    if select("#", ...) ~= 1 or type(s) ~= "string" then
      return error_table("wrong number or type of arguments")
    end
    if byte(s, 1) ~= 45 then s = "-" .. s end
    return error_table(s)
  end,
  status_reply = function(...)
    local s = ...
    if select("#", ...) ~= 1 or type(s) ~= "string" then
      return error_table("wrong number or type of arguments")
    end
    return {ok = s}
  end,
  replicate_commands = function() return true end,
  breakpoint = function() return false end,
  debug = function() end,
  LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
  REPL_NONE = 0, REPL_AOF = 1, REPL_SLAVE = 2, REPL_REPLICA = 2, REPL_ALL = 3,
}
-- lupa's metatable of Python objects: out of scripts' reach.
rawset(getmetatable(py_call), "__metatable", false)

-- Redis's math.random: its own 48-bit generator, the same sequence on every machine.
local MAX = 2147483647
local function random(...)
  local r = (py_random() % MAX) / MAX
  local argc = select("#", ...)
  if argc == 0 then return r end
  local l, u = ...
  if argc == 1 then
    u = floor(tonumber(l) or error("bad argument #1 to 'random' (number expected)", 2))
    if u < 1 then error("bad argument #1 to 'random' (interval is empty)", 2) end
    return floor(r * u) + 1
  elseif argc == 2 then
    l = floor(tonumber(l) or error("bad argument #1 to 'random' (number expected)", 2))
    u = floor(tonumber(u) or error("bad argument #2 to 'random' (number expected)", 2))
    if l > u then error("bad argument #2 to 'random' (interval is empty)", 2) end
    return floor(r * (u - l + 1)) + l
  end
  error("wrong number of arguments", 2)
end
math.random = random
math.randomseed = function(seed)
  py_seed(floor(tonumber(seed) or error("bad argument #1 to 'randomseed' (number expected)", 2)))
end

-- Redis's pcall: an error table is given back as its `err` string.
local function redis_pcall_builtin(f, ...)
  local results = {pcall(f, ...)}
  if not results[1] then
    local e = results[2]
    if type(e) == "table" then
      local msg = rawget(e, "err")
      if type(msg) == "string" then results[2] = msg end
    elseif type(e) == "userdata" then
      results[2] = tostring(e)
    end
  end
  return unpack(results, 1, table.maxn(results))
end

-- Loading: text only (Redis 7 refuses binary chunks: CVE-2015-4335).
local script_env = nil  -- what a chunk loaded by a script runs in (set by build)
local function text_loadstring(s, name)
  if type(s) == "string" and byte(s, 1) == 27 then
    return nil, "attempt to load a binary chunk"
  end
  local f, err = loadstring(s, name)
  if f then setfenv(f, script_env) end
  return f, err
end
local function text_load(f, name)
  local first = true
  local function reader()
    local piece = f()
    if first and type(piece) == "string" and #piece > 0 then
      first = false
      if byte(piece, 1) == 27 then error("attempt to load a binary chunk", 0) end
    end
    return piece
  end
  local f, err = load(reader, name)
  if f then setfenv(f, script_env) end
  return f, err
end

-- ---------------------------------------------------- readonly proxies

local function refuse() error(READONLY, 2) end

local function readonly(real, meta_view)
  if proxies[real] then return real end
  local proxy = {}
  local mt = {__index = real, __newindex = refuse, __metatable = meta_view or false}
  setmetatable(proxy, mt)
  proxies[proxy] = real
  return proxy
end

local function protect_tree(t, seen)
  -- Every table reachable from `t` becomes a readonly proxy (in place of itself).
  seen = seen or {}
  if seen[t] then return seen[t] end
  local proxy = readonly(t)
  seen[t] = proxy
  for k, v in next, t do
    if type(v) == "table" and not proxies[v] then
      rawset(t, k, protect_tree(v, seen))
    end
  end
  return proxy
end

local function real_of(t)
  return proxies[t] or t
end

local safe = {}
-- rawset and setmetatable refuse a readonly table from Python (a C call: see the API).
safe.rawset = py_rawset
safe.rawget = function(t, k) return rawget(real_of(t), k) end
safe.next = function(t, k) return next(real_of(t), k) end
-- pairs and ipairs never hand out the table behind a proxy (a script that
-- held it could write to what every later script sees): they iterate it
-- inside a closure and give the script the proxy back as the state.
safe.pairs = function(t)
  local real = type(t) == "table" and proxies[t]
  if not real then return pairs(t) end
  return function(_, k) return next(real, k) end, t, nil
end
local function ipairs_step(real, i)
  i = i + 1
  local v = rawget(real, i)
  if v ~= nil then return i, v end
end
safe.ipairs = function(t)
  local real = type(t) == "table" and proxies[t]
  if not real then return ipairs(t) end
  return function(_, i) return ipairs_step(real, i) end, t, 0
end
safe.unpack = function(t, i, j) return unpack(real_of(t), i, j) end
safe.setmetatable = py_setmetatable

-- table.* take a table as it is: through a proxy they would read nothing
-- and table.insert would write to the proxy itself (a global every later
-- script sees). Readers see through a proxy; table.insert refuses it, as
-- Redis's readonly table does (py_rawset raises its error: a C call).
local tbl = table
local t_insert, t_foreach, t_foreachi, t_getn, t_maxn, t_concat =
      tbl.insert, tbl.foreach, tbl.foreachi, tbl.getn, tbl.maxn, tbl.concat
local safe_table = {}
for k, v in next, tbl do safe_table[k] = v end
safe_table.insert = function(t, ...)
  if proxies[t] then py_rawset(t) end
  return t_insert(t, ...)
end
safe_table.foreach = function(t, f) return t_foreach(real_of(t), f) end
safe_table.foreachi = function(t, f) return t_foreachi(real_of(t), f) end
safe_table.getn = function(t) return t_getn(real_of(t)) end
safe_table.maxn = function(t) return t_maxn(real_of(t)) end
safe_table.concat = function(t, ...) return t_concat(real_of(t), ...) end

-- ------------------------------------------------- the scripts' globals

local ALLOWED = {
  "string", "math", "table", "coroutine", "cjson", "bit", "cmsgpack", "struct",
  "xpcall", "tostring", "setmetatable", "next", "assert", "tonumber", "rawequal",
  "collectgarbage", "getmetatable", "rawset", "pcall", "type", "select", "unpack",
  "gcinfo", "pairs", "rawget", "loadstring", "ipairs", "_VERSION", "load", "error",
}

local function build(extra)
  local real = {}
  for _, name in ipairs(ALLOWED) do real[name] = G[name] end
  real.pcall = redis_pcall_builtin
  real.loadstring = text_loadstring
  real.load = text_load
  real.table = safe_table
  for name, f in next, safe do
    if real[name] ~= nil then real[name] = f end
  end
  real.redis = redis
  real.__redis__err__handler = err_handler
  if extra then extra(real, redis) end
  -- The string metatable: its __index through a readonly string table.
  local string_mt = getmetatable("")
  local strings
  for k, v in next, real do
    if type(v) == "table" then
      local p = protect_tree(v)
      real[k] = p
      if k == "string" then strings = p end
    end
  end
  string_mt.__index = strings
  string_mt.__metatable = readonly(string_mt)
  -- The globals: reading an undefined one is an error, and nothing may be added.
  local function missing(_, key)
    error("Script attempted to access nonexistent global variable '" .. tostring(key) .. "'", 2)
  end
  local gmeta = {__index = missing}
  setmetatable(real, gmeta)
  local env = setmetatable({}, {__index = real, __newindex = refuse, __metatable = readonly(gmeta)})
  proxies[env] = real
  real._G = env
  script_env = env
  -- The state's own globals keep nothing a loaded chunk could misuse.
  for _, name in ipairs({"debug", "os", "io", "python", "package", "require", "loadfile",
                         "dofile", "print", "module", "setfenv", "getfenv", "newproxy"}) do
    G[name] = nil
  end
  return env, real
end

local function compile(body, chunkname, env)
  if byte(body, 1) == 27 then
    return nil, "attempt to load a binary chunk"
  end
  local f, err = loadstring(body, chunkname)
  if not f then return nil, err end
  setfenv(f, env)
  return f, false
end

local function hook()
  if py_interrupted() then
    -- From now on at every line, so a pcall in the script cannot swallow it
    -- for good; never inside the prelude's own code (run's epilogue).
    hook_mask, hook_count = "l", 0
    sethook(hook, "l")
    local info = getinfo(2, "S")
    if info and info.source ~= INTERNAL then
      error(error_table("Script killed by user with SCRIPT KILL..."))
    end
  end
end

-- debug.sethook keeps a hook per coroutine: a coroutine a script creates
-- gets the running script's hook, or SCRIPT KILL could not reach its loops.
local hook_mask, hook_count = nil, 0
local co_create, co_resume = coroutine.create, coroutine.resume
local function hooked_create(f)
  local co = co_create(f)
  if hook_mask then sethook(co, hook, hook_mask, hook_count) end
  return co
end
local function hooked_wrap(f)
  local co = hooked_create(f)
  return function(...)
    local results = {co_resume(co, ...)}
    if not results[1] then error(results[2], 2) end
    return unpack(results, 2, table.maxn(results))
  end
end
coroutine.create = hooked_create
coroutine.wrap = hooked_wrap

-- Runs `f` as Redis's luaCallFunction: (true, reply) or (false, error reply).
local function run(f, real, eval_mode, keys, args, name, resp, count)
  state.resp = 2
  hook_mask, hook_count = "", count
  sethook(hook, "", count)
  local ok, v
  state.fn = f  -- for the error handler (a library error through a tail call)
  if eval_mode then
    rawset(real, "KEYS", keys)
    rawset(real, "ARGV", args)
    ok, v = xpcall(f, err_handler)
  else
    ok, v = xpcall(function() return f(keys, args) end, err_handler)
  end
  sethook()
  hook_mask = nil
  state.fn = nil
  state.resp = py_resp()
  if not ok then
    local text, counted = error_reply(v, name)
    return false, text, counted
  end
  -- An error table returned (redis.pcall's) was counted where it arose.
  local counted = type(v) == "table" and type(rawget(v, "err")) == "string"
    and rawget(v, "ignore_error_stats_update") == true
  local out = {}
  local done, failure = pcall(encode, v, out, resp, 0)
  if not done then
    local text = error_reply(failure, name)
    return false, text, false
  end
  return true, concat(out), counted
end

return {
  build = build, compile = compile, run = run, readonly = readonly,
  protect = protect_tree, error_table = error_table, parse = conv.parse,
  is_proxy = function(t) return proxies[t] ~= nil end,
  rawset = rawset, setmetatable = setmetatable,
}
"""
