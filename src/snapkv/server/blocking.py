"""Clients blocked on keys (Redis's ``blocking.c``): who waits for which key, served in order."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from snapkv.server.state import ServerState

__all__ = ["install"]


def install(server: ServerState) -> None:
    """Give ``server`` its registry of blocked clients (``server.blocking``)."""
