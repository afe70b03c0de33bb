"""The value types a key can hold besides a string: hashes, lists, sets, sorted sets, streams.

One module per type (``hashes``, ``lists``, ``sets``, ``zsets``, ``streams``), each the
container, its effects and their undo, and its flat form (see
:mod:`snapkv.values.base`); this package maps type codes and container
classes to those modules. Pure: no store, no I/O. Below the codec and the
keyspace: the snapshot codec builds containers, the keyspace applies effects.
"""

from __future__ import annotations

from typing import Any

from snapkv.errors import WrongTypeError
from snapkv.values import hashes, lists, sets, streams, zsets
from snapkv.values.base import Item, Items, ValueType, epoch, next_epoch

__all__ = [
    "BY_CLASS",
    "BY_CODE",
    "BY_NAME",
    "Item",
    "Items",
    "ValueType",
    "epoch",
    "hashes",
    "lists",
    "next_epoch",
    "sets",
    "streams",
    "type_name",
    "wrong_type",
    "zsets",
]

_TYPES: tuple[ValueType, ...] = (hashes, lists, sets, zsets, streams)
#: Type modules by their on-disk code.
BY_CODE: dict[int, ValueType] = {t.CODE: t for t in _TYPES}
#: Type modules by their container class.
BY_CLASS: dict[type[Any], ValueType] = {t.CLASS: t for t in _TYPES}
#: Type modules by the name TYPE answers.
BY_NAME: dict[str, ValueType] = {t.NAME: t for t in _TYPES}


def type_name(value: Any) -> str:
    """What Redis's TYPE answers for a value held by a key: ``string``, ``hash``, ..."""
    if value.__class__ is str:
        return "string"
    return BY_CLASS[value.__class__].NAME


def wrong_type(key: str, value: Any, wanted: str) -> WrongTypeError:
    """The error for ``key`` (holding ``value``) used as a ``wanted``."""
    return WrongTypeError(key, type_name(value), wanted)
