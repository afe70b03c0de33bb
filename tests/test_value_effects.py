"""The value types' foundation: effect records, their application, their undo, copy on write.

Every container change is an *effect* (a journal EDIT, PUT or RENAME
record) applied through one function (``effects.apply_key``) by the live
write path, by replay and by a transaction's undo. These tests pin the
pieces the views and the server build on:

* the records round-trip through the journal's encoder and decoder, and a
  damaged one is refused with the failed check;
* each type's ``inverse`` undoes each of its effects exactly (hypothesis,
  over random containers and effects);
* the keyspace's generic operations (type, copy, rename, move, delete,
  expiry) treat every type alike, and the string API refuses a container
  with WrongTypeError, changing nothing;
* a journaled store replays its containers to the state the writes built;
* a transaction that raises puts every container back;
* a save in progress sees the containers as they were when it started.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import snapkv
from snapkv import journal as jr
from snapkv import values
from snapkv.effects import apply_key, new_space, unfreeze
from snapkv.errors import CorruptJournalError, WrongTypeError
from snapkv.values import hashes, lists, sets, zsets
from support import FakeClock

texts = st.text(max_size=6)
scores = st.floats(allow_nan=False)


# ------------------------------------------------------------------ records


@given(
    key=st.text(),
    items=st.lists(
        st.one_of(st.text(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False))
    ),
)
def test_edit_and_put_records_round_trip(key: str, items: list[Any]) -> None:
    edit = jr.decode_record(jr.edit_record(3, key, hashes.CODE, 7, items))
    assert edit == ("edit", 3, key, hashes.CODE, 7, tuple(items))
    put = jr.decode_record(jr.put_record(1, key, zsets.CODE, items, 99))
    assert put == ("put", 1, key, zsets.CODE, tuple(items), 99)
    # Types survive exactly: an int item never comes back a float, -0.0 stays -0.0.
    assert [type(i) for i in edit[5]] == [type(i) for i in items]
    for sent, got in zip(items, edit[5], strict=True):
        if isinstance(sent, float):
            assert math.copysign(1, sent) == math.copysign(1, got)


def test_rename_record_round_trips_and_a_batch_holds_the_new_records() -> None:
    rename = jr.rename_record(0, "a\udcff", 15, "b")
    assert jr.decode_record(rename) == ("rename", 0, "a\udcff", 15, "b")
    batch = jr.batch_record([jr.edit_record(0, "k", 2, 1, ["x"]), rename])
    assert jr.decode_record(batch) == (
        "batch",
        (("edit", 0, "k", 2, 1, ("x",)), ("rename", 0, "a\udcff", 15, "b")),
    )


def test_a_nan_or_an_unknown_item_is_refused_when_encoding() -> None:
    with pytest.raises(ValueError, match="NaN"):
        jr.edit_record(0, "k", zsets.CODE, zsets.OP_ADD, [math.nan, "m"])
    with pytest.raises(TypeError, match="bytes"):
        jr.edit_record(0, "k", sets.CODE, sets.OP_ADD, [b"m"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="64 bits"):
        jr.edit_record(0, "k", lists.CODE, lists.OP_SPLICE, [2**63, 0])


def _reframed(body: bytes, record_type: int) -> bytes:
    """A record with a valid frame around ``body``: only the body's own checks can fail."""
    import zlib

    head = len(body).to_bytes(4, "little") + bytes([record_type])
    return (zlib.crc32(head + body) & 0xFFFFFFFF).to_bytes(4, "little") + head + body


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (bytes(9), "needs 10"),  # EDIT body shorter than its fixed fields
        (bytes(4) + b"\x01\x01" + (9).to_bytes(4, "little") + b"k", "key length 9"),
        (bytes(4) + b"\x01\x01" + (1).to_bytes(4, "little") + b"k\x07", "item tag 7"),
        (bytes(4) + b"\x01\x01" + (1).to_bytes(4, "little") + b"k\x00\x05\x00\x00\x00ab", "runs"),
        (bytes(4) + b"\x01\x01" + (1).to_bytes(4, "little") + b"k\x01\x00", "number item"),
        (
            bytes(4)
            + b"\x01\x01"
            + (1).to_bytes(4, "little")
            + b"k\x02"
            + b"\x00" * 6
            + b"\xf8\x7f",
            "NaN",
        ),
    ],
)
def test_a_malformed_edit_body_is_corruption_at_its_offset(body: bytes, what: str) -> None:
    with pytest.raises(CorruptJournalError, match=what) as info:
        jr.decode_record(_reframed(body, jr.TYPE_EDIT))
    assert info.value.check == "record-body"


