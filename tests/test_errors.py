"""Errors carry their context and survive pickling (multiprocessing, futures)."""

from __future__ import annotations

import pickle

import pytest

import snapkv
from snapkv.simulate import validate_operations


def test_corrupt_snapshot_error_round_trips_through_pickle() -> None:
    error = snapkv.CorruptSnapshotError("bad", offset=12, check="header-crc", source="f.skv")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is snapkv.CorruptSnapshotError
    assert (copy.reason, copy.offset, copy.check, copy.source) == ("bad", 12, "header-crc", "f.skv")
    assert str(copy) == str(error) == "f.skv: bad (offset 12, check header-crc)"


def test_located_names_the_source_and_keeps_the_rest() -> None:
    error = snapkv.CorruptSnapshotError("bad", offset=7, check="magic").located("gen 3")
    assert (error.offset, error.check, error.source) == (7, "magic", "gen 3")
    assert str(error).startswith("gen 3: bad")


def test_invalid_operation_error_round_trips_through_pickle() -> None:
    error = snapkv.InvalidOperationError("unknown command 'x'", index=4)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is snapkv.InvalidOperationError
    assert (copy.index, str(copy)) == (4, "operation 4: unknown command 'x'")


def test_validate_operations_runs_nothing_and_names_the_first_bad_one() -> None:
    validate_operations([["set", "a", "1"], ("get", "a"), ["shutdown"], ["restore"]])
    with pytest.raises(snapkv.InvalidOperationError, match=r"operation 2: 'get' takes 1") as info:
        validate_operations([["set", "a", "1"], ["shutdown"], ["get"], ["nope"]])
    assert info.value.index == 2


@pytest.mark.parametrize(
    "op",
    [[["shutdown"]], [{"a": 1}], [None], [b"shutdown"], [["set"], "k", "v"], [{}, "k"]],
    ids=repr,
)
def test_unhashable_or_odd_command_names_are_refused_cleanly(op: list[object]) -> None:
    with pytest.raises(snapkv.InvalidOperationError, match="operation 1: command must be a str"):
        snapkv.run_operations([("set", "a", "1"), op])
