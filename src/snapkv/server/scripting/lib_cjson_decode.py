"""``cjson.decode``'s reader: lua-cjson 2.1.0's tokenizer and parser, in Python.

Exact to the C where scripts can tell: the input ends at its first NUL
byte (the C reads a NUL-terminated buffer), numbers are what ``strtod``
reads at that point (hex, ``inf``, ``nan`` and a leading ``+`` too, unless
``decode_invalid_numbers`` is off), strings keep raw control bytes,
``\\uXXXX`` escapes become UTF-8 (surrogate pairs joined, a lone one
refused), and each error names what was expected, what was found and the
1-based character, as ``json_throw_parse_error`` does. The parser keeps
its own stack instead of recursing, so the nesting limit (1000 by default,
settable) is the only one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from snapkv.server.scripting.lib_aux import LibraryError

__all__ = ["decode", "strtod"]

# Token kinds, named as json_token_type_name names them in messages.
OBJ_BEGIN, OBJ_END, ARR_BEGIN, ARR_END = "T_OBJ_BEGIN", "T_OBJ_END", "T_ARR_BEGIN", "T_ARR_END"
STRING, NUMBER, BOOLEAN, NULL = "T_STRING", "T_NUMBER", "T_BOOLEAN", "T_NULL"
COLON, COMMA, END, ERROR = "T_COLON", "T_COMMA", "T_END", "T_ERROR"

_SINGLE = {ord("{"): OBJ_BEGIN, ord("}"): OBJ_END, ord("["): ARR_BEGIN, ord("]"): ARR_END}
_SINGLE.update({ord(","): COMMA, ord(":"): COLON})
_WHITESPACE = b" \t\n\r"
_MAXCSTACK = 8000  # LUAI_MAXCSTACK: what lua_checkstack allows a C function
#: Characters that start a token needing a closer look (T_UNKNOWN in the C).
_UNKNOWN = frozenset(b'fiInNt"+-0123456789')
_ESCAPES = {ord('"'): b'"', ord("\\"): b"\\", ord("/"): b"/", ord("b"): b"\b"}
_ESCAPES.update({ord("t"): b"\t", ord("n"): b"\n", ord("f"): b"\f", ord("r"): b"\r"})
_PLAIN = re.compile(rb'[^"\\]*')
_HEX4 = re.compile(rb"[0-9A-Fa-f]{4}")

# What glibc's strtod reads: a hex float, inf/infinity, nan(chars), or a decimal.
_STRTOD_HEX = re.compile(
    rb"[+-]?0[xX](?:[0-9A-Fa-f]+\.?[0-9A-Fa-f]*|\.[0-9A-Fa-f]+)(?:[pP][+-]?[0-9]+)?"
)
_STRTOD_INF = re.compile(rb"[+-]?inf(?:inity)?", re.IGNORECASE)
_STRTOD_NAN = re.compile(rb"[+-]?nan(?:\([0-9A-Za-z_]*\))?", re.IGNORECASE)
_STRTOD_DEC = re.compile(rb"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def strtod(data: bytes, pos: int) -> tuple[float, int] | None:
    """What C's ``strtod(data + pos)`` returns (value, end), or ``None`` when it reads nothing."""
    match = _STRTOD_HEX.match(data, pos)
    if match is not None:
        text = match.group()
        try:
            return float.fromhex(text.decode()), match.end()
        except OverflowError:
            return (float("-inf") if text[:1] == b"-" else float("inf")), match.end()
    for pattern, value in ((_STRTOD_INF, "inf"), (_STRTOD_NAN, "nan")):
        match = pattern.match(data, pos)
        if match is not None:
            negative = match.group()[:1] == b"-"
            return float(("-" if negative else "") + value), match.end()
    match = _STRTOD_DEC.match(data, pos)
    if match is not None:
        return float(match.group()), match.end()
    return None


