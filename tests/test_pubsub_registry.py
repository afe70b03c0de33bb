"""The pub/sub registry: disconnects and RESET, publishers on other threads, the queues.

Driven through the dispatcher alone (no sockets): a connectionless client
collects its pushes in ``Client.outbox``, and a test that needs an event
loop's hand-off stands one in with a list of scheduled callables.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from reference import parse
from snapkv import Store
from snapkv.server.client import Client
from snapkv.server.dispatch import Dispatcher
from snapkv.server.pubsub import counts, publish, registry, unsubscribe_all
from snapkv.server.state import Config
from test_pubsub_commands import replies


@pytest.fixture
def server() -> Iterator[Dispatcher]:
    store = Store()
    yield Dispatcher(store, Config())
    store.close()


@pytest.fixture
def publisher(server: Dispatcher) -> Client:
    made = Client(server)
    server.add_client(made)
    return made


def test_disconnect_and_reset_drop_every_subscription(
    server: Dispatcher, publisher: Client
) -> None:
    gone, reset = Client(server), Client(server)
    for client in (gone, reset):
        server.add_client(client)
        server.execute(client, ["SUBSCRIBE", "drop-a"])
        server.execute(client, ["PSUBSCRIBE", "drop-*"])
        server.execute(client, ["SSUBSCRIBE", "drop-s"])
    server.remove_client(gone)
    assert parse(server.execute(publisher, ["PUBSUB", "NUMSUB", "drop-a"])) == [b"drop-a", 1]
    unsubscribe_all(reset)  # what RESET does: no confirmation is sent
    assert reset.outbox == [] and reset.plain
    assert (reset.channels, reset.patterns, reset.shard_channels) == (set(), set(), set())
    assert counts(server) == (0, 0, 0)
    assert server.execute(publisher, ["PUBLISH", "drop-a", "m"]) == b":0\r\n"


def test_publishers_on_other_threads_see_each_subscription_whole(
    server: Dispatcher, publisher: Client
) -> None:
    """A script's or the sweeper's thread publishes while subscriptions change.

    Every receiver counted is a message pushed, and no publisher ever sees
    a table in the middle of a change.
    """
    clients = [Client(server) for _ in range(20)]
    stop = threading.Event()
    counted = Counter[int]()
    failures: list[BaseException] = []

    def publisher(index: int) -> None:
        try:
            while not stop.is_set():
                counted[index] += publish(server, "race-a", "m")
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=publisher, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(300):
            for client in clients:
                server.execute(client, ["SUBSCRIBE", "race-a"])
                server.execute(client, ["PSUBSCRIBE", "race-*"])
            for client in clients:
                unsubscribe_all(client)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not failures
    pushed = sum(len(c.outbox) for c in clients)
    assert sum(counted.values()) == pushed > 0
    assert counts(server) == (0, 0, 0) and registry(server).names("pattern") == []


def test_messages_queue_until_the_loop_turn_ends_and_keep_redis_order(
    server: Dispatcher, publisher: Client
) -> None:
    """With an event loop, messages wait for one flush per turn (one push per client).

    The loop is stood in for by a list of scheduled callables.
    """
    scheduled: list[Any] = []
    server.threadsafe_call = scheduled.append
    server.loop_thread = threading.get_ident()
    sub, other = Client(server), Client(server)
    other.set_resp(3)
    for client in (sub, other):
        server.add_client(client)
        server.execute(client, ["SUBSCRIBE", "q-a", "q-b"])
    for i in range(3):
        assert server.execute(publisher, ["PUBLISH", "q-a", f"m{i}"]) == b":2\r\n"
    assert sub.outbox == other.outbox == [] and len(scheduled) == 1
    # A command that leaves a channel first writes what was published before it.
    reply = server.execute(sub, ["UNSUBSCRIBE", "q-a"])
    assert [parse(r)[2] for r in replies(b"".join(sub.outbox))] == [b"m0", b"m1", b"m2"]
    assert parse(reply) == [b"unsubscribe", b"q-a", 1]
    sub.outbox.clear()
    scheduled.pop()()
    assert sub.outbox == []  # nothing left for it
    assert len(other.outbox) == 1  # three messages, one push
    assert [parse(r)[2] for r in replies(other.outbox[0])] == [b"m0", b"m1", b"m2"]
    # A RESP3 subscriber's own message goes out before its PUBLISH's reply.
    other.outbox.clear()
    server.execute(publisher, ["PUBLISH", "q-b", "from-sub"])
    assert server.execute(other, ["PUBLISH", "q-b", "own"]) == b":2\r\n"
    assert [parse(r)[2] for r in replies(b"".join(other.outbox))] == [b"from-sub", b"own"]
    assert other.outbox[0].startswith(b">3")
    # A publisher on another thread queues too; the loop's flush writes it.
    while scheduled:
        scheduled.pop()()
    sub.outbox.clear()
    thread = threading.Thread(target=publish, args=(server, "q-b", "threaded"))
    thread.start()
    thread.join()
    assert len(scheduled) == 1 and sub.outbox == []  # handed to the loop
    scheduled.pop()()
    assert len(scheduled) == 1 and sub.outbox == []  # queued there, a flush scheduled
    scheduled.pop()()
    assert parse(sub.outbox[-1]) == [b"message", b"q-b", b"threaded"]
    # RESET (unsubscribe_all) writes what was queued, then drops everything.
    server.execute(publisher, ["PUBLISH", "q-b", "before-reset"])
    sub.outbox.clear()
    unsubscribe_all(sub)
    assert parse(sub.outbox[0]) == [b"message", b"q-b", b"before-reset"]


def test_a_sender_listening_gets_its_own_event_at_once(server: Dispatcher) -> None:
    """``publish(..., sender)``: a keyspace event of the client's own write precedes its reply."""
    scheduled: list[Any] = []
    server.threadsafe_call = scheduled.append
    server.loop_thread = threading.get_ident()
    writer, other = Client(server), Client(server)
    for client in (writer, other):
        client.set_resp(3)
        server.add_client(client)
        server.execute(client, ["SUBSCRIBE", "__keyspace@0__:k"])
    assert publish(server, "__keyspace@0__:k", "set", writer) == 2
    assert [parse(r) for r in writer.outbox] == [[b"message", b"__keyspace@0__:k", b"set"]]
    assert other.outbox == [] and len(scheduled) == 1  # the others: at the loop turn's end
    scheduled.pop()()
    assert [parse(r) for r in other.outbox] == [[b"message", b"__keyspace@0__:k", b"set"]]


def test_a_publish_after_the_loop_closed_is_dropped_quietly(server: Dispatcher) -> None:
    """The sweeper may still expire keys (and publish) while the server stops."""

    def closed(callback: Any) -> None:
        raise RuntimeError("Event loop is closed")

    subscriber = Client(server)
    server.add_client(subscriber)
    server.execute(subscriber, ["SUBSCRIBE", "late"])
    server.threadsafe_call = closed
    server.loop_thread = threading.get_ident() + 1  # the caller is not the loop's thread
    assert publish(server, "late", "m") == 1
    assert subscriber.outbox == []
