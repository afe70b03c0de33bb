"""Pub/sub commands against the real redis-server: confirmations, messages, PUBSUB, errors.

Each test drives snapkv's dispatcher and redis-server 7.0 with the same
requests and compares the raw bytes: the replies of the client that sends
them (several replies for one SUBSCRIBE of several channels) and, for
delivery, what a second client of each receives (on snapkv's side the
pushes a connectionless client collects in ``Client.outbox``). Channel names
are unique to each test, since the reference server is shared by the session.
Where Redis's order is its hash table's (UNSUBSCRIBE of every channel,
patterns matching one PUBLISH) the replies are compared as multisets.
"""

from __future__ import annotations

from typing import Any

import pytest

from reference import Raw, parse, reply_end, request
from snapkv.server.client import Client
from snapkv.server.pubsub import counts
from support import wait_until


def replies(data: bytes) -> list[bytes]:
    """``data`` cut into whole replies."""
    out, pos = [], 0
    while pos < len(data):
        end = reply_end(data, pos)
        assert end > 0, data
        out.append(data[pos:end])
        pos = end
    return out


def receive(raw: Raw, count: int) -> bytes:
    """The next ``count`` replies or pushes from ``raw``'s server."""
    out = []
    for _ in range(count):
        while (end := reply_end(raw.buf)) < 0:
            chunk = raw.sock.recv(65536)
            assert chunk, "the server closed the connection"
            raw.buf += chunk
        out.append(raw.buf[:end])
        raw.buf = raw.buf[end:]
    return b"".join(out)


class Pair:
    """One client of snapkv's dispatcher and one connection to redis-server, driven alike."""

    def __init__(self, twin: Any, raw: Raw) -> None:
        self.server = twin.server
        self.client = Client(twin.server, addr="127.0.0.1:2000")
        twin.server.add_client(self.client)
        self.raw = raw

    def both(self, *argv: str) -> tuple[bytes, bytes]:
        """Send ``argv`` to both; snapkv's reply and as many replies from redis."""
        ours = self.server.execute(self.client, list(argv))
        self.raw.sock.sendall(request(*argv))
        return ours, receive(self.raw, len(replies(ours)))

    def same(self, *argv: str) -> bytes:
        ours, theirs = self.both(*argv)
        assert ours == theirs, f"{argv}: snapkv {ours!r} != redis {theirs!r}"
        return ours

    def hello3(self) -> None:
        """Both to RESP3 (HELLO's reply names the server, so it is not compared)."""
        assert self.server.execute(self.client, ["HELLO", "3"]).startswith(b"%7")
        assert self.raw("HELLO", "3").startswith(b"%7")

    def pushed(self) -> tuple[bytes, bytes]:
        """What snapkv pushed since the last call, and as many messages from redis."""
        ours = b"".join(self.client.outbox)
        self.client.outbox.clear()
        return ours, receive(self.raw, len(replies(ours)))

    def same_pushed(self) -> bytes:
        ours, theirs = self.pushed()
        assert ours == theirs, f"snapkv pushed {ours!r} != redis {theirs!r}"
        return ours


@pytest.fixture
def pair(twin: Any, redis_port: int) -> Any:
    """A second pair of clients beside ``twin`` (a subscriber, say, while twin publishes)."""
    raw = Raw(redis_port)
    yield Pair(twin, raw)
    raw.close()


@pytest.fixture
def first(twin: Any) -> Pair:
    """``twin``'s own client as a :class:`Pair`."""
    made = Pair.__new__(Pair)
    made.server, made.client, made.raw = twin.server, twin.snapkv, twin.raw
    return made


def _idle_reference(twin: Any) -> None:
    """Wait until connections of earlier tests are gone from redis-server's pub/sub tables."""
    wait_until(
        lambda: (
            twin.raw("PUBSUB", "NUMPAT") == b":0\r\n"
            and twin.raw("PUBSUB", "CHANNELS") == b"*0\r\n"
            and twin.raw("PUBSUB", "SHARDCHANNELS") == b"*0\r\n"
        ),
        what="redis-server's pub/sub tables to empty",
    )


# ------------------------------------------------------------ confirmations


