"""Real crashes of a store holding hashes, lists, sets and sorted sets; damaged journals of them.

Kills: a child process opens ``snapkv.open(dir, fsync="always")`` with a
small compaction threshold, and writes through the views
(``store.db(n).hashes[k][f] = v``, ``lists[k].extend(...)``,
``zsets[k].update(...)``, ...), renames, moves, expiry times and saves, so
its journal holds EDIT, PUT and RENAME records (BATCH too, for moves) and
its snapshots are format v3. It reports each operation to the parent over
a pipe: first the operation (``W``), then its acknowledgement (``A``) once
the call returned; it prints ``S`` before a save. The parent SIGKILLs it at
a random moment (after some acknowledgements, or inside a save), reopens
the directory and checks that the store holds exactly the acknowledged
writes, plus possibly the one in flight: every keyspace, every key's type,
elements and expiry time, as a model computes them. The next child
continues in the same directory. ``SNAPKV_CRASH_TYPES_KILLS`` sets the
number of kills (default 16).

Damage: every cut and every single-bit flip of a journal of these records
reads as a prefix of its records or fails with CorruptJournalError, never
another exception and never other records.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import snapkv
from snapkv import journal as jr
from snapkv.errors import CorruptJournalError

KILLS = int(os.environ.get("SNAPKV_CRASH_TYPES_KILLS", "16"))
DATABASES = 3
SRC = Path(__file__).resolve().parent.parent / "src"

CHILD = r"""
import json, math, os, random, signal, sys, time, traceback

import snapkv

rng = random.Random()
TEXT = "abxyz\x00|é😀\ud800"
KINDS = "hlsz"
FAR = 3_600_000


def say(*parts):
    os.write(1, (" ".join(parts) + "\n").encode("ascii"))


def text(n):
    return "".join(rng.choice(TEXT) for _ in range(n))


def key(kind):
    return kind + str(rng.randrange(5))


def choose(store):
    db = rng.randrange(3)
    kind = rng.choice(KINDS)
    k = key(kind)
    roll = rng.random()
    if roll < 0.06:
        return ["del", db, k]
    if roll < 0.1:
        return ["rename", db, k, key(kind)]
    if roll < 0.13:
        return ["move", db, k, (db + 1 + rng.randrange(2)) % 3]
    if roll < 0.17:
        return ["expire_at", db, k, int(time.time() * 1000) + FAR + rng.randrange(10**6)]
    if roll < 0.19:
        return ["persist", db, k]
    many = rng.random() < 0.1  # now and then a value of hundreds of elements
    size = rng.randint(50, 400) if many else rng.randint(1, 4)
    if kind == "h":
        if rng.random() < 0.7:
            return ["hset", db, k, {text(3): text(rng.randint(0, 6)) for _ in range(size)}]
        return ["hdel", db, k, [text(3) for _ in range(3)] + ["a", "b"]]
    if kind == "l":
        r = rng.random()
        if r < 0.4:
            return ["push", db, k, [text(3) for _ in range(size)], rng.random() < 0.5]
        if r < 0.6:
            return ["pop", db, k, rng.random() < 0.5]
        if r < 0.7:
            return ["lset", db, k, rng.randrange(6), text(2)]
        if r < 0.8:
            return ["lrem", db, k, rng.choice(TEXT), rng.randint(-2, 2)]
        if r < 0.9:
            return ["ltrim", db, k, rng.randrange(3), rng.randrange(8)]
        return ["linsert", db, k, rng.randrange(5), text(2)]
    if kind == "s":
        if rng.random() < 0.7:
            return ["sadd", db, k, [text(2) for _ in range(size)]]
        return ["srem", db, k, [text(2) for _ in range(4)]]
    if rng.random() < 0.7:
        scores = [rng.choice([rng.uniform(-5, 5), math.inf, -math.inf, 0.0]) for _ in range(size)]
        return ["zadd", db, k, {text(2): s for s in scores}]
    return ["zrem", db, k, [text(2) for _ in range(4)]]


