"""``snapkv check``: real store directories, damaged byte by byte, checked and repaired.

Every directory is written by a real journaled Store and then damaged the
way a crash or bit rot would (a journal cut mid-record, a zero-filled or
garbage tail, a flipped bit, a corrupt snapshot, a missing journal, a
leftover temporary file). Each test asserts the report exactly (offsets,
checks, bytes, records), that the verdict agrees with what ``snapkv.open``
really does, and that after a repair ``open`` yields exactly the prefix of
the history that the report said it would keep, with backups holding the
original bytes. The command runs as a real subprocess.
"""

from __future__ import annotations

import json
import os
import pty
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import snapkv
from snapkv import journal as jr
from snapkv.check import (
    OPENS,
    VERDICT_DAMAGED,
    VERDICT_LOSS,
    VERDICT_OK,
    CheckReport,
    DirectoryChangedError,
    Prediction,
    check_directory,
    repair_directory,
)
from snapkv.check import report as check_report
from snapkv.errors import CorruptJournalError, CorruptSnapshotError, StoreLockedError

# Far in the future, so the expiring key is live whatever the real clock says.
EXPIRE_AT = 4_000_000_000
SNAPSHOT_KEYS = {f"s{i}": f"snap-{i}" for i in range(5)}
JOURNAL_KEYS = [(f"j{i}", f"journal value {i} " + "x" * i) for i in range(8)]
# 2027-01-15 08:00:00 UTC: the time repairs stamp their backups with.
BACKUP_CLOCK = 1_800_000_000.0
BACKUP_STAMP = "20270115T080000Z"

JOURNAL_1 = "journal-0000000000000001.skj"
JOURNAL_2 = "journal-0000000000000002.skj"
JOURNAL_3 = "journal-0000000000000003.skj"
JOURNAL_4 = "journal-0000000000000004.skj"
SNAPSHOT_1 = "snapshot-0000000000000001.skv"
SNAPSHOT_2 = "snapshot-0000000000000002.skv"

Contents = dict[int, dict[str, str]]


# ------------------------------------------------ building and damaging directories


def build(directory: Path) -> None:
    """Snapshot 1 (journal_next 2: keyspaces 0 and 3, one key expiring), then journal 2.

    Journal 2 holds one SET per item of JOURNAL_KEYS, in order, and
    nothing else: the functions below compute every record's offset from
    the encoder, and the first test checks that the file is exactly that.
    """
    store = snapkv.open(directory, journal=True, fsync="never")
    try:
        for key, value in SNAPSHOT_KEYS.items():
            store.set(key, value)
        store.db(3).set("in-three", "3", expire_at=EXPIRE_AT)
        store.save()
        for key, value in JOURNAL_KEYS:
            store.set(key, value)
    finally:
        store.close()


def records() -> list[bytes]:
    return [jr.set_record(0, key, value) for key, value in JOURNAL_KEYS]


def offsets() -> list[int]:
    """Offset of each record of journal 2."""
    result, pos = [], jr.HEADER_SIZE
    for record in records():
        result.append(pos)
        pos += len(record)
    return result


def prefix(kept: int) -> Contents:
    """What a store holds after the snapshot and the first ``kept`` journal records."""
    zero = dict(SNAPSHOT_KEYS)
    zero.update(JOURNAL_KEYS[:kept])
    return {0: zero, 3: {"in-three": "3"}}


def contents(directory: Path) -> Contents:
    """Open the directory as a user would, read every keyspace, close without saving."""
    store = snapkv.open(directory)
    try:
        found = {n: dict(store.db(n).items()) for n in range(store.databases)}
    finally:
        store.close()
    return {n: entries for n, entries in found.items() if entries}


def flip(path: Path, offset: int, bit: int = 0) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 1 << bit
    path.write_bytes(bytes(data))


def files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.name != "LOCK"}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("template") / "data"
    build(directory)
    return directory


