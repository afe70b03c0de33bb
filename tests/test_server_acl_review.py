"""ACL paths around the per-command check, against redis-server 7.0.

SORT's BY and GET patterns read keys the check never sees (Redis refuses
them unless the user may read every key), commands with movable keys, a
failed AUTH queued in MULTI (logged as ``multi``), HELLO refused before
login, ACL LOAD's error texts, and passwords kept out of the slow log.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reference import Raw
from snapkv import Store
from snapkv.server import Config
from snapkv.server.client import Client
from snapkv.server.dispatch import Dispatcher
from test_server_acl import login, setuser


@pytest.fixture
def acl_twin(twin: Any, redis_port: int) -> Iterator[Any]:
    """``twin``, and afterwards the reference's user and ACL LOG as they were."""
    yield twin
    admin = Raw(redis_port)
    try:
        admin("ACL", "DELUSER", "alice")
        admin("ACL", "LOG", "RESET")
    finally:
        admin.close()


# ------------------------------------------------------------------ SORT


@pytest.mark.parametrize(
    "rules",
    [
        ["+@all", "~a*"],
        ["+@all", "%R~*"],  # read on every key: BY and GET allowed
        ["+@all", "%W~*", "~a*"],  # write on every key is not read
        ["+@all", "~*"],
        ["-@all", "+sort", "~a*", "(+sort ~*)"],
        ["-@all", "+sort", "~a*", "(+get ~*)"],  # the selector with ~* may not SORT
    ],
    ids=" ".join,
)
def test_sort_by_and_get_patterns_need_read_access_to_every_key(
    acl_twin: Any, rules: list[str]
) -> None:
    acl_twin.same("RPUSH", "a1", "2", "1")
    acl_twin.same("SET", "w_1", "9")
    login(acl_twin, "alice", *rules)
    for argv in (
        ["SORT", "a1", "BY", "w_*"],
        ["SORT", "a1", "BY", "nosort"],
        ["SORT", "a1", "GET", "w_*"],
        ["SORT", "a1", "GET", "#"],
        ["SORT", "a1", "BY", "nosort", "GET", "#", "BY", "x*"],
        ["SORT_RO", "a1", "BY", "w_*"],
        ["SORT", "a1", "LIMIT", "0", "1", "GET", "w_*", "ALPHA"],
        ["SORT", "a1", "BOGUS", "GET", "w_*"],
        ["SORT", "a1", "GET", "w_*", "BOGUS"],
    ):
        acl_twin.same(*argv)
    acl_twin.same("EVAL", "return redis.pcall('sort', 'a1', 'by', 'w_*')", "0")


# ------------------------------------------------------------------ movable keys


@pytest.mark.parametrize(
    "argv",
    [
        ["ZUNIONSTORE", "a1", "2", "a2", "b1"],
        ["ZUNIONSTORE", "b1", "1", "a2"],
        ["ZINTER", "2", "a1", "b2"],
        ["XREAD", "STREAMS", "a1", "b1", "0", "0"],
        ["LMPOP", "2", "a1", "b1", "LEFT"],
        ["ZMPOP", "2", "a1", "b1", "MIN"],
        ["SINTERCARD", "2", "a1", "b1"],
        ["EVAL", "return 1", "1", "b1"],
        ["EVAL_RO", "return 1", "1", "b1"],
        ["FCALL", "nosuch", "1", "b1"],
        ["SORT", "a1", "STORE", "b1"],
        ["OBJECT", "ENCODING", "b1"],
        ["MEMORY", "USAGE", "b1"],
        ["MOVE", "b1", "1"],
        ["SMOVE", "a1", "b1", "m"],
        ["XINFO", "STREAM", "b1"],
        ["WATCH", "b1"],
        ["KEYS", "*"],
        ["SCAN", "0"],
    ],
    ids=" ".join,
)
def test_movable_and_odd_keys_are_checked_as_redis(acl_twin: Any, argv: list[str]) -> None:
    login(acl_twin, "alice", "+@all", "~a*", "&c*")
    acl_twin.same("ACL", "DRYRUN", "alice", *argv)
    acl_twin.same(*argv)


# ------------------------------------------------------------------ AUTH and HELLO


def test_a_failed_auth_queued_in_multi_is_logged_as_multi(acl_twin: Any) -> None:
    setuser(acl_twin, "alice", "on", ">pw", "+@all", "-set", "~*")
    acl_twin.same("MULTI")
    acl_twin.same("AUTH", "alice", "bad")
    acl_twin.same("EXEC")
    ours, theirs = acl_twin("ACL", "LOG", "1")
    assert b"$7\r\ncontext\r\n$5\r\nmulti\r\n" in theirs
    assert b"$7\r\ncontext\r\n$5\r\nmulti\r\n" in ours
    acl_twin.same("AUTH", "alice", "bad")  # outside MULTI again: toplevel
    ours, theirs = acl_twin("ACL", "LOG", "1")
    assert b"$8\r\ntoplevel\r\n" in theirs
    assert b"$8\r\ntoplevel\r\n" in ours


