"""One sandboxed Lua 5.1 VM (Redis's ``lua_State`` as ``scriptingInit`` prepares it).

A :class:`Vm` is a lupa runtime made safe before any script sees it:

- lupa's own bridges are closed: no ``python`` global, no ``python.eval``
  or builtins, and an ``attribute_filter`` that refuses every attribute of
  every Python object (a script that got hold of one could otherwise walk
  ``__globals__`` to ``os``), and lupa's metatable of Python objects is
  locked; the ``redis.*`` callables are Python objects scripts may call
  and nothing more (a C call for Lua: see the prelude);
- the globals are Redis 7.0.15's (no ``print``, ``debug``, ``setfenv``,
  ``getfenv``, ``newproxy``, ``os``, ``io``, ``require``, ``loadfile``,
  ``dofile``), read through a proxy that refuses undefined names and
  every write, with each library table readonly (see the prelude);
- binary chunks are refused by every loader (CVE-2015-4335);
- the VM's memory is capped (``max_memory``): a runaway allocation fails
  with Lua's ``not enough memory`` inside the script, never the server.

Strings cross as bytes (``encoding=None``): Redis values are binary.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import logging
from collections.abc import Callable
from typing import Any, Final

from snapkv.server.scripting.convert import CONVERT
from snapkv.server.scripting.prelude import INTERNAL_SOURCE, LIBRARY_SOURCE, PRELUDE

__all__ = [
    "LARGE_INPUT",
    "LARGE_INPUT_GLOBAL",
    "LUA_MAX_MEMORY",
    "CompileError",
    "ScriptError",
    "Vm",
    "lupa_available",
    "sha1hex",
]

log = logging.getLogger("snapkv.server")

#: The most memory one VM may hold: past it an allocation fails inside the
#: script (Lua's ``not enough memory``), which ends with an error reply.
LUA_MAX_MEMORY: Final = 256 << 20

#: The Lua global (of the state, not the scripts') the libraries call as
#: ``_snapkv_large_input(size)`` before work on an input of ``size`` bytes
#: (or items) past :data:`LARGE_INPUT`: a run on the event loop's thread
#: then stops there (an error the script cannot keep) and runs again on the
#: script thread, where BUSY and SCRIPT KILL reach it, before the work is
#: done once on the wrong thread. Cheap: the libraries compare a length
#: first and cross into Python only for a large input.
LARGE_INPUT_GLOBAL: Final = "_snapkv_large_input"
#: What counts as large: one Python call over more takes ~1 ms or more.
LARGE_INPUT: Final = 64 << 10

#: The Lua libraries (cjson, cmsgpack, struct, bit): installed when present.
_LIBS_MODULE: Final = "snapkv.server.scripting.libs"


class CompileError(Exception):
    """A script that does not compile: ``str(exc)`` is Lua's message."""


class ScriptError(Exception):
    """An error a Python function raises into a script: ``CODE message``.

    It reaches Lua as a Python object; the prelude's error handler (and
    Redis's ``pcall``) read it as ``{err = "CODE message"}`` (or the string).
    """

    def __init__(self, text: str | bytes, *, counted: bool = False) -> None:
        super().__init__(text if isinstance(text, str) else text.decode("utf-8", "replace"))
        #: Already counted in errorstats where it arose (a command's error or a
        #: refused command): the script's error reply is not counted again.
        self.counted = counted


def _counted(exc: object) -> bool:
    """For the error handler: whether an error raised into Lua was counted already."""
    return bool(getattr(exc, "counted", False))


_READONLY: Final = "ERR Attempt to modify a readonly table"


def lupa_available() -> bool:
    """Whether the Lua runtime (lupa, the ``server`` extra) can be imported."""
    try:
        return importlib.util.find_spec("lupa") is not None
    except (ImportError, ValueError):
        return False


def _install_libraries(lua: Any) -> None:
    """cjson, cmsgpack, struct and bit (``scripting.libs``), when that module is there."""
    if importlib.util.find_spec(_LIBS_MODULE) is None:
        return
    try:
        libs = importlib.import_module(_LIBS_MODULE)
    except ImportError as exc:  # a partial install: scripts still run, without them
        log.warning("Lua libraries not installed: %s", exc)
        return
    libs.install_libraries(lua)


def _no_attributes(obj: object, name: object, is_setting: bool) -> str:
    """lupa's ``attribute_filter``: no Python attribute is ever reachable from Lua."""
    shown = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
    raise AttributeError(f"ERR Python attribute '{shown}' is not accessible from scripts")


