"""Connection commands: PING ECHO QUIT RESET AUTH HELLO SELECT MONITOR (CLIENT: cmd_client)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from snapkv.server.acl import registry
from snapkv.server.client import REPLY_ON, REPLY_SKIP
from snapkv.server.monitor import start_monitor, stop_monitor
from snapkv.server.pubsub import unsubscribe_all
from snapkv.server.resp.writer import OK, bulk
from snapkv.server.state import REDIS_VERSION
from snapkv.server.table import ERR_SYNTAX, CommandError, command, parse_int

if TYPE_CHECKING:
    from snapkv.server.client import Client

__all__ = ["valid_name"]

_PONG = b"+PONG\r\n"
_WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."
_CONN = "connection"


def valid_name(name: str) -> bool:
    """Redis's ``validateClientAttr``: printable ASCII without spaces (``!`` to ``~``)."""
    # ASCII 0x20-0x7e is exactly what is ASCII and printable; then no space.
    # (C-speed checks: a name can be as long as proto-max-bulk-len.)
    return name.isascii() and name.isprintable() and " " not in name


@command("ping", -1, "fast", group=_CONN, summary="Returns the server's liveliness")
def ping(client: Client, argv: list[str]) -> bytes:
    if len(argv) > 2:
        raise CommandError("ERR wrong number of arguments for 'ping' command")
    if client.resp == 2 and client.subscribed:
        # RESP2's subscribed mode answers in the messages' shape (Redis's pingCommand).
        return b"*2\r\n$4\r\npong\r\n" + (b"$0\r\n\r\n" if len(argv) == 1 else bulk(argv[1]))
    return _PONG if len(argv) == 1 else bulk(argv[1])


@command("echo", 2, "loading stale fast", group=_CONN, summary="Returns the given string")
def echo(client: Client, argv: list[str]) -> bytes:
    return bulk(argv[1])


@command("quit", -1, "noscript loading stale fast noauth allow_busy", group=_CONN)
def quit_(client: Client, argv: list[str]) -> bytes:
    """Reply OK, then close the connection."""
    client.close_after_reply = True
    return OK


@command("reset", 1, "noscript loading stale fast noauth allow_busy", group=_CONN)
def reset(client: Client, argv: list[str]) -> bytes:
    """A fresh connection's state, as Redis 7.0's ``clearClientConnectionState``.

    Out of MONITOR and tracking; keyspace 0; RESP2; the default user, so
    with ``requirepass`` the client must AUTH again; no MULTI, no WATCH; no
    subscription (silently: no unsubscribe messages); no name; NO-EVICT,
    NO-TOUCH and CLIENT REPLY OFF cleared. A pending REPLY SKIP is left to
    the dispatcher, which drops this reply and then ends it, as Redis's
    ``resetClient`` does after the command.
    """
    stop_monitor(client)
    if client.tracking is not None:
        client.tracking.disable(client)
    client.select(0)
    client.set_resp(2)
    registry(client.server).login_default(client)
    client.multi = None
    client.multi_failed = False
    client.unwatch()
    unsubscribe_all(client)
    client.name = ""
    client.no_evict = client.no_touch = False
    if client.reply_mode != REPLY_SKIP:
        client.reply_mode = REPLY_ON
    client.update_plain()
    return b"+RESET\r\n"


@command("monitor", 1, "admin noscript loading stale", group="server")
def monitor(client: Client, argv: list[str]) -> bytes:
    """Stream every command the server runs to this client (see :mod:`snapkv.server.monitor`).

    A second MONITOR gets no reply at all, as Redis's ``monitorCommand``
    returns early for a client already in monitor mode. Inside EXEC it is
    refused: the transaction's client must get one reply per command
    (Redis's ``CLIENT_DENY_BLOCKING``).
    """
    if client.server.store.in_transaction:
        raise CommandError("ERR MONITOR isn't allowed for DENY BLOCKING client")
    if client.monitor:
        return b""
    start_monitor(client)
    return OK


def _check_password(client: Client, user: str, password: str, word: str) -> None:
    """Log ``client`` in as ``user`` (an ACL user), or raise WRONGPASS (logged in ACL LOG)."""
    if not registry(client.server).authenticate(client, user, password, word):
        raise CommandError(_WRONGPASS)


@command("auth", -2, "noscript loading stale fast noauth allow_busy", group=_CONN)
def auth(client: Client, argv: list[str]) -> bytes:
    """AUTH [username] password: as an ACL user (``default`` when none is named)."""
    if len(argv) > 3:
        raise CommandError(ERR_SYNTAX)
    if len(argv) == 2 and registry(client.server).users["default"].nopass:
        raise CommandError(
            "ERR AUTH <password> called without any password configured for the default "
            "user. Are you sure your configuration is correct?"
        )
    _check_password(client, argv[1] if len(argv) == 3 else "default", argv[-1], argv[0])
    return OK


@command("hello", -1, "noscript loading stale fast noauth allow_busy", group=_CONN)
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
        _check_password(client, *credentials, argv[0])
    if not client.authenticated:
        raise CommandError(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise "
            "the HELLO AUTH <user> <pass> option can be used to authenticate the "
            "client and select the RESP protocol version at the same time"
        )
    if name is not None:
        if not valid_name(name):
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


@command("select", 2, "loading stale fast", group=_CONN, summary="Selects a database")
def select(client: Client, argv: list[str]) -> bytes:
    client.select(parse_int(argv[1]))
    return OK
