"""What a Store on object storage keeps when the store misbehaves, and when writers race.

Faults come from ``snapkv.testing.faulty_objects`` between the client and a
real obstore MemoryStore; fencing also runs against moto's S3 on loopback.
"""

from __future__ import annotations

import random
import threading
import uuid

import pytest

import snapkv
from moto_server import S3Bucket, moto_endpoint, moto_s3  # noqa: F401 (fixtures)
from snapkv.errors import MediumError, StoreFencedError
from snapkv.objstore.client import ObjectClient, ObstoreTransport, RetryPolicy
from snapkv.objstore.medium import ObjectMedium
from snapkv.objstore.reader import PrefixReader
from snapkv.objstore.url import parse_url
from snapkv.store import Store
from snapkv.testing.faulty_objects import FaultyTransport


def faulty_medium(
    url: str, *, seed: int, rates: dict[str, float] | None = None, **kwargs: object
) -> tuple[ObjectMedium, FaultyTransport]:
    location = parse_url(url)
    faulty = FaultyTransport(
        ObstoreTransport(location.store), seed=seed, rates=rates, reorder=True, slow_seconds=0.002
    )
    client = ObjectClient(
        faulty,
        location.prefix,
        url=location.url,
        policy=RetryPolicy(attempts=30, base=0.0005, cap=0.002),
        rng=random.Random(seed),
    )
    return ObjectMedium(client, **kwargs), faulty  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_acknowledged_write_survives_a_flaky_store(seed: int) -> None:
    url = f"memory://flaky/{uuid.uuid4().hex}"
    rates = {"reset": 0.1, "throttle": 0.1, "lost_reply": 0.1, "slow": 0.05}
    medium, faulty = faulty_medium(url, seed=seed, rates=rates)
    store = Store(medium, journal=True, fsync="always", compact_min_bytes=2_000)
    store.restore()
    acknowledged: dict[str, str] = {}
    lock = threading.Lock()

    def writer(n: int) -> None:
        rng = random.Random(seed * 100 + n)
        for i in range(60):
            key = f"k{rng.randrange(40)}"
            value = f"{n}-{i}"
            store.set(key, value)
            with lock:
                acknowledged[key] = value  # the last acknowledgement of a key wins

    # One writer per key space, so "the last acknowledged" is well defined per key.
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(faulty.injected.values()) > 20, "the run must meet faults"
    expected = dict(store.items())
    # The process "dies": no close. A new writer takes the prefix over.
    with snapkv.open(url, takeover=True) as again:
        assert dict(again.items()) == expected
    assert set(acknowledged) <= set(expected)


