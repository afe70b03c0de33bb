"""Stream commands (Redis 7.0's ``t_stream.c``): XADD, XLEN, XRANGE, XREVRANGE, XDEL, XTRIM,
XREAD (BLOCK included), XSETID, XINFO STREAM.

Handlers parse as Redis does and reach the stream through its view
(:class:`~snapkv.views.stream.StreamView`), which resolves ``*`` and the
trims to concrete IDs before journaling; a view's ``ValueError`` carries
Redis's words and is answered as ``-ERR <words>``.

Consumer groups (XGROUP, XREADGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM,
XINFO GROUPS/CONSUMERS) are not implemented: those commands stay unknown,
and XINFO STREAM reports ``groups`` 0.

XREAD BLOCK waits through :mod:`snapkv.server.blocking` as the blocking
pops do (kind ``stream``): a write to one of its streams (XADD) makes it
ready, and the waiter is served the entries after the IDs it gave (``$``
resolved when it blocked); every waiter of a key is tried, since a stream
is read, not consumed. Inside MULTI or a script it answers a null at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from snapkv.server.blocking import registry
from snapkv.server.events import NOTIFY_STREAM
from snapkv.server.notify import created, written
from snapkv.server.resp.writer import bulk, encode, integer
from snapkv.server.table import ERR_SYNTAX, CommandError, command, parse_int, parse_timeout_ms
from snapkv.values.streams import ID
from snapkv.views.stream import Entry, StreamView, interval, parse_id

if TYPE_CHECKING:
    from snapkv.server.client import Client

__all__ = ["view"]

_S = "stream"
_KEY = (1, 1, 1)
_MAX = 2**64 - 1
_ERR_XINFO_STREAM = (
    "ERR unknown subcommand or wrong number of arguments for 'STREAM'. Try XINFO HELP."
)


def view(client: Client, key: str) -> StreamView:
    """The stream view of ``key`` in the client's keyspace."""
    return client.db.streams[key]


def _err(exc: ValueError) -> CommandError:
    return CommandError(f"ERR {exc}")


def _entries(entries: list[Entry]) -> list[Any]:
    return [[entry_id, list(pairs)] for entry_id, pairs in entries]


def _entries_reply(entries: list[Entry]) -> bytes:
    """``[[id, [field, value, ...]], ...]`` written directly (the same in RESP2 and RESP3):
    the generic encoder's dispatch per element was most of XRANGE's time."""
    out = [b"*%d\r\n" % len(entries)]
    for entry_id, pairs in entries:
        out.append(b"*2\r\n%s*%d\r\n" % (bulk(entry_id), len(pairs)))
        out += map(bulk, pairs)
    return b"".join(out)


# ------------------------------------------------------------------- XADD


def _parse_trim(argv: list[str], at: int, xadd: bool) -> tuple[int, dict[str, Any]]:
    """Redis's ``streamParseAddOrTrimArgsOrReply``: the trim options from ``at``; returns
    the position where it stopped (XADD: the ID) and the view's keyword arguments."""
    opts: dict[str, Any] = {}
    limit_given = False
    strategy = None
    i = at
    while i < len(argv):
        more = len(argv) - 1 - i
        opt = argv[i].lower()
        if xadd and argv[i] == "*":
            break
        if opt in ("maxlen", "minid") and more:
            if strategy is not None:
                raise CommandError(
                    "ERR syntax error, MAXLEN and MINID options at the same time are not compatible"
                )
            approx = False
            if more >= 2 and argv[i + 1] in ("~", "="):
                approx = argv[i + 1] == "~"
                i += 1
            if opt == "maxlen":
                number = parse_int(argv[i + 1])
                if number < 0:
                    raise CommandError("ERR The MAXLEN argument must be >= 0.")
                opts["maxlen"] = number
            else:
                try:
                    parse_id(argv[i + 1], strict=True)
                except ValueError as exc:
                    raise _err(exc) from None
                opts["minid"] = argv[i + 1]
            opts["approximate"] = approx
            strategy = opt
            i += 2
            continue
        if opt == "limit" and more:
            number = parse_int(argv[i + 1])
            if number < 0:
                raise CommandError("ERR The LIMIT argument must be >= 0.")
            opts["limit"] = number
            limit_given = True
            i += 2
            continue
        if xadd and opt == "nomkstream":
            opts["nomkstream"] = True
            i += 1
            continue
        if xadd:
            break  # the ID (or a syntax error found when it is parsed)
        raise CommandError(ERR_SYNTAX)
    if opts.get("limit") and strategy is None:
        raise CommandError(
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy"
        )
    if not xadd and strategy is None:
        raise CommandError("ERR syntax error, XTRIM must be called with a trimming strategy")
    if limit_given and not opts.get("approximate"):
        raise CommandError("ERR syntax error, LIMIT cannot be used without the special ~ option")
    return i, opts


