"""TLS on ``tls-port``: real clients (redis-py, redis-cli) with certificates made per run.

trustme makes a CA, the server's certificate and a client certificate, and
a second, unrelated CA whose certificates the server must not trust. Each
test runs a real :class:`RespServer` (asyncio and uvloop) and real TLS.
"""

from __future__ import annotations

import datetime
import gc
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from snapkv.server import network
from snapkv.server.conf import ConfigError
from snapkv.server.state import Config
from snapkv.server.tls import ReloadableContext, build_context
from snapkv.store import Store

trustme = pytest.importorskip("trustme")

from test_server_e2e import DEADLINE, Running, tool  # noqa: E402

LOOPS = ["asyncio", "uvloop"]


@dataclass
class Pki:
    ca: Path
    cert: Path
    key: Path
    client: Path  # the client's key and certificate, one PEM
    other_ca: Path  # a CA the server does not trust
    other_cert: Path
    other_key: Path
    other_client: Path
    second_cert: Path  # another certificate for the server, from the trusted CA
    second_key: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    where = tmp_path_factory.mktemp("pki")
    paths: dict[str, Path] = {}

    def write(name: str, blob: Any) -> None:
        paths[name] = where / f"{name}.pem"
        blob.write_to_path(str(paths[name]))

    for prefix, ca in (("", trustme.CA()), ("other_", trustme.CA())):
        write(f"{prefix}ca", ca.cert_pem)
        server = ca.issue_cert("127.0.0.1", "localhost")
        write(f"{prefix}cert", server.cert_chain_pems[0])
        write(f"{prefix}key", server.private_key_pem)
        write(f"{prefix}client", ca.issue_cert("client@example").private_key_and_cert_chain_pem)
        if not prefix:
            second = ca.issue_cert("127.0.0.1", "second.example")
            write("second_cert", second.cert_chain_pems[0])
            write("second_key", second.private_key_pem)
    return Pki(**paths)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def tls_serve(pki: Pki) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(loop: str = "asyncio", **config: Any) -> Running:
        settings: dict[str, Any] = {
            "port": 0,
            "tls_port": _free_port(),
            "tls_cert_file": str(pki.cert),
            "tls_key_file": str(pki.key),
            "tls_ca_cert_file": str(pki.ca),
            **config,
        }
        running = Running(Store(), Config(**settings), loop)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


def _client(running: Running, pki: Pki, *, cert: Path | None = None, **kwargs: Any) -> Any:
    options: dict[str, Any] = {"ssl_ca_certs": str(kwargs.pop("ca", pki.ca))}
    if cert is not None:
        options.update(ssl_certfile=str(cert), ssl_keyfile=str(cert))
    client = redis.Redis(
        port=running.server.tls_port,
        ssl=True,
        socket_timeout=DEADLINE,
        retry=Retry(NoBackoff(), 0),  # a refused handshake is the answer, not a hiccup
        **options,
        **kwargs,
    )
    running.resources.append(client)
    return client


def _served_cert(port: int, pki: Pki) -> dict[str, Any]:
    """The certificate the server presents to a new connection (verified against the CA)."""
    context = ssl.create_default_context(cafile=str(pki.ca))
    context.load_cert_chain(str(pki.client))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        cert = tls.getpeercert()
        assert cert is not None
        return cert


def _names(cert: dict[str, Any]) -> set[str]:
    return {value for _kind, value in cert.get("subjectAltName", ())}


# ------------------------------------------------------------------ clients


@pytest.mark.parametrize("loop", LOOPS)
def test_redis_py_with_a_client_certificate(
    tls_serve: Callable[..., Running], pki: Pki, loop: str
) -> None:
    running = tls_serve(loop)
    client = _client(running, pki, cert=pki.client)
    assert client.set("k", "v") and client.get("k") == b"v"
    # CLIENT LIST and INFO see the TLS client's addresses like any other's.
    (entry,) = client.client_list()
    assert entry["addr"].startswith("127.0.0.1:")
    assert entry["laddr"] == f"127.0.0.1:{running.server.tls_port}"
    assert client.client_info()["laddr"] == entry["laddr"]