def test_auth_queued_in_multi_switches_the_user_for_the_rest_of_exec(acl_twin: Any) -> None:
    setuser(acl_twin, "alice", "on", ">pw", "+@all", "-set", "~*")
    for argv in (["MULTI"], ["SET", "k", "1"], ["AUTH", "alice", "pw"], ["SET", "k", "2"]):
        acl_twin.same(*argv)
    acl_twin.same("GET", "k")
    acl_twin.same("EXEC")
    acl_twin.same("ACL", "WHOAMI")


def test_hello_before_login_is_refused_with_redis_text(acl_twin: Any) -> None:
    acl_twin.same("CONFIG", "SET", "requirepass", "pw")
    try:
        acl_twin.same("RESET")
        acl_twin.same("HELLO", "3")
        acl_twin.same("HELLO", "3", "AUTH", "default", "nope")
        acl_twin.same("HELLO", "3", "SETNAME", "x")
    finally:
        acl_twin("AUTH", "pw")
        acl_twin.same("CONFIG", "SET", "requirepass", "")


# ------------------------------------------------------------------ secrets


def _slowlog_args(reply: bytes) -> bytes:
    """The arguments of SLOWLOG GET 1's entry: from its array to the client's address."""
    head = reply.split(b"\r\n", 5)  # *1, *6, :id, :time, :usec, then the arguments
    args = head[5].split(b"127.0.0.1")[0]
    return args[: args.rindex(b"$")]


@pytest.mark.parametrize(
    "argv",
    [
        ["ACL", "SETUSER", "alice", "on", ">secret", "~a"],
        ["ACL", "SETUSER", "alice", ">secret", "bogus"],  # refused: redacted all the same
        ["ACL", "SETUSER", "a b", ">secret"],
    ],
    ids=" ".join,
)
def test_acl_setuser_passwords_never_reach_the_slow_log(acl_twin: Any, argv: list[str]) -> None:
    acl_twin.same("CONFIG", "SET", "slowlog-log-slower-than", "0")
    try:
        acl_twin.same("SLOWLOG", "RESET")
        acl_twin.same(*argv)
        ours, theirs = acl_twin("SLOWLOG", "GET", "1")
    finally:
        acl_twin.same("CONFIG", "SET", "slowlog-log-slower-than", "10000")
    assert b"secret" not in ours
    assert _slowlog_args(ours) == _slowlog_args(theirs)


# ------------------------------------------------------------------ the aclfile

#: redis-server 7.0.15's ACL LOAD reply for _BAD_FILE (``{}`` is the file's path): an
#: unknown command or category is named on every occurrence, any other error only
#: first on its line.
_BAD_FILE = (
    "user a on +config|nosuch -nosuch +select|0|1 bad\n"
    "user b bad +nosuch %~x\n"
    "user c <nopw +client|kill|x ~* ~a\n"
    "user d &* &a #zz (on) +@bogus\n"
    "bogus line\n"
    "user e (on\n"
    "user a on\n"
)
_BAD_FILE_REPLY = (
    "-ERR {0}:1: Error in applying operation '+config|nosuch': Unknown command or category "
    "name in ACL. {0}:1: Error in applying operation '-nosuch': Unknown command or category "
    "name in ACL. {0}:1: Error in applying operation '+select|0|1': Unknown command or "
    "category name in ACL. {0}:1: Syntax error. {0}:2: Syntax error. {0}:2: Error in "
    "applying operation '+nosuch': Unknown command or category name in ACL. {0}:3: The "
    "password you are trying to remove from the user does not exist. {0}:4: Adding a "
    "pattern after the * pattern (or the 'allchannels' flag) is not valid and does not "
    "have any effect. Try 'resetchannels' to start with an empty list of channels. {0}:4: "
    "Error in applying operation '+@bogus': Unknown command or category name in ACL. {0}:5 "
    "should start with user keyword followed by the username. {0}:6: Unmatched parenthesis "
    "in selector definition.WARNING: Duplicate user 'a' found on line 7. WARNING: ACL errors "
    "detected, no change to the previously active ACL rules was performed\r\n"
)


def test_acl_load_names_errors_as_redis_and_keeps_the_users(tmp_path: Path) -> None:
    aclfile = tmp_path / "users.acl"
    aclfile.write_text("user keep on nopass ~* +@all\n")
    with Store() as store:
        server = Dispatcher(store, Config(port=0, aclfile=str(aclfile)))
        client = Client(server)
        server.add_client(client)
        aclfile.write_text(_BAD_FILE)
        reply = server.execute(client, ["ACL", "LOAD"])
        assert reply.decode() == _BAD_FILE_REPLY.format(aclfile)
        assert server.execute(client, ["ACL", "USERS"]) == b"*2\r\n$7\r\ndefault\r\n$4\r\nkeep\r\n"


