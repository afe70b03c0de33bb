"""``snapkv serve``: a Redis-protocol (RESP2/RESP3) server over a Store.

Install with ``pip install '.[server]'`` from a clone (hiredis's parser and uvloop;
both optional: without them a pure-Python parser and asyncio's own loop
give the same answers, slower). Run with ``snapkv serve``, or from Python::

    from snapkv.server import Config, serve
    serve(Config(port=6380), directory="data")   # until SHUTDOWN or SIGTERM
    serve(Config(port=6380))                     # memory only: no directory

Three layers, as in Redis (``networking.c`` / ``server.c`` / ``t_string.c``):
:mod:`~snapkv.server.resp` turns bytes into commands and replies into
bytes without I/O; :mod:`~snapkv.server.dispatch` checks every request
against the table (:mod:`~snapkv.server.table`) that the ``cmd_*`` family
modules declare, and runs its handler; :mod:`~snapkv.server.network` and
:mod:`~snapkv.server.connection` only move bytes.

Values are binary-safe. The Store holds ``str``, the wire carries bytes:
every argument is decoded as UTF-8 with ``errors="surrogateescape"`` and
every reply encoded the same way. Valid UTF-8 becomes the text it spells
(so a value set over the wire reads back as that text from Python), and
each byte of an invalid sequence becomes one lone surrogate U+DC80..U+DCFF,
which encodes back to exactly that byte: all 256 byte values and any byte
string round-trip byte for byte. (The Store persists ``str`` with
``surrogatepass``, so such values also survive snapshots and the journal.)
A Python program that writes a lone surrogate in that range itself will
read it back over the wire as the raw byte; other lone surrogates cannot be
sent as UTF-8 at all and are refused by the encoder.

Persistence follows Redis's words: ``SAVE`` snapshots the Store,
``BGSAVE`` snapshots from a thread (point-in-time without forking, see
``ServerState.bgsave``), ``save`` rules start BGSAVEs, ``appendonly`` is
the Store's journal and ``appendfsync`` its fsync policy, and ``SHUTDOWN``
and SIGTERM (or SIGINT) are Redis's ``prepareForShutdown``: a snapshot if
there are ``save`` rules, the journal synced, then exit
(``ServerState.prepare_shutdown``). ``snapkv serve`` starts from
redis-server's defaults (the current directory, the journal, Redis 7.0's
save rules); ``Config()`` from an embedded server's (memory only).
:mod:`~snapkv.server.conf` reads the settings (redis.conf, options, CONFIG
SET) and :mod:`~snapkv.server.process` does the log, the pidfile and
systemd's notifications.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any

from snapkv import recovery_advice
from snapkv.media import FileMedium, Medium
from snapkv.objstore.url import is_object_url
from snapkv.server.conf import DEFAULT_SAVE, ConfigError
from snapkv.server.network import RespServer, tls_for
from snapkv.server.process import Notifier, Pidfile, remove_logging, setup_logging
from snapkv.server.state import Config, parse_save, store_fsync
from snapkv.store import Store

__all__ = ["DEFAULT_SAVE", "Config", "ConfigError", "RespServer", "parse_save", "serve"]

log = logging.getLogger("snapkv.server")


def _loop_factory(use_uvloop: bool) -> Callable[[], asyncio.AbstractEventLoop]:
    if use_uvloop:
        try:
            import uvloop  # noqa: PLC0415 - optional extra
        except ImportError:
            pass
        else:
            factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
            return factory
    return asyncio.new_event_loop


def open_for(config: Config, directory: str | None = None) -> Store:
    """The Store ``serve`` uses: ``directory`` (else ``config.dir``) restored, or memory if neither.

    The journal is on with ``appendonly``; ``rdb_load_fallback`` and
    ``aof_load_repair`` are ``restore()``'s ``fallback`` and ``repair``. With
    ``appendfsync always`` the Store journals with ``fsync="no"``: the
    server itself fsyncs once per turn of its event loop, before any reply
    goes out (see :mod:`snapkv.server.network`), instead of once per write.

    :raises ValueError: ``appendonly`` or ``save`` rules without a directory.
    :raises snapkv.errors.SnapkvError: the directory is locked by another
        Store, or could not be opened or restored (the message says which
        file, where, and how to repair it).
    """
    directory = directory if directory is not None else config.dir
    if not directory:
        config.check()  # appendonly or save rules with nowhere to write
        return Store(databases=config.databases)
    fsync = store_fsync(config.appendfsync)  # the Store checks it ("never" is "no")
    # A Store on the directory, built here rather than by snapkv.open(), whose
    # defaults are an embedded program's: the server decides itself when a
    # snapshot is taken (save rules, SAVE, SHUTDOWN), so closing never saves.
    medium: Medium
    if is_object_url(directory):
        # Object storage as the medium (s3://, gs://, az://, file://, memory://):
        # the prefix is claimed for this server; another live writer refuses it.
        from snapkv.objstore.medium import ObjectMedium  # noqa: PLC0415 - the cloud extra

        medium = ObjectMedium.from_url(directory, keep=1, repair=config.aof_load_repair)
    else:
        medium = FileMedium(directory, keep=1)
    store = Store(
        medium,
        databases=config.databases,
        journal=config.appendonly,
        fsync=fsync if config.appendonly else "everysec",
    )
    try:
        # A refusal names the server's options, not restore()'s arguments.
        with recovery_advice.speaking(recovery_advice.SERVER):
            store.restore(
                fallback=config.rdb_load_fallback or config.aof_load_repair,
                repair=config.aof_load_repair,
            )
    except BaseException:
        store.close()
        raise
    return store


def serve(
    config: Config | None = None,
    *,
    directory: str | None = None,
    store: Store | None = None,
    use_uvloop: bool = True,
    ready: Callable[[RespServer], Any] | None = None,
    configure_logging: bool = False,
    notes: Sequence[str] = (),
) -> None:
    """Serve until SHUTDOWN, SIGTERM or SIGINT (each snapshots first if ``save`` rules are set).

    :param config: the settings; ``config.dir`` is used when ``directory`` is not given.
    :param directory: the data directory, restored on start; with neither
        it nor ``config.dir`` the store lives in memory (then ``appendonly``
        and ``save`` rules are refused: they would have nowhere to write).
        Ignored when ``store`` is given.
    :param store: serve this Store (the caller keeps it open and closes it).
    :param use_uvloop: run on uvloop when it is installed.
    :param ready: called with the server once it accepts connections.
    :param configure_logging: send the ``snapkv`` logger to ``config.logfile``
        (standard output if empty) at ``config.loglevel``, in Redis's line
        format, as ``snapkv serve`` does; a non-empty ``config.logfile``
        does it anyway. Otherwise logging is the application's.
    :param notes: lines to log once logging is set up (the config reader's
        ignored directives).
    :raises ValueError: the settings contradict each other (``Config.check``),
        or the log file cannot be opened.
    :raises snapkv.errors.SnapkvError: the directory could not be opened or
        restored (another server holds it: StoreLockedError), or
        (``appendfsync always``) a journal fsync failed: the server then
        stops at once, as Redis does, rather than serve data it could not
        make durable.
    :raises OSError: an address could not be bound.
    """
    config = dataclasses.replace(config) if config is not None else Config()
    if directory is not None:
        config.dir = directory
    if store is None:
        config.check()
    handler = None
    if configure_logging or config.logfile:
        handler = setup_logging(config.loglevel, config.logfile)
    pidfile = Pidfile(config.pidfile)
    try:
        log.info(
            "snapkv %s serve starting, pid %d; %s",
            _version(),
            os.getpid(),
            f"config file {config.config_file}" if config.config_file else "no config file",
        )
        for note in notes:
            log.info("%s", note)
        if config.tls_port:
            tls_for(config)  # a wrong TLS file stops the start before the data is loaded
        notifier = Notifier(config.supervised)
        own = store is None
        started = time.monotonic()
        if store is None:
            if config.dir:
                where = config.dir if is_object_url(config.dir) else os.path.abspath(config.dir)
                notifier.send(f"STATUS=Loading data from {where}")
            try:
                store = open_for(config)
            except Exception as exc:
                log.warning("cannot open the data directory: %s", exc)
                raise
        load_seconds = time.monotonic() - started
        pidfile.write()  # only now: the directory is ours, no other server runs on it
        try:
            with asyncio.Runner(loop_factory=_loop_factory(use_uvloop)) as runner:
                runner.run(_main(store, config, ready, notifier, load_seconds))
        except BaseException:
            if own:
                try:
                    store.close()
                except Exception as exc:  # the error already being raised says more
                    log.error("closing the store failed too: %s", exc)
            raise
        if own:
            store.close()
        log.info("shutdown complete; snapkv is now ready to exit, bye bye...")
    finally:
        pidfile.remove()
        if handler is not None:
            remove_logging(handler)


def _version() -> str:
    try:
        return metadata.version("snapkv")
    except metadata.PackageNotFoundError:
        return "(unknown version)"


def _log_restore(server: RespServer, seconds: float) -> None:
    """The start-up lines: where the data lives, and what was loaded from it."""
    state = server.dispatcher
    state.load_seconds = seconds
    log.info("%s", state.describe_persistence())
    report = state.restore_report
    if report is None:
        return
    if report.generation is None and not report.journals:
        log.info("no data in %s yet: starting empty", state.data_dir)
        return
    journals = (
        f" plus {report.journal_records} journal records (journals "
        f"{report.journals[0]}..{report.journals[-1]})"
        if report.journals
        else ""
    )
    snapshot = f"snapshot {report.generation}" if report.generation else "no snapshot"
    expired = f"; {report.expired} keys had expired" if report.expired else ""
    log.info(
        "DB loaded from disk: %d keys in %.3f s from %s%s%s",
        report.entries,
        seconds,
        snapshot,
        journals,
        expired,
    )
    if report.damaged:  # the store logged each piece above; this is the sum
        log.warning(
            "loaded with losses: %d damaged snapshot(s) skipped (%s), %d piece(s) of journal "
            "dropped (rdb-load-fallback / aof-load-repair, or a torn last record)",
            len(report.skipped),
            ", ".join(generation for generation, _ in report.skipped) or "none",
            len(report.journal_dropped),
        )


async def _main(
    store: Store,
    config: Config,
    ready: Callable[[RespServer], Any] | None,
    notifier: Notifier,
    load_seconds: float,
) -> None:
    server = RespServer(store, config)
    server.notifier = notifier
    _log_restore(server, load_seconds)
    await server.start()
    loop = asyncio.get_running_loop()

    def on_signal(name: str) -> None:
        if server.stopping:
            return  # a second signal: the first one's stop is under way
        log.warning("Received %s scheduling shutdown...", name)
        # As SHUTDOWN with the flags shutdown-on-sigterm / -sigint give
        # (default: none, so a snapshot only with save rules); no command
        # runs between it and the exit (request_stop right after it, in
        # this same callback).
        flags = (
            config.shutdown_on_sigint if name == "SIGINT" else config.shutdown_on_sigterm
        ).split()
        save = True if "save" in flags else False if "nosave" in flags else None
        if server.dispatcher.prepare_shutdown(save=save, force="force" in flags):
            server.request_stop()
            return
        log.warning(
            "%s received but errors trying to shut down the server, check the logs for "
            "more information",
            name,
        )
        notifier.send("STATUS=Shutdown failed: still serving (see the log)")

    for sig in (signal.SIGTERM, signal.SIGINT):
        # Only the main thread can take signals; a server run elsewhere is stopped by its owner.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, on_signal, sig.name)
    listening = [*server.listening, *(f"{where} (TLS)" for where in server.listening_tls)]
    log.info("snapkv serve: ready to accept connections on %s", ", ".join(listening))
    notifier.send("READY=1", "STATUS=Ready to accept connections")
    if ready is not None:
        ready(server)
    await server.serve_until_stopped()
    if server.fatal is not None:
        raise server.fatal
