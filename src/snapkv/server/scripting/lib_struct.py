"""``struct``: Roberto Ierusalimschy's struct library as Redis 7.0 links it (``lua_struct.c``).

``struct.pack(fmt, ...)``, ``struct.unpack(fmt, data [, pos])`` and
``struct.size(fmt)`` with the formats ``> < ! x b B h H l L T i[n] I[n]
c[n] s f d`` and spaces, the x86-64 sizes (``long``, ``size_t``: 8) and
alignment (``!`` defaults to 8). Redis's fixes for CVE-2018-11218 and
CVE-2018-11219 are bounds checks, kept here as refusals with the same
texts: a size that overflows an ``int`` (``integral size overflow``), an
integer wider than 32 bytes (``integral size N is larger than limit of
32``), a read past the data (``data string too short``), an offset below 1
(``offset must be 1 or greater``). Integers go through a 64-bit value as
in C: wider ones pack zeros above 8 bytes, and unpack keeps the low 64 bits.
"""

from __future__ import annotations

import math
import struct as _struct
from typing import Any

from snapkv.server.scripting.lib_aux import (
    ArgumentError,
    LibraryError,
    check_number,
    check_string,
    lua_tonumber,
    run_chunk,
)

__all__ = ["build", "pack", "size", "unpack"]

_INT_MAX = 2**31 - 1
_MAXINTSIZE = 32
_MAXALIGN = 8
_SIZES = {"b": 1, "B": 1, "h": 2, "H": 2, "l": 8, "L": 8, "T": 8, "f": 4, "d": 8, "x": 1}
_INTEGERS = frozenset("bBhHlLTiI")
_U64 = (1 << 64) - 1


class _Format:
    """A format string read option by option (``optsize``, ``controloptions``)."""

    def __init__(self, fmt: bytes) -> None:
        self.fmt = fmt.split(b"\0", 1)[0].decode("latin-1")
        self.pos = 0
        self.little = True  # x86-64 is little-endian
        self.align = 1

    def getnum(self, default: int) -> int:
        fmt = self.fmt
        if self.pos >= len(fmt) or not fmt[self.pos].isdigit() or not fmt[self.pos].isascii():
            return default
        a = 0
        while self.pos < len(fmt) and "0" <= fmt[self.pos] <= "9":
            digit = ord(fmt[self.pos]) - ord("0")
            if a > _INT_MAX // 10 or a * 10 > _INT_MAX - digit:
                raise LibraryError("integral size overflow")
            a = a * 10 + digit
            self.pos += 1
        return a

    def options(self) -> Any:
        """Each option with its size."""
        while self.pos < len(self.fmt):
            opt = self.fmt[self.pos]
            self.pos += 1
            yield opt, self.optsize(opt)

    def optsize(self, opt: str) -> int:
        if opt in _SIZES:
            return _SIZES[opt]
        if opt == "c":
            return self.getnum(1)
        if opt in "iI":
            sz = self.getnum(4)
            if sz > _MAXINTSIZE:
                raise LibraryError(f"integral size {sz} is larger than limit of {_MAXINTSIZE}")
            return sz
        return 0

    def toalign(self, length: int, opt: str, size: int) -> int:
        """``gettoalign`` (its mask arithmetic kept for sizes that are not powers of 2)."""
        if size == 0 or opt == "c":
            return 0
        size = min(size, self.align)
        return (size - (length & (size - 1))) & (size - 1)

    def control(self, opt: str) -> None:
        if opt == " ":
            return
        if opt == ">":
            self.little = False
        elif opt == "<":
            self.little = True
        elif opt == "!":
            a = self.getnum(_MAXALIGN)
            if not (a > 0 and a & (a - 1) == 0):
                raise LibraryError(f"alignment {a} is not a power of 2")
            self.align = a
        else:
            raise ArgumentError(1, f"invalid format option '{opt}'")


def _c_integer(number: float) -> int:
    """The 64-bit pattern C's casts give (``(Uinttype)(Inttype)n`` for negatives)."""
    if not math.isfinite(number):
        return 1 << 63
    value = int(number)
    if number < 0:
        return (value & _U64) if value >= -(1 << 63) else 1 << 63
    return value if value <= _U64 else 0