@pytest.mark.parametrize("resp", [2, 3])
def test_confirmations_count_channels_and_patterns_together_shards_apart(
    first: Pair, resp: int
) -> None:
    if resp == 3:
        first.hello3()
    first.same("SUBSCRIBE", "conf-a", "conf-b", "conf-a")
    first.same("PSUBSCRIBE", "conf-*", "conf-*", "conf-?")
    first.same("SSUBSCRIBE", "conf-s", "conf-t")
    first.same("UNSUBSCRIBE", "conf-b", "conf-never")
    first.same("PUNSUBSCRIBE", "conf-?", "nope")
    first.same("SUNSUBSCRIBE", "conf-t", "conf-t")
    assert first.client.channels == {"conf-a"} and first.client.patterns == {"conf-*"}
    assert first.client.shard_channels == {"conf-s"}


@pytest.mark.parametrize("resp", [2, 3])
def test_unsubscribing_with_nothing_subscribed_answers_once_with_a_null(
    first: Pair, resp: int
) -> None:
    if resp == 3:
        first.hello3()
    for command in ("UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE"):
        first.same(command)
    first.same("PSUBSCRIBE", "null-*")
    first.same("UNSUBSCRIBE")  # the null, with the pattern still counted
    first.same("SUNSUBSCRIBE")


def test_unsubscribing_every_pattern_goes_in_subscription_order(first: Pair) -> None:
    first.same("PSUBSCRIBE", *[f"order-{i}-*" for i in range(8)])
    first.same("PUNSUBSCRIBE")
    first.same("PUNSUBSCRIBE")


def test_unsubscribing_every_channel_confirms_each_and_counts_down(first: Pair) -> None:
    """Redis goes through its hash table: the same replies, in another order."""
    names = [f"all-{i}" for i in range(10)]
    first.same("SUBSCRIBE", *names)
    first.same("SSUBSCRIBE", "all-shard")
    ours, theirs = first.both("UNSUBSCRIBE")
    ours_parsed, theirs_parsed = parse_all(ours), parse_all(theirs)
    assert sorted(r[1] for r in ours_parsed) == sorted(r[1] for r in theirs_parsed)
    assert [r[2] for r in ours_parsed] == [r[2] for r in theirs_parsed] == list(range(9, -1, -1))
    first.same("SUNSUBSCRIBE")
    first.same("GET", "k")  # out of subscribed mode


def parse_all(data: bytes) -> list[Any]:
    return [parse(reply) for reply in replies(data)]


# --------------------------------------------------------- subscribed mode


def test_resp2_subscribed_mode_allows_only_the_pubsub_commands(first: Pair) -> None:
    first.same("SUBSCRIBE", "mode-a")
    for argv in (("GET", "k"), ("SET", "k", "v"), ("PUBLISH", "mode-a", "m"), ("PUBSUB", "NUMPAT")):
        first.same(*argv)
    first.same("PSUBSCRIBE", "mode-*")
    first.same("UNSUBSCRIBE")
    first.same("GET", "k")  # a pattern still holds it in subscribed mode
    first.same("PUNSUBSCRIBE")
    first.same("SSUBSCRIBE", "mode-s")
    first.same("GET", "k")  # a shard channel alone does too (Redis 7.0.15)
    first.same("SUNSUBSCRIBE", "mode-s")
    first.same("SET", "k", "v")
    assert first.client.plain


def test_resp3_subscriber_runs_every_command(first: Pair) -> None:
    first.hello3()
    first.same("SUBSCRIBE", "r3-a")
    first.same("SET", "k", "v")
    first.same("GET", "k")
    first.same("PUBSUB", "NUMSUB", "r3-a")


def test_ping_in_subscribed_mode(first: Pair) -> None:
    first.same("SUBSCRIBE", "ping-a")
    first.same("PING")
    first.same("PING", "hello")
    first.same("UNSUBSCRIBE")
    first.hello3()  # RESP3 subscribers get the plain reply
    first.same("SUBSCRIBE", "ping-a")
    first.same("PING")


def test_ssubscribe_is_refused_inside_exec_and_subscribe_is_not(first: Pair) -> None:
    first.same("MULTI")
    first.same("SUBSCRIBE", "exec-a")
    first.same("SSUBSCRIBE", "exec-b")
    first.same("PSUBSCRIBE", "exec-*")
    first.same("EXEC")
    assert first.client.shard_channels == set()
    first.same("GET", "k")  # subscribed now


@pytest.mark.parametrize(
    "argv",
    [
        ("SUBSCRIBE",),
        ("PSUBSCRIBE",),
        ("SSUBSCRIBE",),
        ("PUBLISH", "a"),
        ("PUBLISH", "a", "b", "c"),
        ("SPUBLISH", "a"),
        ("PUBSUB",),
        ("PUBSUB", "NUMPAT", "x"),
        ("PUBSUB", "CHANNELS", "a", "b"),
        ("PUBSUB", "SHARDCHANNELS", "a", "b"),
        ("PUBSUB", "channels", "a", "b"),
        ("PUBSUB", "HELP", "x"),
        ("PUBSUB", "FOO"),
        ("pubsub", "help"),
    ],
)
def test_arity_and_syntax_errors(twin: Any, argv: tuple[str, ...]) -> None:
    twin.same(*argv)


