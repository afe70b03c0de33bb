"""``notify-keyspace-events`` through CONFIG SET and GET, against redis-server 7.0.

CONFIG GET shows Redis's canonical spelling of the classes (``A`` for all of
them, K and E after the classes, ``m`` last), whatever order they were set
in; a character outside ``Ag$lshzxeKEtmdn`` is refused with Redis's text and
changes nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

SPELLINGS = [
    "",
    "KEA",
    "AKE",
    "EA",
    "K",
    "x",
    "Ex",
    "Kg$",
    "lshzxetdK",
    "g$lshzxetdK",  # every class: shown as A
    "Ag",
    "AKEm",
    "mKE",
    "Km$",
    "ez",
    "tE",
    "dK",
    "KKEE",
    "KEn",  # n sits after the classes, before K and E
    "gnE",
    "tdnxeK",
    "Anm",  # A hides n (it is not part of A)
    "AnKE",
    "nm",
]


@pytest.mark.parametrize("flags", SPELLINGS)
def test_config_get_shows_redis_canonical_spelling(twin: Any, flags: str) -> None:
    try:
        twin.same("CONFIG", "SET", "notify-keyspace-events", flags)
        twin.same("CONFIG", "GET", "notify-keyspace-events")
    finally:
        twin.raw("CONFIG", "SET", "notify-keyspace-events", "")


@pytest.mark.parametrize("flags", ["Q", "KE!", "kea", "A B"])
def test_an_unknown_class_is_refused_and_changes_nothing(twin: Any, flags: str) -> None:
    try:
        twin.same("CONFIG", "SET", "notify-keyspace-events", "KE$")
        twin.same("CONFIG", "SET", "notify-keyspace-events", flags)
        twin.same("CONFIG", "GET", "notify-keyspace-events")
    finally:
        twin.raw("CONFIG", "SET", "notify-keyspace-events", "")


def test_config_set_takes_effect_at_once(twin: Any) -> None:
    """The handlers read the setting on every write: no restart, no cached copy."""
    from snapkv.server.client import Client

    sub = Client(twin.server, addr="127.0.0.1:3001")
    twin.server.add_client(sub)
    twin.server.execute(sub, ["PSUBSCRIBE", "__key*__:*"])
    sub.outbox.clear()
    twin.server.execute(twin.snapkv, ["SET", "a", "1"])
    assert sub.outbox == []
    twin.server.execute(twin.snapkv, ["CONFIG", "SET", "notify-keyspace-events", "E$"])
    twin.server.execute(twin.snapkv, ["SET", "a", "2"])
    assert sub.outbox == [
        b"*4\r\n$8\r\npmessage\r\n$10\r\n__key*__:*\r\n$18\r\n__keyevent@0__:set\r\n$1\r\na\r\n"
    ]
    sub.outbox.clear()
    twin.server.execute(twin.snapkv, ["CONFIG", "SET", "notify-keyspace-events", ""])
    twin.server.execute(twin.snapkv, ["SET", "a", "3"])
    assert sub.outbox == []
