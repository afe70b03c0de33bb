"""RESP2/RESP3 without I/O: requests in, commands out; reply values in, bytes out.

Neither side knows any command, socket or event loop, so both are tested
byte for byte and reused by any transport (h11's ``_readers`` /
``_writers`` split, and Redis's ``networking.c`` split between
``processMultibulkBuffer`` and the command table):

* :mod:`~snapkv.server.resp.reader`: the request parser in pure Python, with
  Redis's rules, leniencies, limits and error texts (:class:`ProtocolError`);
* :mod:`~snapkv.server.resp.hiredis_reader`: the same parser with hiredis's
  C reader as the fast path for well-formed chunks; :func:`make_parser`
  picks it when hiredis is installed;
* :mod:`~snapkv.server.resp.writer`: the reply encoder.

This package re-exports their public names.
"""

from __future__ import annotations

from snapkv.server.resp.hiredis_reader import HiredisParser, Parser, make_parser
from snapkv.server.resp.reader import (
    DEFAULT_MAX_ARGS,
    DEFAULT_MAX_BULK_LEN,
    INLINE_MAX_SIZE,
    UNAUTH_MAX_ARGS,
    UNAUTH_MAX_BULK_LEN,
    ProtocolError,
    PythonParser,
    split_inline,
    string2ll,
)
from snapkv.server.resp.writer import (
    NULL_ARRAY,
    ErrorReply,
    SimpleString,
    bulk,
    encode,
    error,
    integer,
    simple,
)

__all__ = [
    "DEFAULT_MAX_ARGS",
    "DEFAULT_MAX_BULK_LEN",
    "INLINE_MAX_SIZE",
    "NULL_ARRAY",
    "UNAUTH_MAX_ARGS",
    "UNAUTH_MAX_BULK_LEN",
    "ErrorReply",
    "HiredisParser",
    "Parser",
    "ProtocolError",
    "PythonParser",
    "SimpleString",
    "bulk",
    "encode",
    "error",
    "integer",
    "make_parser",
    "simple",
    "split_inline",
    "string2ll",
]
