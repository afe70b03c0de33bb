"""ACL users and their rules, as Redis 7.0's ``acl.c``: parse, apply, describe.

A :class:`User` holds flags (on/off, nopass, the payload sanitizing pair),
password hashes (SHA-256, hex) and selectors; the first selector is the
*root* one, which the rules outside parentheses change. A :class:`Selector`
allows commands (a bit mask over the :class:`Catalog`'s command ids, as
Redis's ``allowed_commands`` bitmap), key patterns with read/write
permissions, channel patterns and, for a command with no subcommands,
allowed first arguments (``+select|0``).

Commands are bits so that a category is a mask too: ``+@read`` is one OR,
and :mod:`snapkv.server.acl_describe` can count, as Redis's
``ACLDescribeSelectorCommandRules`` does, how many commands of a category
a selector allows, to print the shortest rules that rebuild the same mask.
The bit past the last command is Redis's reserved one: set only by
``+@all``/``allcommands``, it makes the description start from ``+@all``.

:func:`set_user` applies one rule and raises :class:`RuleError` carrying
Redis's ``ACLSetUserStringError`` text; nothing here knows about clients
or the server (see :mod:`snapkv.server.acl` for the registry and checks).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from snapkv.server.commandmeta import CATEGORIES, categories
from snapkv.server.conf import split_args
from snapkv.server.resp.text import to_bytes, to_text
from snapkv.server.table import Command

__all__ = [
    "READ",
    "WRITE",
    "Catalog",
    "RuleError",
    "Selector",
    "User",
    "hash_password",
    "merge_selector_args",
    "new_user",
    "set_user",
]

#: Key permissions of a pattern (Redis's ``ACL_READ_PERMISSION``, ``ACL_WRITE_PERMISSION``).
READ: Final = 1
WRITE: Final = 2
_ALL_PERMISSION: Final = READ | WRITE

# Redis's ACLSetUserStringError texts, by the errno ACLSetUser sets.
E_UNKNOWN: Final = "Unknown command or category name in ACL"
E_SYNTAX: Final = "Syntax error"
E_KEYS_AFTER_ALL: Final = (
    "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not "
    "have any effect. Try 'resetkeys' to start with an empty list of patterns"
)
E_CHANNELS_AFTER_ALL: Final = (
    "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does "
    "not have any effect. Try 'resetchannels' to start with an empty list of channels"
)
E_NO_SUCH_PASSWORD: Final = "The password you are trying to remove from the user does not exist"
E_BAD_HASH: Final = (
    "The password hash must be exactly 64 characters and contain only lowercase hexadecimal "
    "characters"
)
E_FIRSTARG_OF_SUB: Final = "Allowing first-arg of a subcommand is not supported"

#: User flags in the order ACL LIST and GETUSER print them (Redis's ACLUserFlags).
USER_FLAGS: Final[tuple[str, ...]] = (
    "on",
    "off",
    "nopass",
    "skip-sanitize-payload",
    "sanitize-payload",
)
_HEX: Final = frozenset("0123456789abcdef")


class RuleError(ValueError):
    """A rule ACL SETUSER (or a file) cannot apply; the message is Redis's text."""


def hash_password(password: str) -> str:
    """The SHA-256 hex digest Redis stores for ``password`` (the wire's bytes)."""
    return hashlib.sha256(to_bytes(password)).hexdigest()


def has_spaces(text: str) -> bool:
    """Redis's ``ACLStringHasSpaces``: a C ``isspace`` character or a NUL."""
    return any(c in " \t\n\v\f\r\0" for c in text)


