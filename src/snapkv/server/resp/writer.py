"""RESP2/RESP3 replies: values in, bytes out, no I/O (Redis's ``addReply*``).

Handlers build their replies with these functions (or :func:`encode` for
structured values); nothing else in the server writes reply bytes. The
``Final`` constants are the replies common enough to be built once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Final

from snapkv.server.resp.text import ENCODING, ERRORS

__all__ = [
    "EMPTY_ARRAY",
    "EMPTY_BULK",
    "NULLS",
    "NULL_ARRAY",
    "NULL_ARRAYS",
    "OK",
    "ONE",
    "QUEUED",
    "ZERO",
    "ErrorReply",
    "SimpleString",
    "bulk",
    "encode",
    "error",
    "integer",
    "simple",
]

OK: Final = b"+OK\r\n"
QUEUED: Final = b"+QUEUED\r\n"
ZERO: Final = b":0\r\n"
ONE: Final = b":1\r\n"
EMPTY_ARRAY: Final = b"*0\r\n"
EMPTY_BULK: Final = b"$0\r\n\r\n"
#: Null bulk string by protocol version (index 2 or 3).
NULLS: Final = (b"", b"", b"$-1\r\n", b"_\r\n")
#: Null array by protocol version: RESP2 has a distinct one.
NULL_ARRAYS: Final = (b"", b"", b"*-1\r\n", b"_\r\n")


class SimpleString(str):
    """A reply sent as a RESP simple string (``+OK``) rather than a bulk string."""

    __slots__ = ()


class ErrorReply(str):
    """A reply sent as a RESP error (``-ERR ...``), for example inside EXEC's array."""

    __slots__ = ()


class _NullArray:
    """RESP2's null array (``*-1``), EXEC's answer when a WATCHed key changed; RESP3 null."""

    __slots__ = ()


#: See :class:`_NullArray`.
NULL_ARRAY: Final = _NullArray()


def _clean(text: str) -> bytes:
    # Like Redis's addReplyErrorLength: a CR or LF in the text would end the
    # reply early and let the rest be read as another reply.
    return text.replace("\r", " ").replace("\n", " ").encode(ENCODING, ERRORS)


def simple(text: str) -> bytes:
    """``+text``: a simple string (CR and LF become spaces)."""
    return b"+" + _clean(text) + b"\r\n"


def error(text: str) -> bytes:
    """``-text``: an error; ``text`` starts with its code (``ERR``, ``WRONGTYPE``, ...)."""
    return b"-" + _clean(text) + b"\r\n"


def integer(value: int) -> bytes:
    """``:value``."""
    return b":%d\r\n" % value


def bulk(value: str | bytes) -> bytes:
    """``$len`` and the bytes of ``value`` (a str is encoded as arguments were decoded)."""
    if isinstance(value, str):
        value = value.encode(ENCODING, ERRORS)
    return b"$%d\r\n%s\r\n" % (len(value), value)


def _double(value: float, resp: int) -> bytes:
    if math.isnan(value):
        text = b"nan"
    elif value in (float("inf"), float("-inf")):
        text = b"inf" if value > 0 else b"-inf"
    else:
        text = b"%.17g" % value
    return b",%s\r\n" % text if resp == 3 else b"$%d\r\n%s\r\n" % (len(text), text)


def encode(value: object, resp: int = 2) -> bytes:
    """Encode a reply value for protocol version ``resp`` (2 or 3).

    ``None`` is a null; ``str``/``bytes`` a bulk string; ``bool`` a RESP3
    boolean (RESP2: 1 or 0); ``int`` an integer; ``float`` a double (RESP2:
    a bulk string); ``list``/``tuple`` an array; ``dict`` a map (RESP2: a
    flat array); ``set``/``frozenset`` a set (RESP2: an array);
    :class:`SimpleString`, :class:`ErrorReply` and :data:`NULL_ARRAY` as named.
    """
    out: list[bytes] = []
    _encode_into(value, resp, out)
    return b"".join(out)


def _encode_into(value: object, resp: int, out: list[bytes]) -> None:
    kind = type(value)
    if kind is str or kind is bytes:
        out.append(bulk(value))  # type: ignore[arg-type]
    elif value is None:
        out.append(b"_\r\n" if resp == 3 else b"$-1\r\n")
    elif kind is bool:
        if resp == 3:
            out.append(b"#t\r\n" if value else b"#f\r\n")
        else:
            out.append(b":1\r\n" if value else b":0\r\n")
    elif kind is int:
        out.append(b":%d\r\n" % value)  # type: ignore[str-format]
    elif kind is SimpleString:
        out.append(simple(value))  # type: ignore[arg-type]
    elif kind is ErrorReply:
        out.append(error(value))  # type: ignore[arg-type]
    elif kind is float:
        out.append(_double(value, resp))  # type: ignore[arg-type]
    elif kind is list or kind is tuple:
        items: Iterable[object] = value  # type: ignore[assignment]
        out.append(b"*%d\r\n" % len(value))  # type: ignore[arg-type]
        # The common array, of plain strings (LRANGE, SMEMBERS, HGETALL...):
        # one loop without a dispatch per element (which was ~90% of LRANGE
        # 600). A str subclass (SimpleString, ErrorReply) or anything else
        # sends the array down the general path.
        plain: list[bytes] = []
        for item in items:
            if item.__class__ is not str:
                break
            data = item.encode(ENCODING, ERRORS)
            plain.append(b"$%d\r\n%s\r\n" % (len(data), data))
        else:
            out.append(b"".join(plain))
            return
        for item in items:
            _encode_into(item, resp, out)
    elif kind is dict:
        mapping: dict[object, object] = value  # type: ignore[assignment]
        if resp == 3:
            out.append(b"%%%d\r\n" % len(mapping))
        else:
            out.append(b"*%d\r\n" % (2 * len(mapping)))
        for key, item in mapping.items():
            _encode_into(key, resp, out)
            _encode_into(item, resp, out)
    elif kind is set or kind is frozenset:
        members: set[object] = value  # type: ignore[assignment]
        out.append((b"~%d\r\n" if resp == 3 else b"*%d\r\n") % len(members))
        for item in members:
            _encode_into(item, resp, out)
    elif value is NULL_ARRAY:
        out.append(b"_\r\n" if resp == 3 else b"*-1\r\n")
    else:
        raise TypeError(f"cannot encode {kind.__name__} as a RESP reply")
