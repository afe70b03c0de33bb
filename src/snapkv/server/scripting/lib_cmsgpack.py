"""``cmsgpack``: lua-cmsgpack 0.4.0 as Redis 7.0 links it (``deps/lua/src/lua_cmsgpack.c``).

``pack(...)`` packs each argument and joins them; a table whose keys are
exactly 1..n is an array, any other a map (keys in Lua's ``next`` order);
a number that is an int64 is an integer, else a float when a 32-bit float
holds it exactly, else a double; strings are fixstr, str8, str16, str32;
tables nested 16 deep pack as nil (a table that contains itself ends
there); what has no msgpack form (functions, userdata) packs as nil.

``unpack(s)`` returns every value; ``unpack_one(s [, offset])`` and
``unpack_limit(s, limit [, offset])`` return the offset to continue from
(-1 at the end) before the values. The errors are Redis's: ``Missing bytes
in input.``, ``Bad data format in input.`` (bin and ext types included, as
in Redis's copy), and Lua's stack limit met where Redis meets it
(``stack overflow (too many return values at once; ...)``, ``stack overflow
(in function mp_decode_to_lua_array)``): the decoder counts the slots the
C would use on the Lua stack, which is what bounds a hostile input's
nesting (CVE-2018-11218).
"""

from __future__ import annotations

import math
import struct as _struct
import sys
from typing import Any

from snapkv.server.scripting.lib_aux import (
    RAW_ERROR,
    ArgumentError,
    LibraryError,
    check_number,
    check_string,
    lua_type_name,
    run_chunk,
)

__all__ = ["build", "pack_value"]

_MAX_NESTING = 16
_MAXCSTACK = 8000
_TOO_MANY = (
    "stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)"
)
_ARRAY_STACK = "stack overflow (in function mp_decode_to_lua_array)"
_INT_MAX = 2**31 - 1


def _encode_int(n: int, out: bytearray) -> None:
    if n >= 0:
        if n <= 127:
            out.append(n)
        elif n <= 0xFF:
            out += b"\xcc" + n.to_bytes(1, "big")
        elif n <= 0xFFFF:
            out += b"\xcd" + n.to_bytes(2, "big")
        elif n <= 0xFFFFFFFF:
            out += b"\xce" + n.to_bytes(4, "big")
        else:
            out += b"\xcf" + n.to_bytes(8, "big")
    elif n >= -32:
        out.append(n & 0xFF)
    elif n >= -128:
        out += b"\xd0" + n.to_bytes(1, "big", signed=True)
    elif n >= -32768:
        out += b"\xd1" + n.to_bytes(2, "big", signed=True)
    elif n >= -(2**31):
        out += b"\xd2" + n.to_bytes(4, "big", signed=True)
    else:
        out += b"\xd3" + n.to_bytes(8, "big", signed=True)


def _encode_number(x: float, out: bytearray) -> None:
    if math.isfinite(x) and -(2**63) <= x < 2**63 and x == int(x):
        _encode_int(int(x), out)
        return
    try:
        single = _struct.pack(">f", x)
    except OverflowError:
        single = b""
    if single and _struct.unpack(">f", single)[0] == x:
        out += b"\xca" + single
    else:
        out += b"\xcb" + _struct.pack(">d", x)


def _encode_header(n: int, small: int, codes: bytes, out: bytearray) -> None:
    """An array's or map's header: fix (up to 15), 16-bit or 32-bit count."""
    if n <= 15:
        out.append(small | n)
    elif n <= 0xFFFF:
        out += codes[:1] + n.to_bytes(2, "big")
    else:
        out += codes[1:] + n.to_bytes(4, "big")


def _is_array(table: Any) -> bool:
    """``table_is_an_array``: keys exactly 1..count (numbers, or strings Lua reads as numbers)."""
    count = maximum = 0
    for key in table.keys():  # noqa: SIM118 - a Lua table, not a dict
        if isinstance(key, bool) or not isinstance(key, (int, float)):
            return False
        if math.isnan(key) or key <= 0 or key > _INT_MAX or key != int(key):
            return False
        maximum = max(maximum, int(key))
        count += 1
    return maximum == count


