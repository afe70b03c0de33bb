"""ACL through real clients over sockets: redis-py (RESP2 and RESP3), the aclfile, config users.

Logins as ACL users, requirepass as the default user's password, a deleted
user's connections closed, MULTI/EXEC, pub/sub and scripts under a user's
limits, the aclfile saved atomically and loaded (at start, and by ACL LOAD)
and the config file's ``user`` lines.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from snapkv import Store
from snapkv.server import Config
from snapkv.server.acl import exec_refusal, registry
from snapkv.server.client import Client
from snapkv.server.conf import ConfigError, ConfigReader
from snapkv.server.dispatch import Dispatcher
from test_server_e2e import DEADLINE, Running, read_until_closed


@pytest.fixture
def start() -> Iterator[Any]:
    started: list[Running] = []

    def run(**config: Any) -> Running:
        running = Running(Store(), Config(port=0, **config))
        started.append(running)
        return running

    yield run
    for running in started:
        running.stop()


def _until(condition: Any) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def test_users_log_in_with_redis_py_and_are_held_to_their_rules(start: Any) -> None:
    server = start()
    admin = server.client()
    assert admin.acl_setuser(
        "app",
        enabled=True,
        passwords=["+s3cret"],
        keys=["app:*"],
        commands=["+get", "+set", "+acl|whoami"],
    )
    app = server.client(username="app", password="s3cret")
    assert app.set("app:1", "v") is True
    assert app.get("app:1") == b"v"
    with pytest.raises(redis.exceptions.NoPermissionError, match="no permissions to access"):
        app.get("other")
    with pytest.raises(redis.exceptions.NoPermissionError, match="run the 'del' command"):
        app.delete("app:1")
    assert app.acl_whoami() == "app"
    assert any(client["user"] == "app" for client in admin.client_list())
    with pytest.raises(redis.exceptions.AuthenticationError):
        server.client(username="app", password="wrong").ping()
    resp3 = server.client(username="app", password="s3cret", protocol=3)
    assert resp3.get("app:1") == b"v"
    log = admin.acl_log()
    denied = {(entry["reason"], entry["object"]) for entry in log}
    assert {("auth", "HELLO"), ("command", "del"), ("key", "other")} <= denied


def test_requirepass_is_the_default_users_password(start: Any) -> None:
    server = start(requirepass="pw")
    with pytest.raises(redis.exceptions.AuthenticationError):
        server.client().ping()
    client = server.client(password="pw")
    assert client.ping() is True
    assert client.acl_getuser("default")["passwords"] != []
    client.config_set("requirepass", "new")
    assert client.config_get("requirepass") == {"requirepass": "new"}
    assert server.client(password="new").ping() is True
    with pytest.raises(redis.exceptions.AuthenticationError):
        server.client(password="pw").ping()
    assert client.ping() is True  # a password change logs no one out
    client.execute_command("ACL", "SETUSER", "default", "nopass")
    assert server.client().ping() is True


def test_deleting_a_user_closes_its_connections(start: Any) -> None:
    server = start()
    admin = server.client()
    admin.acl_setuser("tmp", enabled=True, passwords=["+pw"], commands=["+@all"], keys=["*"])
    victim = server.connect()
    victim.sendall(b"AUTH tmp pw\r\n")
    assert victim.recv(100) == b"+OK\r\n"
    bystander = server.client(username="tmp", password="pw")
    assert bystander.ping() is True
    assert admin.acl_deluser("tmp") == 1
    assert read_until_closed(victim) == b""  # closed by the server, nothing more sent
    _until(lambda: all(client["user"] != "tmp" for client in admin.client_list()))
    with pytest.raises(redis.exceptions.AuthenticationError):
        server.client(username="tmp", password="pw").ping()


def test_multi_exec_and_scripts_under_a_users_limits(start: Any) -> None:
    server = start()
    admin = server.client()
    admin.acl_setuser(
        "w", enabled=True, passwords=["+pw"], keys=["w*"], commands=["+@all", "-flushall"]
    )
    user = server.client(username="w", password="pw")
    pipe = user.pipeline(transaction=True)
    pipe.set("w1", "1").incr("w1")
    assert pipe.execute() == [True, 2]
    pipe = user.pipeline(transaction=True)
    pipe.set("w1", "1").get("other")
    with pytest.raises(redis.exceptions.NoPermissionError, match="GET other"):
        pipe.execute()
    assert user.eval("return redis.call('get', KEYS[1])", 1, "w1") == b"2"
    with pytest.raises(redis.exceptions.ResponseError, match="can't access at least one"):
        user.eval("return redis.call('get', 'other')", 0)
    with pytest.raises(redis.exceptions.ResponseError, match="can't run this command"):
        user.eval("return redis.call('flushall')", 0)


def test_exec_recheck_names_rules_changed_after_queueing() -> None:
    """Redis 7.0's EXEC checks each queued command again (``acl.exec_refusal``)."""
    server = Dispatcher(Store(), Config())
    admin, user = Client(server), Client(server)
    for client in (admin, user):
        server.add_client(client)
    run = server.execute
    run(admin, ["ACL", "SETUSER", "m", "on", ">pw", "~*", "&*", "+@all"])
    run(user, ["AUTH", "m", "pw"])
    assert run(user, ["MULTI"]) == b"+OK\r\n"
    assert run(user, ["SET", "k", "v"]) == b"+QUEUED\r\n"
    queued = user.multi
    assert queued is not None
    assert exec_refusal(user, *queued[0]) is None
    run(admin, ["ACL", "SETUSER", "m", "-set"])
    assert exec_refusal(user, *queued[0]) == (
        b"-NOPERM ACLs rules changed between the moment the transaction was accumulated and "
        b"the EXEC call. This command is no longer allowed for the following reason: no "
        b"permission to execute the command or subcommand\r\n"
    )
    assert registry(server).log.entries[0].context == "multi"