# ------------------------------------------------------------ effects, undo


def _effects(kind: Any) -> st.SearchStrategy[tuple[int, tuple[Any, ...]]]:
    """Effects a writer of ``kind`` could record against some container."""
    if kind is hashes:
        return st.one_of(
            st.lists(texts, max_size=6).map(
                lambda fs: (hashes.OP_SET, tuple(x for f in fs for x in (f, f + "!")))
            ),
            st.lists(texts, max_size=6).map(lambda fs: (hashes.OP_DEL, tuple(fs))),
        )
    if kind is sets:
        return st.tuples(st.sampled_from([sets.OP_ADD, sets.OP_REM]), st.lists(texts).map(tuple))
    if kind is zsets:
        return st.one_of(
            st.lists(st.tuples(scores, texts), max_size=6).map(
                lambda ps: (zsets.OP_ADD, tuple(x for p in ps for x in p))
            ),
            st.lists(texts, max_size=6).map(lambda ms: (zsets.OP_REM, tuple(ms))),
        )
    return st.tuples(
        st.sampled_from([lists.OP_PUSH_LEFT, lists.OP_PUSH_RIGHT]),
        st.lists(texts, min_size=1, max_size=5).map(tuple),
    )


def _list_effect(value: Any, draw: Any) -> tuple[int, tuple[Any, ...]]:
    """An effect a list writer could record against ``value`` (pops take what is there)."""
    n = len(value) if value is not None else 0
    choices = [lists.OP_PUSH_LEFT, lists.OP_PUSH_RIGHT]
    if n:
        choices += [lists.OP_POP_LEFT, lists.OP_POP_RIGHT, lists.OP_SPLICE, lists.OP_REMOVE]
        choices += [lists.OP_TRIM]
    opcode = draw(st.sampled_from(choices))
    if opcode in (lists.OP_PUSH_LEFT, lists.OP_PUSH_RIGHT):
        return opcode, tuple(draw(st.lists(texts, min_size=1, max_size=4)))
    if opcode in (lists.OP_POP_LEFT, lists.OP_POP_RIGHT):
        count = draw(st.integers(1, n))
        seq = list(value) if opcode == lists.OP_POP_LEFT else list(reversed(value))
        return opcode, tuple(seq[:count])
    if opcode == lists.OP_SPLICE:
        index = draw(st.integers(0, n))
        count = draw(st.integers(0, n - index))
        return opcode, (index, count, *draw(st.lists(texts, max_size=3)))
    if opcode == lists.OP_REMOVE:
        return opcode, tuple(sorted(draw(st.sets(st.integers(0, n - 1), min_size=1))))
    start = draw(st.integers(0, n))
    return opcode, (start, draw(st.integers(0, n - start)))


def _snapshot(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, zsets.ZSet):
        return dict(value.scores), list(value.order)
    return type(value).__mro__[1](value)  # the plain dict / deque / set it extends


@settings(max_examples=300)
@given(data=st.data(), kind=st.sampled_from([hashes, lists, sets, zsets]))
def test_inverse_undoes_every_effect_exactly(data: Any, kind: Any) -> None:
    value = None
    for _ in range(data.draw(st.integers(0, 3))):  # a container built by earlier effects
        effect = _list_effect(value, data.draw) if kind is lists else data.draw(_effects(kind))
        value = kind.apply(value, *effect)
    before = _snapshot(value)
    opcode, items = _list_effect(value, data.draw) if kind is lists else data.draw(_effects(kind))
    undo = kind.inverse(value, opcode, items)
    after = kind.apply(value, opcode, items)
    for inverse_opcode, inverse_items in undo:
        after = kind.apply(after, inverse_opcode, inverse_items)
    assert _snapshot(after) == before


@given(kind=st.sampled_from([hashes, lists, sets, zsets]), data=st.data())
def test_flat_and_build_round_trip(kind: Any, data: Any) -> None:
    effect = _list_effect(None, data.draw) if kind is lists else data.draw(_effects(kind))
    value = kind.apply(None, *effect)
    if value is None:
        return
    rebuilt = kind.build(kind.flat(value))
    assert _snapshot(rebuilt) == _snapshot(value)
    copied = kind.copy(value)
    assert copied is not value and _snapshot(copied) == _snapshot(value)


