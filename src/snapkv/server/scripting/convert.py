"""Redis's reply conversions, in Lua: a command's RESP reply to Lua values and back.

The first chunk the sandbox runs in a new VM (see :mod:`snapkv.server.scripting.prelude`
for why the conversions are Lua): ``parse`` is Redis's ``redisProtocolToLuaType``
(integer to number, bulk to string, nil bulk and nil array to false, status
to ``{ok=...}``, error to ``{err=...}``, and RESP3's map, set, double,
boolean, null, big number and verbatim string); ``encode`` is
``luaReplyToRedisReply`` (number to integer, truncated; string to bulk;
a table to an array up to its first nil; ``{ok=}`` to a status, ``{err=}``
to an error; true to 1 and false to nil, or RESP3's booleans after
``redis.setresp(3)``; ``double``, ``map``, ``set``, ``big_number``,
``verbatim_string`` tables in the caller's protocol); ``err_handler`` is
Redis's ``__redis__err__handler`` and ``error_reply`` the error reply of a
failed run (``luaCallFunction``).
"""

from __future__ import annotations

from typing import Final

__all__ = ["CONVERT"]

CONVERT: Final = r"""
local getinfo, INTERNAL, LIBRARY, is_counted = ...
local byte, sub, find, fmt, gsub = string.byte, string.sub, string.find, string.format, string.gsub
local type, tostring, tonumber, error, next, rawget = type, tostring, tonumber, error, next, rawget
local state = {resp = 2}          -- the running script's RESP version (redis.setresp)

-- Redis reads error and status texts as C strings: they end at a NUL.
local function cstr(s)
  local z = find(s, "\0", 1, true)
  if z then return sub(s, 1, z - 1) end
  return s
end

-- ------------------------------------------------------------ errors

-- Redis's luaPushErrorBuff: "-CODE msg" or "msg" -> {err="CODE msg"}.
local function error_table(text)
  text = cstr(text)
  local code, msg
  if byte(text, 1) == 45 then
    local space = find(text, " ", 1, true)
    if space then
      code, msg = sub(text, 2, space - 1), sub(text, space + 1)
    else
      code, msg = "ERR", sub(text, 2)
    end
  else
    code, msg = "ERR", text
  end
  msg = gsub(gsub(msg, "^[\r\n]+", ""), "[\r\n]+$", "")
  return {err = code .. " " .. msg}
end

-- The script's place of a library error raised through a tail call, and
-- the `user_script:<line>: ` prefix Redis's luaL_error gives it: known when
-- the running function (state.fn, set by the prelude's run) has code on
-- one line; else the tail call's own frame and no prefix (Lua 5.1 keeps no
-- trace of the line).
local function tail_caller(info)
  local fn = state.fn
  local fi = fn and getinfo(fn, "SL")
  if not fi or not fi.activelines then return info, "" end
  local line = nil
  for l in next, fi.activelines do
    if line and line ~= l then return info, "" end
    line = l
  end
  if not line then return info, "" end
  local short = fi.source
  if byte(short, 1) == 64 then short = sub(short, 2) end   -- "@user_script"
  return {source = fi.source, currentline = line}, short .. ":" .. line .. ": "
end

-- Redis's __redis__err__handler: where the error happened, in the script.
local function err_handler(err)
  local level, info = 2, nil
  while true do
    info = getinfo(level, "nSl")
    if not info or (info.what ~= "C" and info.source ~= INTERNAL and info.source ~= LIBRARY) then
      break
    end
    level = level + 1
  end
  local where = ""
  if info and info.what == "tail" then
    -- A tail call into a library's Lua function (`return cjson.decode(s)`)
    -- dropped the script's frame, which Redis's C libraries keep. When the
    -- running function has code on one line only, that is the line.
    info, where = tail_caller(info)
  end
  if type(err) == "userdata" then
    err = {err = tostring(err), ignore_error_stats_update = is_counted(err) or nil}
  elseif type(err) ~= "table" then
    err = {err = "ERR " .. where .. tostring(err)}
  end
  if info then
    err["source"] = info.source
    err["line"] = info.currentline
  end
  return err
end

-- ------------------------------------------------------- RESP -> Lua

local parse
local function parse_error(s, pos, e)
  return error_table(sub(s, pos, e - 1)), e + 2
end
parse = function(s, pos)
  local t = byte(s, pos)
  local e = find(s, "\r\n", pos, true)
  if t == 36 then                                    -- $ bulk
    local n = tonumber(sub(s, pos + 1, e - 1))
    if n < 0 then return false, e + 2 end
    return sub(s, e + 2, e + 1 + n), e + 4 + n
  elseif t == 58 then                                -- : integer
    return tonumber(sub(s, pos + 1, e - 1)), e + 2
  elseif t == 43 then                                -- + status
    return {ok = sub(s, pos + 1, e - 1)}, e + 2
  elseif t == 45 then                                -- - error
    return parse_error(s, pos, e)
  elseif t == 42 or t == 126 or t == 62 then         -- * array, ~ set, > push
    local n = tonumber(sub(s, pos + 1, e - 1))
    local p = e + 2
    if n < 0 then return false, p end
    local items, v = {}, nil
    if t == 126 then
      for _ = 1, n do
        v, p = parse(s, p)
        items[v] = true
      end
      return {set = items}, p
    end
    for i = 1, n do
      items[i], p = parse(s, p)
    end
    return items, p
  elseif t == 37 then                                -- % map
    local n = tonumber(sub(s, pos + 1, e - 1))
    local p, items, k, v = e + 2, {}, nil, nil
    for _ = 1, n do
      k, p = parse(s, p)
      v, p = parse(s, p)
      items[k] = v
    end
    return {map = items}, p
  elseif t == 95 then                                -- _ null
    return nil, e + 2
  elseif t == 35 then                                -- # boolean
    return byte(s, pos + 1) == 116, e + 2
  elseif t == 44 then                                -- , double
    return {double = tonumber(sub(s, pos + 1, e - 1))}, e + 2
  elseif t == 40 then                                -- ( big number
    return {big_number = sub(s, pos + 1, e - 1)}, e + 2
  elseif t == 61 then                                -- = verbatim
    local n = tonumber(sub(s, pos + 1, e - 1))
    local body = sub(s, e + 2, e + 1 + n)
    return {verbatim_string = {format = sub(body, 1, 3), string = sub(body, 5)}}, e + 4 + n
  elseif t == 33 then                                -- ! blob error
    local n = tonumber(sub(s, pos + 1, e - 1))
    return error_table("-" .. sub(s, e + 2, e + 1 + n)), e + 4 + n
  elseif t == 124 then                               -- | attribute: skipped
    local n = tonumber(sub(s, pos + 1, e - 1))
    local p = e + 2
    for _ = 1, 2 * n do
      local _, q = parse(s, p)
      p = q
    end
    return parse(s, p)
  end
  error("unexpected reply from a command: " .. sub(s, pos, pos + 20))
end

-- ------------------------------------------------------- Lua -> RESP

local MAX_DEPTH = 1000
local NULLS = {[2] = "$-1\r\n", [3] = "_\r\n"}

local function clean(text)
  return (gsub(text, "[\r\n]", " "))
end

local function double_text(d)
  if d == math.huge then return "inf" end
  if d == -math.huge then return "-inf" end
  if d ~= d then return "nan" end
  return fmt("%.17g", d)
end

local encode
encode = function(v, out, resp, depth)
  local t = type(v)
  if t == "string" then
    out[#out + 1] = "$" .. #v .. "\r\n" .. v .. "\r\n"
  elseif t == "number" then
    out[#out + 1] = ":" .. fmt("%d", v) .. "\r\n"
  elseif t == "boolean" then
    if state.resp == 2 then
      out[#out + 1] = v and ":1\r\n" or NULLS[resp]
    elseif resp == 3 then
      out[#out + 1] = v and "#t\r\n" or "#f\r\n"
    else
      out[#out + 1] = v and ":1\r\n" or ":0\r\n"
    end
  elseif t == "table" then
    if depth > MAX_DEPTH then
      out[#out + 1] = "-ERR reached lua stack limit\r\n"
      return
    end
    local f = rawget(v, "err")
    if type(f) == "string" then
      out[#out + 1] = "-" .. clean(cstr(f)) .. "\r\n"
      return
    end
    f = rawget(v, "ok")
    if type(f) == "string" then
      out[#out + 1] = "+" .. clean(cstr(f)) .. "\r\n"
      return
    end
    f = rawget(v, "double")
    if type(f) == "number" then
      local text = double_text(f)
      if resp == 3 then
        out[#out + 1] = "," .. text .. "\r\n"
      else
        out[#out + 1] = "$" .. #text .. "\r\n" .. text .. "\r\n"
      end
      return
    end
    f = rawget(v, "big_number")
    if type(f) == "string" then
      f = clean(f)
      if resp == 3 then
        out[#out + 1] = "(" .. f .. "\r\n"
      else
        out[#out + 1] = "$" .. #f .. "\r\n" .. f .. "\r\n"
      end
      return
    end
    f = rawget(v, "verbatim_string")
    if type(f) == "table" then
      local form, str = rawget(f, "format"), rawget(f, "string")
      if type(form) == "string" and type(str) == "string" then
        if resp == 3 then
          local head = "=" .. (#str + 4) .. "\r\n" .. sub(form .. "   ", 1, 3) .. ":"
          out[#out + 1] = head .. str .. "\r\n"
        else
          out[#out + 1] = "$" .. #str .. "\r\n" .. str .. "\r\n"
        end
        return
      end
    end
    f = rawget(v, "map")
    if type(f) == "table" then
      local head, n = #out + 1, 0
      out[head] = ""
      for key, value in next, f do
        encode(key, out, resp, depth + 1)
        encode(value, out, resp, depth + 1)
        n = n + 1
      end
      out[head] = resp == 3 and ("%" .. n .. "\r\n") or ("*" .. 2 * n .. "\r\n")
      return
    end
    f = rawget(v, "set")
    if type(f) == "table" then
      local head, n = #out + 1, 0
      out[head] = ""
      for key in next, f do
        encode(key, out, resp, depth + 1)
        n = n + 1
      end
      out[head] = (resp == 3 and "~" or "*") .. n .. "\r\n"
      return
    end
    local head, n = #out + 1, 0
    out[head] = ""
    while true do
      local item = rawget(v, n + 1)
      if item == nil then break end
      n = n + 1
      encode(item, out, resp, depth + 1)
    end
    out[head] = "*" .. n .. "\r\n"
  else
    out[#out + 1] = NULLS[resp]
  end
end

-- The error reply of a failed run (luaCallFunction).
local function error_reply(err, name)
  if type(err) ~= "table" then
    local msg = type(err) == "string" and err or "execution failure"
    return "-ERR Error running script " .. name .. ", " .. clean(sub(msg, 1, 100)) .. " \r\n"
  end
  local msg = rawget(err, "err")
  if type(msg) == "number" then msg = tostring(msg) end
  if type(msg) ~= "string" then msg = "" end
  local text = "-" .. cstr(msg)
  local source, line = rawget(err, "source"), rawget(err, "line")
  if (type(source) == "string" or type(source) == "number")
      and (type(line) == "string" or type(line) == "number") then
    text = text .. " script: " .. name .. ", on " .. source .. ":" .. line .. "."
  end
  return clean(text) .. "\r\n", rawget(err, "ignore_error_stats_update") == true
end


return {
  state = state, error_table = error_table, err_handler = err_handler,
  parse = parse, encode = encode, error_reply = error_reply,
}
"""
