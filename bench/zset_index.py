"""The sorted set's ordered index: sortedcontainers.SortedList against a hand-written skiplist.

A sorted set (snapkv.values.zsets.ZSet) keeps its members in a
``SortedList`` of ``(score, member)``; Redis keeps them in a skiplist with
spans (``t_zset.c``'s ``zskiplist``). The dependency is worth having only
if it beats the straightforward pure-Python skiplist below (Redis's
algorithm: random levels with p = 1/4, spans for ranks) on the operations a
sorted set does:

* insert: N members into an empty index, in random order (ZADD);
* rank: the 0-based rank of 10,000 random members (ZRANK);
* range: 1,000 score windows of about 100 members each, walked (ZRANGEBYSCORE);
* remove: 10,000 random members (ZREM).

At 10,000 and 1,000,000 members; the times are medians of several rounds,
each round running both contenders (interleaved, order rotating); the
ratio is skiplist time / SortedList time, the median of the per-round
ratios (above 1: SortedList is faster).

Then the embedded write path: ``store.zsets[k][m] = s`` (one ZADD of one
member: view, lock, journal record, effect) against ``store.set(k, v)`` on
the same in-memory store. Run from the repository root::

    python bench/zset_index.py            # about 3 minutes
    python bench/zset_index.py --quick    # 10,000 members only, 3 rounds
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from typing import Any

from sortedcontainers import SortedList

import snapkv
from _common import describe_machine, fmt_ratio, fmt_seconds, interleaved, median, print_table

_MAX_LEVEL = 32
_P = 0.25


class _Node:
    __slots__ = ("backward", "forward", "member", "score", "span")

    def __init__(self, level: int, score: float, member: str) -> None:
        self.score = score
        self.member = member
        self.forward: list[_Node | None] = [None] * level
        self.span = [0] * level
        self.backward: _Node | None = None


class Skiplist:
    """Redis's ``zskiplist`` in plain Python: ordered by (score, member), spans for ranks."""

    def __init__(self) -> None:
        self.head = _Node(_MAX_LEVEL, float("-inf"), "")
        self.level = 1
        self.length = 0

    @staticmethod
    def _random_level() -> int:
        level = 1
        while random.random() < _P and level < _MAX_LEVEL:
            level += 1
        return level

    @staticmethod
    def _before(node: _Node | None, score: float, member: str) -> bool:
        return node is not None and (node.score, node.member) < (score, member)

    def insert(self, score: float, member: str) -> None:
        update: list[_Node] = [self.head] * _MAX_LEVEL
        rank = [0] * _MAX_LEVEL
        x = self.head
        for i in range(self.level - 1, -1, -1):
            rank[i] = 0 if i == self.level - 1 else rank[i + 1]
            while self._before(x.forward[i], score, member):
                rank[i] += x.span[i]
                x = x.forward[i]  # type: ignore[assignment]
            update[i] = x
        level = self._random_level()
        if level > self.level:
            for i in range(self.level, level):
                rank[i] = 0
                update[i] = self.head
                self.head.span[i] = self.length
            self.level = level
        node = _Node(level, score, member)
        for i in range(level):
            node.forward[i] = update[i].forward[i]
            update[i].forward[i] = node
            node.span[i] = update[i].span[i] - (rank[0] - rank[i])
            update[i].span[i] = rank[0] - rank[i] + 1
        for i in range(level, self.level):
            update[i].span[i] += 1
        node.backward = None if update[0] is self.head else update[0]
        if node.forward[0] is not None:
            node.forward[0].backward = node
        self.length += 1

    def remove(self, score: float, member: str) -> bool:
        update: list[_Node] = [self.head] * _MAX_LEVEL
        x = self.head
        for i in range(self.level - 1, -1, -1):
            while self._before(x.forward[i], score, member):
                x = x.forward[i]  # type: ignore[assignment]
            update[i] = x
        target = x.forward[0]
        if target is None or (target.score, target.member) != (score, member):
            return False
        for i in range(self.level):
            if update[i].forward[i] is target:
                update[i].span[i] += target.span[i] - 1
                update[i].forward[i] = target.forward[i]
            else:
                update[i].span[i] -= 1
        if target.forward[0] is not None:
            target.forward[0].backward = target.backward
        while self.level > 1 and self.head.forward[self.level - 1] is None:
            self.level -= 1
        self.length -= 1
        return True

    def rank(self, score: float, member: str) -> int:
        """0-based rank of an existing (score, member)."""
        rank = 0
        x = self.head
        for i in range(self.level - 1, -1, -1):
            while x.forward[i] is not None and (x.forward[i].score, x.forward[i].member) <= (  # type: ignore[union-attr]
                score,
                member,
            ):
                rank += x.span[i]
                x = x.forward[i]  # type: ignore[assignment]
            if x is not self.head and x.member == member:
                return rank - 1
        return -1

    def range_by_score(self, low: float, high: float) -> list[tuple[float, str]]:
        x = self.head
        for i in range(self.level - 1, -1, -1):
            while x.forward[i] is not None and x.forward[i].score < low:  # type: ignore[union-attr]
                x = x.forward[i]  # type: ignore[assignment]
        node = x.forward[0]
        out = []
        while node is not None and node.score <= high:
            out.append((node.score, node.member))
            node = node.forward[0]
        return out


# -------------------------------------------------------------- workloads


