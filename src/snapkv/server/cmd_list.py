"""List commands (Redis's t_list.c): LPUSH ... LMPOP, as Redis 7.0 answers them.

Each handler parses its arguments in Redis's order (some commands look the
key up before parsing an index, others after: the order decides which
error a request with two faults gets) and does its work through
``client.db.lists[key]``; the pops and the move are :func:`pop_first` and
:func:`move`, which the blocking forms (:mod:`.cmd_blocking`) share. A key
of another type raises WrongTypeError, which the dispatcher answers with
WRONGTYPE.

``client.changes`` counts as Redis's ``server.dirty``: the elements pushed,
popped, removed or trimmed away; one for LSET, LINSERT and a move.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from snapkv.server.notify import NOTIFY_LIST, created, missed, popped, watched, written
from snapkv.server.resp.writer import OK, bulk, integer
from snapkv.server.table import ERR_SYNTAX, CommandError, command, numkeys_at, parse_int
from snapkv.views import ListView

if TYPE_CHECKING:
    from snapkv.server.client import Client

__all__ = ["move", "parse_end", "parse_mpop", "pop_first"]

_L = "list"
_KEY = (1, 1, 1)
_TWO = (1, 2, 1)
_ERR_POSITIVE = "ERR value is out of range, must be positive"
_ERR_RANK = (
    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... "
    "or use negative to start from the end of the list"
)
_LLONG_MIN = -(2**63)


def _nonnegative(text: str, message: str) -> int:
    """Redis's ``getPositiveLongFromObjectOrReply`` with ``message`` for both faults."""
    value = parse_int(text, message)
    if value < 0:
        raise CommandError(message)
    return value


def parse_end(text: str) -> bool:
    """LEFT (True) or RIGHT (False), any case; else a syntax error (``getListPosition...``)."""
    word = text.lower()
    if word == "left":
        return True
    if word == "right":
        return False
    raise CommandError(ERR_SYNTAX)


# --------------------------------------------------------------------- push


def _push(client: Client, argv: list[str], left: bool, existing: bool) -> bytes:
    new = not existing and created(client, argv[1])
    length = client.db.lists[argv[1]].push(argv[2:], left=left, existing=existing)
    if length:
        client.changes += len(argv) - 2
        written(client, NOTIFY_LIST, _PUSHED[left], argv[1], new)
    return integer(length)


_PUSHED = {True: "lpush", False: "rpush"}
_POPPED = {True: "lpop", False: "rpop"}


@command("lpush", -3, "write denyoom fast", keys=_KEY, group=_L)
def lpush(client: Client, argv: list[str]) -> bytes:
    return _push(client, argv, True, False)


@command("rpush", -3, "write denyoom fast", keys=_KEY, group=_L)
def rpush(client: Client, argv: list[str]) -> bytes:
    return _push(client, argv, False, False)


@command("lpushx", -3, "write denyoom fast", keys=_KEY, group=_L, since="2.2.0")
def lpushx(client: Client, argv: list[str]) -> bytes:
    return _push(client, argv, True, True)


@command("rpushx", -3, "write denyoom fast", keys=_KEY, group=_L, since="2.2.0")
def rpushx(client: Client, argv: list[str]) -> bytes:
    return _push(client, argv, False, True)


# ---------------------------------------------------------------------- pop


def _pop(client: Client, argv: list[str], left: bool) -> bytes:
    """LPOP/RPOP key [count]: a bulk string, or with a count an array (null array if missing)."""
    if len(argv) > 3:
        raise CommandError(f"ERR wrong number of arguments for '{argv[0].lower()}' command")
    if len(argv) == 3:
        count = _nonnegative(argv[2], _ERR_POSITIVE)
        taken = client.db.lists[argv[1]].pop_count(count, left)
        if taken is None:
            return client.null_array
        client.changes += len(taken)
        if taken:
            popped(client, NOTIFY_LIST, _POPPED[left], argv[1])
        return client.encode(taken)
    taken = client.db.lists[argv[1]].pop_count(1, left)
    if taken is None:
        return client.null
    client.changes += 1
    popped(client, NOTIFY_LIST, _POPPED[left], argv[1])
    return bulk(taken[0])


@command("lpop", -2, "write fast", keys=_KEY, group=_L)
def lpop(client: Client, argv: list[str]) -> bytes:
    return _pop(client, argv, True)


@command("rpop", -2, "write fast", keys=_KEY, group=_L)
def rpop(client: Client, argv: list[str]) -> bytes:
    return _pop(client, argv, False)


