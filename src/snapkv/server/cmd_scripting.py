"""Scripting (EVAL, EVALSHA, SCRIPT, FCALL, FUNCTION): not implemented, so not declared.

A server without a command answers Redis's ``ERR unknown command '<name>',
with args beginning with: ...`` and leaves it out of COMMAND, as Redis does
for a command it does not have. An earlier version declared the scripting
commands and answered as a Redis with an empty script cache (``NOSCRIPT``,
``SCRIPT EXISTS`` all 0, ``FUNCTION LIST`` empty): that listed them in
COMMAND and COMMAND COUNT as if scripts could run, and no client needs it.
redis-py, for one, only sends these commands when the program runs a script
(``register_script``, ``Lock.release``, pipelines with scripts): its
``Script`` object answers ``NOSCRIPT`` by sending ``SCRIPT LOAD``, and an
unknown-command error stops it at once with a message that says why. No
client sends them on connect.

This module is where a scripting engine's commands will be declared (see
Redis's ``eval.c`` and ``script_lua.c``).
"""

from __future__ import annotations

__all__: list[str] = []
