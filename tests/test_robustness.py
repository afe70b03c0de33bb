"""Failure modes, one test each: interrupts, failing disks, forks, misuse."""

from __future__ import annotations

import errno
import gc
import os
import signal
import struct
import subprocess
import sys
import threading
import tracemalloc
import zlib
from pathlib import Path

import pytest

import snapkv
import snapkv._fs
from snapkv import FileMedium, MediumError, Store, StoreClosedError, StoreLockedError, codec
from snapkv.media import file as file_medium


def snapshot_names(directory: Path) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.startswith("snapshot-"))


# ----------------------------------------------------------- context manager


def test_explicit_shutdown_then_exit_does_not_hide_the_snapshot(tmp_path: Path) -> None:
    with snapkv.open(tmp_path) as store:
        store["k"] = "important"
        store.shutdown()
    # Two more sessions that write nothing: with keep=1 an empty snapshot
    # published on exit would, by now, have pruned the one holding "k".
    for _ in range(2):
        with snapkv.open(tmp_path) as store:
            assert dict(store.items()) == {"k": "important"}
    assert len(snapshot_names(tmp_path)) == 2


def test_writes_after_an_explicit_shutdown_are_published_on_exit(tmp_path: Path) -> None:
    with snapkv.open(tmp_path) as store:
        store["old"] = "1"
        store.shutdown()
        store["new"] = "2"
    with snapkv.open(tmp_path) as store:
        assert dict(store.items()) == {"new": "2"}


def test_a_failing_final_shutdown_keeps_memory_and_the_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    store = snapkv.open(tmp_path)
    with monkeypatch.context() as patch:
        patch.setattr(file_medium.os, "fsync", no_space)
        with pytest.raises(MediumError), store:
            store["k"] = "unsaved"
    assert not store.closed
    assert store.get("k") == "unsaved"
    with pytest.raises(StoreLockedError):
        snapkv.open(tmp_path)
    store.shutdown()  # the disk is back: retrying works
    store.close()
    with snapkv.open(tmp_path) as again:
        assert again.get("k") == "unsaved"


def test_exit_after_close_is_harmless(tmp_path: Path) -> None:
    with snapkv.open(tmp_path) as store:
        store["k"] = "v"
        store.close()
    with snapkv.open(tmp_path) as store:
        assert len(store) == 0


# -------------------------------------------------------------- interrupts