def _sha(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def test_config_rewrite_writes_the_users_as_redis(tmp_path: Path) -> None:
    """Without an aclfile the users live in the config file: CONFIG REWRITE writes each
    (``default`` too) over the old ``user`` lines in order, the rest at the end; with an
    aclfile the config file's ``user`` lines go (Redis's ``rewriteConfigUserOption``)."""
    conf = tmp_path / "snapkv.conf"
    conf.write_text('# comment\nport 0\nuser bob on >x ~b* +get\nsave ""\n')
    with Store() as store:
        config = Config(
            port=0, config_file=str(conf), acl_users=[["bob", "on", ">x", "~b*", "+get"]]
        )
        server = Dispatcher(store, config)
        client = Client(server)
        server.add_client(client)
        reply = server.execute(client, ["ACL", "SETUSER", "carol", "on", ">y", "~c", "+set"])
        assert reply == b"+OK\r\n"
        assert server.execute(client, ["CONFIG", "REWRITE"]) == b"+OK\r\n"
        lines = conf.read_text().splitlines()
        assert lines[:4] == [
            "# comment",
            "port 0",
            f"user bob on #{_sha('x')} ~b* resetchannels -@all +get",
            'save ""',
        ]
        assert lines[-2:] == [
            f"user carol on #{_sha('y')} ~c resetchannels -@all +set",
            "user default on nopass ~* &* +@all",
        ]
        assert sum(line.startswith("user ") for line in lines) == 3
        server.config.aclfile = str(tmp_path / "users.acl")
        assert server.execute(client, ["CONFIG", "REWRITE"]) == b"+OK\r\n"
        assert not [line for line in conf.read_text().splitlines() if line.startswith("user ")]


def test_a_user_deleted_inside_its_exec_leaves_the_rest_to_the_default_users_rules(
    acl_twin: Any, redis_port: int
) -> None:
    """Redis's ACLFreeUserAndKillClients: the client is ``default`` (not logged in) until
    it closes, so the commands after DELUSER in the same EXEC meet default's rules."""
    try:
        setuser(acl_twin, "default", "-set")
        login(acl_twin, "alice", "+@all", "~*")
        for argv in (["MULTI"], ["ACL", "DELUSER", "alice"], ["SET", "k", "v"]):
            acl_twin.same(*argv)
        acl_twin.server.execute(acl_twin.snapkv, ["EXEC"])
        with pytest.raises(ConnectionError):  # closed: the rest of EXEC's reply is dropped
            acl_twin.raw("EXEC")
        admin = Raw(redis_port)
        try:
            theirs = admin("EXISTS", "k")
        finally:
            admin.close()
        assert theirs == b":0\r\n"
        ours = Client(acl_twin.server)
        acl_twin.server.add_client(ours)
        assert acl_twin.server.execute(ours, ["EXISTS", "k"]) == theirs
    finally:
        admin = Raw(redis_port)
        try:
            admin("ACL", "SETUSER", "default", "+set")
        finally:
            admin.close()


def test_a_nopass_window_does_not_log_in_a_client_for_good(acl_twin: Any, redis_port: int) -> None:
    """Redis asks "is a login needed" at each command: while ``default`` is nopass a
    client that never logged in may run commands, and once it has a password again
    that client needs AUTH again (Redis's ``authRequired``)."""
    ours_admin = Client(acl_twin.server)
    acl_twin.server.add_client(ours_admin)
    theirs_admin = Raw(redis_port)

    def admin(*argv: str) -> None:
        assert acl_twin.server.execute(ours_admin, list(argv)) == theirs_admin(*argv)

    try:
        admin("CONFIG", "SET", "requirepass", "pw")
        acl_twin.same("RESET")
        acl_twin.same("GET", "k")
        admin("CONFIG", "SET", "requirepass", "")
        acl_twin.same("GET", "k")
        admin("CONFIG", "SET", "requirepass", "pw2")
        acl_twin.same("GET", "k")
        acl_twin.same("ACL", "WHOAMI")
        acl_twin.same("AUTH", "pw2")
        admin("CONFIG", "SET", "requirepass", "")
        admin("CONFIG", "SET", "requirepass", "pw3")
        acl_twin.same("GET", "k")  # logged in by AUTH: stays
    finally:
        admin("CONFIG", "SET", "requirepass", "")
        theirs_admin.close()


def test_a_failed_acl_save_says_why_in_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """ACL SAVE's error sends the operator to the server log, which must then say why."""
    aclfile = tmp_path / "users.acl"
    aclfile.write_text("user default on nopass ~* &* +@all\n")
    with Store() as store:
        server = Dispatcher(store, Config(port=0, aclfile=str(aclfile)))
        client = Client(server)
        server.add_client(client)
        server.config.aclfile = str(tmp_path / "gone" / "users.acl")
        with caplog.at_level("WARNING", logger="snapkv.server"):
            reply = server.execute(client, ["ACL", "SAVE"])
    assert reply == (
        b"-ERR There was an error trying to save the ACLs. Please check the server logs "
        b"for more information\r\n"
    )
    assert any(
        "gone/users.acl" in r.getMessage() and "No such file" in r.getMessage()
        for r in caplog.records
    )
