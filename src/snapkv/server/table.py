"""The command schema: what a command is, how it is declared, and the table built from it.

Every command is declared the same way, once, next to its handler in its
family module, with the :func:`command` decorator (Redis declares each one
in a ``src/commands/*.json`` file and generates its table from them)::

    @command("get", 2, "readonly fast", keys=(1, 1, 1), group="string")
    def get(client: Client, argv: list[str]) -> bytes: ...

    @command("config|get", -3, "admin noscript loading stale", group="server")
    def config_get(client: Client, argv: list[str]) -> bytes: ...

A handler declared under two names (DEL and UNLINK) carries two decorators.
A subcommand is named ``container|sub``; the container itself (CONFIG,
CLIENT, ...) is implied by its subcommands, as Redis's container files name
no function: :func:`build_table` makes it with Redis's arity -2, unless the
container is a command of its own (COMMAND with no subcommand lists every
command).

A handler is ``handler(client, argv) -> bytes``: ``argv`` is the request
(``argv[0]`` the command name as sent), the result the encoded reply (built
with :mod:`snapkv.server.resp.writer`). A handler that refuses raises
:class:`CommandError` with Redis's text; :func:`parse_int` parses integer
arguments as Redis does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Final

from snapkv.server.resp.reader import string2ll
from snapkv.server.resp.writer import error

if TYPE_CHECKING:
    from snapkv.server.client import Client

__all__ = [
    "COMMANDS",
    "ERROR_CODES_MAX",
    "ERR_DB_RANGE",
    "ERR_NOT_INT",
    "ERR_SYNTAX",
    "RANDOM_DRAW_MAX",
    "SLOWLOG_SLOWER_THAN",
    "Command",
    "CommandError",
    "ErrorStats",
    "Handler",
    "SlowLog",
    "build_table",
    "check_random_draw",
    "command",
    "numkeys_at",
    "parse_int",
]

ERR_SYNTAX: Final = "ERR syntax error"
ERR_NOT_INT: Final = "ERR value is not an integer or out of range"
ERR_DB_RANGE: Final = "ERR DB index is out of range"
#: The most elements SRANDMEMBER, HRANDFIELD and ZRANDMEMBER draw with
#: repetition (a negative count) in one reply. Redis streams any count into
#: the client's unbounded output buffer; a server that builds its reply
#: first would stall every client on ``SRANDMEMBER s -9223372036854775807``,
#: so a larger count is refused with Redis's own range error (about 0.5 s
#: of drawing at this bound).
RANDOM_DRAW_MAX: Final = 1 << 20

Handler = Callable[["Client", list[str]], bytes]

#: Redis's flags (``src/commands/*.json`` ``command_flags``, lower case) a declaration may use.
FLAGS: Final = frozenset(
    {
        "admin",
        "allow_busy",
        "blocking",
        "denyoom",
        "fast",
        "loading",
        "may_replicate",
        "no_mandatory_keys",
        "noauth",
        "no_multi",
        "noscript",
        "pubsub",
        "readonly",
        "skip_monitor",
        "skip_slowlog",
        "stale",
        "write",
    }
)


class CommandError(Exception):
    """A handler's refusal: the reply is ``-<message>`` (the message starts with its code)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.reply = error(message)


def check_random_draw(count: int) -> None:
    """Refuse a draw with repetition over :data:`RANDOM_DRAW_MAX`: ``ERR value is out of range``."""
    if count < -RANDOM_DRAW_MAX:
        raise CommandError("ERR value is out of range")


def parse_int(text: str, message: str = ERR_NOT_INT) -> int:
    """Parse a 64-bit integer argument exactly as Redis's ``string2ll``; else CommandError."""
    if text.isascii():
        value = string2ll(text.encode())
        if value is not None:
            return value
    raise CommandError(message)


