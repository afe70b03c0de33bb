"""OBJECT and MEMORY (Redis's object.c): encodings by Redis's size thresholds, memory estimates."""

from __future__ import annotations

__all__: list[str] = []
