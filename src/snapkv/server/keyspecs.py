"""Which arguments of a request are keys, and how they are used: Redis 7.0's db.c, pure.

Redis describes a command's keys by key specifications (``begin_search``:
an index or a keyword; ``find_keys``: a range or a ``numkeys`` count) and
for the few that no spec describes fully (SORT's STORE, MIGRATE's KEYS,
SET's GET) by a getkeys procedure. :func:`find_keys` is Redis's
``getKeysFromCommandWithSpecs``: the specs when they are complete and their
flags reliable, else the procedure. Each key comes back as its argv index
and Redis's key flags (``RW``, ``access``, ...), which is what COMMAND
GETKEYSANDFLAGS prints and what ACL's read/write key rules check.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

__all__ = ["KEY_FLAGS", "KeyRef", "find_keys", "has_keys"]

#: Redis's key-spec flags in the order COMMAND INFO and GETKEYSANDFLAGS print them.
KEY_FLAGS: Final = (
    "RO",
    "RW",
    "OW",
    "RM",
    "access",
    "update",
    "insert",
    "delete",
    "not_key",
    "incomplete",
    "variable_flags",
)

#: A key: its index in argv and its flags.
KeyRef = tuple[int, tuple[str, ...]]
Spec = Mapping[str, Any]
_Proc = Callable[[Sequence[str]], list[KeyRef]]
#: A procedure's key whose flags Redis leaves to the specs (``genericGetKeys`` and the like).
_NONE: Final[tuple[str, ...]] = ()


class _Invalid(Exception):
    """A spec that cannot find the keys of this request (Redis's ``invalid_spec``)."""


def _flags(*names: str) -> tuple[str, ...]:
    return tuple(name for name in KEY_FLAGS if name in names)


def _spec_keys(spec: Spec, argv: Sequence[str]) -> list[KeyRef]:
    """One spec's keys (``getKeysUsingKeySpecs``'s loop body); raises :class:`_Invalid`."""
    argc = len(argv)
    search = spec["begin_search"]
    if search["type"] == "index":
        first = search["spec"]["index"]
    elif search["type"] == "keyword":
        keyword = search["spec"]["keyword"].lower()
        start = search["spec"]["startfrom"]
        begin = start if start > 0 else argc + start
        end = argc - 1 if start > 0 else 1
        first = 0
        i = begin
        while i != end:
            if i >= argc or i < 1:
                break
            if argv[i].lower() == keyword:
                first = i + 1
                break
            i = i + 1 if begin <= end else i - 1
        if not first:
            return []  # keyword absent: this spec has no keys here
    else:
        raise _Invalid
    find = spec["find_keys"]
    if find["type"] == "range":
        step = find["spec"]["keystep"]
        lastkey, limit = find["spec"]["lastkey"], find["spec"]["limit"]
        if lastkey >= 0:
            last = first + lastkey
        elif not limit:
            last = argc + lastkey
        else:
            last = first + ((argc - first) // limit + lastkey)
    elif find["type"] == "keynum":
        step = find["spec"]["keystep"]
        at = first + find["spec"]["keynumidx"]
        if at >= argc:
            raise _Invalid
        numkeys = _string2ll(argv[at])
        if numkeys is None or numkeys < 0:
            raise _Invalid
        first += find["spec"]["firstkey"]
        last = first + numkeys - 1
    else:
        raise _Invalid
    if last >= argc or last < first or first >= argc:
        raise _Invalid
    flags = _flags(*spec["flags"])
    found = [(i, flags) for i in range(first, last + 1, step)]
    if "incomplete" in flags:
        raise _Invalid
    return found


def _string2ll(text: str) -> int | None:
    """Redis's ``string2ll``: an optional ``-``, digits, no leading zero, in 64 bits."""
    if not text or len(text) > 20 or not text.isascii():
        return None
    digits = text[1:] if text[0] == "-" else text
    if not digits.isdigit() or (digits[0] == "0" and len(text) > 1):
        return None
    value = int(text)
    return value if -(1 << 63) <= value < 1 << 63 else None


def _atoi(text: str) -> int:
    """C's ``atoi``: leading blanks, a sign, then as many digits as there are."""
    text = text.lstrip(" \t\n\v\f\r")
    sign = -1 if text[:1] == "-" else 1
    if text[:1] in "+-" and text:
        text = text[1:]
    digits = len(text) - len(text.lstrip("0123456789"))
    return sign * int(text[:digits]) if digits else 0


def _generic(store: int, count_at: int, first: int) -> _Proc:
    """``genericGetKeys``: ``[destkey] numkeys key ...``, flags left to the specs."""

    def proc(argv: Sequence[str]) -> list[KeyRef]:
        num = _atoi(argv[count_at]) if count_at < len(argv) else 0
        if num < 1 or num > len(argv) - first:
            return []
        keys = [(first + i, _NONE) for i in range(num)]
        return [*keys, (store, _NONE)] if store else keys

    return proc


def _set(argv: Sequence[str]) -> list[KeyRef]:
    if any(arg.lower() == "get" for arg in argv[3:]):
        return [(1, _flags("RW", "access", "update"))]
    return [(1, _flags("OW", "update"))]


def _bitfield(argv: Sequence[str]) -> list[KeyRef]:
    readonly = True
    i = 2
    while i < len(argv):
        rest, arg = len(argv) - i - 1, argv[i].lower()
        if arg == "get" and rest >= 2:
            i += 2
        elif arg in ("set", "incrby") and rest >= 3:
            readonly = False
            break
        elif arg == "overflow" and rest >= 1:
            i += 1
        else:
            readonly = False  # a syntax error: safer to assume a write
            break
        i += 1
    if readonly:
        return [(1, _flags("RO", "access"))]
    return [(1, _flags("RW", "access", "update"))]


def _sort(argv: Sequence[str]) -> list[KeyRef]:
    keys = [(1, _flags("RO", "access"))]
    store = 0
    skips = {"limit": 2, "get": 1, "by": 1}
    i = 2
    while i < len(argv):
        arg = argv[i].lower()
        if arg in skips:
            i += skips[arg]
        elif arg == "store" and i + 1 < len(argv):
            store = i + 1  # the last STORE wins, as in SORT
        i += 1
    return [*keys, (store, _flags("OW", "update"))] if store else keys


def _sort_ro(argv: Sequence[str]) -> list[KeyRef]:
    return [(1, _flags("RO", "access"))]


def _migrate(argv: Sequence[str]) -> list[KeyRef]:
    first, num = 3, 1
    skips = {"copy": 0, "replace": 0, "auth": 1, "auth2": 2}
    i = 6
    while i < len(argv):
        arg = argv[i].lower()
        if arg == "keys":
            if argv[3]:
                num = 0  # a key and KEYS together: MIGRATE's syntax error
            else:
                first, num = i + 1, len(argv) - i - 1
            break
        i += skips.get(arg, 0) + 1
    flags = _flags("RW", "access", "delete")
    return [(first + n, flags) for n in range(num)]


def _georadius(argv: Sequence[str]) -> list[KeyRef]:
    stored = -1
    i = 5
    while i < len(argv):
        if argv[i].lower() in ("store", "storedist") and i + 1 < len(argv):
            stored = i + 1
            i += 1
        i += 1
    return [(1, _NONE)] + ([(stored, _NONE)] if stored != -1 else [])


def _xread(argv: Sequence[str]) -> list[KeyRef]:
    streams = -1
    skips = {"block": 1, "count": 1, "group": 2, "noack": 0}
    i = 1
    while i < len(argv):
        arg = argv[i].lower()
        if arg == "streams":
            streams = i
            break
        if arg not in skips:
            break
        i += skips[arg] + 1
    num = len(argv) - streams - 1 if streams != -1 else 0
    if streams == -1 or num == 0 or num % 2:
        return []
    return [(i, _NONE) for i in range(streams + 1, len(argv) - num // 2)]


#: Redis 7.0's getkeys procedures, by command (``get_keys_function`` in its json files).
PROCS: Final[dict[str, _Proc]] = {
    "set": _set,
    "bitfield": _bitfield,
    "sort": _sort,
    "sort_ro": _sort_ro,
    "migrate": _migrate,
    "georadius": _georadius,
    "georadiusbymember": _georadius,
    "xread": _xread,
    "xreadgroup": _xread,
    "zunionstore": _generic(1, 2, 3),
    "zinterstore": _generic(1, 2, 3),
    "zdiffstore": _generic(1, 2, 3),
    "zunion": _generic(0, 1, 2),
    "zinter": _generic(0, 1, 2),
    "zdiff": _generic(0, 1, 2),
    "zintercard": _generic(0, 1, 2),
    "sintercard": _generic(0, 1, 2),
    "lmpop": _generic(0, 1, 2),
    "zmpop": _generic(0, 1, 2),
    "blmpop": _generic(0, 2, 3),
    "bzmpop": _generic(0, 2, 3),
    "eval": _generic(0, 2, 3),
    "evalsha": _generic(0, 2, 3),
    "eval_ro": _generic(0, 2, 3),
    "evalsha_ro": _generic(0, 2, 3),
    "fcall": _generic(0, 2, 3),
    "fcall_ro": _generic(0, 2, 3),
}


def has_keys(name: str, specs: Sequence[Spec]) -> bool:
    """Redis's ``doesCommandHaveKeys``: a procedure, or a spec that is not ``not_key``."""
    return name in PROCS or any("not_key" not in spec["flags"] for spec in specs)


def find_keys(name: str, specs: Sequence[Spec], argv: Sequence[str]) -> list[KeyRef]:
    """The keys of ``argv`` (``argv[0]`` the command) as Redis 7.0 finds them.

    ``name`` is the command's full name (its procedure's key), ``specs`` its
    key specifications. Keys come in Redis's order: spec by spec, then a
    procedure's own order; an empty list where Redis finds none (a
    malformed ``numkeys``, a missing STREAMS).
    """
    if any("not_key" not in s["flags"] for s in specs) and not any(
        "variable_flags" in s["flags"] for s in specs
    ):
        try:
            found: list[KeyRef] = []
            for spec in specs:
                if "not_key" not in spec["flags"]:
                    found += _spec_keys(spec, argv)
            return found
        except _Invalid:
            pass  # an invalid or incomplete spec: the procedure decides
    proc = PROCS.get(name)
    return proc(argv) if proc is not None else []
