"""Replication end to end: a store's directory shipped to a bucket, restored elsewhere.

Against obstore's in-memory store for the shipper's logic (faults
injected where a test needs them) and against moto's S3 server on
loopback for the real thing: a writer killed with SIGKILL, restored by
``snapkv restore`` in another process.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

import snapkv
from moto_server import S3Bucket, moto_endpoint, moto_s3  # noqa: F401 (fixtures)
from snapkv import journal as jr
from snapkv.cli_restore import restore_to
from snapkv.errors import MediumError
from snapkv.objstore.client import ObjectClient, ObstoreTransport, RetryPolicy
from snapkv.objstore.medium import ObjectMedium
from snapkv.objstore.reader import PrefixReader
from snapkv.objstore.url import parse_url
from snapkv.replication import LocalSource, ReplicationStatus
from snapkv.replication.replicator import replica_id
from snapkv.replication.shipper import Shipper
from snapkv.replication.target import MediumTarget
from snapkv.store import Store
from snapkv.testing.faulty_objects import FaultyTransport
from support import wait_until

obstore_store = pytest.importorskip("obstore.store")


def _shipper(directory: Path) -> tuple[Shipper, FaultyTransport, ObjectClient]:
    faulty = FaultyTransport(ObstoreTransport(obstore_store.MemoryStore()))
    client = ObjectClient(
        faulty, "db", url="memory://t/db", policy=RetryPolicy(attempts=2), sleep=lambda _: None
    )
    status = ReplicationStatus(url=client.describe(), interval=0.05)
    directory.mkdir(exist_ok=True)
    target = MediumTarget(client, replica=replica_id(directory))
    return Shipper(LocalSource(directory), target, status, 0.05), faulty, client


def _restored(client: ObjectClient, directory: Path, at_ms: int | None = None) -> dict[str, str]:
    restore_to(client, directory, at_ms=at_ms)
    with snapkv.open(directory) as store:
        return dict(store.items())


def test_an_unreachable_bucket_never_blocks_writes_and_the_lag_recovers(tmp_path: Path) -> None:
    store = snapkv.open(tmp_path / "data", fsync="no")
    shipper, faulty, client = _shipper(tmp_path / "data")
    faulty.down = True
    shipper.start()
    started = time.monotonic()
    for i in range(2000):
        store.set(f"k{i}", str(i))
    # Writes ran at local speed while every request failed.
    assert time.monotonic() - started < 5
    wait_until(lambda: shipper.status.failures >= 2, what="failed ticks")
    assert shipper.status.lag > 0
    assert shipper.status.last_error
    faulty.down = False
    wait_until(lambda: shipper.status.lag == 0.0, timeout=30, what="the lag to recover")
    assert shipper.status.consecutive_failures == 0
    shipper.stop()
    model = dict(store.items())
    store.close()
    assert _restored(client, tmp_path / "copy") == model


def test_snapshots_and_journals_ship_through_flaky_requests(tmp_path: Path) -> None:
    store = snapkv.open(tmp_path / "data", fsync="no")
    shipper, faulty, client = _shipper(tmp_path / "data")
    faulty.rates = {"reset": 0.25, "lost_reply": 0.25, "throttle": 0.15}
    client.policy = RetryPolicy(attempts=30)
    rng = random.Random(5)
    for round_ in range(6):
        for _ in range(100):
            key = f"k{rng.randrange(300)}"
            if rng.random() < 0.2:
                store.delete(key)
            else:
                store.set(key, f"{round_}-{rng.random()}")
        if round_ % 2:
            store.save()
        assert shipper.tick()
    model = dict(store.items())
    store.close()
    assert shipper.tick()
    assert sum(faulty.injected.values()) > 2
    assert shipper.status.retries > 0
    assert _restored(client, tmp_path / "copy") == model


def test_point_in_time_restore_at_random_instants_equals_the_model_then(tmp_path: Path) -> None:
    store = snapkv.open(tmp_path / "data", fsync="no")
    shipper, _, client = _shipper(tmp_path / "data")
    rng = random.Random(11)
    states: list[tuple[int, dict[str, str]]] = []  # (ms after the tick, the model then)
    for round_ in range(8):
        for _ in range(30):
            store.set(f"k{rng.randrange(50)}", f"{round_}")
        if round_ == 4:
            store.save()
        time.sleep(0.003)  # distinct milliseconds between rounds' segments
        assert shipper.tick()
        states.append((int(time.time() * 1000), dict(store.items())))
        time.sleep(0.003)
    store.close()
    for n, (after_ms, model) in enumerate(rng.sample(states, 4)):
        # An instant after this round's tick and before the next one's.
        assert _restored(client, tmp_path / f"at-{n}", at_ms=after_ms) == model


def test_a_lost_or_damaged_object_stops_the_restore_naming_it(tmp_path: Path) -> None:
    store = snapkv.open(tmp_path / "data", fsync="no")
    shipper, _, client = _shipper(tmp_path / "data")
    store.set("a", "1")
    store.save()
    for i in range(3):
        store.set(f"b{i}", "2")
        assert shipper.tick()
    store.close()
    # A fence, the journal's header, then one segment per tick.
    segments = [i.name for i in client.list("segment")]
    assert len(segments) == 5
    lost = client.get(segments[3])
    assert lost is not None
    client.delete(segments[3])
    with pytest.raises(MediumError, match=rf"{segments[3]} is missing.*lost"):
        restore_to(client, tmp_path / "gap")
    assert not (tmp_path / "gap").exists() or not any((tmp_path / "gap").iterdir())
    client.put(segments[3], lost)
    client.put(segments[3], lost[:-3])
    with pytest.raises(MediumError, match=rf"{segments[3]}.*truncated"):
        restore_to(client, tmp_path / "cut")
    client.put(segments[3], lost)
    (snapshot,) = [i.name for i in client.list("snapshot")]
    body = client.get(snapshot)
    assert body is not None
    client.put(snapshot, body[:-1] + bytes([body[-1] ^ 1]))
    with pytest.raises(MediumError, match=rf"{snapshot}.*CRC-32"):
        restore_to(client, tmp_path / "crc")
    client.put(snapshot, body[:-7])
    with pytest.raises(MediumError, match=rf"{snapshot}.*truncated"):
        restore_to(client, tmp_path / "short")


_WRITER = """
import sys, time, snapkv
store = snapkv.open(sys.argv[1], fsync="no", replicate=sys.argv[2], replicate_interval=0.2)
i = 0
while True:
    store.set(f"k{i % 500}", str(i))
    print(i, time.monotonic(), flush=True)
    i += 1
    time.sleep(0.001)
