"""Lua scripting (Redis's ``eval.c``, ``script_lua.c``, ``function_lua.c``), in Lua 5.1."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from snapkv.server.state import ServerState

__all__ = ["install"]


def install(server: ServerState) -> None:
    """Give ``server`` its script engine (``server.scripts``), created on first use."""