def test_concurrent_writers_share_one_put_as_they_share_an_fsync() -> None:
    url = f"memory://group/{uuid.uuid4().hex}"
    medium, faulty = faulty_medium(url, seed=0)
    faulty.rates = {"slow": 1.0}
    faulty.operations = frozenset({"put"})
    faulty.slow_seconds = 0.005
    store = Store(medium, journal=True, fsync="always")
    store.restore()
    puts = medium.client.stats.requests.get("put", 0)
    threads = [
        threading.Thread(target=lambda n=n: [store.set(f"{n}-{i}", "v") for i in range(25)])
        for n in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    shared = medium.client.stats.requests["put"] - puts
    assert shared <= 200 // 2, f"{shared} PUTs for 200 concurrent writes"
    assert len(store) == 200
    with snapkv.open(url, takeover=True) as again:
        assert len(again) == 200


def test_a_lost_reply_on_a_segment_is_resolved_not_duplicated() -> None:
    url = f"memory://ambiguous/{uuid.uuid4().hex}"
    medium, faulty = faulty_medium(url, seed=0)
    journal = medium.create_journal(1, b"head")
    journal.write(b"-one")
    faulty.script("put", "lost_reply")
    journal.sync()  # landed, reply lost, the retry finds our bytes: success
    journal.write(b"-two")
    journal.sync()
    assert PrefixReader(medium.client).at().journals == {1: b"head-one-two"}
    assert not medium.fenced


def test_a_create_that_failed_for_good_is_resolved_by_the_next_write() -> None:
    url = f"memory://uncertain/{uuid.uuid4().hex}"
    medium, faulty = faulty_medium(url, seed=0)
    journal = medium.create_journal(1, b"head")
    journal.write(b"-maybe")
    # It lands and its reply is lost; every retry is then refused before the store.
    faulty.script("put", "lost_reply", *["reset"] * 29)
    with pytest.raises(MediumError, match="gave up"):
        journal.sync()
    # Did it land? The next numbered create asks before it takes a number.
    medium.create_journal(2, b"next")
    state = PrefixReader(medium.client).at()
    assert state.journals == {1: b"head-maybe", 2: b"next"}
    assert medium.read_journal(2) == b"next"
    assert not medium.fenced


def test_an_unreachable_store_fails_the_write_and_the_journal_then_refuses() -> None:
    url = f"memory://down/{uuid.uuid4().hex}"
    medium, faulty = faulty_medium(url, seed=0)
    store = Store(medium, journal=True, fsync="always")
    store.restore()
    store.set("before", "1")
    faulty.down = True
    with pytest.raises(MediumError, match="gave up"):
        store.set("during", "2")  # not acknowledged
    faulty.down = False
    with pytest.raises(MediumError, match="refuses writes after an earlier failure"):
        store.set("after", "3")
    with snapkv.open(url, takeover=True) as again:
        assert again.get("before") == "1"
        assert again.get("after") is None


def test_two_writers_on_one_s3_prefix_the_fenced_one_loses_nothing_of_the_new(
    moto_s3: S3Bucket,  # noqa: F811 - the fixture imported above
) -> None:
    url = moto_s3.url("fenced")
    old = snapkv.open(url, fsync="always")
    old.update({"a": "old", "b": "old"})
    new = snapkv.open(url, fsync="always", takeover=True)
    assert dict(new.items()) == {"a": "old", "b": "old"}
    new.set("a", "new")
    new.save()
    new.set("c", "new")
    with pytest.raises(StoreFencedError):
        old.set("b", "stale")
    with pytest.raises(StoreFencedError):
        old.medium.publish([b"a stale snapshot"])
    new.close()
    with snapkv.open(url) as after:
        assert dict(after.items()) == {"a": "new", "b": "old", "c": "new"}


def test_a_manifest_whose_reply_was_lost_for_good_is_ours_at_the_next_one() -> None:
    url = f"memory://manifest/{uuid.uuid4().hex}"
    medium, faulty = faulty_medium(url, seed=0)
    medium.publish([b"first"])
    faulty.script("put", None, "lost_reply", *["reset"] * 29)  # the snapshot, then its manifest
    with pytest.raises(MediumError, match="gave up"):
        medium.publish([b"second"])
    medium.publish([b"third"])  # finds its own manifest at that number: not fenced
    assert not medium.fenced
    assert medium.read() == b"third"
    medium.close()
    assert PrefixReader(medium.client).newest_manifest() is not None
    again = ObjectMedium(medium.client)
    assert again.read() == b"third"
    again.close()


_OLD_WRITER = """
import sys, snapkv
store = snapkv.open(sys.argv[1], fsync="always")
for i in range(20):
    store.set(f"old{i}", "1")
print("ready", flush=True)
sys.stdin.readline()
try:
    store.set("old-after-takeover", "stale")
except Exception as exc:
    print(type(exc).__name__, flush=True)
else:
    print("acknowledged", flush=True)
"""


def test_two_processes_on_one_prefix_the_old_one_is_fenced(
    moto_s3: S3Bucket,  # noqa: F811 - the fixture imported above
) -> None:
    import subprocess
    import sys

    url = moto_s3.url("two-processes")
    child = subprocess.Popen(
        [sys.executable, "-c", _OLD_WRITER, url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=moto_s3.process_env(),
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        assert child.stdout.readline().strip() == "ready"
        with pytest.raises(snapkv.StoreLockedError, match="held by writer"):
            snapkv.open(url)
        new = snapkv.open(url, fsync="always", takeover=True)
        assert len(new) == 20  # every write the old process acknowledged
        new.set("new", "1")
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "StoreFencedError"
        new.set("new-2", "1")
        new.close()
    finally:
        child.kill()
        child.wait()
        child.stdin.close()
        child.stdout.close()
    with snapkv.open(url) as after:
        assert "old-after-takeover" not in after
        assert after.get("new") == after.get("new-2") == "1"
        assert len(after) == 22
