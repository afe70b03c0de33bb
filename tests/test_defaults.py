"""snapkv.open's defaults never lose an acknowledged write, and a refused open leaves nothing.

What users of dbm, shelve, sqlitedict and diskcache expect: ``db = open(d);
db["k"] = "v"; db.close()`` keeps the write, and so does a process killed
(or exiting without ``close()``) right after the write returned. The
default store journals (``fsync="everysec"``); ``journal=False`` keeps
snapshots only and publishes one at ``close()`` when memory changed. The
seed contract (``Store()``, ``run_operations``, ``snapkv run``) is untouched.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import snapkv
from snapkv import FileMedium, MediumError, MemoryMedium, Store, StoreShutDownError, codec


def listing(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def snapshots(directory: Path) -> list[str]:
    return [name for name in listing(directory) if name.startswith("snapshot-")]


def journals(directory: Path) -> list[str]:
    return [name for name in listing(directory) if name.startswith("journal-")]


def contents(directory: Path, **options: Any) -> dict[str, str]:
    store = snapkv.open(directory, **options)
    try:
        return dict(store.items())
    finally:
        store.close()


# ------------------------------------------------------- open, write, close


def test_open_write_close_reopen_keeps_the_write(tmp_path: Path) -> None:
    db = snapkv.open(tmp_path)
    db["k"] = "v"
    db.set("expiring", "x", ttl=3600)
    db.db(3)["other"] = "keyspace"
    db.close()
    db = snapkv.open(tmp_path)
    assert dict(db.items()) == {"k": "v", "expiring": "x"}
    assert db.ttl("expiring") is not None
    assert db.db(3).get("other") == "keyspace"
    db.close()


def test_the_default_store_journals_every_write(tmp_path: Path) -> None:
    db = snapkv.open(tmp_path)
    db["k"] = "v"
    # Nothing was saved: the write is on disk in the journal, before close.
    assert snapshots(tmp_path) == []
    assert len(journals(tmp_path)) == 1
    assert os.path.getsize(tmp_path / journals(tmp_path)[0]) > 0
    db.close()


def test_the_default_store_refuses_writes_after_shutdown_until_restore(tmp_path: Path) -> None:
    # A journaled store: a write there would belong to no snapshot.
    db = snapkv.open(tmp_path)
    db["k"] = "v"
    db.shutdown()
    with pytest.raises(StoreShutDownError):
        db["late"] = "x"
    db.restore()
    db["late"] = "x"
    db.close()
    assert contents(tmp_path) == {"k": "v", "late": "x"}


# ------------------------------------------------------ a killed process

WRITER = """
import sys
import snapkv

db = snapkv.open(sys.argv[1])
db["k"] = "v"
db.update({f"n{i}": str(i) for i in range(100)})
with db.transaction():
    db.set("a", "1")
    db.db(1).set("b", "2")
print("acknowledged", flush=True)
if sys.argv[2] == "wait":
    sys.stdin.read()  # until killed
