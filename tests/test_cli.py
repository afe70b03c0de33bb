"""The snapkv command, run as a real subprocess: run, inspect, exit statuses, messages."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zlib
from collections.abc import Sequence
from pathlib import Path

import pytest

import snapkv
from snapkv import codec
from snapkv import journal as jr

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
EXAMPLE_INPUTS = [
    *(EXAMPLES / f"spec-{number}.json" for number in (1, 2, 3, 4)),
    EXAMPLES / "session-cache.jsonl",
]


def _console_script() -> str | None:
    """The installed ``snapkv`` script of this interpreter's environment, else one on PATH."""
    beside = Path(sys.executable).parent / "snapkv"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("snapkv")


MODULE = (sys.executable, "-m", "snapkv")
SCRIPT = _console_script()
ENTRY_POINTS = [
    pytest.param(MODULE, id="python-m"),
    pytest.param(
        (SCRIPT,),
        id="console-script",
        marks=pytest.mark.skipif(SCRIPT is None, reason="the snapkv script is not installed"),
    ),
]


def cli(
    *args: str | Path,
    stdin: str | None = None,
    entry: Sequence[str | None] = MODULE,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*map(str, entry), *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=cwd,
        timeout=120,
        check=False,
    )


def one_line(text: str) -> str:
    """``text`` without its newline, after checking it is exactly one line."""
    assert text.endswith("\n"), repr(text)
    assert text.count("\n") == 1, repr(text)
    return text[:-1]


def expected_output(path: Path) -> object:
    return json.loads(path.with_name(f"{path.stem}.expected.json").read_text(encoding="utf-8"))


def assert_results(result: subprocess.CompletedProcess[str], expected: object) -> None:
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert json.loads(one_line(result.stdout)) == expected


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ----------------------------------------------------------------------- run


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("path", EXAMPLE_INPUTS, ids=lambda path: path.name)
def test_run_prints_the_expected_output_of_every_example(entry: tuple[str], path: Path) -> None:
    assert_results(cli("run", path, entry=entry), expected_output(path))


def test_readme_example_output_is_byte_exact() -> None:
    result = cli("run", "examples/spec-3.json", cwd=EXAMPLES.parent)
    assert result.stdout == '[null, "", "v1|v2:ok", null]\n'


def test_run_json_lines_file_with_blank_lines_and_unicode(tmp_path: Path) -> None:
    ops = tmp_path / "ops.jsonl"
    write(
        ops,
        '["set", "clé:😀|x", "välue\\u0000"]\n'
        "\n"
        '  ["set", "\\ud800", ""]  \n'
        '["shutdown"]\n'
        '["restore"]\n'
        '["get", "clé:😀|x"]\n'
        '["get", "\\ud800"]\n'
        '["get", "nope"]\n',
    )
    assert_results(cli("run", ops), ["välue\x00", "", None])


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('[["set", "a", "1"], ["shutdown"], ["restore"], ["get", "a"]]', id="json"),
        pytest.param('["set", "a", "1"]\n["shutdown"]\n["restore"]\n["get", "a"]\n', id="jsonl"),
    ],
)
def test_run_reads_stdin_for_dash(text: str) -> None:
    assert_results(cli("run", "-", stdin=text), ["1"])


def test_run_stdin_single_operation_on_one_line() -> None:
    assert_results(cli("run", "-", stdin='["get", "a"]\n'), [None])


def test_format_json_overrides_the_jsonl_extension(tmp_path: Path) -> None:
    ops = write(tmp_path / "ops.jsonl", '[\n  ["set", "k", "v"],\n  ["get", "k"]\n]\n')
    assert_results(cli("run", "--format", "json", ops), ["v"])


def test_format_jsonl_overrides_the_json_extension(tmp_path: Path) -> None:
    ops = write(tmp_path / "ops.json", '["set", "k", "v"]\n["get", "k"]\n')
    assert_results(cli("run", "--format", "jsonl", ops), ["v"])


def test_format_json_refuses_json_lines(tmp_path: Path) -> None:
    ops = write(tmp_path / "ops.txt", '["set", "k", "v"]\n["get", "k"]\n')
    result = cli("run", "--format", "json", ops)
    assert result.returncode == 2
    assert one_line(result.stderr) == f"snapkv run: error: {ops}:2:1: invalid JSON: Extra data"
    assert result.stdout == ""


def test_format_jsonl_refuses_a_multiline_array(tmp_path: Path) -> None:
    ops = write(tmp_path / "ops.txt", '[\n  ["get", "k"]\n]\n')
    result = cli("run", "--format", "jsonl", ops)
    assert result.returncode == 2
    assert one_line(result.stderr) == (
        f"snapkv run: error: {ops}:1:2: invalid JSON: Expecting value"
    )