def parse_timeout_ms(text: str) -> int:
    """A timeout in whole milliseconds (XREAD BLOCK, CLIENT PAUSE), as Redis's
    ``getTimeoutFromObjectOrReply`` with ``UNIT_MILLISECONDS``; else CommandError."""
    milliseconds = parse_int(text, "ERR timeout is not an integer or out of range")
    if milliseconds < 0:
        raise CommandError("ERR timeout is negative")
    return milliseconds


@dataclass(slots=True)
class Command:
    """One entry of the command table, as Redis declares it in ``src/commands/*.json``.

    ``arity`` follows Redis: ``n > 0`` means exactly ``n`` arguments
    (the name included), ``-n`` at least ``n``. ``first_key``, ``last_key``
    and ``step`` locate the key arguments (``last_key`` -1: to the end), for
    COMMAND INFO and for WATCH invalidation. ``flags`` are Redis's
    (``write``, ``readonly``, ``fast``, ``noauth``, ``no_multi``, ...).
    """

    name: str
    arity: int
    flags: frozenset[str]
    handler: Handler
    first_key: int = 0
    last_key: int = 0
    step: int = 0
    group: str = "generic"
    summary: str = ""
    since: str = "1.0.0"
    subcommands: dict[str, Command] | None = None
    #: The container's name for a subcommand (``config`` for ``config|get``).
    parent: str | None = None
    #: Redis's ``getkeys_proc`` for a command whose keys move (``movablekeys``:
    #: LMPOP's ``numkeys``, SORT's STORE): the key arguments of a request.
    find_keys: Callable[[list[str]], list[str]] | None = None
    #: ``get``, or ``config|get`` for a subcommand.
    full_name: str = field(init=False)
    min_args: int = field(init=False)
    max_args: int = field(init=False)
    write: bool = field(init=False)
    noauth: bool = field(init=False)
    #: Refused inside MULTI (Redis's ``CMD_NO_MULTI``: SAVE, SHUTDOWN).
    no_multi: bool = field(init=False)
    #: Never in the slow log (Redis's ``CMD_SKIP_SLOWLOG``: EXEC, whose commands are).
    skip_slowlog: bool = field(init=False)
    #: Reads keys (Redis's ``CMD_READONLY``).
    readonly: bool = field(init=False)
    #: Runs while a script is busy (Redis's ``CMD_ALLOW_BUSY``: SCRIPT KILL, ...).
    allow_busy: bool = field(init=False)
    #: Never shown to MONITOR (Redis's ``CMD_SKIP_MONITOR`` and ``CMD_ADMIN``).
    skip_monitor: bool = field(init=False)
    #: Refused inside a script (Redis's ``CMD_NOSCRIPT``).
    noscript: bool = field(init=False)
    #: Held by CLIENT PAUSE WRITE like a write (Redis's ``CMD_WRITE | CMD_MAY_REPLICATE``).
    pausable: bool = field(init=False)
    # INFO commandstats (Redis's ``redisCommand`` counters), counted by the
    # dispatcher: a table's commands are its own copies (see build_table).
    #: Times the handler ran.
    calls: int = field(init=False, default=0)
    #: Seconds spent in the handler, over all calls.
    seconds: float = field(init=False, default=0.0)
    #: Refused before running (arity, NOAUTH, MISCONF, ...).
    rejected_calls: int = field(init=False, default=0)
    #: Ran and answered an error.
    failed_calls: int = field(init=False, default=0)
    #: Seconds of calls not yet counted in its latency histogram (server/latency.py).
    samples: list[float] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.full_name = f"{self.parent}|{self.name}" if self.parent else self.name
        self.min_args = abs(self.arity)
        self.max_args = self.arity if self.arity > 0 else 1 << 62
        self.write = "write" in self.flags
        self.noauth = "noauth" in self.flags
        self.no_multi = "no_multi" in self.flags
        self.skip_slowlog = "skip_slowlog" in self.flags
        self.allow_busy = "allow_busy" in self.flags
        self.readonly = "readonly" in self.flags
        self.skip_monitor = "skip_monitor" in self.flags or "admin" in self.flags
        self.noscript = "noscript" in self.flags
        self.pausable = self.write or "may_replicate" in self.flags

    def keys(self, argv: list[str]) -> list[str]:
        """The key arguments of ``argv``, by the key positions (or ``find_keys``)."""
        if self.find_keys is not None:
            return self.find_keys(argv)
        if not self.first_key:
            return []
        last = self.last_key if self.last_key >= 0 else len(argv) + self.last_key
        return argv[self.first_key : last + 1 : self.step or 1]