def _invalid_number(data: bytes, pos: int) -> bool:
    """``json_is_invalid_number``: strict JSON refuses ``+``, hex, leading zeros, inf, nan."""
    ch = data[pos] if pos < len(data) else 0
    if ch == ord("+"):
        return True
    if ch == ord("-"):
        pos += 1
        ch = data[pos] if pos < len(data) else 0
    if ch == ord("0"):
        ch2 = data[pos + 1] if pos + 1 < len(data) else 0
        return (ch2 | 0x20) == ord("x") or ord("0") <= ch2 <= ord("9")
    if ch <= ord("9") or ch >= 0x80:  # a C char: bytes past 0x7f are negative
        return False
    head = data[pos : pos + 3].lower()
    return head in (b"inf", b"nan")


def _utf8(codepoint: int) -> bytes:
    """``codepoint_to_utf8`` (up to 0x1FFFFF, surrogates included, as the C writes them)."""
    if codepoint <= 0x7F:
        return bytes([codepoint])
    if codepoint <= 0x7FF:
        return bytes([(codepoint >> 6) | 0xC0, (codepoint & 0x3F) | 0x80])
    if codepoint <= 0xFFFF:
        return bytes(
            [(codepoint >> 12) | 0xE0, ((codepoint >> 6) & 0x3F) | 0x80, (codepoint & 0x3F) | 0x80]
        )
    return bytes(
        [
            (codepoint >> 18) | 0xF0,
            ((codepoint >> 12) & 0x3F) | 0x80,
            ((codepoint >> 6) & 0x3F) | 0x80,
            (codepoint & 0x3F) | 0x80,
        ]
    )


class _Lexer:
    """``json_next_token`` over ``data`` (already cut at its first NUL)."""

    def __init__(self, data: bytes, invalid_numbers: bool) -> None:
        self.data = data
        self.pos = 0
        self.invalid_numbers = invalid_numbers

    def next(self) -> tuple[str, int, Any]:
        """The next token: (kind, 0-based index, value or error text)."""
        data, pos = self.data, self.pos
        while pos < len(data) and data[pos] in _WHITESPACE:
            pos += 1
        self.pos = pos
        if pos >= len(data):
            return END, pos, None
        ch = data[pos]
        single = _SINGLE.get(ch)
        if single is not None:
            self.pos = pos + 1
            return single, pos, None
        if ch not in _UNKNOWN:
            return ERROR, pos, "invalid token"
        if ch == ord('"'):
            return self._string(pos)
        if ch == ord("-") or ord("0") <= ch <= ord("9"):
            if not self.invalid_numbers and _invalid_number(data, pos):
                return ERROR, pos, "invalid number"
            return self._number(pos)
        for word, kind, value in ((b"true", BOOLEAN, True), (b"false", BOOLEAN, False)):
            if data.startswith(word, pos):
                self.pos = pos + len(word)
                return kind, pos, value
        if data.startswith(b"null", pos):
            self.pos = pos + 4
            return NULL, pos, None
        if self.invalid_numbers and _invalid_number(data, pos):
            return self._number(pos)
        return ERROR, pos, "invalid token"

    def _number(self, pos: int) -> tuple[str, int, Any]:
        read = strtod(self.data, pos)
        if read is None:
            return ERROR, pos, "invalid number"
        self.pos = read[1]
        return NUMBER, pos, read[0]

    def _string(self, start: int) -> tuple[str, int, Any]:
        data = self.data
        pos = start + 1
        parts: list[bytes] = []
        while True:
            plain = _PLAIN.match(data, pos)
            assert plain is not None  # the pattern matches the empty string
            parts.append(plain.group())
            pos = plain.end()
            if pos >= len(data):
                self.pos = pos
                return ERROR, pos, "unexpected end of string"
            if data[pos] == ord('"'):
                self.pos = pos + 1
                return STRING, start, b"".join(parts)
            esc = data[pos + 1] if pos + 1 < len(data) else 0
            if esc == ord("u"):
                decoded = self._unicode(pos)
                if decoded is None:
                    self.pos = pos
                    return ERROR, pos, "invalid unicode escape code"
                parts.append(decoded[0])
                pos = decoded[1]
                continue
            plain_escape = _ESCAPES.get(esc)
            if plain_escape is None:
                self.pos = pos
                return ERROR, pos, "invalid escape code"
            parts.append(plain_escape)
            pos += 2

    def _unicode(self, pos: int) -> tuple[bytes, int] | None:
        """``json_append_unicode_escape`` at the backslash ``pos``: (UTF-8, next position)."""
        data = self.data
        hex4 = _HEX4.match(data, pos + 2)
        if hex4 is None:
            return None
        codepoint = int(hex4.group(), 16)
        end = pos + 6
        if (codepoint & 0xF800) == 0xD800:
            if codepoint & 0x400 or data[end : end + 2] != b"\\u":
                return None
            low4 = _HEX4.match(data, end + 2)
            if low4 is None:
                return None
            low = int(low4.group(), 16)
            if (low & 0xFC00) != 0xDC00:
                return None
            codepoint = (((codepoint & 0x3FF) << 10) | (low & 0x3FF)) + 0x10000
            end += 6
        return _utf8(codepoint), end


