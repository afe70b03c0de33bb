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

__all__ = ["NO_LUPA", "abort_running", "cached_scripts", "engine_of", "install", "lua_memory"]

#: The reply of a scripting command on a server without lupa.
NO_LUPA: Final = (
    "ERR Lua scripting is not available: the Lua runtime (lupa) is not installed; "
    "install snapkv[server] to run EVAL, EVALSHA and FCALL"
)


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