def pack_value(value: Any, level: int, out: bytearray) -> None:
    """``mp_encode_lua_type``: ``value`` appended to ``out``."""
    if isinstance(value, bool):
        out.append(0xC3 if value else 0xC2)
    elif isinstance(value, (int, float)):
        _encode_number(float(value) if isinstance(value, float) else value, out)
    elif isinstance(value, bytes):
        n = len(value)
        if n < 32:
            out.append(0xA0 | n)
        elif n <= 0xFF:
            out += b"\xd9" + n.to_bytes(1, "big")
        elif n <= 0xFFFF:
            out += b"\xda" + n.to_bytes(2, "big")
        else:
            out += b"\xdb" + n.to_bytes(4, "big")
        out += value
    elif value is not None and lua_type_name(value) == "table" and level < _MAX_NESTING:
        if _is_array(value):
            length = len(value)
            _encode_header(length, 0x90, b"\xdc\xdd", out)
            for j in range(1, length + 1):
                pack_value(value[j], level + 1, out)
        else:
            items = list(value.items())
            _encode_header(len(items), 0x80, b"\xde\xdf", out)
            for key, item in items:
                pack_value(key, level + 1, out)
                pack_value(item, level + 1, out)
    else:
        out.append(0xC0)


class _Reader:
    """A cursor over the input, and the Lua stack slots the C decoder would hold."""

    def __init__(self, data: bytes, pos: int, top: int, new_table: Any) -> None:
        self.data = data
        self.pos = pos
        self.top = top
        self.new_table = new_table

    def need(self, n: int) -> None:
        if len(self.data) - self.pos < n:
            raise LibraryError("Missing bytes in input.")

    def take(self, n: int) -> bytes:
        self.need(n)
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def value(self) -> Any:
        """``mp_decode_to_lua_type``: one value (its slot counted while it is pushed)."""
        self.need(1)
        if self.top + 1 > _MAXCSTACK:
            raise LibraryError(_TOO_MANY)
        code = self.data[self.pos]
        self.pos += 1
        if code <= 0x7F:
            return code
        if code >= 0xE0:
            return code - 256
        if 0xA0 <= code <= 0xBF:
            return self.take(code & 0x1F)
        if 0x90 <= code <= 0x9F:
            return self.array(code & 0xF)
        if 0x80 <= code <= 0x8F:
            return self.map(code & 0xF)
        return self.coded(code)

    def coded(self, code: int) -> Any:
        fixed = {0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xD0: ">b", 0xD1: ">h", 0xD2: ">i"}
        if code in fixed:
            layout = fixed[code]
            return _struct.unpack(layout, self.take(_struct.calcsize(layout)))[0]
        if code in (0xCF, 0xD3):  # lua_pushinteger of the 64 bits: a uint64 wraps
            return float(int.from_bytes(self.take(8), "big", signed=True))
        if code == 0xC0:
            return None
        if code in (0xC2, 0xC3):
            return code == 0xC3
        if code == 0xCA:
            return _struct.unpack(">f", self.take(4))[0]
        if code == 0xCB:
            return _struct.unpack(">d", self.take(8))[0]
        lengths = {0xD9: 1, 0xDA: 2, 0xDB: 4, 0xDC: 2, 0xDD: 4, 0xDE: 2, 0xDF: 4}
        if code not in lengths:
            raise LibraryError("Bad data format in input.")
        n = int.from_bytes(self.take(lengths[code]), "big")
        if code <= 0xDB:
            return self.take(n)
        return self.array(n) if code <= 0xDD else self.map(n)

    def array(self, n: int) -> Any:
        if self.top + 2 > _MAXCSTACK:
            raise LibraryError(_ARRAY_STACK)
        table = self.new_table()
        self.top += 2  # the table and the index being set
        for index in range(1, n + 1):
            item = self.value()
            if item is not None:
                table[index] = item
        self.top -= 2
        return table

    def map(self, n: int) -> Any:
        table = self.new_table()
        self.top += 1
        for _ in range(n):
            key = self.value()
            self.top += 1
            item = self.value()
            self.top -= 1
            if key is None:
                raise LibraryError(RAW_ERROR + "table index is nil")
            if isinstance(key, float) and math.isnan(key):
                raise LibraryError(RAW_ERROR + "table index is NaN")
            if item is not None:
                table[key] = item
        self.top -= 1
        return table


