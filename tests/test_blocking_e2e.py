"""Blocking pops over real sockets, each scenario played on snapkv and on the real redis-server.

A scenario is a function of a port: it opens raw connections, blocks some
of them (waiting until the server reports them blocked: INFO's
``blocked_clients``, never a sleep), writes from another, and returns
every reply it read, as bytes. The same scenario runs against
``snapkv serve`` (in a thread, on its own event loop) and against Redis
7.0, and the replies must be byte for byte equal: who is served, in which
order, with what, and who keeps waiting.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from reference import reply_end, request
from snapkv import Store
from snapkv.server import Config
from test_server_e2e import DEADLINE, Running

Scenario = Callable[["Session"], None]


class Conn:
    """One raw connection: send a request without reading, read one whole reply."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
        self.buf = b""

    def send(self, *argv: str | bytes) -> None:
        self.sock.sendall(request(*argv))

    def read(self) -> bytes:
        while True:
            end = reply_end(self.buf) if self.buf else -1
            if end >= 0:
                reply, self.buf = self.buf[:end], self.buf[end:]
                return reply
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("the server closed the connection")
            self.buf += data

    def __call__(self, *argv: str | bytes) -> bytes:
        self.send(*argv)
        return self.read()

    def close(self) -> None:
        self.sock.close()


