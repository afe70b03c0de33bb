"""Journal benchmark: set throughput with the journal off, ``never``, ``everysec``, ``always``.

Every contender does the same thing: single-key upserts of 16-character keys
and 64-character values, cycling over 10,000 keys, each write acknowledged
on its own (no batching by the caller), for a fixed time window, with one
thread and with 8 writer threads. Contenders, interleaved in one run:

* snapkv   - ``snapkv.open(dir, journal=..., fsync=...)`` then ``store.set(k, v)``;
  journal off (snapshots only: the baseline of the targets), ``never``,
  ``everysec`` and ``always``.
* sqlite3  - WAL mode, ``synchronous=NORMAL`` and ``FULL``, ``INSERT ... ON
  CONFLICT(key) DO UPDATE`` in autocommit mode (one transaction per write),
  one connection per thread.
* redis    - if ``redis-server`` and ``redis-benchmark`` are on PATH: a private
  server with ``appendonly yes`` and ``appendfsync everysec`` / ``always``,
  driven by ``redis-benchmark -t set -P 1 -c 1`` and ``-c 8`` (8 clients
  stand for 8 threads).
* floors   - what a journal write costs at the least: ``os.write`` of one
  encoded SET record to an ``O_APPEND`` file, and ``os.write`` + ``fdatasync``.

Run from the repository root::

    python bench/journal.py            # 1 s windows, 7 repetitions: about 2.5 minutes
    python bench/journal.py --quick    # 0.25 s windows, 3 repetitions: about half a minute
    python bench/journal.py --profile  # also: where a journaled set spends its time
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import mmap
import os
import pstats
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
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
from snapkv import journal as jr
from snapkv.media import FileMedium, JournalFile

#: Target: ns per set with ``fsync="everysec"`` / ns per set with the journal off
#: (the tracker's 3x, since the journal became ``snapkv.open``'s default).
EVERYSEC_TARGET = 3.0
#: Target: sets/s with ``fsync="always"`` and 8 threads / with 1 thread (group commit).
GROUP_COMMIT_TARGET = 3.0
#: Target: ns per set with ``fsync="always"`` / ns per write of sqlite3 WAL synchronous=FULL.
SQLITE_TARGET = 1.5

KEYS = 10_000
THREADS = 8
#: Writes between two looks at the clock, for contenders that do not fsync
#: each write (a clock read costs about 5% of a journal-off set); 1 for those that do.
CHUNK = 100
#: snapkv's ``everysec`` thread first fsyncs one interval after the store
#: opens: its windows are this much longer, so each holds at least one fsync.
EVERYSEC_EXTRA = 1.0
UPSERT = (
    "INSERT INTO kv (key, value) VALUES (?, ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)
_datasync = getattr(os, "fdatasync", os.fsync)


def log(message: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ workload

Pair = tuple[str, str]
Chunks = list[list[Pair]]


@dataclass
class Sample:
    """One window of one contender: how many sets it acknowledged in how long."""

    ops: int
    seconds: float

    @property
    def ns_per_set(self) -> float:
        return self.seconds / self.ops * 1e9

    @property
    def rate(self) -> float:
        return self.ops / self.seconds


def chunked(pairs: list[Pair], size: int) -> Chunks:
    return [pairs[i : i + size] for i in range(0, len(pairs), size)]


def set_loop(
    write: Callable[[str, str], Any], chunks: Chunks, first: int
) -> Callable[[float], int]:
    """A worker: write chunk after chunk from ``first`` on, until the clock passes a deadline.

    The clock is read once per chunk. Returns the number of writes made.
    """

    def run(deadline: float) -> int:
        ops = 0
        i = first
        n = len(chunks)
        clock = time.perf_counter
        while True:
            chunk = chunks[i]
            for k, v in chunk:
                write(k, v)
            ops += len(chunk)
            i = (i + 1) % n
            if clock() >= deadline:
                return ops

    return run


def window(workers: Sequence[Callable[[float], int]], seconds: float) -> Sample:
    """Run the workers, each in its own thread if more than one, for ``seconds``.

    Threads are started before the clock and released together by a
    barrier; the window ends when the last one has stopped.
    """
    if len(workers) == 1:
        start = time.perf_counter()
        ops = workers[0](start + seconds)
        return Sample(ops, time.perf_counter() - start)
    barrier = threading.Barrier(len(workers) + 1)
    counts = [0] * len(workers)
    errors: list[BaseException] = []
    deadline = [0.0]

    def body(i: int) -> None:
        barrier.wait()
        try:
            counts[i] = workers[i](deadline[0])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(len(workers))]
    for t in threads:
        t.start()
    start = time.perf_counter()
    deadline[0] = start + seconds
    barrier.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return Sample(sum(counts), elapsed)


def firsts(chunks: Chunks, threads: int) -> list[int]:
    """Where each thread starts in the cycle: spread out, so threads write different keys."""
    return [t * len(chunks) // threads for t in range(threads)]


# ---------------------------------------------------------------- contenders


class Contender:
    """One (system, setting, threads) row; a call measures one window."""

    label: str
    threads: int
    syncs_each_write: bool

    def __init__(self, base: Path, pairs: list[Pair], threads: int, seconds: float) -> None:
        self.base = base
        self.threads = threads
        self.seconds = seconds
        self.chunks = chunked(pairs, 1 if self.syncs_each_write else CHUNK)
        self.pairs = dict(pairs)

    @property
    def name(self) -> str:
        return f"{self.label}|{self.threads}"

    def __call__(self) -> Sample:
        raise NotImplementedError

    def verify(self) -> None:
        """After a window (in the warm-up): check the writes really landed. Optional."""


class SnapkvContender(Contender):
    def __init__(
        self,
        base: Path,
        pairs: list[Pair],
        threads: int,
        seconds: float,
        fsync: str | None,
    ) -> None:
        self.fsync = fsync
        self.syncs_each_write = fsync == "always"
        self.label = "snapkv journal off" if fsync is None else f"snapkv fsync={fsync}"
        super().__init__(base, pairs, threads, seconds)
        if fsync == "everysec":
            self.seconds = seconds + EVERYSEC_EXTRA
        self.last_dir: Path | None = None

    def __call__(self) -> Sample:
        directory = Path(tempfile.mkdtemp(prefix="snapkv-", dir=self.base))
        journal = self.fsync is not None
        store = snapkv.open(directory, journal=journal, fsync=self.fsync or "everysec")
        try:
            workers = [
                set_loop(store.set, self.chunks, f) for f in firsts(self.chunks, self.threads)
            ]
            sample = window(workers, self.seconds)
            self.expected = len(store)
        finally:
            store.close()  # with a journal: syncs it; untimed
        if self.last_dir is not None:
            shutil.rmtree(self.last_dir, ignore_errors=True)
        self.last_dir = directory
        return sample

    def verify(self) -> None:
        """Reopen the directory: the journal must give back exactly what was set."""
        if self.fsync is None or self.last_dir is None:
            return
        with contextlib.closing(snapkv.open(self.last_dir, journal=True, fsync="never")) as store:
            got = dict(store.items())
        if len(got) != self.expected or any(self.pairs[k] != v for k, v in got.items()):
            raise SystemExit(f"{self.label}: the reopened store does not hold what was set")

    def cleanup(self) -> None:
        if self.last_dir is not None:
            shutil.rmtree(self.last_dir, ignore_errors=True)


class SqliteContender(Contender):
    def __init__(
        self, base: Path, pairs: list[Pair], threads: int, seconds: float, synchronous: str
    ) -> None:
        self.synchronous = synchronous
        self.syncs_each_write = synchronous == "FULL"
        self.label = f"sqlite3 WAL synchronous={synchronous}"
        super().__init__(base, pairs, threads, seconds)
        self.last_path: Path | None = None

    def __call__(self) -> Sample:
        directory = Path(tempfile.mkdtemp(prefix="sqlite-", dir=self.base))
        path = directory / "kv.sqlite"
        setup = sqlite3.connect(path, isolation_level=None)
        setup.execute("PRAGMA journal_mode=WAL")
        setup.execute("CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID")
        setup.close()
        connections = []
        for _ in range(self.threads):
            # Created here, used by one worker thread each; a generous busy
            # timeout because 8 writers queue for SQLite's single write lock.
            conn = sqlite3.connect(path, isolation_level=None, timeout=60, check_same_thread=False)
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            connections.append(conn)
        try:
            workers = []
            for conn, first in zip(connections, firsts(self.chunks, self.threads), strict=True):

                def write(k: str, v: str, execute: Any = conn.execute) -> None:
                    execute(UPSERT, (k, v))

                workers.append(set_loop(write, self.chunks, first))
            sample = window(workers, self.seconds)
        finally:
            for conn in connections:
                conn.close()
        if self.last_path is not None:
            shutil.rmtree(self.last_path.parent, ignore_errors=True)
        self.last_path = path
        return sample

    def verify(self) -> None:
        if self.last_path is None:
            return
        with contextlib.closing(sqlite3.connect(self.last_path)) as conn:
            rows = conn.execute("SELECT key, value FROM kv").fetchall()
        if not rows or any(self.pairs[k] != v for k, v in rows):
            raise SystemExit(f"{self.label}: the database does not hold what was written")

    def cleanup(self) -> None:
        if self.last_path is not None:
            shutil.rmtree(self.last_path.parent, ignore_errors=True)


class FloorContender(Contender):
    """The least a journal write can cost from Python: the record's bytes, one syscall."""

    def __init__(
        self, base: Path, pairs: list[Pair], threads: int, seconds: float, sync: bool
    ) -> None:
        self.sync = sync
        self.syncs_each_write = sync
        self.label = "floor: os.write + fdatasync" if sync else "floor: os.write"
        super().__init__(base, pairs, threads, seconds)
        key, value = pairs[0]
        self.record = jr.set_record(0, key, value)

    def __call__(self) -> Sample:
        fd, path = tempfile.mkstemp(prefix="floor-", dir=self.base)
        os.close(fd)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        record, write_fd = self.record, os.write

        if self.sync:

            def write(_k: str, _v: str) -> None:
                write_fd(fd, record)
                _datasync(fd)

        else:

            def write(_k: str, _v: str) -> None:
                write_fd(fd, record)

        try:
            workers = [set_loop(write, self.chunks, f) for f in firsts(self.chunks, self.threads)]
            return window(workers, self.seconds)
        finally:
            os.close(fd)
            os.unlink(path)


