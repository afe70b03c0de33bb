"""Snapshot benchmark: shutdown (encode + write + fsync) and restore (read + decode).

Contenders, run interleaved in one process on the same data:

* snapkv  - ``Store`` on a ``FileMedium``: ``shutdown()`` then ``restore()``.
* pickle  - ``pickle.dumps(d, protocol=5)``, write, fsync; read, ``pickle.loads``.
* loop    - a per-entry length-prefixed format written and read by Python loops.
* redis   - ``SAVE`` and ``DEBUG RELOAD`` of a redis-server, if one is on PATH.

Every contender drops its in-memory data when it saves (as ``shutdown``
does) and rebuilds it when it restores, so each cycle frees and allocates
the same objects for everyone. Peak extra memory while saving is measured
in a fresh child process per contender (see ``--help`` and bench/README.md).

A second section prices expiry: the same entries in two stores, one where
no key expires and one where every other key does, each saved (encode) and
restored (decode) in turn; also the codec alone on the same columns.

A third section (``--types``) times values other than strings: 1,000,000
elements spread over hashes, lists, sets and sorted sets (``--elements``,
``--per-value`` elements each), a snapkv Store's shutdown + restore (format
v3) against pickle of the equivalent plain objects (dict, list, set, dict
of scores) and redis-server's SAVE + load of the same values.

Run from the repository root::

    python bench/snapshot.py                 # 1,000,000 keys, 3 repetitions
    python bench/snapshot.py --quick         # 100,000 keys, 2 repetitions
    python bench/snapshot.py --expiry-only   # only the expiry section
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import pickle
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import (
    describe_machine,
    fmt_bytes,
    fmt_ratio,
    fmt_seconds,
    interleaved,
    make_dataset,
    median,
    median_ratio,
    non_ascii_share,
    print_table,
    target_line,
)
from snapkv import FileMedium, MemoryMedium, Store, codec

DATASETS = ("ascii", "non-ascii")
#: Target: snapkv shutdown+restore time / pickle's, per dataset.
PICKLE_TARGET = {"ascii": 0.8, "non-ascii": 0.9}
#: Target: the per-entry loop's time / snapkv's.
LOOP_TARGET = 2.5
#: Target: peak extra memory while saving, as a share of the store's footprint.
MEMORY_TARGET = 0.25
#: Target: save (encode) and restore (decode) time of a store where half the
#: keys expire, over the same store without expiry.
EXPIRY_TARGET = 1.3
#: Expiry times of the expiring keys start this far in the future (seconds),
#: so that none expires during the run.
EXPIRY_HORIZON = 30 * 86_400

_U32 = struct.Struct("<I")


def log(message: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _fsync_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


# ---------------------------------------------------------------- contenders


class SnapkvContender:
    """A Store on a FileMedium; a cycle is ``shutdown()`` then ``restore()``."""

    name = "snapkv"

    def __init__(self, items: dict[str, str], directory: Path) -> None:
        self.store = Store(FileMedium(directory))
        for key, value in items.items():
            self.store.set(key, value)

    def save(self) -> None:
        self.store.shutdown()

    def restore(self) -> None:
        self.store.restore()

    def matches(self, items: dict[str, str]) -> bool:
        return len(self.store) == len(items) and dict(self.store.items()) == items

    def size(self) -> int:
        medium = self.store.medium
        assert isinstance(medium, FileMedium)
        return medium.path(medium.generations()[0]).stat().st_size

    def close(self) -> None:
        self.store.close()


class PickleContender:
    """``pickle.dumps`` + write + fsync, then read + ``pickle.loads``."""

    name = "pickle"

    def __init__(self, items: dict[str, str], directory: Path) -> None:
        self.data: dict[str, str] | None = dict(items)
        self.path = directory / "snapshot.pickle"

    def save(self) -> None:
        _fsync_write(self.path, pickle.dumps(self.data, protocol=5))
        self.data = None  # like shutdown: memory is cleared

    def restore(self) -> None:
        with open(self.path, "rb") as f:
            blob = f.read()
        self.data = pickle.loads(blob) if blob else {}

    def matches(self, items: dict[str, str]) -> bool:
        return self.data == items

    def size(self) -> int:
        return self.path.stat().st_size

    def close(self) -> None:
        self.data = None


def loop_save(data: dict[str, str], path: Path) -> None:
    """Per entry: u32 length + UTF-8 key, u32 length + UTF-8 value."""
    pack = _U32.pack
    with open(path, "wb", buffering=1 << 20) as f:
        write = f.write
        for key, value in data.items():
            kb = key.encode("utf-8", "surrogatepass")
            vb = value.encode("utf-8", "surrogatepass")
            write(pack(len(kb)) + kb + pack(len(vb)) + vb)
        f.flush()
        os.fsync(f.fileno())


def loop_load(path: Path) -> dict[str, str]:
    with open(path, "rb") as f:
        buf = f.read()
    unpack_from = _U32.unpack_from
    result: dict[str, str] = {}
    pos = 0
    end = len(buf)
    while pos < end:
        (size,) = unpack_from(buf, pos)
        pos += 4
        key = buf[pos : pos + size].decode("utf-8", "surrogatepass")
        pos += size
        (size,) = unpack_from(buf, pos)
        pos += 4
        result[key] = buf[pos : pos + size].decode("utf-8", "surrogatepass")
        pos += size
    return result


class LoopContender(PickleContender):
    """The per-entry length-prefixed Python loop."""

    name = "loop"

    def __init__(self, items: dict[str, str], directory: Path) -> None:
        super().__init__(items, directory)
        self.path = directory / "snapshot.loop"

    def save(self) -> None:
        assert self.data is not None
        loop_save(self.data, self.path)
        self.data = None

    def restore(self) -> None:
        self.data = loop_load(self.path)


# --------------------------------------------------------------------- redis


def _resp_command(*args: str | bytes) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else arg.encode("utf-8", "surrogatepass")
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class RespClient:
    """Just enough of the Redis protocol (RESP2) over a socket for this benchmark."""

    def __init__(self, port: int, timeout: float = 600.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.reader = self.sock.makefile("rb")

    def command(self, *args: str | bytes) -> Any:
        self.sock.sendall(_resp_command(*args))
        return self.reply()

    def reply(self) -> Any:
        line = self.reader.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError("redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(f"redis error: {rest.decode(errors='replace')}")
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            return None if size < 0 else self.reader.read(size + 2)[:-2]
        if kind == b"*":
            size = int(rest)
            return None if size < 0 else [self.reply() for _ in range(size)]
        raise ConnectionError(f"unexpected reply from redis: {line[:40]!r}")

    def set_many(self, items: dict[str, str], batch: int = 10_000) -> None:
        """Pipelined SETs, ``batch`` commands per round trip."""
        pending = list(items.items())
        for start in range(0, len(pending), batch):
            chunk = pending[start : start + batch]
            self.sock.sendall(b"".join(_resp_command("SET", k, v) for k, v in chunk))
            for _ in chunk:
                if self.reply() != "OK":
                    raise RuntimeError("redis refused a SET")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.reader.close()
            self.sock.close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _redis_version(executable: str) -> tuple[int, int]:
    out = subprocess.run(
        [executable, "--version"], capture_output=True, text=True, check=False
    ).stdout
    match = re.search(r"v=(\d+)\.(\d+)", out)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


class RedisContender:
    """A redis-server on a free loopback port in a temp dir: SAVE, then DEBUG RELOAD.

    ``DEBUG RELOAD`` saves, flushes and loads the RDB file, so the load
    alone is estimated as ``DEBUG RELOAD - SAVE`` of the same cycle.
    """

    name = "redis"

    def __init__(
        self,
        items: dict[str, str],
        directory: Path,
        executable: str,
        loader: Callable[[RespClient], int] | None = None,
    ) -> None:
        """Start redis-server and SET ``items``, or let ``loader`` load it (returns DBSIZE)."""
        self.directory = directory
        self.version = _redis_version(executable)
        port = _free_port()
        argv = [executable, "--port", str(port), "--bind", "127.0.0.1"]
        argv += ["--dir", str(directory), "--dbfilename", "dump.rdb", "--save", ""]
        argv += ["--appendonly", "no", "--daemonize", "no"]
        argv += ["--logfile", str(directory / "redis.log")]
        if self.version >= (7, 0):
            argv += ["--enable-debug-command", "local"]  # DEBUG is off by default since 7.0
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            self.client = self._connect(port)
            expected = len(items)
            if loader is None:
                self.client.set_many(items)
            else:
                expected = loader(self.client)
            if self.client.command("DBSIZE") != expected:
                raise RuntimeError("redis does not hold every key after loading")
        except BaseException:
            self._stop_process()
            raise
        self.expected = expected
        self.reloads: list[float] = []

    def _connect(self, port: int) -> RespClient:
        deadline = time.monotonic() + 15
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with status {self.proc.returncode}")
            try:
                client = RespClient(port)
                if client.command("PING") == "PONG":
                    return client
                client.close()
            except (OSError, RuntimeError):
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.05)

    def cycle(self) -> dict[str, float]:
        start = time.perf_counter()
        self.client.command("SAVE")
        saved = time.perf_counter()
        self.client.command("DEBUG", "RELOAD")
        reloaded = time.perf_counter()
        self.reloads.append(reloaded - saved)
        return {"save": saved - start, "restore": (reloaded - saved) - (saved - start)}

    def matches(self, items: dict[str, Any]) -> bool:
        return self.client.command("DBSIZE") == len(items)

    def size(self) -> int:
        return (self.directory / "dump.rdb").stat().st_size

    def used_memory(self) -> int:
        info = self.client.command("INFO", "memory").decode()
        match = re.search(r"^used_memory:(\d+)", info, re.MULTILINE)
        return int(match.group(1)) if match else 0

    def _stop_process(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def close(self) -> None:
        with contextlib.suppress(OSError, RuntimeError, ConnectionError):
            self.client.sock.sendall(_resp_command("SHUTDOWN", "NOSAVE"))
            self.client.reply()
        self.client.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._stop_process()


def _cycle(contender: Any) -> Callable[[], dict[str, float]]:
    if isinstance(contender, RedisContender):
        return contender.cycle

    def run() -> dict[str, float]:
        start = time.perf_counter()
        contender.save()
        saved = time.perf_counter()
        contender.restore()
        return {"save": saved - start, "restore": time.perf_counter() - saved}

    return run


# -------------------------------------------------------------------- timing


def time_dataset(
    dataset: str, n: int, repeat: int, directory: str | None
) -> dict[str, dict[str, float]]:
    """Time every contender on one dataset; print its table; return the medians."""
    log(f"{dataset}: generating {n:,} entries")
    items = make_dataset(dataset, n)
    chars, utf8 = non_ascii_share(items)
    print(
        f"\n### {dataset}: {n:,} keys; non-ASCII: {chars:.1%} of characters, "
        f"{utf8:.1%} of UTF-8 bytes\n"
    )
    redis = shutil.which("redis-server")
    with contextlib.ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=directory)))
        contenders: list[Any] = []
        for cls in (SnapkvContender, PickleContender, LoopContender):
            log(f"{dataset}: setting up {cls.name}")
            (root / cls.name).mkdir()
            contender = cls(items, root / cls.name)
            stack.callback(contender.close)
            contenders.append(contender)
        redis_contender: RedisContender | None = None
        if redis:
            log(f"{dataset}: loading {n:,} keys into redis-server")
            (root / "redis").mkdir()
            redis_contender = RedisContender(items, root / "redis", redis)
            stack.callback(redis_contender.close)
            contenders.append(redis_contender)
        cycles = {c.name: _cycle(c) for c in contenders}
        # One untimed cycle each: checks the round trip, and leaves every
        # contender holding objects it allocated itself, as in later cycles.
        for contender in contenders:
            log(f"{dataset}: warm-up cycle and check: {contender.name}")
            cycles[contender.name]()
            if not contender.matches(items):
                raise SystemExit(f"{contender.name} did not restore the data it saved")
        sizes = {c.name: c.size() for c in contenders}
        redis_memory = redis_contender.used_memory() if redis_contender else 0
        del items
        gc.collect()
        runs = interleaved(cycles, repeat, progress=lambda m: log(f"{dataset}: {m}"))
        redis_reloads = list(redis_contender.reloads[1:]) if redis_contender else []

    totals = {name: [r["save"] + r["restore"] for r in rs] for name, rs in runs.items()}
    summary: dict[str, dict[str, float]] = {}
    rows = []
    for name, rs in runs.items():
        summary[name] = {
            "save": median(r["save"] for r in rs),
            "restore": median(r["restore"] for r in rs),
            "total": median(totals[name]),
            "vs_pickle": median_ratio(totals[name], totals["pickle"]),
            "vs_snapkv": median_ratio(totals[name], totals["snapkv"]),
            "size": sizes[name],
        }
        s = summary[name]
        rows.append(
            [
                name,
                fmt_seconds(s["save"]),
                fmt_seconds(s["restore"]),
                fmt_seconds(s["total"]),
                fmt_bytes(s["size"]),
                fmt_ratio(s["vs_pickle"]),
                fmt_ratio(s["vs_snapkv"]),
            ]
        )
    print_table(
        [
            "contender",
            "shutdown",
            "restore",
            "total",
            "snapshot",
            "total / pickle",
            "total / snapkv",
        ],
        rows,
    )
    snap = [r["save"] for r in runs["snapkv"]]
    pick = [r["save"] for r in runs["pickle"]]
    snap_r = [r["restore"] for r in runs["snapkv"]]
    pick_r = [r["restore"] for r in runs["pickle"]]
    print(
        f"\nsnapkv/pickle by phase: shutdown {fmt_ratio(median_ratio(snap, pick))}, "
        f"restore {fmt_ratio(median_ratio(snap_r, pick_r))}"
    )
    per_rep = ", ".join(
        f"{a / b:.2f}" for a, b in zip(totals["snapkv"], totals["pickle"], strict=True)
    )
    print(f"snapkv/pickle total per repetition: {per_rep}")
    per_rep = ", ".join(
        f"{a / b:.2f}" for a, b in zip(totals["loop"], totals["snapkv"], strict=True)
    )
    print(f"loop/snapkv total per repetition: {per_rep}")
    if redis_contender is not None:
        print(
            f"redis {'.'.join(map(str, redis_contender.version))}: shutdown = SAVE, "
            f"restore = DEBUG RELOAD - SAVE (DEBUG RELOAD median "
            f"{fmt_seconds(median(redis_reloads))}); used_memory {fmt_bytes(redis_memory)}"
        )
    else:
        print("redis: skipped (no redis-server on PATH)")
    return summary


# -------------------------------------------------------------------- expiry

EXPIRY_CONTENDERS = (
    "Store, no expiry",
    "Store, 50% expiry",
    "codec, no expiry",
    "codec, 50% expiry",
)


def expiry_times(n: int) -> list[int]:
    """Expiry times (epoch ms) for ``n`` keys: every other key expires, 0 for the rest.

    The times are distinct (one millisecond apart) and far enough ahead that
    none falls due during the run; alternating keys put an expiry column in
    every chunk, the worst case for the codec.
    """
    first = int((time.time() + EXPIRY_HORIZON) * 1000)
    return [first + i if i % 2 == 0 else 0 for i in range(n)]


class StoreCycle:
    """A Store on a MemoryMedium (no disk, so only CPU is priced): save(), then restore()."""

    def __init__(self, items: dict[str, str], times: list[int] | None) -> None:
        self.store = Store(MemoryMedium())
        if times is None:
            self.store.update(items)
        else:
            for (key, value), at in zip(items.items(), times, strict=True):
                if at:
                    self.store.set(key, value, expire_at=at / 1000)
                else:
                    self.store.set(key, value)

    def __call__(self) -> dict[str, float]:
        start = time.perf_counter()
        self.store.save()
        saved = time.perf_counter()
        self.store.restore()
        return {"encode": saved - start, "decode": time.perf_counter() - saved}

    def check(self, items: dict[str, str], times: list[int] | None) -> None:
        if dict(self.store.items()) != items:
            raise SystemExit("a Store did not restore the entries it saved")
        sample = list(items)[:1_000]
        expected = [at or None for at in times[:1_000]] if times else [None] * len(sample)
        if [self.store.expiry_ms(key) for key in sample] != expected:
            raise SystemExit("a Store did not restore the expiry times it saved")


class CodecCycle:
    """The codec alone on prebuilt columns: iter_encode_snapshot joined, then decode_snapshot."""

    def __init__(self, items: dict[str, str], times: list[int] | None) -> None:
        self.columns = [(0, list(items), list(items.values()), times)]
        self.blob = b""

    def __call__(self) -> dict[str, float]:
        start = time.perf_counter()
        self.blob = b"".join(codec.iter_encode_snapshot(self.columns))
        encoded = time.perf_counter()
        codec.decode_snapshot(self.blob)
        return {"encode": encoded - start, "decode": time.perf_counter() - encoded}

    def check(self, items: dict[str, str], times: list[int] | None) -> None:
        snapshot = codec.decode_snapshot(self.blob)
        expires = {k: at for k, at in zip(items, times, strict=True) if at} if times else {}
        if snapshot.spaces.get(0) != items or snapshot.expires.get(0, {}) != expires:
            raise SystemExit("the codec did not decode what it encoded")


def time_expiry(dataset: str, n: int, repeat: int) -> dict[str, dict[str, float]]:
    """Time save/restore with and without expiry on one dataset; print the table."""
    log(f"{dataset}: expiry: generating {n:,} entries")
    items = make_dataset(dataset, n)
    times = expiry_times(n)
    print(f"\n### {dataset}: expiry cost, {n:,} keys (half of them with an expiry time)\n")
    cycles: dict[str, StoreCycle | CodecCycle] = {}
    for name in EXPIRY_CONTENDERS:
        log(f"{dataset}: expiry: setting up {name}")
        kind = StoreCycle if name.startswith("Store") else CodecCycle
        cycles[name] = kind(items, times if "50%" in name else None)
    for name, cycle in cycles.items():
        log(f"{dataset}: expiry: warm-up cycle and check: {name}")
        cycle()
        cycle.check(items, times if "50%" in name else None)
    del items, times
    gc.collect()
    runs = interleaved(dict(cycles), repeat, progress=lambda m: log(f"{dataset}: expiry: {m}"))
    for cycle in cycles.values():
        if isinstance(cycle, StoreCycle):
            cycle.store.close()

    summary: dict[str, dict[str, float]] = {}
    rows = []
    for name, rs in runs.items():
        base = runs[name.replace("50% expiry", "no expiry")]
        summary[name] = {phase: median(r[phase] for r in rs) for phase in ("encode", "decode")} | {
            f"{phase} ratio": median_ratio([r[phase] for r in rs], [r[phase] for r in base])
            for phase in ("encode", "decode")
        }
        s = summary[name]
        rows.append(
            [
                name,
                fmt_seconds(s["encode"]),
                fmt_ratio(s["encode ratio"]),
                fmt_seconds(s["decode"]),
                fmt_ratio(s["decode ratio"]),
            ]
        )
    print_table(
        [
            "contender",
            "encode (Store: save)",
            "encode / no expiry",
            "decode (Store: restore)",
            "decode / no expiry",
        ],
        rows,
    )
    for phase in ("encode", "decode"):
        per_rep = ", ".join(
            f"{a[phase] / b[phase]:.2f}"
            for a, b in zip(runs["Store, 50% expiry"], runs["Store, no expiry"], strict=True)
        )
        print(f"Store {phase}, 50% expiry / no expiry, per repetition: {per_rep}")
    return summary


# --------------------------------------------------------------- typed values

#: Targets for values other than strings: snapkv shutdown+restore over pickle
#: of the equivalent plain objects, and over redis-server's SAVE + load.
TYPED_PICKLE_TARGET = 0.8
TYPED_REDIS_TARGET = 1.0
TYPED_KINDS = ("hash", "list", "set", "zset")


def typed_dataset(elements: int, per_value: int) -> dict[str, tuple[str, Any]]:
    """``elements`` elements over values of ``per_value`` each, a quarter of them per type.

    key -> (kind, plain data): a dict field -> value (hash), a list, a set,
    a dict member -> score (sorted set); strings of 10 to 24 ASCII characters.
    """
    data: dict[str, tuple[str, Any]] = {}
    counter = 0

    def text(prefix: str) -> str:
        nonlocal counter
        counter += 1
        return f"{prefix}:{counter * 2_654_435_761 % 10**12:012d}"

    for index in range(max(1, elements // per_value)):
        kind = TYPED_KINDS[index % 4]
        key = f"{kind}:{index:08d}"
        if kind == "hash":
            value: Any = {text("f"): text("value") for _ in range(per_value)}
        elif kind == "list":
            value = [text("item") for _ in range(per_value)]
        elif kind == "set":
            value = {text("member") for _ in range(per_value)}
        else:
            value = {text("m"): (counter % 1000) / 7 for _ in range(per_value)}
        data[key] = (kind, value)
    return data


class TypedSnapkv:
    """A Store on a FileMedium holding the values through the views; shutdown, then restore."""

    name = "snapkv"

    def __init__(self, data: dict[str, tuple[str, Any]], directory: Path) -> None:
        self.store = Store(FileMedium(directory))
        for key, (kind, value) in data.items():
            if kind == "hash":
                self.store.hashes[key].update(value)
            elif kind == "list":
                self.store.lists[key].extend(value)
            elif kind == "set":
                self.store.sets[key].add_many(value)
            else:
                self.store.zsets[key].update(value)

    def save(self) -> None:
        self.store.shutdown()

    def restore(self) -> None:
        self.store.restore()

    def matches(self, data: dict[str, tuple[str, Any]]) -> bool:
        store = self.store
        return len(store) == len(data) and all(
            store.key_type(key) == kind
            and len(getattr(store, kind + "es" if kind == "hash" else kind + "s")[key])
            == len(value)
            for key, (kind, value) in data.items()
        )

    def size(self) -> int:
        medium = self.store.medium
        assert isinstance(medium, FileMedium)
        return medium.path(medium.generations()[0]).stat().st_size

    def close(self) -> None:
        self.store.close()


class TypedPickle(PickleContender):
    """pickle of the plain objects: {key: dict | list | set | dict of scores}."""

    def __init__(self, data: dict[str, tuple[str, Any]], directory: Path) -> None:
        self.data = {key: value for key, (_kind, value) in data.items()}
        self.path = directory / "snapshot.pickle"

    def matches(self, data: dict[str, Any]) -> bool:
        return self.data == {key: value for key, (_kind, value) in data.items()}


def _typed_loader(data: dict[str, tuple[str, Any]]) -> Callable[[RespClient], int]:
    """Load ``data`` into redis with HSET, RPUSH, SADD and ZADD, pipelined."""

    def load(client: RespClient) -> int:
        commands = []
        for key, (kind, value) in data.items():
            if kind == "hash":
                args = ["HSET", key, *(x for pair in value.items() for x in pair)]
            elif kind == "list":
                args = ["RPUSH", key, *value]
            elif kind == "set":
                args = ["SADD", key, *value]
            else:
                args = ["ZADD", key, *(x for m, s in value.items() for x in (repr(s), m))]
            commands.append(_resp_command(*args))
        for start in range(0, len(commands), 500):
            batch = commands[start : start + 500]
            client.sock.sendall(b"".join(batch))
            for _ in batch:
                client.reply()
        return len(data)

    return load


def time_typed(
    elements: int, per_value: int, repeat: int, directory: str | None
) -> dict[str, float]:
    """Time snapkv, pickle and redis on values other than strings; print the table and ratios."""
    log(f"typed: generating {elements:,} elements, {per_value} per value")
    data = typed_dataset(elements, per_value)
    print(
        f"\n### values other than strings: {elements:,} elements in {len(data):,} values "
        f"({per_value} each; hashes, lists, sets, sorted sets in equal shares)\n"
    )
    redis = shutil.which("redis-server")
    with contextlib.ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=directory)))
        contenders: list[Any] = []
        for cls in (TypedSnapkv, TypedPickle):
            log(f"typed: setting up {cls.name}")
            (root / cls.name).mkdir()
            contender = cls(data, root / cls.name)
            stack.callback(contender.close)
            contenders.append(contender)
        if redis:
            log("typed: loading redis-server")
            (root / "redis").mkdir()
            redis_contender = RedisContender({}, root / "redis", redis, _typed_loader(data))
            stack.callback(redis_contender.close)
            contenders.append(redis_contender)
        cycles = {c.name: _cycle(c) for c in contenders}
        for contender in contenders:
            log(f"typed: warm-up cycle and check: {contender.name}")
            cycles[contender.name]()
            if not contender.matches(data):
                raise SystemExit(f"{contender.name} did not restore the values it saved")
        sizes = {c.name: c.size() for c in contenders}
        del data
        gc.collect()
        runs = interleaved(cycles, repeat, progress=lambda m: log(f"typed: {m}"))
    totals = {name: [r["save"] + r["restore"] for r in rs] for name, rs in runs.items()}
    rows = []
    for name, rs in runs.items():
        rows.append(
            [
                name,
                fmt_seconds(median(r["save"] for r in rs)),
                fmt_seconds(median(r["restore"] for r in rs)),
                fmt_seconds(median(totals[name])),
                fmt_bytes(sizes[name]),
                fmt_ratio(median_ratio(totals["snapkv"], totals[name])),
            ]
        )
    print_table(["contender", "shutdown", "restore", "total", "snapshot", "snapkv / it"], rows)
    ratios = {"pickle": median_ratio(totals["snapkv"], totals["pickle"])}
    if "redis" in totals:
        ratios["redis"] = median_ratio(totals["snapkv"], totals["redis"])
        print("redis: shutdown = SAVE, restore = DEBUG RELOAD - SAVE")
    else:
        print("redis: skipped (no redis-server on PATH)")
    per_rep = ", ".join(
        f"{a / b:.2f}" for a, b in zip(totals["snapkv"], totals["pickle"], strict=True)
    )
    print(f"snapkv/pickle total per repetition: {per_rep}")
    return ratios


# -------------------------------------------------------------------- memory

MEMORY_CONTENDERS = ("snapkv save()", "snapkv shutdown()", "pickle", "loop")


def _status_kb(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux: write 5 to /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        return False
    return True


def memory_child(contender: str, dataset: str, n: int, method: str, directory: str | None) -> None:
    """Build the data, then measure the peak extra memory of one save. Prints JSON."""
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        if method == "tracemalloc":
            tracemalloc.start()
            current = lambda: tracemalloc.get_traced_memory()[0]  # noqa: E731
        else:
            current = lambda: _status_kb("VmRSS")  # noqa: E731
        gc.collect()
        base = current()
        items = make_dataset(dataset, n)
        save: Callable[[], None]
        if contender.startswith("snapkv"):
            store = Store(FileMedium(tmp))
            for key, value in items.items():
                store.set(key, value)
            del items
            save = store.save if contender == "snapkv save()" else store.shutdown
        else:
            data = items
            path = Path(tmp) / "snapshot"
            if contender == "pickle":

                def save() -> None:
                    _fsync_write(path, pickle.dumps(data, protocol=5))

            else:

                def save() -> None:
                    loop_save(data, path)

        gc.collect()
        before = current()
        if method == "tracemalloc":
            tracemalloc.reset_peak()
            save()
            peak = tracemalloc.get_traced_memory()[1]
        else:
            if not _reset_peak_rss():
                print(json.dumps({"error": "cannot reset peak RSS"}))
                return
            before = _status_kb("VmHWM")  # the RSS at the reset
            save()
            peak = _status_kb("VmHWM")
        print(json.dumps({"footprint": before - base, "extra": peak - before}))


def measure_memory(dataset: str, n: int, directory: str | None) -> dict[str, dict[str, Any]]:
    """One fresh child process per (contender, method); print the table."""
    results: dict[str, dict[str, Any]] = {}
    for contender in MEMORY_CONTENDERS:
        results[contender] = {}
        for method in ("tracemalloc", "rss"):
            log(f"{dataset}: memory of {contender} ({method}) in a child process")
            argv = [sys.executable, __file__, "--memory-child", contender]
            argv += ["--dataset", dataset, "--keys", str(n), "--method", method]
            if directory:
                argv += ["--dir", directory]
            out = subprocess.run(argv, capture_output=True, text=True, check=False)
            try:
                results[contender][method] = json.loads(out.stdout.strip().splitlines()[-1])
            except (IndexError, json.JSONDecodeError):
                results[contender][method] = {"error": out.stderr.strip()[-300:] or "no output"}
    rows = []
    for contender, by_method in results.items():
        row: list[object] = [contender]
        for method in ("tracemalloc", "rss"):
            r = by_method[method]
            if "error" in r:
                row += ["n/a", "n/a", "n/a"]
                continue
            r["share"] = r["extra"] / r["footprint"]
            row += [fmt_bytes(r["footprint"]), fmt_bytes(r["extra"]), f"{r['share']:.1%}"]
        rows.append(row)
    print(f"\nPeak extra memory while saving ({dataset}; one fresh process per cell):\n")
    print_table(
        [
            "save",
            "footprint (traced)",
            "peak extra (traced)",
            "extra / footprint",
            "footprint (RSS)",
            "peak extra (RSS)",
            "extra / footprint (RSS)",
        ],
        rows,
    )
    for contender, by_method in results.items():
        for method, r in by_method.items():
            if "error" in r:
                print(f"{contender} ({method}): {r['error']}")
    return results


# ---------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=1_000_000, help="entries (default 1,000,000)")
    parser.add_argument("--repeat", type=int, default=3, help="timed repetitions (default 3)")
    parser.add_argument("--quick", action="store_true", help="100,000 keys, 2 repetitions")
    parser.add_argument(
        "--dataset", choices=[*DATASETS, "both"], default="both", help="default: both"
    )
    parser.add_argument("--dir", help="where snapshot files go (default: the system temp dir)")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory measurement")
    parser.add_argument("--no-expiry", action="store_true", help="skip the expiry section")
    parser.add_argument("--expiry-only", action="store_true", help="run only the expiry section")
    parser.add_argument(
        "--types", action="store_true", help="also time hashes, lists, sets and sorted sets"
    )
    parser.add_argument("--types-only", action="store_true", help="run only that section")
    parser.add_argument(
        "--elements", type=int, default=1_000_000, help="--types: elements (default 1,000,000)"
    )
    parser.add_argument(
        "--per-value", type=int, default=100, help="--types: elements per value (default 100)"
    )
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    parser.add_argument("--method", choices=["tracemalloc", "rss"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.keys, args.repeat = 100_000, 2
    if args.memory_child:
        memory_child(args.memory_child, args.dataset, args.keys, args.method, args.dir)
        return

    datasets = DATASETS if args.dataset == "both" else (args.dataset,)
    print(describe_machine())
    print(
        f"Parameters: {args.keys:,} keys (16-char keys, 64-char values), "
        f"{args.repeat} interleaved repetitions (medians shown), datasets: {', '.join(datasets)}, "
        f"snapshot dir: {args.dir or tempfile.gettempdir()}"
    )
    print(
        "shutdown = encode + write + fsync (+ clear memory); restore = read + decode. "
        "snapkv also renames the temp file, fsyncs the directory and prunes old generations."
    )
    if not args.no_expiry:
        print(
            "expiry section: Store on a MemoryMedium (no disk), encode = save(), "
            "decode = restore(); codec = iter_encode_snapshot joined / decode_snapshot."
        )
    timing: dict[str, dict[str, dict[str, float]]] = {}
    memory: dict[str, dict[str, dict[str, Any]]] = {}
    expiry: dict[str, dict[str, dict[str, float]]] = {}
    if args.types or args.types_only:
        typed = time_typed(args.elements, args.per_value, args.repeat, args.dir)
        print("\nTargets (printed, not asserted):")
        print(
            target_line(
                "values: snapkv shutdown+restore / pickle", typed["pickle"], TYPED_PICKLE_TARGET
            )
        )
        if "redis" in typed:
            print(
                target_line(
                    "values: snapkv shutdown+restore / redis SAVE+load",
                    typed["redis"],
                    TYPED_REDIS_TARGET,
                )
            )
        if args.types_only:
            return
    for dataset in datasets:
        if not args.expiry_only:
            timing[dataset] = time_dataset(dataset, args.keys, args.repeat, args.dir)
            if not args.no_memory:
                memory[dataset] = measure_memory(dataset, args.keys, args.dir)
        if not args.no_expiry:
            expiry[dataset] = time_expiry(dataset, args.keys, args.repeat)

    print("\nTargets (printed, not asserted):")
    for dataset in datasets:
        for phase, what in (("encode", "save()"), ("decode", "restore()")):
            if dataset in expiry:
                print(
                    target_line(
                        f"{dataset}: Store.{what} with 50% expiry / without ({phase})",
                        expiry[dataset]["Store, 50% expiry"][f"{phase} ratio"],
                        EXPIRY_TARGET,
                    )
                )
        if dataset not in timing:
            continue
        t = timing[dataset]
        print(
            target_line(
                f"{dataset}: snapkv shutdown+restore / pickle",
                t["snapkv"]["vs_pickle"],
                PICKLE_TARGET[dataset],
            )
        )
        print(
            target_line(
                f"{dataset}: loop / snapkv (speedup over the per-entry loop)",
                t["loop"]["vs_snapkv"],
                LOOP_TARGET,
                higher_is_better=True,
            )
        )
        for contender in ("snapkv save()", "snapkv shutdown()"):
            r = memory.get(dataset, {}).get(contender, {}).get("tracemalloc", {})
            if "share" in r:
                print(
                    target_line(
                        f"{dataset}: {contender} peak extra memory / footprint (traced)",
                        r["share"],
                        MEMORY_TARGET,
                    )
                )


if __name__ == "__main__":
    main()
