"""CLIENT and its subcommands (Redis's ``clientCommand`` in ``networking.c``).

Introspection over :attr:`ServerState.clients` (ID GETNAME SETNAME SETINFO
INFO LIST KILL) and the controls a connection has over itself or the
server (REPLY, PAUSE, UNPAUSE, UNBLOCK, NO-EVICT, NO-TOUCH; TRACKING and
its friends are in :mod:`snapkv.server.cmd_tracking`). CLIENT KILL of another
connection calls the ``kill`` the network layer set on its Client; of the
caller's own connection, it replies first and then closes (as Redis).
SETINFO and NO-TOUCH are Redis 7.2's, accepted for the clients that send them.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

# CLIENT TRACKING and its friends are declared there, imported with CLIENT.
import snapkv.server.cmd_tracking  # noqa: F401
from snapkv.server.acl import registry
from snapkv.server.blocking import unblock
from snapkv.server.client import REPLY_OFF, REPLY_ON, REPLY_SKIP_NEXT
from snapkv.server.client_info import client_type, info_line
from snapkv.server.cmd_connection import valid_name
from snapkv.server.resp.text import to_bytes
from snapkv.server.resp.writer import OK, SimpleString, bulk, integer
from snapkv.server.table import (
    ERR_SYNTAX,
    CommandError,
    command,
    parse_int,
    parse_timeout_ms,
)

if TYPE_CHECKING:
    from snapkv.server.client import Client

__all__: list[str] = []

_CONN = "connection"
_SUB = "noscript loading stale"
_ADMIN = "admin noscript loading stale"
_ZERO, _ONE = integer(0), integer(1)
_LLONG_MAX = (1 << 63) - 1


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
    return _text(client, info_line(client, argv) + "\n")


@command("client|list", -2, _ADMIN, group=_CONN)
def client_list(client: Client, argv: list[str]) -> bytes:
    """CLIENT LIST [TYPE normal|master|replica|pubsub] [ID id ...]."""
    clients = list(client.server.clients.values())
    if len(argv) > 2:
        option = argv[2].lower()
        if option == "type" and len(argv) == 4:
            kind = argv[3].lower()
            if kind not in ("normal", "master", "replica", "slave", "pubsub"):
                raise CommandError(f"ERR Unknown client type '{argv[3]}'")
            kind = "replica" if kind == "slave" else kind
            clients = [c for c in clients if client_type(c) == kind]
        elif option == "id" and len(argv) >= 4:
            # As Redis: one line per ID asked for, in that order (0 or less: no such client).
            by_id = {c.id: c for c in clients}
            ids = [parse_int(text, "ERR Invalid client ID") for text in argv[3:]]
            clients = [by_id[i] for i in ids if i in by_id]
        else:
            raise CommandError(ERR_SYNTAX)
    # Each client's line made once, however often the IDs name it (the
    # caller's measures its arguments: once per line would be quadratic).
    made: dict[int, str] = {}
    for listed in clients:
        if id(listed) not in made:
            made[id(listed)] = info_line(listed, argv if listed is client else None) + "\n"
    return _text(client, "".join(made[id(c)] for c in clients))


def _text(client: Client, text: str) -> bytes:
    """CLIENT LIST's and INFO's reply: a bulk string, in RESP3 a verbatim one ("txt"), as Redis."""
    if client.resp == 3:
        data = to_bytes(text)
        return b"=%d\r\ntxt:%s\r\n" % (len(data) + 4, data)
    return bulk(text)


@command("client|kill", -3, _ADMIN, group=_CONN)
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
    skip_me, kind = True, None
    wanted_id: int | None = None
    addr: str | None = None
    laddr: str | None = None
    user: str | None = None
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
            if value not in registry(server).users:
                raise CommandError(f"ERR No such user '{value}'")
            user = value
        elif option == "type":
            kind = value.lower()
            if kind not in ("normal", "master", "replica", "slave", "pubsub"):
                raise CommandError(f"ERR Unknown client type '{value}'")
            kind = "replica" if kind == "slave" else kind
        elif option == "skipme":
            if value.lower() not in ("yes", "no"):
                raise CommandError(ERR_SYNTAX)
            skip_me = value.lower() == "yes"
        else:  # MAXAGE too: Redis 7.4's, a syntax error in 7.0
            raise CommandError(ERR_SYNTAX)
    victims = [
        c
        for c in server.clients.values()
        if (kind is None or client_type(c) == kind)
        and (user is None or c.user == user)
        and (wanted_id is None or c.id == wanted_id)
        and (addr is None or c.addr == addr)
        and (laddr is None or c.laddr == laddr)
        and not (skip_me and c is client)
    ]
    _kill(client, victims)
    return integer(len(victims))


def _kill(me: Client, victims: list[Client]) -> None:
    for victim in victims:
        if victim is me:
            me.close_after_reply = True  # reply first, as Redis does
        else:
            victim.kill()


@command("client|no-evict", 3, _ADMIN, group=_CONN)
def client_no_evict(client: Client, argv: list[str]) -> bytes:
    """CLIENT NO-EVICT ON|OFF: kept as a flag (``e`` in CLIENT LIST); nothing is ever evicted."""
    client.no_evict = _on_off(argv[2])
    return OK


@command("client|no-touch", 3, _SUB, group=_CONN)
def client_no_touch(client: Client, argv: list[str]) -> bytes:
    """CLIENT NO-TOUCH ON|OFF (Redis 7.2): a flag (``T``); snapkv keeps no access times to spare."""
    client.no_touch = _on_off(argv[2])
    return OK


def _on_off(text: str) -> bool:
    value = text.lower()
    if value not in ("on", "off"):
        raise CommandError(ERR_SYNTAX)
    return value == "on"


@command("client|reply", 3, _SUB, group=_CONN)
def client_reply(client: Client, argv: list[str]) -> bytes:
    """CLIENT REPLY ON|OFF|SKIP: the dispatcher drops replies by ``client.reply_mode``.

    OFF and SKIP answer nothing themselves; SKIP drops the reply of the one
    command after it (and is ignored under OFF, as Redis's); ON answers OK.
    """
    mode = argv[2].lower()
    if mode == "on":
        client.reply_mode = REPLY_ON
        client.update_plain()
        return OK
    if mode == "off":
        client.reply_mode = REPLY_OFF
    elif mode == "skip":
        if client.reply_mode != REPLY_OFF:
            client.reply_mode = REPLY_SKIP_NEXT
    else:
        raise CommandError(ERR_SYNTAX)
    client.update_plain()
    return b""


@command("client|pause", -3, _ADMIN, group=_CONN)
def client_pause(client: Client, argv: list[str]) -> bytes:
    """CLIENT PAUSE milliseconds [WRITE|ALL]: hold other clients' commands (``ServerState.pause``).

    As Redis's: the mode is checked before the timeout; a pause never
    shortens one in force, and ALL wins over WRITE (both in ``pause``).
    """
    if len(argv) > 4:
        raise CommandError(_subcommand_syntax(argv[1]))
    mode = "all"
    if len(argv) == 4:
        mode = argv[3].lower()
        if mode not in ("write", "all"):
            raise CommandError("ERR CLIENT PAUSE mode must be WRITE or ALL")
    milliseconds = parse_timeout_ms(argv[2])
    if milliseconds > _LLONG_MAX - int(time.time() * 1000):
        # Redis 7.0 adds the clock to the timeout unchecked: the end wraps
        # into the past and nothing is held (7.2 answers an error instead).
        milliseconds = 0
    client.server.pause(mode, milliseconds / 1000)
    return OK


@command("client|unpause", 2, _ADMIN, group=_CONN)
def client_unpause(client: Client, argv: list[str]) -> bytes:
    """End the pause: the held commands run, in the order they came."""
    client.server.unpause()
    return OK


@command("client|unblock", -3, _ADMIN, group=_CONN)
def client_unblock(client: Client, argv: list[str]) -> bytes:
    """CLIENT UNBLOCK id [TIMEOUT|ERROR]: end another client's wait on keys; 1 if it waited.

    TIMEOUT answers it as if its timeout passed (BLPOP's null), ERROR with
    ``-UNBLOCKED``. Only a wait that ``Blocked.unblockable`` allows (keys,
    WAIT): a command held by CLIENT PAUSE or a busy script's caller stays.
    """
    if len(argv) > 4:
        raise CommandError(_subcommand_syntax(argv[1]))
    as_error = False
    if len(argv) == 4:
        reason = argv[3].lower()
        if reason not in ("timeout", "error"):
            raise CommandError("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
        as_error = reason == "error"
    return _ONE if unblock(client.server, parse_int(argv[2]), as_error) else _ZERO


def _subcommand_syntax(name: str) -> str:
    """Redis's ``addReplySubcommandSyntaxError`` (arity passed, the argument count did not)."""
    return f"ERR unknown subcommand or wrong number of arguments for '{name}'. Try CLIENT HELP."


#: Redis 7.0's CLIENT HELP, with 7.2's SETINFO and NO-TOUCH (which snapkv accepts).
_HELP = (
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CACHING (YES|NO)",
    "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
    "GETREDIR",
    "    Return the client ID we are redirecting to when tracking is enabled.",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Suspend all, or just write, clients for <timeout> milliseconds.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "SETINFO <option> <value>",
    "    Set client meta attr. Options are:",
    "    * LIB-NAME: the client lib name.",
    "    * LIB-VER: the client lib version.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    Unblock the specified blocked client.",
    "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    "         [OPTIN] [OPTOUT] [NOLOOP]",
    "    Control server assisted client side caching.",
    "TRACKINGINFO",
    "    Report tracking status for the current connection.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "NO-TOUCH (ON|OFF)",
    "    Will not touch LRU/LFU stats when this mode is on.",
    "HELP",
    "    Prints this help.",
)


@command("client|help", 2, "loading stale", group=_CONN)
def client_help(client: Client, argv: list[str]) -> bytes:
    return client.encode([SimpleString(line) for line in _HELP])
