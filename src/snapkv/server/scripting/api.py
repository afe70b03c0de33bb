"""The Python side of the ``redis`` API scripts call (Redis's ``script_lua.c`` and ``script.c``).

``redis.call`` and ``redis.pcall`` check a command as Redis's ``scriptCall``
(unknown command, arity, ``noscript``, writes from a read-only script), run
it through the dispatcher's ``call()`` as the engine's script client
(``scripting = True``) and hand its reply back to Lua; the others
(``sha1hex``, ``log``, ``setresp``, ``set_repl``, ``acl_check_cmd``, and
``math.random``'s generator) check their arguments with Redis's texts. An
error reaches the script as a :class:`~snapkv.server.scripting.sandbox.ScriptError`.
:class:`RedisApi` is the part of the engine that holds them; :class:`Run`
is one script or function in progress (Redis's ``scriptRunCtx``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from snapkv.server.acl import allowed, script_refusal
from snapkv.server.resp.text import to_text
from snapkv.server.resp.writer import error
from snapkv.server.scripting.sandbox import LARGE_INPUT, ScriptError, Vm, sha1hex

if TYPE_CHECKING:
    from snapkv.server.client import Client
    from snapkv.server.state import ServerState
    from snapkv.server.table import Command

__all__ = ["RedisApi", "Run", "error_text"]

log = logging.getLogger("snapkv.server")

#: ``redis.log`` levels (LOG_DEBUG .. LOG_WARNING) -> the server's logging levels.
_LOG_LEVELS: Final = (5, 10, 20, 30)
#: What Redis's ``redis.log`` drops: levels under the server's ``loglevel``.
_VERBOSITY: Final = {"debug": 0, "verbose": 1, "notice": 2, "warning": 3}
#: Redis's rand48 (``rand.c``): the generator behind the scripts' ``math.random``.
_RAND_A: Final = 0x5DEECE66D
_RAND_MASK: Final = (1 << 48) - 1
#: Its state before any ``math.randomseed`` (``X2 X1 X0``).
RAND_START: Final = 0x1234ABCD330E
#: The error that ends a run on the loop's thread which is to run again on
#: the script thread (the engine undoes it: no caller ever sees this text).
_RESTART: Final = "ERR Script killed by user with SCRIPT KILL..."


def error_text(reply: bytes) -> str:
    """A command's error reply as the script sees it (Redis's ``luaPushErrorBuff``)."""
    body = reply[1:].rstrip(b"\r\n") if reply[:1] == b"-" else reply
    code, space, message = body.partition(b" ")
    if not space:
        code, message = b"ERR", body
    return to_text(code + b" " + message.strip(b"\r\n"))


@dataclass(eq=False)
class Run:
    """One script or function in progress (Redis's ``scriptRunCtx``)."""

    vm: Vm
    caller: Client
    name: str
    kind: str
    #: The request that started it (FUNCTION STATS' ``running_script``).
    command: list[str]
    #: Writes refused: EVAL_RO, FCALL_RO, ``no-writes``.
    readonly: bool
    flags: frozenset[str]
    started: float = field(default_factory=time.monotonic)
    #: A write command ran (then SCRIPT KILL answers UNKILLABLE).
    wrote: bool = False
    killed: bool = False
    #: Running on the loop's thread until this ``time.monotonic()``; else ``None``.
    inline_until: float | None = None
    #: Stopped on the loop's thread to run again on the script thread.
    restart: bool = False
    #: Its error reply was counted in errorstats where it arose.
    counted: bool = False


class RedisApi:
    """The ``redis.*`` callbacks of a VM; the engine is one (see engine.ScriptEngine)."""

    server: ServerState
    #: The client a script's commands run as.
    client: Client
    #: The run in progress, or ``None``.
    running: Run | None
    #: ``math.random``'s generator state.
    rand_state: int

    def interrupted(self) -> bool:  # pragma: no cover - the engine's
        """Whether the running script must stop (see engine.ScriptEngine.interrupted)."""
        raise NotImplementedError

    def _call(self, *args: Any) -> Any:
        return self._command(args, raise_error=True)

    def _pcall(self, *args: Any) -> Any:
        return self._command(args, raise_error=False)

    def _command(self, args: tuple[Any, ...], raise_error: bool) -> Any:
        """``redis.call`` / ``redis.pcall``: checks as Redis's ``scriptCall``, then ``call()``."""
        run = self.running
        if run is None:
            raise ScriptError("ERR redis.call/pcall can only be called inside a script invocation")
        if run.inline_until is not None and time.monotonic() >= run.inline_until:
            # A script of many calls executes few Lua instructions: decide here
            # too whether it leaves the loop's thread (see engine.INLINE_SECONDS).
            self.interrupted()
        if run.restart:  # no command runs in a run that is to be undone
            raise ScriptError(_RESTART)
        try:
            argv = _argv(args)
            cmd = self._allowed(run, argv)
        except ScriptError as exc:
            if raise_error or run.restart:
                raise
            refusal = b"-" + str(exc).encode("utf-8", "surrogateescape")
            return run.vm.error_table(refusal, counted=exc.counted)
        script = self.client
        reply = self.server.call(script, cmd, argv)
        if script.blocked is not None:  # a blocking command must not block a script
            script.blocked = None
        first = reply[0]
        if first == 58:  # :
            return int(reply[1:-2])
        if first == 36:  # $
            if reply[1] == 45:
                return False
            return reply[reply.index(b"\r\n") + 2 : -2]
        if first == 45:  # -
            text = error_text(reply)  # call() counted it
            if raise_error:
                raise ScriptError(text, counted=True)
            return run.vm.error_table(b"-" + text.encode("utf-8", "surrogateescape"), counted=True)
        return run.vm.parse(reply)

    def _allowed(self, run: Run, argv: list[str]) -> Command:
        """The command ``argv`` names, if a script may run it now; else ScriptError."""
        table = self.server.table
        cmd = table.get(argv[0]) or table.get(argv[0].lower())
        if cmd is not None and cmd.subcommands is not None and len(argv) > 1:
            cmd = cmd.subcommands.get(argv[1]) or cmd.subcommands.get(argv[1].lower())
        if cmd is None:
            raise self._refused("ERR Unknown Redis command called from script")
        if not cmd.min_args <= len(argv) <= cmd.max_args:
            raise self._refused("ERR Wrong number of args calling Redis command from script", cmd)
        if cmd.noscript:
            raise self._refused("ERR This Redis command is not allowed from script", cmd)
        denied = script_refusal(self.server, self.client, run.caller, cmd, argv)  # the ACL
        if denied is not None:
            raise self._refused(denied, cmd)
        if cmd.write:
            if run.readonly:
                text = "ERR Write commands are not allowed from read-only scripts."
                raise self._refused(text, cmd)
            run.wrote = True
        elif run.inline_until is not None and (cmd.pausable or "pubsub" in cmd.flags):
            # PUBLISH: what it sends cannot be undone, so a run on the loop's
            # thread moves to the script thread *before* it (see
            # engine.INLINE_SECONDS): every run there stays restartable.
            self.leave_loop(run)
        return cmd

    def leave_loop(self, run: Run) -> None:
        """Stop ``run`` (on the loop's thread) to run it again on the script thread.

        Raises the kill error; the engine undoes the run's writes and
        starts it again from the start where BUSY and SCRIPT KILL reach it.
        """
        run.inline_until = None
        run.restart = run.killed = True
        raise ScriptError(_RESTART)

    def _refused(self, text: str, cmd: Command | None = None) -> ScriptError:
        """A command a script may not run: counted where it is refused, as Redis's
        ``scriptCall`` does (errorstats, and the command's ``rejected_calls``)."""
        errors = getattr(self.server, "errors", None)  # the dispatcher's ErrorStats
        if errors is not None:
            errors.count(error(text))
        if cmd is not None:
            cmd.rejected_calls += 1
        return ScriptError(text, counted=True)

    def large_input(self, *args: Any) -> None:
        """The libraries' question before work on a large input (``size`` > LARGE_INPUT).

        One Python call (``cjson.decode`` of megabytes) runs between two Lua
        instructions, where the count hook cannot stop it: on the loop's
        thread it would hold every client without BUSY and then run again
        on the script thread. So a run there leaves it now, before the work.
        """
        run = self.running
        if run is None or run.inline_until is None or not args:
            return
        size = args[0]
        if isinstance(size, (int, float)) and not isinstance(size, bool) and size > LARGE_INPUT:
            self.leave_loop(run)

    def _sha1hex(self, *args: Any) -> bytes:
        if len(args) != 1:
            raise ScriptError("ERR wrong number of arguments")
        value = args[0]
        if isinstance(value, bytes):
            data = value
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            data = b"%.14g" % value
        else:
            data = b""
        return sha1hex(data).encode()

    def _log(self, *args: Any) -> None:
        if len(args) < 2:
            raise ScriptError("ERR redis.log() requires two arguments or more.")
        level = _number(args[0])
        if level is None:
            raise ScriptError("ERR First argument must be a number (log level).")
        level = int(level)
        if not 0 <= level <= 3:
            raise ScriptError("ERR Invalid debug level.")
        if level < _VERBOSITY.get(self.server.config.loglevel, 2):
            return
        run = self.running
        if run is not None and run.inline_until is not None:
            self.leave_loop(run)  # a log line cannot be undone: written by the run that counts
        parts = []
        for arg in args[1:]:
            if isinstance(arg, bytes):
                parts.append(arg)
            elif isinstance(arg, (int, float)) and not isinstance(arg, bool):
                parts.append(b"%.14g" % arg)
        log.log(_LOG_LEVELS[level], "%s", to_text(b" ".join(parts)))

    def _setresp(self, *args: Any) -> None:
        if self.running is None:
            raise ScriptError("ERR redis.setresp can only be called inside a script invocation")
        if len(args) != 1:
            raise ScriptError("ERR redis.setresp() requires one argument.")
        resp = int(_number(args[0]) or 0)
        if resp not in (2, 3):
            raise ScriptError("ERR RESP version must be 2 or 3.")
        self.client.set_resp(resp)

    def _resp(self) -> int:
        return self.client.resp

    def _set_repl(self, *args: Any) -> None:
        if self.running is None:
            raise ScriptError("ERR redis.set_repl can only be called inside a script invocation")
        if len(args) != 1:
            raise ScriptError("ERR redis.set_repl() requires two arguments.")
        flags = int(_number(args[0]) or 0)
        if flags & ~3:
            raise ScriptError(
                "ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE."
            )

    def _acl_check(self, *args: Any) -> bool:
        if self.running is None:
            raise ScriptError(
                "ERR redis.acl_check_cmd can only be called inside a script invocation"
            )
        argv = _argv(args)
        table = self.server.table
        cmd = table.get(argv[0]) or table.get(argv[0].lower())
        if cmd is not None and cmd.subcommands is not None and len(argv) > 1:
            cmd = cmd.subcommands.get(argv[1].lower())
        if cmd is None:
            raise ScriptError("ERR Invalid command passed to redis.acl_check_cmd()")
        return allowed(self.server, self.client.user, cmd, argv)  # the caller's ACL user

    def _random(self) -> int:
        """Redis's ``redisLrand48``: the next 31-bit value of the 48-bit generator."""
        self.rand_state = (_RAND_A * self.rand_state + 0xB) & _RAND_MASK
        return self.rand_state >> 17

    def _seed(self, seed: int) -> None:
        """Redis's ``redisSrand48``."""
        seed &= 0xFFFFFFFF
        self.rand_state = ((seed & 0xFFFF) << 16 | (seed >> 16) << 32 | 0x330E) & _RAND_MASK


def _number(value: Any) -> float | None:
    """Lua's ``lua_tonumber``: a number, or a string that reads as one; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, bytes):
        try:
            return float(value.strip())
        except ValueError:
            try:
                return float(int(value.strip(), 16))
            except ValueError:
                return None
    return None


def _argv(args: tuple[Any, ...]) -> list[str]:
    """``redis.call``'s arguments as a request (Redis's ``luaArgsToRedisArgv``)."""
    if not args:
        raise ScriptError("ERR Please specify at least one argument for this redis lib call")
    argv = []
    for arg in args:
        kind = type(arg)
        if kind is bytes:
            argv.append(to_text(arg))
        elif kind is int or kind is float:
            # Not Lua's %.14g: Redis formats numbers with %.17g to keep their precision.
            argv.append(f"{arg:.17g}")
        else:
            raise ScriptError("ERR Lua redis lib command arguments must be strings or integers")
    return argv
