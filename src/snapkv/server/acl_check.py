"""The ACL check itself (Redis's ``ACLSelectorCheckCmd`` and its helpers), pure.

One selector against one request: the command (or an allowed first
argument), then each key with the permission its key flags ask (read for
``access``, write for ``insert``/``delete``/``update``, from
``commandmeta.key_flags``), then the channels of PUBLISH, SPUBLISH,
SUBSCRIBE, SSUBSCRIBE (glob-matched) and PSUBSCRIBE (whose pattern must be
one of the selector's, literally). :class:`snapkv.server.acl.Acl` tries a
user's selectors in turn.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Final

from snapkv.server.acl_log import CHANNEL, COMMAND, KEY
from snapkv.server.acl_rules import READ, WRITE, Catalog, Selector
from snapkv.server.commandmeta import key_flags
from snapkv.server.glob import Glob, stringmatch
from snapkv.server.resp.text import to_bytes

if TYPE_CHECKING:
    from snapkv.server.table import Command

__all__ = ["Denial", "Keys", "channel_allowed", "selector_check"]

#: The commands whose arguments are channels (Redis's ACLDoesCommandHaveChannels).
_PUBLISH: Final = frozenset({"publish", "spublish"})
_SUBSCRIBE: Final = frozenset({"subscribe", "ssubscribe"})


@dataclass(frozen=True)
class Denial:
    """Why a user may not run a request: the reason (acl_log's numbers) and what was denied."""

    reason: int
    #: The command's full name, or the key or channel refused.
    object: str


_WRITES: Final = frozenset({"insert", "delete", "update"})


def _keys(cmd: Command, argv: list[str]) -> list[tuple[int, str, int]]:
    """Each key of the request: (argv index, key, the permissions it needs).

    As Redis's ``ACLSelectorCheckKey``: a key flagged ``access`` needs read,
    ``insert``/``delete``/``update`` write, a key with neither (EXISTS's,
    TYPE's) nothing but a matching pattern. A command without Redis's key
    flags falls back on its own: a write command's keys need write, a
    read-only one's read.
    """
    found = []
    for index, flags in key_flags(cmd, argv):
        if flags:
            need = (READ if "access" in flags else 0) | (WRITE if flags & _WRITES else 0)
        else:
            need = WRITE if cmd.write else READ if cmd.readonly else 0
        found.append((index, argv[index], need))
    return found


class Keys:
    """The request's keys, found at the first selector that gets to them (Redis's
    ``aclKeyResultCache``): a command refused, or a selector with ``allkeys``, never asks."""

    __slots__ = ("_argv", "_cmd", "_found")

    def __init__(self, cmd: Command, argv: list[str]) -> None:
        self._cmd = cmd
        self._argv = argv
        self._found: list[tuple[int, str, int]] | None = None

    def get(self) -> list[tuple[int, str, int]]:
        if self._found is None:
            self._found = _keys(self._cmd, self._argv)
        return self._found


def selector_check(
    selector: Selector,
    catalog: Catalog,
    cmd: Command,
    argv: list[str],
    keys: Keys | None,
) -> tuple[int, int, str] | None:
    """Redis's ``ACLSelectorCheckCmd``: ``None``, or (reason, argument index, object)."""
    if not selector.allcommands and not cmd.noauth:
        index = catalog.ids.get(cmd.full_name)
        if index is None or not selector.allowed >> index & 1:
            firsts = selector.firstargs.get(index) if index is not None else None
            at = 2 if cmd.parent else 1
            if not firsts or len(argv) <= at or argv[at].lower() not in map(str.lower, firsts):
                return COMMAND, 0, cmd.full_name
    if not selector.allkeys and keys is not None:
        for index, key, need in keys.get():
            if not _key_allowed(selector, key, need):
                return KEY, index, key
    if not selector.allchannels:
        name = cmd.full_name
        if name in _PUBLISH:
            channels, literal = argv[1:2], False
        elif name in _SUBSCRIBE or name == "psubscribe":
            channels, literal = argv[1:], name == "psubscribe"
        else:
            return None
        for i, channel in enumerate(channels):
            if not channel_allowed(selector.channels, channel, literal):
                return CHANNEL, i + 1, channel
    return None


@lru_cache(maxsize=4096)
def _glob(pattern: str) -> Glob:
    """A key pattern compiled once (patterns are few; every request matches them)."""
    return Glob(pattern)


def _key_allowed(selector: Selector, key: str, need: int) -> bool:
    """Redis's ``ACLSelectorCheckKey``: a pattern with the permissions matches the key."""
    return any(
        flags & need == need and _glob(pattern).match(key)
        for pattern, flags in selector.keys.items()
    )


def channel_allowed(patterns: list[str], channel: str, literal: bool) -> bool:
    """A PSUBSCRIBE pattern must equal an allowed pattern; a channel match one."""
    if literal:
        return channel in patterns
    data = to_bytes(channel)
    return any(stringmatch(to_bytes(p), data) for p in patterns)