#: Every declared command and subcommand, in declaration order (filled on import
#: of the family modules; :mod:`snapkv.server.dispatch` imports them all).
COMMANDS: list[Command] = []


def numkeys_at(index: int, *, before: int = 0) -> Callable[[list[str]], list[str]]:
    """``find_keys`` for ``... numkeys key [key ...]``: ``argv[index]`` counts the keys after it.

    ``before`` more fixed key positions precede it (ZUNIONSTORE's destination
    is ``argv[1]``: ``numkeys_at(2, before=1)``). A malformed count finds
    the fixed keys only; the handler refuses the request with Redis's error.
    """

    def find(argv: list[str]) -> list[str]:
        fixed = argv[1 : 1 + before]
        try:
            count = int(argv[index])
        except (ValueError, IndexError):
            return fixed
        if count <= 0:
            return fixed
        return fixed + argv[index + 1 : index + 1 + count]

    return find


def command(
    name: str,
    arity: int,
    flags: str = "",
    *,
    keys: tuple[int, int, int] = (0, 0, 0),
    group: str = "generic",
    summary: str = "",
    since: str = "1.0.0",
    find_keys: Callable[[list[str]], list[str]] | None = None,
) -> Callable[[Handler], Handler]:
    """Declare the decorated handler as command ``name`` (``container|sub`` for a subcommand).

    :param arity: Redis's arity (see :class:`Command`).
    :param flags: Redis's flags, space-separated (see :data:`FLAGS`).
    :param keys: ``(first, last, step)`` key positions.
    :param find_keys: for a command whose keys move (a ``numkeys`` argument,
        an optional STORE key): the key arguments of a request, as Redis's
        ``getkeys_proc``; see :func:`numkeys_at`. WATCH invalidation uses them.
    :raises ValueError: ``name`` is declared twice, or a flag is unknown.
    """
    parent, _, sub = name.rpartition("|")
    flag_set = frozenset(flags.split())
    if flag_set - FLAGS:
        raise ValueError(f"unknown flags for {name}: {sorted(flag_set - FLAGS)}")
    if name != name.lower() or any(cmd.full_name == name for cmd in COMMANDS):
        raise ValueError(f"command {name!r} is declared twice or not in lower case")

    def declare(handler: Handler) -> Handler:
        COMMANDS.append(
            Command(
                sub,
                arity,
                flag_set,
                handler,
                *keys,
                group=group,
                summary=summary,
                since=since,
                parent=parent or None,
                find_keys=find_keys,
            )
        )
        return handler

    return declare


def _container_handler(client: Client, argv: list[str]) -> bytes:  # pragma: no cover
    raise CommandError(ERR_SYNTAX)  # the dispatcher always resolves a subcommand first


def build_table(commands: Iterable[Command]) -> dict[str, Command]:
    """Name -> Command, with subcommands attached to their containers.

    Each Command is a copy of its declaration, so the counters INFO
    commandstats reports belong to this table's server alone. A container
    that is not a command of its own is made here: arity -2, no flags, the
    group of its subcommands. Each name is entered lower-case
    (what lookups fall back to) and upper-case (what clients usually send),
    so most lookups hit at once.
    """
    table: dict[str, Command] = {}
    subs: dict[str, dict[str, Command]] = {}
    for declared in commands:
        cmd = replace(declared)
        if cmd.parent is None:
            table[cmd.name] = cmd
        else:
            subs.setdefault(cmd.parent, {})[cmd.name] = cmd
    for parent, children in subs.items():
        container = table.get(parent)
        if container is None:
            group = next(iter(children.values())).group
            container = table[parent] = Command(
                parent,
                -2,
                frozenset(),
                _container_handler,
                group=group,
                summary=f"A container for {parent} commands",
            )
        container.subcommands = {}
        for name, child in children.items():
            container.subcommands[name] = child
            container.subcommands[name.upper()] = child
    for name in list(table):
        table[name.upper()] = table[name]
    return table