def test_a_list_pop_that_disagrees_with_the_list_is_refused() -> None:
    value = lists.build(["a", "b"])
    with pytest.raises(ValueError, match="took 'a' where the journal says 'b'"):
        lists.apply(value, lists.OP_POP_LEFT, ("b",))


def test_apply_key_refuses_an_edit_of_another_type_and_removes_an_emptied_key() -> None:
    space = new_space()
    spaces = {0: space}
    apply_key(spaces.__getitem__, ("set", 0, "s", "text", 0))
    with pytest.raises(ValueError, match="as a hash, but it holds a string"):
        apply_key(spaces.__getitem__, ("edit", 0, "s", hashes.CODE, hashes.OP_SET, ("f", "v")))
    apply_key(spaces.__getitem__, ("put", 0, "h", hashes.CODE, ("f", "v"), 5_000))
    assert space[0]["h"] == {"f": "v"} and space[1]["h"] == 5_000
    apply_key(spaces.__getitem__, ("edit", 0, "h", hashes.CODE, hashes.OP_DEL, ("f",)))
    assert "h" not in space[0] and "h" not in space[1]


def test_unfreeze_copies_only_containers_older_than_the_running_save() -> None:
    old = hashes.build(["f", "v"])
    frozen_below = values.next_epoch()
    new = hashes.build(["g", "w"])
    data: dict[str, Any] = {"old": old, "new": new, "s": "text"}
    copied = unfreeze(data, "old", old, frozen_below)
    assert copied == old and copied is not old and data["old"] is copied
    assert unfreeze(data, "new", new, frozen_below) is new
    assert unfreeze(data, "s", "text", frozen_below) == "text"
    assert unfreeze(data, "old", copied, frozen_below) is copied  # copied once only


# ----------------------------------------------------------------- keyspace


def _filled(store: snapkv.Store) -> None:
    store.set("s", "text")
    store.hashes["h"].update(a="1", b="2")
    ks = store.db(0)
    ks._write([("edit", 0, "l", lists.CODE, lists.OP_PUSH_RIGHT, ("x", "y"))])
    ks._write([("edit", 0, "z", zsets.CODE, zsets.OP_ADD, (1.5, "m", -math.inf, "n"))])
    ks._write([("edit", 0, "t", sets.CODE, sets.OP_ADD, ("p", "q"))])


def _state(store: snapkv.Store) -> dict[int, dict[str, tuple[Any, int]]]:
    out: dict[int, dict[str, tuple[Any, int]]] = {}
    for n in range(store.databases):
        space = store.db(n)._space
        if space[0]:
            out[n] = {
                k: (_snapshot(v) if not isinstance(v, str) else v, space[1].get(k, 0))
                for k, v in space[0].items()
            }
    return out


def test_the_string_api_refuses_containers_and_changes_nothing() -> None:
    store = snapkv.Store()
    _filled(store)
    before = _state(store)
    for call in (
        lambda: store.get("h"),
        lambda: store["l"],
        lambda: store.pop("z"),
        lambda: store.pop("z", None),
        lambda: store.setdefault("t", "x"),
        store.items,
        store.values,
    ):
        with pytest.raises(WrongTypeError) as info:
            call()
        assert isinstance(info.value, TypeError)
    assert _state(store) == before
    assert {k: store.key_type(k) for k in store} == {
        "s": "string", "h": "hash", "l": "list", "z": "zset", "t": "set"
    }  # fmt: skip
    assert "h" in store and store.key_type("missing") is None
    assert store.delete("h") and store.key_type("h") is None


