"""HSCAN, SSCAN and ZSCAN over containers too big to come whole: the shared cursor walk.

Redis returns a compact container (a listpack, an intset) whole, with
cursor 0; a larger one is walked. snapkv walks a snapshot of the names
taken at cursor 0 (server/scan.py), so a call costs O(COUNT) whatever the
container's size. What Redis guarantees must hold: every element present
for the whole walk is returned; the walk ends with cursor 0.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from snapkv import MemoryMedium, Store
from snapkv.server.client import Client
from snapkv.server.dispatch import Dispatcher
from snapkv.server.state import Config

N = 3_000


class Session:
    def __init__(self, server: Dispatcher) -> None:
        self.server = server
        self.client = Client(server, addr="127.0.0.1:1000", laddr="127.0.0.1:6379")
        server.add_client(self.client)

    def __call__(self, *argv: str) -> bytes:
        return self.server.execute(self.client, list(argv))


@pytest.fixture
def s() -> Iterator[Session]:
    store = Store(MemoryMedium(), sweep_interval=None)
    yield Session(Dispatcher(store, Config()))
    store.close()


def _parse(reply: bytes) -> tuple[int, list[str]]:
    lines = reply.split(b"\r\n")
    cursor = int(lines[2])
    items = [line.decode() for line in lines[5::2] if line]
    return cursor, items


FILL = {
    "HSCAN": lambda s, i: s("HSET", "c", f"f{i}", f"v{i}"),
    "SSCAN": lambda s, i: s("SADD", "c", f"m{i}"),
    "ZSCAN": lambda s, i: s("ZADD", "c", str(i), f"m{i}"),
}
NAME = {"HSCAN": "f", "SSCAN": "m", "ZSCAN": "m"}


@pytest.mark.parametrize("command", ["HSCAN", "SSCAN", "ZSCAN"])
def test_a_big_container_is_walked_in_pages_and_misses_nothing_that_stayed(
    s: Session, command: str
) -> None:
    for i in range(N):
        FILL[command](s, i)
    step = 2 if command != "SSCAN" else 1  # fields and members come with a value or score
    seen: list[str] = []
    cursor, calls = 0, 0
    while True:
        cursor, items = _parse(s(command, "c", str(cursor), "COUNT", "100"))
        assert len(items) <= 100 * step
        seen += items[::step]
        calls += 1
        if calls == 5:  # change the container during the walk
            for i in range(N, N + 50):
                FILL[command](s, i)
            removed = {f"{NAME[command]}{i}" for i in range(10)}
            for name in removed:
                s({"HSCAN": "HDEL", "SSCAN": "SREM", "ZSCAN": "ZREM"}[command], "c", name)
        if cursor == 0:
            break
    assert calls >= N // 100  # paged, not whole
    stayed = {f"{NAME[command]}{i}" for i in range(10, N)}
    assert stayed <= set(seen)
    assert len(seen) == len(set(seen))


@pytest.mark.parametrize("command", ["HSCAN", "SSCAN", "ZSCAN"])
def test_match_on_a_big_container_uses_the_linear_matcher(s: Session, command: str) -> None:
    FILL[command](s, 0)
    for i in range(1, 200):
        FILL[command](s, i)
    long_name = "a" * 3000
    extra = {"HSCAN": [long_name, "v"], "SSCAN": [long_name], "ZSCAN": ["1", long_name]}
    s({"HSCAN": "HSET", "SSCAN": "SADD", "ZSCAN": "ZADD"}[command], "c", *extra[command])
    pattern = "*a" * 200 + "b"  # exponential for a backtracking matcher
    cursor, found = 0, []
    while True:
        cursor, items = _parse(s(command, "c", str(cursor), "MATCH", pattern, "COUNT", "1000"))
        found += items
        if cursor == 0:
            break
    assert found == []