@command("xadd", -5, "write denyoom fast", keys=_KEY, group=_S, since="5.0.0")
def xadd(client: Client, argv: list[str]) -> bytes:
    """XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT n]] *|id field value ..."""
    at, opts = _parse_trim(argv, 2, True)
    if at >= len(argv):
        raise CommandError("ERR wrong number of arguments for 'xadd' command")
    entry_id = argv[at]
    if entry_id != "*":
        try:
            parse_id(entry_id, strict=True, star_seq=True)
        except ValueError as exc:
            raise _err(exc) from None
    rest = argv[at + 1 :]
    if len(rest) < 2 or len(rest) % 2:
        raise CommandError("ERR wrong number of arguments for 'xadd' command")
    key = argv[1]
    fresh = created(client, key)
    pairs = list(zip(rest[0::2], rest[1::2], strict=True))
    try:
        new, trimmed = view(client, key).add_and_trim(pairs, entry_id, **opts)
    except ValueError as exc:
        raise _err(exc) from None
    if new is None:
        return encode(None, client.resp)  # NOMKSTREAM and no stream: a null bulk
    client.changes += 1
    written(client, NOTIFY_STREAM, "xadd", key, fresh)
    if trimmed:
        written(client, NOTIFY_STREAM, "xtrim", key)
    return bulk(new)


@command("xtrim", -4, "write", keys=_KEY, group=_S, since="5.0.0")
def xtrim(client: Client, argv: list[str]) -> bytes:
    """XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]: the number of entries removed."""
    _, opts = _parse_trim(argv, 2, False)
    try:
        removed = view(client, argv[1]).trim(**opts)
    except ValueError as exc:
        raise _err(exc) from None
    if removed:
        client.changes += removed
        written(client, NOTIFY_STREAM, "xtrim", argv[1])
    return integer(removed)


@command("xdel", -3, "write fast", keys=_KEY, group=_S, since="5.0.0")
def xdel(client: Client, argv: list[str]) -> bytes:
    """XDEL key id [id ...]: the number of entries deleted.

    As Redis: the key first (missing: 0, another type: WRONGTYPE), then
    every ID checked before anything is deleted.
    """
    stream = view(client, argv[1])
    if stream.last_id is None:
        return integer(0)
    try:
        for text in argv[2:]:
            parse_id(text, strict=True)
        removed = stream.delete(argv[2:])
    except ValueError as exc:
        raise _err(exc) from None
    if removed:
        client.changes += removed
        written(client, NOTIFY_STREAM, "xdel", argv[1])
    return integer(removed)


