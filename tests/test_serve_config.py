"""``snapkv serve``'s settings: redis.conf's syntax and directives, the options, CONFIG SET.

The expected behaviours were taken from redis-server 7.0.15 itself (the
same lines given to it): its ``sdssplitargs`` quoting, its FATAL CONFIG
FILE ERROR texts, ``save`` lines adding up. Debian's real redis.conf is
read when the redis-server package is installed (/etc/redis/redis.conf);
otherwise a config written here with every directive it sets stands in.
"""

from __future__ import annotations

import argparse
import logging
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from snapkv import Store
from snapkv.cli import main
from snapkv.cli_common import InputError
from snapkv.cli_serve import OPTIONS, add_serve_command, read_serve_config, serve_defaults
from snapkv.server import Config, serve
from snapkv.server.client import Client
from snapkv.server.conf import REDIS_DIRECTIVES, SETTINGS, ConfigReader, split_args
from snapkv.server.dispatch import Dispatcher
from support import wait_until

redis = pytest.importorskip("redis")

DEBIAN_CONF = Path("/etc/redis/redis.conf")

#: The directives Debian's redis-server 7.0.15 package sets in /etc/redis/redis.conf,
#: in its order (comments dropped); "client-output-buffer-limit" three times, as there.
DEBIAN_LINES = """\
bind 127.0.0.1 -::1
protected-mode yes
port 6379
tcp-backlog 511
timeout 0
tcp-keepalive 300
daemonize yes
pidfile /run/redis/redis-server.pid
loglevel notice
logfile /var/log/redis/redis-server.log
databases 16
always-show-logo no
set-proc-title yes
proc-title-template "{title} {listen-addr} {server-mode}"
stop-writes-on-bgsave-error yes
rdbcompression yes
rdbchecksum yes
dbfilename dump.rdb
rdb-del-sync-files no
dir /var/lib/redis
replica-serve-stale-data yes
replica-read-only yes
repl-diskless-sync yes
repl-diskless-sync-delay 5
repl-diskless-sync-max-replicas 0
repl-diskless-load disabled
repl-disable-tcp-nodelay no
replica-priority 100
acllog-max-len 128
lazyfree-lazy-eviction no
lazyfree-lazy-expire no
lazyfree-lazy-server-del no
replica-lazy-flush no
lazyfree-lazy-user-del no
lazyfree-lazy-user-flush no
oom-score-adj no
oom-score-adj-values 0 200 800
disable-thp yes
appendonly no
appendfilename "appendonly.aof"
appenddirname "appendonlydir"
appendfsync everysec
no-appendfsync-on-rewrite no
auto-aof-rewrite-percentage 100
auto-aof-rewrite-min-size 64mb
aof-load-truncated yes
aof-use-rdb-preamble yes
aof-timestamp-enabled no
slowlog-log-slower-than 10000
slowlog-max-len 128
latency-monitor-threshold 0
notify-keyspace-events ""
hash-max-listpack-entries 512
hash-max-listpack-value 64
list-max-listpack-size -2
list-compress-depth 0
set-max-intset-entries 512
zset-max-listpack-entries 128
zset-max-listpack-value 64
hll-sparse-max-bytes 3000
stream-node-max-bytes 4096
stream-node-max-entries 100
activerehashing yes
client-output-buffer-limit normal 0 0 0
client-output-buffer-limit replica 256mb 64mb 60
client-output-buffer-limit pubsub 32mb 8mb 60
hz 10
dynamic-hz yes
aof-rewrite-incremental-fsync yes
rdb-save-incremental-fsync yes
jemalloc-bg-thread yes
"""


def _read(tmp_path: Path, text: str, name: str = "snapkv.conf") -> ConfigReader:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return read_serve_config(str(path))


# ------------------------------------------------------------------ syntax


