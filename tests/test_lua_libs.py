"""The Lua libraries (cjson, cmsgpack, struct, bit) against the real redis-server 7.0.

Each case is a Lua expression run inside ``pcall`` both by redis-server
(EVAL) and by a bare Lua 5.1 runtime with :func:`install_libraries`; both
print the results (or the error message, position included) the same way,
and the texts must be equal byte for byte. The cases are the libraries'
edge cases: number formatting, sparse arrays, nesting limits, every parse
error, option checks, msgpack's type codes and stack limits, struct's
bounds checks (CVE-2018-11218/11219), bit's 32-bit conversions.
"""

# ruff: noqa: E501 - the cases are Lua one-liners, kept whole to read as scripts

from __future__ import annotations

from typing import Any

import pytest

lupa = pytest.importorskip("lupa")

from snapkv.server.scripting.libs import install_libraries  # noqa: E402

#: Runs a case in pcall and prints what it gave, the same way on both sides;
#: then puts cjson's settings back (redis-server keeps them between scripts).
WRAPPER = r"""
local function pack(...) return {n = select("#", ...), ...} end
local function ser(v, d)
  d = d or 0
  local t = type(v)
  if t == "string" then
    return (string.format("%q", v):gsub("[\128-\255]", function(c)
      return string.format("\\x%02x", c:byte()) end))
  end
  if t == "number" then return string.format("%.17g", v) end
  if t == "table" then
    if d > 20 then return "{...}" end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    local out = {}
    for _, k in ipairs(keys) do out[#out + 1] = ser(k, d + 1) .. "=" .. ser(v[k], d + 1) end
    return "{" .. table.concat(out, ",") .. "}"
  end
  if v == cjson.null then return "cjson.null" end
  return t .. ":" .. tostring(v)
end
local r = pack(pcall(function() BODY end))
cjson.encode_sparse_array(false, 2, 10) cjson.encode_max_depth(1000)
cjson.decode_max_depth(1000) cjson.encode_number_precision(14)
cjson.encode_invalid_numbers(false) cjson.decode_invalid_numbers(true)
local out = {}
for i = 1, r.n do out[i] = ser(r[i]) end
return table.concat(out, " | ")
"""


def script_for(case: str) -> str:
    """``case``'s last ``return X`` as ``return pack(X)``: no tail call, as a C library sees it."""
    at = case.rfind("return ")
    return WRAPPER.replace("BODY", case[:at] + "return pack(" + case[at + 7 :] + ")")


@pytest.fixture(scope="module")
def lua() -> Any:
    runtime = lupa.lua51.LuaRuntime(encoding=None, register_eval=False)
    install_libraries(runtime)
    return runtime


def check_same(lua: Any, reference: Any, case: str) -> None:
    script = script_for(case)
    ours = lua.execute(script, name="@user_script")
    theirs = reference("EVAL", script, "0")
    assert theirs.startswith(b"$"), theirs
    assert b"$%d\r\n%s\r\n" % (len(ours), ours) == theirs, case


