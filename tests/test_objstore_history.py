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
