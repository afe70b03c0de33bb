"""Scripting commands: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT (Redis 7.0's ``eval.c``).

A script body is compiled once into the engine's EVAL VM and kept by its
SHA-1 (EVAL adds to the cache as SCRIPT LOAD does, as in Redis 7.0; SCRIPT
FLUSH empties it and starts a new VM). A body that starts with a shebang
(``#!lua flags=no-writes,allow-oom``) carries Redis 7.0's script flags;
without one a script runs in the compatibility mode (writes allowed).
The run itself (atomicity, the journal, BUSY, conversions) is the engine's:
:meth:`snapkv.server.scripting.engine.ScriptEngine.run`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from snapkv.server.monitor import feed_monitors
from snapkv.server.resp.text import to_bytes, to_text
from snapkv.server.resp.writer import OK, bulk, encode
from snapkv.server.scripting import SCRIPT_FLAGS, engine_of, parse_shebang
from snapkv.server.scripting.sandbox import CompileError, sha1hex
from snapkv.server.table import CommandError, command, numkeys_at, parse_int

if TYPE_CHECKING:
    from snapkv.server.client import Client
    from snapkv.server.scripting.engine import ScriptEngine

__all__ = ["SCRIPT_FLAGS", "parse_shebang", "uncount"]

_GROUP = "scripting"
_NOSCRIPT: Final = "NOSCRIPT No matching script. Please use EVAL."
_HELP: Final = (
    "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DEBUG (YES|SYNC|NO)",
    "    Set the debug mode for subsequent scripts executed.",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
    "HELP",
    "    Prints this help.",
)


def _create(engine: ScriptEngine, body: bytes) -> tuple[str, Any, frozenset[str] | None]:
    """Compile and cache ``body`` (Redis's ``luaCreateFunction``): its sha, function, flags."""
    sha = sha1hex(body)
    cached = engine.scripts.get(sha)
    if cached is not None:
        return sha, cached[1], cached[2]
    flags, source = parse_shebang(body)
    try:
        fn = engine.eval_vm.compile(source)
    except CompileError as exc:
        raise CommandError(f"ERR Error compiling script (new function): {exc}") from None
    engine.scripts[sha] = (body, fn, flags)
    return sha, fn, flags


def _eval(client: Client, argv: list[str], *, by_sha: bool, readonly: bool) -> bytes:
    """EVAL and its variants (Redis's ``evalGenericCommand``)."""
    server = client.server
    if server.monitors:
        # First, as Redis's evalCommand: the script's own calls come after it.
        feed_monitors(server, client, argv)
    engine = engine_of(server)
    numkeys = parse_int(argv[2])
    if numkeys > len(argv) - 3:
        raise CommandError("ERR Number of keys can't be greater than number of args")
    if numkeys < 0:
        raise CommandError("ERR Number of keys can't be negative")
    if by_sha:
        sha = argv[1].lower()
        cached = engine.scripts.get(sha) if len(sha) == 40 else None
        if cached is None:
            raise CommandError(_NOSCRIPT)
        fn, flags = cached[1], cached[2]
    else:
        sha, fn, flags = _create(engine, to_bytes(argv[1]))
    if flags is not None and "no-writes" not in flags and readonly:
        raise CommandError("ERR Can not execute a script with write flag using *_ro command.")
    reply = engine.run(
        client,
        engine.eval_vm,
        fn,
        argv[3 : 3 + numkeys],
        argv[3 + numkeys :],
        name=sha,
        command=argv,
        flags=flags or frozenset(),
        readonly=readonly,
        eval_mode=True,
        kind="script",
    )
    if reply[:1] == b"-":
        if engine.counted:
            # Counted where it arose (the command's own error, as Redis's
            # ignore_error_stats_update): the dispatcher counts it once more.
            uncount(server, reply)
        # Raised, so the dispatcher counts the failed call and the error code.
        raise CommandError(to_text(reply[1:-2]))
    return reply


def uncount(server: Any, reply: bytes) -> None:
    """Take ``reply`` back out of errorstats (the dispatcher is about to count it)."""
    errors = getattr(server, "errors", None)
    if errors is None:
        return
    errors.total -= 1
    space = reply.find(b" ", 0, 32)
    code = reply[1:space].decode("ascii", "replace") if space > 1 else "ERR"
    if errors.codes.get(code):
        errors.codes[code] -= 1
        if not errors.codes[code]:
            del errors.codes[code]


_EVAL_FLAGS: Final = "noscript skip_monitor may_replicate no_mandatory_keys stale"
_EVAL_RO_FLAGS: Final = "noscript skip_monitor no_mandatory_keys stale readonly"


@command(
    "eval",
    -3,
    _EVAL_FLAGS,
    group=_GROUP,
    since="2.6.0",
    find_keys=numkeys_at(2),
    summary="Execute a Lua script server side",
)
def eval_(client: Client, argv: list[str]) -> bytes:
    """Run a script given by its body."""
    return _eval(client, argv, by_sha=False, readonly=False)


@command(
    "evalsha",
    -3,
    _EVAL_FLAGS,
    group=_GROUP,
    since="2.6.0",
    find_keys=numkeys_at(2),
    summary="Execute a Lua script server side",
)
def evalsha(client: Client, argv: list[str]) -> bytes:
    """Run a cached script given by its SHA-1."""
    return _eval(client, argv, by_sha=True, readonly=False)


@command(
    "eval_ro",
    -3,
    _EVAL_RO_FLAGS,
    group=_GROUP,
    since="7.0.0",
    find_keys=numkeys_at(2),
    summary="Execute a read-only Lua script server side",
)
def eval_ro(client: Client, argv: list[str]) -> bytes:
    """EVAL whose script may not write."""
    return _eval(client, argv, by_sha=False, readonly=True)


@command(
    "evalsha_ro",
    -3,
    _EVAL_RO_FLAGS,
    group=_GROUP,
    since="7.0.0",
    find_keys=numkeys_at(2),
    summary="Execute a read-only Lua script server side",
)
def evalsha_ro(client: Client, argv: list[str]) -> bytes:
    """EVALSHA whose script may not write."""
    return _eval(client, argv, by_sha=True, readonly=True)


@command("script|load", 3, "noscript stale", group=_GROUP, since="2.6.0")
def script_load(client: Client, argv: list[str]) -> bytes:
    """Compile and cache a script; its SHA-1."""
    sha, _fn, _flags = _create(engine_of(client.server), to_bytes(argv[2]))
    return bulk(sha)


@command("script|exists", -3, "noscript", group=_GROUP, since="2.6.0")
def script_exists(client: Client, argv: list[str]) -> bytes:
    """1 or 0 for each SHA-1: whether it is cached."""
    engine = engine_of(client.server)
    return encode([int(sha.lower() in engine.scripts) for sha in argv[2:]], client.resp)


@command("script|flush", -2, "noscript", group=_GROUP, since="2.6.0")
def script_flush(client: Client, argv: list[str]) -> bytes:
    """Empty the cache (and start a new Lua VM); ASYNC and SYNC do the same here."""
    if len(argv) > 3 or (len(argv) == 3 and argv[2].lower() not in ("sync", "async")):
        raise CommandError("ERR SCRIPT FLUSH only support SYNC|ASYNC option")
    engine_of(client.server).flush()
    return OK


@command("script|kill", 2, "noscript allow_busy", group=_GROUP, since="2.6.0")
def script_kill(client: Client, argv: list[str]) -> bytes:
    """Stop the running script, unless it has written."""
    reply = engine_of(client.server).kill("script")
    if reply[:1] == b"-":
        raise CommandError(to_text(reply[1:-2]))
    return reply


@command("script|debug", 3, "noscript", group=_GROUP, since="3.2.0")
def script_debug(client: Client, argv: list[str]) -> bytes:
    """SCRIPT DEBUG NO is accepted; the Lua debugger (YES, SYNC) is not available."""
    mode = argv[2].lower()
    if mode == "no":
        return OK
    if mode in ("yes", "sync"):
        raise CommandError("ERR SCRIPT DEBUG YES|SYNC is not supported: there is no Lua debugger")
    raise CommandError("ERR Use SCRIPT DEBUG YES/SYNC/NO")


@command("script|help", 2, "loading stale", group=_GROUP, since="5.0.0")
def script_help(client: Client, argv: list[str]) -> bytes:
    """The subcommands."""
    return b"*%d\r\n%s" % (len(_HELP), b"".join(b"+%s\r\n" % line.encode() for line in _HELP))
