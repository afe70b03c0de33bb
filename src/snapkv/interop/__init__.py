"""Moving data between snapkv and Redis or Valkey: sources read, RDB files exported and imported.

:mod:`.source` opens any place snapkv data lives (a directory, an object
storage prefix, an RDB file) read-only and yields its entries; the RDB
export and import (:mod:`.rdb_export`, :mod:`.rdb_import`) and ``snapkv
migrate`` build on it.
"""

from __future__ import annotations

from snapkv.interop.source import Entry, count_by_db, iter_entries, open_source

__all__ = ["Entry", "count_by_db", "iter_entries", "open_source"]