def test_copy_rename_move_and_expiry_treat_every_type_alike(tmp_path: Path) -> None:
    clock = FakeClock()
    store = snapkv.open(tmp_path / "d", clock=clock, sweep_interval=None)
    _filled(store)
    store.expire("h", 10)
    assert store.copy_key("h", "h2", db=3)
    assert store.db(3).expiry_ms("h2") == store.expiry_ms("h")
    store.db(3).hashes["h2"]["c"] = "3"  # an independent copy
    assert "c" not in store.hashes["h"]
    assert not store.copy_key("h", "s")  # exists, no replace
    assert store.copy_key("h", "s", replace=True) and store.key_type("s") == "hash"
    with pytest.raises(ValueError, match="same"):
        store.copy_key("h", "h")
    store.rename("z", "z2")
    assert store.move("l", 5) and store.db(5).key_type("l") == "list"
    expected = _state(store)
    store.close()
    reopened = snapkv.open(tmp_path / "d", clock=clock, sweep_interval=None)
    assert _state(reopened) == expected
    clock.advance(11)
    assert reopened.key_type("h") is None and reopened.key_type("s") is None  # s got h's expiry
    reopened.close()


def test_an_expired_container_written_again_starts_afresh_and_replays_so(tmp_path: Path) -> None:
    clock = FakeClock()
    store = snapkv.open(tmp_path / "d", clock=clock, sweep_interval=None)
    store.hashes["h"]["old"] = "1"
    store.expire("h", 1)
    clock.advance(2)
    store.hashes["h"]["new"] = "2"  # the expired hash is gone: no "old", no expiry
    assert dict(store.hashes["h"]) == {"new": "2"} and store.ttl("h") is None
    store.set("s", "x", ttl=1)
    clock.advance(2)
    store.hashes["s"]["f"] = "v"  # an expired string does not make this a WRONGTYPE
    expected = _state(store)
    store.close()
    reopened = snapkv.open(tmp_path / "d", clock=clock, sweep_interval=None)
    assert _state(reopened) == expected
    reopened.close()


def test_a_raising_transaction_puts_every_container_back(tmp_path: Path) -> None:
    store = snapkv.open(tmp_path / "d")
    _filled(store)
    store.expire("t", 100)
    before = _state(store)
    ks = store.db(0)
    with pytest.raises(RuntimeError), store.transaction():
        store.hashes["h"]["a"] = "changed"
        del store.hashes["h"]["b"]
        ks._write([("edit", 0, "l", lists.CODE, lists.OP_POP_LEFT, ("x",))])
        ks._write([("edit", 0, "l", lists.CODE, lists.OP_SPLICE, (0, 1, "new", "newer"))])
        ks._write([("edit", 0, "t", sets.CODE, sets.OP_REM, ("p", "q"))])  # empties: key gone
        ks._write([("edit", 0, "z", zsets.CODE, zsets.OP_ADD, (9.0, "m", 2.0, "o"))])
        store.rename("z", "s")
        store.copy_key("h", "h3", db=2)
        store.hashes["fresh"]["f"] = "v"
        raise RuntimeError
    assert _state(store) == before
    store.close()
    reopened = snapkv.open(tmp_path / "d")
    assert _state(reopened) == before  # and nothing of it reached the journal
    reopened.close()


def test_a_committed_transaction_of_containers_is_one_record(tmp_path: Path) -> None:
    store = snapkv.open(tmp_path / "d")
    with store.transaction():
        store.hashes["h"]["a"] = "1"
        store.db(0)._write([("edit", 0, "l", lists.CODE, lists.OP_PUSH_LEFT, ("a", "b"))])
        store.rename("h", "g")
    expected = _state(store)
    store.close()
    records = [
        op
        for path in sorted((tmp_path / "d").glob("journal-*.skj"))
        for op in jr.scan_journal(path.read_bytes()).ops
    ]
    assert [op[0] for op in records] == ["batch"]
    reopened = snapkv.open(tmp_path / "d")
    assert _state(reopened) == expected
    reopened.close()


def test_a_save_encodes_containers_as_they_were_when_it_started(tmp_path: Path) -> None:
    store = snapkv.open(tmp_path / "d", journal=False)
    store.hashes["h"].update(a="1")
    ks = store.db(0)
    ks._write([("edit", 0, "l", lists.CODE, lists.OP_PUSH_RIGHT, ("x",))])
    medium = store.medium
    started, release = threading.Event(), threading.Event()
    publish = medium.publish

    def slow_publish(pieces: Any) -> None:
        started.set()
        assert release.wait(10)
        publish(pieces)

    medium.publish = slow_publish  # type: ignore[method-assign]
    saver = threading.Thread(target=store.save)
    saver.start()
    assert started.wait(10)
    store.hashes["h"]["a"] = "changed during the save"
    ks._write([("edit", 0, "l", lists.CODE, lists.OP_PUSH_RIGHT, ("y",))])
    release.set()
    saver.join(10)
    medium.publish = publish  # type: ignore[method-assign]
    assert store.hashes["h"]["a"] == "changed during the save"
    store.restore()
    assert dict(store.hashes["h"]) == {"a": "1"}
    assert list(store.lists["l"]) == ["x"]
    store.close()


