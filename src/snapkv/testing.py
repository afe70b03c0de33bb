"""Test helpers for people who write media, and for snapkv's own tests.

:func:`check_medium` is a conformance kit in the spirit of trio's
``check_one_way_stream``: give it a factory for a fresh, empty medium, and
it checks everything the :class:`~snapkv.media.base.Medium` contract
promises, raising ``AssertionError`` at the first broken promise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from snapkv import codec
from snapkv.media.base import Medium
from snapkv.store import Store

__all__ = ["check_medium"]


class _Boom(Exception):
    """Raised by check_medium inside a publish to simulate a failing encoder."""


def check_medium(factory: Callable[[], Medium]) -> None:
    """Check that media made by ``factory`` keep the Medium contract.

    ``factory`` must return a new, empty medium each call; check_medium
    closes every medium it makes.
    """
    medium = factory()
    try:
        assert medium.generations() == [], "a new medium must hold no snapshot"
        assert medium.read() is None, "read() of an empty medium must return None"

        medium.publish([b"first"])
        assert medium.read() == b"first", "read() must return what was published"
        newest = medium.generations()
        assert len(newest) >= 1, "generations() must list the published snapshot"
        assert medium.read(newest[0]) == b"first", "read(newest) must equal read()"

        pieces = [b"sec", b"", b"ond", bytes(range(256))]
        medium.publish(iter(pieces))
        assert medium.read() == b"".join(pieces), "publish must write the concatenation"
        assert medium.generations()[0] != newest[0], "a publish must make a new generation"

        def failing() -> Iterator[bytes]:
            yield b"partial"
            raise _Boom

        before = (medium.generations(), medium.read())
        try:
            medium.publish(failing())
        except _Boom:
            pass
        else:  # pragma: no cover - only a broken medium gets here
            raise AssertionError("publish must propagate the error of its pieces")
        assert (medium.generations(), medium.read()) == before, (
            "a failed publish must leave every snapshot as it was"
        )

        medium.publish([])
        assert medium.read() == b"", "an empty publish is a valid (empty) snapshot"

        listed = medium.generations()
        medium.quarantine(listed[0])
        assert medium.generations() == listed[1:], "quarantine must unlist exactly that generation"
        assert medium.read() == (medium.read(listed[1]) if len(listed) > 1 else None), (
            "after quarantine the next older generation is the newest"
        )
    finally:
        medium.close()
        medium.close()  # close must be idempotent

    # Through a Store, so the medium carries real snapshots round trip.
    medium = factory()
    try:
        store = Store(medium)
        data = {"": "", "a|b:c": "v1|v2:ok", "\x00": "\ud800", "😀": "e\u0301"}
        store.update(data)
        store.shutdown()
        assert len(store) == 0, "shutdown must clear memory"
        store.restore()
        assert dict(store.items()) == data, "restore must return what shutdown published"
        blob = medium.read()
        assert blob is not None
        assert codec.decode(blob) == data, "the medium must hold the exact bytes published"
    finally:
        medium.close()
