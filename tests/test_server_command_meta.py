"""COMMAND against a real redis-server 7.0: INFO, DOCS, LIST, COUNT and GETKEYS, byte for byte.

Every command and subcommand snapkv has is asked of both servers (RESP2
and RESP3). Redis lists a container's subcommands in its hash table's
order, which changes from one start to the next, so those are compared as
sets of names (each subcommand's own entry is compared byte for byte).
Where snapkv's declaration differs from Redis 7.0's on purpose (or for a
reason recorded here), :data:`DIVERGENCES` names the field and why; every
other field must be equal. GETKEYS and GETKEYSANDFLAGS are compared on
requests built from each command's own COMMAND DOCS arguments and on the
edge cases of Redis's getkeys procedures. Last, redis-py's cluster key
routing (``CommandsParser``), which reads COMMAND, must find the same keys
against snapkv as against Redis.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import redis
from redis._parsers.commands import CommandsParser

import snapkv.server.dispatch  # noqa: F401 - declares every command
from reference import parse, reply_end
from snapkv import Store
from snapkv.server.client import Client
from snapkv.server.commandmeta import (
    CATEGORIES,
    categories,
    command_keys,
    flag_names,
    key_flags,
    metadata,
)
from snapkv.server.dispatch import Dispatcher
from snapkv.server.keyspecs import find_keys
from snapkv.server.state import Config
from snapkv.server.table import COMMANDS, Command, build_table, numkeys_at
from test_server_e2e import DEADLINE, Running

#: Every command, container and subcommand snapkv declares.
NAMES = sorted({c.full_name for c in COMMANDS} | {c.parent for c in COMMANDS if c.parent})
#: Names Redis 7.0 lacks, whose entries in commands.json are hand-written (marked ``snapkv``).
HAND_WRITTEN = frozenset(n for n in NAMES if (metadata(n) or {}).get("snapkv"))
#: The containers (CONFIG, CLIENT, ...).
CONTAINERS = frozenset(c.parent for c in COMMANDS if c.parent)
#: Names both servers know.
SHARED = [n for n in NAMES if n not in HAND_WRITTEN]

_NO_ASYNC_LOADING = (
    "Redis marks commands refused while it loads a replication stream asynchronously "
    "(repl-diskless-load swapdb) no_async_loading; snapkv never loads asynchronously, "
    "so no command of its carries the flag (table.FLAGS has none)"
)
_SUBSET = "snapkv implements a subset of Redis's subcommands here"
#: (name, field) -> why snapkv's COMMAND INFO differs from Redis 7.0's there.
DIVERGENCES: dict[tuple[str, str], str] = {
    ("bgsave", "flags"): _NO_ASYNC_LOADING,
    ("psync", "flags"): _NO_ASYNC_LOADING,
    ("replicaof", "flags"): _NO_ASYNC_LOADING,
    ("save", "flags"): _NO_ASYNC_LOADING,
    ("slaveof", "flags"): _NO_ASYNC_LOADING,
    ("sync", "flags"): _NO_ASYNC_LOADING,
    ("slowlog|get", "flags"): "declared noscript, which Redis 7.0's SLOWLOG lacks",
    ("slowlog|len", "flags"): "declared noscript, which Redis 7.0's SLOWLOG lacks",
    ("slowlog|reset", "flags"): "declared noscript, which Redis 7.0's SLOWLOG lacks",
    ("zrangestore", "last"): (
        "cmd_zset.py declares ZRANGESTORE's key range (1, 1, 1), the destination only; "
        "Redis 7.0's legacy range is 1..2 (destination and source); the key specs agree"
    ),
    ("debug", "flags"): "snapkv's DEBUG is a container of subcommands, Redis 7.0's one command",
    ("debug", "subcommands"): "snapkv's DEBUG is a container of subcommands",
    ("client", "subcommands"): "Redis 7.2's CLIENT SETINFO and NO-TOUCH, which 7.0 lacks",
    ("memory", "subcommands"): _SUBSET,
    ("xinfo", "subcommands"): _SUBSET,
    ("acl", "subcommands"): _SUBSET,
    ("cluster", "subcommands"): _SUBSET,
    ("config", "subcommands"): _SUBSET,
    ("function", "subcommands"): _SUBSET,
    ("latency", "subcommands"): _SUBSET,
    ("module", "subcommands"): _SUBSET,
    ("object", "subcommands"): _SUBSET,
    ("pubsub", "subcommands"): _SUBSET,
    ("script", "subcommands"): _SUBSET,
    ("slowlog", "subcommands"): _SUBSET,
    ("xgroup", "subcommands"): _SUBSET,
}

FIELDS = ("name", "arity", "flags", "first", "last", "step", "acl", "tips", "specs", "subcommands")


def _items(reply: bytes, pos: int, count: int) -> tuple[list[bytes], int]:
    """``count`` whole replies from ``pos``, as their raw bytes."""
    items = []
    for _ in range(count):
        end = reply_end(reply, pos)
        items.append(reply[pos:end])
        pos = end
    return items, pos


def _aggregate(reply: bytes) -> list[bytes]:
    """The raw elements of one array, set or map (a map's keys and values alternate)."""
    head = reply.index(b"\r\n")
    count = int(reply[1:head]) * (2 if reply[:1] == b"%" else 1)
    items, end = _items(reply, head + 2, count)
    assert end == len(reply)
    return items


def _names(field: bytes) -> set[bytes]:
    """The names in a subcommands field (an array of entries, or a map of docs)."""
    items = _aggregate(field)
    if field[:1] == b"%" or (field[:1] == b"*" and items and items[0][:1] == b"$"):
        return {parse(item) for item in items[0::2]}  # docs: a (flattened) map
    return {parse(_aggregate(entry)[0]) for entry in items}


def _at_both_protocols(twin: Any) -> Iterator[int]:
    """RESP2, then RESP3, on both sides (one fixture, so each command costs one setup)."""
    yield 2
    twin("HELLO", "3")
    yield 3


def _check_subcommands(name: str, ours: bytes, theirs: bytes) -> None:
    ours_names, their_names = _names(ours), _names(theirs)
    extra = {n for n in ours_names if n.decode() not in HAND_WRITTEN}
    assert extra <= their_names, f"{name}: subcommands Redis lacks: {extra - their_names}"
    if (name, "subcommands") not in DIVERGENCES:
        assert ours_names == their_names, name


@pytest.mark.parametrize("name", SHARED)
def test_command_info_is_redis_s_field_by_field(twin: Any, name: str) -> None:
    for _ in _at_both_protocols(twin):
        _check_info(name, *twin("COMMAND", "INFO", name))


def _check_info(name: str, ours: bytes, theirs: bytes) -> None:
    (our_entry,), (their_entry,) = _aggregate(ours), _aggregate(theirs)
    our_fields, their_fields = _aggregate(our_entry), _aggregate(their_entry)
    for field, mine, redis_s in zip(FIELDS, our_fields, their_fields, strict=True):
        if field == "subcommands" and redis_s[:1] == b"*":
            _check_subcommands(name, mine, redis_s)
        elif (name, field) not in DIVERGENCES:
            assert mine == redis_s, f"{name} {field}: snapkv {mine!r} != redis {redis_s!r}"


@pytest.mark.parametrize("name", SHARED)
def test_command_docs_are_redis_s(twin: Any, name: str) -> None:
    for _ in _at_both_protocols(twin):
        _check_docs(name, *twin("COMMAND", "DOCS", name))


def _check_docs(name: str, ours: bytes, theirs: bytes) -> None:
    if name not in CONTAINERS:
        assert ours == theirs
        return
    (our_name, our_docs), (their_name, their_docs) = _aggregate(ours), _aggregate(theirs)
    assert our_name == their_name
    mine, redis_s = _aggregate(our_docs), _aggregate(their_docs)
    key = b"$11\r\nsubcommands\r\n"
    assert mine[-2] == key, name  # snapkv's own subcommands, last as in Redis
    if key not in redis_s:  # DEBUG: one command in Redis
        assert (name, "subcommands") in DIVERGENCES
        assert mine[:-2] == redis_s
        return
    assert redis_s[-2] == key
    assert mine[:-2] == redis_s[:-2], name
    _check_subcommands(name, mine[-1], redis_s[-1])


@pytest.mark.parametrize("name", sorted(HAND_WRITTEN))
def test_names_redis_lacks_have_their_own_entries(twin: Any, name: str) -> None:
    """Redis 7.0 does not know them; snapkv answers from the marked hand-written data."""
    ours, theirs = twin("COMMAND", "INFO", name)
    assert theirs == b"*1\r\n$-1\r\n"
    (entry,) = parse(ours)
    declared = next(c for c in COMMANDS if c.full_name == name)
    meta = metadata(name)
    assert meta is not None
    assert entry[:2] == [name.encode(), declared.arity] == [name.encode(), meta["arity"]]
    assert {f.decode() for f in entry[2]} == set(meta["flags"])
    assert [c.decode() for c in entry[6]] == ["@" + c for c in meta["acl_categories"]]
    ours, theirs = twin("COMMAND", "DOCS", name)
    assert theirs == b"*0\r\n"
    docs = parse(ours)
    assert docs[0] == name.encode() and meta["docs"]["summary"].encode() in docs[1]


def test_every_command_snapkv_has_has_metadata() -> None:
    """A command added without Redis's data (or a hand-written entry) fails here."""
    assert [n for n in NAMES if metadata(n) is None] == []


def test_command_and_info_without_names_list_every_command_once(twin: Any) -> None:
    top = sorted({n for n in NAMES if "|" not in n})
    everything = twin.server.execute(twin.snapkv, ["COMMAND"])
    assert everything == twin.server.execute(twin.snapkv, ["COMMAND", "INFO"])
    entries = _aggregate(everything)
    assert [parse(_aggregate(e)[0]).decode() for e in entries] == top
    for entry in entries[:40]:
        name = parse(_aggregate(entry)[0]).decode()
        single = twin.server.execute(twin.snapkv, ["COMMAND", "INFO", name])
        assert single == b"*1\r\n" + entry
    count = twin.server.execute(twin.snapkv, ["COMMAND", "COUNT"])
    assert count == b":%d\r\n" % len(top)


def test_command_info_and_docs_of_unknown_names(twin: Any) -> None:
    for _ in _at_both_protocols(twin):
        twin.same("COMMAND", "INFO", "nosuch", "get", "config|nosuch", "GET", "CONFIG|GET")
        twin.same("COMMAND", "DOCS", "nosuch", "config|nosuch")
        twin.same("COMMAND", "DOCS", "get", "nosuch", "Get")
        twin.same("COMMAND", "HELP")


def _list(twin: Any, *args: str) -> tuple[set[str], set[str]]:
    ours, theirs = twin("COMMAND", "LIST", *args)
    return {n.decode() for n in parse(ours)}, {n.decode() for n in parse(theirs)}


def test_command_list_names_every_command_and_subcommand(twin: Any) -> None:
    ours, theirs = _list(twin)
    assert ours == set(NAMES)
    assert ours - HAND_WRITTEN <= theirs


@pytest.mark.parametrize("category", [*CATEGORIES, "READ", "nosuch"])
def test_command_list_filterby_aclcat_is_redis_s(twin: Any, category: str) -> None:
    ours, theirs = _list(twin, "FILTERBY", "ACLCAT", category)
    assert ours - HAND_WRITTEN == theirs & set(SHARED)
    hand = {n for n in HAND_WRITTEN if category.lower() in (metadata(n) or {})["acl_categories"]}
    assert ours & HAND_WRITTEN == hand


@pytest.mark.parametrize("pattern", ["*", "x*", "*|*", "CONFIG*", "c?ient|*", "[a-c]*", "*GET*"])
def test_command_list_filterby_pattern_is_redis_s(twin: Any, pattern: str) -> None:
    ours, theirs = _list(twin, "FILTERBY", "PATTERN", pattern)
    assert ours - HAND_WRITTEN == theirs & set(SHARED)
    assert ours & HAND_WRITTEN == {
        n for n in HAND_WRITTEN if fnmatch.fnmatchcase(n, pattern.lower())
    }


@pytest.mark.parametrize(
    "args",
    [
        ("FILTERBY", "MODULE", "nosuch"),
        ("FILTERBY",),
        ("FILTERBY", "ACLCAT"),
        ("FILTERBY", "NOSUCH", "x"),
        ("NOSUCH",),
        ("FILTERBY", "PATTERN", "x", "FILTERBY"),
    ],
)
def test_command_list_errors_and_module_filter_are_redis_s(twin: Any, args: Any) -> None:
    for _ in _at_both_protocols(twin):
        twin.same("COMMAND", "LIST", *args)


# ------------------------------------------------------------------ GETKEYS


def _render(args: list[Mapping[str, Any]], full: bool, keys: Iterator[int]) -> list[str]:
    """Arguments for a request, as COMMAND DOCS describes them.

    ``full``: every optional argument and the last choice of each ``oneof``,
    else only what is required and the first choice. A ``multiple`` argument
    is given twice; a ``numkeys`` count is 2, to match.
    """
    out: list[str] = []
    for arg in args:
        flags = arg.get("flags", [])
        if "optional" in flags and not full:
            continue
        for repeat in range(2 if "multiple" in flags else 1):
            if "token" in arg and (repeat == 0 or "multiple_token" in flags):
                out.append(arg["token"])
            kind = arg["type"]
            if kind == "key":
                out.append(f"key{next(keys)}")
            elif kind == "oneof":
                out += _render([arg["arguments"][-1 if full else 0]], full, keys)
            elif kind == "block":
                out += _render(arg["arguments"], full, keys)
            elif kind == "integer":
                out.append("2")
            elif kind == "double":
                out.append("1.5")
            elif kind == "unix-time":
                out.append("100")
            elif kind != "pure-token":
                out.append("*" if kind == "pattern" else "value")
    return out


def _samples(name: str) -> list[list[str]]:
    meta = metadata(name)
    assert meta is not None
    head = name.split("|")
    args = meta["docs"].get("arguments", [])
    return [head + _render(args, full, iter(range(100))) for full in (False, True)]


#: Requests where Redis's key finding takes its less travelled paths.
EDGES = [
    ["set", "k", "v", "GET"],
    ["set", "k", "v", "get", "EX", "10"],
    ["set", "k"],
    ["bitfield", "k", "GET", "u8", "0"],
    ["bitfield", "k", "GET", "u8", "0", "SET", "u8", "0", "1"],
    ["bitfield", "k", "OVERFLOW", "SAT", "GET", "u8"],
    ["bitfield", "k"],
    ["sort", "k", "BY", "store", "STORE", "d", "GET", "#", "LIMIT", "0", "1", "STORE", "e"],
    ["sort", "k", "STORE"],
    ["sort_ro", "k", "GET", "x"],
    ["migrate", "h", "1", "", "0", "5", "COPY", "AUTH", "keys", "KEYS", "a", "b"],
    ["migrate", "h", "1", "k", "0", "5", "KEYS", "a"],
    ["migrate", "h", "1", "k", "0", "5", "AUTH2", "u", "p", "REPLACE"],
    ["xread", "COUNT", "1", "BLOCK", "0", "STREAMS", "a", "b", "0", "0"],
    ["xread", "STREAMS", "a", "b", "0"],
    ["xread", "STREAMS", "streams", "0"],
    ["xread", "COUNT", "1", "a", "0"],
    ["xreadgroup", "GROUP", "g", "c", "NOACK", "STREAMS", "a", "0"],
    ["xreadgroup", "GROUP", "g", "c", "STREAMS", "a", "b", "c"],
    ["georadius", "k", "1", "2", "3", "m", "STORE", "a", "STOREDIST", "b"],
    ["georadiusbymember", "k", "m", "3", "km", "STOREDIST", "d"],
    ["zunionstore", "d", "x", "a"],
    ["zunionstore", "d", "3", "a", "b"],
    ["zunionstore", "d", "-1", "a"],
    ["zunionstore", "d", "01", "a"],
    ["zinter", "2", "a", "b", "WEIGHTS", "1", "2"],
    ["zdiff", "0", "a"],
    ["sintercard", "2", "a", "b", "LIMIT", "1"],
    ["zintercard", "1", "a", "b"],
    ["lmpop", "2", "a", "b", "LEFT"],
    ["lmpop", "9", "a", "LEFT"],
    ["blmpop", "0", "1", "a", "LEFT"],
    ["bzmpop", "0", "x", "a", "MIN"],
    ["zmpop", " 1", "a", "MIN"],
    ["eval", "s", "0"],
    ["eval", "s", "2", "a", "b", "c"],
    ["eval", "s", "3", "a"],
    ["evalsha_ro", "s", "1x", "a"],
    ["fcall", "f", "1", "a", "b"],
    ["fcall_ro", "f", "-1", "a"],
    ["mset", "a", "1", "b"],
    ["mset", "a", "1", "b", "2"],
    ["del", "a", "b", "c"],
    ["object", "encoding", "k"],
    ["object", "nosuch", "k"],
    ["memory", "usage", "k", "SAMPLES", "5"],
    ["xinfo", "stream", "k", "FULL"],
    ["config", "get", "x"],
    ["config"],
    ["nosuch", "k"],
    ["get", "k", "extra"],
    ["GET", "k"],
    ["OBJECT", "ENCODING", "k"],
    ["ping", "x"],
    ["lcs", "a", "b", "LEN"],
    ["spublish", "c", "m"],
    ["pfcount", "a", "b"],
    ["rename", "a", "b"],
    ["copy", "a", "b", "DB", "1", "REPLACE"],
]


def _lacks(argv: list[str]) -> bool:
    """A command Redis 7.0 has and snapkv does not (yet)."""
    return argv[0].lower() not in NAMES and metadata(argv[0]) is not None


@pytest.mark.parametrize("name", [n for n in SHARED if n != "debug"])
def test_getkeys_of_every_command_is_redis_s(twin: Any, name: str) -> None:
    for _ in _at_both_protocols(twin):
        for argv in _samples(name):
            twin.same("COMMAND", "GETKEYS", *argv)
            twin.same("COMMAND", "GETKEYSANDFLAGS", *argv)


@pytest.mark.parametrize("argv", [a for a in EDGES if not _lacks(a)], ids=" ".join)
def test_getkeys_edge_cases_are_redis_s(twin: Any, argv: list[str]) -> None:
    for _ in _at_both_protocols(twin):
        twin.same("COMMAND", "GETKEYS", *argv)
        twin.same("COMMAND", "GETKEYSANDFLAGS", *argv)


@pytest.mark.parametrize("argv", [a for a in EDGES if _lacks(a)], ids=" ".join)
def test_key_finding_of_commands_snapkv_lacks_is_redis_s(reference: Any, argv: list[str]) -> None:
    """The getkeys procedures of commands snapkv does not have yet (BITFIELD, MIGRATE,
    GEORADIUS, XREADGROUP ...) against Redis's own, through the key finder directly."""
    theirs = parse(reference("COMMAND", "GETKEYSANDFLAGS", *argv))
    meta = metadata(argv[0])
    assert meta is not None
    found = find_keys(argv[0], meta["key_specs"], argv)
    if isinstance(theirs, bytes):  # an error: Redis found no keys
        assert theirs.startswith(b"ERR Invalid arguments") and found == []
    else:
        assert [[argv[i].encode(), [f.encode() for f in flags]] for i, flags in found] == theirs


# ------------------------------------------------------- a cluster client


ROUTED = [
    ("GET", "a"),
    ("MSET", "a", "1", "b", "2"),
    ("ZUNIONSTORE", "d", "2", "a", "b", "WEIGHTS", "1", "2"),
    ("ZINTER", "2", "a", "b"),
    ("EVAL", "return 1", "2", "a", "b", "arg"),
    ("FCALL", "f", "1", "a"),
    ("XREAD", "COUNT", "1", "STREAMS", "a", "b", "0", "0"),
    ("SORT", "k", "BY", "w", "STORE", "d"),
    ("SORT_RO", "k"),
    ("LMPOP", "2", "a", "b", "LEFT"),
    ("BLMPOP", "0", "2", "a", "b", "RIGHT"),
    ("SINTERCARD", "2", "a", "b"),
    ("OBJECT", "ENCODING", "k"),
    ("MEMORY", "USAGE", "k"),
    ("XINFO", "STREAM", "k"),
    ("SET", "k", "v", "GET"),
    ("BITFIELD", "k", "GET", "u8", "0"),
    ("RENAME", "a", "b"),
    ("PUBLISH", "chan", "m"),
]


@pytest.fixture
def snapkv_port() -> Iterator[int]:
    running = Running(Store(), Config(port=0))
    try:
        yield running.port
    finally:
        running.stop()


def test_a_cluster_client_routes_by_snapkv_s_command_as_by_redis_s(
    snapkv_port: int, redis_port: int
) -> None:
    """redis-py's CommandsParser (RedisCluster's key finder) reads COMMAND, key specs and
    GETKEYS: against snapkv it must find the keys it finds against Redis."""
    ours = redis.Redis(port=snapkv_port, socket_timeout=DEADLINE)
    theirs = redis.Redis(port=redis_port, socket_timeout=DEADLINE)
    try:
        our_parser, their_parser = CommandsParser(ours), CommandsParser(theirs)
        assert set(our_parser.commands) <= set(their_parser.commands) | {"debug"}
        for argv in (a for a in ROUTED if a[0].lower() in NAMES):
            found = our_parser.get_keys(ours, *argv)
            assert found == their_parser.get_keys(theirs, *argv), argv
            assert found, argv
    finally:
        ours.close()
        theirs.close()


# ------------------------------------------------- key flags for ACL rules


def _declared(name: str) -> Command:
    return build_table(COMMANDS)[name]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["lmove", "s", "d", "LEFT", "RIGHT"],
            [(1, {"RW", "access", "delete"}), (2, {"RW", "insert"})],
        ),
        (["set", "k", "v"], [(1, {"OW", "update"})]),
        (["set", "k", "v", "get"], [(1, {"RW", "access", "update"})]),
        (["sort", "k", "STORE", "d"], [(1, {"RO", "access"}), (3, {"OW", "update"})]),
        (["mget", "a", "b"], [(1, {"RO", "access"}), (2, {"RO", "access"})]),
        (["del", "a"], [(1, {"RM", "delete"})]),
        (["eval", "s", "x", "a"], []),
    ],
)
def test_key_flags_name_each_key_s_place_and_redis_s_flags(
    reference: Any, argv: list[str], expected: list[tuple[int, set[str]]]
) -> None:
    """What ACL's %R~ and %W~ read: each key's argv index and flags, as Redis finds them."""
    found = key_flags(_declared(argv[0]), argv)
    assert found == [(i, frozenset(flags)) for i, flags in expected]
    theirs = parse(reference("COMMAND", "GETKEYSANDFLAGS", *argv))
    if expected:
        assert [[argv[i].encode(), set(fl)] for i, fl in found] == [
            [k, {f.decode() for f in fl}] for k, fl in theirs
        ]


