"""The replication backlog against a plain bytearray of everything fed: offsets and bytes."""

from __future__ import annotations

import random

import pytest

from snapkv.server.replicas.backlog import ZERO_ID, Backlog


@pytest.mark.parametrize("size", [1, 5, 17, 100])
def test_the_backlog_keeps_the_newest_bytes_at_redis_offsets(size: int) -> None:
    backlog = Backlog(size)
    fed = bytearray()
    rng = random.Random(size)
    for _ in range(1000):
        data = rng.randbytes(rng.randrange(0, 40))
        backlog.feed(data)
        fed += data
        assert backlog.offset == len(fed)
        assert backlog.histlen == min(size, len(fed))
        first = backlog.first_byte_offset
        assert first == len(fed) - backlog.histlen + 1
        for offset in (first, first + backlog.histlen // 2, backlog.offset + 1):
            assert backlog.since(offset) == bytes(fed[offset - 1 :])
    with pytest.raises(ValueError, match="before the backlog"):
        backlog.since(backlog.first_byte_offset - 1)
    backlog.resize(1)
    assert backlog.since(backlog.first_byte_offset) == bytes(fed[-1:])


def test_psync_continues_only_with_this_history_and_an_offset_it_holds() -> None:
    backlog = Backlog(10, offset=100)
    backlog.feed(b"0123456789abcdef")  # offsets 101..116, 107..116 kept
    assert len(backlog.replid) == 40 and backlog.replid2 == ZERO_ID
    assert backlog.can_continue(backlog.replid, 107)
    assert backlog.can_continue(backlog.replid, 117)  # nothing missed
    assert not backlog.can_continue(backlog.replid, 106)  # fell out
    assert not backlog.can_continue(backlog.replid, 118)  # ahead of us
    assert not backlog.can_continue("?", 110)
    assert not backlog.can_continue(Backlog(10).replid, 110)
