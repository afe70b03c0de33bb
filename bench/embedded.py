"""Embedded benchmark: the cost of one Store.get / Store.set, next to a plain dict.

Every contender runs the same loop over the same pre-built keys, with only
the operation changed::

    for k in keys: obj.get(k)            # get (hit), and get of a missing key
    for k, v in pairs: d[k] = v          # set, plain dict
    for k, v in pairs: obj.set(k, v)     # set, Store and the wrapper class

Contenders: a plain dict; a minimal Python class wrapping a dict (methods
``get``/``set``: the price of one Python-level call); snapkv's Store
(``Store()``, in memory); the journal-off store of a directory
(``snapkv.open(dir, journal=False)``, whose ``close()`` publishes what
changed: its dirty tracking must cost a set nothing); and, for context,
shelve (stdlib, on whatever dbm is available) and sqlitedict/diskcache if
they happen to be installed (never required). Sets overwrite existing keys
(the steady state: no table growth).

Expiry: a second Store holds the same entries, every other key with an
expiry time far in the future. ``Store.get`` on its keys with an expiry is
compared with ``Store.get`` on its keys without one (same store, same loop,
same number of keys), and with the same keys in the Store where nothing
expires.

Two sizes: a hot set of 1,000 keys (fits in the CPU caches: the interpreter
overhead shows fully) and 100,000 keys (about 25 MB of keys, values and
table: most lookups miss the caches, as in a real store). Run from the
repository root::

    python bench/embedded.py
"""

from __future__ import annotations

import argparse
import contextlib
import shelve
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import snapkv
from _common import (
    ascii_items,
    describe_machine,
    fmt_ratio,
    interleaved,
    median,
    median_ratio,
    print_table,
    target_line,
)
from snapkv import Store

TARGET = 1.5
#: Target: Store.get of a key with an expiry time / of a key without, same store.
EXPIRY_TARGET = 1.3
#: Expiry times lie this far in the future (seconds): nothing expires during the run.
EXPIRY_HORIZON = 30 * 86_400
#: Keys used for the slow, on-disk contenders (their ns/op is per operation all the same).
SLOW_KEYS = 2_000
OPERATIONS = ("get", "get missing", "set")
#: Rows of the expiry table: (label, which store, which half of the keys).
EXPIRY_ROWS = {
    "key without expiry": ("expiring", "plain half"),
    "key with expiry": ("expiring", "expiring half"),
    "same keys, Store without expiry": ("plain", "plain half"),
}
EXPIRY_PREFIX = "expiry: "
#: The journal-off store on a directory (snapkv.open's opt-out of the journal).
ON_DISK = "snapkv open(journal=False)"


class DictWrapper:
    """The least a Python class around a dict can cost: one method call per operation."""

    def __init__(self) -> None:
        self._data: dict[str, str] = {}

    def get(self, key: str, default: str | None = None) -> str | None:
        return self._data.get(key, default)

    def set(self, key: str, value: str) -> None:
        self._data[key] = value


# Each loop is written out so that its body is exactly one operation.


def loop_get(obj: Any, keys: list[str]) -> float:
    start = time.perf_counter()
    for k in keys:
        obj.get(k)
    return time.perf_counter() - start


def loop_setitem(obj: Any, pairs: list[tuple[str, str]]) -> float:
    start = time.perf_counter()
    for k, v in pairs:
        obj[k] = v
    return time.perf_counter() - start


def loop_set(obj: Any, pairs: list[tuple[str, str]]) -> float:
    start = time.perf_counter()
    for k, v in pairs:
        obj.set(k, v)
    return time.perf_counter() - start


def loop_empty(pairs: list[tuple[str, str]]) -> float:
    start = time.perf_counter()
    for _k, _v in pairs:
        pass
    return time.perf_counter() - start


