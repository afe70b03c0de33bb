"""Sorted set commands (Redis 7.0's t_zset.c): ZADD ... ZSCAN, and ZRANGESTORE.

The handlers parse as Redis does, in its order (option errors before
WRONGTYPE where Redis checks them first), and leave the work to
:class:`~snapkv.views.zset.SortedSetView`. ZRANGESTORE lives here, not with
the other STORE forms, because it shares ZRANGE's parser
(:func:`parse_range`) and the command modules may not import each other.

Scores are replied with :meth:`Client.encode` of a float: a RESP3 double or,
in RESP2, a bulk string printed ``%.17g`` (``0.10000000000000001``,
``1e+20``, ``inf``), as Redis 7.0's ``addReplyDouble``. WITHSCORES answers
are flat ``member, score, ...`` arrays in RESP2 and arrays of
``[member, score]`` pairs in RESP3, as Redis 7.0 answers them.

The pops and the commands over several keys are in :mod:`.cmd_zset_store`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from snapkv.server.glob import keys_matching
from snapkv.server.notify import NOTIFY_GENERIC, NOTIFY_ZSET, created, missed, popped, written
from snapkv.server.resp.text import to_bytes
from snapkv.server.resp.writer import EMPTY_ARRAY, integer
from snapkv.server.scan import EMPTY_SCAN, page, parse_cursor, parse_options
from snapkv.server.table import ERR_SYNTAX, CommandError, check_random_draw, command, parse_int
from snapkv.values import zsets
from snapkv.views import SortedSetView

if TYPE_CHECKING:
    from snapkv.server.client import Client

__all__ = ["Selection", "pairs_reply", "parse_range"]

_Z = "sorted-set"
_KEY = (1, 1, 1)
ERR_FLOAT = "ERR value is not a valid float"
ERR_NAN = "ERR resulting score is not a number (NaN)"
ERR_MINMAX = "ERR min or max is not a float"
ERR_LEX = "ERR min or max not valid string range item"
_LONG_MAX = 2**63 - 1
_LONG_MIN = -(2**63)


class Selection(NamedTuple):
    """What a ZRANGE request selects: :meth:`SortedSetView.select`'s arguments."""

    by: str
    low: Any
    high: Any
    reverse: bool
    offset: int
    limit: int


def _view(client: Client, key: str) -> SortedSetView:
    return client.db.zsets[key]


def score_arg(text: str, message: str = ERR_FLOAT) -> float:
    """A score argument (``getDoubleFromObjectOrReply``)."""
    try:
        return zsets.parse_score(text)
    except ValueError:
        raise CommandError(message) from None


def pairs_reply(client: Client, pairs: list[tuple[str, float]], with_scores: bool) -> bytes:
    """Members, or with scores: flat in RESP2, ``[member, score]`` pairs in RESP3."""
    if not with_scores:
        return client.encode([m for m, _ in pairs])
    if client.resp > 2:
        return client.encode([list(pair) for pair in pairs])
    return client.encode([x for pair in pairs for x in pair])


# -------------------------------------------------------------------- ZADD


def _zadd(client: Client, argv: list[str], incr: bool) -> bytes:
    """Redis's ``zaddGenericCommand`` (ZINCRBY is it with INCR set)."""
    flags = {"nx": False, "xx": False, "ch": False, "incr": incr, "gt": False, "lt": False}
    i = 2
    while i < len(argv) and argv[i].lower() in flags:
        flags[argv[i].lower()] = True
        i += 1
    rest = argv[i:]
    if not rest or len(rest) % 2:
        raise CommandError(ERR_SYNTAX)
    nx, xx, gt, lt = flags["nx"], flags["xx"], flags["gt"], flags["lt"]
    if nx and xx:
        raise CommandError("ERR XX and NX options at the same time are not compatible")
    if (gt and nx) or (lt and nx) or (gt and lt):
        raise CommandError("ERR GT, LT, and/or NX options at the same time are not compatible")
    if flags["incr"] and len(rest) > 2:
        raise CommandError("ERR INCR option supports a single increment-element pair")
    pairs = [(rest[j + 1], score_arg(rest[j])) for j in range(0, len(rest), 2)]
    new = created(client, argv[1])
    try:
        added, changed, last = _view(client, argv[1]).zadd(
            pairs, nx=nx, xx=xx, gt=gt, lt=lt, incr=flags["incr"]
        )
    except ValueError:  # the flags and scores are checked: only a NaN sum is left
        raise CommandError(ERR_NAN) from None
    client.changes += added + changed
    if added or changed:
        written(client, NOTIFY_ZSET, "zincr" if flags["incr"] else "zadd", argv[1], new)
    if flags["incr"]:
        return client.null if last is None else client.encode(last)
    return integer(added + changed if flags["ch"] else added)


