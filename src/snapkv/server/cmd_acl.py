"""ACL: SETUSER GETUSER DELUSER LIST USERS WHOAMI CAT LOG GENPASS DRYRUN SAVE LOAD HELP.

Replies and errors as Redis 7.0's ``aclCommand``; the users, the checks
and the log are :mod:`snapkv.server.acl`'s, the rules
:mod:`snapkv.server.acl_rules`', the file :mod:`snapkv.server.acl_file`'s.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING, Final

from snapkv.server.acl import registry
from snapkv.server.acl_describe import describe_commands, describe_user, key_pattern_text
from snapkv.server.acl_file import load_file, save_file
from snapkv.server.acl_log import CHANNEL, COMMAND
from snapkv.server.acl_rules import USER_FLAGS, RuleError, has_spaces
from snapkv.server.commandmeta import CATEGORIES
from snapkv.server.conf import ConfigError
from snapkv.server.resp.writer import OK, SimpleString, bulk
from snapkv.server.table import CommandError, command, parse_int

if TYPE_CHECKING:
    from snapkv.server.acl_rules import Selector
    from snapkv.server.client import Client

__all__: list[str] = []

log = logging.getLogger("snapkv.server")

_SRV = "server"
_ADMIN = "admin noscript loading stale"
_GENPASS_MAX_BITS: Final = 4096
_NO_FILE: Final = (
    "ERR This Redis instance is not configured to use an ACL file. You may want to specify "
    "users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a "
    "Redis configuration file set) in order to store users in the Redis configuration."
)
_HELP: Final = (
    "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bits>]",
    "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "LOAD",
    "    Reload users from the ACL file.",
    "LOG [<count> | RESET]",
    "    Show the ACL log entries.",
    "SAVE",
    "    Save the current config to the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
    "HELP",
    "    Prints this help.",
)


def _by_name(names: list[str]) -> list[str]:
    """Redis keeps users in a radix tree: listed in byte order."""
    return sorted(names, key=lambda n: n.encode("utf-8", "surrogateescape"))


@command("acl|setuser", -3, _ADMIN, group=_SRV, summary="Creates or modifies an ACL user")
def acl_setuser(client: Client, argv: list[str]) -> bytes:
    """All the rules or none: they are tried on a copy, installed only if every one applies.

    The request's arguments after SETUSER are replaced by ``(redacted)``
    first, as Redis's ``redactClientCommandArgument``: the dispatcher hands
    the slow log this same list, and a ``>password`` must never reach it.
    """
    name, rules = argv[2], argv[3:]
    argv[2:] = ["(redacted)"] * (len(argv) - 2)
    if has_spaces(name):
        raise CommandError("ERR Usernames can't contain spaces or null characters")
    acl = registry(client.server)
    try:
        user = acl.staged(name, rules, acl.users.get(name))
    except RuleError as exc:
        raise CommandError(f"ERR {exc}") from None
    acl.put(user, client)
    return OK


def _selector_fields(selector: Selector, client: Client) -> dict[str, str]:
    """Redis's ``aclAddReplySelectorDescription``: commands, keys, channels."""
    acl = registry(client.server)
    if selector.allkeys:
        keys = "~*"
    else:
        keys = " ".join(key_pattern_text(p, f) for p, f in selector.keys.items())
    channels = "&*" if selector.allchannels else " ".join("&" + c for c in selector.channels)
    return {
        "commands": describe_commands(selector, acl.catalog),
        "keys": keys,
        "channels": channels,
    }


@command("acl|getuser", 3, _ADMIN, group=_SRV, summary="Lists the ACL rules of a user")
def acl_getuser(client: Client, argv: list[str]) -> bytes:
    user = registry(client.server).users.get(argv[2])
    if user is None:
        return client.null
    flags = [flag for flag in USER_FLAGS if flag in user.flags]
    # A set in RESP3, in Redis's flag order (a Python set would reorder it).
    out = [b"%%%d\r\n" % 6 if client.resp == 3 else b"*12\r\n", bulk("flags")]
    out.append((b"~%d\r\n" if client.resp == 3 else b"*%d\r\n") % len(flags))
    out.extend(bulk(flag) for flag in flags)
    out.append(bulk("passwords"))
    out.append(client.encode(list(user.passwords)))
    for field, value in _selector_fields(user.root, client).items():
        out.append(bulk(field) + bulk(value))
    out.append(bulk("selectors"))
    out.append(client.encode([_selector_fields(s, client) for s in user.selectors[1:]]))
    return b"".join(out)


@command("acl|deluser", -3, _ADMIN, group=_SRV, summary="Deletes ACL users")
def acl_deluser(client: Client, argv: list[str]) -> bytes:
    if "default" in argv[2:]:
        raise CommandError("ERR The 'default' user cannot be removed")
    acl = registry(client.server)
    return b":%d\r\n" % sum(acl.delete(name, client) for name in argv[2:])


@command("acl|list", 2, _ADMIN, group=_SRV, summary="Dumps the effective rules in ACL file format")
def acl_list(client: Client, argv: list[str]) -> bytes:
    acl = registry(client.server)
    return client.encode(
        [
            f"user {name} {describe_user(acl.users[name], acl.catalog)}"
            for name in _by_name(list(acl.users))
        ]
    )