def pack(args: tuple[Any, ...]) -> bytes:
    """``struct.pack``: ``args`` are the call's arguments, the format first."""
    if len(args) >= 1:
        args = (*args, None)  # b_pack pushes a nil mark after the arguments
    fmt = _Format(check_string(args, 1))
    out = bytearray()
    arg = 2
    for opt, optsize in fmt.options():
        size = optsize
        pad = fmt.toalign(len(out), opt, size)
        out += b"\0" * pad
        if opt in _INTEGERS:
            value = _c_integer(check_number(args, arg))
            arg += 1
            raw = bytes((value >> (8 * i)) & 0xFF if i < 8 else 0 for i in range(size))
            out += raw if fmt.little else raw[::-1]
        elif opt == "x":
            out += b"\0"
        elif opt in "fd":
            number = check_number(args, arg)
            arg += 1
            code = ("<" if fmt.little else ">") + opt
            try:
                out += _struct.pack(code, number)
            except OverflowError:  # C's (float) cast gives an infinity
                out += _struct.pack(code, float("inf") if number > 0 else float("-inf"))
        elif opt in "cs":
            text = check_string(args, arg)
            arg += 1
            if size == 0 or opt == "s":
                size = len(text)
            if len(text) < size:
                raise ArgumentError(arg, "string too short")
            out += text[:size]
            if opt == "s":
                out += b"\0"
        else:
            fmt.control(opt)
    return bytes(out)


def _integer(raw: bytes, little: bool, signed: bool) -> float:
    """``getinteger``: the low 64 bits, sign-extended from the size's top bit."""
    value = int.from_bytes(raw, "little" if little else "big") & _U64
    if not signed:
        return float(value)
    mask = (_U64 << ((len(raw) * 8 - 1) & 63)) & _U64
    if value & mask:
        value |= mask
    return float(value - (1 << 64) if value >> 63 else value)


def unpack(args: tuple[Any, ...]) -> list[Any]:
    """``struct.unpack``: the values, then the next position."""
    fmt = _Format(check_string(args, 1))
    data = check_string(args, 2)
    start = 1
    if len(args) >= 3 and args[2] is not None:
        start = int(check_number(args, 3))
    if start <= 0:
        raise ArgumentError(3, "offset must be 1 or greater")
    pos = start - 1
    ld = len(data)
    results: list[Any] = []
    for opt, optsize in fmt.options():
        size = optsize
        pos += fmt.toalign(pos, opt, size)
        if not (size <= ld and pos <= ld - size):
            raise ArgumentError(2, "data string too short")
        if len(args) + len(results) + 2 > 8000:
            raise LibraryError("stack overflow (too many results)")
        if opt in _INTEGERS:
            results.append(_integer(data[pos : pos + size], fmt.little, opt.islower()))
        elif opt in "fd":
            code = ("<" if fmt.little else ">") + opt
            results.append(_struct.unpack(code, data[pos : pos + size])[0])
        elif opt == "c":
            if size == 0:
                previous = lua_tonumber(results[-1]) if results else None
                if previous is None:
                    raise LibraryError("format 'c0' needs a previous size")
                results.pop()
                size = int(previous) if previous >= 0 else 1 << 64
                if not (size <= ld and pos <= ld - size):
                    raise ArgumentError(2, "data string too short")
            results.append(data[pos : pos + size])
        elif opt == "s":
            end = data.find(b"\0", pos)
            if end < 0:
                raise LibraryError("unfinished string in data")
            size = end - pos + 1
            results.append(data[pos:end])
        elif opt != "x":
            fmt.control(opt)
        pos += size
    results.append(float(pos + 1))
    return results


def size(args: tuple[Any, ...]) -> float:
    """``struct.size``: the packed size of a format without variable-size options."""
    fmt = _Format(check_string(args, 1))
    pos = 0
    for opt, optsize in fmt.options():
        pos += fmt.toalign(pos, opt, optsize)
        if opt == "s":
            raise ArgumentError(1, "option 's' has no fixed size")
        if opt == "c" and optsize == 0:
            raise ArgumentError(1, "option 'c0' has no fixed size")
        if not opt.isalnum():
            fmt.control(opt)
        pos += optsize
    return float(pos)


_LUA = r"""
local aux, new_result, py_pack, py_unpack, py_size = ...
local select, unpack, call, guard = select, unpack, aux.call, aux.guard
local struct = {}

function struct.pack(...)
  local n = select("#", ...)
  local args = {...}
  for i = 2, n do
    local v = args[i]
    if v == 0 and 1 / v < 0 then args[i] = "-0" end  -- a -0 crosses to Python as 0
  end
  guard(...)
  local r = call(py_pack, unpack(args, 1, n))
  return r
end

function struct.unpack(...)
  guard(...)
  local r = call(py_unpack, ...)
  return unpack(r, 1, r.n)
end

function struct.size(...)
  guard(...)
  local r = call(py_size, ...)
  return r
end

return aux.register(struct)
"""


def build(lua: Any, aux: Any) -> Any:
    """The ``struct`` table for ``lua``."""
    new_table = lua.table

    def py_unpack(*args: Any) -> Any:
        results = unpack(args)
        holder = new_table()
        for i, value in enumerate(results, 1):
            holder[i] = value
        holder[b"n"] = len(results)
        return holder

    return run_chunk(lua, _LUA, aux, new_table, lambda *a: pack(a), py_unpack, lambda *a: size(a))
