"""Keyspace notifications (Redis's ``notify.c``).

An event is published as ``__keyspace@<db>__:<key>`` (the event as the
message) and ``__keyevent@<db>__:<event>`` (the key as the message), each
only when ``notify-keyspace-events`` selects the event's class and ``K``
or ``E`` respectively.

The command modules raise events through the small helpers here
(:func:`written`, :func:`popped`, :func:`created`, :func:`missed`), each of
which first tests the configured flags: with notifications off (the
default) a call costs a function call and two attribute reads, nothing is
looked up or formatted, and the hottest path (SET's) tests the flags inline.

The order of a command's events is Redis's: a key created by the command
first announces ``new`` (class ``n``, as ``dbAdd`` does), then the
command's own events in the order ``t_*.c`` raises them (``set`` before
``expire``, ``lpop`` before ``del`` when a list is emptied). A read that
finds no key announces ``keymiss`` (class ``m``, Redis's ``lookupKeyRead``),
from the handler's miss branch, so a hit pays nothing.

Keys the Store reclaims because they expired announce ``expired`` (class
``x``) through :attr:`Store.expired_listener
<snapkv.store.Store.expired_listener>`, on the thread that reclaimed them
(the sweeper's, or the command's, before the command's own events);
:func:`~snapkv.server.pubsub.publish` may be called from any thread, and
the listener never calls the Store, whose lock it runs under. Redis also
reclaims a key the moment a command looks it up; the Store's reads are
lock-free and leave that to the sweep (every 100 ms, as Redis's active
expiry), so while ``expired`` events are selected the helpers do it here:
a write about to replace an expired key reclaims it first
(:func:`created`), so its ``expired`` is never lost, and a read that misses
one (:func:`missed`) announces ``expired`` before ``keymiss``, as Redis
does. Both take the Store's lock for it: a handler calls them outside its
own locked section. Nothing is ever ``evicted``: snapkv evicts nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from snapkv.server.events import (
    NOTIFY_EXPIRED,
    NOTIFY_GENERIC,
    NOTIFY_HASH,
    NOTIFY_KEY_MISS,
    NOTIFY_KEYEVENT,
    NOTIFY_KEYSPACE,
    NOTIFY_LIST,
    NOTIFY_NEW,
    NOTIFY_SET,
    NOTIFY_STRING,
    NOTIFY_ZSET,
)
from snapkv.server.pubsub import publish

if TYPE_CHECKING:
    from snapkv.keyspace import Keyspace
    from snapkv.server.client import Client
    from snapkv.server.state import ServerState

# The classes a command's events belong to are re-exported, so the command
# modules name one module for notifications.
__all__ = [
    "NOTIFY_EXPIRED",
    "NOTIFY_GENERIC",
    "NOTIFY_HASH",
    "NOTIFY_LIST",
    "NOTIFY_NEW",
    "NOTIFY_SET",
    "NOTIFY_STRING",
    "NOTIFY_ZSET",
    "created",
    "created_each",
    "install",
    "missed",
    "notify",
    "popped",
    "watched",
    "written",
    "written_each",
]

_EITHER = NOTIFY_KEYSPACE | NOTIFY_KEYEVENT
_MISS_OR_EXPIRED = NOTIFY_KEY_MISS | NOTIFY_EXPIRED


def notify(target: Client | ServerState, flag: int, event: str, key: str, db: int) -> None:
    """Publish ``event`` on ``key`` of keyspace ``db`` (Redis's ``notifyKeyspaceEvent``).

    ``target`` is the client whose command raised it, or the server itself
    (expiry): only its configuration and pub/sub registry are used, and a
    client is named as the messages' sender, so that if it listens itself
    its copy goes out before its reply, as in Redis. ``flag`` is the
    event's class (``events.NOTIFY_*``). While nobody subscribes to anything
    nothing is formatted.
    """
    server = cast("ServerState", getattr(target, "server", target))
    selected = server.config.notify_keyspace_events
    if not (selected & flag and selected & _EITHER):
        return
    registry = server.pubsub
    if not (registry.channels or registry.patterns):
        return
    sender = cast("Client", target) if target is not server else None
    if selected & NOTIFY_KEYSPACE:
        publish(server, f"__keyspace@{db}__:{key}", event, sender)
    if selected & NOTIFY_KEYEVENT:
        publish(server, f"__keyevent@{db}__:{event}", key, sender)


def written(client: Client, flag: int, event: str, key: str, new: bool = False) -> None:
    """A command's ``event`` on ``key`` of the client's keyspace; ``new`` first if it created it.

    The form the command modules use: one call per event, which returns at
    once while nothing is selected.
    """
    if not client.server.config.notify_keyspace_events & _EITHER:
        return
    if new:
        notify(client, NOTIFY_NEW, "new", key, client.db_index)
    notify(client, flag, event, key, client.db_index)


def popped(client: Client, flag: int, event: str, key: str) -> None:
    """A command's ``event`` on a container it took from, then ``del`` if that emptied it.

    Redis deletes a container when its last element goes, and says so
    after the command's own event (``lpop`` then ``del``).
    """
    if not client.server.config.notify_keyspace_events & _EITHER:
        return
    notify(client, flag, event, key, client.db_index)
    if key not in client.db:
        notify(client, NOTIFY_GENERIC, "del", key, client.db_index)


def missed(client: Client, *keys: str, kinds: tuple[str, ...] | None = None) -> None:
    """``keymiss`` (class ``m``) for each of ``keys`` that is missing, in order.

    Redis's ``lookupKeyRead`` raises it for every read lookup that finds
    nothing, after ``expired`` when the key had just expired (it reclaims
    the key there and then: so does this, when ``expired`` is selected).
    The read handlers call this on their miss (or empty) branch only, so a
    hit costs nothing; a command that reads several keys calls it with them
    all, and with ``kinds`` (the types it reads) it stops at the first key
    of another type, where Redis stops with WRONGTYPE. Never call it under
    the Store's lock: reclaiming takes it.
    """
    selected = client.server.config.notify_keyspace_events
    if not (selected & _MISS_OR_EXPIRED and selected & _EITHER):
        return
    db = client.db
    for key in keys:
        found = db.key_type(key)
        if found is None:
            if selected & NOTIFY_EXPIRED:
                _reclaim_due(db, key)
            if selected & NOTIFY_KEY_MISS:
                notify(client, NOTIFY_KEY_MISS, "keymiss", key, client.db_index)
        elif kinds is not None and found not in kinds:
            return


def watched(client: Client) -> bool:
    """Whether any event can be published now: for a handler that must look before it writes."""
    return bool(client.server.config.notify_keyspace_events & _EITHER)


def created(client: Client, key: str) -> bool:
    """Whether ``new`` should be announced if ``key`` is written now: it is selected, and absent.

    Called before a write that may create (or replace) ``key``; with events
    off it answers at once without looking at the keyspace. A key that has
    expired but is not reclaimed yet is reclaimed here first when
    ``expired`` events are selected, so it is announced before the write
    replaces it, as Redis's ``lookupKeyWrite`` does (expired, then new):
    without this the write would overwrite it and no sweep would ever see
    it go.
    """
    selected = client.server.config.notify_keyspace_events
    if not selected & _EITHER:
        return False
    db = client.db
    if key in db:
        return False
    if selected & NOTIFY_EXPIRED:
        _reclaim_due(db, key)
    return bool(selected & NOTIFY_NEW)


def created_each(client: Client, keys: list[str]) -> list[tuple[str, bool]]:
    """:func:`created` for each of ``keys`` in order (a repeated key is new once), before a write
    that sets them all at once (MSET); empty while no event can be published."""
    if not client.server.config.notify_keyspace_events & _EITHER:
        return []
    seen: set[str] = set()
    events = []
    for key in keys:
        events.append((key, key not in seen and created(client, key)))
        seen.add(key)
    return events


def written_each(client: Client, flag: int, event: str, events: list[tuple[str, bool]]) -> None:
    """:func:`written` for each ``(key, new)`` that :func:`created_each` gave."""
    for key, new in events:
        written(client, flag, event, key, new)


def _reclaim_due(db: Keyspace, key: str) -> None:
    """Reclaim ``db``'s due keys if ``key`` is one of them (the listener announces each).

    ``key in db`` was false: ``key`` is missing, or present and expired.
    Reclaiming takes the Store's lock (reentrant for a transaction's own
    thread), as a locked read does.
    """
    if key in db._space[0]:
        with db._store._lock:
            db._reclaim(None)


def install(server: ServerState) -> None:
    """Connect ``server`` to its Store's expired keys (``Store.expired_listener``).

    Reclaimed keys are announced as ``expired`` in the keyspace they left,
    on the reclaiming thread and under the Store's lock (so the listener
    only publishes: it never reads or writes the Store).
    """

    def expired(db: int, keys: list[str]) -> None:
        selected = server.config.notify_keyspace_events
        if not (selected & NOTIFY_EXPIRED and selected & _EITHER):
            return
        for key in keys:
            notify(server, NOTIFY_EXPIRED, "expired", key, db)

    server.store.expired_listener = expired
