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
import signal
import subprocess
import sys
import time
from pathlib import Path

import snapkv

KILLS = int(os.environ.get("SNAPKV_CRASH_KILLS", "12"))
# Few keys with large values: most of each cycle is then spent publishing
# (writing and fsyncing ~5 MB), so most kills land inside a publish.
KEYS = 200
REPEAT = 4_000

# Publishes generation after generation; every entry of generation g has the
# value "g|" * REPEAT, so a snapshot mixing two generations is detected. A line on
# stdout acknowledges that save() returned for that generation.
WRITER = f"""
import sys
import snapkv

store = snapkv.open(sys.argv[1], keep=1)
generation = int(store.get("generation", "0"))
while True:
    generation += 1
    value = f"{{generation}}|" * {REPEAT}
    store.update({{f"key:{{i}}|\\u00e9": value for i in range({KEYS})}})
    store["generation"] = str(generation)
    store.save()
    print(generation, flush=True)
"""


def _kill_after(directory: Path, delay: float) -> int:
    """Run the writer, SIGKILL it after ``delay`` s; return its last acknowledged generation."""
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(directory)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(delay)
    finally:
        child.send_signal(signal.SIGKILL)
        output, _ = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL
    acknowledged = [int(line) for line in output.split()]
    return acknowledged[-1] if acknowledged else 0


def test_a_killed_publisher_leaves_a_complete_snapshot(tmp_path: Path) -> None:
    rng = random.Random(20261127)
    acknowledged = 0
    for _ in range(KILLS):
        # Child start-up takes ~0.2 s; the delays land anywhere in the save cycle after it.
        acknowledged = max(acknowledged, _kill_after(tmp_path, rng.uniform(0.15, 0.9)))
        with snapkv.open(tmp_path) as store:
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
    assert acknowledged > 0, "no kill landed after a completed save: the test proved nothing"


def test_every_retained_generation_after_kills_is_whole(tmp_path: Path) -> None:
    for delay in (0.3, 0.6, 0.9):
        _kill_after(tmp_path, delay)
    with snapkv.open(tmp_path) as store:
        medium = store.medium
        assert medium.generations(), "no save completed: the test proved nothing"
        for generation in medium.generations():
            blob = medium.read(generation)
            assert blob is not None
            snapkv.codec.decode(blob)  # raises CorruptSnapshotError if torn
