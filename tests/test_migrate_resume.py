"""``snapkv migrate --resume`` after the process was killed (SIGKILL) in the middle of a run.

The migration runs as a real process (``python -m snapkv migrate``) into a
real redis-server; it is killed with SIGKILL once some keys, but not all,
have arrived. The resumed run must skip what arrived, write the rest, and
verify every key.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import redis

import snapkv
from reference import redis_server
from support import wait_until

KEYS = 40_000


def test_a_run_killed_midway_is_finished_by_resume(tmp_path: Path) -> None:
    source = tmp_path / "src"
    with snapkv.open(source) as store:
        store.update({f"key:{i}": f"value {i}" for i in range(KEYS)})
        store.db(1).update({f"other:{i}": "x" for i in range(100)})
        at = time.time() + 3600
        store.db(1).expire_at("other:0", at)
    (tmp_path / "redis").mkdir()
    with redis_server(tmp_path / "redis") as port, redis.Redis(port=port) as client:
        url = f"redis://127.0.0.1:{port}"
        command = [sys.executable, "-m", "snapkv", "migrate", str(source), url]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            wait_until(
                lambda: process.poll() is not None or client.dbsize() >= 2000,
                timeout=60,
                what="the first keys to arrive",
            )
        finally:
            process.kill()  # SIGKILL: no cleanup, no summary
            process.communicate()
        arrived = client.dbsize()
        assert process.returncode == -9
        assert 2000 <= arrived < KEYS, "the run was not interrupted midway"

        resumed = subprocess.run(
            [*command, "--resume", "--verify"],
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        skipped = re.search(r"skipped ([\d,]+) keys already there, identical", resumed.stdout)
        assert skipped is not None, resumed.stdout
        assert int(skipped[1].replace(",", "")) >= arrived
        assert f"verify: {KEYS + 100:,} keys compared, all identical" in resumed.stdout
        assert client.dbsize() == KEYS
        assert client.get(f"key:{KEYS - 1}") == f"value {KEYS - 1}".encode()
        with redis.Redis(port=port, db=1) as other:
            assert other.dbsize() == 100
            assert abs(time.time() + other.pttl("other:0") / 1000 - at) < 1
