"""Streams over real sockets: redis-py's stream calls and XREAD BLOCK, on snapkv and Redis 7.0.

redis-py's ``xadd``/``xrange``/``xrevrange``/``xread``/``xtrim``/``xdel``
(RESP2 and RESP3) must return the same Python values from ``snapkv
serve`` as from redis-server. Blocking reads are scenarios of raw
connections played on both servers (tests/test_blocking_e2e.py's
``both``), compared byte for byte: who is served, with what, who keeps
waiting. Waiting for a client to block polls INFO's ``blocked_clients``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from test_blocking_e2e import Session, both  # noqa: F401 - the fixture
from test_server_e2e import DEADLINE, Running, serve  # noqa: F401 - the fixture

# ------------------------------------------------------------------ redis-py


def _session(client: Any) -> list[Any]:
    out: list[Any] = [client.flushall()]
    out.append(client.xadd("s", {"a": "1", "b": "2"}, id="1-1"))
    out.append(client.xadd("s", {"c": "3"}, id="1-*"))
    out.append(client.xadd("s", {"d": "4"}, id="2-0", maxlen=10, approximate=False))
    out.append(client.xadd("s", {"e": "5"}, id="3-0", maxlen=2, approximate=False))
    out.append(client.xadd("s", {"f": "6"}, id="4-0", minid="3", approximate=True, limit=5))
    out.append(client.xadd("t", {"x": "y"}, id="9-0", nomkstream=True))
    out.append(client.xlen("s"))
    out.append(client.xrange("s"))
    out.append(client.xrange("s", min="(2-0", max="+", count=1))
    out.append(client.xrevrange("s", max="+", min="-"))
    out.append(client.xread({"s": "0-0"}, count=2))
    out.append(client.xread({"s": "3-0", "t": "0"}))
    out.append(client.xdel("s", "3-0", "7-7"))
    out.append(client.xtrim("s", maxlen=0))
    out.append(client.xlen("s"))
    out.append(client.exists("s"))
    try:
        client.xadd("s", {"g": "7"}, id="1-0")
    except redis.ResponseError as exc:
        out.append(str(exc))
    return out


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_stream_calls_answer_as_redis(
    serve: Callable[..., Running],  # noqa: F811 - the fixture
    redis_port: int,
    protocol: int,
) -> None:
    ours = serve().client(protocol=protocol)
    theirs = redis.Redis(port=redis_port, protocol=protocol, socket_timeout=DEADLINE)
    try:
        assert _session(ours) == _session(theirs)
    finally:
        theirs.close()


def test_redis_py_xread_block_is_woken_by_another_clients_xadd(
    serve: Callable[..., Running],  # noqa: F811 - the fixture
) -> None:
    running = serve()
    reader, writer = running.client(), running.client()
    writer.xadd("jobs", {"n": "0"}, id="1-0")
    got: list[Any] = []
    thread = threading.Thread(
        target=lambda: got.append(reader.xread({"jobs": "$"}, block=int(DEADLINE * 1000)))
    )
    thread.start()
    assert _wait_blocked(writer, 1), "the reader never blocked"
    writer.xadd("jobs", {"n": "1"}, id="2-0")
    thread.join(DEADLINE)
    assert got == [[[b"jobs", [(b"2-0", {b"n": b"1"})]]]]


def _wait_blocked(client: Any, count: int) -> bool:
    deadline = time.monotonic() + DEADLINE
    while client.info("clients")["blocked_clients"] != count:
        if time.monotonic() > deadline:
            return False
    return True


# ----------------------------------------------------------- XREAD BLOCK


def test_every_reader_of_a_stream_is_served_each_after_its_own_id(both: Any) -> None:  # noqa: F811 - the fixture
    def scenario(s: Session) -> None:
        s.write("XADD", "s", "3-0", "f", "v")
        early, late, resp3 = s.conn(), s.conn(), s.conn(resp=3)
        s.block(early, "XREAD", "BLOCK", "0", "STREAMS", "s", "$")
        s.block(late, "XREAD", "BLOCK", "0", "STREAMS", "s", "5-0")
        s.block(resp3, "XREAD", "COUNT", "1", "BLOCK", "0", "STREAMS", "other", "s", "0", "$")
        s.write("XADD", "s", "4-0", "a", "1")  # above 3-0: early and resp3, not late
        s.note(early.read())
        s.note(resp3.read())
        s.note(s.ctl("INFO", "clients").split(b"blocked_clients:")[1][:1])
        s.write("XADD", "s", "6-0", "b", "2")
        s.note(late.read())

    both(scenario)


def test_a_read_of_several_streams_is_served_by_the_one_written(both: Any) -> None:  # noqa: F811 - the fixture
    def scenario(s: Session) -> None:
        reader = s.conn()
        s.block(reader, "XREAD", "BLOCK", "0", "STREAMS", "a", "b", "$", "$")
        s.write("XADD", "b", "1-0", "f", "v")
        s.note(reader.read())

    both(scenario)


def test_a_multi_block_serves_the_reader_after_exec(both: Any) -> None:  # noqa: F811 - the fixture
    def scenario(s: Session) -> None:
        reader = s.conn()
        s.block(reader, "XREAD", "BLOCK", "0", "STREAMS", "s", "$")
        s.write("MULTI")
        s.write("XADD", "s", "1-0", "f", "v")
        s.write("XADD", "s", "2-0", "g", "w")
        s.write("EXEC")
        s.note(reader.read())

    both(scenario)


def test_a_stream_recreated_below_the_id_keeps_its_reader_waiting(both: Any) -> None:  # noqa: F811 - the fixture
    def scenario(s: Session) -> None:
        s.write("XADD", "s", "5-0", "f", "v")
        reader = s.conn()
        s.block(reader, "XREAD", "BLOCK", "0", "STREAMS", "s", "$")
        s.write("DEL", "s")
        s.write("XADD", "s", "1-0", "f", "v")  # not above 5-0
        s.note(s.ctl("INFO", "clients").split(b"blocked_clients:")[1][:1])
        s.write("XADD", "s", "7-0", "g", "w")
        s.note(reader.read())

    both(scenario)


def test_a_wait_times_out_with_a_null_and_nothing_blocks_inside_multi(both: Any) -> None:  # noqa: F811 - the fixture
    def scenario(s: Session) -> None:
        reader, resp3 = s.conn(), s.conn(resp=3)
        s.note(reader("XREAD", "BLOCK", "20", "STREAMS", "s", "$"))
        s.note(resp3("XREAD", "BLOCK", "20", "STREAMS", "s", "$"))
        s.note(reader("MULTI"))
        s.note(reader("XREAD", "BLOCK", "0", "STREAMS", "s", "$"))
        s.note(reader("EXEC"))

    both(scenario)


def test_stream_writes_notify_as_redis(both: Any) -> None:  # noqa: F811 - the fixture
    def scenario(s: Session) -> None:
        s.write("CONFIG", "SET", "notify-keyspace-events", "KEAn")
        listener = s.conn()
        s.note(listener("PSUBSCRIBE", "*"))
        s.write("XADD", "s", "1-0", "a", "b")  # new, xadd
        s.write("XADD", "s", "MAXLEN", "0", "2-0", "c", "d")  # xadd, xtrim
        s.write("XDEL", "s", "2-0")  # nothing deleted: no event
        s.write("XSETID", "s", "5-0")
        s.write("XTRIM", "s", "MAXLEN", "0")  # nothing trimmed: no event
        s.write("XADD", "s", "6-0", "e", "f")
        s.write("XDEL", "s", "6-0", "7-0")
        s.write("XADD", "other", "NOMKSTREAM", "1-0", "a", "b")  # nothing written
        s.write("PUBLISH", "end", "end")
        while True:
            message = listener.read()
            s.note(message)
            if b"$3\r\nend\r\n$3\r\nend\r\n" in message:
                break
        s.write("CONFIG", "SET", "notify-keyspace-events", "")

    both(scenario)


def test_a_stream_renamed_onto_the_key_serves_its_reader(both: Any) -> None:  # noqa: F811 - the fixture
    def scenario(s: Session) -> None:
        reader = s.conn()
        s.block(reader, "XREAD", "BLOCK", "0", "STREAMS", "dst", "0")
        s.write("XADD", "src", "3-0", "f", "v")
        s.write("RENAME", "src", "dst")
        s.note(reader.read())

    both(scenario)


def test_client_unblock_ends_an_xread_with_a_null_or_an_error(both: Any) -> None:  # noqa: F811 - the fixture
    def scenario(s: Session) -> None:
        first, second = s.conn(), s.conn(resp=3)
        first_id, second_id = first("CLIENT", "ID"), second("CLIENT", "ID")
        s.block(first, "XREAD", "BLOCK", "0", "STREAMS", "s", "$")
        s.block(second, "XREAD", "BLOCK", "0", "STREAMS", "s", "$")
        s.note(s.ctl("CLIENT", "UNBLOCK", first_id[1:-2].decode(), "TIMEOUT"))
        s.note(first.read())
        s.note(s.ctl("CLIENT", "UNBLOCK", second_id[1:-2].decode(), "ERROR"))
        s.note(second.read())
        s.note(s.ctl("INFO", "clients").split(b"blocked_clients:")[1][:1])

    both(scenario)


def test_a_scripts_xadd_serves_the_reader_after_the_script(both: Any) -> None:  # noqa: F811 - the fixture
    def scenario(s: Session) -> None:
        reader = s.conn()
        s.block(reader, "XREAD", "BLOCK", "0", "STREAMS", "s", "$")
        script = "redis.call('XADD', KEYS[1], '1-0', 'a', 'b') return redis.call('XLEN', KEYS[1])"
        s.write("EVAL", script, "1", "s")
        s.note(reader.read())

    both(scenario)