# --------------------------------------------------------------------- redis


def _resp(*args: str) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A private redis-server: free loopback port, own directory, AOF on, no RDB saves."""

    def __init__(self, executable: str, directory: Path) -> None:
        self.directory = directory
        self.port = _free_port()
        argv = [executable, "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--dir", str(directory), "--appendonly", "yes", "--appendfsync", "everysec"]
        argv += ["--save", "", "--daemonize", "no", "--logfile", str(directory / "redis.log")]
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def command(self, *args: str) -> bytes:
        with socket.create_connection(("127.0.0.1", self.port), timeout=60) as sock:
            sock.sendall(_resp(*args))
            reply = b""
            while not reply.endswith(b"\r\n"):
                piece = sock.recv(65536)
                if not piece:
                    break
                reply += piece
        if reply.startswith(b"-"):
            raise RuntimeError(f"redis: {reply.decode(errors='replace').strip()}")
        return reply

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 15
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with status {self.proc.returncode}")
            try:
                # The port was free a moment ago; make sure the server answering is ours.
                if str(self.directory).encode() in self.command("CONFIG", "GET", "dir"):
                    return
                raise RuntimeError(f"another redis answers on port {self.port}")
            except OSError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop this server (by its own process handle), asking nicely first."""
        if self.proc.poll() is None:
            with contextlib.suppress(OSError, RuntimeError):
                self.command("SHUTDOWN", "NOSAVE")
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class RedisContender(Contender):
    """``redis-benchmark -t set -P 1 -c <threads> -d 64 -r 10000``; its own count of sets/s.

    redis-benchmark runs a number of requests, not a time window: each run's
    ``-n`` is sized from the previous run's rate (the warm-up's, at first).
    """

    def __init__(
        self,
        server: RedisServer,
        benchmark: str,
        threads: int,
        seconds: float,
        appendfsync: str,
    ) -> None:
        self.server = server
        self.benchmark = benchmark
        self.threads = threads
        self.seconds = seconds + (EVERYSEC_EXTRA if appendfsync == "everysec" else 0.0)
        self.appendfsync = appendfsync
        self.label = f"redis appendfsync {appendfsync}"
        self.requests = 200

    def __call__(self) -> Sample:
        self.server.command("CONFIG", "SET", "appendfsync", self.appendfsync)
        self.server.command("FLUSHALL")
        argv = [self.benchmark, "-h", "127.0.0.1", "-p", str(self.server.port)]
        argv += ["-t", "set", "-n", str(self.requests), "-c", str(self.threads), "-P", "1"]
        argv += ["-d", "64", "-r", str(KEYS), "--csv"]
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
        match = re.search(r'^"SET","([0-9.]+)"', out, re.MULTILINE)
        if match is None:
            raise RuntimeError(f"cannot read redis-benchmark's output: {out[:200]!r}")
        sample = Sample(self.requests, self.requests / float(match.group(1)))
        # The next run's -n: one window at this run's rate (the rate drifts
        # with the machine's load; a fixed -n would make windows uneven).
        self.requests = max(100, round(sample.rate * self.seconds))
        return sample


