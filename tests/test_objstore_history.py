"""A prefix's history: point-in-time reads equal the model at every instant, across everything.

Writes at known times (an injected clock), through rotations (snapshots),
consolidations of the journal, a takeover by a second writer and a repair;
then :meth:`PrefixReader.at` at every instant, loaded into a Store, must
hold exactly what the model held then.
"""

from __future__ import annotations

import random
import uuid

import pytest

from snapkv.media import MemoryMedium
from snapkv.objstore.client import ObjectClient
from snapkv.objstore.medium import ObjectMedium
from snapkv.objstore.reader import PointInTime, PrefixReader
from snapkv.objstore.url import parse_url
from snapkv.store import Store


def load(reader: PrefixReader, state: PointInTime) -> dict[str, str]:
    """The keyspace a directory of ``state``'s snapshot and journals opens to."""
    medium = MemoryMedium()
    if state.snapshot is not None:
        medium.publish(reader.snapshot_chunks(state.snapshot))
    for jid, data in state.journals.items():
        medium.create_journal(jid, data).close()
    store = Store(medium)
    store.restore()
    return dict(store.items())


class Clock:
    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


def writer(url: str, clock: Clock, *, takeover: bool = False, consolidate: int = 7) -> Store:
    client = ObjectClient.for_location(parse_url(url))
    medium = ObjectMedium(client, takeover=takeover, consolidate_after=consolidate, clock=clock)
    store = Store(medium, journal=True, fsync="always", clock=clock, compact_min_bytes=10**9)
    store.restore()
    return store


@pytest.mark.parametrize("seed", [11, 12])
def test_every_instant_reads_back_as_the_model_held_it(seed: int) -> None:
    rng = random.Random(seed)
    url = f"memory://history/{uuid.uuid4().hex}"
    clock = Clock()
    store = writer(url, clock)
    model: dict[str, str] = {}
    moments: list[tuple[int, dict[str, str]]] = []
    for step in range(160):
        clock.now += rng.choice([0.001, 0.003, 0.01])
        key = f"k{rng.randrange(12)}"
        if rng.random() < 0.2 and key in model:
            store.delete(key)
            del model[key]
        else:
            model[key] = f"{step}"
            store.set(key, model[key])
        moments.append((int(clock.now * 1000), dict(model)))
        if step % 45 == 44:
            store.save()  # a rotation: snapshot, next journal, the old one dropped
        if step == 100:
            store = writer(url, clock, takeover=True)  # the old writer "died"
    reader = PrefixReader(ObjectClient.for_location(parse_url(url)))
    assert len(reader.manifest_numbers()) > 6, "consolidations and rotations made manifests"
    for at_ms, _ in moments[::3] + moments[-1:]:
        # The state at an instant holds every write of that millisecond.
        last = max(i for i, (ms, _) in enumerate(moments) if ms == at_ms)
        assert load(reader, reader.at(at_ms)) == moments[last][1], at_ms
    assert load(reader, reader.at()) == model


def test_consolidation_bounds_what_an_open_reads() -> None:
    url = f"memory://consolidate/{uuid.uuid4().hex}"
    clock = Clock()
    store = writer(url, clock, consolidate=10)
    for i in range(95):
        clock.now += 0.001
        store.set(f"k{i}", str(i))
    client = ObjectClient.for_location(parse_url(url))
    state = PrefixReader(client).at()
    assert len(state.segments) <= 12, "an open reads at most about consolidate_after segments"
    reopened = writer(url, clock, takeover=True)
    assert dict(reopened.items()) == {f"k{i}": str(i) for i in range(95)}


def _buffered_writer(url: str, clock: Clock) -> tuple[Store, ObjectMedium]:
    """A Store whose writes wait in the medium's buffer until a rotation or close."""
    client = ObjectClient.for_location(parse_url(url))
    medium = ObjectMedium(client, retention_interval=1e9, clock=clock)
    store = Store(medium, journal=True, fsync="no", clock=clock)
    store.restore()
    return store, medium


def _at(url: str, at_ms: int) -> dict[str, str]:
    reader = PrefixReader(ObjectClient.for_location(parse_url(url)))
    return load(reader, reader.at(at_ms))