@command("xsetid", -3, "write denyoom fast", keys=_KEY, group=_S, since="5.0.0")
def xsetid(client: Client, argv: list[str]) -> bytes:
    """XSETID key last-id [ENTRIESADDED n] [MAXDELETEDID id]."""
    added: int | None = None
    deleted: str | None = None
    try:
        last = parse_id(argv[2], strict=True)[0]
    except ValueError as exc:
        raise _err(exc) from None
    i = 3
    while i < len(argv):
        opt = argv[i].lower()
        if opt == "entriesadded" and i + 1 < len(argv):
            added = parse_int(argv[i + 1])
            if added < 0:
                raise CommandError("ERR entries_added must be positive")
        elif opt == "maxdeletedid" and i + 1 < len(argv):
            deleted = argv[i + 1]
            try:
                floor = parse_id(deleted, strict=True)[0]
            except ValueError as exc:
                raise _err(exc) from None
            if last < floor:
                raise CommandError(
                    "ERR The ID specified in XSETID is smaller than the provided "
                    "max_deleted_entry_id"
                )
        else:
            raise CommandError(ERR_SYNTAX)
        i += 2
    try:
        view(client, argv[1]).set_id(argv[2], added, deleted)
    except KeyError:
        raise CommandError("ERR no such key") from None
    except ValueError as exc:
        raise _err(exc) from None
    client.changes += 1
    written(client, NOTIFY_STREAM, "xsetid", argv[1])
    return b"+OK\r\n"


# ---------------------------------------------------------------- reading


@command("xlen", 2, "readonly fast", keys=_KEY, group=_S, since="5.0.0")
def xlen(client: Client, argv: list[str]) -> bytes:
    return integer(view(client, argv[1]).length())


def _range(client: Client, argv: list[str], reverse: bool) -> bytes:
    """Redis's ``xrangeGenericCommand``: the bounds, then COUNT (repeatable), then the key."""
    low, high = (argv[3], argv[2]) if reverse else (argv[2], argv[3])
    try:
        interval(low, 0)
        interval(high, _MAX, upper=True)
    except ValueError as exc:
        raise _err(exc) from None
    count = None
    i = 4
    while i < len(argv):
        if argv[i].lower() != "count" or i + 1 >= len(argv):
            raise CommandError(ERR_SYNTAX)
        count = max(0, parse_int(argv[i + 1]))
        i += 2
    stream = view(client, argv[1])
    if count == 0:  # a null for an existing stream (a missing key: an empty array)
        return client.null_array if stream.last_id is not None else b"*0\r\n"
    try:
        if reverse:
            entries = stream.revrange(argv[2], argv[3], count)
        else:
            entries = stream.range(argv[2], argv[3], count)
    except ValueError as exc:
        raise _err(exc) from None
    return _entries_reply(entries)


@command("xrange", -4, "readonly", keys=_KEY, group=_S, since="5.0.0")
def xrange(client: Client, argv: list[str]) -> bytes:
    """XRANGE key start end [COUNT count]."""
    return _range(client, argv, False)


@command("xrevrange", -4, "readonly", keys=_KEY, group=_S, since="5.0.0")
def xrevrange(client: Client, argv: list[str]) -> bytes:
    """XREVRANGE key end start [COUNT count]."""
    return _range(client, argv, True)


@command("xinfo|stream", -3, "readonly", keys=(2, 2, 1), group=_S, since="5.0.0")
def xinfo_stream(client: Client, argv: list[str]) -> bytes:
    """XINFO STREAM key [FULL [COUNT count]] (Redis's ``xinfoReplyWithStreamInfo``).

    Without consumer groups: ``groups`` is 0 (FULL: an empty array). The
    radix tree's key count is the stream's nodes of 100 entries; its node
    count is Redis's for a stream of one node (2), an estimate beyond.
    """
    if len(argv) not in (3, 4, 6):
        raise CommandError(_ERR_XINFO_STREAM)
    stream = view(client, argv[2])
    facts = stream.info()
    if facts is None:
        raise CommandError("ERR no such key")
    full = len(argv) > 3
    count = 10
    if full:
        if argv[3].lower() != "full" or (len(argv) == 6 and argv[4].lower() != "count"):
            raise CommandError(_ERR_XINFO_STREAM)
        if len(argv) == 6:
            count = parse_int(argv[5])
            if count < 0:
                count = 10
    reply: dict[str, Any] = {
        "length": facts["length"],
        "radix-tree-keys": facts["nodes"],
        "radix-tree-nodes": facts["nodes"] + 1,
        "last-generated-id": facts["last-generated-id"],
        "max-deleted-entry-id": facts["max-deleted-entry-id"],
        "entries-added": facts["entries-added"],
        "recorded-first-entry-id": facts["recorded-first-entry-id"],
    }
    if full:
        reply["entries"] = _entries(stream.range(count=count or None))
        reply["groups"] = []
    else:
        reply["groups"] = 0
        for name in ("first-entry", "last-entry"):
            edge = facts[name]
            reply[name] = None if edge is None else [edge[0], list(edge[1])]
    return encode(reply, client.resp)