CJSON = [
    'return cjson.encode({1,2,3,{a="b"}})',
    "return cjson.encode({a=1.5, b=-0.0, c=1e300, d=0.1, e=123456789012345})",
    "return cjson.encode({[1]=1,[20]=2})",
    "return cjson.encode({[1]=1,[2]=2,[3]=3,[10]=4})",
    "return cjson.encode({[1]=1,[11]=2})",
    "return cjson.encode({1,2,nil,4})",
    'return cjson.encode("a/b\\127\\1\\"\\\\\\n\\r\\t\\b\\f")',
    "return cjson.encode(function() end)",
    "return cjson.encode({[true]=1})",
    "return cjson.encode(1/0)",
    "return cjson.encode()",
    "return cjson.encode(1,2)",
    "return cjson.encode({})",
    "return cjson.encode({{}, {{}}})",
    "return cjson.encode(cjson.null)",
    "return cjson.encode({cjson.null, 1})",
    "return cjson.encode(nil)",
    "return cjson.encode(true)",
    'return cjson.encode("\\200\\201")',
    "local t = {} local c = t for i = 1, 999 do c[1] = {} c = c[1] end return #cjson.encode(t)",
    "local t = {} local c = t for i = 1, 1000 do c[1] = {} c = c[1] end return #cjson.encode(t)",
    "local t = {} t[1] = t return cjson.encode(t)",
    'return cjson.decode("[1,2,{\\"a\\":[true,false,null]}]")',
    'return cjson.decode("{\\"a\\":1,\\"a\\":2}")',
    'return cjson.decode(string.rep("[", 1000) .. string.rep("]", 1000)) ~= nil',
    'return cjson.decode(string.rep("[", 1001) .. string.rep("]", 1001))',
    'return cjson.decode(string.rep("{\\"a\\":", 1001) .. "1" .. string.rep("}", 1001))',
    'return cjson.decode("123456789012345678901234567890")',
    'return cjson.decode("[1e400, -1e400, 0x10, +1, -inf, nan, Infinity, 1.5e-3, -0]")',
    'return tostring(cjson.decode("nan"))',
    'return cjson.decode("\\"\\\\ud800\\"")',
    'return cjson.decode("\\"\\\\udc00\\"")',
    'return cjson.decode("\\"\\\\ud800\\\\u0041\\"")',
    'return cjson.decode("\\"\\\\u00e9\\\\ud83d\\\\ude00\\\\u0000x\\"")',
    'return cjson.decode("\\"\\\\u12\\"")',
    'return cjson.decode("[1] x")',
    'return cjson.decode("tru")',
    'return cjson.decode("\\"abc")',
    'return cjson.decode("\\"a\\\\qb\\"")',
    'return cjson.decode("{1:2}")',
    'return cjson.decode("{\\"a\\" 2}")',
    'return cjson.decode("")',
    'return cjson.decode("  ")',
    'return cjson.decode("a\\0b")',
    'return cjson.decode("\\0")',
    'return cjson.decode("[1]\\0junk")',
    'return cjson.decode("-")',
    'return cjson.decode("[1,]")',
    'return cjson.decode("{\\"a\\":1,}")',
    'return cjson.decode("{\\"a\\":1 \\"b\\"}")',
    'return cjson.decode("[1 2]")',
    'return cjson.decode("{}")',
    'return cjson.decode("[]")',
    'return cjson.decode("  [ 1 , 2 ]  ")',
    'return cjson.decode("\\"\\\\/\\\\b\\\\f\\\\n\\\\r\\\\t\\\\\\"\\\\\\\\\\"")',
    'return cjson.decode("01")',
    'return cjson.decode("1.")',
    'return cjson.decode(".5")',
    'return cjson.decode("1e5x")',
    'return cjson.decode("\\v1")',
    'return cjson.decode("truex")',
    'return cjson.decode("nul")',
    'return cjson.decode("Nan")',
    'return cjson.decode("infinity")',
    'return cjson.decode("-Infinity")',
    'return cjson.decode("0x")',
    'return cjson.decode("0x1p3")',
    'return cjson.decode("1e")',
    'return cjson.decode("\\"a\\tb\\1\\"")',
    "return cjson.decode()",
    "return cjson.decode(1, 2)",
    "return cjson.decode(12)",
    "return cjson.decode({})",
    "return cjson.decode(nil)",
    'return cjson.decode("[" .. string.rep("1,", 100) .. "1]")[101]',
    "return cjson.encode_max_depth(0)",
    'return cjson.encode_max_depth("x")',
    "return cjson.encode_max_depth(1, 2)",
    "return cjson.decode_max_depth(2.7)",
    "return cjson.encode_number_precision(15)",
    "return cjson.encode_keep_buffer(1)",
    "return cjson.encode_keep_buffer(true, 2)",
    'return cjson.encode_keep_buffer("off")',
    'return cjson.encode_invalid_numbers("maybe")',
    "return cjson.decode_invalid_numbers(nil)",
    "return cjson.encode_sparse_array(nil, -1)",
    'return cjson.encode_sparse_array("x")',
    "return cjson.encode_sparse_array(true, 1, 2, 3)",
    'local c = cjson.new() c.encode_invalid_numbers("null") return c.encode({1/0, 0/0})',
    "local c = cjson.new() c.encode_invalid_numbers(true) return c.encode({1/0, -1/0, 0/0})",
    "local c = cjson.new() c.encode_number_precision(3) return c.encode({3.14159, 1234567})",
    "local c = cjson.new() c.encode_sparse_array(true) return c.encode({[1]=1,[20]=2})",
    "local c = cjson.new() c.encode_sparse_array(false, 0) return c.encode({[1]=1,[20]=2})",
    'local c = cjson.new() c.decode_invalid_numbers(false) return c.decode("0x10")',
    'local c = cjson.new() c.decode_invalid_numbers(false) return c.decode("[+1]")',
    'local c = cjson.new() c.decode_invalid_numbers(false) return c.decode("nan")',
    'local c = cjson.new() c.decode_invalid_numbers(false) return c.decode("-01")',
    'local c = cjson.new() c.decode_max_depth(2) return c.decode("[[[1]]]")',
    "local c = cjson.new() c.encode_max_depth(2) return c.encode({{{1}}})",
    "local c = cjson.new() return c.encode_invalid_numbers()",
    "return cjson._NAME, cjson._VERSION, type(cjson.new), type(cjson.null)",
    "return cjson:encode(1)",
    "return cjson.encode({[1.5]=1})",
    "return cjson.encode({[-1]=1, [2]=3})",
    "return cjson.encode({[0]=1})",
    "return cjson.encode({a={}, b={1,{}}})",
    "cjson.decode_max_depth(100000) return cjson.decode(string.rep('[', 7998) .. string.rep(']', 7998)) ~= nil",
    "cjson.decode_max_depth(100000) return cjson.decode(string.rep('[', 7999) .. string.rep(']', 7999))",
    "cjson.decode_max_depth(100000) return cjson.decode(string.rep('{\"a\":', 3999) .. '1' .. string.rep('}', 3999)) ~= nil",
    "cjson.decode_max_depth(100000) return cjson.decode(string.rep('{\"a\":', 4000) .. '1' .. string.rep('}', 4000))",
    "cjson.decode_max_depth(100000) return cjson.decode(string.rep('[{\"a\":', 2000) .. '1' .. string.rep('}]', 2000))",
    "cjson.decode_max_depth(100000) return cjson.decode(string.rep('[{\"a\":', 2666) .. '1' .. string.rep('}]', 2666))",
    "cjson.decode_max_depth(100000) return cjson.decode(string.rep('[{\"a\":', 2667) .. '1' .. string.rep('}]', 2667))",
    "cjson.encode_max_depth(100000) local t = {} local c = t for i = 1, 7996 do c[1] = {} c = c[1] end return #cjson.encode(t)",
    "cjson.encode_max_depth(100000) local t = {} local c = t for i = 1, 7998 do c[1] = {} c = c[1] end return #cjson.encode(t)",
    "cjson.encode_max_depth(100000) local t = {} local c = t for i = 1, 3998 do c.a = {} c = c.a end return #cjson.encode(t)",
    "cjson.encode_max_depth(100000) local t = {} local c = t for i = 1, 4000 do c.a = {} c = c.a end return #cjson.encode(t)",
]