def apply(store, op):
    kind, db, k = op[0], op[1], op[2]
    space = store.db(db)
    if kind == "del":
        space.delete(k)
    elif kind == "rename":
        try:
            space.rename(k, op[3])
        except KeyError:
            pass
    elif kind == "move":
        space.move(k, op[3])
    elif kind == "expire_at":
        space.expire_at(k, op[3] / 1000)
    elif kind == "persist":
        space.persist(k)
    elif kind == "hset":
        space.hashes[k].update(op[3])
    elif kind == "hdel":
        space.hashes[k].delete_many(op[3])
    elif kind == "push":
        (space.lists[k].extendleft if op[4] else space.lists[k].extend)(op[3])
    elif kind == "pop":
        try:
            space.lists[k].popleft() if op[3] else space.lists[k].pop()
        except IndexError:
            pass
    elif kind == "lset":
        try:
            space.lists[k].set_at(op[3], op[4])
        except KeyError:
            pass
    elif kind == "lrem":
        space.lists[k].remove(op[3], op[4])
    elif kind == "ltrim":
        space.lists[k].trim(op[3], op[4])
    elif kind == "linsert":
        if space.lists[k].exists():
            space.lists[k].insert(op[3], op[4])
    elif kind == "sadd":
        space.sets[k].add_many(op[3])
    elif kind == "srem":
        space.sets[k].remove_many(op[3])
    elif kind == "zadd":
        space.zsets[k].update(op[3])
    elif kind == "zrem":
        space.zsets[k].remove(*op[3])
    else:
        raise ValueError(kind)


def child(directory):
    try:
        store = snapkv.open(
            directory, fsync="always", databases=3, compact_min_bytes=16384, compact_ratio=1.0
        )
        say("R")
        while True:
            if rng.random() < 0.03:
                say("S")
                store.save()
                say("s")
                continue
            op = choose(store)
            say("W", json.dumps(op))
            apply(store, op)
            say("A")
    except BaseException:
        say("E", json.dumps(traceback.format_exc()))
    finally:
        os._exit(3)


# The fork server: "run DIR SEED" forks a writer; the next line ("kill")
# makes the server SIGKILL it, reap it and print "X <wait status>" on a
# line of its own (a line the kill cut short stays apart). The server owns
# the child, so no kill can reach a recycled process id.
for line in sys.stdin:
    _, directory, seed = line.split()
    rng.seed(int(seed))
    pid = os.fork()
    if pid == 0:
        child(directory)
    sys.stdin.readline()
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    os.write(1, b"\nX %d\n" % status)
"""

#: db -> key -> (kind, data, expiry in ms or 0); data: dict (hash, zset scores), list, set.
State = dict[int, dict[str, tuple[str, Any, int]]]


class Model:
    """What the acknowledged operations leave, by the semantics each view documents."""

    def __init__(self, state: State | None = None) -> None:
        self.spaces: list[dict[str, list[Any]]] = [{} for _ in range(DATABASES)]
        for db, space in (state or {}).items():
            self.spaces[db] = {k: [kind, _copy(data), at] for k, (kind, data, at) in space.items()}

    def state(self) -> State:
        return {
            db: {k: (kind, _copy(data), at) for k, (kind, data, at) in space.items()}
            for db, space in enumerate(self.spaces)
            if space
        }

    def _value(self, db: int, key: str, kind: str, empty: Any) -> Any:
        entry = self.spaces[db].get(key)
        if entry is None:
            return _copy(empty)
        return entry[1]

    def _store(self, db: int, key: str, kind: str, data: Any) -> None:
        space = self.spaces[db]
        if not data:
            space.pop(key, None)
        elif key in space:
            space[key][1] = data
        else:
            space[key] = [kind, data, 0]

    def apply(self, op: list[Any]) -> None:
        kind, db, key = op[0], op[1], op[2]
        space = self.spaces[db]
        if kind == "del":
            space.pop(key, None)
        elif kind == "rename":
            if key in space and key != op[3]:
                space[op[3]] = space.pop(key)
        elif kind == "move":
            target = self.spaces[op[3]]
            if key in space and key not in target:
                target[key] = space.pop(key)
        elif kind == "expire_at":
            if key in space:
                space[key][2] = op[3]
        elif kind == "persist":
            if key in space:
                space[key][2] = 0
        elif kind in ("hset", "hdel"):
            data = self._value(db, key, "hash", {})
            if kind == "hset":
                data.update(op[3])
            else:
                for field in op[3]:
                    data.pop(field, None)
            self._store(db, key, "hash", data)
        elif kind in ("sadd", "srem"):
            data = self._value(db, key, "set", set())
            (data.update if kind == "sadd" else data.difference_update)(op[3])
            self._store(db, key, "set", data)
        elif kind in ("zadd", "zrem"):
            data = self._value(db, key, "zset", {})
            if kind == "zadd":
                data.update({m: s + 0.0 for m, s in op[3].items()})
            else:
                for member in op[3]:
                    data.pop(member, None)
            self._store(db, key, "zset", data)
        else:
            self._apply_list(op)

    def _apply_list(self, op: list[Any]) -> None:
        kind, db, key = op[0], op[1], op[2]
        if kind in ("lset", "linsert") and key not in self.spaces[db]:
            return
        data: list[str] = list(self._value(db, key, "list", []))
        if kind == "push":
            data = [*reversed(op[3]), *data] if op[4] else [*data, *op[3]]
        elif kind == "pop" and data:
            data.pop(0 if op[3] else -1)
        elif kind == "lset" and op[3] < len(data):
            data[op[3]] = op[4]
        elif kind == "lrem":
            data = _lrem(data, op[3], op[4])
        elif kind == "ltrim":
            data = data[op[3] : op[4] + 1]
        elif kind == "linsert":
            data.insert(op[3], op[4])
        self._store(db, key, "list", data)


def _lrem(data: list[str], element: str, count: int) -> list[str]:
    """Redis's LREM: the first ``count`` from the head, ``-count`` from the tail, 0 all."""
    order = list(range(len(data))) if count >= 0 else list(reversed(range(len(data))))
    limit = abs(count) or len(data)
    gone = [i for i in order if data[i] == element][:limit]
    return [item for i, item in enumerate(data) if i not in set(gone)]


