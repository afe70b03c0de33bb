"""A Redis or Valkey server (or cluster) as a migration's source or target, through redis-py.

Reading: per keyspace, SCAN in pages of :data:`BATCH`, then one pipeline
per page of ``TIME`` and ``DUMP`` + ``PTTL`` for each key. On a single
server the pipeline is a MULTI/EXEC, so each key's value and TTL (and the
clock they are read against) are one instant; a cluster refuses a
transaction over keys of several slots, so there the pair is sent back to
back on the key's node, with no other command of ours between them. A key
that vanished between SCAN and DUMP is skipped and counted, not an error:
it is no longer part of the data. The TTL becomes an absolute instant with
the server's own clock (``TIME``), so the target's RESTORE ... ABSTTL
keeps the instant whatever the two machines' clocks say.

Writing: one pipeline of ``RESTORE key at payload ABSTTL REPLACE`` per
page (per node on a cluster: the key's slot and the slot's primary, so
each command reaches the node that owns it without a MOVED); a string
read from a store goes as ``SET key value PXAT at`` instead (see
:meth:`Server.write`). The pages travel through :mod:`.migrate_wire`. A key the
server refuses to RESTORE (an ACL without it, a payload version it does
not read) is rebuilt with the typed commands (:mod:`.migrate_typed`); a
key a redirection moved (resharding under way) is retried through the
cluster client, which follows MOVED and ASK.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from typing import Any, cast

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot
from redis.exceptions import NoPermissionError, RedisError, ResponseError

from snapkv.interop.migrate_records import BATCH, Failure, Record, key_bytes, key_text
from snapkv.interop.migrate_typed import commands
from snapkv.interop.migrate_wire import (
    Pending,
    head,
    pack,
    pack_key,
    pack_key_value,
    roundtrip,
)

__all__ = ["RedisError", "Server"]


def _refused_restore(error: Exception) -> bool:
    """Whether RESTORE was refused for a reason the typed commands avoid."""
    if isinstance(error, NoPermissionError):
        return True
    text = str(error)
    return "DUMP payload version" in text or "Bad data format" in text


_GET, _DUMP, _PTTL, _SET = head(b"GET", 2), head(b"DUMP", 2), head(b"PTTL", 2), head(b"SET", 3)

#: A URL's password (``redis://user:password@host``), kept out of what is printed.
_PASSWORD = re.compile(r"^([a-z]+://[^:@/]*:)[^@/]*@")

#: A page's part sent to one server: its connection, its records, their replies to come.
_Sent = tuple[redis.Redis, list[Record], Pending]


def _command(record: Record) -> bytes:
    """The one command that writes ``record`` (see :meth:`Server.write`)."""
    at = record.expire_at
    if record.payload is None and record.value.__class__ is str:
        value = key_bytes(record.value)
        if at is None:
            return pack_key_value(_SET, record.key, value)
        return pack(b"SET", record.key, value, b"PXAT", b"%d" % at)
    payload = record.payload_bytes()
    return pack(b"RESTORE", record.key, b"%d" % (at or 0), payload, b"ABSTTL", b"REPLACE")


def _arg(item: bytes | str | int) -> bytes:
    """A typed command's argument as bytes (names are ASCII; values are bytes already)."""
    if isinstance(item, bytes):
        return item
    return str(item).encode()


def _moved(error: Exception) -> bool:
    return isinstance(error, RedisError) and str(error).startswith(("MOVED", "ASK"))


