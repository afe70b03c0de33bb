"""Streams in the store: the view, its effects in the journal, replay, snapshots, undo, kill -9.

The view (``StreamView``) decides what Redis decides while a command runs
(``*``, MAXLEN/MINID trims) and journals only concrete effects: these
tests read the journal to check that, reopen directories (replay of the
journal alone, a snapshot alone, both), undo transactions, and SIGKILL a
writer process to check that every acknowledged write survives.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import snapkv
from snapkv import journal as jr
from snapkv.errors import WrongTypeError
from snapkv.values import streams
from snapkv.views import StreamView

SRC = Path(__file__).resolve().parent.parent / "src"


def view(store: Any, key: str = "s", db: int = 0) -> StreamView:
    return StreamView(store.db(db), key)


def state(store: Any, db: int = 0) -> dict[str, Any]:
    """Every stream of keyspace ``db``: its entries and XINFO's metadata."""
    out = {}
    for key in list(store.db(db)):
        if store.db(db).key_type(key) == "stream":
            info = view(store, key, db).info()
            out[key] = (view(store, key, db).range(), info)
    return out


# ------------------------------------------------------------------ the view


def test_a_missing_stream_reads_empty_and_add_creates_it() -> None:
    store = snapkv.Store()
    s = view(store)
    assert s.range() == [] and s.length() == 0 and s.last_id is None and s.info() is None
    assert s.add({"a": "1", "b": "2"}, "5-1") == "5-1"
    assert s.add([("a", "3"), ("a", "4")], "5-*") == "5-2"  # a field may repeat
    assert s.add({"c": "5"}, "7") == "7-0"
    assert s.range() == [
        ("5-1", ("a", "1", "b", "2")),
        ("5-2", ("a", "3", "a", "4")),
        ("7-0", ("c", "5")),
    ]
    assert s.revrange(count=1) == [("7-0", ("c", "5"))]
    assert s.range("(5-1", "(7-0") == [("5-2", ("a", "3", "a", "4"))]
    assert s.range("5", "5") == [("5-1", ("a", "1", "b", "2")), ("5-2", ("a", "3", "a", "4"))]
    assert s.after((5, 2)) == [("7-0", ("c", "5"))]
    assert store.key_type("s") == "stream"


def test_ids_must_grow_and_errors_carry_redis_words() -> None:
    store = snapkv.Store()
    s = view(store)
    s.add({"f": "v"}, "3-3")
    for bad, words in [
        ("3-3", "equal or smaller than the target stream top item"),
        ("2-*", "equal or smaller than the target stream top item"),
        ("0-0", "must be greater than 0-0"),
        ("x-1", "Invalid stream ID"),
        ("-", "Invalid stream ID"),
    ]:
        with pytest.raises(ValueError, match=words):
            s.add({"f": "v"}, bad)
    with pytest.raises(ValueError, match="at least one field"):
        s.add({}, "9-0")
    with pytest.raises(ValueError, match="not compatible"):
        s.add({"f": "v"}, maxlen=1, minid="1")
    with pytest.raises(ValueError, match="special ~ option"):
        s.add({"f": "v"}, maxlen=1, limit=3)
    assert s.range() == [("3-3", ("f", "v"))]
    assert s.add({"f": "v"}, "3-*") == "3-4"


def test_star_takes_the_clock_and_never_goes_back() -> None:
    now = [1000.0]
    store = snapkv.Store(clock=lambda: now[0])
    s = view(store)
    assert s.add({"f": "v"}) == "1000000-0"
    assert s.add({"f": "v"}) == "1000000-1"
    now[0] = 999.0  # the clock went back: the ID still grows
    assert s.add({"f": "v"}) == "1000000-2"
    now[0] = 1001.5
    assert s.add({"f": "v"}) == "1001500-0"


def test_trims_exact_and_approximate() -> None:
    store = snapkv.Store()
    s = view(store)
    for n in range(1, 251):
        s.add({"n": str(n)}, f"{n}-0")
    assert s.trim(maxlen=245) == 5 and s.length() == 245
    # ~ removes whole nodes of 100 entries only (Redis's radix-tree nodes)
    assert s.trim(maxlen=100, approximate=True) == 100 and s.length() == 145
    assert s.trim(maxlen=100, approximate=True, limit=10) == 0
    assert s.trim(minid="200") == 94 and s.range(count=1)[0][0] == "200-0"
    assert s.add({"x": "y"}, "300-0", maxlen=0) == "300-0"
    assert s.length() == 0 and s.last_id == "300-0"  # an empty stream still exists
    assert "s" in store


