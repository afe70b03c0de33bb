"""store.transaction(): many writes, one journal record, all or nothing."""

from __future__ import annotations

import dis
import sys
import threading
import time
import types
from collections.abc import Callable
from pathlib import Path

import pytest

import snapkv
from snapkv import journal as jr
from snapkv.errors import MediumError, StoreShutDownError, TransactionError
from support import WatchedLock, wait_until


def state(store: snapkv.Store) -> list[dict[str, tuple[str, int | None]]]:
    """Every keyspace's entries with their expiry times (ms), for exact comparisons."""
    return [
        {key: (value, space.expiry_ms(key)) for key, value in space.items()}
        for space in (store.db(i) for i in range(store.databases))
    ]


def journal_records(directory: Path) -> list[jr.Op]:
    ops: list[jr.Op] = []
    for path in sorted(directory.glob("journal-*.skj")):
        ops += jr.scan_journal(path.read_bytes()).ops
    return ops


def fill(store: snapkv.Store) -> None:
    store.set("a", "1")
    store.set("t", "timed", expire_at=4_000_000_000)
    store.db(1).set("b", "2")
    store.db(2).set("c", "3")


def mixed_writes(tx: snapkv.Store) -> None:
    tx.set("a", "changed")
    tx.delete("t")
    tx.set("new", "n", ttl=100)
    tx.db(1).update({"u1": "x", "u2": "y"})
    tx.db(1).rename("b", "b2")
    tx.db(2).move("c", 3)
    tx.swap(0, 4)
    tx.db(4).expire("new", 50)
    tx.flush(2)
    tx.db(5).set("p", "q")
    tx.db(5).persist("p")
    tx.db(6).setdefault("s", "d")
    tx.db(6).pop("s")


@pytest.mark.parametrize("journal", [True, False])
def test_a_raising_block_leaves_every_keyspace_as_it_was(tmp_path: Path, journal: bool) -> None:
    with snapkv.open(tmp_path, journal=journal) as store:
        fill(store)
        before = state(store)
        with pytest.raises(RuntimeError, match="abort"), store.transaction() as tx:
            mixed_writes(tx)
            tx.flush_all()
            tx.db(7).set("late", "write")
            raise RuntimeError("abort")
        assert state(store) == before
        # The store goes on normally afterwards.
        store.set("after", "ok")
        assert store.get("after") == "ok"


def test_reads_in_the_block_see_its_writes(tmp_path: Path) -> None:
    with snapkv.open(tmp_path, journal=True) as store:
        fill(store)
        with store.transaction() as tx:
            tx.set("a", "mine")
            assert tx.get("a") == "mine"
            tx.db(1).rename("b", "moved")
            assert "b" not in tx.db(1)
            assert tx.db(1)["moved"] == "2"
            assert len(tx.db(1)) == 1


def test_a_transaction_is_one_journal_record_and_replays_to_the_same_state(
    tmp_path: Path,
) -> None:
    with snapkv.open(tmp_path, journal=True, fsync="always") as store:
        fill(store)
        records_before = len(journal_records(tmp_path))
        with store.transaction() as tx:
            mixed_writes(tx)
        after = state(store)
        ops = journal_records(tmp_path)
        assert len(ops) == records_before + 1
        assert ops[-1][0] == "batch"
        store.close()
    with snapkv.open(tmp_path, journal=True) as reopened:
        assert state(reopened) == after


def test_one_write_is_written_as_itself_and_an_empty_block_writes_nothing(
    tmp_path: Path,
) -> None:
    with snapkv.open(tmp_path, journal=True) as store:
        with store.transaction():
            pass
        assert journal_records(tmp_path) == []
        with store.transaction() as tx:
            tx.set("k", "v")
        assert journal_records(tmp_path) == [("set", 0, "k", "v", 0)]


def test_transactions_do_not_nest_and_refuse_lifecycle_calls(tmp_path: Path) -> None:
    with snapkv.open(tmp_path, journal=True) as store:
        store.set("k", "v")
        for call in (store.save, store.shutdown, store.restore, store.close, store.transaction):
            with pytest.raises(TransactionError, match="inside a transaction"):  # noqa: SIM117
                with store.transaction() as tx:
                    tx.set("k", "changed")
                    if call == store.transaction:
                        with call():
                            pass
                    else:
                        call()
            assert store.get("k") == "v"
        assert not store.closed


def test_a_refused_journal_write_undoes_the_block(tmp_path: Path) -> None:
    store = snapkv.open(tmp_path, journal=True)
    fill(store)
    before = state(store)
    store._writer._fail(OSError("disk gone"))  # as a failed write or fsync leaves it
    with pytest.raises(MediumError, match="disk gone"), store.transaction() as tx:
        mixed_writes(tx)
    assert state(store) == before
    # What the disk holds agrees: restore (which leaves the failed writer) finds the same.
    store.restore()
    assert state(store) == before
    store.close()


