"""ACL against redis-server 7.0: the same requests to both, the raw replies compared.

Rules as ACL LIST and GETUSER print them, SETUSER's errors, NOPERM texts
for commands, keys (read and write permissions) and channels, selectors,
MULTI, scripts, DRYRUN and ACL CAT. The reference server is shared by the
session: each test deletes the users it made there and empties its ACL LOG.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest

from reference import Raw
from snapkv.server.acl import registry
from snapkv.server.client import Client

_USERS = ("alice", "bob", "carol", "q")


@pytest.fixture
def acl_twin(twin: Any, redis_port: int) -> Iterator[Any]:
    """``twin``, and afterwards the reference's users and ACL LOG as they were."""
    yield twin
    admin = Raw(redis_port)
    try:
        admin("ACL", "DELUSER", *_USERS)
        admin("ACL", "LOG", "RESET")
    finally:
        admin.close()


def setuser(twin: Any, name: str, *rules: str) -> None:
    twin.same("ACL", "SETUSER", name, *rules)


def login(twin: Any, name: str, *rules: str) -> None:
    """Make user ``name`` (on, password ``pw``, these rules) on both sides and log in as it."""
    setuser(twin, name, "on", ">pw", *rules)
    twin.same("AUTH", name, "pw")


# ------------------------------------------------------------------ rules


@pytest.mark.parametrize(
    "rules",
    [
        ["on", ">pw", "~foo*", "%R~bar", "%W~baz", "&ch*", "+get", "(+set ~x*)"],
        ["reset"],
        ["+@all", "-@dangerous", "-config|set", "+config|get"],
        ["-@all", "+select|0"],  # Redis orders single commands by its dict: one at a time
        ["-@all", "+client|list"],
        ["+@all", "-@write"],
        ["-@all", "+@hash", "-hset"],
        ["+@all", "-@admin"],
        ["-@all", "+@transaction"],
        ["-@all", "+@list"],
        ["~a", "%RW~a", "%R~b", "%W~b"],
        ["#" + "a" * 64, "resetpass", ">a", ">b", "<a"],
        ["on", "nopass", "allkeys", "allchannels", "allcommands"],
        ["+@all", "-get", "+get"],
        ["-@all", "+acl", "-acl|setuser"],
        ["(~a* +get)", "(%R~b* +@read)", "clearselectors", "(~c +set)"],
        ["+@all", "~x", "(", "+get", "~y", ")"],
        ["%R~", "%RW", "&a", "&a", ">p", ">p"],
    ],
    ids=lambda rules: " ".join(rules)[:40],
)
def test_rules_are_described_as_redis_describes_them(acl_twin: Any, rules: list[str]) -> None:
    setuser(acl_twin, "q", *rules)
    acl_twin.same("ACL", "LIST")
    acl_twin.same("ACL", "GETUSER", "q")
    acl_twin("HELLO", "3")  # RESP3: a map, flags a set (HELLO itself names each server)
    acl_twin.same("ACL", "GETUSER", "q")
    acl_twin.same("ACL", "GETUSER", "nobody")


def test_rules_add_up_over_several_setuser_calls(acl_twin: Any) -> None:
    setuser(acl_twin, "q", "on", "+get", "~a")
    setuser(acl_twin, "q", "-@all", "+@string", "-incr", "%R~b")
    setuser(acl_twin, "q", "&news", "(+set ~s)")
    acl_twin.same("ACL", "LIST")
    acl_twin.same("ACL", "USERS")


