"""Function libraries (Redis 7.0's ``functions.c`` and ``function_lua.c``).

A library is Lua code that starts with ``#!lua name=<lib>`` and registers
functions with ``redis.register_function(name, fn)`` or its table form
(``function_name``, ``callback``, ``flags``, ``description``). All
libraries share one Lua VM, apart from EVAL's (as Redis keeps a separate
Lua state for functions), made by the script engine with the libraries and
the sandbox; FUNCTION FLUSH starts a new one.

While a library's code runs (FUNCTION LOAD, RESTORE) its globals are only
Redis's load-time API: ``redis.register_function``, ``redis.log``, the
``LOG_*`` levels and ``REDIS_VERSION[_NUM]``; anything else, ``redis.call``
included, is ``Script attempted to access nonexistent global variable``,
and nothing may be set (``Attempt to modify a readonly table``), as in
Redis 7.0.15. Afterwards the same code sees the scripts' globals, so a
registered function runs as a script does (without KEYS and ARGV: it gets
``keys`` and ``args``).

:class:`Functions` is the registry: libraries by name, functions by name,
load with Redis's checks and error texts, delete, flush, and the DUMP
payload (``RDB_OPCODE_FUNCTION2`` records, the RDB version, the CRC-64).
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from snapkv.server.conf import split_args
from snapkv.server.scripting.function_payload import PayloadError, decode_payload, encode_payload
from snapkv.server.scripting.libs import HIDDEN_SETHOOK

if TYPE_CHECKING:
    from snapkv.server.scripting.engine import ScriptEngine
    from snapkv.server.scripting.sandbox import Vm
    from snapkv.server.state import ServerState

__all__ = [
    "FLAG_ORDER",
    "Function",
    "FunctionError",
    "Functions",
    "Library",
    "functions_info",
    "parse_metadata",
    "registry_of",
]

#: Function flags in the order Redis lists them (``scripts_flags_def``).
FLAG_ORDER: Final = ("no-writes", "allow-oom", "allow-stale", "no-cluster", "allow-cross-slot-keys")
_NAME_RULE: Final = (
    "Library names can only contain letters, numbers, or underscores(_) "
    "and must be at least one character long"
)
#: Seconds a library may take to load (Redis's ``LOAD_TIMEOUT_MS``, 500).
LOAD_TIME_LIMIT: Final = 0.5


class FunctionError(Exception):
    """A refused library or payload; the text is the error reply's (``ERR ...``)."""


@dataclass(eq=False)
class Function:
    """One registered function."""

    name: str
    library: Library
    callback: Any
    flags: frozenset[str]
    description: bytes | None


@dataclass(eq=False)
class Library:
    """One library: its name, code and functions (by name, in registration order)."""

    name: str
    code: bytes
    functions: dict[str, Function] = field(default_factory=dict)


def _valid_name(name: bytes) -> bool:
    """``functionsVerifyName``: letters, digits and underscores, at least one."""
    return bool(name) and all(
        c == 95 or 48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122 for c in name
    )


def parse_metadata(code: bytes) -> tuple[str, bytes]:
    """``functionExtractLibMetaData``: the library name and the code to compile.

    The shebang line becomes a Lua comment, so error lines count it as Redis's do.
    """
    if not code.startswith(b"#!"):
        raise FunctionError("ERR Missing library metadata")
    end = code.find(b"\n")
    if end < 0:
        raise FunctionError("ERR Invalid library metadata")
    parts = split_args(code[:end])  # quotes and escapes as Redis's sdssplitargs
    if not parts:
        raise FunctionError("ERR Invalid library metadata")
    name: bytes | None = None
    for part in parts[1:]:
        if part[:5].lower() == b"name=":
            if name is not None:
                raise FunctionError(
                    "ERR Invalid metadata value, name argument was given multiple times"
                )
            name = part[5:]
            continue
        raise FunctionError(f"ERR Invalid metadata value given: {part.decode('utf-8', 'replace')}")
    if name is None:
        raise FunctionError("ERR Library name was not given")
    engine = parts[0][2:]
    if engine.upper() != b"LUA":
        raise FunctionError(f"ERR Engine '{engine.decode('utf-8', 'replace')}' not found")
    if not _valid_name(name):
        raise FunctionError(f"ERR {_NAME_RULE}")
    return name.decode(), b"--" + code[2:]


