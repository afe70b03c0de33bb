"""``snapkv check`` predicts ``open()`` exactly, over thousands of randomly damaged directories.

Real journaled stores write a few histories (one or two snapshot
generations, one to three journals, with and without ``keep``). Each run
copies one, damages it at random (files cut short, bits flipped, zero and
garbage tails, journals removed, duplicated under another id or left as a
bare header, snapshots damaged) and then asserts:

* what ``check_directory`` predicts (opens / opens with loss / refuses with
  this error and check) is what ``snapkv.open`` does on a copy, and a
  predicted refusal's message is open()'s, word for word (the file, the
  offset, the check, what recovery would drop and the repair command);
* the zeros check says open() cuts without loss (zeros after the newest
  journal's records, FORMAT.md J6 rule 3) are exactly the bytes open()
  reports in ``journal_zeros_cut``, and zeros appended to the newest journal
  of an undamaged directory leave it opening without loss;
* ``repair_directory`` (``snapkv check --repair``) leaves a directory that
  opens to exactly the data ``open(repair=True)`` loads from another copy,
  or, when ``open(repair=True)`` refuses too, plans no repair.

``SNAPKV_DIFFERENTIAL_RUNS`` sets the number of damaged directories (2,000
by default); a failure names the seed that rebuilds it.
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import snapkv
from snapkv import journal as jr
from snapkv.check import OPENS, OPENS_WITH_LOSS, REFUSES, check_directory, repair_directory
from snapkv.errors import SnapkvError
from support import State, dump

RUNS = int(os.environ.get("SNAPKV_DIFFERENTIAL_RUNS", "2000"))
CHUNKS = 20


def _history(directory: Path, rng: random.Random, *, keep: int, saves: int) -> None:
    store = snapkv.open(directory, keep=keep, journal=True, fsync="never")
    try:
        for step in range(saves + 1):
            for _ in range(rng.randint(2, 6)):
                space = store.db(rng.randrange(3))
                key = rng.choice(["a", "b", "c", "é", ""])
                roll = rng.random()
                if roll < 0.6:
                    space.set(key, rng.choice(["x", "yy", "\x00z", "😀" * 3]))
                elif roll < 0.75:
                    space.set(key, "t", expire_at=4_000_000_000)
                elif roll < 0.9:
                    space.delete(key)
                else:
                    space.update({"u": str(step), "v": key})
            if step < saves:
                store.save()
    finally:
        store.close()


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    made = []
    rng = random.Random(20261207)
    for number, (keep, saves) in enumerate([(0, 0), (0, 1), (1, 1), (1, 2), (2, 2), (1, 3)]):
        directory = tmp_path_factory.mktemp(f"template{number}")
        _history(directory, rng, keep=keep, saves=saves)
        made.append(directory)
    return made


def _data_files(directory: Path) -> list[Path]:
    return sorted(
        p for p in directory.iterdir() if p.suffix in (".skv", ".skj") and p.name[0] != "."
    )


def _damage(directory: Path, rng: random.Random) -> list[str]:
    """One to three random injuries; returns what was done (for the failure message)."""
    done = []
    for _ in range(rng.randint(1, 3)):
        files = _data_files(directory)
        if not files:
            break
        victim = rng.choice(files)
        data = victim.read_bytes()
        kind = rng.choice(
            ["cut", "cut", "flip", "flip", "zeros", "garbage", "remove", "duplicate", "header"]
        )
        if kind == "cut":
            at = rng.randrange(len(data) + 1)
            victim.write_bytes(data[:at])
        elif kind == "flip" and data:
            at = rng.randrange(len(data))
            flipped = bytearray(data)
            flipped[at] ^= 1 << rng.randrange(8)
            victim.write_bytes(bytes(flipped))
        elif kind == "zeros":
            at = rng.randint(1, 64)
            victim.write_bytes(data + bytes(at))
        elif kind == "garbage":
            at = rng.randint(1, 64)
            victim.write_bytes(data + rng.randbytes(at))
        elif kind == "remove":
            at = 0
            victim.unlink()
        elif kind == "duplicate" and victim.suffix == ".skj":
            # The same bytes under the next id: its header names another journal.
            at = int(victim.stem.split("-")[1]) + 1
            victim.with_name(f"journal-{at:016d}.skj").write_bytes(data)
        elif kind == "header" and victim.suffix == ".skj":
            # A journal that holds only its header, after the newest or in place.
            newest = max(int(p.stem.split("-")[1]) for p in files if p.suffix == ".skj")
            at = rng.choice([newest + 1, int(victim.stem.split("-")[1])])
            path = victim.with_name(f"journal-{at:016d}.skj")
            path.write_bytes(jr.header(at))
        else:
            continue
        done.append(f"{kind} {victim.name} @{at}")
    return done


# outcome, error class, check, state, message, bytes of zeros cut without loss
Outcome = tuple[str, str, str, State | None, str, int]


def _open(directory: Path, **options: bool) -> Outcome:
    try:
        store = snapkv.open(directory, journal=True, **options)
    except SnapkvError as exc:
        return REFUSES, type(exc).__name__, getattr(exc, "check", ""), None, str(exc), 0
    try:
        report = store.last_restore
        assert report is not None
        outcome = OPENS_WITH_LOSS if report.damaged else OPENS
        return outcome, "", "", dump(store), "", report.journal_zeros_cut
    finally:
        store.close()


def _copy(source: Path, target: Path) -> Path:
    return Path(shutil.copytree(source, target, ignore=shutil.ignore_patterns("LOCK")))


def _runs(chunk: int) -> Iterator[int]:
    return iter(range(chunk, RUNS, CHUNKS))


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_check_predicts_open_and_repair_matches_open_repair(
    templates: list[Path], tmp_path: Path, chunk: int
) -> None:
    outcomes: dict[str, int] = {}
    zero_cuts = 0
    for seed in _runs(chunk):
        rng = random.Random(seed)
        work = tmp_path / str(seed)
        damaged = _copy(rng.choice(templates), work / "damaged")
        injuries = _damage(damaged, rng)
        context = f"seed {seed}: {injuries}"

        report = check_directory(damaged)
        opened = _open(_copy(damaged, work / "open"))
        predicted = report.prediction
        assert (predicted.outcome, predicted.error, predicted.check) == opened[:3], context
        if predicted.error.startswith("Corrupt"):
            said = predicted.message.replace(str(damaged), str(work / "open"))
            assert said == opened[4], context
        if predicted.outcome == OPENS:
            assert report.verdict != "recoverable-with-loss", context
        if predicted.outcome != REFUSES:
            zeros = sum(j.dropped_bytes for j in report.journals if j.status == "zeros")
            assert zeros == opened[5], context
            zero_cuts += bool(opened[5])
        if injuries and all(i.startswith("zeros journal-") for i in injuries):
            # Zeros after the records of the journals are what a process that
            # did not close the store leaves (in the newest one): never a loss.
            assert predicted.outcome != OPENS_WITH_LOSS, context
        outcomes[predicted.outcome] = outcomes.get(predicted.outcome, 0) + 1

        repaired_by_open = _open(_copy(damaged, work / "open-repair"), repair=True)
        if repaired_by_open[0] == REFUSES:
            assert report.repairs == (), context
        else:
            result = repair_directory(damaged, report)
            after = _open(damaged)
            assert after[0] == OPENS, (context, result.after.findings)
            assert after[3] == repaired_by_open[3], context
            assert result.after.prediction.outcome == OPENS, context
        shutil.rmtree(work)
    # Every chunk meets the three outcomes: the damage is neither too mild nor too harsh.
    if RUNS >= 40 * CHUNKS:
        assert set(outcomes) == {OPENS, OPENS_WITH_LOSS, REFUSES}, outcomes
        assert zero_cuts, "no run cut zeros after the newest journal's records"
