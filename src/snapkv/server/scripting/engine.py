"""The script engine: runs a Lua function as one atomic step (Redis's ``script.c``).

:meth:`ScriptEngine.run` is what EVAL and FCALL share: the caller's
keyspace and protocol, the script's own client for ``redis.call``
(``scripting = True``; SELECT inside changes only it, as Redis 7; the
checks and calls are :mod:`~snapkv.server.scripting.api`'s), one
``store.transaction()`` around the whole run so its writes are ONE journal
record (a script that fails keeps the writes it made before the error, as
Redis keeps them: the transaction commits), and the reply conversions
(:mod:`~snapkv.server.scripting.convert`'s Lua).

Where a script runs. Lua cannot yield from a count hook, and the event
loop cannot turn while Lua runs on its thread, so a script that must be
able to outlive ``busy-reply-threshold`` runs on the engine's own thread
(:mod:`snapkv.server.scripting.worker`) while the loop's thread waits for
it, synchronously, up to the threshold: nothing else runs meanwhile, as in
Redis. Past it the caller is blocked (``Blocked(kind="script")``),
``server.busy_reply`` is set and the loop turns again, running only
``allow_busy`` commands (SCRIPT KILL, FUNCTION KILL, SHUTDOWN NOSAVE...)
while every other command gets ``-BUSY``; the count hook asks
:meth:`ScriptEngine.interrupted` every 100,000 instructions whether SCRIPT
KILL (or a shutdown) ended the run.

That hand-off costs 20-30 µs a script on two cores (measured: EVALSHA of
``return redis.call('incr', KEYS[1])`` 18 µs on the loop's thread, 65 µs
through the script thread), more than most scripts take. So a script
starts on the loop's thread; the count hook (every 10,000 instructions
there) stops it once it has run :data:`INLINE_SECONDS`, its transaction is
rolled back (nothing else ran meanwhile, so nobody saw its writes) and it
runs again from the start on the script thread. Every run on the loop's
thread stays undoable: a script about to do what a rollback cannot undo
(PUBLISH) is stopped before it and moved to the script thread at once, and
while MONITOR or keyspace notifications are on (each command would send
what cannot be taken back) no script starts on the loop's thread at all;
so a script never holds the loop past :data:`INLINE_SECONDS` and BUSY,
SCRIPT KILL and SHUTDOWN NOSAVE always reach it. A run that is undone
must leave nothing a later one could see: an EVAL script's VM state is
readonly and ``math.random``'s state is restored, ``redis.log`` moves the
run to the script thread before it writes, but a function library's own
upvalues (``local calls = 0``) outlive any undo, so functions (FCALL)
never start on the loop's thread. Without an event loop
(``server.threadsafe_call is None``) and with ``busy-reply-threshold 0`` (no
BUSY, as Redis without its hook) scripts run on the caller's thread.
Inside EXEC a script runs where the block runs: an EXEC whose queue holds
a script runs its whole block on the script thread (:meth:`ScriptEngine.run_exec`),
so BUSY and SCRIPT KILL reach a script there too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from snapkv.server.client import Blocked, Client
from snapkv.server.resp.text import to_bytes
from snapkv.server.resp.writer import OK, error
from snapkv.server.scripting.api import RAND_START, RedisApi, Run
from snapkv.server.scripting.sandbox import ScriptError, Vm
from snapkv.server.scripting.worker import Job, Relay, Worker
from snapkv.server.state import REDIS_VERSION

if TYPE_CHECKING:
    from snapkv.server.state import ServerState

__all__ = ["INLINE_SECONDS", "Run", "ScriptEngine", "ScriptError"]

log = logging.getLogger("snapkv.server")

_NOTBUSY: Final = error("NOTBUSY No scripts in execution right now.")
_UNKILLABLE: Final = error(
    "UNKILLABLE Sorry the script already executed write commands against the dataset. "
    "You can either wait the script termination or kill the server in a hard way "
    "using the SHUTDOWN NOSAVE command."
)
_BUSY: Final = {
    "script": error(
        "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
    ),
    "function": error(
        "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
    ),
}
#: How long a script runs on the event loop's thread before it moves to the
#: script thread (undone and run again there): the hand-off costs ~20-30 µs
#: a script on 2 cores, more than a short script's whole run.
INLINE_SECONDS: Final = 0.002
#: Instructions between two calls of the count hook: often on the loop's
#: thread (to leave it within ~INLINE_SECONDS), Redis's 100,000 on the script thread.
_HOOK_INLINE: Final = 10_000
_HOOK_THREAD: Final = 100_000


def _version_num(version: str) -> int:
    major, minor, patch = (int(part) for part in version.split(".")[:3])
    return (major << 16) | (minor << 8) | patch


class _Aborted(Exception):
    """A run ended by a shutdown: its writes are undone (Redis exits without them)."""


class ScriptEngine(RedisApi):
    """Scripts and their runs for one server; see the module docstring."""

    def __init__(self, server: ServerState) -> None:
        self.server = server
        self.client = Client(server, addr="lua", laddr="")
        self.client.scripting = True
        self.running: Run | None = None
        self.rand_state = RAND_START
        self._worker: Worker | None = None
        #: The job on the script thread, while one runs.
        self._job: Job | None = None
        #: Set by :meth:`abort`: the running script stops and its writes are undone.
        self.aborting = False
        #: Whether the error reply :meth:`run` just returned was counted in
        #: errorstats already (a command's error that ended the script).
        self.counted = False
        self._eval_vm: Vm | None = None
        #: sha1 -> (body, compiled function, shebang flags or None): the EVAL cache.
        self.scripts: dict[str, tuple[bytes, Any, frozenset[str] | None]] = {}
        #: Lua memory of the EVAL VM when last measured (after each run).
        self.eval_memory = 0

    # ------------------------------------------------------------ the VMs

    def new_vm(self, extra: Any = None) -> Vm:
        """A sandboxed VM with the ``redis`` API bound to this engine (see sandbox.Vm)."""

        def add_version(real: Any, redis: Any) -> None:
            redis[b"REDIS_VERSION"] = REDIS_VERSION.encode()
            redis[b"REDIS_VERSION_NUM"] = _version_num(REDIS_VERSION)
            if extra is not None:
                extra(real, redis)

        callbacks = (
            self._call,
            self._pcall,
            self._sha1hex,
            self._log,
            self._setresp,
            self._set_repl,
            self._acl_check,
            self.interrupted,
            self._random,
            self._seed,
            self._resp,
        )
        return Vm(callbacks, add_version, self.large_input)

    @property
    def eval_vm(self) -> Vm:
        """The VM EVAL's scripts run in (made on first use, new after SCRIPT FLUSH)."""
        if self._eval_vm is None:
            self._eval_vm = self.new_vm()
            self.eval_memory = self._eval_vm.memory()
        return self._eval_vm

    def flush(self) -> None:
        """SCRIPT FLUSH: forget every script and start a new VM (Redis's ``scriptingReset``)."""
        self.scripts.clear()
        self._eval_vm = None
        self.eval_memory = 0

    # ------------------------------------------------------------ running

    def run(
        self,
        client: Client,
        vm: Vm,
        fn: Any,
        keys: list[str],
        args: list[str],
        *,
        name: str,
        command: list[str],
        flags: frozenset[str] = frozenset(),
        readonly: bool = False,
        eval_mode: bool = True,
        kind: str = "script",
    ) -> bytes:
        """Run ``fn`` for ``client``; its reply, or ``b""`` with ``client.blocked`` set.

        Where it runs (see the module docstring): on the caller's thread
        without an event loop, inside EXEC, or when ``busy-reply-threshold``
        is 0 (no BUSY, as Redis without its hook); else first on the loop's
        thread for up to :data:`INLINE_SECONDS`, then, if it is still
        running, undone and run again from the start on the script thread.
        """
        run = Run(vm, client, name, kind, command, readonly or "no-writes" in flags, flags)
        server = self.server
        threshold = server.config.busy_reply_threshold / 1000
        if server.threadsafe_call is None or server.store.in_transaction or threshold <= 0:
            return self._finished(self._execute(run, fn, keys, args, eval_mode), run)
        if (
            eval_mode
            and threshold > INLINE_SECONDS
            and not (server.monitors or server.config.notify_keyspace_events)
        ):
            run.inline_until = run.started + INLINE_SECONDS
            rand_state = self.rand_state
            reply = self._execute(run, fn, keys, args, eval_mode)
            if not run.restart:
                return self._finished(reply, run)
            # Too long for the loop's thread, and nothing it did is left: again,
            # from the start, where the loop can answer BUSY meanwhile.
            self.rand_state = rand_state
            run = Run(vm, client, name, kind, command, run.readonly, flags, started=run.started)
        job = Job(lambda: self._execute(run, fn, keys, args, eval_mode))
        return self._hand_off(
            job, client, command, run.started + threshold, lambda reply: self._finished(reply, run)
        )

    def run_exec(self, client: Client, body: Callable[[], bytes], command: list[str]) -> bytes:
        """EXEC of a queue holding scripts: ``body`` (the whole block, one transaction)
        on the script thread, as a script runs there; its reply or ``b""`` (blocked).

        Inside EXEC a script cannot leave the loop's thread on its own (the
        block's transaction is the loop thread's), so the block goes with it:
        past ``busy-reply-threshold`` other clients get ``-BUSY`` and SCRIPT
        KILL stops the running script (the block then goes on, as in Redis).
        """
        server = self.server
        threshold = server.config.busy_reply_threshold / 1000
        if server.threadsafe_call is None or server.store.in_transaction or threshold <= 0:
            return body()
        return self._hand_off(Job(body), client, command, time.monotonic() + threshold, None)

    def _hand_off(
        self,
        job: Job,
        client: Client,
        command: list[str],
        deadline: float,
        finish: Callable[[bytes], bytes] | None,
    ) -> bytes:
        """Run ``job`` on the script thread; wait for it up to ``deadline``, then let
        the loop turn (BUSY for others) and answer ``client`` when it ends."""
        server = self.server
        if self._worker is None:
            self._worker = Worker()
        self._job = job
        real = server.threadsafe_call
        assert real is not None  # only called with an event loop
        relay = server.threadsafe_call = Relay(real)
        try:
            self._worker.submit(job)
            done = job.wait(max(0.0, deadline - time.monotonic()))
        finally:
            server.threadsafe_call = real
            relay.flush()
        if done:
            reply = job.result()
            return reply if finish is None else finish(reply)
        # Past busy-reply-threshold: the loop turns again, with BUSY for others.
        blocked = Blocked(command, "script", unblockable=False)
        client.blocked = blocked
        running = self.running
        server.busy_reply = _BUSY[running.kind if running is not None else "script"]
        server.update_gate()
        if not job.on_done(lambda: real(lambda: self._wake(job, client, blocked))):
            # It ended between the wait and now: answer at once after all.
            client.blocked = None
            self._clear_busy()
            reply = job.result()
            return reply if finish is None else finish(reply)
        return b""

    def _finished(self, reply: bytes, run: Run) -> bytes:
        self.counted = run.counted
        server = self.server
        if server.deferred and not server.store.in_transaction:
            server.run_deferred()
        return reply

    def _clear_busy(self) -> None:
        server = self.server
        server.busy_reply = None
        server.update_gate()

    def _wake(self, job: Job, client: Client, blocked: Blocked) -> None:
        """On the loop's thread, once a busy run ended: its reply to its caller."""
        self._clear_busy()
        try:
            reply = job.result()
        except Exception as exc:  # _execute answers errors itself: this is a bug
            log.exception("script failed")
            reply = error(f"ERR Error running script: {exc}")
        if client.blocked is blocked:
            client.wake(reply)
        self.server.run_deferred()

    def _execute(
        self, run: Run, fn: Any, keys: list[str], args: list[str], eval_mode: bool
    ) -> bytes:
        """The run itself, on whichever thread: one transaction, errors as replies."""
        server = self.server
        caller = run.caller
        script = self.client
        script.select(caller.db_index)
        script.set_resp(2)
        script.user = caller.user
        # A tracking caller remembers the keys its script reads (Redis's script_caller).
        script.tracking = caller.tracking
        self.running = run
        try:
            if server.store.in_transaction:  # inside EXEC: its transaction is ours
                _ok, reply, run.counted = self._call_vm(run, fn, keys, args, eval_mode)
            else:
                with server.store.transaction():
                    _ok, reply, run.counted = self._call_vm(run, fn, keys, args, eval_mode)
                    if run.restart or (run.killed and self._aborted()):
                        raise _Aborted  # undo every write it made
        except _Aborted:
            reply = error("ERR the server is shutting down: the script's writes were undone")
        except Exception as exc:  # a bug, or the VM failing: its writes are undone
            log.exception("script %s failed", run.name)
            reply = error(f"ERR Error running script {run.name}, {exc}")
        finally:
            self.running = None
            script.tracking = None
        if run.vm is self._eval_vm:
            self.eval_memory = run.vm.memory()
        return reply

    def _call_vm(
        self, run: Run, fn: Any, keys: list[str], args: list[str], eval_mode: bool
    ) -> tuple[bool, bytes, bool]:
        return run.vm.run(
            fn,
            [to_bytes(key) for key in keys],
            [to_bytes(arg) for arg in args],
            name=to_bytes(run.name),
            resp=run.caller.resp,
            eval_mode=eval_mode,
            hook_count=_HOOK_INLINE if run.inline_until is not None else _HOOK_THREAD,
        )

    def interrupted(self) -> bool:
        """The count hook's question: must the running script stop (SCRIPT KILL, shutdown,
        or a run on the loop's thread that outlived :data:`INLINE_SECONDS`)?"""
        run = self.running
        if run is None:
            return False
        if run.inline_until is not None and time.monotonic() >= run.inline_until:
            run.inline_until = None
            run.restart = run.killed = True
        if self._aborted():
            run.killed = True
        return run.killed

    def _aborted(self) -> bool:
        return self.aborting or self.server.shutdown_requested is not None

    def abort(self, timeout: float) -> bool:
        """Stop the running script for a shutdown, its writes undone; whether it ended.

        Called on the loop's thread (SHUTDOWN NOSAVE while BUSY) before anything
        that needs the store's lock, which the script's transaction holds.
        """
        job = self._job
        if job is None or job.finished:
            return True
        self.aborting = True
        try:
            return job.wait(timeout) or job.finished
        finally:
            self.aborting = False

    def kill(self, kind: str) -> bytes:
        """SCRIPT KILL (``kind`` "script") or FUNCTION KILL ("function"): the reply."""
        run = self.running
        if run is None:
            return _NOTBUSY
        if run.wrote:
            return _UNKILLABLE
        if run.kind != kind:
            # SCRIPT KILL of a function, FUNCTION KILL of a script: Redis's BUSY
            # text naming the command that would kill it.
            return _BUSY[run.kind]
        run.killed = True
        log.warning("Lua script killed by user with %s KILL.", kind.upper())
        return OK

    def memory(self) -> int:
        """Bytes of Lua memory the EVAL VM holds (INFO's ``used_memory_lua``)."""
        return self.eval_memory
