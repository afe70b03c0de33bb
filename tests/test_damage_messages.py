"""Refusing damaged data: the message says where, what recovery would drop, and the fix.

Every directory is written by a real journaled Store, then damaged the way
bit rot or a lost file would (a corrupt newest snapshot, a bit flipped in the
middle of a journal, a missing journal, a journal whose header is bad). For
each, the exact message is asserted, as ``snapkv.open`` raises it and as the
real ``snapkv run --dir`` prints it: the file, the offset and the check
named once, what ``fallback=True`` or ``repair=True`` would load, keep, cut
and set aside, and the command that repairs the directory. ``snapkv serve
--dir`` says the same with its own options' names (``--rdb-load-fallback
yes``, ``--aof-load-repair yes``). Then the printed command is run, and ``open()``
succeeds keeping every record written before the damage.
"""

from __future__ import annotations

import json
import pickle
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import snapkv
from snapkv import codec
from snapkv import journal as jr
from snapkv.check import check_directory
from snapkv.errors import CorruptJournalError, CorruptSnapshotError, SnapkvError
from snapkv.server import open_for
from snapkv.server.state import Config

SNAPSHOT_KEYS = {f"s{i}": f"snap-{i}" for i in range(5)}
JOURNAL_KEYS = [(f"j{i}", f"journal value {i} " + "x" * i) for i in range(8)]

SNAPSHOT_1 = "snapshot-0000000000000001.skv"
SNAPSHOT_2 = "snapshot-0000000000000002.skv"
JOURNAL_2 = "journal-0000000000000002.skj"
JOURNAL_3 = "journal-0000000000000003.skj"
JOURNAL_4 = "journal-0000000000000004.skj"

SNAPKV = (sys.executable, "-m", "snapkv")
FIX = (
    "To repair (nothing is deleted; cut files are backed up first), run: snapkv check {} "
    "--repair (it asks before changing anything; add --yes in a script)"
)


# ------------------------------------------------------------------ directories


def build(directory: Path) -> None:
    """Snapshot 1 (journal_next 2) with SNAPSHOT_KEYS, then journal 2: a SET per JOURNAL_KEYS."""
    store = snapkv.open(directory, journal=True, fsync="no")
    try:
        for key, value in SNAPSHOT_KEYS.items():
            store.set(key, value)
        store.save()
        for key, value in JOURNAL_KEYS:
            store.set(key, value)
    finally:
        store.close()


def build_two_generations(directory: Path) -> None:
    """Snapshot 1 (journal_next 2), journal 2, snapshot 2 (journal_next 3), journal 3."""
    store = snapkv.open(directory, journal=True, fsync="no")
    try:
        store.set("a", "1")
        store.save()
        store.set("b", "2")
        store.save()
        store.set("c", "3")
        store.set("b", "two")
    finally:
        store.close()


def offsets() -> list[int]:
    """Offset of each record of journal 2, and of its end."""
    result, pos = [], jr.HEADER_SIZE
    for key, value in JOURNAL_KEYS:
        result.append(pos)
        pos += len(jr.set_record(0, key, value))
    return [*result, pos]


def prefix(kept: int) -> dict[str, str]:
    """What the store holds after the snapshot and the first ``kept`` journal records."""
    return {**SNAPSHOT_KEYS, **dict(JOURNAL_KEYS[:kept])}


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 1
    path.write_bytes(bytes(data))


def contents(directory: Path) -> dict[str, str]:
    store = snapkv.open(directory, journal=True)
    try:
        return dict(store.items())
    finally:
        store.close()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("template") / "data"
    build(directory)
    return directory


