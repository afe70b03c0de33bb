"""The errors of ``snapkv.errors``: one tree, the builtins Python expects, context that survives.

Every class of the module is checked, so a new one cannot skip its docstring
or its place under SnapkvError. (Which of them ``import snapkv`` exports is
``test_public_api.py``'s business.)
"""

from __future__ import annotations

import pickle

import pytest

from snapkv import errors
from snapkv.errors import (
    CorruptJournalError,
    CorruptSnapshotError,
    InvalidOperationError,
    MediumError,
    SnapkvError,
    StoreClosedError,
    StoreLockedError,
    StoreShutDownError,
    TransactionError,
)

ERRORS = [
    value
    for _, value in sorted(vars(errors).items())
    if isinstance(value, type)
    and issubclass(value, BaseException)
    and value.__module__ == errors.__name__
]


def test_every_error_is_checked() -> None:
    public = {error.__name__ for error in ERRORS if not error.__name__.startswith("_")}
    assert public == set(errors.__all__)


@pytest.mark.parametrize("error", ERRORS, ids=lambda error: error.__name__)
def test_every_error_is_a_snapkv_error_and_says_when_it_is_raised(error: type[Exception]) -> None:
    assert issubclass(error, SnapkvError)
    assert error.__doc__, "each error documents when it is raised"


def test_value_errors_where_python_expects_them() -> None:
    assert issubclass(InvalidOperationError, ValueError)
    assert issubclass(StoreClosedError, ValueError)
    others = (CorruptSnapshotError, CorruptJournalError, MediumError, StoreLockedError)
    for error in (*others, StoreShutDownError, TransactionError):
        assert not issubclass(error, ValueError)
    assert not issubclass(SnapkvError, (ValueError, OSError))


def test_corrupt_snapshot_error_carries_where_and_which() -> None:
    error = CorruptSnapshotError("bad", offset=12, check="header-crc")
    assert (error.reason, error.offset, error.check, error.source) == ("bad", 12, "header-crc", "")
    assert str(error) == "bad (offset 12, check header-crc)"


def test_corrupt_snapshot_error_round_trips_through_pickle() -> None:
    error = CorruptSnapshotError("bad", offset=12, check="header-crc", source="f.skv")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is CorruptSnapshotError
    assert (copy.reason, copy.offset, copy.check, copy.source) == ("bad", 12, "header-crc", "f.skv")
    assert str(copy) == str(error) == "f.skv: bad (offset 12, check header-crc)"


def test_located_names_the_source_and_keeps_the_rest() -> None:
    error = CorruptSnapshotError("bad", offset=7, check="magic").located("gen 3")
    assert (error.offset, error.check, error.source) == (7, "magic", "gen 3")
    assert str(error).startswith("gen 3: bad")


def test_invalid_operation_error_names_the_index() -> None:
    error = InvalidOperationError("unknown command", index=4)
    assert error.index == 4
    assert str(error) == "operation 4: unknown command"


def test_invalid_operation_error_round_trips_through_pickle() -> None:
    error = InvalidOperationError("unknown command 'x'", index=4)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is InvalidOperationError
    assert (copy.index, str(copy)) == (4, "operation 4: unknown command 'x'")
