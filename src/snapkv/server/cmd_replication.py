"""Replication commands: SYNC PSYNC REPLCONF WAIT ROLE REPLICAOF SLAVEOF (``replication.c``).

snapkv is always a primary: a stock redis-server (or valkey-server) started
with ``--replicaof <snapkv host> <port>`` attaches with REPLCONF and PSYNC
and is served by :mod:`snapkv.server.replicas`. ``REPLICAOF NO ONE`` is
``+OK`` (already a primary); ``REPLICAOF host port`` is refused: snapkv
never replicates from a Redis.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from snapkv.server.replicas.link import Link
from snapkv.server.replicas.primary import registry
from snapkv.server.resp.writer import OK
from snapkv.server.table import ERR_SYNTAX, CommandError, command, parse_int, parse_timeout_ms

if TYPE_CHECKING:
    from snapkv.server.client import Client

__all__: list[str] = []

_GROUP = "server"
_NEVER_A_REPLICA = (
    "ERR snapkv is never a replica: REPLICAOF host port is not supported "
    "(attach a Redis replica to snapkv with --replicaof instead)"
)


def _host(addr: str) -> str:
    host, _, _ = addr.rpartition(":")
    return host.strip("[]") or addr


def _attach(client: Client, replid: str | None, offset: int) -> bytes:
    primary = registry(client.server)
    if primary.link_of(client) is not None:
        return b""  # already a replica: Redis ignores a second SYNC
    port, ip, capa = primary.handshakes.pop(client.id, (0, "", set()))
    link = Link(client, ip=ip or _host(client.addr), port=port, capa=capa)
    return primary.attach(client, link, replid, offset)


@command(
    "sync",
    1,
    "admin noscript no_multi",
    group=_GROUP,
    summary="Internal command used for replication",
)
def sync(client: Client, argv: list[str]) -> bytes:
    return _attach(client, None, -1)


@command("psync", -3, "admin noscript no_multi", group=_GROUP, since="2.8.0")
def psync(client: Client, argv: list[str]) -> bytes:
    """PSYNC replid offset: +CONTINUE from the backlog, or +FULLRESYNC and a snapshot."""
    try:
        offset = int(argv[2])
    except ValueError:
        raise CommandError("ERR value is not an integer or out of range") from None
    return _attach(client, argv[1], offset)


@command("replconf", -1, "admin noscript loading stale allow_busy", group=_GROUP, since="3.0.0")
def replconf(client: Client, argv: list[str]) -> bytes:
    """REPLCONF option value ...: the replica's handshake, and its ACKs (which get no reply)."""
    if len(argv) % 2 == 0:
        raise CommandError(ERR_SYNTAX)
    primary = registry(client.server)
    port, ip, capa = primary.handshakes.get(client.id, (0, "", set()))
    for i in range(1, len(argv), 2):
        option, value = argv[i].lower(), argv[i + 1]
        if option == "listening-port":
            port = parse_int(value)
        elif option == "ip-address":
            ip = value
        elif option == "capa":
            capa = capa | {value.lower()}
        elif option == "ack":
            # The replica's offset, once a second and after GETACK: never answered.
            with contextlib.suppress(ValueError):
                primary.acked(client, int(value))
            return b""
        elif option in ("getack", "rdb-only", "rdb-filter-only", "fack"):
            continue
        else:
            raise CommandError(f"ERR Unrecognized REPLCONF option: {argv[i]}")
    if primary.link_of(client) is None:
        primary.handshakes[client.id] = (port, ip, capa)
    return OK


@command("wait", 3, "noscript", group="generic", since="3.0.0")
def wait(client: Client, argv: list[str]) -> bytes:
    """WAIT numreplicas timeout: how many replicas acknowledged every write made so far."""
    count = parse_int(argv[1])
    timeout_ms = parse_timeout_ms(argv[2])
    return registry(client.server).wait(client, count, timeout_ms)


@command("role", 1, "noscript loading stale fast", group=_GROUP, since="2.8.12")
def role(client: Client, argv: list[str]) -> bytes:
    """ROLE: ``master``, the offset, and each online replica's ip, port and acked offset."""
    primary = registry(client.server)
    replicas = [
        [link.ip, str(link.listening_port), str(link.ack_offset)]
        for link in primary.links
        if link.state == "online"
    ]
    return client.encode(["master", primary.offset, replicas])


def _replicaof(client: Client, argv: list[str]) -> bytes:
    if argv[1].lower() == "no" and argv[2].lower() == "one":
        return OK  # already a primary
    parse_int(argv[2])  # Redis reads the port first
    raise CommandError(_NEVER_A_REPLICA)


@command("replicaof", 3, "admin noscript stale", group=_GROUP, since="5.0.0")
def replicaof(client: Client, argv: list[str]) -> bytes:
    return _replicaof(client, argv)


@command("slaveof", 3, "admin noscript stale", group=_GROUP, since="1.0.0")
def slaveof(client: Client, argv: list[str]) -> bytes:
    return _replicaof(client, argv)