@pytest.fixture
def data(template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the built directory."""
    return Path(shutil.copytree(template, tmp_path / "data"))


# --------------------------------------------------------------------- damage


def mid_journal(data: Path) -> tuple[str, int]:
    """A bit flipped inside record 3 of journal 2: the expected message, and records kept."""
    at = offsets()[3]
    flip(data / JOURNAL_2, at + jr.FRAME_SIZE + 6)
    size = (data / JOURNAL_2).stat().st_size
    reason = "record checksum mismatch, and a valid record follows it (damage, not a torn tail)"
    return (
        f"{data / JOURNAL_2}: {reason} (offset {at}, check record-crc). "
        f"open(repair=True) would keep the first 3 records of {JOURNAL_2} (cutting its last "
        f"{size - at} bytes, which hold 4 later records that look valid). {FIX.format(data)}"
    ), 3


def bad_header(data: Path) -> tuple[str, int]:
    """Journal 2's magic damaged: nothing in it can be trusted."""
    flip(data / JOURNAL_2, 0)
    size = (data / JOURNAL_2).stat().st_size
    magic = (data / JOURNAL_2).read_bytes()[:8].hex()
    return (
        f"{data / JOURNAL_2}: not a snapkv journal: bad magic {magic} (offset 0, check magic). "
        f"open(repair=True) would replay no journal and set aside {JOURNAL_2} ({size} bytes, "
        f"records not countable). {FIX.format(data)}"
    ), 0


def missing_journal(data: Path) -> tuple[str, int]:
    """Journal 4 holds two records, journal 3 is gone: a hole in the history."""
    late = jr.header(4) + jr.set_record(0, "late", "x") + jr.set_record(0, "later", "y")
    (data / JOURNAL_4).write_bytes(late)
    return (
        f"{data / JOURNAL_3}: missing: recovery replays every journal from 2 on, but finds "
        "only 2 and 4 (offset 0, check journal-sequence). "
        f"open(repair=True) would replay {JOURNAL_2} whole (8 records) and set aside "
        f"{JOURNAL_4} ({len(late)} bytes, 2 records). {FIX.format(data)}"
    ), len(JOURNAL_KEYS)


DAMAGE = {"mid-journal": mid_journal, "bad-header": bad_header, "missing": missing_journal}


def corrupt_snapshot(directory: Path) -> str:
    """Two generations, the newest with a flipped bit in its first ENTRIES record."""
    build_two_generations(directory)
    first_entries = 16 + 17  # header, then META (frame and journal_next)
    flip(directory / SNAPSHOT_2, first_entries + 12)
    damaged = (directory / SNAPSHOT_2).read_bytes()
    with pytest.raises(CorruptSnapshotError) as decoded:
        codec.scan(damaged)  # the decoder's own words for the damage
    assert decoded.value.reason.startswith("record checksum mismatch: stored ")
    return (
        f"{directory / SNAPSHOT_2}: {decoded.value.reason} (offset {first_entries}, check "
        f"record-crc). open(fallback=True) would load {SNAPSHOT_1} (generation 1) instead, set "
        f"aside {SNAPSHOT_2} ({len(damaged)} bytes) and replay journals 2 and 3 whole "
        f"(3 records). {FIX.format(directory)}"
    )


# --------------------------------------------------------------------- helpers


def run_dir(directory: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``snapkv run ops.json --dir directory`` as a real subprocess."""
    ops = tmp_path / "ops.json"
    ops.write_text(json.dumps([["get", "s0"]]))
    return subprocess.run(
        [*SNAPKV, "run", str(ops), "--dir", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def follow_the_advice(message: str) -> subprocess.CompletedProcess[str]:
    """Run the command the message prints, adding ``--yes`` as it says to in a script."""
    found = re.search(
        r"run: (snapkv check .+ --repair) \(it asks before changing anything; "
        r"add --yes in a script\)$",
        message,
    )
    assert found, message
    command = shlex.split(found.group(1))
    return subprocess.run(
        [*SNAPKV, *command[1:], "--yes"], capture_output=True, text=True, timeout=60, check=False
    )


def assert_one_location(message: str, path: Path) -> None:
    """The file, the offset and the check appear once each."""
    assert message.count(str(path)) == 1, message
    assert message.count("offset") == 1, message
    assert message.count("check ") == 2, message  # "(check NAME)" and the command


# ---------------------------------------------------------------------- tests


@pytest.mark.parametrize("kind", DAMAGE)
def test_open_names_the_damage_what_repair_drops_and_the_fix(data: Path, kind: str) -> None:
    message, _kept = DAMAGE[kind](data)
    before = sorted(p.name for p in data.iterdir())
    with pytest.raises(CorruptJournalError) as raised:
        snapkv.open(data, journal=True)
    assert str(raised.value) == message
    assert raised.value.path == raised.value.source
    assert str(data) in raised.value.path
    assert sorted(p.name for p in data.iterdir()) == before  # nothing changed


def test_open_refusing_a_corrupt_snapshot_says_what_fallback_loads(tmp_path: Path) -> None:
    message = corrupt_snapshot(tmp_path)
    with pytest.raises(CorruptSnapshotError) as raised:
        snapkv.open(tmp_path, journal=True)
    assert str(raised.value) == message
    error = raised.value
    assert (error.path, error.offset, error.check) == (
        str(tmp_path / SNAPSHOT_2),
        33,
        "record-crc",
    )
    assert_one_location(str(error), tmp_path / SNAPSHOT_2)


@pytest.mark.parametrize("kind", ["bad-header", "missing"])
def test_the_message_names_the_file_offset_and_check_once(data: Path, kind: str) -> None:
    DAMAGE[kind](data)
    with pytest.raises(CorruptJournalError) as raised:
        snapkv.open(data, journal=True)
    assert_one_location(str(raised.value), Path(raised.value.path))


def test_mid_journal_damage_names_one_offset(data: Path) -> None:
    mid_journal(data)
    with pytest.raises(CorruptJournalError) as raised:
        snapkv.open(data, journal=True)
    assert_one_location(str(raised.value), data / JOURNAL_2)


def test_zeros_after_the_newest_journal_change_no_word_of_the_advice(tmp_path: Path) -> None:
    """A killed writer's zeros are not a loss: the fallback still replays that journal whole."""
    message = corrupt_snapshot(tmp_path)
    journal_3 = tmp_path / JOURNAL_3
    journal_3.write_bytes(journal_3.read_bytes() + bytes(4096))
    with pytest.raises(CorruptSnapshotError) as raised:
        snapkv.open(tmp_path, journal=True)
    assert str(raised.value) == message
    with snapkv.open(tmp_path, journal=True, fallback=True) as store:
        report = store.last_restore
        assert report is not None and report.journal_dropped == ()
        assert report.journal_zeros_cut == 4096
        assert dict(store.items()) == {"a": "1", "b": "two", "c": "3"}


def test_a_tail_lost_in_a_journal_that_is_not_the_newest_names_one_offset(
    tmp_path: Path,
) -> None:
    build_two_generations(tmp_path)
    (tmp_path / SNAPSHOT_2).unlink()  # snapshot 1 then needs journals 2 and 3
    journal_2 = tmp_path / JOURNAL_2
    journal_2.write_bytes(journal_2.read_bytes()[:-4])
    size = journal_2.stat().st_size
    journal_3 = (tmp_path / JOURNAL_3).stat().st_size
    with pytest.raises(CorruptJournalError) as raised:
        snapkv.open(tmp_path, journal=True)
    assert str(raised.value) == (
        f"{journal_2}: torn tail of {size - jr.HEADER_SIZE} bytes after 0 good records in a "
        "journal that is not the newest: it was synced before journal 3 began, so those "
        f"bytes held acknowledged records (offset {jr.HEADER_SIZE}, check tail-not-newest). "
        f"open(repair=True) would keep the first 0 records of {JOURNAL_2} (cutting its last "
        f"{size - jr.HEADER_SIZE} bytes) and set aside {JOURNAL_3} ({journal_3} bytes, "
        f"2 records). {FIX.format(tmp_path)}"
    )
    assert_one_location(str(raised.value), journal_2)


def test_a_corrupt_snapshot_with_no_older_generation_points_to_a_backup(data: Path) -> None:
    flip(data / SNAPSHOT_1, 0)
    magic = (data / SNAPSHOT_1).read_bytes()[:8].hex()
    with pytest.raises(CorruptSnapshotError) as raised:
        snapkv.open(data, journal=True)
    assert str(raised.value) == (
        f"{data / SNAPSHOT_1}: not a snapkv snapshot: bad magic {magic} (offset 0, check "
        "magic). No older generation passes its checks, so open(fallback=True) cannot load "
        f"one instead: restore the data from a backup. To see every file, run: snapkv check "
        f"{data}"
    )


def test_a_snapshot_without_journals_says_what_fallback_loses(tmp_path: Path) -> None:
    store = snapkv.open(tmp_path, journal=False)
    store.set("a", "1")
    store.save()
    store.set("b", "2")
    store.save()
    store.close()
    flip(tmp_path / SNAPSHOT_2, 40)
    size = (tmp_path / SNAPSHOT_2).stat().st_size
    with pytest.raises(CorruptSnapshotError) as raised:
        snapkv.open(tmp_path, journal=False)
    assert str(raised.value).endswith(
        f"open(fallback=True) would load {SNAPSHOT_1} (generation 1) instead and set aside "
        f"{SNAPSHOT_2} ({size} bytes), losing every write made after generation 1 was saved. "
        f"{FIX.format(tmp_path)}"
    )


@pytest.mark.parametrize("kind", DAMAGE)
def test_run_dir_prints_the_message_and_following_it_recovers_the_prefix(
    data: Path, tmp_path: Path, kind: str
) -> None:
    message, kept = DAMAGE[kind](data)
    result = run_dir(data, tmp_path)
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert f"error: {message}\n" in result.stderr
    repaired = follow_the_advice(message)
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert contents(data) == prefix(kept)


def test_run_dir_on_a_corrupt_snapshot_then_the_fix_keeps_every_write(tmp_path: Path) -> None:
    directory = tmp_path / "data"
    message = corrupt_snapshot(directory)
    result = run_dir(directory, tmp_path)
    assert result.returncode == 1, result.stderr
    assert f"error: {message}\n" in result.stderr
    repaired = follow_the_advice(message)
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    # The older snapshot and both journals hold every write.
    assert contents(directory) == {"a": "1", "b": "two", "c": "3"}


def test_serve_dir_refuses_to_start_with_the_message_on_stderr(data: Path) -> None:
    _message, kept = mid_journal(data)
    at = offsets()[3]
    size = (data / JOURNAL_2).stat().st_size
    # The server's words: its option, not open()'s keyword argument.
    message = (
        f"{data / JOURNAL_2}: record checksum mismatch, and a valid record follows it (damage, "
        f"not a torn tail) (offset {at}, check record-crc). Starting the server with "
        f"--aof-load-repair yes would keep the first 3 records of {JOURNAL_2} (cutting its "
        f"last {size - at} bytes, which hold 4 later records that look valid). "
        f"{FIX.format(data)}"
    )
    result = subprocess.run(
        [*SNAPKV, "serve", "--port", "0", "--dir", str(data), "--appendonly", "yes"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert f"error: {message}\n" in result.stderr
    repaired = follow_the_advice(message)
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert contents(data) == prefix(kept)


def test_check_without_repair_ends_with_the_repair_command(data: Path) -> None:
    missing_journal(data)
    result = subprocess.run(
        [*SNAPKV, "check", str(data)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    assert result.stdout.splitlines()[-1] == (
        f"to repair (1 change; nothing is deleted): snapkv check {data} --repair"
    )


def test_check_predicts_the_very_message_open_raises(data: Path) -> None:
    message, _kept = mid_journal(data)
    report = check_directory(data)
    assert report.prediction.message == message


def test_the_message_survives_pickling(data: Path) -> None:
    message, _kept = missing_journal(data)
    try:
        snapkv.open(data, journal=True)
    except SnapkvError as exc:
        copy = pickle.loads(pickle.dumps(exc))
    assert str(copy) == message
    assert copy.advice and copy.advice in message


# ------------------------------------------------ inspect: a journal is not a snapshot


def inspect(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SNAPKV, "inspect", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_inspect_a_journal_says_what_it_holds_and_points_to_check(data: Path) -> None:
    journal = data / JOURNAL_2
    result = inspect(journal)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        str(journal),
        f"  kind       journal, not a snapshot: `snapkv check {data}` verifies it with its "
        "snapshots",
        f"  status     OK  {len(JOURNAL_KEYS)} records, {journal.stat().st_size} bytes",
        "  journal    id 2",
    ]


def test_inspect_a_damaged_journal_exits_1_with_the_offset_and_check(data: Path) -> None:
    mid_journal(data)
    at, size = offsets()[3], (data / JOURNAL_2).stat().st_size
    result = inspect(data / JOURNAL_2)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[2:] == [
        f"  status     DAMAGED at offset {at} (check record-crc): record checksum mismatch, and "
        "a valid record follows it (damage, not a torn tail); 3 good records before it; "
        f"{size - at} bytes from there on (4 valid-looking records)",
        "  journal    id 2",
    ]


def test_inspect_a_journal_with_a_torn_tail_or_a_bad_header_exits_1(data: Path) -> None:
    journal = data / JOURNAL_2
    journal.write_bytes(journal.read_bytes()[:-3])  # the last record cut short
    torn = inspect(journal, "--json")
    assert torn.returncode == 1
    report = json.loads(torn.stdout)
    assert {k: report[k] for k in ("kind", "ok", "jid", "status", "records", "tail")} == {
        "kind": "journal",
        "ok": False,
        "jid": 2,
        "status": "tail",
        "records": len(JOURNAL_KEYS) - 1,
        "tail": "torn",
    }
    assert (report["valid_end"], report["dropped_bytes"]) == (
        offsets()[-2],
        offsets()[-1] - 3 - offsets()[-2],
    )
    assert report["check_command"] == f"snapkv check {data}"
    flip(journal, 0)
    bad = inspect(journal)
    assert bad.returncode == 1
    magic = journal.read_bytes()[:8].hex()
    assert bad.stdout.splitlines()[2:] == [
        f"  status     BAD HEADER at offset 0 (check magic): not a snapkv journal: bad magic "
        f"{magic}",
        "  journal    id 2",
    ]


def test_inspect_knows_a_journal_by_its_magic_whatever_its_name(data: Path) -> None:
    renamed = data / "copy.skv"
    shutil.copyfile(data / JOURNAL_2, renamed)
    result = inspect(renamed)
    assert result.returncode == 0, result.stdout
    assert "journal, not a snapshot" in result.stdout
    assert f"OK  {len(JOURNAL_KEYS)} records" in result.stdout


def test_the_server_names_rdb_load_fallback_for_a_corrupt_snapshot(tmp_path: Path) -> None:
    directory = tmp_path / "data"
    api_message = corrupt_snapshot(directory)
    size = (directory / SNAPSHOT_2).stat().st_size
    with pytest.raises(CorruptSnapshotError) as raised:
        open_for(Config(dir=str(directory), appendonly=True))
    assert str(raised.value) == (
        api_message.split(" open(fallback=True)")[0] + " Starting the server with "
        f"--rdb-load-fallback yes would load {SNAPSHOT_1} (generation 1) instead, set aside "
        f"{SNAPSHOT_2} ({size} bytes) and replay journals 2 and 3 whole (3 records). "
        f"{FIX.format(directory)}"
    )
    # open() keeps its own words.
    with pytest.raises(CorruptSnapshotError) as raised:
        snapkv.open(directory, journal=True)
    assert str(raised.value) == api_message


def test_the_server_with_no_older_generation_names_its_option(data: Path) -> None:
    flip(data / SNAPSHOT_1, 0)
    magic = (data / SNAPSHOT_1).read_bytes()[:8].hex()
    with pytest.raises(CorruptSnapshotError) as raised:
        open_for(Config(dir=str(data), appendonly=True))
    assert str(raised.value) == (
        f"{data / SNAPSHOT_1}: not a snapkv snapshot: bad magic {magic} (offset 0, check "
        "magic). No older generation passes its checks, so --rdb-load-fallback yes cannot "
        "load one instead: restore the data from a backup. To see every file, run: snapkv "
        f"check {data}"
    )
