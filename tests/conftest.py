"""Shared fixtures: every Store test can run on every medium, as TinyDB's conftest does."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from snapkv import FileMedium, Medium, MemoryMedium


class MediumFactory:
    """Makes fresh, empty media of one kind and closes them all at teardown.

    ``factory()`` (or ``factory(keep=N)``) is a new medium; ``factory.reopen(m)``
    is "the same storage, opened again": for a FileMedium the directory is
    released and locked anew, for a MemoryMedium it is the same object (its
    snapshots live only in it).
    """

    def __init__(self, kind: str, root: Path) -> None:
        self.kind = kind
        self._root = root
        self._made: list[Medium] = []
        self._counter = itertools.count(1)

    def __call__(self, *, keep: int = 1) -> Medium:
        medium: Medium
        if self.kind == "memory":
            medium = MemoryMedium(keep=keep)
        else:
            medium = FileMedium(self._root / f"medium-{next(self._counter)}", keep=keep)
        self._made.append(medium)
        return medium

    def reopen(self, medium: Medium) -> Medium:
        if isinstance(medium, FileMedium):
            medium.close()
            medium = FileMedium(medium.directory, keep=medium.keep)
            self._made.append(medium)
        return medium

    def close_all(self) -> None:
        for medium in self._made:
            medium.close()


@pytest.fixture(params=["memory", "file"])
def medium_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MediumFactory]:
    """A :class:`MediumFactory` for each kind of medium snapkv ships."""
    factory = MediumFactory(request.param, tmp_path)
    yield factory
    factory.close_all()
