"""The execution log: one chain per run, and `log verify` finds every kind of tampering."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from tiergate.engine import Engine

GOOD = {"summary": "Payslip totals are off by one cent", "severity": "S2"}


def _two_runs(engine: Engine) -> tuple[str, str]:
    first = engine.start("demo", {"ticket_id": "T-1"}, actor="agent:bot").id
    engine.complete(first, "gather", GOOD, actor="agent:bot")
    engine.skip(first, "extra", "n/a", actor="agent:bot")
    second = engine.start("demo", {"ticket_id": "T-2"}, actor="agent:bot").id
    engine.complete(second, "gather", GOOD, actor="agent:bot")
    return first, second


def _sql(engine: Engine, statement: str, **params: Any) -> None:
    with engine.db.write() as conn:
        conn.execute(sa.text(statement), params)


def _entry_id(engine: Engine, run_id: str, seq: int) -> int:
    return next(e["id"] for e in engine.log(run_id) if e["seq"] == seq)


def test_chain_links_each_entry_to_the_one_before(engine: Engine) -> None:
    first, second = _two_runs(engine)
    for run_id in (first, second):
        entries = engine.log(run_id)
        assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
        assert len({e["hash"] for e in entries}) == len(entries)
    result = engine.verify_log()
    assert result == {"runs": 2, "entries": len(engine.log()), "ok": True, "broken": None, "definitions_tampered": [],
                      "data_stores_tampered": []}


def test_edited_entry_is_named(engine: Engine) -> None:
    first, second = _two_runs(engine)
    target = _entry_id(engine, second, 3)
    _sql(engine, "UPDATE log_entries SET actor_id = 'someone-else' WHERE id = :id", id=target)
    broken = engine.verify_log()["broken"]
    assert broken["run_id"] == second and broken["seq"] == 3 and broken["entry_id"] == target
    assert "edited" in broken["problem"]


def test_edited_detail_is_named(engine: Engine) -> None:
    first, _ = _two_runs(engine)
    target = _entry_id(engine, first, 3)
    _sql(engine, "UPDATE log_entries SET detail = :d WHERE id = :id",
         d='{"evidence": {"summary": "something nicer", "severity": "S4"}}', id=target)
    broken = engine.verify_log()["broken"]
    assert (broken["run_id"], broken["seq"], broken["entry_id"]) == (first, 3, target)


def test_deleted_entry_is_named(engine: Engine) -> None:
    first, _ = _two_runs(engine)
    _sql(engine, "DELETE FROM log_entries WHERE id = :id", id=_entry_id(engine, first, 2))
    broken = engine.verify_log()["broken"]
    assert broken["run_id"] == first and broken["seq"] == 3
    assert "seq 2 is missing" in broken["problem"]


def test_reordered_entries_are_named(engine: Engine) -> None:
    first, _ = _two_runs(engine)
    a, b = _entry_id(engine, first, 3), _entry_id(engine, first, 4)
    _sql(engine, "UPDATE log_entries SET seq = -1 WHERE id = :a", a=a)
    _sql(engine, "UPDATE log_entries SET seq = 3 WHERE id = :b", b=b)
    _sql(engine, "UPDATE log_entries SET seq = 4 WHERE id = :a", a=a)
    broken = engine.verify_log()["broken"]
    assert broken["run_id"] == first and broken["seq"] == 3 and broken["entry_id"] == b
    assert "reordered" in broken["problem"]


def test_truncated_chain_is_found(engine: Engine) -> None:
    first, _ = _two_runs(engine)
    last = max(e["seq"] for e in engine.log(first))
    _sql(engine, "DELETE FROM log_entries WHERE id = :id", id=_entry_id(engine, first, last))
    broken = engine.verify_log()["broken"]
    assert broken["run_id"] == first and broken["seq"] == last
    assert "newest entries were deleted" in broken["problem"]


def test_log_lists_all_runs_oldest_first(engine: Engine) -> None:
    first, second = _two_runs(engine)
    everything = engine.log()
    assert [e["id"] for e in everything] == sorted(e["id"] for e in everything)
    assert everything[0]["run"] == first and everything[-1]["run"] == second
    entry = everything[2]
    assert set(entry) == {"id", "at", "run", "seq", "process", "version", "tier", "step", "event", "actor",
                          "duration_s", "detail", "door", "hash"}
    assert {e["door"] for e in everything} == {"direct"}  # an Engine in-process is on the database directly
    assert entry["process"] == "demo" and entry["tier"] == 2 and len(entry["version"]) == 64


def test_the_earliest_break_is_named_when_several_runs_are_broken(engine: Engine) -> None:
    first, second = _two_runs(engine)
    later = _entry_id(engine, second, 3)
    earlier = _entry_id(engine, first, 3)
    _sql(engine, "UPDATE log_entries SET actor_id = 'x' WHERE id IN (:a, :b)", a=later, b=earlier)
    broken = engine.verify_log()["broken"]
    assert broken["entry_id"] == earlier == min(earlier, later)


def test_entry_hash_is_the_sha256_of_the_entrys_canonical_json() -> None:
    """The hash's spelling is fixed for ever: the canonical JSON (sorted keys, no spaces, UTF-8)
    of the entry's fields. ``chain`` puts the text together from parts; it must be that text."""
    import decimal
    import hashlib
    from datetime import datetime, timezone

    from tiergate.actors import SYSTEM, Actor
    from tiergate.jsonutil import canonical_json, to_jsonable
    from tiergate.log import GENESIS, LogEvent, RunHead, chain, entry_hash, format_time

    events = [
        LogEvent("step_completed", Actor("agent", "bot"), step="gather", duration_s=1.0000004,
                 detail={"evidence": {"z": [1, 2.5, None, True], "a": "é \" \\ \n 日本",
                                      "n": decimal.Decimal("3")}}),
        LogEvent("step_ready", SYSTEM, step="extra"),
        LogEvent("completed", SYSTEM, detail={"nested": {"b": {}, "a": []}, "when": (1, 2)}, duration_s=-0.0),
        LogEvent("refused", Actor("human", "al"), step="gather", detail={"reason": "x"}, door="token:0a1b2c"),
    ]
    head = RunHead("run-1", "demo", "v" * 64, 2, 3, "f" * 64)
    rows = chain(head, events, datetime(2026, 12, 3, 18, 0, 0, 5, tzinfo=timezone.utc), state="5" * 64)
    prev = "f" * 64
    for row, event in zip(rows, events):
        material = {"run": "run-1", "seq": row["seq"], "at": format_time(row["at"]), "process": "demo",
                    "version": "v" * 64, "tier": 2, "step": event.step, "event": event.event,
                    "actor": [event.actor.kind, event.actor.id], "duration_s": row["duration_s"],
                    "detail": to_jsonable(event.detail), "prev": prev, "state": "5" * 64}
        if event.door is not None:  # entries before migration 0010 have no door, and hash without one
            material["door"] = event.door
        assert row["hash"] == hashlib.sha256(canonical_json(material).encode("utf-8")).hexdigest()
        assert row["detail_json"] == canonical_json(to_jsonable(event.detail))
        # What verify recomputes from a stored entry (the detail read back as JSON) is the same hash.
        assert entry_hash({**row, "detail": json.loads(row["detail_json"])}) == row["hash"]
        prev = row["hash"]
    assert [r["seq"] for r in rows] == [4, 5, 6, 7] and GENESIS != prev
    # An entry that binds no state (a refusal, or one written before 0008) hashes without the key.
    bare = chain(head, events[:1], datetime(2026, 12, 3, 18, 0, 0, 5, tzinfo=timezone.utc))[0]
    material = {"run": "run-1", "seq": 4, "at": format_time(bare["at"]), "process": "demo", "version": "v" * 64,
                "tier": 2, "step": "gather", "event": "step_completed", "actor": ["agent", "bot"],
                "duration_s": bare["duration_s"], "detail": to_jsonable(events[0].detail), "prev": "f" * 64}
    assert bare["hash"] == hashlib.sha256(canonical_json(material).encode("utf-8")).hexdigest()