@pytest.mark.parametrize(
    ("line", "args"),
    [
        (b"port 7000", [b"port", b"7000"]),
        (b"  requirepass   pw\t", [b"requirepass", b"pw"]),
        (b'requirepass "a b"', [b"requirepass", b"a b"]),
        (b'requirepass "a\\x41\\n\\t\\"q"', [b"requirepass", b'aA\n\t"q']),
        (b"requirepass 'it\\'s'", [b"requirepass", b"it's"]),
        (b"requirepass 'no \\n escape'", [b"requirepass", b"no \\n escape"]),
        (b'requirepass a"b c"', [b"requirepass", b"ab c"]),  # a quote opens inside a word
        (b'save ""', [b"save", b""]),
        (b"port 7000 # note", [b"port", b"7000", b"#", b"note"]),  # no trailing comments
        (b'requirepass "a b"x', None),  # a closing quote must end the argument
        (b'requirepass "open', None),
        (b"requirepass 'open", None),
    ],
)
def test_split_args_is_redis_sdssplitargs(line: bytes, args: list[bytes] | None) -> None:
    assert split_args(line) == args


def test_directives_quotes_and_case(tmp_path: Path) -> None:
    reader = _read(
        tmp_path,
        "# a comment\n"
        "   # an indented comment\n"
        "bind 127.0.0.1 -::1\n"
        "PORT 7000\n"
        'requirepass "p w"\n'
        "AppendFsync ALWAYS\n"
        "\n"
        "databases 4\n"
        "proto-max-bulk-len 2mb\n"
        "stop-writes-on-bgsave-error no\n",
    )
    config = reader.config
    assert config.host == "127.0.0.1 -::1"
    assert config.addresses == [("127.0.0.1", False), ("::1", True)]
    assert (config.port, config.requirepass, config.appendfsync) == (7000, "p w", "always")
    assert (config.databases, config.proto_max_bulk_len) == (4, 2 << 20)
    assert config.stop_writes_on_bgsave_error is False
    assert config.save == [(3600, 1), (300, 100), (60, 10000)]  # no save line: Redis's defaults
    assert config.config_file == str(tmp_path / "snapkv.conf")
    assert reader.notes == []


def test_save_lines_replace_the_defaults_then_add_up(tmp_path: Path) -> None:
    assert _read(tmp_path, "save 900 1\nsave 300 10\n").config.save == [(900, 1), (300, 10)]
    assert _read(tmp_path, 'save ""\n').config.save == []
    assert _read(tmp_path, 'save 900 1\nsave ""\nsave 10 1\n').config.save == [(10, 1)]
    assert _read(tmp_path, "save 3600 1 300 100\n").config.save == [(3600, 1), (300, 100)]


def test_include_reads_files_and_globs_in_order(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "b.conf").write_text("port 7002\n", encoding="utf-8")
    (tmp_path / "conf.d" / "a.conf").write_text("port 7001\ndatabases 3\n", encoding="utf-8")
    (tmp_path / "base.conf").write_text("requirepass pw\n", encoding="utf-8")
    reader = _read(
        tmp_path,
        f"include {tmp_path / 'base.conf'}\n"
        f"include {tmp_path / 'conf.d' / '*.conf'}\n"
        f"include {tmp_path / 'empty.d' / '*.conf'}\n",  # a glob matching nothing: skipped
    )
    assert (reader.config.port, reader.config.databases) == (7002, 3)
    assert reader.config.requirepass == "pw"
    with pytest.raises(InputError, match="can't open config file"):
        _read(tmp_path, f"include {tmp_path / 'missing.conf'}\n")
    with pytest.raises(InputError, match="includes itself"):
        _read(tmp_path, f"include {tmp_path / 'loop.conf'}\n", name="loop.conf")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("requirepas pw", "Bad directive or wrong number of arguments"),
        ("port many", "argument couldn't be parsed into an integer"),
        ("port 99999", "argument must be between 0 and 65535 inclusive"),
        ("port 7000 # note", "wrong number of arguments"),
        ("databases 0", "argument must be between 1 and 2147483647 inclusive"),
        ("maxclients 0", "argument must be between 1 and 4294967295 inclusive"),
        ("timeout -1", "argument must be between 0 and 2147483647 inclusive"),
        ("proto-max-bulk-len 1000", "argument must be between 1048576 and"),
        ("appendonly maybe", "argument must be 'yes' or 'no'"),
        ("appendfsync sometimes", "argument(s) must be one of the following: everysec, always"),
        ("loglevel loud", "must be one of the following: debug, verbose, notice, warning"),
        ("save 900", "Invalid save parameters"),
        ("save 0 1", "Invalid save parameters"),
        ('requirepass "open', "Unbalanced quotes in configuration line"),
        ("rename-command FLUSHALL", "Bad directive or wrong number of arguments"),
        ("user", "Bad directive or wrong number of arguments"),
        ("aof-load-truncated no", "aof-load-truncated no is not supported"),
        ("mymodule.option 1", "Bad directive or wrong number of arguments"),
    ],
)
def test_a_bad_line_is_refused_as_redis_refuses_it(tmp_path: Path, line: str, reason: str) -> None:
    with pytest.raises(InputError) as refused:
        _read(tmp_path, f"port 7000\n{line}\n")
    message = str(refused.value)
    assert "*** FATAL CONFIG FILE ERROR (Redis 7.0 syntax) ***" in message
    assert f"{tmp_path / 'snapkv.conf'}, at line 2\n>>> '{line}'\n" in message
    assert reason in message


