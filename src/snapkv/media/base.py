"""The Medium interface: where snapshots live. A medium moves opaque bytes and never parses them.

The contract every medium keeps (``snapkv.testing.check_medium`` checks it):

* :meth:`Medium.publish` makes the concatenation of the given pieces the
  newest snapshot *atomically*: after a crash at any instant, a reader finds
  either the previous newest snapshot or the complete new one, never a torn
  one. If publish raises, the previous snapshots are untouched, except in
  one case a medium must name in its error: the new snapshot became visible
  but its durability could not be confirmed (FileMedium: the directory sync
  after the rename failed). Either way the caller keeps its data.
* :meth:`Medium.generations` lists the retained snapshots, newest first;
  an empty list means "no snapshot yet", which a Store restores as empty.
* :meth:`Medium.read` returns a snapshot's bytes exactly as published.

Like TinyDB's ``Storage``, the interface only ever moves a whole snapshot.
Unlike TinyDB's ``JSONStorage``, it never overwrites one in place.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable

__all__ = ["Medium"]


class Medium(ABC):
    """Somewhere to publish whole snapshots atomically and read them back."""

    @abstractmethod
    def publish(self, pieces: Iterable[bytes]) -> None:
        """Atomically make ``b"".join(pieces)`` the newest snapshot.

        ``pieces`` is consumed once, as it is written, so a medium never
        needs a second copy of the snapshot in memory.

        :raises MediumError: the snapshot could not be published and the
            previously published snapshots are unchanged; or (said in the
            message) it is visible but not confirmed durable.
        """

    @abstractmethod
    def generations(self) -> list[str]:
        """Names of the retained snapshots, newest first; ``[]`` if there is none."""

    @abstractmethod
    def read(self, generation: str | None = None) -> bytes | None:
        """Bytes of the newest snapshot (or of ``generation``); ``None`` if there is none.

        :raises MediumError: the snapshot exists but could not be read.
        """

    @abstractmethod
    def quarantine(self, generation: str) -> str:
        """Set aside a generation that failed verification; return where it went.

        Afterwards the generation is no longer listed, so it can neither
        shadow a good snapshot nor count toward the media's ``keep`` and push
        the last good generation out. Called by ``Store.restore(fallback=True)``.
        """

    def describe(self, generation: str | None = None) -> str:
        """A human-readable name for a generation, for error messages."""
        return f"{type(self).__name__} generation {generation}"

    def close(self) -> None:  # noqa: B027 - optional hook; most media hold nothing
        """Release what the medium holds (locks, handles). Idempotent."""
