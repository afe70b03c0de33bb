"""Random arguments for every command in the table: a reply every time, nothing else touched.

For each command and subcommand the dispatcher knows (the table is
iterated, so a new command is fuzzed the day it is declared), hypothesis
builds requests (tests/fuzz_requests.py: Redis 7.0's argument grammar for
the command, filled with keys of every type and missing ones, numbers past
every edge, option tokens, stream IDs, scripts, empty strings and binary
junk, then often mutated) and runs each through the in-process dispatcher
on a freshly seeded store, in RESP2 and RESP3. Every request must:

* answer one well-formed RESP reply (parsed back strictly), or nothing
  only when the client now waits (a blocking command, CLIENT PAUSE) or
  asked for no reply (CLIENT REPLY);
* never be a handler's exception: ``ServerState.failed`` turns one into
  ``-ERR internal error in ...`` and logs it at ERROR, so both the text
  and an ERROR record on the ``snapkv`` logger fail the test (a store's
  refusal, ``-ERR <cmd>: ...``, is logged the same way and fails too: a
  memory store refuses nothing);
* take less than :data:`SLOW` seconds;
* change no key it does not name: every key of keyspaces 0, 1 and 9 whose
  name is not one of the request's arguments is the same after it (type,
  elements, expiry), except for the commands in :data:`TOUCH_EVERYTHING`.

Bounded time: each command that only reads and writes keys gets
:data:`EXAMPLES` examples on one server reseeded each time, any other command
a third as many, each on a new server (see :class:`Servers`);
``SNAPKV_FUZZ_EXAMPLES`` raises them for a longer hunt. Derandomized, so CI
runs the same requests every time (``SNAPKV_FUZZ_RANDOM=1`` draws new ones).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz_requests import requests
from snapkv import Store
from snapkv.server.client import REPLY_ON, Client
from snapkv.server.dispatch import Dispatcher
from snapkv.server.state import Config
from snapkv.server.table import Command
from snapkv.values import BY_CLASS

#: Examples per command (the whole file runs in well under a minute on 2 cores).
EXAMPLES = int(os.environ.get("SNAPKV_FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not os.environ.get("SNAPKV_FUZZ_RANDOM"),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
#: The longest any one request may take (CPU seconds of its thread).
SLOW = 1.0
#: How long a request may run before it counts as hung (and its thread is abandoned).
HANG = 5.0

#: Commands not fuzzed, each with why.
EXCLUDED = {
    "shutdown": "ends the server process on purpose",
    "debug|sleep": "sleeps for as long as it is told, on purpose",
    "sync": "turns the connection into a replica's stream (an RDB bulk without CRLF, as Redis)",
    "psync": "turns the connection into a replica's stream, as SYNC",
}
#: Commands that hang today (a bug each, reported to their module's owner): not run, so the
#: suite does not hang with them; each must go once fixed (the test below then runs it).
KNOWN_HANGS: dict[str, str] = {}
#: Commands whose time is not the request's own, and why.
UNTIMED: dict[str, str] = {}
#: Commands that may change keys they do not name, and why.
TOUCH_EVERYTHING = {
    "flushall": "empties every keyspace",
    "flushdb": "empties the client's keyspace",
    "swapdb": "swaps two whole keyspaces",
    "debug|reload": "saves and loads every keyspace again",
}

#: Commands that answer once for each channel they name, as Redis's.
ONE_REPLY_EACH = frozenset(
    {"subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ssubscribe", "sunsubscribe"}
)

#: A script and a function library, loaded once a server (FLUSHALL keeps them).
SEED_SCRIPTS = (
    ("SCRIPT", "LOAD", "return 1"),
    (
        "FUNCTION",
        "LOAD",
        "#!lua name=seeded\nredis.register_function('f', function(keys, args) return #keys end)",
    ),
)
#: What the keys fuzz_requests names hold (and "sentinel", which it never names).
SEED = (
    ("FLUSHALL",),
    ("SELECT", "0"),
    ("SET", "str", "hello"),
    ("SET", "num", "10"),
    ("SET", "float", "1.5"),
    ("HSET", "hash", "f", "1", "g", "x", "h", "2.5"),
    ("RPUSH", "list", "a", "b", "c", "1", "2", "a"),
    ("SADD", "set", "a", "b", "c", "1"),
    ("SADD", "iset", "1", "2", "3"),
    ("ZADD", "zset", "1", "a", "2", "b", "2.5", "c", "-inf", "lo", "inf", "hi"),
    ("XADD", "stream", "1-1", "f", "v"),
    ("XADD", "stream", "2-0", "g", "w", "h", "x"),
    ("SET", "vol", "v", "PX", "1000000"),
    ("SET", "sentinel", "keep"),
    ("SELECT", "1"),
    ("SET", "str", "other"),
    ("RPUSH", "list", "z"),
    ("SELECT", "9"),
    ("SET", "sentinel:9", "keep"),
    ("HSET", "hash", "f", "9"),
    ("ZADD", "zset", "9", "nine"),
)
#: The keyspaces whose keys are compared before and after each request.
WATCHED_DBS = (0, 1, 9)


def table_entries() -> list[Command]:
    """Every command and subcommand of a fresh dispatcher's table, once each."""
    server = Dispatcher(Store(), Config())
    entries: list[Command] = []
    for cmd in server.commands():
        if cmd.subcommands is None:
            entries.append(cmd)
        else:
            entries.extend(sub for name, sub in cmd.subcommands.items() if name.islower())
    server.store.close()
    return entries


