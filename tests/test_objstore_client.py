"""ObjectClient: create-if-absent, the ambiguous PUT, retries with backoff, bounded reads, counters.

On obstore's real stores (MemoryStore, LocalStore), with faults injected
between the client and the store by ``snapkv.testing.faulty_objects``.
"""

from __future__ import annotations

import io
import random
import uuid
from pathlib import Path

import pytest

from snapkv.errors import MediumError
from snapkv.objstore.client import ObjectClient, ObstoreTransport, RetryPolicy, _transient, brief
from snapkv.objstore.url import is_object_url, parse_url, split_url
from snapkv.testing.faulty_objects import FaultyTransport


def memory_client(**kwargs: object) -> tuple[ObjectClient, FaultyTransport, list[float]]:
    """A client over a fresh memory prefix, through a fault injector; the sleeps it made."""
    location = parse_url(f"memory://client/{uuid.uuid4().hex}")
    faulty = FaultyTransport(ObstoreTransport(location.store), seed=7)
    slept: list[float] = []
    client = ObjectClient(
        faulty,
        location.prefix,
        url=location.url,
        sleep=slept.append,
        rng=random.Random(3),
        **kwargs,  # type: ignore[arg-type]
    )
    return client, faulty, slept


@pytest.fixture(params=["memory", "local"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectClient:
    url = f"memory://c/{uuid.uuid4().hex}" if request.param == "memory" else f"file://{tmp_path}"
    return ObjectClient.for_location(parse_url(url))


def test_create_if_absent_returns_none_for_our_bytes_and_theirs_otherwise(
    client: ObjectClient,
) -> None:
    assert client.create("segment/1", b"ours") is None
    assert client.create("segment/1", b"ours") is None  # the same bytes: it was ours
    assert client.create("segment/1", b"other") == b"ours"
    assert client.get("segment/1") == b"ours"  # nothing was overwritten


def test_get_list_head_delete_and_ranges(client: ObjectClient) -> None:
    for name in ("b/2", "b/1", "a/1"):
        client.put(name, name.encode() * 3)
    assert [i.name for i in client.list("b")] == ["b/1", "b/2"]
    assert client.get("missing") is None
    assert client.head("missing") is None
    head = client.head("b/1")
    assert head is not None and head.size == 9
    assert client.get_range("b/1", 3, 6) == b"b/1"
    assert list(client.stream("b/1", 9, chunk_size=4)) == [b"b/1b", b"/1b/", b"1"]
    client.delete("b/1")
    client.delete("b/1")  # already gone: no error
    assert [i.name for i in client.list("b")] == ["b/2"]


def test_stream_refuses_a_truncated_object_naming_it(client: ObjectClient) -> None:
    client.put("snapshot/x", b"short")
    with pytest.raises(MediumError, match=r"snapshot/x"):
        list(client.stream("snapshot/x", 10, chunk_size=4))


def test_upload_sends_a_file_and_a_retry_rewinds_it() -> None:
    client, faulty, _ = memory_client()
    faulty.script("upload", "reset")
    data = bytes(range(256)) * 100
    client.upload("snapshot/big", io.BytesIO(data), len(data))
    assert client.get("snapshot/big") == data
    assert client.stats.retries == 1


def test_throttling_and_resets_are_retried_with_growing_jittered_backoff() -> None:
    client, faulty, slept = memory_client(policy=RetryPolicy(attempts=6, base=0.1, cap=0.4))
    faulty.script("get", "throttle", "reset", "throttle", "reset")
    client.put("k", b"v")
    assert client.get("k") == b"v"
    assert client.stats.retries == 4
    assert client.stats.requests["get"] == 5  # each try counted
    caps = [0.1, 0.2, 0.4, 0.4]
    assert all(0 <= s <= cap for s, cap in zip(slept, caps, strict=True))
    assert len(set(slept)) == len(slept)  # jitter: not one fixed delay


def test_retries_give_up_after_the_policy_naming_the_object() -> None:
    client, faulty, slept = memory_client(policy=RetryPolicy(attempts=3))
    faulty.down = True
    with pytest.raises(MediumError, match=r"manifest/7.*gave up after 3 tries"):
        client.create("manifest/7", b"x")
    assert len(slept) == 2
    assert client.stats.failures == 1


def test_ambiguous_put_that_took_effect_is_a_success_on_retry() -> None:
    client, faulty, _ = memory_client()
    faulty.script("put", "lost_reply")  # the PUT lands, its reply is lost
    assert client.create("segment/3", b"mine") is None
    assert client.get("segment/3") == b"mine"
    assert client.stats.retries == 1


def test_ambiguous_put_that_lost_to_another_writer_returns_their_bytes() -> None:
    client, faulty, _ = memory_client()
    faulty.script("put", "reset")  # our first try never reached the store ...
    other = ObjectClient(faulty.inner, client.prefix)
    other.create("segment/3", b"theirs")  # ... and another writer created the name
    assert client.create("segment/3", b"mine") == b"theirs"


def test_counters_count_bytes_both_ways() -> None:
    client, _, _ = memory_client()
    client.create("a", b"12345")
    client.get("a")
    stats = client.stats.copy()
    assert (stats.bytes_sent, stats.bytes_received) == (5, 5)
    assert stats.total_requests == 2


def test_listing_is_sorted_whatever_order_the_store_gives() -> None:
    client, faulty, _ = memory_client()
    faulty.reorder = True
    names = [f"segment/{n:020d}" for n in range(1, 30)]
    for name in names:
        client.create(name, b"x")
    assert [i.name for i in client.list("segment")] == names


def test_urls_of_every_scheme() -> None:
    assert split_url("s3://bucket/a/b/") == ("s3", "bucket", "a/b")
    assert split_url("gs://b/p") == ("gs", "b", "p")
    assert split_url("abfs://container/x") == ("abfs", "container", "x")
    assert split_url("AZ://c") == ("az", "c", "")
    assert split_url("file:///tmp/d/") == ("file", "/tmp/d", "")
    assert is_object_url("s3://b/p") and is_object_url("memory://n")
    assert not is_object_url("data") and not is_object_url("http://x/y")
    assert not is_object_url(Path("s3:/b"))
    with pytest.raises(ValueError, match="no bucket"):
        split_url("s3:///p")
    with pytest.raises(ValueError, match="absolute path"):
        split_url("file://relative")
    with pytest.raises(ValueError, match="not an object-store URL"):
        split_url("ftp://x/y")


def test_s3_endpoint_and_keys_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    location = parse_url("s3://bucket/pre/fix")
    assert location.prefix == "pre/fix"
    assert location.store.config["endpoint"] == "http://127.0.0.1:9"
    assert location.store.config["region"] == "eu-west-3"
    assert location.store.client_options["allow_http"] in (True, "true")
    other = parse_url("s3://bucket/p", {"endpoint": "https://s3.example", "region": "us-east-2"})
    assert other.store.config["region"] == "us-east-2"
    assert "allow_http" not in (other.store.client_options or {})


def test_memory_urls_of_one_name_share_a_store() -> None:
    first = ObjectClient.for_location(parse_url("memory://shared-name/p"))
    second = ObjectClient.for_location(parse_url("memory://shared-name/p"))
    first.put("x", b"1")
    assert second.get("x") == b"1"


@pytest.mark.parametrize(
    ("text", "retried"),
    [
        ("Server returned non-2xx status code: 503 Service Unavailable: SlowDown", True),
        ("Server returned non-2xx status code: 500 Internal Server Error", True),
        ("Server returned non-2xx status code: 429 Too Many Requests", True),
        ("Server returned non-2xx status code: 404 Not Found: <Code>NoSuchBucket</Code>", False),
        ("Server returned non-2xx status code: 403 Forbidden: connection details", False),
        ("HTTP error: error sending request", True),
        ("operation timed out", True),
        ("Connection reset by peer", True),
        ("invalid configuration", False),
    ],
)
def test_which_store_errors_are_retried(text: str, retried: bool) -> None:
    assert _transient(text) is retried


def test_an_s3_error_is_said_in_one_line_with_its_code() -> None:
    raw = (
        "Error performing GET http://h/b in 3ms - Server returned non-2xx status code: "
        '404 Not Found: <?xml version="1.0"?>\n<Error><Code>NoSuchBucket</Code>'
        "<Message>The specified bucket does not exist</Message></Error>\n\nDebug source:\nGeneric {"
    )
    assert brief(Exception(raw)) == (
        "Error performing GET http://h/b in 3ms - Server returned non-2xx status code: "
        "404 Not Found: NoSuchBucket: The specified bucket does not exist"
    )


def test_gcs_and_azure_urls_make_their_stores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_NAME", "account")
    gcs = parse_url("gs://bucket/a/b")
    azure = parse_url("abfss://container/x")
    assert (gcs.kind, gcs.prefix, type(gcs.store).__name__) == ("gcs", "a/b", "GCSStore")
    assert (azure.kind, azure.prefix, type(azure.store).__name__) == ("azure", "x", "AzureStore")
    assert "container" in repr(azure)  # the store itself is left out: it cannot print