CMSGPACK = [
    'return cmsgpack.pack(1.5, 0.1, -1, 2^40, 1/0, -0.0, "x", true, {a=1}, 2^63, -2^63, 2^64, -33, -129, 255, 65536)',
    "return cmsgpack.pack({1,2,nil,4})",
    "return cmsgpack.pack({[1]=1,[3]=3})",
    "return cmsgpack.pack({[1]=1,[2]=2, [2.5]=1})",
    "return cmsgpack.pack({})",
    'return cmsgpack.pack(string.rep("a", 31), string.rep("b", 32), string.rep("c", 256), string.rep("d", 70000)):len()',
    "return cmsgpack.pack(1e10, 4294967295, 4294967296, -2147483648, -2147483649, 3.4028234663852886e+38, 1e39)",
    'return cmsgpack.pack({["1"]=5})',
    "return cmsgpack.pack(nil, false)",
    "return cmsgpack.pack(cjson.null, cmsgpack.pack)",
    "local t = {} t[1] = t return cmsgpack.pack(t)",
    "local t = {} for i = 1, 20 do t[i] = i end return cmsgpack.pack(t)",
    'local t = {} for i = 1, 20 do t["k" .. i] = i end return #cmsgpack.pack(t)',
    "return cmsgpack.pack()",
    'return cmsgpack.unpack(cmsgpack.pack({1,2,{a={b="c"}}, "x", true, false, 1.5, -7}))',
    "return cmsgpack.unpack()",
    'return cmsgpack.unpack("")',
    "return cmsgpack.unpack(12)",
    "return cmsgpack.unpack({})",
    'return cmsgpack.unpack("\\193")',
    'return cmsgpack.unpack("\\205\\1")',
    'return cmsgpack.unpack("\\199\\1\\1\\1")',
    'return cmsgpack.unpack("\\196\\2ab")',
    'return cmsgpack.unpack("\\217\\1c")',
    'return cmsgpack.unpack("\\218\\0\\1c")',
    'return cmsgpack.unpack("\\219\\0\\0\\0\\1c")',
    'return cmsgpack.unpack("\\219\\255\\255\\255\\255c")',
    'return cmsgpack.unpack("\\221\\255\\255\\255\\255")',
    'return cmsgpack.unpack("\\129\\192\\1")',
    'return cmsgpack.unpack("\\129\\1\\192")',
    'return cmsgpack.unpack("\\147\\1\\192\\3")',
    'return cmsgpack.unpack("\\203\\127\\240\\0\\0\\0\\0\\0\\0")',
    'return cmsgpack.unpack("\\207\\255\\255\\255\\255\\255\\255\\255\\255")',
    'return cmsgpack.unpack("\\211\\128\\0\\0\\0\\0\\0\\0\\0")',
    'return cmsgpack.unpack("\\202\\63\\192\\0\\0", "\\208\\128", "\\209\\128\\0", "\\210\\128\\0\\0\\0")',
    'return cmsgpack.unpack("\\202\\63\\192\\0\\0\\208\\128\\209\\128\\0\\210\\128\\0\\0\\0\\204\\255\\205\\255\\255\\206\\255\\255\\255\\255")',
    'return cmsgpack.unpack("\\220\\0\\2\\1")',
    'return cmsgpack.unpack("\\145\\145")',
    'return cmsgpack.unpack_one("\\1\\2\\3")',
    'return cmsgpack.unpack_one("\\1\\2\\3", 2)',
    'return cmsgpack.unpack_one("\\1\\2\\3", 3)',
    'return cmsgpack.unpack_one("\\1\\2\\3", 4)',
    'return cmsgpack.unpack_one("\\1\\2\\3", -1)',
    'return cmsgpack.unpack_one("\\1\\2\\3", 1.9)',
    'return cmsgpack.unpack_one("\\1\\2", 1, 5)',
    'return cmsgpack.unpack_one("\\1\\2", "x")',
    'return cmsgpack.unpack_limit("\\1\\2\\3", 2)',
    'return cmsgpack.unpack_limit("\\1\\2\\3", 0)',
    'return cmsgpack.unpack_limit("\\1\\2\\3", 0, 1)',
    'return cmsgpack.unpack_limit("\\1\\2\\3")',
    'return cmsgpack.unpack_limit("\\1", "x")',
    'return cmsgpack.unpack_limit("\\1\\2\\3", -1)',
    'return select("#", cmsgpack.unpack(string.rep("\\1", 7999)))',
    'return select("#", cmsgpack.unpack(string.rep("\\1", 8000)))',
    'return type(cmsgpack.unpack(string.rep("\\145", 3999) .. "\\1"))',
    'return type(cmsgpack.unpack(string.rep("\\145", 4000) .. "\\1"))',
    'return type(cmsgpack.unpack(string.rep("\\129\\1", 3998) .. "\\1"))',
    'return type(cmsgpack.unpack(string.rep("\\129\\1", 4000) .. "\\1"))',
    "return cmsgpack._NAME, cmsgpack._VERSION, cmsgpack._COPYRIGHT, cmsgpack._DESCRIPTION",
]


