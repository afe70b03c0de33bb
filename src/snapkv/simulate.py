"""run_operations: replay a list of operations on a real Store, collecting every get.

An operation is a tuple or list (JSON gives lists)::

    ("set", key, value)   ("get", key)   ("shutdown",)   ("restore",)

The Store snapshots to a :class:`~snapkv.media.MemoryMedium` by default, so
every ``shutdown`` really encodes the store in the snapshot format and every
``restore`` really decodes it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, MutableMapping, Sequence
from typing import Literal, NamedTuple

from snapkv.errors import InvalidOperationError
from snapkv.store import Store

__all__ = ["COMMANDS", "json_type_name", "run_operations", "validate_operations"]

#: Command name -> number of arguments after the name.
COMMANDS = {"set": 2, "get": 1, "shutdown": 0, "restore": 0}

#: JSON's name for each Python type ``json.loads`` returns (bool before int: a bool is an int).
_JSON_TYPES: tuple[tuple[type, str], ...] = (
    (type(None), "null"),
    (bool, "boolean"),
    (int, "number"),
    (float, "number"),
    (str, "string"),
    (list, "array"),
    (tuple, "array"),
    (dict, "object"),
)


def json_type_name(value: object) -> str:
    """The JSON type of ``value`` (``null``, ``object``, ...): what a JSON file's author wrote.

    A value ``json.loads`` never returns is named by its Python type.
    """
    for cls, name in _JSON_TYPES:
        if isinstance(value, cls):
            return name
    return type(value).__name__


class _Words(NamedTuple):
    """How a refusal names what it refuses: in Python's words or in JSON's."""

    #: What an operation must be.
    sequence: str
    #: What a command, key and value must be.
    text: str
    type_name: Callable[[object], str]
    #: How a command name is quoted.
    quote: Callable[[str], str]


#: run_operations speaks to Python callers: ``got NoneType``, ``'set'``.
_PYTHON = _Words("a list or tuple", "a str", lambda value: type(value).__name__, repr)
#: snapkv run speaks to the authors of JSON files: ``got null``, ``"set"``.
_JSON = _Words(
    "an array", "a string", json_type_name, lambda name: json.dumps(name, ensure_ascii=False)
)


def run_operations(
    operations: Iterable[Sequence[str]], *, store: Store | None = None
) -> list[str | None]:
    """Run ``operations`` in order and return the result of every ``get``, in order.

    A ``get`` of a missing key yields ``None``. ``store`` defaults to a new
    Store on a MemoryMedium; pass one to run against a directory.

    Operations are validated as they run, like a script: operations before
    a malformed one have taken effect on ``store``.

    :raises InvalidOperationError: an operation has an unknown command, the
        wrong number of arguments, or a non-str argument; the message names
        its index and the problem.
    """
    # A Store made here is reachable from no other thread, so the loop may
    # write to its dict directly and skip the per-call lock (measured: the
    # lock was most of the gap to a bare dict). A Store passed in may be
    # shared, so the loop goes through its locked mapping methods instead.
    private = store is None
    target = Store() if store is None else store

    def bind() -> MutableMapping[str, str]:
        # shutdown and restore install a new dict: re-bind after each.
        return target._exclusive_dict() if private else target

    snapshot_steps: dict[str, Callable[[], object]] = {
        "shutdown": target.shutdown,
        "restore": target.restore,
    }
    results: list[str | None] = []
    append = results.append
    data = bind()
    get = data.get
    for index, op in enumerate(operations):
        # The well-formed cases first, checked inline: this loop is the hot path.
        cls = type(op)
        if cls is tuple or cls is list:
            size = len(op)
            if size == 3:
                name, key, value = op
                if name == "set" and type(key) is str and type(value) is str:
                    data[key] = value
                    continue
            elif size == 2:
                name, key = op
                if name == "get" and type(key) is str:
                    append(get(key))
                    continue
            elif size == 1 and type(op[0]) is str:
                snapshot_step = snapshot_steps.get(op[0])
                if snapshot_step is not None:
                    snapshot_step()
                    data = bind()
                    get = data.get
                    continue
        # Slow path: anything unusual (another sequence type, str
        # subclasses) is validated in full, or refused with the reason.
        name, *args = _normalized(op, index)
        if name == "get":
            append(get(args[0]))
        elif name == "set":
            data[args[0]] = args[1]
        else:
            snapshot_steps[name]()
            data = bind()
            get = data.get
    return results


def validate_operations(
    operations: Iterable[object], *, words: Literal["python", "json"] = "python"
) -> None:
    """Check every operation without running any, so bad input changes nothing.

    :param words: ``"json"`` names types and quotes commands as JSON does
        (``got null``, ``"set"``), for input that was a JSON file; the
        default speaks Python, as :func:`run_operations` does.
    :raises InvalidOperationError: as :func:`run_operations` would, for the
        first bad one (its ``index`` counts from 0; its ``message`` is the
        problem alone).
    """
    vocabulary = _JSON if words == "json" else _PYTHON
    for index, op in enumerate(operations):
        _normalized(op, index, vocabulary)


def _normalized(op: object, index: int, words: _Words = _PYTHON) -> tuple[str, ...]:
    """Return ``op`` as a tuple of plain str, or raise saying exactly what is wrong."""
    if not isinstance(op, Sequence) or isinstance(op, (str, bytes, bytearray)):
        raise InvalidOperationError(
            f"expected {words.sequence}, got {words.type_name(op)}", index=index
        )
    if not op:
        raise InvalidOperationError("empty operation", index=index)
    name = op[0]
    if not issubclass(type(name), str):
        raise InvalidOperationError(
            f"command must be {words.text}, got {words.type_name(name)}", index=index
        )
    if name not in COMMANDS:
        known = ", ".join(sorted(COMMANDS))
        raise InvalidOperationError(
            f"unknown command {words.quote(name)} (expected one of {known})", index=index
        )
    arity = COMMANDS[name]
    if len(op) - 1 != arity:
        plural = "s" * (arity != 1)
        raise InvalidOperationError(
            f"{words.quote(name)} takes {arity} argument{plural}, got {len(op) - 1}",
            index=index,
        )
    for role, arg in zip(("key", "value"), op[1:], strict=False):
        if not issubclass(type(arg), str):
            raise InvalidOperationError(
                f"{words.quote(name)} {role} must be {words.text}, got {words.type_name(arg)}",
                index=index,
            )
    return tuple(str.__str__(part) for part in op)
