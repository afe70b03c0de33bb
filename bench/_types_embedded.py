"""The embedded part of the value types' benchmark (run by ``bench/value_types.py``).

``store.hashes[k][f] = v``, ``store.lists[k].append(v)``,
``store.sets[k].add(m)`` and ``store.zsets[k][m] = s`` against
``store.set(k, v)`` on the same store, in windows of the same number of
writes, interleaved with the order rotating: once with the journal on
(``snapkv.open(dir)``, fsync everysec) and once off (``journal=False``).
The question it answers: what does writing into a container cost over
writing a whole string value, through the same Store, lock and journal?
Every loop is written as a user would write it, so the view object each
``store.hashes[k]`` creates is part of the price.
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import snapkv
from _common import fmt_ratio, interleaved, median, median_ratio, print_table, target_line

#: Target: a container write / store.set on the same store (printed, never asserted).
EMBEDDED_VS_SET = 1.5


def tagged(tag: str, message: str) -> None:
    print(tag + message, file=sys.stderr, flush=True)


#: Each window writes this many times to KEYS keys (FIELDS fields or members each).
KEYS, FIELDS = 100, 10


def embedded_ops(
    rep: int, ops: int
) -> dict[str, tuple[Callable[[Any, list[Any]], None], list[Any]]]:
    """The operation loops and their data for window ``rep``: every write changes something.

    ``set``, ``hash`` and ``zset`` overwrite what is there with new values
    (no growth); a list append and a set add cannot, so they grow by
    ``ops`` elements a window, spread over the keys.
    """
    slots = [(i % (KEYS * FIELDS), i % KEYS, f"f{i % FIELDS}") for i in range(ops)]

    def set_(store: Any, data: list[Any]) -> None:
        for k, v in data:
            store.set(k, v)

    def hash_(store: Any, data: list[Any]) -> None:
        for k, f, v in data:
            store.hashes[k][f] = v

    def list_(store: Any, data: list[Any]) -> None:
        for k, v in data:
            store.lists[k].append(v)

    def sadd(store: Any, data: list[Any]) -> None:
        for k, m in data:
            store.sets[k].add(m)

    def zset(store: Any, data: list[Any]) -> None:
        for k, m, s in data:
            store.zsets[k][m] = s

    tag = f"{rep:04d}"
    sets = [(f"s{k}", f"v{tag}{i:08d}") for i, (k, _, _) in enumerate(slots)]
    members = [(f"t{k}", f"m{tag}{i:08d}") for i, (_, k, _) in enumerate(slots)]
    scores = [(f"z{k}", f, float(rep * ops + i)) for i, (_, k, f) in enumerate(slots)]
    return {
        "store.set(k, v)": (set_, sets),
        "store.hashes[k][f] = v": (hash_, [(f"h{k}", f, f"v{tag}") for _, k, f in slots]),
        "store.lists[k].append(v)": (list_, [(f"l{k}", f"v{tag}") for _, k, _ in slots]),
        "store.sets[k].add(m)": (sadd, members),
        "store.zsets[k][m] = s": (zset, scores),
    }


class Windows:
    """One store's contenders: each call of :meth:`contender`'s function times one window."""

    def __init__(self, store: Any, ops: int, mode: str) -> None:
        self.store, self.ops, self.mode = store, ops, mode
        self.loops: dict[str, Callable[[Any, list[Any]], None]] = {}
        self.calls: dict[str, int] = {}
        for name, (loop, data) in embedded_ops(-1, ops).items():
            try:
                loop(store, data)  # warm-up, and the keys' first contents
            except (AttributeError, NotImplementedError, TypeError) as exc:
                print(f"{mode}: {name} not available ({type(exc).__name__}: {exc})")
                continue
            self.loops[name], self.calls[name] = loop, 0

    def contender(self, name: str) -> Callable[[], float]:
        def measure() -> float:
            data = embedded_ops(self.calls[name], self.ops)[name][1]  # new values each window
            self.calls[name] += 1
            start = time.perf_counter()
            self.loops[name](self.store, data)
            return (time.perf_counter() - start) / self.ops * 1e9

        return measure


def embedded(ops: int, repeat: int) -> dict[str, dict[str, list[float]]]:
    """ns per operation, by journal mode and operation; operations a store lacks are left out."""
    found: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="snapkv-bench-types-") as tmp:
        for mode, journal in (("journal on (everysec)", True), ("journal off", False)):
            store = snapkv.open(
                os.path.join(tmp, mode.split()[1]), journal=journal, save_on_close=False
            )
            try:
                windows = Windows(store, ops, mode)
                found[mode] = interleaved(
                    {name: windows.contender(name) for name in windows.loops},
                    repeat,
                    progress=functools.partial(tagged, f"embedded {mode}: "),
                )
            finally:
                store.close()
    return found


def report_embedded(found: dict[str, dict[str, list[float]]], ops: int, targets: list[str]) -> None:
    for mode, by_name in found.items():
        base = by_name["store.set(k, v)"]
        rows: list[list[object]] = []
        for name, times in by_name.items():
            found_ratio = median_ratio(times, base)
            rows.append([name, f"{median(times):,.0f}", fmt_ratio(found_ratio)])
            if name != "store.set(k, v)":
                what = f"embedded {mode}: {name} / store.set(k, v)"
                targets.append(target_line(what, found_ratio, EMBEDDED_VS_SET))
        print(f"\nEmbedded, {mode}, {ops:,} operations a window (ns per operation, medians):\n")
        print_table(["operation", "ns/op", "time / store.set"], rows)
