"""ObjectMedium: the Medium contract, fencing, the holder's lock, and what a Store keeps on it.

Real stores throughout: obstore's MemoryStore (``memory://``), its LocalStore
(``file://``) and moto's S3 server on loopback (``moto_s3``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

import snapkv
from moto_server import S3Bucket, moto_endpoint, moto_s3  # noqa: F401 (fixtures)
from snapkv.check.objects import check_objects
from snapkv.errors import MediumError, SnapkvError, StoreFencedError, StoreLockedError
from snapkv.objstore import layout as lo
from snapkv.objstore.client import ObjectClient
from snapkv.objstore.medium import ObjectMedium
from snapkv.objstore.reader import PrefixReader, state_numbers
from snapkv.objstore.url import parse_url
from snapkv.store import Store
from snapkv.testing import check_medium


def memory_url() -> str:
    return f"memory://tests/{uuid.uuid4().hex}"


def client_of(url: str) -> ObjectClient:
    return ObjectClient.for_location(parse_url(url))


# ------------------------------------------------------------------ the contract


def test_memory_prefix_keeps_the_medium_contract() -> None:
    check_medium(lambda: ObjectMedium.from_url(memory_url()))


def test_local_directory_keeps_the_medium_contract(tmp_path: Path) -> None:
    check_medium(lambda: ObjectMedium.from_url(f"file://{tmp_path}/{uuid.uuid4().hex}"))


def test_s3_keeps_the_medium_contract(moto_s3: S3Bucket) -> None:  # noqa: F811 - the fixture
    check_medium(lambda: ObjectMedium.from_url(moto_s3.url(uuid.uuid4().hex)))


def test_keep_bounds_the_snapshots_the_manifest_names() -> None:
    medium = ObjectMedium.from_url(memory_url(), keep=2)
    for n in range(5):
        medium.publish([b"snapshot %d" % n])
    assert [medium.read(g) for g in medium.generations()] == [
        b"snapshot 4",
        b"snapshot 3",
        b"snapshot 2",
    ]
    medium.close()


# ------------------------------------------------------- a Store on a prefix


def test_open_url_round_trip_with_every_acknowledged_write() -> None:
    url = memory_url()
    with snapkv.open(url, fsync="always") as store:
        store.update({f"k{i}": str(i) for i in range(50)})
        store.hashes["h"]["f"] = "v"
        store.save()
        store.set("after-save", "yes")
    with snapkv.open(url) as store:
        assert store.get("k49") == "49"
        assert store.get("after-save") == "yes"
        assert store.hashes["h"]["f"] == "v"


def test_acknowledged_writes_survive_a_writer_that_never_closed() -> None:
    url = memory_url()
    store = snapkv.open(url, fsync="always")
    store.update({f"k{i}": str(i) for i in range(20)})
    store.delete("k3")
    # No close: the process "died". Its heartbeat is fresh, so take over.
    with snapkv.open(url, takeover=True) as again:
        assert len(again) == 19
        assert "k3" not in again
        assert again.get("k19") == "19"


def test_a_write_is_one_segment_put_and_an_idle_store_makes_no_request() -> None:
    url = memory_url()
    store = snapkv.open(url, fsync="always")
    medium = store.medium
    assert isinstance(medium, ObjectMedium)
    before = medium.client.stats.copy()
    store.set("a", "1")
    after = medium.client.stats.copy()
    assert after.requests.get("put", 0) - before.requests.get("put", 0) == 1
    assert after.total_requests - before.total_requests == 1
    store.get("a")
    store.sweep()
    assert medium.client.stats.total_requests == after.total_requests
    store.close()


def test_opening_a_fresh_prefix_claims_epoch_one_and_fences_segment_one() -> None:
    url = memory_url()
    store = snapkv.open(url)
    client = client_of(url)
    manifest = PrefixReader(client).newest_manifest()
    assert manifest is not None and manifest.epoch == 1
    first = client.get(lo.segment_name(1))
    assert first is not None and lo.decode_segment(first).kind == lo.KIND_FENCE
    store.close()
    released = PrefixReader(client).newest_manifest()
    assert released is not None and released.released and released.number == manifest.number + 1


# ----------------------------------------------------------- one writer, fenced


def test_a_live_writer_holds_the_prefix_and_the_error_names_it() -> None:
    url = memory_url()
    store = snapkv.open(url)
    store.set("a", "1")
    with pytest.raises(StoreLockedError, match=r"held by writer \w+ on .*last heartbeat") as info:
        snapkv.open(url)
    assert "takeover=True" in str(info.value)
    store.close()
    snapkv.open(url).close()  # released by the close: no takeover needed


def test_a_silent_writer_loses_the_prefix_after_the_heartbeat_timeout() -> None:
    url = memory_url()
    now = [1_000_000.0]
    first = ObjectMedium(client_of(url), clock=lambda: now[0])
    now[0] += 31  # past the default 30 s without a segment or manifest
    second = ObjectMedium(client_of(url), clock=lambda: now[0])
    assert second.epoch == first.epoch + 1
    with pytest.raises(StoreFencedError):
        first.create_journal(1, b"late")
    second.close()


def test_fenced_writer_gets_store_fenced_error_and_loses_nothing_of_the_new_writer() -> None:
    url = memory_url()
    old = snapkv.open(url, fsync="always")
    old.set("shared", "old")
    old.set("only-old", "1")
    new = snapkv.open(url, fsync="always", takeover=True)
    assert new.get("only-old") == "1"  # every write the old writer acknowledged
    new.set("shared", "new")
    new.set("only-new", "2")
    with pytest.raises(StoreFencedError, match="acknowledges no further write"):
        old.set("shared", "stale")
    with pytest.raises(MediumError):
        old.set("again", "x")
    with pytest.raises(StoreFencedError):
        old.medium.publish([b"stale snapshot"])
    new.save()
    new.close()
    with pytest.raises(MediumError):
        old.close()  # its journal cannot be synced: the failure is said once more
    with snapkv.open(url) as after:
        assert after.get("shared") == "new"
        assert after.get("only-new") == "2"
        assert "again" not in after


def test_fenced_snapshot_publish_leaves_the_new_writers_state() -> None:
    url = memory_url()
    old = snapkv.open(url, journal=False)
    old.set("a", "old")
    new = snapkv.open(url, journal=False, takeover=True)
    new.set("a", "new")
    new.save()
    with pytest.raises(StoreFencedError):
        old.save()
    new.close()
    with snapkv.open(url, journal=False) as after:
        assert after.get("a") == "new"


def test_old_writer_segments_written_before_the_fence_are_kept() -> None:
    url = memory_url()
    client = client_of(url)
    old = ObjectMedium(client_of(url))
    journal = old.create_journal(1, b"head")
    journal.write(b"-acked")
    journal.sync()
    new = ObjectMedium(client, takeover=True)
    assert new.read_journal(1) == b"head-acked"
    journal.write(b"-late")
    with pytest.raises(StoreFencedError):
        journal.sync()
    assert PrefixReader(client).at().journals == {1: b"head-acked"}
    new.close()


# ----------------------------------------------------------------- retention


def _store_on(url: str, now: list[float], retention: float) -> tuple[Store, ObjectMedium]:
    """A journaled Store on ``url`` whose clock is ``now[0]``; retention only when asked."""
    medium = ObjectMedium(
        client_of(url), retention=retention, retention_interval=1e9, clock=lambda: now[0]
    )
    store = Store(medium, journal=True, fsync="always", clock=lambda: now[0])
    store.restore()
    return store, medium


def test_retention_deletes_exactly_what_no_kept_manifest_needs() -> None:
    url = memory_url()
    client = client_of(url)
    now = [time.time()]  # the store dates objects by its own clock: start from it
    store, medium = _store_on(url, now, retention=3600)
    for round_ in range(4):
        store.set("k", str(round_))
        store.save()
        now[0] += 10
    names = {info.name for d in ("manifest", "segment", "snapshot") for info in client.list(d)}
    assert medium.apply_retention() == []  # everything is within the hour
    now[0] += 7200
    deleted = set(medium.apply_retention())
    reader = PrefixReader(client)
    kept = [reader.manifest(n) for n in state_numbers(reader.manifest_numbers())]
    needed_segments = min(m.segments_from for m in kept)
    named = {ref.name for m in kept for ref in m.snapshots}
    for name in names:
        seq = lo.segment_number(name)
        if seq is not None:
            found = reader.segment(seq)
            fence = found is not None and found[0].kind == lo.KIND_FENCE
            assert (name in deleted) == (seq < needed_segments and not fence), name
        elif name.startswith("snapshot/"):
            assert (name in deleted) == (name not in named), name
    assert deleted, "old manifests, segments and snapshots go once past the window"
    assert {lo.manifest_number(n) for n in deleted if n.startswith("manifest/")}.isdisjoint(
        reader.manifest_numbers()
    )
    store.close()
    with snapkv.open(url) as after:
        assert after.get("k") == "3"


def test_a_taken_over_writer_stays_fenced_after_the_new_writers_retention() -> None:
    """Retention keeps each epoch's claim and FENCE: the old writer's next creates still fail."""
    url = memory_url()
    quiet = {"retention": 60, "retention_interval": 1e9}
    old = Store(ObjectMedium(client_of(url), **quiet), journal=True, fsync="always")  # type: ignore[arg-type]
    old.restore()
    old.set("a", "1")
    new_medium = ObjectMedium(client_of(url), takeover=True, **quiet)  # type: ignore[arg-type]
    new = Store(new_medium, journal=True, fsync="always")
    new.restore()
    for i in range(4):
        new.set(f"b{i}", "x")
        new.save()
    deleted = new_medium.apply_retention(now=time.time() + 3600)
    assert any(name.startswith("manifest/") for name in deleted)
    with pytest.raises(StoreFencedError):
        old.set("lost", "acknowledged?")  # fsync="always": returning would mean durable
    new.close()
    report = check_objects(url)
    assert report.ok, report.problems
    with snapkv.open(url) as after:
        assert after.get("lost") is None and after.get("b3") == "x"


def test_point_in_time_within_the_window_survives_retention() -> None:
    url = memory_url()
    client = client_of(url)
    now = [3_000_000.0]
    store, medium = _store_on(url, now, retention=100)
    moments: list[tuple[int, str]] = []
    for value in range(6):
        store.set("k", str(value))
        moments.append((int(now[0] * 1000), str(value)))
        now[0] += 30
        if value % 2:
            store.save()
    medium.apply_retention()
    reader = PrefixReader(client)
    for at_ms, value in moments:
        if at_ms < (now[0] - 100) * 1000:
            continue
        state = reader.at(at_ms)
        directory = Path(client.describe()).name
        assert state.journals or state.snapshot is not None, directory
        assert _value_at(reader, state) == value
    store.close()


def _value_at(reader: PrefixReader, state: object) -> str | None:
    """Load a PointInTime into a Store through a MemoryMedium, and read ``k``."""
    from snapkv.media import MemoryMedium

    assert hasattr(state, "journals")
    medium = MemoryMedium()
    if state.snapshot is not None:  # type: ignore[attr-defined]
        medium.publish(reader.snapshot_chunks(state.snapshot))  # type: ignore[attr-defined]
    for jid, data in state.journals.items():  # type: ignore[attr-defined]
        medium.create_journal(jid, data).close()
    store = Store(medium)
    store.restore()
    return store.get("k")


Factory = Callable[[], ObjectMedium]


def test_url_options_are_refused_for_a_directory_before_anything_is_made(tmp_path: Path) -> None:
    target = tmp_path / "db"
    for options in ({"takeover": True}, {"retention": 60}, {"storage_options": {"region": "x"}}):
        with pytest.raises(ValueError, match="apply to object-store URLs only"):
            snapkv.open(target, **options)  # type: ignore[arg-type]
    assert not target.exists()
    with pytest.raises(ValueError, match="retention must be >= 0"):
        snapkv.open(memory_url(), retention=-1)
    with pytest.raises(TypeError, match="takeover must be True or False"):
        snapkv.open(memory_url(), takeover="yes")  # type: ignore[arg-type]


def test_obstore_is_not_imported_by_import_snapkv() -> None:
    import subprocess
    import sys

    code = "import sys, snapkv; snapkv.open; print('obstore' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_writer_taken_over_runs_no_retention() -> None:
    url = memory_url()
    quiet = {"retention": 0, "retention_interval": 1e9}  # only the passes asked for here
    old = ObjectMedium(client_of(url), **quiet)  # type: ignore[arg-type]
    old.publish([b"old"])
    new = ObjectMedium(client_of(url), takeover=True, **quiet)  # type: ignore[arg-type]
    new.publish([b"new"])
    with pytest.raises(StoreFencedError, match="retention is the holder's"):
        old.apply_retention(now=time.time() + 10)
    assert new.read() == b"new"
    assert new.apply_retention(now=time.time() + 10)  # the holder's pass deletes the old
    assert new.read() == b"new"
    new.close()


def test_open_a_directory_with_replicate_ships_it_to_the_bucket(tmp_path: Path) -> None:
    url = memory_url()
    store = snapkv.open(tmp_path / "db", replicate=url, replicate_interval=0.05)
    store.update({f"k{i}": str(i) for i in range(10)})
    assert store.replication is not None
    store.close()  # the last upload, then the replica is let go
    with snapkv.open(url) as replica:
        assert dict(replica.items()) == {f"k{i}": str(i) for i in range(10)}


def test_replicate_options_are_checked_before_the_disk(tmp_path: Path) -> None:
    target = tmp_path / "db"
    with pytest.raises(ValueError, match="replicate must be an object-store URL"):
        snapkv.open(target, replicate="not-a-url")
    with pytest.raises(ValueError, match="replicate_interval must be > 0"):
        snapkv.open(target, replicate=memory_url(), replicate_interval=0)
    with pytest.raises(ValueError, match="replicate_interval applies with replicate= only"):
        snapkv.open(target, replicate_interval=5)
    with pytest.raises(ValueError, match="replicate= ships a directory"):
        snapkv.open(memory_url(), replicate=memory_url())
    assert not target.exists()


def test_read_head_is_one_ranged_get_of_a_snapshots_start() -> None:
    from snapkv import codec

    medium = ObjectMedium.from_url(memory_url())
    blob = b"".join(codec.iter_encode_snapshot([(0, ["k"], ["v" * 10_000], None)], journal_next=7))
    medium.publish([blob])
    generation = medium.generations()[0]
    before = medium.client.stats.copy()
    head = medium.read_head(generation, 64)
    assert head == blob[:64]
    assert codec.peek_journal_next(head) == 7
    assert medium.client.stats.bytes_received - before.bytes_received == 64
    assert medium.read_head("snapshot/none", 64) is None
    medium.close()


def test_a_refused_open_names_the_fallback_generation_not_its_epoch() -> None:
    url = memory_url()
    with snapkv.open(url) as store:
        store.set("a", "1")
        store.save()
        store.set("b", "1")
        store.save()
    client = client_of(url)
    manifest = PrefixReader(client).newest_manifest()
    assert manifest is not None
    newest, older = manifest.snapshots[0], manifest.snapshots[1]
    data = bytearray(client.get(newest.name) or b"")
    data[len(data) // 2] ^= 0xFF
    client.delete(newest.name)
    client.put(newest.name, bytes(data))
    with pytest.raises(SnapkvError) as refused:
        snapkv.open(url)
    assert f"(generation {older.generation}) instead" in str(refused.value)


def test_retention_forgets_the_manifests_it_deletes() -> None:
    """A long-running writer's reader holds no manifest retention deleted (memory stays flat)."""
    from snapkv.objstore.retention import apply_retention

    url = memory_url()
    now = [time.time()]
    store, _ = _store_on(url, now, retention=60)
    for round_ in range(5):
        store.set("k", str(round_))
        store.save()
        now[0] += 120
    reader = PrefixReader(client_of(url))
    numbers = reader.manifest_numbers()
    for number in numbers:
        reader.manifest(number)  # cached
    deleted = apply_retention(reader, now_ms=int(now[0] * 1000), window_ms=60_000)
    gone = [lo.manifest_number(name) for name in deleted if name.startswith("manifest/")]
    assert gone
    for number in gone:
        assert number is not None
        with pytest.raises(MediumError, match="is missing"):
            reader.manifest(number)  # read again, not answered from the cache
    store.close()