def test_dir_persists_across_two_invocations(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = write(
        tmp_path / "first.json",
        json.dumps(
            [
                ["set", "a", "1"],
                ["set", "😀|:", "\ud800"],
                ["get", "a"],
                ["shutdown"],
                ["get", "a"],
                ["set", "unsaved", "x"],  # after the shutdown, and run never saves at exit
            ]
        ),
    )
    second = write(
        tmp_path / "second.jsonl",
        '["get", "a"]\n["get", "😀|:"]\n["get", "unsaved"]\n'
        '["set", "b", "2"]\n["shutdown"]\n["restore"]\n["get", "b"]\n',
    )
    assert_results(cli("run", first, "--dir", data), ["1", None])
    assert sorted(p.name for p in data.iterdir()) == ["LOCK", "snapshot-0000000000000001.skv"]
    assert_results(cli("run", second, "--dir", data), ["1", "\ud800", None, "2"])

    snapshots = sorted(data.glob("snapshot-*.skv"))
    assert [p.name for p in snapshots] == [
        "snapshot-0000000000000001.skv",
        "snapshot-0000000000000002.skv",
    ]
    assert not list(data.glob(".tmp-*"))
    assert codec.decode(snapshots[0].read_bytes()) == {"a": "1", "😀|:": "\ud800"}
    assert codec.decode(snapshots[1].read_bytes()) == {"a": "1", "😀|:": "\ud800", "b": "2"}
    with snapkv.open(data) as store:  # the directory was released
        assert dict(store.items()) == {"a": "1", "😀|:": "\ud800", "b": "2"}

    result = cli("inspect", data, "--json", "--keys", "10")
    assert result.returncode == 0, result.stderr
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    # Leaving the with block above published a third generation; keep=1 pruned the first.
    assert [(Path(r["path"]).name, r["ok"], r["entries"]) for r in reports] == [
        ("snapshot-0000000000000003.skv", True, 3),
        ("snapshot-0000000000000002.skv", True, 3),
    ]
    assert reports[0]["keys"] == ["a", "😀|:", "b"]


def test_dir_that_is_locked_exits_1(tmp_path: Path) -> None:
    ops = write(tmp_path / "ops.json", '[["set", "k", "v"], ["shutdown"]]')
    data = tmp_path / "data"
    with snapkv.open(data) as store:
        store.set("mine", "1")
        result = cli("run", ops, "--dir", data)
        assert result.returncode == 1
        assert result.stdout == ""
        message = one_line(result.stderr)
        assert message.startswith("snapkv run: error: ")
        assert str(data) in message
        assert "already open in another Store" in message
        assert f"lock held by pid {os.getpid()}" in message
        assert list(data.glob("snapshot-*.skv")) == []  # the other run changed nothing
    with snapkv.open(data) as store:
        assert dict(store.items()) == {"mine": "1"}


def test_dir_that_is_a_file_exits_1(tmp_path: Path) -> None:
    ops = write(tmp_path / "ops.json", '[["get", "k"]]')
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    result = cli("run", ops, "--dir", not_a_dir)
    assert result.returncode == 1
    assert one_line(result.stderr) == (
        f"snapkv run: error: snapkv.open(): {not_a_dir} is a file, not a directory"
    )


def test_dir_with_a_corrupt_snapshot_exits_1(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with snapkv.open(data) as store:
        store.set("k", "v")
    (snapshot,) = data.glob("snapshot-*.skv")
    snapshot.write_bytes(b"not a snapshot at all")
    ops = write(tmp_path / "ops.json", '[["get", "k"]]')
    result = cli("run", ops, "--dir", data)
    assert result.returncode == 1
    message = one_line(result.stderr)
    assert str(snapshot) in message
    assert "offset 0, check magic" in message


# ---------------------------------------------------------------- bad input

BAD_INPUTS = [
    pytest.param(
        "ops.json",
        '[["set", "a", "1"],, ["get", "a"]]',
        ":1:20: invalid JSON: Expecting value",
        id="malformed-json",
    ),
    pytest.param(
        "ops.jsonl",
        '["set", "a", "1"]\n["get", "a"]\n["get" "a"]\n',
        ":3:8: invalid JSON: Expecting ',' delimiter",
        id="malformed-jsonl",
    ),
    pytest.param(
        "ops.json",
        '[["set", "a", "1"], ["del", "a"]]',
        ':1:21: operation 2: unknown command "del" (expected one of get, restore, set, shutdown)',
        id="unknown-command-json",
    ),
    pytest.param(
        "ops.jsonl",
        '["set", "a", "1"]\n\n["get", "a"]\n["del", "a"]\n',
        ':4: operation 3: unknown command "del" (expected one of get, restore, set, shutdown)',
        id="unknown-command-jsonl",
    ),
    pytest.param(
        "ops.json",
        '[["get", "a", "b"]]',
        ':1:2: operation 1: "get" takes 1 argument, got 2',
        id="arity-get-json",
    ),
    pytest.param(
        "ops.jsonl",
        '["set", "a", "1"]\n["set", "a"]\n',
        ':2: operation 2: "set" takes 2 arguments, got 1',
        id="arity-set-jsonl",
    ),
    pytest.param(
        "ops.jsonl",
        '["shutdown", "now"]\n',
        ':1: operation 1: "shutdown" takes 0 arguments, got 1',
        id="arity-shutdown-jsonl",
    ),
    pytest.param(
        "ops.jsonl",
        '["set", "a", "1"]\n["set", "b", 2]\n',
        ':2: operation 2: "set" value must be a string, got number',
        id="non-str-value-jsonl",
    ),
    pytest.param(
        "ops.json",
        '{"set": ["a", "1"]}',
        ":1:1: expected a JSON array of operations, got object",
        id="top-level-object",
    ),
    pytest.param(
        "ops.json",
        "42\n",
        ":1:1: expected a JSON array of operations, got number",
        id="top-level-number",
    ),
    pytest.param(
        "ops.json",
        '[["set", "a", "1"], "shutdown"]',
        ":1:21: operation 2: expected an array, got string",
        id="operation-not-an-array",
    ),
]


@pytest.mark.parametrize(("name", "text", "reason"), BAD_INPUTS)
def test_bad_input_exits_2_with_one_line_naming_where_and_why(
    tmp_path: Path, name: str, text: str, reason: str
) -> None:
    ops = write(tmp_path / name, text)
    result = cli("run", ops)
    assert result.returncode == 2
    assert result.stdout == ""
    message = one_line(result.stderr)
    assert message == f"snapkv run: error: {ops}{reason}"


def test_missing_file_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    result = cli("run", missing)
    assert result.returncode == 2
    message = one_line(result.stderr)
    assert message.startswith(f"snapkv run: error: cannot read {missing}: ")
    assert "No such file" in message


def test_file_that_is_not_utf8_exits_2(tmp_path: Path) -> None:
    ops = tmp_path / "ops.json"
    ops.write_bytes(b'[["get", "caf\xe9"]]')
    result = cli("run", ops)
    assert result.returncode == 2
    assert one_line(result.stderr).startswith(f"snapkv run: error: cannot read {ops}: ")


def test_bad_operation_on_stdin_names_dash_and_line() -> None:
    result = cli("run", "-", stdin='["set", "a", "1"]\n["get"]\n')
    assert result.returncode == 2
    assert one_line(result.stderr) == (
        'snapkv run: error: -:2: operation 2: "get" takes 1 argument, got 0'
    )


# The messages speak JSON (null, object, number, string, boolean, array), count
# operations from 1, and place each one: line and column in a JSON array (where
# the operation starts), line in JSON Lines.
RUN_MESSAGES = [
    pytest.param(
        "ops.json",
        '[\n  ["set", "a", "1"],\n  ["set", null, "v"]\n]\n',
        ':3:3: operation 2: "set" key must be a string, got null',
        id="null-key-line-and-column",
    ),
    pytest.param(
        "ops.json",
        '[["get", {"k": 1}]]',
        ':1:2: operation 1: "get" key must be a string, got object',
        id="object-key",
    ),
    pytest.param(
        "ops.json",
        '[["get", "a"],\t["set", "k", true]]',
        ':1:16: operation 2: "set" value must be a string, got boolean',
        id="boolean-value",
    ),
    pytest.param(
        "ops.json",
        '[["set", "k", ["v"]]]',
        ':1:2: operation 1: "set" value must be a string, got array',
        id="array-value",
    ),
    pytest.param(
        "ops.json",
        '[["set", "k", 1.5]]',
        ':1:2: operation 1: "set" value must be a string, got number',
        id="float-value",
    ),
    pytest.param(
        "ops.json",
        "[[null]]",
        ":1:2: operation 1: command must be a string, got null",
        id="null-command",
    ),
    pytest.param(
        "ops.json",
        '[\n  ["get", "a"],\n    {"set": "k"}\n]',
        ":3:5: operation 2: expected an array, got object",
        id="object-operation",
    ),
    pytest.param(
        "ops.json",
        '[\n  ["get", "a"],\n  []\n]',
        ":3:3: operation 2: empty operation",
        id="empty-operation",
    ),
    pytest.param(
        "ops.jsonl",
        '["get", "a"]\n\n{"op": "get"}\n',
        ":3: operation 2: expected an array, got object",
        id="jsonl-object",
    ),
    pytest.param(
        "ops.jsonl",
        '["get", "a"]\n["get", false]\n',
        ':2: operation 2: "get" key must be a string, got boolean',
        id="jsonl-boolean",
    ),
    pytest.param(
        "ops.json",
        '[["GET", "a"], ["Frob"]]',
        ':1:16: operation 2: unknown command "Frob" (expected one of get, restore, set, shutdown)',
        id="unknown-command-as-written",
    ),
    pytest.param(
        "ops.json",
        '[\n  ["get", "a"]',
        ":2:15: invalid JSON: Expecting ',' delimiter",
        id="unclosed-array",
    ),
    pytest.param(
        "ops.json",
        '[["get", "a"],\n ["get", "b"]] x',
        ":2:16: invalid JSON: Extra data",
        id="extra-data",
    ),
    pytest.param(
        "ops.json",
        '[\n  ["get", "a"],\n]\n',
        ":3:1: invalid JSON: Expecting value",
        id="trailing-comma",
    ),
    pytest.param(
        "ops.json",
        '[\n  ["get", "a"] ["get", "b"]\n]',
        ":2:16: invalid JSON: Expecting ',' delimiter",
        id="missing-comma-between-operations",
    ),
    pytest.param(
        "ops.json",
        '{"set":\n  [1, }',
        ":2:7: invalid JSON: Expecting value",
        id="malformed-non-array",
    ),
    pytest.param(
        "ops.json",
        '\n\n  "get"',
        ":3:3: expected a JSON array of operations, got string",
        id="top-level-string",
    ),
    pytest.param(
        "ops.json",
        "null",
        ":1:1: expected a JSON array of operations, got null",
        id="top-level-null",
    ),
]


@pytest.mark.parametrize(("name", "text", "reason"), RUN_MESSAGES)
def test_run_messages_speak_json_and_place_the_operation(
    tmp_path: Path, name: str, text: str, reason: str
) -> None:
    ops = write(tmp_path / name, text)
    result = cli("run", ops)
    assert result.returncode == 2
    assert result.stdout == ""
    assert one_line(result.stderr) == f"snapkv run: error: {ops}{reason}"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(
            '[["SET", "a", "1"], ["Set", "b", "2"], ["SHUTDOWN"], ["Restore"], '
            '["GET", "a"], ["gEt", "b"]]',
            id="json",
        ),
        pytest.param(
            '["SET", "a", "1"]\n["Set", "b", "2"]\n["SHUTDOWN"]\n["Restore"]\n'
            '["GET", "a"]\n["gEt", "b"]\n',
            id="jsonl",
        ),
    ],
)
def test_run_accepts_command_names_in_any_case(text: str) -> None:
    assert_results(cli("run", "-", stdin=text), ["1", "2"])


