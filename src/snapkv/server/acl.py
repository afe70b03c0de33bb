"""ACL users on the server (Redis 7.0's ``acl.c``): the registry, the checks, logins.

:class:`Acl` is the server's registry (``server.acl``, see :func:`install`):
the users by name, the :class:`~snapkv.server.acl_rules.Catalog` of the
server's commands their rules are bits of, and the ACL LOG. The rules
themselves (parse, describe) live in :mod:`snapkv.server.acl_rules`, the
aclfile in :mod:`snapkv.server.acl_file`.

The dispatcher calls :func:`refusal` for a client whose user is not
unrestricted (``Client.acl_open`` false: so a server where everyone is
the ``default`` user with every permission pays one attribute test per
command, in the fast path's ``Client.plain``); a script's ``redis.call``
calls :func:`script_refusal`. Both run :meth:`Acl.check`, Redis's
``ACLCheckAllUserCommandPerm``: the command, then its keys with the
permission each needs, then its channels, selector by selector
(:mod:`snapkv.server.acl_check`), the first that allows all of it winning.

``requirepass`` is the ``default`` user's password, as in Redis: setting it
(at start or with CONFIG SET) replaces the user's passwords, an empty one
makes it ``nopass``.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from snapkv.server.acl_check import Denial, Keys, channel_allowed, selector_check
from snapkv.server.acl_file import load_configured_users, load_file, user_lines
from snapkv.server.acl_log import AUTH, CHANNEL, COMMAND, KEY, AclLog
from snapkv.server.acl_rules import (
    READ,
    Catalog,
    RuleError,
    User,
    hash_password,
    merge_selector_args,
    new_user,
    set_user,
)
from snapkv.server.commandmeta import has_key_arguments
from snapkv.server.conf import ConfigError
from snapkv.server.resp.writer import error
from snapkv.server.table import COMMANDS, build_table

if TYPE_CHECKING:
    from snapkv.server.client import Client
    from snapkv.server.state import ServerState
    from snapkv.server.table import Command

__all__ = [
    "Acl",
    "Denial",
    "allowed",
    "default_user_nopass",
    "exec_refusal",
    "install",
    "refusal",
    "registry",
    "script_refusal",
]

_NOPERM: Final = {
    COMMAND: "NOPERM this user has no permissions to run the '{}' command",
    KEY: "NOPERM this user has no permissions to access one of the keys used as arguments",
    CHANNEL: "NOPERM this user has no permissions to access one of the channels used as arguments",
}
_SCRIPT: Final = {
    COMMAND: "ERR The user executing the script can't run this command or subcommand",
    KEY: "ERR The user executing the script can't access at least one of the keys mentioned "
    "in the command arguments",
    CHANNEL: "ERR The user executing the script can't publish to the channel mentioned in "
    "the command",
}


class Acl:
    """The server's users, their command catalog and the ACL LOG."""

    def __init__(self, server: ServerState) -> None:
        self.server = server
        self._catalog: Catalog | None = None
        self._declared: dict[str, Command] = {}
        #: The client whose EXEC is running its queue (a failed AUTH there is ``multi``).
        self.in_exec: Client | None = None
        #: Clients let in only while ``default`` is nopass (see _nopass_window), by id.
        self._nopass_only: set[int] = set()
        self._with_keys: dict[str, bool] = {}
        self.log = AclLog()
        self.users: dict[str, User] = {}
        self.users["default"] = self.default_user()
        self.set_requirepass(server.config.requirepass)

    # ------------------------------------------------------------ users

    @property
    def catalog(self) -> Catalog:
        """The server's commands as bits (built once, from its table)."""
        if self._catalog is None:
            # The declared commands, not the server's table: rules name commands
            # as declared whatever rename-command did (Redis's orig_commands).
            table = build_table(COMMANDS)
            self._declared = table
            self._catalog = Catalog(cmd for name, cmd in table.items() if name == cmd.name)
        return self._catalog

    @property
    def pubsub_all(self) -> bool:
        """``acl-pubsub-default allchannels``: new users and selectors get every channel."""
        return bool(self.server.config.acl_pubsub_default == "allchannels")

    def default_user(self) -> User:
        """Redis's ``ACLCreateDefaultUser``: on, nopass, every command, key and channel."""
        user = new_user("default", self.pubsub_all)
        for rule in ("+@all", "~*", "&*", "on", "nopass"):
            set_user(user, rule, self.catalog)
        return user

    def staged(self, name: str, rules: list[str], base: User | None) -> User:
        """``base`` (or a new user) with ``rules`` applied: RuleError names the failing rule."""
        user = base.copy() if base is not None else new_user(name, self.pubsub_all)
        merged, at = merge_selector_args(rules)
        if merged is None:
            raise RuleError(f"Unmatched parenthesis in acl selector starting at '{rules[at]}'.")
        for rule in merged:
            try:
                set_user(user, rule, self.catalog, self.pubsub_all)
            except RuleError as exc:
                raise RuleError(f"Error in ACL SETUSER modifier '{rule}': {exc}") from None
        return user

    def put(self, user: User, current: Client | None = None) -> None:
        """Install ``user`` (new or changed): its clients' permissions follow at once.

        Subscribers that lose a channel are disconnected, as Redis's
        ``ACLKillPubsubClientsIfNeeded``; a changed password logs no one out.
        """
        old = self.users.get(user.name)
        self.users[user.name] = user
        if old is not None:
            self._kill_subscribers(old, user, current)
        if user.name == "default":
            self._nopass_window(user.enabled and user.nopass)
        self.refresh(user.name)

    def _nopass_window(self, open_: bool) -> None:
        """Redis asks ``authRequired`` at each command: while ``default`` is on and
        nopass, a client that never logged in runs commands; once it is not, that
        client needs AUTH again. Such clients are let in for the window only."""
        if open_:
            for client in self.server.clients.values():
                if client.user == "default" and not client.authenticated:
                    client.authenticated = True
                    client.update_plain()
                    self._nopass_only.add(client.id)
            return
        if not self._nopass_only:
            return
        for client in self.server.clients.values():
            if client.id in self._nopass_only and client.user == "default":
                client.authenticated = False
                client.update_plain()
        self._nopass_only.clear()

    def login_default(self, client: Client) -> None:
        """RESET: ``client`` is ``default``, logged in if it needs no password (for good)."""
        self._nopass_only.discard(client.id)
        client.user = "default"
        client.authenticated = self.default_open()
        client.acl_open = self.users["default"].unrestricted()
        client.update_plain()

    def delete(self, name: str, current: Client | None = None) -> bool:
        """Remove user ``name``; its clients are disconnected (``ACLFreeUserAndKillClients``)."""
        if self.users.pop(name, None) is None:
            return False
        default_open = self.users["default"].unrestricted()
        for client in list(self.server.clients.values()):
            if client.user == name:
                # Until it closes it is default, not logged in: the rest of an EXEC
                # that deleted its own user meets default's rules, as in Redis.
                client.user = "default"
                client.authenticated = False
                client.acl_open = default_open
                client.update_plain()
                if client is current:
                    client.close_after_reply = True
                else:
                    client.kill()
        return True

    def refresh(self, name: str) -> None:
        """Recompute ``acl_open`` of the clients of user ``name`` (the fast path's flag)."""
        user = self.users.get(name)
        open_ = user is not None and user.unrestricted()
        for client in self.server.clients.values():
            if client.user == name and client.acl_open != open_:
                client.acl_open = open_
                client.update_plain()

    def replace_all(self, users: dict[str, User], current: Client | None = None) -> None:
        """ACL LOAD: the new users. As Redis, every client of a user but ``default``
        is disconnected (the old users are freed); ``default``'s stay, with its new rules."""
        for name in [n for n in self.users if n != "default"]:
            self.delete(name, current)
        default = self.users["default"]
        self.users = {name: user for name, user in users.items() if name != "default"}
        self.users["default"] = default
        self.put(users["default"], current)
        for name in self.users:
            self.refresh(name)

    def set_requirepass(self, password: str | None) -> None:
        """``requirepass``: the ``default`` user's one password, or nopass (Redis's
        ``ACLUpdateDefaultUserPassword``)."""
        user = self.users["default"].copy()
        set_user(user, "resetpass", self.catalog)
        set_user(user, "nopass" if password is None else ">" + password, self.catalog)
        self.put(user)

    def config_user_lines(self) -> list[str]:
        """CONFIG REWRITE's ``user`` lines (Redis's ``rewriteConfigUserOption``): every
        user, ``default`` too, unless an aclfile holds them (then none: the file's go)."""
        return [] if self.server.config.aclfile else user_lines(self)

    def default_open(self) -> bool:
        """Whether a new connection is logged in at once (the default user: on, nopass)."""
        user = self.users.get("default")
        return user is not None and user.enabled and user.nopass

    # ------------------------------------------------------------ checks

    def check(self, user: User, cmd: Command, argv: list[str]) -> tuple[Denial, int] | None:
        """Redis's ``ACLCheckAllUserCommandPerm``: ``None`` if some selector allows it all.

        Otherwise the denial to report (and the argument index Redis
        would name): a command no selector may run, else the key or
        channel refused furthest into the arguments.
        """
        with_keys = self._with_keys.get(cmd.full_name)
        if with_keys is None:  # commandmeta's answer, asked once per command
            with_keys = self._with_keys[cmd.full_name] = has_key_arguments(cmd)
        keys = Keys(cmd, argv) if with_keys else None
        relevant = (COMMAND, 0, cmd.full_name)
        for selector in user.selectors:
            denied = selector_check(selector, self.catalog, cmd, argv, keys)
            if denied is None:
                return None
            if denied[0] > relevant[0] or (denied[0] == relevant[0] and denied[1] > relevant[1]):
                relevant = denied
        return Denial(relevant[0], relevant[2]), relevant[1]

    def full_key_access(self, username: str, name: str, argv: list[str]) -> bool:
        """Redis's ``ACLUserCheckCmdWithUnrestrictedKeyAccess`` for reading: whether a
        selector that allows this request (command ``name``, as declared) also allows
        reading every key, by ``allkeys`` or a ``*`` pattern with read permission.

        SORT asks it before BY or GET patterns read keys that no key check sees
        (the request names only the sorted key and STORE's destination).
        """
        user = self.users.get(username)
        if user is None or user.unrestricted():
            return True  # no user: a deleted user's client, being disconnected
        catalog = self.catalog  # made with the declared table
        cmd = self._declared[name]
        keys = Keys(cmd, argv)
        return any(
            (selector.allkeys or selector.keys.get("*", 0) & READ)
            and selector_check(selector, catalog, cmd, argv, keys) is None
            for selector in user.selectors
        )

    def note(
        self, client: Client, reason: int, context: str, obj: str, username: str | None = None
    ) -> None:
        """Add an event to the ACL LOG (Redis's ``addACLLogEntry``)."""
        self.log.add(
            reason,
            context=context,
            obj=obj,
            username=client.user if username is None else username,
            client_info=client.info_line(),
            max_len=self.server.config.acllog_max_len,
        )

    def authenticate(self, client: Client, username: str, password: str, word: str) -> bool:
        """AUTH / HELLO AUTH: log ``client`` in, or note the failure (``ACLAuthenticateUser``)."""
        user = self.users.get(username)
        ok = user is not None and user.enabled
        if ok and user is not None and not user.nopass:
            digest = hash_password(password)
            ok = any(hmac.compare_digest(digest, known) for known in user.passwords)
        if not ok:
            in_multi = client.multi is not None or self.in_exec is client
            self.note(client, AUTH, "multi" if in_multi else "toplevel", word, username)
            return False
        assert user is not None
        self._nopass_only.discard(client.id)
        client.authenticated = True
        client.user = username
        client.acl_open = user.unrestricted()
        client.update_plain()
        return True

    def _kill_subscribers(self, old: User, new: User, current: Client | None) -> None:
        """Disconnect ``old``'s subscribers to a channel ``new`` no longer allows."""
        if any(s.allchannels for s in new.selectors):
            return
        allowed = [c for s in new.selectors for c in s.channels]
        if all(c in allowed for s in old.selectors for c in s.channels) and not any(
            s.allchannels for s in old.selectors
        ):
            return
        for client in list(self.server.clients.values()):
            if client.user != old.name or not client.subscribed:
                continue
            if (
                any(p not in allowed for p in client.patterns)
                or any(not channel_allowed(allowed, c, False) for c in client.channels)
                or any(not channel_allowed(allowed, c, False) for c in client.shard_channels)
            ):
                if client is current:
                    client.close_after_reply = True
                else:
                    client.kill()