def test_a_write_buffered_while_a_snapshot_uploads_is_at_its_instant() -> None:
    """The drop-below after a publish goes out after the writes other journals buffer."""
    url = f"memory://tests/{uuid.uuid4().hex}"
    clock = Clock()
    store, medium = _buffered_writer(url, clock)
    store.set("k", "0")
    store.save()
    store.set("k", "1")
    store.save()
    clock.now += 1
    original = medium.publish
    moment: list[int] = []

    def slow_publish(pieces: object) -> None:
        clock.now += 1
        store.set("during", "yes")  # appended now, buffered in the newest journal
        moment.append(int(clock.now * 1000))
        clock.now += 1
        original(pieces)  # type: ignore[arg-type]

    medium.publish = slow_publish  # type: ignore[method-assign]
    store.save()
    medium.publish = original  # type: ignore[method-assign]
    clock.now += 1
    store.close()
    assert _at(url, moment[0])["during"] == "yes"
    assert "during" not in _at(url, moment[0] - 1)


def test_a_write_buffered_when_the_next_journal_is_created_is_at_its_instant() -> None:
    url = f"memory://tests/{uuid.uuid4().hex}"
    clock = Clock()
    store, medium = _buffered_writer(url, clock)
    store.set("k", "0")
    store.save()
    clock.now += 1
    original = medium.create_journal
    moment: list[int] = []

    def late_create(jid: int, header: bytes) -> object:
        store.set("between", "yes")  # lands in the old journal, after its sync
        moment.append(int(clock.now * 1000))
        clock.now += 1
        return original(jid, header)

    medium.create_journal = late_create  # type: ignore[method-assign]
    store.save()
    medium.create_journal = original  # type: ignore[method-assign]
    clock.now += 1
    store.close()
    assert _at(url, moment[0])["between"] == "yes"


def test_a_moment_in_the_past_fetches_only_the_segments_it_folds() -> None:
    """A busy hour after T costs no GETs: reading stops at the first segment past T."""
    url = f"memory://tests/{uuid.uuid4().hex}"
    clock = Clock()
    store = writer(url, clock, consolidate=10**6)
    store.set("k", "early")
    at_ms = int(clock.now * 1000)
    for i in range(300):  # one segment per acknowledged write
        clock.now += 10
        store.set("k", str(i))
    store.close()
    client = ObjectClient.for_location(parse_url(url))
    reader = PrefixReader(client)
    state = reader.at(at_ms)
    assert load(reader, state) == {"k": "early"}
    assert client.stats.requests.get("get", 0) < 40
    assert load(reader, reader.at(at_ms + 10_000)) == {"k": "0"}


def test_consolidations_send_at_most_about_twice_the_bytes_written() -> None:
    """Putting the journals again is paced by what was written since: never quadratic."""
    url = f"memory://tests/{uuid.uuid4().hex}"
    client = ObjectClient.for_location(parse_url(url))
    medium = ObjectMedium(client, consolidate_after=100, retention_interval=1e9)
    store = Store(medium, journal=True, fsync="always")
    store.restore()
    before = client.stats.bytes_sent
    for i in range(3000):
        store.set(f"k{i}", "x" * 1000)
    sent = client.stats.bytes_sent - before
    store.close()
    assert sent < 4 * 3000 * 1000, f"{sent / 3_000_000:.1f}x the bytes written were uploaded"
    state = PrefixReader(client).at()
    # An open reads the segments since the last consolidation: at most the
    # last half of the journal's bytes once it is large (not all 3,000).
    assert len(state.segments) <= 100 + 3000 // 2, len(state.segments)


def test_a_consolidation_puts_a_large_journal_in_pieces_and_every_instant_stays_exact() -> None:
    url = f"memory://tests/{uuid.uuid4().hex}"
    clock = Clock()
    client = ObjectClient.for_location(parse_url(url))
    medium = ObjectMedium(client, consolidate_after=20, clock=clock, retention_interval=1e9)
    medium.consolidate_piece = 2000
    store = Store(medium, journal=True, fsync="always", clock=clock, compact_min_bytes=10**9)
    store.restore()
    moments: list[tuple[int, int]] = []
    for i in range(60):
        clock.now += 1
        store.set(f"k{i}", "v" * 300)
        moments.append((int(clock.now * 1000), i))
    store.close()
    reader = PrefixReader(client)
    state = reader.at()
    sizes = [len(segment.payload) for _, segment in state.pairs]
    assert max(sizes) < 2000 + 400, "a consolidation piece is about consolidate_piece bytes"
    assert sum(1 for _, s in state.pairs if s.offset == 0) == 1, "one journal, put once from 0"
    assert len(load(reader, state)) == 60
    for at_ms, last in moments[::7]:
        assert load(reader, reader.at(at_ms)) == {f"k{i}": "v" * 300 for i in range(last + 1)}
