"""Command metadata: Redis's ACL categories of every command.

ACL rules (``+@read``, ``-@dangerous``) and COMMAND INFO both read a
command's categories from here, so the two can never disagree.
"""

from __future__ import annotations

from typing import Final

from snapkv.server.table import Command

__all__ = ["CATEGORIES", "categories"]

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

#: A command group's category (Redis's setImplicitACLCategories and the json files).
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


def categories(cmd: Command) -> list[str]:
    """``cmd``'s ACL categories (without the ``@``), in :data:`CATEGORIES` order."""
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
