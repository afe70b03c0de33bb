"""Keyspace notifications (Redis's ``notify.c``).

Published as ``__keyspace@<db>__:<key>`` (the event as the message) and
``__keyevent@<db>__:<event>`` (the key as the message).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from snapkv.server.state import ServerState

__all__ = ["install"]


def install(server: ServerState) -> None:
    """Connect ``server`` to its Store's expired keys (``Store.expired_listener``)."""
