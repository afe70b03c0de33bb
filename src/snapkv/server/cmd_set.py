"""Set commands (Redis's t_set.c): SADD ... SSCAN."""

from __future__ import annotations

__all__: list[str] = []
