"""Helpers shared by the benchmarks: timing, medians, interleaving, tables, data.

Conventions every benchmark follows:

* Times come from :func:`time.perf_counter`.
* Contenders run interleaved: every repetition runs each contender once,
  and the order rotates from one repetition to the next, so a slow phase of
  a noisy machine hits every contender, not one of them.
* Reported times are medians over the repetitions. A ratio is computed
  within each repetition (both sides measured minutes apart at most) and
  the median of those per-repetition ratios is reported.
"""

from __future__ import annotations

import base64
import gc
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

__all__ = [
    "ascii_items",
    "describe_machine",
    "fmt_bytes",
    "fmt_ratio",
    "fmt_seconds",
    "interleaved",
    "median",
    "median_ratio",
    "non_ascii_items",
    "non_ascii_share",
    "print_table",
    "target_line",
    "timed",
]

KEY_CHARS = 16
VALUE_CHARS = 64


# ------------------------------------------------------------------ machine


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, or what :mod:`platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def describe_machine() -> str:
    """One line: CPU model, cores usable by this process, Python, OS."""
    cores = os.cpu_count() or 0
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = cores
    core_text = f"{usable} cores" if usable == cores else f"{usable} of {cores} cores"
    python = f"{platform.python_implementation()} {platform.python_version()}"
    return (
        f"Machine: {cpu_model()}, {core_text}, {python}, {platform.system()} {platform.release()}"
    )


# ------------------------------------------------------------------- timing


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Run ``fn`` once; return (seconds, its result)."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def median_ratio(numerators: Sequence[float], denominators: Sequence[float]) -> float:
    """Median of the per-repetition ratios ``numerators[i] / denominators[i]``."""
    return statistics.median(n / d for n, d in zip(numerators, denominators, strict=True))


def interleaved(
    contenders: dict[str, Callable[[], Any]],
    repeat: int,
    *,
    collect: bool = True,
    progress: Callable[[str], None] | None = None,
) -> dict[str, list[Any]]:
    """Run every contender ``repeat`` times, interleaved, rotating the order.

    Each callable does its own timing and returns what it measured (a float,
    a dict of phases, ...). ``collect`` runs a full garbage collection
    before each call, outside any timed region, so one contender's garbage
    is not collected on another's clock.
    """
    names = list(contenders)
    results: dict[str, list[Any]] = {name: [] for name in names}
    for rep in range(repeat):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            if collect:
                gc.collect()
            if progress is not None:
                progress(f"rep {rep + 1}/{repeat}: {name}")
            results[name].append(contenders[name]())
    return results


# ------------------------------------------------------------------- output


def fmt_seconds(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.1f} µs"


def fmt_bytes(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(size) < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def fmt_ratio(ratio: float) -> str:
    return f"{ratio:.2f}x"


def print_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Print a Markdown table, columns padded so it also reads as plain text."""
    text_rows = [[str(cell) for cell in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in text_rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    print(line(headers))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in text_rows:
        print(line(row))
    sys.stdout.flush()


def target_line(name: str, measured: float, limit: float, *, higher_is_better: bool = False) -> str:
    """``PASS``/``MISS`` line for a target; printed, never asserted."""
    ok = measured >= limit if higher_is_better else measured <= limit
    relation = ">=" if higher_is_better else "<="
    verdict = "PASS" if ok else "MISS"
    return f"Target {name}: {measured:.2f} (target {relation} {limit:g}) -> {verdict}"


# --------------------------------------------------------------------- data

_SCRAMBLE = 0x9E3779B97F4A7C15  # odd, so i -> i * _SCRAMBLE mod 2**64 is a bijection
_MASK64 = (1 << 64) - 1


def _ascii_values(rng: random.Random, count: int, chars: int) -> list[str]:
    """``count`` random strings of ``chars`` base64 characters each."""
    raw = rng.randbytes(count * chars * 3 // 4 + 3)
    text = base64.b64encode(raw).decode("ascii")
    return [text[i * chars : (i + 1) * chars] for i in range(count)]


def ascii_items(n: int, *, seed: int = 1) -> dict[str, str]:
    """``n`` distinct 16-character hex keys, each with a 64-character base64 value.

    Keys are a scrambled counter (so they are distinct by construction and
    look random); values come from a seeded generator. Deterministic.
    """
    rng = random.Random(seed)
    offset = rng.getrandbits(64)
    keys = [f"{(i * _SCRAMBLE + offset) & _MASK64:016x}" for i in range(n)]
    values = _ascii_values(rng, n, VALUE_CHARS)
    return dict(zip(keys, values, strict=True))


def _non_ascii_table() -> list[str]:
    """256 characters to map random bytes onto: 179 ASCII, 77 non-ASCII (30%).

    The non-ASCII share mixes the three widths a str can have in CPython
    and the three longer UTF-8 lengths: accented Latin (1 byte per char in
    memory, 2 in UTF-8), CJK (2 and 3) and emoji (4 and 4).
    """
    ascii_chars = [chr(c) for c in range(0x21, 0x7F)]  # 94 printable
    ascii_chars += [chr(c) for c in range(ord("a"), ord("z") + 1)] * 3  # 78 more letters
    ascii_chars += list("0123456")  # 7 more: 179 in all
    latin = list("àáâãäåæçèéêëìíîïñòóôõöøùúûüýÿßÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖØÙÚÛÜ")[:38]
    cjk = list("的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年")[:26]
    emoji = [chr(0x1F600 + i) for i in range(13)]
    table = ascii_chars + latin + cjk + emoji
    assert len(table) == 256, len(table)
    return table


def non_ascii_items(n: int, *, seed: int = 2) -> dict[str, str]:
    """Like :func:`ascii_items`, but about 30% of all characters are non-ASCII.

    Keys are 16 and values 64 characters (code points). Every character is
    drawn independently: 70% ASCII, 15% accented Latin, 10% CJK, 5% emoji,
    so most strings mix widths (a str holding one emoji is stored at
    4 bytes per character). Deterministic.
    """
    rng = random.Random(seed)
    table = _non_ascii_table()
    width = KEY_CHARS + VALUE_CHARS
    # One C-level translate instead of a Python loop over 80 million characters.
    text = rng.randbytes(n * width).decode("latin-1").translate(table)
    result: dict[str, str] = {}
    for i in range(n):
        base = i * width
        result[text[base : base + KEY_CHARS]] = text[base + KEY_CHARS : base + width]
    while len(result) < n:  # a repeated key: practically never, but stay exact
        piece = rng.randbytes(width).decode("latin-1").translate(table)
        result.setdefault(piece[:KEY_CHARS], piece[KEY_CHARS:])
    return result


def non_ascii_share(items: dict[str, str], sample: int = 20_000) -> tuple[float, float]:
    """(share of non-ASCII characters, share of UTF-8 bytes they take), from a sample."""
    chars = non_ascii = total_bytes = wide_bytes = 0
    for n, (key, value) in enumerate(items.items()):
        if n == sample:
            break
        for s in (key, value):
            encoded = s.encode("utf-8", "surrogatepass")
            ascii_count = sum(1 for c in s if c < "\x80")
            chars += len(s)
            non_ascii += len(s) - ascii_count
            total_bytes += len(encoded)
            wide_bytes += len(encoded) - ascii_count
    return non_ascii / max(chars, 1), wide_bytes / max(total_bytes, 1)


def make_dataset(name: str, n: int) -> dict[str, str]:
    if name == "ascii":
        return ascii_items(n)
    if name == "non-ascii":
        return non_ascii_items(n)
    raise ValueError(f"unknown dataset {name!r}")