def test_redis_directives_snapkv_does_not_implement_are_noted_once(tmp_path: Path) -> None:
    reader = _read(tmp_path, "daemonize yes\nport 7000\nhz 10\nhz 20\nhz 30\n")
    assert reader.notes == [
        f"{tmp_path / 'snapkv.conf'}:1: 'daemonize' is a Redis 7.0 directive snapkv does "
        "not implement: ignored",
        f"{tmp_path / 'snapkv.conf'}:3 (and 2 more): 'hz' is a Redis 7.0 directive snapkv "
        "does not implement: ignored",
    ]


def test_every_implemented_setting_is_a_redis_directive_or_snapkvs_own() -> None:
    own = {"aof-load-repair", "rdb-load-fallback"}
    assert set(SETTINGS) - REDIS_DIRECTIVES == own
    assert [name for name, _metavar, _help in OPTIONS] == list(SETTINGS)


def test_debians_redis_conf(tmp_path: Path) -> None:
    """The real file when redis-server is installed; else the same directives, written here."""
    if DEBIAN_CONF.exists():
        reader = read_serve_config(str(DEBIAN_CONF))
    else:
        reader = _read(tmp_path, DEBIAN_LINES, name="redis.conf")
    config = reader.config
    assert config.addresses == [("127.0.0.1", False), ("::1", True)]
    assert (config.port, config.dir, config.appendonly) == (6379, "/var/lib/redis", False)
    assert config.logfile == "/var/log/redis/redis-server.log"
    assert config.pidfile == "/run/redis/redis-server.pid"
    ignored = {name for note in reader.notes for name in re.findall(r"'([\w-]+)' is a", note)}
    assert {"daemonize", "tcp-keepalive", "hz"} <= ignored
    # Debian's file sets the three classes' limits, which snapkv implements.
    assert config.client_output_buffer_limit == {
        "normal": (0, 0, 0),
        "replica": (256 << 20, 64 << 20, 60),
        "pubsub": (32 << 20, 8 << 20, 60),
    }
    assert not ignored & set(SETTINGS)
    assert len(reader.notes) == len(ignored)  # once each


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_the_server_runs_from_a_redis_conf_and_options_override_it(tmp_path: Path) -> None:
    """Debian's directives, then options as its systemd unit gives them (and a test's own)."""
    port = _free_port()
    config = tmp_path / "redis.conf"
    # "hz" twice more: an ignored directive is reported once, with its repeats counted.
    config.write_text(
        DEBIAN_LINES + "requirepass pw\ndatabases 4\nhz 10\nhz 10\n", encoding="utf-8"
    )
    log = tmp_path / "serve.log"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "snapkv",
            "serve",
            str(config),
            "--port",
            str(port),
            "--dir",
            str(tmp_path / "data"),
            "--logfile",
            str(log),
            "--pidfile",
            str(tmp_path / "pid"),
            "--save",
            "900",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(port=port, password="pw", protocol=2)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        wait_until(answers, timeout=30, what="the server to answer PING")
        assert client.config_get("databases") == {"databases": "4"}
        assert client.config_get("dir") == {"dir": str(tmp_path / "data")}
        assert client.config_get("bind") == {"bind": "127.0.0.1 -::1"}
        assert client.config_get("save") == {"save": "900 1"}  # --save replaced the defaults
        assert client.config_get("client-output-buffer-limit") == {
            "client-output-buffer-limit": "normal 0 0 0 slave 268435456 67108864 60 "
            "pubsub 33554432 8388608 60"
        }
        client.set("k", "v")
        with pytest.raises(redis.ResponseError, match="DB index is out of range"):
            client.execute_command("SELECT", 4)
        client.shutdown()
        server.wait(30)
    finally:
        if server.poll() is None:  # the test failed before the server stopped
            server.kill()
            server.wait()
    assert server.returncode == 0
    assert list((tmp_path / "data").glob("snapshot-*.skv"))  # save rules: SHUTDOWN saved
    text = log.read_text(encoding="utf-8")
    assert f"{config}:7: 'daemonize' is a Redis 7.0 directive snapkv does not implement" in text
    assert "(and 2 more)" in text
    assert text.count("'hz' is a Redis 7.0 directive") == 1