def install(server: ServerState) -> None:
    """Give ``server`` its registry (``server.acl``); CONFIG SET requirepass goes through it."""
    acl = Acl(server)
    config = server.config
    # As Redis's ACLLoadUsersAtStartup: the config file's users, or the aclfile
    # (Config.check refuses both); an error refuses the start (ConfigError).
    if config.acl_users:
        users = load_configured_users(acl, config.acl_users)
        acl.replace_all(users)
    if config.aclfile:
        try:
            acl.replace_all(load_file(acl, config.aclfile))
        except ConfigError as exc:
            raise ConfigError(f"Aborting startup because of ACL errors: {exc}") from None
    server.acl = acl
    server.config_checks.append(lambda values: _requirepass_changed(acl, values))


def _requirepass_changed(acl: Acl, values: dict[str, Any]) -> Callable[[], None] | None:
    """CONFIG SET requirepass: the default user's password, set once the whole request applies."""
    if "requirepass" not in values:
        return None
    password = values["requirepass"]
    return lambda: acl.set_requirepass(password)


def registry(server: ServerState) -> Acl:
    """``server``'s registry, typed."""
    acl: Acl = server.acl
    return acl


def default_user_nopass(server: ServerState) -> bool:
    """Whether the ``default`` user needs no password (protected mode's question)."""
    user = registry(server).users.get("default")
    return user is not None and user.nopass


