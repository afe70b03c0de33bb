"""RDB's type codes (Redis's ``rdb.h``): fixed on disk, shared by the reader and the writer."""

from __future__ import annotations

__all__ = [
    "HASH",
    "HASH_LISTPACK",
    "HASH_ZIPLIST",
    "HASH_ZIPMAP",
    "LIST",
    "LIST_QUICKLIST",
    "LIST_QUICKLIST_2",
    "LIST_ZIPLIST",
    "SET",
    "SET_INTSET",
    "SET_LISTPACK",
    "STREAM_LISTPACKS",
    "STREAM_LISTPACKS_2",
    "STREAM_LISTPACKS_3",
    "STRING",
    "TYPE_NAMES",
    "ZSET",
    "ZSET_2",
    "ZSET_LISTPACK",
    "ZSET_ZIPLIST",
]

STRING, LIST, SET, ZSET, HASH, ZSET_2 = 0, 1, 2, 3, 4, 5
HASH_ZIPMAP, LIST_ZIPLIST, SET_INTSET, ZSET_ZIPLIST, HASH_ZIPLIST = 9, 10, 11, 12, 13
LIST_QUICKLIST, HASH_LISTPACK, ZSET_LISTPACK, LIST_QUICKLIST_2, SET_LISTPACK = 14, 16, 17, 18, 20
STREAM_LISTPACKS, STREAM_LISTPACKS_2, STREAM_LISTPACKS_3 = 15, 19, 21

#: Redis's names for its object types (``rdb.h``), for the messages.
TYPE_NAMES = {
    STRING: "string",
    LIST: "list",
    SET: "set",
    ZSET: "zset",
    HASH: "hash",
    ZSET_2: "zset-2",
    6: "module (pre-GA)",
    7: "module",
    HASH_ZIPMAP: "hash-zipmap",
    LIST_ZIPLIST: "list-ziplist",
    SET_INTSET: "set-intset",
    ZSET_ZIPLIST: "zset-ziplist",
    HASH_ZIPLIST: "hash-ziplist",
    LIST_QUICKLIST: "list-quicklist",
    15: "stream (listpacks)",
    HASH_LISTPACK: "hash-listpack",
    ZSET_LISTPACK: "zset-listpack",
    LIST_QUICKLIST_2: "list-quicklist-2",
    19: "stream (listpacks 2)",
    SET_LISTPACK: "set-listpack",
    21: "stream (listpacks 3)",
    245: "function",
    246: "function-2",
}
