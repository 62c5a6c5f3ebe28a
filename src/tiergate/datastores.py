"""BPMN data stores: values a process's runs share, kept in the database (docs/tier1.md, *Data stores*).

A data store belongs to a process: its key is the run's process id (the catalog id) and the
BPMN ``dataStore`` id. Every run of that process, whatever its definition version, reads and
writes the same value; runs of other processes, and other homes (each has its own database),
never see it. A called process's data stores belong to the run that calls it.

One move of a run uses one ``StoreAccess``: a data input association reads the store's current
value (``read``: ``None`` if it was never written), a data output association writes a task's
value (``write``: JSON, within the evidence size limit). Nothing is written during the move: the
writes are applied by ``apply`` in the transaction that saves the move, with the move's
``data_store_written`` log entries, so they are kept or rolled back together. A store the move
read and then wrote is written only if it is still at the version read (compare-and-set); if
another run wrote it meanwhile, ``apply`` raises ``StoreConflict`` and the engine computes the
move again on the new value.

A person's or agent's step reads the store when it becomes ready and writes it when it is
completed, moves apart. For such a move (``strict``: a completion or a skip) a write whose step
read a version that is no longer the store's is refused (``tiergate.bpmn.datastore.refuse_stale``:
``data_store_stale``, the step's read renewed so it shows the current value); the moves the
engine makes on its own (a timer, a message, a signal) write anyway, and their entry says
``stale_read``. A retry never writes from a stale read (``tiergate.bpmn.datastore.retry_reads``):
a failed script reads its stores again, a step's value decided on the old read is refused.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from sqlalchemy import Connection

from tiergate.gates import check_evidence_size
from tiergate.store import datastores as table
from tiergate.store.datastores import StoreConflict, StoredValue
from tiergate.timestamps import format_time

__all__ = ["StoreAccess", "StoreConflict", "Written", "describe"]


@dataclass
class Written:
    store: str
    name: str | None
    text: str
    digest: str
    step: str | None
    #: The ``data_store_written`` entry's detail: ``apply`` fills in ``version`` and ``previous``.
    detail: dict[str, Any] = field(default_factory=dict)
    #: The SpiffWorkflow task that wrote it (``discard``: a task that then failed keeps no write).
    task_id: Any = None
    #: The task data field the value was taken from, when the write took it out of the task's data.
    taken_from: str | None = None


class StoreAccess:
    """What one move of a run reads from and writes to its process's data stores."""

    def __init__(self, process_id: str, run_id: str, reader: Callable[[str, str], StoredValue | None]):
        self.process_id = process_id
        self.run_id = run_id
        self._reader = reader
        #: The version of each store as this move first read it (0: never written).
        self.read_versions: dict[str, int] = {}
        self._values: dict[str, Any] = {}
        self._found: dict[str, StoredValue | None] = {}
        self.written: list[Written] = []
        #: A person's or agent's move (a completion, a skip): a write from a stale read is refused.
        self.strict = False

    def read(self, store: str) -> tuple[Any, int | None]:
        """The store's value as this move sees it (its own writes included) and the version of that value:
        the one read from the database, moved on by this move's writes since (``apply`` writes them on top
        of it, or not at all); None if this move wrote the store before any read of it."""
        if store not in self._values:
            found = self._reader(self.process_id, store)
            self._found[store] = found
            self._values[store] = None if found is None else json.loads(found.text)
            self.read_versions.setdefault(store, 0 if found is None else found.version)
        base = self.read_versions.get(store)
        mine = sum(1 for each in self.written if each.store == store) if base is not None else 0
        return copy.deepcopy(self._values[store]), None if base is None else base + mine

    def last_write(self, store: str) -> StoredValue | None:
        """The store's row as this move read it (None: never written, or not read by this move)."""
        return self._found.get(store)

    def write(self, store: str, name: str | None, value: Any, step: str | None,
              read_version: int | None = None, task_id: Any = None) -> dict[str, Any]:
        """Record a write of ``value`` (raises ``LimitExceededError`` over the size limit, ``TypeError``
        if it is not JSON); returns the detail of its ``data_store_written`` entry."""
        text = check_evidence_size(value)
        json.loads(text)  # canonical JSON of anything else (a set, an object) would not read back
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        detail: dict[str, Any] = {"store": store, "name": name, "process": self.process_id, "digest": digest,
                                  "bytes": len(text.encode("utf-8"))}
        if read_version is not None:
            detail["read_version"] = read_version
        self.written.append(Written(store, name, text, digest, step, detail, task_id))
        self._values[store] = json.loads(text)
        return detail

    def discard(self, task_id: Any) -> list[Written]:
        """Forget the writes of a task that failed after making them (it did not complete: a retry
        completes it again); returns them, for the move to drop their entries."""
        dropped = [each for each in self.written if each.task_id is not None and each.task_id == task_id]
        self.written = [each for each in self.written if each not in dropped]
        for each in dropped:
            self._values.pop(each.store, None)
        return dropped

    def apply(self, conn: Connection, now: datetime) -> None:
        """Write what the move wrote, in the caller's transaction (``StoreConflict``: compute the move again)."""
        stores: dict[str, list[Written]] = {}
        for each in self.written:
            stores.setdefault(each.store, []).append(each)
        for store, writes in stores.items():
            last = writes[-1]
            expected = self.read_versions.get(store)  # read by this move: a compare-and-set, else an increment
            before = table.write(conn, process_id=self.process_id, store=store, name=last.name, text=last.text,
                                 digest=last.digest, expected=expected, count=len(writes), run_id=self.run_id,
                                 step=last.step, now=now)
            for number, each in enumerate(writes, start=1):
                each.detail["version"] = before + number
                each.detail["previous"] = before + number - 1
                read = each.detail.get("read_version")
                if read is not None and read != before + number - 1:
                    # The writing task read the store in an earlier move (when it became ready) and
                    # another run wrote it since (after this move checked it, if it is strict).
                    if self.strict:  # judged again: the step's completion is then refused as stale
                        raise StoreConflict(self.process_id, store, read)
                    each.detail["stale_read"] = True


def describe(value: StoredValue, with_value: bool = True) -> dict[str, Any]:
    """One store as `tiergate stores` shows it."""
    shown: dict[str, Any] = {"process": value.process_id, "store": value.store, "name": value.name,
                             "version": value.version, "digest": value.digest, "bytes": len(value.text.encode()),
                             "run": value.run_id, "step": value.step,
                             "updated_at": format_time(value.updated_at) if value.updated_at else None}
    if with_value:
        shown["value"] = json.loads(value.text)
    return shown


def drop_failed(engine: Any, events: list[Any], task: Any) -> None:
    """A move failed at ``task``: its data store writes are not made, and their entries not logged."""
    access: StoreAccess | None = getattr(engine, "stores", None)
    if access is None or not access.written:
        return
    discarded = access.discard(task.id)
    for each in discarded:  # what the write took out of the task's data goes back, for a retry to write it
        if each.taken_from is not None:
            task.data.setdefault(each.taken_from, json.loads(each.text))
    dropped = {id(each.detail) for each in discarded}
    if dropped:
        events[:] = [e for e in events if id(e.detail) not in dropped]
        engine.journal[:] = [e for e in engine.journal if id(e.detail) not in dropped]
