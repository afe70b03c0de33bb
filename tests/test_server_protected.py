"""Protected mode: clients beyond loopback refused with Redis's DENIED while no password is set.

A client that is not on loopback needs an address of this machine that is
not 127.0.0.1: the server binds 127.0.0.1 *and* that address, and the
client connects from it. The real redis-server, bound the same way, must
answer the same bytes.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from reference import redis_server
from snapkv.server.protected import DENIED
from snapkv.server.state import Config
from snapkv.store import Store
from test_server_e2e import DEADLINE, Running, read_until_closed


def _outside_address() -> str | None:
    """An address of this machine beyond loopback that can be bound, or None."""
    candidates = []
    with contextlib.suppress(OSError):
        candidates.append(socket.gethostbyname(socket.gethostname()))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:  # a UDP "connection" sends nothing: it only picks the outgoing address
            probe.connect(("192.0.2.254", 9))
            candidates.append(probe.getsockname()[0])
        except OSError:
            pass
    for address in candidates:
        if address.startswith("127.") or address == "0.0.0.0":
            continue
        with socket.socket() as sock:
            try:
                sock.bind((address, 0))
            except OSError:
                continue
        return address
    return None


OUTSIDE = _outside_address()
needs_outside = pytest.mark.skipif(
    OUTSIDE is None, reason="this machine has no address beyond loopback to connect from"
)


@pytest.fixture
def serve() -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(**config: Any) -> Running:
        running = Running(Store(), Config(port=0, **config))
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


def _hello(port: int, host: str, source: str) -> bytes:
    """Connect from ``source`` to ``host:port`` and read until the server closes.

    Nothing is sent: the refusal comes unasked, and a request the server
    never reads would make its close a reset that can discard the reply.
    """
    with socket.socket() as sock:
        sock.settimeout(DEADLINE)
        sock.bind((source, 0))
        sock.connect((host, port))
        return read_until_closed(sock)


def _first_reply(port: int, host: str, source: str) -> bytes:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.settimeout(DEADLINE)
        sock.bind((source, 0))
        sock.connect((host, port))
        sock.sendall(b"PING\r\n")
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
        return data


@needs_outside
def test_a_client_beyond_loopback_is_denied_as_by_redis(
    serve: Callable[..., Running], tmp_path: Path
) -> None:
    assert OUTSIDE is not None
    running = serve(host=f"127.0.0.1 {OUTSIDE}")
    ours = _hello(running.port, OUTSIDE, OUTSIDE)
    assert ours == DENIED
    with redis_server(tmp_path, "--bind", f"127.0.0.1 {OUTSIDE}") as port:
        assert _hello(port, OUTSIDE, OUTSIDE) == ours  # the same bytes, then closed
    local = running.client()
    assert local.ping()  # 127.0.0.1 is served
    assert local.info("stats")["rejected_connections"] == 1


def test_only_127_0_0_1_and_not_all_of_127_slash_8_is_local_as_in_redis_7_0(
    serve: Callable[..., Running], tmp_path: Path
) -> None:
    running = serve()
    try:
        ours = _hello(running.port, "127.0.0.1", "127.0.0.2")
    except OSError as exc:
        pytest.skip(f"cannot connect from 127.0.0.2: {exc}")
    with redis_server(tmp_path) as port:
        assert _hello(port, "127.0.0.1", "127.0.0.2") == ours == DENIED


@needs_outside
def test_a_password_or_protected_mode_off_lets_outside_clients_in(
    serve: Callable[..., Running],
) -> None:
    assert OUTSIDE is not None
    running = serve(host=f"127.0.0.1 {OUTSIDE}", requirepass="pw")
    assert _first_reply(running.port, OUTSIDE, OUTSIDE).startswith(b"-NOAUTH")
    outside = redis.Redis(host=OUTSIDE, port=running.port, password="pw", socket_timeout=DEADLINE)
    running.resources.append(outside)
    assert outside.ping()
    # No password, then protected mode off (from loopback): served too.
    local = running.client(password="pw")
    assert local.config_set("requirepass", "")
    assert _hello(running.port, OUTSIDE, OUTSIDE) == DENIED
    assert local.config_set("protected-mode", "no")
    assert _first_reply(running.port, OUTSIDE, OUTSIDE) == b"+PONG\r\n"
    assert local.config_get("protected-mode") == {"protected-mode": "no"}


@needs_outside
def test_protected_mode_applies_on_the_tls_port_too(
    serve: Callable[..., Running], tmp_path: Path
) -> None:
    trustme = pytest.importorskip("trustme")
    assert OUTSIDE is not None
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", OUTSIDE)
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        tls_port = sock.getsockname()[1]
    serve(
        host=f"127.0.0.1 {OUTSIDE}",
        tls_port=tls_port,
        tls_cert_file=str(tmp_path / "cert.pem"),
        tls_key_file=str(tmp_path / "key.pem"),
        tls_auth_clients="no",
    )
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with socket.socket() as raw:
        raw.settimeout(DEADLINE)
        raw.bind((OUTSIDE, 0))
        raw.connect((OUTSIDE, tls_port))
        with context.wrap_socket(raw, server_hostname=OUTSIDE) as tls:
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
    assert data == DENIED


@needs_outside
def test_a_password_given_to_the_default_user_by_acl_counts_too(
    serve: Callable[..., Running],
) -> None:
    assert OUTSIDE is not None
    running = serve(host=f"127.0.0.1 {OUTSIDE}")
    local = running.client()
    assert _hello(running.port, OUTSIDE, OUTSIDE) == DENIED
    local.execute_command("ACL", "SETUSER", "default", "resetpass", ">s3cret")
    assert _first_reply(running.port, OUTSIDE, OUTSIDE).startswith(b"-NOAUTH")
    local.execute_command("ACL", "SETUSER", "default", "nopass")
    assert _hello(running.port, OUTSIDE, OUTSIDE) == DENIED


def test_a_denied_client_is_not_logged_as_a_maxclients_refusal(
    serve: Callable[..., Running], caplog: pytest.LogCaptureFixture
) -> None:
    """Both count in ``rejected_connections``; the log must not send the operator to
    ``maxclients`` when protected mode refused someone (the server's once-a-second line)."""
    running = serve()
    try:
        assert _hello(running.port, "127.0.0.1", "127.0.0.2") == DENIED
    except OSError as exc:
        pytest.skip(f"cannot connect from 127.0.0.2: {exc}")
    caplog.set_level(logging.INFO, logger="snapkv")
    deadline = time.monotonic() + DEADLINE
    while "protected mode" not in caplog.text:  # the server's tick, once a second
        assert time.monotonic() < deadline, caplog.text
        time.sleep(0.05)
    assert "maxclients" not in caplog.text, caplog.text
    assert "refused 1 connection(s) beyond loopback: protected mode" in caplog.text


def test_ipv6_loopback_is_local(serve: Callable[..., Running]) -> None:
    """::1 is the other address Redis 7.0 lets in; IPv6 listeners are IPv6 only (as
    Redis's), so an IPv4 client never arrives as ::ffff:127.0.0.1 to be refused."""
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    running = serve(host="::1")
    assert _first_reply(running.port, "::1", "::1") == b"+PONG\r\n"
    with socket.socket() as v4, pytest.raises(ConnectionRefusedError):
        v4.settimeout(DEADLINE)
        v4.connect(("127.0.0.1", running.port))
