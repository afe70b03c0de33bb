"""Pub/sub commands (Redis's ``pubsub.c``): SUBSCRIBE ... PUBLISH, PUBSUB, the sharded forms.

The registry (who listens to what, and delivery) is :mod:`snapkv.server.pubsub`;
these handlers parse, call it and build Redis 7.0's replies:

* each (un)subscription is confirmed by its own three-element reply (a RESP3
  push for a RESP3 client): the kind, the name, and the client's count
  after it, where SUBSCRIBE and PSUBSCRIBE count channels plus patterns and
  SSUBSCRIBE counts shard channels alone;
* an UNSUBSCRIBE without arguments when there is nothing to leave still
  answers once, with a null name (``*3 unsubscribe $-1 :0``);
* SSUBSCRIBE refuses to run inside EXEC (Redis's ``DENY BLOCKING`` client),
  SUBSCRIBE and PSUBSCRIBE do not (Redis keeps them working there for old
  clients). In a server without cluster mode the shard commands check no
  slots: every channel is in the one shard, as in Redis.

RESP2's subscribed mode (only (P|S)(UN)SUBSCRIBE, PING, QUIT and RESET are
accepted) is enforced by the dispatcher, before any handler runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from snapkv.server.client import REPLY_ON
from snapkv.server.glob import Glob
from snapkv.server.pubsub import PubSub, registry
from snapkv.server.resp.text import to_bytes, to_text
from snapkv.server.resp.writer import SimpleString, bulk, integer
from snapkv.server.table import CommandError, command

if TYPE_CHECKING:
    from snapkv.server.client import Client

__all__: list[str] = []

_GROUP = "pubsub"
_SUBSCRIBING = "pubsub noscript loading stale"
_PUBLISHING = "pubsub loading stale fast may_replicate"
_INSPECTING = "pubsub loading stale"
#: The head of a confirmation, by protocol (index 2 or 3).
_HEAD: Final = (b"", b"", b"*3\r\n", b">3\r\n")

_HELP: Final = (
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
)


def _count(client: Client, kind: str) -> int:
    """The count a confirmation carries: shard channels apart, channels and patterns together."""
    if kind == "shard":
        return len(client.shard_channels)
    return len(client.channels) + len(client.patterns)


def _confirm(client: Client, what: bytes, name: str | None, kind: str) -> bytes:
    """One confirmation: ``[what, name (or null), count]``."""
    named = client.null if name is None else bulk(name)
    return _HEAD[client.resp] + what + named + integer(_count(client, kind))


def _subscribe(client: Client, argv: list[str], kind: str, what: bytes) -> bytes:
    pubsub = registry(client.server)
    pubsub.flush(client)  # messages published before this command precede its reply
    replies = []
    for name in argv[1:]:
        pubsub.subscribe(client, name, kind)
        replies.append(_confirm(client, what, name, kind))
    client.update_plain()
    return _pushed(client, b"".join(replies))


def _unsubscribe(client: Client, argv: list[str], kind: str, what: bytes) -> bytes:
    pubsub = registry(client.server)
    # No message may follow the confirmation of its channel's unsubscription.
    pubsub.flush(client)
    names = argv[1:] or pubsub.subscriptions(client, kind)
    if not names:
        return _pushed(client, _confirm(client, what, None, kind))
    replies = []
    for name in names:
        pubsub.unsubscribe(client, name, kind)
        replies.append(_confirm(client, what, name, kind))
    client.update_plain()
    return _pushed(client, b"".join(replies))


def _pushed(client: Client, confirmations: bytes) -> bytes:
    """Redis 7.0 sends confirmations as pushes: CLIENT REPLY OFF/SKIP does not drop them."""
    if client.reply_mode == REPLY_ON:
        return confirmations
    client.push(confirmations)
    return b""


# ---------------------------------------------------------------- (un)subscribe


@command("subscribe", -2, _SUBSCRIBING, group=_GROUP, since="2.0.0")
def subscribe(client: Client, argv: list[str]) -> bytes:
    """SUBSCRIBE channel [channel ...]: listen to the channels."""
    return _subscribe(client, argv, "channel", b"$9\r\nsubscribe\r\n")


@command("unsubscribe", -1, _SUBSCRIBING, group=_GROUP, since="2.0.0")
def unsubscribe(client: Client, argv: list[str]) -> bytes:
    """UNSUBSCRIBE [channel ...]: stop listening to them (to every channel without arguments)."""
    return _unsubscribe(client, argv, "channel", b"$11\r\nunsubscribe\r\n")


@command("psubscribe", -2, _SUBSCRIBING, group=_GROUP, since="2.0.0")
def psubscribe(client: Client, argv: list[str]) -> bytes:
    """PSUBSCRIBE pattern [pattern ...]: listen to every channel matching the patterns."""
    return _subscribe(client, argv, "pattern", b"$10\r\npsubscribe\r\n")


@command("punsubscribe", -1, _SUBSCRIBING, group=_GROUP, since="2.0.0")
def punsubscribe(client: Client, argv: list[str]) -> bytes:
    """PUNSUBSCRIBE [pattern ...]."""
    return _unsubscribe(client, argv, "pattern", b"$12\r\npunsubscribe\r\n")


@command("ssubscribe", -2, _SUBSCRIBING, keys=(1, -1, 1), group=_GROUP, since="7.0.0")
def ssubscribe(client: Client, argv: list[str]) -> bytes:
    """SSUBSCRIBE shardchannel [shardchannel ...]."""
    if client.server.store.in_transaction:
        # Redis marks a client running EXEC "deny blocking"; unlike SUBSCRIBE,
        # SSUBSCRIBE has no exception for it.
        raise CommandError("ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client")
    return _subscribe(client, argv, "shard", b"$10\r\nssubscribe\r\n")


@command("sunsubscribe", -1, _SUBSCRIBING, keys=(1, -1, 1), group=_GROUP, since="7.0.0")
def sunsubscribe(client: Client, argv: list[str]) -> bytes:
    """SUNSUBSCRIBE [shardchannel ...]."""
    return _unsubscribe(client, argv, "shard", b"$12\r\nsunsubscribe\r\n")


# --------------------------------------------------------------------- publish


@command("publish", 3, _PUBLISHING, group=_GROUP, since="2.0.0")
def publish(client: Client, argv: list[str]) -> bytes:
    """PUBLISH channel message: the number of clients that received it."""
    # The registry reached directly, the integer formatted inline: the hot path.
    pubsub: PubSub = client.server.pubsub
    return b":%d\r\n" % pubsub.publish(argv[1], argv[2], client)


@command("spublish", 3, _PUBLISHING, keys=(1, 1, 1), group=_GROUP, since="7.0.0")
def spublish(client: Client, argv: list[str]) -> bytes:
    """SPUBLISH shardchannel message: shard subscribers only (patterns do not see it)."""
    return integer(registry(client.server).spublish(argv[1], argv[2], client))


# ---------------------------------------------------------------------- PUBSUB


def _syntax_error(argv: list[str]) -> CommandError:
    """Redis's ``addReplySubcommandSyntaxError`` (the subcommand as sent, cut at 128 bytes)."""
    sub = to_text(to_bytes(argv[1])[:128])
    return CommandError(
        f"ERR unknown subcommand or wrong number of arguments for '{sub}'. "
        f"Try {argv[0].upper()} HELP."
    )


