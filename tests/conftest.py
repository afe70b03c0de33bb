"""Shared fixtures: every Store test can run on every medium, as TinyDB's conftest does."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


@pytest.fixture(scope="session")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """One real redis-server for the session (see tests/reference.py); tests FLUSHALL it."""
    from reference import redis_server

    with redis_server(tmp_path_factory.mktemp("redis-reference")) as port:
        yield port


@pytest.fixture
def reference(redis_port: int) -> Iterator[Any]:
    """A raw connection to the real redis-server, emptied (FLUSHALL) and at RESP2 first."""
    from reference import Raw

    raw = Raw(redis_port)
    raw("FLUSHALL")
    yield raw
    raw.close()


class Twin:
    """The same request to snapkv's dispatcher and to the real redis-server: both replies.

    ``twin("ZADD", "z", "1", "a")`` returns ``(snapkv's bytes, redis's bytes)``;
    ``twin.same(...)`` asserts they are equal and returns them. Each side is
    one client (``twin.snapkv`` is a server.client.Client of a fresh
    in-memory Store), so SELECT and HELLO apply to both.
    """

    def __init__(self, raw: Any) -> None:
        from snapkv import Store
        from snapkv.server.client import Client
        from snapkv.server.dispatch import Dispatcher
        from snapkv.server.state import Config

        self.store = Store()
        self.server = Dispatcher(self.store, Config())
        self.snapkv = Client(self.server, addr="127.0.0.1:1000", laddr="127.0.0.1:6379")
        self.server.add_client(self.snapkv)
        self.raw = raw

    def __call__(self, *argv: str) -> tuple[bytes, bytes]:
        return self.server.execute(self.snapkv, list(argv)), self.raw(*argv)

    def same(self, *argv: str) -> bytes:
        ours, theirs = self(*argv)
        assert ours == theirs, f"{argv}: snapkv {ours!r} != redis {theirs!r}"
        return ours


@pytest.fixture
def twin(reference: Any) -> Iterator[Twin]:
    """See :class:`Twin`."""
    made = Twin(reference)
    yield made
    made.store.close()