@pytest.mark.parametrize(
    "rules",
    [
        ["%~x"],
        ["%RWR~x"],
        ["+nosuchcommand"],
        ["-nosuchcommand"],
        ["+@nosuchcategory"],
        ["+config|get|x"],
        ["+select|"],
        ["-select|0"],
        ["+config|nosuch"],
        ["bogus"],
        ["(on)"],
        ["(~x", "+get"],
        ["~*", "~a"],
        ["&*", "&a"],
        ["<never-set"],
        ["#tooshort"],
        ["!" + "A" * 64],
        ["~a b"],
    ],
    ids=lambda rules: " ".join(rules)[:30],
)
def test_a_bad_rule_is_refused_with_redis_text_and_changes_nothing(
    acl_twin: Any, rules: list[str]
) -> None:
    setuser(acl_twin, "q", "on", "+get")
    acl_twin.same("ACL", "SETUSER", "q", ">new", *rules)
    acl_twin.same("ACL", "LIST")


def test_setuser_and_deluser_refusals(acl_twin: Any) -> None:
    acl_twin.same("ACL", "SETUSER", "a b")
    acl_twin.same("ACL", "DELUSER", "default")
    acl_twin.same("ACL", "DELUSER", "q", "nobody")
    acl_twin.same("ACL", "GETUSER", "nobody")
    acl_twin.same("ACL", "NOSUCH")
    acl_twin.same("ACL", "CAT", "nosuchcategory")
    acl_twin.same("ACL", "GENPASS", "0")
    acl_twin.same("ACL", "GENPASS", "4097")
    acl_twin.same("ACL", "GENPASS", "x")
    acl_twin.same("ACL", "LOG", "x")
    acl_twin.same("ACL", "LOAD")
    acl_twin.same("ACL", "SAVE")
    acl_twin.same("ACL", "HELP")
    acl_twin.same("ACL", "WHOAMI")


def test_genpass_gives_the_bits_asked_for(acl_twin: Any) -> None:
    for bits, length in (("256", 64), ("1", 1), ("5", 2), ("4096", 1024)):
        ours, theirs = acl_twin("ACL", "GENPASS", bits)
        assert ours.split(b"\r\n")[0] == theirs.split(b"\r\n")[0] == b"$%d" % length
    assert acl_twin("ACL", "GENPASS")[0] != acl_twin("ACL", "GENPASS")[0]


@pytest.mark.parametrize(
    "category", ["set", "sortedset", "list", "hash", "pubsub", "transaction", "scripting"]
)
def test_acl_cat_lists_a_category_s_commands_as_redis(acl_twin: Any, category: str) -> None:
    ours, theirs = acl_twin("ACL", "CAT", category)
    assert set(ours.split(b"\r\n")[1:]) == set(theirs.split(b"\r\n")[1:])
    acl_twin.same("ACL", "CAT")


# ------------------------------------------------------------------ checks


def test_noperm_texts_for_commands_keys_and_channels(acl_twin: Any) -> None:
    login(acl_twin, "alice", "+@all", "-set", "~a*", "&c*")
    acl_twin.same("SET", "a1", "v")
    acl_twin.same("GET", "b")
    acl_twin.same("GET", "a1")
    acl_twin.same("MGET", "a1", "b", "a2")
    acl_twin.same("PUBLISH", "x", "m")
    acl_twin.same("PUBLISH", "cx", "m")
    acl_twin.same("ACL", "WHOAMI")
    acl_twin.same("CONFIG", "SET", "x", "y")  # +@all: CONFIG SET is allowed, then refused


