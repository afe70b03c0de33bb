"""CLIENT LIST and CLIENT INFO over real connections: redis-server 7.0's fields, real values."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest

from conftest import Twin
from reference import Raw, parse
from support import wait_until
from test_server_e2e import Running, serve  # noqa: F401 - the fixture

#: redis-server 7.0.15's CLIENT LIST fields, in its order, then 7.2's two.
FIELDS_7_0 = [
    *("id", "addr", "laddr", "fd", "name", "age", "idle", "flags", "db", "sub", "psub"),
    *("ssub", "multi", "qbuf", "qbuf-free", "argv-mem", "multi-mem", "rbs", "rbp", "obl"),
    *("oll", "omem", "tot-mem", "events", "cmd", "user", "redir", "resp"),
]


def fields(line: str) -> dict[str, str]:
    return dict(word.split("=", 1) for word in line.split(" "))


def lines(reply: bytes | str) -> list[dict[str, str]]:
    text = (reply.decode() if isinstance(reply, bytes) else reply).strip("\n")
    return [fields(line) for line in text.split("\n")] if text else []


def test_the_fields_are_redis_7_0s_in_order(redis_port: int) -> None:
    raw = Raw(redis_port)
    try:
        theirs = list(lines(parse(raw("CLIENT", "INFO")))[0])
    finally:
        raw.close()
    assert theirs == FIELDS_7_0  # the reference is what this test says it is


def test_client_list_of_real_connections(serve: Callable[..., Running]) -> None:  # noqa: F811
    running = serve()
    me = running.client()
    other = running.client()
    other.client_setname("worker")
    other.set("k", "v")
    other.get("k")
    listed = lines(me.execute_command("CLIENT", "LIST"))
    assert len(listed) == 2
    mine = next(f for f in listed if f["id"] == str(me.client_id()))
    theirs = next(f for f in listed if f is not mine)
    assert list(mine) == [*FIELDS_7_0, "lib-name", "lib-ver"]
    assert theirs["name"] == "worker" and theirs["cmd"] == "get"
    assert mine["cmd"] == "client|list"  # the running command, as Redis names subcommands
    assert int(mine["fd"]) > 2 and mine["fd"] != theirs["fd"]
    assert mine["argv-mem"] == "10"  # "client" + "list", as Redis counts them
    assert theirs["argv-mem"] == "0"
    assert mine["events"] == "r" and mine["flags"] == "N" and mine["multi"] == "-1"
    assert mine["laddr"] == f"127.0.0.1:{running.port}"
    info = fields(me.execute_command("CLIENT", "INFO").decode().strip("\n"))
    assert info["id"] == mine["id"] and info["cmd"] == "client|info"


def test_flags_multi_and_buffers(serve: Callable[..., Running]) -> None:  # noqa: F811
    running = serve()
    me = running.client()
    sock = running.connect()
    # A client inside MULTI with two queued commands, then half a command unread.
    sock.sendall(b"*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$3\r\nxyz\r\n")
    sock.sendall(b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n")
    _read_until(sock, b"+QUEUED\r\n+QUEUED\r\n")
    sock.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nb")

    def row() -> dict[str, str]:
        listed = lines(me.execute_command("CLIENT", "LIST"))
        return next(f for f in listed if f["id"] != str(me.client_id()))

    wait_until(lambda: row()["qbuf"] != "0", timeout=10, what="the half command to be read")
    found = row()
    assert found["flags"] == "x" and found["multi"] == "2"
    assert found["multi-mem"] == str(len("SET") + 1 + 3 + len("GET") + 1)
    # What is read but not yet parsed into arguments (Redis too keeps only
    # the part after the arguments it has parsed).
    assert 0 < int(found["qbuf"]) <= len(b"*3\r\n$3\r\nSET\r\n$1\r\nb")
    assert int(found["tot-mem"]) >= int(found["qbuf"]) + int(found["multi-mem"])


def _read_until(sock: socket.socket, wanted: bytes) -> None:
    data = b""
    sock.settimeout(10)
    while not data.endswith(wanted):
        chunk = sock.recv(4096)
        if not chunk:
            pytest.fail(f"connection closed after {data!r}")
        data += chunk


def test_subscribed_client_flags_and_lib_fields(serve: Callable[..., Running]) -> None:  # noqa: F811
    running = serve()
    me = running.client()
    listener = running.client()
    listener.execute_command("CLIENT", "SETINFO", "lib-name", "mylib")
    listener.execute_command("CLIENT", "SETINFO", "lib-ver", "1.2")
    pubsub = listener.pubsub()
    pubsub.subscribe("news")
    pubsub.psubscribe("n*")
    wait_until(
        lambda: any(f["flags"] == "P" for f in lines(me.execute_command("CLIENT", "LIST"))),
        timeout=10,
        what="the subscription",
    )
    found = next(f for f in lines(me.execute_command("CLIENT", "LIST")) if f["flags"] == "P")
    assert (found["sub"], found["psub"], found["ssub"]) == ("1", "1", "0")
    by_type = {
        kind: lines(me.execute_command("CLIENT", "LIST", "TYPE", kind))
        for kind in ("normal", "pubsub", "master")
    }
    assert [f["id"] for f in by_type["pubsub"]] == [found["id"]]
    assert [f["id"] for f in by_type["normal"]] == [str(me.client_id())]
    assert by_type["master"] == []
    named = [f for f in lines(me.execute_command("CLIENT", "LIST")) if f["lib-name"]]
    # Ours, and what redis-py sends for itself on a new connection (the pub/sub one).
    assert ("mylib", "1.2") in [(f["lib-name"], f["lib-ver"]) for f in named]
    pubsub.close()


def test_info_reads_the_clients_buffers(serve: Callable[..., Running]) -> None:  # noqa: F811
    running = serve()
    me = running.client()
    sock = running.connect()
    sock.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$100\r\n" + b"x" * 50)  # half a value

    def largest() -> int:
        return int(me.info("clients")["client_recent_max_input_buffer"])

    wait_until(lambda: largest() > 0, timeout=10, what="the half command to be read")
    listed = lines(me.execute_command("CLIENT", "LIST"))
    assert largest() == max(int(f["qbuf"]) for f in listed)
    assert int(me.info("memory")["mem_clients_normal"]) >= largest()


def test_resp3_replies_are_verbatim_text(twin: Twin) -> None:
    """Under RESP3, CLIENT LIST and CLIENT INFO are verbatim strings ("txt"), as Redis's."""
    twin("HELLO", "3")
    twin.same("CLIENT", "LIST", "ID", "999999")
    for argv in (("CLIENT", "INFO"), ("CLIENT", "LIST")):
        ours, theirs = twin(*argv)
        assert ours.split(b"\r\n", 1)[1].startswith(b"txt:id=1 addr=127.0.0.1:1000 ")
        assert theirs.split(b"\r\n", 1)[1].startswith(b"txt:id=")
        assert int(ours[1 : ours.index(b"\r\n")]) == len(ours) - ours.index(b"\r\n") - 4
    twin("HELLO", "2")
    ours, theirs = twin("CLIENT", "INFO")
    assert ours[:1] == theirs[:1] == b"$"