def unpack_full(
    args: tuple[Any, ...], limit: int, offset: int, top: int, new_table: Any
) -> list[Any]:
    """``mp_unpack_full``: the values (after the next offset unless all are asked for)."""
    data = check_string(args, 1)
    decode_all = limit == 0 and offset == 0
    if offset < 0 or limit < 0:
        raise LibraryError(
            f"Invalid request to unpack with offset of {offset} and limit of {len(data)}."
        )
    if offset > len(data):
        raise LibraryError(f"Start offset {offset} greater than input length {len(data)}.")
    if decode_all:
        limit = _INT_MAX
    reader = _Reader(data, offset, top, new_table)
    values: list[Any] = []
    # The C recurses once per nesting level, bounded by Lua's stack (about 4000
    # levels, counted by _Reader); Python's own limit must not come first.
    depth_limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(depth_limit, 3 * _MAXCSTACK))
    try:
        while reader.pos < len(data) and len(values) < limit:
            values.append(reader.value())
            reader.top += 1
    finally:
        sys.setrecursionlimit(depth_limit)
    if not decode_all:
        values.insert(0, -1 if reader.pos == len(data) else reader.pos)
    return values


_LUA = r"""
local aux, py_pack, py_unpack = ...
local select, unpack, call, argerror, guard = select, unpack, aux.call, aux.argerror, aux.guard
local cmsgpack = {}

-- r[i..n] as values: unpack() refuses past Lua's 8000 stack slots sooner than
-- the C library's limit, so long runs are spread over a few Lua calls.
local function spread(r, i, n)
  if n - i < 4000 then return unpack(r, i, n) end
  return r[i], spread(r, i + 1, n)
end

function cmsgpack.pack(...)
  if select("#", ...) == 0 then argerror(1, 0, "MessagePack pack needs input.") end
  guard(...)
  local r = call(py_pack, ...)
  return r
end

function cmsgpack.unpack(...)
  guard((...))
  local r = call(py_unpack, "all", select("#", ...), ...)
  return spread(r, 1, r.n)
end

function cmsgpack.unpack_one(...)
  guard((...))
  local r = call(py_unpack, "one", select("#", ...), ...)
  return spread(r, 1, r.n)
end

function cmsgpack.unpack_limit(...)
  guard((...))
  local r = call(py_unpack, "limit", select("#", ...), ...)
  return spread(r, 1, r.n)
end

cmsgpack._NAME = "cmsgpack"
cmsgpack._VERSION = "lua-cmsgpack 0.4.0"
cmsgpack._COPYRIGHT = "Copyright (C) 2012, Salvatore Sanfilippo"
cmsgpack._DESCRIPTION = "MessagePack C implementation for Lua"
return aux.register(cmsgpack)
"""


def _opt_int(args: tuple[Any, ...], narg: int) -> int:
    """``luaL_optint``: absent or nil is 0; else truncated toward zero."""
    if narg > len(args) or args[narg - 1] is None:
        return 0
    return int(check_number(args, narg))


def build(lua: Any, aux: Any) -> Any:
    """The ``cmsgpack`` table for ``lua``."""
    new_table = lua.table

    def py_pack(*args: Any) -> bytes:
        out = bytearray()
        for value in args:
            pack_value(value, 0, out)
        return bytes(out)

    def py_unpack(mode: bytes, count: int, *args: Any) -> Any:
        args = args[:count]
        if mode == b"all":
            values = unpack_full(args, 0, 0, max(len(args), 1), new_table)
        elif mode == b"one":
            values = unpack_full(args, 1, _opt_int(args, 2), 1, new_table)
        else:
            if len(args) < 2:
                raise ArgumentError(2, "number expected, got no value")
            limit = int(check_number(args, 2))
            values = unpack_full(args, limit, _opt_int(args, 3), 1, new_table)
        holder = new_table()
        for i, value in enumerate(values, 1):
            if value is not None:
                holder[i] = value
        holder[b"n"] = len(values)
        return holder

    return run_chunk(lua, _LUA, aux, py_pack, py_unpack)