def _names(client: Client, argv: list[str], kind: str) -> bytes:
    """PUBSUB CHANNELS / SHARDCHANNELS [pattern]: the active names (matching the pattern)."""
    if len(argv) > 3:
        raise _syntax_error(argv)
    names = registry(client.server).names(kind)
    if len(argv) == 3:
        # Every name is matched, "*" too (so "*" leaves out the empty channel), as Redis.
        match = Glob(argv[2]).match
        names = [name for name in names if match(name)]
    return b"*%d\r\n%s" % (len(names), b"".join(map(bulk, names)))


def _numsub(pubsub: PubSub, argv: list[str], kind: str) -> bytes:
    """PUBSUB NUMSUB / SHARDNUMSUB: a flat array of name, count (an array in RESP3 too)."""
    out = [b"*%d\r\n" % (2 * (len(argv) - 2))]
    for name in argv[2:]:
        out.append(bulk(name))
        out.append(integer(pubsub.listeners(name, kind)))
    return b"".join(out)


@command("pubsub|channels", -2, _INSPECTING, group=_GROUP, since="2.8.0")
def pubsub_channels(client: Client, argv: list[str]) -> bytes:
    """PUBSUB CHANNELS [pattern]: channels with at least one subscriber."""
    return _names(client, argv, "channel")


@command("pubsub|shardchannels", -2, _INSPECTING, group=_GROUP, since="7.0.0")
def pubsub_shardchannels(client: Client, argv: list[str]) -> bytes:
    """PUBSUB SHARDCHANNELS [pattern]: shard channels with at least one subscriber."""
    return _names(client, argv, "shard")


@command("pubsub|numsub", -2, _INSPECTING, group=_GROUP, since="2.8.0")
def pubsub_numsub(client: Client, argv: list[str]) -> bytes:
    """PUBSUB NUMSUB [channel ...]: subscribers per channel (pattern subscribers not counted)."""
    return _numsub(registry(client.server), argv, "channel")


@command("pubsub|shardnumsub", -2, _INSPECTING, group=_GROUP, since="7.0.0")
def pubsub_shardnumsub(client: Client, argv: list[str]) -> bytes:
    """PUBSUB SHARDNUMSUB [shardchannel ...]."""
    return _numsub(registry(client.server), argv, "shard")


@command("pubsub|numpat", 2, _INSPECTING, group=_GROUP, since="2.8.0")
def pubsub_numpat(client: Client, argv: list[str]) -> bytes:
    """PUBSUB NUMPAT: distinct patterns subscribed to (Redis 7.0 counts patterns, not clients)."""
    return integer(len(registry(client.server).patterns))


@command("pubsub|help", 2, "loading stale", group=_GROUP, since="6.2.0")
def pubsub_help(client: Client, argv: list[str]) -> bytes:
    """PUBSUB HELP: Redis's text."""
    return client.encode([SimpleString(line) for line in _HELP])
