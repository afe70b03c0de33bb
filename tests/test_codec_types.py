"""Round trips and layout of snapshot format v3: hashes, lists, sets and sorted sets.

The corruption side of CONTAINERS records (one named test per check, the
truncation and bit-flip sweeps) is in ``test_codec_corruption.py``, with
the checks every other record has; the independent reader's agreement is
in ``test_format_spec.py``.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snapkv import codec, codec_types
from snapkv.values.hashes import Hash
from snapkv.values.lists import List
from snapkv.values.sets import Set
from snapkv.values.zsets import ZSet

FAST = settings(max_examples=60, deadline=None)

any_char = st.characters(min_codepoint=0, max_codepoint=0x10FFFF)
tricky_text = st.text(
    alphabet=st.one_of(any_char, st.sampled_from([*codec.SEPARATORS, "\ud800", "😀"])),
    max_size=8,
)
scores = st.floats(allow_nan=False)
containers = st.one_of(
    st.dictionaries(tricky_text, tricky_text, min_size=1, max_size=6).map(Hash),
    st.lists(tricky_text, min_size=1, max_size=6).map(List),
    st.sets(tricky_text, min_size=1, max_size=6).map(Set),
    st.dictionaries(tricky_text, scores, min_size=1, max_size=6).map(
        lambda d: ZSet((s, m) for m, s in d.items())
    ),
)
values = st.one_of(tricky_text, containers)
spaces_strategy = st.dictionaries(
    st.integers(0, 3), st.dictionaries(tricky_text, values, min_size=1, max_size=6), max_size=3
)


def encode(
    spaces: dict[int, dict[str, Any]], expires: dict[int, dict[str, int]] | None = None
) -> bytes:
    """The snapshot of ``spaces`` (keyspace -> key -> value) with the given expiry times."""
    expires = expires or {}
    columns = []
    for number in sorted(spaces):
        mapping = spaces[number]
        timed = expires.get(number)
        times = None if timed is None else [timed.get(key, 0) for key in mapping]
        columns.append((number, list(mapping), list(mapping.values()), times))
    return b"".join(codec.iter_encode_snapshot(columns))


def records(data: bytes) -> list[tuple[int, int, bytes]]:
    """(offset, type, body) of every record, trusting the lengths (the data is valid)."""
    found = []
    pos = codec.HEADER_SIZE
    while pos < len(data):
        _crc, length, kind = codec.FRAME.unpack_from(data, pos)
        found.append((pos, kind, data[pos + codec.FRAME_SIZE : pos + codec.FRAME_SIZE + length]))
        pos += codec.FRAME_SIZE + length
    return found


@contextmanager
def limits(*, elements: int | None = None, chars: int | None = None) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        if elements is not None:
            mp.setattr(codec_types, "MAX_CHUNK_ELEMENTS", elements)
        if chars is not None:
            mp.setattr(codec, "MAX_CHUNK_CHARS", chars)
        yield


# ------------------------------------------------------------- round trips


@FAST
@given(spaces_strategy)
def test_any_mix_of_strings_and_containers_round_trips(spaces: dict[int, dict[str, Any]]) -> None:
    data = encode(spaces)
    snapshot = codec.decode_snapshot(data)
    assert snapshot.spaces == {n: m for n, m in spaces.items() if m}
    for number, mapping in snapshot.spaces.items():
        for key, value in mapping.items():
            assert type(value) is type(spaces[number][key])
    info = codec.scan(data)
    assert info.entries == sum(map(len, spaces.values()))


@FAST
@given(spaces_strategy, st.integers(1, 3), st.integers(1, 40))
def test_round_trip_survives_any_chunking(
    spaces: dict[int, dict[str, Any]], elements: int, chars: int
) -> None:
    with limits(elements=elements, chars=chars):
        data = encode(spaces)
    assert codec.decode_snapshot(data).spaces == {n: m for n, m in spaces.items() if m}


def test_container_kinds_decode_as_the_values_classes_with_the_same_elements() -> None:
    zset = ZSet([(2.5, "b"), (-1.0, "a"), (2.5, "a2")])
    data = encode(
        {
            0: {
                "h": Hash({"f": "1", "g": "2"}),
                "l": List(["x", "y", "x"]),
                "s": Set({"m"}),
                "z": zset,
            }
        }
    )
    got = codec.decode_snapshot(data).spaces[0]
    assert isinstance(got["h"], Hash) and dict(got["h"]) == {"f": "1", "g": "2"}
    assert isinstance(got["l"], List) and list(got["l"]) == ["x", "y", "x"]
    assert isinstance(got["s"], Set) and set(got["s"]) == {"m"}
    assert isinstance(got["z"], ZSet)
    assert list(got["z"]) == [(-1.0, "a"), (2.5, "a2"), (2.5, "b")]
    assert got["z"].scores == {"a": -1.0, "b": 2.5, "a2": 2.5}


def test_list_order_and_repeated_elements_are_kept() -> None:
    items = ["b", "a", "b", "", "a", "\x00"]
    assert list(codec.decode_snapshot(encode({0: {"l": List(items)}})).spaces[0]["l"]) == items


def test_infinities_and_extreme_scores_are_exact_doubles() -> None:
    zset = ZSet(
        [
            (math.inf, "top"),
            (-math.inf, "bottom"),
            (0.0, "zero"),
            (5e-324, "tiny"),
            (1.7976931348623157e308, "max"),
        ]
    )
    got = codec.decode_snapshot(encode({0: {"z": zset}})).spaces[0]["z"].scores
    assert got == zset.scores
    body = next(
        body
        for _p, kind, body in records(encode({0: {"z": zset}}))
        if kind == codec.TYPE_CONTAINERS
    )
    column = body[
        codec_types.CONTAINERS_HEAD.size + 4 : codec_types.CONTAINERS_HEAD.size + 4 + 8 * 5
    ]
    packed = struct.unpack("<5d", column)
    assert packed[0] == -math.inf and packed[-1] == math.inf, "scores are written in order"


def test_a_nan_score_is_refused_before_anything_is_written() -> None:
    zset = ZSet()
    zset.scores["x"] = math.nan  # a container a caller broke: ZSet.add never admits NaN
    zset.order.add((math.nan, "x"))
    with pytest.raises(ValueError, match="NaN"):
        encode({0: {"z": zset}})


def test_expiry_times_of_containers_round_trip() -> None:
    spaces: dict[int, dict[str, Any]] = {
        0: {"h": Hash({"f": "v"}), "s": "plain", "l": List(["1"])},
        4: {"z": ZSet([(1.0, "m")])},
    }
    expires = {0: {"h": 1_767_225_600_000, "s": 5}, 4: {"z": 2**64 - 1}}
    snapshot = codec.decode_snapshot(encode(spaces, expires))
    assert snapshot.spaces == spaces
    assert snapshot.expires == expires


# ------------------------------------------------------------- versions


def test_strings_only_snapshots_stay_version_1_and_2() -> None:
    assert codec.scan(encode({0: {"a": "1"}})).version == codec.VERSION
    assert codec.scan(encode({1: {"a": "1"}})).version == codec.VERSION_EXTENDED
    assert encode({0: {"a": "1"}}) == codec.encode({"a": "1"})


def test_one_container_makes_the_snapshot_version_3() -> None:
    data = encode({0: {"a": "1", "s": Set({"x"})}})
    assert codec.scan(data).version == codec.VERSION_TYPED == 3
    kinds = [kind for _p, kind, _b in records(data)]
    assert kinds == [codec.TYPE_ENTRIES, codec.TYPE_CONTAINERS, codec.TYPE_END]


def test_decode_refuses_a_typed_snapshot_it_would_flatten() -> None:
    with pytest.raises(ValueError, match="containers"):
        codec.decode(encode({0: {"s": Set({"x"})}}))


@pytest.mark.parametrize("empty", [Hash(), List(), Set(), ZSet()], ids=lambda v: type(v).__name__)
def test_an_empty_container_is_refused_rather_than_written_unreadable(empty: Any) -> None:
    with pytest.raises(ValueError, match="empty"):
        encode({0: {"k": empty}})


def test_values_of_other_types_are_refused() -> None:
    with pytest.raises(TypeError, match="int"):
        encode({0: {"k": 5}})
    with pytest.raises(TypeError, match="dict"):
        encode({0: {"k": {"f": "v"}}})  # a plain dict is not a Hash
    with pytest.raises(TypeError):
        encode({0: {"k": List([1])}})


# ------------------------------------------------------------- layout


def test_containers_of_one_type_share_a_record_up_to_the_element_limit() -> None:
    sets = {f"k{i}": Set({f"m{i}", f"n{i}"}) for i in range(10)}
    with limits(elements=5):
        data = encode({0: sets})
    bodies = [body for _p, kind, body in records(data) if kind == codec.TYPE_CONTAINERS]
    counts = [codec_types.CONTAINERS_HEAD.unpack_from(body)[0] for body in bodies]
    assert counts == [2] * 5  # 2 sets of 2 members = 4 elements; a third would pass 5
    assert codec.decode_snapshot(data).spaces[0] == sets


def test_a_large_value_spans_records_marked_as_a_chain() -> None:
    big = List(str(i) for i in range(25))
    with limits(elements=10):
        data = encode({0: {"a": Set({"x"}), "big": big, "c": List(["y"])}})
    heads = [
        codec_types.CONTAINERS_HEAD.unpack_from(body)
        for _p, kind, body in records(data)
        if kind == codec.TYPE_CONTAINERS
    ]
    C, N = codec_types.FLAG_CONTINUED, codec_types.FLAG_CONTINUES
    assert [(count, code, flags) for count, code, flags, _layout in heads] == [
        (1, 2, C),  # big, elements 0..9
        (1, 2, N | C),  # 10..19
        (1, 2, N),  # 20..24
        (1, 2, 0),  # c
        (1, 3, 0),  # a
    ]
    info = codec.scan(data)
    assert [(c.kind, c.entries, c.elements) for c in info.chunks] == [
        ("list", 0, 10),
        ("list", 0, 10),
        ("list", 1, 5),
        ("list", 1, 1),
        ("set", 1, 1),
    ]
    assert list(codec.decode_snapshot(data).spaces[0]["big"]) == list(big)


def test_a_large_hash_and_zset_split_by_text_size_keep_pairs_together() -> None:
    hash_ = Hash({f"field{i}": "v" * 30 for i in range(9)})
    zset = ZSet((float(i), "m" * 30 + str(i)) for i in range(9))
    with limits(chars=100):
        data = encode({0: {"h": hash_, "z": zset}})
    parts = [body for _p, kind, body in records(data) if kind == codec.TYPE_CONTAINERS]
    assert len(parts) > 4
    got = codec.decode_snapshot(data).spaces[0]
    assert got == {"h": hash_, "z": zset}


def test_text_with_every_separator_uses_the_lengths_layout() -> None:
    value = List([codec.SEPARATORS, *codec.SEPARATORS])
    data = encode({0: {"l": value}})
    assert [c.layout for c in codec.scan(data).chunks] == ["lengths"]
    assert list(codec.decode_snapshot(data).spaces[0]["l"]) == list(value)


def test_scan_counts_keys_and_elements_per_type() -> None:
    data = encode(
        {
            0: {"a": "1", "h": Hash({"f": "v", "g": "w"}), "l": List(["1", "2", "3"])},
            2: {"s": Set({"x"}), "z": ZSet([(1.0, "m")]), "z2": ZSet([(1.0, "m"), (2.0, "n")])},
        },
        {2: {"z": 99}},
    )
    info = codec.scan(data, keys=10)
    assert info.types == {"string": 1, "hash": 1, "list": 1, "set": 1, "zset": 2}
    assert info.elements == {"hash": 2, "list": 3, "set": 1, "zset": 3}
    assert [(k.number, k.entries, k.expiring, k.types) for k in info.keyspaces] == [
        (0, 3, 0, {"string": 1, "hash": 1, "list": 1}),
        (2, 3, 1, {"set": 1, "zset": 2}),
    ]
    assert info.first_keys == ["a", "h", "l", "s", "z", "z2"]


def test_decoded_containers_belong_to_the_current_save_epoch() -> None:
    from snapkv.values import epoch

    got = codec.decode_snapshot(encode({0: {"z": ZSet([(1.0, "a")]), "h": Hash({"f": "v"})}}))
    assert {value.epoch for value in got.spaces[0].values()} == {epoch()}


def test_a_negative_zero_score_reads_as_positive_zero() -> None:
    zset = ZSet([(1.0, "a"), (2.0, "b")])
    zset.scores["a"] = -0.0  # as an older writer or another tool could have written it
    zset.order.clear()
    zset.order.update([(-0.0, "a"), (2.0, "b")])
    got = codec.decode_snapshot(encode({0: {"z": zset}})).spaces[0]["z"]
    assert math.copysign(1.0, got.scores["a"]) == 1.0
    assert [math.copysign(1.0, score) for score, _member in got] == [1.0, 1.0]
    positive = ZSet([(0.0, "a"), (2.0, "b")])  # a +0.0 takes no detour and stays +0.0
    assert (
        math.copysign(
            1.0, codec.decode_snapshot(encode({0: {"z": positive}})).spaces[0]["z"].scores["a"]
        )
        == 1.0
    )