@pytest.mark.parametrize(
    "argv",
    [
        ["GET", "r1"],
        ["GET", "w1"],
        ["GET", "rw1"],
        ["SET", "r1", "v"],
        ["SET", "w1", "v"],
        ["SET", "w1", "v", "GET"],
        ["INCR", "w1"],
        ["INCR", "rw1"],
        ["LPUSH", "w1", "x"],
        ["EXISTS", "r1", "w1", "x1"],
        ["TYPE", "x1"],
        ["DEL", "w1", "r1"],
        ["RENAME", "rw1", "w2"],
        ["RENAME", "r1", "w2"],
        ["COPY", "r1", "w2"],
        ["STRLEN", "r1"],
        ["APPEND", "w1", "x"],
        ["HSET", "w1", "f", "v"],
        ["HGET", "r1", "f"],
        ["SADD", "w1", "m"],
        ["SMEMBERS", "x1"],
        ["ZADD", "w1", "1", "m"],
        ["LMOVE", "rw1", "w1", "LEFT", "LEFT"],
        ["SINTERSTORE", "w1", "r1", "r2"],
    ],
    ids=" ".join,
)
def test_key_permissions_read_and_write_as_redis(acl_twin: Any, argv: list[str]) -> None:
    """%R~ allows what reads, %W~ what writes, ~ both: each key by Redis's key flags."""
    login(acl_twin, "bob", "+@all", "%R~r*", "%W~w*", "~rw*")
    acl_twin.same(*argv)
    acl_twin.same("ACL", "DRYRUN", "bob", *argv)


@pytest.mark.parametrize(
    "category", ["read", "write", "string", "hash", "list", "keyspace", "fast", "pubsub"]
)
def test_category_rules_allow_exactly_their_commands(acl_twin: Any, category: str) -> None:
    setuser(acl_twin, "carol", "on", "nopass", "allkeys", "allchannels", f"+@{category}")
    for argv in (
        ["GET", "k"],
        ["SET", "k", "v"],
        ["HGET", "h", "f"],
        ["LPUSH", "l", "x"],
        ["DEL", "k"],
        ["PUBLISH", "c", "m"],
        ["KEYS", "*"],
        ["CONFIG", "GET", "maxmemory"],
        ["FLUSHALL"],
    ):
        acl_twin.same("ACL", "DRYRUN", "carol", *argv)


def test_channel_patterns_for_publish_subscribe_and_psubscribe(acl_twin: Any) -> None:
    """PSUBSCRIBE's pattern must equal an allowed pattern; channels are matched."""
    setuser(acl_twin, "carol", "on", "nopass", "+@all", "resetchannels", "&news.*", "&lit")
    for argv in (
        ["PUBLISH", "news.today", "m"],
        ["PUBLISH", "sports", "m"],
        ["SUBSCRIBE", "news.a", "lit"],
        ["SUBSCRIBE", "news.a", "other"],
        ["PSUBSCRIBE", "news.*"],
        ["PSUBSCRIBE", "news.?"],
        ["PSUBSCRIBE", "lit"],
        ["SPUBLISH", "lit", "m"],
        ["SSUBSCRIBE", "nope"],
    ):
        acl_twin.same("ACL", "DRYRUN", "carol", *argv)


def test_selectors_add_permissions_to_the_root_ones(acl_twin: Any) -> None:
    setuser(acl_twin, "q", "on", "nopass", "+get", "~a*", "(+set ~b*)", "(+@read %R~c*)")
    for argv in (
        ["GET", "a1"],
        ["GET", "b1"],
        ["SET", "b1", "v"],
        ["SET", "a1", "v"],
        ["GET", "c1"],
        ["STRLEN", "c1"],
        ["MGET", "a1", "c1"],
        ["DEL", "b1"],
    ):
        acl_twin.same("ACL", "DRYRUN", "q", *argv)
    acl_twin.same("ACL", "DRYRUN", "q", "GET")
    acl_twin.same("ACL", "DRYRUN", "nobody", "GET", "a")
    acl_twin.same("ACL", "DRYRUN", "q", "NOSUCH", "a")


def test_first_argument_rules(acl_twin: Any) -> None:
    login(acl_twin, "alice", "allkeys", "-@all", "+select|0", "+client|id", "+auth")
    acl_twin.same("SELECT", "0")
    acl_twin.same("SELECT", "1")
    acl_twin.same("CLIENT", "INFO")


def test_multi_refuses_at_queue_time_and_exec_aborts(acl_twin: Any) -> None:
    login(acl_twin, "alice", "+@all", "-set", "~a*")
    acl_twin.same("MULTI")
    acl_twin.same("GET", "b")
    acl_twin.same("SET", "a", "1")
    acl_twin.same("GET", "a")
    acl_twin.same("EXEC")