@contextlib.contextmanager
def optional_contenders(directory: Path) -> Iterator[dict[str, tuple[Any, str]]]:
    """Yield {name: (object, set style)} for the on-disk contenders that import."""
    found: dict[str, tuple[Any, str]] = {}
    with contextlib.ExitStack() as stack:
        shelf = stack.enter_context(shelve.open(str(directory / "shelve")))
        found["shelve"] = (shelf, "setitem")
        try:
            from sqlitedict import SqliteDict  # type: ignore[import-not-found]
        except ImportError:
            pass
        else:
            sd = SqliteDict(str(directory / "sqlitedict.sqlite"), autocommit=True)
            stack.callback(sd.close)
            found["sqlitedict"] = (sd, "setitem")
        try:
            import diskcache  # type: ignore[import-not-found]
        except ImportError:
            pass
        else:
            cache = diskcache.Cache(str(directory / "diskcache"))
            stack.callback(cache.close)
            found["diskcache"] = (cache, "set")
        yield found


def run_size(
    n: int, repeat: int, extra: dict[str, tuple[Any, str]], passes: int, directory: Path
) -> dict[str, dict[str, list[float]]]:
    """ns/op per repetition, for every (contender, operation)."""
    items = ascii_items(n + n, seed=n)
    all_pairs = list(items.items())
    pairs = all_pairs[:n]
    keys = [k for k, _ in pairs]
    missing = [k for k, _ in all_pairs[n:]]
    new_values = [(k, v[::-1]) for k, v in pairs]  # same keys, other values

    plain: dict[str, str] = dict(pairs)
    wrapper = DictWrapper()
    store = Store()
    for k, v in pairs:
        wrapper.set(k, v)
        store.set(k, v)
    on_disk = snapkv.open(directory / f"store-{n}", journal=False)
    on_disk.update(pairs)
    slow = pairs[:SLOW_KEYS]
    for obj, _style in extra.values():
        for k, v in slow:
            obj[k] = v

    # The expiry store: the same entries, every other key with an expiry time.
    expiring = Store()
    first = time.time() + EXPIRY_HORIZON
    for i, (k, v) in enumerate(pairs):
        if i % 2 == 0:
            expiring.set(k, v, expire_at=first + i / 1000)
        else:
            expiring.set(k, v)
    halves = {"expiring half": keys[0::2], "plain half": keys[1::2]}
    if expiring.expiry_ms(halves["plain half"][0]) is not None or any(
        expiring.expiry_ms(k) is None for k in halves["expiring half"]
    ):
        raise SystemExit("the expiry store does not hold the expiry times it was given")
    stores = {"expiring": expiring, "plain": store}

    contenders: dict[str, tuple[Any, str]] = {
        "dict": (plain, "setitem"),
        "wrapper class": (wrapper, "set"),
        "snapkv Store": (store, "set"),
        ON_DISK: (on_disk, "set"),
        **extra,
    }

    def measure(name: str, op: str) -> Callable[[], float]:
        obj, style = contenders[name]
        fast = name not in extra
        use_keys = keys if fast else [k for k, _ in slow]
        use_missing = missing if fast else missing[:SLOW_KEYS]
        use_pairs = new_values if fast else slow
        rounds = passes if fast else 1

        def run() -> float:
            total = 0.0
            for _ in range(rounds):
                if op == "get":
                    total += loop_get(obj, use_keys)
                elif op == "get missing":
                    total += loop_get(obj, use_missing)
                elif style == "setitem":
                    total += loop_setitem(obj, use_pairs)
                else:
                    total += loop_set(obj, use_pairs)
            return total / (rounds * len(use_keys)) * 1e9

        return run

    def empty() -> float:
        return sum(loop_empty(new_values) for _ in range(passes)) / (passes * n) * 1e9

    def measure_expiry(which: str, half: str) -> Callable[[], float]:
        obj, use_keys = stores[which], halves[half]

        def run() -> float:
            total = sum(loop_get(obj, use_keys) for _ in range(passes))
            return total / (passes * len(use_keys)) * 1e9

        return run

    jobs: dict[str, Callable[[], float]] = {"(empty loop)|-": empty}
    for op in OPERATIONS:
        for name in contenders:
            jobs[f"{name}|{op}"] = measure(name, op)
    for label, (which, half) in EXPIRY_ROWS.items():
        jobs[f"{EXPIRY_PREFIX}{label}|get"] = measure_expiry(which, half)
    runs = interleaved(jobs, repeat)
    store.close()
    on_disk.close()  # publishes the changed store, outside the timings
    expiring.close()
    results: dict[str, dict[str, list[float]]] = {}
    for job, values in runs.items():
        name, op = job.split("|")
        results.setdefault(name, {})[op] = values
    return results


