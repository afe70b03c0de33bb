"""Export and import with the other sources and targets: a running server's directory, read
while it runs, and an object storage prefix (a ``file://`` prefix: obstore's local store,
the same code path as ``s3://``)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import snapkv
from snapkv.cli import main
from snapkv.interop import iter_entries, source
from snapkv.interop.rdb_export import export_rdb
from snapkv.interop.rdb_import import TargetNotEmptyError, import_rdb
from snapkv.rdb.file import RDBReader, write_rdb
from snapkv.values import hashes, lists

redis = pytest.importorskip("redis")

from serving import serving  # noqa: E402


def test_a_running_servers_directory_is_exported_without_stopping_it(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    with serving(folder) as port:
        client = redis.Redis(port=port)
        client.set("s", "v")
        client.hset("h", mapping={"f": "1"})
        client.set("soon", "x", ex=3600)
        client.execute_command("SELECT", 2)
        client.rpush("l", "a", "b")
        target = tmp_path / "out.rdb"
        assert main(["export", str(folder), "--rdb", str(target)]) == 0
        # The server holds its lock and goes on writing: the export took nothing from it.
        client.execute_command("SELECT", 0)
        assert client.set("after", "1")
        client.close()
    with target.open("rb") as file:
        got = {(i.db, i.key): (i.value, i.expire_at_ms) for i in RDBReader(file)}
    expiry = got[0, "soon"][1]
    assert expiry is not None and abs(expiry - (time.time() + 3600) * 1000) < 5000
    assert got == {
        (0, "s"): ("v", None),
        (0, "h"): (hashes.Hash({"f": "1"}), None),
        (0, "soon"): ("x", expiry),
        (2, "l"): (lists.List(["a", "b"]), None),
    }


def test_a_store_that_saves_twice_while_being_exported_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer publishes newer snapshots and prunes the journals the snapshot just read
    names: the export reads the new state, never reports a healthy store as damaged."""
    store = snapkv.open(tmp_path / "data")
    try:
        store["a"] = "1"
        store.save()
        store["b"] = "2"
        choose = source.recovery.choose_snapshot
        saves = []

        def saving_meanwhile(*args: Any, **kwargs: Any) -> Any:
            choice = choose(*args, **kwargs)
            if not saves:  # once: between the snapshot read and its journals
                saves.append(1)
                for key in "cd":
                    store[key] = key
                    store.save()
                store["e"] = "after"
            return choice

        monkeypatch.setattr(source.recovery, "choose_snapshot", saving_meanwhile)
        report = export_rdb(str(tmp_path / "data"), tmp_path / "out.rdb")
    finally:
        store.close()
    assert report.keys == {0: 5}
    with (tmp_path / "out.rdb").open("rb") as file:
        assert {i.key: i.value for i in RDBReader(file)} == {
            "a": "1", "b": "2", "c": "c", "d": "d", "e": "after"
        }  # fmt: skip


def test_an_import_to_a_prefix_exports_back_and_a_second_import_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("obstore")
    source = tmp_path / "in.rdb"
    with source.open("wb") as file:
        write_rdb(file.write, [(0, 2, 0, [("a", "1", None), ("h", hashes.Hash({"f": "v"}), None)]),
                               (5, 1, 0, [("b", "2", None)])])  # fmt: skip
    url = f"file://{tmp_path}/bucket/prefix"
    assert main(["import", str(source), "--to", url]) == 0
    want = {(0, "a"): "1", (0, "h"): {"f": "v"}, (5, "b"): "2"}
    assert {(e.db, e.key): e.value for e in iter_entries(url)} == want
    assert main(["export", url, "--rdb", str(tmp_path / "back.rdb")]) == 0
    assert {(e.db, e.key): e.value for e in iter_entries(str(tmp_path / "back.rdb"))} == want

    manifests = sorted(p.name for p in (tmp_path / "bucket" / "prefix" / "manifest").iterdir())
    capsys.readouterr()
    assert main(["import", str(source), "--to", url]) == 2
    assert "already holds a store" in capsys.readouterr().err
    after = sorted(p.name for p in (tmp_path / "bucket" / "prefix" / "manifest").iterdir())
    assert after == manifests  # refused before the prefix was claimed


def test_a_source_that_is_neither_a_store_nor_a_file_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", str(tmp_path / "missing"), "--rdb", str(tmp_path / "x.rdb")]) == 1
    assert "is not a store directory" in capsys.readouterr().err
    assert not (tmp_path / "x.rdb").exists()


def test_an_rdb_file_exports_as_version_9_without_its_expired_keys(tmp_path: Path) -> None:
    source = tmp_path / "newer.rdb"
    future = int(time.time() * 1000) + 60_000
    with source.open("wb") as file:
        write_rdb(file.write, [(1, 3, 2, [("gone", "x", 1_000), ("kept", "y", future),
                                            ("l", lists.List(["a"]), None)])])  # fmt: skip
    assert main(["export", str(source), "--rdb", str(tmp_path / "out.rdb")]) == 0
    with (tmp_path / "out.rdb").open("rb") as file:
        reader = RDBReader(file)
        got = [tuple(item) for item in reader]
    assert reader.version == 9
    assert got == [(1, "kept", "y", future), (1, "l", lists.List(["a"]), None)]


def test_a_missing_file_is_an_input_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["import", str(tmp_path / "none.rdb"), "--dir", str(tmp_path / "s")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_a_directory_given_as_the_file_is_an_input_error_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "server").mkdir()
    assert main(["import", str(tmp_path / "server"), "--dir", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert f"cannot read {tmp_path / 'server'}: Is a directory" in err
    assert "Traceback" not in err
    assert not (tmp_path / "s").exists()


def test_an_import_to_a_prefix_another_import_filled_meanwhile_is_refused(
    tmp_path: Path,
) -> None:
    """Both saw an empty prefix; the one that claims it second must not publish over the first."""
    pytest.importorskip("obstore")
    url = f"file://{tmp_path}/bucket/prefix"
    first = tmp_path / "first.rdb"
    with first.open("wb") as file:
        write_rdb(file.write, [(0, 1, 0, [("first", "1", None)])])
    fifo = tmp_path / "slow.rdb"
    os.mkfifo(fifo)
    outcome: list[object] = []

    def slow_import() -> None:
        try:
            outcome.append(import_rdb(str(fifo), url=url))
        except Exception as exc:  # the test reads it
            outcome.append(exc)

    thread = threading.Thread(target=slow_import)
    thread.start()
    with fifo.open("wb") as writer:  # opens once the slow import checked the prefix
        import_rdb(str(first), url=url)
        write_rdb(writer.write, [(0, 1, 0, [("second", "2", None)])])
    thread.join(timeout=60)
    assert isinstance(outcome[0], TargetNotEmptyError), outcome
    assert {e.key: e.value for e in iter_entries(url)} == {"first": "1"}