def test_scripts_run_as_the_calling_user(acl_twin: Any) -> None:
    login(acl_twin, "alice", "+@all", "-set", "~a*", "&c*")
    acl_twin.same("EVAL", "return redis.call('set', 'a', '1')", "0")
    acl_twin.same("EVAL", "return redis.call('get', 'b')", "0")
    acl_twin.same("EVAL", "return redis.pcall('get', 'b')", "0")
    acl_twin.same("EVAL", "return redis.call('publish', 'x', 'm')", "0")
    acl_twin.same("EVAL", "return redis.call('get', 'a')", "0")
    acl_twin.same("EVAL", "return redis.acl_check_cmd('get', 'b')", "0")
    acl_twin.same("EVAL", "return redis.acl_check_cmd('get', 'a')", "0")
    acl_twin.same("EVAL", "return redis.acl_check_cmd('nosuch')", "0")


# ------------------------------------------------------------------ auth and log


def test_auth_as_users_and_the_default_user(acl_twin: Any) -> None:
    acl_twin.same("AUTH", "pw")
    setuser(acl_twin, "alice", "on", ">pw", "+@all", "~*")
    setuser(acl_twin, "bob", "off", ">pw", "+@all")
    acl_twin.same("AUTH", "alice", "wrong")
    acl_twin.same("AUTH", "bob", "pw")
    acl_twin.same("AUTH", "nobody", "pw")
    acl_twin.same("AUTH", "a", "b", "c")
    acl_twin.same("HELLO", "2", "AUTH", "alice", "wrong")
    acl_twin.same("AUTH", "alice", "pw")
    acl_twin.same("ACL", "WHOAMI")


def _log_fields(reply: bytes) -> list[list[bytes]]:
    """ACL LOG's entries without the fields that cannot be equal (age, client-info)."""
    entries = []
    for entry in reply.split(b"*14\r\n")[1:]:
        fields = entry.split(b"\r\n")
        entries.append([f for i, f in enumerate(fields[:20]) if i % 2])
    return entries


def test_acl_log_records_denials_and_failed_logins(acl_twin: Any, redis_port: int) -> None:
    login(acl_twin, "alice", "+@all", "-set", "~a*", "&c*")
    acl_twin("SET", "a", "1")
    acl_twin("SET", "a", "1")  # the same again: one entry, counted twice
    acl_twin("GET", "b")
    acl_twin("PUBLISH", "x", "m")
    acl_twin("EVAL", "return redis.pcall('get', 'z')", "0")
    acl_twin("MULTI")
    acl_twin("GET", "b2")
    acl_twin("DISCARD")
    acl_twin("AUTH", "alice", "wrong")
    admin = Raw(redis_port)
    try:
        theirs = admin("ACL", "LOG")
    finally:
        admin.close()
    acl_twin.server.execute(acl_twin.snapkv, ["AUTH", "default", "x"])  # nopass: any
    ours = acl_twin.server.execute(acl_twin.snapkv, ["ACL", "LOG"])
    assert _log_fields(ours) == _log_fields(theirs)
    assert len(_log_fields(ours)) == 6  # the two SETs are one entry
    assert b"user=alice" in ours
    assert acl_twin.server.execute(acl_twin.snapkv, ["ACL", "LOG", "RESET"]) == b"+OK\r\n"
    assert acl_twin.server.execute(acl_twin.snapkv, ["ACL", "LOG"]) == b"*0\r\n"


def test_acl_log_keeps_acllog_max_len_entries(acl_twin: Any) -> None:
    server = acl_twin.server
    server.config.acllog_max_len = 3
    login(acl_twin, "alice", "-@all", "+auth")
    for name in ("GET", "SET", "DEL", "INCR", "DECR"):
        server.execute(acl_twin.snapkv, [name, "k"])
    log = registry(server).log.entries
    assert [e.object for e in log] == ["decr", "incr", "del"]


