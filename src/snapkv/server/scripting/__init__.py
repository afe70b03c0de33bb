"""Lua scripting (Redis's ``eval.c``, ``script_lua.c``, ``function_lua.c``), in Lua 5.1.

The engine (:class:`~snapkv.server.scripting.engine.ScriptEngine`) is made
on first use, so a server that never runs a script never imports lupa, and
one without lupa (the ``server`` extra) still starts: its scripting
commands answer with an error that says what to install.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from snapkv.server.table import CommandError

if TYPE_CHECKING:
    from snapkv.server.scripting.engine import ScriptEngine
    from snapkv.server.state import ServerState
    from snapkv.server.table import Command

__all__ = [
    "NO_LUPA",
    "SCRIPT_FLAGS",
    "abort_running",
    "cached_scripts",
    "engine_of",
    "install",
    "lua_memory",
    "parse_shebang",
    "script_writes",
]

#: The reply of a scripting command on a server without lupa.
NO_LUPA: Final = (
    "ERR Lua scripting is not available: the Lua runtime (lupa) is not installed; "
    "install snapkv[server] to run EVAL, EVALSHA and FCALL"
)


#: The flags a shebang may name (Redis's ``scripts_flags_def``).
SCRIPT_FLAGS: Final = frozenset(
    {"no-writes", "allow-oom", "allow-stale", "no-cluster", "allow-cross-slot-keys"}
)
_EVALS: Final = frozenset({"eval", "eval_ro", "evalsha", "evalsha_ro"})
_FCALLS: Final = frozenset({"fcall", "fcall_ro"})


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")  # the wire's text (resp.text)


def parse_shebang(body: bytes) -> tuple[frozenset[str] | None, bytes]:
    """A body's shebang flags (``None``: no shebang) and the body to compile.

    As Redis's ``evalExtractShebangFlags``; the shebang line is compiled as
    a comment, so the script's line numbers stay those of the body.
    """
    if not body.startswith(b"#!"):
        return None, body
    end = body.find(b"\n")
    if end < 0:
        raise CommandError("ERR Invalid script shebang")
    parts = body[:end].split()
    if not parts:
        raise CommandError("ERR Invalid engine in script shebang")
    if parts[0] != b"#!lua":
        raise CommandError(f"ERR Unexpected engine in script shebang: {_text(parts[0])}")
    flags: set[str] = set()
    for part in parts[1:]:
        if not part.startswith(b"flags="):
            raise CommandError(f"ERR Unknown lua shebang option: {_text(part)}")
        for flag in part[6:].split(b","):
            if not flag:
                continue
            name = _text(flag)
            if name not in SCRIPT_FLAGS:
                raise CommandError(f"ERR Unexpected flag in script shebang: {name}")
            flags.add(name)
    return frozenset(flags), b"--" + body[2:]


def script_writes(server: ServerState, cmd: Command, argv: list[str]) -> bool | None:
    """Whether EVAL*/FCALL* ``argv`` may write, by its script's flags; ``None``: the
    command's own flags decide (not a script command, or a script without flags).

    Redis's ``evalGetCommandFlags`` / ``fcallGetCommandFlags``: a script
    whose shebang (or function) says ``no-writes`` is neither a write nor
    may-replicate, so CLIENT PAUSE WRITE lets it run; flags without
    ``no-writes`` make it a write. A script that is not known (an unknown
    sha, a bad shebang, a missing function) keeps the command's flags.
    """
    name = cmd.name
    if len(argv) < 2 or (name not in _EVALS and name not in _FCALLS):
        return None
    engine = server.scripts
    flags: frozenset[str] | None
    if name in _FCALLS:
        if engine is None:
            return None
        from snapkv.server.scripting.functions import registry_of  # noqa: PLC0415

        function = registry_of(engine).functions.get(argv[1])
        flags = None if function is None else function.flags
    elif name.startswith("evalsha"):
        cached = None if engine is None else engine.scripts.get(argv[1].lower())
        flags = None if cached is None else cached[2]
    else:
        try:
            flags, _body = parse_shebang(argv[1].encode("utf-8", "surrogateescape"))
        except CommandError:
            return None
    return None if flags is None else "no-writes" not in flags


def install(server: ServerState) -> None:
    """Give ``server`` its script engine (``server.scripts``), created on first use."""
    server.scripts = None


def engine_of(server: ServerState) -> ScriptEngine:
    """``server``'s engine, made now if needed; CommandError (:data:`NO_LUPA`) without lupa."""
    engine = server.scripts
    if engine is None:
        from snapkv.server.scripting.sandbox import lupa_available  # noqa: PLC0415

        if not lupa_available():
            raise CommandError(NO_LUPA)
        from snapkv.server.scripting.engine import ScriptEngine  # noqa: PLC0415

        engine = server.scripts = ScriptEngine(server)
    return engine  # type: ignore[no-any-return]


def abort_running(server: ServerState, timeout: float = 5.0) -> bool:
    """Stop a busy script for a shutdown (its writes undone); False if it did not end in time.

    SHUTDOWN (NOSAVE) while BUSY calls it before ``prepare_shutdown``: the
    script's transaction holds the store's lock, which a journal sync needs.
    """
    engine = server.scripts
    return True if engine is None else bool(engine.abort(timeout))


def lua_memory(server: ServerState) -> int:
    """Bytes of Lua memory EVAL's VM holds (INFO's ``used_memory_lua``; 0 before any)."""
    engine = server.scripts
    return 0 if engine is None else int(engine.memory())


def cached_scripts(server: ServerState) -> int:
    """Scripts in the EVAL cache (INFO's ``number_of_cached_scripts``)."""
    engine = server.scripts
    return 0 if engine is None else len(engine.scripts)