@command("acl|users", 2, _ADMIN, group=_SRV, summary="Lists all ACL users")
def acl_users(client: Client, argv: list[str]) -> bytes:
    return client.encode(_by_name(list(registry(client.server).users)))


@command("acl|whoami", 2, "noscript loading stale", group=_SRV, summary="Returns the username")
def acl_whoami(client: Client, argv: list[str]) -> bytes:
    return bulk(client.user)


@command("acl|cat", -2, "noscript loading stale", group=_SRV, summary="Lists the ACL categories")
def acl_cat(client: Client, argv: list[str]) -> bytes:
    """The categories, or the commands (and subcommands) of one."""
    if len(argv) > 3:
        raise CommandError(
            f"ERR unknown subcommand or wrong number of arguments for '{argv[1]}'. Try ACL HELP."
        )
    if len(argv) == 2:
        return client.encode(list(CATEGORIES))
    catalog = registry(client.server).catalog
    mask = catalog.categories.get(argv[2].lower())
    if mask is None:
        raise CommandError(f"ERR Unknown category '{argv[2][:128]}'")
    return client.encode([name for i, name in enumerate(catalog.names) if mask >> i & 1])


@command("acl|genpass", -2, "noscript loading stale", group=_SRV, summary="Generates a password")
def acl_genpass(client: Client, argv: list[str]) -> bytes:
    if len(argv) > 3:
        raise CommandError(
            f"ERR unknown subcommand or wrong number of arguments for '{argv[1]}'. Try ACL HELP."
        )
    bits = parse_int(argv[2]) if len(argv) == 3 else 256
    if not 0 < bits <= _GENPASS_MAX_BITS:
        raise CommandError(
            "ERR ACL GENPASS argument must be the number of bits for the output password, "
            f"a positive number up to {_GENPASS_MAX_BITS}"
        )
    chars = (bits + 3) // 4
    return bulk(secrets.token_hex((chars + 1) // 2)[:chars])


@command("acl|log", -2, _ADMIN, group=_SRV, summary="Lists recent security events")
def acl_log(client: Client, argv: list[str]) -> bytes:
    if len(argv) > 3:
        raise CommandError(
            f"ERR unknown subcommand or wrong number of arguments for '{argv[1]}'. Try ACL HELP."
        )
    log = registry(client.server).log
    count = 10
    if len(argv) == 3:
        if argv[2].lower() == "reset":
            log.reset()
            return OK
        count = parse_int(argv[2])
    return client.encode(log.newest(count))


@command("acl|dryrun", -4, _ADMIN, group=_SRV, summary="Simulates a command run by a user")
def acl_dryrun(client: Client, argv: list[str]) -> bytes:
    """OK, or (a bulk string, not an error) why the user may not run the command."""
    acl = registry(client.server)
    user = acl.users.get(argv[2])
    if user is None:
        raise CommandError(f"ERR User '{argv[2]}' not found")
    table = client.server.table
    cmd = table.get(argv[3]) or table.get(argv[3].lower())
    if cmd is not None and cmd.subcommands is not None and len(argv) > 4:
        cmd = cmd.subcommands.get(argv[4]) or cmd.subcommands.get(argv[4].lower())
    if cmd is None:
        raise CommandError(f"ERR Command '{argv[3]}' not found")
    request = argv[3:]
    if not cmd.min_args <= len(request) <= cmd.max_args:
        raise CommandError(f"ERR wrong number of arguments for '{cmd.full_name}' command")
    found = acl.check(user, cmd, request)
    if found is None:
        return OK
    denial, _ = found
    if denial.reason == COMMAND:
        return bulk(f"This user has no permissions to run the '{cmd.full_name}' command")
    what = "channel" if denial.reason == CHANNEL else "key"
    return bulk(f"This user has no permissions to access the '{denial.object}' {what}")


@command("acl|save", 2, _ADMIN, group=_SRV, summary="Saves the ACL rules to the aclfile")
def acl_save(client: Client, argv: list[str]) -> bytes:
    path = client.server.config.aclfile
    if not path:
        raise CommandError(_NO_FILE)
    try:
        save_file(registry(client.server), path)
    except OSError as exc:
        # The reply sends the operator to the log: say there what failed, and where.
        log.warning("ACL SAVE: writing '%s' failed: %s", path, exc.strerror or exc)
        raise CommandError(
            "ERR There was an error trying to save the ACLs. Please check the server logs "
            "for more information"
        ) from None
    return OK


@command("acl|load", 2, _ADMIN, group=_SRV, summary="Reloads the rules from the aclfile")
def acl_load(client: Client, argv: list[str]) -> bytes:
    path = client.server.config.aclfile
    if not path:
        raise CommandError(_NO_FILE)
    acl = registry(client.server)
    try:
        users = load_file(acl, path)
    except ConfigError as exc:
        raise CommandError(f"ERR {exc}") from None
    acl.replace_all(users, client)
    return OK


@command("acl|help", 2, "loading stale", group=_SRV, summary="Shows helpful text")
def acl_help(client: Client, argv: list[str]) -> bytes:
    return client.encode([SimpleString(line) for line in _HELP])
