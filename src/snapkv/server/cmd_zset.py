"""Sorted set commands (Redis's t_zset.c): ZADD ... ZSCAN."""

from __future__ import annotations

__all__: list[str] = []
