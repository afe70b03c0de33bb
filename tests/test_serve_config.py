"""``snapkv serve CONFIG``: a redis.conf-style file, overridden by command-line options."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from snapkv.cli_common import InputError
from snapkv.cli_serve import read_serve_config
from support import wait_until

redis = pytest.importorskip("redis")


def test_directives_values_comments_and_repeated_save(tmp_path: Path) -> None:
    path = tmp_path / "snapkv.conf"
    path.write_text(
        "# a comment\n"
        "bind 127.0.0.1\n"
        "port 7000   # trailing comment\n"
        'requirepass "pw"\n'
        "APPENDFSYNC always\n"
        "save 900 1\n"
        "save 300 10\n"
        "\n"
        "databases 4\n",
        encoding="utf-8",
    )
    assert read_serve_config(str(path)) == {
        "host": "127.0.0.1",
        "port": 7000,
        "requirepass": "pw",
        "appendfsync": "always",
        "save": "900 1 300 10",
        "databases": 4,
    }


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("requirepas pw", r"snapkv.conf:1: unknown directive 'requirepas'"),
        ("port many", r"snapkv.conf:1: port needs a number, not 'many'"),
        ("appendfsync sometimes", r"snapkv.conf:1: appendfsync must be one of always, everysec"),
    ],
)
def test_a_bad_line_is_refused_with_its_number(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "snapkv.conf"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=message):
        read_serve_config(str(path))


def test_a_missing_config_file_is_an_input_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "snapkv", "serve", str(tmp_path / "nope.conf")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 2
    assert "cannot read config file" in result.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_the_server_runs_from_a_config_file_and_options_override_it(tmp_path: Path) -> None:
    port = _free_port()
    config = tmp_path / "snapkv.conf"
    config.write_text(
        f"port 1\ndir {tmp_path / 'data'}\nrequirepass pw\ndatabases 4\n", encoding="utf-8"
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "snapkv", "serve", str(config), "--port", str(port)],
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
    assert list((tmp_path / "data").glob("snapshot-*.skv"))
