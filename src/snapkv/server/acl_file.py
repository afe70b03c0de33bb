"""The aclfile and the config file's ``user`` lines (``ACLLoadFromFile``, ``ACLSaveToFile``).

The file holds one ``user <name> <rules...>`` line per user, as ACL LIST
prints them. Loading is all or nothing: every line is tried against a
fresh set of users, and any error (named ``file:line``) keeps the users
as they were. Saving writes the whole file with ``_fs.atomic_write``
(temp file, fsync, rename, directory fsync), so a crash leaves the old
file or the new one, never half of one.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from snapkv._fs import atomic_write
from snapkv.server.acl_describe import describe_user
from snapkv.server.acl_rules import (
    E_UNKNOWN,
    RuleError,
    User,
    has_spaces,
    merge_selector_args,
    new_user,
    set_user,
)
from snapkv.server.conf import ConfigError

if TYPE_CHECKING:
    from snapkv.server.acl import Acl

__all__ = ["load_configured_users", "load_file", "save_file", "user_lines"]


def load_file(acl: Acl, path: str) -> dict[str, User]:
    """The users ``path`` defines; ConfigError with Redis's text (every error found) if any.

    ``default`` is created as Redis's default user when the file does not define it.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise ConfigError(
            f"Error loading ACLs, opening file '{path}': {exc.strerror or exc}"
        ) from None
    errors: list[str] = []
    users: dict[str, User] = {}
    for number, raw in enumerate(data.decode("utf-8", "surrogateescape").split("\n"), 1):
        line = raw.strip(" \t\r\n")
        if not line:
            continue
        words = [w for w in line.split(" ") if w]
        if not words:
            continue
        if words[0] != "user" or len(words) < 2:
            errors.append(
                f"{path}:{number} should start with user keyword followed by the username. "
            )
            continue
        name = words[1]
        if has_spaces(name):
            errors.append(f"'{path}:{number}: username '{name}' contains invalid characters. ")
            continue
        if name in users:
            errors.append(f"WARNING: Duplicate user '{name}' found on line {number}. ")
            continue
        user = new_user(name, acl.pubsub_all)
        users[name] = user
        merged, _ = merge_selector_args(words[2:])
        if merged is None:
            errors.append(f"{path}:{number}: Unmatched parenthesis in selector definition.")
            continue
        first = True
        for rule in (r.strip("\t\r\n") for r in merged):
            try:
                set_user(user, rule, acl.catalog, acl.pubsub_all)
            except RuleError as exc:
                # As Redis: an unknown command or category is named every time (the
                # name tells nothing secret); of the others only the line's first is
                # told, without the rule (a password may be in it; it may explain the rest).
                if str(exc) == E_UNKNOWN:
                    errors.append(f"{path}:{number}: Error in applying operation '{rule}': {exc}. ")
                elif first:
                    errors.append(f"{path}:{number}: {exc}. ")
                    first = False
    if errors:
        raise ConfigError(
            "".join(errors)
            + "WARNING: ACL errors detected, no change to the previously active ACL rules "
            "was performed"
        )
    if "default" not in users:
        users["default"] = acl.default_user()
    return users


def user_lines(acl: Acl) -> list[str]:
    """Every user as a ``user <name> <rules>`` line, sorted by name as Redis's rax."""
    return [
        f"user {name} {describe_user(acl.users[name], acl.catalog)}"
        for name in sorted(acl.users, key=lambda n: n.encode("utf-8", "surrogateescape"))
    ]


def save_file(acl: Acl, path: str) -> None:
    """Write every user to ``path`` atomically; OSError if not."""
    text = "".join(f"{line}\n" for line in user_lines(acl))
    directory, name = os.path.split(os.path.abspath(path))
    atomic_write(
        directory,
        name,
        [text.encode("utf-8", "surrogateescape")],
        temp_name=f"{name}.tmp-{os.getpid()}",
    )


def load_configured_users(acl: Acl, definitions: list[list[str]]) -> dict[str, User]:
    """The config file's ``user`` lines as users (Redis's ``ACLLoadConfiguredUsers``).

    A ``default`` line resets the default user first; ConfigError names
    the rule and user that cannot apply.
    """
    users = dict(acl.users)
    for words in definitions:
        name, rules = words[0], words[1:]
        if has_spaces(name):
            raise ConfigError("Spaces not allowed in ACL usernames")
        if name in users and name != "default":
            raise ConfigError(
                f"Error in user declaration '{name}': Duplicate user found. A user can only "
                "be defined once in config files"
            )
        user = users["default"].copy() if name == "default" else new_user(name, acl.pubsub_all)
        if name == "default":
            set_user(user, "reset", acl.catalog, acl.pubsub_all)
        merged, at = merge_selector_args(rules)
        if merged is None:
            raise ConfigError(
                f"Error in user declaration '{name}': Unmatched parenthesis in acl selector "
                f"starting at '{rules[at]}'."
            )
        for rule in merged:
            try:
                set_user(user, rule, acl.catalog, acl.pubsub_all)
            except RuleError as exc:
                raise ConfigError(
                    f"Error loading ACL rule '{rule}' for the user named '{name}': {exc}"
                ) from None
        users[name] = user
    return users
