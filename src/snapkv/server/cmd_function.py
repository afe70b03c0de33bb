"""Functions (Redis 7.0's ``functions.c``): FUNCTION LOAD ... FCALL, FCALL_RO.

The libraries live in :class:`snapkv.server.scripting.functions.Functions`
(one per server, next to its script engine); a function runs as a script
does, through the engine (:meth:`ScriptEngine.run` with ``kind="function"``:
atomic, one journal record, BUSY and FUNCTION KILL), called as
``fn(keys, args)``. Libraries are kept in memory only: they do not survive
a restart (Redis keeps them in its RDB); FUNCTION DUMP and RESTORE carry them.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Final

from snapkv.server.glob import stringmatch
from snapkv.server.monitor import feed_monitors
from snapkv.server.resp.text import to_bytes, to_text
from snapkv.server.resp.writer import OK, bulk, encode
from snapkv.server.scripting import engine_of
from snapkv.server.scripting.functions import FLAG_ORDER, FunctionError, Functions, registry_of
from snapkv.server.table import CommandError, command, numkeys_at, parse_int

if TYPE_CHECKING:
    from snapkv.server.client import Client

__all__ = ["functions_of"]

_GROUP = "scripting"

_HELP: Final = (
    "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "LOAD [REPLACE] <FUNCTION CODE>",
    "    Create a new library with the given library name and code.",
    "DELETE <LIBRARY NAME>",
    "    Delete the given library.",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Library description",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    "STATS",
    "    Return information about the current function running:",
    "    * Function name",
    "    * Command used to run the function",
    "    * Duration in MS that the function is running",
    "    If no function is running, return nil",
    "    In addition, returns a list of available engines.",
    "KILL",
    "    Kill the current running function.",
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "DUMP",
    "    Return a serialized payload representing the current libraries, can be restored using "
    "FUNCTION RESTORE command",
    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    "    Restore the libraries represented by the given payload, it is possible to give a "
    "restore policy to",
    "    control how to handle existing libraries (default APPEND):",
    "    * FLUSH: delete all existing libraries.",
    "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
    "    * REPLACE: appends the restored libraries to the existing libraries, On collision, "
    "replace the old",
    "      libraries with the new libraries (notice that even on this option there is a "
    "chance of failure",
    "      in case of functions name collision with another library).",
    "HELP",
    "    Prints this help.",
)


def functions_of(client: Client) -> Functions:
    """The server's function registry (made with its engine on first use)."""
    return registry_of(engine_of(client.server))


def _refused(exc: FunctionError) -> CommandError:
    return CommandError(str(exc))


# ------------------------------------------------------------------ FCALL


def _fcall(client: Client, argv: list[str], *, readonly: bool) -> bytes:
    """FCALL and FCALL_RO (Redis's ``fcallCommandGeneric``)."""
    # Flagged skip_monitor, fed here first, as Redis does: MONITOR shows the
    # FCALL before its `lua` calls, and a refused one too.
    if client.server.monitors:
        feed_monitors(client.server, client, argv)
    registry = functions_of(client)
    function = registry.functions.get(argv[1])
    if function is None:
        raise CommandError("ERR Function not found")
    numkeys = parse_int(argv[2], "ERR Bad number of keys provided")
    if numkeys > len(argv) - 3:
        raise CommandError("ERR Number of keys can't be greater than number of args")
    if numkeys < 0:
        raise CommandError("ERR Number of keys can't be negative")
    if readonly and "no-writes" not in function.flags:
        raise CommandError("ERR Can not execute a script with write flag using *_ro command.")
    engine = engine_of(client.server)
    reply = engine.run(
        client,
        registry.vm,
        function.callback,
        argv[3 : 3 + numkeys],
        argv[3 + numkeys :],
        name=function.name,
        command=argv,
        flags=function.flags,
        readonly=readonly,
        eval_mode=False,
        kind="function",
    )
    if reply[:1] == b"-":
        raise CommandError(to_text(reply[1:-2]))
    return reply


@command(
    "fcall",
    -3,
    "noscript skip_monitor may_replicate no_mandatory_keys stale",
    group=_GROUP,
    since="7.0.0",
    find_keys=numkeys_at(2),
    summary="Invoke a function",
)
def fcall(client: Client, argv: list[str]) -> bytes:
    """Run a registered function."""
    return _fcall(client, argv, readonly=False)


@command(
    "fcall_ro",
    -3,
    "noscript skip_monitor no_mandatory_keys stale readonly",
    group=_GROUP,
    since="7.0.0",
    find_keys=numkeys_at(2),
    summary="Invoke a read-only function",
)
def fcall_ro(client: Client, argv: list[str]) -> bytes:
    """Run a registered function flagged ``no-writes``."""
    return _fcall(client, argv, readonly=True)


# ------------------------------------------------------------------ FUNCTION


@command("function|load", -3, "write denyoom noscript", group=_GROUP, since="7.0.0")
def function_load(client: Client, argv: list[str]) -> bytes:
    """Load a library; its name."""
    # Every argument but the last is an option (functionLoadCommand).
    replace = False
    for option in argv[2:-1]:
        if option.lower() != "replace":
            raise CommandError(f"ERR Unknown option given: {option}")
        replace = True
    if len(argv) < 3:
        raise CommandError("ERR Function code is missing")
    at = len(argv) - 1
    try:
        return bulk(functions_of(client).load(to_bytes(argv[at]), replace=replace))
    except FunctionError as exc:
        raise _refused(exc) from None


