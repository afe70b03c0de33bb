"""The Medium conformance kit: :func:`check_medium`, for people who write media.

In the spirit of trio's ``check_one_way_stream``: give it a factory for a
fresh, empty medium, and it checks everything the
:class:`~snapkv.media.base.Medium` contract promises (the journal part too,
when the medium can hold journals), raising ``AssertionError`` at the first
broken promise. It also carries real snapshots and journals through a
:class:`~snapkv.store.Store`, so a medium that stores bytes faithfully but
breaks the Store's use of it fails here too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from snapkv import codec
from snapkv.errors import MediumError
from snapkv.media.base import Medium
from snapkv.store import Store

__all__ = ["check_medium"]


class _Boom(Exception):
    """Raised by check_medium inside a publish to simulate a failing encoder."""


def check_medium(factory: Callable[[], Medium]) -> None:
    """Check that media made by ``factory`` keep the Medium contract.

    ``factory`` must return a new, empty medium each call; check_medium
    closes every medium it makes. A medium that holds journals must keep the
    journal contract too; one that cannot must say so with MediumError from
    every journal method.
    """
    medium = factory()
    try:
        assert medium.generations() == [], "a new medium must hold no snapshot"
        assert medium.read() is None, "read() of an empty medium must return None"

        medium.publish([b"first"])
        assert medium.read() == b"first", "read() must return what was published"
        newest = medium.generations()
        assert len(newest) >= 1, "generations() must list the published snapshot"
        assert medium.read(newest[0]) == b"first", "read(newest) must equal read()"

        pieces = [b"sec", b"", b"ond", bytes(range(256))]
        medium.publish(iter(pieces))
        assert medium.read() == b"".join(pieces), "publish must write the concatenation"
        assert medium.generations()[0] != newest[0], "a publish must make a new generation"

        def failing() -> Iterator[bytes]:
            yield b"partial"
            raise _Boom

        before = (medium.generations(), medium.read())
        try:
            medium.publish(failing())
        except _Boom:
            pass
        else:  # pragma: no cover - only a broken medium gets here
            raise AssertionError("publish must propagate the error of its pieces")
        assert (medium.generations(), medium.read()) == before, (
            "a failed publish must leave every snapshot as it was"
        )

        medium.publish([])
        assert medium.read() == b"", "an empty publish is a valid (empty) snapshot"

        listed = medium.generations()
        medium.quarantine(listed[0])
        assert medium.generations() == listed[1:], "quarantine must unlist exactly that generation"
        assert medium.read() == (medium.read(listed[1]) if len(listed) > 1 else None), (
            "after quarantine the next older generation is the newest"
        )
        journals = _check_journal_files(medium)
    finally:
        medium.close()
        medium.close()  # close must be idempotent

    # Through a Store, so the medium carries real snapshots round trip.
    medium = factory()
    try:
        store = Store(medium)
        data = {"": "", "a|b:c": "v1|v2:ok", "\x00": "\ud800", "😀": "e\u0301"}
        store.update(data)
        store.shutdown()
        assert len(store) == 0, "shutdown must clear memory"
        store.restore()
        assert dict(store.items()) == data, "restore must return what shutdown published"
        blob = medium.read()
        assert blob is not None
        assert codec.decode(blob) == data, "the medium must hold the exact bytes published"
        if journals:
            _check_journal_store(medium, data)
    finally:
        medium.close()


def _raises_medium_error(call: Callable[[], object]) -> bool:
    try:
        call()
    except MediumError:
        return True
    return False


def _check_journal_files(medium: Medium) -> bool:
    """The journal half of the contract (media/base.py); False if the medium holds none.

    Runs on a medium that already holds snapshots: journals and snapshots
    must leave each other alone.
    """
    ids = medium.journal_ids()
    assert ids == [], "a new medium must hold no journal"
    assert medium.read_journal(1) is None, "read_journal of a missing journal must be None"
    try:
        file = medium.create_journal(1, b"head")
    except MediumError:
        # Not every medium holds journals (it then lists none, so stores
        # restore from it); one that cannot must refuse writing one loudly,
        # so a Store asked to journal there fails instead of acknowledging
        # writes it cannot keep.
        for call in (
            lambda: medium.open_journal(1),
            lambda: medium.remove_journals(1),
            lambda: medium.quarantine_journal(1),
            lambda: Store(medium, journal=True).restore(),
        ):
            assert _raises_medium_error(call), (
                "a medium that cannot hold journals must say so with MediumError"
            )
        assert medium.journal_ids() == [], "a medium that cannot hold journals lists none"
        return False
    file.close()
    medium.remove_journals(2)
    assert medium.journal_ids() == [], "remove_journals must remove a created journal"
    snapshots = medium.generations()

    file = medium.create_journal(1, b"head")
    assert file.size == 4, "a new journal's size must be its header's"
    assert medium.journal_ids() == [1], "journal_ids must list a created journal"
    assert medium.read_journal(1) == b"head", "a new journal must hold exactly its header"
    file.write(b"abc")
    file.write(b"")
    assert file.size == 7, "size must count every byte written"
    assert medium.read_journal(1) == b"headabc", "written bytes must be readable at once"
    file.sync()
    file.close()
    file.close()  # close must be idempotent
    assert _raises_medium_error(lambda: file.write(b"x")), (
        "a closed journal must refuse writes with MediumError"
    )
    assert medium.read_journal(1) == b"headabc", "a refused write must change nothing"

    file = medium.open_journal(1)
    assert file.size == 7, "open_journal must open at the journal's end"
    file.write(b"def")
    assert medium.read_journal(1) == b"headabcdef", "open_journal must append, not overwrite"
    file.truncate(5)
    assert file.size == 5, "truncate must set size"
    assert medium.read_journal(1) == b"heada", "truncate must cut the journal to the size"
    file.write(b"Z")
    assert medium.read_journal(1) == b"headaZ", "writes after truncate must follow the cut"
    file.close()

    medium.create_journal(1, b"fresh").close()
    assert medium.read_journal(1) == b"fresh", (
        "create_journal must replace a leftover journal of that id"
    )
    for jid in (7, 3, 5):
        medium.create_journal(jid, b"h%d" % jid).close()
    assert medium.journal_ids() == [1, 3, 5, 7], "journal_ids must list every id, ascending"
    assert medium.read_journal(5) == b"h5", "each journal must keep its own bytes"
    assert _raises_medium_error(lambda: medium.open_journal(4)), (
        "open_journal of a missing journal must raise MediumError"
    )
    assert isinstance(medium.describe_journal(3), str)

    assert isinstance(medium.quarantine_journal(3), str)
    assert medium.journal_ids() == [1, 5, 7], "quarantine_journal must unlist that journal"
    assert medium.read_journal(3) is None, "a journal set aside must not be read"
    medium.create_journal(3, b"again").close()
    assert medium.read_journal(3) == b"again", "a journal set aside must not block its id"
    medium.remove_journals(5)
    assert medium.journal_ids() == [5, 7], "remove_journals must remove exactly the ids below"
    medium.remove_journals(2)
    assert medium.journal_ids() == [5, 7], "remove_journals must keep the ids at or above"
    assert medium.read_journal(3) is None, "a removed journal must be gone"

    assert medium.generations() == snapshots, "journals must leave the snapshots alone"
    medium.publish([b"snapshot"])
    assert medium.journal_ids() == [5, 7], "a publish must leave the journals alone"
    medium.remove_journals(8)
    assert medium.journal_ids() == [], "remove_journals must remove every id below"
    assert medium.read() == b"snapshot", "removing journals must leave the snapshots alone"
    return True


def _check_journal_store(medium: Medium, data: dict[str, str]) -> None:
    """Through Stores with a journal: a write is on the medium before it returns.

    ``medium`` holds a snapshot of ``data`` and no journal.
    """
    writer = Store(medium, databases=2, journal=True, fsync="always")
    writer.restore()
    assert dict(writer.items()) == data, "a journaled Store must restore the snapshot"
    generations = medium.generations()
    writer.set("gone", "soon")
    writer.update({"a|b:c": "v3", "new": "\ud800"})
    writer.db(1).set("other", "keyspace")
    writer.delete("gone")
    expected = {**data, "a|b:c": "v3", "new": "\ud800"}
    assert medium.generations() == generations, "journal writes must not publish snapshots"
    reader = Store(medium, databases=2)  # reads the journals, never writes them
    reader.restore()
    assert dict(reader.items()) == expected, "the journals must carry every write"
    assert dict(reader.db(1).items()) == {"other": "keyspace"}, "and every keyspace"
    writer.shutdown()
    reader.restore()
    assert dict(reader.items()) == expected, "a snapshot plus its journals must hold every write"