class Session:
    """A scenario's connections to one server, and the replies it collected."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conns: list[Conn] = []
        self.replies: list[bytes] = []
        self.ctl = self.conn()

    def conn(self, resp: int = 2) -> Conn:
        conn = Conn(self.port)
        self.conns.append(conn)
        if resp == 3:
            conn("HELLO", "3")
        return conn

    def blocked(self) -> int:
        info = self.ctl("INFO", "clients").decode()
        return int(info.split("blocked_clients:")[1].split("\r\n")[0])

    def wait_blocked(self, count: int) -> None:
        """Poll until ``count`` clients are blocked (they are served in the order they blocked)."""
        deadline = time.monotonic() + DEADLINE
        while self.blocked() != count:
            assert time.monotonic() < deadline, f"never {count} blocked clients"

    def block(self, conn: Conn, *argv: str | bytes) -> None:
        """Send a blocking command on ``conn`` and wait until the server has it blocked."""
        before = self.blocked()
        conn.send(*argv)
        self.wait_blocked(before + 1)

    def note(self, reply: bytes) -> None:
        self.replies.append(reply)

    def write(self, *argv: str | bytes) -> None:
        """A write from the control connection; its reply is noted."""
        self.note(self.ctl(*argv))

    def close(self) -> None:
        for conn in self.conns:
            conn.close()


def play(port: int, scenario: Scenario) -> list[bytes]:
    session = Session(port)
    try:
        scenario(session)
        return session.replies
    finally:
        session.close()


@pytest.fixture
def both(reference: Any, redis_port: int) -> Iterator[Callable[[Scenario], list[bytes]]]:
    """Play a scenario on a fresh snapkv server and on the (emptied) redis-server; compare."""
    running = Running(Store(), Config(port=0))

    def compare(scenario: Scenario) -> list[bytes]:
        reference("FLUSHALL")
        ours = play(running.port, scenario)
        theirs = play(redis_port, scenario)
        assert ours == theirs
        return ours

    yield compare
    running.stop()


# ------------------------------------------------------------------- order


def test_clients_blocked_on_one_key_are_served_first_come_first_served(both: Any) -> None:
    def scenario(s: Session) -> None:
        first, second, third = s.conn(), s.conn(), s.conn()
        s.block(first, "BLPOP", "queue", "0")
        s.block(second, "BRPOP", "queue", "0")
        s.block(third, "BLPOP", "queue", "0")
        s.write("RPUSH", "queue", "a", "b")  # two elements: the first two waiters
        s.note(first.read())
        s.note(second.read())
        s.note(s.ctl("INFO", "clients").split(b"blocked_clients:")[1][:1])
        s.write("RPUSH", "queue", "c")
        s.note(third.read())
        s.write("EXISTS", "queue")

    replies = both(scenario)
    assert replies[1] == b"*2\r\n$5\r\nqueue\r\n$1\r\na\r\n"
    assert replies[2] == b"*2\r\n$5\r\nqueue\r\n$1\r\nb\r\n"


def test_the_first_key_in_argument_order_that_has_a_value_is_popped(both: Any) -> None:
    def scenario(s: Session) -> None:
        waiter = s.conn()
        s.write("RPUSH", "b", "1")
        s.write("RPUSH", "c", "2")
        s.note(waiter("BLPOP", "a", "c", "b", "0"))  # at once: c before b
        s.block(waiter, "BLPOP", "x", "y", "z", "0")
        s.write("RPUSH", "z", "3")
        s.note(waiter.read())
        s.block(waiter, "BLPOP", "x", "y", "0")
        s.write("MSET", "p", "1", "q", "2")  # unrelated writes serve nobody
        s.write("RPUSH", "y", "4")
        s.note(waiter.read())

    both(scenario)


def test_a_waiter_on_several_keys_is_served_once(both: Any) -> None:
    def scenario(s: Session) -> None:
        one, two = s.conn(), s.conn()
        s.block(one, "BLPOP", "k1", "k2", "0")
        s.block(two, "BLPOP", "k2", "k1", "0")
        s.write("MULTI")
        s.write("RPUSH", "k2", "a", "b")
        s.write("RPUSH", "k1", "c")
        s.write("EXEC")
        s.note(one.read())
        s.note(two.read())
        s.write("LRANGE", "k1", "0", "-1")
        s.write("LRANGE", "k2", "0", "-1")

    both(scenario)


# ----------------------------------------------------------- what serves


@pytest.mark.parametrize(
    "writes",
    [
        [("LPUSH", "k", "x")],
        [("RPUSH", "src", "x"), ("LMOVE", "src", "k", "LEFT", "RIGHT")],
        [("RPUSH", "src", "x", "y"), ("RENAME", "src", "k")],
        [("RPUSH", "src", "3", "1", "2"), ("SORT", "src", "STORE", "k")],
        [("RPUSH", "src", "x"), ("COPY", "src", "k")],
        [("LPUSHX", "k", "x"), ("LPUSH", "k", "y")],  # LPUSHX of a missing key serves none
    ],
    ids=["lpush", "lmove", "rename", "sort-store", "copy", "lpushx"],
)
def test_writes_that_make_a_list_serve_the_waiting_client(
    both: Any, writes: list[tuple[str, ...]]
) -> None:
    def scenario(s: Session) -> None:
        waiter = s.conn()
        s.block(waiter, "BLPOP", "k", "0")
        for argv in writes:
            s.write(*argv)
        # Served before the write's reply, so no longer blocked now.
        assert s.blocked() == 0, f"{writes} did not serve the waiting client"
        s.note(waiter.read())
        s.write("LRANGE", "k", "0", "-1")

    both(scenario)


def test_restore_of_a_list_serves_the_waiting_client(both: Any) -> None:
    def scenario(s: Session) -> None:
        s.write("RPUSH", "src", "a", "b")
        payload = s.ctl("DUMP", "src")
        waiter = s.conn()
        s.block(waiter, "BRPOP", "k", "0")
        header, _, rest = payload.partition(b"\r\n")
        s.write("RESTORE", "k", "0", rest[: int(header[1:])])
        s.note(waiter.read())

    # DUMP payloads differ between the two servers only in their version
    # bytes; each RESTOREs its own.
    both(scenario)


def test_a_key_of_another_type_keeps_the_client_waiting_as_redis_7_0(both: Any) -> None:
    def scenario(s: Session) -> None:
        waiter = s.conn()
        s.block(waiter, "BLPOP", "k", "0")
        s.write("SET", "k", "string")
        s.write("DEL", "k")
        s.write("SADD", "k", "member")  # a set: not a type anyone blocks for
        s.write("ZADD", "k", "1", "m")
        s.note(s.ctl("INFO", "clients").split(b"blocked_clients:")[1][:1])
        s.write("DEL", "k")
        s.write("RPUSH", "k", "now")
        s.note(waiter.read())

    both(scenario)


def test_list_and_sorted_set_waiters_on_one_key_take_only_their_type(both: Any) -> None:
    def scenario(s: Session) -> None:
        lists, zsets = s.conn(), s.conn(resp=3)
        s.block(lists, "BLPOP", "k", "0")
        s.block(zsets, "BZPOPMIN", "k", "0")
        s.write("ZADD", "k", "2", "b", "1", "a")
        s.note(zsets.read())
        s.write("ZPOPMIN", "k")
        s.write("RPUSH", "k", "x")
        s.note(lists.read())

    both(scenario)


def test_a_transaction_that_pushes_then_pops_serves_nobody(both: Any) -> None:
    def scenario(s: Session) -> None:
        waiter = s.conn()
        s.block(waiter, "BLPOP", "k", "0")
        for argv in (("MULTI",), ("RPUSH", "k", "x"), ("LPOP", "k"), ("EXEC",)):
            s.write(*argv)
        s.note(s.ctl("INFO", "clients").split(b"blocked_clients:")[1][:1])
        s.write("RPUSH", "k", "y")
        s.note(waiter.read())

    both(scenario)


def test_a_served_move_makes_its_destination_ready_in_turn(both: Any) -> None:
    def scenario(s: Session) -> None:
        mover, popper = s.conn(), s.conn()
        s.block(mover, "BLMOVE", "a", "b", "LEFT", "RIGHT", "0")
        s.block(popper, "BRPOP", "b", "0")
        s.write("RPUSH", "a", "x", "y")
        s.note(mover.read())
        s.note(popper.read())
        s.write("LRANGE", "a", "0", "-1")
        s.write("EXISTS", "b")

    both(scenario)


def test_a_move_onto_a_key_of_another_type_answers_wrongtype_when_served(both: Any) -> None:
    def scenario(s: Session) -> None:
        mover = s.conn()
        s.block(mover, "BRPOPLPUSH", "a", "dst", "0")
        s.write("SET", "dst", "string")
        s.write("RPUSH", "a", "x")
        s.note(mover.read())
        s.write("LRANGE", "a", "0", "-1")

    both(scenario)


def test_counted_pops_take_up_to_count_and_leave_the_rest(both: Any) -> None:
    def scenario(s: Session) -> None:
        lists, zsets = s.conn(resp=3), s.conn()
        s.block(lists, "BLMPOP", "0", "2", "x", "y", "RIGHT", "COUNT", "2")
        s.block(zsets, "BZMPOP", "0", "1", "z", "MAX", "COUNT", "5")
        s.write("RPUSH", "y", "1", "2", "3")
        s.write("ZADD", "z", "1", "a", "2.5", "b")
        s.note(lists.read())
        s.note(zsets.read())
        s.write("LRANGE", "y", "0", "-1")
        s.write("EXISTS", "z")

    both(scenario)


def test_swapdb_serves_the_clients_waiting_in_both_keyspaces(both: Any) -> None:
    def scenario(s: Session) -> None:
        zero, one = s.conn(), s.conn()
        one("SELECT", "1")
        s.write("SELECT", "2")
        s.write("RPUSH", "k", "from-2")
        s.block(zero, "BLPOP", "k", "0")
        s.block(one, "BLPOP", "k", "0")
        s.write("SWAPDB", "2", "0")  # keyspace 0 now holds the list
        s.note(zero.read())
        s.note(s.ctl("INFO", "clients").split(b"blocked_clients:")[1][:1])
        s.write("SELECT", "1")
        s.write("RPUSH", "k", "in-1")
        s.note(one.read())

    both(scenario)


def test_served_pops_raise_the_keyspace_events_of_their_plain_forms(both: Any) -> None:
    def scenario(s: Session) -> None:
        s.write("CONFIG", "SET", "notify-keyspace-events", "KEA")
        try:
            listener = s.conn()
            listener("PSUBSCRIBE", "__key*__:*", "end")
            lists, mover, zsets = s.conn(), s.conn(), s.conn()
            s.block(lists, "BLMPOP", "0", "1", "l", "LEFT", "COUNT", "5")
            s.block(mover, "BLMOVE", "src", "dst", "RIGHT", "LEFT", "0")
            s.block(zsets, "BZPOPMAX", "z", "0")
            s.write("RPUSH", "l", "a", "b")
            s.write("RPUSH", "src", "c")
            s.write("ZADD", "z", "1", "m")
            for conn in (lists, mover, zsets):
                s.note(conn.read())
            s.write("PUBLISH", "end", "")
            while True:
                message = listener.read()
                s.note(message)
                if message.endswith(b"$3\r\nend\r\n$0\r\n\r\n"):
                    break
        finally:
            s.write("CONFIG", "SET", "notify-keyspace-events", "")

    events = both(scenario)
    assert b"__keyevent@0__:lpop" in b"".join(events)


def test_a_push_held_by_client_pause_serves_the_waiter_once_it_runs(both: Any) -> None:
    def scenario(s: Session) -> None:
        waiter, pusher, late = s.conn(), s.conn(), s.conn()
        s.block(waiter, "BLPOP", "k", "0")
        s.write("CLIENT", "PAUSE", "10000", "WRITE")
        pusher.send("RPUSH", "k", "x")
        late.send("BLPOP", "k", "0")  # a write too: held behind the push
        s.wait_blocked(3)
        s.write("CLIENT", "UNPAUSE")
        s.note(pusher.read())
        s.note(waiter.read())
        s.write("RPUSH", "k", "y")
        s.note(late.read())

    both(scenario)


# ---------------------------------------------------------- ends of waits


def test_timeouts_answer_null_in_each_protocol(both: Any) -> None:
    def scenario(s: Session) -> None:
        two, three = s.conn(), s.conn(resp=3)
        for conn in (two, three):
            s.note(conn("BLPOP", "k", "0.01"))
            s.note(conn("BZMPOP", "0.01", "1", "z", "MIN"))
            s.note(conn("BLMOVE", "k", "d", "LEFT", "LEFT", "0.01"))
            s.note(conn("BRPOPLPUSH", "k", "d", "0.01"))
        s.note(two("PING"))  # the connection goes on after a timeout

    assert both(scenario)[:2] == [b"*-1\r\n", b"*-1\r\n"]


def test_a_timeout_waits_at_least_its_time(serve_one: Running) -> None:
    conn = Conn(serve_one.port)
    started = time.monotonic()
    assert conn("BRPOP", "k", "0.2") == b"*-1\r\n"
    assert time.monotonic() - started >= 0.2
    conn.close()


def test_client_unblock_ends_a_wait_as_a_timeout_or_an_error(both: Any) -> None:
    def scenario(s: Session) -> None:
        waiter = s.conn()
        for mode in ("TIMEOUT", "ERROR"):
            waiter_id = waiter("CLIENT", "ID").decode()[1:-2]
            s.block(waiter, "BLPOP", "k", "0")
            s.note(s.ctl("CLIENT", "UNBLOCK", waiter_id, mode))
            s.note(waiter.read())
        s.note(s.ctl("CLIENT", "UNBLOCK", waiter_id))  # not blocked: 0
        s.write("RPUSH", "k", "kept")
        s.write("LRANGE", "k", "0", "-1")

    assert both(scenario)[1] == b"*-1\r\n"


def test_a_disconnected_waiter_is_forgotten_and_the_next_one_served(both: Any) -> None:
    def scenario(s: Session) -> None:
        gone, next_one = s.conn(), s.conn()
        s.block(gone, "BLPOP", "k", "0")
        s.block(next_one, "BLPOP", "k", "0")
        gone.close()
        s.conns.remove(gone)
        s.wait_blocked(1)
        s.write("RPUSH", "k", "x")
        s.note(next_one.read())

    both(scenario)


def test_the_waiting_clients_later_commands_run_after_its_reply(both: Any) -> None:
    def scenario(s: Session) -> None:
        waiter = s.conn()
        waiter.send("BLPOP", "k", "0")
        waiter.send("ECHO", "after")  # pipelined behind the wait
        s.wait_blocked(1)
        s.write("RPUSH", "k", "x")
        s.note(waiter.read())
        s.note(waiter.read())

    both(scenario)


@pytest.fixture
def serve_one() -> Iterator[Running]:
    running = Running(Store(), Config(port=0))
    yield running
    running.stop()