def test_a_shut_down_journaled_store_refuses_writes_in_a_transaction(tmp_path: Path) -> None:
    store = snapkv.open(tmp_path, journal=True)
    store.set("k", "v")
    store.shutdown()
    with (
        pytest.raises(StoreShutDownError, match=r"restore\(\) it before writing"),
        store.transaction() as tx,
    ):
        tx.set("x", "y")
    assert store.get("x") is None
    store.restore()
    assert store.get("k") == "v"
    store.close()


def test_other_writers_wait_for_the_transaction(tmp_path: Path) -> None:
    with snapkv.open(tmp_path, journal=True) as store:
        lock = store._lock = WatchedLock(store._lock)  # type: ignore[assignment]
        entered = threading.Event()
        release = threading.Event()
        seen: list[str | None] = []

        def transaction() -> None:
            with store.transaction() as tx:
                tx.set("k", "tx")
                entered.set()
                assert release.wait(10)
                tx.set("k2", "tx")

        def writer() -> None:
            assert entered.wait(10)
            store.set("k", "outside")
            seen.append(store.get("k2"))

        threads = [threading.Thread(target=transaction), threading.Thread(target=writer)]
        for thread in threads:
            thread.start()
        assert entered.wait(10)
        # The writer is blocked: its write cannot land inside the transaction.
        wait_until(
            lambda: lock.waiting.is_set() or not threads[1].is_alive(),
            what="the writer to wait for the store's lock or end",
        )
        assert lock.waiting.is_set() and threads[1].is_alive(), "the writer did not wait"
        release.set()
        for thread in threads:
            thread.join(10)
        assert seen == ["tx"]
        assert store.get("k") == "outside"


def test_memory_store_transactions_commit_and_roll_back() -> None:
    store = snapkv.Store()
    store.set("a", "1")
    with store.transaction() as tx:
        tx.set("a", "2")
        tx.db(3).set("b", "3")
    with pytest.raises(KeyError, match="missing"), store.transaction() as tx:
        tx.set("a", "3")
        del tx["missing"]
    assert store.get("a") == "2"
    assert store.db(3).get("b") == "3"
    store.shutdown()
    store.restore()
    assert store.get("a") == "2"


def test_a_transaction_does_not_wait_for_a_save_publishing_in_another_thread(
    tmp_path: Path,
) -> None:
    store = snapkv.open(tmp_path, journal=True, fsync="always")
    fill(store)
    publishing, release = threading.Event(), threading.Event()
    publish = store.medium.publish

    def slow_publish(pieces: object) -> None:
        publishing.set()
        assert release.wait(10)
        publish(pieces)  # type: ignore[arg-type]

    store.medium.publish = slow_publish  # type: ignore[method-assign]
    saver = threading.Thread(target=store.save)
    saver.start()
    assert publishing.wait(10)

    def transaction() -> None:
        with store.transaction() as tx:
            tx.set("during", "the save")
            tx.db(1).delete("b")

    worker = threading.Thread(target=transaction)
    worker.start()
    worker.join(10)
    committed = not worker.is_alive()
    release.set()
    saver.join(10)
    assert committed, "the transaction waited for the save's publish"
    expected = state(store)
    store.close()
    with snapkv.open(tmp_path, journal=True) as reopened:
        assert state(reopened) == expected


def test_a_save_that_starts_during_a_transaction_keeps_all_of_it(tmp_path: Path) -> None:
    # No background sweeper: the save is the only thread that can wait for the lock.
    store = snapkv.open(tmp_path, journal=True, fsync="always", sweep_interval=None)
    fill(store)
    lock = store._lock = WatchedLock(store._lock)  # type: ignore[assignment]
    saved = threading.Event()

    def save() -> None:
        store.save()
        saved.set()

    saver = threading.Thread(target=save)
    with store.transaction() as tx:
        tx.set("a", "in the transaction")
        saver.start()
        # The save prepares its next journal outside the lock, then waits.
        wait_until(
            lambda: lock.waiting.is_set() or not saver.is_alive(),
            what="the save to wait for the store's lock or end",
        )
        assert saver.is_alive(), "the save did not wait for the transaction"
        tx.db(2).set("late", "write")
    saver.join(10)
    assert saved.is_set()
    expected = state(store)
    store.close()
    with snapkv.open(tmp_path, journal=True) as reopened:
        assert state(reopened) == expected
        assert reopened.get("a") == "in the transaction"


