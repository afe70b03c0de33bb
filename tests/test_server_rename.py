"""``rename-command`` in the config file, against a real redis-server given the same lines."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reference import Raw, parse, redis_server
from snapkv import Store
from snapkv.cli_serve import read_serve_config
from snapkv.server.client import Client
from snapkv.server.conf import ConfigError
from snapkv.server.dispatch import Dispatcher
from snapkv.server.state import Config

RENAMES = [("get", "mynewget"), ("del", ""), ("CONFIG", "Cfg2"), ("mynewget", "g2")]


class Both:
    """A snapkv dispatcher and a redis-server with the same renames; one request to both."""

    def __init__(self, port: int, renames: list[tuple[str, str]]) -> None:
        self.store = Store()
        self.server = Dispatcher(self.store, Config(rename_commands=renames))
        self.client = Client(self.server, addr="127.0.0.1:1000", laddr="127.0.0.1:6379")
        self.server.add_client(self.client)
        self.raw = Raw(port)

    def __call__(self, *argv: str) -> tuple[bytes, bytes]:
        return self.server.execute(self.client, list(argv)), self.raw(*argv)

    def same(self, *argv: str) -> bytes:
        ours, theirs = self(*argv)
        assert ours == theirs, f"{argv}: snapkv {ours!r} != redis {theirs!r}"
        return ours


@pytest.fixture(scope="module")
def renamed_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    args = [word for old, new in RENAMES for word in ("--rename-command", old, new)]
    with redis_server(tmp_path_factory.mktemp("redis-renamed"), *args) as port:
        yield port


@pytest.fixture
def both(renamed_port: int) -> Iterator[Both]:
    made = Both(renamed_port, RENAMES)
    made.raw("FLUSHALL")
    yield made
    made.raw.close()
    made.store.close()


def test_a_renamed_command_answers_under_its_new_name_only(both: Both) -> None:
    both.same("SET", "k", "v")
    assert both.same("g2", "k") == b"$1\r\nv\r\n"
    assert both.same("G2", "k") == b"$1\r\nv\r\n"
    for gone in (("get", "k"), ("GET", "k"), ("mynewget", "k")):
        assert both.same(*gone).startswith(b"-ERR unknown command")
    # Errors still name the command by its own name, as Redis's do.
    assert both.same("g2") == b"-ERR wrong number of arguments for 'get' command\r\n"
    both.same("cfg2", "get", "maxclients")
    # ... but a subcommand error names it as typed (Redis's argv[0])
    assert both.same("cfg2", "nosuch") == b"-ERR unknown subcommand 'nosuch'. Try CFG2 HELP.\r\n"
    assert both.same("cfg2", "nosuch") == b"-ERR unknown subcommand 'nosuch'. Try CFG2 HELP.\r\n"
    assert both.same("config", "get", "maxclients").startswith(b"-ERR unknown command 'config'")


def test_an_empty_new_name_disables_the_command(both: Both) -> None:
    both.same("SET", "k", "v")
    both.same("DEL", "k")
    both.same("EXISTS", "k")  # still there
    both.same("UNLINK", "k")


def test_command_info_and_count_after_renames(both: Both) -> None:
    ours, theirs = both("COMMAND", "INFO", "g2", "get", "del")
    mine, redis = parse(ours), parse(theirs)
    assert [entry[0] if entry else None for entry in mine] == [b"get", None, None]
    assert [entry[0] if entry else None for entry in redis] == [b"get", None, None]
    # COMMAND COUNT: a renamed command still counts, a disabled one does not.
    plain = Dispatcher(Store(), Config())
    total = len(plain.commands())
    assert len(both.server.commands()) == total - 1
    names = {cmd.name for cmd in both.server.commands()}
    assert {"get", "config"} <= names and "del" not in names


def test_rename_errors_as_redis(tmp_path: Path) -> None:
    for renames, problem in (
        ([("nosuch", "x")], "No such command in rename-command"),
        ([("get", "set")], "Target command name already exists"),
        ([("get", ""), ("get", "x")], "No such command in rename-command"),
    ):
        with pytest.raises(ConfigError, match=problem):
            Dispatcher(Store(), Config(rename_commands=renames))


def test_rename_command_lines_in_the_config_file(tmp_path: Path) -> None:
    conf = tmp_path / "snapkv.conf"
    conf.write_text('rename-command FLUSHALL ""\nrename-command get fetch\n', encoding="utf-8")
    config: Any = read_serve_config(str(conf)).config
    assert config.rename_commands == [("FLUSHALL", ""), ("get", "fetch")]


def test_scripts_call_the_new_name_and_acl_rules_the_commands_own(both: Both) -> None:
    """As Redis 7.0: ``redis.call`` looks names up in the renamed table (so a script
    must use the new name), while ACL rules, COMMAND LIST and CLIENT LIST name the
    command by its own name (``+get``, not ``+g2``)."""
    both.same("SET", "k", "v")
    assert both.same("EVAL", "return redis.call('g2', 'k')", "0") == b"$1\r\nv\r\n"
    assert both.same("EVAL", "return redis.call('get', 'k')", "0").startswith(
        b"-ERR Unknown Redis command called from script"
    )
    both.same("EVAL", "return redis.pcall('config', 'get', 'maxmemory')", "0")
    both.same("EVAL", "return redis.call('cfg2', 'get', 'maxmemory')", "0")
    assert both.same("ACL", "SETUSER", "u", "on", "nopass", "+g2").startswith(
        b"-ERR Error in ACL SETUSER modifier '+g2'"
    )
    both.same("ACL", "SETUSER", "u", "on", "nopass", "+get", "+config|get")
    both.same("ACL", "DRYRUN", "u", "g2", "k")
    both.same("ACL", "DRYRUN", "u", "cfg2", "get", "maxmemory")
    both.same("ACL", "DELUSER", "u")
    for reply in both("COMMAND", "LIST", "FILTERBY", "PATTERN", "[gc][2efo]*"):
        listed = set(parse(reply))  # (Redis lists more commands, in its hash order)
        assert {b"get", b"config", b"config|get"} <= listed
        assert not {b"g2", b"cfg2"} & listed
    both.same("COMMAND", "GETKEYS", "g2", "k")
    both.same("MULTI")
    both.same("g2", "k")
    assert both.same("get", "k").startswith(b"-ERR unknown command 'get'")
    both.same("EXEC")
    other = Client(both.server, addr="127.0.0.1:1001", laddr="127.0.0.1:6379")
    both.server.add_client(other)
    both.server.execute(other, ["g2", "k"])
    line = next(
        line
        for line in both.server.execute(both.client, ["CLIENT", "LIST"]).decode().splitlines()
        if f"id={other.id} " in line
    )
    assert " cmd=get " in line  # Redis shows the command's own name (lastcmd->fullname)
