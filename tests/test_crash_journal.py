"""Real crashes of a journaled store: SIGKILL at random moments, transactions included.

Kills: a child process writes with ``journal=True`` and ``fsync="always"``
or ``"everysec"`` (every other child), and
reports each operation to the parent over a pipe, first the operation
(``W``), then its acknowledgement (``A``) once the call returned. It also
saves, shuts down and restores, and its small ``compact_min_bytes`` makes
the store compact in the background; it prints a marker before each of
those, so the parent can aim kills into them. The parent SIGKILLs it at a
random moment, reopens the directory and checks that the store opens and
holds exactly the acknowledged writes, plus possibly the one in flight:
every keyspace, every value, every expiry time. Then the next child
continues in the same directory.

Transactions: children that mostly run large transactions (up to 120
writes across keyspaces, values of up to ~2 kB, one in five rolled back)
are killed while a block runs ("T") and while it commits ("W" lists its
writes once all are made): after reopening, each transaction is there
whole or not at all, and a rolled-back one never.

Children are forked from one pre-started interpreter (a fork server), so a
kill costs a fork instead of an interpreter start-up and the default run
affords hundreds of kills. The fork server also delivers the kills: it owns
the child, so no kill can ever reach a recycled process id.
``SNAPKV_CRASH_KILLS`` sets the number of kills (default 200).

Damaged journal files (cut, zero-filled, bit-flipped) are
``test_store_journal.py``'s.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import snapkv
from support import State, dump

KILLS = int(os.environ.get("SNAPKV_CRASH_KILLS", "200"))
TX_KILLS = max(1, KILLS // 4)
WORKERS = 2
DATABASES = 4
SRC = Path(__file__).resolve().parent.parent / "src"

# The fork server. Commands on stdin: "run DIR SEED FOCUS DEADLINE" forks a
# child writer; the server kills it with SIGKILL at DEADLINE seconds, or at
# once when the next line ("kill") arrives, then reaps it and prints
# "X <wait status>". The child's lines and the "X" share stdout; "X" starts
# with a newline, so a line the kill cut short stays on a line of its own.
SERVER = r'''
import json, os, random, select, signal, sys, threading, time, traceback

import snapkv

KEYS = [f"k{i}" for i in range(16)] + ["", "é", "\ud800", "a|b:c", "😀"]
BIG_KEYS = ["big0", "big1", "big2", "big3"]
FAR = 3_600_000  # expiry times an hour or more ahead: nothing expires during the test


def say(*parts):
    os.write(1, (" ".join(parts) + "\n").encode("ascii"))


def text(rng, n):
    return "".join(rng.choice("abcxyz\x00|:é😀\ud800") for _ in range(n))


def later(rng):
    return int(time.time() * 1000) + FAR + rng.randrange(10**6)


def choose(rng, store, focus):
    db = rng.randrange(4)
    key = rng.choice(KEYS)
    other = rng.choice([n for n in range(4) if n != db])
    if focus == "compaction" and rng.random() < 0.7:
        # Large records into a few keys: the journal outgrows the snapshot fast.
        big = {rng.choice(BIG_KEYS): "x" * rng.randint(500, 1500) for _ in range(2)}
        return ["update", 3, big]
    roll = rng.random()
    if roll < 0.35:
        return ["set", db, key, text(rng, rng.randint(0, 30)), 0 if roll < 0.28 else later(rng)]
    if roll < 0.5:
        pairs = {rng.choice(KEYS): text(rng, rng.randint(0, 20)) for _ in range(rng.randint(1, 4))}
        return ["update", db, pairs]
    if roll < 0.65:
        return ["del", db, key]
    if roll < 0.72:
        return ["expire_at", db, key, 1000 if rng.random() < 0.3 else later(rng)]
    if roll < 0.77:
        return ["persist", db, key]
    if roll < 0.85:
        present = list(store.db(db).keys())
        return ["rename", db, rng.choice(present), key] if present else ["del", db, key]
    if roll < 0.92:
        return ["move", db, key, other]
    if roll < 0.95:
        return ["swap", db, other]
    if roll < 0.99:
        return ["clear", db]
    return ["flush_all"]


def apply(store, op):
    kind, args = op[0], op[1:]
    if kind == "flush_all":
        return store.flush_all()
    if kind == "swap":
        return store.swap(*args)
    space = store.db(args[0])
    if kind == "set":
        _, key, value, at = args
        return space.set(key, value) if not at else space.set(key, value, expire_at=at / 1000)
    if kind == "update":
        return space.update(args[1])
    if kind == "del":
        return space.delete(args[1])
    if kind == "expire_at":
        return space.expire_at(args[1], args[2] / 1000)
    if kind == "persist":
        return space.persist(args[1])
    if kind == "rename":
        return space.rename(args[1], args[2])
    if kind == "move":
        return space.move(args[1], args[2])
    if kind == "clear":
        return space.clear()
    raise ValueError(kind)


class Abort(Exception):
    pass


def transaction(rng, store):
    """A large transaction of random writes; "W" lists them once all are made, before commit."""
    abort = rng.random() < 0.2
    ops = []
    try:
        with store.transaction():
            say("T")
            for _ in range(rng.randint(1, 120)):
                if rng.random() < 0.3:  # large values: a record of up to ~200 kB
                    value = text(rng, 8) * rng.randint(25, 250)
                    op = ["set", rng.randrange(4), rng.choice(KEYS), value, 0]
                else:
                    op = choose(rng, store, "writes")
                apply(store, op)  # chosen from what the block sees, as the parent replays it
                ops.append(op)
            say("W", json.dumps(["tx", ops, abort]))
            if abort:
                raise Abort
    except Abort:
        pass
    say("A")


def compactions():
    return [t for t in threading.enumerate() if t.name == "snapkv-compaction"]


def child(directory, seed, focus):
    rng = random.Random(seed)
    p_save = 0.25 if focus == "save" else 0.01
    p_shutdown = 0.25 if focus == "shutdown" else 0.01
    try:
        say("O")
        # Half the children sync nothing themselves (everysec, the default):
        # a killed process loses no acknowledged write under either policy,
        # since every record is in the page cache (the journal's shared
        # mapping) before set returns.
        store = snapkv.open(
            directory, journal=True, fsync="always" if seed % 2 else "everysec",
            databases=4, compact_min_bytes=8192, compact_ratio=1.0,
        )
        say("R")
        compacting = False
        while True:
            roll = rng.random()
            if roll < p_save:
                say("S")
                store.save()
                say("s")
            elif roll < p_save + p_shutdown:
                say("D")
                store.shutdown()
                say("d")
                store.restore()
                say("r")
            elif focus == "transactions" and rng.random() < 0.8:
                transaction(rng, store)
            else:
                op = choose(rng, store, focus)
                say("W", json.dumps(op))
                apply(store, op)
                say("A")
            failed = store.last_compaction_error
            if failed is not None and not isinstance(failed, snapkv.StoreShutDownError):
                raise failed  # a compaction may lose the race to a shutdown, nothing more
            now = bool(compactions())
            if now != compacting:
                compacting = now
                say("C" if now else "c")
    except BaseException:
        say("E", json.dumps(traceback.format_exc()))
    finally:
        os._exit(3)


pending = b""


def command(timeout):
    """The next line on stdin; None when ``timeout`` passed first, b"" at end of input."""
    global pending
    deadline = time.monotonic() + timeout
    while b"\n" not in pending:
        ready, _, _ = select.select([0], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            return None
        chunk = os.read(0, 4096)
        if not chunk:
            return b""
        pending += chunk
    line, _, pending = pending.partition(b"\n")
    return line


while True:
    line = command(3600)
    if not line:
        break
    words = line.decode().split()
    if words[0] != "run":
        continue  # a "kill" that arrived after its child was already gone
    _, directory, seed, focus, deadline = words
    pid = os.fork()
    if pid == 0:
        child(directory, int(seed), focus)
    answer = command(float(deadline))
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    os.write(1, b"\nX %d\n" % status)
    if answer == b"":
        break
'''

# How the parent aims each kill: the focus the child runs with, and the
# line after which the parent asks for the kill (after a random delay).
AIMS = {
    "writes": ("writes", "A"),
    "timed": ("writes", None),  # the fork server kills at a random deadline
    "open": ("writes", "O"),
    "save": ("save", "S"),
    "shutdown": ("shutdown", "D"),
    "restore": ("shutdown", "d"),
    "compaction": ("compaction", "C"),
}
#: Kills aimed into transactions: while the block runs, and while it commits.
TX_AIMS = {
    "tx-build": ("transactions", "T"),
    "tx-commit": ("transactions", "W"),
    "tx-timed": ("transactions", None),
}
#: The phase a child is in after printing each marker.
PHASES = {"O": "open", "R": "write", "S": "save", "s": "write", "D": "shutdown"}
PHASES.update({"d": "restore", "r": "write", "W": "write", "A": "write", "T": "transaction"})


# -------------------------------------------------------------------- model


class Model:
    """The store's contents as the acknowledged operations leave them (no key expires)."""

    def __init__(self, state: State | None = None) -> None:
        self.spaces: list[dict[str, tuple[str, int]]] = [{} for _ in range(DATABASES)]
        for number, space in (state or {}).items():
            self.spaces[number] = dict(space)

    def copy(self) -> Model:
        return Model(self.state())

    def state(self) -> State:
        return {n: dict(space) for n, space in enumerate(self.spaces) if space}

    def apply(self, op: list[Any]) -> None:
        kind, args = op[0], op[1:]
        if kind == "flush_all":
            for space in self.spaces:
                space.clear()
            return
        if kind == "swap":
            a, b = args
            self.spaces[a], self.spaces[b] = self.spaces[b], self.spaces[a]
            return
        if kind == "tx":
            ops, aborted = args
            if not aborted:
                for each in ops:
                    self.apply(each)
            return
        space = self.spaces[args[0]]
        if kind == "set":
            space[args[1]] = (args[2], args[3])
        elif kind == "update":
            space.update({key: (value, 0) for key, value in args[1].items()})
        elif kind == "del":
            space.pop(args[1], None)
        elif kind == "expire_at" and args[1] in space:
            if args[2] <= time.time() * 1000:
                del space[args[1]]
            else:
                space[args[1]] = (space[args[1]][0], args[2])
        elif kind == "persist" and args[1] in space:
            space[args[1]] = (space[args[1]][0], 0)
        elif kind == "rename":
            space[args[2]] = space.pop(args[1])
        elif kind == "move":
            target = self.spaces[args[2]]
            if args[1] in space and args[1] not in target:
                target[args[1]] = space.pop(args[1])
        elif kind == "clear":
            space.clear()


