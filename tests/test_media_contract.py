"""The Medium contract, through the conformance kit snapkv.testing.check_medium.

Every medium snapkv ships passes it, and each deliberately broken medium
below fails it with the message of the promise it breaks. The journal calls
(create, open, read, truncate, remove) are also tested one by one on every
shipped medium, and on a medium that keeps the base class's defaults, which
hold no journal.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from snapkv import FileMedium, Medium, MediumError, MemoryMedium, Store
from snapkv import journal as jr
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


# ------------------------------------------ journals, on every shipped medium

# Real journal records, though a medium moves bytes it never parses.
RECORDS = [
    jr.set_record(0, "a", "1"),
    jr.delete_record(1, "b"),
    jr.clear_record(-1),
    jr.swap_record(0, 1),
]


def journal(*records: bytes, jid: int = 1) -> bytes:
    return jr.header(jid) + b"".join(records)


def test_medium_journal_ids_create_read(medium_factory: MediumFactory) -> None:
    medium = medium_factory()
    assert medium.journal_ids() == []
    assert medium.read_journal(1) is None
    for jid in (3, 1, 12):
        file = medium.create_journal(jid, jr.header(jid))
        assert file.size == 24
        file.close()
    assert medium.journal_ids() == [1, 3, 12]
    assert medium.read_journal(3) == jr.header(3)
    assert "3" in medium.describe_journal(3)


def test_medium_create_replaces_a_leftover(medium_factory: MediumFactory) -> None:
    medium = medium_factory()
    file = medium.create_journal(2, jr.header(2))
    file.write(b"leftover records")
    file.close()
    file = medium.create_journal(2, jr.header(2))
    assert (medium.read_journal(2), file.size) == (jr.header(2), 24)
    file.write(RECORDS[0])
    assert medium.read_journal(2) == journal(RECORDS[0], jid=2)
    file.close()


def test_medium_open_appends_at_the_end(medium_factory: MediumFactory) -> None:
    medium = medium_factory()
    missing = re.escape(medium.describe_journal(5))
    with pytest.raises(MediumError, match=f"cannot open .*{missing}"):
        medium.open_journal(5)
    first = medium.create_journal(5, jr.header(5))
    first.write(RECORDS[0])
    second = medium.open_journal(5)
    assert second.size == 24 + len(RECORDS[0])
    second.write(RECORDS[1])
    first.write(RECORDS[2])  # one shared end: never overwrites what another handle wrote
    assert medium.read_journal(5) == journal(RECORDS[0], RECORDS[1], RECORDS[2], jid=5)
    first.close()
    second.close()
    second.close()  # idempotent


def test_medium_truncate_cuts_and_appends_continue_there(medium_factory: MediumFactory) -> None:
    medium = medium_factory()
    file = medium.create_journal(1, jr.header(1))
    file.write(b"".join(RECORDS[:3]))
    file.truncate(len(journal(*RECORDS[:2])))
    assert file.size == len(journal(*RECORDS[:2]))
    file.write(RECORDS[3])
    assert medium.read_journal(1) == journal(RECORDS[0], RECORDS[1], RECORDS[3])
    with pytest.raises(ValueError, match="cannot truncate to -1 bytes"):
        file.truncate(-1)
    file.close()


def test_medium_remove_journals_below(medium_factory: MediumFactory) -> None:
    medium = medium_factory()
    for jid in range(1, 6):
        medium.create_journal(jid, jr.header(jid)).close()
    medium.remove_journals(below=4)
    assert medium.journal_ids() == [4, 5]
    medium.remove_journals(below=4)  # nothing left to remove: fine
    medium.remove_journals(below=0)
    assert medium.journal_ids() == [4, 5]


def test_medium_refuses_impossible_ids(medium_factory: MediumFactory) -> None:
    medium = medium_factory()
    for jid in (0, -1, 10**16):
        with pytest.raises(ValueError, match="journal ids"):
            medium.create_journal(jid, jr.header(1))


def test_a_medium_without_journals_says_so() -> None:
    class SnapshotsOnly(Medium):
        def publish(self, pieces: object) -> None: ...
        def generations(self) -> list[str]:
            return []

        def read(self, generation: str | None = None) -> bytes | None:
            return None

        def quarantine(self, generation: str) -> str:
            return ""

    medium = SnapshotsOnly()
    # It holds no journal, so recovery from it works...
    assert medium.journal_ids() == []
    assert medium.read_journal(1) is None
    # ...but writing one fails, saying why.
    for call in [
        lambda: medium.create_journal(1, b""),
        lambda: medium.open_journal(1),
        lambda: medium.remove_journals(1),
        lambda: medium.quarantine_journal(1),
    ]:
        with pytest.raises(MediumError, match="SnapshotsOnly cannot hold a journal"):
            call()
    # A journaled Store on it refuses its first write; a plain one works.
    plain = Store(SnapshotsOnly())
    assert plain.restore().entries == 0
    journaled = Store(SnapshotsOnly(), journal=True)
    with pytest.raises(MediumError, match="cannot hold a journal"):
        journaled.restore()


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
