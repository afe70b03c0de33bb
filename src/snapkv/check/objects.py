"""``snapkv check s3://bucket/prefix``: every object a manifest names, verified.

The object-store counterpart of :mod:`snapkv.check.verify`, read-only and
safe while a writer holds the prefix. What is checked, object by object
(the layout is docs/FORMAT.md part 3):

* every manifest under the prefix: envelope, CRC-32, body
  (:func:`snapkv.objstore.layout.decode_manifest`);
* every snapshot any state manifest names (the run ending at the newest; a
  claim retention kept below it only fences, FORMAT.md O9): present, its size and CRC-32 those the
  manifest recorded (read in chunks: bounded memory);
* every segment from the lowest ``segments_from`` of the manifests to the end
  of the newest one's tail: present (a gap is named with the journal bytes
  it held), its own checks, and the size and CRC-32 a manifest recorded;
* what ``open()`` would do: recovery (:mod:`snapkv.recovery`, the rules
  ``open()`` runs) over the newest state, as ``snapkv check DIR`` predicts.

Each problem is one line naming the object and the check, as the
directory check names the file, the offset and the check.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from snapkv import recovery
from snapkv.errors import MediumError, SnapkvError
from snapkv.objstore import layout as lo
from snapkv.objstore.client import ObjectClient
from snapkv.objstore.reader import PrefixReader, state_numbers

__all__ = ["ObjectCheckReport", "ObjectReport", "check_objects", "print_object_report"]


@dataclass(frozen=True)
class ObjectReport:
    """One object's verdict: ``ok``, ``missing`` or ``damaged`` (``detail`` says which check)."""

    name: str
    kind: str
    status: str
    size: int = 0
    detail: str = ""


@dataclass
class ObjectCheckReport:
    """Everything ``snapkv check URL`` found, JSON-ready (:meth:`to_dict`)."""

    url: str
    objects: list[ObjectReport] = field(default_factory=list)
    #: The newest manifest's holder: writer, epoch, heartbeat, released.
    holder: dict[str, Any] = field(default_factory=dict)
    #: What open() does: ``opens``, ``opens-with-loss`` or ``refuses``, and why.
    prediction: str = "opens"
    prediction_detail: str = ""

    @property
    def problems(self) -> list[ObjectReport]:
        """The objects that failed a check."""
        return [o for o in self.objects if o.status != "ok"]

    @property
    def ok(self) -> bool:
        """Every object passed and ``open()`` loads everything."""
        return not self.problems and self.prediction == "opens"

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {
            "url": self.url,
            "ok": self.ok,
            "holder": self.holder,
            "prediction": self.prediction,
            "prediction_detail": self.prediction_detail,
            "objects": [asdict(o) for o in self.objects],
        }


def check_objects(
    url: str, storage_options: Mapping[str, object] | None = None
) -> ObjectCheckReport:
    """Verify every object under ``url``'s prefix (see the module docstring).

    :raises MediumError: the prefix cannot be listed at all.
    """
    from snapkv.objstore.url import parse_url  # noqa: PLC0415 - obstore only when used

    client = ObjectClient.for_location(parse_url(url, storage_options))
    reader = PrefixReader(client)
    report = ObjectCheckReport(client.describe())
    manifests: list[lo.Manifest] = []
    numbers = reader.manifest_numbers()
    for number in numbers:
        name = lo.manifest_name(number)
        try:
            manifests.append(reader.manifest(number))
            report.objects.append(ObjectReport(name, "manifest", "ok"))
        except lo.LayoutError as exc:
            report.objects.append(ObjectReport(name, "manifest", "damaged", detail=str(exc)))
        except MediumError as exc:
            report.objects.append(ObjectReport(name, "manifest", "missing", detail=str(exc)))
    if manifests:
        newest = manifests[-1]
        report.holder = {
            "writer": str(newest.writer),
            "epoch": newest.epoch,
            "heartbeat_ms": newest.heartbeat_ms,
            "released": newest.released,
            "manifest": newest.name,
        }
    # Claims below the retained run only fence (FORMAT.md O9): what they name may be gone.
    states = set(state_numbers(numbers))
    manifests = [m for m in manifests if m.number in states]
    _check_snapshots(reader, manifests, report)
    _check_segments(reader, manifests, report)
    try:
        plan = recovery.plan_recovery(reader)
    except SnapkvError as exc:
        report.prediction, report.prediction_detail = "refuses", str(exc)
    else:
        if plan.damaged:
            report.prediction = "opens-with-loss"
            report.prediction_detail = "; ".join(plan.lost)
        else:
            journals = ", ".join(map(str, plan.journals.journals)) or "none"
            report.prediction_detail = (
                f"loads {plan.snapshot.generation or 'no snapshot'}, then journals {journals} "
                f"({plan.journals.records} records)"
            )
    return report