def test_command_table_entries_match_redis(twin: Any) -> None:
    """Arity, flags and key positions as COMMAND INFO shows them (MAY_REPLICATE it hides)."""
    for name in (
        "subscribe",
        "unsubscribe",
        "psubscribe",
        "punsubscribe",
        "ssubscribe",
        "sunsubscribe",
        "publish",
        "spublish",
    ):
        theirs = parse(twin.raw("COMMAND", "INFO", name))[0]
        cmd = twin.server.table[name]
        assert cmd.arity == theirs[1], name
        flags = {flag.decode() for flag in theirs[2]}
        assert cmd.flags - flags <= {"may_replicate"} and flags <= cmd.flags, name
        assert (cmd.first_key, cmd.last_key, cmd.step) == tuple(theirs[3:6]), name
    assert "may_replicate" in twin.server.table["publish"].flags  # held by CLIENT PAUSE WRITE
    subs = twin.server.table["pubsub"].subcommands
    for sub in parse(twin.raw("COMMAND", "INFO", "pubsub"))[0][9]:
        cmd = subs[sub[0].decode().split("|")[1]]
        assert cmd.arity == sub[1] and cmd.flags == {f.decode() for f in sub[2]}, sub[0]


def test_client_pause_write_holds_publish_but_not_subscribe(twin: Any) -> None:
    """PUBLISH and SPUBLISH may replicate: CLIENT PAUSE WRITE holds them, as in Redis 7.0."""
    server = twin.server
    sub = Client(server)
    server.add_client(sub)
    server.pause("write", 60.0)
    try:
        assert parse(server.execute(sub, ["SUBSCRIBE", "paused"])) == [b"subscribe", b"paused", 1]
        for argv in (["PUBLISH", "paused", "m"], ["SPUBLISH", "paused", "m"]):
            assert server.execute(twin.snapkv, argv) == b""
            assert twin.snapkv.blocked is not None and twin.snapkv.blocked.kind == "postponed"
            twin.snapkv.blocked = None
            server.postponed.clear()
        assert sub.outbox == []
        assert parse(server.execute(twin.snapkv, ["PUBSUB", "NUMSUB", "paused"])) == [
            b"paused",
            1,
        ]
    finally:
        server.unpause()


def test_scripts_may_publish_but_not_subscribe(first: Pair, pair: Pair) -> None:
    pair.same("SUBSCRIBE", "lua-a")
    first.same("EVAL", "return redis.call('publish', 'lua-a', ARGV[1])", "0", "from-lua")
    pair.same_pushed()
    for command in ("subscribe", "psubscribe", "ssubscribe", "unsubscribe"):
        first.same("EVAL", f"return redis.call('{command}', 'lua-a')", "0")


# ---------------------------------------------------------------- delivery


@pytest.mark.parametrize("resp", [2, 3])
def test_messages_and_pattern_messages_as_redis_sends_them(
    first: Pair, pair: Pair, resp: int
) -> None:
    if resp == 3:
        pair.hello3()
    pair.same("SUBSCRIBE", "news.sport", "news.art")
    pair.same("PSUBSCRIBE", "news.*")
    first.same("PUBLISH", "news.sport", "goal")
    pair.same_pushed()
    pair.same("PUNSUBSCRIBE")
    pair.same("PSUBSCRIBE", "news.s?ort", "*.art", "x*")
    first.same("PUBLISH", "news.weather", "rain")  # nobody
    assert pair.client.outbox == []
    first.same("PUBLISH", "news.sport", "")
    pair.same_pushed()
    first.same("PUBLISH", "news.art", "paint")  # the channel first, then the pattern
    pair.same_pushed()


@pytest.mark.parametrize("resp", [2, 3])
def test_shard_messages_reach_shard_subscribers_only(first: Pair, pair: Pair, resp: int) -> None:
    if resp == 3:
        pair.hello3()
    pair.same("SSUBSCRIBE", "shard-a")
    pair.same("PSUBSCRIBE", "shard-*")
    pair.same("SUBSCRIBE", "shard-a")
    first.same("SPUBLISH", "shard-a", "only-shard")
    pair.same_pushed()
    first.same("PUBLISH", "shard-a", "not-shard")
    pair.same_pushed()
    first.same("SPUBLISH", "shard-b", "nobody")


