"""One client as a line of CLIENT LIST / CLIENT INFO: Redis 7.0's ``catClientInfoString``.

Every field redis-server 7.0.15 prints, in its order, then 7.2's
``lib-name`` and ``lib-ver`` (CLIENT SETINFO sets them; 7.0 clients that
split on spaces and ``=`` read them like any other field)::

    id addr laddr fd name age idle flags db sub psub ssub multi qbuf qbuf-free
    argv-mem multi-mem rbs rbp obl oll omem tot-mem events cmd user redir resp
    lib-name lib-ver

The buffers are the connection's own (see :func:`_buffers`): ``qbuf`` the
bytes read but not yet parsed into a command, ``obl``/``oll`` the replies
held for the client (group sync) in bytes and pieces, ``omem`` those plus
what the transport has not sent yet. ``qbuf-free``, ``rbs`` and ``rbp``
describe Redis's own buffer allocation, which asyncio does not expose: 0.
``argv-mem`` is the running command's arguments (the caller's own line),
``multi-mem`` the queued commands' arguments; ``tot-mem`` adds them up.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

from snapkv.server.resp.text import byte_len

if TYPE_CHECKING:
    from snapkv.server.client import Client

__all__ = ["buffers", "client_type", "flags", "info_line"]


def flags(client: Client) -> str:
    """The ``flags=`` letters in Redis's order (``N`` for none)."""
    tracking = client.tracking
    letters = (
        ("O" if client.monitor else "S" if client.replica else "")
        + ("P" if client.subscribed else "")
        + ("x" if client.multi is not None else "")
        + ("b" if client.blocked is not None else "")
        + ("t" if tracking is not None else "")
        + ("R" if tracking is not None and tracking.broken else "")
        + ("B" if tracking is not None and tracking.bcast else "")
        + ("d" if client.dirty_cas else "")
        + ("c" if client.close_after_reply else "")
        + ("e" if client.no_evict else "")
        + ("T" if client.no_touch else "")
    )
    return letters or "N"


def client_type(client: Client) -> str:
    """Redis's ``getClientType`` as CLIENT LIST and CLIENT KILL's TYPE name it:
    ``replica``, ``pubsub`` or ``normal`` (snapkv is never a replica, so never ``master``)."""
    if client.replica and not client.monitor:
        return "replica"
    return "pubsub" if client.subscribed else "normal"


def _connection(client: Client) -> Any:
    """The network layer's connection of ``client``, or None (a script's or a test's client).

    The connection hands the client its own ``close`` as ``Client.kill``;
    that bound method is the one link from a Client to its connection.
    """
    return getattr(client.kill, "__self__", None)


def _buffers(connection: Any) -> tuple[int, int, int, int, int, str]:
    """(fd, qbuf, obl, oll, omem, events) of a connection; zeros without one."""
    if connection is None:
        return -1, 0, 0, 0, 0, ""
    fd = -1
    transport = getattr(connection, "transport", None)
    pending = 0
    if transport is not None:
        with contextlib.suppress(AttributeError, OSError, ValueError):
            sock = transport.get_extra_info("socket")
            fd = sock.fileno() if sock is not None else -1
        with contextlib.suppress(AttributeError, RuntimeError):
            pending = transport.get_write_buffer_size()
    parser = getattr(connection, "parser", None)
    qbuf = int(getattr(parser, "_size", 0) or 0)
    held = getattr(connection, "held", [])
    obl = int(getattr(connection, "held_size", 0) or 0)
    events = ("" if getattr(connection, "paused", False) else "r") + ("w" if pending else "")
    return fd, qbuf, obl, len(held), obl + pending, events


def buffers(client: Client) -> tuple[int, int, int]:
    """(input, output, total) bytes ``client`` holds: ``qbuf``, ``omem`` and ``tot-mem``.

    What INFO clients' ``client_recent_max_*_buffer`` and INFO memory's
    ``mem_clients_normal`` add up (the running command's arguments aside).
    """
    _fd, qbuf, _obl, _oll, omem, _events = _buffers(_connection(client))
    multi_mem = sum(byte_len(arg) for _, queued in client.multi or () for arg in queued)
    return qbuf, omem, qbuf + omem + multi_mem


def _user(client: Client) -> str:
    user = getattr(client, "user", "default")
    return user if isinstance(user, str) else str(getattr(user, "name", user))


def info_line(client: Client, argv: list[str] | None = None) -> str:
    """``client`` as one CLIENT LIST line; ``argv``: the command it is running (the caller's)."""
    now = time.monotonic()
    fd, qbuf, obl, oll, omem, events = _buffers(_connection(client))
    argv_mem = sum(map(byte_len, argv)) if argv else 0
    multi_mem = sum(byte_len(arg) for _, queued in client.multi or () for arg in queued)
    tracking = client.tracking
    redirect = -1 if tracking is None else tracking.redirect
    return (
        f"id={client.id} addr={client.addr} laddr={client.laddr} fd={fd} name={client.name} "
        f"age={int(now - client.created)} idle={int(now - client.last_interaction)} "
        f"flags={flags(client)} db={client.db_index} sub={len(client.channels)} "
        f"psub={len(client.patterns)} ssub={len(client.shard_channels)} "
        f"multi={-1 if client.multi is None else len(client.multi)} "
        f"qbuf={qbuf} qbuf-free=0 argv-mem={argv_mem} multi-mem={multi_mem} rbs=0 rbp=0 "
        f"obl={obl} oll={oll} omem={omem} tot-mem={qbuf + argv_mem + multi_mem + omem} "
        f"events={events} cmd={client.last_command} user={_user(client)} redir={redirect} "
        f"resp={client.resp} lib-name={client.lib_name} lib-ver={client.lib_ver}"
    )