STRUCT = [
    'return struct.pack(">i2 h", 1, -2)',
    'return struct.unpack("<i", struct.pack("<i", -5))',
    'return struct.size("!8 b d")',
    'return struct.size("!bd")',
    'return struct.size("b d")',
    'return struct.size("s")',
    'return struct.size("c0")',
    'return struct.size("c5 i8 I3")',
    'return struct.pack("i", "x")',
    'return struct.pack("i33", 1)',
    'return struct.pack("i32", -1)',
    'return struct.pack("i17", 1)',
    'return struct.pack("i99999999999", 1)',
    'return struct.pack("c99999999999", "x")',
    'return struct.unpack("i", "ab")',
    'return struct.pack("z", 1)',
    'return struct.pack("!3 i", 1)',
    'return struct.pack("!4 b i h d", 1, 2, 3, 4.5)',
    'return struct.pack("<bBhHlLTiI", -1, 255, -2, 65535, -3, 2^40, 7, -4, 4000000000)',
    'return struct.pack(">bBhHlLTiI", -1, 255, -2, 65535, -3, 2^40, 7, -4, 4000000000)',
    'return struct.pack("fd", 1.5, 0.1)',
    'return struct.pack("fd", 1e39, -1/0)',
    'return struct.pack("d", -0.0)',
    'return struct.pack("s", "abc")',
    'return struct.pack("c", "abc")',
    'return struct.pack("c0", "abc")',
    'return struct.pack("c5", "abc")',
    'return struct.pack("s", 12.5)',
    'return struct.pack("x x")',
    'return struct.pack("i")',
    'return struct.pack("i", nil)',
    "return struct.pack()",
    "return struct.pack(12, 1)",
    'return struct.pack("i2", 70000)',
    'return struct.pack("I2", -1)',
    'return struct.pack("l", 2^63)',
    'return struct.pack("L", 2^64)',
    'return struct.pack("l", -2^63)',
    'return struct.pack("i", "0x10")',
    'return struct.pack("i", " 12 ")',
    'return struct.pack("i", 2.7)',
    'return struct.pack("i", -2.7)',
    'return struct.unpack("bBhH", "\\255\\255\\254\\255\\255\\255")',
    'return struct.unpack(">i3", "\\255\\255\\254")',
    'return struct.unpack("<I16", string.rep("\\255", 16))',
    'return struct.unpack("<i16", string.rep("\\255", 8) .. string.rep("\\0", 8))',
    'return struct.unpack("<i9", string.rep("\\0", 8) .. "\\128")',
    'return struct.unpack("s", "abc\\0def")',
    'return struct.unpack("s", "abc")',
    'return struct.unpack("b c0", "\\3abcdef")',
    'return struct.unpack("c0", "abc")',
    'return struct.unpack("bc0", "\\9abc")',
    'return struct.unpack("fd", struct.pack("fd", 1.5, 0.1))',
    'return struct.unpack("i", struct.pack("i", 7), 0)',
    'return struct.unpack("b", "\\1\\2\\3", 3)',
    'return struct.unpack("b", "\\1\\2\\3", 4)',
    'return struct.unpack("b", "\\1\\2\\3", 2.9)',
    'return struct.unpack("!4 b i", "\\1\\0\\0\\0\\2\\0\\0\\0")',
    'return struct.unpack("x b", "\\1\\2")',
    'return struct.unpack("i")',
    'return struct.unpack("i", {})',
    'return struct.unpack("z", "abc")',
    'return struct.unpack("!5 i", "abcd")',
    'return struct.unpack("bI1", "\\1\\2", nil)',
]


