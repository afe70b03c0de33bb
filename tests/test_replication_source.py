"""The shipper's reading of a live store directory: whole records only, at record boundaries."""

from __future__ import annotations

import os
from pathlib import Path

import snapkv
from snapkv import journal as jr
from snapkv.replication.source import LocalSource


def _journal(directory: Path) -> Path:
    (path,) = sorted(directory.glob("journal-*.skj"))
    return path


def test_segments_of_a_live_journal_concatenate_to_its_records(tmp_path: Path) -> None:
    store = snapkv.open(tmp_path / "data", fsync="no")
    source = LocalSource(tmp_path / "data")
    (jid,) = source.journal_ids()
    pieces = []
    offset = 0
    for round_ in range(5):
        for i in range(50):
            store.set(f"k{round_}-{i}", "v" * i)
        piece = source.whole_records(jid, offset, 1 << 20)
        assert piece
        pieces.append(piece)
        offset += len(piece)
    assert source.whole_records(jid, offset, 1 << 20) == b""
    shipped = b"".join(pieces)
    scan = jr.scan_journal(shipped, jid=jid)
    assert scan.tail == jr.TAIL_CLEAN
    assert len(scan.ops) == 250
    store.close()
    # The closed journal is cut to its records: exactly what was shipped.
    assert _journal(tmp_path / "data").read_bytes() == shipped


def test_a_record_still_being_written_waits_for_the_next_read(tmp_path: Path) -> None:
    directory = tmp_path / "data"
    store = snapkv.open(directory, fsync="no")
    store.set("a", "1")
    store.set("b", "2")
    store.close()
    path = _journal(directory)
    whole = path.read_bytes()
    # The last record half copied in, the rest still the preallocated zeros.
    last = jr.scan_journal(whole).valid_end
    with path.open("r+b") as file:
        file.seek(len(whole) - 5)
        file.write(b"\0" * 5 + b"\0" * 4096)
    source = LocalSource(directory)
    (jid,) = source.journal_ids()
    got = source.whole_records(jid, 0, 1 << 20)
    assert got is not None
    assert len(got) < last
    assert len(jr.scan_journal(got).ops) == 1
    with path.open("r+b") as file:
        file.write(whole)  # the record completed
    rest = source.whole_records(jid, len(got), 1 << 20)
    assert got + (rest or b"") == whole


def test_a_limit_cuts_at_a_record_boundary_and_never_below_one_record(tmp_path: Path) -> None:
    directory = tmp_path / "data"
    store = snapkv.open(directory, fsync="no")
    for i in range(20):
        store.set(f"k{i}", "x" * 100)
    store.close()
    source = LocalSource(directory)
    (jid,) = source.journal_ids()
    offset, pieces = 0, []
    while piece := source.whole_records(jid, offset, 300):
        pieces.append(piece)
        offset += len(piece)
    assert len(pieces) > 5
    for piece in pieces[1:]:
        assert len(piece) <= 300
        # Each piece is whole records: scanning it behind a header finds no tail.
        scan = jr.scan_journal(jr.header(jid) + piece, jid=jid)
        assert scan.tail == jr.TAIL_CLEAN and scan.ops
    assert b"".join(pieces) == _journal(directory).read_bytes()
    # A limit smaller than one record still makes progress.
    first = source.whole_records(jid, len(jr.header(jid)), 10)
    assert first is not None and len(jr.scan_journal(jr.header(jid) + first).ops) == 1


def test_newest_snapshot_names_its_journal_and_a_removed_journal_reads_as_gone(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "data"
    source = LocalSource(directory)
    store = snapkv.open(directory, fsync="no")
    try:
        assert source.newest_snapshot() is None
        (first,) = source.journal_ids()
        store.set("a", "1")
        store.save()
        snapshot = source.newest_snapshot()
        assert snapshot is not None
        assert snapshot.journal_next == first + 1
        assert snapshot.size == os.path.getsize(snapshot.path)
        assert source.journal_ids() == [first + 1]
        assert source.whole_records(first, 0, 1 << 20) is None
    finally:
        store.close()