#: Distinct error codes INFO errorstats tracks (Redis 7.2's ``ERROR_STATS_NUMBER``).
ERROR_CODES_MAX: Final = 128


@dataclass(slots=True)
class ErrorStats:
    """Error replies by code, for INFO errorstats (Redis's ``server.errors``).

    The code is an error's first word (``ERR``, ``WRONGTYPE``, ``NOSCRIPT``,
    ...), read as Redis's ``afterErrorReply`` does: within its first 32
    bytes, else ``ERR``. At most :data:`ERROR_CODES_MAX` codes are kept;
    replies with a further code still count in ``total``.
    """

    #: Every error reply (Redis's ``total_error_replies``).
    total: int = 0
    #: Code -> replies.
    codes: dict[str, int] = field(default_factory=dict)

    def count(self, reply: bytes) -> None:
        """Count the error reply ``reply`` (``-CODE text\\r\\n``)."""
        self.total += 1
        space = reply.find(b" ", 0, 32)
        code = reply[1:space].decode("ascii", "replace") if space > 1 else "ERR"
        codes = self.codes
        if code in codes or len(codes) < ERROR_CODES_MAX:
            codes[code] = codes.get(code, 0) + 1

    def reset(self) -> None:
        """CONFIG RESETSTAT."""
        self.total = 0
        self.codes.clear()


#: Redis's defaults, fixed here: ``slowlog-log-slower-than`` (10 ms) and ``slowlog-max-len``.
SLOWLOG_SLOWER_THAN: Final = 0.010
SLOWLOG_MAX_LEN: Final = 128
#: What one entry keeps of a request (Redis's ``SLOWLOG_ENTRY_MAX_ARGC`` and ``_STRING``).
SLOWLOG_MAX_ARGS: Final = 32
SLOWLOG_MAX_STRING: Final = 128


@dataclass(slots=True)
class SlowLog:
    """Requests that took at least :data:`SLOWLOG_SLOWER_THAN`, newest first (Redis's slowlog.c).

    Each entry is Redis's: id, Unix time, microseconds, the arguments (at
    most 32, each cut at 128 bytes with how much was left out), the
    client's address and name. At most :data:`SLOWLOG_MAX_LEN` are kept.
    """

    entries: list[list[object]] = field(default_factory=list)
    next_id: int = 0
    #: ``slowlog-max-len``: entries kept.
    max_len: int = SLOWLOG_MAX_LEN

    def add(self, argv: list[str], seconds: float, addr: str, name: str) -> None:
        """Log ``argv``, which took ``seconds``.

        The caller has replaced its secrets by ``(redacted)`` already
        (:func:`snapkv.server.latency.redacted`).
        """
        kept = argv[:SLOWLOG_MAX_ARGS]
        if len(argv) > SLOWLOG_MAX_ARGS:
            kept[-1] = f"... ({len(argv) - SLOWLOG_MAX_ARGS + 1} more arguments)"
        args = []
        for arg in kept:
            data = arg.encode("utf-8", "surrogateescape")
            if len(data) > SLOWLOG_MAX_STRING:
                cut = data[:SLOWLOG_MAX_STRING].decode("utf-8", "surrogateescape")
                args.append(f"{cut}... ({len(data) - SLOWLOG_MAX_STRING} more bytes)")
            else:
                args.append(arg)
        entry: list[object] = [self.next_id, int(time.time()), round(seconds * 1_000_000)]
        entry += [args, addr, name]
        self.next_id += 1
        self.entries.insert(0, entry)
        del self.entries[self.max_len :]

    def reset(self) -> None:
        """SLOWLOG RESET (ids go on from where they were, as in Redis)."""
        self.entries.clear()
