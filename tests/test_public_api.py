"""The public surface: what ``import snapkv`` exports, the error tree, and what it imports."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import snapkv
from snapkv import (
    CorruptSnapshotError,
    InvalidOperationError,
    MediumError,
    SnapkvError,
    StoreClosedError,
    StoreLockedError,
)

EXPECTED = {
    "CorruptJournalError",
    "CorruptSnapshotError",
    "FileMedium",
    "InvalidOperationError",
    "Keyspace",
    "Medium",
    "MediumError",
    "MemoryMedium",
    "RestoreReport",
    "SnapkvError",
    "Store",
    "StoreClosedError",
    "StoreLockedError",
    "StoreShutDownError",
    "TransactionError",
    "__version__",
    "codec",
    "open",
    "run_operations",
}


def test_all_is_sorted() -> None:
    assert snapkv.__all__ == sorted(snapkv.__all__)


def test_all_is_the_expected_surface() -> None:
    assert len(snapkv.__all__) == len(set(snapkv.__all__))
    assert set(snapkv.__all__) == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_exported_name_exists(name: str) -> None:
    assert hasattr(snapkv, name)


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from snapkv import *", namespace)
    namespace.pop("__builtins__")
    assert set(namespace) == EXPECTED


def test_version_matches_the_distribution() -> None:
    from importlib.metadata import version

    assert snapkv.__version__ == version("snapkv")


EXPORTED_ERRORS = sorted(
    (
        value
        for value in map(vars(snapkv).get, EXPECTED)
        if isinstance(value, type) and issubclass(value, BaseException)
    ),
    key=lambda error: error.__name__,
)


def test_every_exported_error_is_checked_below() -> None:
    names = {error.__name__ for error in EXPORTED_ERRORS}
    assert names == {name for name in EXPECTED if name.endswith("Error")}


@pytest.mark.parametrize("error", EXPORTED_ERRORS, ids=lambda error: error.__name__)
def test_every_error_is_a_snapkv_error(error: type[Exception]) -> None:
    assert issubclass(error, SnapkvError)
    assert error.__doc__, "each error documents when it is raised"


def test_value_errors_where_python_expects_them() -> None:
    assert issubclass(InvalidOperationError, ValueError)
    assert issubclass(StoreClosedError, ValueError)
    for error in (CorruptSnapshotError, MediumError, StoreLockedError):
        assert not issubclass(error, ValueError)
    assert not issubclass(SnapkvError, (ValueError, OSError))


def test_corrupt_snapshot_error_carries_where_and_which() -> None:
    error = CorruptSnapshotError("bad", offset=12, check="header-crc")
    assert (error.reason, error.offset, error.check, error.source) == (
        "bad",
        12,
        "header-crc",
        "",
    )
    located = error.located("/data/snapshot-0000000000000001.skv")
    assert located.source == "/data/snapshot-0000000000000001.skv"
    assert str(located).startswith("/data/snapshot-0000000000000001.skv: bad")
    assert (located.offset, located.check) == (12, "header-crc")


def test_invalid_operation_error_names_the_index() -> None:
    error = InvalidOperationError("unknown command", index=4)
    assert error.index == 4
    assert "operation 4" in str(error)


def imported_by(statement: str) -> list[str]:
    """The modules a fresh interpreter has loaded after running ``statement``."""
    code = f"import sys\n{statement}\nimport json\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    modules: list[str] = json.loads(result.stdout)
    return modules


def test_import_does_not_load_the_cli() -> None:
    modules = imported_by("import snapkv")
    assert "snapkv" in modules
    assert "snapkv.cli" not in modules


def test_import_loads_only_the_standard_library() -> None:
    top_level = {name.partition(".")[0] for name in imported_by("import snapkv")}
    # Private names are the interpreter's own (site and editable-install hooks).
    third_party = {
        name
        for name in top_level - set(sys.stdlib_module_names)
        if name != "snapkv" and not name.startswith("_")
    }
    assert third_party == set()
