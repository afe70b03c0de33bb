"""The Medium contract, through the conformance kit snapkv.testing.check_medium.

Every medium snapkv ships passes it, and each deliberately broken medium
below fails it with the message of the promise it breaks.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from snapkv import FileMedium, Medium, MemoryMedium
from snapkv.testing import check_medium

if TYPE_CHECKING:
    from conftest import MediumFactory


def test_shipped_media_keep_the_contract(medium_factory: MediumFactory) -> None:
    check_medium(medium_factory)


@pytest.mark.parametrize("keep", [0, 3])
def test_shipped_media_keep_the_contract_at_any_keep(
    medium_factory: MediumFactory, keep: int
) -> None:
    check_medium(lambda: medium_factory(keep=keep))


def test_check_medium_closes_what_it_makes(tmp_path: Path) -> None:
    made: list[FileMedium] = []

    def factory() -> Medium:
        made.append(FileMedium(tmp_path / str(len(made))))
        return made[-1]

    check_medium(factory)
    assert len(made) == 2
    for medium in made:
        FileMedium(medium.directory).close()  # would raise StoreLockedError if still held


# ------------------------------------------------------------- broken media


class PublishesWhatItGot(MemoryMedium):
    """Keeps the pieces it received before a failure: a torn snapshot."""

    def publish(self, pieces: Iterable[bytes]) -> None:
        received: list[bytes] = []
        try:
            received.extend(pieces)
        finally:
            super().publish(received)


class WritesInPlace(FileMedium):
    """Writes the new generation straight under its final name, like TinyDB's JSONStorage."""

    def publish(self, pieces: Iterable[bytes]) -> None:
        newest = max((int(name[9:25]) for name in self.generations()), default=0)
        with self.path(f"snapshot-{newest + 1:016d}.skv").open("wb") as out:
            out.writelines(pieces)


class SwallowsErrors(MemoryMedium):
    """Hides a failure of its pieces, so the caller believes the snapshot was published."""

    def publish(self, pieces: Iterable[bytes]) -> None:
        try:
            data = b"".join(pieces)
        except Exception:
            return
        super().publish([data])


class OneGeneration(MemoryMedium):
    """Overwrites a single generation instead of adding a new one."""

    def generations(self) -> list[str]:
        return ["only"] if super().generations() else []

    def read(self, generation: str | None = None) -> bytes | None:
        return super().read(None if generation == "only" else generation)


class EmptyMeansNothing(MemoryMedium):
    """Treats an empty snapshot as no snapshot at all."""

    def read(self, generation: str | None = None) -> bytes | None:
        return super().read(generation) or None


class FirstSnapshotForever(MemoryMedium):
    """Returns the oldest retained snapshot as if it were the newest."""

    def __init__(self) -> None:
        super().__init__(keep=10)

    def read(self, generation: str | None = None) -> bytes | None:
        generations = self.generations()
        if generation is None and generations:
            generation = generations[-1]
        return super().read(generation)


BROKEN: dict[str, tuple[Callable[[Path], Medium], str]] = {
    "publishes-what-it-got": (
        lambda _: PublishesWhatItGot(),
        "a failed publish must leave every snapshot as it was",
    ),
    "writes-in-place": (WritesInPlace, "a failed publish must leave every snapshot as it was"),
    "swallows-errors": (lambda _: SwallowsErrors(), "publish must propagate the error"),
    "one-generation": (lambda _: OneGeneration(), "a publish must make a new generation"),
    "empty-means-nothing": (lambda _: EmptyMeansNothing(), "an empty publish is a valid"),
    "first-snapshot-forever": (
        lambda _: FirstSnapshotForever(),
        "publish must write the concatenation",
    ),
}


@pytest.fixture
def directories(tmp_path: Path) -> Iterator[Path]:
    return (tmp_path / f"medium-{n}" for n in itertools.count())


@pytest.mark.parametrize("name", list(BROKEN))
def test_broken_medium_fails_the_check(name: str, directories: Iterator[Path]) -> None:
    make, message = BROKEN[name]
    with pytest.raises(AssertionError, match=message):
        check_medium(lambda: make(next(directories)))