BIT = [
    "return bit.tobit(0xffffffff), bit.tobit(2^32 + 5), bit.tobit(1.5), bit.tobit(2.5), bit.tobit(-1.5), bit.tobit(2^53), bit.tobit(2^60 + 3), bit.tobit(1/0), bit.tobit(0/0)",
    "return bit.bnot(0), bit.band(0xff, 0x0f, 7.5), bit.bor(1, 2, 4), bit.bxor(5, 3), bit.band(), bit.bor(1)",
    "return bit.lshift(1, 31), bit.lshift(1, 32), bit.rshift(-1, 28), bit.arshift(-256, 4), bit.rol(0x12345678, 8), bit.ror(0x12345678, 8), bit.rol(1, 0), bit.ror(1, 32), bit.lshift(1, -1)",
    "return bit.bswap(0x12345678), bit.tohex(255), bit.tohex(-1, -4), bit.tohex(0x1234, 2), bit.tohex(1, 0), bit.tohex(1, 20), bit.tohex(1, -20)",
    "return bit.tohex(1, nil)",
    'return bit.band(1, "x")',
    'return bit.band("0x10", " 3 ")',
    "return bit.bor(1, 2, {})",
    "return bit.lshift(1)",
    "return bit.tobit()",
    "return bit.tobit(true)",
]


@pytest.mark.parametrize("case", CJSON)
def test_cjson_as_redis(lua: Any, reference: Any, case: str) -> None:
    check_same(lua, reference, case)


@pytest.mark.parametrize("case", CMSGPACK)
def test_cmsgpack_as_redis(lua: Any, reference: Any, case: str) -> None:
    check_same(lua, reference, case)


@pytest.mark.parametrize("case", STRUCT)
def test_struct_as_redis(lua: Any, reference: Any, case: str) -> None:
    check_same(lua, reference, case)


@pytest.mark.parametrize("case", BIT)
def test_bit_as_redis(lua: Any, reference: Any, case: str) -> None:
    check_same(lua, reference, case)


