"""Operations benchmark: ``run_operations`` against a dict-and-pickle floor.

The workload (deterministic): 100,000 operations over a 20,000-key space
of 16-character keys, with 64-character values; about 60% ``set`` and 40%
``get`` (35 points on the key space, hits or not-yet-set misses, and 5
points on keys that are never set), and a ``shutdown`` then a ``restore``
every 5,000 operations. Keys are skewed: 80% of accesses go to 20% of the
key space.

The floor is the least a Python program can do for the same semantics::

    set -> d[k] = v        get -> append(d.get(k))
    shutdown -> blob = pickle.dumps(d); d = {}
    restore -> d = pickle.loads(blob) if blob else {}

snapkv's ``run_operations`` runs on a Store on a MemoryMedium, so every
shutdown encodes and every restore decodes and verifies a full snapshot.
Both must return identical results. Run from the repository root::

    python bench/operations.py
"""

from __future__ import annotations

import argparse
import pickle
import random
import time
from collections.abc import Callable

from _common import (
    describe_machine,
    fmt_ratio,
    fmt_seconds,
    interleaved,
    median,
    median_ratio,
    print_table,
    target_line,
)
from snapkv import run_operations

TARGET = 1.3

Op = tuple[str, ...]


def make_workload(
    n_ops: int = 100_000, key_space: int = 20_000, every: int = 5_000, seed: int = 7
) -> list[Op]:
    """``n_ops`` operations, including a shutdown and a restore every ``every``."""
    rng = random.Random(seed)
    keys = [f"user:{rng.getrandbits(44):011x}" for _ in range(key_space)]
    assert all(len(k) == 16 for k in keys) and len(set(keys)) == key_space
    missing = [f"gone:{i:011d}" for i in range(key_space)]
    hot = keys[: key_space // 5]
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

    def pick() -> str:
        return rng.choice(hot) if rng.random() < 0.8 else rng.choice(keys)

    ops: list[Op] = []
    for i in range(n_ops):
        phase = i % every
        if phase == every - 2:
            ops.append(("shutdown",))
        elif phase == every - 1:
            ops.append(("restore",))
        else:
            r = rng.random()
            if r < 0.60:
                ops.append(("set", pick(), "".join(rng.choices(alphabet, k=64))))
            elif r < 0.95:
                ops.append(("get", pick()))
            else:
                ops.append(("get", rng.choice(missing)))
    return ops


def floor(operations: list[Op]) -> list[str | None]:
    """A plain dict with pickle snapshots: the least the same semantics can cost."""
    d: dict[str, str] = {}
    out: list[str | None] = []
    append = out.append
    blob = b""
    for op in operations:
        command = op[0]
        if command == "set":
            d[op[1]] = op[2]
        elif command == "get":
            append(d.get(op[1]))
        elif command == "shutdown":
            blob = pickle.dumps(d)
            d = {}
        else:
            d = pickle.loads(blob) if blob else {}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=100_000, help="operations (default 100,000)")
    parser.add_argument("--repeat", type=int, default=9, help="repetitions (default 9)")
    parser.add_argument("--quick", action="store_true", help="20,000 operations, 3 repetitions")
    args = parser.parse_args(argv)
    if args.quick:
        args.ops, args.repeat = 20_000, 3

    ops = make_workload(args.ops)
    data_ops = [op for op in ops if op[0] in ("set", "get")]
    counts = {name: sum(1 for op in ops if op[0] == name) for name in ("set", "get", "shutdown")}
    print(describe_machine())
    print(
        f"Parameters: {len(ops):,} operations ({counts['set']:,} set, {counts['get']:,} get, "
        f"{counts['shutdown']} shutdown+restore pairs), 20,000-key space, 16-char keys, "
        f"64-char values, {args.repeat} interleaved repetitions (medians shown)"
    )

    expected = floor(ops)
    if run_operations(ops) != expected:
        raise SystemExit("run_operations and the floor disagree on the full workload")
    if run_operations(data_ops) != floor(data_ops):
        raise SystemExit("run_operations and the floor disagree on the set/get operations")
    hits = sum(1 for r in expected if r is not None)
    print(f"Results identical: yes ({len(expected):,} gets, {hits:,} found)")

    def timer(fn: Callable[[list[Op]], object], workload: list[Op]) -> Callable[[], float]:
        def run() -> float:
            start = time.perf_counter()
            fn(workload)
            return time.perf_counter() - start

        return run

    runs = interleaved(
        {
            "snapkv full": timer(run_operations, ops),
            "floor full": timer(floor, ops),
            "snapkv set/get only": timer(run_operations, data_ops),
            "floor set/get only": timer(floor, data_ops),
        },
        args.repeat,
    )
    full = median_ratio(runs["snapkv full"], runs["floor full"])
    data = median_ratio(runs["snapkv set/get only"], runs["floor set/get only"])
    print()
    print_table(
        ["workload", "snapkv run_operations", "floor (dict + pickle)", "snapkv / floor"],
        [
            [
                f"full ({len(ops):,} ops)",
                fmt_seconds(median(runs["snapkv full"])),
                fmt_seconds(median(runs["floor full"])),
                fmt_ratio(full),
            ],
            [
                f"set/get only ({len(data_ops):,} ops, no snapshots)",
                fmt_seconds(median(runs["snapkv set/get only"])),
                fmt_seconds(median(runs["floor set/get only"])),
                fmt_ratio(data),
            ],
        ],
    )
    snap_share = [
        (a - b) / len(ops) * 1e9
        for a, b in zip(runs["snapkv full"], runs["snapkv set/get only"], strict=True)
    ]
    floor_share = [
        (a - b) / len(ops) * 1e9
        for a, b in zip(runs["floor full"], runs["floor set/get only"], strict=True)
    ]
    per_op_snap = median(runs["snapkv full"]) / len(ops) * 1e9
    per_op_floor = median(runs["floor full"]) / len(ops) * 1e9
    print(
        f"\nPer operation (full workload): snapkv {per_op_snap:.0f} ns, "
        f"floor {per_op_floor:.0f} ns; of which the "
        f"{counts['shutdown']} shutdown+restore pairs, spread over all operations: "
        f"snapkv {median(snap_share):.0f} ns, floor {median(floor_share):.0f} ns"
    )
    print("\nTargets (printed, not asserted):")
    print(target_line("run_operations / floor (full workload)", full, TARGET))


if __name__ == "__main__":
    main()
