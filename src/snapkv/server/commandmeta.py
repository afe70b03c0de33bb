"""Command metadata: what Redis 7.0 says about each command, and COMMAND's reply shapes.

The data is ``commands.json``, generated from a real redis-server 7.0 by
``scripts/gen_command_meta.py`` (ACL categories, tips, key specifications,
documentation); snapkv's own table supplies what it really does (arity,
flags, key range, subcommands). ACL rules (``+@read``, ``%R~``) and COMMAND
both read it from here, so the two can never disagree. Key finding itself
is :mod:`snapkv.server.keyspecs`'.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any, Final

from snapkv.server.keyspecs import KeyRef, find_keys, has_keys
from snapkv.server.resp.writer import SimpleString, bulk
from snapkv.server.table import Command

__all__ = [
    "CATEGORIES",
    "categories",
    "command_keys",
    "docs_reply",
    "flag_names",
    "has_key_arguments",
    "info_reply",
    "key_flags",
    "keys_reply",
    "metadata",
]

#: Redis's ACL categories in the order of their bits (acl.c's ACLCommandCategories),
#: which is the order COMMAND INFO prints a command's categories in.
CATEGORIES: Final = (
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
)

#: A command group's category (Redis's setImplicitACLCategories and the json files),
#: for a command the data does not know.
_GROUP_CATEGORY: Final = {
    "generic": "keyspace",
    "string": "string",
    "list": "list",
    "set": "set",
    "sorted-set": "sortedset",
    "hash": "hash",
    "pubsub": "pubsub",
    "transactions": "transaction",
    "connection": "connection",
    "scripting": "scripting",
    "stream": "stream",
}

#: Redis's command flags in the order COMMAND INFO prints them (server.c's
#: addReplyFlagsForCommand; ``may_replicate`` is hidden there, on purpose).
_FLAG_ORDER: Final = (
    "write",
    "readonly",
    "denyoom",
    "module",
    "admin",
    "pubsub",
    "noscript",
    "blocking",
    "loading",
    "stale",
    "skip_monitor",
    "skip_slowlog",
    "asking",
    "fast",
    "no_auth",
    "no_mandatory_keys",
    "no_async_loading",
    "no_multi",
    "movablekeys",
    "allow_busy",
)


@cache
def _data() -> Mapping[str, Mapping[str, Any]]:
    text = resources.files("snapkv.server").joinpath("commands.json").read_text("utf-8")
    commands: dict[str, Mapping[str, Any]] = json.loads(text)["commands"]
    return commands


def metadata(name: str) -> Mapping[str, Any] | None:
    """Redis 7.0's metadata of the command ``name`` (``get``, ``config|get``), if it has any."""
    return _data().get(name.lower())


def categories(cmd: Command) -> list[str]:
    """``cmd``'s ACL categories (without the ``@``), in :data:`CATEGORIES` order.

    Redis's own for every command it has; for one it lacks and the data does
    not list, Redis's implicit rules (flags and group) applied to snapkv's
    declaration.
    """
    meta = metadata(cmd.full_name)
    if meta is not None:
        return list(meta["acl_categories"])
    found = {"fast" if "fast" in cmd.flags else "slow"}
    if cmd.write:
        found.add("write")
    if "readonly" in cmd.flags:
        found.add("read")
    if "admin" in cmd.flags:
        found |= {"admin", "dangerous"}
    if "blocking" in cmd.flags:
        found.add("blocking")
    group = _GROUP_CATEGORY.get(cmd.group)
    if group is not None:
        found.add(group)
    return [name for name in CATEGORIES if name in found]


def _specs(cmd: Command) -> Sequence[Mapping[str, Any]]:
    meta = metadata(cmd.full_name)
    return () if meta is None else meta["key_specs"]


def flag_names(cmd: Command) -> list[str]:
    """The flags COMMAND INFO reports: snapkv's declaration, named and ordered as Redis's.

    ``movablekeys`` is Redis's (a getkeys procedure, or a spec that is not a
    plain index and range), or snapkv's ``find_keys`` for a command Redis lacks.
    """
    names = {"no_auth" if flag == "noauth" else flag for flag in cmd.flags}
    meta = metadata(cmd.full_name)
    if meta is not None and not meta.get("snapkv"):
        if "movablekeys" in meta["flags"]:
            names.add("movablekeys")
    elif cmd.find_keys is not None:
        names.add("movablekeys")
    return [name for name in _FLAG_ORDER if name in names]


def has_key_arguments(cmd: Command) -> bool:
    """Whether ``cmd`` can have keys at all (Redis's ``doesCommandHaveKeys``)."""
    if metadata(cmd.full_name) is None:
        return bool(cmd.first_key) or cmd.find_keys is not None
    return has_keys(cmd.full_name, _specs(cmd))


def command_keys(cmd: Command, argv: Sequence[str]) -> list[KeyRef]:
    """The keys of ``argv`` with their argv index and Redis's key flags, in Redis's order.

    From Redis's key specifications and getkeys procedures; a command the
    data does not know falls back to snapkv's key positions, without flags.
    """
    if metadata(cmd.full_name) is not None:
        return find_keys(cmd.full_name, _specs(cmd), argv)
    if cmd.find_keys is not None:  # the keys it names, at their first unused places
        found: list[KeyRef] = []
        for key in cmd.find_keys(list(argv)):
            taken = {i for i, _ in found}
            at = next((i for i in range(1, len(argv)) if argv[i] == key and i not in taken), 0)
            if at:
                found.append((at, ()))
        return found
    if not cmd.first_key:
        return []
    last = cmd.last_key if cmd.last_key >= 0 else len(argv) + cmd.last_key
    return [(i, ()) for i in range(cmd.first_key, last + 1, cmd.step or 1)]


