"""The object client under injected faults: retries, the ambiguous PUT, an unreachable store.

The faults are :class:`~snapkv.testing.faulty_objects.FaultyTransport`'s,
around obstore's in-memory store (the real transport, the real client):
every failure a bucket shows, injected where a test needs it.
"""

from __future__ import annotations

import random

import pytest

from snapkv.errors import MediumError
from snapkv.objstore.client import ObjectClient, ObstoreTransport, RetryPolicy
from snapkv.testing.faulty_objects import FaultyTransport

obstore_store = pytest.importorskip("obstore.store")


class Sleeps:
    """Records the backoff the client asks for instead of waiting it."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def _client(faulty: FaultyTransport, *, attempts: int = 8) -> tuple[ObjectClient, Sleeps]:
    sleeps = Sleeps()
    client = ObjectClient(
        faulty,
        "db",
        url="memory://test/db",
        policy=RetryPolicy(attempts=attempts),
        sleep=sleeps,
        rng=random.Random(1),
    )
    return client, sleeps


def _faulty(**kwargs: object) -> FaultyTransport:
    return FaultyTransport(ObstoreTransport(obstore_store.MemoryStore()), **kwargs)  # type: ignore[arg-type]


def test_a_put_whose_reply_was_lost_is_retried_into_success() -> None:
    faulty = _faulty()
    client, sleeps = _client(faulty)
    faulty.script("put", "lost_reply", "reset")
    assert client.create("segment/1", b"records") is None
    # The first PUT landed; the second never reached the store; the third
    # found the same bytes there (412): ours, so the create succeeded.
    assert client.get("segment/1") == b"records"
    assert faulty.calls["put"] == 3
    assert client.stats.retries == 2
    assert len(sleeps.waits) == 2


def test_a_lost_reply_over_another_writers_object_reports_their_bytes() -> None:
    faulty = _faulty()
    client, _ = _client(faulty)
    assert client.create("manifest/1", b"theirs") is None
    faulty.script("put", "lost_reply")
    assert client.create("manifest/1", b"ours") == b"theirs"
    assert client.get("manifest/1") == b"theirs"


@pytest.mark.parametrize("fault", ["reset", "throttle"])
def test_a_refused_request_changes_nothing_and_is_retried(fault: str) -> None:
    faulty = _faulty()
    client, sleeps = _client(faulty)
    faulty.script("put", fault, fault, fault)
    client.put("snapshot/7", b"body")
    assert client.get("snapshot/7") == b"body"
    assert client.stats.retries == 3
    assert faulty.calls["put"] == 4
    # Exponential backoff with full jitter: each wait under a doubling cap.
    policy = client.policy
    for attempt, wait in enumerate(sleeps.waits, start=1):
        assert 0 <= wait <= min(policy.cap, policy.base * 2 ** (attempt - 1))


def test_an_unreachable_store_fails_for_good_after_the_retry_budget_naming_the_object() -> None:
    faulty = _faulty()
    client, sleeps = _client(faulty, attempts=4)
    faulty.down = True
    with pytest.raises(MediumError, match=r"memory://test/db/segment/9.*4 tries"):
        client.create("segment/9", b"x")
    assert faulty.injected["down"] == 4
    assert len(sleeps.waits) == 3
    faulty.down = False
    assert client.create("segment/9", b"x") is None


def test_random_faults_are_replayed_exactly_from_their_seed() -> None:
    def run(seed: int) -> list[tuple[str, int]]:
        faulty = _faulty(seed=seed, rates={"reset": 0.2, "lost_reply": 0.2, "throttle": 0.1})
        client, _ = _client(faulty, attempts=50)
        for i in range(40):
            assert client.create(f"segment/{i:04d}", b"%d" % i) is None
        for i in range(40):
            assert client.get(f"segment/{i:04d}") == b"%d" % i
        return sorted(faulty.injected.items())

    first = run(7)
    assert first == run(7)
    assert first != run(8)
    assert sum(n for _, n in first) > 10


def test_a_shuffled_listing_is_still_sorted_by_the_client() -> None:
    faulty = _faulty(seed=3, reorder=True)
    client, _ = _client(faulty)
    names = [f"segment/{i:020d}" for i in range(30)]
    for name in reversed(names):
        client.put(name, b"")
    raw = [info.name for info in faulty.list("db/segment/")]
    assert raw != sorted(raw)  # the fault did shuffle
    assert [info.name for info in client.list("segment")] == names


def test_slow_requests_wait_and_then_succeed() -> None:
    sleeps = Sleeps()
    faulty = FaultyTransport(
        ObstoreTransport(obstore_store.MemoryStore()), slow_seconds=0.25, sleep=sleeps
    )
    client, _ = _client(faulty)
    faulty.script("get", "slow")
    client.put("a", b"1")
    assert client.get("a") == b"1"
    assert sleeps.waits == [0.25]
    assert client.stats.retries == 0


def test_unknown_fault_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown fault kinds"):
        _faulty(rates={"explode": 1.0})
    with pytest.raises(ValueError, match="unknown fault"):
        _faulty().script("put", "explode")