@command("zadd", -4, "write denyoom fast", keys=_KEY, group=_Z, since="1.2.0")
def zadd(client: Client, argv: list[str]) -> bytes:
    """ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]."""
    return _zadd(client, argv, False)


@command("zincrby", 4, "write denyoom fast", keys=_KEY, group=_Z, since="1.2.0")
def zincrby(client: Client, argv: list[str]) -> bytes:
    """ZINCRBY key increment member (ZADD INCR: its option words are read the same way)."""
    return _zadd(client, argv, True)


@command("zrem", -3, "write fast", keys=_KEY, group=_Z, since="1.2.0")
def zrem(client: Client, argv: list[str]) -> bytes:
    removed = _view(client, argv[1]).remove(*argv[2:])
    client.changes += removed
    if removed:
        popped(client, NOTIFY_ZSET, "zrem", argv[1])
    return integer(removed)


# ------------------------------------------------------------------ reading


@command("zcard", 2, "readonly fast", keys=_KEY, group=_Z, since="1.2.0")
def zcard(client: Client, argv: list[str]) -> bytes:
    size = len(_view(client, argv[1]))
    if not size:
        missed(client, argv[1])
    return integer(size)


@command("zscore", 3, "readonly fast", keys=_KEY, group=_Z, since="1.2.0")
def zscore(client: Client, argv: list[str]) -> bytes:
    score = _view(client, argv[1]).get(argv[2])
    if score is None:
        missed(client, argv[1])
        return client.null
    return client.encode(score)


@command("zmscore", -3, "readonly fast", keys=_KEY, group=_Z, since="6.2.0")
def zmscore(client: Client, argv: list[str]) -> bytes:
    scores = _view(client, argv[1]).scores(argv[2:])
    if all(score is None for score in scores):
        missed(client, argv[1])
    return client.encode(scores)


@command("zrank", 3, "readonly fast", keys=_KEY, group=_Z, since="2.0.0")
@command("zrevrank", 3, "readonly fast", keys=_KEY, group=_Z, since="2.0.0")
def zrank(client: Client, argv: list[str]) -> bytes:
    rank = _view(client, argv[1]).rank(argv[2], reverse=argv[0].lower() == "zrevrank")
    if rank is None:
        missed(client, argv[1])
        return client.null
    return integer(rank)


def _score_range(low: str, high: str) -> tuple[tuple[float, bool], tuple[float, bool]]:
    try:
        return zsets.parse_score_bound(low), zsets.parse_score_bound(high)
    except ValueError:
        raise CommandError(ERR_MINMAX) from None


def _lex_range(low: str, high: str) -> tuple[Any, Any]:
    try:
        return zsets.parse_lex_bound(low), zsets.parse_lex_bound(high)
    except ValueError:
        raise CommandError(ERR_LEX) from None


@command("zcount", 4, "readonly fast", keys=_KEY, group=_Z, since="2.0.0")
def zcount(client: Client, argv: list[str]) -> bytes:
    (low, low_ex), (high, high_ex) = _score_range(argv[2], argv[3])
    view = _view(client, argv[1])
    found = view.count(low, high, min_exclusive=low_ex, max_exclusive=high_ex)
    if not found:
        missed(client, argv[1])
    return integer(found)


@command("zlexcount", 4, "readonly fast", keys=_KEY, group=_Z, since="2.8.9")
def zlexcount(client: Client, argv: list[str]) -> bytes:
    found = _view(client, argv[1]).lex_count(*_lex_range(argv[2], argv[3]))
    if not found:
        missed(client, argv[1])
    return integer(found)


# -------------------------------------------------------------------- ZRANGE


