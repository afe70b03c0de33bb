"""The ``snapkv`` command: run operations, inspect snapshots, check a directory, serve.

Exit status (stable, for scripts):

* 0: success; for ``inspect``, every snapshot passed every check.
* 1: the data is the problem: a corrupt snapshot, a locked or unreadable store.
* 2: the input is the problem: bad arguments, unreadable or malformed
  operations. The one-line message names the file, the line and column
  (JSON) or the line (JSON Lines), the operation counted from 1, and why,
  in JSON's words (``got null``, not ``NoneType``).
* 141 (128 + SIGPIPE): the reader of the output went away (``| head``),
  as for any shell tool killed by SIGPIPE; no traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import snapkv
from snapkv import codec
from snapkv.cli_check import add_check_command, inspect_journal
from snapkv.cli_common import EXIT_DATA, EXIT_OK, EXIT_PIPE, EXIT_USAGE, InputError
from snapkv.cli_migrate import add_migrate_command
from snapkv.cli_rdb import add_export_command, add_import_command
from snapkv.cli_restore import add_restore_command
from snapkv.cli_serve import add_serve_command
from snapkv.errors import CorruptSnapshotError, InvalidOperationError, SnapkvError
from snapkv.media.file import list_snapshots
from snapkv.simulate import COMMANDS, json_type_name, validate_operations

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.handler(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`snapkv run big.jsonl | head`): not an error
        # worth a traceback. Point stdout at /dev/null so the interpreter's
        # final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_PIPE
    except InputError as exc:
        print(f"snapkv {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SnapkvError as exc:
        print(f"snapkv {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_DATA
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="snapkv", description="A persistent in-memory key-value store."
    )
    parser.add_argument("--version", action="version", version=f"snapkv {snapkv.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run operations from a JSON or JSON Lines file and print every get's result",
        description=(
            'Run operations such as ["set", "k", "v"], ["get", "k"], ["shutdown"], '
            '["restore"] (command names in any case: "SET" is "set") and print the '
            "results of the gets as one JSON array."
        ),
    )
    run.add_argument(
        "file", help="a JSON array of operations, or JSON Lines (one per line); - for stdin"
    )
    run.add_argument(
        "--format",
        choices=("auto", "json", "jsonl"),
        default="auto",
        help="input format (auto: by extension .jsonl/.ndjson, else by content)",
    )
    run.add_argument(
        "--dir",
        metavar="DIRECTORY",
        help="run on the store in DIRECTORY instead of in memory: opened without a journal "
        "(its newest snapshot is restored first) and closed without a final save, so it holds "
        "what the shutdowns published",
    )
    run.set_defaults(handler=_run)

    inspect = commands.add_parser(
        "inspect",
        help="verify and describe a snapshot file, a journal file, or every snapshot in a "
        "directory",
    )
    inspect.add_argument(
        "path", help="a snapshot file, a journal file (what it holds) or a store directory"
    )
    inspect.add_argument(
        "--keys", type=int, default=0, metavar="N", help="also list the first N keys"
    )
    inspect.add_argument("--chunks", action="store_true", help="list every chunk")
    inspect.add_argument("--json", action="store_true", help="print one JSON object per snapshot")
    inspect.set_defaults(handler=_inspect)

    add_serve_command(commands)
    add_check_command(commands)
    add_restore_command(commands)
    add_export_command(commands)
    add_import_command(commands)
    add_migrate_command(commands)
    return parser


# ----------------------------------------------------------------------- run


def _run(args: argparse.Namespace) -> int:
    operations, where = _read_operations(args.file, args.format)
    _fold_command_case(operations)
    try:
        # Refuse bad input before anything runs: a rejected file must not
        # have published half of its shutdowns to --dir.
        validate_operations(operations, words="json")
    except InvalidOperationError as exc:
        raise InputError(f"{where(exc.index)}: operation {exc.index + 1}: {exc.message}") from None
    if args.dir is None:
        results = snapkv.run_operations(operations)
    else:
        # The seed contract, as without --dir: no journal (writes after a
        # shutdown live in memory until a restore), and the final close
        # publishes nothing (the directory holds what the operations'
        # shutdowns published).
        store = snapkv.open(args.dir, journal=False, save_on_close=False)
        try:
            results = snapkv.run_operations(operations, store=store)
        finally:
            store.close()
    json.dump(results, sys.stdout)
    sys.stdout.write("\n")
    return EXIT_OK


def _fold_command_case(operations: list[Any]) -> None:
    """Accept ``SET`` and ``Get`` for ``set`` and ``get``, as a Redis user types them.

    Only ASCII letters fold (Redis compares command names the same way), and
    only into a known command: an unknown name is reported as written.
    ``run_operations`` itself keeps refusing other spellings.
    """
    for op in operations:
        if type(op) is list and op and type(op[0]) is str and op[0] not in COMMANDS:
            name = op[0]
            if name.isascii() and name.lower() in COMMANDS:
                op[0] = name.lower()


#: JSON's whitespace (str.isspace() would also take U+00A0, U+2028, ...).
_WHITESPACE = re.compile(r"[ \t\n\r]*")


def _skip_whitespace(text: str, pos: int) -> int:
    """The offset of the first character at or after ``pos`` that is not JSON whitespace."""
    match = _WHITESPACE.match(text, pos)
    assert match is not None  # "*" matches the empty string too
    return match.end()


def _read_operations(name: str, fmt: str) -> tuple[list[Any], Callable[[int], str]]:
    """Parse operations; return them and ``where(index)``, the place of each in the input.

    ``where`` gives ``name:line:column`` of an operation of a JSON array,
    ``name:line`` of a JSON Lines operation.
    """
    try:
        raw = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
        # utf-8-sig: a byte order mark, as some editors write, is not an error.
        text = raw.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {name}: {exc}") from None
    document: Any = _UNPARSED
    if fmt == "auto":
        if name.endswith((".jsonl", ".ndjson")):
            fmt = "jsonl"
        else:
            fmt, document = _sniff(text)
    if fmt == "json":
        # json.loads at C speed: a syntax error carries its line and column.
        # The offsets of the operations are found only if one is refused.
        operations = _loads(text, name) if document is _UNPARSED else document
        if not isinstance(operations, list):
            raise InputError(
                f"{name}:{_line_column(text, _skip_whitespace(text, 0))}: expected a JSON "
                f"array of operations, got {json_type_name(operations)}"
            )
        return operations, lambda index: f"{name}:{_line_column(text, _offsets(text)[index])}"
    operations, lines = [], []
    # Split on "\n" only: str.splitlines() also splits at U+2028, U+2029 and
    # U+0085, which JSON allows unescaped inside strings.
    for number, line in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
        if not line.strip():
            continue
        operations.append(_loads(line, name, number))
        lines.append(number)
    return operations, lambda index: f"{name}:{lines[index]}"


#: _sniff's document when it did not parse the text as one document.
_UNPARSED: Any = object()


def _offsets(text: str) -> list[int]:
    """Where each element of the JSON array ``text`` starts (``text`` parsed already).

    The array is walked element by element (``raw_decode`` does each one in
    C), which costs about as much again as parsing it: done only to place
    an operation that was refused.
    """
    decode = json.JSONDecoder().raw_decode
    offsets: list[int] = []
    pos = _skip_whitespace(text, _skip_whitespace(text, 0) + 1)  # after the "["
    while not text.startswith("]", pos):
        offsets.append(pos)
        _value, end = decode(text, pos)
        pos = _skip_whitespace(text, end)
        if text.startswith(",", pos):
            pos = _skip_whitespace(text, pos + 1)
    return offsets


def _line_column(text: str, pos: int) -> str:
    """``line:column`` (both from 1) of offset ``pos`` in ``text``, as a JSON error gives them."""
    line = text.count("\n", 0, pos) + 1
    return f"{line}:{pos - text.rfind(chr(10), 0, pos)}"


def _syntax_error(name: str, exc: json.JSONDecodeError, line: int | None = None) -> InputError:
    """The one line for a JSON syntax error: ``name:line:column: invalid JSON: why``."""
    row = exc.lineno if line is None else line
    return InputError(f"{name}:{row}:{exc.colno}: invalid JSON: {exc.msg}")


def _loads(text: str, name: str, line: int | None = None) -> Any:
    """json.loads, with every way it can refuse input turned into one InputError line.

    ``line`` is the line of the file ``text`` is (JSON Lines), else ``text``
    is the whole file.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _syntax_error(name, exc, line) from None
    except (ValueError, RecursionError) as exc:  # huge integers, absurd nesting
        where = f":{line}" if line is not None else ""
        raise InputError(f"{name}{where}: unusable JSON: {exc}") from None