@command("function|delete", 3, "write noscript", group=_GROUP, since="7.0.0")
def function_delete(client: Client, argv: list[str]) -> bytes:
    """Delete a library and its functions."""
    try:
        functions_of(client).delete(argv[2])
    except FunctionError as exc:
        raise _refused(exc) from None
    return OK


@command("function|flush", -2, "write noscript", group=_GROUP, since="7.0.0")
def function_flush(client: Client, argv: list[str]) -> bytes:
    """Delete every library (ASYNC and SYNC do the same here)."""
    if len(argv) > 3:
        raise CommandError(
            f"ERR unknown subcommand or wrong number of arguments for '{argv[1]}'. "
            "Try FUNCTION HELP."
        )
    if len(argv) == 3 and argv[2].lower() not in ("sync", "async"):
        raise CommandError("ERR FUNCTION FLUSH only supports SYNC|ASYNC option")
    functions_of(client).flush()
    return OK


@command("function|list", -2, "noscript", group=_GROUP, since="7.0.0")
def function_list(client: Client, argv: list[str]) -> bytes:
    """The libraries (matching LIBRARYNAME's pattern), their functions, with WITHCODE their code."""
    with_code = False
    pattern: str | None = None
    i = 2
    while i < len(argv):
        arg = argv[i]
        if not with_code and arg.lower() == "withcode":
            with_code = True
        elif pattern is None and arg.lower() == "libraryname":
            if i >= len(argv) - 1:
                raise CommandError("ERR library name argument was not given")
            i += 1
            pattern = argv[i]
        else:
            raise CommandError(f"ERR Unknown argument {arg}")
        i += 1
    resp = client.resp
    out: list[bytes] = []
    count = 0
    for library in functions_of(client).libraries.values():
        if pattern is not None and not stringmatch(
            to_bytes(pattern), to_bytes(library.name), nocase=True
        ):
            continue
        count += 1
        out.append(_map_head(4 if with_code else 3, resp))
        out.append(bulk("library_name") + bulk(library.name))
        out.append(bulk("engine") + bulk("LUA"))
        out.append(bulk("functions") + b"*%d\r\n" % len(library.functions))
        for function in library.functions.values():
            flags = [flag for flag in FLAG_ORDER if flag in function.flags]
            out.append(_map_head(3, resp))
            out.append(bulk("name") + bulk(function.name))
            out.append(bulk("description") + encode(function.description, resp))
            out.append(bulk("flags") + (b"~%d\r\n" if resp == 3 else b"*%d\r\n") % len(flags))
            out.extend(b"+%s\r\n" % flag.encode() for flag in flags)
        if with_code:
            out.append(bulk("library_code") + bulk(library.code))
    return b"*%d\r\n" % count + b"".join(out)


def _map_head(pairs: int, resp: int) -> bytes:
    """A map of ``pairs`` entries: RESP3's ``%``, RESP2's flat array."""
    return b"%%%d\r\n" % pairs if resp == 3 else b"*%d\r\n" % (2 * pairs)


@command("function|dump", 2, "noscript", group=_GROUP, since="7.0.0")
def function_dump(client: Client, argv: list[str]) -> bytes:
    """Every library as one payload for FUNCTION RESTORE."""
    return bulk(functions_of(client).dump())


@command("function|restore", -3, "write denyoom noscript", group=_GROUP, since="7.0.0")
def function_restore(client: Client, argv: list[str]) -> bytes:
    """Load the libraries of a FUNCTION DUMP payload (FLUSH, APPEND by default, or REPLACE)."""
    policy = "append"
    if len(argv) > 4:
        raise CommandError(
            "ERR unknown subcommand or wrong number of arguments for 'restore'. Try FUNCTION HELP."
        )
    if len(argv) == 4:
        policy = argv[3].lower()
        if policy not in ("flush", "append", "replace"):
            raise CommandError(
                "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE."
            )
    try:
        functions_of(client).restore(to_bytes(argv[2]), policy)
    except FunctionError as exc:
        raise _refused(exc) from None
    return OK


@command("function|stats", 2, "noscript allow_busy", group=_GROUP, since="7.0.0")
def function_stats(client: Client, argv: list[str]) -> bytes:
    """The running function (name, command, duration) and the engine's counts."""
    registry = functions_of(client)
    run = registry.engine.running
    running: object = None
    if run is not None and run.kind == "function":
        running = {
            "name": run.name,
            "command": list(run.command),
            "duration_ms": int((time.monotonic() - run.started) * 1000),
        }
    stats = {
        "running_script": running,
        "engines": {
            "LUA": {
                "libraries_count": len(registry.libraries),
                "functions_count": len(registry.functions),
            }
        },
    }
    return encode(stats, client.resp)


@command("function|kill", 2, "noscript allow_busy", group=_GROUP, since="7.0.0")
def function_kill(client: Client, argv: list[str]) -> bytes:
    """Stop the running function, unless it has written."""
    reply = engine_of(client.server).kill("function")
    if reply[:1] == b"-":
        raise CommandError(to_text(reply[1:-2]))
    return reply


@command("function|help", 2, "loading stale", group=_GROUP, since="7.0.0")
def function_help(client: Client, argv: list[str]) -> bytes:
    """The subcommands."""
    return b"*%d\r\n%s" % (len(_HELP), b"".join(b"+%s\r\n" % line.encode() for line in _HELP))