def test_a_reader_that_stops_reading_shows_its_pending_output(
    serve: Callable[..., Running],  # noqa: F811
) -> None:
    """omem counts what waits to be sent to a client that does not read (Redis's output list)."""
    running = serve()
    me = running.client()
    me.set("big", "x" * (1 << 20))
    sock = running.connect(rcvbuf=4096)
    sock.sendall(b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n" * 20)  # 1 MB replies, never read

    def other() -> dict[str, str]:
        listed = lines(me.execute_command("CLIENT", "LIST"))
        return next((f for f in listed if f["id"] != str(me.client_id())), {"omem": "0"})

    wait_until(lambda: int(other()["omem"]) > 1 << 20, timeout=10, what="replies to pile up")
    found = other()
    assert int(found["tot-mem"]) >= int(found["omem"])
    assert "w" in found["events"]  # waiting for the socket to take more
    sock.close()


def test_list_by_id_follows_the_ids_asked_for(twin: Twin) -> None:
    """As Redis's clientCommand: one line per ID asked for, in that order, repeats included."""
    from snapkv.server.client import Client

    other = Client(twin.server, addr="127.0.0.1:1001", laddr="127.0.0.1:6379")
    twin.server.add_client(other)
    me, them = str(twin.snapkv.id), str(other.id)
    reply = twin.server.execute(twin.snapkv, ["CLIENT", "LIST", "ID", them, "999", me, them])
    assert [row["id"] for row in lines(parse(reply))] == [them, me, them]
    # The caller's line (it measures the request's arguments) is made once.
    start = time.monotonic()
    reply = twin.server.execute(twin.snapkv, ["CLIENT", "LIST", "ID", *[me] * 20_000])
    assert time.monotonic() - start < 5  # quadratic, it took minutes
    assert len(lines(parse(reply))) == 20_000
