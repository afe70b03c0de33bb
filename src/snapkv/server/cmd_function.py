"""Functions (Redis's ``functions.c``): FUNCTION LOAD ... FCALL, FCALL_RO."""

from __future__ import annotations

__all__: list[str] = []