INTERRUPTED_WRITER = """
import sys
import snapkv

try:
    with snapkv.open(sys.argv[1]) as store:
        print("ready", flush=True)
        n = 0
        while True:
            n += 1
            store.set("k", str(n))
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


@pytest.mark.parametrize("attempt", range(6))
def test_ctrl_c_during_writes_never_leaves_the_store_locked(tmp_path: Path, attempt: int) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED_WRITER, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline() == "ready\n"
    threading.Event().wait(0.05 + 0.03 * attempt)
    child.send_signal(signal.SIGINT)
    try:
        output, _ = child.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        pytest.fail("the writer hung after Ctrl-C: a lock was left held")
    assert output == "interrupted\n"
    with snapkv.open(tmp_path) as store:
        assert int(store["k"]) > 0  # __exit__ published the last write


# ------------------------------------------------------------ the file medium


def test_directory_sync_failure_after_rename_says_published_but_not_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = snapkv.open(tmp_path)
    store["k"] = "v"

    def failing_directory_sync(path: Path) -> None:
        raise OSError(errno.EIO, "Input/output error")

    with monkeypatch.context() as patch:
        patch.setattr(snapkv._fs, "fsync_directory", failing_directory_sync)
        with pytest.raises(MediumError, match="published but not confirmed durable"):
            store.shutdown()
    assert store.get("k") == "v", "shutdown failed, so memory must be intact"
    assert len(snapshot_names(tmp_path)) == 1, "the renamed snapshot is visible"
    store.shutdown()
    store.close()


def test_quarantined_files_are_never_overwritten(tmp_path: Path) -> None:
    medium = FileMedium(tmp_path, keep=2)
    medium.publish([b"good"])
    medium.publish([b"bad one"])
    first = medium.quarantine(medium.generations()[0])
    medium.publish([b"bad two"])
    second = medium.quarantine(medium.generations()[0])
    assert first != second
    assert Path(first).read_bytes() == b"bad one"
    assert Path(second).read_bytes() == b"bad two"
    medium.close()


def test_generation_numbers_grow_past_quarantined_ones(tmp_path: Path) -> None:
    medium = FileMedium(tmp_path)
    medium.publish([b"a"])
    medium.publish([b"b"])
    medium.quarantine(medium.generations()[0])
    medium.publish([b"c"])
    assert medium.generations()[0] == "snapshot-0000000000000003.skv"
    medium.close()


@pytest.mark.parametrize("keep", [1.5, "1", None])
def test_keep_must_be_an_integer(tmp_path: Path, keep: object) -> None:
    with pytest.raises(TypeError):
        FileMedium(tmp_path, keep=keep)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        snapkv.MemoryMedium(keep=keep)  # type: ignore[arg-type]


def test_an_unclosed_medium_releases_its_lock_when_collected(tmp_path: Path) -> None:
    medium = FileMedium(tmp_path)
    del medium
    gc.collect()
    FileMedium(tmp_path).close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_keep_the_directory_locked(tmp_path: Path) -> None:
    store = snapkv.open(tmp_path)
    started_read, started_write = os.pipe()
    release_read, release_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: say it runs (fork hooks have run by now), then wait
        os.write(started_write, b"!")
        os.read(release_read, 1)
        os._exit(0)
    try:
        assert os.read(started_read, 1) == b"!"
        store.close()
        snapkv.open(tmp_path).close()  # the child is alive, and holds nothing
    finally:
        os.write(release_write, b"!")
        os.waitpid(pid, 0)
        for fd in (started_read, started_write, release_read, release_write):
            os.close(fd)


def test_fallback_skips_an_unreadable_generation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with snapkv.open(tmp_path) as store:
        store["k"] = "old"
    with snapkv.open(tmp_path) as store:
        store["k"] = "new"
    newest = snapshot_names(tmp_path)[-1]
    real_read = FileMedium.read

    def read(self: FileMedium, generation: str | None = None) -> bytes | None:
        if generation == newest:
            raise MediumError(f"cannot read {generation}: Input/output error")
        return real_read(self, generation)

    monkeypatch.setattr(FileMedium, "read", read)
    with pytest.raises(MediumError):
        snapkv.open(tmp_path)
    store = snapkv.open(tmp_path, fallback=True)
    assert store.get("k") == "old"
    assert store.last_restore is not None
    assert [name for name, _ in store.last_restore.skipped] == [newest]
    store.close()


# ------------------------------------------------------ atomic mapping methods


def test_update_validates_everything_before_storing_anything() -> None:
    store = Store()
    with pytest.raises(TypeError, match="key must be str, not int"):
        store.update({"a": "1", 3: "x"})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="value must be str, not NoneType"):
        store.update([("a", "1")], b=None)  # type: ignore[arg-type]
    assert len(store) == 0
    store.update({"a": "1"}, b="2")
    assert dict(store.items()) == {"a": "1", "b": "2"}


def test_pop_setdefault_popitem_are_single_atomic_steps() -> None:
    store = Store()
    errors: list[BaseException] = []
    results: list[str] = []

    def racer() -> None:
        try:
            for _ in range(2_000):
                store.set("k", "v")
                store.pop("k", None)
                results.append(store.setdefault("d", threading.current_thread().name))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=racer, name=f"t{i}") for i in range(4)]
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch)
    assert errors == []
    assert len(set(results)) == 1, "setdefault must give every caller the same value"
    assert store.popitem() == ("d", results[0])
    with pytest.raises(KeyError):
        store.popitem()
    with pytest.raises(KeyError):
        store.pop("missing")
    with pytest.raises(TypeError, match="value must be str"):
        store.setdefault("x", None)  # type: ignore[arg-type]


@pytest.mark.parametrize("method", ["pop", "popitem", "setdefault", "update"])
def test_mapping_methods_after_close_raise(method: str) -> None:
    store = Store()
    store.close()
    calls = {
        "pop": lambda: store.pop("k", None),
        "popitem": store.popitem,
        "setdefault": lambda: store.setdefault("k", "v"),
        "update": lambda: store.update({"k": "v"}),
    }
    with pytest.raises(StoreClosedError):
        calls[method]()


# ------------------------------------------------------------------- decoder


def test_a_lying_entry_count_is_refused_without_splitting() -> None:
    # count 1, but the text holds 2,000,000 separators: split() would build a
    # 2,000,001-item list (16 MB of pointers) before noticing.
    body = struct.pack("<IB", 1, codec.LAYOUT_SEPARATED) + b"\x00" + b"\x00" * 2_000_000
    tail = struct.pack("<IB", len(body), codec.TYPE_ENTRIES)
    record = struct.pack("<I", zlib.crc32(tail + body)) + tail + body
    data = codec.encode({})[: codec.HEADER_SIZE] + record
    tracemalloc.start()
    try:
        with pytest.raises(snapkv.CorruptSnapshotError) as info:
            codec.decode(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.value.check == "entry-count"
    assert peak < 8 << 20, f"peak {peak:,} bytes: the text was split before the count was checked"
