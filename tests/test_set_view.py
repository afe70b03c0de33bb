"""SetView, the Python API of a set: a MutableSet whose every call is one atomic step.

Each test names one promise: the set protocol and its operators (plain
Python sets out, in-place forms one record), random draws, SMOVE's and the
algebra's rules across keys (every type checked, a STORE replacing or
deleting its destination in one record), argument types, WRONGTYPE, and
that every call survives a reopen of a journaled directory.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import snapkv
from snapkv import Store
from snapkv import journal as jr
from snapkv.errors import WrongTypeError
from snapkv.values import sets


@pytest.fixture
def store() -> Store:
    return Store()


def test_it_is_a_mutable_set(store: Store) -> None:
    s = store.sets["s"]
    assert len(s) == 0 and not s and set(s) == set() and "a" not in s
    s.add("a")
    s.add("a")
    assert s.add_many(["b", "c", "b"]) == 2
    assert s == {"a", "b", "c"} and len(s) == 3 and "b" in s
    s.discard("zz")
    s.discard("c")
    with pytest.raises(KeyError):
        s.remove("c")
    s.remove("b")
    assert s.to_set() == {"a"}
    assert s.pop() == "a" and "s" not in store
    with pytest.raises(KeyError):
        s.pop()
    assert s.remove_many(["a"]) == 0


def test_operators_return_python_sets_and_in_place_forms_write(store: Store) -> None:
    s = store.sets["s"]
    s.add_many(["a", "b", "c"])
    assert s & {"a", "z"} == {"a"} and type(s & {"a"}) is set
    assert s | {"z"} == {"a", "b", "c", "z"} and s - {"a"} == {"b", "c"}
    assert s ^ {"a", "z"} == {"b", "c", "z"}
    assert s <= {"a", "b", "c", "d"} and not s.isdisjoint({"c"})
    s |= {"d"}
    s -= {"a"}
    assert s.to_set() == {"b", "c", "d"}
    s &= {"b", "c", "x"}
    assert s.to_set() == {"b", "c"}
    s ^= {"c", "e"}
    assert s.to_set() == {"b", "e"}
    assert isinstance(store.sets["s"], type(s))


def test_membership_in_bulk(store: Store) -> None:
    s = store.sets["s"]
    s.add_many(["a", "b"])
    assert s.contains_many(["a", "z", "b"]) == [True, False, True]
    assert store.sets["nokey"].contains_many(["a"]) == [False]


def test_random_draws(store: Store) -> None:
    s = store.sets["s"]
    assert s.random() is None and s.random(3) == [] and s.random(-3) == []
    members = {f"m{i}" for i in range(6)}
    s.add_many(members)
    assert s.random() in members
    assert s.random(0) == []
    assert len(set(s.random(4))) == 4 and set(s.random(100)) == members
    assert len(s.random(-20)) == 20 and set(s.random(-20)) <= members
    taken = s.pop_many(2)
    assert len(set(taken)) == 2 and not set(taken) & s.to_set()
    assert set(s.pop_many(100)) == members - set(taken) and "s" not in store
    with pytest.raises(ValueError, match="count"):
        s.pop_many(-1)
    with pytest.raises(TypeError, match="count"):
        s.random("1")  # type: ignore[arg-type]


def test_move_between_keys(store: Store) -> None:
    src, dst = store.sets["src"], store.sets["dst"]
    src.add_many(["a", "b"])
    assert src.move("a", "dst") and dst.to_set() == {"a"} and src.to_set() == {"b"}
    assert not src.move("a", "dst")
    assert src.move("b", "src") and src.to_set() == {"b"}
    assert src.move("b", "dst") and "src" not in store and dst.to_set() == {"a", "b"}
    store["str"] = "v"
    assert not store.sets["nokey"].move("a", "str")  # a missing source checks nothing
    with pytest.raises(WrongTypeError):
        dst.move("a", "str")
    with pytest.raises(WrongTypeError):
        store.sets["str"].move("a", "dst")
    assert dst.to_set() == {"a", "b"} and store["str"] == "v"


def test_algebra_across_keys(store: Store) -> None:
    store.sets["a"].add_many(["1", "2", "3"])
    store.sets["b"].add_many(["2", "3", "4"])
    store.sets["c"].add_many(["3"])
    a = store.sets["a"]
    assert a.intersection("b", "c") == {"3"} and a.intersection() == {"1", "2", "3"}
    assert a.union("b") == {"1", "2", "3", "4"} and a.difference("b") == {"1"}
    assert a.intersection("nokey") == set() and store.sets["nokey"].union("a") == a.to_set()
    assert a.intersection_count("b") == 2 and a.intersection_count("b", limit=1) == 1
    store["str"] = "v"
    for call in (a.intersection, a.union, a.difference):
        with pytest.raises(WrongTypeError):
            call("nokey", "str")  # every key's type is checked, as Redis 7.0 does


def test_store_forms_replace_or_delete_the_destination(store: Store) -> None:
    store.sets["a"].add_many(["1", "2"])
    store.sets["b"].add_many(["2", "3"])
    store["dest"] = "a string"
    assert store.expire("dest", 100)
    a = store.sets["a"]
    assert a.union_store("dest", "b") == 3
    assert store.sets["dest"].to_set() == {"1", "2", "3"} and store.ttl("dest") is None
    assert a.intersection_store("dest", "b") == 1 and store.sets["dest"].to_set() == {"2"}
    assert a.difference_store("dest", "a") == 0 and "dest" not in store
    assert a.difference_store("dest", "a") == 0
    assert a.intersection_store("a", "b") == 1 and a.to_set() == {"2"}


def test_wrong_arguments_name_themselves(store: Store) -> None:
    s = store.sets["s"]
    with pytest.raises(TypeError, match="member must be str, not int"):
        s.add(1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="members"):
        s.add_many("abc")
    with pytest.raises(TypeError, match="other_key"):
        s.move("a", 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="key"):
        s.union(1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="dest"):
        s.union_store(1)  # type: ignore[arg-type]
    assert "s" not in store


def test_a_key_of_another_type_is_refused_and_kept(store: Store) -> None:
    store["str"] = "v"
    store.hashes["h"]["f"] = "v"
    s = store.sets["str"]
    for call in (
        lambda: s.add("m"),
        lambda: s.remove_many(["m"]),
        lambda: "m" in s,
        lambda: len(s),
        s.to_set,
        s.pop,
        lambda: s.random(2),
        lambda: store.sets["h"].add("m"),
    ):
        with pytest.raises(WrongTypeError):
            call()
    assert store["str"] == "v" and store.hashes["h"].to_dict() == {"f": "v"}


def test_intset_order_is_redis_order() -> None:
    assert sets.intset_order(["10", "-2", "3"]) == ["-2", "3", "10"]
    assert sets.intset_order(["1", "a"]) is None
    assert sets.intset_order(["01"]) is None and sets.intset_order(["+1"]) is None
    assert sets.intset_order([str(2**63)]) is None
    assert sets.intset_order([str(i) for i in range(513)]) is None


def test_each_call_is_one_journal_record_and_survives_reopen(tmp_path: Path) -> None:
    store = snapkv.open(tmp_path)
    s = store.sets["s"]
    s.add_many(["a", "b", "c", "d"])
    s.discard("d")
    popped = s.pop()
    s.move("a" if popped != "a" else "b", "t")
    store.sets["t"].union_store("u", "s")
    store.sets["s"].intersection_store("gone", "nokey")
    store.db(3).sets["x"].add("y")
    expected = {key: store.sets[key].to_set() for key in ("s", "t", "u")}
    store.close()
    reopened = snapkv.open(tmp_path)
    try:
        assert {key: reopened.sets[key].to_set() for key in ("s", "t", "u")} == expected
        assert reopened.db(3).sets["x"].to_set() == {"y"} and "gone" not in reopened
    finally:
        reopened.close()


def test_a_failed_transaction_undoes_set_writes(store: Store) -> None:
    s = store.sets["s"]
    s.add_many(["a", "b"])
    with pytest.raises(RuntimeError), store.transaction():
        s.add("c")
        s.pop_many(2)
        store.sets["s"].union_store("u", "s")
        store.sets["t"].add("x")
        s.move("c", "t")
        raise RuntimeError("abort")
    assert s.to_set() == {"a", "b"} and "u" not in store and "t" not in store


def test_the_journal_holds_one_record_per_call(tmp_path: Path) -> None:
    store = snapkv.open(tmp_path, fsync="no")
    a = store.sets["a"]
    a.add_many(["1", "2"])
    store.sets["b"].add("9")
    a.move("1", "b")
    a.union_store("u", "b")
    taken = a.pop_many(1)
    a.intersection_store("u", "nokey")
    store.close()
    ops = [
        op
        for path in sorted(tmp_path.glob("journal-*"))
        for op in jr.scan_journal(path.read_bytes()).ops
    ]
    code, add, rem = sets.CODE, sets.OP_ADD, sets.OP_REM
    # A set a call creates is one PUT of it (nothing older of the key can merge in on replay).
    assert [(op[0], op[2], sorted(op[4]), op[5]) for op in ops[:2]] == [
        ("put", "a", ["1", "2"], 0),
        ("put", "b", ["9"], 0),
    ]
    assert ops[2] == (
        "batch",
        (("edit", 0, "a", code, rem, ("1",)), ("edit", 0, "b", code, add, ("1",))),
    )
    assert ops[3][:3] == ("put", 0, "u") and sorted(ops[3][4]) == ["1", "2", "9"]
    assert ops[3][5] == 0  # a STORE clears the destination's expiry
    assert ops[4:] == [("del", 0, "a"), ("del", 0, "u")]  # SPOP of the last member: a DEL
    assert taken == ["2"]