def _copy(data: Any) -> Any:
    return type(data)(data)


def dump(store: snapkv.Store) -> State:
    """Every key of every keyspace with its type, elements and expiry, read through the views."""
    state: State = {}
    for db in range(store.databases):
        space = store.db(db)
        got: dict[str, tuple[str, Any, int]] = {}
        for key in space:
            kind = space.key_type(key)
            at = space.expiry_ms(key) or 0
            if kind == "hash":
                got[key] = ("hash", space.hashes[key].to_dict(), at)
            elif kind == "list":
                got[key] = ("list", list(space.lists[key].range(0, -1)), at)
            elif kind == "set":
                got[key] = ("set", space.sets[key].to_set(), at)
            elif kind == "zset":
                members = list(space.zsets[key])
                scores = space.zsets[key].scores(members)
                got[key] = ("zset", dict(zip(members, scores, strict=True)), at)
            else:
                raise AssertionError(f"db {db} key {key!r} holds a {kind}")
        if got:
            state[db] = got
    return state


class Killer:
    """One directory, one fork server, many kills; the model follows the acknowledged writes."""

    def __init__(self, directory: Path, seed: int) -> None:
        self.directory = directory
        self.rng = random.Random(seed)
        self.model = Model()
        self.kept = self.lost = self.saves_hit = self.acks = 0
        self.in_flight: list[Any] | None = None
        self.error = ""
        self.round_acks = 0
        self.stderr = (directory.parent / f"{directory.name}.stderr").open("w")
        self.server = subprocess.Popen(
            [sys.executable, "-c", CHILD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            env={**os.environ, "PYTHONPATH": str(SRC)},
            text=True,
            bufsize=1,
        )

    def close(self) -> None:
        assert self.server.stdin is not None and self.server.stdout is not None
        self.server.stdin.close()  # the server ends at the end of its input
        self.server.wait(timeout=60)
        self.server.stdout.close()
        self.stderr.close()

    def _send(self, line: str) -> None:
        assert self.server.stdin is not None
        self.server.stdin.write(line + "\n")
        self.server.stdin.flush()

    def round(self) -> None:
        """Fork a writer, kill it at a chosen moment, reopen and check."""
        acks_wanted = self.rng.randint(0, 60)
        in_save = self.rng.random() < 0.3
        self.in_flight, self.error, self.round_acks = None, "", 0
        self._send(f"run {self.directory} {self.rng.getrandbits(32)}")
        assert self.server.stdout is not None
        asked = False
        while True:
            line = self.server.stdout.readline()
            if not line:
                raise AssertionError(f"the fork server died; see {self.stderr.name}")
            tag = self.read(line)
            if tag == "X":
                break
            if asked:
                continue
            enough = tag in ("R", "A") and self.round_acks >= acks_wanted
            fire = tag == "S" if in_save else enough
            if fire or self.round_acks > 150 or self.error:
                self.saves_hit += tag == "S"
                if self.rng.random() < 0.5:
                    time.sleep(self.rng.uniform(0, 0.005))  # where past the marker it lands
                self._send("kill")
                asked = True
        if self.error:
            raise AssertionError(f"the child failed:\n{self.error}")
        self.acks += self.round_acks
        self.check(self.in_flight)

    def read(self, line: str) -> str:
        """Follow one line of the child's (or the server's "X"); returns its tag.

        A line the kill cut short is on its own line (the "X" line starts with
        a newline): a cut "W" is not JSON, and its write never started.
        """
        tag, _, rest = line.rstrip("\n").partition(" ")
        if tag == "W":
            try:
                self.in_flight = json.loads(rest)
            except ValueError:
                return "cut"
        elif tag == "A":
            assert self.in_flight is not None
            self.model.apply(self.in_flight)
            self.in_flight = None
            self.round_acks += 1
        elif tag == "E":
            self.error = json.loads(rest)
        return tag

    def check(self, in_flight: list[Any] | None) -> None:
        acknowledged = self.model.state()
        with_it = None
        if in_flight is not None:
            model = Model(acknowledged)
            model.apply(in_flight)
            with_it = model.state()
        with snapkv.open(self.directory, databases=DATABASES) as store:
            got = dump(store)
        if got == acknowledged:
            self.lost += in_flight is not None
        elif got == with_it:
            self.kept += 1
            self.model = Model(got)
        else:
            raise AssertionError(_difference(got, acknowledged))


def _difference(got: State, want: State) -> str:
    lines = []
    for db in sorted(set(got) | set(want)):
        mine, theirs = got.get(db, {}), want.get(db, {})
        for key in sorted(set(mine) | set(theirs)):
            if mine.get(key) != theirs.get(key):
                lines.append(f"db {db} {key!r}: got {mine.get(key)}, want {theirs.get(key)}")
    return "; ".join(lines[:5])


def test_sigkill_at_random_moments_loses_no_acknowledged_typed_write(tmp_path: Path) -> None:
    killer = Killer(tmp_path / "store", seed=20_261_207)
    try:
        for _ in range(KILLS):
            killer.round()
    finally:
        killer.close()
    # The run proved something: writes were acknowledged and checked, and the
    # store ended up holding every value type (EDIT records and v3 snapshots replayed).
    assert killer.acks > KILLS * 5
    with snapkv.open(tmp_path / "store", databases=DATABASES) as store:
        kinds = {store.db(db).key_type(k) for db in range(DATABASES) for k in store.db(db)}
    assert kinds >= {"hash", "list", "set", "zset"}
    snapshots = list((tmp_path / "store").glob("*.skv"))
    assert snapshots, "no snapshot was written: compaction and saves never ran"


# ------------------------------------------------------------------ damaged journals


def _journal_of_values() -> tuple[bytes, list[Any]]:
    records = [
        jr.edit_record(0, "h", 1, 1, ["f", "v", "g", "😀"]),
        jr.edit_record(0, "l", 2, 2, ["a", "b", "\ud800"]),
        jr.edit_record(0, "l", 2, 5, [0, 1, "x"]),
        jr.edit_record(1, "z", 4, 1, [float("inf"), "m", -2.5, "n"]),
        jr.put_record(2, "s", 3, ["a", "b"], 1_700_000_000_000),
        jr.rename_record(0, "h", 1, "g"),
        jr.batch_record([jr.edit_record(0, "l", 2, 3, ["x"]), jr.rename_record(1, "z", 2, "z2")]),
        jr.edit_record(2, "s", 3, 2, ["a"]),
    ]
    data = jr.header(5) + b"".join(records)
    ops = jr.scan_journal(data).ops
    assert len(ops) == len(records)
    return data, ops


def test_every_cut_of_a_journal_of_values_keeps_a_prefix_of_its_records() -> None:
    data, ops = _journal_of_values()
    for cut in range(len(data)):
        try:
            scan = jr.scan_journal(data[:cut])
        except CorruptJournalError:
            assert cut < jr.HEADER_SIZE
            continue
        assert scan.ops == ops[: len(scan.ops)]
        assert scan.tail in {"clean", "torn"}


@pytest.mark.parametrize("repair", [False, True], ids=["strict", "repair"])
def test_every_bit_flip_of_a_journal_of_values_is_caught(repair: bool) -> None:
    data, ops = _journal_of_values()
    for bit in range(8 * len(data)):
        damaged = bytearray(data)
        damaged[bit // 8] ^= 1 << bit % 8
        try:
            scan = jr.scan_journal(bytes(damaged), repair=repair)
        except CorruptJournalError:
            continue
        # Accepted only as a prefix: the damaged record and all after it dropped.
        assert scan.ops == ops[: len(scan.ops)] and len(scan.ops) < len(ops), bit
