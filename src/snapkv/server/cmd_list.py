"""List commands (Redis's t_list.c): LPUSH ... LMPOP."""

from __future__ import annotations

__all__: list[str] = []