def _undeclared(**kwargs: Any) -> Command:
    """A command Redis's data does not know (a name snapkv might add)."""
    return Command("nosuchyet", -2, frozenset({"write"}), lambda client, argv: b"", **kwargs)


def test_a_command_without_redis_s_data_uses_its_own_key_positions() -> None:
    ranged = _undeclared(first_key=1, last_key=-1, step=2)
    assert command_keys(ranged, ["nosuchyet", "a", "1", "b", "2"]) == [(1, ()), (3, ())]
    counted = _undeclared(find_keys=numkeys_at(2, before=1))
    argv = ["nosuchyet", "d", "2", "d", "b"]
    assert command_keys(counted, argv) == [(1, ()), (3, ()), (4, ())]
    assert command_keys(_undeclared(), argv) == []
    assert categories(ranged) == ["keyspace", "write", "slow"]
    assert "movablekeys" in flag_names(counted) and "movablekeys" not in flag_names(ranged)


def test_renamed_commands_keep_their_own_names_as_in_redis() -> None:
    """rename-command get xget, ping "": Redis 7.0 still lists GET (its full name is
    unchanged), finds it only as XGET, and no longer has PING."""
    store = Store()
    try:
        plain = Dispatcher(store, Config())
        renamed = Dispatcher(store, Config(rename_commands=[("get", "xget"), ("ping", "")]))
        client = Client(renamed, addr="127.0.0.1:1000", laddr="127.0.0.1:6379")
        renamed.add_client(client)

        def ask(*argv: str) -> Any:
            return parse(renamed.execute(client, list(argv)))

        plain_client = Client(plain, addr="127.0.0.1:1001", laddr="127.0.0.1:6379")
        plain.add_client(plain_client)
        before = parse(plain.execute(plain_client, ["COMMAND", "COUNT"]))
        assert ask("COMMAND", "COUNT") == before - 1
        names = ask("COMMAND", "LIST")
        assert b"get" in names and b"xget" not in names and b"ping" not in names
        assert ask("COMMAND", "INFO", "xget", "get")[0][0] == b"get"
        assert ask("COMMAND", "INFO", "get")[0] is None
        assert ask("COMMAND", "GETKEYS", "xget", "k") == [b"k"]
        assert ask("COMMAND", "GETKEYS", "get", "k") == b"ERR Invalid command specified"
        assert len(ask("COMMAND")) == before - 1
    finally:
        store.close()