"""


def test_writes_acknowledged_an_interval_before_a_kill_are_in_the_bucket(
    moto_s3: S3Bucket,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    url = moto_s3.url("db")
    child = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(tmp_path / "data"), url],
        stdout=subprocess.PIPE,
        env=moto_s3.process_env(),
        text=True,
    )
    assert child.stdout is not None
    acked: list[tuple[int, float]] = []
    limit = time.monotonic() + random.Random().uniform(1.5, 3.0)
    for line in child.stdout:
        number, when = line.split()
        acked.append((int(number), float(when)))
        if time.monotonic() > limit:
            break
    child.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    child.wait()
    child.stdout.close()
    done = subprocess.run(
        [sys.executable, "-m", "snapkv", "restore", url, "--to", str(tmp_path / "copy")],
        env=moto_s3.process_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    with snapkv.open(tmp_path / "copy") as store:
        got = dict(store.items())
    # The replica is an object-stored database too: opened in place (the
    # killed shipper's claim taken over), it holds what the restore made.
    with snapkv.open(url, takeover=True) as direct:
        assert dict(direct.items()) == got
    # The restored state is a prefix of the writes: find how long a prefix.
    last = max((int(v) for v in got.values()), default=-1)
    model = {f"k{i % 500}": str(i) for i in range(last + 1)}
    assert got == model
    # Every write acknowledged more than an interval plus one upload before the kill.
    margin = 0.2 + 1.0
    must = [n for n, when in acked if when < killed - margin]
    assert must, "the writer ran too briefly to test anything"
    assert last >= must[-1]


def test_restore_refuses_a_directory_that_is_not_empty(tmp_path: Path) -> None:
    _, _, client = _shipper(tmp_path / "data")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(Exception, match="not empty"):
        restore_to(client, tmp_path / "full")
    os.remove(tmp_path / "full" / "x")


def test_replicate_reports_its_status_to_info_until_it_is_closed(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from snapkv.objstore.url import parse_url
    from snapkv.replication import replicate, replication_info

    url = f"memory://info-{os.getpid()}/db"
    store = snapkv.open(tmp_path / "data", fsync="no")
    replicator = replicate(tmp_path / "data", url, interval=0.05)
    server = SimpleNamespace(data_dir=str(tmp_path / "data"))
    for i in range(50):
        store.set(f"k{i}", "v")
    wait_until(lambda: replicator.status.journal_offset > 0, what="a first upload")
    fields = replication_info(server)
    assert fields["replication_url"] == url
    assert fields["replication_failures"] == 0
    assert int(fields["replication_requests"]) >= 3  # type: ignore[call-overload]
    assert replication_info(SimpleNamespace(data_dir=str(tmp_path))) == {}
    store.close()
    replicator.close()
    assert replication_info(server) == {}
    client = ObjectClient.for_location(parse_url(url))
    assert _restored(client, tmp_path / "copy") == {f"k{i}": "v" for i in range(50)}
    with pytest.raises(ValueError, match="positive"):
        replicate(tmp_path / "data", url, interval=0)


def test_a_second_directory_is_refused_the_prefix_and_an_explicit_takeover_fences_the_first(
    tmp_path: Path,
) -> None:
    shared = ObstoreTransport(obstore_store.MemoryStore())

    def shipper(name: str) -> Shipper:
        client = ObjectClient(shared, "db", url="memory://t/db", sleep=lambda _: None)
        status = ReplicationStatus(url=client.describe(), interval=0.05)
        target = MediumTarget(client, replica=replica_id(tmp_path / name))
        return Shipper(LocalSource(tmp_path / name), target, status, 0.05)

    first_store = snapkv.open(tmp_path / "first", fsync="no")
    first = shipper("first")
    first_store.set("who", "first")
    assert first.tick()
    second_store = snapkv.open(tmp_path / "second", fsync="no")
    second = shipper("second")
    second_store.set("who", "second")
    assert not second.tick()  # never a silent takeover of another directory's replica
    assert "StoreLockedError" in second.status.last_error
    assert replica_id(tmp_path / "first") in second.status.last_error
    second_store.close()
    second.stop(final=False)
    # An explicit takeover (a failover) fences the first directory's shipper.
    promoted = Store(
        ObjectMedium(ObjectClient(shared, "db", url="memory://t/db"), takeover=True),
        journal=True,
        fsync="always",
    )
    promoted.restore()
    promoted.set("only", "promoted")
    first_store.set("late", "first")
    assert not first.tick()
    assert "StoreFencedError" in first.status.last_error
    first_store.close()
    promoted.close()
    reader = ObjectClient(shared, "db", url="memory://t/db")
    assert _restored(reader, tmp_path / "copy") == {"who": "first", "only": "promoted"}


def test_a_restarted_primary_never_takes_a_promoted_replica(tmp_path: Path) -> None:
    """After a failover the promoted writer keeps the prefix; the old primary's ticks fail."""
    url = f"memory://tests/{uuid.uuid4().hex}"
    primary = snapkv.open(tmp_path / "db", replicate=url, replicate_interval=0.05)
    primary.set("k", "primary")
    primary.close()
    promoted = snapkv.open(url, fsync="always")
    promoted.set("k", "promoted")
    restarted = snapkv.open(tmp_path / "db", replicate=url, replicate_interval=0.05)
    assert restarted.replication is not None
    assert not restarted.replication.flush()
    status = restarted.replication.status
    holder = promoted.medium
    assert isinstance(holder, ObjectMedium)
    assert "StoreLockedError" in status.last_error and holder.writer.id in status.last_error
    restarted.close()
    promoted.set("k2", "still the holder")  # not fenced
    promoted.close()
    with snapkv.open(url) as newest:
        assert (newest.get("k"), newest.get("k2")) == ("promoted", "still the holder")


