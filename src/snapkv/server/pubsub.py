"""The pub/sub registry: channels, patterns and shard channels, and who listens to each."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from snapkv.server.state import ServerState

__all__ = ["install"]


def install(server: ServerState) -> None:
    """Give ``server`` its registry (``server.pubsub``)."""