def test_delete_and_set_id_keep_redis_metadata() -> None:
    store = snapkv.Store()
    s = view(store)
    for n in range(1, 6):
        s.add({"n": str(n)}, f"{n}-0")
    assert s.delete(["2-0", "4-0", "9-9", "4-0"]) == 2
    info = s.info()
    assert info is not None
    assert info["max-deleted-entry-id"] == "4-0" and info["entries-added"] == 5
    assert info["first-entry"] == ("1-0", ("n", "1")) and info["last-entry"] == ("5-0", ("n", "5"))
    with pytest.raises(ValueError, match="smaller than the target stream top item"):
        s.set_id("4-0")
    with pytest.raises(ValueError, match="smaller than the target stream length"):
        s.set_id("9-0", entries_added=2)
    s.set_id("9-0", entries_added=40, max_deleted_id="8-0")
    info = s.info()
    assert info is not None
    assert (info["last-generated-id"], info["entries-added"]) == ("9-0", 40)
    assert info["max-deleted-entry-id"] == "8-0"
    with pytest.raises(KeyError):
        view(store, "missing").set_id("1-0")
    assert s.add({"a": "b"}, "9-*") == "9-1"


def test_other_types_are_refused_both_ways() -> None:
    store = snapkv.Store()
    store["str"] = "v"
    with pytest.raises(WrongTypeError):
        view(store, "str").add({"f": "v"})
    view(store).add({"f": "v"}, "1-0")
    with pytest.raises(WrongTypeError):
        store.hashes["s"]["f"] = "v"
    with pytest.raises(WrongTypeError):
        _ = store["s"]


def test_transaction_undo_puts_entries_and_metadata_back() -> None:
    store = snapkv.Store()
    s = view(store)
    for n in range(1, 8):
        s.add({"n": str(n)}, f"{n}-0")
    s.delete(["3-0"])
    before = state(store)
    with pytest.raises(RuntimeError), store.transaction():
        s.add({"x": "y"}, "20-0", maxlen=3)
        s.delete(["6-0", "20-0"])
        s.trim(minid="7")
        s.set_id("30-0", entries_added=99, max_deleted_id="29-0")
        view(store, "new").add({"f": "v"}, "1-0")
        raise RuntimeError
    assert state(store) == before
    assert "new" not in store


# ------------------------------------------------------- journal and snapshot


def _writes(store: Any) -> None:
    s = view(store)
    for n in range(1, 40):
        s.add({"n": str(n), "é😀": "\x00|"}, f"{n}-{n % 3}", maxlen=30, approximate=n % 2 == 0)
    s.delete(["20-2", "21-0"])
    s.trim(minid="15")
    s.set_id("99-0", entries_added=500)
    view(store, "t", 1).add({"f": "v"}, "18446744073709551615-18446744073709551614")
    view(store, "t", 1).add({"g": "w"}, "18446744073709551615-*")
    view(store, "empty").add({"f": "v"}, "1-0", maxlen=0)


def test_the_journal_holds_concrete_effects_and_replays_them(tmp_path: Path) -> None:
    store = snapkv.open(tmp_path, clock=lambda: 1234.5)
    s = view(store)
    s.add({"a": "1"})  # "*": the ID from the clock
    for n in range(3):
        s.add({"b": str(n)}, maxlen=2)  # the trim: the IDs it removed
    expected = state(store)
    store.close()
    (journal,) = tmp_path.glob("journal-*.skj")
    ops = jr.scan_journal(journal.read_bytes()).ops
    flat = [op for op in ops for op in (op[1] if op[0] == "batch" else [op])]
    edits = [(op[4], op[5]) for op in flat if op[0] == "edit"]
    assert (streams.OP_ADD, (1234500, 1, "b", "0")) in edits
    assert (streams.OP_TRIM, (1234500, 0)) in edits  # "a" left, by its ID
    assert flat[0][0] == "put"  # the first add created the key: a PUT of the stream
    reopened = snapkv.open(tmp_path)
    assert state(reopened) == expected
    reopened.close()


def test_reopen_from_journal_snapshot_and_both(tmp_path: Path) -> None:
    store = snapkv.open(tmp_path / "a", databases=2)
    _writes(store)
    expected = (state(store), state(store, 1))
    store.close()
    again = snapkv.open(tmp_path / "a", databases=2)  # journal replay only
    assert (state(again), state(again, 1)) == expected
    again.save()
    view(again).add({"after": "save"}, "100-0")
    expected = (state(again), state(again, 1))
    again.close()
    third = snapkv.open(tmp_path / "a", databases=2)  # snapshot, then the journal's tail
    assert (state(third), state(third, 1)) == expected
    third.save()
    third.close()
    fourth = snapkv.open(tmp_path / "a", databases=2)  # the snapshot alone
    assert (state(fourth), state(fourth, 1)) == expected
    assert view(fourth, "empty").length() == 0 and view(fourth, "empty").last_id == "1-0"
    fourth.close()