def test_a_restarted_shipper_takes_its_own_held_prefix_at_once(tmp_path: Path) -> None:
    """A killed shipper's prefix (not released, heartbeat fresh) is its directory's own."""
    url = f"memory://tests/{uuid.uuid4().hex}"
    store = snapkv.open(tmp_path / "db")
    client = ObjectClient.for_location(parse_url(url))
    status = ReplicationStatus(url=client.describe(), interval=0.05)
    target = MediumTarget(client, replica=replica_id(tmp_path / "db"))
    store.set("a", "1")
    assert Shipper(LocalSource(tmp_path / "db"), target, status, 0.05).tick()  # never closed
    store.set("b", "2")
    again = MediumTarget(
        ObjectClient.for_location(parse_url(url)), replica=replica_id(tmp_path / "db")
    )
    shipper = Shipper(LocalSource(tmp_path / "db"), again, status, 0.05)
    assert shipper.tick(), status.last_error
    shipper.stop()
    store.close()
    with snapkv.open(url) as replica:
        assert (replica.get("a"), replica.get("b")) == ("1", "2")


def test_the_replica_is_a_prefix_of_the_writes_while_journals_rotate(tmp_path: Path) -> None:
    import threading

    store = snapkv.open(tmp_path / "data", fsync="no", compact_min_bytes=4096)
    shipper, _, client = _shipper(tmp_path / "data")
    stop = threading.Event()

    def write() -> None:
        i = 0
        while not stop.is_set():
            store.set(f"k{i % 40}", str(i))
            i += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        for round_ in range(6):
            shipper.tick()
            got = _restored(client, tmp_path / f"r{round_}")
            if got:
                last = max(int(v) for v in got.values())
                assert got == {f"k{i % 40}": str(i) for i in range(max(0, last - 39), last + 1)}
    finally:
        stop.set()
        writer.join()
    assert shipper.status.snapshot > 1  # snapshots were published (and shipped) meanwhile
    store.close()