# ---------------------------------------------------------------------- run


def filesystem_of(path: Path) -> str:
    """``fstype on device`` of the mount holding ``path`` (Linux), for the report."""
    best = ("", "unknown", "unknown")
    try:
        with open("/proc/mounts", encoding="utf-8") as f:
            for line in f:
                device, mount, fstype = line.split()[:3]
                if str(path.resolve()).startswith(mount) and len(mount) > len(best[0]):
                    best = (mount, fstype, device)
    except OSError:
        pass
    return f"{best[1]} on {best[2]}"


def pressure_totals() -> dict[str, int]:
    """Linux pressure-stall totals (µs some task waited for a CPU / for I/O), if available."""
    totals: dict[str, int] = {}
    for resource in ("cpu", "io"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            first = Path(f"/proc/pressure/{resource}").read_text().splitlines()[0]
            totals[resource] = int(first.rsplit("total=", 1)[1])
    return totals


def pressure_line(before: dict[str, int], after: dict[str, int], seconds: float) -> str:
    """How contended the machine was while the benchmark ran: the context of every number."""
    parts = [
        f"{resource.upper()} {(after[resource] - before[resource]) / 1e6 / seconds:.0%}"
        for resource in before
        if resource in after
    ]
    if not parts:
        return ""
    return (
        "Machine load during the timed part (share of the time some task was waiting for it, "
        f"from /proc/pressure): {', '.join(parts)}"
    )


def build_contenders(
    base: Path, pairs: list[Pair], seconds: float, redis: RedisServer | None, benchmark: str
) -> list[Contender]:
    """Every contender, in the order they run within a repetition.

    The order rotates between repetitions but neighbours stay neighbours, so
    the two sides of each target run back to back: journal off next to
    ``everysec``; sqlite3 FULL next to ``always`` with 1 thread, next to
    ``always`` with 8 threads. fsync latency on a shared disk can change
    several-fold within seconds.
    """

    def snap(fsync: str | None, threads: int = 1) -> Contender:
        return SnapkvContender(base, pairs, threads, seconds, fsync)

    def lite(synchronous: str, threads: int = 1) -> Contender:
        return SqliteContender(base, pairs, threads, seconds, synchronous)

    def floor(sync: bool) -> Contender:
        return FloorContender(base, pairs, 1, seconds, sync)

    contenders = [snap(None), snap("everysec"), snap("never"), floor(False)]
    contenders += [lite("FULL"), snap("always"), snap("always", THREADS), floor(True)]
    if redis is not None:
        contenders += [RedisContender(redis, benchmark, n, seconds, "always") for n in (1, THREADS)]
    contenders += [lite("FULL", THREADS), lite("NORMAL"), lite("NORMAL", THREADS)]
    contenders += [snap(None, THREADS), snap("everysec", THREADS), snap("never", THREADS)]
    if redis is not None:
        contenders += [
            RedisContender(redis, benchmark, n, seconds, "everysec") for n in (1, THREADS)
        ]
    return contenders


#: Rows of the table, in this order (a contender that did not run is left out).
TABLE_ORDER = (
    "snapkv journal off",
    "snapkv fsync=never",
    "snapkv fsync=everysec",
    "snapkv fsync=always",
    "sqlite3 WAL synchronous=NORMAL",
    "sqlite3 WAL synchronous=FULL",
    "redis appendfsync everysec",
    "redis appendfsync always",
    "floor: os.write",
    "floor: os.write + fdatasync",
)


def warm_up(contenders: list[Contender], seconds: float) -> None:
    """One short untimed window each: warms the code paths, checks the data, sizes redis runs."""
    for c in contenders:
        log(f"warm-up: {c.label}, {c.threads} thread(s)")
        full = c.seconds
        c.seconds = min(seconds, c.seconds)
        c()
        c.seconds = full
        c.verify()


def report(contenders: list[Contender], runs: dict[str, list[Sample]]) -> dict[str, list[float]]:
    """Print the table; return the per-repetition series the targets use."""

    def ns(label: str, threads: int) -> list[float]:
        return [s.ns_per_set for s in runs[f"{label}|{threads}"]]

    def rates(label: str, threads: int) -> list[float]:
        return [s.rate for s in runs[f"{label}|{threads}"]]

    headers = [
        "contender",
        "threads",
        "sets/s",
        "µs/set",
        "time / journal off",
        f"{THREADS} thr / 1 thr (sets/s)",
    ]
    rows = []
    by_label = {c.label: c for c in contenders}
    for label in TABLE_ORDER:
        if label not in by_label:
            continue
        for threads in (1, THREADS):
            key = f"{label}|{threads}"
            if key not in runs:
                continue
            times = ns(label, threads)
            off = ns("snapkv journal off", threads)
            scaling = "-"
            if threads == THREADS and f"{label}|1" in runs:
                scaling = fmt_ratio(median_ratio(rates(label, THREADS), rates(label, 1)))
            what = "clients" if isinstance(by_label[label], RedisContender) else "threads"
            rows.append(
                [
                    label,
                    f"{threads} {what}" if threads > 1 else "1",
                    f"{median(rates(label, threads)):,.0f}",
                    f"{median(times) / 1000:.2f}",
                    fmt_ratio(median_ratio(times, off)),
                    scaling,
                ]
            )
    print_table(headers, rows)

    def ratios(a: list[float], b: list[float]) -> list[float]:
        return [x / y for x, y in zip(a, b, strict=True)]

    always = "snapkv fsync=always"
    return {
        "everysec": ratios(ns("snapkv fsync=everysec", 1), ns("snapkv journal off", 1)),
        "everysec 8": ratios(
            ns("snapkv fsync=everysec", THREADS), ns("snapkv journal off", THREADS)
        ),
        "group": ratios(rates(always, THREADS), rates(always, 1)),
        "sqlite": ratios(ns(always, 1), ns("sqlite3 WAL synchronous=FULL", 1)),
    }


# ------------------------------------------------------------------ profile


def profile(base: Path, pairs: list[Pair], seconds: float, repeat: int) -> None:
    """Where a single-threaded journaled set spends its time.

    First a decomposition, interleaved like the main run, layer by layer:
    the harness's loop alone, the record encoding alone
    (``journal.set_record``), the copy of an encoded record into a mapping
    whose pages were touched before (no page faults: the least a record
    costs the mapped journal), by the medium into fresh preallocated pages
    (``JournalFile.write``: its call, and a page fault every ~39 records),
    by the writer (``JournalWriter.append``: its call and counter on top),
    ``os.write`` of the record for comparison, next to whole ``Store.set``
    calls. Compaction is off in the ``never`` store the layers are compared
    with (it is on in the main table); the row after it shows what it adds.
    The derived rows subtract one layer from the next. Then cProfile of each
    policy (the profiler inflates small functions; read it for call counts
    and shares).
    """
    chunks = chunked(pairs, CHUNK)
    directory = Path(tempfile.mkdtemp(prefix="profile-", dir=base))
    off = snapkv.open(directory / "off", journal=False)
    never = snapkv.open(directory / "never", journal=True, fsync="never", compact_min_bytes=1 << 62)
    compacting = snapkv.open(directory / "compacting", journal=True, fsync="never")
    medium = FileMedium(directory / "layers")
    writer = jr.JournalWriter(medium.create_journal(1, jr.header(1)), "never")
    raw = medium.create_journal(2, jr.header(2))
    fd = os.open(directory / "raw", os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    touched_fd = os.open(directory / "touched", os.O_RDWR | os.O_CREAT, 0o644)
    touched_size = 64 << 20
    os.posix_fallocate(touched_fd, 0, touched_size)
    touched = mmap.mmap(touched_fd, touched_size)
    touched.write(b"\1" * touched_size)  # every page faulted in and dirty
    record = jr.set_record(0, *pairs[0])
    set_record, raw_write, append = jr.set_record, raw.write, writer.append

    def loop(_k: str, _v: str) -> None:
        pass

    def encode(k: str, v: str) -> None:
        set_record(0, k, v, 0)

    def os_write(_k: str, _v: str) -> None:
        os.write(fd, record)

    def mapped(_k: str, _v: str, write: Callable[[bytes], int] = touched.write) -> None:
        try:
            write(record)
        except ValueError:  # the end of the region: round again over the same pages
            touched.seek(0)

    def medium_write(_k: str, _v: str) -> None:
        raw_write(record)

    def writer_append(_k: str, _v: str) -> None:
        append(record)

    parts: dict[str, Callable[[str, str], Any]] = {
        "the harness's loop alone": loop,
        "Store.set, journal off": off.set,
        "journal.set_record() alone": encode,
        "mmap.write() of one record, pages touched before": mapped,
        "JournalFile.write() of one record, fresh pages": medium_write,
        "JournalWriter.append() of one record": writer_append,
        "os.write() of one record (the journal before mapping)": os_write,
        'Store.set, fsync="never", no compaction': never.set,
        'Store.set, fsync="never", default compaction': compacting.set,
    }

    def job(fn: Callable[[str, str], Any]) -> Callable[[], float]:
        return lambda: window([set_loop(fn, chunks, 0)], seconds).ns_per_set

    try:
        runs = interleaved({name: job(fn) for name, fn in parts.items()}, repeat)
    finally:
        for closable in (off, never, compacting, writer, raw, medium, touched):
            closable.close()
        os.close(fd)
        os.close(touched_fd)
    m = {name: median(values) for name, values in runs.items()}
    harness = m["the harness's loop alone"]
    off_ns = m["Store.set, journal off"]
    encode_ns = m["journal.set_record() alone"] - harness
    copy_ns = m["mmap.write() of one record, pages touched before"] - harness
    medium_ns = m["JournalFile.write() of one record, fresh pages"] - harness
    append_ns = m["JournalWriter.append() of one record"] - harness
    total = m['Store.set, fsync="never", no compaction']
    derived = {
        "= encoding a record": encode_ns,
        "= copying it into touched pages": copy_ns,
        "+ page faults of fresh pages and the medium's call": medium_ns - copy_ns,
        "+ the writer's call and counter": append_ns - medium_ns,
        "+ the rest of Store.set (commit, compaction check, ticket)": (
            total - off_ns - encode_ns - append_ns
        ),
    }
    print(f"\n### Where a journaled set goes (1 thread, medians of {repeat})\n")
    rows = [[n, f"{v:.0f}", fmt_ratio(v / off_ns)] for n, v in m.items()]
    rows += [[n, f"{v:.0f}", fmt_ratio(v / off_ns)] for n, v in derived.items()]
    print_table(["part", "ns/set", "/ journal off"], rows)

    for fsync in ("never", "everysec", "always"):
        n = 300 if fsync == "always" else 60_000
        flat = [p for chunk in chunks for p in chunk]
        todo = (flat * (n // len(flat) + 1))[:n]
        store = snapkv.open(
            Path(tempfile.mkdtemp(dir=directory)),
            journal=True,
            fsync=fsync,
            compact_min_bytes=1 << 62,
        )
        prof = cProfile.Profile()
        set_ = store.set
        prof.enable()
        for k, v in todo:
            set_(k, v)
        prof.disable()
        store.close()
        out = io.StringIO()
        stats = pstats.Stats(prof, stream=out)
        stats.sort_stats("tottime").print_stats(8)
        lines = [line for line in out.getvalue().splitlines() if line.strip()]
        start = next(i for i, line in enumerate(lines) if "ncalls" in line)
        print(f'\ncProfile, fsync="{fsync}", {n:,} sets (tottime: time in the function itself):\n')
        print("    " + "\n    ".join(lines[start:]))
    shutil.rmtree(directory, ignore_errors=True)


class CountingJournal(JournalFile):
    """A journal file that counts and times its fsyncs (for the group-commit diagnostic)."""

    def __init__(self, inner: JournalFile, medium: CountingMedium) -> None:
        self.inner = inner
        self.medium = medium

    @property
    def size(self) -> int:  # type: ignore[override]
        return self.inner.size

    def write(self, data: bytes) -> None:
        self.inner.write(data)

    def sync(self) -> None:
        start = time.perf_counter()
        self.inner.sync()
        self.medium.sync_seconds += time.perf_counter() - start
        self.medium.syncs += 1

    def truncate(self, size: int) -> None:
        self.inner.truncate(size)

    def close(self) -> None:
        self.inner.close()


class CountingMedium(FileMedium):
    """A FileMedium whose journals count their fsyncs."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.syncs = 0
        self.sync_seconds = 0.0

    def create_journal(self, jid: int, header: bytes) -> JournalFile:
        return CountingJournal(super().create_journal(jid, header), self)

    def open_journal(self, jid: int) -> JournalFile:
        return CountingJournal(super().open_journal(jid), self)


def group_commit(base: Path, pairs: list[Pair], seconds: float, repeat: int) -> None:
    """``fsync="always"`` with 1 and 8 threads, fsyncs counted.

    Sets per fsync is group commit's own measure: it does not depend on how
    fast the disk is, while the 8-thread / 1-thread rate does (with a slow
    fsync, waiting dominates and batching pays in full; with a fast one,
    the threads' hand-offs on 2 cores start to count).
    """
    chunks = chunked(pairs, 1)

    def job(threads: int) -> Callable[[], tuple[Sample, int, float]]:
        def run() -> tuple[Sample, int, float]:
            medium = CountingMedium(Path(tempfile.mkdtemp(prefix="group-", dir=base)))
            store = snapkv.Store(medium, journal=True, fsync="always")
            try:
                store.restore()
                loops = [set_loop(store.set, chunks, f) for f in firsts(chunks, threads)]
                sample = window(loops, seconds)
                syncs, synced = medium.syncs, medium.sync_seconds
            finally:
                store.close()
            shutil.rmtree(medium.directory, ignore_errors=True)
            return sample, syncs, synced

        return run

    runs = interleaved({str(n): job(n) for n in (1, THREADS)}, repeat)
    print(f'\n### Group commit: fsync="always", fsyncs counted (medians of {repeat})\n')
    rows = []
    for name, results in runs.items():
        rows.append(
            [
                name,
                f"{median(s.rate for s, _, _ in results):,.0f}",
                f"{median(s.ops / n for s, n, _ in results):.2f}",
                f"{median(t / n * 1e3 for _, n, t in results):.2f}",
                f"{median(t / s.seconds for s, _, t in results):.0%}",
            ]
        )
    print_table(["threads", "sets/s", "sets per fsync", "ms per fsync", "time in fsync"], rows)
    ratios = [
        eight.rate / one.rate
        for (one, _, _), (eight, _, _) in zip(runs["1"], runs[str(THREADS)], strict=True)
    ]
    print(
        f"{THREADS} threads / 1 thread, sets/s, per repetition: "
        + " ".join(f"{r:.2f}" for r in ratios)
    )


# --------------------------------------------------------------------- main


@contextlib.contextmanager
def redis_server(base: Path, skip: bool) -> Iterator[tuple[RedisServer | None, str, str]]:
    server_exe, bench_exe = shutil.which("redis-server"), shutil.which("redis-benchmark")
    if skip or server_exe is None or bench_exe is None:
        missing = "redis: skipped, redis-server/redis-benchmark not on PATH"
        yield None, "", "redis: not run (--no-redis)" if skip else missing
        return
    version = subprocess.run(
        [server_exe, "--version"], capture_output=True, text=True, check=False
    ).stdout
    match = re.search(r"v=([0-9.]+)", version)
    directory = base / "redis"
    directory.mkdir()
    server = RedisServer(server_exe, directory)
    try:
        yield server, bench_exe, f"redis-server {match.group(1) if match else '?'}"
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="window per run (default 1)")
    parser.add_argument("--repeat", type=int, default=7, help="repetitions (default 7)")
    parser.add_argument("--quick", action="store_true", help="0.25 s windows, 3 repetitions")
    parser.add_argument("--dir", help="where the files go (default: the system temp dir)")
    parser.add_argument("--no-redis", action="store_true", help="skip redis even if installed")
    parser.add_argument("--profile", action="store_true", help="also profile a journaled set")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.repeat = 0.25, 3

    pairs = list(ascii_items(KEYS).items())
    with contextlib.ExitStack() as stack:
        base = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=args.dir)))
        redis, benchmark, redis_note = stack.enter_context(redis_server(base, args.no_redis))
        contenders = build_contenders(base, pairs, args.seconds, redis, benchmark)
        for c in contenders:
            if isinstance(c, SnapkvContender | SqliteContender):
                stack.callback(c.cleanup)

        print(describe_machine())
        print(
            f"Files: {base.parent} ({filesystem_of(base)}); sqlite {sqlite3.sqlite_version}; "
            f"{redis_note}"
        )
        record = len(jr.set_record(0, *pairs[0]))
        print(
            f"Parameters: upserts of {KEYS:,} keys (16-char keys, 64-char values; a SET record "
            f"is {record} bytes), each acknowledged alone; {args.seconds:g} s windows "
            f"({args.seconds + EVERYSEC_EXTRA:g} s for everysec), 1 and {THREADS} threads, "
            f"{args.repeat} interleaved repetitions (medians shown); a fresh store or "
            "database per window"
        )
        warm_up(contenders, min(args.seconds, 0.25))
        before, started = pressure_totals(), time.perf_counter()
        runs = interleaved(
            {c.name: c for c in contenders},
            args.repeat,
            progress=lambda m: log(m.replace("|", ", threads=")),
        )
        load = pressure_line(before, pressure_totals(), time.perf_counter() - started)
        if load:
            print(load)
        print()
        series = report(contenders, runs)
        print(
            "\n`time / journal off`: ns per set over snapkv's with the journal off, same number "
            "of threads (median of per-repetition ratios). redis is measured by redis-benchmark "
            "over loopback TCP (a C client; each set is a round trip), the others in-process "
            "from Python."
        )
        print("\nPer-repetition ratios behind the targets:")
        for name, values in series.items():
            print(f"  {name}: {' '.join(f'{v:.2f}' for v in values)}")
        print("\nTargets (printed, not asserted):")
        print(
            target_line(
                "snapkv everysec set time / journal-off set time, 1 thread",
                median(series["everysec"]),
                EVERYSEC_TARGET,
            )
        )
        print(
            f"  (for context, {THREADS} threads: {median(series['everysec 8']):.2f}x; not a target)"
        )
        print(
            target_line(
                f"snapkv always sets/s, {THREADS} threads / 1 thread (group commit)",
                median(series["group"]),
                GROUP_COMMIT_TARGET,
                higher_is_better=True,
            )
        )
        print(
            target_line(
                "snapkv always time per set / sqlite3 WAL synchronous=FULL, 1 thread",
                median(series["sqlite"]),
                SQLITE_TARGET,
            )
        )
        if args.profile:
            profile(base, pairs, args.seconds, args.repeat)
            group_commit(base, pairs, args.seconds + EVERYSEC_EXTRA, args.repeat)


if __name__ == "__main__":
    main()
