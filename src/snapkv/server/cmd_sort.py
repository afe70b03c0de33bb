"""SORT and SORT_RO (Redis's sort.c): the elements of a list, set or sorted set, ordered.

``SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC]
[ALPHA] [STORE destination]``, read as Redis 7.0 reads it:

* By default the elements are read as doubles with C's ``strtod`` (leading
  white space, hexadecimal and ``inf`` accepted; trailing characters, NaN,
  overflow and underflow to a subnormal refused with ``One or more scores
  can't be converted into double``; ``""`` is 0. Redis reads ``errno``
  without clearing it, so there ``""`` and, after an overflow, any
  non-integer fails until something else sets it) and equal scores are
  ordered by the elements' bytes, so the order is total. ALPHA orders by
  bytes (Redis's ``strcoll`` in the C.UTF-8 locale its reference runs in).
* ``BY pattern`` sorts by the value of the key the pattern names with its
  first ``*`` replaced by the element (``w_*``), or of a hash's field
  (``h_*->field``); a missing one sorts as 0 (numeric) or first (ALPHA).
  A pattern without ``*`` (``nosort``) skips sorting: a list keeps its
  order, a sorted set its score order (reversed by DESC), a set its
  iteration order, except that with STORE a set is sorted ALPHA so the
  stored list does not depend on hashing.
* ``GET pattern`` (repeatable) replies with the values the pattern names
  instead of the elements: ``#`` is the element itself, a missing key or
  field is nil (an empty string when stored).
* ``LIMIT offset count`` keeps a range of the sorted elements (a negative
  count: all after the offset).
* ``STORE destination`` replaces the destination with the result as a list
  (one journal record: a PUT of the whole list, or a DEL when the result is
  empty) and replies with its length. SORT_RO has no STORE.

Ties of ALPHA with BY keep the elements' order before the sort (a set's
iteration order is snapkv's own, so there such ties may differ from Redis).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING

from snapkv import values
from snapkv.server.notify import NOTIFY_GENERIC, NOTIFY_LIST, created, missed, written
from snapkv.server.resp.text import to_bytes
from snapkv.server.resp.writer import integer
from snapkv.server.table import ERR_SYNTAX, CommandError, command, parse_int

if TYPE_CHECKING:
    from snapkv.server.client import Client

__all__ = ["strtod"]

_G = "generic"
_ERR_SCORE = "ERR One or more scores can't be converted into double"
_WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
_SORTABLE = ("list", "set", "zset")
_ACL_DENIED = "ERR {} option of SORT denied due to insufficient ACL permissions."
#: What C's strtod reads whole (after leading white space): decimal, hexadecimal, infinity.
_STRTOD = re.compile(
    r"[ \t\n\v\f\r]*"
    r"(?P<dec>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)?"
    r"(?P<hex>[+-]?0[xX](?:[0-9a-fA-F]+(?:\.[0-9a-fA-F]*)?|\.[0-9a-fA-F]+)(?:[pP][+-]?\d+)?)?"
    r"(?P<inf>[+-]?(?:inf|infinity))?",
    re.IGNORECASE | re.ASCII,
)
_SMALLEST_NORMAL = 2.2250738585072014e-308
#: Longer text below the smallest normal double is taken as inexact (see _exact).
_EXACT_TEXT_MAX = 1100


def strtod(text: str) -> float | None:
    """``text`` as Redis's SORT reads a score (C's ``strtod``), or None where it errs.

    None for text strtod does not read to its end, for NaN, and for what
    sets ``ERANGE``: overflow to infinity and underflow below the smallest
    normal double. The empty string reads as 0, as strtod leaves nothing over.
    """
    if not text:
        return 0.0
    match = _STRTOD.fullmatch(text)
    if match is None or len([g for g in match.groups() if g is not None]) != 1:
        return None
    dec, hexa, inf = match.group("dec", "hex", "inf")
    if inf is not None:
        return float(inf)
    try:
        value = float(dec) if dec is not None else float.fromhex(hexa)
    except OverflowError:
        return None
    if math.isinf(value):
        return None
    if abs(value) < _SMALLEST_NORMAL and not _exact(dec, hexa, value):
        return None  # glibc's ERANGE: a subnormal (or zero) result that is not exact
    return value


def _exact(dec: str | None, hexa: str | None, value: float) -> bool:
    """Whether ``value`` is exactly the number the decimal or hexadecimal text writes.

    Only asked for results below the smallest normal double. Text longer
    than any exact subnormal needs (about 770 digits) counts as inexact, so
    no huge number is ever built.
    """
    text = dec if dec is not None else hexa
    assert text is not None
    digits = re.split("[eEpP]", text.lstrip("+-"))[0]
    if re.search("[1-9a-fA-F]", digits[2:] if hexa is not None else digits) is None:
        return True  # zero, written as zero
    if value == 0.0 or len(text) > _EXACT_TEXT_MAX:
        return False
    if dec is not None:
        return Fraction(Decimal(dec)) == Fraction(value)
    sign = -1 if text.startswith("-") else 1
    body, _, exponent = text.lstrip("+-")[2:].lower().partition("p")
    whole, _, fraction = body.partition(".")
    written = Fraction(int(whole + fraction or "0", 16), 16 ** len(fraction))
    return sign * written * Fraction(2) ** int(exponent or "0") == Fraction(value)


def _by_pattern(client: Client, pattern: str, element: str) -> str | None:
    """Redis's ``lookupKeyByPattern``: the string or hash field ``pattern`` names, or None."""
    if pattern == "#":
        return element
    star = pattern.find("*")
    if star < 0:
        return None
    arrow = pattern.find("->", star + 1)
    field = None
    end = len(pattern)
    if arrow >= 0 and arrow + 2 < len(pattern):
        field, end = pattern[arrow + 2 :], arrow
    key = pattern[:star] + element + pattern[star + 1 : end]
    db = client.db
    kind = db.key_type(key)
    if kind is None:
        missed(client, key)
    if field is not None:
        found: str | None = db.hashes[key].get(field) if kind == "hash" else None
        return found
    return db.get(key) if kind == "string" else None


