"""Test helpers for people who write media, and for snapkv's own tests.

Laid out as trio's ``trio.testing``: one public namespace over a module per
helper.

- :func:`check_medium` (:mod:`snapkv.testing.conformance`): the Medium
  conformance kit; give it a factory of fresh, empty media and it raises
  ``AssertionError`` at the first broken promise of the contract.
- :class:`FaultyMedium` (:mod:`snapkv.testing.faulty`): a medium in memory
  that can lose power (unsynced sectors kept, dropped, zeroed or garbled;
  directory changes durable only up to the last directory sync) and fail
  any chosen operation, for crash tests.
"""

from __future__ import annotations

from snapkv.testing.conformance import check_medium
from snapkv.testing.faulty import CRASH_MODES, FAULT_KINDS, FaultyJournal, FaultyMedium

__all__ = ["CRASH_MODES", "FAULT_KINDS", "FaultyJournal", "FaultyMedium", "check_medium"]
