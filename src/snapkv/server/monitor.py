"""MONITOR's feed: every command the server runs, as Redis's ``replicationFeedMonitors`` prints it.

A line is ``+<seconds>.<microseconds> [<db> <client>] "arg" "arg"...``:
the client is its address or ``lua`` for a script's ``redis.call`` (the
server listens on TCP only, so Redis's ``unix:<path>`` never occurs); each
argument is quoted as ``sdscatrepr`` quotes it (``\\n``, ``\\r``, ``\\t``,
``\\a``, ``\\b``, ``\\\\``, ``\\"`` and ``\\xNN`` for other bytes outside
printable ASCII). The dispatcher calls :func:`feed_monitors` after each
command it runs (``call()``), skipping commands flagged ``skip_monitor`` or
``admin``, as Redis 7.0 does; the keyspace shown is the one selected
*after* the command (``SELECT 3`` is shown in keyspace 3), and the commands
EXEC ran come before the EXEC, each fed when it ends. The script commands
(EVAL, EVALSHA, FCALL and their ``_RO`` forms) are flagged ``skip_monitor``
and feed themselves first, so their ``lua`` calls follow them (Redis's
``evalCommand``).

Passwords never reach a monitor: Redis 7.0's AUTH and HELLO replace them
with ``(redacted)`` as they parse (``redactClientCommandArgument``), so
:func:`redact` follows their parsing order: a HELLO refused before its
AUTH option is read (an unsupported protocol, a syntax error before it)
shows its arguments as they came, exactly as redis-server does.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from snapkv.server.client import REPLY_OFF, REPLY_SKIP
from snapkv.server.resp.reader import string2ll
from snapkv.server.resp.text import to_bytes

if TYPE_CHECKING:
    from snapkv.server.client import Client
    from snapkv.server.state import ServerState

__all__ = ["feed_monitors", "redact", "repr_arg", "start_monitor", "stop_monitor"]

_ESCAPES = {
    ord("\\"): b"\\\\",
    ord('"'): b'\\"',
    ord("\n"): b"\\n",
    ord("\r"): b"\\r",
    ord("\t"): b"\\t",
    7: b"\\a",
    8: b"\\b",
}
#: Each byte as ``sdscatrepr`` writes it.
_REPR = [_ESCAPES.get(b, bytes([b]) if 32 <= b < 127 else b"\\x%02x" % b) for b in range(256)]
_REDACTED = b'"(redacted)"'


def repr_arg(arg: str) -> bytes:
    """``arg`` quoted as Redis's ``sdscatrepr`` (its wire bytes, escaped)."""
    raw = to_bytes(arg)
    if raw.isascii() and raw.isalnum():
        return b'"' + raw + b'"'
    return b'"' + b"".join([_REPR[b] for b in raw]) + b'"'


def redact(argv: list[str]) -> set[int]:
    """The positions of ``argv`` Redis 7.0 shows as ``(redacted)``: AUTH's and HELLO's credentials.

    AUTH redacts every argument after its name (``authCommand`` does it
    before checking anything but the arity). HELLO redacts the two values
    of an ``AUTH`` option when its loop reaches it: only after the protocol
    version parsed and was 2 or 3, and only if no option before it was a
    syntax error (``helloCommand`` stops at the first).
    """
    name = argv[0].lower()
    if name == "auth":
        return set(range(1, len(argv))) if len(argv) <= 3 else set()
    if name != "hello" or len(argv) < 2:
        return set()
    version = string2ll(to_bytes(argv[1])) if argv[1].isascii() else None
    if version not in (2, 3):
        return set()
    hidden: set[int] = set()
    i = 2
    while i < len(argv):
        more = len(argv) - i - 1
        option = argv[i].lower()
        if option == "auth" and more >= 2:
            hidden.update((i + 1, i + 2))
            i += 3
        elif option == "setname" and more >= 1:
            i += 2
        else:
            break
    return hidden


def feed_monitors(server: ServerState, client: Client, argv: list[str]) -> None:
    """Push ``argv`` (run by ``client``) to every MONITOR client (itself included, as Redis).

    A monitor under CLIENT REPLY OFF or SKIP gets nothing: a MONITOR line
    is a reply in Redis (``addReply``), not a push that passes the reply mode.
    """
    now = time.time()
    origin = b"lua" if client.scripting else to_bytes(client.addr)
    hidden = redact(argv) if argv[0][:1] in "aAhH" else ()
    line = b"+%d.%06d [%d %s] %s\r\n" % (
        int(now),
        int(now * 1_000_000) % 1_000_000,
        client.db_index,
        origin,
        b" ".join([_REDACTED if i in hidden else repr_arg(arg) for i, arg in enumerate(argv)]),
    )
    for monitor in server.monitors:
        if monitor.reply_mode in (REPLY_OFF, REPLY_SKIP):
            continue
        if monitor is client and server.threadsafe_call is not None:
            # Its own command (PING, CLIENT ...): Redis feeds after the reply
            # is queued, so the line follows it (the event loop's next turn).
            monitor.push_after(line)
        else:
            monitor.push(line)


def start_monitor(client: Client) -> None:
    """Make ``client`` a monitor (MONITOR): fed from the next command on."""
    server = client.server
    if stop_monitor not in server.client_gone:
        # Kept once added: remove_client iterates this list while calling it.
        server.client_gone.append(stop_monitor)
    client.monitor = True
    server.monitors.append(client)
    server.update_gate()


def stop_monitor(client: Client) -> None:
    """``client`` is no monitor any more (RESET, a disconnect); nothing if it was none.

    The last monitor gone, the dispatcher leaves its checked path
    (``update_gate``): a server nobody monitors pays nothing per command.
    """
    if not client.monitor:
        return
    server = client.server
    client.monitor = False
    if client in server.monitors:
        server.monitors.remove(client)
    server.update_gate()
