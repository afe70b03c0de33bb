"""Persistence commands: SAVE BGSAVE LASTSAVE SHUTDOWN FLUSHDB FLUSHALL.

SAVE and SHUTDOWN snapshot on the event loop (every client waits, as in
Redis); BGSAVE snapshots from a thread (see ``ServerState.bgsave``). Both
are refused inside MULTI, as Redis 7 flags them ``no-multi``: a snapshot
in the middle of a transaction would publish half of it. SAVE and BGSAVE
write to the data directory whatever the ``save`` rules say, as Redis's do
(a memory-only server too); SHUTDOWN snapshots only when there are rules
(see ``ServerState.prepare_shutdown``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from snapkv.server.resp.writer import OK, integer
from snapkv.server.table import ERR_SYNTAX, CommandError, command

if TYPE_CHECKING:
    from snapkv.server.client import Client

__all__: list[str] = []

log = logging.getLogger("snapkv.server")

_SRV = "server"


@command("lastsave", 1, "loading stale fast", group=_SRV)
def lastsave(client: Client, argv: list[str]) -> bytes:
    return integer(client.server.last_save)


@command("save", 1, "admin noscript no_multi", group=_SRV, summary="Snapshot synchronously")
def save(client: Client, argv: list[str]) -> bytes:
    server = client.server
    if server.bgsave_thread is not None and server.bgsave_thread.is_alive():
        raise CommandError("ERR Background save already in progress")
    try:
        server.save()
    except Exception as exc:
        log.error("SAVE failed: %s", exc)
        raise CommandError(f"ERR snapshot failed: {exc}") from None
    return OK


@command("bgsave", -1, "admin noscript", group=_SRV, since="1.0.0")
def bgsave(client: Client, argv: list[str]) -> bytes:
    if len(argv) > 2 or (len(argv) == 2 and argv[1].lower() != "schedule"):
        raise CommandError(ERR_SYNTAX)
    if not client.server.bgsave():
        raise CommandError("ERR Background save already in progress")
    return b"+Background saving started\r\n"


@command("shutdown", -1, "admin noscript loading stale no_multi allow_busy", group=_SRV)
def shutdown(client: Client, argv: list[str]) -> bytes:
    """SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE]: Redis's ``prepareForShutdown``, then stop.

    Without SAVE or NOSAVE a snapshot is taken only if ``save`` rules are
    configured, as in Redis (a memory-only server exits without one; with
    a journal, the journal already holds every write). On success the
    connection closes without a reply; if the snapshot (or the journal's
    sync) fails the server keeps running and says so, unless FORCE.
    """
    options = {a.lower() for a in argv[1:]}
    if not options <= {"nosave", "save", "now", "force", "abort"} or {"save", "nosave"} <= options:
        raise CommandError(ERR_SYNTAX)
    if "abort" in options:
        if len(options) > 1:
            raise CommandError(ERR_SYNTAX)
        raise CommandError("ERR No shutdown in progress.")
    server = client.server
    save = True if "save" in options else False if "nosave" in options else None
    log.warning("User requested shutdown...")
    if not server.prepare_shutdown(save=save, force="force" in options):
        raise CommandError("ERR Errors trying to SHUTDOWN. Check logs.")
    server.shutdown_requested = True
    client.close_after_reply = True
    return b""


# ------------------------------------------------------------------- flush


def _flush_mode(argv: list[str]) -> None:
    if len(argv) > 2 or (len(argv) == 2 and argv[1].lower() not in ("async", "sync")):
        raise CommandError(ERR_SYNTAX)


@command("flushdb", -1, "write", group="server")
def flushdb(client: Client, argv: list[str]) -> bytes:
    _flush_mode(argv)
    # Redis's ``server.dirty += emptyData(...)``: the keys removed (0 for an empty one).
    client.changes += len(client.db)
    client.db.clear()
    client.server.touch_db(client.db_index)
    return OK


@command("flushall", -1, "write", group="server")
def flushall(client: Client, argv: list[str]) -> bytes:
    """FLUSHALL, then with save rules a snapshot of the empty store (``flushAllDataAndResetRDB``).

    Without that snapshot, a server without a journal that dies before its
    next scheduled save would come back with every key FLUSHALL removed.
    As in Redis, a failed snapshot does not fail the FLUSHALL (it is logged,
    and the changes stay counted for the save rules).
    """
    _flush_mode(argv)
    server = client.server
    removed = sum(len(space) for space in server.keyspaces)
    server.store.flush_all()
    server.touch_db(None)
    if server.config.save and server.data_dir is not None:
        try:
            server.save("FLUSHALL")
        except Exception as exc:  # e.g. inside MULTI/EXEC, which is one transaction
            log.warning("FLUSHALL: the snapshot after it failed: %s", exc)
        else:
            return OK
    client.changes += removed
    return OK
