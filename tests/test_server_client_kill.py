"""CLIENT KILL's USER and TYPE filters over real connections, as Redis 7.0's clientKillCommand."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from conftest import Twin
from support import wait_until
from test_server_e2e import Running, serve  # noqa: F401 - the fixture

redis = pytest.importorskip("redis")


def test_kill_user_closes_that_users_connections_only(
    serve: Callable[..., Running],  # noqa: F811
) -> None:
    running = serve()
    admin = running.client()
    admin.execute_command("ACL", "SETUSER", "worker", "on", ">pw", "+@all", "~*")
    worker = running.client(username="worker", password="pw")
    assert worker.ping()
    bystander = running.client()
    assert bystander.ping()
    with pytest.raises(redis.ResponseError, match="No such user 'nobody'"):
        admin.execute_command("CLIENT", "KILL", "USER", "nobody")
    assert admin.execute_command("CLIENT", "KILL", "USER", "worker") == 1
    wait_until(
        lambda: "user=worker" not in admin.execute_command("CLIENT", "LIST").decode(),
        what="the worker's connection closed",
    )
    assert bystander.ping()


def test_type_filters_name_what_each_client_is(serve: Callable[..., Running]) -> None:  # noqa: F811
    running = serve()
    admin = running.client()
    subscriber = running.client().pubsub()
    subscriber.subscribe("c")
    subscriber.get_message(timeout=1)
    listed = admin.execute_command("CLIENT", "LIST", "TYPE", "pubsub").decode()
    assert listed.count("\n") == 1 and "flags=P" in listed
    assert admin.execute_command("CLIENT", "LIST", "TYPE", "replica") == b""
    assert admin.execute_command("CLIENT", "KILL", "TYPE", "replica", "SKIPME", "no") == 0
    assert admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub") == 1
    assert admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes") == 0
    subscriber.close()


@pytest.mark.parametrize(
    "argv",
    [
        ("CLIENT", "KILL", "MAXAGE", "0"),  # Redis 7.4's filter: 7.0 knows no such option
        ("CLIENT", "KILL", "SKIPME", "no", "MAXAGE", "1"),
        ("CLIENT", "LIST", "ID", "0", "-5"),  # no such client: nothing listed, no error
        ("CLIENT", "LIST", "ID", "x"),
        ("CLIENT", "KILL", "ID", "0"),
        ("CLIENT", "KILL", "TYPE", "nosuch"),
    ],
)
def test_filters_refused_as_redis_7_0_refuses_them(twin: Twin, argv: tuple[str, ...]) -> None:
    twin.same(*argv)