def key_flags(cmd: Command, argv: Sequence[str]) -> list[tuple[int, frozenset[str]]]:
    """For ACL's ``%R~``/``%W~`` checks: each key's argv index and its Redis key flags.

    Redis's ACL checks a key with flags ``RO``/``access`` as a read, and
    ``RW``/``OW``/``RM``/``insert``/``delete``/``update`` as a write.
    """
    return [(index, frozenset(flags)) for index, flags in command_keys(cmd, argv)]


# ------------------------------------------------------------------ replies


class _Set(tuple[Any, ...]):
    """An ordered RESP3 set (an array in RESP2): Redis's order, not a Python set's."""


#: Keys whose list is a set of simple strings in Redis's replies.
_FLAG_SETS: Final = frozenset({"flags", "doc_flags"})


def _encode(value: Any, resp: int, out: list[bytes]) -> None:
    kind = type(value)
    if kind is str:
        out.append(bulk(value))
    elif kind is SimpleString:
        out.append(b"+%s\r\n" % value.encode())
    elif kind is int:
        out.append(b":%d\r\n" % value)
    elif kind is _Set:
        out.append((b"~%d\r\n" if resp == 3 else b"*%d\r\n") % len(value))
        for item in value:
            _encode(item, resp, out)
    elif kind is list or kind is tuple:
        out.append(b"*%d\r\n" % len(value))
        for item in value:
            _encode(item, resp, out)
    elif kind is dict:
        out.append((b"%%%d\r\n" % len(value)) if resp == 3 else (b"*%d\r\n" % (2 * len(value))))
        for key, item in value.items():
            out.append(bulk(key))
            if key in _FLAG_SETS:
                _encode(_Set(SimpleString(f) for f in item), resp, out)
            elif key == "history":
                _encode(_Set(item), resp, out)
            else:
                _encode(item, resp, out)
    else:  # pragma: no cover - the data holds only the kinds above
        raise TypeError(f"cannot encode {kind.__name__}")


def _subcommands(cmd: Command) -> list[Command]:
    unique = {sub.full_name: sub for sub in (cmd.subcommands or {}).values()}
    return [unique[name] for name in sorted(unique)]


def _info(cmd: Command) -> list[Any]:
    meta = metadata(cmd.full_name) or {}
    subs = _subcommands(cmd)
    return [
        cmd.full_name,
        cmd.arity,
        _Set(SimpleString(flag) for flag in flag_names(cmd)),
        cmd.first_key,
        cmd.last_key,
        cmd.step,
        _Set(SimpleString("@" + cat) for cat in categories(cmd)),
        _Set(meta.get("tips", ())),
        _Set(meta.get("key_specs", ())),
        [_info(sub) for sub in subs] if subs else _Set(),
    ]


def info_reply(cmds: Iterable[Command | None], resp: int) -> bytes:
    """COMMAND INFO's reply: an array of entries (a null for a command not found).

    Each is Redis 7's ten fields: name, arity, flags, first key, last key,
    step, ACL categories, tips, key specifications, subcommands.
    """
    found = list(cmds)
    out = [b"*%d\r\n" % len(found)]
    done: dict[str, bytes] = {}  # a request may name one command a million times
    for cmd in found:
        if cmd is None:
            out.append(b"_\r\n" if resp == 3 else b"$-1\r\n")
            continue
        if cmd.full_name not in done:
            parts: list[bytes] = []
            _encode(_info(cmd), resp, parts)
            done[cmd.full_name] = b"".join(parts)
        out.append(done[cmd.full_name])
    return b"".join(out)


def _docs(cmd: Command) -> dict[str, Any]:
    meta = metadata(cmd.full_name)
    if meta is None:
        docs: dict[str, Any] = {"summary": cmd.summary or cmd.name, "since": cmd.since}
        docs["group"] = cmd.group
    else:
        docs = dict(meta["docs"])
    subs = _subcommands(cmd)
    if subs:
        docs["subcommands"] = {sub.full_name: _docs(sub) for sub in subs}
    return docs


def docs_reply(cmds: Iterable[Command], resp: int) -> bytes:
    """COMMAND DOCS's reply: a map of name to documentation, as Redis's ``addReplyCommandDocs``.

    A command named twice is in it twice, as in Redis (a map with a repeated key).
    """
    found = list(cmds)
    out = [(b"%%%d\r\n" if resp == 3 else b"*%d\r\n") % (len(found) * (1 if resp == 3 else 2))]
    for cmd in found:
        out.append(bulk(cmd.full_name))
        _encode(_docs(cmd), resp, out)
    return b"".join(out)


def keys_reply(argv: Sequence[str], keys: Sequence[KeyRef], with_flags: bool, resp: int) -> bytes:
    """COMMAND GETKEYS's reply (the keys), or GETKEYSANDFLAGS' (each key and its flag set)."""
    out: list[bytes] = []
    if with_flags:
        pairs = [[argv[i], _Set(SimpleString(f) for f in flags)] for i, flags in keys]
        _encode(pairs, resp, out)
    else:
        _encode([argv[i] for i, _ in keys], resp, out)
    return b"".join(out)