@pytest.mark.parametrize("kind", ["hash", "list", "set", "zset"])
def test_a_container_recreated_after_its_expiry_was_reclaimed_survives_replay(
    tmp_path: Path, kind: str
) -> None:
    """Expiry is never journaled: replay still holds the old value when the new one arrives.

    The write that creates the key again must replace it, not merge into it
    (and inherit its expiry, which would drop the new value at replay's end).
    """
    clock = FakeClock()
    store = snapkv.open(tmp_path / "d", clock=clock, sweep_interval=None)

    def write(member: str) -> None:
        if kind == "hash":
            store.hashes["k"][member] = "v"
        elif kind == "set":
            store.db(0)._write([("edit", 0, "k", sets.CODE, sets.OP_ADD, (member,))])
        elif kind == "list":
            store.db(0)._write([("edit", 0, "k", lists.CODE, lists.OP_PUSH_RIGHT, (member,))])
        else:
            store.db(0)._write([("edit", 0, "k", zsets.CODE, zsets.OP_ADD, (1.0, member))])

    write("old")
    store.expire("k", 1)
    clock.advance(2)
    assert store.sweep() == 1  # reclaimed, and nothing journaled for it
    write("new")
    expected = _state(store)
    assert store.ttl("k") is None
    store.close()
    reopened = snapkv.open(tmp_path / "d", clock=clock, sweep_interval=None)
    assert _state(reopened) == expected
    reopened.close()


def test_an_edit_after_a_rename_in_one_record_edits_the_renamed_value(tmp_path: Path) -> None:
    store = snapkv.open(tmp_path / "d")
    store.hashes["a"]["f"] = "1"
    store.db(0)._write(
        [("rename", 0, "a", 0, "b"), ("edit", 0, "b", hashes.CODE, hashes.OP_SET, ("g", "2"))]
    )
    assert dict(store.hashes["b"]) == {"f": "1", "g": "2"}
    expected = _state(store)
    store.close()
    reopened = snapkv.open(tmp_path / "d")
    assert _state(reopened) == expected
    reopened.close()


def test_a_raising_transaction_undoes_several_effects_on_one_key_in_one_record(
    tmp_path: Path,
) -> None:
    """A record with several effects on one key (a rotation; a DEL then a recreating EDIT).

    Undo worked out per effect before any of them applies would be wrong for
    the later ones; the key must come back exactly as it was.
    """
    clock = FakeClock()
    store = snapkv.open(tmp_path / "d", clock=clock, sweep_interval=None)
    store.lists["l"].extend(["a", "b", "c"])
    store.set("s", "old", ttl=1)
    clock.advance(2)  # "s" is expired but not reclaimed: a set edit recreates it
    before = _state(store)
    ks = store.db(0)
    with pytest.raises(RuntimeError), store.transaction():
        ks._write(
            [
                ("edit", 0, "l", lists.CODE, lists.OP_POP_RIGHT, ("c",)),
                ("edit", 0, "l", lists.CODE, lists.OP_PUSH_LEFT, ("c",)),
                ("edit", 0, "l", lists.CODE, lists.OP_SPLICE, (1, 1, "x")),
            ]
        )
        ks._write([("edit", 0, "s", sets.CODE, sets.OP_ADD, ("m",)), ("del", 0, "l")])
        raise RuntimeError
    assert _state(store) == before
    store.close()


def _rollback_ops() -> st.SearchStrategy[list[tuple[str, str, str]]]:
    keys = st.sampled_from(["a", "b", "c"])
    values = st.sampled_from(["x", "y", "z"])
    return st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "lpush", "rpop", "lpop", "rotate", "lrem", "sadd", "srem", "smove",
                    "spop", "hset", "hdel", "zadd", "zrem", "zpopmin", "expire",
                    "persist", "rename", "move", "copy", "delete", "set",
                ]
            ),
            keys,
            values,
        ),
        max_size=12,
    )  # fmt: skip