ENTRIES = [cmd for cmd in table_entries() if cmd.full_name not in EXCLUDED]

# ------------------------------------------------------------------ checks


def reply_end(buf: bytes, pos: int = 0) -> int:
    """Where the one RESP2/RESP3 reply at ``pos`` ends; ``ValueError`` if it is malformed."""
    line_end = buf.index(b"\r\n", pos)
    kind, head = buf[pos : pos + 1], buf[pos + 1 : line_end]
    after = line_end + 2
    if b"\r" in head or b"\n" in head:
        raise ValueError(f"a line break inside a {kind!r} line")
    if kind in (b"+", b"-"):
        return after
    if kind == b":":
        int(head)
        return after
    if kind == b"(":
        int(head)
        return after
    if kind == b",":
        float(head)
        return after
    if kind == b"#":
        if head not in (b"t", b"f"):
            raise ValueError(f"boolean {head!r}")
        return after
    if kind == b"_":
        if head:
            raise ValueError("null with a body")
        return after
    count = int(head)
    if kind in (b"$", b"!", b"="):
        if count == -1 and kind == b"$":
            return after
        if count < 0 or buf[after + count : after + count + 2] != b"\r\n":
            raise ValueError(f"bulk of {count} bytes not ended by CRLF")
        return after + count + 2
    if kind in (b"*", b"~", b">", b"%", b"|"):
        if count == -1 and kind == b"*":
            return after
        if count < 0:
            raise ValueError(f"aggregate of {count}")
        for _ in range(count * 2 if kind in (b"%", b"|") else count):
            after = reply_end(buf, after)
        if kind == b"|":  # an attribute precedes the reply it describes
            after = reply_end(buf, after)
        return after
    raise ValueError(f"unknown reply type {kind!r}")


def well_formed(reply: bytes, *, several: bool = False) -> None:
    """Assert ``reply`` is exactly one RESP reply (``several``: one or more)."""
    end = 0
    try:
        end = reply_end(reply)
        while several and end < len(reply):
            end = reply_end(reply, end)
    except ValueError as exc:
        raise AssertionError(f"malformed reply {reply[:200]!r}: {exc}") from None
    assert end == len(reply), f"trailing bytes after the reply: {reply[:200]!r}"


def keyspace_state(store: Store, index: int) -> dict[str, Any]:
    """Every live key of keyspace ``index``: (type, elements, expiry)."""
    entries, expires, _ = store.db(index)._space
    now = time.time() * 1000
    state: dict[str, Any] = {}
    for key, value in list(entries.items()):
        expiry = expires.get(key)
        if expiry is not None and expiry <= now:
            continue
        flat = value if isinstance(value, str) else BY_CLASS[type(value)].flat(value)
        state[key] = (type(value).__name__, flat, expiry)
    return state


