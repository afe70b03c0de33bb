"""The public surface: what ``import snapkv`` exports, and what importing it loads.

The error classes themselves (tree, builtins, context) are ``test_errors.py``'s.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

import snapkv
from snapkv import errors

EXPECTED = {
    "CorruptJournalError",
    "CorruptSnapshotError",
    "FileMedium",
    "HashView",
    "InvalidOperationError",
    "Keyspace",
    "ListView",
    "Medium",
    "MediumError",
    "NoSpaceError",
    "MemoryMedium",
    "RestoreReport",
    "SetView",
    "SnapkvError",
    "SortedSetView",
    "Store",
    "StoreClosedError",
    "StoreFencedError",
    "StoreLockedError",
    "StoreShutDownError",
    "TransactionError",
    "WrongTypeError",
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


def test_every_error_is_exported() -> None:
    assert set(errors.__all__) <= EXPECTED


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from snapkv import *", namespace)
    namespace.pop("__builtins__")
    assert set(namespace) == EXPECTED


def test_version_matches_the_distribution() -> None:
    from importlib.metadata import version

    assert snapkv.__version__ == version("snapkv")


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


#: The pure-Python packages the core depends on (pyproject's ``dependencies``):
#: sortedcontainers orders the sorted sets.
PURE_PYTHON_DEPENDENCIES = {"sortedcontainers"}


def test_import_loads_only_the_standard_library_and_pure_python_dependencies() -> None:
    top_level = {name.partition(".")[0] for name in imported_by("import snapkv")}
    # Private names are the interpreter's own (site and editable-install hooks).
    third_party = {
        name
        for name in top_level - set(sys.stdlib_module_names)
        if name != "snapkv" and not name.startswith("_")
    }
    assert third_party == PURE_PYTHON_DEPENDENCIES
    for name in PURE_PYTHON_DEPENDENCIES:
        # No compiled code: every file the package ships is Python source.
        package = Path(importlib.util.find_spec(name).origin).parent  # type: ignore[union-attr,arg-type]
        assert not [p for p in package.rglob("*") if p.suffix in {".so", ".pyd", ".dylib"}]
