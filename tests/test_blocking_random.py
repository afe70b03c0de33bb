"""Random programs of blocking pops and writes, played on snapkv and on redis-server.

Each seed makes one program: a few clients that, whenever idle, send a
random blocking pop (every form, over a small set of keys, waiting
forever), and a writer that sends random writes (pushes, ZADD, moves,
DEL, SET, RENAME, transactions that push and pop). After each step the
servers' lists of blocked clients (CLIENT LIST's ``b`` flag) say who was
served; their replies are read, and every reply, the list of who waits
and the final data must be the same on both servers.

Who is blocked is read from the server, not guessed: a request just sent
may not have been read yet, so a client is waited for until it is either
blocked or answered (the socket is readable), whichever the server decides.
"""

from __future__ import annotations

import random
import select
import time
from typing import Any

import pytest

from test_blocking_e2e import DEADLINE, Conn, Session, both  # noqa: F401 - fixture

KEYS = ["a", "b", "c"]
STEPS = 30


def _blocked_ids(s: Session) -> set[str]:
    listing = s.ctl("CLIENT", "LIST").decode()
    blocked = set()
    for line in listing.split("\n"):
        fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
        if "b" in fields.get("flags", ""):
            blocked.add(fields["id"])
    return blocked


def _readable(conn: Conn) -> bool:
    return bool(conn.buf) or bool(select.select([conn.sock], [], [], 0)[0])


def _pop_request(rng: random.Random) -> list[str]:
    keys = rng.sample(KEYS, rng.randint(1, 2))
    form = rng.choice(["blpop", "brpop", "blmpop", "blmove", "brpoplpush", "bzpop", "bzmpop"])
    if form in ("blpop", "brpop"):
        return [form.upper(), *keys, "0"]
    if form == "blmpop":
        end = rng.choice(["LEFT", "RIGHT"])
        return ["BLMPOP", "0", str(len(keys)), *keys, end, "COUNT", str(rng.randint(1, 3))]
    if form == "blmove":
        ends = [rng.choice(["LEFT", "RIGHT"]) for _ in range(2)]
        return ["BLMOVE", keys[0], rng.choice(KEYS), *ends, "0"]
    if form == "brpoplpush":
        return ["BRPOPLPUSH", keys[0], rng.choice(KEYS), "0"]
    if form == "bzpop":
        return [rng.choice(["BZPOPMIN", "BZPOPMAX"]), *keys, "0"]
    end = rng.choice(["MIN", "MAX"])
    return ["BZMPOP", "0", str(len(keys)), *keys, end, "COUNT", str(rng.randint(1, 3))]


def _writes(rng: random.Random, step: int) -> list[list[str]]:
    key = rng.choice(KEYS)
    values = [f"v{step}.{i}" for i in range(rng.randint(1, 3))]
    kind = rng.choice(
        ["rpush", "rpush", "lpush", "zadd", "zadd", "lmove", "del", "set", "rename", "multi"]
    )
    if kind == "rpush":
        return [["RPUSH", key, *values]]
    if kind == "lpush":
        return [["LPUSH", key, *values]]
    if kind == "zadd":
        pairs = [x for i, v in enumerate(values) for x in (str(step * 10 + i), v)]
        return [["ZADD", key, *pairs]]
    if kind == "lmove":
        return [["LMOVE", key, rng.choice(KEYS), "LEFT", "RIGHT"]]
    if kind == "del":
        return [["DEL", key]]
    if kind == "set":
        return [["SET", key, "string"]]
    if kind == "rename":
        return [["RENAME", key, rng.choice(KEYS)]]
    return [["MULTI"], ["RPUSH", key, *values], ["RPOP", key], ["EXEC"]]


def _program(seed: int) -> Any:
    def scenario(s: Session) -> None:
        rng = random.Random(seed)
        waiters = [s.conn(resp=rng.choice([2, 3])) for _ in range(3)]
        ids = [conn("CLIENT", "ID").decode()[1:-2] for conn in waiters]
        waiting = [False] * len(waiters)
        for step in range(STEPS):
            for i, conn in enumerate(waiters):
                if waiting[i] or rng.random() < 0.3:
                    continue
                conn.send(*_pop_request(rng))
                deadline = time.monotonic() + DEADLINE
                while True:  # answered at once, or blocked: the server decides
                    if _readable(conn):
                        s.note(b"%d at once: %s" % (i, conn.read()))
                        break
                    if ids[i] in _blocked_ids(s):
                        waiting[i] = True
                        break
                    assert time.monotonic() < deadline, "neither answered nor blocked"
            for argv in _writes(rng, step):
                s.write(*argv)
            blocked = _blocked_ids(s)
            for i, conn in enumerate(waiters):
                if waiting[i] and ids[i] not in blocked:
                    s.note(b"%d served: %s" % (i, conn.read()))
                    waiting[i] = False
            s.note(repr(waiting).encode())
        for key in KEYS:
            s.write("TYPE", key)
            kind = s.ctl("TYPE", key)
            if kind == b"+list\r\n":
                s.write("LRANGE", key, "0", "-1")
            elif kind == b"+zset\r\n":
                s.write("ZRANGE", key, "0", "-1", "WITHSCORES")

    return scenario


@pytest.mark.parametrize("seed", range(40))
def test_random_programs_match_redis(both: Any, seed: int) -> None:  # noqa: F811 - the fixture
    both(_program(seed))