#: The loader, run once per VM: a library's environment (the load-time API while
#: it loads, the scripts' globals after) and redis.register_function's checks.
_LOADER = r"""
local script_env, log, version, version_num, readonly_text, sethook, clock, limit = ...
local type, next, error, pcall, setmetatable, tostring, rawget, select =
      type, next, error, pcall, setmetatable, tostring, rawget, select
local FLAGS = {["no-writes"] = true, ["allow-oom"] = true, ["allow-stale"] = true,
               ["no-cluster"] = true, ["allow-cross-slot-keys"] = true}
local loading = nil  -- the registrations of the library being loaded

local function missing(_, key)
  error("Script attempted to access nonexistent global variable '" .. tostring(key) .. "'", 2)
end
local function refuse() error(readonly_text, 2) end
local function fail(text) error({err = "ERR " .. text}) end

local function valid(name)
  return #name > 0 and not name:find("[^%w_]")
end

-- lua_isstring: a string or a number (given as its text)
local function text(v)
  local t = type(v)
  if t == "string" then return v end
  if t == "number" then return tostring(v) end
  return nil
end

local function add(name, callback, flags, description)
  if not valid(name) then
    fail("Library names can only contain letters, numbers, or underscores(_) "
         .. "and must be at least one character long")
  end
  if loading.byname[name] then fail("Function already exists in the library") end
  local entry = {name = name, callback = callback, flags = flags, description = description}
  loading.byname[name] = entry
  loading[#loading + 1] = entry
end

local function read_flags(flags)
  if type(flags) ~= "table" then
    fail("flags argument to redis.register_function must be a table representing "
         .. "function flags")
  end
  local out = {}
  for _, flag in next, flags do
    if type(flag) ~= "string" or not FLAGS[flag] then fail("unknown flag given") end
    out[#out + 1] = flag
  end
  return out
end

local function register_function(...)
  if not loading then
    fail("redis.register_function can only be called on FUNCTION LOAD command")
  end
  local argc = select("#", ...)
  if argc < 1 or argc > 2 then fail("wrong number of arguments to redis.register_function") end
  local a, b = ...
  if argc == 1 then
    if type(a) ~= "table" then
      fail("calling redis.register_function with a single argument is only applicable "
           .. "to Lua table (representing named arguments).")
    end
    local name, callback, flags, description
    for k, v in next, a do
      k = text(k)
      if not k then
        fail("named argument key given to redis.register_function is not a string")
      end
      if k == "function_name" then
        name = text(v)
        if not name then
          fail("function_name argument given to redis.register_function must be a string")
        end
      elseif k == "description" then
        description = text(v)
        if not description then
          fail("description argument given to redis.register_function must be a string")
        end
      elseif k == "callback" then
        if type(v) ~= "function" then
          fail("callback argument given to redis.register_function must be a function")
        end
        callback = v
      elseif k == "flags" then
        flags = read_flags(v)
      else
        fail("unknown argument given to redis.register_function")
      end
    end
    if not name then fail("redis.register_function must get a function name argument") end
    if not callback then fail("redis.register_function must get a callback argument") end
    add(name, callback, flags or {}, description)
    return
  end
  a = text(a)
  if not a then fail("first argument to redis.register_function must be a string") end
  if type(b) ~= "function" then
    fail("second argument to redis.register_function must be a function")
  end
  add(a, b, {}, nil)
end

local load_redis = setmetatable({
  register_function = register_function, log = log,
  LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
  REDIS_VERSION = version, REDIS_VERSION_NUM = version_num,
}, {__index = missing, __newindex = refuse, __metatable = false})
local load_globals = {redis = load_redis}

-- begin(): a new library's environment, and run(fn) for the library compiled in it:
-- its registrations (or nil and the error's text).
return function()
  local registered = {byname = {}}
  local env = setmetatable({}, {
    -- Read here, not through a second table's __index, so a missing name is
    -- reported on the library's own line (level 2 is the code that read it).
    __index = function(_, k)
      local v
      if loading == registered then v = rawget(load_globals, k) else v = rawget(script_env, k) end
      if v == nil then
        error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
      end
      return v
    end,
    __newindex = refuse, __metatable = false,
  })
  local function run(fn)
    loading = registered
    -- Redis's load time limit: a library that does not finish loading in time fails.
    if sethook then
      local deadline = clock() + limit
      sethook(function()
        if clock() > deadline then error({err = "ERR FUNCTION LOAD timeout"}) end
      end, "", 100000)
    end
    local ok, err = pcall(fn)
    if sethook then sethook() end
    loading = nil
    if not ok then
      if type(err) == "table" and type(rawget(err, "err")) == "string" then
        return nil, err.err
      end
      return nil, "ERR " .. tostring(err)
    end
    registered.byname = nil
    return registered, false
  end
  return env, run
end
"""


