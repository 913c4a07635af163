"""How a file's record rides on its pytest report, from the process that read it to the controller.

pytest-xdist copies a report's whole ``__dict__`` to the controller, and execnet takes only exact
builtins: the record travels in its wire form (:meth:`FileRecord.to_wire`), with the file's stat
so that the controller can store the record in the cache for the next run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_dicomqc.record import FileRecord

if TYPE_CHECKING:
    from pytest_dicomqc.cache import Stat

_ATTRIBUTE = "dicomqc_record"


def attach(report: Any, record: FileRecord, stat: Stat | None) -> None:
    setattr(report, _ATTRIBUTE, [record.to_wire(), list(stat) if stat is not None else None])


def take(report: Any) -> tuple[FileRecord, Stat | None] | None:
    """The record and stat a report carries, removed from it: the terminal reporter keeps every
    report to the end, the reporter keeps one copy of each record."""
    carried = getattr(report, _ATTRIBUTE, None)
    if carried is None:
        return None
    delattr(report, _ATTRIBUTE)
    wire, stat = carried
    return FileRecord.from_wire(wire), (tuple(int(part) for part in stat) if stat is not None else None)  # type: ignore[return-value]
