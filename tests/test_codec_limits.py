"""The codec's size limits: how the encoder splits chunks, what the decoder will not allocate."""

from __future__ import annotations

import struct
import tracemalloc
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

import snapkv
from snapkv import codec

# ---------------------------------------------------------------- encoder


@contextmanager
def chunk_chars(limit: int) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(codec, "MAX_CHUNK_CHARS", limit)
        yield


def test_a_two_entry_chunk_over_the_limit_is_split() -> None:
    with chunk_chars(60):
        data = codec.encode({"a": "x" * 50, "b": "y" * 50})
    assert [c.entries for c in codec.scan(data).chunks] == [1, 1]


def test_a_chunk_over_the_limit_is_split_in_halves() -> None:
    # FORMAT.md section 6: the first floor(N/2) entries and the rest.
    with chunk_chars(50):
        data = codec.encode({f"k{i}": "v" * 20 for i in range(4)})
    assert [c.entries for c in codec.scan(data).chunks] == [2, 2]


# ---------------------------------------------------------------- decoder


def test_a_lying_entry_count_is_refused_without_splitting() -> None:
    # count 1, but the text holds 2,000,000 separators: split() would build a
    # 2,000,001-item list (16 MB of pointers) before noticing.
    body = struct.pack("<IB", 1, codec.LAYOUT_SEPARATED) + b"\x00" + b"\x00" * 2_000_000
    tail = struct.pack("<IB", len(body), codec.TYPE_ENTRIES)
    record = struct.pack("<I", zlib.crc32(tail + body)) + tail + body
    data = codec.encode({})[: codec.HEADER_SIZE] + record
    tracemalloc.start()
    try:
        with pytest.raises(snapkv.CorruptSnapshotError) as info:
            codec.decode(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.value.check == "entry-count"
    assert peak < 8 << 20, f"peak {peak:,} bytes: the text was split before the count was checked"