# ------------------------------------------------------------------ options


def test_a_missing_config_file_is_an_input_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "snapkv", "serve", str(tmp_path / "nope.conf")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 2
    assert "can't open config file" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--port", "99999"], "--port: argument must be between 0 and 65535 inclusive"),
        (["--port", "-1"], "--port: argument must be between 0 and 65535 inclusive"),
        (["--databases", "0"], "--databases: argument must be between 1 and"),
        (["--maxclients", "0"], "--maxclients: argument must be between 1 and"),
        (["--timeout", "-5"], "--timeout: argument must be between 0 and"),
        (["--save", "900"], "--save: Invalid save parameters"),
        (["--save", "0", "1"], "--save: Invalid save parameters"),
        (["--appendonly", "maybe"], "--appendonly: argument must be 'yes' or 'no'"),
        (["--loglevel", "loud"], "--loglevel: argument(s) must be one of the following"),
        (["--aof-load-truncated", "no"], "--aof-load-truncated: aof-load-truncated no is not"),
        (["--dir", "", "--appendonly", "yes"], "appendonly yes needs a data directory"),
        (["--dir", "", "--appendonly", "no"], "save rules need a data directory"),
    ],
)
def test_options_are_range_checked_naming_the_option(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", *argv]) == 2
    assert message in capsys.readouterr().err


def test_serve_from_python_refuses_a_journal_or_save_rules_without_a_directory() -> None:
    with pytest.raises(ValueError, match="appendonly yes needs a data directory"):
        serve(Config(appendonly=True, dir=None))
    with pytest.raises(ValueError, match="save rules need a data directory"):
        serve(Config(save=[(60, 1)]))


def test_serve_defaults_are_redis_servers() -> None:
    defaults = serve_defaults()
    assert (defaults.dir, defaults.appendonly, defaults.appendfsync) == (".", True, "everysec")
    assert defaults.save == [(3600, 1), (300, 100), (60, 10000)]
    assert (defaults.port, defaults.host, defaults.loglevel) == (6379, "127.0.0.1", "notice")


# ------------------------------------------------------------------ CONFIG SET


Run = Callable[..., bytes]


@pytest.fixture
def run() -> Iterator[Run]:
    """One client of a dispatcher over a memory store: ``run("CONFIG", "GET", "dir")``."""
    store = Store(sweep_interval=None)
    server = Dispatcher(store, Config())
    client = Client(server, addr="127.0.0.1:1000", laddr="127.0.0.1:6379")
    server.add_client(client)

    def call(*argv: str) -> bytes:
        return server.execute(client, list(argv))

    yield call
    store.close()
    logging.getLogger("snapkv").setLevel(logging.NOTSET)  # CONFIG SET loglevel sets it


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("maxclients", "0", "argument must be between 1 and 4294967295 inclusive"),
        ("timeout", "-1", "argument must be between 0 and 2147483647 inclusive"),
        ("save", "900", "Invalid save parameters"),
        ("save", "0 1", "Invalid save parameters"),
        ("proto-max-bulk-len", "10", "argument must be between 1048576 and"),
        ("loglevel", "loud", "argument(s) must be one of the following"),
        ("shutdown-on-sigterm", "save nosave", "SAVE and NOSAVE can't be used simultaneously"),
        ("shutdown-on-sigint", "bogus", "one of the following: default, save, nosave, now, force"),
        ("port", "6380", "can't set immutable config"),
        ("dir", "/tmp", "can't set immutable config"),
        ("appendonly", "maybe", "argument must be 'yes' or 'no'"),
        ("appendfsync", "sometimes", "argument(s) must be one of the following"),
    ],
)
def test_config_set_checks_as_the_file_does(run: Run, name: str, value: str, reason: str) -> None:
    reply = run("CONFIG", "SET", name, value)
    assert reply.startswith(
        f"-ERR CONFIG SET failed (possibly related to argument '{name}') - ".encode()
    )
    assert reason.encode() in reply