class _SwitchesDuringTheRead(LocalSource):
    """A directory whose Store writes to journal 1, switches to journal 2 and writes there,
    just after the shipper has read journal 1 to its end (the race a rotation opens)."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.switched = False

    def whole_records(self, jid: int, start: int, limit: int) -> bytes | None:
        got = super().whole_records(jid, start, limit)
        if jid == 1 and got == b"" and not self.switched:
            self.switched = True
            with (self.directory / "journal-0000000000000001.skj").open("ab") as old:
                old.write(jr.set_record(0, "b", "2"))
            with (self.directory / "journal-0000000000000002.skj").open("ab") as new:
                new.write(jr.set_record(0, "c", "3"))
        return got


def test_a_rotation_between_two_reads_never_ships_a_later_write_without_an_earlier_one(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "data"
    directory.mkdir()
    (directory / "journal-0000000000000001.skj").write_bytes(
        jr.header(1) + jr.set_record(0, "a", "1")
    )
    (directory / "journal-0000000000000002.skj").write_bytes(jr.header(2))
    _, _, client = _shipper(directory)
    status = ReplicationStatus(url=client.describe(), interval=0.05)
    target = MediumTarget(client, replica=replica_id(directory))
    shipper = Shipper(_SwitchesDuringTheRead(directory), target, status, 0.05)
    assert shipper.tick()
    # c was written after b: a replica holding c without b would not be a
    # prefix of the writes; holding b and not yet c is one.
    assert _restored(client, tmp_path / "first") in ({"a": "1"}, {"a": "1", "b": "2"})
    assert shipper.tick()
    assert _restored(client, tmp_path / "second") == {"a": "1", "b": "2", "c": "3"}


def test_closing_the_store_ends_its_replication_with_a_last_upload(tmp_path: Path) -> None:
    from snapkv.objstore.url import parse_url

    url = f"memory://close-{os.getpid()}/db"
    # A long interval: only the upload that close() makes can ship these.
    store = snapkv.open(tmp_path / "data", fsync="no", replicate=url, replicate_interval=3600)
    replicator = store.replication
    wait_until(lambda: replicator.status.requests > 0, what="the first pass")
    for i in range(20):
        store.set(f"k{i}", str(i))
    store.close()
    assert store.replication is None
    assert not replicator.status.running
    client = ObjectClient.for_location(parse_url(url))
    assert _restored(client, tmp_path / "copy") == {f"k{i}": str(i) for i in range(20)}


def test_the_replica_follows_a_repair_that_sets_later_journals_aside(tmp_path: Path) -> None:
    """open(repair=True) cuts journal 3 and sets 4 aside: the replica must not replay 4."""
    url = f"memory://tests/{uuid.uuid4().hex}"
    db = tmp_path / "db"
    store = snapkv.open(db, replicate=url, replicate_interval=0.05, fsync="always")
    store.set("a", "1")
    store.save()
    store.set("b", "1")
    store.save()  # the newest snapshot needs journals from 3 on
    for key in ("c", "c2", "c3"):
        store.set(key, "1")
    store.set_fsync("everysec")  # a rotation without a snapshot: journal 4
    store.set("dropped", "1")
    store.close()
    with snapkv.open(url) as replica:
        assert replica.get("dropped") == "1"
        assert replica.medium.journal_ids() == [3, 4]
    damaged = sorted(db.glob("journal-*.skj"))[-2]
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    store = snapkv.open(db, replicate=url, replicate_interval=0.05, repair=True)
    assert store.get("dropped") is None
    store.set("after", "1")
    store.close()
    with snapkv.open(url) as replica:
        assert replica.get("after") == "1"
        assert replica.get("dropped") is None, "the replica replays what the repair dropped"
        assert replica.get("c") == "1"


def test_the_replica_falls_back_to_the_older_snapshot_it_keeps(tmp_path: Path) -> None:
    """The manifest keeps two snapshots: the journals the older one needs stay, whole."""
    url = f"memory://tests/{uuid.uuid4().hex}"
    store = snapkv.open(tmp_path / "db", replicate=url, replicate_interval=60)
    shipping = store.replication
    store.set("a", "1")
    store.save()
    assert shipping.flush()
    store.set("b", "1")
    assert shipping.flush()
    store.set("c", "1")  # not shipped before the next snapshot
    store.save()
    assert shipping.flush()
    store.set("d", "1")
    store.close()
    client = ObjectClient.for_location(parse_url(url))
    manifest = PrefixReader(client).newest_manifest()
    assert manifest is not None and len(manifest.snapshots) == 2
    newest = manifest.snapshots[0].name
    data = bytearray(client.get(newest) or b"")
    data[len(data) // 2] ^= 0xFF
    client.delete(newest)
    client.put(newest, bytes(data))
    with snapkv.open(url, fallback=True) as replica:
        assert sorted(replica.keys()) == ["a", "b", "c", "d"]
