"""What ``snapkv serve`` owes the system around it: Redis's log, a pidfile, systemd's notifications.

* The log (:func:`setup_logging`): the ``snapkv`` logger (the server's
  lines and the store's recovery warnings) goes to standard output, or
  appended to ``logfile``, one line each in Redis's shape:
  ``pid:M 07 Dec 2026 15:56:24.520 * message``, where the mark is Redis's
  ``.`` debug, ``-`` verbose, ``*`` notice, ``#`` warning. A logfile is
  reopened when it is moved away (logrotate needs no ``copytruncate``).
* The pidfile (:class:`Pidfile`): written once the data directory is ours
  (so a second server refused by the directory's lock never overwrites
  the first one's), removed at exit if it still names this process.
* systemd (:class:`Notifier`): with ``supervised systemd`` (or ``auto``
  when ``NOTIFY_SOCKET`` is set) the server sends ``STATUS=`` lines,
  ``READY=1`` once it accepts connections and ``STOPPING=1`` when it
  begins to stop, as Redis does, on one AF_UNIX datagram to
  ``$NOTIFY_SOCKET`` (a leading ``@`` is Linux's abstract namespace).
  That is the whole of the protocol a ``Type=notify`` unit needs, so
  there is no dependency on libsystemd.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import socket
import sys
import time
from collections.abc import Mapping

from snapkv.server.conf import LOGLEVELS

__all__ = ["Notifier", "Pidfile", "RedisFormatter", "setup_logging"]

log = logging.getLogger("snapkv.server")

_MARKS = ((30, "#"), (20, "*"), (10, "-"))


class RedisFormatter(logging.Formatter):
    """Redis's log line: ``pid:M dd Mon yyyy hh:mm:ss.mmm <mark> message``."""

    def format(self, record: logging.LogRecord) -> str:
        mark = next((m for level, m in _MARKS if record.levelno >= level), ".")
        stamp = time.strftime("%d %b %Y %H:%M:%S", time.localtime(record.created))
        text = record.getMessage()
        if record.exc_info:
            text = f"{text}\n{self.formatException(record.exc_info)}"
        return f"{record.process}:M {stamp}.{int(record.msecs):03d} {mark} {text}"


def setup_logging(loglevel: str, logfile: str) -> logging.Handler:
    """Send the ``snapkv`` logger to ``logfile`` ("" is standard output) at Redis's ``loglevel``.

    Returns the handler, for the caller to remove when the server stops.

    :raises ValueError: the log file cannot be opened (Redis checks this at start too).
    """
    handler: logging.Handler
    if logfile:
        try:
            handler = logging.handlers.WatchedFileHandler(logfile, mode="a", encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"Can't open the log file {logfile}: {exc.strerror or exc}") from None
    else:
        handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(RedisFormatter())
    logger = logging.getLogger("snapkv")
    logger.addHandler(handler)
    logger.setLevel(LOGLEVELS[loglevel])
    logger.propagate = False  # the lines are the server's, not an application's
    return handler


def remove_logging(handler: logging.Handler) -> None:
    """Undo :func:`setup_logging`."""
    logger = logging.getLogger("snapkv")
    logger.removeHandler(handler)
    handler.close()
    if not logger.handlers:
        logger.propagate = True
        logger.setLevel(logging.NOTSET)


class Pidfile:
    """Redis's ``pidfile``: this process's id, written at start and removed at exit."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path) if path else ""
        self.written = False

    def write(self) -> None:
        """Write the pid; a failure is logged, not fatal (as Redis's ``createPidFile``)."""
        if not self.path:
            return
        try:
            with open(self.path, "w", encoding="ascii") as out:
                out.write(f"{os.getpid()}\n")
        except OSError as exc:
            log.warning("Failed to write PID file %s: %s", self.path, exc.strerror or exc)
            return
        self.written = True

    def remove(self) -> None:
        """Remove the file if it still names this process (another may have replaced it)."""
        if not self.written:
            return
        self.written = False
        with contextlib.suppress(OSError, ValueError):
            with open(self.path, encoding="ascii") as found:
                if int(found.read().strip()) != os.getpid():
                    return
            os.unlink(self.path)


class Notifier:
    """systemd's notify protocol, for ``supervised systemd`` (or ``auto`` under systemd).

    :param mode: ``systemd``, ``auto``, ``no`` or ``upstart`` (not supported: logged, ignored).
    :param environ: where ``NOTIFY_SOCKET`` is read (the process's environment).
    """

    def __init__(self, mode: str, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        target = environ.get("NOTIFY_SOCKET", "")
        self.address: str | None = None
        if mode == "upstart":
            log.warning("supervised upstart is not supported by snapkv: ignored")
        elif mode == "systemd" and not target:
            log.warning(
                "systemd supervision requested, but the NOTIFY_SOCKET environment variable "
                "is not set: not notifying"
            )
        elif mode in ("systemd", "auto") and target:
            # "@name" is Linux's abstract namespace, spelt with a leading NUL.
            self.address = "\0" + target[1:] if target.startswith("@") else target
            log.info("supervised by systemd: notifying %s", target)

    @property
    def active(self) -> bool:
        """Whether notifications are sent."""
        return self.address is not None

    def send(self, *lines: str) -> None:
        """Send ``lines`` (``READY=1``, ``STATUS=...``) as one datagram; failures are logged."""
        if self.address is None:
            return
        message = "".join(f"{line}\n" for line in lines).encode("utf-8")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(message, self.address)
        except OSError as exc:
            log.warning("cannot notify systemd: %s", exc)
