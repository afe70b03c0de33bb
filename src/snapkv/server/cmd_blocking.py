"""Blocking pops (Redis's ``blocking.c`` with ``t_list.c`` and ``t_zset.c``): BLPOP ... BZMPOP."""

from __future__ import annotations

__all__: list[str] = []