@command("lmpop", -4, "write", group=_L, since="7.0.0", find_keys=numkeys_at(1))
def lmpop(client: Client, argv: list[str]) -> bytes:
    """LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]: [key, elements] of the first list.

    Its keys are found by numkeys (``find_keys``), as Redis's getkeys_proc
    does; COMMAND INFO shows 0 0 0 key positions, as Redis's.
    """
    keys, left, count = parse_mpop(argv, 1)
    reply = pop_first(client, keys, left, count, nested=True)
    return client.null_array if reply is None else reply


def parse_mpop(argv: list[str], at: int) -> tuple[list[str], bool, int]:
    """Parse ``numkeys key [key ...] LEFT|RIGHT [COUNT count]`` from ``argv[at]`` on.

    As Redis's ``lmpopGenericCommand``, for LMPOP (``at`` 1) and BLMPOP
    (``at`` 2, after its timeout): the keys, LEFT (True) or RIGHT, and the
    count (1 when not given). Checked
    in Redis's order: numkeys, the end, then the options.
    """
    numkeys = parse_int(argv[at], "ERR numkeys should be greater than 0")
    if numkeys < 1:
        raise CommandError("ERR numkeys should be greater than 0")
    where = at + 1 + numkeys
    if where >= len(argv):
        raise CommandError(ERR_SYNTAX)
    left = parse_end(argv[where])
    count = 0
    i = where + 1
    while i < len(argv):
        if count or argv[i].lower() != "count" or i + 1 >= len(argv):
            raise CommandError(ERR_SYNTAX)
        count = parse_int(argv[i + 1], "ERR count should be greater than 0")
        if count < 1:
            raise CommandError("ERR count should be greater than 0")
        i += 2
    return argv[at + 1 : where], left, count or 1


def pop_first(
    client: Client, keys: list[str], left: bool, count: int, *, nested: bool
) -> bytes | None:
    """Pop up to ``count`` elements of the first of ``keys`` holding a list: the reply, or ``None``.

    The one pop LMPOP, BLPOP, BRPOP and BLMPOP share (at once, or when a
    blocked client is served): ``[key, [elements]]`` when ``nested``
    (LMPOP, BLMPOP), else ``[key, element]``. ``None``: no key holds a
    list (nothing changes). A key of another type before the first list
    raises WrongTypeError, as Redis's loops over the keys refuse.
    """
    lists = client.db.lists
    found = ListView.pop_first([lists[key] for key in keys], left, count)
    if found is None:
        return None
    key, taken = found
    client.changes += len(taken)
    popped(client, NOTIFY_LIST, _POPPED[left], key)
    return client.encode([key, taken] if nested else [key, taken[0]])


# --------------------------------------------------------------------- move


@command("lmove", 5, "write denyoom", keys=_TWO, group=_L, since="6.2.0")
def lmove(client: Client, argv: list[str]) -> bytes:
    """LMOVE source destination LEFT|RIGHT LEFT|RIGHT: the element moved, or null."""
    from_left, to_left = parse_end(argv[3]), parse_end(argv[4])
    return move(client, argv[1], argv[2], from_left, to_left)


@command("rpoplpush", 3, "write denyoom", keys=_TWO, group=_L, since="1.2.0")
def rpoplpush(client: Client, argv: list[str]) -> bytes:
    return move(client, argv[1], argv[2], False, True)


def move(client: Client, source: str, destination: str, from_left: bool, to_left: bool) -> bytes:
    """One element from ``source`` to ``destination``: its bulk, or null if ``source`` is missing.

    The one move LMOVE, RPOPLPUSH, BLMOVE and BRPOPLPUSH share (at once, or
    when a blocked client is served). A key of another type raises
    WrongTypeError, nothing changed.
    """
    new = created(client, destination)
    element = client.db.lists[source].move_to(destination, from_left=from_left, to_left=to_left)
    if element is None:
        return client.null
    client.changes += 1
    # Redis pushes onto the destination first, then says what left the source.
    written(client, NOTIFY_LIST, _PUSHED[to_left], destination, new and destination != source)
    popped(client, NOTIFY_LIST, _POPPED[from_left], source)
    return bulk(element)


# -------------------------------------------------------------------- reads


@command("llen", 2, "readonly fast", keys=_KEY, group=_L)
def llen(client: Client, argv: list[str]) -> bytes:
    length = len(client.db.lists[argv[1]])
    if not length:
        missed(client, argv[1])
    return integer(length)


