"""``snapkv check DIRECTORY [--repair [--yes]] [--json]``: the command around :mod:`snapkv.check`.

Exit status, as for the other commands:

* 0: every file passed every check (after ``--repair``: the directory is ok now).
* 1: damage, or data that ``open()`` would drop (after ``--repair``: something
  is still not ok, the repair was declined, or a Store has the directory open).
* 2: the input is the problem: the directory cannot be read, or ``--repair``
  cannot ask for confirmation (standard input is not a terminal) and
  ``--yes`` was not given.

The human report has one line per file (status, then the offset and check
of any damage, then the file's role in recovery), the recovery chain, the
verdict with the reasons, and, with ``--repair``, the plan. The confirmation
prompt goes to standard error, so ``--json --repair`` keeps standard output
pure JSON.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from snapkv.check import (
    DAMAGE,
    LOSS,
    OPENS,
    OPENS_WITH_LOSS,
    TAIL_ZERO,
    ZEROS,
    CheckReport,
    JournalReport,
    RepairAction,
    RepairResult,
    SnapshotReport,
    Totals,
    check_directory,
    is_journal,
    journal_report,
    plural,
    repair_directory,
)
from snapkv.check import report as check_report
from snapkv.cli_common import EXIT_DATA, EXIT_OK, EXIT_USAGE
from snapkv.errors import MediumError, StoreLockedError
from snapkv.objstore.url import is_object_url

__all__ = ["add_check_command", "inspect_journal", "run_check"]


def add_check_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``check`` on the ``snapkv`` command's subparsers."""
    parser = subparsers.add_parser(
        "check",
        help="verify every snapshot and journal of a store directory; --repair fixes damage",
        description=(
            "Verify every snapshot generation and journal in DIRECTORY and say what open() "
            "would do: load everything (exit 0), drop a damaged journal tail, or refuse "
            "(exit 1). With --repair, truncate journal damage to the last good record and set "
            "corrupt files aside, keeping a backup of every file changed, after confirmation. "
            "DIRECTORY may be an object-store URL (s3://bucket/prefix, gs://, az://, file://): "
            "every manifest, snapshot and journal segment under it is verified."
        ),
    )
    parser.add_argument(
        "directory", help="a store directory, or an object-store URL (s3://bucket/prefix, ...)"
    )
    parser.add_argument(
        "--repair",
        action="store_true",
        help="repair what the check found (asks first; needs the directory closed)",
    )
    parser.add_argument(
        "--yes", action="store_true", help="with --repair: do not ask (for scripts)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run_check)


def run_check(args: argparse.Namespace) -> int:
    """Run ``snapkv check``; return the exit status (errors of the store propagate to main)."""
    if is_object_url(args.directory):
        return _check_url(args)
    if args.yes and not args.repair:
        return _usage("--yes only applies to --repair")
    if args.repair and not args.yes and not (sys.stdin is not None and sys.stdin.isatty()):
        return _usage(
            "--repair asks for confirmation, but standard input is not a terminal: "
            "pass --yes to repair without asking"
        )
    try:
        report = check_directory(args.directory)
    except OSError as exc:
        return _usage(f"cannot read {args.directory}: {exc.strerror or exc}")
    counts = _journal_counts(report)
    if not args.repair:
        if args.json:
            _print_json(_with_counts(report.to_dict(), counts))
        else:
            _print_report(report, counts)
            if report.repairs:
                changes = plural(len(report.repairs), "change")
                print(
                    f"to repair ({changes}; nothing is deleted): "
                    f"snapkv check {shlex.quote(args.directory)} --repair"
                )
        return EXIT_OK if report.ok else EXIT_DATA
    if not args.json:
        _print_report(report, counts)
    if not report.repairs:
        if args.json:
            _print_json({**_with_counts(report.to_dict(), counts), "repair": None})
        else:
            print("nothing to repair")
        return EXIT_OK if report.ok else EXIT_DATA
    if report.in_use:
        raise StoreLockedError(
            f"refusing to repair {args.directory}: a Store has it open; close it first"
        )
    if not args.json:
        _print_plan(report.repairs)
    if not args.yes and not _confirm():
        if args.json:
            _print_json({**_with_counts(report.to_dict(), counts), "repair": None})
        else:
            print("nothing changed")
        return EXIT_DATA
    result = repair_directory(args.directory, report)
    if args.json:
        _print_json({**_with_counts(report.to_dict(), counts), "repair": result.to_dict()})
    else:
        _print_result(result)
    return EXIT_OK if result.after.ok else EXIT_DATA


def _journal_counts(report: CheckReport) -> dict[str, dict[str, int]]:
    """Each readable journal's good records counted by kind (FORMAT.md part 2), by name.

    Read here, after the check, from the files the report names: a journal
    that changed since is counted as it is now, which only these counts show.
    """
    counts = {}
    for journal in report.journals:
        if journal.status in ("unreadable", "bad-header"):
            continue
        try:
            data = (Path(report.path) / journal.name).read_bytes()
        except OSError:
            continue  # pruned or unreadable since the check: the report already says what it saw
        counts[journal.name] = check_report.journal_record_counts(data[: journal.valid_end])
    return counts


def _with_counts(data: dict[str, Any], counts: dict[str, dict[str, int]]) -> dict[str, Any]:
    """The report's JSON with each journal's ``records_by_type``."""
    for journal in data["journals"]:
        journal["records_by_type"] = counts.get(journal["name"], {})
    return data


def inspect_journal(file: Path, data: bytes, *, as_json: bool, force: bool = False) -> int | None:
    """``snapkv inspect`` on a journal: what it holds, and the check that judges it.

    A journal means something only with the snapshot it follows (which of
    its records are replayed, whether its tail may be dropped): that is
    ``snapkv check DIR``'s job, so this reads the file alone and says so.
    Returns the exit status, or ``None`` when ``data`` is not a journal
    (its magic is not the journal's and ``force`` is off).
    """
    if not (force or is_journal(data)):
        return None
    journal = journal_report(file.name, data)
    command = f"snapkv check {shlex.quote(str(file.parent))}"
    # Zeros after the records are what a process that did not close the
    # store leaves in the newest journal (cut by open(), no loss); whether
    # this is the newest journal only the directory's check can say.
    zeros = journal.status == "tail" and journal.tail == TAIL_ZERO
    ok = journal.status == "ok" or zeros
    counts = check_report.journal_record_counts(data[: journal.valid_end])
    if as_json:
        fields = asdict(journal)
        del fields["name"], fields["role"]
        _print_json(
            {
                "path": str(file),
                "kind": "journal",
                "ok": ok,
                **fields,
                "records_by_type": counts,
                "check_command": command,
            }
        )
    else:
        print(f"{file}")
        print(f"  kind       journal, not a snapshot: `{command}` verifies it with its snapshots")
        if zeros:
            print(
                f"  status     OK  {plural(journal.records, 'record')}, {journal.valid_end:,} "
                f"bytes, then {journal.dropped_bytes:,} bytes of zeros: if this is the newest "
                "journal, preallocated space left by a process that did not close the store, "
                f"which open() cuts without loss (`{command}` says)"
            )
        else:
            print(f"  status     {_journal_line(journal)}")
        if journal.jid >= 0:
            print(f"  journal    id {journal.jid}")
        if check_report.holds_values(counts):
            print(f"  records    {check_report.describe_counts(counts)}")
    return EXIT_OK if ok else EXIT_DATA


def _check_url(args: argparse.Namespace) -> int:
    """``snapkv check s3://bucket/prefix``: every object verified (:mod:`snapkv.check.objects`)."""
    from snapkv.check.objects import check_objects, print_object_report  # noqa: PLC0415

    if args.repair:
        return _usage(
            "--repair works on a directory: restore the prefix to one with "
            "`snapkv restore URL --to DIR`, or open it with repair=True"
        )
    try:
        report = check_objects(args.directory)
    except (MediumError, ValueError) as exc:
        return _usage(f"cannot read {args.directory}: {exc}")
    print_object_report(report, as_json=args.json)
    return EXIT_OK if report.ok else EXIT_DATA


def _usage(message: str) -> int:
    print(f"snapkv check: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _confirm() -> bool:
    print("Continue? [y/N] ", end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


def _print_json(data: dict[str, Any]) -> None:
    json.dump(data, sys.stdout)
    sys.stdout.write("\n")


# -------------------------------------------------------------- human output


def _print_report(report: CheckReport, counts: dict[str, dict[str, int]]) -> None:
    print(f"snapkv check {report.path}")
    if report.in_use:
        print("  (a Store has this directory open: checked read-only)")
    if not (report.snapshots or report.journals or report.others):
        print("  no snapshots and no journals: an empty store")
    width = max(
        (len(name) for name in [*_names(report), "x"]),
        default=1,
    )
    for snap in report.snapshots:
        print(f"{snap.name:<{width}}  {_snapshot_line(snap)}  [{snap.role}]")
    for journal in report.journals:
        print(f"{journal.name:<{width}}  {_journal_line(journal)}  [{journal.role}]")
        if check_report.holds_values(counts.get(journal.name, {})):
            print(f"{'':<{width}}    records: {check_report.describe_counts(counts[journal.name])}")
    for other in report.others:
        print(f"{other.name:<{width}}  {other.kind} file, {other.size:,} bytes")
    print(f"recovery: {_chain_line(report)}")
    print(f"open(): {_prediction_line(report)}")
    print(f"verdict: {report.verdict}")
    for finding in report.findings:
        label = {DAMAGE: "damage", LOSS: "loss"}.get(finding.severity, "note")
        where = f"{finding.name}: " if finding.name else ""
        print(f"  {label}: {where}{finding.message}")


def _prediction_line(report: CheckReport) -> str:
    prediction = report.prediction
    if prediction.outcome == OPENS:
        return "opens, loading everything"
    if prediction.outcome == OPENS_WITH_LOSS:
        return f"opens, dropping {plural(len(prediction.lost), 'piece')} (see below)"
    return f"refuses with {prediction.error}"


def _names(report: CheckReport) -> list[str]:
    return [
        *(s.name for s in report.snapshots),
        *(j.name for j in report.journals),
        *(o.name for o in report.others),
    ]


def _snapshot_line(snap: SnapshotReport) -> str:
    if snap.status == "corrupt":
        return f"CORRUPT at offset {snap.offset} (check {snap.check}): {snap.error}"
    if snap.status == "unreadable":
        return f"UNREADABLE: {snap.error}"
    spaces = "; ".join(
        f"keyspace {k.number}: {k.entries:,}"
        + (f", {k.expiring:,} with expiry" if k.expiring else "")
        for k in snap.keyspaces
    )
    held = f" ({spaces})" if spaces else ""
    entries = plural(snap.entries, "entry", "entries")
    return (
        f"OK  v{snap.version}, {snap.size:,} bytes, {entries}{held}, "
        f"journal_next {snap.journal_next}"
    )


def _journal_line(journal: JournalReport) -> str:
    if journal.status == "ok":
        return f"OK  {plural(journal.records, 'record')}, {journal.size:,} bytes"
    if journal.status == ZEROS:
        return (
            f"OK  {plural(journal.records, 'record')}, {journal.valid_end:,} bytes, then "
            f"{journal.dropped_bytes:,} bytes of zeros (preallocated space left by a process "
            "that did not close the store): open() cuts them, nothing is lost"
        )
    if journal.status == "unreadable":
        return f"UNREADABLE: {journal.error}"
    if journal.status == "bad-header":
        return f"BAD HEADER at offset {journal.offset} (check {journal.check}): {journal.error}"
    if journal.status == "damaged":
        return (
            f"DAMAGED at offset {journal.offset} (check {journal.check}): {journal.error}; "
            f"{plural(journal.records, 'good record')} before it; {journal.dropped_bytes:,} "
            f"bytes from there on ({plural(journal.discarded_records, 'valid-looking record')})"
        )
    return (
        f"{journal.tail.upper()} TAIL at offset {journal.valid_end}: {journal.dropped_bytes:,} "
        f"bytes after {plural(journal.records, 'good record')} would be dropped"
    )


def _chain_line(report: CheckReport) -> str:
    chain = report.chain
    start = (
        f"{chain.snapshot} (journal_next {chain.journal_next})"
        if chain.snapshot is not None
        else "no valid snapshot (starts empty)"
    )
    if not chain.replay:
        replay = "no journal to replay"
    elif len(chain.replay) == 1:
        replay = f"then journal {chain.replay[0]}"
    else:
        replay = f"then journals {_span(chain.replay)}"
    return f"{start}, {replay}"


def _span(ids: tuple[int, ...]) -> str:
    if len(ids) > 2 and ids[-1] - ids[0] == len(ids) - 1:
        return f"{ids[0]}..{ids[-1]}"
    return ", ".join(map(str, ids))


def _print_plan(actions: tuple[RepairAction, ...]) -> None:
    print("repair plan (nothing is deleted: truncated files are backed up first):")
    for action in actions:
        print(f"  {_action_line(action)}")
    cut = Totals.of(a for a in actions if a.kind == "truncate")
    aside = Totals.of(a for a in actions if a.kind == "set-aside")
    print(f"  total: {_totals(cut, aside, done=False)}")


def _action_line(action: RepairAction, *, done: bool = False) -> str:
    """One action: the file, exactly what leaves what recovery reads, where it is kept, why."""
    if action.kind == "set-aside":
        target = action.target or f"{action.name}.corrupt"
        return (
            f"set aside {action.name} as {target} ({action.lost_bytes:,} bytes, "
            f"{_records(action)}): {action.reason}"
        )
    if done:
        verb, remove, backup = "truncated", "removing", f"backup {action.backup}"
    else:
        verb, remove, backup = "truncate", "removing", "after a backup copy"
    return (
        f"{verb} {action.name} from {action.size:,} to {action.keep:,} bytes, {remove} "
        f"{action.lost_bytes:,} bytes holding {_records(action, valid=True)} ({backup}): "
        f"{action.reason}"
    )


def _records(action: RepairAction, *, valid: bool = False) -> str:
    if action.lost_records is None:
        if action.name.endswith(".skv"):
            return "entries not countable: it is corrupt"
        return "records not countable: its header is bad"
    if not action.lost_records:
        return "no complete record"
    records = plural(action.lost_records, "record")
    return f"{records} that look valid" if valid else records


def _totals(cut: Totals, aside: Totals, *, done: bool) -> str:
    """The total line: what truncation removes, and what is only set aside, kept apart."""
    if cut.files:
        removed = (
            f"{'removed' if done else 'remove'} {cut.bytes:,} bytes "
            f"({plural(cut.records, 'journal record')}) from {plural(cut.files, 'file')}, "
            f"{'kept in' if done else 'first copied to'} {plural(cut.files, 'backup')}"
        )
    else:
        removed = "nothing removed" if done else "remove nothing"
    if aside.files:
        uncounted = (
            f" and {plural(aside.uncounted, 'file')} whose records cannot be counted"
            if aside.uncounted
            else ""
        )
        kept = (
            f"set aside {plural(aside.files, 'file')} as *.corrupt "
            f"({aside.bytes:,} bytes: {plural(aside.records, 'journal record')}{uncounted})"
        )
    else:
        kept = "nothing set aside" if done else "set nothing aside"
    return f"{removed}; {kept}"


def _print_result(result: RepairResult) -> None:
    print("repaired:")
    for action in result.actions:
        print(f"  {_action_line(action, done=True)}")
    print(f"  total: {_totals(result.removed, result.set_aside, done=True)}")
    print(f"after repair: verdict {result.after.verdict}")
    for finding in result.after.findings:
        if finding.severity in (DAMAGE, LOSS):
            print(f"  {finding.severity}: {finding.name}: {finding.message}")
