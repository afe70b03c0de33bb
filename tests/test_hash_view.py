"""HashView, the Python API of a hash: a MutableMapping whose every call is one atomic step.

Each test names one promise: the mapping protocol, one journal record per
call (so a reopened directory has exactly what the calls left), the
counters' rules and errors (HINCRBY's and HINCRBYFLOAT's, as ValueError),
argument types (TypeError naming the argument), WRONGTYPE (nothing
changes), the empty hash that does not exist, and the expiry of the key.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import snapkv
from snapkv import Store
from snapkv.errors import StoreClosedError, WrongTypeError
from snapkv.values.hashes import human_float
from snapkv.views import HashView
from support import FakeClock


@pytest.fixture
def store() -> Store:
    return Store()


def test_it_is_a_mutable_mapping(store: Store) -> None:
    h = store.hashes["h"]
    assert len(h) == 0 and not h and dict(h) == {} and "f" not in h
    h["a"] = "1"
    h.update({"b": "2"}, c="3")
    assert dict(h) == {"a": "1", "b": "2", "c": "3"} and len(h) == 3
    assert h == {"a": "1", "b": "2", "c": "3"}
    assert list(h.keys()) == ["a", "b", "c"] and list(h.values()) == ["1", "2", "3"]
    assert list(h.items()) == [("a", "1"), ("b", "2"), ("c", "3")]
    assert h.get("a") == "1" and h.get("zz") is None and h.get("zz", "d") == "d"
    assert h.setdefault("a", "x") == "1" and h.setdefault("d", "4") == "4"
    assert h.pop("d") == "4" and h.pop("d", None) is None
    with pytest.raises(KeyError):
        h.pop("d")
    with pytest.raises(KeyError):
        h["zz"]
    with pytest.raises(KeyError):
        del h["zz"]
    del h["c"]
    assert h.popitem() == ("b", "2")
    assert h.to_dict() == {"a": "1"}
    h.clear()
    assert "h" not in store and not h.exists()
    with pytest.raises(KeyError):
        h.popitem()


def test_copies_are_point_in_time(store: Store) -> None:
    h = store.hashes["h"]
    h.update(a="1", b="2")
    items = h.items()
    keys = iter(h)
    h["c"] = "3"
    del h["a"]
    assert list(items) == [("a", "1"), ("b", "2")]
    assert list(keys) == ["a", "b"]


def test_the_last_field_removed_removes_the_key(store: Store) -> None:
    h = store.hashes["h"]
    h["f"] = "v"
    assert store.key_type("h") == "hash" and "h" in store.hashes
    assert h.delete_many(["f", "f", "zz"]) == 1
    assert store.key_type("h") is None and "h" not in store


def test_bulk_calls_report_what_changed(store: Store) -> None:
    h = store.hashes["h"]
    assert h.set_many({"a": "1", "b": "2"}) == 2
    assert h.set_many([("a", "x"), ("c", "3")]) == 1
    assert h.set_many({}) == 0
    assert h.get_many(["a", "zz", "c"]) == ["x", None, "3"]
    assert store.hashes["nokey"].get_many(["a"]) == [None]
    assert h.delete_many(["zz"]) == 0 and h.delete_many(["a", "c"]) == 2
    assert h.set_if_missing("b", "y") is False and h.set_if_missing("n", "1") is True
    assert h.to_dict() == {"b": "2", "n": "1"}


def test_incr_follows_hincrby(store: Store) -> None:
    h = store.hashes["h"]
    assert h.incr("n") == 1 and h.incr("n", 41) == 42 and h.incr("n", -50) == -8
    assert h["n"] == "-8"
    h.update(s="abc", plus="+1", lead="01", space=" 1", top=str(2**63 - 1))
    for field in ("s", "plus", "lead", "space"):
        with pytest.raises(ValueError, match="hash value is not an integer"):
            h.incr(field)
    with pytest.raises(ValueError, match="increment or decrement would overflow"):
        h.incr("top")
    with pytest.raises(ValueError, match="overflow"):
        h.incr("n", -(2**63))
    with pytest.raises(TypeError, match="amount"):
        h.incr("n", 1.5)  # type: ignore[arg-type]
    assert h["top"] == str(2**63 - 1) and h["n"] == "-8"


def test_incr_float_follows_hincrbyfloat(store: Store) -> None:
    h = store.hashes["h"]
    assert h.incr_float("f", 1.5) == "1.5"
    assert h.incr_float("f", 0.1) == "1.6"
    assert h.incr_float("f", -1.6) == "0"
    assert h.incr_float("f", 1e21) == "1000000000000000000000"
    h.update(s="abc", inf="inf", e="1e2")
    assert h.incr_float("e", 1) == "101"
    with pytest.raises(ValueError, match="hash value is not a float"):
        h.incr_float("s", 1)
    with pytest.raises(ValueError, match="increment would produce NaN or Infinity"):
        h.incr_float("inf", 1)
    with pytest.raises(ValueError, match="value is NaN or Infinity"):
        h.incr_float("f", float("nan"))
    with pytest.raises(TypeError, match="amount"):
        h.incr_float("f", "1")  # type: ignore[arg-type]
    assert human_float(1e-7) == "0.0000001" and human_float(3.0) == "3"


def test_random_fields(store: Store) -> None:
    h = store.hashes["h"]
    assert h.random_fields(3) == [] and h.random_fields(-3, with_values=True) == []
    h.update({f"f{i}": str(i) for i in range(5)})
    assert h.random_fields(0) == []
    assert len(set(h.random_fields(3))) == 3
    assert h.random_fields(10) == [f"f{i}" for i in range(5)]
    repeated = h.random_fields(-20, with_values=True)
    assert len(repeated) == 20 and all(h[f] == v for f, v in repeated)
    with pytest.raises(TypeError, match="count"):
        h.random_fields("2")  # type: ignore[arg-type]


def test_wrong_arguments_name_themselves(store: Store) -> None:
    h = store.hashes["h"]
    with pytest.raises(TypeError, match="field"):
        h[1] = "v"  # type: ignore[index]
    with pytest.raises(TypeError, match="value"):
        h["f"] = 1  # type: ignore[assignment]
    with pytest.raises(TypeError, match="value"):
        h.update({"f": None})
    with pytest.raises(TypeError, match="default"):
        h.setdefault("f")
    with pytest.raises(TypeError, match="key"):
        store.hashes[3]  # type: ignore[index]
    assert "h" not in store


def test_a_key_of_another_type_is_refused_and_kept(store: Store) -> None:
    store["s"] = "text"
    store.sets["set"].add("m")
    h = store.hashes["s"]
    calls = [
        lambda: h["f"],
        lambda: h.__setitem__("f", "v"),
        lambda: h.update(f="v"),
        lambda: h.incr("f"),
        lambda: h.incr_float("f", 1.0),
        lambda: h.set_if_missing("f", "v"),
        lambda: h.delete_many(["f"]),
        h.to_dict,
        lambda: len(h),
        lambda: "f" in h,
        lambda: h.random_fields(2),
        lambda: store.hashes["set"].get("f"),
    ]
    for call in calls:
        with pytest.raises(WrongTypeError):
            call()
    assert store["s"] == "text" and store.sets["set"].to_set() == {"m"}
    assert "s" not in store.hashes


def test_expiry_of_the_key_is_kept_by_writes_and_ends_it() -> None:
    clock = FakeClock()
    store = Store(clock=clock, sweep_interval=None)
    h = store.hashes["h"]
    h["a"] = "1"
    assert store.expire("h", 10)
    h["b"] = "2"
    h.incr("n")
    assert store.ttl("h") == pytest.approx(10)
    clock.advance(10)
    assert len(h) == 0 and h.get("a") is None and "h" not in store
    h["c"] = "3"  # a new hash, without the old one's fields or expiry
    assert h.to_dict() == {"c": "3"} and store.ttl("h") is None


def test_each_call_is_one_journal_record_and_survives_reopen(tmp_path: Path) -> None:
    store = snapkv.open(tmp_path)
    h: HashView = store.hashes["h"]
    h["a"] = "1"
    h.update({"b": "2", "c": "3"})
    h.incr("n", 5)
    h.incr_float("x", 0.5)
    h.set_if_missing("a", "no")
    del h["b"]
    store.db(2).hashes["other"]["f"] = "v"
    store.hashes["gone"]["f"] = "v"
    store.hashes["gone"].clear()
    expected = h.to_dict()
    store.close()
    reopened = snapkv.open(tmp_path)
    try:
        assert (
            reopened.hashes["h"].to_dict()
            == expected
            == {
                "a": "1",
                "c": "3",
                "n": "5",
                "x": "0.5",
            }
        )
        assert reopened.db(2).hashes["other"].to_dict() == {"f": "v"}
        assert "gone" not in reopened
    finally:
        reopened.close()


def test_a_failed_transaction_undoes_hash_writes(store: Store) -> None:
    h = store.hashes["h"]
    h.update(a="1", b="2")
    with pytest.raises(RuntimeError), store.transaction():
        h["a"] = "changed"
        h["new"] = "x"
        del h["b"]
        h.incr("n")
        store.hashes["fresh"]["f"] = "v"
        raise RuntimeError("abort")
    assert h.to_dict() == {"a": "1", "b": "2"} and "fresh" not in store


def test_a_closed_store_refuses_hash_and_set_calls() -> None:
    store = Store()
    h, s = store.hashes["h"], store.sets["s"]
    h["f"] = "v"
    s.add("m")
    store.close()
    for call in (lambda: h.__setitem__("f", "w"), h.to_dict, lambda: s.add("n"), s.to_set):
        with pytest.raises(StoreClosedError):
            call()