def _expected(expected: str, token: tuple[str, int, Any]) -> LibraryError:
    kind, index, value = token
    found = value if kind == ERROR else kind
    return LibraryError(f"Expected {expected} but found {found} at character {index + 1}")


def decode(
    text: bytes,
    new_table: Callable[[], Any],
    null: Any,
    invalid_numbers: bool,
    max_depth: int,
) -> Any:
    """``text`` as Lua values: tables from ``new_table()``, JSON null as ``null``.

    Raises :class:`LibraryError` with lua-cjson's message.
    """
    if len(text) >= 2 and (text[0] == 0 or text[1] == 0):
        raise LibraryError("JSON parser does not support UTF-16 or UTF-32")
    lexer = _Lexer(text.split(b"\0", 1)[0], invalid_numbers)
    # Each open container: [table, is_object, next array index, pending key].
    stack: list[list[Any]] = []
    slots = 1  # Lua stack slots in use: the argument, then what open containers hold
    token = lexer.next()
    while True:
        kind = token[0]
        if kind in (OBJ_BEGIN, ARR_BEGIN):
            # json_decode_descend: the depth limit, and Lua's stack (8000 slots: the
            # argument, each open array's table, each open object's table and key).
            if len(stack) + 1 > max_depth or slots + (2 if kind == ARR_BEGIN else 3) > _MAXCSTACK:
                raise LibraryError(
                    f"Found too many nested data structures ({len(stack) + 1}) "
                    f"at character {lexer.pos}"
                )
            table = new_table()
            token = lexer.next()
            if kind == ARR_BEGIN and token[0] != ARR_END:
                stack.append([table, False, 1, None])
                slots += 1
                continue
            if kind == OBJ_BEGIN and token[0] != OBJ_END:
                stack.append([table, True, 0, None])
                slots += 2
                token = _object_key(lexer, stack[-1], token)
                continue
            value = table
        elif kind in (STRING, NUMBER, BOOLEAN):
            value = token[2]
        elif kind == NULL:
            value = null
        else:
            raise _expected("value", token)
        # A value is complete: store it in its container, closing those that end.
        while True:
            if not stack:
                token = lexer.next()
                if token[0] != END:
                    raise _expected("the end", token)
                return value
            frame = stack[-1]
            token = lexer.next()
            if frame[1]:
                frame[0][frame[3]] = value
                if token[0] == OBJ_END:
                    value = stack.pop()[0]
                    slots -= 2
                    continue
                if token[0] != COMMA:
                    raise _expected("comma or object end", token)
                token = _object_key(lexer, frame, lexer.next())
                break
            frame[0][frame[2]] = value
            frame[2] += 1
            if token[0] == ARR_END:
                value = stack.pop()[0]
                slots -= 1
                continue
            if token[0] != COMMA:
                raise _expected("comma or array end", token)
            token = lexer.next()
            break


def _object_key(
    lexer: _Lexer, frame: list[Any], token: tuple[str, int, Any]
) -> tuple[str, int, Any]:
    """Read ``"key":`` into ``frame`` (``token`` is the key); return the value's first token."""
    if token[0] != STRING:
        raise _expected("object key string", token)
    frame[3] = token[2]
    token = lexer.next()
    if token[0] != COLON:
        raise _expected("colon", token)
    return lexer.next()