def _sniff(text: str) -> tuple[str, Any]:
    """JSON Lines unless the whole text is one JSON array of operations.

    Returns the format, and the document when the text parsed as one (so
    it is not parsed twice), else ``_UNPARSED``.
    """
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        # Several documents (JSON Lines), or one malformed document: if the
        # first line parses alone it is JSON Lines, else report it as JSON so
        # the error names the line where the parser really stopped.
        first = next((line for line in text.split("\n") if line.strip()), "")
        try:
            json.loads(first)
        except (ValueError, RecursionError):
            return "json", _UNPARSED
        return "jsonl", _UNPARSED
    if isinstance(document, list) and document and isinstance(document[0], str):
        # One operation on one line: an array of operations never starts with a str.
        return "jsonl", _UNPARSED
    return "json", document


# ------------------------------------------------------------------- inspect


def _inspect(args: argparse.Namespace) -> int:
    path = Path(args.path)
    directory = path.is_dir()
    try:
        files = list_snapshots(path) if directory else [path]
        if not directory:
            path.stat()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    if directory and not files:
        print(
            json.dumps({"path": str(path), "snapshots": 0})
            if args.json
            else f"{path}: no snapshots"
        )
        return EXIT_OK
    status = EXIT_OK
    for file in files:
        try:
            data = file.read_bytes()
        except FileNotFoundError:
            if directory:
                continue  # pruned by a live store since it was listed: not ours to judge
            raise InputError(f"cannot read {file}: no such file") from None
        except OSError as exc:
            # Unreadable data is a data problem; go on with the other generations.
            print(
                json.dumps({"path": str(file), "ok": False, "error": str(exc)})
                if args.json
                else f"{file}\n  status     UNREADABLE: {exc}"
            )
            status = EXIT_DATA
            continue
        status = max(status, _inspect_one(file, data, args))
    return status


