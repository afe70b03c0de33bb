"""ACL LOG: the denied commands, keys, channels and failed logins (Redis's ``addACLLogEntry``).

Newest first. An event like one of the 10 newest entries (same reason,
context, object and user, within 60 s of it) bumps that entry's count and
moves it to the front instead of adding one, as Redis groups repeated
denials; the log keeps ``acllog-max-len`` entries.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["AUTH", "CHANNEL", "COMMAND", "KEY", "AclLog", "Entry"]

# Redis's ACL_DENIED_* values: their order picks the error a user with
# several selectors is told about (the largest wins).
COMMAND: Final = 1
KEY: Final = 2
AUTH: Final = 3
CHANNEL: Final = 4
REASONS: Final = {COMMAND: "command", KEY: "key", AUTH: "auth", CHANNEL: "channel"}
#: Redis's ACL_LOG_GROUPING_MAX_TIME_DELTA, in milliseconds.
_GROUPING_MS: Final = 60_000
#: How many of the newest entries an event is compared with.
_SCAN: Final = 10


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Entry:
    """One ACL LOG entry (Redis's ``ACLLogEntry``)."""

    count: int
    reason: int
    #: ``toplevel``, ``multi`` or ``lua``.
    context: str
    #: The command, key, channel, or (a failed login) the command that tried it.
    object: str
    username: str
    #: Milliseconds (wall clock) of the last time it happened.
    ctime: int
    #: The CLIENT LIST line of the client, as the last time it happened.
    client_info: str

    def same_as(self, other: Entry) -> bool:
        return (
            self.reason == other.reason
            and self.context == other.context
            and abs(self.ctime - other.ctime) <= _GROUPING_MS
            and self.object == other.object
            and self.username == other.username
        )

    def reply(self, now_ms: int) -> dict[str, Any]:
        """The entry as ACL LOG answers it (seven fields; ``age-seconds`` a double)."""
        return {
            "count": self.count,
            "reason": REASONS[self.reason],
            "context": self.context,
            "object": self.object,
            "username": self.username,
            "age-seconds": (now_ms - self.ctime) / 1000,
            "client-info": self.client_info,
        }


class AclLog:
    """The log itself: ``add`` an event, ``newest`` entries, ``reset``."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []

    def add(
        self,
        reason: int,
        *,
        context: str,
        obj: str,
        username: str,
        client_info: str,
        max_len: int,
    ) -> None:
        entry = Entry(1, reason, context, obj, username, _now_ms(), client_info)
        for i, current in enumerate(self.entries[:_SCAN]):
            if current.same_as(entry):
                del self.entries[i]
                current.client_info = entry.client_info
                current.ctime = entry.ctime
                current.count += 1
                self.entries.insert(0, current)
                return
        self.entries.insert(0, entry)
        del self.entries[max(max_len, 0) :]

    def newest(self, count: int) -> list[dict[str, Any]]:
        now = _now_ms()
        return [entry.reply(now) for entry in self.entries[: max(count, 0)]]

    def reset(self) -> None:
        self.entries.clear()
