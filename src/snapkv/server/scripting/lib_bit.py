"""``bit``: LuaBitOp 1.0.2 as Redis links it (``deps/lua/src/lua_bit.c``).

Every operand is a Lua number turned into 32 bits the way ``barg`` does:
``n + 2^52 + 2^51`` in double arithmetic, then the low 32 bits of that
double's representation (so 1.5 rounds to 2, 2.5 to 2, and a number past
2^53 gives what C gives, not its value modulo 2^32). Results are signed
32-bit numbers; shift counts use their low 5 bits. The argument checks
(which argument is checked first, the ``number expected, got no value``
texts) are in Lua, the arithmetic in Python on exact integers.
"""

from __future__ import annotations

import struct
from typing import Any

from snapkv.server.scripting.lib_aux import run_chunk

__all__ = ["build"]

_MAGIC = 6755399441055744.0  # 2^52 + 2^51: the sum's low mantissa bits are the integer
_DOUBLE = struct.Struct("<d")
_LOW32 = struct.Struct("<I")


def barg(number: float) -> int:
    """The 32 bits LuaBitOp takes from ``number`` (unsigned)."""
    return int(_LOW32.unpack_from(_DOUBLE.pack(float(number) + _MAGIC))[0])


def bret(bits: int) -> float:
    """``bits`` as the signed 32-bit number LuaBitOp returns."""
    bits &= 0xFFFFFFFF
    return float(bits - 0x100000000 if bits & 0x80000000 else bits)


def _op(name: bytes, *numbers: float) -> Any:
    """One bit operation on already-checked numbers."""
    b = barg(numbers[0])
    if name == b"tobit":
        return bret(b)
    if name == b"bnot":
        return bret(~b)
    if name == b"bswap":
        return bret((b >> 24) | ((b >> 8) & 0xFF00) | ((b & 0xFF00) << 8) | (b << 24))
    if name == b"tohex":
        return _tohex(b, numbers)
    if name in (b"band", b"bor", b"bxor"):
        for number in numbers[1:]:
            other = barg(number)
            b = b & other if name == b"band" else b | other if name == b"bor" else b ^ other
        return bret(b)
    n = barg(numbers[1]) & 31
    if name == b"lshift":
        return bret(b << n)
    if name == b"rshift":
        return bret(b >> n)
    if name == b"arshift":
        return bret((b - 0x100000000 if b & 0x80000000 else b) >> n)
    if name == b"rol":
        return bret((b << n) | (b >> (32 - n)))
    return bret((b >> n) | (b << (32 - n)))  # ror


def _tohex(b: int, numbers: tuple[float, ...]) -> bytes:
    """``bit.tohex``: ``n`` digits (8 by default), upper case when ``n`` is negative."""
    n = 8 if len(numbers) < 2 else int(bret(barg(numbers[1])))
    digits = b"0123456789abcdef"
    if n < 0:
        n, digits = -n, b"0123456789ABCDEF"
    n = min(n, 8)
    out = bytearray(n)
    for i in range(n - 1, -1, -1):
        out[i] = digits[b & 15]
        b >>= 4
    return bytes(out)


_LUA = r"""
local aux, op = ...
local select, unpack, checknumber = select, unpack, aux.checknumber
local bit = {}

local function unary(name)
  return function(...)
    local n = select("#", ...)
    local a = checknumber(1, n, 1, (...))
    return op(name, a)
  end
end

-- band, bor, bxor: the first argument is checked first, then the rest from the last.
local function nary(name)
  return function(...)
    local n = select("#", ...)
    local args = {...}
    args[1] = checknumber(1, n, 1, args[1])
    for i = n, 2, -1 do args[i] = checknumber(1, n, i, args[i]) end
    return op(name, unpack(args, 1, n))
  end
end

local function shift(name)
  return function(...)
    local n = select("#", ...)
    local a, b = ...
    a = checknumber(1, n, 1, a)
    b = checknumber(1, n, 2, b)
    return op(name, a, b)
  end
end

bit.tobit = unary("tobit")
bit.bnot = unary("bnot")
bit.band = nary("band")
bit.bor = nary("bor")
bit.bxor = nary("bxor")
bit.lshift = shift("lshift")
bit.rshift = shift("rshift")
bit.arshift = shift("arshift")
bit.rol = shift("rol")
bit.ror = shift("ror")
bit.bswap = unary("bswap")

function bit.tohex(...)
  local n = select("#", ...)
  local a, b = ...
  a = checknumber(1, n, 1, a)
  if n < 2 then return op("tohex", a) end
  b = checknumber(1, n, 2, b)
  return op("tohex", a, b)
end

return aux.register(bit)
"""


def build(lua: Any, aux: Any) -> Any:
    """The ``bit`` table for ``lua``."""
    return run_chunk(lua, _LUA, aux, _op)
