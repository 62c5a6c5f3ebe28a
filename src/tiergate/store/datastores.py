"""The ``data_stores`` table: each BPMN data store's current value, read and written by runs.

Only ``tiergate.datastores`` writes it, inside the transaction that saves the move that wrote
(``apply``). A write is a compare-and-set on the row's ``version`` when the move read the store
itself, or an increment of it otherwise; either way two writers never both think they were last.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, insert, select, update
from sqlalchemy.exc import IntegrityError

from tiergate.store.tables import DataStore, LogEntry

_table = DataStore.__table__  # type: ignore[attr-defined]
_log = LogEntry.__table__  # type: ignore[attr-defined]


class StoreConflict(Exception):
    """The store moved on since the move read it: the move is computed again on its new value."""

    def __init__(self, process_id: str, store: str, expected: int):
        super().__init__(f"data store '{store}' of '{process_id}' changed since version {expected} was read")
        self.process_id, self.store, self.expected = process_id, store, expected


@dataclass(frozen=True)
class StoredValue:
    process_id: str
    store: str
    name: str | None
    text: str
    digest: str
    version: int
    run_id: str
    step: str | None
    updated_at: datetime


def _row(row: Any) -> StoredValue:
    return StoredValue(row.process_id, row.store, row.name, row.value, row.digest, row.version, row.run_id,
                       row.step, row.updated_at)


def read(conn: Connection, process_id: str, store: str) -> StoredValue | None:
    row = conn.execute(select(_table).where(and_(_table.c.process_id == process_id,
                                                 _table.c.store == store))).first()
    return None if row is None else _row(row)


def listing(conn: Connection, process_id: str | None = None) -> list[StoredValue]:
    query = select(_table).order_by(_table.c.process_id, _table.c.store)
    if process_id is not None:
        query = query.where(_table.c.process_id == process_id)
    return [_row(row) for row in conn.execute(query)]


def write(conn: Connection, *, process_id: str, store: str, name: str | None, text: str, digest: str,
          expected: int | None, count: int, run_id: str, step: str | None, now: datetime) -> int:
    """Set the store's value (``count`` writes of one move, the last one's ``text``); returns the
    version it had before. ``expected`` (the version the move read, 0: none yet) makes it a
    compare-and-set: ``StoreConflict`` if the store is at another version now."""
    key = and_(_table.c.process_id == process_id, _table.c.store == store)
    values = {"name": name, "value": text, "digest": digest, "run_id": run_id, "step": step, "updated_at": now}
    if expected:
        done = conn.execute(update(_table).where(and_(key, _table.c.version == expected))
                            .values(version=expected + count, **values))
        if done.rowcount != 1:
            raise StoreConflict(process_id, store, expected)
        return expected
    if expected is None:  # not read by the move: the row's own version moves on (the UPDATE locks the row)
        done = conn.execute(update(_table).where(key).values(version=_table.c.version + count, **values))
        if done.rowcount == 1:
            now_at = conn.execute(select(_table.c.version).where(key)).scalar_one()
            return int(now_at) - count
    try:  # a store never written (or read as never written): the first row, unless another move made it meanwhile
        with conn.begin_nested():
            conn.execute(insert(_table).values(process_id=process_id, store=store, version=count, **values))
    except IntegrityError:
        raise StoreConflict(process_id, store, 0) from None
    return 0


def tampered(conn: Connection) -> list[dict[str, Any]]:
    """Each store whose row the log does not account for (for `tiergate log verify`): its value does not
    hash to its digest, or its version and digest are not those of the newest ``data_store_written``
    entry of the store, or no entry wrote it; and each store the log wrote whose row is gone."""
    last: dict[tuple[str, str], dict[str, Any]] = {}
    for (detail,) in conn.execute(select(_log.c.detail).where(_log.c.event == "data_store_written")):
        key = (str(detail.get("process")), str(detail.get("store")))
        if key not in last or int(detail.get("version") or 0) > int(last[key].get("version") or 0):
            last[key] = detail
    found = []
    for value in listing(conn):
        key = (value.process_id, value.store)
        entry = last.pop(key, None)
        if hashlib.sha256(value.text.encode("utf-8")).hexdigest() != value.digest:
            problem = "its value does not hash to its digest (edited in the database)"
        elif entry is None:
            problem = "no data_store_written entry of the log wrote it"
        elif (entry.get("version"), entry.get("digest")) != (value.version, value.digest):
            problem = (f"it is at version {value.version}, but the log's last write of it is version "
                       f"{entry.get('version')} with another digest" if entry.get("version") != value.version
                       else "its value is not the one the log's last write of it wrote")
        else:
            continue
        found.append({"process": value.process_id, "store": value.store, "problem": problem})
    found.extend({"process": process, "store": store, "problem": "the log wrote it, but its row is gone"}
                 for process, store in last)
    return found
