"""docs/SERVER.md's list of commands, checked against the command table so the page cannot drift.

The page lists, for every Redis 7.0 command group, the commands snapkv
implements and those it does not (between ``<!-- command-groups -->``
markers). The implemented column must be exactly the table the dispatcher
builds (every command and subcommand); no command may be in both columns;
and, where redis-cli is installed, the two columns of a group together must
hold every command redis-cli's own help lists for it (``HELP @group``, from
the table compiled into redis-cli 7.0, read with no server to ask).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from serving import DEADLINE, free_port
from snapkv.server.dispatch import Dispatcher  # noqa: F401 - imports every command family
from snapkv.server.table import COMMANDS, build_table

PAGE = Path(__file__).parent.parent / "docs" / "SERVER.md"
#: Commands snapkv has that redis-cli 7.0's help does not list (later Redis versions).
LATER_THAN_70 = {"client|setinfo", "client|no-touch"}
#: Redis's DEBUG is one command with many subcommands (none in its help); snapkv
#: declares the ones it has as subcommands.
DEBUG = {"debug|help", "debug|log", "debug|reload", "debug|sleep"}


def _names(cell: str) -> set[str]:
    """``GET, CLIENT (ID, LIST)`` -> {get, client, client|id, client|list}; ``none`` -> {}."""
    if cell.strip() == "none":
        return set()
    names: set[str] = set()
    for name, subs in re.findall(r"([A-Z][A-Z0-9_-]*)(?: \(([^)]*)\))?(?:, |$)", cell.strip()):
        names.add(name.lower())
        names.update(f"{name.lower()}|{sub.lower()}" for sub in subs.split(", ") if sub)
    return names


def documented() -> dict[str, tuple[set[str], set[str]]]:
    """Group -> (implemented, not implemented), as the page lists them."""
    text = PAGE.read_text(encoding="utf-8")
    block = text.split("<!-- command-groups -->")[1].split("<!-- /command-groups -->")[0]
    rows = [line for line in block.strip().splitlines()[2:]]
    groups = {}
    for row in rows:
        group, implemented, missing = (cell.strip() for cell in row.strip("|").split("|"))
        groups[group] = (_names(implemented), _names(missing))
    return groups


def test_the_implemented_column_is_the_command_table() -> None:
    table = build_table(COMMANDS)
    commands = {cmd.full_name for cmd in table.values()}
    commands |= {
        sub.full_name for cmd in table.values() for sub in (cmd.subcommands or {}).values()
    }
    listed = set().union(*(implemented for implemented, _ in documented().values()))
    assert listed == commands


def test_no_command_is_both_implemented_and_not() -> None:
    for group, (implemented, missing) in documented().items():
        # A container may be in both: CLIENT has subcommands on each side.
        both = {name for name in implemented & missing if "|" in name}
        assert not both, group


def _redis_cli_help(cli: str, group: str) -> set[str]:
    """The commands redis-cli 7.0's compiled-in help lists for ``group``."""
    result = subprocess.run(
        [cli, "-p", str(free_port()), "help", f"@{group}"],  # nobody listens: its own table
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in result.stdout.splitlines()]
    entries = [line.split() for line in lines if re.match(r"  [A-Z]", line)]
    entries = [words for words in entries if not words[0].endswith(":")]
    containers = {words[0] for words in entries if len(words) == 1}
    names = set()
    for words in entries:
        if len(words) > 1 and words[0] in containers and re.fullmatch(r"[A-Z-]+", words[1]):
            names.add(f"{words[0]}|{words[1]}".lower())
        names.add(words[0].lower())
    return names


def test_each_group_names_every_redis_70_command_redis_cli_knows() -> None:
    cli = shutil.which("redis-cli")
    if cli is None:
        pytest.skip("redis-cli is not on PATH")
    version = subprocess.run([cli, "--version"], capture_output=True, text=True, check=True)
    if not version.stdout.startswith("redis-cli 7.0."):
        pytest.skip(f"the page lists Redis 7.0's commands; this is {version.stdout.strip()}")
    for group, (implemented, missing) in documented().items():
        redis = _redis_cli_help(cli, group)
        assert redis, group
        assert implemented | missing == redis | (implemented & (LATER_THAN_70 | DEBUG)), group
