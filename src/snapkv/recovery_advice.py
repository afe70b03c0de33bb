"""The words of recovery's refusals: what recovery would drop if asked, and the repair command.

A refusal of ``open()`` or ``restore()`` names the file, the offset and the
check once (the error's own fields), then says what recovery would do if
asked to recover: what ``fallback=True`` or ``repair=True`` would load,
replay, cut and set aside, and, when the medium is a directory, the
``snapkv check DIR --repair`` command that makes those changes on disk with
backups. Redis's AOF loader does the same: "Bad file format reading the
append only file ... use redis-check-aof --fix".

The options are named in the words of whoever reads the refusal, one rule
with two spellings (:class:`Vocabulary`): a program that calls ``open()``
reads ``open(fallback=True)``, the operator of ``snapkv serve`` reads
``--rdb-load-fallback yes`` and ``--aof-load-repair yes``, the server's
options for the same thing. The server restores ``with speaking(SERVER):``.

The repair command is the interactive one, for the human who reads the
message; it says to add ``--yes`` in a script, where ``snapkv check
--repair`` has no terminal to ask on and refuses without it.

Words only: :mod:`snapkv.recovery` makes the plans, with the same rules
that load the data, and hands them here, so the advice describes exactly
the changes ``open(fallback=True)`` or ``open(repair=True)`` makes. What
is read here is only what the words need (sizes, the records of journals
set aside); :mod:`snapkv.recovery` turns a failure to read into
:func:`unreadable_advice`, so the advice never hides the refusal itself.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

from snapkv import journal as jr
from snapkv.errors import CorruptJournalError, MediumError, SnapkvError

if TYPE_CHECKING:
    from snapkv.recovery import JournalPlan, SnapshotChoice, Source

__all__ = [
    "API",
    "SERVER",
    "Vocabulary",
    "count",
    "ids",
    "journal_advice",
    "no_fallback_advice",
    "snapshot_advice",
    "speaking",
    "unreadable_advice",
]


@dataclass(frozen=True)
class Vocabulary:
    """How the advice names recovery's two options for the one who reads it.

    ``fallback`` and ``repair`` spell the options (``{call}`` is ``open`` on
    a directory, else ``restore``); ``subject`` starts the sentence that
    says what the option would do (``{option}`` is the spelled option).
    """

    fallback: str
    repair: str
    subject: str = "{option}"


#: ``open()`` and ``restore()``'s keyword arguments (the default).
API = Vocabulary(fallback="{call}(fallback=True)", repair="{call}(repair=True)")
#: ``snapkv serve``'s options (``rdb-load-fallback yes`` in a config file).
SERVER = Vocabulary(
    fallback="--rdb-load-fallback yes",
    repair="--aof-load-repair yes",
    subject="Starting the server with {option}",
)

_vocabulary: ContextVar[Vocabulary] = ContextVar("snapkv_advice_vocabulary", default=API)


@contextmanager
def speaking(vocabulary: Vocabulary) -> Iterator[None]:
    """Within the block (this thread or task), refusals name the options in ``vocabulary``."""
    token = _vocabulary.set(vocabulary)
    try:
        yield
    finally:
        _vocabulary.reset(token)


def _option(source: Source, name: str) -> str:
    """Option ``name`` (``fallback`` or ``repair``) as the reader spells it."""
    vocabulary = _vocabulary.get()
    spelled = vocabulary.fallback if name == "fallback" else vocabulary.repair
    return spelled.format(call=_call(source))


def _subject(source: Source, name: str) -> str:
    """The start of the sentence saying what option ``name`` would do."""
    return _vocabulary.get().subject.format(option=_option(source, name))


def _generation_number(name: str) -> str:
    """The generation number in a snapshot's name, as a directory's or a prefix's names it.

    ``snapshot-0000000000000008.skv`` is 8; an object name also carries the
    epoch that wrote it (``snapshot/<generation>-<epoch>.skv``), which is not
    part of the number.
    """
    match = _GENERATION.search(name)
    return str(int(match.group(1))) if match else name


_GENERATION = re.compile(r"snapshot[-/](\d+)")


def snapshot_advice(
    source: Source, choice: SnapshotChoice, journals: JournalPlan, option: str
) -> str:
    """What ``option`` would do after a refused snapshot: ``fallback=True`` (or ``repair=True``).

    ``choice`` and ``journals`` are the plan recovery makes with that option
    (``repair=True`` when the fallback's journals are damaged too).
    """
    assert choice.generation is not None  # a fallback chose one, or raised
    number = _generation_number(choice.generation)
    what = [f"load {_name(source, choice.generation)} (generation {number}) instead"]
    for generation, _reason in choice.skipped:
        size = len(source.read(generation) or b"")
        what.append(f"set aside {_name(source, generation)} ({count(size, 'byte')})")
    if journals.scans or journals.aside:
        what += _journal_changes(source, journals)
        lost = ""
    else:  # nothing replayed on top of it: what the newer generations added is gone
        lost = f", losing every write made after generation {number} was saved"
    subject = _subject(source, option.partition("=")[0])
    return f"{subject} would {_and(what)}{lost}. {_repair_command(source)}"


def no_fallback_advice(source: Source) -> str:
    """The newest snapshot is refused and no older generation passes its checks either."""
    return (
        f"No older generation passes its checks, so {_option(source, 'fallback')} cannot "
        f"load one instead: restore the data from a backup. {_check_command(source)}"
    )


def journal_advice(source: Source, plan: JournalPlan) -> str:
    """What ``repair=True`` would do: ``plan`` is the plan recovery makes with it."""
    return (
        f"{_subject(source, 'repair')} would {_and(_journal_changes(source, plan))}. "
        f"{_repair_command(source)}"
    )


def unreadable_advice(source: Source, exc: SnapkvError) -> str:
    """The advice when reading the medium again to make the plan failed with ``exc``."""
    return f"{_check_command(source)} (reading it again to say more failed: {exc})"


def _journal_changes(source: Source, plan: JournalPlan) -> list[str]:
    """What a plan keeps of the journals and what it cuts and sets aside, as clauses."""
    # Zeros cut after the newest journal's records lose nothing (recovery's
    # ``zeros_cut``): that journal is replayed whole, as far as words go.
    cut = plan.cut[0] if plan.cut is not None and not plan.zeros_cut else None
    whole = [scan for scan in plan.scans if scan.jid != cut]
    changes: list[str] = []
    if whole:
        names = (
            _name(source, source.describe_journal(whole[0].jid))
            if len(whole) == 1
            else f"journals {ids([scan.jid for scan in whole])}"
        )
        records = sum(len(scan.ops) + scan.skipped_records for scan in whole)
        changes.append(f"replay {names} whole ({count(records, 'record')})")
    for scan in plan.scans:
        if scan.jid != cut:
            continue
        kept = len(scan.ops) + scan.skipped_records
        held = (
            f", which hold {count(scan.discarded_records, 'later record')} that look valid"
            if scan.discarded_records
            else ""
        )
        changes.append(
            f"keep the first {count(kept, 'record')} of "
            f"{_name(source, source.describe_journal(scan.jid))} (cutting its last "
            f"{count(scan.dropped_bytes, 'byte')}{held})"
        )
    if not plan.scans:
        changes.append("replay no journal")
    if plan.aside:
        size, records, uncounted = 0, 0, False
        for jid in plan.aside:
            blob = _read_quietly(source, jid)
            size += len(blob or b"")
            try:
                scan = jr.scan_journal(blob or b"", jid=jid, repair=True)
            except CorruptJournalError:
                uncounted = True  # a bad header: nothing in it can be counted
            else:
                records += len(scan.ops) + scan.skipped_records + scan.discarded_records
        first = _name(source, source.describe_journal(plan.aside[0]))
        names = first if len(plan.aside) == 1 else f"{len(plan.aside)} journals from {first} on"
        held = (
            "records not countable"
            if uncounted and not records
            else f"{'at least ' if uncounted else ''}{count(records, 'record')}"
        )
        changes.append(f"set aside {names} ({count(size, 'byte')}, {held})")
    return changes


def _read_quietly(source: Source, jid: int) -> bytes | None:
    try:
        return source.read_journal(jid)
    except MediumError:
        return None


def _directory(source: Source) -> str | None:
    """The directory of a file medium (FileMedium, DirectoryReader), else ``None``."""
    directory = getattr(source, "directory", None)
    return str(directory) if isinstance(directory, str | os.PathLike) else None


def _call(source: Source) -> str:
    return "open" if _directory(source) is not None else "restore"


def _name(source: Source, described: str) -> str:
    """A file's name alone when the medium is a directory (the error names the path)."""
    return os.path.basename(described) if _directory(source) is not None else described


def _repair_command(source: Source) -> str:
    directory = _directory(source)
    if directory is None:
        return "Nothing was changed."
    return (
        f"To repair (nothing is deleted; cut files are backed up first), run: "
        f"snapkv check {shlex.quote(directory)} --repair "
        "(it asks before changing anything; add --yes in a script)"
    )


def _check_command(source: Source) -> str:
    directory = _directory(source)
    if directory is None:
        return "Nothing was changed."
    return f"To see every file, run: snapkv check {shlex.quote(directory)}"


def _and(clauses: list[str]) -> str:
    return clauses[0] if len(clauses) == 1 else f"{', '.join(clauses[:-1])} and {clauses[-1]}"


def ids(jids: list[int]) -> str:
    """Journal ids as a message gives them: ``3..9``, or ``3, 5 and 8``."""
    if len(jids) > 2 and jids[-1] - jids[0] == len(jids) - 1:
        return f"{jids[0]}..{jids[-1]}"
    return _and([str(jid) for jid in jids])


def count(number: int, noun: str) -> str:
    """``1 record``, ``1,024 bytes``."""
    return f"{number:,} {noun if number == 1 else noun + 's'}"