def difference(got: State, want: State) -> str:
    """A short account of how ``got`` differs from ``want``, for failure messages."""
    lines = []
    for number in sorted(set(got) | set(want)):
        mine, theirs = got.get(number, {}), want.get(number, {})
        for key in sorted(set(mine) | set(theirs)):
            if mine.get(key) != theirs.get(key):
                shown = [(s[0][:20], s[1]) if s else None for s in (mine.get(key), theirs.get(key))]
                lines.append(f"db {number} {key[:20]!r}: got {shown[0]}, want {shown[1]}")
    return "; ".join(lines[:6]) + (f"; {len(lines) - 6} more" if len(lines) > 6 else "")


# -------------------------------------------------------------------- kills


@dataclass
class Tally:
    """What the kills hit, for the checks that the run proved something."""

    kills: int = 0
    phases: Counter[str] = field(default_factory=Counter)
    compacting: int = 0
    in_flight_kept: int = 0
    in_flight_lost: int = 0
    acknowledged: int = 0


class Killer:
    """One directory, one fork server, many kills; the model follows the acknowledged writes."""

    def __init__(
        self, directory: Path, seed: int, errors: Path, aims: dict[str, tuple[str, str | None]]
    ) -> None:
        self.directory = directory
        self.aims = aims
        self.rng = random.Random(seed)
        self.model = Model()
        self.tally = Tally()
        env = {**os.environ, "PYTHONPATH": str(SRC)}
        self._stderr = errors.open("wb")
        self.server = subprocess.Popen(
            [sys.executable, "-c", SERVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
            text=True,
            bufsize=1,
        )
        self.errors = errors

    def close(self) -> None:
        assert self.server.stdin is not None and self.server.stdout is not None
        self.server.stdin.close()  # the fork server ends at the end of its input
        self.server.wait(timeout=60)
        self.server.stdout.close()
        self._stderr.close()

    def _send(self, line: str) -> None:
        assert self.server.stdin is not None
        self.server.stdin.write(line + "\n")
        self.server.stdin.flush()

    def _fail(self, message: str) -> AssertionError:
        tail = self.errors.read_text(errors="replace")[-3000:]
        return AssertionError(f"{self.directory.name}: {message}\nchild stderr:\n{tail}")

    def round(self) -> None:
        """Start a child, kill it at a chosen moment, reopen and check."""
        aim = self.rng.choice(list(self.aims))
        focus, trigger = self.aims[aim]
        deadline = self.rng.uniform(0.0, 0.3) if trigger is None else 30.0
        acks_wanted = self.rng.randint(0, 25)
        nth = 1 if trigger == "O" else self.rng.randint(1, 2)
        delay = self.rng.choice([0.0, self.rng.uniform(0.0, 0.03)])
        self._send(f"run {self.directory} {self.rng.getrandbits(32)} {focus} {deadline}")

        assert self.server.stdout is not None
        asked = trigger is None
        seen = acks = 0
        in_flight: list[Any] | None = None
        phase, compacting, partial, error = "start", False, False, ""
        while True:
            line = self.server.stdout.readline()
            if not line:
                raise self._fail("the fork server died")
            tag, _, rest = line.rstrip("\n").partition(" ")
            if not tag:
                continue
            if tag == "X":
                status = int(rest)
                break
            if partial:
                raise self._fail(f"a cut-short line was followed by {line!r}")
            if tag == "W":
                try:
                    in_flight = json.loads(rest)
                except ValueError:
                    partial = True  # the kill cut the line: that write never started
                    continue
            elif tag == "A":
                assert in_flight is not None
                self.model.apply(in_flight)
                in_flight = None
                acks += 1
            elif tag == "E":
                error = json.loads(rest)
            elif tag in ("C", "c"):
                compacting = tag == "C"
            elif tag not in PHASES:
                partial = True
                continue
            phase = PHASES.get(tag, phase)
            if tag == "W" and in_flight is not None and in_flight[0] == "tx":
                phase = "commit"  # every write of the block made, its record not yet
            if asked:
                continue
            if trigger == "A":  # after a number of acknowledged writes, 0 meaning "at once"
                fire = (tag == "R" and acks_wanted == 0) or (tag == "A" and acks >= acks_wanted)
            else:
                seen += tag == trigger
                fire = tag == trigger and seen >= nth
            if fire or acks > 80 or error:
                time.sleep(delay)  # how far past the marker the kill lands: randomness under test
                self._send("kill")
                asked = True
        if error:
            raise self._fail(f"the child failed:\n{error}")
        if not (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL):
            raise self._fail(f"the child was not killed but ended with wait status {status}")
        self.tally.kills += 1
        self.tally.phases[phase] += 1
        self.tally.compacting += compacting
        self.tally.acknowledged += acks
        self.check(in_flight, f"{aim} kill in {phase}")

    def check(self, in_flight: list[Any] | None, where: str) -> None:
        """Reopen: exactly the acknowledged writes, plus perhaps the one in flight."""
        acknowledged = self.model.state()
        with_it = None
        if in_flight is not None:
            model = self.model.copy()
            model.apply(in_flight)
            with_it = model.state()
        store = snapkv.open(self.directory, journal=True, databases=DATABASES)
        try:
            got = dump(store)
        finally:
            if self.rng.random() < 0.3:
                store.__exit__(None, None, None)  # shutdown (publish) and close
            else:
                store.close()
        if got == acknowledged:
            self.tally.in_flight_lost += in_flight is not None
        elif got == with_it:
            self.tally.in_flight_kept += 1
            self.model = Model(got)
        else:
            raise self._fail(f"after a {where}: {difference(got, acknowledged)}")


def run_killers(
    tmp_path: Path, kills: int, seed: int, aims: dict[str, tuple[str, str | None]]
) -> Tally:
    """``kills`` rounds over WORKERS directories at once; what the kills hit, summed."""
    rounds = [kills // WORKERS + (i < kills % WORKERS) for i in range(WORKERS)]
    killers = [
        Killer(tmp_path / f"store-{i}", seed + i, tmp_path / f"stderr-{i}", aims)
        for i in range(WORKERS)
    ]

    def work(killer: Killer, count: int) -> Tally:
        try:
            for _ in range(count):
                killer.round()
        finally:
            killer.close()
        return killer.tally

    with ThreadPoolExecutor(WORKERS) as pool:
        tallies = list(pool.map(work, killers, rounds))
    total = Tally()
    for tally in tallies:
        total.kills += tally.kills
        total.phases.update(tally.phases)
        total.compacting += tally.compacting
        total.in_flight_kept += tally.in_flight_kept
        total.in_flight_lost += tally.in_flight_lost
        total.acknowledged += tally.acknowledged
    return total


def test_killed_writers_lose_no_acknowledged_write(tmp_path: Path) -> None:
    total = run_killers(tmp_path, KILLS, 20261127, AIMS)
    # The aims must have hit what they aimed at, at least once each; and
    # acknowledged writes must have been at stake.
    assert {"open", "save", "shutdown", "restore", "write"} <= set(total.phases), total
    assert total.compacting > 0, total
    assert total.acknowledged > KILLS, total


def test_a_killed_transaction_is_all_there_or_not_at_all(tmp_path: Path) -> None:
    # The check after each kill is the acknowledged state, or that state with
    # the whole transaction in flight: a part of one matches neither.
    total = run_killers(tmp_path, TX_KILLS, 7, TX_AIMS)
    assert {"transaction", "commit"} <= set(total.phases), total
    assert total.in_flight_lost > 0 and total.acknowledged > TX_KILLS, total