CHILD = r"""
import os, sys
import snapkv
from snapkv.views import StreamView

store = snapkv.open(sys.argv[1], fsync="always")
s = StreamView(store.db(0), "s")
n = 0
while True:
    n += 1
    s.add({"n": str(n)}, f"{n}-0", maxlen=50)
    if n % 7 == 0:
        s.delete([f"{n - 3}-0"])
    os.write(1, b"%d\n" % n)
"""


def test_a_killed_writer_loses_no_acknowledged_entry(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE, env=env
    )
    assert child.stdout is not None
    acknowledged = 0
    while acknowledged < 120:
        line = child.stdout.readline()
        assert line, "the writer died"
        acknowledged = int(line)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stdout.close()
    store = snapkv.open(tmp_path)
    entries = view(store).range()
    last = int(view(store).last_id.split("-")[0])  # type: ignore[union-attr]
    assert last in (acknowledged, acknowledged + 1)  # plus possibly the one in flight
    model: list[int] = []  # the child's writes, as a plain list
    for n in range(1, last + 1):
        model = [*model, n][-50:]
        if n % 7 == 0 and n - 3 in model:
            model.remove(n - 3)
    assert entries == [(f"{n}-0", ("n", str(n))) for n in model]
    store.close()


def test_a_stream_makes_the_snapshot_version_3_and_scan_names_it(tmp_path: Path) -> None:
    from snapkv import codec

    store = snapkv.open(tmp_path)
    store["plain"] = "v"
    view(store).add({"f": "v"}, "1-0")
    store.save()
    store.close()
    (snapshot,) = tmp_path.glob("snapshot-*.skv")
    info = codec.scan(snapshot.read_bytes())
    assert info.version == codec.VERSION_TYPED
    assert info.types == {"string": 1, "stream": 1}


@pytest.mark.parametrize(
    ("opcode", "items"),
    [
        (streams.OP_ADD, (1, 0, "a", "b")),  # not above the last ID 1-0
        (streams.OP_ADD, ("1", "9", "a", "b")),  # an ID of strings
        (streams.OP_ADD, (2, 0, "a")),  # half a pair
        (streams.OP_META, (5, 0, 1)),  # metadata cut short
        (streams.OP_INSERT, (0, 5, 2, "a", "b")),  # an entry missing its second pair
        (9, (1, 0)),  # no such opcode
    ],
)
def test_a_stream_edit_no_writer_makes_is_refused_at_replay(
    tmp_path: Path, opcode: int, items: tuple[Any, ...]
) -> None:
    store = snapkv.open(tmp_path)
    view(store).add({"f": "v"}, "1-0")
    store.close()
    (journal,) = tmp_path.glob("journal-*.skj")
    with journal.open("ab") as out:
        out.write(jr.edit_record(0, "s", streams.CODE, opcode, items))
    with pytest.raises(snapkv.CorruptJournalError) as caught:
        snapkv.open(tmp_path)
    assert caught.value.check == "record-effect"


def _stream(entries: int, last: tuple[int, int]) -> Any:
    made = streams.Stream()
    for n in range(1, entries + 1):
        streams.apply(made, streams.OP_ADD, (n, 0, "f", "é|\x00" * (n % 3), "g", ""))
    streams.apply(made, streams.OP_DEL, (2, 0))
    streams.apply(made, streams.OP_META, (*streams.id_items(last), 99, 2, 0))
    return made


@pytest.mark.parametrize(("elements", "chars"), [(3, 40), (7, 10_000), (8_192, 25)])
def test_streams_round_trip_through_snapshot_chains(elements: int, chars: int) -> None:
    from snapkv import codec, codec_types

    values = {
        "big": _stream(40, (2**64 - 1, 2**63)),
        "small": _stream(2, (3, 0)),
        "empty": _stream(0, (7, 7)),
        "text": "plain",
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(codec_types, "MAX_CHUNK_ELEMENTS", elements)
        patch.setattr(codec, "MAX_CHUNK_CHARS", chars)
        data = b"".join(
            codec.iter_encode_snapshot([(0, list(values), list(values.values()), None)])
        )
    decoded = codec.decode_snapshot(data).spaces[0]
    assert decoded["text"] == "plain"
    for key in ("big", "small", "empty"):
        got, want = decoded[key], values[key]
        assert type(got) is streams.Stream
        assert list(got.items()) == list(want.items())
        assert (got.last, got.added, got.deleted) == (want.last, want.added, want.deleted)


def test_store_streams_is_the_view_in_every_keyspace(tmp_path: Path) -> None:
    with snapkv.open(tmp_path / "data") as store:
        assert store.streams["events"].add({"kind": "login"}, id="1-0") == "1-0"
        store.db(3).streams["events"].add({"kind": "logout"}, id="5-1")
        assert store.key_type("events") == "stream"
        with pytest.raises(WrongTypeError):
            store.get("events")
    with snapkv.open(tmp_path / "data") as store:
        assert store.streams["events"].length() == 1
        assert store.db(3).streams["events"].last_id == "5-1"
