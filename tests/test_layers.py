"""The import layering of docs/ARCHITECTURE.md, enforced.

Each module may import only the snapkv modules listed for it here. A new
import across layers (say, the codec reaching for a medium) fails this test
and needs a deliberate change to the architecture page and this table.
"""

from __future__ import annotations

import ast
import fnmatch
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "snapkv"

#: What every server command family module may import (a write announces
#: its keyspace events through ``notify``).
_HANDLER = {
    "snapkv.server.client",
    "snapkv.server.notify",
    "snapkv.server.resp.text",
    "snapkv.server.resp.writer",
    "snapkv.server.table",
}

#: What the value types' command families may import besides.
_TYPED = {
    *_HANDLER,
    "snapkv.errors",
    "snapkv.server.glob",
    "snapkv.server.scan",
    "snapkv.values",
    "snapkv.views",
}

ALLOWED: dict[str, set[str]] = {
    "snapkv.errors": set(),
    "snapkv._binary": set(),
    "snapkv._fs": set(),
    "snapkv._frame": {"snapkv._binary", "snapkv.errors"},
    "snapkv.codec": {"snapkv._binary", "snapkv._frame", "snapkv.codec_types", "snapkv.errors"},
    # The snapshot's typed chunks (format v3): containers to and from columns.
    "snapkv.codec_types": {"snapkv._binary", "snapkv._frame", "snapkv.errors", "snapkv.values"},
    # The value types: containers, their effects and flat forms. Pure.
    "snapkv.values": {
        "snapkv.errors",
        "snapkv.values.base",
        "snapkv.values.hashes",
        "snapkv.values.lists",
        "snapkv.values.sets",
        "snapkv.values.streams",
        "snapkv.values.zsets",
    },
    "snapkv.values.base": set(),
    "snapkv.values.streams": {"snapkv.values.base"},
    "snapkv.values.hashes": {"snapkv.values.base"},
    "snapkv.values.lists": {"snapkv.values.base"},
    "snapkv.values.sets": {"snapkv.values.base"},
    "snapkv.values.zsets": {"snapkv.values.base"},
    # What each key-level record does to memory, once (live path, replay, undo).
    "snapkv.effects": {"snapkv.values"},
    # The Python API of the value types: a keyspace (for annotations only)
    # read and written through its _lookup and _write.
    "snapkv.views": {
        "snapkv.views.base",
        "snapkv.views.hash",
        "snapkv.views.list",
        "snapkv.views.set",
        "snapkv.views.stream",
        "snapkv.views.zset",
    },
    "snapkv.views.stream": {"snapkv.values", "snapkv.values.streams", "snapkv.views.base"},
    "snapkv.views.base": {"snapkv.errors", "snapkv.keyspace", "snapkv.values"},
    "snapkv.views.hash": {"snapkv.errors", "snapkv.values", "snapkv.views.base"},
    "snapkv.views.list": {"snapkv.errors", "snapkv.values", "snapkv.views.base"},
    "snapkv.views.set": {"snapkv.errors", "snapkv.values", "snapkv.views.base"},
    "snapkv.views.zset": {"snapkv.errors", "snapkv.values", "snapkv.views.base"},
    # Redis's serialization (DUMP payloads, RDB): pure codecs.
    "snapkv.rdb": {
        "snapkv.rdb.compact",
        "snapkv.rdb.crc64",
        "snapkv.rdb.lzf",
        "snapkv.rdb.objects",
    },
    "snapkv.rdb.crc64": set(),
    "snapkv.rdb.lzf": set(),
    "snapkv.rdb.compact": {"snapkv.errors"},
    "snapkv.rdb.objects": {
        "snapkv.errors",
        "snapkv.rdb.compact",
        "snapkv.rdb.crc64",
        "snapkv.rdb.codes",
        "snapkv.rdb.lzf",
        "snapkv.rdb.stream_codec",
        "snapkv.rdb.writer",
        "snapkv.values",
    },
    "snapkv.rdb.codes": set(),
    "snapkv.rdb.writer": {"snapkv.rdb.codes", "snapkv.rdb.stream_codec", "snapkv.values"},
    "snapkv.rdb.stream_codec": {"snapkv.rdb.compact", "snapkv.rdb.objects", "snapkv.values"},
    "snapkv.rdb.file_reader": {
        "snapkv.rdb.crc64",
        "snapkv.rdb.file_parse",
        "snapkv.rdb.objects",
    },
    "snapkv.rdb.file_parse": {"snapkv.rdb.lzf", "snapkv.rdb.objects", "snapkv.rdb.stream_codec"},
    "snapkv.rdb.file": {"snapkv.rdb.crc64", "snapkv.rdb.file_reader", "snapkv.rdb.objects"},
    # Interchange with Redis and Valkey: sources read as recovery reads them, RDB files.
    "snapkv.interop": {"snapkv.interop.source"},
    "snapkv.interop.rdb_export": {"snapkv._fs", "snapkv.interop.source", "snapkv.rdb.file"},
    "snapkv.interop.rdb_import": {
        "snapkv.codec",
        "snapkv.errors",
        "snapkv.media.base",
        "snapkv.media.file",
        "snapkv.objstore.client",
        "snapkv.objstore.medium",
        "snapkv.objstore.reader",
        "snapkv.objstore.url",
        "snapkv.rdb.file",
        "snapkv.recovery",
    },
    "snapkv.cli_rdb": {
        "snapkv.cli_common",
        "snapkv.interop.rdb_export",
        "snapkv.interop.rdb_import",
        "snapkv.rdb.file",
    },
    "snapkv.interop.source": {
        "snapkv.errors",
        "snapkv.media.file",
        "snapkv.objstore.client",
        "snapkv.objstore.reader",
        "snapkv.objstore.url",
        "snapkv.rdb.file",
        "snapkv.rebuild",
        "snapkv.recovery",
    },
    "snapkv.journal": {"snapkv.journal.format", "snapkv.journal.reader", "snapkv.journal.writer"},
    "snapkv.journal.format": {"snapkv._binary", "snapkv._frame", "snapkv.errors"},
    "snapkv.journal.reader": {"snapkv._frame", "snapkv.errors", "snapkv.journal.format"},
    "snapkv.journal.writer": {"snapkv.errors"},
    "snapkv.media.base": {"snapkv.errors"},
    "snapkv.media.memory": {"snapkv.media.base", "snapkv.errors"},
    "snapkv.media.journal_file": {"snapkv._fs", "snapkv.media.base", "snapkv.errors"},
    "snapkv.media.file": {
        "snapkv._fs",
        "snapkv.media.base",
        "snapkv.media.journal_file",
        "snapkv.errors",
    },
    "snapkv.media": {"snapkv.media.base", "snapkv.media.file", "snapkv.media.memory"},
    # Object storage (the cloud extra: obstore, imported by these modules only,
    # and only when a URL is opened): a medium beside the file and memory ones.
    "snapkv.objstore": set(),
    "snapkv.objstore.url": set(),
    "snapkv.objstore.client": {"snapkv.errors"},
    "snapkv.objstore.layout": {"snapkv._binary", "snapkv.errors"},
    "snapkv.objstore.reader": {"snapkv.errors", "snapkv.objstore", "snapkv.objstore.client"},
    "snapkv.objstore.claim": {
        "snapkv.errors",
        "snapkv.objstore",
        "snapkv.objstore.client",
        "snapkv.objstore.reader",
    },
    "snapkv.objstore.sequence": {
        "snapkv.errors",
        "snapkv.objstore",
        "snapkv.objstore.claim",
        "snapkv.objstore.client",
    },
    "snapkv.objstore.journals": {"snapkv.errors", "snapkv.media.base", "snapkv.objstore"},
    "snapkv.objstore.retention": {"snapkv.errors", "snapkv.objstore", "snapkv.objstore.reader"},
    "snapkv.objstore.medium": {
        "snapkv.errors",
        "snapkv.media.base",
        "snapkv.objstore",
        "snapkv.objstore.claim",
        "snapkv.objstore.client",
        "snapkv.objstore.journals",
        "snapkv.objstore.reader",
        "snapkv.objstore.retention",
        "snapkv.objstore.sequence",
        "snapkv.objstore.url",
    },
    "snapkv.keyspace": {
        "snapkv._binary",
        "snapkv.effects",
        "snapkv.errors",
        "snapkv.journal",
        "snapkv.values",
        "snapkv.views",
    },
    # The record tap and the point-in-time copy a replication source reads.
    "snapkv.tap": set(),
    "snapkv.store": {
        "snapkv._frame",  # a refused record's offset, on the error path
        "snapkv.codec",
        "snapkv.errors",
        "snapkv.journal",
        "snapkv.keyspace",
        "snapkv.media",
        "snapkv.rebuild",
        "snapkv.recovery",
        "snapkv.tap",
        "snapkv.transaction",
        "snapkv.values",
    },
    # open(): checks, creates, locks and restores (the Store's own checks reused).
    "snapkv.opening": {
        "snapkv.errors",
        "snapkv.media",
        "snapkv.objstore.medium",
        "snapkv.objstore.url",
        "snapkv.recovery",
        "snapkv.replication",
        "snapkv.store",
    },
    # Continuous replication of a directory to object storage: the directory's
    # own files read back (FileMedium's read side), written through ObjectMedium.
    "snapkv.replication": {
        "snapkv.replication.replicator",
        "snapkv.replication.source",
        "snapkv.replication.status",
    },
    "snapkv.replication.status": set(),
    "snapkv.replication.source": {
        "snapkv._frame",
        "snapkv.codec",
        "snapkv.errors",
        "snapkv.journal.format",
        "snapkv.media.file",
    },
    "snapkv.replication.shipper": {
        "snapkv.journal.format",
        "snapkv.replication.source",
        "snapkv.replication.status",
    },
    "snapkv.replication.target": {
        "snapkv.journal.format",
        "snapkv.media.base",
        "snapkv.objstore.client",
        "snapkv.objstore.medium",
        "snapkv.replication.source",
    },
    "snapkv.replication.replicator": {
        "snapkv.media.file",  # REPLICA_NAME
        "snapkv.objstore.client",
        "snapkv.objstore.url",
        "snapkv.replication.shipper",
        "snapkv.replication.source",
        "snapkv.replication.status",
        "snapkv.replication.target",
    },
    "snapkv.recovery": {
        "snapkv.codec",
        "snapkv.errors",
        "snapkv.journal",
        "snapkv.rebuild",
        "snapkv.recovery_advice",
    },
    # A plan into keyspaces: the snapshot's spaces, then every effect applied.
    "snapkv.rebuild": {"snapkv.codec", "snapkv.effects", "snapkv.journal"},
    # The words of recovery's refusals: recovery hands it the plans (its
    # types are named for annotations only).
    "snapkv.recovery_advice": {"snapkv.errors", "snapkv.journal", "snapkv.recovery"},
    "snapkv.transaction": {
        "snapkv._binary",
        "snapkv.effects",
        "snapkv.errors",
        "snapkv.journal",
        "snapkv.keyspace",
        "snapkv.values",
    },
    "snapkv.simulate": {"snapkv.errors", "snapkv.store"},
    # snapkv check: the report is data; verify runs recovery's rules over a
    # read-only view of the directory; repair changes files with _fs.
    "snapkv.check": {"snapkv.check.repair", "snapkv.check.report", "snapkv.check.verify"},
    "snapkv.check.report": {"snapkv.errors", "snapkv.journal"},
    "snapkv.check.findings": {"snapkv.check.report", "snapkv.recovery"},
    "snapkv.check.verify": {
        "snapkv.check",
        "snapkv.check.findings",
        "snapkv.check.report",
        "snapkv.codec",
        "snapkv.errors",
        "snapkv.journal",
        "snapkv.media.file",
        "snapkv.recovery",
    },
    "snapkv.check.repair": {
        "snapkv._fs",
        "snapkv.check.report",
        "snapkv.check.verify",
        "snapkv.errors",
        "snapkv.media.file",
    },
    "snapkv.testing": {"snapkv.testing.conformance", "snapkv.testing.faulty"},
    "snapkv.testing.conformance": {
        "snapkv.codec",
        "snapkv.errors",
        "snapkv.media.base",
        "snapkv.store",
    },
    "snapkv.testing.faulty": {"snapkv.errors", "snapkv.media.base"},
    "snapkv.testing.faulty_objects": {"snapkv.objstore.client"},
    # snapkv check URL: every object the manifests name, read back.
    "snapkv.check.objects": {
        "snapkv.errors",
        "snapkv.objstore",
        "snapkv.objstore.client",
        "snapkv.objstore.reader",
        "snapkv.objstore.url",
        "snapkv.recovery",
    },
    "snapkv": {
        "snapkv.codec",
        "snapkv.errors",
        "snapkv.media",
        "snapkv.opening",
        "snapkv.simulate",
        "snapkv.store",
        "snapkv.views",
    },
    # The server: resp knows no command, handlers know no bytes but the
    # writer's (Redis's networking.c / server.c / t_string.c cut). The
    # client <-> state <- table edges are for type annotations only.
    "snapkv.server.resp.text": set(),
    "snapkv.server.resp.reader": {"snapkv.errors", "snapkv.server.resp.text"},
    "snapkv.server.resp.hiredis_reader": {"snapkv.server.resp.reader", "snapkv.server.resp.text"},
    "snapkv.server.resp.writer": {"snapkv.server.resp.text"},
    "snapkv.server.resp": {
        "snapkv.server.resp.hiredis_reader",
        "snapkv.server.resp.reader",
        "snapkv.server.resp.writer",
    },
    "snapkv.server.table": {
        "snapkv.server.client",
        "snapkv.server.resp.reader",
        "snapkv.server.resp.writer",
    },
    "snapkv.server.client": {
        "snapkv.server.client_info",  # info_line: the one CLIENT LIST line
        "snapkv.server.resp.writer",
        "snapkv.server.state",
        "snapkv.server.table",
        "snapkv.store",
    },
    # conf: the settings table and redis.conf's syntax (state only for types);
    # process: the log, the pidfile and systemd's notifications.
    "snapkv.server.conf": {"snapkv.server.events", "snapkv.server.state"},
    "snapkv.server.events": set(),
    "snapkv.server.process": {"snapkv.server.conf"},
    "snapkv.server.state": {
        "snapkv.errors",
        "snapkv.server.client",
        "snapkv.server.conf",
        "snapkv.server.scripting",  # a script's flags, for CLIENT PAUSE WRITE
        "snapkv.server.resp.reader",
        "snapkv.server.resp.writer",
        "snapkv.server.table",
        "snapkv.store",
    },
    "snapkv.server.glob": {"snapkv.server.resp.text"},
    # The registries the families share: subscriptions, clients waiting on
    # keys, tracked keys; keyspace events published through pub/sub.
    "snapkv.server.pubsub": {
        "snapkv.server.client",  # types only
        "snapkv.server.glob",
        "snapkv.server.resp.text",
        "snapkv.server.resp.writer",
        "snapkv.server.state",  # types only
    },
    "snapkv.server.notify": {
        "snapkv.keyspace",  # types only
        "snapkv.server.client",  # types only
        "snapkv.server.events",
        "snapkv.server.pubsub",
        "snapkv.server.state",  # types only
    },
    "snapkv.server.blocking": {
        "snapkv.server.client",
        "snapkv.server.resp.writer",
        "snapkv.server.state",  # types only
    },
    "snapkv.server.tracking": {
        "snapkv.server.client",  # types only
        "snapkv.server.resp.writer",
        "snapkv.server.state",  # types only
        "snapkv.server.table",  # types only
    },
    "snapkv.server.monitor": {
        "snapkv.server.client",  # types only
        "snapkv.server.resp.reader",
        "snapkv.server.resp.text",
        "snapkv.server.state",  # types only
    },
    # Scripting: Lua (lupa, the server extra) behind the engine; the libraries
    # are pure Python over a Lua runtime; FUNCTION's payload is RDB-framed.
    "snapkv.server.scripting": {
        "snapkv.server.scripting.engine",
        "snapkv.server.scripting.functions",
        "snapkv.server.scripting.sandbox",
        "snapkv.server.state",  # types only
        "snapkv.server.table",
    },
    "snapkv.server.scripting.prelude": set(),
    "snapkv.server.scripting.convert": set(),
    "snapkv.server.scripting.worker": set(),
    "snapkv.server.scripting.sandbox": {
        "snapkv.server.scripting.convert",
        "snapkv.server.scripting.prelude",
    },
    "snapkv.server.scripting.api": {
        "snapkv.server.acl",  # redis.call checks the calling user's ACL rules
        "snapkv.server.client",  # types only
        "snapkv.server.resp.text",
        "snapkv.server.resp.writer",
        "snapkv.server.scripting.sandbox",
        "snapkv.server.state",  # types only
        "snapkv.server.table",  # types only
    },
    "snapkv.server.scripting.engine": {
        "snapkv.server.client",
        "snapkv.server.resp.text",
        "snapkv.server.resp.writer",
        "snapkv.server.scripting.api",
        "snapkv.server.scripting.sandbox",
        "snapkv.server.scripting.worker",
        "snapkv.server.state",
    },
    "snapkv.server.scripting.lib_aux": {"snapkv.server.scripting.lib_cjson_decode"},
    "snapkv.server.scripting.lib_cjson_decode": {"snapkv.server.scripting.lib_aux"},
    "snapkv.server.scripting.lib_cjson": {
        "snapkv.server.scripting.lib_aux",
        "snapkv.server.scripting.lib_cjson_decode",
    },
    "snapkv.server.scripting.lib_cmsgpack": {"snapkv.server.scripting.lib_aux"},
    "snapkv.server.scripting.lib_struct": {"snapkv.server.scripting.lib_aux"},
    "snapkv.server.scripting.lib_bit": {"snapkv.server.scripting.lib_aux"},
    "snapkv.server.scripting.libs": {
        "snapkv.server.scripting",
        "snapkv.server.scripting.lib_aux",
        "snapkv.server.scripting.lib_bit",
        "snapkv.server.scripting.lib_cjson",
        "snapkv.server.scripting.lib_cmsgpack",
        "snapkv.server.scripting.lib_struct",
    },
    "snapkv.server.scripting.function_payload": {"snapkv.rdb.crc64", "snapkv.rdb.objects"},
    "snapkv.server.scripting.functions": {
        "snapkv.server.conf",  # split_args: the #!lua line's words as Redis splits them
        "snapkv.server.scripting.engine",
        "snapkv.server.scripting.function_payload",
        "snapkv.server.scripting.libs",
        "snapkv.server.scripting.sandbox",
        "snapkv.server.state",
    },
    "snapkv.server.cmd_pubsub": {*_HANDLER, "snapkv.server.glob", "snapkv.server.pubsub"},
    "snapkv.server.cmd_blocking": {
        *_TYPED,
        "snapkv.server.blocking",
        "snapkv.server.cmd_list",  # the pops' shared code
        "snapkv.server.cmd_zset_store",
        "snapkv.server.state",
    },
    "snapkv.server.cmd_stream": {
        *_TYPED,
        "snapkv.server.blocking",
        "snapkv.server.events",
        "snapkv.values.streams",
        "snapkv.views.stream",
    },
    "snapkv.server.cmd_function": {
        *_HANDLER,
        "snapkv.server.glob",
        "snapkv.server.monitor",
        "snapkv.server.scripting",
        "snapkv.server.scripting.functions",
    },
    "snapkv.server.cmd_tracking": {*_HANDLER, "snapkv.server.tracking"},
    "snapkv.server.cmd_strings": {*_HANDLER, "snapkv.values"},  # HINCRBYFLOAT's float form
    # The value types' families reach data through the keyspace's views.
    "snapkv.server.cmd_hash": _TYPED,
    "snapkv.server.cmd_list": _TYPED,
    "snapkv.server.cmd_set": _TYPED,
    "snapkv.server.cmd_zset": _TYPED,
    "snapkv.server.cmd_zset_store": _TYPED,
    "snapkv.server.cmd_object": {
        *_TYPED,
        "snapkv.server.access",
        "snapkv.server.cmd_info",
        "snapkv.server.state",
    },
    "snapkv.server.cmd_sort": _TYPED,
    "snapkv.server.cmd_dump": {*_TYPED, "snapkv.rdb"},
    "snapkv.server.cmd_keys": {*_HANDLER, "snapkv.server.glob", "snapkv.server.scan"},
    # The SCAN family's cursor walk (snapshots of names, paged), shared.
    "snapkv.server.scan": {"snapkv.server.client", "snapkv.server.table"},
    "snapkv.server.cmd_expire": _HANDLER,
    "snapkv.server.cmd_multi": {*_HANDLER, "snapkv.server.scripting", "snapkv.server.acl"},
    "snapkv.server.cmd_persistence": _HANDLER,
    "snapkv.server.cmd_scripting": {
        *_HANDLER,
        "snapkv.server.monitor",  # EVAL shown before its script's calls
        "snapkv.server.scripting",
        "snapkv.server.scripting.engine",
        "snapkv.server.scripting.sandbox",
    },
    "snapkv.server.cmd_connection": {
        *_HANDLER,
        "snapkv.server.acl",  # AUTH, HELLO AUTH and RESET: the ACL users
        "snapkv.server.monitor",
        "snapkv.server.pubsub",
        "snapkv.server.state",
    },
    "snapkv.server.cmd_introspection": {
        *_HANDLER,
        "snapkv.server.commandmeta",
        "snapkv.server.glob",  # COMMAND LIST FILTERBY PATTERN
    },
    # How long commands take: slow log thresholds, latency monitor, histograms.
    "snapkv.server.latency": {
        "snapkv.server.client",  # types only
        "snapkv.server.monitor",  # AUTH's and HELLO's secrets, kept out of the slow log
        "snapkv.server.state",  # types only
        "snapkv.server.table",
    },
    "snapkv.server.cmd_latency": {*_HANDLER, "snapkv.server.latency"},
    # INFO's commandstats, errorstats and latencystats.
    "snapkv.server.info_counters": {
        "snapkv.server.conf",
        "snapkv.server.latency",
        "snapkv.server.state",  # types only
        "snapkv.server.table",  # types only
    },
    # Each key's last use and LFU counter, kept beside the keyspaces once wanted.
    "snapkv.server.access": {
        "snapkv.server.client",  # types only
        "snapkv.server.state",  # types only
        "snapkv.server.table",
    },
    # CLIENT LIST's line: every field of Redis 7.0's, from the client and its connection.
    "snapkv.server.client_info": {"snapkv.server.client", "snapkv.server.resp.text"},
    # CONFIG REWRITE's text (pure; state for types).
    "snapkv.server.config_rewrite": {"snapkv.server.conf", "snapkv.server.state"},
    # Redis's command metadata (categories, key specs, docs) from commands.json,
    # and COMMAND's reply shapes; keyspecs: Redis's key finding, pure.
    "snapkv.server.commandmeta": {
        "snapkv.server.keyspecs",
        "snapkv.server.resp.writer",
        "snapkv.server.table",
    },
    "snapkv.server.keyspecs": set(),
    # snapkv as a replication source for Redis replicas: records to commands
    # (feed), the backlog, one replica's link, the primary that ties them.
    "snapkv.server.replicas": set(),
    "snapkv.server.replicas.feed": {
        "snapkv.journal",
        "snapkv.server.replicas.build",
        "snapkv.server.resp.text",
        "snapkv.values",
    },
    # A whole value as the commands that build it (the feed's rewrites).
    "snapkv.server.replicas.build": {"snapkv.values"},
    "snapkv.server.replicas.backlog": set(),
    "snapkv.server.replicas.link": {"snapkv.server.client"},  # types only
    "snapkv.server.replicas.primary": {
        "snapkv.server.client",
        "snapkv.server.replicas.backlog",
        "snapkv.server.replicas.feed",
        "snapkv.server.replicas.link",
        "snapkv.server.replicas.snapshot",
        "snapkv.server.resp.writer",
        "snapkv.server.state",  # types only
    },
    # A full sync's RDB file, written on its own thread at the replica's pace.
    "snapkv.server.replicas.snapshot": {
        "snapkv.rdb.file",
        "snapkv.server.client",  # types only
        "snapkv.server.replicas.link",
        "snapkv.server.state",  # types only
        "snapkv.tap",  # types only
    },
    "snapkv.server.replicas.info": {
        "snapkv.server.replicas.backlog",
        "snapkv.server.replicas.primary",
        "snapkv.server.state",  # types only
    },
    "snapkv.server.cmd_replication": {
        *_HANDLER,
        "snapkv.server.replicas.link",
        "snapkv.server.replicas.primary",
    },
    "snapkv.server.cmd_info": {
        *_HANDLER,
        "snapkv.server.client_info",  # the clients' buffers
        "snapkv.server.info_counters",
        "snapkv.server.replicas.info",  # INFO replication, sync_* stats
        "snapkv.server.conf",  # the percentiles' form
        "snapkv.server.latency",
        "snapkv.replication.status",
        "snapkv.server.pubsub",
        "snapkv.server.scripting",
        "snapkv.server.scripting.functions",
        "snapkv.server.state",
        "snapkv.server.tracking",
    },
    "snapkv.server.cmd_client": {
        *_HANDLER,
        "snapkv.server.acl",  # CLIENT KILL USER: the users
        "snapkv.server.client_info",
        "snapkv.server.blocking",
        "snapkv.server.cmd_connection",
        "snapkv.server.cmd_tracking",
    },
    "snapkv.server.cmd_config": {
        *_HANDLER,
        "snapkv._fs",  # CONFIG REWRITE's atomic write
        "snapkv.server.access",
        "snapkv.server.cmd_latency",
        "snapkv.server.config_rewrite",
        "snapkv.server.conf",
        "snapkv.server.glob",
        "snapkv.server.state",
    },
    # ACL (Redis's acl.c): the rules, the log, the aclfile, the registry and its
    # checks, and the ACL command.
    "snapkv.server.acl_rules": {
        "snapkv.server.commandmeta",
        "snapkv.server.conf",
        "snapkv.server.resp.text",
        "snapkv.server.table",
    },
    "snapkv.server.acl_log": set(),
    "snapkv.server.acl_describe": {"snapkv.server.acl_rules", "snapkv.server.commandmeta"},
    "snapkv.server.acl_file": {
        "snapkv._fs",
        "snapkv.server.acl",  # types only
        "snapkv.server.acl_describe",
        "snapkv.server.acl_rules",
        "snapkv.server.conf",
    },
    "snapkv.server.acl": {
        "snapkv.server.acl_check",
        "snapkv.server.acl_file",
        "snapkv.server.acl_log",
        "snapkv.server.acl_rules",
        "snapkv.server.client",  # types only
        "snapkv.server.commandmeta",
        "snapkv.server.conf",
        "snapkv.server.resp.writer",
        "snapkv.server.state",  # types only
        "snapkv.server.table",
    },
    "snapkv.server.acl_check": {
        "snapkv.server.acl_log",
        "snapkv.server.acl_rules",
        "snapkv.server.commandmeta",
        "snapkv.server.glob",
        "snapkv.server.resp.text",
        "snapkv.server.table",  # types only
    },
    "snapkv.server.cmd_acl": {
        *_HANDLER,
        "snapkv.server.acl",
        "snapkv.server.acl_describe",
        "snapkv.server.acl_file",
        "snapkv.server.acl_log",
        "snapkv.server.acl_rules",
        "snapkv.server.commandmeta",
        "snapkv.server.conf",
    },
    "snapkv.server.dispatch": {
        "snapkv.server.acl",  # the ACL check (and its registry's install)
        "snapkv.server.cmd_acl",
        "snapkv.server.rename",  # the config file's rename-command, at table build
        "snapkv.server.cmd_latency",
        "snapkv.server.latency",
        "snapkv.server.blocking",
        "snapkv.server.cmd_blocking",
        "snapkv.server.cmd_function",
        "snapkv.server.cmd_pubsub",
        "snapkv.server.cmd_stream",
        "snapkv.server.notify",
        "snapkv.server.pubsub",
        "snapkv.server.scripting",
        "snapkv.server.monitor",
        "snapkv.server.resp.text",
        "snapkv.server.client",
        "snapkv.server.cmd_client",
        "snapkv.server.cmd_config",
        "snapkv.server.cmd_connection",
        "snapkv.server.cmd_dump",
        "snapkv.server.cmd_expire",
        "snapkv.server.cmd_hash",
        "snapkv.server.cmd_info",
        "snapkv.server.cmd_introspection",
        "snapkv.server.cmd_keys",
        "snapkv.server.cmd_list",
        "snapkv.server.cmd_multi",
        "snapkv.server.cmd_object",
        "snapkv.server.cmd_persistence",
        "snapkv.server.cmd_replication",
        "snapkv.server.replicas.primary",
        "snapkv.server.cmd_scripting",
        "snapkv.server.cmd_set",
        "snapkv.server.cmd_sort",
        "snapkv.server.cmd_strings",
        "snapkv.server.cmd_zset",
        "snapkv.server.cmd_zset_store",
        "snapkv.server.resp.writer",
        "snapkv.server.state",
        "snapkv.server.table",
        "snapkv.store",
    },
    "snapkv.server.connection": {
        "snapkv.server.client",
        "snapkv.server.network",  # types only
        "snapkv.server.resp.hiredis_reader",
        "snapkv.server.resp.writer",
    },
    "snapkv.server.network": {
        "snapkv.server.connection",
        "snapkv.server.dispatch",
        "snapkv.server.process",  # types only
        "snapkv.server.resp.hiredis_reader",
        "snapkv.server.protected",
        "snapkv.server.state",
        "snapkv.server.tls",
        "snapkv.store",
    },
    # Protected mode: who gets DENIED (asks the ACL about the default user).
    "snapkv.server.protected": {"snapkv.server.acl", "snapkv.server.state"},
    # TLS: the ssl context from the tls-* settings, and its reload by CONFIG SET.
    "snapkv.server.tls": {"snapkv.server.conf", "snapkv.server.state", "snapkv.server.table"},
    # rename-command applied to the dispatcher's table.
    "snapkv.server.rename": {"snapkv.server.conf", "snapkv.server.table"},
    "snapkv.server": {
        "snapkv.media",
        "snapkv.objstore.medium",  # --dir s3://...: the bucket as the medium
        "snapkv.objstore.url",
        "snapkv.recovery_advice",  # restore()'s refusals in the server's words
        "snapkv.server.conf",
        "snapkv.server.network",
        "snapkv.server.process",
        "snapkv.server.state",
        "snapkv.store",
    },
    "snapkv.cli_common": set(),
    "snapkv.cli_check": {
        "snapkv.check",
        "snapkv.check.objects",
        "snapkv.cli_common",
        "snapkv.errors",
        "snapkv.objstore.url",
    },
    "snapkv.cli_restore": {
        "snapkv.cli_common",
        "snapkv.errors",
        "snapkv.journal.format",
        "snapkv.media",
        "snapkv.objstore",
        "snapkv.objstore.client",
        "snapkv.objstore.reader",
        "snapkv.objstore.url",
    },
    "snapkv.cli_serve": {
        "snapkv.cli_common",
        "snapkv.objstore.url",
        "snapkv.replication",  # --replicate URL
        "snapkv.server",
        "snapkv.server.conf",
        "snapkv.server.state",  # types only
    },
    "snapkv.cli": {
        "snapkv",
        "snapkv.cli_check",
        "snapkv.cli_common",
        "snapkv.cli_migrate",
        "snapkv.cli_rdb",
        "snapkv.cli_restore",
        "snapkv.cli_serve",
        "snapkv.codec",
        "snapkv.errors",
        "snapkv.media.file",
        "snapkv.simulate",
    },
    # snapkv migrate: a key on its way, the typed-command fallback, a server
    # (redis-py) and a store as either side, the run and its verification.
    "snapkv.interop.migrate_records": {"snapkv.rdb", "snapkv.values"},
    "snapkv.interop.migrate_typed": {"snapkv.interop.migrate_records", "snapkv.values"},
    "snapkv.interop.migrate_wire": set(),
    "snapkv.interop.migrate_redis": {
        "snapkv.interop.migrate_records",
        "snapkv.interop.migrate_typed",
        "snapkv.interop.migrate_wire",
    },
    "snapkv.interop.migrate_store": {
        "snapkv.interop.migrate_records",
        "snapkv.interop.source",
        "snapkv.opening",
        "snapkv.store",  # types only
        "snapkv.values",
    },
    "snapkv.interop.migrate_verify": {
        "snapkv.interop.migrate",  # types only
        "snapkv.interop.migrate_records",
    },
    "snapkv.interop.migrate": {
        "snapkv.interop.migrate_records",
        "snapkv.interop.migrate_redis",
        "snapkv.interop.migrate_store",
        "snapkv.interop.migrate_verify",
    },
    "snapkv.cli_migrate": {
        "snapkv.cli_common",
        "snapkv.errors",
        "snapkv.interop.migrate",
        "snapkv.interop.migrate_records",
        "snapkv.rdb.file",  # a malformed RDB file as FROM: its error, with the file named
    },
    "snapkv.__main__": {"snapkv.cli"},
}