def test_config_set_is_all_or_nothing_and_get_shows_the_truth(run: Run) -> None:
    assert run("CONFIG", "SET", "timeout", "5", "maxclients", "0").startswith(b"-ERR")
    assert run("CONFIG", "GET", "timeout") == b"*2\r\n$7\r\ntimeout\r\n$1\r\n0\r\n"
    assert run("CONFIG", "SET", "save", "60 1 10 100", "loglevel", "VERBOSE") == b"+OK\r\n"
    assert run("CONFIG", "GET", "save") == b"*2\r\n$4\r\nsave\r\n$11\r\n60 1 10 100\r\n"
    assert b"verbose" in run("CONFIG", "GET", "loglevel")
    assert run("CONFIG", "SET", "shutdown-on-sigterm", "force NOSAVE now") == b"+OK\r\n"
    assert b"nosave now force" in run("CONFIG", "GET", "shutdown-on-sigterm")  # Redis's order
    # A memory store has no directory: CONFIG GET dir says so instead of naming the cwd.
    assert run("CONFIG", "GET", "dir") == b"*2\r\n$3\r\ndir\r\n$0\r\n\r\n"


def test_appendonly_needs_a_restart_and_says_how(run: Run) -> None:
    """Redis 7.0 turns the AOF on and off at runtime; the Store opens with or without one."""
    assert run("CONFIG", "SET", "appendonly", "YES") == (
        b"-ERR CONFIG SET failed (possibly related to argument 'appendonly') - "
        b"can't change appendonly while the server runs: the store opens with or without "
        b"its journal. Run SHUTDOWN SAVE, then start again with --appendonly yes: the "
        b"snapshot keeps every key\r\n"
    )
    # The value the server runs with is accepted: nothing changes.
    assert run("CONFIG", "SET", "appendonly", "no") == b"+OK\r\n"
    assert run("CONFIG", "GET", "appendonly") == b"*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n"


# ------------------------------------------------------------------ examples

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_the_shipped_config_sets_every_directive_to_its_default() -> None:
    reader = read_serve_config(str(EXAMPLES / "snapkv.conf"))
    assert reader.notes == []  # only directives snapkv implements
    config = reader.config
    defaults = serve_defaults()
    config.dir, config.host, config.config_file = defaults.dir, defaults.host, ""
    assert config == defaults


def test_the_shipped_unit_starts_snapkv_serve_with_options_it_accepts() -> None:
    unit = (EXAMPLES / "snapkv.service").read_text(encoding="utf-8")
    (exec_start,) = re.findall(r"^ExecStart=(.*)$", unit, re.MULTILINE)
    words = exec_start.split()
    assert words[:2] == ["/usr/local/bin/snapkv", "serve"] and "Type=notify" in unit
    parser = argparse.ArgumentParser()
    add_serve_command(parser.add_subparsers())
    args = parser.parse_args(words[1:])
    assert (args.config, args.supervised, args.dir) == (
        "/etc/snapkv/snapkv.conf",
        "systemd",
        "/var/lib/snapkv",
    )
