"""The two measured choices behind docs/FORMAT.md: the checksum and the chunk size.

1. CRC-32 against Adler-32 (both ``zlib``, the only checksums the standard
   library computes at C speed) over one ASCII snapshot of N entries.
2. Encode and decode time of the same data with chunks of 1,024 to 65,536
   entries (``codec.MAX_CHUNK_ENTRIES`` is patched for the run), ASCII and
   non-ASCII, next to pickle's dumps and loads as the baseline.

Every time is a median of interleaved repetitions; ratios are against the
chunk size the codec ships with, or against CRC-32.
"""

from __future__ import annotations

import argparse
import pickle
import zlib
from collections.abc import Callable
from typing import Any

from _common import (
    describe_machine,
    fmt_ratio,
    fmt_seconds,
    interleaved,
    make_dataset,
    median,
    print_table,
    timed,
)
from snapkv import codec

CHUNK_SIZES = (1_024, 4_096, 16_384, 65_536)


def checksums(data: bytes, repeat: int) -> None:
    runs = interleaved(
        {
            "crc32": lambda: timed(lambda: zlib.crc32(data))[0],
            "adler32": lambda: timed(lambda: zlib.adler32(data))[0],
        },
        repeat,
        collect=False,
    )
    base = median(runs["crc32"])
    print(f"\n### checksum over {len(data):,} bytes\n")
    print_table(
        ["checksum", "time", "vs crc32"],
        [[name, fmt_seconds(median(t)), fmt_ratio(median(t) / base)] for name, t in runs.items()],
    )


def chunk_sizes(name: str, items: dict[str, str], repeat: int) -> None:
    shipped = codec.MAX_CHUNK_ENTRIES
    snapshots = {}
    contenders: dict[str, Callable[[], Any]] = {}
    blob = pickle.dumps(items, 5)
    contenders["pickle dumps"] = lambda: timed(lambda: pickle.dumps(items, 5))[0]
    contenders["pickle loads"] = lambda: timed(lambda: pickle.loads(blob))[0]
    for size in CHUNK_SIZES:
        codec.MAX_CHUNK_ENTRIES = size
        snapshots[size] = codec.encode(items)

        def encode(size: int = size) -> float:
            codec.MAX_CHUNK_ENTRIES = size
            try:
                return timed(lambda: codec.encode(items))[0]
            finally:
                codec.MAX_CHUNK_ENTRIES = shipped

        def decode(size: int = size) -> float:
            return timed(lambda: codec.decode(snapshots[size]))[0]

        contenders[f"encode {size}"] = encode
        contenders[f"decode {size}"] = decode
    codec.MAX_CHUNK_ENTRIES = shipped
    runs = interleaved(contenders, repeat)
    print(f"\n### {name}: {len(items):,} entries, by chunk size (shipped: {shipped:,})\n")
    rows = []
    for size in CHUNK_SIZES:
        enc, dec = median(runs[f"encode {size}"]), median(runs[f"decode {size}"])
        rows.append(
            [
                f"{size:,}",
                fmt_seconds(enc),
                fmt_ratio(enc / median(runs[f"encode {shipped}"])),
                fmt_seconds(dec),
                fmt_ratio(dec / median(runs[f"decode {shipped}"])),
            ]
        )
    print_table(["entries per chunk", "encode", "vs shipped", "decode", "vs shipped"], rows)
    dumps, loads = median(runs["pickle dumps"]), median(runs["pickle loads"])
    print(f"\npickle baseline: dumps {fmt_seconds(dumps)}, loads {fmt_seconds(loads)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=1_000_000, help="entries (default 1,000,000)")
    parser.add_argument("--repeat", type=int, default=5, help="repetitions (default 5)")
    parser.add_argument("--quick", action="store_true", help="100,000 entries, 3 repetitions")
    args = parser.parse_args(argv)
    if args.quick:
        args.keys, args.repeat = 100_000, 3
    print(describe_machine())
    print(f"Parameters: {args.keys:,} entries, {args.repeat} interleaved repetitions (medians)")
    ascii_items = make_dataset("ascii", args.keys)
    checksums(codec.encode(ascii_items), args.repeat * 4)
    chunk_sizes("ascii", ascii_items, args.repeat)
    del ascii_items
    chunk_sizes("non-ascii", make_dataset("non-ascii", args.keys), args.repeat)


if __name__ == "__main__":
    main()
