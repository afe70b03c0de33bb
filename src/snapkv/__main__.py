"""``python -m snapkv`` is the ``snapkv`` command."""

from snapkv.cli import main

raise SystemExit(main())
