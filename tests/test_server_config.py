"""CONFIG GET, SET, RESETSTAT, REWRITE and HELP against redis-server 7.0's own replies.

CONFIG SET changes the shared reference server's settings, so each test
that sets one puts Redis's default back (``restored``). CONFIG REWRITE is
checked on files this test writes: comments, blank lines, unknown lines
and their order survive; a changed setting replaces its own line.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Twin
from reference import parse
from serving import serving
from snapkv import Store
from snapkv.server.client import Client
from snapkv.server.config_rewrite import SIGNATURE, rewrite
from snapkv.server.dispatch import Dispatcher
from snapkv.server.state import Config

#: Settings whose defaults snapkv's embedded Config and redis-server share.
SHARED_DEFAULTS = {
    "slowlog-log-slower-than": "10000",
    "slowlog-max-len": "128",
    "latency-monitor-threshold": "0",
    "latency-tracking": "yes",
    "latency-tracking-info-percentiles": "50 99 99.9",
    "lfu-log-factor": "10",
    "lfu-decay-time": "1",
    "timeout": "0",
    "maxmemory": "0",
}


@pytest.fixture
def restored(twin: Twin) -> Iterator[Twin]:
    """The twin; afterwards the reference server's settings are Redis's defaults again."""
    yield twin
    for name, value in SHARED_DEFAULTS.items():
        twin.raw("CONFIG", "SET", name, value)


def pairs(reply: bytes) -> dict[bytes, bytes]:
    flat = parse(reply)
    return dict(zip(flat[0::2], flat[1::2], strict=True))


def test_config_get_takes_several_names_and_patterns(twin: Twin) -> None:
    asked = ("slowlog*", "LATENCY-TRACKING", "lfu-*", "timeout", "nosuch", "slowlog-max-len")
    ours, theirs = twin("CONFIG", "GET", *asked)
    assert pairs(ours) == pairs(theirs)
    assert set(pairs(ours)) == {
        b"slowlog-log-slower-than",
        b"slowlog-max-len",
        b"LATENCY-TRACKING",  # a name (no pattern) is echoed as sent, as Redis
        b"lfu-log-factor",
        b"lfu-decay-time",
        b"timeout",
    }


def test_config_set_of_several_is_all_or_nothing(restored: Twin) -> None:
    twin = restored
    twin.same("CONFIG", "SET", "slowlog-max-len", "5", "timeout", "abc")
    twin.same("CONFIG", "GET", "slowlog-max-len")  # still 128 on both
    twin.same("CONFIG", "SET", "slowlog-max-len", "5", "latency-monitor-threshold", "7")
    twin.same("CONFIG", "GET", "slowlog-max-len")
    twin.same("CONFIG", "GET", "latency-monitor-threshold")


@pytest.mark.parametrize(
    "argv",
    [
        ("databases", "4"),  # immutable
        ("nosuch", "1"),
        ("timeout", "1", "maxmemory"),  # an odd count
        ("timeout", "1", "TIMEOUT", "2"),  # the same one twice
        ("slowlog-log-slower-than", "-2"),
        ("slowlog-max-len", "-1"),
        ("latency-tracking", "maybe"),
        ("latency-tracking-info-percentiles", "50 abc"),
        ("latency-tracking-info-percentiles", "50 100.5"),
        ("lfu-log-factor", "-1"),
        ("save", "abc"),
        ("save", " "),  # two empty words, not ""
        ("save", "3600  1"),
        ("latency-tracking-info-percentiles", " "),
        ("appendfsync", "sometimes"),
        ("repl-backlog-ttl", "-1"),
    ],
)
def test_config_set_refusals_are_redis_texts(restored: Twin, argv: tuple[str, ...]) -> None:
    reply = restored.same("CONFIG", "SET", *argv)
    assert reply.startswith(b"-ERR")


def test_percentiles_are_shown_as_redis_shows_them(restored: Twin) -> None:
    twin = restored
    for value in ("50.5 99", "", "0 100 99.99"):
        twin.same("CONFIG", "SET", "latency-tracking-info-percentiles", value)
        twin.same("CONFIG", "GET", "latency-tracking-info-percentiles")


def test_replication_backlog_settings_read_back_as_redis(twin: Twin) -> None:
    """The backlog is at least 16 KiB (Redis raises a smaller size); its TTL is a long."""
    try:
        for name, value in (("repl-backlog-size", "1k"), ("repl-backlog-ttl", "2147483648")):
            twin.same("CONFIG", "SET", name, value)
            twin.same("CONFIG", "GET", name)
    finally:
        twin("CONFIG", "SET", "repl-backlog-size", "1mb", "repl-backlog-ttl", "3600")


def test_config_help_is_redis_text(twin: Twin) -> None:
    twin.same("CONFIG", "HELP")


def test_resetstat_clears_what_info_counts(twin: Twin) -> None:
    for argv in (["SET", "a", "1"], ["GET", "a"], ["INCR", "x", "y"], ["NOSUCH"], ["SAVE"]):
        twin(*argv)
    assert "rdb_saves:1" in twin.server.execute(twin.snapkv, ["INFO", "persistence"]).decode()
    twin.same("CONFIG", "RESETSTAT")
    ours, theirs = (reply.decode() for reply in twin("INFO", "everything"))
    for prefix in ("cmdstat_", "errorstat_", "latency_percentiles_usec_"):
        # Only CONFIG RESETSTAT itself, counted as it ended (INFO counts when it ends).
        assert _named(ours, prefix) == _named(theirs, prefix)
    assert _named(ours, "cmdstat_") == ["cmdstat_config|resetstat"]
    for field in ("total_error_replies", "total_commands_processed", "rdb_saves"):
        assert _field(ours, field) == _field(theirs, field)


def _named(info: str, prefix: str) -> list[str]:
    return sorted(line.split(":")[0] for line in info.split("\r\n") if line.startswith(prefix))


def _field(info: str, name: str) -> str:
    return next(line for line in info.split("\r\n") if line.startswith(name + ":"))


# ------------------------------------------------------------------ REWRITE

OLD = """# snapkv's settings
# (a comment that must stay)

