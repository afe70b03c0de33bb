"""Connection commands: PING ECHO QUIT RESET AUTH HELLO SELECT CLIENT."""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable

from snapkv.server.context import (
    ERR_NOT_INT,
    ERR_SYNTAX,
    OK,
    REDIS_VERSION,
    Client,
    Command,
    CommandError,
    Handler,
    command,
    parse_int,
)
from snapkv.server.resp import SimpleString, bulk, integer

__all__ = ["COMMANDS"]

COMMANDS: list[Command] = []

_PONG = b"+PONG\r\n"
_WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."
_FAST = "fast"
_CONN = "connection"


def _valid_name(name: str) -> bool:
    """Redis's ``validateClientAttr``: printable ASCII without spaces (``!`` to ``~``)."""
    return all("!" <= ch <= "~" for ch in name)


@command(COMMANDS, "ping", -1, "fast", group=_CONN, summary="Returns the server's liveliness")
def ping(client: Client, argv: list[str]) -> bytes:
    if len(argv) > 2:
        raise CommandError("ERR wrong number of arguments for 'ping' command")
    return _PONG if len(argv) == 1 else bulk(argv[1])


@command(COMMANDS, "echo", 2, "fast", group=_CONN, summary="Returns the given string")
def echo(client: Client, argv: list[str]) -> bytes:
    return bulk(argv[1])


@command(COMMANDS, "quit", -1, "noscript loading stale fast noauth allow_busy", group=_CONN)
def quit_(client: Client, argv: list[str]) -> bytes:
    """Reply OK, then close the connection."""
    client.close_after_reply = True
    return OK


@command(COMMANDS, "reset", 1, "noscript loading stale fast noauth allow_busy", group=_CONN)
def reset(client: Client, argv: list[str]) -> bytes:
    """Back to a fresh connection's state: no MULTI, no WATCH, keyspace 0, RESP2, no name."""
    client.multi = None
    client.multi_failed = False
    client.unwatch()
    client.select(0)
    client.set_resp(2)
    client.name = ""
    client.authenticated = client.server.config.requirepass is None
    client.update_plain()
    return b"+RESET\r\n"


def _check_password(client: Client, user: str, password: str) -> None:
    """Authenticate ``client`` as Redis's ``default`` user would, or raise WRONGPASS."""
    required = client.server.config.requirepass
    if user != "default":
        raise CommandError(_WRONGPASS)
    if required is not None and not hmac.compare_digest(
        password.encode("utf-8", "surrogateescape"), required.encode("utf-8", "surrogateescape")
    ):
        raise CommandError(_WRONGPASS)
    # Without requirepass the default user is "nopass": any password works.
    client.authenticated = True
    client.update_plain()


@command(COMMANDS, "auth", -2, "noscript loading stale fast noauth allow_busy", group=_CONN)
def auth(client: Client, argv: list[str]) -> bytes:
    """AUTH [username] password."""
    if len(argv) > 3:
        raise CommandError(ERR_SYNTAX)
    if len(argv) == 2 and client.server.config.requirepass is None:
        raise CommandError(
            "ERR AUTH <password> called without any password configured for the default "
            "user. Are you sure your configuration is correct?"
        )
    _check_password(client, argv[1] if len(argv) == 3 else "default", argv[-1])
    return OK


@command(COMMANDS, "hello", -1, "noscript loading stale fast noauth allow_busy", group=_CONN)
def hello(client: Client, argv: list[str]) -> bytes:
    """HELLO [protover [AUTH username password] [SETNAME clientname]]: handshake and protocol."""
    version = client.resp
    if len(argv) >= 2:
        try:
            version = parse_int(argv[1])
        except CommandError:
            raise CommandError("ERR Protocol version is not an integer or out of range") from None
        if version not in (2, 3):
            raise CommandError("NOPROTO unsupported protocol version")
    credentials: tuple[str, str] | None = None
    name: str | None = None
    i = 2
    while i < len(argv):
        more = len(argv) - i - 1
        option = argv[i].lower()
        if option == "auth" and more >= 2:
            credentials = (argv[i + 1], argv[i + 2])
            i += 3
        elif option == "setname" and more >= 1:
            name = argv[i + 1]
            i += 2
        else:
            raise CommandError(f"ERR Syntax error in HELLO option '{argv[i]}'")
    if credentials is not None:
        _check_password(client, *credentials)
    if not client.authenticated:
        raise CommandError(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise "
            "the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the "
            "client and select the RESP protocol version at the same time"
        )
    if name is not None:
        if not _valid_name(name):
            raise CommandError(
                "ERR Client names cannot contain spaces, newlines or special characters."
            )
        client.name = name
    client.set_resp(version)
    return client.encode(
        {
            "server": "redis",
            "version": REDIS_VERSION,
            "proto": version,
            "id": client.id,
            "mode": "standalone",
            "role": "master",
            "modules": [],
        }
    )


