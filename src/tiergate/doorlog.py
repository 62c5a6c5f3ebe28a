"""Attempts refused at a door before they reached a run, recorded where the log can be written.

    doorlog.record(engine, door="mcp-stdio", attempt="message", code="-32700", problem="not_json",
                   facts=refused.facts, actor=actor)
    doorlog.entries(engine)   # newest first

An attempt refused on a run is a ``refused`` entry of that run's log (``Engine``). One that never
reached a run has no chain to join: a message that cannot be read (malformed JSON-RPC, a key
given twice, NaN, too deep, too long), start data refused for its size or shape, an attempt on a
run that does not exist. Each is one row of ``door_refusals``: the door, the credential and actor
when known, the attempt, the error code and problem, and the content's sha256 and size. Never the
content, and every field is cut to its column, so a refusal adds one small row of bounded size.

What cannot be recorded is not: with the database away, read-only or full, the answer says so
and nothing is written anywhere (``record`` returns False and never raises).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select

from tiergate.store.tables import DoorRefusal

if TYPE_CHECKING:
    from tiergate.engine import Engine
    from tiergate.inputs import Facts

_table = DoorRefusal.__table__  # type: ignore[attr-defined]
_WIDTH = {"door": 16, "credential": 80, "actor": 128, "attempt": 32, "code": 32, "problem": 32, "sha256": 64}


def record(engine: Engine, *, door: str, attempt: str, code: str, problem: str | None = None,
           facts: Facts | None = None, actor: Any = None, credential: str | None = None) -> bool:
    """Record one refusal; False if it could not be written (the database away, read-only, full, ...)."""
    row: dict[str, Any] = {"door": door, "credential": credential, "actor": None if actor is None else str(actor),
                           "attempt": attempt, "code": code, "problem": problem,
                           "sha256": facts.sha256 if facts is not None and facts.sha256 else None,
                           "bytes": facts.bytes if facts is not None else None}
    row = {key: value[:_WIDTH[key]] if isinstance(value, str) and key in _WIDTH else value
           for key, value in row.items()}
    try:
        with engine.db.write(durable=False) as conn:
            conn.execute(insert(_table).values(at=engine.clock(), **row))
    except Exception:  # noqa: BLE001 - a refusal is answered whether or not it can be recorded
        return False
    return True


def entries(engine: Engine, limit: int = 100) -> list[dict[str, Any]]:
    """The newest ``limit`` refusals, newest first."""
    from tiergate.log import format_time

    with engine.db.read() as conn:
        rows = conn.execute(select(_table).order_by(_table.c.id.desc()).limit(limit)).mappings().all()
    return [{**{k: v for k, v in row.items() if k not in ("id", "at")}, "at": format_time(row["at"])}
            for row in rows]
