"""DUMP and RESTORE (Redis's cluster.c), payloads through snapkv.rdb."""

from __future__ import annotations

__all__: list[str] = []
