"""Redis's keyspace-event classes (``notify.c``): the flags and the setting's letters.

One table, read by the setting (:mod:`snapkv.server.conf`) and by the
notifications themselves (:mod:`snapkv.server.notify`). Pure.
"""

from __future__ import annotations

__all__ = [
    "NOTIFY_ALL",
    "NOTIFY_EVICTED",
    "NOTIFY_EXPIRED",
    "NOTIFY_GENERIC",
    "NOTIFY_HASH",
    "NOTIFY_KEYEVENT",
    "NOTIFY_KEYSPACE",
    "NOTIFY_KEY_MISS",
    "NOTIFY_LIST",
    "NOTIFY_LOADED",
    "NOTIFY_MODULE",
    "NOTIFY_NEW",
    "NOTIFY_SET",
    "NOTIFY_STREAM",
    "NOTIFY_STRING",
    "NOTIFY_ZSET",
    "flags_of",
    "show_events",
]


#: Redis's keyspace-event classes (``notify.c``), by the character that selects each.
NOTIFY_KEYSPACE = 1 << 0  # K
NOTIFY_KEYEVENT = 1 << 1  # E
NOTIFY_GENERIC = 1 << 2  # g
NOTIFY_STRING = 1 << 3  # $
NOTIFY_LIST = 1 << 4  # l
NOTIFY_SET = 1 << 5  # s
NOTIFY_HASH = 1 << 6  # h
NOTIFY_ZSET = 1 << 7  # z
NOTIFY_EXPIRED = 1 << 8  # x
NOTIFY_EVICTED = 1 << 9  # e
NOTIFY_STREAM = 1 << 10  # t
NOTIFY_KEY_MISS = 1 << 11  # m (not part of A)
NOTIFY_LOADED = 1 << 12  # module only
NOTIFY_MODULE = 1 << 13  # d
NOTIFY_NEW = 1 << 14  # n (not part of A)
#: ``A``: every class but ``m`` and ``n`` (Redis's ``NOTIFY_ALL``).
NOTIFY_ALL = (
    NOTIFY_GENERIC
    | NOTIFY_STRING
    | NOTIFY_LIST
    | NOTIFY_SET
    | NOTIFY_HASH
    | NOTIFY_ZSET
    | NOTIFY_EXPIRED
    | NOTIFY_EVICTED
    | NOTIFY_STREAM
    | NOTIFY_MODULE
)
_EVENT_CHARS = {
    "A": NOTIFY_ALL,
    "g": NOTIFY_GENERIC,
    "$": NOTIFY_STRING,
    "l": NOTIFY_LIST,
    "s": NOTIFY_SET,
    "h": NOTIFY_HASH,
    "z": NOTIFY_ZSET,
    "x": NOTIFY_EXPIRED,
    "e": NOTIFY_EVICTED,
    "K": NOTIFY_KEYSPACE,
    "E": NOTIFY_KEYEVENT,
    "t": NOTIFY_STREAM,
    "m": NOTIFY_KEY_MISS,
    "d": NOTIFY_MODULE,
    "n": NOTIFY_NEW,
}


def flags_of(text: str) -> int | None:
    """The classes ``text`` selects, as flags (Redis's ``keyspaceEventsStringToFlags``);
    ``None`` when a character is none of Redis's."""
    flags = 0
    for char in text:
        bit = _EVENT_CHARS.get(char)
        if bit is None:
            return None
        flags |= bit
    return flags


def show_events(flags: int) -> str:
    """The flags as CONFIG GET shows them (Redis's ``keyspaceEventsFlagsToString``)."""
    if flags & NOTIFY_ALL == NOTIFY_ALL:
        out = "A"
    else:
        bits = (*_CLASS_BITS, NOTIFY_NEW)
        out = "".join(c for c, bit in zip("g$lshzxetdn", bits, strict=True) if flags & bit)
    for char, bit in (("K", NOTIFY_KEYSPACE), ("E", NOTIFY_KEYEVENT), ("m", NOTIFY_KEY_MISS)):
        if flags & bit:
            out += char
    return out


_CLASS_BITS = (
    NOTIFY_GENERIC,
    NOTIFY_STRING,
    NOTIFY_LIST,
    NOTIFY_SET,
    NOTIFY_HASH,
    NOTIFY_ZSET,
    NOTIFY_EXPIRED,
    NOTIFY_EVICTED,
    NOTIFY_STREAM,
    NOTIFY_MODULE,
)
