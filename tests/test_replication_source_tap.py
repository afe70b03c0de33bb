"""Store.tap and Store.frozen_copy: what replication to Redis is built on, without a server.

The tap must hear every record the Store commits, in order, journaled or
not, a transaction as its one record and a rolled-back one never; the
frozen copy must stay as it was while writes go on, and its mark must be
taken at exactly the copy's instant.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import snapkv
from snapkv import Store
from snapkv import journal as jr


def _ops(records: list[bytes]) -> list[object]:
    return [jr.decode_record(record) for record in records]


@pytest.fixture(params=["memory", "journal"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "memory":
        return Store(sweep_interval=None)
    return snapkv.open(tmp_path / "data", fsync="no", sweep_interval=None)


def test_the_tap_hears_every_write_path_in_commit_order(store: Store) -> None:
    heard: list[bytes] = []
    store.tap(heard.append)
    store.set("a", "1")  # the plain set's inline path
    store.set("b", "2", expire_at=2_000_000_000)
    store.hashes["h"]["f"] = "v"  # a creation (PUT), then an edit
    store.hashes["h"]["g"] = "w"
    store.lists["l"].append("x")
    store.update({"c": "3", "d": "4"})
    store.db(1).set("e", "5")
    store.swap(0, 1)
    store.flush_all()
    ops = _ops(heard)
    assert ops[0] == ("set", 0, "a", "1", 0)
    assert ops[1] == ("set", 0, "b", "2", 2_000_000_000_000)
    assert ops[2][:3] == ("put", 0, "h")  # type: ignore[index]
    assert ops[3][:3] == ("edit", 0, "h")  # type: ignore[index]
    assert ops[4][:3] in (("put", 0, "l"), ("edit", 0, "l"))  # type: ignore[index]
    assert ops[5] == ("batch", (("set", 0, "c", "3", 0), ("set", 0, "d", "4", 0)))
    assert ops[6:] == [("set", 1, "e", "5", 0), ("swap", 0, 1), ("clear", -1)]
    store.tap(None)
    store.set("after", "untapped")
    assert len(heard) == 9
    store.close()


def test_a_transaction_is_heard_once_committed_and_never_when_rolled_back(store: Store) -> None:
    heard: list[bytes] = []
    store.set("k", "before")
    store.tap(heard.append)
    with pytest.raises(RuntimeError), store.transaction():
        store.set("k", "lost")
        store.db(2).set("k", "lost too")
        raise RuntimeError("rolled back")
    assert heard == []
    assert store.get("k") == "before"
    with store.transaction():
        store.set("k", "kept")
        store.db(2).set("k", "kept too")
    assert _ops(heard) == [("batch", (("set", 0, "k", "kept", 0), ("set", 2, "k", "kept too", 0)))]
    store.close()


def test_a_tapped_journaled_store_keeps_its_journal(tmp_path: Path) -> None:
    store = snapkv.open(tmp_path / "data", fsync="no")
    heard: list[bytes] = []
    store.tap(heard.append)
    store.set("k", "v")
    store.hashes["h"]["f"] = "v"
    store.save()  # a rotation installs the new journal under the tap
    store.set("k2", "v2")
    store.close()
    assert len(heard) == 3
    reopened = snapkv.open(tmp_path / "data")
    assert (reopened.get("k"), reopened.get("k2"), reopened.hashes["h"]["f"]) == ("v", "v2", "v")
    reopened.close()


def test_a_frozen_copy_stays_as_of_its_mark_while_writes_go_on() -> None:
    store = Store(sweep_interval=None)
    heard: list[bytes] = []
    store.tap(heard.append)
    store.set("s", "old")
    store.hashes["h"]["f"] = "old"
    store.lists["l"].extend(["a", "b"])
    copy = store.frozen_copy(lambda: len(heard))
    assert copy.mark == 3
    store.set("s", "new")
    store.hashes["h"]["f"] = "new"
    store.lists["l"].append("c")
    store.set("added", "later")
    ((db, keys, values, expires),) = copy.spaces
    held = dict(zip(keys, values, strict=True))
    assert (db, expires) == (0, None)
    assert held["s"] == "old"
    assert dict(held["h"]) == {"f": "old"}
    assert list(held["l"]) == ["a", "b"]
    assert "added" not in held
    copy.release()
    copy.release()  # idempotent
    store.hashes["h"]["g"] = "after release"
    assert dict(store.hashes["h"]) == {"f": "new", "g": "after release"}


def test_a_save_ending_does_not_thaw_a_copy_still_held() -> None:
    store = Store(sweep_interval=None)
    store.hashes["h"]["f"] = "old"
    copy = store.frozen_copy()
    store.save()  # freezes and thaws on its own; the copy still holds the epoch
    store.hashes["h"]["f"] = "new"
    ((_, keys, values, _),) = copy.spaces
    assert dict(dict(zip(keys, values, strict=True))["h"]) == {"f": "old"}
    copy.release()
