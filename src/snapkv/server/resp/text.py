"""The one mapping between the wire's bytes and the Store's ``str``: UTF-8, ``surrogateescape``.

Redis keys and values are bytes; the Store holds ``str``. Decoding every
argument as UTF-8 with ``errors="surrogateescape"`` maps each byte string to
exactly one ``str`` (a byte that is not valid UTF-8 becomes a lone surrogate
U+DC80..U+DCFF) and encoding with the same pair gives the bytes back, so any
value round-trips byte for byte, and the Store's formats (UTF-8 with
``surrogatepass``) keep those surrogates as they are. Every place that crosses
between the two sides uses these names, so the pair is spelled once.
"""

from __future__ import annotations

from typing import Final

__all__ = ["ENCODING", "ERRORS", "byte_len", "to_bytes", "to_text"]

ENCODING: Final = "utf-8"
ERRORS: Final = "surrogateescape"


def to_bytes(text: str) -> bytes:
    """The bytes ``text`` stands for on the wire."""
    return text.encode(ENCODING, ERRORS)


def to_text(data: bytes) -> str:
    """The ``str`` the server uses for wire bytes ``data``."""
    return data.decode(ENCODING, ERRORS)


def byte_len(text: str) -> int:
    """Length in bytes on the wire (what STRLEN and APPEND count); ASCII needs no encoding."""
    return len(text) if text.isascii() else len(text.encode(ENCODING, ERRORS))