def _elements(client: Client, key: str) -> tuple[str, list[str]]:
    """The type and elements of ``key`` (a sorted set's in score order); a missing key: an
    empty list. Read under the Store's lock: the container must not change as it is copied."""
    db = client.db
    with db._store._lock:
        kind = db.key_type(key)
        if kind is None:
            return "list", []
        if kind not in _SORTABLE:
            raise CommandError(_WRONGTYPE)
        value = db._lookup(key, values.BY_NAME[kind])
        if kind == "zset":
            return kind, [member for _score, member in value.order]
        if kind == "set":
            # A set Redis keeps as an intset is in numeric order (BY nosort shows it).
            entries = client.server.config.set_max_intset_entries
            listed = list(value)
            return kind, values.sets.intset_order(listed, entries) or listed
        return kind, list(value)


def _reads_every_key(client: Client, argv: list[str], readonly: bool) -> bool:
    """Whether the client's ACL user may read any key (server/acl.py decides).

    BY and GET patterns read keys the request does not name, which the ACL
    check never saw: as Redis, they need read access to every key.
    """
    acl = client.server.acl
    return acl is None or bool(
        acl.full_key_access(client.user, "sort_ro" if readonly else "sort", argv)
    )


def _sort(client: Client, argv: list[str], *, readonly: bool) -> bytes:
    desc = alpha = dontsort = False
    offset, count = 0, -1
    by: str | None = None
    store: str | None = None
    gets: list[str] = []
    j, argc = 2, len(argv)
    while j < argc:
        option, left = argv[j].lower(), argc - j - 1
        if option == "asc":
            desc = False
        elif option == "desc":
            desc = True
        elif option == "alpha":
            alpha = True
        elif option == "limit" and left >= 2:
            offset, count = parse_int(argv[j + 1]), parse_int(argv[j + 2])
            j += 2
        elif option == "store" and left >= 1 and not readonly:
            store = argv[j + 1]
            j += 1
        elif option == "by" and left >= 1:
            by = argv[j + 1]
            if "*" not in by:  # as Redis: once set by a constant BY, never unset
                dontsort = True
            elif not _reads_every_key(client, argv, readonly):
                raise CommandError(_ACL_DENIED.format("BY"))
            j += 1
        elif option == "get" and left >= 1:
            if not _reads_every_key(client, argv, readonly):
                raise CommandError(_ACL_DENIED.format("GET"))
            gets.append(argv[j + 1])
            j += 1
        else:
            raise CommandError(ERR_SYNTAX)
        j += 1
    missed(client, argv[1])  # before the lock: it may reclaim the key, which takes it
    kind, elements = _elements(client, argv[1])
    if dontsort and kind == "set" and store is not None:
        dontsort, alpha, by = False, True, None  # a stored list must not depend on hashing
    size = len(elements)
    start = min(max(offset, 0), size)
    count = min(max(count, -1), size)
    end = size - 1 if count < 0 else start + count - 1
    if start >= size:
        start, end = size - 1, size - 2
    end = min(end, size - 1)
    if dontsort and kind != "set":
        ordered = elements[::-1] if desc else elements
        vector = ordered[start : end + 1] if end >= start else []
        start, end = 0, len(vector) - 1
    else:
        vector = elements
    if not dontsort:
        vector = _sorted(client, vector, by, alpha=alpha, desc=desc)
    rows = vector[start : end + 1] if end >= start else []
    if store is None:
        if not gets:
            return client.encode(rows)
        return client.encode([_by_pattern(client, get, row) for row in rows for get in gets])
    stored = rows
    if gets:  # a missing value is stored as an empty string
        stored = [_by_pattern(client, get, row) or "" for row in rows for get in gets]
    _store(client, store, stored)
    return integer(len(stored))


