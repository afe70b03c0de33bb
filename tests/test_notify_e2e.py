"""Keyspace notifications over real sockets: redis-py subscribers of a running server.

The ``expired`` events come from the Store's sweeper thread (no client
touches the key), so they prove the path from ``Store.expired_listener``
through pub/sub to a connection on the event loop. Waits poll with a
deadline; nothing sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from reference import Raw, request
from snapkv import Store
from snapkv.server import Config
from snapkv.server.conf import parse_events
from test_server_e2e import DEADLINE, Running

redis = pytest.importorskip("redis")


@pytest.fixture
def serve() -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(**config: Any) -> Running:
        running = Running(Store(sweep_interval=0.01), Config(port=0, **config))
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


def _messages(pubsub: Any, count: int) -> list[tuple[str, str]]:
    """The next ``count`` messages' (channel, data), confirmations skipped, within the deadline."""
    got: list[tuple[str, str]] = []
    deadline = time.monotonic() + DEADLINE
    while len(got) < count:
        assert time.monotonic() < deadline, f"only {got} arrived"
        message = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
        if message is not None:
            got.append((message["channel"], message["data"]))
    return got


def test_the_sweeper_announces_expired_keys_in_their_keyspace(
    serve: Callable[..., Running],
) -> None:
    running = serve(notify_keyspace_events=parse_events("KEx"))
    client = redis.Redis(port=running.port, decode_responses=True, db=3)
    pubsub = client.pubsub()
    pubsub.psubscribe("__key*__:*")
    client.set("short", "v", px=50)
    client.set("long", "v", ex=100)
    assert _messages(pubsub, 2) == [
        ("__keyspace@3__:short", "expired"),
        ("__keyevent@3__:expired", "short"),
    ]
    assert client.exists("short") == 0
    assert client.exists("long") == 1
    pubsub.close()
    client.close()


def test_events_reach_a_subscriber_once_config_set_turns_them_on(
    serve: Callable[..., Running],
) -> None:
    running = serve()
    client = redis.Redis(port=running.port, decode_responses=True)
    pubsub = client.pubsub()
    pubsub.psubscribe("__keyspace@0__:*")
    client.set("quiet", "1")  # notifications are off by default
    assert client.config_set("notify-keyspace-events", "Kl$g")
    assert client.config_get("notify-keyspace-events") == {"notify-keyspace-events": "g$lK"}
    client.rpush("jobs", "a")
    client.lpop("jobs")
    client.incr("counter")
    client.hset("ignored", "f", "v")  # class h not selected
    client.delete("counter")
    assert _messages(pubsub, 5) == [
        ("__keyspace@0__:jobs", "rpush"),
        ("__keyspace@0__:jobs", "lpop"),
        ("__keyspace@0__:jobs", "del"),
        ("__keyspace@0__:counter", "incrby"),
        ("__keyspace@0__:counter", "del"),
    ]
    assert pubsub.get_message(ignore_subscribe_messages=True, timeout=0.05) is None
    pubsub.close()
    client.close()


def test_resp3_subscriber_gets_events_as_pushes(serve: Callable[..., Running]) -> None:
    running = serve(notify_keyspace_events=parse_events("EA"))
    client = redis.Redis(port=running.port, decode_responses=True, protocol=3)
    pubsub = client.pubsub()
    pubsub.subscribe("__keyevent@0__:zadd")
    client.zadd("board", {"ann": 1})
    assert _messages(pubsub, 1) == [("__keyevent@0__:zadd", "board")]
    pubsub.close()
    client.close()


def _blocked(client: Any) -> int:
    return int(client.info("clients")["blocked_clients"])


def _until_sentinel(admin: Any, pubsub: Any) -> list[tuple[str, str]]:
    """Every message before a sentinel published now on a channel the pattern matches."""
    admin.publish("__keyspace@0__:sentinel", "end")
    got: list[tuple[str, str]] = []
    deadline = time.monotonic() + DEADLINE
    while True:
        assert time.monotonic() < deadline, f"no sentinel after {got}"
        message = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
        if message is None:
            continue
        if message["channel"] == "__keyspace@0__:sentinel":
            return got
        got.append((message["channel"], message["data"]))