class Server:
    """One server, or a cluster, reached through redis-py: read, write, fetch, count."""

    def __init__(self, url: str, *, cluster: bool) -> None:
        self.url = url
        self.cluster: RedisCluster | None = None
        self._clients: dict[tuple[str, int], redis.Redis] = {}
        self._owners: list[ClusterNode] | None = None  # each slot's primary (see _by_node)
        self._in_flight: list[_Sent] = []  # the page sent, not yet settled (see write)
        if cluster:
            self.cluster = RedisCluster.from_url(url)
        else:
            options = redis.connection.parse_url(url)  # type: ignore[no-untyped-call]
            options.pop("db", None)
            self._options = options
        self.vanished = 0

    # ------------------------------------------------------------ plumbing

    def client(self, db: int, node: ClusterNode | None = None) -> redis.Redis:
        """A connection to keyspace ``db`` of the server (of ``node`` on a cluster)."""
        name = node.name if node is not None else ""
        client = self._clients.get((name, db))
        if client is None:
            if node is not None:
                assert self.cluster is not None
                base = self.cluster.get_redis_connection(node)
                kwargs = dict(base.connection_pool.connection_kwargs)
                kwargs["db"] = db
                pool = redis.ConnectionPool(
                    connection_class=base.connection_pool.connection_class, **kwargs
                )
            else:
                pool = redis.ConnectionPool(**self._options, db=db)
            client = redis.Redis(connection_pool=pool)
            self._clients[(name, db)] = client
        return client

    def cluster_enabled(self) -> bool:
        """Whether the server is a cluster node (INFO cluster), asked of a single server:
        read as one, a node would give only its own slots' keys, and refuse the others'."""
        try:
            info: Any = self.client(0).info("cluster")
        except ResponseError:  # INFO is @dangerous: a user without it (then MOVED tells)
            return False
        return bool(info.get("cluster_enabled"))

    def primaries(self) -> list[ClusterNode | None]:
        """Where keys live: each primary of a cluster, or the one server (``None``)."""
        if self.cluster is None:
            return [None]
        return list(self.cluster.get_primaries())  # type: ignore[no-untyped-call]

    def describe(self) -> str:
        """A few words on what the server is, for the plan and the summary (no password)."""
        url = _PASSWORD.sub(r"\1***@", self.url)
        if self.cluster is None:
            return f"server {url}"
        return f"cluster {url} ({len(self.primaries())} primaries)"

    def cluster_databases(self) -> int:
        """How many keyspaces a cluster node holds: 1, or Valkey 9's ``cluster-databases``."""
        node = self.primaries()[0]
        try:
            reply: Any = self.client(0, node).config_get("cluster-databases")
        except ResponseError:
            return 1
        value = reply.get(b"cluster-databases") or reply.get("cluster-databases")
        return int(value) if value else 1

    def close(self) -> None:
        """Let go of every connection."""
        for client in self._clients.values():
            client.close()
        if self.cluster is not None:
            self.cluster.close()

    # ------------------------------------------------------------- reading

    def keyspace_counts(self) -> dict[int, int]:
        """Keys per keyspace (INFO keyspace, summed over a cluster's primaries)."""
        counts: dict[int, int] = defaultdict(int)
        for node in self.primaries():
            info = self.client(0, node).info("keyspace")
            for name, fields in info.items():
                if name.startswith("db") and fields.get("keys"):
                    counts[int(name[2:])] += int(fields["keys"])
        return dict(sorted(counts.items()))

    def read(self) -> Iterator[list[Record]]:
        """Every key of every keyspace, a page at a time (see the module docstring)."""
        for db in self.keyspace_counts():
            for node in self.primaries():
                client = self.client(db, node)
                seen: set[bytes] = set()  # SCAN may return a key twice
                cursor = 0
                while True:
                    cursor, keys = cast(tuple[int, list[bytes]], client.scan(cursor, count=BATCH))
                    fresh = [key for key in keys if key not in seen]
                    seen.update(fresh)
                    if fresh:
                        records = self._fetch(client, db, fresh, atomic=True)
                        page = [record for record in records if record is not None]
                        self.vanished += len(records) - len(page)
                        if page:
                            yield page
                    if cursor == 0:
                        break

    def _fetch(
        self,
        client: redis.Redis,
        db: int,
        keys: list[bytes],
        strings: frozenset[bytes] = frozenset(),
        *,
        atomic: bool = False,
    ) -> list[Record | None]:
        """Each key's value and expiry (``None``: missing); with ``atomic``, on a single
        server, all read at one instant (see the module docstring): what a source needs.

        A key in ``strings`` is expected to hold a string and is read with
        GET (its value as it is, no payload to check and decode); one that
        turns out to hold something else is read again with DUMP.
        """
        single = atomic and self.cluster is None
        packed = [pack(b"MULTI")] if single else []
        packed.append(pack(b"TIME"))
        for key in keys:
            read = pack_key(_GET if key in strings else _DUMP, key)
            packed += (read, pack_key(_PTTL, key))
        if single:
            packed.append(pack(b"EXEC"))
        replies = roundtrip(client, packed)
        if single:
            queued = [r for r in replies[:-1] if isinstance(r, Exception)]
            if queued:
                raise queued[0]
            replies = replies[-1]
        if isinstance(replies[0], Exception):
            raise replies[0]
        seconds, micros = replies[0]
        now = int(seconds) * 1000 + int(micros) // 1000
        out: list[Record | None] = []
        again: list[int] = []
        for i, key in enumerate(keys):
            value, ttl = replies[1 + 2 * i], replies[2 + 2 * i]
            if isinstance(value, Exception) and key in strings:
                again.append(i)  # WRONGTYPE: not a string after all
                out.append(None)
                continue
            for reply in (value, ttl):
                if isinstance(reply, Exception):
                    raise reply
            if value is None or ttl == -2:
                out.append(None)
                continue
            at = None if ttl < 0 else now + ttl
            if key in strings:
                out.append(Record(db, key, at, value=key_text(value)))
            else:
                out.append(Record(db, key, at, payload=value))
        if again:
            found = self._fetch(client, db, [keys[i] for i in again])
            for i, record in zip(again, found, strict=True):
                out[i] = record
        return out

    def fetch(
        self, db: int, keys: list[bytes], strings: frozenset[bytes] = frozenset()
    ) -> list[Record | None]:
        """What the server holds now for ``keys`` of keyspace ``db`` (``None``: missing);
        ``strings``: the keys expected to hold strings (see :meth:`_fetch`)."""
        found: dict[bytes, Record | None] = {}
        for node, group in self._by_node(keys):
            records = self._fetch(self.client(db, node), db, group, strings)
            found.update(zip(group, records, strict=True))
        return [found[key] for key in keys]

    def type_counts(self, db: int, kinds: list[str]) -> dict[str, int]:
        """Keys of each type of ``kinds`` in keyspace ``db``: SCAN ... TYPE on every primary
        (one pass over the keyspace per type, done on the server)."""
        counts: dict[str, int] = {}
        for kind in kinds:
            total = 0
            for node in self.primaries():
                client = self.client(db, node)
                cursor = 0
                seen: set[bytes] = set()
                while True:
                    cursor, keys = cast(
                        tuple[int, list[bytes]], client.scan(cursor, count=BATCH * 10, _type=kind)
                    )
                    seen.update(keys)
                    if cursor == 0:
                        break
                total += len(seen)
            if total:
                counts[kind] = total
        return counts

    # ------------------------------------------------------------- writing

    def _by_node(self, keys: list[bytes]) -> list[tuple[ClusterNode | None, list[bytes]]]:
        """``keys`` grouped by the primary that owns their slot (one group on a single server).

        The slot's owner is looked up in a table of the 16,384 slots made
        once from the cluster client's map (``key_slot`` is redis-py's
        CRC-16 with hash tags): the client's per-key lookup cost as much as
        sending the key. A MOVED reply empties the table.
        """
        if self.cluster is None:
            return [(None, keys)]
        if self._owners is None:
            cache = self.cluster.nodes_manager.slots_cache
            self._owners = [cache[slot][0] for slot in range(REDIS_CLUSTER_HASH_SLOTS)]
        owners = self._owners
        groups: dict[str, tuple[ClusterNode, list[bytes]]] = {}
        for key in keys:
            node = owners[key_slot(key)]
            group = groups.get(node.name)
            if group is None:
                group = groups[node.name] = (node, [])
            group[1].append(key)
        return list(groups.values())

    def write(self, records: list[Record]) -> list[Failure]:
        """Send every record (all of one keyspace), then settle the page sent before.

        Returns the keys of the *previous* page that did not arrive
        (:meth:`flush` settles the last page): while a server applies one
        page, the next is read and packed here, so neither side waits for
        the other. A string read from a store (a value, no payload yet)
        goes as ``SET key value [PXAT at]``, which is what RESTORE ... REPLACE
        of it would do, without a CRC-64 computed in Python for each key;
        every other key as ``RESTORE key at payload ABSTTL REPLACE``.
        """
        sent: list[_Sent] = []
        if records:
            db = records[0].db
            by_key = {record.key: record for record in records}
            for node, keys in self._by_node(list(by_key)):
                client = self.client(db, node)
                pending = Pending(client, [_command(by_key[key]) for key in keys])
                sent.append((client, [by_key[key] for key in keys], pending))
        failures = self.flush()
        self._in_flight = sent
        return failures

    def flush(self) -> list[Failure]:
        """Settle the page in flight: read its replies; the keys that did not arrive."""
        failures: list[Failure] = []
        sent, self._in_flight = self._in_flight, []
        for client, records, pending in sent:
            refused: list[Record] = []
            for record, reply in zip(records, pending.replies(), strict=True):
                if not isinstance(reply, Exception):
                    continue
                if _refused_restore(reply):
                    refused.append(record)
                    continue
                if _moved(reply) and self.cluster is not None:
                    self._owners = None
                    why = self._redirected(record)
                else:
                    why = str(reply)
                if why is not None:
                    failures.append((record.db, record.key, why))
            failures += self._typed(client, refused)
        return failures

    def _typed(self, client: redis.Redis, records: list[Record]) -> list[Failure]:
        """Write ``records`` with the typed commands, each key in a MULTI/EXEC of its own,
        all in one round trip; the keys that failed."""
        failures: list[Failure] = []
        packed: list[bytes] = []
        blocks: list[tuple[Record, int]] = []
        for record in records:
            try:
                steps = commands(record)
            except (ValueError, TypeError) as exc:
                why = f"RESTORE refused and the value cannot be rebuilt by commands: {exc}"
                failures.append((record.db, record.key, why))
                continue
            sent = [pack(b"MULTI"), *(pack(*map(_arg, step)) for step in steps), pack(b"EXEC")]
            packed += sent
            blocks.append((record, len(sent)))
        replies: list[Any] = roundtrip(client, packed) if packed else []
        at = 0
        for record, size in blocks:
            got, at = replies[at : at + size], at + size
            done: list[Any] = got[-1] if isinstance(got[-1], list) else []
            errors = [r for r in (*got, *done) if isinstance(r, Exception)]
            if errors:
                why = f"RESTORE refused, and the typed commands too: {errors[0]}"
                failures.append((record.db, record.key, why))
        return failures

    def _redirected(self, record: Record) -> str | None:
        """One key again through the cluster client, which follows MOVED and ASK."""
        assert self.cluster is not None
        try:
            self.cluster.execute_command(  # type: ignore[no-untyped-call]
                "RESTORE",
                record.key,
                record.expire_at or 0,
                record.payload_bytes(),
                "ABSTTL",
                "REPLACE",
            )
        except RedisError as exc:
            return str(exc)
        return None