class Catalog:
    """Every command and subcommand as a bit, and every category as a mask of them.

    Built from the server's table, in its order (the order
    :func:`describe_commands` names single commands in); each container
    (CONFIG) is a bit of its own besides its subcommands', as in Redis.
    """

    def __init__(self, commands: Iterable[Command]) -> None:
        #: ``get`` / ``config|get`` -> bit index.
        self.ids: dict[str, int] = {}
        #: Describe order: (top command id, its subcommands' ids).
        self.order: list[tuple[int, list[int]]] = []
        self.names: list[str] = []
        #: id -> mask of the command and its subcommands (what +cmd / -cmd change).
        self.family: list[int] = []
        self.parent: list[bool] = []
        self.with_subs: list[bool] = []
        self.categories: dict[str, int] = dict.fromkeys(CATEGORIES, 0)
        for cmd in commands:
            top = self._add(cmd, False)
            subs = []
            seen: set[int] = set()
            for sub in (cmd.subcommands or {}).values():
                if id(sub) not in seen:
                    seen.add(id(sub))
                    subs.append(self._add(sub, True))
            self.order.append((top, subs))
            for sub_id in subs:
                self.family[top] |= 1 << sub_id
            self.with_subs[top] = bool(subs)
        #: Redis's reserved bit (``USER_COMMAND_BITS_COUNT-1``): "future commands".
        self.future = 1 << len(self.names)
        self.everything = (self.future << 1) - 1

    def _add(self, cmd: Command, is_sub: bool) -> int:
        index = len(self.names)
        self.ids[cmd.full_name] = index
        self.names.append(cmd.full_name)
        self.family.append(1 << index)
        self.parent.append(is_sub)
        self.with_subs.append(False)
        for name in categories(cmd):
            self.categories[name] |= 1 << index
        return index

    def lookup(self, name: str) -> int | None:
        """Redis's ``ACLLookupCommand``: ``cmd`` or ``container|sub``, any case; else ``None``."""
        parts = name.lower().split("|")
        if len(parts) > 2:
            return None
        base = self.ids.get(parts[0])
        if base is None or self.parent[base]:
            return None
        if len(parts) == 1:
            return base
        if not self.with_subs[base]:
            return None  # strict: "select|0" is not a command
        return self.ids.get(f"{parts[0]}|{parts[1]}")


@dataclass
class Selector:
    """One set of permissions (Redis's ``aclSelector``); a user's first is its root."""

    #: Allowed commands: bit ``i`` for the catalog's command ``i`` (plus the future bit).
    allowed: int = 0
    #: Redis's ``SELECTOR_FLAG_ALLCOMMANDS``: every command, no bit test.
    allcommands: bool = False
    allkeys: bool = False
    allchannels: bool = False
    #: Key patterns in order: pattern -> READ | WRITE.
    keys: dict[str, int] = field(default_factory=dict)
    channels: list[str] = field(default_factory=list)
    #: Command id -> first arguments allowed although the command is not.
    firstargs: dict[int, list[str]] = field(default_factory=dict)

    def copy(self) -> Selector:
        return Selector(
            self.allowed,
            self.allcommands,
            self.allkeys,
            self.allchannels,
            dict(self.keys),
            list(self.channels),
            {k: list(v) for k, v in self.firstargs.items()},
        )

    def change(self, catalog: Catalog, cmd: int, allow: bool) -> None:
        """Redis's ``ACLChangeSelectorPerm``: the command and its subcommands."""
        mask = catalog.family[cmd]
        if allow:
            self.allowed |= mask
            # Every command allowed again (``+@all -get +get``): no bit test needed,
            # which is what lets the fast path skip the check (Redis tests the bits).
            self.allcommands = self.allowed | catalog.future == catalog.everything
        else:
            self.allowed &= ~mask
            self.allcommands = False
        self.firstargs.pop(cmd, None)


@dataclass
class User:
    """An ACL user (Redis's ``user``): name, flags, password hashes, selectors."""

    name: str
    flags: set[str] = field(default_factory=lambda: {"off"})
    passwords: list[str] = field(default_factory=list)
    selectors: list[Selector] = field(default_factory=list)

    @property
    def root(self) -> Selector:
        return self.selectors[0]

    @property
    def enabled(self) -> bool:
        return "on" in self.flags

    @property
    def nopass(self) -> bool:
        return "nopass" in self.flags

    def copy(self, name: str | None = None) -> User:
        return User(
            self.name if name is None else name,
            set(self.flags),
            list(self.passwords),
            [s.copy() for s in self.selectors],
        )

    def unrestricted(self) -> bool:
        """Every command, key and channel through the root selector (the fast path's test)."""
        root = self.root
        return root.allcommands and root.allkeys and root.allchannels