def test_a_resp3_client_gets_its_own_message_before_the_reply(first: Pair) -> None:
    first.hello3()
    first.same("SUBSCRIBE", "self-a")
    first.same("PSUBSCRIBE", "self-*")
    reply = first.server.execute(first.client, ["PUBLISH", "self-a", "me"])
    ours = b"".join(first.client.outbox) + reply
    first.client.outbox.clear()
    first.raw.sock.sendall(request("PUBLISH", "self-a", "me"))
    assert ours == receive(first.raw, 3)


def test_binary_and_utf8_channel_names_are_bytes(first: Pair, pair: Pair) -> None:
    """Names decoded with surrogateescape go back byte for byte; ``?`` is one byte."""
    binary = b"bin-\xff\xfe\x00".decode("utf-8", "surrogateescape")
    pair.same("SUBSCRIBE", binary, "bin-канал")
    pair.same(
        "PSUBSCRIBE", "bin-к?*", "bin-\\\xff*".encode("latin-1").decode("utf-8", "surrogateescape")
    )
    first.same("PUBLISH", binary, "\udcff payload")
    pair.same_pushed()
    first.same("PUBLISH", "bin-канал", "привет")
    pair.same_pushed()
    first.same("PUBSUB", "NUMSUB", binary, "bin-канал")
    ours, theirs = first.both("PUBSUB", "CHANNELS", "bin-*")  # Redis: its hash's order
    assert sorted(parse(ours)) == sorted(parse(theirs)) and len(parse(ours)) == 2


def test_empty_names_and_the_star_pattern(first: Pair, pair: Pair) -> None:
    """``*`` matches no empty channel, an empty pattern matches exactly it (stringmatchlen)."""
    pair.same("PSUBSCRIBE", "*", "")
    pair.same("SUBSCRIBE", "")
    first.same("PUBLISH", "", "to-empty")
    pair.same_pushed()
    first.same("PUBSUB", "CHANNELS", "*")
    first.same("PUBSUB", "CHANNELS", "")


@pytest.mark.parametrize("resp", [2, 3])
def test_pubsub_introspection(twin: Any, first: Pair, pair: Pair, resp: int) -> None:
    _idle_reference(twin)
    if resp == 3:
        first.hello3()
    pair.same("SUBSCRIBE", "intro-a", "intro-b")
    pair.same("PSUBSCRIBE", "intro-*", "intro-?")
    pair.same("SSUBSCRIBE", "intro-s")
    first.same("PUBSUB", "NUMPAT")
    first.same("PUBSUB", "NUMSUB")
    first.same("PUBSUB", "NUMSUB", "intro-a", "intro-*", "intro-s", "intro-a")
    first.same("PUBSUB", "SHARDNUMSUB", "intro-s", "intro-a")
    first.same("PUBSUB", "SHARDCHANNELS")
    first.same("PUBSUB", "SHARDCHANNELS", "intro-?")
    first.same("PUBSUB", "CHANNELS", "intro-a")
    first.same("PUBSUB", "CHANNELS", "*-b")
    first.same("PUBSUB", "HELP")
    assert sorted(parse(first.server.execute(first.client, ["PUBSUB", "CHANNELS"]))) == sorted(
        parse(first.raw("PUBSUB", "CHANNELS"))
    )
    assert counts(first.server) == (2, 2, 1)


# ------------------------------------------------- client-output-buffer-limit


@pytest.mark.parametrize(
    "value",
    [
        "pubsub 1mb 512kb 30",
        "normal 0 0 0 slave 1gb 256mb 120 pubsub 32mb 8mb 60",
        "replica 1000 500 5",
        "PUBSUB 10K 5k 0",
        "pubsub 1mb 512kb",
        "nosuch 1 1 1",
        "pubsub x 1 1",
        "pubsub 1 1 -1",
        "",  # changes nothing, as in Redis
    ],
)
def test_client_output_buffer_limit_config(twin: Any, value: str) -> None:
    try:
        twin.same("CONFIG", "SET", "client-output-buffer-limit", value)
        twin.same("CONFIG", "GET", "client-output-buffer-limit")
        twin.same("CONFIG", "GET", "client-output-*")
    finally:
        twin.raw("CONFIG", "SET", "client-output-buffer-limit", DEFAULT_LIMITS)


DEFAULT_LIMITS = "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
