"""Transactions: MULTI EXEC DISCARD WATCH UNWATCH (Redis's ``multi.c``).

MULTI makes the dispatcher queue every later command (see
:mod:`snapkv.server.dispatch`); EXEC runs the queue as one step, unless a
command was refused while queueing (``EXECABORT``) or a WATCHed key was
written or expired since WATCH (a null array). The WATCH bookkeeping lives
in ``ServerState`` (``watch``, ``touch``, ``touch_db``): every write the
dispatcher runs marks the transactions watching its keys.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from snapkv.server.acl import exec_refusal, registry
from snapkv.server.resp.writer import OK, error
from snapkv.server.table import CommandError, command

if TYPE_CHECKING:
    from snapkv.server.client import Client

log = logging.getLogger("snapkv.server")

__all__: list[str] = []

_TX = "transactions"
_FLAGS = "noscript loading stale fast allow_busy"
_EXECABORT = error("EXECABORT Transaction discarded because of previous errors.")
#: The commands that run a script: an EXEC holding one runs on the script thread.
_SCRIPTS = frozenset({"eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"})


@command("multi", 1, _FLAGS, group=_TX)
def multi(client: Client, argv: list[str]) -> bytes:
    """Start queueing commands."""
    if client.multi is not None:
        raise CommandError("ERR MULTI calls can not be nested")
    client.multi = []
    client.multi_failed = False
    client.update_plain()
    return OK


@command("discard", 1, _FLAGS, group=_TX)
def discard(client: Client, argv: list[str]) -> bytes:
    """Drop the queued commands and every WATCH."""
    if client.multi is None:
        raise CommandError("ERR DISCARD without MULTI")
    client.multi = None
    client.multi_failed = False
    client.update_plain()
    client.unwatch()
    return OK


@command("exec", 1, "noscript loading stale skip_slowlog", group=_TX)
def exec_(client: Client, argv: list[str]) -> bytes:
    """Run the queued commands as one atomic step, unless a WATCHed key changed."""
    queued = client.multi
    if queued is None:
        raise CommandError("ERR EXEC without MULTI")
    client.multi = None
    client.update_plain()
    server = client.server
    if client.multi_failed:
        client.multi_failed = False
        client.unwatch()
        return _EXECABORT
    aborted = client.dirty_cas or (client.watched and server.watch_expired(client))
    client.unwatch()
    if aborted:
        return client.null_array

    # All or nothing on disk: the queued commands' writes become ONE journal
    # record when the block ends (Redis wraps them in MULTI ... EXEC in its
    # AOF and drops an incomplete block on load). A command that fails is
    # its own error reply, as in Redis, and the others still run; call()
    # turns every Exception into such a reply. Anything that escapes the
    # loop anyway, or a journal that refuses the record, undoes every write
    # of the block and reaches call() as this EXEC's error (``ERR exec: ...``).
    def body() -> bytes:
        acl = registry(server)
        acl.in_exec = client  # the queue runs as part of MULTI (a failed AUTH's context)
        try:
            with server.store.transaction():
                replies = [
                    exec_refusal(client, cmd, args) or server.call(client, cmd, args)
                    for cmd, args in queued
                ]
        finally:
            acl.in_exec = None
            later, server.after_transaction = server.after_transaction, []
        for step in later:  # e.g. CONFIG SET appendfsync: a journal rotation
            try:
                step()
            except Exception as exc:  # the block's replies are already decided
                log.error("after EXEC: %s", exc)
        return b"*%d\r\n%s" % (len(replies), b"".join(replies))

    if server.threadsafe_call is not None and any(cmd.name in _SCRIPTS for cmd, _ in queued):
        # A script in the block may run past busy-reply-threshold: the block
        # runs on the script engine's thread, so the loop can answer BUSY and
        # SCRIPT KILL meanwhile (as Redis does for a script inside EXEC).
        from snapkv.server.scripting import engine_of  # noqa: PLC0415 - lupa on first use

        try:
            engine = engine_of(server)
        except CommandError:  # no Lua runtime: each script answers so itself
            return body()
        return engine.run_exec(client, body, argv)
    return body()


@command("watch", -2, _FLAGS, keys=(1, -1, 1), group=_TX)
def watch(client: Client, argv: list[str]) -> bytes:
    """Make the next EXEC fail if any of these keys is written before it."""
    if client.multi is not None:
        raise CommandError("ERR WATCH inside MULTI is not allowed")
    for key in argv[1:]:
        client.server.watch(client, key)
    return OK


@command("unwatch", 1, _FLAGS, group=_TX)
def unwatch(client: Client, argv: list[str]) -> bytes:
    """Forget every WATCHed key."""
    client.unwatch()
    return OK