@pytest.fixture
def data(template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the built directory."""
    return Path(shutil.copytree(template, tmp_path / "data"))


def garbage_frame() -> bytes:
    """A record frame whose length fits but whose checksum fails: a garbage tail."""
    return struct.pack("<IIB", 0xDEADBEEF, 5, jr.TYPE_SET) + b"abcde"


# --------------------------------------------------------------- a clean store


def test_the_built_journal_is_exactly_the_expected_records(data: Path) -> None:
    assert sorted(p.name for p in data.iterdir()) == ["LOCK", JOURNAL_2, SNAPSHOT_1]
    assert (data / JOURNAL_2).read_bytes() == jr.header(2) + b"".join(records())


def test_a_clean_directory_is_ok_and_described_in_full(data: Path) -> None:
    report = check_directory(data)
    assert report.verdict == VERDICT_OK and report.ok
    assert not report.in_use
    (snap,) = report.snapshots
    assert (snap.name, snap.status, snap.role, snap.version) == (SNAPSHOT_1, "ok", "loaded", 2)
    assert snap.entries == 6 and snap.expiring == 1 and snap.journal_next == 2
    assert [(k.number, k.entries, k.expiring) for k in snap.keyspaces] == [(0, 5, 0), (3, 1, 1)]
    (journal,) = report.journals
    size = (data / JOURNAL_2).stat().st_size
    assert (journal.name, journal.status, journal.role) == (JOURNAL_2, "ok", "replayed")
    assert (journal.records, journal.valid_end, journal.size) == (len(JOURNAL_KEYS), size, size)
    assert report.chain.snapshot == SNAPSHOT_1
    assert report.chain.replay == (2,)
    assert report.findings == () and report.repairs == () and report.others == ()
    assert contents(data) == prefix(len(JOURNAL_KEYS))


def test_an_empty_or_new_directory_is_ok(tmp_path: Path) -> None:
    report = check_directory(tmp_path)
    assert report.ok and report.snapshots == () and report.journals == ()
    assert report.chain.snapshot is None and report.chain.replay == ()
    assert list(tmp_path.iterdir()) == []  # checking creates nothing, not even LOCK


def test_a_missing_directory_raises_the_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        check_directory(tmp_path / "absent")


# --------------------------------------------------------------- journal tails


def test_journal_cut_mid_record_is_a_torn_tail(data: Path) -> None:
    last = offsets()[-1]
    original = (data / JOURNAL_2).read_bytes()
    (data / JOURNAL_2).write_bytes(original[: last + 12])
    report = check_directory(data)
    assert report.verdict == VERDICT_LOSS
    (journal,) = report.journals
    assert (journal.status, journal.tail) == ("tail", jr.TAIL_TORN)
    assert (journal.valid_end, journal.dropped_bytes) == (last, 12)
    assert journal.records == len(JOURNAL_KEYS) - 1
    assert [(f.severity, f.name) for f in report.findings] == [("loss", JOURNAL_2)]
    assert "torn tail at offset" in report.findings[0].message
    (action,) = report.repairs
    assert (action.kind, action.name, action.keep, action.lost_bytes, action.lost_records) == (
        "truncate",
        JOURNAL_2,
        last,
        12,
        0,
    )


def _recoverable(data: Path, tail: bytes, kind: str) -> None:
    original = (data / JOURNAL_2).read_bytes()
    (data / JOURNAL_2).write_bytes(original + tail)
    report = check_directory(data)
    assert report.verdict == VERDICT_LOSS
    (journal,) = report.journals
    assert (journal.status, journal.tail) == ("tail", kind)
    assert (journal.valid_end, journal.dropped_bytes) == (len(original), len(tail))
    assert journal.records == len(JOURNAL_KEYS)


def test_zeros_after_the_newest_journals_records_are_cut_without_loss(data: Path) -> None:
    """What a process that did not close the store leaves (FORMAT.md J6 rule 3): no loss."""
    original = (data / JOURNAL_2).read_bytes()
    (data / JOURNAL_2).write_bytes(original + bytes(100))
    report = check_directory(data)
    assert report.verdict == VERDICT_OK and report.findings == ()
    assert report.prediction == Prediction(OPENS)
    (journal,) = report.journals
    assert (journal.status, journal.tail, journal.role) == ("zeros", jr.TAIL_ZERO, "replayed")
    assert (journal.valid_end, journal.dropped_bytes) == (len(original), 100)
    assert journal.records == len(JOURNAL_KEYS)
    # open() cuts them itself: nothing for a repair to do.
    assert report.repairs == ()
    assert repair_directory(data, report).actions == ()
    assert contents(data) == prefix(len(JOURNAL_KEYS))
    assert (data / JOURNAL_2).read_bytes() == original


def test_garbage_tail(data: Path) -> None:
    _recoverable(data, garbage_frame(), jr.TAIL_GARBAGE)


@pytest.mark.parametrize(
    "damage",
    ["torn", "garbage"],
)
def test_repairing_a_tail_keeps_every_good_record_and_a_backup(data: Path, damage: str) -> None:
    original = (data / JOURNAL_2).read_bytes()
    good = {"torn": offsets()[-1], "garbage": len(original)}[damage]
    damaged = {
        "torn": original[: offsets()[-1] + 3],
        "garbage": original + garbage_frame(),
    }[damage]
    (data / JOURNAL_2).write_bytes(damaged)
    report = check_directory(data)
    result = repair_directory(data, report, clock=lambda: BACKUP_CLOCK)
    backup = f"{JOURNAL_2}.bak-{BACKUP_STAMP}"
    assert result.backups == (backup,)
    assert (data / backup).read_bytes() == damaged
    assert (data / JOURNAL_2).read_bytes() == original[:good]
    assert result.lost_bytes == len(damaged) - good and result.lost_records == 0
    assert result.after.verdict == VERDICT_OK
    assert [o.kind for o in result.after.others] == ["backup"]
    kept = len(JOURNAL_KEYS) - 1 if damage == "torn" else len(JOURNAL_KEYS)
    assert contents(data) == prefix(kept)


# -------------------------------------------------------- damage mid-journal


def test_a_flipped_bit_mid_journal_is_damage_with_offset_and_check(data: Path) -> None:
    at = offsets()[3]
    flip(data / JOURNAL_2, at + jr.FRAME_SIZE + 6)  # inside record 3's body
    report = check_directory(data)
    assert report.verdict == VERDICT_DAMAGED
    (journal,) = report.journals
    assert (journal.status, journal.offset, journal.check) == ("damaged", at, "record-crc")
    assert journal.records == 3
    assert journal.discarded_records == len(JOURNAL_KEYS) - 4
    assert journal.dropped_bytes == (data / JOURNAL_2).stat().st_size - at
    (finding,) = report.findings
    assert finding.severity == "damage" and f"at offset {at}" in finding.message
    # The verdict is what open() does: it refuses, with the same offset and check.
    with pytest.raises(CorruptJournalError) as raised:
        snapkv.open(data).close()
    assert (raised.value.offset, raised.value.check) == (at, "record-crc")


def test_repairing_mid_journal_damage_keeps_exactly_the_prefix(data: Path) -> None:
    at = offsets()[3]
    flip(data / JOURNAL_2, at + jr.FRAME_SIZE + 6)
    damaged = (data / JOURNAL_2).read_bytes()
    report = check_directory(data)
    (action,) = report.repairs
    assert (action.kind, action.keep, action.lost_records) == ("truncate", at, 4)
    result = repair_directory(data, report, clock=lambda: BACKUP_CLOCK)
    assert (data / result.backups[0]).read_bytes() == damaged
    assert result.lost_bytes == len(damaged) - at and result.lost_records == 4
    assert result.after.ok
    assert contents(data) == prefix(3)


def test_a_journal_with_a_bad_header_is_set_aside(data: Path) -> None:
    original = (data / JOURNAL_2).read_bytes()
    flip(data / JOURNAL_2, 0)
    report = check_directory(data)
    (journal,) = report.journals
    assert (journal.status, journal.offset, journal.check) == ("bad-header", 0, "magic")
    assert report.verdict == VERDICT_DAMAGED
    (action,) = report.repairs
    assert (action.kind, action.lost_bytes, action.lost_records) == (
        "set-aside",
        len(original),
        None,
    )
    result = repair_directory(data, report)
    assert result.actions[0].target == f"{JOURNAL_2}.corrupt"
    assert result.backups == ()  # a renamed file is its own backup
    assert (data / f"{JOURNAL_2}.corrupt").read_bytes()[1:] == original[1:]
    assert result.after.ok
    assert contents(data) == prefix(0)


# ---------------------------------------------------------------- the chain


def build_two_generations(directory: Path) -> None:
    """Snapshot 1 (journal_next 2), journal 2, snapshot 2 (journal_next 3), journal 3."""
    store = snapkv.open(directory, journal=True, fsync="never")
    try:
        store.set("a", "1")
        store.save()
        store.set("b", "2")
        store.save()
        store.set("c", "3")
        store.set("b", "two")
    finally:
        store.close()


def test_corrupt_newest_snapshot_is_refused_then_set_aside(tmp_path: Path) -> None:
    build_two_generations(tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*-*")) == [
        JOURNAL_2,
        JOURNAL_3,
        SNAPSHOT_1,
        SNAPSHOT_2,
    ]
    first_entries = 16 + 17  # header, then META (frame and journal_next)
    flip(tmp_path / SNAPSHOT_2, first_entries + 12)
    report = check_directory(tmp_path)
    assert report.verdict == VERDICT_DAMAGED
    newest, older = report.snapshots
    assert (newest.name, newest.status, newest.role) == (SNAPSHOT_2, "corrupt", "newer")
    assert (newest.offset, newest.check) == (first_entries, "record-crc")
    assert (older.name, older.status, older.role, older.journal_next) == (
        SNAPSHOT_1,
        "ok",
        "loaded",
        2,
    )
    assert report.chain.snapshot == SNAPSHOT_1 and report.chain.replay == (2, 3)
    assert "open() refuses" in report.findings[0].message
    with pytest.raises(CorruptSnapshotError):
        snapkv.open(tmp_path).close()
    damaged = (tmp_path / SNAPSHOT_2).read_bytes()
    result = repair_directory(tmp_path, report)
    assert [(a.kind, a.name, a.target) for a in result.actions] == [
        ("set-aside", SNAPSHOT_2, f"{SNAPSHOT_2}.corrupt")
    ]
    assert (tmp_path / f"{SNAPSHOT_2}.corrupt").read_bytes() == damaged
    assert result.after.ok
    # The older snapshot and both journals hold every write.
    assert contents(tmp_path) == {0: {"a": "1", "b": "two", "c": "3"}}


def test_torn_tail_in_a_journal_that_is_not_the_newest_keeps_the_prefix(tmp_path: Path) -> None:
    build_two_generations(tmp_path)
    (tmp_path / SNAPSHOT_2).unlink()  # snapshot 1 then needs journals 2 and 3
    journal_2 = (tmp_path / JOURNAL_2).read_bytes()
    (tmp_path / JOURNAL_2).write_bytes(journal_2[:-4])
    report = check_directory(tmp_path)
    assert report.verdict == VERDICT_DAMAGED
    assert report.chain.replay == (2,) and report.chain.unreachable == (3,)
    assert "tail-not-newest" in report.findings[0].message
    with pytest.raises(CorruptJournalError) as raised:
        snapkv.open(tmp_path).close()
    assert raised.value.check == "tail-not-newest"
    # Journal 3 holds 2 records written after the lost one: set aside first.
    assert [(a.kind, a.name, a.lost_records) for a in report.repairs] == [
        ("set-aside", JOURNAL_3, 2),
        ("truncate", JOURNAL_2, 0),
    ]
    result = repair_directory(tmp_path, report)
    assert result.after.ok
    assert contents(tmp_path) == {0: {"a": "1"}}


def test_a_gap_in_the_journal_chain_is_refused_then_cut(data: Path) -> None:
    late = jr.header(4) + jr.set_record(0, "late", "x") + jr.set_record(0, "later", "y")
    (data / JOURNAL_4).write_bytes(late)
    report = check_directory(data)
    assert report.verdict == VERDICT_DAMAGED
    assert report.chain.missing == ((3, 3),)
    assert report.chain.replay == (2,) and report.chain.unreachable == (4,)
    assert report.findings[0].name == JOURNAL_3  # the file that is not there
    assert "finds only 2 and 4" in report.findings[0].message
    with pytest.raises(CorruptJournalError) as raised:
        snapkv.open(data).close()
    assert raised.value.check == "journal-sequence"
    (action,) = report.repairs
    assert (action.kind, action.name, action.lost_records) == ("set-aside", JOURNAL_4, 2)
    result = repair_directory(data, report)
    assert (data / f"{JOURNAL_4}.corrupt").read_bytes() == late
    assert result.after.ok and result.lost_records == 2
    assert contents(data) == prefix(len(JOURNAL_KEYS))


def test_the_journal_a_snapshot_starts_from_is_missing(data: Path) -> None:
    (data / JOURNAL_2).unlink()
    (data / JOURNAL_3).write_bytes(jr.header(3) + jr.set_record(0, "late", "x"))
    report = check_directory(data)
    assert report.chain.missing == ((2, 2),)
    assert report.chain.replay == () and report.chain.unreachable == (3,)
    assert report.verdict == VERDICT_DAMAGED
    with pytest.raises(CorruptJournalError):
        snapkv.open(data).close()
    assert repair_directory(data, report).after.ok
    assert contents(data) == prefix(0)


def test_journals_the_loaded_snapshot_contains_are_fallback_or_obsolete(tmp_path: Path) -> None:
    build_two_generations(tmp_path)
    (tmp_path / JOURNAL_1).write_bytes(jr.header(1))  # as if a prune had failed
    report = check_directory(tmp_path)
    assert report.ok
    assert report.chain.replay == (3,)
    assert report.chain.fallback == (2,) and report.chain.obsolete == (1,)
    # Damage in a journal only an older generation needs: open() is unaffected.
    flip(tmp_path / JOURNAL_2, jr.HEADER_SIZE + jr.FRAME_SIZE + 2)
    report = check_directory(tmp_path)
    assert report.verdict == VERDICT_DAMAGED
    assert "older generation would need it" in report.findings[0].message
    assert contents(tmp_path) == {0: {"a": "1", "b": "two", "c": "3"}}


# -------------------------------------------------------------- leftovers


def test_a_tmp_leftover_is_reported_but_harmless(data: Path) -> None:
    leftover = ".tmp-0000000000000009-4242"
    (data / leftover).write_bytes(b"half a snapshot")
    (data / "notes.txt").write_text("mine")
    report = check_directory(data)
    assert report.ok
    assert [(o.name, o.kind, o.size) for o in report.others] == [
        (leftover, "temporary", 15),
        ("notes.txt", "unknown", 4),
    ]
    assert [(f.severity, f.name) for f in report.findings] == [
        ("note", leftover),
        ("note", "notes.txt"),
    ]
    assert "the next open() removes it" in report.findings[0].message


def test_the_replica_id_of_a_replicated_directory_is_snapkv_s_own(data: Path) -> None:
    (data / "REPLICA").write_text("0123456789abcdef\n")
    report = check_directory(data)
    assert report.ok and report.others == () and report.findings == ()


# ---------------------------------------------------------- locking, changes


@pytest.fixture
def open_store(data: Path) -> Iterator[snapkv.Store]:
    store = snapkv.open(data, journal=True, fsync="never")
    yield store
    store.close()


def test_check_reads_a_directory_a_store_has_open(data: Path, open_store: snapkv.Store) -> None:
    report = check_directory(data)
    assert report.in_use and report.verdict == VERDICT_OK
    assert report.findings[0].severity == "note" and "has this directory open" in (
        report.findings[0].message
    )
    open_store.set("still", "writable")  # the check took no lock


def test_repair_refuses_a_directory_a_store_has_open(data: Path, open_store: snapkv.Store) -> None:
    (data / JOURNAL_2).write_bytes((data / JOURNAL_2).read_bytes() + garbage_frame())
    before = files(data)
    report = check_directory(data)
    with pytest.raises(StoreLockedError, match="refusing to repair"):
        repair_directory(data, report)
    assert files(data) == before


def test_repair_refuses_a_directory_that_changed_since_the_check(data: Path) -> None:
    flip(data / JOURNAL_2, offsets()[2] + jr.FRAME_SIZE)
    report = check_directory(data)
    (data / JOURNAL_2).write_bytes((data / JOURNAL_2).read_bytes() + bytes(3))
    before = files(data)
    with pytest.raises(DirectoryChangedError):
        repair_directory(data, report)
    assert files(data) == before


def test_repair_holds_the_lock_so_no_store_opens_meanwhile(data: Path) -> None:
    """The LOCK is free again afterwards: a Store opens the repaired directory."""
    (data / JOURNAL_2).write_bytes((data / JOURNAL_2).read_bytes() + garbage_frame())
    repair_directory(data, check_directory(data))
    assert not check_directory(data).in_use
    assert contents(data) == prefix(len(JOURNAL_KEYS))


# -------------------------------------------------- the property, on random damage


@st.composite
def damage(draw: st.DrawFn) -> tuple[str, int, int]:
    size = len(jr.header(2) + b"".join(records()))
    kind = draw(st.sampled_from(["cut", "flip", "zeros", "garbage"]))
    if kind == "cut":
        return kind, draw(st.integers(0, size - 1)), 0
    if kind == "flip":
        return kind, draw(st.integers(0, size - 1)), draw(st.integers(0, 7))
    return kind, draw(st.integers(1, 64)), 0


def _damage(path: Path, kind: str, a: int, b: int) -> None:
    data = path.read_bytes()
    if kind == "cut":
        path.write_bytes(data[:a])
    elif kind == "flip":
        flip(path, a, b)
    elif kind == "zeros":
        path.write_bytes(data + bytes(a))
    else:
        path.write_bytes(data + (garbage_frame() * a)[:a])


def _kept(report: CheckReport) -> int:
    (journal,) = report.journals
    return 0 if journal.status == "bad-header" else journal.records


@settings(max_examples=40, deadline=None)
@given(damage())
def test_check_agrees_with_open_and_repair_keeps_a_prefix(
    template: Path, hurt: tuple[str, int, int]
) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        data = Path(shutil.copytree(template, Path(scratch) / "data"))
        _damage(data / JOURNAL_2, *hurt)
        damaged = (data / JOURNAL_2).read_bytes()
        report = check_directory(data)
        opened = Path(shutil.copytree(data, Path(scratch) / "opened"))
        try:
            found = contents(opened)
        except CorruptJournalError:
            assert report.verdict == VERDICT_DAMAGED
        else:
            assert report.verdict != VERDICT_DAMAGED
            assert found == prefix(_kept(report))
        result = repair_directory(data, report)
        assert result.after.ok
        assert contents(data) == prefix(_kept(report))
        for name in result.backups:
            assert (data / name).read_bytes() == damaged


# ------------------------------------------------------------- the command


def cli(*args: str | Path, tty_answer: str | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m snapkv check ...``; stdin is /dev/null, or a terminal that types the answer."""
    command = [sys.executable, "-m", "snapkv", "check", *map(str, args)]
    if tty_answer is None:
        return subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    main, child = pty.openpty()
    try:
        with subprocess.Popen(
            command, stdin=child, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ) as process:
            os.close(child)
            child = -1
            os.write(main, tty_answer.encode() + b"\n")
            stdout, stderr = process.communicate(timeout=120)
        return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    finally:
        os.close(main)
        if child >= 0:
            os.close(child)


def test_cli_ok_directory_exits_0(data: Path) -> None:
    result = cli(data)
    assert result.returncode == 0, result.stderr
    assert f"{SNAPSHOT_1}  OK  v2" in result.stdout
    assert f"{JOURNAL_2}   OK  {len(JOURNAL_KEYS)} records" in result.stdout
    assert result.stdout.rstrip().endswith("verdict: ok")
    assert result.stderr == ""


def test_cli_reports_damage_with_offset_and_check_and_exits_1(data: Path) -> None:
    at = offsets()[3]
    flip(data / JOURNAL_2, at + jr.FRAME_SIZE + 6)
    result = cli(data)
    assert result.returncode == 1, result.stderr
    assert f"DAMAGED at offset {at} (check record-crc)" in result.stdout
    assert "verdict: damaged" in result.stdout
    assert "open() refuses" in result.stdout


def test_cli_reports_what_a_tail_loses_and_exits_1(data: Path) -> None:
    size = (data / JOURNAL_2).stat().st_size
    (data / JOURNAL_2).write_bytes((data / JOURNAL_2).read_bytes() + garbage_frame())
    result = cli(data)
    assert result.returncode == 1
    assert f"GARBAGE TAIL at offset {size}: 14 bytes" in result.stdout
    assert "verdict: recoverable-with-loss" in result.stdout


def test_cli_says_zeros_after_the_records_are_cut_and_exits_0(data: Path) -> None:
    size = (data / JOURNAL_2).stat().st_size
    (data / JOURNAL_2).write_bytes((data / JOURNAL_2).read_bytes() + bytes(40))
    result = cli(data)
    assert result.returncode == 0, result.stdout
    (line,) = [line for line in result.stdout.splitlines() if line.startswith(JOURNAL_2)]
    assert line.split(maxsplit=1)[1] == (
        f"OK  {len(JOURNAL_KEYS)} records, {size:,} bytes, then 40 bytes of zeros "
        "(preallocated space left by a process that did not close the store): open() cuts "
        "them, nothing is lost  [replayed]"
    )
    assert "open(): opens, loading everything" in result.stdout
    assert "verdict: ok" in result.stdout and "--repair" not in result.stdout


def test_cli_json_parses_and_carries_the_report(data: Path) -> None:
    at = offsets()[3]
    flip(data / JOURNAL_2, at + jr.FRAME_SIZE + 6)
    result = cli(data, "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["verdict"] == "damaged"
    assert report["journals"][0]["offset"] == at
    assert report["journals"][0]["check"] == "record-crc"
    assert report["repairs"][0]["kind"] == "truncate"
    assert report["snapshots"][0]["keyspaces"] == [
        {"number": 0, "entries": 5, "expiring": 0},
        {"number": 3, "entries": 1, "expiring": 1},
    ]


def test_cli_repair_without_a_terminal_or_yes_refuses_with_exit_2(data: Path) -> None:
    (data / JOURNAL_2).write_bytes((data / JOURNAL_2).read_bytes() + garbage_frame())
    before = files(data)
    result = cli(data, "--repair")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "pass --yes" in result.stderr
    assert files(data) == before


def test_cli_repair_yes_repairs_and_exits_0(data: Path) -> None:
    at = offsets()[3]
    flip(data / JOURNAL_2, at + jr.FRAME_SIZE + 6)
    damaged = (data / JOURNAL_2).read_bytes()
    result = cli(data, "--repair", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "repair plan" in result.stdout
    size = len(damaged)
    assert f"truncated {JOURNAL_2} from {size:,} to {at:,} bytes, removing {size - at:,}" in (
        result.stdout
    )
    assert "after repair: verdict ok" in result.stdout
    (backup,) = data.glob(f"{JOURNAL_2}.bak-*")
    assert backup.read_bytes() == damaged
    assert contents(data) == prefix(3)


def test_cli_json_repair_yes(data: Path) -> None:
    (data / JOURNAL_2).write_bytes((data / JOURNAL_2).read_bytes() + garbage_frame())
    result = cli(data, "--repair", "--yes", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["verdict"] == "recoverable-with-loss"
    assert out["repair"]["lost_bytes"] == len(garbage_frame())
    assert out["repair"]["after"]["verdict"] == "ok"


def build_mixed_damage(directory: Path) -> tuple[int, int]:
    """Snapshot 1, journal 2 (8 SETs), snapshot 2, journal 3 (3 SETs); then damage.

    Snapshot 2 gets a flipped bit (recovery falls back to snapshot 1) and
    journal 2 one inside its record 3 (3 records kept, 4 valid ones after
    the damaged one cut), so journal 3 comes after lost records. Returns
    the damaged offset in journal 2 and journal 2's size.
    """
    store = snapkv.open(directory, journal=True, fsync="never")
    try:
        store.set("a", "1")
        store.save()
        for key, value in JOURNAL_KEYS:
            store.set(key, value)
        store.save()
        for i in range(3):
            store.set(f"late{i}", str(i))
    finally:
        store.close()
    flip(directory / SNAPSHOT_2, 16 + 17 + 12)
    at = offsets()[3]
    flip(directory / JOURNAL_2, at + jr.FRAME_SIZE + 6)
    return at, (directory / JOURNAL_2).stat().st_size


def test_cli_repair_counts_what_it_removed_apart_from_what_it_set_aside(tmp_path: Path) -> None:
    at, size = build_mixed_damage(tmp_path)
    snapshot_2 = (tmp_path / SNAPSHOT_2).stat().st_size
    journal_3 = (tmp_path / JOURNAL_3).stat().st_size
    result = cli(tmp_path, "--repair", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    done = result.stdout.split("repaired:\n", 1)[1].splitlines()
    (backup,) = (p.name for p in tmp_path.glob(f"{JOURNAL_2}.bak-*"))
    assert done[0].startswith(
        f"  set aside {SNAPSHOT_2} as {SNAPSHOT_2}.corrupt ({snapshot_2} bytes, entries not "
        "countable: it is corrupt): snapshot corrupt: at offset 33: "
    )
    assert done[1] == (
        f"  set aside {JOURNAL_3} as {JOURNAL_3}.corrupt ({journal_3} bytes, 3 records): "
        "comes after a missing or damaged journal"
    )
    assert done[2].startswith(
        f"  truncated {JOURNAL_2} from {size} to {at} bytes, removing {size - at} bytes "
        f"holding 4 records that look valid (backup {backup}): journal damaged at offset {at}"
    )
    assert done[3] == (
        f"  total: removed {size - at} bytes (4 journal records) from 1 file, kept in 1 "
        f"backup; set aside 2 files as *.corrupt ({snapshot_2 + journal_3} bytes: 3 journal "
        "records and 1 file whose records cannot be counted)"
    )
    assert done[4] == "after repair: verdict ok"
    assert contents(tmp_path) == {0: {"a": "1", **dict(JOURNAL_KEYS[:3])}}


def test_repair_result_totals_and_json(tmp_path: Path) -> None:
    at, size = build_mixed_damage(tmp_path)
    aside = (tmp_path / SNAPSHOT_2).stat().st_size + (tmp_path / JOURNAL_3).stat().st_size
    result = cli(tmp_path, "--repair", "--yes", "--json")
    assert result.returncode == 0, result.stderr
    repair = json.loads(result.stdout)["repair"]
    assert repair["removed"] == {"files": 1, "bytes": size - at, "records": 4, "uncounted": 0}
    assert repair["set_aside"] == {"files": 2, "bytes": aside, "records": 3, "uncounted": 1}
    assert repair["backups"] == [p.name for p in tmp_path.glob(f"{JOURNAL_2}.bak-*")]


@pytest.mark.parametrize(("answer", "status"), [("n", 1), ("y", 0)])
def test_cli_repair_asks_on_a_terminal(data: Path, answer: str, status: int) -> None:
    (data / JOURNAL_2).write_bytes((data / JOURNAL_2).read_bytes() + garbage_frame())
    before = files(data)
    result = cli(data, "--repair", tty_answer=answer)
    assert result.returncode == status, result.stdout + result.stderr
    assert "Continue? [y/N]" in result.stderr
    if answer == "n":
        assert "nothing changed" in result.stdout
        assert files(data) == before
    else:
        assert check_directory(data).ok


def test_cli_repair_refuses_a_directory_a_store_has_open(
    data: Path, open_store: snapkv.Store
) -> None:
    (data / JOURNAL_2).write_bytes((data / JOURNAL_2).read_bytes() + garbage_frame())
    before = files(data)
    result = cli(data, "--repair", "--yes")
    assert result.returncode == 1
    assert "refusing to repair" in result.stderr
    assert files(data) == before
    checked = cli(data)  # reading is allowed, and says the directory is in use
    assert "a Store has this directory open" in checked.stdout


def test_cli_nothing_to_repair(data: Path) -> None:
    result = cli(data, "--repair", "--yes")
    assert result.returncode == 0
    assert "nothing to repair" in result.stdout


@pytest.mark.parametrize(
    "args",
    [("absent",), (".", "--yes")],
    ids=["missing-directory", "yes-without-repair"],
)
def test_cli_usage_errors_exit_2(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = cli(tmp_path / args[0], *args[1:])
    assert result.returncode == 2
    assert result.stderr.startswith("snapkv check: error: ")


def test_a_store_with_more_keyspaces_than_the_default_is_not_damage(tmp_path: Path) -> None:
    """open() refuses it with its default databases=16, which check predicts; the data is fine."""
    store = snapkv.open(tmp_path, journal=True, databases=32)
    store.db(3).set("low", "1")
    store.save()
    store.db(20).set("high", "2")  # in the journal only
    store.close()
    report = check_directory(tmp_path)
    assert (report.prediction.outcome, report.prediction.error) == ("refuses", "ValueError")
    assert "use databases=21 or more" in report.prediction.message
    assert report.verdict == VERDICT_OK
    with pytest.raises(ValueError, match="keyspace 20"):
        snapkv.open(tmp_path, journal=True).close()
    with snapkv.open(tmp_path, journal=True, databases=21) as store:
        assert store.db(20).get("high") == "2"
    # The snapshot alone can name the keyspace too.
    with snapkv.open(tmp_path, journal=True, databases=21) as store:
        store.save()
    report = check_directory(tmp_path)
    assert "use databases=21 or more" in report.prediction.message


# ------------------------------------------------------- records of values other than strings


#: A journal of values other than strings, written by the encoders (FORMAT.md J3).
TYPED_RECORDS = [
    jr.set_record(0, "a", "1"),
    jr.edit_record(0, "h", 1, 1, ["f", "v", "g", "w"]),
    jr.edit_record(0, "l", 2, 2, ["x", "y"]),
    jr.edit_record(0, "s", 3, 1, ["m"]),
    jr.edit_record(0, "z", 4, 1, [1.5, "m"]),
    jr.put_record(0, "h2", 1, ["f", "v", "g", "w"]),
    jr.rename_record(0, "h2", 0, "h3"),
    jr.rename_record(0, "l", 1, "l"),
]


def _typed_directory(directory: Path) -> None:
    """Journal 1 of SET, EDIT of every value type, PUT and RENAME, as a store would name it."""
    directory.mkdir(exist_ok=True)
    (directory / "journal-0000000000000001.skj").write_bytes(jr.header(1) + b"".join(TYPED_RECORDS))


def test_record_counts_name_every_kind_and_value_type() -> None:
    ops = jr.scan_journal(
        jr.header(1)
        + jr.edit_record(0, "h", 1, 1, ["f", "v"])
        + jr.edit_record(0, "z", 4, 1, [1.0, "m"])
        + jr.edit_record(0, "h", 1, 2, ["f"])
        + jr.put_record(0, "s", 3, ["a"])
        + jr.batch_record([jr.rename_record(0, "s", 1, "t"), jr.edit_record(0, "q", 9, 1, [])])
        + jr.set_record(0, "k", "v")
    ).ops
    counts = check_report.record_counts(ops)
    assert counts == {
        "EDIT": 4,
        "EDIT hash": 2,
        "EDIT zset": 1,
        "PUT": 1,
        "PUT set": 1,
        "BATCH": 1,
        "RENAME": 1,
        "EDIT type 9": 1,
        "SET": 1,
    }
    assert check_report.describe_counts(counts) == (
        "4 EDIT (2 hash, 1 zset, 1 type 9), 1 PUT (1 set), 1 BATCH, 1 RENAME, 1 SET"
    )
    assert check_report.journal_record_counts(b"not a journal") == {}


def test_check_counts_the_records_of_values(tmp_path: Path) -> None:
    _typed_directory(tmp_path)
    result = cli(tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("journal-0000000000000001.skj"))
    assert "OK  8 records" in lines[at]
    assert lines[at + 1].split("records: ")[1] == (
        "1 SET, 4 EDIT (1 hash, 1 list, 1 set, 1 zset), 1 PUT (1 hash), 2 RENAME"
    )
    report = json.loads(cli(tmp_path, "--json").stdout)
    assert report["journals"][0]["records_by_type"] == {
        "SET": 1,
        "EDIT": 4,
        "EDIT hash": 1,
        "EDIT list": 1,
        "EDIT set": 1,
        "EDIT zset": 1,
        "PUT": 1,
        "PUT hash": 1,
        "RENAME": 2,
    }


def test_check_reads_a_typed_snapshot_and_counts_only_the_good_records(tmp_path: Path) -> None:
    _typed_directory(tmp_path)
    with snapkv.open(tmp_path) as store:  # replays journal 1, then saves a v3 snapshot
        assert store.key_type("h3") == "hash"
    journal = max(tmp_path.glob("journal-*.skj"))
    journal.write_bytes(jr.header(int(journal.name[8:24])))
    with journal.open("ab") as tail:
        tail.write(jr.edit_record(0, "z", 4, 1, [-2.0, "n"]))
        tail.write(jr.edit_record(0, "z", 4, 1, [3.0, "o"])[:-3])  # a torn last record
    report = json.loads(cli(tmp_path, "--json").stdout)
    assert report["snapshots"][0]["status"] == "ok" and report["snapshots"][0]["version"] == 3
    newest = next(j for j in report["journals"] if j["name"] == journal.name)
    assert newest["tail"] == "torn"
    assert newest["records_by_type"] == {"EDIT": 1, "EDIT zset": 1}