def _by_type(counts: dict[str, int]) -> str:
    """``{"string": 3, "hash": 1}`` as ``3 string, 1 hash``."""
    return ", ".join(f"{count:,} {kind}" for kind, count in counts.items())


def _inspect_one(file: Path, data: bytes, args: argparse.Namespace) -> int:
    # A journal (by its magic, or a .skj name on what is not a snapshot) is
    # described as one, and pointed to `snapkv check`.
    forced = file.suffix == ".skj" and not data.startswith(codec.MAGIC)
    journal_status = inspect_journal(file, data, as_json=args.json, force=forced)
    if journal_status is not None:
        return journal_status
    try:
        info = codec.scan(data, keys=max(args.keys, 0))
    except CorruptSnapshotError as exc:
        if args.json:
            print(
                json.dumps(
                    {
                        "path": str(file),
                        "ok": False,
                        "size": len(data),
                        "error": exc.reason,
                        "offset": exc.offset,
                        "check": exc.check,
                    }
                )
            )
        else:
            print(f"{file}")
            print(f"  status     CORRUPT at offset {exc.offset}: {exc.reason} (check {exc.check})")
        return EXIT_DATA
    if args.json:
        report = {
            "path": str(file),
            "ok": True,
            "version": info.version,
            "size": info.size,
            "entries": info.entries,
            "records": info.records,
            "chunks": [vars(c) for c in info.chunks] if args.chunks else len(info.chunks),
            "keys": info.first_keys,
            "expiring": info.expiring,
            "keyspaces": [vars(k) for k in info.keyspaces],
            "journal_next": info.journal_next,
        }
        print(json.dumps(report))
        return EXIT_OK
    layouts = [c.layout for c in info.chunks]
    print(f"{file}")
    print(f"  status     ok (header and {info.records + 1} records checksummed)")
    print(f"  format     v{info.version}")
    print(f"  size       {info.size:,} bytes")
    print(
        f"  entries    {info.entries:,} in {len(info.chunks)} chunks "
        f"({layouts.count('separated')} separated, {layouts.count('lengths')} lengths)"
    )
    print(f"  expiring   {info.expiring:,} entries with an expiry time")
    if info.elements:
        print(f"  types      {_by_type(info.types)}; elements: {_by_type(info.elements)}")
    for space in info.keyspaces:
        kinds = f" ({_by_type(space.types)})" if len(space.types) > 1 else ""
        print(
            f"  keyspace   {space.number}: {space.entries:,} entries{kinds}, "
            f"{space.expiring:,} with an expiry time"
        )
    if info.journal_next:
        print(
            f"  journal    next {info.journal_next}: "
            "journals with a lower id are contained in this snapshot"
        )
    else:
        print("  journal    none recorded")
    if info.skipped_records:
        print(f"  skipped    {info.skipped_records} optional records of unknown type")
    if args.chunks:
        for chunk in info.chunks:
            print(
                f"  chunk      offset {chunk.offset:,} size {chunk.size:,} "
                f"entries {chunk.entries:,} layout {chunk.layout} "
                f"keyspace {chunk.keyspace} expiring {chunk.expiring:,}"
            )
    for key in info.first_keys:
        print(f"  key        {json.dumps(key)}")
    return EXIT_OK
