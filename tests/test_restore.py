"""``snapkv restore`` of an object-stored database written directly (``snapkv.open(URL)``).

A writer on the bucket itself with ``fsync="always"`` acknowledges a write
only once its segment is stored: killed with SIGKILL at a random moment,
every write it acknowledged must come back in a directory that ``snapkv
restore`` builds in another process. And ``--at`` picks out the past.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

import snapkv
from moto_server import S3Bucket, moto_endpoint, moto_s3  # noqa: F401 (fixtures)
from snapkv.cli import main
from snapkv.cli_common import InputError
from snapkv.cli_restore import parse_instant, restore_to
from snapkv.errors import MediumError
from snapkv.objstore.client import ObjectClient
from snapkv.objstore.reader import PrefixReader
from snapkv.objstore.url import parse_url

_WRITER = """
import sys, snapkv
store = snapkv.open(sys.argv[1], fsync="always")
i = 0
while True:
    store.set(f"k{i % 300}", str(i))
    print(i, flush=True)
    i += 1
"""


def _restore(
    bucket: S3Bucket, url: str, target: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "snapkv", "restore", url, "--to", str(target), *extra],
        env=bucket.process_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_every_write_acknowledged_before_a_kill_is_restored(
    moto_s3: S3Bucket,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    url = moto_s3.url("direct")
    child = subprocess.Popen(
        [sys.executable, "-c", _WRITER, url],
        stdout=subprocess.PIPE,
        env=moto_s3.process_env(),
        text=True,
    )
    assert child.stdout is not None
    acked = -1
    limit = time.monotonic() + random.Random().uniform(1.0, 2.5)
    for line in child.stdout:
        acked = int(line)
        if time.monotonic() > limit:
            break
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stdout.close()
    assert acked > 10, "the writer acknowledged too little to test anything"
    done = _restore(moto_s3, url, tmp_path / "copy")
    assert done.returncode == 0, done.stderr
    with snapkv.open(tmp_path / "copy") as store:
        got = dict(store.items())
    last = max(int(v) for v in got.values())
    # Every acknowledged write, and a prefix of the writes: nothing out of order.
    assert last >= acked
    assert got == {f"k{i % 300}": str(i) for i in range(max(0, last - 299), last + 1)}


def test_restore_at_an_iso_instant_returns_the_state_then(
    moto_s3: S3Bucket,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    url = moto_s3.url("pitr")
    store = snapkv.open(url, fsync="always")
    store.set("a", "1")
    time.sleep(0.01)
    middle = datetime.now(UTC)
    time.sleep(0.01)
    store.set("a", "2")
    store.set("b", "3")
    store.close()
    at = middle.isoformat().replace("+00:00", "Z")
    done = _restore(moto_s3, url, tmp_path / "then", "--at", at)
    assert done.returncode == 0, done.stderr
    with snapkv.open(tmp_path / "then") as then:
        assert dict(then.items()) == {"a": "1"}
    done = _restore(moto_s3, url, tmp_path / "now")
    assert done.returncode == 0, done.stderr
    with snapkv.open(tmp_path / "now") as now:
        assert dict(now.items()) == {"a": "2", "b": "3"}
    # A restore never goes into a directory that holds something.
    refused = _restore(moto_s3, url, tmp_path / "now")
    assert refused.returncode == 2
    assert "not empty" in refused.stderr


def test_instants_are_epoch_milliseconds_or_iso_8601_in_utc_by_default() -> None:
    assert parse_instant("1700000000123") == 1_700_000_000_123
    assert parse_instant("2023-11-14T22:13:20Z") == 1_700_000_000_000
    assert parse_instant("2023-11-14T22:13:20") == 1_700_000_000_000
    assert parse_instant("2023-11-14T23:13:20+01:00") == 1_700_000_000_000
    with pytest.raises(InputError, match="ISO-8601"):
        parse_instant("yesterday")


def test_restore_before_the_first_manifest_names_the_oldest_retained(tmp_path: Path) -> None:
    """A moment before everything retained is an error naming the oldest manifest (O7)."""
    url = f"memory://tests/{uuid.uuid4().hex}"
    early = int(time.time() * 1000) - 60_000
    with snapkv.open(url, fsync="always") as store:
        store.set("k", "v")
    client = ObjectClient.for_location(parse_url(url))
    with pytest.raises(MediumError, match="nothing retained reaches back") as refused:
        restore_to(client, tmp_path / "r", at_ms=early)
    assert "manifest/00000000000000000001" in str(refused.value)
    assert not (tmp_path / "r").exists()


def _two_snapshots_and_a_journal() -> tuple[str, ObjectClient]:
    """A prefix keeping two snapshots, with eight writes in segments after the newest."""
    url = f"memory://tests/{uuid.uuid4().hex}"
    with snapkv.open(url, fsync="always") as store:
        store.set("a", "1")
        store.save()
        store.set("b", "2")
        store.save()
        for i in range(8):
            store.set(f"k{i}", "v")
    return url, ObjectClient.for_location(parse_url(url))


def test_restore_refusals_name_fallback_and_repair_and_both_get_past(tmp_path: Path) -> None:
    url, client = _two_snapshots_and_a_journal()
    manifest = PrefixReader(client).newest_manifest()
    assert manifest is not None and len(manifest.snapshots) == 2
    newest = manifest.snapshots[0].name
    data = bytearray(client.get(newest) or b"")
    data[len(data) // 2] ^= 0xFF
    client.delete(newest)
    client.put(newest, bytes(data))
    with pytest.raises(MediumError, match="snapkv restore --fallback restores"):
        restore_to(client, tmp_path / "refused")
    assert main(["restore", url, "--to", str(tmp_path / "fell"), "--fallback"]) == 0
    with snapkv.open(tmp_path / "fell") as restored:
        assert sorted(restored.keys()) == sorted(["a", "b", *(f"k{i}" for i in range(8))])
    # A missing segment in the journals after the snapshot: --repair stops history there.
    tail = [info.name for info in client.list("segment")]
    client.delete(tail[-3])
    with pytest.raises(MediumError, match=r"snapkv restore --repair keeps"):
        restore_to(client, tmp_path / "gap", fallback=True)
    summary = restore_to(client, tmp_path / "cut", fallback=True, repair=True)
    assert "repair: history stops before it" in summary
    with snapkv.open(tmp_path / "cut") as restored:
        assert restored.get("b") == "2" and restored.get("k7") is None
