"""CLIENT and its subcommands: ID GETNAME SETNAME SETINFO INFO LIST KILL NO-EVICT NO-TOUCH.

Redis keeps these with the connection (``networking.c``); here they are
introspection over :attr:`ServerState.clients`. CLIENT KILL of another
connection calls the ``kill`` the network layer set on its Client; of the
caller's own connection, it replies first and then closes (as Redis).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from snapkv.server.cmd_connection import valid_name
from snapkv.server.resp.writer import OK, SimpleString, bulk, integer
from snapkv.server.table import ERR_NOT_INT, ERR_SYNTAX, CommandError, command, parse_int

if TYPE_CHECKING:
    from snapkv.server.client import Client

__all__: list[str] = []

_CONN = "connection"
_SUB = "noscript loading stale"


@command("client|id", 2, _SUB, group=_CONN)
def client_id(client: Client, argv: list[str]) -> bytes:
    return integer(client.id)


@command("client|getname", 2, _SUB, group=_CONN)
def client_getname(client: Client, argv: list[str]) -> bytes:
    return client.bulk_or_null(client.name or None)


@command("client|setname", 3, _SUB, group=_CONN)
def client_setname(client: Client, argv: list[str]) -> bytes:
    if not valid_name(argv[2]):
        raise CommandError(
            "ERR Client names cannot contain spaces, newlines or special characters."
        )
    client.name = argv[2]
    return OK


@command("client|setinfo", 4, _SUB, group=_CONN)
def client_setinfo(client: Client, argv: list[str]) -> bytes:
    attr, value = argv[2].lower(), argv[3]
    if attr not in ("lib-name", "lib-ver"):
        raise CommandError(f"ERR Unrecognized option '{argv[2]}'")
    if not valid_name(value):
        raise CommandError(f"ERR {attr} cannot contain spaces, newlines or special characters.")
    if attr == "lib-name":
        client.lib_name = value
    else:
        client.lib_ver = value
    return OK


@command("client|info", 2, _SUB, group=_CONN)
def client_info(client: Client, argv: list[str]) -> bytes:
    return bulk(client.info_line() + "\n")


@command("client|list", -2, _SUB, group=_CONN)
def client_list(client: Client, argv: list[str]) -> bytes:
    """CLIENT LIST [TYPE normal|master|replica|pubsub] [ID id ...]."""
    clients = list(client.server.clients.values())
    if len(argv) > 2:
        option = argv[2].lower()
        if option == "type" and len(argv) == 4:
            kind = argv[3].lower()
            if kind not in ("normal", "master", "replica", "slave", "pubsub"):
                raise CommandError(f"ERR Unknown client type '{argv[3]}'")
            if kind != "normal":
                clients = []
        elif option == "id" and len(argv) >= 4:
            ids = set()
            for text in argv[3:]:
                value = parse_int(text, "ERR Invalid client ID")
                if value <= 0:
                    raise CommandError("ERR Invalid client ID")
                ids.add(value)
            clients = [c for c in clients if c.id in ids]
        else:
            raise CommandError(ERR_SYNTAX)
    return bulk("".join(c.info_line() + "\n" for c in clients))


@command("client|kill", -3, "admin noscript loading stale", group=_CONN)
def client_kill(client: Client, argv: list[str]) -> bytes:
    """CLIENT KILL addr:port, or CLIENT KILL <filter> <value> ... (a count)."""
    server = client.server
    if len(argv) == 3:  # the old form: one address, OK or an error
        victims = [c for c in server.clients.values() if c.addr == argv[2]]
        if not victims:
            raise CommandError("ERR No such client")
        _kill(client, victims)
        return OK
    if len(argv) % 2:
        raise CommandError(ERR_SYNTAX)
    # As Redis, the last value of each filter counts, and the clients are
    # looked at once, however many filters the request repeats.
    skip_me, normal = True, True
    wanted_id: int | None = None
    addr: str | None = None
    laddr: str | None = None
    max_age: int | None = None
    for i in range(2, len(argv), 2):
        option, value = argv[i].lower(), argv[i + 1]
        if option == "id":
            wanted_id = parse_int(value, "ERR client-id should be greater than 0")
            if wanted_id <= 0:
                raise CommandError("ERR client-id should be greater than 0")
        elif option == "addr":
            addr = value
        elif option == "laddr":
            laddr = value
        elif option == "user":
            if value != "default":
                raise CommandError(f"ERR No such user '{value}'")
        elif option == "type":
            kind = value.lower()
            if kind not in ("normal", "master", "replica", "slave", "pubsub"):
                raise CommandError(f"ERR Unknown client type '{value}'")
            normal = kind == "normal"
        elif option == "skipme":
            if value.lower() not in ("yes", "no"):
                raise CommandError(ERR_SYNTAX)
            skip_me = value.lower() == "yes"
        elif option == "maxage":
            max_age = parse_int(value, ERR_NOT_INT)
        else:
            raise CommandError(ERR_SYNTAX)
    victims = [
        c
        for c in server.clients.values()
        if normal
        and (wanted_id is None or c.id == wanted_id)
        and (addr is None or c.addr == addr)
        and (laddr is None or c.laddr == laddr)
        and (max_age is None or _age(c) >= max_age)
        and not (skip_me and c is client)
    ]
    _kill(client, victims)
    return integer(len(victims))


def _age(client: Client) -> int:
    return int(time.monotonic() - client.created)


def _kill(me: Client, victims: list[Client]) -> None:
    for victim in victims:
        if victim is me:
            me.close_after_reply = True  # reply first, as Redis does
        else:
            victim.kill()


@command("client|no-evict", 3, _SUB, group=_CONN)
def client_no_evict(client: Client, argv: list[str]) -> bytes:
    if argv[2].lower() not in ("on", "off"):
        raise CommandError(ERR_SYNTAX)
    return OK


@command("client|no-touch", 3, _SUB, group=_CONN)
def client_no_touch(client: Client, argv: list[str]) -> bytes:
    if argv[2].lower() not in ("on", "off"):
        raise CommandError(ERR_SYNTAX)
    return OK


@command("client|help", 2, "loading stale", group=_CONN)
def client_help(client: Client, argv: list[str]) -> bytes:
    return client.encode(
        [
            SimpleString(line)
            for line in (
                "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "ID",
                "GETNAME",
                "SETNAME <name>",
                "SETINFO <LIB-NAME|LIB-VER> <value>",
                "INFO",
                "LIST [TYPE <type>] [ID <id> [<id> ...]]",
                "KILL <ip:port> | <option> <value> [<option> <value> ...]",
                "HELP",
            )
        ]
    )