# ------------------------------------------------------------------ XREAD


def _parse_read(argv: list[str]) -> tuple[int | None, int | None, list[str], list[str]]:
    """XREAD's COUNT, BLOCK (ms), keys and IDs, as Redis's ``xreadCommand`` reads them."""
    count: int | None = None
    block: int | None = None
    i = 1
    while i < len(argv):
        opt = argv[i].lower()
        more = len(argv) - 1 - i
        if opt == "block" and more:
            block = parse_timeout_ms(argv[i + 1])
            i += 2
        elif opt == "count" and more:
            count = parse_int(argv[i + 1])
            count = max(count, 0)
            i += 2
        elif opt == "streams" and more:
            rest = argv[i + 1 :]
            if len(rest) % 2:
                raise CommandError(
                    "ERR Unbalanced XREAD list of streams: "
                    "for each stream key an ID or '$' must be specified."
                )
            half = len(rest) // 2
            return count, block, rest[:half], rest[half:]
        else:
            raise CommandError(ERR_SYNTAX)
    raise CommandError(ERR_SYNTAX)


def _read_reply(client: Client, found: list[tuple[str, list[Entry]]]) -> bytes:
    """RESP2: ``[[key, entries], ...]``; RESP3: a map key -> entries (a key named twice
    appears twice, as Redis writes it)."""
    if client.resp == 3:
        parts = [b"%%%d\r\n" % len(found)]
        parts += [bulk(key) + _entries_reply(entries) for key, entries in found]
    else:
        parts = [b"*%d\r\n" % len(found)]
        parts += [b"*2\r\n" + bulk(key) + _entries_reply(entries) for key, entries in found]
    return b"".join(parts)


def _read(client: Client, keys: list[str], ids: list[ID], count: int | None) -> bytes | None:
    found: list[tuple[str, list[Entry]]] = []
    for key, after in zip(keys, ids, strict=True):
        entries = view(client, key).after(after, count or None)
        if entries:
            found.append((key, entries))
    return _read_reply(client, found) if found else None


def _find_keys(argv: list[str]) -> list[str]:
    lowered = [arg.lower() for arg in argv]
    if "streams" not in lowered:
        return []
    rest = argv[lowered.index("streams") + 1 :]
    return rest[: len(rest) // 2]


@command("xread", -4, "readonly blocking", group=_S, since="5.0.0", find_keys=_find_keys)
def xread(client: Client, argv: list[str]) -> bytes:
    """XREAD [COUNT n] [BLOCK ms] STREAMS key ... id ...: entries after each ID."""
    count, block, keys, texts = _parse_read(argv)
    ids: list[ID] = []
    for key, text in zip(keys, texts, strict=True):
        if text == "$":
            stream = view(client, key)
            last = stream.last_id
            ids.append((0, 0) if last is None else parse_id(last)[0])
            continue
        if text == ">":
            raise CommandError(
                "ERR The > ID can be specified only when calling XREADGROUP using the GROUP "
                "<group> <consumer> option."
            )
        try:
            ids.append(parse_id(text, strict=True)[0])
        except ValueError as exc:
            raise _err(exc) from None
    reply = _read(client, keys, ids, count)
    if reply is not None:
        return reply
    if block is None or client.scripting or client.server.store.in_transaction:
        return client.null_array
    wanted = dict(zip(keys, ids, strict=False))

    def serve(key: str) -> tuple[bytes, list[str]] | None:
        entries = view(client, key).after(wanted[key], count or None)
        return None if not entries else (_read_reply(client, [(key, entries)]), [])

    return registry(client.server).block(
        client,
        argv,
        keys,
        "stream",
        serve,
        timeout_ms=block,
        timeout_reply=client.null_array,
    )
