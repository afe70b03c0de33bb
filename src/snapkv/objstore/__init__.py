"""Object storage as snapkv's medium: S3, GCS, Azure, local directories and memory.

The modules, each one responsibility (docs/FORMAT.md part 3 is the layout's spec):

- :mod:`snapkv.objstore.url`: ``s3://bucket/prefix`` (and ``gs://``, ``az://``,
  ``file://``, ``memory://``) to an obstore store and a prefix, with credentials
  from the environment and ``storage_options``.
- :mod:`snapkv.objstore.client`: the one door to a bucket: retries with backoff
  and jitter, the ambiguous PUT resolved, bounded-memory reads, counters.
- :mod:`snapkv.objstore.layout`: object names, the manifest and segment bytes,
  the fold of segments into journals. Pure.
- :mod:`snapkv.objstore.reader`: a prefix's state read back (newest manifest,
  its segments and tail; at a past time for point-in-time restore): what
  recovery, ``snapkv check`` and ``snapkv restore`` read.
- :mod:`snapkv.objstore.medium`: :class:`ObjectMedium`, the Medium a Store
  writes to, with epochs and fencing.
- :mod:`snapkv.objstore.retention`: which objects the window lets go.

Nothing here is imported by ``import snapkv``; obstore (the ``cloud`` extra) is
imported only when a store is made.
"""

from __future__ import annotations

__all__: list[str] = []
