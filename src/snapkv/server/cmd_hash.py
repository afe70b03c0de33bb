"""Hash commands (Redis's t_hash.c): HSET ... HSCAN."""

from __future__ import annotations

__all__: list[str] = []
