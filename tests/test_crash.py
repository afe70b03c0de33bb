"""Real crashes: a child process publishing snapshots is SIGKILLed at random moments.

Whatever instant the kill lands on (encoding, writing the temporary file,
fsync, rename, directory fsync, pruning), reopening the directory must give a
complete snapshot: the last one the child acknowledged, or the one it was
publishing if the rename had already happened. Never a torn or mixed one, and
never an error. This covers a killed process; power loss (unsynced data
dropped by the disk) is the business of the fsync calls in FileMedium.
"""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import snapkv

KILLS = int(os.environ.get("SNAPKV_CRASH_KILLS", "24"))
# Few keys with large values: most of each cycle is then spent publishing
# (writing and fsyncing ~5 MB), so most kills land inside a publish.
KEYS = 200
REPEAT = 4_000
#: Bounds a hang only: the parent goes on at each line the child prints.
DEADLINE = 60.0

# Publishes generation after generation; every entry of generation g has the
# value "g|" * REPEAT, so a snapshot mixing two generations is detected. "O"
# says it is opening the directory, "R" that it is open; a number on stdout
# acknowledges that save() returned for that generation.
WRITER = f"""
import sys
import snapkv

print("O", flush=True)
store = snapkv.open(sys.argv[1], keep=1, journal=False)
print("R", flush=True)
generation = int(store.get("generation", "0"))
while True:
    generation += 1
    value = f"{{generation}}|" * {REPEAT}
    store.update({{f"key:{{i}}|\\u00e9": value for i in range({KEYS})}})
    store["generation"] = str(generation)
    store.save()
    print(generation, flush=True)
"""


class Child:
    """The writer in a child process, and its output read line by line with a deadline."""

    def __init__(self, directory: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(directory)], stdout=subprocess.PIPE
        )
        assert self.process.stdout is not None
        self._fd = self.process.stdout.fileno()
        self._pending = b""
        self.acknowledged = 0

    def line(self) -> str:
        """The next line the child prints (an acknowledgement is also recorded)."""
        deadline = time.monotonic() + DEADLINE
        while b"\n" not in self._pending:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._fd], [], [], max(0.0, left))
            assert ready, f"the writer printed nothing for {DEADLINE} s"
            chunk = os.read(self._fd, 4096)
            assert chunk, "the writer died before it was killed"
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        text = line.decode()
        if text.isdigit():
            self.acknowledged = int(text)
        return text

    def kill(self) -> int:
        """SIGKILL the child; return its last acknowledged generation (0: none)."""
        self.process.send_signal(signal.SIGKILL)
        rest, _ = self.process.communicate(timeout=DEADLINE)
        assert self.process.returncode == -signal.SIGKILL
        for line in (self._pending + rest).decode().split():
            if line.isdigit():  # acknowledged before the kill, read only now
                self.acknowledged = int(line)
        return self.acknowledged


def _kill_after(directory: Path, rng: random.Random, *, marker: str, acks: int = 0) -> int:
    """Run the writer; SIGKILL it at a random moment after a point it announced.

    The point is ``marker`` ("O": opening, "R": open), or the ``acks``-th
    acknowledged save; the kill follows after a random fraction of the time
    one save cycle took, so it lands anywhere in the next step, however fast
    the machine. Returns the last acknowledged generation.
    """
    child = Child(directory)
    try:
        assert child.line() == "O"
        if marker != "O":
            assert child.line() == "R"
        started, cycle = time.monotonic(), 0.3  # until one is measured
        for _ in range(acks):
            child.line()
            cycle, started = time.monotonic() - started, time.monotonic()
        time.sleep(rng.uniform(0.0, cycle))  # where in the step: the randomness under test
    finally:
        acknowledged = child.kill()
    return acknowledged


def test_a_killed_publisher_leaves_a_complete_snapshot(tmp_path: Path) -> None:
    rng = random.Random(20261127)
    acknowledged = 0
    for kill in range(KILLS):
        # Mostly inside a save; now and then while opening (cleanup, restore).
        marker, acks = ("R", rng.randint(1, 2)) if kill % 4 else (rng.choice("OR"), 0)
        acknowledged = max(acknowledged, _kill_after(tmp_path, rng, marker=marker, acks=acks))
        with snapkv.open(tmp_path, journal=False) as store:
            report = store.last_restore
            assert report is not None and report.skipped == ()
            generation = int(store.get("generation", "0"))
            # The rename may have happened just before the kill, unacknowledged.
            assert generation in (acknowledged, acknowledged + 1)
            assert len(store) == (KEYS + 1 if generation else 0)
            expected = f"{generation}|" * REPEAT
            assert all(store[key] == expected for key in store if key != "generation")
            acknowledged = generation
            # The context manager publishes once more (same contents).
        assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp-")]


def test_every_retained_generation_after_kills_is_whole(tmp_path: Path) -> None:
    rng = random.Random(5)
    for acks in (1, 2, 3):
        _kill_after(tmp_path, rng, marker="R", acks=acks)  # after that many acknowledged saves
    with snapkv.open(tmp_path, journal=False) as store:
        medium = store.medium
        assert medium.generations()
        for generation in medium.generations():
            blob = medium.read(generation)
            assert blob is not None
            snapkv.codec.decode(blob)  # raises CorruptSnapshotError if torn
