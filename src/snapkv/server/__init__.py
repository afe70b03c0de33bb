"""``snapkv serve``: a Redis-protocol (RESP2/RESP3) server over a Store.

Install with ``pip install 'snapkv[server]'`` (hiredis's parser and uvloop;
both optional: without them a pure-Python parser and asyncio's own loop
give the same answers, slower). Run with ``snapkv serve``, or from Python::

    from snapkv.server import Config, serve
    serve(Config(port=6380), directory="data")   # until SHUTDOWN or SIGTERM

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

Persistence follows Redis's words: ``SAVE`` and ``SHUTDOWN`` snapshot the
Store, ``BGSAVE`` snapshots from a thread (point-in-time without forking,
see ``ServerState.bgsave``), ``appendonly`` is the Store's journal and
``appendfsync`` its fsync policy, and SIGTERM (or SIGINT) is ``SHUTDOWN``:
snapshot, then exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from typing import Any

from snapkv.server.network import RespServer
from snapkv.server.state import Config, parse_save
from snapkv.store import Store
from snapkv.store import open as open_store

__all__ = ["Config", "RespServer", "parse_save", "serve"]

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


def open_for(config: Config, directory: str | None) -> Store:
    """The Store ``serve`` uses: ``directory`` restored (journal with ``appendonly``) or memory.

    With ``appendfsync always`` the Store journals with ``fsync="no"``:
    the server itself fsyncs once per turn of its event loop, before any
    reply goes out (see :mod:`snapkv.server.network`), instead of once per
    write.
    """
    fsync = config.appendfsync  # the Store checks it (and takes "never" for "no")
    if directory is None:
        return Store(databases=config.databases)
    if config.appendonly and fsync == "always":
        fsync = "no"
    return open_store(directory, databases=config.databases, journal=config.appendonly, fsync=fsync)


def serve(
    config: Config | None = None,
    *,
    directory: str | None = None,
    store: Store | None = None,
    use_uvloop: bool = True,
    ready: Callable[[RespServer], Any] | None = None,
) -> None:
    """Serve until SHUTDOWN, SIGTERM or SIGINT (each snapshots first, unless SHUTDOWN NOSAVE).

    :param config: the settings; ``config.dir`` is used when ``directory`` is not given.
    :param directory: the data directory, restored on start; ``None`` serves
        an in-memory store. Ignored when ``store`` is given.
    :param store: serve this Store (the caller keeps it open and closes it).
    :param use_uvloop: run on uvloop when it is installed.
    :param ready: called with the server once it accepts connections.
    :raises snapkv.errors.SnapkvError: the directory could not be opened or
        restored, or (``appendfsync always``) a journal fsync failed: the
        server then stops at once, as Redis does, rather than serve data it
        could not make durable.
    :raises OSError: the address could not be bound.
    """
    config = config if config is not None else Config()
    own = store is None
    if store is None:
        store = open_for(config, directory if directory is not None else config.dir)
    try:
        with asyncio.Runner(loop_factory=_loop_factory(use_uvloop)) as runner:
            runner.run(_main(store, config, ready))
    except BaseException:
        if own:
            try:
                store.close()
            except Exception as exc:  # the error already being raised says more
                log.error("closing the store failed too: %s", exc)
        raise
    if own:
        store.close()


async def _main(store: Store, config: Config, ready: Callable[[RespServer], Any] | None) -> None:
    server = RespServer(store, config)
    await server.start()
    loop = asyncio.get_running_loop()

    def on_signal(name: str) -> None:
        if server.stopping:
            return  # a second signal: the first one's stop is under way
        log.warning("received %s: saving and shutting down", name)
        # As SHUTDOWN: no command runs between this snapshot and the exit
        # (request_stop right after it, in this same callback).
        try:
            server.dispatcher.save()
        except Exception as exc:  # still stop: a signal is not a request to keep running
            log.error("snapshot before shutdown failed: %s", exc)
        server.request_stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        # Only the main thread can take signals; a server run elsewhere is stopped by its owner.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, on_signal, sig.name)
    log.info("snapkv serve: ready to accept connections on %s:%d", config.host, server.port)
    if ready is not None:
        ready(server)
    await server.serve_until_stopped()
    if server.fatal is not None:
        raise server.fatal
