"""A long-running function over real sockets: FUNCTION STATS, BUSY, FUNCTION KILL.

As in Redis 7.0: past ``busy-reply-threshold`` other clients get ``-BUSY``
naming FUNCTION KILL, FUNCTION STATS (flagged allow-busy) shows the
running function with its command, SCRIPT KILL does not stop a function
(``BUSY`` naming FUNCTION KILL), FUNCTION KILL does, and the caller gets Redis's error.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

pytest.importorskip("lupa")
redis = pytest.importorskip("redis")

from snapkv import Store  # noqa: E402
from snapkv.server.state import Config  # noqa: E402
from support import wait_until  # noqa: E402
from test_server_e2e import DEADLINE, Running  # noqa: E402

SPIN = "#!lua name=spinlib\nredis.register_function('spin', function() while true do end end)"


def _pairs(reply: Any) -> dict[Any, Any]:
    """A RESP2 map (a flat array), as redis-py hands it over or already paired."""
    if isinstance(reply, dict):
        return reply
    return dict(zip(reply[::2], reply[1::2], strict=True))


def _stats_running(client: Any) -> Any:
    return _pairs(client.execute_command("FUNCTION", "STATS"))[b"running_script"]


def test_a_busy_function_is_shown_and_killed() -> None:
    running = Running(Store(), Config(port=0, busy_reply_threshold=50))
    try:
        caller, other = running.client(), running.client()
        assert caller.function_load(SPIN) == b"spinlib"
        assert _stats_running(other) is None
        result: list[Any] = []

        def call() -> None:
            try:
                result.append(caller.fcall("spin", 0))
            except redis.exceptions.ResponseError as exc:
                result.append(exc)

        thread = threading.Thread(target=call, daemon=True)
        thread.start()
        wait_until(
            lambda: _stats_running(other) is not None, timeout=DEADLINE, what="a running function"
        )
        shown = _stats_running(other)
        fields = _pairs(shown)
        assert fields[b"name"] == b"spin"
        assert fields[b"command"] == [b"FCALL", b"spin", b"0"]
        assert isinstance(fields[b"duration_ms"], int)
        with pytest.raises(redis.exceptions.ResponseError, match="FUNCTION KILL"):
            other.get("k")
        with pytest.raises(redis.exceptions.ResponseError, match="only call FUNCTION KILL"):
            other.script_kill()
        assert other.execute_command("FUNCTION", "KILL") == b"OK"
        thread.join(DEADLINE)
        [error] = result
        assert isinstance(error, redis.exceptions.ResponseError)
        assert str(error) == (
            "Script killed by user with SCRIPT KILL... script: spin, on @user_function:2."
        )
        assert _stats_running(other) is None
        assert other.ping() is True
    finally:
        running.stop()