def parse_range(
    argv: list[str], first: int, by: str | None, rev: bool | None
) -> tuple[Selection, bool]:
    """Redis 7.0's ``zrangeGenericCommand`` parser: the selection and WITHSCORES.

    ``first`` is the index of the source key (1, or 2 for ZRANGESTORE);
    ``by`` and ``rev`` are fixed by the command's name (ZRANGEBYSCORE,
    ZREVRANGE...) or ``None`` when options choose them. ZRANGESTORE
    (``first == 2``) takes no WITHSCORES.
    """
    withscores = False
    offset, count = 0, -1
    chosen_by, reverse = by, bool(rev)
    j = first + 3
    while j < len(argv):
        word = argv[j].lower()
        left = len(argv) - j - 1
        if first == 1 and word == "withscores":
            withscores = True
        elif word == "limit" and left >= 2:
            offset, count = parse_int(argv[j + 1]), parse_int(argv[j + 2])
            j += 2
        elif rev is None and not reverse and word == "rev":
            reverse = True
        elif chosen_by is None and word in ("bylex", "byscore"):
            chosen_by = word[2:]
        else:
            raise CommandError(ERR_SYNTAX)
        j += 1
    kind = chosen_by or "rank"
    if count != -1 and kind == "rank":
        raise CommandError(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
        )
    if withscores and kind == "lex":
        raise CommandError("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
    low, high = argv[first + 1], argv[first + 2]
    if reverse and kind != "rank":
        low, high = high, low  # given as max, min
    if kind == "rank":
        bounds: tuple[Any, Any] = (parse_int(low), parse_int(high))
    elif kind == "score":
        bounds = _score_range(low, high)
    else:
        bounds = _lex_range(low, high)
    return Selection(kind, *bounds, reverse, offset, count), withscores


def _zrange(by: str | None, rev: bool | None) -> Any:
    def handler(client: Client, argv: list[str]) -> bytes:
        (kind, low, high, reverse, offset, count), withscores = parse_range(argv, 1, by, rev)
        pairs = _view(client, argv[1]).select(
            kind, low, high, reverse=reverse, offset=offset, count=count, with_scores=True
        )
        if not pairs:
            missed(client, argv[1])
        return pairs_reply(client, pairs, withscores)

    return handler


for _name, _by, _rev, _since in (
    ("zrange", None, None, "1.2.0"),
    ("zrevrange", "rank", True, "1.2.0"),
    ("zrangebyscore", "score", False, "1.0.5"),
    ("zrevrangebyscore", "score", True, "2.2.0"),
    ("zrangebylex", "lex", False, "2.8.9"),
    ("zrevrangebylex", "lex", True, "2.8.9"),
):
    command(_name, -4, "readonly", keys=_KEY, group=_Z, since=_since)(_zrange(_by, _rev))


@command("zrangestore", -5, "write denyoom", keys=_KEY, group=_Z, since="6.2.0")
def zrangestore(client: Client, argv: list[str]) -> bytes:
    """ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count].

    Declared with the destination as its only key (Redis says 1 to 2): the
    dispatcher fails the transactions WATCHing the keys a write names, and
    the source is only read.
    """
    (kind, low, high, reverse, offset, count), _ = parse_range(argv, 2, None, None)
    missed(client, argv[2])
    new = created(client, argv[1])
    stored, deleted = _view(client, argv[2]).store_range(
        argv[1], kind, low, high, reverse=reverse, offset=offset, count=count
    )
    client.changes += 1 if stored or deleted else 0
    if stored:
        written(client, NOTIFY_ZSET, "zrangestore", argv[1], new)
    elif deleted:
        written(client, NOTIFY_GENERIC, "del", argv[1])
    return integer(stored)


# ----------------------------------------------------------------- removing


@command("zremrangebyrank", 4, "write", keys=_KEY, group=_Z, since="2.0.0")
def zremrangebyrank(client: Client, argv: list[str]) -> bytes:
    start, stop = parse_int(argv[2]), parse_int(argv[3])
    removed = _view(client, argv[1]).remove_range_by_rank(start, stop)
    client.changes += removed
    if removed:
        popped(client, NOTIFY_ZSET, "zremrangebyrank", argv[1])
    return integer(removed)


@command("zremrangebyscore", 4, "write", keys=_KEY, group=_Z, since="1.2.0")
def zremrangebyscore(client: Client, argv: list[str]) -> bytes:
    (low, low_ex), (high, high_ex) = _score_range(argv[2], argv[3])
    removed = _view(client, argv[1]).remove_range_by_score(
        low, high, min_exclusive=low_ex, max_exclusive=high_ex
    )
    client.changes += removed
    if removed:
        popped(client, NOTIFY_ZSET, "zremrangebyscore", argv[1])
    return integer(removed)


@command("zremrangebylex", 4, "write", keys=_KEY, group=_Z, since="2.8.9")
def zremrangebylex(client: Client, argv: list[str]) -> bytes:
    removed = _view(client, argv[1]).remove_range_by_lex(*_lex_range(argv[2], argv[3]))
    client.changes += removed
    if removed:
        popped(client, NOTIFY_ZSET, "zremrangebylex", argv[1])
    return integer(removed)


# ------------------------------------------------------------- ZRANDMEMBER


@command("zrandmember", -2, "readonly", keys=_KEY, group=_Z, since="6.2.0")
def zrandmember(client: Client, argv: list[str]) -> bytes:
    """ZRANDMEMBER key [count [WITHSCORES]]."""
    view = _view(client, argv[1])
    if len(argv) == 2:
        member = view.random()
        if member is None:
            missed(client, argv[1])
        return client.bulk_or_null(member)
    count = parse_int(argv[2])
    if count == _LONG_MIN:
        raise CommandError(
            f"ERR value is out of range, value must between {-_LONG_MAX} and {_LONG_MAX}"
        )
    withscores = False
    if len(argv) > 4 or (len(argv) == 4 and argv[3].lower() != "withscores"):
        raise CommandError(ERR_SYNTAX)
    if len(argv) == 4:
        withscores = True
        if not -_LONG_MAX // 2 <= count <= _LONG_MAX // 2:
            raise CommandError("ERR value is out of range")
    if not view.exists() or count == 0:  # exists() raises WRONGTYPE first, as Redis
        missed(client, argv[1])
        return EMPTY_ARRAY
    check_random_draw(count)
    return pairs_reply(client, view.random(count, with_scores=True), withscores)


# -------------------------------------------------------------------- ZSCAN


def _scan_score(score: float, small: bool) -> str:
    """A score as ZSCAN prints it: a listpack's stored text when small, else ``%.17g``."""
    if score in (float("inf"), float("-inf")):
        return "inf" if score > 0 else "-inf"
    if small and score.is_integer() and abs(score) <= _LONG_MAX // 2:
        return str(int(score))
    return f"{score:.17g}"


@command("zscan", -3, "readonly", keys=_KEY, group=_Z, since="2.8.0")
def zscan(client: Client, argv: list[str]) -> bytes:
    """ZSCAN key cursor [MATCH pattern] [COUNT count].

    A set Redis keeps as a listpack (``zset-max-listpack-*``) comes whole,
    in order, with cursor 0, as in Redis; a larger one is walked as SCAN
    walks keys (:mod:`snapkv.server.scan`: a snapshot of its members taken
    at cursor 0, O(COUNT) a call). MATCH is the server's glob (linear time).
    """
    cursor = parse_cursor(argv[2])
    view = _view(client, argv[1])
    size = len(view)
    if not size:
        missed(client, argv[1])
        return EMPTY_SCAN
    count, pattern, _ = parse_options(argv, 3, with_type=False)
    config = client.server.config
    small = size <= config.zset_max_listpack_entries
    if small:
        pairs = view.range_by_rank(0, -1, with_scores=True)
        longest = config.zset_max_listpack_value
        small = all(len(to_bytes(member)) <= longest for member, _ in pairs)
    if small:
        next_cursor = 0
    else:
        owner = (client.db_index, "zset", argv[1])
        names, next_cursor = page(client, owner, cursor, count, lambda: list(view))
        pairs = [(name, score) for name in names if (score := view.get(name)) is not None]
    # The server's matcher (KEYS', SCAN's): linear time, so no pattern can stall it.
    kept = set(keys_matching(pattern, [member for member, _ in pairs]))
    flat = [x for m, s in pairs if m in kept for x in (m, _scan_score(s, small))]
    return client.encode([str(next_cursor), flat])