def test_run_folds_only_ascii_letters_of_known_commands(tmp_path: Path) -> None:
    # "ſet" (long s) lower-cases to itself, casefolds to "set": Redis would not take it.
    ops = write(tmp_path / "ops.json", '[["\u017fet", "a", "1"]]')
    result = cli("run", ops)
    assert result.returncode == 2
    assert one_line(result.stderr) == (
        f'snapkv run: error: {ops}:1:2: operation 1: unknown command "\u017fet" '
        "(expected one of get, restore, set, shutdown)"
    )


def test_run_dir_accepts_any_case_and_keeps_writes_after_the_last_shutdown_in_memory(
    tmp_path: Path,
) -> None:
    ops = write(
        tmp_path / "ops.json",
        '[["SET", "a", "1"], ["SHUTDOWN"], ["SET", "b", "2"], ["GET", "b"]]',
    )
    data = tmp_path / "data"
    assert_results(cli("run", ops, "--dir", data), ["2"])
    # The final close published nothing: the one snapshot is the shutdown's.
    assert sorted(p.name for p in data.iterdir()) == ["LOCK", "snapshot-0000000000000001.skv"]
    assert codec.decode((data / "snapshot-0000000000000001.skv").read_bytes()) == {"a": "1"}


def test_usage_error_exits_2() -> None:
    result = cli("run", "--format", "yaml", "ops.yaml")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


