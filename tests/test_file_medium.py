"""One writer per directory, across processes: the lock is held by a real child process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import snapkv
from snapkv import StoreLockedError

# Opens the directory, saves one key, says "ready", then holds the lock until
# its stdin closes (or it is killed). It never closes the Store itself.
HOLDER = """
import sys
import snapkv

store = snapkv.open(sys.argv[1])
store["child"] = "1"
store.save()
print("ready", flush=True)
sys.stdin.read()
"""

# Tries to open the directory and prints what happened.
PROBE = """
import sys
import snapkv

try:
    snapkv.open(sys.argv[1]).close()
except snapkv.StoreLockedError as exc:
    print(exc)
    sys.exit(3)
print("opened")
"""

TIMEOUT = 30


@pytest.fixture
def spawn_holder() -> Iterator[Callable[[Path], subprocess.Popen[str]]]:
    children: list[subprocess.Popen[str]] = []

    def spawn(directory: Path) -> subprocess.Popen[str]:
        child = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(directory)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        children.append(child)
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n", "the holder did not start"
        return child

    yield spawn
    for child in children:
        if child.poll() is None:
            child.kill()
        child.wait(TIMEOUT)
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                stream.close()


def probe(directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PROBE, str(directory)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def test_other_process_holds_the_lock_until_it_exits(
    tmp_path: Path, spawn_holder: Callable[[Path], subprocess.Popen[str]]
) -> None:
    child = spawn_holder(tmp_path)
    with pytest.raises(StoreLockedError, match=f"lock held by pid {child.pid}\\b"):
        snapkv.open(tmp_path)
    assert child.stdin is not None
    child.stdin.close()  # the child exits without closing its Store
    assert child.wait(TIMEOUT) == 0
    with snapkv.open(tmp_path) as store:
        assert dict(store.items()) == {"child": "1"}


def test_lock_dies_with_a_killed_process(
    tmp_path: Path, spawn_holder: Callable[[Path], subprocess.Popen[str]]
) -> None:
    child = spawn_holder(tmp_path)
    with pytest.raises(StoreLockedError, match=str(child.pid)):
        snapkv.open(tmp_path)
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait(TIMEOUT) == -signal.SIGKILL
    with snapkv.open(tmp_path) as store:
        assert dict(store.items()) == {"child": "1"}


def test_other_process_is_locked_out_while_this_one_holds(tmp_path: Path) -> None:
    store = snapkv.open(tmp_path)
    result = probe(tmp_path)
    assert result.returncode == 3, result.stderr
    assert f"lock held by pid {os.getpid()}" in result.stdout
    store.close()
    result = probe(tmp_path)
    assert (result.returncode, result.stdout) == (0, "opened\n"), result.stderr