def _new_selector(pubsub_all: bool) -> Selector:
    """Redis's ``ACLCreateSelector``: nothing allowed, channels by ``acl-pubsub-default``."""
    return Selector(allchannels=pubsub_all)


def new_user(name: str, pubsub_all: bool = False) -> User:
    """Redis's ``ACLCreateUser``: off, no password, a root selector allowing nothing."""
    return User(name, selectors=[_new_selector(pubsub_all)])


def set_user(user: User, op: str, catalog: Catalog, pubsub_all: bool = False) -> None:
    """Apply one rule to ``user`` (Redis's ``ACLSetUser``); RuleError with Redis's text."""
    if not op:
        return
    word = op.lower()
    if word in ("on", "off"):
        user.flags -= {"on", "off"}
        user.flags.add(word)
    elif word in ("skip-sanitize-payload", "sanitize-payload"):
        user.flags -= {"skip-sanitize-payload", "sanitize-payload"}
        user.flags.add(word)
    elif word == "nopass":
        user.flags.add("nopass")
        user.passwords.clear()
    elif word == "resetpass":
        user.flags.discard("nopass")
        user.passwords.clear()
    elif op[0] in ">#":
        digest = hash_password(op[1:]) if op[0] == ">" else _checked_hash(op[1:])
        if digest not in user.passwords:
            user.passwords.append(digest)
        user.flags.discard("nopass")
    elif op[0] in "<!":
        digest = hash_password(op[1:]) if op[0] == "<" else _checked_hash(op[1:])
        if digest not in user.passwords:
            raise RuleError(E_NO_SUCH_PASSWORD)
        user.passwords.remove(digest)
    elif op[0] == "(" and op[-1] == ")":
        selector = _new_selector(pubsub_all)
        for inner in split_args(to_bytes(op[1:-1])) or []:
            set_selector(selector, to_text(inner), catalog)
        user.selectors.append(selector)
    elif word == "clearselectors":
        del user.selectors[1:]
    elif word == "reset":
        for rule in ("resetpass", "resetkeys", "resetchannels"):
            set_user(user, rule, catalog, pubsub_all)
        if pubsub_all:
            set_user(user, "allchannels", catalog, pubsub_all)
        for rule in ("off", "sanitize-payload", "clearselectors", "-@all"):
            set_user(user, rule, catalog, pubsub_all)
    else:
        set_selector(user.root, op, catalog)


def _checked_hash(text: str) -> str:
    if len(text) != 64 or not set(text) <= _HEX:
        raise RuleError(E_BAD_HASH)
    return text