class Functions:
    """The libraries and functions of one server, and their Lua VM."""

    def __init__(self, engine: ScriptEngine) -> None:
        self.engine = engine
        self.libraries: dict[str, Library] = {}
        self.functions: dict[str, Function] = {}
        self._vm: Vm | None = None
        self._loader: Any = None

    @property
    def vm(self) -> Vm:
        """The VM every library runs in (made on first use, new after :meth:`flush`)."""
        if self._vm is None:
            vm = self.engine.new_vm()
            from snapkv.server.state import REDIS_VERSION  # noqa: PLC0415 - a cycle

            version = REDIS_VERSION.encode()
            major, minor, patch = (int(part) for part in REDIS_VERSION.split("."))
            self._loader = vm.lua.execute(
                _LOADER,
                vm.real,
                vm.real[b"redis"][b"log"],
                version,
                (major << 16) | (minor << 8) | patch,
                b"Attempt to modify a readonly table",
                vm.lua.globals()[HIDDEN_SETHOOK],
                time.monotonic,
                LOAD_TIME_LIMIT,
                name="=[snapkv]",
            )
            self._vm = vm
        return self._vm

    def load(self, code: bytes, *, replace: bool) -> str:
        """FUNCTION LOAD: the library's name; :class:`FunctionError` as Redis refuses."""
        name, source = parse_metadata(code)
        old = self.libraries.get(name)
        if old is not None and not replace:
            raise FunctionError(f"ERR Library '{name}' already exists")
        library = self._create(name, code, source)
        taken = {f for f in library.functions if f in self.functions}
        if old is not None:
            taken -= set(old.functions)
        if taken:
            raise FunctionError(f"ERR Function {sorted(taken)[0]} already exists")
        if old is not None:
            self._unlink(old)
        self._link(library)
        return name

    def _create(self, name: str, code: bytes, source: bytes) -> Library:
        from snapkv.server.scripting.sandbox import CompileError  # noqa: PLC0415 - lupa lazily

        vm = self.vm
        env, run = self._loader()
        try:
            fn = vm.compile(source, b"@user_function", env)
        except CompileError as exc:
            raise FunctionError(f"ERR Error compiling function: {exc}") from None
        registered, err = run(fn)
        if registered is None:
            text = err.decode("utf-8", "replace") if isinstance(err, bytes) else str(err)
            raise FunctionError(f"ERR Error registering functions: {text}")
        library = Library(name, code)
        for index in range(1, len(registered) + 1):
            entry = registered[index]
            fname = entry[b"name"].decode("utf-8", "surrogateescape")
            flags_table = entry[b"flags"]
            flags = frozenset(flags_table[i].decode() for i in range(1, len(flags_table) + 1))
            library.functions[fname] = Function(
                fname, library, entry[b"callback"], flags, entry[b"description"]
            )
        if not library.functions:
            raise FunctionError("ERR No functions registered")
        return library

    def _link(self, library: Library) -> None:
        self.libraries[library.name] = library
        self.functions.update(library.functions)

    def _unlink(self, library: Library) -> None:
        del self.libraries[library.name]
        for fname in library.functions:
            self.functions.pop(fname, None)

    def delete(self, name: str) -> None:
        """FUNCTION DELETE."""
        library = self.libraries.get(name)
        if library is None:
            raise FunctionError("ERR Library not found")
        self._unlink(library)

    def flush(self) -> None:
        """FUNCTION FLUSH: no libraries, and a new VM on next use."""
        self.libraries.clear()
        self.functions.clear()
        self._vm = None
        self._loader = None

    # ------------------------------------------------------------ DUMP / RESTORE

    def dump(self) -> bytes:
        """FUNCTION DUMP: each library's code as an RDB function record, then the footer.

        The codes are written uncompressed (Redis compresses one over 20
        bytes when LZF shortens it); every Redis 7 restores either form.
        """
        return encode_payload([library.code for library in self.libraries.values()])

    def restore(self, payload: bytes, policy: str) -> None:
        """FUNCTION RESTORE with ``policy`` "flush", "append" or "replace"."""
        try:
            codes = decode_payload(payload)
        except PayloadError as exc:
            raise FunctionError(str(exc)) from None
        # Each library loads into a fresh registry first: the payload is checked whole.
        staged = Functions(self.engine)
        staged._vm, staged._loader = self.vm, self._loader
        for code in codes:
            staged.load(code, replace=False)
        if policy == "flush":
            self.libraries.clear()
            self.functions.clear()
        elif policy == "append":
            for name in staged.libraries:
                if name in self.libraries:
                    raise FunctionError(f"ERR Library {name} already exists")
        kept = {
            name: lib
            for name, lib in self.libraries.items()
            if policy != "replace" or name not in staged.libraries
        }
        for fname in staged.functions:
            owner = self.functions.get(fname)
            if owner is not None and owner.library.name in kept:
                raise FunctionError(f"ERR Function {fname} already exists")
        for name in staged.libraries:
            if name in self.libraries:
                self._unlink(self.libraries[name])
        for library in staged.libraries.values():
            self._link(library)


#: Each engine's registry (the engine is the server's: ``server.scripts``).
_REGISTRIES: weakref.WeakKeyDictionary[ScriptEngine, Functions] = weakref.WeakKeyDictionary()


def registry_of(engine: ScriptEngine) -> Functions:
    """The function registry that goes with ``engine`` (made on first use)."""
    registry = _REGISTRIES.get(engine)
    if registry is None:
        registry = _REGISTRIES[engine] = Functions(engine)
    return registry


def functions_info(server: ServerState) -> tuple[int, int]:
    """INFO's ``number_of_functions`` and ``used_memory_vm_functions`` (0, 0 before any)."""
    engine = server.scripts
    registry = None if engine is None else _REGISTRIES.get(engine)
    if registry is None:
        return 0, 0
    vm_memory = registry._vm.memory() if registry._vm is not None else 0
    return len(registry.functions), vm_memory