def test_passwords_are_kept_as_sha256_hex(acl_twin: Any) -> None:
    setuser(acl_twin, "q", ">secret", "#" + hashlib.sha256(b"other").hexdigest())
    user = registry(acl_twin.server).users["q"]
    assert user.passwords == [
        hashlib.sha256(b"secret").hexdigest(),
        hashlib.sha256(b"other").hexdigest(),
    ]
    acl_twin.same("ACL", "GETUSER", "q")


def test_limiting_the_default_user_closes_the_fast_path(acl_twin: Any, redis_port: int) -> None:
    """Clients of ``default`` skip the ACL check only while it may run everything."""
    acl_twin.same("SET", "k", "v")
    assert acl_twin.snapkv.plain
    acl_twin.server.execute(acl_twin.snapkv, ["ACL", "SETUSER", "default", "-get"])
    assert not acl_twin.snapkv.plain
    ours = acl_twin.server.execute(acl_twin.snapkv, ["GET", "k"])
    assert ours == b"-NOPERM this user has no permissions to run the 'get' command\r\n"
    acl_twin.server.execute(acl_twin.snapkv, ["ACL", "SETUSER", "default", "+get"])
    assert acl_twin.snapkv.plain
    assert acl_twin.server.execute(acl_twin.snapkv, ["GET", "k"]) == b"$1\r\nv\r\n"


def test_reset_logs_back_in_as_default(acl_twin: Any) -> None:
    login(acl_twin, "alice", "+@all", "~*")
    acl_twin.same("ACL", "WHOAMI")
    acl_twin.same("RESET")
    acl_twin.same("ACL", "WHOAMI")


def test_acl_settings_as_config_get_shows_them(acl_twin: Any) -> None:
    for name in ("aclfile", "acllog-max-len", "acl-pubsub-default"):
        acl_twin.same("CONFIG", "GET", name)
    acl_twin.same("CONFIG", "SET", "acllog-max-len", "5")
    acl_twin.same("CONFIG", "SET", "acl-pubsub-default", "sometimes")
    acl_twin.same("CONFIG", "GET", "acllog-max-len")
    acl_twin.same("CONFIG", "SET", "acllog-max-len", "128")


def test_acl_pubsub_default_allchannels_gives_new_users_every_channel(acl_twin: Any) -> None:
    acl_twin.same("CONFIG", "SET", "acl-pubsub-default", "allchannels")
    try:
        setuser(acl_twin, "q", "on")
        setuser(acl_twin, "bob", "reset")
        acl_twin.same("ACL", "LIST")
    finally:
        acl_twin.same("CONFIG", "SET", "acl-pubsub-default", "resetchannels")


def test_exec_checks_queued_commands_again(acl_twin: Any, redis_port: int) -> None:
    """Rules changed between MULTI and EXEC: each denied command answers NOPERM in EXEC."""
    login(acl_twin, "alice", "+@all", "~*", "&*")
    for argv in (["MULTI"], ["GET", "a"], ["PUBLISH", "ch", "m"], ["SET", "k", "1"], ["INCR", "n"]):
        acl_twin.same(*argv)
    rules = ("-get", "resetchannels", "resetkeys", "~a", "~n")
    admin = Raw(redis_port)
    try:
        admin("ACL", "SETUSER", "alice", *rules)
    finally:
        admin.close()
    ours_admin = Client(acl_twin.server)
    acl_twin.server.add_client(ours_admin)
    acl_twin.server.execute(ours_admin, ["ACL", "SETUSER", "alice", *rules])
    acl_twin.same("EXEC")
    ours = acl_twin.server.execute(ours_admin, ["ACL", "LOG", "1"])
    assert b"$5\r\nmulti\r\n" in ours
    assert b"$1\r\nk\r\n" in ours