def test_each_change_binds_the_runs_state_and_an_edited_state_is_named(engine: Engine) -> None:
    import hashlib

    first, second = _two_runs(engine)
    with engine.db.read() as conn:
        stored = conn.execute(sa.text("SELECT CAST(state AS TEXT) FROM runs WHERE id = :id"), {"id": second}).scalar()
    newest = engine.log(second)[-1]
    with engine.db.read() as conn:
        bound = conn.execute(sa.text("SELECT state_hash FROM log_entries WHERE id = :id"),
                             {"id": newest["id"]}).scalar()
    assert bound == hashlib.sha256(json.dumps(json.loads(stored)).encode()).hexdigest()
    # A refusal changes no state and binds none; the state check still reads the entry before it.
    engine.cancel(first, "done with it", actor="human:ann")
    try:
        engine.complete(first, "gather", GOOD, actor="agent:bot")
    except Exception:  # noqa: BLE001 - refused: the run is cancelled
        pass
    assert engine.log(first)[-1]["event"] == "refused"
    assert engine.verify_log()["ok"] is True
    edited = json.loads(stored)
    edited["data"] = {"ticket_id": "T-999"}
    _sql(engine, "UPDATE runs SET state = :s WHERE id = :id", s=json.dumps(edited), id=second)
    broken = engine.verify_log()["broken"]
    assert broken["run_id"] == second and broken["entry_id"] == newest["id"]
    assert "runs.state was edited" in broken["problem"]


def test_a_change_of_state_that_logs_nothing_else_is_bound_by_a_state_saved_entry(engine: Engine) -> None:
    from tiergate.store import runs as store

    first, _ = _two_runs(engine)
    with engine.db.write() as conn:
        run = store.get_run(conn, first)
        assert run is not None
        changed = {**run.state, "note": "kept by a runner that logged nothing"}
        saved = store.save_transition(conn, run, changed, run.status, [], engine.clock())
        assert saved is not None
        unchanged = store.save_transition(conn, saved, changed, saved.status, [], engine.clock())
        assert unchanged is not None and unchanged.log_seq == saved.log_seq  # no change, no entry
    newest = engine.log(first)[-1]
    assert (newest["event"], newest["actor"]) == ("state_saved", "system:tiergate")
    assert engine.verify_log()["ok"] is True