class Errors(logging.Handler):
    """Collects the ERROR records the server logs: an internal error leaves one."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def logged_errors() -> Iterator[Errors]:
    logger = logging.getLogger("snapkv")
    level, propagate = logger.level, logger.propagate
    handler = Errors()
    logger.addHandler(handler)
    logger.propagate = False  # the fuzz's own errors are reported by its assertions
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)  # CONFIG SET loglevel changes it
        logger.propagate = propagate


#: The first request that hung, by command: the command is not run again (its thread
#: still holds whatever it hangs on), every later example fails at once naming it.
HUNG: dict[str, list[str]] = {}


def execute_or_hang(
    server: Dispatcher, client: Client, cmd: Command, argv: list[str]
) -> tuple[bytes, float]:
    """``server.execute`` on a thread, so a request that hangs fails the test instead.

    Returns the reply and the CPU seconds the request took (on a shared
    machine, wall time would measure the machine's load).
    """
    if cmd.full_name in HUNG:
        raise AssertionError(f"{HUNG[cmd.full_name]!r} hung (not run again)")
    done: list[tuple[bytes, float]] = []

    def run() -> None:
        start = time.thread_time()
        reply = server.execute(client, argv)
        done.append((reply, time.thread_time() - start))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(HANG)
    if thread.is_alive():
        HUNG[cmd.full_name] = argv
        raise AssertionError(f"{argv!r} hung for {HANG} s")
    assert done, f"{argv!r} raised out of execute()"
    return done[0]


class Servers:
    """The server each example of one command runs on.

    Building a dispatcher costs ~20 ms, so a command that only reads and
    writes keys runs every example on one server, its keys seeded again
    (FLUSHALL, then :data:`SEED`) and a new client each time. Any other
    command (CONFIG, CLIENT, SCRIPT, EVAL, ... which change the server
    itself) gets a new server for each example.
    """

    def __init__(self, cmd: Command) -> None:
        self.shared = cmd.parent is None and bool(cmd.flags & {"write", "readonly"})
        # A server that ever ran Lua is never freed (its runtime's references
        # are out of the collector's reach), so only scripting commands get one.
        self.scripts = cmd.group == "scripting"
        self.server: Dispatcher | None = None
        self.seeder: Client | None = None

    def next(self) -> tuple[Dispatcher, Client]:
        """A seeded server and a new client of it."""
        if self.server is None or not self.shared:
            self.close()
            self.server = Dispatcher(Store(), Config())
            self.seeder = Client(self.server, addr="127.0.0.1:1", laddr="127.0.0.1:6379")
            self.server.add_client(self.seeder)
            if self.scripts:
                self.run(SEED_SCRIPTS)
        self.run(SEED)
        client = Client(self.server, addr="127.0.0.1:2", laddr="127.0.0.1:6379")
        self.server.add_client(client)
        return self.server, client

    def run(self, requests: tuple[tuple[str, ...], ...]) -> None:
        assert self.server is not None and self.seeder is not None
        for argv in requests:
            reply = self.server.execute(self.seeder, list(argv))
            assert not reply.startswith(b"-"), (argv, reply)

    def close(self) -> None:
        if self.server is not None:
            self.server.store.close()
            self.server = None


def run_one(servers: Servers, cmd: Command, argv: list[str], resp: int) -> None:
    """Run ``argv`` on a freshly seeded server and check everything the docstring promises."""
    server, client = servers.next()
    try:
        client.set_resp(resp)
        before = {db: keyspace_state(server.store, db) for db in WATCHED_DBS}
        with logged_errors() as errors:
            reply, took = execute_or_hang(server, client, cmd, argv)
        if cmd.full_name not in UNTIMED:
            assert took < SLOW, f"{argv!r} took {took:.2f} s"
        assert not errors.records, f"{argv!r} logged: {errors.records[0].getMessage()}"
        if reply:
            well_formed(reply, several=cmd.full_name in ONE_REPLY_EACH)
            assert b"internal error" not in reply, f"{argv!r}: {reply!r}"
        else:
            waits = client.blocked is not None or server.pause_mode is not None
            assert waits or client.reply_mode != REPLY_ON, f"{argv!r}: no reply"
        for pushed in client.outbox:
            well_formed(pushed)
        if cmd.full_name in TOUCH_EVERYTHING:
            return
        named = set(argv)
        for db in WATCHED_DBS:
            after = keyspace_state(server.store, db)
            changed = {
                key
                for key in before[db].keys() | after.keys()
                if key not in named and before[db].get(key) != after.get(key)
            }
            assert not changed, f"{argv!r} changed {sorted(changed)} in keyspace {db}"
    finally:
        if client.blocked is not None:  # what a connection does when it closes
            blocked, client.blocked = client.blocked, None
            blocked.cancel()
        server.remove_client(client)  # unsubscribes, unwatches


@pytest.mark.parametrize(
    "cmd",
    [
        pytest.param(cmd, marks=pytest.mark.xfail(reason=KNOWN_HANGS[cmd.full_name], run=False))
        if cmd.full_name in KNOWN_HANGS
        else cmd
        for cmd in ENTRIES
    ],
    ids=[cmd.full_name for cmd in ENTRIES],
)
def test_random_arguments_get_a_reply_and_touch_no_other_key(cmd: Command) -> None:
    servers = Servers(cmd)
    examples = EXAMPLES if servers.shared else max(EXAMPLES // 3, 1)

    @settings(FUZZ, max_examples=examples)
    @given(requests(cmd.full_name, cmd.arity), st.sampled_from([2, 3]))
    def fuzz(argv: list[str], resp: int) -> None:
        run_one(servers, cmd, argv, resp)

    try:
        fuzz()
    finally:
        servers.close()


def test_every_command_of_the_table_is_fuzzed_or_excluded_with_a_reason() -> None:
    names = {cmd.full_name for cmd in table_entries()}
    assert set(EXCLUDED) <= names, "an exclusion names no command"
    assert {cmd.full_name for cmd in ENTRIES} == names - set(EXCLUDED)
    assert len(ENTRIES) > 200