def _check_snapshots(
    reader: PrefixReader, manifests: list[lo.Manifest], report: ObjectCheckReport
) -> None:
    refs = {ref.name: ref for m in manifests for ref in m.snapshots}
    for name, ref in sorted(refs.items()):
        try:
            for _ in reader.snapshot_chunks(ref):
                pass
        except lo.LayoutError as exc:
            report.objects.append(ObjectReport(name, "snapshot", "damaged", ref.size, str(exc)))
        except MediumError as exc:
            status = "missing" if reader.client.head(name) is None else "damaged"
            report.objects.append(ObjectReport(name, "snapshot", status, ref.size, str(exc)))
        else:
            report.objects.append(ObjectReport(name, "snapshot", "ok", ref.size))


def _check_segments(
    reader: PrefixReader, manifests: list[lo.Manifest], report: ObjectCheckReport
) -> None:
    named = {ref.seq: ref for m in manifests for ref in m.segments}
    existing = {
        seq
        for seq in (lo.segment_number(i.name) for i in reader.client.list(lo.SEGMENT_DIR))
        if seq is not None
    }
    if not manifests and not existing:
        return
    start = min((m.segments_from for m in manifests), default=1)
    end = max([*existing, *named, start - 1]) + 1
    for seq in range(start, end):
        name = lo.segment_name(seq)
        ref = named.get(seq)
        try:
            got = reader.segment(seq, ref)
        except lo.LayoutError as exc:
            report.objects.append(ObjectReport(name, "segment", "damaged", detail=str(exc)))
            continue
        if got is None:
            held = (
                f"journal {ref.journal} bytes {ref.offset} to {ref.offset + ref.length} are lost"
                if ref is not None
                else "a gap in the segment sequence: what it held is lost"
            )
            report.objects.append(ObjectReport(name, "segment", "missing", detail=held))
            continue
        report.objects.append(ObjectReport(name, "segment", "ok", got[1].size))


def print_object_report(report: ObjectCheckReport, *, as_json: bool) -> None:
    """``snapkv check URL``'s output: one line per problem (every object with ``--json``)."""
    if as_json:
        json.dump(report.to_dict(), sys.stdout)
        sys.stdout.write("\n")
        return
    print(f"snapkv check {report.url}")
    if report.holder:
        state = "released" if report.holder["released"] else "held"
        print(
            f"  holder     {report.holder['writer']}, epoch {report.holder['epoch']} ({state}, "
            f"heartbeat {report.holder['heartbeat_ms']} ms, {report.holder['manifest']})"
        )
    kinds: dict[str, int] = {}
    for obj in report.objects:
        kinds[obj.kind] = kinds.get(obj.kind, 0) + 1
    counted = ", ".join(f"{n} {kind}s" for kind, n in sorted(kinds.items())) or "no objects"
    print(f"  objects    {counted}; {len(report.problems)} with problems")
    for obj in report.problems:
        print(f"  {obj.status.upper():<10} {obj.name}: {obj.detail}")
    print(f"  open()     {report.prediction}: {report.prediction_detail}")
    print(f"verdict: {'ok' if report.ok else 'damaged'}")
