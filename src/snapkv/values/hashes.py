"""Hashes: a key holding field -> value, both ``str`` (Redis's ``t_hash.c``).

The container is :class:`Hash`, a dict with an epoch (see :mod:`.base`).
Effects (the journal's EDIT records for a hash, docs/FORMAT.md J3):

* ``OP_SET`` items ``field, value, field, value, ...``: the fields now hold
  these values (HSET, HSETNX, HMSET, HINCRBY and HINCRBYFLOAT record the
  value they wrote, never the increment).
* ``OP_DEL`` items ``field, ...``: the fields no longer exist.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from snapkv.values.base import Item, Items, check_texts, epoch

__all__ = [
    "CLASS",
    "CODE",
    "NAME",
    "OP_DEL",
    "OP_SET",
    "Hash",
    "apply",
    "as_float",
    "as_int",
    "build",
    "compact",
    "copy",
    "flat",
    "human_float",
    "inverse",
    "size",
]

#: Redis 7.0's defaults ``hash-max-listpack-entries`` and ``hash-max-listpack-value``.
LISTPACK_ENTRIES = 512
LISTPACK_VALUE = 64

CODE = 1
NAME = "hash"
OP_SET = 1
OP_DEL = 2


class Hash(dict[str, str]):
    """A hash's fields and values; ``epoch`` is the save epoch it was made in."""

    __slots__ = ("epoch",)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.epoch = epoch()


CLASS = Hash


def apply(value: Hash | None, opcode: int, items: Items) -> Hash | None:
    """Apply one hash effect (see the module docstring); ``None`` when it left no field."""
    if opcode == OP_SET:
        if len(items) == 2 and value is not None:
            field, text = items
            if field.__class__ is not str or text.__class__ is not str:
                raise ValueError(f"hash fields and values must be str, not {field!r}: {text!r}")
            value[field] = text  # one field: HSET's usual case
            return value
        check_texts(items, "hash fields and values")
        if len(items) % 2:
            raise ValueError(f"a hash SET effect has {len(items)} items, not field/value pairs")
        if value is None:
            value = Hash()
        it = iter(items)
        value.update(zip(it, it, strict=True))  # type: ignore[arg-type]
        return value or None  # no pairs given to a missing hash: still missing
    if opcode == OP_DEL:
        check_texts(items, "hash fields")
        if value is not None:
            for field in items:
                value.pop(field, None)  # type: ignore[arg-type]
        return value or None
    raise ValueError(f"hash effect opcode {opcode} is not one of {OP_SET}, {OP_DEL}")


def inverse(value: Hash | None, opcode: int, items: Items) -> list[tuple[int, tuple[Item, ...]]]:
    """What undoes a hash effect on ``value``: the old values back, new fields removed."""
    old = value if value is not None else {}
    fields = items[0::2] if opcode == OP_SET else items
    restore: list[Item] = []
    remove: list[Item] = []
    for field in fields:
        prior = old.get(field)  # type: ignore[arg-type]
        if prior is None:
            remove.append(field)
        else:
            restore += (field, prior)
    undo: list[tuple[int, tuple[Item, ...]]] = []
    if remove and opcode == OP_SET:
        undo.append((OP_DEL, tuple(remove)))
    if restore:
        undo.append((OP_SET, tuple(restore)))
    return undo


def flat(value: Hash) -> list[Item]:
    """``field, value, field, value, ...``"""
    out: list[Item] = []
    for pair in value.items():
        out += pair
    return out


def build(items: Items) -> Hash:
    """A hash from ``field, value, ...`` items."""
    made = apply(None, OP_SET, items)
    if made is None:
        raise ValueError("a hash has at least one field")
    return made


def copy(value: Hash) -> Hash:
    """An independent copy in the current epoch."""
    return Hash(value)


def size(value: Hash) -> int:
    """The number of fields."""
    return len(value)


def _wire_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogateescape"))


def compact(
    value: dict[str, str], entries: int = LISTPACK_ENTRIES, longest: int = LISTPACK_VALUE
) -> bool:
    """Whether Redis 7.0 would hold ``value`` as a listpack (at most ``entries`` fields,
    none of its fields or values over ``longest`` bytes: its ``hash-max-listpack-*``).

    A listpack keeps insertion order, as a dict does, and Redis scans it in
    one reply: a server that wants Redis's exact replies needs to know.
    (Redis never converts a hashtable back to a listpack; this judges the
    fields as they are now.)
    """
    if len(value) > entries:
        return False
    return all(
        _wire_len(field) <= longest and _wire_len(text) <= longest for field, text in value.items()
    )


# ------------------------------------------------- a value read as a number

_INT = re.compile(r"-?[1-9][0-9]{0,18}|0", re.ASCII)
_DECIMAL = re.compile(
    r"[+-]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity)", re.IGNORECASE | re.ASCII
)
_HEX = re.compile(
    r"[+-]?0x(?:[0-9a-f]+(?:\.[0-9a-f]*)?|\.[0-9a-f]+)(?:p[+-]?\d+)?", re.IGNORECASE | re.ASCII
)
#: Redis's ``MAX_LONG_DOUBLE_CHARS``: a longer text is not a float to ``string2ld``.
_MAX_FLOAT_CHARS = 5 * 1024


def as_int(text: str) -> int | None:
    """``text`` as Redis's ``string2ll`` reads a 64-bit integer (HINCRBY), else ``None``.

    Strict: no ``+``, no spaces, no leading zeros, within 64 bits.
    """
    if _INT.fullmatch(text) is None:
        return None
    value = int(text)
    return value if -(2**63) <= value < 2**63 else None


def as_float(text: str) -> float | None:
    """``text`` as Redis's ``string2ld`` reads a float (HINCRBYFLOAT), else ``None``.

    What C's ``strtold`` reads, hexadecimal floats (``0x1p3``) and ``inf``
    included, with no space around it; NaN is refused. (Redis then computes
    in ``long double``, snapkv in double: the last digits can differ.)
    """
    if len(text) >= _MAX_FLOAT_CHARS:
        return None
    if _DECIMAL.fullmatch(text) is not None:
        return float(text)
    if _HEX.fullmatch(text) is not None:
        return float.fromhex(text)
    return None


def human_float(value: float) -> str:
    """Shortest decimal that reads back as ``value``, without an exponent (HINCRBYFLOAT's form)."""
    text = repr(value)
    if "e" in text:
        text = format(Decimal(text), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text