@command("lindex", 3, "readonly", keys=_KEY, group=_L)
def lindex(client: Client, argv: list[str]) -> bytes:
    """LINDEX key index: the key is looked up before the index is parsed, as in Redis."""
    view = client.db.lists[argv[1]]
    if not view.exists():
        missed(client, argv[1])
        return client.null
    return client.bulk_or_null(view.get(parse_int(argv[2])))


@command("lrange", 4, "readonly", keys=_KEY, group=_L)
def lrange(client: Client, argv: list[str]) -> bytes:
    start, stop = parse_int(argv[2]), parse_int(argv[3])
    elements = client.db.lists[argv[1]].range(start, stop)
    if not elements:
        missed(client, argv[1])
    return client.encode(elements)


@command("lpos", -3, "readonly", keys=_KEY, group=_L, since="6.0.6")
def lpos(client: Client, argv: list[str]) -> bytes:
    """LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len].

    Without COUNT an integer or null; with it an array (empty when nothing
    matches). Every option is parsed before the key is looked up.
    """
    rank, count, maxlen = 1, -1, 0
    i = 3
    while i < len(argv):
        option = argv[i].lower()
        if i + 1 >= len(argv) or option not in ("rank", "count", "maxlen"):
            raise CommandError(ERR_SYNTAX)
        if option == "rank":
            rank = parse_int(argv[i + 1])
            if rank == 0:
                raise CommandError(_ERR_RANK)
        elif option == "count":
            count = _nonnegative(argv[i + 1], "ERR COUNT can't be negative")
        else:
            maxlen = _nonnegative(argv[i + 1], "ERR MAXLEN can't be negative")
        i += 2
    wanted = 1 if count == -1 else count
    if rank == _LLONG_MIN:
        # Redis negates the rank in a C long: LLONG_MIN stays negative, so
        # every match from the tail counts and COUNT never stops the search.
        rank, wanted = -1, 1 if count == -1 else 0
    found = client.db.lists[argv[1]].positions(argv[2], rank, wanted, maxlen)
    if not found:
        missed(client, argv[1])
    if count != -1:
        return client.encode(found)
    return integer(found[0]) if found else client.null


# ------------------------------------------------------------------- writes


@command("lset", 4, "write denyoom", keys=_KEY, group=_L)
def lset(client: Client, argv: list[str]) -> bytes:
    """LSET key index element: ``no such key`` is checked before the index is parsed."""
    view = client.db.lists[argv[1]]
    if not view.exists():
        raise CommandError("ERR no such key")
    index = parse_int(argv[2])
    try:
        done = view.set_at(index, argv[3])
    except KeyError:
        raise CommandError("ERR no such key") from None
    if not done:
        raise CommandError("ERR index out of range")
    client.changes += 1
    written(client, NOTIFY_LIST, "lset", argv[1])
    return OK


@command("ltrim", 4, "write", keys=_KEY, group=_L)
def ltrim(client: Client, argv: list[str]) -> bytes:
    start, stop = parse_int(argv[2]), parse_int(argv[3])
    view = client.db.lists[argv[1]]
    existed = watched(client) and view.exists()  # Redis says ltrim even when nothing goes
    client.changes += view.trim(start, stop)
    if existed:
        popped(client, NOTIFY_LIST, "ltrim", argv[1])
    return OK


@command("lrem", 4, "write", keys=_KEY, group=_L)
def lrem(client: Client, argv: list[str]) -> bytes:
    count = parse_int(argv[2])
    removed = client.db.lists[argv[1]].remove(argv[3], count)
    client.changes += removed
    if removed:
        popped(client, NOTIFY_LIST, "lrem", argv[1])
    return integer(removed)


@command("linsert", 5, "write denyoom", keys=_KEY, group=_L, since="2.2.0")
def linsert(client: Client, argv: list[str]) -> bytes:
    """LINSERT key BEFORE|AFTER pivot element: the new length; -1: no pivot; 0: no key."""
    where = argv[2].lower()
    if where not in ("before", "after"):
        raise CommandError(ERR_SYNTAX)
    view = client.db.lists[argv[1]]
    if where == "before":
        length = view.insert_before(argv[3], argv[4])
    else:
        length = view.insert_after(argv[3], argv[4])
    if length > 0:
        client.changes += 1
        written(client, NOTIFY_LIST, "linsert", argv[1])
    return integer(length)