# "exit": the interpreter exits without close()
"""


def run_writer(directory: Path, how: str) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(directory), how],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline() == "acknowledged\n"
    return child


def assert_every_write_is_there(directory: Path) -> None:
    db = snapkv.open(directory)
    try:
        assert db.get("k") == "v"
        assert [db.get(f"n{i}") for i in range(100)] == [str(i) for i in range(100)]
        assert (db.get("a"), db.db(1).get("b")) == ("1", "2")
    finally:
        db.close()


def test_a_process_killed_after_an_acknowledged_write_keeps_it(tmp_path: Path) -> None:
    child = run_writer(tmp_path, "wait")
    try:
        child.send_signal(signal.SIGKILL)
    finally:
        child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL
    assert_every_write_is_there(tmp_path)


def test_a_process_that_exits_without_close_keeps_its_writes(tmp_path: Path) -> None:
    child = run_writer(tmp_path, "exit")
    child.communicate(timeout=60)
    assert child.returncode == 0
    assert_every_write_is_there(tmp_path)


# ---------------------------------------------------- journal=False: close


def test_without_a_journal_close_publishes_what_changed(tmp_path: Path) -> None:
    db = snapkv.open(tmp_path, journal=False)
    db["k"] = "v"
    db.close()
    assert journals(tmp_path) == []
    assert snapshots(tmp_path) == ["snapshot-0000000000000001.skv"]
    assert contents(tmp_path, journal=False) == {"k": "v"}


def test_without_a_journal_close_publishes_nothing_when_nothing_changed(tmp_path: Path) -> None:
    db = snapkv.open(tmp_path, journal=False)
    db["k"] = "v"
    db.close()
    first = listing(tmp_path)
    # Open and read: nothing changed since the restore.
    assert contents(tmp_path, journal=False) == {"k": "v"}
    # Saved, then nothing changed.
    db = snapkv.open(tmp_path, journal=False)
    db["k"] = "w"
    db.save()
    db.close()
    assert snapshots(tmp_path) == ["snapshot-0000000000000001.skv", "snapshot-0000000000000002.skv"]
    # Shut down, then nothing written: the shutdown's snapshot stands.
    db = snapkv.open(tmp_path, journal=False)
    db.shutdown()
    db.close()
    # A transaction that rolled back changed nothing.
    db = snapkv.open(tmp_path, journal=False)
    with pytest.raises(RuntimeError), db.transaction():
        db["k"] = "rolled back"
        raise RuntimeError
    db.close()
    assert snapshots(tmp_path) == ["snapshot-0000000000000002.skv", "snapshot-0000000000000003.skv"]
    assert contents(tmp_path, journal=False) == {"k": "w"}
    assert first == ["LOCK", "snapshot-0000000000000001.skv"]


@pytest.mark.parametrize(
    "change",
    [
        lambda db: db.update({"k": "2"}),
        lambda db: db.pop("k"),
        lambda db: db.clear(),
        lambda db: db.flush_all(),
        lambda db: db.swap(0, 1),
        lambda db: db.expire("k", 3600),
        lambda db: db.rename("k", "j"),
        lambda db: db.db(2).set("k", "3"),
        lambda db: db.setdefault("new", "1"),
    ],
    ids=["update", "pop", "clear", "flush_all", "swap", "expire", "rename", "db", "setdefault"],
)
def test_without_a_journal_every_kind_of_write_counts_as_a_change(
    tmp_path: Path, change: Any
) -> None:
    with snapkv.open(tmp_path, journal=False) as db:
        db["k"] = "1"
    db = snapkv.open(tmp_path, journal=False)
    change(db)
    expected = {n: dict(db.db(n).items()) for n in range(db.databases)}
    db.close()
    assert len(snapshots(tmp_path)) == 2  # keep=1: the one close published, and the one before
    db = snapkv.open(tmp_path, journal=False)
    assert {n: dict(db.db(n).items()) for n in range(db.databases)} == expected
    db.close()


def test_without_a_journal_a_committed_transaction_counts_as_a_change(tmp_path: Path) -> None:
    db = snapkv.open(tmp_path, journal=False)
    with db.transaction():
        db["a"] = "1"
        db.db(1)["b"] = "2"
    db.close()
    db = snapkv.open(tmp_path, journal=False)
    assert (db.get("a"), db.db(1).get("b")) == ("1", "2")
    db.close()


def test_without_a_journal_writes_after_shutdown_are_what_close_publishes(
    tmp_path: Path,
) -> None:
    # What the store held when it was closed is what the next open finds,
    # as with dbm or shelve (and as leaving a with block does).
    db = snapkv.open(tmp_path, journal=False)
    db["old"] = "1"
    db.shutdown()
    assert db.get("old") is None
    db["new"] = "2"
    db.close()
    assert contents(tmp_path, journal=False) == {"new": "2"}


def test_without_a_journal_writes_after_a_save_are_published_by_close(tmp_path: Path) -> None:
    db = snapkv.open(tmp_path, journal=False)
    db["a"] = "1"
    db.save()
    db["b"] = "2"
    db.close()
    assert contents(tmp_path, journal=False) == {"a": "1", "b": "2"}


def test_without_a_journal_a_failed_close_keeps_the_store_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = snapkv.open(tmp_path, journal=False)
    db["k"] = "unsaved"

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", no_space)
        with pytest.raises(MediumError, match="No space left on device"):
            db.close()
    assert not db.closed
    assert db.get("k") == "unsaved"
    assert snapshots(tmp_path) == []
    db.close()  # the disk is back
    assert db.closed
    assert contents(tmp_path, journal=False) == {"k": "unsaved"}


def test_save_on_close_false_keeps_the_seed_contract(tmp_path: Path) -> None:
    db = snapkv.open(tmp_path, journal=False, save_on_close=False)
    db["k"] = "v"
    db.close()
    assert snapshots(tmp_path) == []
    assert journals(tmp_path) == []


def test_store_keeps_the_seed_contract() -> None:
    medium = MemoryMedium()
    store = Store(medium)
    store["k"] = "v"
    store.shutdown()
    store["after"] = "shutdown"  # lives in memory until restore
    assert store.get("after") == "shutdown"
    store.close()  # publishes nothing
    assert len(medium.generations()) == 1
    blob = medium.read()
    assert blob is not None
    assert codec.decode(blob) == {"k": "v"}
    with pytest.raises(ValueError, match="save_on_close"):
        Store(MemoryMedium(), journal=True, save_on_close=True)


# ------------------------------------------- journal options without a journal


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("fsync", "always"),
        ("fsync", "no"),
        ("fsync", "never"),
        ("compact_ratio", 3.0),
        ("compact_min_bytes", 1 << 20),
    ],
)
def test_a_journal_option_without_a_journal_is_refused(
    tmp_path: Path, option: str, value: object
) -> None:
    target = tmp_path / "db"
    with pytest.raises(ValueError) as info:
        snapkv.open(target, journal=False, **{option: value})
    assert str(info.value) == (
        f"snapkv.open(): {option}={value!r} is a journal option, and journal=False: "
        f"nothing would use it (pass journal=True, or leave {option} out)"
    )
    assert not target.exists()
    with pytest.raises(ValueError, match=f"^{option}="):
        Store(journal=False, **{option: value})
    with pytest.raises(ValueError, match=f"^{option}="):
        Store(**{option: value})  # Store's journal is off by default


def test_a_journal_option_at_its_default_is_accepted_without_a_journal(tmp_path: Path) -> None:
    # So that Store() and callers passing the defaults explicitly stay valid.
    Store(journal=False, fsync="everysec", compact_ratio=2, compact_min_bytes=4 << 20).close()
    snapkv.open(tmp_path, journal=False, fsync="everysec").close()
    with pytest.raises(ValueError, match="fsync='always' is a journal option"):
        Store(fsync="always")


# -------------------------------------------------- a refused open leaves nothing

REFUSED: list[Any] = [
    pytest.param(
        {"fsync": "sometimes"}, ValueError, "snapkv.open(): fsync must be one of", id="fsync"
    ),
    pytest.param({"keep": -1}, ValueError, "snapkv.open(): keep must be >= 0, not -1", id="keep"),
    pytest.param(
        {"keep": "1"}, TypeError, "snapkv.open(): keep must be an int, not str", id="keep-type"
    ),
    pytest.param(
        {"databases": 0},
        ValueError,
        "snapkv.open(): databases must be between 1 and 2**31, not 0",
        id="databases",
    ),
    pytest.param(
        {"databases": "16"},
        TypeError,
        "snapkv.open(): databases must be an int",
        id="databases-type",
    ),
    pytest.param(
        {"compact_ratio": 0},
        ValueError,
        "snapkv.open(): compact_ratio must be > 0",
        id="compact-ratio",
    ),
    pytest.param(
        {"clock": 12}, TypeError, "snapkv.open(): clock must be callable, not int", id="clock"
    ),
    pytest.param(
        {"journal": "yes"},
        TypeError,
        "snapkv.open(): journal must be True or False, not 'yes'",
        id="journal",
    ),
    pytest.param(
        {"journal": False, "fsync": "always"},
        ValueError,
        "snapkv.open(): fsync='always' is a journal option",
        id="journal-option",
    ),
    pytest.param(
        {"save_on_close": True},
        ValueError,
        "snapkv.open(): save_on_close=True needs journal=False",
        id="save-on-close",
    ),
    pytest.param(
        {"bogus": 1}, TypeError, "open() got an unexpected keyword argument 'bogus'", id="keyword"
    ),
]


@pytest.mark.parametrize(("options", "error", "message"), REFUSED)
def test_a_refused_open_creates_no_directory(
    tmp_path: Path, options: dict[str, Any], error: type[Exception], message: str
) -> None:
    target = tmp_path / "db"
    with pytest.raises(error) as info:
        snapkv.open(target, **options)
    assert str(info.value).startswith(message), str(info.value)
    assert listing(tmp_path) == []


@pytest.mark.parametrize(("options", "error", "message"), REFUSED)
def test_a_refused_open_leaves_no_lock_file(
    tmp_path: Path, options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        snapkv.open(tmp_path, **options)
    assert str(info.value).startswith(message), str(info.value)
    assert listing(tmp_path) == []


def test_a_directory_that_is_no_path_is_refused() -> None:
    with pytest.raises(TypeError) as info:
        snapkv.open(3)  # type: ignore[arg-type]
    assert str(info.value) == "snapkv.open(): directory must be a str or os.PathLike, not int"


def test_a_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "data"
    path.write_bytes(b"mine")
    with pytest.raises(MediumError) as info:
        snapkv.open(path)
    assert str(info.value) == f"snapkv.open(): {path} is a file, not a directory"
    assert path.read_bytes() == b"mine"
    assert listing(tmp_path) == ["data"]


def test_a_path_whose_parent_does_not_exist_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "data"
    with pytest.raises(MediumError) as info:
        snapkv.open(path)
    assert str(info.value) == (
        f"snapkv.open(): cannot create {path}: its parent {path.parent} does not exist "
        "(open() creates the store's directory, not its parents)"
    )
    assert listing(tmp_path) == []


def test_a_path_whose_parent_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    path = tmp_path / "file" / "data"
    with pytest.raises(MediumError, match=r"its parent .*file is not a directory"):
        snapkv.open(path)
    assert listing(tmp_path) == ["file"]


def test_a_directory_created_by_a_failed_open_is_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: Store, **_options: object) -> None:
        raise MediumError("cannot read: Input/output error")

    target = tmp_path / "db"
    with monkeypatch.context() as patch:
        patch.setattr(Store, "restore", refuse)
        with pytest.raises(MediumError, match="Input/output error"):
            snapkv.open(target)
        assert listing(tmp_path) == []
        # A directory that was there before is left as it was: without the
        # lock file this call made, and not locked any more.
        target.mkdir()
        with pytest.raises(MediumError):
            snapkv.open(target)
        assert listing(target) == []
        # One that had its lock file keeps it.
        (target / "LOCK").write_bytes(b"")
        with pytest.raises(MediumError):
            snapkv.open(target)
        assert listing(target) == ["LOCK"]
    snapkv.open(target).close()


def test_a_refused_open_of_a_damaged_directory_leaves_it_as_it_was(tmp_path: Path) -> None:
    """A corrupt snapshot is refused; no LOCK appears, and no file of the user's goes."""
    target = tmp_path / "db"
    with snapkv.open(target, journal=False) as store:
        store["k"] = "v"
    (target / "LOCK").unlink()
    (snapshot,) = target.glob("snapshot-*.skv")
    snapshot.write_bytes(snapshot.read_bytes()[:-3])
    (target / ".tmp-notes").write_text("mine")
    before = sorted((p.name, p.read_bytes()) for p in target.iterdir())
    with pytest.raises(snapkv.CorruptSnapshotError):
        snapkv.open(target, journal=False)
    assert sorted((p.name, p.read_bytes()) for p in target.iterdir()) == before