def test_cjson_round_trip_keeps_null_and_nesting(lua: Any) -> None:
    assert lua.execute(
        "local t = cjson.decode('[1,{\"a\":null},[[]]]') "
        "return t[2].a == cjson.null, cjson.encode(t)"
    ) == (True, b'[1,{"a":null},[{}]]')


def test_argument_errors_name_the_function_as_called(lua: Any) -> None:
    assert lua.execute("return pcall(bit.band, 'x')")[1] == (
        b"bad argument #1 to '?' (number expected, got string)"
    )
    ok, message = lua.execute("return pcall(function() local b = bit.band(1, {}) end)")
    assert not ok
    assert message.endswith(b"bad argument #2 to 'band' (number expected, got table)")


def test_struct_refuses_what_overflowed_before_the_cve_fixes(lua: Any) -> None:
    for fmt, message in (
        ("i99999999999", b"integral size overflow"),
        ("i33", b"integral size 33 is larger than limit of 32"),
        ("c2147483648", b"integral size overflow"),
    ):
        ok, got = lua.execute(f"return pcall(struct.pack, '{fmt}', 1)")
        assert not ok
        assert got == message
    ok, got = lua.execute("return pcall(struct.unpack, 'c0', '\\255')")
    assert not ok


def test_cmsgpack_deep_input_is_refused_not_a_crash(lua: Any) -> None:
    ok, got = lua.execute("return pcall(cmsgpack.unpack, string.rep('\\145', 100000))")
    assert not ok
    assert got == b"stack overflow (in function mp_decode_to_lua_array)"


@pytest.mark.parametrize(
    "script",
    [
        "return cjson.encode({1, 2, {a = 1}})",
        "local x = cjson.decode('[1,2') return x",
        "return cjson.decode('[1,null,3]')",
        "return {pcall(cjson.decode, 'x')}",
        "cjson.encode = nil",
        "local c = cjson.new() c.x = 1 return c.x",
        "return tostring(cjson.null)",
        "local s = {} for k in pairs(cjson) do s[#s + 1] = k end table.sort(s) return s",
        "local s = {} for k in pairs(cmsgpack) do s[#s + 1] = k end table.sort(s) return s",
        "local s = {} for k in pairs(struct) do s[#s + 1] = k end table.sort(s) return s",
        "local s = {} for k in pairs(bit) do s[#s + 1] = k end table.sort(s) return s",
        "return cmsgpack.unpack(cmsgpack.pack({1, 2, 3}))",
        "return struct.unpack('<d', struct.pack('<d', 2.5))",
        "local x = bit.band('x') return x",
        "local n = bit.tohex(65535) return n",
    ],
)
def test_libraries_in_eval_as_redis(twin: Any, script: str) -> None:
    """The libraries as the scripting sandbox installs and protects them, over EVAL."""
    twin.same("EVAL", script, "0")


def test_a_runtime_without_debug_still_gets_the_libraries() -> None:
    runtime = lupa.lua51.LuaRuntime(encoding=None, register_eval=False)
    runtime.execute("debug = nil")
    install_libraries(runtime)
    assert runtime.execute("return cjson.encode({1, 'a'})") == b'[1,"a"]'
    ok, message = runtime.execute("return pcall(function() local x = bit.band({}) end)")
    assert not ok
    assert message.endswith(b"bad argument #1 to '?' (number expected, got table)")


def test_large_inputs_are_announced_before_the_python_work() -> None:
    """The sandbox's large-input hook is called (in Lua, before Python works) past 64 KiB."""
    runtime = lupa.lua51.LuaRuntime(encoding=None, register_eval=False)
    seen: list[int] = []
    runtime.globals()["_snapkv_large_input"] = seen.append
    install_libraries(runtime)
    runtime.execute("return cjson.decode('[1, 2, 3]')")
    runtime.execute("return struct.unpack('b', 'x')")
    assert seen == []
    runtime.execute("return #cjson.decode('[' .. string.rep('1,', 40000) .. '1]')")
    runtime.execute("local t = {} for i = 1, 70000 do t[i] = i end return #cmsgpack.pack(t)")
    runtime.execute("return cmsgpack.unpack_one(string.rep('\\1', 70000))")
    runtime.execute("return struct.unpack('b', string.rep('x', 70000))")
    assert len(seen) == 4
    assert all(size > 65536 for size in seen)
