"""SORT and SORT_RO (Redis's sort.c)."""

from __future__ import annotations

__all__: list[str] = []