def _run(store: snapkv.Store, name: str, key: str, value: str) -> None:
    other = "b" if key != "b" else "c"
    try:
        if name == "lpush":
            store.lists[key].appendleft(value)
        elif name == "rpop":
            store.lists[key].pop()
        elif name == "lpop":
            store.lists[key].popleft()
        elif name == "rotate":
            store.lists[key].move_to(key)
        elif name == "lrem":
            store.lists[key].remove(value, 0)
        elif name == "sadd":
            store.sets[key].add(value)
        elif name == "srem":
            store.sets[key].discard(value)
        elif name == "smove":
            store.sets[key].move(value, other)
        elif name == "spop":
            store.sets[key].pop()
        elif name == "hset":
            store.hashes[key][value] = key
        elif name == "hdel":
            del store.hashes[key][value]
        elif name == "zadd":
            store.zsets[key][value] = float(len(key))
        elif name == "zrem":
            store.zsets[key].remove(value)
        elif name == "zpopmin":
            store.zsets[key].pop_min()
        elif name == "expire":
            store.expire(key, 100)
        elif name == "persist":
            store.persist(key)
        elif name == "rename":
            store.rename(key, other)
        elif name == "move":
            store.move(key, 1)
        elif name == "copy":
            store.copy_key(key, other, replace=True)
        elif name == "delete":
            store.delete(key)
        else:
            store.set(key, value)
    except (KeyError, IndexError, WrongTypeError):
        pass  # a refused call changes nothing, as the model says


@settings(max_examples=200, deadline=None)
@given(before=_rollback_ops(), inside=_rollback_ops())
def test_any_raising_transaction_leaves_memory_and_disk_as_they_were(
    before: list[tuple[str, str, str]], inside: list[tuple[str, str, str]]
) -> None:
    """Found by review: undo entries holding a container a later effect changed in place."""
    import tempfile

    with tempfile.TemporaryDirectory() as root:
        clock = FakeClock()
        store = snapkv.open(Path(root) / "d", clock=clock, sweep_interval=None)
        for step in before:
            _run(store, *step)
        expected = _state(store)
        with pytest.raises(RuntimeError), store.transaction():
            for step in inside:
                _run(store, *step)
            raise RuntimeError
        assert _state(store) == expected
        for key in ("a", "b", "c"):
            value = store.db(0)._space[0].get(key)
            assert value is None or isinstance(value, str) or len(value) > 0
        store.save()  # an empty container left behind would make this raise
        store.close()
        reopened = snapkv.open(Path(root) / "d", clock=clock, sweep_interval=None)
        assert _state(reopened) == expected
        reopened.close()


def test_set_draws_stay_uniform_when_a_member_is_removed_and_added_again() -> None:
    """Found by review: a re-added member stood in the draw pool once per re-add (50% of draws)."""
    store = snapkv.Store()
    members = store.sets["s"]
    members.add_many(f"m{i}" for i in range(1000))
    members.random()  # the first draw builds the pool
    for _ in range(1000):
        members.discard("m0")
        members.add("m0")
    value = store.db(0)._space[0]["s"]
    assert sorted(value.pool) == sorted(value) and len(value.slots) == 1000
    draws = [members.random() for _ in range(20_000)]
    assert draws.count("m0") < 100  # ~20 expected at 1 in 1,000


@settings(max_examples=100, deadline=None)
@given(
    ops=st.lists(
        st.tuples(st.booleans(), st.lists(st.sampled_from("abcdefgh"), max_size=4)), max_size=30
    )
)
def test_a_set_draw_pool_is_always_exactly_its_members(ops: list[tuple[bool, list[str]]]) -> None:
    value = sets.build(list("abcdefgh"))
    sets.draw(value, 1, distinct=False)  # builds the pool
    for add, members in ops:
        result = sets.apply(value, sets.OP_ADD if add else sets.OP_REM, tuple(members))
        if result is None:
            return
        assert value.pool is not None and value.slots is not None
        assert sorted(value.pool) == sorted(value)
        assert all(value.pool[i] == m for m, i in value.slots.items())


