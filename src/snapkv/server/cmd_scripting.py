"""Scripting commands, answered as a Redis with no scripts: EVAL* FCALL* SCRIPT FUNCTION.

There is no scripting: EVAL, SCRIPT LOAD and FUNCTION LOAD say so, and the
rest answers as a Redis whose script cache and function libraries are
empty (EVALSHA ``NOSCRIPT``, SCRIPT EXISTS all 0, FUNCTION LIST empty,
SCRIPT/FUNCTION FLUSH ``OK``, FCALL ``Function not found``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from snapkv.server.resp.writer import OK, SimpleString
from snapkv.server.table import ERR_SYNTAX, CommandError, command

if TYPE_CHECKING:
    from snapkv.server.client import Client

__all__: list[str] = []

_SCRIPTING = "scripting"
_ERR_NO_SCRIPTS = "ERR this server does not run scripts"
_NOTBUSY = "NOTBUSY No scripts in execution right now."


@command("eval", -3, "noscript", group=_SCRIPTING)
@command("eval_ro", -3, "noscript", group=_SCRIPTING)
@command("script|load", 3, "noscript", group=_SCRIPTING)
@command("function|load", -3, "noscript", group=_SCRIPTING)
@command("function|dump", 2, "noscript", group=_SCRIPTING)
@command("function|restore", -3, "noscript", group=_SCRIPTING)
def no_scripts(client: Client, argv: list[str]) -> bytes:
    raise CommandError(_ERR_NO_SCRIPTS)


@command("evalsha", -3, "noscript", group=_SCRIPTING)
@command("evalsha_ro", -3, "noscript", group=_SCRIPTING)
def evalsha(client: Client, argv: list[str]) -> bytes:
    raise CommandError("NOSCRIPT No matching script. Please use EVAL.")


@command("fcall", -3, "noscript", group=_SCRIPTING)
@command("fcall_ro", -3, "noscript", group=_SCRIPTING)
def fcall(client: Client, argv: list[str]) -> bytes:
    raise CommandError("ERR Function not found")


@command("script|kill", 2, "noscript", group=_SCRIPTING)
@command("function|kill", 2, "noscript", group=_SCRIPTING)
def kill(client: Client, argv: list[str]) -> bytes:
    raise CommandError(_NOTBUSY)


@command("script|flush", -2, "noscript", group=_SCRIPTING)
@command("function|flush", -2, "noscript", group=_SCRIPTING)
def flush(client: Client, argv: list[str]) -> bytes:
    if len(argv) > 3 or (len(argv) == 3 and argv[2].lower() not in ("async", "sync")):
        raise CommandError(ERR_SYNTAX)
    return OK


@command("script|exists", -3, "noscript", group=_SCRIPTING)
def script_exists(client: Client, argv: list[str]) -> bytes:
    return client.encode([0] * (len(argv) - 2))


@command("function|delete", 3, "noscript", group=_SCRIPTING)
def function_delete(client: Client, argv: list[str]) -> bytes:
    raise CommandError("ERR Library not found")


@command("function|list", -2, "noscript", group=_SCRIPTING)
def function_list(client: Client, argv: list[str]) -> bytes:
    i = 2
    while i < len(argv):
        option = argv[i].lower()
        if option == "withcode":
            i += 1
        elif option == "libraryname" and i + 1 < len(argv):
            i += 2
        else:
            raise CommandError(f"ERR Unknown argument {argv[i]}")
    return client.encode([])


@command("function|stats", 2, "noscript", group=_SCRIPTING)
def function_stats(client: Client, argv: list[str]) -> bytes:
    return client.encode({"running_script": None, "engines": {}})


@command("script|help", 2, "loading stale", group=_SCRIPTING)
def script_help(client: Client, argv: list[str]) -> bytes:
    lines = ("SCRIPT <subcommand>", "EXISTS <sha1>", "FLUSH", "KILL", "LOAD <script>")
    return client.encode([SimpleString(line) for line in lines])


@command("function|help", 2, "loading stale", group=_SCRIPTING)
def function_help(client: Client, argv: list[str]) -> bytes:
    lines = ("FUNCTION <subcommand>", "LIST", "FLUSH", "STATS", "DELETE", "KILL")
    return client.encode([SimpleString(line) for line in lines])