def set_selector(selector: Selector, op: str, catalog: Catalog) -> None:
    """Apply one selector rule (Redis's ``ACLSetSelector``); RuleError with Redis's text."""
    if not op:
        raise RuleError(E_SYNTAX)
    word = op.lower()
    if word in ("allkeys", "~*"):
        selector.allkeys = True
        selector.keys.clear()
    elif word == "resetkeys":
        selector.allkeys = False
        selector.keys.clear()
    elif word in ("allchannels", "&*"):
        selector.allchannels = True
        selector.channels.clear()
    elif word == "resetchannels":
        selector.allchannels = False
        selector.channels.clear()
    elif word in ("allcommands", "+@all"):
        selector.allowed = catalog.everything
        selector.allcommands = True
        selector.firstargs.clear()
    elif word in ("nocommands", "-@all"):
        selector.allowed = 0
        selector.allcommands = False
        selector.firstargs.clear()
    elif op[0] in "~%":
        _add_key_pattern(selector, op)
    elif op[0] == "&":
        if selector.allchannels:
            raise RuleError(E_CHANNELS_AFTER_ALL)
        if has_spaces(op[1:]):
            raise RuleError(E_SYNTAX)
        if op[1:] not in selector.channels:
            selector.channels.append(op[1:])
        selector.allchannels = False
    elif op[0] in "+-" and op[1:2] == "@":
        mask = catalog.categories.get(op[2:].lower())
        if mask is None:
            raise RuleError(E_UNKNOWN)
        _set_category(selector, catalog, mask, op[0] == "+")
    elif op[0] == "+":
        _allow_command(selector, op[1:], catalog)
    elif op[0] == "-":
        cmd = catalog.lookup(op[1:])
        if cmd is None:
            raise RuleError(E_UNKNOWN)
        selector.change(catalog, cmd, False)
    else:
        raise RuleError(E_SYNTAX)


def _add_key_pattern(selector: Selector, op: str) -> None:
    if selector.allkeys:
        raise RuleError(E_KEYS_AFTER_ALL)
    flags = 0
    offset = 1
    if op[0] == "%":
        while offset < len(op):
            c = op[offset].upper()
            if c == "R" and not flags & READ:
                flags |= READ
            elif c == "W" and not flags & WRITE:
                flags |= WRITE
            elif c == "~":
                offset += 1
                break
            else:
                raise RuleError(E_SYNTAX)
            offset += 1
        if not flags:  # "%~x": no permission named
            raise RuleError(E_SYNTAX)
    else:
        flags = _ALL_PERMISSION
    pattern = op[offset:]
    if has_spaces(pattern):
        raise RuleError(E_SYNTAX)
    selector.keys[pattern] = selector.keys.get(pattern, 0) | flags
    selector.allkeys = False


def _set_category(selector: Selector, catalog: Catalog, mask: int, allow: bool) -> None:
    """Redis's ``ACLSetSelectorCommandBitsForCategory``: a command in it changes with its subs."""
    for top, subs in catalog.order:
        for cmd in (top, *subs):
            if mask >> cmd & 1:
                selector.change(catalog, cmd, allow)


def _allow_command(selector: Selector, name: str, catalog: Catalog) -> None:
    """``+cmd``, ``+container|sub`` or ``+cmd|first-arg`` (Redis's first-args)."""
    if "|" not in name:
        cmd = catalog.lookup(name)
        if cmd is None:
            raise RuleError(E_UNKNOWN)
        selector.change(catalog, cmd, True)
        return
    base_name, _, first = name.rpartition("|")
    base = catalog.lookup(base_name)
    if base is None:
        raise RuleError(E_UNKNOWN)
    if catalog.parent[base]:
        raise RuleError(E_FIRSTARG_OF_SUB)
    if not first:
        raise RuleError(E_SYNTAX)
    if catalog.with_subs[base]:
        cmd = catalog.lookup(name)
        if cmd is None:
            raise RuleError(E_UNKNOWN)
        selector.change(catalog, cmd, True)
        return
    allowed = selector.firstargs.setdefault(base, [])
    if first.lower() not in (a.lower() for a in allowed):
        allowed.append(first)


def merge_selector_args(args: Sequence[str]) -> tuple[list[str] | None, int]:
    """Redis's ``ACLMergeSelectorArguments``: ``(a`` ``b)`` becomes ``(a b)``.

    Returns the merged rules, or ``None`` and the index of the argument
    whose parenthesis is never closed.
    """
    merged: list[str] = []
    opened = -1
    current = ""
    for j, op in enumerate(args):
        if op[:1] == "(" and op[-1:] != ")":
            current, opened = op, j
            continue
        if opened != -1:
            current += " " + op
            if op[-1:] == ")":
                opened = -1
                merged.append(current)
            continue
        merged.append(op)
    if opened != -1:
        return None, opened
    return merged, 0
