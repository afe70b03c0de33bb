"""Pub/sub commands (Redis's ``pubsub.c``): SUBSCRIBE ... PUBLISH, PUBSUB, the sharded forms."""

from __future__ import annotations

__all__: list[str] = []