class Vm:
    """A sandboxed Lua VM with Redis's API bound to ``callbacks``.

    :param callbacks: the Python side of the ``redis`` API, in the prelude's
        order: ``command(*argv) -> reply bytes``, ``log(level, text)``,
        ``setresp(n)``, ``interrupted() -> bool``, ``random() -> int``,
        ``seed(n)``, ``sha1(bytes) -> bytes``, ``acl(*argv) -> bool``.
    :param extra: called as ``extra(real_globals, redis_table)`` (Lua tables)
        after the libraries are installed and before anything is protected:
        what it adds is protected with the rest.
    """

    def __init__(
        self,
        callbacks: tuple[Callable[..., Any], ...],
        extra: Callable[[Any, Any], None] | None = None,
        large_input: Callable[..., Any] | None = None,
    ) -> None:
        from lupa import lua51  # type: ignore[import-untyped,unused-ignore]  # noqa: PLC0415

        self.lua: Any = lua51.LuaRuntime(
            encoding=None,
            register_eval=False,
            register_builtins=False,
            unpack_returned_tuples=True,
            attribute_filter=_no_attributes,
            max_memory=LUA_MAX_MEMORY,
        )
        lua = self.lua
        load = lua.execute("return function(src, name) return loadstring(src, name) end")
        getinfo = lua.eval("debug.getinfo")
        convert = load(CONVERT.encode(), INTERNAL_SOURCE.encode())(
            getinfo, INTERNAL_SOURCE.encode(), LIBRARY_SOURCE.encode(), _counted
        )
        chunk = load(PRELUDE.encode(), INTERNAL_SOURCE.encode())
        self._api: Any = chunk(convert, *callbacks, self._rawset, self._setmetatable)
        api = self._api
        if large_input is not None:
            # In the state's own globals (scripts never see them), for the
            # libraries: see LARGE_INPUT_GLOBAL.
            lua.globals()[LARGE_INPUT_GLOBAL] = large_input
        _install_libraries(lua)
        self.env, self.real = api.build(extra)
        self._compile = api.compile
        self._run = api.run
        self._readonly = api.readonly
        self._parse = api.parse
        self._error_table = api.error_table
        lua.gccollect()

    def _rawset(self, *args: Any) -> Any:
        """The scripts' ``rawset``: a readonly table is refused (Redis's readonly check)."""
        if args and self._api.is_proxy(args[0]):
            raise ScriptError(_READONLY)
        return self._api.rawset(*args)

    def _setmetatable(self, *args: Any) -> Any:
        """The scripts' ``setmetatable``: a readonly table's is never replaced."""
        if args and self._api.is_proxy(args[0]):
            raise ScriptError(_READONLY)
        return self._api.setmetatable(*args)

    def compile(self, body: bytes, chunkname: bytes = b"@user_script", env: Any = None) -> Any:
        """``body`` as a Lua function run in ``env`` (the protected globals by default).

        :raises CompileError: with Lua's message (``user_script:1: ...``).
        """
        fn, err = self._compile(body, chunkname, self.env if env is None else env)
        if fn is None:
            message = err.decode("utf-8", "replace") if isinstance(err, bytes) else str(err)
            raise CompileError(message)
        return fn

    def run(
        self,
        fn: Any,
        keys: list[bytes],
        args: list[bytes],
        *,
        name: bytes,
        resp: int,
        eval_mode: bool,
        hook_count: int = 100_000,
    ) -> tuple[bool, bytes, bool]:
        """Call ``fn`` as Redis's ``luaCallFunction``: (ok, the encoded reply, counted).

        ``resp``: the caller's protocol (the reply's shapes); errors come
        back as Redis's ``-... script: <name>, on @user_script:<line>.``;
        ``counted``: the error reply is one errorstats counted already.
        """
        lua = self.lua
        try:
            ok, reply, counted = self._run(
                fn,
                self.real,
                eval_mode,
                lua.table_from(keys),
                lua.table_from(args),
                name,
                resp,
                hook_count,
            )
        except MemoryError:
            # Lua 5.1 collects no garbage when an allocation fails: what a
            # runaway script left is collected now, and the run fails.
            lua.gccollect()
            text = b"-ERR Error running script %s, not enough memory\r\n" % name
            return False, text, False
        if lua.get_memory_used() > LUA_MAX_MEMORY // 2:
            lua.gccollect()  # the next script starts with room (see above)
        if not isinstance(reply, bytes):  # pragma: no cover - the prelude always answers bytes
            reply = str(reply).encode()
        return bool(ok), reply, bool(counted)

    def parse(self, reply: bytes) -> Any:
        """A command's RESP reply as the script sees it (Redis's ``redisProtocolToLuaType``)."""
        return self._parse(reply, 1)[0]

    def error_table(self, text: bytes, *, counted: bool = False) -> Any:
        """``{err = "CODE message"}`` from ``-CODE message`` or ``message`` (``luaPushError``).

        ``counted``: marked as counted in errorstats already (Redis's
        ``ignore_error_stats_update``).
        """
        table = self._error_table(text)
        if counted:
            table[b"ignore_error_stats_update"] = True
        return table

    def table(self, *items: Any, **fields: Any) -> Any:
        """A new Lua table (lupa's ``table``)."""
        return self.lua.table(*items, **fields)

    def readonly(self, table: Any) -> Any:
        """A readonly proxy of ``table`` (writes fail with Redis's readonly text)."""
        return self._readonly(table)

    def memory(self) -> int:
        """Bytes the VM holds (Redis's ``used_memory_lua``)."""
        used = self.lua.get_memory_used()
        return int(used) if used is not None else 0


def sha1hex(data: bytes) -> str:
    """Redis's ``sha1hex``: the lower-case hex SHA-1 of ``data``."""
    return hashlib.sha1(data).hexdigest()
