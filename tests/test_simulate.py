"""run_operations: the specification cases, the shipped examples, a model, and every refusal."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import snapkv
from snapkv import InvalidOperationError, Store, codec, run_operations
from snapkv.simulate import validate_operations

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

SPEC_CASES = [
    pytest.param(
        [
            ("set", "a", "1"),
            ("set", "b", "2"),
            ("get", "a"),
            ("shutdown",),
            ("get", "a"),
            ("restore",),
            ("get", "b"),
            ("get", "a"),
        ],
        ["1", None, "2", "1"],
        id="spec-1",
    ),
    pytest.param(
        [
            ("set", "x", "old"),
            ("set", "x", "new"),
            ("shutdown",),
            ("restore",),
            ("get", "x"),
            ("set", "y", "3"),
            ("shutdown",),
            ("get", "y"),
            ("restore",),
            ("get", "y"),
            ("get", "x"),
        ],
        ["new", None, "3", "new"],
        id="spec-2",
    ),
    pytest.param(
        [
            ("restore",),
            ("get", "missing"),
            ("set", "", ""),
            ("set", "a|b:c", "v1|v2:ok"),
            ("shutdown",),
            ("restore",),
            ("get", ""),
            ("get", "a|b:c"),
            ("get", "missing"),
        ],
        [None, "", "v1|v2:ok", None],
        id="spec-3",
    ),
    pytest.param([("shutdown",), ("restore",), ("get", "a")], [None], id="spec-4"),
]


def model(operations: Iterable[Sequence[str]]) -> list[str | None]:
    """The specification, as simply as it can be said: a dict and the last snapshot of it."""
    memory: dict[str, str] = {}
    snapshot: dict[str, str] = {}
    results: list[str | None] = []
    for name, *args in operations:
        if name == "set":
            memory[args[0]] = args[1]
        elif name == "get":
            results.append(memory.get(args[0]))
        elif name == "shutdown":
            snapshot, memory = dict(memory), {}
        elif name == "restore":
            memory = dict(snapshot)
        else:  # pragma: no cover - the strategies only make valid operations
            raise AssertionError(name)
    return results


# ------------------------------------------------------------ specification


@pytest.mark.parametrize("container", [tuple, list])
@pytest.mark.parametrize(("operations", "expected"), SPEC_CASES)
def test_specification_cases(
    operations: list[tuple[str, ...]], expected: list[str | None], container: type
) -> None:
    assert run_operations([container(op) for op in operations]) == expected
    assert model(operations) == expected


def test_no_operations_no_results() -> None:
    assert run_operations([]) == []


def test_operations_may_be_any_iterable() -> None:
    operations = iter([("set", "k", "v"), ("shutdown",), ("restore",), ("get", "k")])
    assert run_operations(operations) == ["v"]


def test_restore_without_shutdown_drops_writes_since_the_last_snapshot() -> None:
    operations = [
        ("set", "k", "1"),
        ("shutdown",),
        ("restore",),
        ("set", "k", "2"),
        ("set", "new", "x"),
        ("restore",),
        ("get", "k"),
        ("get", "new"),
    ]
    assert run_operations(operations) == ["1", None]


# ------------------------------------------------------------------ examples


def _load_operations(path: Path) -> list[Any]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.split("\n") if line.strip()]
    operations = json.loads(text)
    assert isinstance(operations, list)
    return operations


def _example_inputs() -> list[Path]:
    return sorted(
        path
        for path in EXAMPLES.iterdir()
        if path.suffix in {".json", ".jsonl"} and not path.name.endswith(".expected.json")
    )


def test_every_example_has_its_expected_output() -> None:
    inputs = _example_inputs()
    names = {path.name for path in inputs}
    assert {f"spec-{n}.json" for n in (1, 2, 3, 4)} | {"session-cache.jsonl"} <= names
    for path in inputs:
        assert (EXAMPLES / f"{path.stem}.expected.json").is_file(), path.name


@pytest.mark.parametrize("path", _example_inputs(), ids=lambda path: path.name)
def test_example_output_is_the_expected_output(path: Path) -> None:
    operations = _load_operations(path)
    expected = json.loads((EXAMPLES / f"{path.stem}.expected.json").read_text(encoding="utf-8"))
    assert run_operations(operations) == expected
    # The expected files were computed by snapkv; the model vouches for them independently.
    assert model(operations) == expected


def test_session_cache_workload_is_what_the_readme_describes() -> None:
    operations = _load_operations(EXAMPLES / "session-cache.jsonl")
    assert len(operations) == 20_000
    assert (EXAMPLES / "session-cache.jsonl").stat().st_size < 2_000_000
    keys = {op[1] for op in operations if len(op) > 1}
    assert any("\ud800" <= char <= "\udfff" for key in keys for char in key)
    assert any(ord(char) > 0xFFFF for key in keys for char in key)  # emoji
    assert any(":" in key and "|" in key for key in keys)
    commands = [op[0] for op in operations]
    assert commands.count("shutdown") >= 9
    assert commands.count("restore") > commands.count("shutdown")  # crashes too


# --------------------------------------------------------------------- model

# Few, colliding keys: empty, separators, NUL, a lone surrogate, an emoji.
KEY_CHARS = ["|", ":", "\x00", "\ud800", "😀", "a"]
keys = st.one_of(st.sampled_from(["", *KEY_CHARS]), st.text(alphabet=KEY_CHARS, max_size=3))
values = st.one_of(
    st.text(alphabet=[*KEY_CHARS, "\n", "\x1f", "é"], max_size=4),
    st.just(codec.SEPARATORS),  # every separator at once: the lengths layout
    st.text(max_size=8),
)
operations_strategy = st.lists(
    st.one_of(
        st.tuples(st.just("set"), keys, values),
        st.tuples(st.just("get"), keys),
        st.just(("shutdown",)),
        st.just(("restore",)),
    ).flatmap(lambda op: st.sampled_from([op, list(op)])),
    max_size=60,
)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations_strategy)
def test_matches_the_model(operations: list[Sequence[str]]) -> None:
    assert run_operations(operations) == model(operations)


def _random_operations(count: int, seed: int) -> list[tuple[str, ...]]:
    rng = random.Random(seed)
    key_space = ["", "|", ":", "\x00", "\ud800", "😀", *(f"user:{n}|x" for n in range(500))]
    operations: list[tuple[str, ...]] = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.45:
            operations.append(("set", rng.choice(key_space), str(rng.randrange(1000))))
        elif roll < 0.998:
            operations.append(("get", rng.choice(key_space)))
        elif roll < 0.999:
            operations.append(("shutdown",))
        else:
            operations.append(("restore",))
    return operations


def test_hundred_thousand_operations() -> None:
    operations = _random_operations(100_000, seed=7)
    results = run_operations(operations)
    assert len(results) == sum(op[0] == "get" for op in operations)
    assert results == model(operations)


# ------------------------------------------------------------------ refusals

PREFIX: list[tuple[str, ...]] = [("set", "k", "v"), ("get", "k")]

INVALID = [
    pytest.param(("delete", "k"), ["unknown command 'delete'", "get, restore, set, shutdown"]),
    pytest.param(["SET", "k", "v"], ["unknown command 'SET'"]),
    pytest.param(("set", "k"), ["'set' takes 2 arguments, got 1"]),
    pytest.param(["set", "k", "v", "w"], ["'set' takes 2 arguments, got 3"]),
    pytest.param(("set",), ["'set' takes 2 arguments, got 0"]),
    pytest.param(("get",), ["'get' takes 1 argument, got 0"]),
    pytest.param(["get", "k", "v"], ["'get' takes 1 argument, got 2"]),
    pytest.param(("shutdown", "now"), ["'shutdown' takes 0 arguments, got 1"]),
    pytest.param(["restore", "a", "b"], ["'restore' takes 0 arguments, got 2"]),
    pytest.param(("set", 1, "v"), ["'set' key must be a str, got int"]),
    pytest.param(["set", None, "v"], ["'set' key must be a str, got NoneType"]),
    pytest.param(("get", b"k"), ["'get' key must be a str, got bytes"]),
    pytest.param(["get", ["k"]], ["'get' key must be a str, got list"]),
    pytest.param(("set", "k", 1), ["'set' value must be a str, got int"]),
    pytest.param(["set", "k", None], ["'set' value must be a str, got NoneType"]),
    pytest.param(("set", "k", b"v"), ["'set' value must be a str, got bytes"]),
    pytest.param(42, ["expected a list or tuple, got int"]),
    pytest.param("shutdown", ["expected a list or tuple, got str"]),
    pytest.param({"set": "k"}, ["expected a list or tuple, got dict"]),
    pytest.param(b"get", ["expected a list or tuple, got bytes"]),
    pytest.param(None, ["expected a list or tuple, got NoneType"]),
    pytest.param((), ["empty operation"]),
    pytest.param([], ["empty operation"]),
    pytest.param((1, "k"), ["command must be a str, got int"]),
    pytest.param([None], ["command must be a str, got NoneType"]),
    pytest.param((b"get", "k"), ["command must be a str, got bytes"]),
]


@pytest.mark.parametrize(("bad", "fragments"), INVALID)
def test_invalid_operation_names_its_index_and_the_problem(bad: Any, fragments: list[str]) -> None:
    with pytest.raises(InvalidOperationError) as info:
        run_operations([*PREFIX, bad, ("get", "k")])
    assert info.value.index == len(PREFIX)
    message = str(info.value)
    assert message.startswith(f"operation {len(PREFIX)}: ")
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        (("get", "k", "v"), "'get' takes 1 argument, got 2"),
        (["set", "k", 1.5], "'set' value must be a str, got float"),
        ("get", "expected a list or tuple, got str"),
        ([], "empty operation"),
        ([0], "command must be a str, got int"),
        (("put", "k", "v"), "unknown command 'put'"),
    ],
)
def test_invalid_first_operation_is_index_zero(bad: Any, fragment: str) -> None:
    with pytest.raises(InvalidOperationError, match=r"^operation 0: ") as info:
        run_operations([bad])
    assert info.value.index == 0
    assert fragment in str(info.value)


def test_invalid_operation_error_is_a_value_error() -> None:
    assert issubclass(InvalidOperationError, ValueError)
    assert issubclass(InvalidOperationError, snapkv.SnapkvError)
    with pytest.raises(ValueError, match="operation 0"):
        run_operations([("frobnicate",)])


def test_validate_operations_runs_nothing_and_names_the_first_bad_one() -> None:
    validate_operations([["set", "a", "1"], ("get", "a"), ["shutdown"], ["restore"]])
    with pytest.raises(InvalidOperationError, match=r"operation 2: 'get' takes 1") as info:
        validate_operations([["set", "a", "1"], ["shutdown"], ["get"], ["nope"]])
    assert info.value.index == 2


@pytest.mark.parametrize(
    "op",
    [[["shutdown"]], [{"a": 1}], [None], [b"shutdown"], [["set"], "k", "v"], [{}, "k"]],
    ids=repr,
)
def test_unhashable_or_odd_command_names_are_refused_cleanly(op: list[object]) -> None:
    with pytest.raises(InvalidOperationError, match="operation 1: command must be a str"):
        run_operations([("set", "a", "1"), op])


def test_operations_before_the_bad_one_took_effect() -> None:
    store = Store()
    operations: list[Any] = [
        ("set", "a", "1"),
        ("shutdown",),
        ("set", "b", "2"),
        ["set", "c", "3"],
        ("set", "d", 4),
        ("set", "e", "5"),
    ]
    with pytest.raises(InvalidOperationError) as info:
        run_operations(operations, store=store)
    assert info.value.index == 4
    assert dict(store.items()) == {"b": "2", "c": "3"}  # nothing from index 4 on
    store.restore()
    assert dict(store.items()) == {"a": "1"}  # the shutdown at index 1 published


def test_store_parameter_is_used_and_left_open() -> None:
    store = Store()
    store.set("preloaded", "yes")
    assert run_operations([("get", "preloaded"), ("set", "k", "v")], store=store) == ["yes"]
    assert store.get("k") == "v"
    assert not store.closed


# ------------------------------------------------------- other input shapes


class Text(str):
    """A str subclass, as some libraries return for text."""


def test_str_subclasses_are_accepted_as_plain_str() -> None:
    store = Store()
    operations: list[Any] = [
        (Text("set"), Text("k"), Text("v")),
        ["set", Text("k2"), "v2"],
        ("set", "k3", Text("v3")),
        [Text("get"), Text("k")],
        ("get", Text("k2")),
        [Text("shutdown")],
        (Text("restore"),),
        ("get", "k3"),
    ]
    results = run_operations(operations, store=store)
    assert results == ["v", "v2", "v3"]
    assert all(type(result) is str for result in results)
    assert all(type(key) is str for key in store)
    assert all(type(value) is str for value in store.values())


def test_other_sequence_types_are_accepted() -> None:
    class OpList(list[str]):
        pass

    operations: list[Any] = [
        OpList(["set", "k", "v"]),
        ("get", "k"),
        OpList(["shutdown"]),
        OpList(["restore"]),
        OpList(["get", "k"]),
    ]
    assert run_operations(operations) == ["v", "v"]


def test_keys_that_collide_under_naive_encodings_stay_distinct() -> None:
    pairs = {
        "": "empty",
        "a|b": "1",
        "a": "b|2",
        "a:b": "3",
        "\x00": "\x00",
        "\ud800": "lone",
        "😀": "emoji",
        "e\u0301": "decomposed",
        "é": "composed",
    }
    operations: list[tuple[str, ...]] = [("set", k, v) for k, v in pairs.items()]
    operations += [("shutdown",), ("restore",)]
    operations += [("get", k) for k in pairs]
    assert run_operations(operations) == list(pairs.values())


# --------------------------------------------------------------- on a disk


def test_run_on_a_directory_persists_across_a_new_open(tmp_path: Path) -> None:
    # As snapkv run --dir opens it: the seed contract, without a journal or a save at close.
    store = snapkv.open(tmp_path, journal=False, save_on_close=False)
    try:
        results = run_operations(
            [
                ("set", "a", "1"),
                ("set", "😀|:", "\ud800"),
                ("shutdown",),
                ("restore",),
                ("get", "a"),
                ("set", "unsaved", "lost"),
            ],
            store=store,
        )
    finally:
        store.close()  # close never saves: "unsaved" is not in any snapshot
    assert results == ["1"]

    reopened = snapkv.open(tmp_path, journal=False, save_on_close=False)
    try:
        assert run_operations(
            [("get", "a"), ("get", "😀|:"), ("get", "unsaved")], store=reopened
        ) == [
            "1",
            "\ud800",
            None,
        ]
    finally:
        reopened.close()


def test_examples_run_the_same_on_a_directory(tmp_path: Path) -> None:
    for number in (1, 2, 3, 4):
        path = EXAMPLES / f"spec-{number}.json"
        expected = json.loads((EXAMPLES / f"spec-{number}.expected.json").read_text("utf-8"))
        with snapkv.open(tmp_path / path.stem, journal=False, save_on_close=False) as store:
            assert run_operations(_load_operations(path), store=store) == expected
