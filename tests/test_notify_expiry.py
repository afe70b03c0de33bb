"""``expired`` events for keys a write replaces before any sweep reached them.

Redis's ``lookupKeyWrite`` deletes an expired key, announcing ``expired``,
before the write creates it again (``new``, then the command's event). The
Store reclaims expired keys in a background sweep, so a write that lands
between the expiry and the sweep would replace the key silently: the
notification layer reclaims it first. The clock here is the Store's own
(a list the test moves), and the sweeper is off, so nothing races.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reference import parse
from snapkv import Store
from snapkv.server.client import Client
from snapkv.server.conf import parse_events
from snapkv.server.dispatch import Dispatcher
from snapkv.server.state import Config


class Clocked:
    """A dispatcher on a Store whose clock the test moves, with a subscriber to every event."""

    def __init__(self, flags: str) -> None:
        self.now = 1_000_000.0
        self.store = Store(clock=lambda: self.now, sweep_interval=None, databases=2)
        self.server = Dispatcher(self.store, Config())
        self.server.config.notify_keyspace_events = parse_events(flags)
        self.client = Client(self.server, addr="127.0.0.1:4000")
        self.server.add_client(self.client)
        self.sub = Client(self.server, addr="127.0.0.1:4001")
        self.server.add_client(self.sub)
        self.server.execute(self.sub, ["PSUBSCRIBE", "__keyspace@*__:*"])
        self.sub.outbox.clear()

    def __call__(self, *argv: str) -> bytes:
        return self.server.execute(self.client, list(argv))

    def events(self) -> list[str]:
        """``key=event`` of each keyspace message since the last call."""
        out = []
        for data in self.sub.outbox:
            _kind, _pattern, channel, event = parse(data)
            out.append(f"{channel.decode().split('@', 1)[1]}={event.decode()}")
        self.sub.outbox.clear()
        return out


@pytest.fixture
def clocked() -> Iterator[Clocked]:
    made = Clocked("KAn")
    yield made
    made.store.close()


SETUPS = {
    "string": ("SET", "k", "1"),
    "list": ("RPUSH", "k", "a"),
    "hash": ("HSET", "k", "f", "v"),
    "set": ("SADD", "k", "a"),
    "zset": ("ZADD", "k", "1", "a"),
}
WRITES = [
    (("SET", "k", "v"), "string", "set"),
    (("SET", "k", "v", "EX", "100"), "list", "set"),
    (("SETNX", "k", "v"), "string", "set"),
    (("GETSET", "k", "v"), "string", "set"),
    (("MSET", "k", "v"), "hash", "set"),
    (("INCR", "k"), "string", "incrby"),
    (("INCRBYFLOAT", "k", "1.5"), "string", "incrbyfloat"),
    (("APPEND", "k", "x"), "string", "append"),
    (("SETRANGE", "k", "1", "x"), "string", "setrange"),
    (("LPUSH", "k", "x"), "list", "lpush"),
    (("RPUSH", "k", "x"), "string", "rpush"),
    (("HSET", "k", "g", "v"), "hash", "hset"),
    (("HINCRBY", "k", "g", "1"), "hash", "hincrby"),
    (("SADD", "k", "b"), "set", "sadd"),
    (("ZADD", "k", "2", "b"), "zset", "zadd"),
    (("ZINCRBY", "k", "2", "b"), "zset", "zadd"),
]


@pytest.mark.parametrize(("write", "kind", "event"), WRITES, ids=str)
def test_a_write_over_an_expired_key_announces_expired_then_new(
    clocked: Clocked, write: tuple[str, ...], kind: str, event: str
) -> None:
    clocked(*SETUPS[kind])
    clocked("PEXPIRE", "k", "100")
    clocked.events()
    clocked.now += 1
    clocked(*write)
    expected = "zincr" if write[0] == "ZINCRBY" else event
    assert clocked.events()[:3] == ["0__:k=expired", "0__:k=new", f"0__:k={expected}"]


def test_the_expired_target_of_a_rename_is_announced_before_it_is_replaced(
    clocked: Clocked,
) -> None:
    clocked("SET", "a", "1")
    clocked("SET", "b", "2", "PX", "100")
    clocked.events()
    clocked.now += 1
    clocked("RENAME", "a", "b")
    assert clocked.events() == [
        "0__:b=expired",
        "0__:b=new",
        "0__:a=rename_from",
        "0__:b=rename_to",
    ]


def test_without_the_expired_class_nothing_is_reclaimed_early(clocked: Clocked) -> None:
    clocked.server.config.notify_keyspace_events = parse_events("Kn$")
    clocked("SET", "k", "1", "PX", "100")
    clocked.events()
    clocked.now += 1
    clocked("SET", "k", "2")
    assert clocked.events() == ["0__:k=new", "0__:k=set"]


def test_a_locked_read_reclaims_and_announces_in_the_keyspace_of_the_key(
    clocked: Clocked,
) -> None:
    clocked("SELECT", "1")
    clocked("SET", "gone", "1", "PX", "100")
    clocked("SET", "kept", "1")
    clocked.events()
    clocked.now += 1
    assert clocked("DBSIZE") == b":1\r\n"  # counting reclaims what is due first
    assert clocked.events() == ["1__:gone=expired"]


READS = [
    (("GET", "k"), "string"),
    (("STRLEN", "k"), "string"),
    (("MGET", "k", "k"), "string"),
    (("EXISTS", "k"), "string"),
    (("TTL", "k"), "string"),
    (("LRANGE", "k", "0", "-1"), "list"),
    (("HGET", "k", "f"), "hash"),
    (("SMEMBERS", "k"), "set"),
    (("SUNION", "k", "k"), "set"),
    (("ZSCORE", "k", "a"), "zset"),
    (("ZUNION", "1", "k"), "zset"),
    (("ZINTERCARD", "1", "k"), "zset"),
    (("SINTERCARD", "1", "k"), "set"),
    (("DUMP", "k"), "hash"),
    (("SORT", "k"), "list"),
]


@pytest.mark.parametrize(("read", "kind"), READS, ids=str)
def test_a_read_of_an_expired_key_announces_expired_then_keymiss(
    read: tuple[str, ...], kind: str
) -> None:
    clocked = Clocked("KAm")
    try:
        clocked(*SETUPS[kind])
        clocked("PEXPIRE", "k", "100")
        clocked.events()
        clocked.now += 1
        clocked(*read)
        misses = sum(arg == "k" for arg in read[1:])
        assert clocked.events() == ["0__:k=expired"] + ["0__:k=keymiss"] * misses
    finally:
        clocked.store.close()


@pytest.mark.parametrize(
    ("flags", "expected"), [("Kx", ["0__:k=expired"]), ("Km", ["0__:k=keymiss"])]
)
def test_expired_and_keymiss_are_each_raised_only_when_selected(
    flags: str, expected: list[str]
) -> None:
    clocked = Clocked(flags)
    try:
        clocked("SET", "k", "1", "PX", "100")
        clocked.now += 1
        clocked("GET", "k")
        assert clocked.events() == expected
        # Without the expired class the read leaves the key to the sweep.
        assert ("k" in clocked.store._space[0]) == ("x" not in flags)
    finally:
        clocked.store.close()


@pytest.mark.parametrize(
    "store",
    [
        ("ZUNIONSTORE", "k", "1", "src"),
        ("SUNIONSTORE", "k", "src"),
        ("ZRANGESTORE", "k", "src", "0", "-1"),
        ("SORT", "src", "STORE", "k"),
    ],
    ids=str,
)
def test_an_expired_destination_is_announced_before_a_store_replaces_it(
    clocked: Clocked, store: tuple[str, ...]
) -> None:
    source = (
        ("SADD", "src", "1") if store[0] in ("SUNIONSTORE", "SORT") else ("ZADD", "src", "1", "a")
    )
    clocked(*source)
    clocked("SET", "k", "v", "PX", "100")
    clocked.events()
    clocked.now += 1
    clocked(*store)
    event = "sortstore" if store[0] == "SORT" else store[0].lower()
    assert clocked.events() == ["0__:k=expired", "0__:k=new", f"0__:k={event}"]
