"""``rename-command``, as Redis 7.0's config.c applies it to the command table.

A config file line ``rename-command NAME NEWNAME`` takes the command out of
the table under its name and puts it back under the new one; ``""`` as the
new name leaves it out (the command is disabled). As in Redis:

* only the new name runs it; the old one is an unknown command
  (``ERR unknown command 'get', ...``);
* the command itself keeps its name: COMMAND INFO NEWNAME describes it as
  ``get``, arity errors say ``'get'``, COMMAND COUNT still counts it
  (a disabled command is no longer counted);
* a name that is not a command (``No such command in rename-command``)
  or a new name already taken (``Target command name already exists``)
  stops the start. Redis checks this while reading the file; here the
  table is built after the file was read, so the error names the line's
  words instead of its number.

Lines apply in order, so a command renamed twice needs the second line to
name it by its first new name, as in Redis.
"""

from __future__ import annotations

from collections.abc import Sequence

from snapkv.server.conf import ConfigError
from snapkv.server.table import Command

__all__ = ["apply_renames"]


def apply_renames(table: dict[str, Command], renames: Sequence[tuple[str, str]]) -> None:
    """Rename (or, with ``""``, remove) commands in ``table``, a dispatcher's name -> Command map.

    The table holds each name in lower and upper case (see ``build_table``);
    both spellings move together.

    :raises ConfigError: Redis's text, with the line's words.
    """
    for name, new_name in renames:
        cmd = table.get(name.lower())
        if cmd is None or "|" in name:
            raise ConfigError(
                f"rename-command {name} {new_name!r}: No such command in rename-command"
            )
        for spelt in (name.lower(), name.upper()):
            table.pop(spelt, None)
        if not new_name:
            continue
        if new_name.lower() in table:
            raise ConfigError(
                f"rename-command {name} {new_name}: Target command name already exists"
            )
        table[new_name.lower()] = table[new_name.upper()] = cmd