# --------------------------------------------------------------- known gaps


def test_json_lines_with_unescaped_line_separators_in_strings(tmp_path: Path) -> None:
    ops = tmp_path / "ops.jsonl"
    lines = [["set", "a\u2028b", "c\u0085d\u2029"], ["get", "a\u2028b"]]
    write(ops, "".join(json.dumps(op, ensure_ascii=False) + "\n" for op in lines))
    assert_results(cli("run", ops), ["c\u0085d\u2029"])


def test_malformed_multiline_json_reports_the_line_of_the_error(tmp_path: Path) -> None:
    ops = write(tmp_path / "ops.json", '[\n  ["set", "a", "1"],\n  ["get" "a"]\n]\n')
    result = cli("run", ops)
    assert result.returncode == 2
    assert one_line(result.stderr) == (
        f"snapkv run: error: {ops}:3:10: invalid JSON: Expecting ',' delimiter"
    )


def test_single_operation_with_a_non_str_argument_reports_the_argument() -> None:
    result = cli("run", "-", stdin='["set", "a", 1]\n')
    assert result.returncode == 2
    assert one_line(result.stderr) == (
        'snapkv run: error: -:1: operation 1: "set" value must be a string, got number'
    )


def test_refused_input_leaves_the_directory_untouched(tmp_path: Path) -> None:
    ops = write(tmp_path / "ops.json", '[["set", "a", "1"], ["shutdown"], ["set", "b"]]')
    data = tmp_path / "data"
    result = cli("run", ops, "--dir", data)
    assert result.returncode == 2
    assert one_line(result.stderr).endswith(':1:35: operation 3: "set" takes 2 arguments, got 1')
    assert list(data.glob("snapshot-*.skv")) == []