port 6380
timeout 0
hz 10
save 900 1

save 300 10
   # an indented comment
include-me-not yes
"""


def _server(path: Path) -> tuple[Dispatcher, Client]:
    config = Config(port=6380, save=[(900, 1), (300, 10)], config_file=str(path))
    server = Dispatcher(Store(), config)
    client = Client(server, addr="127.0.0.1:1")
    server.add_client(client)
    return server, client


def test_rewrite_without_a_config_file_is_refused(twin: Twin) -> None:
    reply = twin.server.execute(twin.snapkv, ["CONFIG", "REWRITE"])
    assert reply == b"-ERR The server is running without a config file\r\n"


def test_rewrite_keeps_comments_order_and_unknown_lines(tmp_path: Path) -> None:
    path = tmp_path / "snapkv.conf"
    path.write_text(OLD)
    server, client = _server(path)
    assert server.execute(client, ["CONFIG", "SET", "timeout", "30", "save", "60 5"]) == b"+OK\r\n"
    assert server.execute(client, ["CONFIG", "SET", "slowlog-max-len", "64"]) == b"+OK\r\n"
    assert server.execute(client, ["CONFIG", "REWRITE"]) == b"+OK\r\n"
    lines = path.read_text().split("\n")
    assert lines[:9] == [
        "# snapkv's settings",
        "# (a comment that must stay)",
        "",
        "port 6380",
        "timeout 30",  # in its own place
        "hz 10",  # a Redis directive snapkv ignores: kept
        "save 60 5",  # the first save line takes the one rule left
        "",  # the second one is blank now, its run of blanks one line
        "   # an indented comment",
    ]
    assert lines[9] == "include-me-not yes"
    # What the file never named and is no longer its default comes after the signature.
    tail = lines[lines.index(SIGNATURE) + 1 :]
    assert "slowlog-max-len 64" in tail
    assert "timeout 30" not in tail and "port 6380" not in tail
    assert [p.name for p in tmp_path.iterdir()] == ["snapkv.conf"]  # no temporary left


def test_a_rewritten_file_is_read_back_to_the_same_settings(tmp_path: Path) -> None:
    path = tmp_path / "snapkv.conf"
    path.write_text("port 6380\n")
    server, client = _server(path)
    changes = ["maxmemory-policy", "allkeys-lru", "notify-keyspace-events", "KEA"]
    changes += ["client-output-buffer-limit", "pubsub 1mb 512kb 30"]
    changes += ["latency-tracking-info-percentiles", "50 99.99", "requirepass", 'p a"ss']
    assert server.execute(client, ["CONFIG", "SET", *changes]) == b"+OK\r\n"
    assert server.execute(client, ["CONFIG", "REWRITE"]) == b"+OK\r\n"
    from snapkv.server.conf import ConfigReader

    reader = ConfigReader(Config())
    reader.read(str(path))
    again = reader.config
    for name in ("maxmemory-policy", "notify-keyspace-events", "client-output-buffer-limit"):
        assert server.execute(client, ["CONFIG", "GET", name]) == _get(again, name)
    assert again.latency_tracking_info_percentiles == (50.0, 99.99)
    assert again.requirepass == 'p a"ss'


def test_rewritten_strings_with_spaces_and_quotes_are_read_back(tmp_path: Path) -> None:
    """Every string setting is written quoted (Redis's sdscatrepr): a path with a space stays."""
    path = tmp_path / "snapkv.conf"
    path.write_text("port 6380\n")
    server, client = _server(path)
    changes = ["tls-dh-params-file", "/my dir/dh.pem", "tls-protocols", "TLSv1.2 TLSv1.3"]
    changes += ["tls-ciphers", 'a"b\\c', "requirepass", "#not a comment"]
    assert server.execute(client, ["CONFIG", "SET", *changes]) == b"+OK\r\n"
    assert server.execute(client, ["CONFIG", "REWRITE"]) == b"+OK\r\n"
    assert 'tls-protocols "TLSv1.2 TLSv1.3"' in path.read_text().split("\n")
    from snapkv.server.conf import ConfigReader

    reader = ConfigReader(Config())
    reader.read(str(path))
    for name in changes[::2]:
        assert server.execute(client, ["CONFIG", "GET", name]) == _get(reader.config, name)


def _get(config: Config, name: str) -> bytes:
    server = Dispatcher(Store(), config)
    client = Client(server)
    client.authenticated = True
    return server.execute(client, ["CONFIG", "GET", name])


def test_rewrite_is_pure_and_leaves_a_file_at_its_defaults_alone() -> None:
    text = "# only a comment\nport 6379\n"
    config = Config(dir=".", appendonly=True, save=[(3600, 1), (300, 100), (60, 10000)])
    new = rewrite(text, config, config)
    assert new.startswith("# only a comment\nport 6379\n")
    assert new.split("\n")[2:] == [SIGNATURE, 'dir "."', ""]  # dir is always written, as Redis


def test_snapkv_serve_rewrites_the_file_it_started_with(tmp_path: Path) -> None:
    import redis

    path = tmp_path / "snapkv.conf"
    path.write_text("# my server\ntimeout 0\n\n# slow log\nslowlog-max-len 128\nhz 10\n")
    with (
        serving(tmp_path, str(path), "--appendonly", "no", "--save", "") as port,
        redis.Redis(port=port) as client,
    ):
        assert client.config_get("slowlog-max-len") == {"slowlog-max-len": "128"}
        client.config_set("timeout", 30)
        client.config_set("slowlog-max-len", 16)
        assert client.execute_command("CONFIG", "REWRITE") == b"OK"
    lines = path.read_text().split("\n")
    assert lines[:6] == [
        "# my server",
        "timeout 30",
        "",
        "# slow log",
        "slowlog-max-len 16",
        "hz 10",
    ]
    tail = lines[lines.index(SIGNATURE) :]
    # The command line's settings that are not redis-server's defaults, as Redis writes them.
    assert "appendonly no" in tail and 'save ""' in tail and f"port {port}" in tail
    # The file starts the same server again.
    with (
        serving(tmp_path, str(path)) as again,
        redis.Redis(port=again) as client,
    ):
        assert client.config_get("timeout") == {"timeout": "30"}
        assert client.config_get("slowlog-max-len") == {"slowlog-max-len": "16"}
        assert client.config_get("appendonly") == {"appendonly": "no"}


@pytest.mark.parametrize(
    "pattern",
    [
        *("*MAX*MEM*", "m?xmemory-*", "*-*-*", "*ency*trac*", "*y", "?*?", "*x1*", "*é*"),
        *("*[mM]emory*", "m[^x]xmemory*", "*\\-max*", "[]*", "[^]*", "*ax[", "ma\\xmemory*"),
        *("[a-]x]*", "*[\\]]*", "[m-a]a?m*", "SLOW[L]OG*"),
    ],
)
def test_config_get_patterns_match_as_redis(twin: Twin, pattern: str) -> None:
    """Each pattern selects the names Redis's does, among the settings snapkv has."""
    ours, theirs = twin("CONFIG", "GET", pattern)
    ours_all, theirs_all = (set(pairs(reply)) for reply in twin("CONFIG", "GET", "*"))
    assert set(pairs(ours)) & theirs_all == set(pairs(theirs)) & ours_all
