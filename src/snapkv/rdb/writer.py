"""RDB objects written (Redis's ``rdbSaveObject``): a value's bytes in Redis's serialization.

Only the plain encodings (STRING, LIST, SET, ZSET_2, HASH) and STREAM_LISTPACKS
for streams, which every Redis since 5.0 loads (it converts them to its
compact encodings as it would on any write); strings that are canonical
32-bit integers use the integer encoding, as Redis does. Nothing is
LZF-compressed: compressing in pure Python costs more than it saves here.
The reading half is :mod:`snapkv.rdb.objects`, which re-exports these names.
"""

from __future__ import annotations

import re
import struct
from typing import Any

from snapkv.values import hashes, lists, sets, streams, zsets

from . import stream_codec
from .codes import HASH, LIST, SET, STREAM_LISTPACKS, STRING, ZSET_2

__all__ = ["save", "save_length", "save_string", "save_value", "type_of"]

_ENCODED = 0xC0
_DOUBLE = struct.Struct("<d")
_INT32 = 1 << 31
#: A canonical decimal integer (no sign on zero, no leading zeros): what Redis integer-encodes.
_CANONICAL = re.compile(r"-?[1-9][0-9]*|0")
_DIGITS = frozenset("0123456789")


def save_length(out: bytearray, value: int) -> None:
    """RDB's length encoding (``rdbSaveLen``), appended to ``out``."""
    if value < 1 << 6:
        out.append(value)
    elif value < 1 << 14:
        out += bytes([0x40 | (value >> 8), value & 0xFF])
    elif value < 1 << 32:
        out.append(0x80)
        out += value.to_bytes(4, "big")
    else:
        out.append(0x81)
        out += value.to_bytes(8, "big")


def _string(out: bytearray, text: str) -> None:
    if len(text) <= 11 and text[-1:] in _DIGITS and _CANONICAL.fullmatch(text):
        number = int(text)
        if -_INT32 <= number < _INT32:
            # Redis's rdbTryIntegerEncoding: only a canonical decimal, so it reads back the same.
            if -128 <= number < 128:
                out += bytes([_ENCODED | 0, number & 0xFF])
            elif -32768 <= number < 32768:
                out.append(_ENCODED | 1)
                out += number.to_bytes(2, "little", signed=True)
            else:
                out.append(_ENCODED | 2)
                out += number.to_bytes(4, "little", signed=True)
            return
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        data = text.encode("utf-8", "surrogatepass")
    size = len(data)
    if size < 64:
        out.append(size)  # the common case of save_length, inline: called for every string
    else:
        save_length(out, size)
    out += data


def _raw(out: bytearray, data: bytes) -> None:
    save_length(out, len(data))
    out += data


#: ``save_string(out, text)``: ``text`` as an RDB string appended to ``out`` (integer-encoded
#: when it is a canonical 32-bit integer). The function itself: it runs for every string.
save_string = _string


def type_of(value: Any) -> int:
    """The RDB type byte :func:`save` writes for ``value``.

    :raises TypeError: ``value`` is not a value a key can hold.
    """
    kind = _TYPES.get(value.__class__)
    if kind is None:
        raise TypeError(f"a {value.__class__.__name__} is not a value snapkv keeps")
    return kind


def save_value(out: bytearray, value: Any) -> None:
    """``value``'s body (no type byte) appended to ``out``: what follows the key in a file."""
    cls = value.__class__
    if cls is str:
        _string(out, value)
    elif cls is lists.List or cls is sets.Set:
        save_length(out, len(value))
        for element in value:
            _string(out, element)
    elif cls is hashes.Hash:
        save_length(out, len(value))
        for field, text in value.items():
            _string(out, field)
            _string(out, text)
    elif cls is streams.Stream:
        stream_codec.save(out, value, save_length, _raw)
    elif cls is zsets.ZSet:
        save_length(out, len(value))
        pack = _DOUBLE.pack
        for score, member in value:
            _string(out, member)
            out += pack(score)
    else:
        raise TypeError(f"a {cls.__name__} is not a value snapkv keeps")


def save(value: Any) -> bytes:
    """``value`` (a ``str`` or a snapkv container) as an RDB object: type byte, then the value.

    :raises TypeError: ``value`` is not a value a key can hold.
    """
    out = bytearray([type_of(value)])
    save_value(out, value)
    return bytes(out)


_TYPES: dict[type, int] = {
    str: STRING,
    lists.List: LIST,
    sets.Set: SET,
    hashes.Hash: HASH,
    zsets.ZSet: ZSET_2,
    streams.Stream: STREAM_LISTPACKS,
}
