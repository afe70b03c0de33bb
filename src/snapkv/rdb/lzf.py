"""LZF decompression, as Redis's ``lzf_d.c`` (the compressed strings of RDB and DUMP).

An LZF stream is a sequence of runs, each starting with a control byte:

* ``000LLLLL``: a literal run of ``L + 1`` bytes follows;
* ``LLLooooo oooooooo`` (``LLL`` 1..6) or ``111ooooo LLLLLLLL oooooooo``
  (length ``7 + L``): a back reference copying ``length + 2`` bytes from
  ``offset + 1`` bytes back in the output (the copy may overlap itself,
  which repeats the last ``offset + 1`` bytes: done as one repeated slice).

Why so careful: the input comes from a client (RESTORE). Every run is
checked against what is left of the input and of the promised output
length before it is copied, so a lying stream ends in :class:`LZFError`,
never in an index error, a huge allocation or a loop that does not end
(each run consumes at least one input byte).
"""

from __future__ import annotations

__all__ = ["LZFError", "decompress"]


class LZFError(ValueError):
    """The stream is not valid LZF for the promised length; ``offset`` is where, in the input."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} (LZF input offset {offset})")
        self.offset = offset


def decompress(data: bytes | memoryview, length: int) -> bytes:
    """The ``length`` bytes ``data`` (an LZF stream) decompresses to.

    :raises LZFError: the stream is malformed, or does not make exactly
        ``length`` bytes.
    """
    src = bytes(data)
    end = len(src)
    out = bytearray()
    pos = 0
    while pos < end:
        ctrl = src[pos]
        start = pos
        pos += 1
        if ctrl < 32:
            run = ctrl + 1
            if pos + run > end:
                raise LZFError("a literal run goes past the end of the input", start)
            if len(out) + run > length:
                raise LZFError("a literal run goes past the promised length", start)
            out += src[pos : pos + run]
            pos += run
            continue
        run = ctrl >> 5
        if run == 7:
            if pos >= end:
                raise LZFError("a back reference is cut short", start)
            run += src[pos]
            pos += 1
        if pos >= end:
            raise LZFError("a back reference is cut short", start)
        back = ((ctrl & 0x1F) << 8) + src[pos] + 1
        pos += 1
        run += 2
        here = len(out)
        if back > here:
            raise LZFError("a back reference points before the start of the output", start)
        if here + run > length:
            raise LZFError("a back reference goes past the promised length", start)
        ref = here - back
        if back >= run:
            out += out[ref : ref + run]
        else:
            # An overlapping copy repeats the last ``back`` bytes: one slice, not a byte loop.
            pattern = out[ref:here]
            out += (pattern * (run // back + 1))[:run]
    if len(out) != length:
        raise LZFError(f"the stream makes {len(out)} bytes, not {length}", end)
    return bytes(out)
