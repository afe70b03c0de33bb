"""The import layering of docs/ARCHITECTURE.md, enforced.

Each module may import only the snapkv modules listed for it here. A new
import across layers (say, the codec reaching for a medium) fails this test
and needs a deliberate change to the architecture page and this table.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "snapkv"

ALLOWED: dict[str, set[str]] = {
    "snapkv.errors": set(),
    "snapkv._binary": set(),
    "snapkv.codec": {"snapkv._binary", "snapkv.errors"},
    "snapkv.journal": {"snapkv._binary", "snapkv.errors"},
    "snapkv.media.base": {"snapkv.errors"},
    "snapkv.media.memory": {"snapkv.media.base", "snapkv.errors"},
    "snapkv.media.file": {"snapkv.media.base", "snapkv.errors"},
    "snapkv.media": {"snapkv.media.base", "snapkv.media.file", "snapkv.media.memory"},
    "snapkv.keyspace": {"snapkv.errors", "snapkv.journal"},
    "snapkv.store": {
        "snapkv._binary",
        "snapkv.codec",
        "snapkv.errors",
        "snapkv.journal",
        "snapkv.keyspace",
        "snapkv.media",
        "snapkv.transaction",
    },
    "snapkv.transaction": {"snapkv.errors", "snapkv.journal", "snapkv.keyspace"},
    "snapkv.simulate": {"snapkv.errors", "snapkv.store"},
    "snapkv.check": {"snapkv.codec", "snapkv.errors", "snapkv.journal", "snapkv.media.file"},
    "snapkv.testing": {
        "snapkv.codec",
        "snapkv.errors",
        "snapkv.journal",
        "snapkv.media",
        "snapkv.media.base",
        "snapkv.media.memory",
        "snapkv.store",
    },
    "snapkv": {
        "snapkv.codec",
        "snapkv.errors",
        "snapkv.media",
        "snapkv.simulate",
        "snapkv.store",
    },
    # The server: resp knows no command, handlers know no bytes (Redis's
    # networking.c / server.c / t_string.c cut).
    "snapkv.server.resp": {"snapkv.errors"},
    "snapkv.server.context": {"snapkv.server.resp", "snapkv.store"},
    "snapkv.server.cmd_connection": {"snapkv.server.context", "snapkv.server.resp"},
    "snapkv.server.cmd_keys": {"snapkv.server.context", "snapkv.server.resp"},
    "snapkv.server.cmd_strings": {"snapkv.server.context", "snapkv.server.resp"},
    "snapkv.server.cmd_server": {
        "snapkv.server.cmd_keys",
        "snapkv.server.context",
        "snapkv.server.resp",
    },
    "snapkv.server.commands": {
        "snapkv.errors",
        "snapkv.server.cmd_connection",
        "snapkv.server.cmd_keys",
        "snapkv.server.cmd_server",
        "snapkv.server.cmd_strings",
        "snapkv.server.context",
        "snapkv.server.resp",
        "snapkv.store",
    },
    "snapkv.server.network": {
        "snapkv.server.commands",
        "snapkv.server.context",
        "snapkv.server.resp",
        "snapkv.store",
    },
    "snapkv.server": {"snapkv.server.context", "snapkv.server.network", "snapkv.store"},
    "snapkv.cli_check": {"snapkv.check", "snapkv.errors"},
    "snapkv.cli": {
        "snapkv",
        "snapkv.cli_check",
        "snapkv.codec",
        "snapkv.errors",
        "snapkv.media.file",
        "snapkv.server",
        "snapkv.simulate",
    },
    "snapkv.__main__": {"snapkv.cli"},
}


def _module_name(path: Path) -> str:
    parts = ["snapkv", *path.relative_to(SRC).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _absolute(node: ast.ImportFrom, path: Path) -> str:
    """The absolute module an ``ImportFrom`` names, relative imports resolved."""
    if node.level == 0:
        return node.module or ""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package.pop()  # a module's relative imports start from its package
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def _snapkv_imports(path: Path) -> set[str]:
    """Every snapkv module imported anywhere in ``path`` (also inside functions)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node, path)
            if module == "snapkv" or node.module is None:
                # ``from snapkv import codec`` / ``from . import codec`` import submodules.
                found.update(f"{module}.{alias.name}" for alias in node.names)
            else:
                found.add(module)
    return {name for name in found if name == "snapkv" or name.startswith("snapkv.")}


MODULES = sorted(SRC.rglob("*.py"))


def test_every_module_has_a_row() -> None:
    assert {_module_name(path) for path in MODULES} == set(ALLOWED)


@pytest.mark.parametrize("path", MODULES, ids=_module_name)
def test_imports_stay_in_their_layer(path: Path) -> None:
    name = _module_name(path)
    unexpected = _snapkv_imports(path) - ALLOWED[name] - {name}
    assert not unexpected, f"{name} must not import {sorted(unexpected)}"