def test_rediss_url_and_resp3(tls_serve: Callable[..., Running], pki: Pki) -> None:
    running = tls_serve()
    client = redis.Redis.from_url(
        f"rediss://127.0.0.1:{running.server.tls_port}/2",
        ssl_ca_certs=str(pki.ca),
        ssl_certfile=str(pki.client),
        ssl_keyfile=str(pki.client),
        protocol=3,
        socket_timeout=DEADLINE,
    )
    running.resources.append(client)
    assert client.hset("h", mapping={"a": "1"}) == 1
    assert client.hgetall("h") == {b"a": b"1"}
    assert str(client.client_info()["db"]) == "2"


def test_redis_cli_tls(tls_serve: Callable[..., Running], pki: Pki) -> None:
    cli = tool("redis-cli")
    running = tls_serve()
    base = [cli, "-p", str(running.server.tls_port), "--tls", "--cacert", str(pki.ca)]
    identity = ["--cert", str(pki.client), "--key", str(pki.client)]
    done = subprocess.run(
        [*base, *identity, "SET", "via", "cli"],
        check=False,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert done.stdout.strip() == "OK", done.stderr
    done = subprocess.run(
        [*base, *identity, "GET", "via"],
        check=False,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert done.stdout.strip() == "cli"
    # No client certificate while tls-auth-clients is yes: no answer.
    done = subprocess.run(
        [*base, "PING"], check=False, capture_output=True, text=True, timeout=DEADLINE
    )
    assert "PONG" not in done.stdout


# ------------------------------------------------------------- mutual TLS


@pytest.mark.parametrize("loop", LOOPS)
def test_auth_clients_yes_refuses_a_client_without_a_certificate(
    tls_serve: Callable[..., Running], pki: Pki, loop: str, caplog: pytest.LogCaptureFixture
) -> None:
    running = tls_serve(loop)
    with pytest.raises(redis.ConnectionError):
        _client(running, pki).ping()
    with pytest.raises(redis.ConnectionError):  # a certificate from a CA it does not trust
        _client(running, pki, cert=pki.other_client).ping()
    assert _client(running, pki, cert=pki.client).ping()  # still serving
    assert not [r for r in caplog.records if r.levelno >= 30 or r.exc_info], caplog.text


def test_auth_clients_optional_checks_a_certificate_only_when_sent(
    tls_serve: Callable[..., Running], pki: Pki
) -> None:
    running = tls_serve(tls_auth_clients="optional")
    assert _client(running, pki).ping()
    assert _client(running, pki, cert=pki.client).ping()
    with pytest.raises(redis.ConnectionError):
        _client(running, pki, cert=pki.other_client).ping()


def test_auth_clients_no_needs_no_ca(tls_serve: Callable[..., Running], pki: Pki) -> None:
    running = tls_serve(tls_auth_clients="no", tls_ca_cert_file="")
    assert _client(running, pki).ping()


def test_a_ca_directory_instead_of_a_file(
    tls_serve: Callable[..., Running], pki: Pki, tmp_path: Path
) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl (to hash the CA directory) is not on PATH")
    cas = tmp_path / "cas"
    cas.mkdir()
    shutil.copy(pki.ca, cas / "ca.pem")
    subprocess.run([openssl, "rehash", str(cas)], check=True, capture_output=True)
    running = tls_serve(tls_ca_cert_file="", tls_ca_cert_dir=str(cas))
    assert _client(running, pki, cert=pki.client).ping()
    with pytest.raises(redis.ConnectionError):
        _client(running, pki, cert=pki.other_client).ping()


def test_a_client_that_does_not_trust_the_servers_ca_is_refused(
    tls_serve: Callable[..., Running], pki: Pki
) -> None:
    running = tls_serve(tls_auth_clients="no")
    with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
        _client(running, pki, ca=pki.other_ca).ping()


def test_protocols_and_ciphers(tls_serve: Callable[..., Running], pki: Pki) -> None:
    running = tls_serve(tls_protocols="TLSv1.2", tls_ciphers="ECDHE-ECDSA-AES128-GCM-SHA256")
    context = ssl.create_default_context(cafile=str(pki.ca))
    context.load_cert_chain(str(pki.client))
    port = running.server.tls_port
    with (
        socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.version() == "TLSv1.2"
        cipher = tls.cipher()
        assert cipher is not None and cipher[0] == "ECDHE-ECDSA-AES128-GCM-SHA256"
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    with (
        socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as raw,
        pytest.raises(ssl.SSLError),
    ):
        context.wrap_socket(raw, server_hostname="127.0.0.1")


# --------------------------------------------------- what is not TLS at all


@pytest.mark.parametrize("loop", LOOPS)
def test_plaintext_on_the_tls_port_is_closed_cleanly(
    tls_serve: Callable[..., Running], pki: Pki, loop: str, caplog: pytest.LogCaptureFixture
) -> None:
    running = tls_serve(loop)
    with socket.create_connection(("127.0.0.1", running.server.tls_port), timeout=DEADLINE) as raw:
        raw.sendall(b"*1\r\n$4\r\nPING\r\n")
        started = time.monotonic()
        data = b""
        while chunk := raw.recv(4096):  # closed: EOF (perhaps after a TLS alert)
            data += chunk
        assert time.monotonic() - started < DEADLINE / 2
    assert b"PONG" not in data
    assert _client(running, pki, cert=pki.client).ping()
    assert not [r for r in caplog.records if r.levelno >= 30 or r.exc_info], caplog.text


@pytest.mark.parametrize("loop", LOOPS)
def test_a_client_that_never_finishes_its_handshake_is_dropped(
    tls_serve: Callable[..., Running],
    pki: Pki,
    monkeypatch: pytest.MonkeyPatch,
    loop: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # (not much less: the timeout applies to the client that checks the server still serves,
    # whose handshake may take a few hundred milliseconds on a loaded machine)
    monkeypatch.setattr(network, "TLS_HANDSHAKE_TIMEOUT", 1.0)
    running = tls_serve(loop)
    with socket.create_connection(("127.0.0.1", running.server.tls_port), timeout=DEADLINE) as raw:
        started = time.monotonic()
        assert raw.recv(4096) == b""  # the server hangs up; nothing was ever sent
        assert 0.9 <= time.monotonic() - started < DEADLINE / 2
    assert _client(running, pki, cert=pki.client).ping()
    assert not [r for r in caplog.records if r.levelno >= 30 or r.exc_info], caplog.text


def test_port_0_serves_tls_only(tls_serve: Callable[..., Running], pki: Pki) -> None:
    running = tls_serve()
    server = running.server
    assert server.port == 0 and server.listening == []
    assert server.listening_tls == [f"127.0.0.1:{server.tls_port}"]


def test_tls_beside_plaintext(tls_serve: Callable[..., Running], pki: Pki) -> None:
    running = tls_serve(port=_free_port())
    plain = redis.Redis(port=running.server.port, socket_timeout=DEADLINE)
    running.resources.append(plain)
    plain.set("shared", "yes")
    assert _client(running, pki, cert=pki.client).get("shared") == b"yes"


# --------------------------------------------------------------- hot reload


@pytest.mark.parametrize("loop", LOOPS)
def test_config_set_reloads_the_certificate_for_new_connections(
    tls_serve: Callable[..., Running], pki: Pki, loop: str
) -> None:
    running = tls_serve(loop)
    port = running.server.tls_port
    old = _client(running, pki, cert=pki.client)
    assert old.ping()
    assert "localhost" in _names(_served_cert(port, pki))
    assert old.config_set(
        "tls-cert-file", str(pki.second_cert), "tls-key-file", str(pki.second_key)
    )
    assert "second.example" in _names(_served_cert(port, pki))
    assert old.ping()  # the connection made before the reload goes on
    assert old.config_get("tls-cert-file") == {"tls-cert-file": str(pki.second_cert)}


def test_a_reload_that_fails_keeps_the_old_context(
    tls_serve: Callable[..., Running], pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    running = tls_serve()
    client = _client(running, pki, cert=pki.client)
    failed = (
        "CONFIG SET failed (possibly related to argument 'tls-key-file') - Unable to update "
        "TLS configuration. Check server logs."
    )
    # A key that does not match the certificate: nothing changes, Redis's error.
    with pytest.raises(redis.ResponseError) as refused:
        client.config_set("tls-key-file", str(pki.other_key))
    assert str(refused.value) == failed
    assert "does not match the certificate" in caplog.text
    assert client.config_get("tls-key-file") == {"tls-key-file": str(pki.key)}
    # Both new files at once, one missing: all or nothing.
    with pytest.raises(redis.ResponseError):
        client.config_set("tls-cert-file", str(pki.second_cert), "tls-key-file", "/nonexistent")
    assert client.config_get("tls-cert-file") == {"tls-cert-file": str(pki.cert)}
    assert "localhost" in _names(_served_cert(running.server.tls_port, pki))
    with pytest.raises(redis.ResponseError, match="tls-protocols"):
        client.config_set("tls-protocols", "TLSv9")
    with pytest.raises(redis.ResponseError, match="cannot be set"):
        client.config_set("tls-ciphersuites", "TLS_AES_128_GCM_SHA256")
    with pytest.raises(redis.ResponseError, match="can't change tls-port"):
        client.config_set("tls-port", "1")


def test_config_set_auth_clients_applies_to_new_connections(
    tls_serve: Callable[..., Running], pki: Pki
) -> None:
    running = tls_serve()
    admin = _client(running, pki, cert=pki.client)
    with pytest.raises(redis.ConnectionError):
        _client(running, pki).ping()
    assert admin.config_set("tls-auth-clients", "optional")
    assert _client(running, pki).ping()


# -------------------------------------------------------- start-up errors


def _config(pki: Pki, **changes: Any) -> Config:
    settings: dict[str, Any] = {
        "tls_port": 1,
        "tls_cert_file": str(pki.cert),
        "tls_key_file": str(pki.key),
        "tls_ca_cert_file": str(pki.ca),
    }
    return Config(**{**settings, **changes})


def test_start_up_errors_name_the_file_and_the_problem(pki: Pki, tmp_path: Path) -> None:
    assert build_context(_config(pki)).verify_mode == ssl.CERT_REQUIRED
    cases = {
        "No tls-key-file configured!": {"tls_key_file": ""},
        f"tls-key-file {tmp_path / 'nokey.pem'}: cannot be read": {
            "tls_key_file": str(tmp_path / "nokey.pem")
        },
        f"Failed to load certificate: {pki.key}: no PEM certificate": {
            "tls_cert_file": str(pki.key)
        },
        f"{pki.other_key}: it does not match the certificate in {pki.cert}": {
            "tls_key_file": str(pki.other_key)
        },
        f"Failed to load private key: {pki.ca}: no PEM private key": {"tls_key_file": str(pki.ca)},
        "Either tls-ca-cert-file or tls-ca-cert-dir must be specified": {"tls_ca_cert_file": ""},
        "Invalid tls-protocols specified": {"tls_protocols": "TLSv1.2 SSLv3"},
        "leaves a version out": {"tls_protocols": "TLSv1.1 TLSv1.3"},
        "Failed to configure ciphers: NOPE": {"tls_ciphers": "NOPE"},
    }
    for expected, changes in cases.items():
        with pytest.raises(ConfigError) as refused:
            build_context(_config(pki, **changes))
        assert expected in str(refused.value), (changes, str(refused.value))


def test_an_encrypted_key_needs_its_passphrase(pki: Pki, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization  # installed with trustme

    key = serialization.load_pem_private_key(pki.key.read_bytes(), password=None)
    locked = tmp_path / "locked.pem"
    locked.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"s3cret"),
        )
    )
    good = build_context(_config(pki, tls_key_file=str(locked), tls_key_file_pass="s3cret"))
    assert good.verify_mode == ssl.CERT_REQUIRED
    for passphrase, problem in (("wrong", "is wrong"), ("", "is not set (tls-key-file-pass)")):
        with pytest.raises(
            ConfigError, match=re.escape(f"it is encrypted and its passphrase {problem}")
        ):
            build_context(_config(pki, tls_key_file=str(locked), tls_key_file_pass=passphrase))


def test_snapkv_serve_options_tls_only(pki: Pki, tmp_path: Path) -> None:
    """``snapkv serve --port 0 --tls-port ...``: the options come from the settings table."""
    cli = tool("redis-cli")
    port = _free_port()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "snapkv", "serve", "--port", "0", "--tls-port", str(port)),
            *("--tls-cert-file", str(pki.cert), "--tls-key-file", str(pki.key)),
            *("--tls-ca-cert-file", str(pki.ca), "--tls-auth-clients", "optional"),
            *("--dir", "", "--save", "", "--appendonly", "no", "--pidfile", ""),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = [cli, "-p", str(port), "--tls", "--cacert", str(pki.ca)]
        deadline = time.monotonic() + DEADLINE
        while True:
            done = subprocess.run(
                [*base, "PING"], check=False, capture_output=True, text=True, timeout=5
            )
            if done.stdout.strip() == "PONG" or time.monotonic() > deadline:
                break
            assert process.poll() is None, process.communicate()[0]
            time.sleep(0.05)  # polling for the start, with a deadline
        assert done.stdout.strip() == "PONG", done.stderr
        info = subprocess.run(
            [*base, "CONFIG", "GET", "tls-*"],
            check=False,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.split()
        assert info[info.index("tls-port") + 1] == str(port)
        assert info[info.index("tls-auth-clients") + 1] == "optional"
        subprocess.run([*base, "SHUTDOWN", "NOSAVE"], check=False, capture_output=True, timeout=5)
        out, _ = process.communicate(timeout=DEADLINE)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, out
    assert f"127.0.0.1:{port} (TLS)" in out


def test_snapkv_serve_refuses_to_start_with_a_wrong_key(pki: Pki, tmp_path: Path) -> None:
    logfile = tmp_path / "snapkv.log"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "snapkv", "serve", "--port", "0"),
            *("--tls-port", str(_free_port()), "--tls-cert-file", str(pki.cert)),
            *("--tls-key-file", str(pki.other_key), "--tls-auth-clients", "no"),
            *("--dir", str(tmp_path / "data"), "--logfile", str(logfile)),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert done.returncode == 2
    assert (
        f"Failed to load private key: {pki.other_key}: it does not match the certificate in "
        f"{pki.cert}" in done.stderr
    )
    # the log says it too: under a service manager the log file may be all one reads
    assert f"cannot configure TLS: Failed to load private key: {pki.other_key}" in (
        logfile.read_text()
    )
    # found before the data directory is opened (a long load first would waste it), as Redis
    assert not (tmp_path / "data").exists()


def test_a_refused_reload_changes_no_other_setting_of_the_same_config_set(
    tls_serve: Callable[..., Running], pki: Pki
) -> None:
    """All or nothing across hooks: the password set beside a refused key does not apply."""
    running = tls_serve()
    client = _client(running, pki, cert=pki.client)
    with pytest.raises(redis.ResponseError, match="Unable to update TLS configuration"):
        client.config_set("requirepass", "newpass", "tls-key-file", str(pki.other_key))
    assert client.config_get("requirepass") == {"requirepass": ""}
    assert _client(running, pki, cert=pki.client).ping()  # still no password needed
    assert client.config_set("requirepass", "newpass", "tls-cert-file", str(pki.second_cert),
                             "tls-key-file", str(pki.second_key))  # fmt: skip
    assert client.config_get("requirepass") == {"requirepass": "newpass"}
    assert "second.example" in _names(_served_cert(running.server.tls_port, pki))


# --------------------------------------------------- hostile and slow clients


def _stalled(port: int, first: bytes = b"") -> socket.socket:
    """A TCP connection to the TLS port that starts (``first``) but never ends a handshake."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
    if first:
        raw.sendall(first)
    return raw


def _until_no_handshake(running: Running) -> None:
    """Wait until the server saw every hang-up: a handshake still in progress when the
    server stops leaves asyncio a pending task, reported later, in some other test."""
    context = running.server.tls.context  # type: ignore[union-attr]
    deadline = time.monotonic() + DEADLINE
    while running.call(lambda: context.handshaking(exact=True)):
        assert time.monotonic() < deadline, "handshakes still in progress"
        time.sleep(0.01)


#: The first bytes of a TLS record that claims 16 KiB and never sends them.
_PARTIAL_RECORD = b"\x16\x03\x01\x40\x00" + b"\x01" * 100


@pytest.mark.parametrize("loop", LOOPS)
def test_stalled_handshakes_do_not_stall_other_clients(
    tls_serve: Callable[..., Running], pki: Pki, loop: str, caplog: pytest.LogCaptureFixture
) -> None:
    running = tls_serve(loop, port=_free_port())
    port = running.server.tls_port
    stalled = [_stalled(port, _PARTIAL_RECORD if i % 2 else b"") for i in range(8)]
    try:
        client = _client(running, pki, cert=pki.client)
        plain = redis.Redis(port=running.server.port, socket_timeout=DEADLINE)
        running.resources.append(plain)
        started = time.monotonic()
        for i in range(50):
            client.set(f"k{i}", i)
            assert plain.get(f"k{i}") == str(i).encode()
        assert time.monotonic() - started < DEADLINE / 2
    finally:
        for raw in stalled:
            raw.close()
        _until_no_handshake(running)
    assert not [r for r in caplog.records if r.levelno >= 30 or r.exc_info], caplog.text


@pytest.mark.parametrize("loop", LOOPS)
def test_handshakes_in_progress_count_against_maxclients(
    tls_serve: Callable[..., Running], pki: Pki, loop: str, caplog: pytest.LogCaptureFixture
) -> None:
    """As Redis (acceptCommonHandler counts a client before its handshake): unfinished
    handshakes cannot hold more connections open than ``maxclients``."""
    running = tls_serve(loop, maxclients=3)
    port = running.server.tls_port
    stalled = [_stalled(port) for _ in range(3)]
    try:
        with _stalled(port) as extra:  # a fourth: refused at once, not after the timeout
            started = time.monotonic()
            with pytest.raises(OSError):
                ssl.create_default_context(cafile=str(pki.ca)).wrap_socket(
                    extra, server_hostname="127.0.0.1"
                )
            assert time.monotonic() - started < DEADLINE / 2
        assert running.server.dispatcher.rejected_connections >= 1
        # a handshake that fails (plaintext here) gives its place back at once
        stalled[0].sendall(b"*1\r\n$4\r\nPING\r\n")
        while stalled[0].recv(4096):  # refused: a TLS alert, then EOF
            pass
        assert _client(running, pki, cert=pki.client).ping()
    finally:
        for raw in stalled:
            raw.close()
        _until_no_handshake(running)
    noise = [r for r in caplog.records if r.levelno >= 30 or r.exc_info]
    # (only the server's once-a-second count of the refusals, if its tick came)
    assert all("maxclients (3) reached" in r.getMessage() for r in noise), caplog.text


@pytest.mark.parametrize("auth", ["yes", "optional"])
def test_an_expired_or_not_yet_valid_client_certificate_is_refused(
    tls_serve: Callable[..., Running], pki: Pki, tmp_path: Path, auth: str
) -> None:
    ca = trustme.CA()
    now = datetime.datetime.now(datetime.UTC)
    day = datetime.timedelta(days=1)
    cas = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cas))
    running = tls_serve(tls_auth_clients=auth, tls_ca_cert_file=str(cas))
    for name, not_before, not_after in (
        ("expired", now - 3 * day, now - day),
        ("future", now + day, now + 3 * day),
        ("valid", now - day, now + day),
    ):
        path = tmp_path / f"{name}.pem"
        cert = ca.issue_cert("client@example", not_before=not_before, not_after=not_after)
        cert.private_key_and_cert_chain_pem.write_to_path(str(path))
        if name == "valid":
            assert _client(running, pki, cert=path).ping()
        else:
            with pytest.raises(redis.ConnectionError):
                _client(running, pki, cert=path).ping()


def test_handshakes_are_counted_until_done_failed_or_timed_out(pki: Pki) -> None:
    context = ReloadableContext(ssl.PROTOCOL_TLS_SERVER)
    context.active = build_context(_config(pki, tls_auth_clients="no"))

    def start() -> ssl.SSLObject:
        return context.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_side=True)

    held = [start() for _ in range(3)]
    assert context.handshaking() == 3
    context.handshake_done(held.pop())  # finished: a client now
    assert context.handshaking() == 2
    held.pop()  # its connection freed (a client that hung up): the weak reference goes
    assert context.handshaking() == 1
    bio = ssl.MemoryBIO()
    bio.write(b"GET / HTTP/1.0\r\n\r\n")
    refused = context.wrap_bio(bio, ssl.MemoryBIO(), server_side=True)
    assert context.handshaking() == 2
    with pytest.raises(ssl.SSLError):  # OpenSSL refuses what is not a ClientHello
        refused.do_handshake()
    assert context.handshaking() == 1  # forgotten at once, though still referenced
    context.admit = lambda: False  # beyond maxclients: not counted, and fails at once
    bio = ssl.MemoryBIO()
    bio.write(_client_hello())
    with pytest.raises(ssl.SSLError):
        context.wrap_bio(bio, ssl.MemoryBIO(), server_side=True).do_handshake()
    assert context.handshaking() == 1
    context.handshake_timeout = -2.0  # what is left is older than the timeout: gone
    assert context.handshaking() == 0


def _client_hello() -> bytes:
    client = ssl.create_default_context().wrap_bio(
        ssl.MemoryBIO(), outgoing := ssl.MemoryBIO(), server_hostname="127.0.0.1"
    )
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    return outgoing.read()


@pytest.mark.parametrize("loop", LOOPS)
def test_a_reload_during_a_handshake_leaves_that_handshake_on_the_old_certificate(
    tls_serve: Callable[..., Running], pki: Pki, loop: str
) -> None:
    running = tls_serve(loop, tls_auth_clients="no")
    port = running.server.tls_port
    context = ssl.create_default_context(cafile=str(pki.ca))
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as raw:
        with pytest.raises(ssl.SSLWantReadError):
            tls.do_handshake()
        raw.sendall(outgoing.read())  # the ClientHello: the server has begun
        admin = _client(running, pki)
        assert admin.config_set(
            "tls-cert-file", str(pki.second_cert), "tls-key-file", str(pki.second_key)
        )
        while True:  # finish the handshake begun before the reload
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                if data := outgoing.read():
                    raw.sendall(data)
                chunk = raw.recv(65536)
                assert chunk, "closed during the handshake"
                incoming.write(chunk)
        raw.sendall(outgoing.read())
        cert = tls.getpeercert()
        assert cert is not None and "localhost" in _names(cert)  # the old certificate
        tls.write(b"PING\r\n")
        raw.sendall(outgoing.read())
        reply = b""
        while not reply.endswith(b"\r\n"):
            try:
                reply += tls.read(4096)
            except ssl.SSLWantReadError:
                incoming.write(raw.recv(65536))
        assert reply == b"+PONG\r\n"
    assert "second.example" in _names(_served_cert(port, pki))  # new connections: the new one


@pytest.mark.parametrize("loop", LOOPS)
def test_clients_that_hang_up_mid_handshake_give_their_places_back(
    tls_serve: Callable[..., Running], pki: Pki, loop: str, request: pytest.FixtureRequest
) -> None:
    """A TCP health check (connect, close) or a reset: under asyncio such a handshake is
    only freed by the garbage collector; at the limit it must not keep clients out."""
    running = tls_serve(loop, maxclients=5)
    port = running.server.tls_port
    context = running.server.tls.context  # type: ignore[union-attr]
    seen: list[int] = []
    admit = context.admit
    assert admit is not None
    context.admit = lambda: bool(seen.append(1)) or admit()  # counts accepted connections
    gc.disable()  # as in a server whose collector does not run for a while
    request.addfinalizer(gc.enable)
    for i in range(15):
        with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as probe:
            if i % 5 == 4:  # a reset instead of a close, now and then
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            deadline = time.monotonic() + DEADLINE
            while len(seen) <= i:  # hang up only once the server has it
                assert time.monotonic() < deadline
                time.sleep(0.001)
    deadline = time.monotonic() + 3.0  # well under the 10 s handshake timeout
    while True:
        try:
            assert _client(running, pki, cert=pki.client).ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline, "closed handshakes still hold maxclients"
            time.sleep(0.1)