def test_transactions_in_many_threads_never_interleave(tmp_path: Path) -> None:
    """Each transaction moves one unit between two keys: no locked read sees the sum change."""
    store = snapkv.open(tmp_path, journal=True, fsync="never")
    keys = [f"account:{i}" for i in range(8)]
    for key in keys:
        store.set(key, "100")
    sums: set[int] = set()
    errors: list[BaseException] = []
    done = threading.Event()

    def mover(seed: int) -> None:
        try:
            for step in range(300):
                a, b = keys[(seed + step) % 8], keys[(seed * 3 + step + 1) % 8]
                if a == b:
                    continue
                with store.transaction() as tx:
                    tx.set(a, str(int(tx[a]) - 1))
                    time.sleep(0)  # give other threads the chance to slip in (they must not)
                    tx.set(b, str(int(tx[b]) + 1))
                store.set(f"moved:{seed}", str(step))  # a plain write between transactions
        except BaseException as exc:  # reported below: a thread cannot raise to the test
            errors.append(exc)

    def auditor() -> None:
        while not done.is_set():
            # items() takes the lock: it must never land inside a transaction.
            sums.add(sum(int(v) for k, v in store.items() if k.startswith("account:")))
            time.sleep(0)

    movers = [threading.Thread(target=mover, args=(seed,)) for seed in range(4)]
    watcher = threading.Thread(target=auditor)
    watcher.start()
    for thread in movers:
        thread.start()
    for thread in movers:
        thread.join(60)
    done.set()
    watcher.join(60)
    assert not errors, errors
    assert sums == {800}
    expected = state(store)
    store.close()
    with snapkv.open(tmp_path, journal=True) as reopened:
        assert state(reopened) == expected


def _interrupt_at(code: types.CodeType, line: int) -> Callable[..., object]:
    """A trace function that raises KeyboardInterrupt once, at ``line`` of ``code``."""
    fired = False

    def local(frame: types.FrameType, event: str, _arg: object) -> object:
        nonlocal fired
        if event == "line" and frame.f_lineno == line and not fired:
            fired = True
            raise KeyboardInterrupt(f"line {line}")
        return local

    def tracer(frame: types.FrameType, _event: str, _arg: object) -> object:
        return local if frame.f_code is code else None

    return tracer


#: Instructions after which the interpreter may run a signal handler (it checks
#: for pending signals when a call returns, on resumption and on backward jumps).
_INTERRUPTIBLE = {"CALL", "CALL_FUNCTION_EX", "BEFORE_WITH", "YIELD_VALUE", "JUMP_BACKWARD"}


def _lines(function: Callable[..., object]) -> list[int]:
    """The lines of ``function`` where a real Ctrl-C can land: those that call something.

    A trace function can raise anywhere, even on a line of plain attribute
    stores or a ``try:`` NOP, where the interpreter never delivers a signal;
    those lines are left out.
    """
    return sorted(
        {
            instruction.positions.lineno
            for instruction in dis.get_instructions(function)
            if instruction.opname in _INTERRUPTIBLE
            and instruction.positions is not None
            and instruction.positions.lineno is not None
        }
    )


TRANSACTION = snapkv.Store.transaction.__wrapped__  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("function", "line"),
    [(TRANSACTION, line) for line in _lines(TRANSACTION)]
    + [(jr.JournalWriter.append, line) for line in _lines(jr.JournalWriter.append)],
    ids=lambda value: getattr(value, "__qualname__", str(value)),
)
def test_an_interrupt_at_any_line_leaves_memory_and_journal_agreeing(
    tmp_path: Path, function: Callable[..., object], line: int
) -> None:
    """Ctrl-C anywhere in transaction() or in its journal append: all or nothing, and agreed.

    Afterwards the store is itself again (its own writer and lock), a later
    acknowledged write is in the journal, and the disk holds exactly what memory
    holds: the transaction in both, or in neither.
    """
    store = snapkv.open(tmp_path, journal=True, fsync="always", sweep_interval=None)
    fill(store)
    writer, lock = store._writer, store._lock
    sys.settrace(_interrupt_at(function.__code__, line))
    try:
        with store.transaction() as tx:
            mixed_writes(tx)
    except KeyboardInterrupt:
        pass
    finally:
        sys.settrace(None)
    assert (store._writer, store._lock, store._tx_thread) == (writer, lock, None)
    assert not lock.locked()
    if writer.failure is None:
        store.set("after", "acknowledged")
    else:
        # Interrupted inside the journal write: in doubt, as any interrupted
        # write. The writer refuses until save() makes memory durable.
        with pytest.raises(MediumError, match="refuses writes after an earlier failure"):
            store.set("after", "refused")
        store.save()
    expected = state(store)
    store.close()
    with snapkv.open(tmp_path, journal=True, sweep_interval=None) as reopened:
        assert state(reopened) == expected


def test_a_transaction_too_large_for_one_record_is_refused_and_undone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The format's limit is a u32 body (4 GiB); a small one stands in for it.
    monkeypatch.setattr(snapkv.transaction, "_MAX_BODY", 200)
    with snapkv.open(tmp_path, journal=True) as store:
        fill(store)
        before, records = state(store), journal_records(tmp_path)
        with pytest.raises(TransactionError, match="more than one journal record holds"):  # noqa: SIM117
            with store.transaction() as tx:
                for i in range(20):
                    tx.set(f"key{i}", "value")
        assert state(store) == before
        assert journal_records(tmp_path) == records