def test_closed_stdout_exits_141_without_a_traceback() -> None:
    with subprocess.Popen(
        [*MODULE, "run", str(EXAMPLES / "session-cache.jsonl")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        assert process.stdout.read(1) == b"["
        process.stdout.close()  # the output is far larger than a pipe buffer
        stderr = process.stderr.read().decode("utf-8", "replace")
        assert process.wait(timeout=60) == 141  # 128 + SIGPIPE, as a shell pipeline reports
    assert "Traceback" not in stderr
    assert "Exception ignored" not in stderr


@pytest.mark.parametrize(
    "text", ["[" * 100_000, '[["get", ' + "1" * 5_000 + "]]"], ids=["deep-nesting", "huge-int"]
)
def test_unusable_json_exits_2_with_one_line(tmp_path: Path, text: str) -> None:
    ops = write(tmp_path / "ops.json", text)
    result = cli("run", ops)
    assert result.returncode == 2
    assert one_line(result.stderr).startswith(f"snapkv run: error: {ops}")
    assert "Traceback" not in result.stderr


# ------------------------------------------------------------------- inspect

KEYS = codec.MAX_CHUNK_ENTRIES + 1_000  # two chunks: one full, one with the rest


@pytest.fixture(scope="module")
def snapshot_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real snapshot of KEYS entries, published by a Store on a directory."""
    data = tmp_path_factory.mktemp("inspect") / "data"
    with snapkv.open(data, journal=False) as store:  # a snapshot alone, no journal_next
        store.update({f"user:{n:05d}|😀": f"value {n}" for n in range(KEYS)})
        store.set("", codec.SEPARATORS)  # every separator: this chunk uses lengths
    (path,) = data.glob("snapshot-*.skv")
    return path


def test_inspect_valid_snapshot(snapshot_file: Path) -> None:
    result = cli("inspect", snapshot_file)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0] == str(snapshot_file)
    assert lines[1].split()[:2] == ["status", "ok"]
    assert "  format     v1" in lines
    assert f"  size       {snapshot_file.stat().st_size:,} bytes" in lines
    assert f"  entries    {KEYS + 1:,} in 2 chunks (1 separated, 1 lengths)" in lines
    assert "  expiring   0 entries with an expiry time" in lines
    assert f"  keyspace   0: {KEYS + 1:,} entries, 0 with an expiry time" in lines
    assert not any(line.lstrip().startswith(("key ", "chunk")) for line in lines)


def test_inspect_keys_lists_the_first_keys(snapshot_file: Path) -> None:
    result = cli("inspect", snapshot_file, "--keys", "3")
    assert result.returncode == 0, result.stderr
    keys = [
        json.loads(line.split(None, 1)[1])
        for line in result.stdout.splitlines()
        if line.lstrip().startswith("key ")
    ]
    assert keys == ["user:00000|😀", "user:00001|😀", "user:00002|😀"]


def test_inspect_chunks_lists_every_chunk(snapshot_file: Path) -> None:
    info = codec.scan(snapshot_file.read_bytes())
    result = cli("inspect", snapshot_file, "--chunks")
    assert result.returncode == 0, result.stderr
    chunk_lines = [line for line in result.stdout.splitlines() if "chunk " in line]
    assert chunk_lines == [
        f"  chunk      offset {c.offset:,} size {c.size:,} entries {c.entries:,} layout {c.layout}"
        " keyspace 0 expiring 0"
        for c in info.chunks
    ]
    assert [c.layout for c in info.chunks] == ["separated", "lengths"]


def test_inspect_json_parses(snapshot_file: Path) -> None:
    info = codec.scan(snapshot_file.read_bytes())
    result = cli("inspect", snapshot_file, "--json", "--chunks", "--keys", "2")
    assert result.returncode == 0, result.stderr
    report = json.loads(one_line(result.stdout))
    assert report == {
        "path": str(snapshot_file),
        "ok": True,
        "version": 1,
        "size": snapshot_file.stat().st_size,
        "entries": KEYS + 1,
        "records": 2,
        "chunks": [
            {
                "offset": c.offset,
                "size": c.size,
                "entries": c.entries,
                "layout": c.layout,
                "keyspace": 0,
                "expiring": 0,
                "kind": "string",
                "elements": 0,
            }
            for c in info.chunks
        ],
        "keys": ["user:00000|😀", "user:00001|😀"],
        "expiring": 0,
        "keyspaces": [
            {"number": 0, "entries": KEYS + 1, "expiring": 0, "types": {"string": KEYS + 1}}
        ],
        "journal_next": info.journal_next,
    }


@pytest.fixture(scope="module")
def v2_snapshot_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A version-2 snapshot: two keyspaces, expiry times, journal_next 12."""
    path = tmp_path_factory.mktemp("inspect-v2") / "snapshot-0000000000000001.skv"
    keys = [f"k{n}" for n in range(10)]
    spaces = [
        (0, keys, keys, [1_767_225_600_000 if n % 2 else 0 for n in range(10)]),
        (3, ["only"], ["one"], None),
    ]
    path.write_bytes(b"".join(codec.iter_encode_snapshot(spaces, journal_next=12)))
    return path


def test_inspect_v2_snapshot_shows_keyspaces_expiry_and_journal(v2_snapshot_file: Path) -> None:
    result = cli("inspect", v2_snapshot_file, "--chunks", "--keys", "11")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1] == "  status     ok (header and 5 records checksummed)"
    assert "  format     v2" in lines
    assert "  entries    11 in 2 chunks (2 separated, 0 lengths)" in lines
    assert "  expiring   5 entries with an expiry time" in lines
    assert [line for line in lines if line.startswith("  keyspace")] == [
        "  keyspace   0: 10 entries, 5 with an expiry time",
        "  keyspace   3: 1 entries, 0 with an expiry time",
    ]
    assert "  journal    next 12: journals with a lower id are contained in this snapshot" in lines
    chunks = [line.split() for line in lines if line.startswith("  chunk")]
    assert [chunk[-4:] for chunk in chunks] == [
        ["keyspace", "0", "expiring", "5"],
        ["keyspace", "3", "expiring", "0"],
    ]
    keys = [json.loads(line.split(None, 1)[1]) for line in lines if line.startswith("  key ")]
    assert keys == [*(f"k{n}" for n in range(10)), "only"]


def test_inspect_v2_snapshot_json(v2_snapshot_file: Path) -> None:
    result = cli("inspect", v2_snapshot_file, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(one_line(result.stdout))
    assert (report["ok"], report["version"], report["entries"], report["records"]) == (
        True,
        2,
        11,
        4,
    )
    assert report["chunks"] == 2
    assert report["expiring"] == 5
    assert report["keyspaces"] == [
        {"number": 0, "entries": 10, "expiring": 5, "types": {"string": 10}},
        {"number": 3, "entries": 1, "expiring": 0, "types": {"string": 1}},
    ]
    assert report["journal_next"] == 12


def test_inspect_v1_snapshot_without_journal(tmp_path: Path) -> None:
    path = tmp_path / "plain.skv"
    path.write_bytes(codec.encode({"a": "1"}))
    result = cli("inspect", path)
    assert result.returncode == 0, result.stderr
    assert "  journal    none recorded" in result.stdout.splitlines()


def test_inspect_corrupt_v2_snapshot_names_the_check(
    v2_snapshot_file: Path, tmp_path: Path
) -> None:
    data = bytearray(v2_snapshot_file.read_bytes())
    data[8] = 1  # claim version 1, and fix the header checksum
    data[12:16] = zlib.crc32(bytes(data[:12])).to_bytes(4, "little")
    corrupt = tmp_path / "v1-header.skv"
    corrupt.write_bytes(bytes(data))
    result = cli("inspect", corrupt, "--json")
    assert result.returncode == 1
    report = json.loads(one_line(result.stdout))
    # The first record after META (17 bytes) is the ENTRIES_EX a version-1 header forbids.
    assert (report["check"], report["offset"]) == ("record-type", codec.HEADER_SIZE + 17)


def test_inspect_directory_lists_every_generation(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = snapkv.open(data, keep=2)
    try:
        for n in range(4):
            store.set(f"k{n}", "v")
            store.save()
    finally:
        store.close()
    files = sorted(data.glob("snapshot-*.skv"), reverse=True)
    assert len(files) == 3  # the newest and keep=2 older ones
    result = cli("inspect", data)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line for line in lines if not line.startswith(" ")] == [str(p) for p in files]
    assert sum(line.split()[:2] == ["status", "ok"] for line in lines) == 3
    entries = [line.split()[1] for line in lines if line.lstrip().startswith("entries")]
    assert entries == ["4", "3", "2"]


def test_inspect_directory_without_snapshots(tmp_path: Path) -> None:
    result = cli("inspect", tmp_path)
    assert result.returncode == 0
    assert result.stdout == f"{tmp_path}: no snapshots\n"


def _corrupt_copy(snapshot_file: Path, directory: Path) -> tuple[Path, int]:
    """A copy of ``snapshot_file`` with its middle byte flipped, and where decode says it broke."""
    data = bytearray(snapshot_file.read_bytes())
    data[len(data) // 2] ^= 0x01
    with pytest.raises(snapkv.CorruptSnapshotError) as info:
        codec.decode(bytes(data))
    assert info.value.check == "record-crc"
    chunk = next(
        c
        for c in codec.scan(snapshot_file.read_bytes()).chunks
        if c.offset <= len(data) // 2 < c.offset + c.size
    )
    assert info.value.offset == chunk.offset  # the record whose checksum fails
    corrupt = directory / "corrupt.skv"
    corrupt.write_bytes(data)
    return corrupt, info.value.offset


def test_inspect_corrupt_file_exits_1_with_the_offset(snapshot_file: Path, tmp_path: Path) -> None:
    corrupt, offset = _corrupt_copy(snapshot_file, tmp_path)
    result = cli("inspect", corrupt)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0] == str(corrupt)
    assert lines[1].startswith(f"  status     CORRUPT at offset {offset}: record checksum mismatch")
    assert lines[1].endswith("(check record-crc)")


def test_inspect_corrupt_file_json(snapshot_file: Path, tmp_path: Path) -> None:
    corrupt, offset = _corrupt_copy(snapshot_file, tmp_path)
    result = cli("inspect", corrupt, "--json")
    assert result.returncode == 1
    report = json.loads(one_line(result.stdout))
    assert report["ok"] is False
    assert report["offset"] == offset
    assert report["check"] == "record-crc"
    assert report["size"] == corrupt.stat().st_size


def test_inspect_empty_file_exits_1(tmp_path: Path) -> None:
    empty = tmp_path / "snapshot-0000000000000001.skv"
    empty.touch()
    result = cli("inspect", empty)
    assert result.returncode == 1
    assert "CORRUPT at offset 0" in result.stdout
    assert "(check header-length)" in result.stdout


def test_inspect_directory_with_one_corrupt_generation_exits_1(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with snapkv.open(data) as store:
        store.set("k", "v")
        store.save()
    older, newer = sorted(data.glob("snapshot-*.skv"))
    newer.write_bytes(newer.read_bytes()[:-1])  # truncated by one byte
    result = cli("inspect", data)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0] == str(newer)
    assert "CORRUPT" in lines[1]
    assert lines[2] == str(older)
    assert lines[3].split()[:2] == ["status", "ok"]


def test_inspect_reports_an_unreadable_generation_and_exits_1(tmp_path: Path) -> None:
    with snapkv.open(tmp_path) as store:
        store["k"] = "v"
    (tmp_path / "snapshot-0000000000000009.skv").mkdir()
    result = cli("inspect", tmp_path)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0] == str(tmp_path / "snapshot-0000000000000009.skv")
    assert lines[1].startswith("  status     UNREADABLE: ")
    assert lines[3].split()[:2] == ["status", "ok"]


def test_inspect_missing_path_exits_2(tmp_path: Path) -> None:
    result = cli("inspect", tmp_path / "nope.skv")
    assert result.returncode == 2
    assert one_line(result.stderr).startswith("snapkv inspect: error: cannot read ")


# ------------------------------------------------------------------- version


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_version(entry: tuple[str]) -> None:
    result = cli("--version", entry=entry)
    assert result.returncode == 0
    assert result.stdout == f"snapkv {snapkv.__version__}\n"


# ------------------------------------------------------- values other than strings


@pytest.fixture(scope="module")
def typed_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A journal of EDIT, PUT and RENAME records, then a version-3 snapshot of the same data."""
    directory = tmp_path_factory.mktemp("typed")
    store = snapkv.open(directory)
    store.set("a", "1")
    store.hashes["h"].update({"f": "v", "g": "w"})
    store.lists["l"].extend(["x", "y", "x"])
    store.sets["s"].add("m")
    store.zsets["z"].update({"m": 1.5, "n": float("inf")})
    store.db(0).copy_key("h", "h2")
    store.db(0).move("l", 1)
    store.close()
    return directory


def test_inspect_journal_shows_its_records_by_kind(tmp_path: Path) -> None:
    journal = tmp_path / "journal-0000000000000001.skj"
    journal.write_bytes(
        jr.header(1)
        + jr.set_record(0, "a", "1")
        + jr.edit_record(0, "h", 1, 1, ["f", "v", "g", "w"])
        + jr.edit_record(0, "l", 2, 2, ["x", "y", "x"])
        + jr.edit_record(0, "s", 3, 1, ["m"])
        + jr.edit_record(0, "z", 4, 1, [1.5, "m", float("inf"), "n"])
        + jr.put_record(0, "h2", 1, ["f", "v"])
        + jr.rename_record(0, "l", 1, "l")
    )
    result = cli("inspect", journal)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == (
        "  records    1 SET, 4 EDIT (1 hash, 1 list, 1 set, 1 zset), 1 PUT (1 hash), 1 RENAME"
    )
    strings = tmp_path / "journal-0000000000000002.skj"
    strings.write_bytes(jr.header(2) + jr.set_record(0, "a", "1") + jr.delete_record(0, "a"))
    assert "records  " not in cli("inspect", strings).stdout  # "2 records" already says it
    report = json.loads(one_line(cli("inspect", journal, "--json").stdout))
    assert report["records_by_type"] == {
        "SET": 1,
        "EDIT": 4,
        "EDIT hash": 1,
        "EDIT list": 1,
        "EDIT set": 1,
        "EDIT zset": 1,
        "PUT": 1,
        "PUT hash": 1,
        "RENAME": 1,
    }


def test_inspect_v3_snapshot_json_shows_keys_and_elements_per_type(
    typed_directory: Path, tmp_path: Path
) -> None:
    directory = tmp_path / "copy"
    shutil.copytree(typed_directory, directory)
    with snapkv.open(directory) as store:
        store.save()
    snapshot = next(directory.glob("snapshot-*.skv"))
    result = cli("inspect", snapshot, "--json", "--chunks")
    assert result.returncode == 0, result.stderr
    report = json.loads(one_line(result.stdout))
    assert (report["version"], report["entries"]) == (3, 6)
    assert report["keyspaces"] == [
        {
            "number": 0,
            "entries": 5,
            "expiring": 0,
            "types": {"string": 1, "hash": 2, "set": 1, "zset": 1},
        },
        {"number": 1, "entries": 1, "expiring": 0, "types": {"list": 1}},
    ]
    assert [(c["kind"], c["entries"], c["elements"]) for c in report["chunks"]] == [
        ("string", 1, 0),
        ("hash", 2, 4),
        ("set", 1, 1),
        ("zset", 1, 2),
        ("list", 1, 3),
    ]


def test_inspect_a_snapshot_of_every_type_counts_keys_and_elements_per_type(
    tmp_path: Path,
) -> None:
    import snapkv

    with snapkv.open(tmp_path / "d", journal=False) as store:
        store.set("a", "1")
        store.hashes["h"].update(f="v", g="w")
        store.lists["l"].extend(["x", "y", "z"])
    result = subprocess.run(
        [sys.executable, "-m", "snapkv", "inspect", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "  format     v3\n" in result.stdout
    assert "  types      1 string, 1 hash, 1 list; elements: 2 hash, 3 list\n" in result.stdout
    assert "  keyspace   0: 3 entries (1 string, 1 hash, 1 list)," in result.stdout