@pytest.mark.parametrize(
    "record",
    [
        jr.edit_record(0, "s", 9, 1, ("c",)),  # no value type 9
        jr.edit_record(0, "s", lists.CODE, 86, ("c",)),  # no list opcode 86
        jr.edit_record(0, "s", hashes.CODE, hashes.OP_SET, ("f", "v")),  # "s" is a string
    ],
    ids=["type", "opcode", "other-type"],
)
def test_a_record_that_cannot_apply_is_refused_naming_its_journal_and_offset(
    tmp_path: Path, record: bytes
) -> None:
    """Found by review: such a record (its CRC holds) escaped replay as a bare ValueError."""
    store = snapkv.open(tmp_path / "d")
    store.set("s", "text")
    store.set("t", "more")
    size = store.journal_size
    store._writer.append(record)  # what a broken writer would leave
    store.close()
    with pytest.raises(CorruptJournalError) as info:
        snapkv.open(tmp_path / "d")
    assert info.value.check == "record-effect"
    assert info.value.offset == size
    assert "journal 1" in str(info.value) and "cannot apply" in str(info.value)


@pytest.mark.parametrize(
    "record",
    [
        jr.edit_record(0, "s", sets.CODE, sets.OP_ADD, (5, "a")),
        jr.edit_record(0, "h", hashes.CODE, hashes.OP_SET, ("f", 5)),
        jr.edit_record(0, "h", hashes.CODE, hashes.OP_SET, (1.5, "v")),
        jr.put_record(0, "s", sets.CODE, (7,)),
        jr.edit_record(0, "l", lists.CODE, lists.OP_PUSH_RIGHT, (5,)),
    ],
    ids=["set-add", "hash-value", "hash-field", "set-put", "list-push"],
)
def test_a_record_with_numbers_where_text_belongs_is_refused(tmp_path: Path, record: bytes) -> None:
    """Found by review: it loaded, and every later save failed on the number."""
    store = snapkv.open(tmp_path / "d")
    store.set("x", "1")
    store._writer.append(record)
    store.close()
    with pytest.raises(CorruptJournalError, match="must be str") as info:
        snapkv.open(tmp_path / "d")
    assert info.value.check == "record-effect"


def test_a_rolled_back_transaction_restores_keys_its_own_reads_reclaimed(tmp_path: Path) -> None:
    """Found by review: a locked read inside the block reclaimed keys the undo never heard of."""
    clock = FakeClock()
    store = snapkv.open(tmp_path / "d", clock=clock, sweep_interval=None)
    store.set("k", "v")
    store.sets["s"].add("a")
    store.sets["t"].add_many(["a", "b"])
    store.expire("t", 100)
    before = _state(store)
    with pytest.raises(RuntimeError), store.transaction():
        store.expire("k", 1)
        store.expire("s", 1)
        store.sets["t"].add("x")
        store.expire("t", 1)
        clock.advance(2)
        assert len(store) == 0  # reclaims k, s and t inside the block
        raise RuntimeError
    assert _state(store) == before
    store.save()
    clock.advance(50)
    assert len(store) == 3 and store.sweep() == 0
    store.close()
    reopened = snapkv.open(tmp_path / "d", clock=clock, sweep_interval=None)
    assert sorted(reopened.keys()) == ["k", "s", "t"]
    reopened.close()


def test_restore_value_puts_any_type_with_an_absolute_expiry_as_one_record(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    store = snapkv.open(tmp_path / "d", clock=clock, sweep_interval=None)
    now = store.now_ms()
    h = hashes.Hash({"a": "1", "b": "2"})
    assert store.restore_value("h", h, now + 5_000) == "created"
    assert store.restore_value("h", "x", None, replace=False) == "refused"
    assert store.key_type("h") == "hash" and store.expiry_ms("h") == now + 5_000
    assert store.restore_value("h", "plain", None) == "replaced"
    assert store.get("h") == "plain" and store.expiry_ms("h") is None
    assert store.restore_value("gone", "v", now - 1) == "expired" and "gone" not in store
    assert store.restore_value("h", "v", now) == "deleted" and "h" not in store
    store.db(2).restore_value("z", zsets.ZSet([(1.5, "m")]), None)
    expected = _state(store), dict(store.db(2).zsets["z"].items())
    store.close()
    reopened = snapkv.open(tmp_path / "d", clock=clock, sweep_interval=None)
    assert (_state(reopened), dict(reopened.db(2).zsets["z"].items())) == expected
    reopened.close()