def _workload(n: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    pairs = [(rng.random() * n, f"member:{i:08d}") for i in range(n)]
    rng.shuffle(pairs)
    probes = rng.sample(pairs, min(10_000, n))
    width = 100.0  # scores are uniform on [0, n): about 100 members per window
    windows = [(low, low + width) for low in (rng.random() * (n - width) for _ in range(1_000))]
    return {"pairs": pairs, "probes": probes, "windows": windows}


def _run_sortedlist(w: dict[str, Any]) -> dict[str, float]:
    index: SortedList = SortedList()
    t0 = time.perf_counter()
    add = index.add
    for pair in w["pairs"]:
        add(pair)
    t1 = time.perf_counter()
    for pair in w["probes"]:
        index.index(pair)
    t2 = time.perf_counter()
    for low, high in w["windows"]:
        i, j = index.bisect_left((low,)), index.bisect_left((high, "\U0010ffff"))
        list(index.islice(i, j))
    t3 = time.perf_counter()
    for pair in w["probes"]:
        index.remove(pair)
    t4 = time.perf_counter()
    return {"insert": t1 - t0, "rank": t2 - t1, "range": t3 - t2, "remove": t4 - t3}


def _run_skiplist(w: dict[str, Any]) -> dict[str, float]:
    index = Skiplist()
    t0 = time.perf_counter()
    for score, member in w["pairs"]:
        index.insert(score, member)
    t1 = time.perf_counter()
    for score, member in w["probes"]:
        index.rank(score, member)
    t2 = time.perf_counter()
    for low, high in w["windows"]:
        index.range_by_score(low, high)
    t3 = time.perf_counter()
    for score, member in w["probes"]:
        index.remove(score, member)
    t4 = time.perf_counter()
    return {"insert": t1 - t0, "rank": t2 - t1, "range": t3 - t2, "remove": t4 - t3}


def _check(w: dict[str, Any]) -> None:
    """Both contenders answer the same (a benchmark of a wrong skiplist proves nothing)."""
    pairs = w["pairs"][:2_000]
    ordered = SortedList(pairs)
    index = Skiplist()
    for score, member in pairs:
        index.insert(score, member)
    for pair in pairs[:200]:
        assert index.rank(*pair) == ordered.index(pair)
    assert index.range_by_score(0.0, float("inf")) == list(ordered)
    for pair in pairs[:500]:
        assert index.remove(*pair)
    assert index.range_by_score(0.0, float("inf")) == sorted(pairs[500:])


def compare_indexes(n: int, rounds: int) -> None:
    w = _workload(n, seed=n)
    _check(w)
    results = interleaved(
        {"SortedList": lambda: _run_sortedlist(w), "skiplist": lambda: _run_skiplist(w)}, rounds
    )
    counts = {
        "insert": len(w["pairs"]),
        "rank": len(w["probes"]),
        "range": len(w["windows"]),
        "remove": len(w["probes"]),
    }
    rows = []
    for phase, ops in counts.items():
        ours = [r[phase] for r in results["SortedList"]]
        theirs = [r[phase] for r in results["skiplist"]]
        ratio = median(t / o for t, o in zip(theirs, ours, strict=True))
        rows.append(
            [
                phase,
                f"{ops:,}",
                fmt_seconds(median(ours) / ops),
                fmt_seconds(median(theirs) / ops),
                fmt_ratio(ratio),
            ]
        )
    print(f"\n{n:,} members, median of {rounds} rounds (per operation):\n")
    print_table(["operation", "ops", "SortedList", "skiplist", "skiplist / SortedList"], rows)


def compare_embedded(n: int, rounds: int) -> None:
    """``store.zsets[k][m] = s`` against ``store.set(k, v)`` on the same in-memory store."""
    store = snapkv.Store()
    members = [f"m{i}" for i in range(n)]
    keys = [f"k{i}" for i in range(n)]
    board = store.zsets["board"]

    rounds_done = [0]

    def zadd() -> float:
        # Each round writes new scores (round 1 adds the members, later ones
        # move them), as each round of set(k, v) writes its keys again.
        rounds_done[0] += 1
        shift = float(rounds_done[0])
        start = time.perf_counter()
        for i, m in enumerate(members):
            board[m] = i * shift
        return time.perf_counter() - start

    def plain() -> float:
        start = time.perf_counter()
        for k in keys:
            store.set(k, "v")
        return time.perf_counter() - start

    contenders: dict[str, Callable[[], float]] = {"zsets[k][m] = s": zadd, "set(k, v)": plain}
    results = interleaved(contenders, rounds)
    ratio = median(
        z / s for z, s in zip(results["zsets[k][m] = s"], results["set(k, v)"], strict=True)
    )
    print(f"\nEmbedded writes, {n:,} per round, median of {rounds} rounds (per write):\n")
    zadd_time, set_time = median(results["zsets[k][m] = s"]), median(results["set(k, v)"])
    print_table(
        ["operation", "time", "vs set(k, v)"],
        [
            ["zsets[k][m] = s", fmt_seconds(zadd_time / n), fmt_ratio(ratio)],
            ["set(k, v)", fmt_seconds(set_time / n), "1.00x"],
        ],
    )
    print(f"\nzsets[k][m] = s costs {fmt_ratio(ratio)} a set(k, v).")
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="10,000 members only, 3 rounds")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(describe_machine())
    sizes = [10_000] if args.quick else [10_000, 1_000_000]
    rounds = 3 if args.quick else args.rounds
    for n in sizes:
        compare_indexes(n, rounds if n < 1_000_000 else max(3, rounds // 2))
    compare_embedded(100_000, rounds)


if __name__ == "__main__":
    main()