def test_the_lock_is_the_file_named_lock_when_it_is_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An opener that opened a lock file a failed open() then removed does not count it.

    The opener's ``os.open`` is made to return the removed file (as if it
    had opened it just before the removal): its lock on it must not count.
    """
    target = tmp_path / "db"
    target.mkdir()
    stale = os.open(target / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
    os.unlink(target / "LOCK")  # as a failed open() removes the lock file it made
    real_open = os.open
    handed: list[int] = []

    def opener(path: Any, flags: int, mode: int = 0o777) -> int:
        if Path(path).name == "LOCK" and not handed:
            handed.append(os.dup(stale))
            return handed[0]
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", opener)
    try:
        medium = FileMedium(target)
    finally:
        monkeypatch.undo()
        os.close(stale)
    held = medium._lock_fd
    assert handed and held is not None
    assert os.fstat(held).st_ino == os.stat(target / "LOCK").st_ino
    medium.close()


# -------------------------------------------------------------- keep


def test_keep_1_is_the_default_two_snapshot_files_and_the_journal_after_them(
    tmp_path: Path,
) -> None:
    db = snapkv.open(tmp_path)
    for value in "abc":
        db["k"] = value
        db.save()
    db["k"] = "d"
    db.close()
    # The newest snapshot and one older generation; the one journal the
    # newest does not contain (the older generation's journals were pruned
    # with the generation before it).
    assert snapshots(tmp_path) == ["snapshot-0000000000000002.skv", "snapshot-0000000000000003.skv"]
    assert journals(tmp_path) == ["journal-0000000000000003.skj", "journal-0000000000000004.skj"]
    assert contents(tmp_path) == {"k": "d"}