@pytest.mark.parametrize(
    ("block", "wake"),
    [
        (("BLPOP", "q", "5"), ("LPUSH", "q", "x")),
        (("BRPOP", "q", "5"), ("RPUSH", "q", "x", "y")),
        (("BLMOVE", "q", "d", "RIGHT", "LEFT", "5"), ("RPUSH", "q", "x", "y")),
        (("BLMPOP", "5", "2", "p", "q", "LEFT", "COUNT", "5"), ("RPUSH", "q", "x", "y")),
        (("BZPOPMIN", "z", "5"), ("ZADD", "z", "1", "a")),
        (("BZMPOP", "5", "1", "z", "MAX", "COUNT", "1"), ("ZADD", "z", "1", "a", "2", "b")),
    ],
    ids=["blpop", "brpop", "blmove", "blmpop", "bzpopmin", "bzmpop"],
)
def test_a_served_blocked_pop_raises_the_events_redis_raises(
    serve: Callable[..., Running], redis_port: int, block: tuple[str, ...], wake: tuple[str, ...]
) -> None:
    """The pusher's events, then the pop's (and del) as the blocked client is served."""
    running = serve()
    seen = []
    for port in (running.port, redis_port):
        admin = redis.Redis(port=port, decode_responses=True)
        admin.flushall()
        admin.config_set("notify-keyspace-events", "KEAn")
        pubsub = admin.pubsub()
        pubsub.psubscribe("__keyspace@0__:*")
        waiter = redis.Redis(port=port, decode_responses=True, socket_timeout=DEADLINE)
        conn = waiter.connection_pool.get_connection()
        try:
            conn.send_command(*block)
            deadline = time.monotonic() + DEADLINE
            while _blocked(admin) != 1:
                assert time.monotonic() < deadline, "the client never blocked"
            admin.execute_command(*wake)
            assert conn.read_response() is not None
            seen.append(_until_sentinel(admin, pubsub))
        finally:
            admin.config_set("notify-keyspace-events", "")
            waiter.connection_pool.release(conn)
            pubsub.close()
            waiter.close()
            admin.close()
    assert seen[0] == seen[1]
    assert any(event in ("lpop", "rpop", "zpopmin", "zpopmax") for _, event in seen[0])


def test_a_resp3_writer_listening_to_its_own_key_gets_the_event_before_the_reply(
    serve: Callable[..., Running], redis_port: int
) -> None:
    """Redis pushes the event into the writer's output buffer before the command's reply."""
    running = serve()
    streams = []
    for port in (running.port, redis_port):
        raw = Raw(port)
        try:
            raw("CONFIG", "SET", "notify-keyspace-events", "KEA")
            raw("HELLO", "3")  # its reply names the server: not compared
            raw("PSUBSCRIBE", "__keyspace@0__:*")
            raw.sock.sendall(request("SET", "own", "1") + request("DEL", "own"))
            want = b"+OK\r\n"
            data = b""
            deadline = time.monotonic() + DEADLINE
            while not data.endswith(b":1\r\n"):
                assert time.monotonic() < deadline, data
                data += raw.sock.recv(65536)
            assert want in data
            streams.append(raw.buf + data)
        finally:
            raw("CONFIG", "SET", "notify-keyspace-events", "")
            raw.close()
    assert streams[0] == streams[1]


def test_every_key_the_sweeper_reclaims_is_announced_once(
    serve: Callable[..., Running],
) -> None:
    """Hundreds of keys expiring together in three keyspaces: one ``expired`` each."""
    running = serve(notify_keyspace_events=parse_events("Ex"))
    admin = redis.Redis(port=running.port, decode_responses=True)
    pubsub = admin.pubsub()
    pubsub.psubscribe("__keyevent@*__:expired")
    expected = set()
    for db in (0, 1, 5):
        client = redis.Redis(port=running.port, decode_responses=True, db=db)
        with client.pipeline(transaction=False) as pipe:
            for i in range(150):
                pipe.set(f"k{i}", "v", px=30 + i % 7)
                expected.add((f"__keyevent@{db}__:expired", f"k{i}"))
            pipe.set("stays", "v")
            pipe.execute()
        client.close()
    got = _messages(pubsub, len(expected))
    assert len(set(got)) == len(got) == len(expected)
    assert set(got) == expected
    assert pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2) is None
    assert admin.dbsize() == 1
    pubsub.close()
    admin.close()
