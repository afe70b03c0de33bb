"""The object layout's bytes and rules (FORMAT.md part 3): each check, the fold, a moment.

Damaged objects on a real prefix: every failure names the object and the check.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import uuid
import zlib
from pathlib import Path

import pytest

import snapkv
from snapkv.errors import MediumError
from snapkv.objstore import layout as lo
from snapkv.objstore.client import ObjectClient
from snapkv.objstore.medium import ObjectMedium
from snapkv.objstore.reader import PrefixReader
from snapkv.objstore.url import parse_url

WRITER = lo.Writer("abc", "host", 42)


def segment(**fields: object) -> lo.Segment:
    base: dict[str, object] = {
        "kind": lo.KIND_WRITE,
        "epoch": 2,
        "journal": 5,
        "offset": 0,
        "written_ms": 1_000,
        "payload": b"headrec1rec22",
        "times": ((4, 1_000), (8, 1_001), (13, 1_005)),
    }
    base.update(fields)
    return lo.Segment(**base)  # type: ignore[arg-type]


# ------------------------------------------------------------------- names


def test_names_are_zero_padded_numbers_that_sort_as_numbers() -> None:
    assert lo.manifest_name(7) == "manifest/00000000000000000007"
    assert lo.segment_name(12) == "segment/00000000000000000012"
    assert lo.snapshot_name(3, 2) == "snapshot/00000000000000000003-00000000000000000002.skv"
    assert lo.manifest_number(lo.manifest_name(10**19)) == 10**19
    assert lo.segment_number("segment/12") is None
    assert lo.snapshot_numbers(lo.snapshot_name(3, 2)) == (3, 2)
    assert sorted(lo.segment_name(n) for n in (10, 9, 100)) == [
        lo.segment_name(n) for n in (9, 10, 100)
    ]
    with pytest.raises(ValueError):
        lo.segment_name(0)


# ---------------------------------------------------------------- segments


def test_segment_round_trip_and_its_header_is_the_spec() -> None:
    seg = segment()
    data = lo.encode_segment(seg)
    assert lo.decode_segment(data) == seg
    fields = lo.SEGMENT_HEADER.unpack_from(data)
    assert fields[:2] == (b"SKVG", 1)
    assert fields[4:] == (2, 5, 0, 1_000, 1_000, 1_005, 13, 6)  # times: (4,0) (4,1) (5,4)
    assert data[64 : 64 + 13] == b"headrec1rec22"
    assert data[77:83] == bytes([4, 0, 4, 1, 5, 4])
    assert struct.unpack("<I", data[-4:])[0] == zlib.crc32(data[:-4])
    ref = seg.ref(9, data)
    assert (ref.first_ms, ref.last_ms, ref.size, ref.length) == (1_000, 1_005, len(data), 13)


def _resealed(data: bytes) -> bytes:
    return data[:-4] + struct.pack("<I", zlib.crc32(data[:-4]))


@pytest.mark.parametrize(
    ("damage", "check"),
    [
        (lambda d: d[:40], "segment-truncated"),
        (lambda d: d[:-1], "segment-truncated"),
        (lambda d: d[:70] + bytes([d[70] ^ 1]) + d[71:], "segment-crc"),
        (lambda d: _resealed(b"XKVG" + d[4:]), "segment-magic"),
        (lambda d: _resealed(d[:4] + b"\x02" + d[5:]), "version"),
        (lambda d: _resealed(d[:5] + b"\x09" + d[6:]), "segment-kind"),
        (lambda d: _resealed(d[:-5] + b"\x09" + d[-4:]), "segment-times"),
        (lambda d: _resealed(d[:6] + b"\x01" + d[7:]), "segment-magic"),
    ],
    ids=["short", "cut", "crc", "magic", "version", "kind", "times", "reserved"],
)
def test_each_segment_check_names_the_object(damage: object, check: str) -> None:
    data = damage(lo.encode_segment(segment()))  # type: ignore[operator]
    with pytest.raises(lo.LayoutError, match=rf"^s3://b/p/segment/9: .*\(check {check}\)"):
        lo.decode_segment(data, "s3://b/p/segment/9")


# ---------------------------------------------------------------- manifest


def manifest(**fields: object) -> lo.Manifest:
    seg = lo.encode_segment(segment())
    base: dict[str, object] = {
        "number": 3,
        "epoch": 2,
        "writer": WRITER,
        "heartbeat_ms": 5_000,
        "snapshots": (lo.SnapshotRef(4, 2, 100, 0xDEAD, 4_000),),
        "next_generation": 5,
        "segments_from": 9,
        "segments": (segment().ref(9, seg),),
        "tail_from": 10,
        "retention_ms": 1_000,
        "clock_ms": 1_005,
    }
    base.update(fields)
    return lo.Manifest(**base)  # type: ignore[arg-type]


def test_manifest_round_trip_and_envelope() -> None:
    data = lo.encode_manifest(manifest())
    assert lo.decode_manifest(data) == manifest()
    magic, version, length, crc = struct.unpack_from("<4sB3xII", data)
    assert (magic, version, length) == (b"SKVM", 1, len(data) - 16)
    assert crc == zlib.crc32(data[16:])


@pytest.mark.parametrize(
    ("damage", "check"),
    [
        (lambda d: d[:10], "manifest-truncated"),
        (lambda d: d[:-3], "manifest-truncated"),
        (lambda d: d[:20] + bytes([d[20] ^ 1]) + d[21:], "manifest-crc"),
        (lambda d: b"SKVX" + d[4:], "manifest-magic"),
        (lambda d: d[:4] + b"\x07" + d[5:], "version"),
        (lambda d: d[:6] + b"\x01" + d[7:], "manifest-magic"),
    ],
    ids=["short", "cut", "crc", "magic", "version", "reserved"],
)
def test_each_manifest_check_names_the_object(damage: object, check: str) -> None:
    data = damage(lo.encode_manifest(manifest()))  # type: ignore[operator]
    with pytest.raises(lo.LayoutError, match=rf"^m/3: .*\(check {check}\)"):
        lo.decode_manifest(data, "m/3")


def _with_body(**changes: object) -> bytes:
    """A manifest whose JSON body has ``changes`` (``None``: the field removed), resealed."""
    import json

    data = lo.encode_manifest(manifest())
    body = json.loads(data[16:])
    for key, value in changes.items():
        if value is None:
            del body[key]
        else:
            body[key] = value
    raw = json.dumps(body).encode()
    return struct.pack("<4sB3xII", b"SKVM", 1, len(raw), zlib.crc32(raw)) + raw


@pytest.mark.parametrize(
    ("changes", "check"),
    [
        ({"format": 2}, "version"),
        ({"format": True}, "version"),
        ({"released": 1}, "manifest-body"),
        ({"released": "no"}, "manifest-body"),
        ({"clock_ms": None}, "manifest-body"),
    ],
    ids=["format-2", "format-bool", "released-int", "released-text", "no-clock"],
)
def test_the_body_fields_are_checked_as_the_spec_says(
    changes: dict[str, object], check: str
) -> None:
    assert lo.decode_manifest(_with_body()) == manifest()
    with pytest.raises(lo.LayoutError, match=rf"\(check {check}\)"):
        lo.decode_manifest(_with_body(**changes), "m/3")


def test_a_manifest_whose_segments_are_not_consecutive_is_refused() -> None:
    data = lo.encode_manifest(manifest(tail_from=11))
    with pytest.raises(lo.LayoutError, match="manifest-body"):
        lo.decode_manifest(data)
    body = b'{"format":1}'
    envelope = struct.pack("<4sB3xII", b"SKVM", 1, len(body), zlib.crc32(body)) + body
    with pytest.raises(lo.LayoutError, match="manifest-body"):
        lo.decode_manifest(envelope)


# -------------------------------------------------------------------- fold


def w(jid: int, offset: int, payload: bytes, *times: tuple[int, int], at: int = 0) -> lo.Segment:
    return lo.Segment(lo.KIND_WRITE, 1, jid, offset, at, payload, tuple(times))


def test_fold_applies_writes_cuts_drops_in_order() -> None:
    pairs = [
        (1, w(1, 0, b"H1", (2, 10))),
        (2, w(1, 2, b"aa", (4, 11))),
        (3, w(2, 0, b"H2", (2, 12))),
        (4, w(1, 3, b"", at=13)),  # a cut
        (5, w(1, 3, b"bb", (5, 14))),
        (6, lo.Segment(lo.KIND_FENCE, 2, written_ms=15)),
        (7, w(3, 0, b"H3", (2, 16))),
        (8, lo.Segment(lo.KIND_DROP, 2, 3, written_ms=17)),
        (9, lo.Segment(lo.KIND_DROP_BELOW, 2, 2, written_ms=18)),
    ]
    assert lo.fold_segments(pairs) == {2: bytearray(b"H2")}
    assert lo.fold_segments(pairs[:7]) == {1: b"H1abb", 2: b"H2", 3: b"H3"}


def test_fold_at_a_moment_keeps_exactly_the_writes_until_then() -> None:
    pairs = [
        (1, w(1, 0, b"Hrec1rec2", (1, 10), (5, 20), (9, 30))),
        (2, w(1, 9, b"rec3", (4, 40))),
    ]
    assert lo.fold_segments(pairs, until_ms=9) == {}
    assert lo.fold_segments(pairs, until_ms=10) == {1: b"H"}
    assert lo.fold_segments(pairs, until_ms=29) == {1: b"Hrec1"}
    assert lo.fold_segments(pairs, until_ms=39) == {1: b"Hrec1rec2"}
    assert lo.fold_segments(pairs, until_ms=40) == {1: b"Hrec1rec2rec3"}


def test_fold_names_a_gap() -> None:
    with pytest.raises(lo.LayoutError, match=r"segment 4 writes journal 1 at offset 9.*gap"):
        lo.fold_segments([(3, w(1, 0, b"H", (1, 1))), (4, w(1, 9, b"x", (10, 2)))])
    with pytest.raises(lo.LayoutError, match=r"segment 4 continues journal 2.*missing"):
        lo.fold_segments([(4, w(2, 5, b"x", (1, 2)))])


# ---------------------------------------------- damage on a real prefix, named


def written_prefix() -> tuple[str, ObjectClient]:
    url = f"memory://damage/{uuid.uuid4().hex}"
    store = snapkv.open(url, fsync="always")
    store.update({"a": "1", "b": "2"})
    store.save()
    store.set("c", "3")
    store.set("d", "4")
    store.close()
    return url, ObjectClient.for_location(parse_url(url))


def test_a_missing_segment_is_named_with_the_journal_bytes_lost() -> None:
    url, client = written_prefix()
    newest = PrefixReader(client).newest_manifest()
    assert newest is not None
    lost = next(r for r in newest.segments if r.kind == lo.KIND_WRITE and r.offset > 0)
    client.delete(lost.name)
    with pytest.raises(
        MediumError, match=rf"{lost.name} is missing .*journal {lost.journal} bytes"
    ):
        snapkv.open(url)


def test_a_truncated_segment_is_refused_naming_it() -> None:
    url, client = written_prefix()
    newest = PrefixReader(client).newest_manifest()
    assert newest is not None
    victim = newest.segments[-1].name
    data = client.get(victim)
    assert data is not None
    client.delete(victim)
    client.put(victim, data[:-7])
    with pytest.raises(MediumError, match=rf"{victim}: .*check segment-manifest"):
        snapkv.open(url)


def test_a_damaged_newest_manifest_is_refused_naming_it() -> None:
    url, client = written_prefix()
    numbers = PrefixReader(client).manifest_numbers()
    name = lo.manifest_name(numbers[-1])
    data = client.get(name)
    assert data is not None
    client.delete(name)
    client.put(name, data[:16] + bytes([data[16] ^ 0xFF]) + data[17:])
    with pytest.raises(lo.LayoutError, match=rf"{name}: CRC-32 mismatch.*manifest-crc"):
        snapkv.open(url)


def test_a_missing_snapshot_is_named() -> None:
    url, client = written_prefix()
    newest = PrefixReader(client).newest_manifest()
    assert newest is not None
    client.delete(newest.snapshots[0].name)
    with pytest.raises(MediumError, match=rf"{newest.snapshots[0].name} is missing"):
        snapkv.open(url)


def test_snapkv_check_url_finds_each_damage(tmp_path: Path) -> None:
    url, client = written_prefix()
    clean = subprocess.run(
        [sys.executable, "-m", "snapkv", "check", f"file://{tmp_path}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert clean.returncode == 0, clean.stdout + clean.stderr  # an empty prefix is fine
    from snapkv.check.objects import check_objects

    assert check_objects(url).ok
    newest = PrefixReader(client).newest_manifest()
    assert newest is not None
    snap = newest.snapshots[0]
    data = client.get(snap.name)
    assert data is not None
    client.put(snap.name, data[:-1] + bytes([data[-1] ^ 1]))
    client.delete(newest.segments[-1].name)
    report = check_objects(url)
    problems = {(o.name, o.status) for o in report.problems}
    assert problems == {(snap.name, "damaged"), (newest.segments[-1].name, "missing")}
    assert report.prediction == "refuses"
    assert not report.ok


def test_fallback_loads_the_older_snapshot_and_unlists_the_damaged_one() -> None:
    url = f"memory://fallback/{uuid.uuid4().hex}"
    store = snapkv.open(url, journal=False)
    store.set("k", "old")
    store.save()
    store.set("k", "new")
    store.save()
    store.close()  # nothing unsaved: publishes nothing more
    client = ObjectClient.for_location(parse_url(url))
    newest = PrefixReader(client).newest_manifest()
    assert newest is not None and len(newest.snapshots) == 2
    damaged = newest.snapshots[0].name
    data = client.get(damaged)
    assert data is not None
    client.put(damaged, data[:-3] + b"xyz")
    with pytest.raises(snapkv.CorruptSnapshotError, match=damaged):
        snapkv.open(url, journal=False)
    with snapkv.open(url, journal=False, fallback=True) as store:
        assert store.get("k") == "old"
        assert store.last_restore is not None
        assert store.last_restore.skipped[0][0] == damaged
        listed = store.medium.generations()
        assert damaged not in listed


# ----------------------------------------------------- repair of a damaged prefix


def journaled_prefix(writes: int) -> tuple[str, ObjectClient, list[int]]:
    """A prefix whose journal holds ``writes`` sets of ``k{i}``, one segment each."""
    url = f"memory://repair/{uuid.uuid4().hex}"
    store = snapkv.open(url, fsync="always")
    client = ObjectClient.for_location(parse_url(url))
    seqs = []
    for i in range(writes):
        store.set(f"k{i}", str(i))
        seqs.append(max(lo.segment_number(o.name) or 0 for o in client.list("segment")))
    store.close()
    return url, client, seqs


@pytest.mark.parametrize("how", ["damaged", "missing"])
def test_repair_stops_history_before_a_bad_segment_and_the_prefix_opens_again(how: str) -> None:
    url, client, seqs = journaled_prefix(6)
    victim = lo.segment_name(seqs[3])  # the segment of k3
    if how == "damaged":
        data = client.get(victim)
        assert data is not None
        client.put(victim, data[:-1] + bytes([data[-1] ^ 1]))
    else:
        client.delete(victim)
    with pytest.raises(MediumError, match=rf"{victim}.*open\(repair=True\) keeps"):
        snapkv.open(url)
    with snapkv.open(url, repair=True) as store:
        assert dict(store.items()) == {f"k{i}": str(i) for i in range(3)}
        medium = store.medium
        assert isinstance(medium, ObjectMedium)
        assert victim in medium.repaired[0]
        assert "history stops before it" in medium.repaired[1]
        store.set("after", "repair")
    with snapkv.open(url) as store:  # the newest state no longer reaches the damage
        assert store.get("k2") == "2"
        assert store.get("k3") is None
        assert store.get("after") == "repair"