def print_size(label: str, results: dict[str, dict[str, list[float]]]) -> dict[str, float]:
    """Print one table; return the Store/dict ratios per operation."""
    base = results["dict"]
    headers = ["contender"]
    for op in OPERATIONS:
        headers += [f"{op} ns/op", f"{op} / dict"]
    rows = []
    for name, by_op in results.items():
        if name == "(empty loop)" or name.startswith(EXPIRY_PREFIX):
            continue
        row: list[object] = [name]
        for op in OPERATIONS:
            row += [f"{median(by_op[op]):.0f}", fmt_ratio(median_ratio(by_op[op], base[op]))]
        rows.append(row)
    print(f"\n### {label}\n")
    print_table(headers, rows)
    print(
        f"(the loop alone, `for k, v in pairs: pass`, costs "
        f"{median(results['(empty loop)']['-']):.0f} ns per iteration; it is included above)"
    )
    store = results["snapkv Store"]
    ratios = {op: median_ratio(store[op], base[op]) for op in OPERATIONS}
    print(
        f"{ON_DISK} set / Store() set: "
        f"{fmt_ratio(median_ratio(results[ON_DISK]['set'], store['set']))} "
        "(per-repetition ratios, median)"
    )

    runs = {row: results[EXPIRY_PREFIX + row]["get"] for row in EXPIRY_ROWS}
    without, plain = runs["key without expiry"], runs["same keys, Store without expiry"]
    print(
        f"\nStore.get where every other key has an expiry time ({label}; "
        f"each row looks up half the keys):\n"
    )
    print_table(
        ["Store.get of", "ns/op", "/ key without expiry", "/ Store without expiry"],
        [
            [
                name,
                f"{median(values):.0f}",
                fmt_ratio(median_ratio(values, without)),
                fmt_ratio(median_ratio(values, plain)),
            ]
            for name, values in runs.items()
        ],
    )
    ratios["get with expiry"] = median_ratio(runs["key with expiry"], without)
    return ratios


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15, help="repetitions (default 15)")
    parser.add_argument("--quick", action="store_true", help="5 repetitions")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat = 5

    with tempfile.TemporaryDirectory() as tmp, optional_contenders(Path(tmp)) as extra:
        shelf_db = type(extra["shelve"][0].dict).__module__  # the dbm module shelve chose
        print(describe_machine())
        print(
            f"Parameters: 16-char keys, 64-char values, {args.repeat} interleaved repetitions "
            f"(medians shown); on-disk contenders use {SLOW_KEYS:,} keys"
        )
        names = ["shelve", "sqlitedict", "diskcache"]
        present = ", ".join(f"{n} (on {shelf_db})" if n == "shelve" else n for n in extra)
        absent = ", ".join(n for n in names if n not in extra)
        skipped = f"; skipped, not installed: {absent}" if absent else ""
        print(f"Context contenders: {present}{skipped}")
        ratios = {}
        for n, passes, label in (
            (1_000, 100, "hot: 1,000 keys (in cache)"),
            (100_000, 1, "100,000 keys"),
        ):
            ratios[label] = print_size(label, run_size(n, args.repeat, extra, passes, Path(tmp)))

    print("\nTargets (printed, not asserted):")
    for label, by_op in ratios.items():
        for op in ("get", "set"):
            print(target_line(f"Store.{op} / dict {op}, {label}", by_op[op], TARGET))
        print(
            target_line(
                f"Store.get of a key with expiry / without (same store), {label}",
                by_op["get with expiry"],
                EXPIRY_TARGET,
            )
        )


if __name__ == "__main__":
    main()