def _module_name(path: Path) -> str:
    parts = ["snapkv", *path.relative_to(SRC).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _absolute(node: ast.ImportFrom, path: Path) -> str:
    """The absolute module an ``ImportFrom`` names, relative imports resolved."""
    if node.level == 0:
        return node.module or ""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package.pop()  # a module's relative imports start from its package
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def _snapkv_imports(path: Path) -> set[str]:
    """Every snapkv module imported anywhere in ``path`` (also inside functions)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node, path)
            if module == "snapkv" or node.module is None:
                # ``from snapkv import codec`` / ``from . import codec`` import submodules.
                found.update(f"{module}.{alias.name}" for alias in node.names)
            else:
                found.add(module)
    return {name for name in found if name == "snapkv" or name.startswith("snapkv.")}


MODULES = sorted(SRC.rglob("*.py"))


def test_every_module_has_a_row() -> None:
    assert {_module_name(path) for path in MODULES} == set(ALLOWED)


@pytest.mark.parametrize("path", MODULES, ids=_module_name)
def test_imports_stay_in_their_layer(path: Path) -> None:
    name = _module_name(path)
    unexpected = _snapkv_imports(path) - ALLOWED[name] - {name}
    assert not unexpected, f"{name} must not import {sorted(unexpected)}"


ARCHITECTURE = (SRC.parent.parent / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")


def _mapped() -> set[str]:
    """The module paths the architecture page's table names (``cmd_*.py`` stands for a family)."""
    rows = [line.split("|")[1] for line in ARCHITECTURE.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([\w/*]+\.py)`", row)}


def test_the_architecture_page_maps_every_module_and_nothing_else() -> None:
    modules = {path.relative_to(SRC).as_posix() for path in MODULES}
    mapped = _mapped()
    families = [name for name in mapped if "*" in name]
    covered = {m for m in modules if any(fnmatch.fnmatch(m, family) for family in families)}
    assert modules - covered - mapped == set(), "modules missing from docs/ARCHITECTURE.md"
    assert {name for name in mapped if "*" not in name} - modules == set(), (
        "docs/ARCHITECTURE.md names modules that do not exist"
    )
    assert all(covered & {m for m in modules if fnmatch.fnmatch(m, f)} for f in families)