def _sorted(
    client: Client, vector: list[str], by: str | None, *, alpha: bool, desc: bool
) -> list[str]:
    """``vector`` ordered as Redis's ``sortCompare`` orders it (see the module docstring)."""
    if alpha:
        if by is None:
            return sorted(vector, key=to_bytes, reverse=desc)

        def alpha_key(element: str) -> tuple[int, bytes]:
            found = _by_pattern(client, by, element)
            return (0, b"") if found is None else (1, to_bytes(found))

        return sorted(vector, key=alpha_key, reverse=desc)
    keyed: list[tuple[float, bytes, str]] = []
    failed = False
    for element in vector:
        weight = element if by is None else _by_pattern(client, by, element)
        score = 0.0 if weight is None else strtod(weight)
        if score is None:
            failed = True
            score = 0.0
        keyed.append((score, to_bytes(element), element))
    if failed:
        raise CommandError(_ERR_SCORE)
    keyed.sort(key=lambda row: row[:2], reverse=desc)
    return [row[2] for row in keyed]


def _store(client: Client, key: str, elements: list[str]) -> None:
    """Replace ``key`` with the list ``elements`` (one PUT record), or delete it if empty."""
    db = client.db
    if elements:
        new = created(client, key)
        store = db._store
        with store._lock:
            ticket = db._write([("put", db.index, key, values.lists.CODE, tuple(elements), 0)])
        store._commit(ticket)
        client.changes += len(elements)
        written(client, NOTIFY_LIST, "sortstore", key, new)
    elif db.delete(key):
        client.changes += 1
        written(client, NOTIFY_GENERIC, "del", key)
    if client.server.watched or client.server.key_listeners:
        client.server.touch(client.db_index, [key])


@command("sort", -2, "write denyoom", keys=(1, 1, 1), group=_G, since="1.0.0")
def sort(client: Client, argv: list[str]) -> bytes:
    """SORT (see the module docstring); the STORE key is found at run time, as in Redis."""
    return _sort(client, argv, readonly=False)


@command("sort_ro", -2, "readonly", keys=(1, 1, 1), group=_G, since="7.0.0")
def sort_ro(client: Client, argv: list[str]) -> bytes:
    """SORT without STORE (a read-only command, for replicas and scripts)."""
    return _sort(client, argv, readonly=True)
