"""Sorted set commands that combine keys (Redis's t_zset.c).

ZUNION, ZINTER, ZDIFF, their STORE forms, ZINTERCARD and ZRANGESTORE.
"""

from __future__ import annotations

__all__: list[str] = []