def refusal(server: ServerState, client: Client, cmd: Command, argv: list[str]) -> bytes | None:
    """The dispatcher's check: ``None``, or the NOPERM error (logged) for this request."""
    acl = registry(server)
    user = acl.users.get(client.user)
    if user is None:
        return None  # a deleted user's client is being disconnected
    found = acl.check(user, cmd, argv)
    if found is None:
        return None
    denial, _ = found
    client.last_command = cmd.full_name
    acl.note(
        client, denial.reason, "multi" if client.multi is not None else "toplevel", denial.object
    )
    return error(_NOPERM[denial.reason].format(cmd.full_name))


def script_refusal(
    server: ServerState, script: Client, caller: Client, cmd: Command, argv: list[str]
) -> str | None:
    """A script's ``redis.call``: ``None``, or the error text (logged as context ``lua``)."""
    acl = registry(server)
    user = acl.users.get(script.user)
    if user is None or user.unrestricted():
        return None
    found = acl.check(user, cmd, argv)
    if found is None:
        return None
    denial, _ = found
    acl.note(caller, denial.reason, "lua", denial.object, script.user)
    return _SCRIPT[denial.reason]


def allowed(server: ServerState, username: str, cmd: Command, argv: list[str]) -> bool:
    """Whether user ``username`` may run ``argv`` (a script's ``redis.acl_check_cmd``)."""
    user = registry(server).users.get(username)
    return user is not None and registry(server).check(user, cmd, argv) is None


def exec_refusal(client: Client, cmd: Command, argv: list[str]) -> bytes | None:
    """EXEC's second check of a queued command (the rules may have changed since it was queued)."""
    if client.acl_open:
        return None
    acl = registry(client.server)
    user = acl.users.get(client.user)
    if user is None:
        return None
    found = acl.check(user, cmd, argv)
    if found is None:
        return None
    denial, _ = found
    acl.note(client, denial.reason, "multi", denial.object)
    why = {
        COMMAND: "no permission to execute the command or subcommand",
        KEY: "no permission to touch the specified keys",
        CHANNEL: "no permission to access one of the channels used as arguments",
    }[denial.reason]
    return error(
        "NOPERM ACLs rules changed between the moment the transaction was accumulated and the "
        f"EXEC call. This command is no longer allowed for the following reason: {why}"
    )