def test_pubsub_channels_are_checked(start: Any) -> None:
    server = start()
    admin = server.client()
    admin.acl_setuser("p", enabled=True, passwords=["+pw"], channels=["news.*"], commands=["+@all"])
    user = server.client(username="p", password="pw")
    assert user.publish("news.today", "m") == 0
    with pytest.raises(redis.exceptions.NoPermissionError, match="channels"):
        user.publish("sports", "m")
    pubsub = user.pubsub()
    pubsub.subscribe("news.a")
    assert pubsub.get_message(timeout=DEADLINE)["type"] == "subscribe"
    with pytest.raises(redis.exceptions.NoPermissionError):
        pubsub.psubscribe("news.?")
        pubsub.get_message(timeout=DEADLINE)
    pubsub.close()


# ------------------------------------------------------------------ aclfile, config users


def test_aclfile_is_loaded_at_start_saved_atomically_and_reloaded(
    start: Any, tmp_path: Path
) -> None:
    aclfile = tmp_path / "users.acl"
    aclfile.write_text("user reader on >rpw ~* &* -@all +@read\n\n")
    server = start(aclfile=str(aclfile))
    admin = server.client()
    assert admin.acl_users() == ["default", "reader"]
    reader = server.client(username="reader", password="rpw")
    with pytest.raises(redis.exceptions.NoPermissionError):
        reader.set("k", "v")
    admin.acl_setuser("writer", enabled=True, passwords=["+wpw"], keys=["*"], commands=["+set"])
    assert admin.acl_save() is True
    assert [name for name in os.listdir(tmp_path) if name != "users.acl"] == []  # no temp left
    saved = aclfile.read_text().splitlines()
    assert saved == admin.acl_list()
    aclfile.write_text(saved[0] + "\n" + saved[1] + "\n")  # writer gone from the file
    assert admin.acl_load() is True
    assert admin.acl_users() == ["default", "reader"]
    aclfile.write_text("user broken on +nosuchcommand\nuser x\nnot a user line\n")
    with pytest.raises(redis.exceptions.ResponseError) as refused:
        admin.acl_load()
    text = str(refused.value)
    assert (
        f"{aclfile}:1: Error in applying operation '+nosuchcommand': Unknown command or "
        "category name in ACL" in text
    )
    assert f"{aclfile}:3 should start with user keyword" in text
    assert text.endswith("no change to the previously active ACL rules was performed")
    assert admin.acl_users() == ["default", "reader"]


def test_a_bad_aclfile_refuses_the_start(tmp_path: Path) -> None:
    aclfile = tmp_path / "users.acl"
    aclfile.write_text("user ok on nopass +@all\nuser bad on ~a ~* ~b\n")
    with Store() as store:
        with pytest.raises(ConfigError, match=r"users.acl:2: Adding a pattern after the \*"):
            Dispatcher(store, Config(port=0, aclfile=str(aclfile)))
        with pytest.raises(ConfigError, match="opening file"):
            Dispatcher(store, Config(port=0, aclfile=str(tmp_path / "missing.acl")))
        config_users = Config(acl_users=[["app", "on", "+nosuchcommand"]])
        with pytest.raises(ConfigError, match="Error loading ACL rule '\\+nosuchcommand'"):
            Dispatcher(store, config_users)


def test_config_file_users(start: Any, tmp_path: Path) -> None:
    conf = tmp_path / "snapkv.conf"
    conf.write_text(
        'user default on nopass ~* &* +@all\nuser app on >pw ~app:* "+@all" (+get ~shared:*)\n'
    )
    reader = ConfigReader(Config(port=0))
    reader.read(str(conf))
    assert reader.config.acl_users[1][0] == "app"
    server = start(**{"acl_users": reader.config.acl_users})
    admin = server.client()
    assert admin.acl_list()[0].startswith("user app on #")
    assert admin.acl_list()[0].endswith(
        "~app:* resetchannels +@all (~shared:* resetchannels -@all +get)"
    )
    app = server.client(username="app", password="pw")
    assert app.get("shared:x") is None
    with pytest.raises(redis.exceptions.NoPermissionError):
        app.set("shared:x", "v")
    twice = tmp_path / "twice.conf"
    twice.write_text("user a on\nuser a off\n")
    with pytest.raises(ConfigError, match="Duplicate user found"):
        ConfigReader(Config()).read(str(twice))
    both = Config(port=0, aclfile=str(tmp_path / "x.acl"), acl_users=[["a", "on"]])
    with pytest.raises(ValueError, match="not both"):
        both.check()


def test_taking_a_channel_away_closes_its_subscribers(start: Any) -> None:
    server = start()
    admin = server.client()
    admin.acl_setuser("p", enabled=True, passwords=["+pw"], channels=["news.*"], commands=["+@all"])
    subscriber = server.connect()
    subscriber.sendall(b"AUTH p pw\r\nSUBSCRIBE news.a\r\n")
    expected = b"+OK\r\n*3\r\n$9\r\nsubscribe\r\n$6\r\nnews.a\r\n:1\r\n"
    received = b""
    while len(received) < len(expected):
        received += subscriber.recv(100)
    assert received == expected
    admin.acl_setuser("p", channels=["news.*", "sports"])  # more channels: nobody is closed
    admin.acl_setuser("p", passwords=["+another"])  # a password: nobody is closed
    assert admin.publish("news.a", "still") == 1
    admin.acl_setuser("p", reset_channels=True, channels=["sports"])
    assert read_until_closed(subscriber).endswith(b"$5\r\nstill\r\n")
