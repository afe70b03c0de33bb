"""CONFIG SET appendfsync switches the journal's fsync policy while the server runs (Redis 7.0).

The Store rotates to a new journal under the new policy (``Store.set_fsync``),
and the network layer starts or stops holding replies for the group sync of
``appendfsync always``. Nothing acknowledged before or after is lost.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import snapkv
from snapkv import Store
from snapkv.server import Config, open_for
from snapkv.server.client import Client
from snapkv.server.dispatch import Dispatcher
from support import wait_until
from test_server_e2e import Running


def journals(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.glob("journal-*.skj"))


def test_set_fsync_rotates_to_a_journal_under_the_new_policy(tmp_path: Path) -> None:
    store = snapkv.open(tmp_path, journal=True, fsync="everysec")
    try:
        store.set("a", "1")
        before = journals(tmp_path)
        store.set_fsync("no")
        assert store.fsync == "no"
        assert len(journals(tmp_path)) == len(before) + 1
        store.set_fsync("no")  # the current policy: nothing to do
        assert len(journals(tmp_path)) == len(before) + 1
        store.set("b", "2")
        store.set_fsync("always")
        store.set("c", "3")
        with pytest.raises(ValueError, match="fsync must be one of"):
            store.set_fsync("sometimes")
    finally:
        store.close()
    with snapkv.open(tmp_path, journal=True) as reopened:
        assert dict(reopened.items()) == {"a": "1", "b": "2", "c": "3"}


def test_a_store_without_a_journal_has_no_policy_to_switch() -> None:
    store = Store()
    try:
        with pytest.raises(ValueError, match="no journal"):
            store.set_fsync("always")
    finally:
        store.close()


def test_config_set_appendfsync_switches_the_store_and_the_group_sync(tmp_path: Path) -> None:
    config = Config(dir=str(tmp_path), appendonly=True, appendfsync="everysec")
    store = open_for(config)
    try:
        server = Dispatcher(store, config)
        told: list[bool] = []
        server.group_sync_changed = told.append
        client = Client(server)
        server.add_client(client)
        assert server.execute(client, ["CONFIG", "SET", "appendfsync", "always"]) == b"+OK\r\n"
        # The server fsyncs itself once per loop turn: the Store's writer does not.
        assert (store.fsync, told) == ("no", [True])
        assert server.execute(client, ["CONFIG", "GET", "appendfsync"]) == (
            b"*2\r\n$11\r\nappendfsync\r\n$6\r\nalways\r\n"
        )
        assert server.execute(client, ["CONFIG", "SET", "appendfsync", "no"]) == b"+OK\r\n"
        assert (store.fsync, told) == ("no", [True, False])
        assert server.execute(client, ["CONFIG", "SET", "appendfsync", "everysec"]) == b"+OK\r\n"
        assert (store.fsync, told) == ("everysec", [True, False, False])
        assert server.execute(client, ["SET", "k", "v"]) == b"+OK\r\n"
    finally:
        store.close()
    with snapkv.open(tmp_path, journal=True) as reopened:
        assert reopened.get("k") == "v"


def test_without_a_journal_the_value_is_kept_for_show(tmp_path: Path) -> None:
    store = Store()
    try:
        server = Dispatcher(store, Config())
        client = Client(server)
        server.add_client(client)
        assert server.execute(client, ["CONFIG", "SET", "appendfsync", "no"]) == b"+OK\r\n"
        assert server.config.appendfsync == "no"
        assert store.fsync == "everysec"  # the journal-less Store's default, untouched
    finally:
        store.close()


def test_a_running_server_group_syncs_only_under_always(tmp_path: Path) -> None:
    config = Config(port=0, dir=str(tmp_path), appendonly=True, appendfsync="everysec")
    store = open_for(config)
    running = Running(store, config)
    try:
        r = running.client()
        r.set("a", "1")
        assert running.call(lambda: running.server.syncs) == 0
        assert r.config_set("appendfsync", "always")
        r.set("b", "2")  # held until the group sync, then acknowledged
        syncs = running.call(lambda: running.server.syncs)
        assert syncs >= 1
        assert r.config_set("appendfsync", "no")
        r.set("c", "3")
        assert r.get("c") == b"3"
        assert running.call(lambda: running.server.syncs) == syncs
    finally:
        running.stop()
        store.close()
    with snapkv.open(tmp_path, journal=True) as reopened:
        assert dict(reopened.items()) == {"a": "1", "b": "2", "c": "3"}


def test_a_write_pipelined_after_the_switch_to_always_waits_for_its_sync(tmp_path: Path) -> None:
    """CONFIG SET appendfsync always and a SET in one batch: the SET's reply is held."""
    config = Config(port=0, dir=str(tmp_path), appendonly=True, appendfsync="everysec")
    store = open_for(config)
    running = Running(store, config)
    try:
        r = running.client()
        r.ping()
        pipe = r.pipeline(transaction=False)
        pipe.config_set("appendfsync", "always")
        pipe.set("x", "1")
        assert pipe.execute() == [True, True]
        assert running.call(lambda: running.server.syncs) >= 1
    finally:
        running.stop()
        store.close()


def test_switching_often_still_compacts(tmp_path: Path) -> None:
    """Each switch starts a journal; compaction still counts what the old ones hold."""
    store = snapkv.open(tmp_path, compact_min_bytes=50_000, sweep_interval=None)
    try:
        for round_ in range(40):
            for i in range(30):
                store.set("k", f"{round_}:{i}:" + "v" * 100)
            store.set_fsync("no" if round_ % 2 == 0 else "everysec")
        wait_until(lambda: not store._compacting, what="the compaction to end")
        # ~144 KB of records in 40 journals of ~4 KB each: compactions ran
        # (a snapshot exists) and pruned journals no retained snapshot needs.
        assert list(tmp_path.glob("snapshot-*.skv"))
        assert len(list(tmp_path.glob("journal-*.skj"))) < 40
    finally:
        store.close()
    with snapkv.open(tmp_path) as reopened:
        assert reopened["k"] == "39:29:" + "v" * 100


def test_config_set_appendfsync_inside_multi_switches_after_exec(tmp_path: Path) -> None:
    """As Redis: MULTI, CONFIG SET appendfsync, EXEC replies OK and the policy changes."""
    config = Config(dir=str(tmp_path), appendonly=True, appendfsync="everysec")
    store = open_for(config)
    try:
        server = Dispatcher(store, config)
        told: list[bool] = []
        server.group_sync_changed = told.append
        client = Client(server)
        server.add_client(client)
        assert server.execute(client, ["MULTI"]) == b"+OK\r\n"
        assert server.execute(client, ["CONFIG", "SET", "appendfsync", "always"]) == b"+QUEUED\r\n"
        assert server.execute(client, ["SET", "k", "v"]) == b"+QUEUED\r\n"
        assert server.execute(client, ["EXEC"]) == b"*2\r\n+OK\r\n+OK\r\n"
        assert (store.fsync, told, config.appendfsync) == ("no", [True], "always")
        assert server.execute(client, ["SET", "k2", "v2"]) == b"+OK\r\n"
    finally:
        store.close()
    with snapkv.open(tmp_path, journal=True) as reopened:
        assert (reopened.get("k"), reopened.get("k2")) == ("v", "v2")