@command(COMMANDS, "select", 2, "loading stale fast", group=_CONN, summary="Selects a database")
def select(client: Client, argv: list[str]) -> bytes:
    client.select(parse_int(argv[1]))
    return OK


# ----------------------------------------------------------------------- CLIENT


@command(COMMANDS, "client", -2, "", group=_CONN, summary="A container for client commands")
def client_(client: Client, argv: list[str]) -> bytes:  # pragma: no cover - a container
    raise CommandError(ERR_SYNTAX)


def _sub(
    name: str, arity: int, flags: str = "noscript loading stale"
) -> Callable[[Handler], Handler]:
    return command(COMMANDS, name, arity, flags, group=_CONN, parent="client")


@_sub("id", 2)
def client_id(client: Client, argv: list[str]) -> bytes:
    return integer(client.id)


@_sub("getname", 2)
def client_getname(client: Client, argv: list[str]) -> bytes:
    return client.bulk_or_null(client.name or None)


@_sub("setname", 3)
def client_setname(client: Client, argv: list[str]) -> bytes:
    if not _valid_name(argv[2]):
        raise CommandError(
            "ERR Client names cannot contain spaces, newlines or special characters."
        )
    client.name = argv[2]
    return OK


@_sub("setinfo", 4)
def client_setinfo(client: Client, argv: list[str]) -> bytes:
    attr, value = argv[2].lower(), argv[3]
    if attr not in ("lib-name", "lib-ver"):
        raise CommandError(f"ERR Unrecognized option '{argv[2]}'")
    if not _valid_name(value):
        raise CommandError(f"ERR {attr} cannot contain spaces, newlines or special characters.")
    if attr == "lib-name":
        client.lib_name = value
    else:
        client.lib_ver = value
    return OK


@_sub("info", 2)
def client_info(client: Client, argv: list[str]) -> bytes:
    return bulk(client.info_line() + "\n")


@_sub("list", -2)
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


@_sub("kill", -3, "admin noscript loading stale")
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
    victims = list(server.clients.values())
    skip_me = True
    for i in range(2, len(argv), 2):
        option, value = argv[i].lower(), argv[i + 1]
        if option == "id":
            wanted = parse_int(value, "ERR client-id should be greater than 0")
            if wanted <= 0:
                raise CommandError("ERR client-id should be greater than 0")
            victims = [c for c in victims if c.id == wanted]
        elif option == "addr":
            victims = [c for c in victims if c.addr == value]
        elif option == "laddr":
            victims = [c for c in victims if c.laddr == value]
        elif option == "user":
            if value != "default":
                raise CommandError(f"ERR No such user '{value}'")
        elif option == "type":
            kind = value.lower()
            if kind not in ("normal", "master", "replica", "slave", "pubsub"):
                raise CommandError(f"ERR Unknown client type '{value}'")
            if kind != "normal":
                victims = []
        elif option == "skipme":
            if value.lower() not in ("yes", "no"):
                raise CommandError(ERR_SYNTAX)
            skip_me = value.lower() == "yes"
        elif option == "maxage":
            age = parse_int(value, ERR_NOT_INT)
            victims = [c for c in victims if _age(c) >= age]
        else:
            raise CommandError(ERR_SYNTAX)
    if skip_me:
        victims = [c for c in victims if c is not client]
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


@_sub("no-evict", 3)
def client_no_evict(client: Client, argv: list[str]) -> bytes:
    if argv[2].lower() not in ("on", "off"):
        raise CommandError(ERR_SYNTAX)
    return OK


@_sub("no-touch", 3)
def client_no_touch(client: Client, argv: list[str]) -> bytes:
    if argv[2].lower() not in ("on", "off"):
        raise CommandError(ERR_SYNTAX)
    return OK


@_sub("help", 2, "loading stale")
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
