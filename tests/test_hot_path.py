"""The step hot path: pooled connections, and the statements it runs on the DBAPI cursor.

``tiergate.store.runs`` and ``tiergate.log`` write runs and log entries with their own SQL;
everything else reads them through SQLAlchemy. These tests hold the two to the same columns
and meanings, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import select
import time
from datetime import timezone
from typing import Any

import pytest
import sqlalchemy as sa

from support import BACKEND, HomeBuilder
from tiergate import log as execution_log
from tiergate.actors import SYSTEM
from tiergate.lifecycle import RunStatus
from tiergate.store import runs as store
from tiergate.store.tables import LogEntry, Run

EVIDENCE = {"summary": "Printer on floor 3 is down (é, 日本)", "severity": "S2"}


def test_run_read_on_the_hot_path_matches_sqlalchemy(engine: Any) -> None:
    run = engine.start("demo", {"ticket_id": "T-1"}, actor="agent:bot")
    engine.complete(run.id, "gather", EVIDENCE, actor="agent:bot")
    with engine.db.read() as conn:
        record = store.get_run(conn, run.id)
        row = conn.execute(sa.select(Run.__table__).where(Run.__table__.c.id == run.id)).one()._mapping
    assert record is not None
    assert record.state == row["state"]
    assert record.state["data"]["summary"] == EVIDENCE["summary"]
    assert (record.version, record.log_seq, record.log_head, record.status.value) == (
        row["version"], row["log_seq"], row["log_head"], row["status"])
    for name in ("created_at", "updated_at"):
        value = getattr(record, name)
        assert value.tzinfo is not None and value.utcoffset() == timezone.utc.utcoffset(None)
        assert value == execution_log.utc(row[name])
    assert record.ended_at is None and row["ended_at"] is None


def test_log_entries_written_on_the_hot_path_read_back_through_sqlalchemy(engine: Any) -> None:
    run = engine.start("demo", {"ticket_id": "T-2"}, actor="agent:bot")
    engine.complete(run.id, "gather", EVIDENCE, actor="agent:bot")
    with engine.db.read() as conn:
        rows = execution_log.entries(conn, run.id)
        stored = conn.execute(sa.select(LogEntry.__table__.c.at, LogEntry.__table__.c.duration_s)
                              .where(LogEntry.__table__.c.run_id == run.id)
                              .order_by(LogEntry.__table__.c.seq)).all()
    completed = next(r for r in rows if r["event"] == "step_completed")
    assert completed["detail"] == {"evidence": EVIDENCE}
    assert isinstance(completed["duration_s"], float)
    ready = next(r for r in rows if r["event"] == "step_ready" and r["step"] == "extra")
    assert ready["duration_s"] is None
    # Aware UTC times, whichever path wrote them: the start's entries, then the step's.
    assert len({execution_log.utc(at) for at, _ in stored}) == 2
    assert all(execution_log.utc(at) == r["at"].astimezone(timezone.utc) for (at, _), r in zip(stored, rows))
    assert engine.verify_log()["ok"] is True


def test_run_end_time_and_status_are_stored_when_the_run_finishes(engine: Any) -> None:
    run = engine.start("demo", {"ticket_id": "T-3"}, actor="agent:bot")
    engine.complete(run.id, "gather", EVIDENCE, actor="agent:bot")
    engine.skip(run.id, "extra", "nothing extra to check", actor="agent:bot")
    info = engine.complete(run.id, "review", {"approved": True}, actor="human:alice")
    assert info.status == "completed" and info.ended_at is not None
    with engine.db.read() as conn:
        record = store.get_run(conn, run.id)
        row = conn.execute(sa.select(Run.__table__).where(Run.__table__.c.id == run.id)).one()._mapping
    assert record is not None and record.status == RunStatus.COMPLETED and row["status"] == "completed"
    assert record.ended_at == execution_log.utc(row["ended_at"])
    assert execution_log.format_time(record.ended_at) == info.ended_at
    assert engine.verify_log()["ok"] is True


def test_a_stale_run_writes_nothing(engine: Any) -> None:
    """The optimistic check: a transition computed from an old read changes neither the run nor the log."""
    run = engine.start("demo", {"ticket_id": "T-4"}, actor="agent:bot")
    with engine.db.read() as conn:
        stale = store.get_run(conn, run.id)
    assert stale is not None
    engine.complete(run.id, "gather", EVIDENCE, actor="agent:bot")
    with engine.db.read() as conn:
        before = store.get_run(conn, run.id)
        entries_before = len(execution_log.entries(conn, run.id))
    for status in (stale.status, RunStatus.CANCELLED):  # both spellings of the guarded update
        with engine.db.write() as conn:
            events = [execution_log.LogEvent("cancelled", SYSTEM, detail={"reason": "stale"})]
            assert store.save_transition(conn, stale, {"data": {}, "steps": {}}, status, events,
                                         engine.clock()) is None
    with engine.db.read() as conn:
        after = store.get_run(conn, run.id)
        assert len(execution_log.entries(conn, run.id)) == entries_before
    assert after == before


def test_sqlite_connections_are_pooled_with_their_settings(demo_home: HomeBuilder, make_engine: Any,
                                                           tmp_path: Any) -> None:
    db_file = tmp_path / "pooled" / "tiergate.db"
    engine = make_engine(demo_home, database_url=f"sqlite:///{db_file}")
    run = engine.start("demo", {"ticket_id": "T-5"}, actor="agent:bot")
    engine.complete(run.id, "gather", EVIDENCE, actor="agent:bot")
    with engine.db.read() as conn:
        first = conn.connection.dbapi_connection
        settings = [conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                    for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")]
    with engine.db.write() as conn:
        assert conn.connection.dbapi_connection is first  # the same connection, not a new one
    assert settings == ["wal", 2, 60000, 1]  # synchronous 2 = FULL
    assert (db_file.parent / "tiergate.db-wal").exists()
    engine.close()
    # Closing the engine closes its connections; the last one checkpoints and removes the WAL.
    assert not (db_file.parent / "tiergate.db-wal").exists()


@pytest.mark.skipif(BACKEND != "postgresql", reason="a server that drops connections: PostgreSQL")
def test_postgresql_pooled_connections_the_server_dropped_are_replaced(engine: Any) -> None:
    """No ping per checkout: a connection the server closed is noticed without a round trip."""
    run = engine.start("demo", {"ticket_id": "T-6"}, actor="agent:bot")
    with engine.db.read() as conn:
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        pooled = conn.connection.dbapi_connection
    admin = sa.create_engine(engine.database_url, poolclass=sa.pool.NullPool)
    with admin.connect() as conn:  # as a server restart would, for this connection
        assert conn.exec_driver_sql(f"SELECT pg_terminate_backend({pid})").scalar() is True
        for _ in range(100):
            if not conn.exec_driver_sql(f"SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}").scalar():
                break
            time.sleep(0.05)
    admin.dispose()
    # The server's goodbye reaches the idle pooled connection's socket (on a loaded machine, a
    # moment after the backend is gone): that is what a checkout notices without a round trip.
    assert select.select([pooled.pgconn.socket], [], [], 30)[0]
    info = engine.complete(run.id, "gather", EVIDENCE, actor="agent:bot")
    assert info.steps[0].state == "done"
    with engine.db.read() as conn:
        assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() != pid


# --- the runs an engine remembers (store.RecentRuns) ------------------------------------------


def _completions(engine: Any, run_id: str, step: str) -> list[dict[str, Any]]:
    with engine.db.read() as conn:
        return [e for e in execution_log.entries(conn, run_id) if e["event"] == "step_completed" and e["step"] == step]


def test_a_run_changed_by_another_engine_is_read_again(demo_home: HomeBuilder, make_engine: Any) -> None:
    """Engine A remembers the run it wrote; B changes the run; A's next change starts from B's."""
    a, b = make_engine(demo_home), make_engine(demo_home)
    run = a.start("demo", {"ticket_id": "T-7"}, actor="agent:bot")
    a.complete(run.id, "gather", EVIDENCE, actor="agent:bot")          # A remembers: extra and review ready
    b.skip(run.id, "extra", "nothing extra to check", actor="agent:other")
    info = a.complete(run.id, "review", {"approved": True}, actor="human:alice")
    assert info.status == "completed"
    assert [s.state for s in info.steps] == ["done", "skipped", "done"]
    assert info.steps[1].actor == "agent:other"  # B's skip, which A never saw itself
    assert a.verify_log()["ok"] is True
    assert [e["event"] for e in a.log(run.id)].count("step_skipped") == 1


def test_a_refusal_is_judged_on_the_run_as_stored(demo_home: HomeBuilder, make_engine: Any) -> None:
    """A remembers `extra` as ready; B completes it; A's attempt is refused as already done, not written."""
    a, b = make_engine(demo_home), make_engine(demo_home)
    run = a.start("demo", {"ticket_id": "T-8"}, actor="agent:bot")
    a.complete(run.id, "gather", EVIDENCE, actor="agent:bot")
    b.complete(run.id, "extra", {"note": "checked by B"}, actor="agent:other")
    with pytest.raises(Exception) as err:
        a.complete(run.id, "extra", {"note": "checked by A"}, actor="agent:bot")
    assert getattr(err.value, "reason", None) == "already_done"
    completions = _completions(a, run.id, "extra")
    assert [c["detail"]["evidence"]["note"] for c in completions] == ["checked by B"]
    refused = [e for e in a.log(run.id) if e["event"] == "refused"]
    assert len(refused) == 1 and refused[0]["detail"]["reason"] == "already_done"
    assert a.status(run.id).data["note"] == "checked by B"


def test_changing_an_answer_does_not_change_what_the_engine_remembers(engine: Any) -> None:
    run = engine.start("demo", {"ticket_id": "T-9"}, actor="agent:bot")
    evidence = dict(EVIDENCE)
    info = engine.complete(run.id, "gather", evidence, actor="agent:bot")
    info.data["severity"] = "S1"                     # a caller edits what it was given, or what it gave
    info.steps[0].evidence["summary"] = "edited"      # type: ignore[index]
    evidence["severity"] = "S3"
    done = engine.complete(run.id, "extra", {"note": "fine"}, actor="agent:bot")
    assert done.data["severity"] == "S2"
    assert done.steps[0].evidence == EVIDENCE
    with engine.db.read() as conn:
        stored = store.get_run(conn, run.id)
    assert stored is not None and stored.state["data"]["severity"] == "S2"


def test_an_error_on_a_remembered_run_is_checked_against_the_database(demo_home: HomeBuilder,
                                                                       make_engine: Any) -> None:
    """B cancels the run A remembers as active: A is told the run is cancelled, and writes nothing else."""
    a, b = make_engine(demo_home), make_engine(demo_home)
    run = a.start("demo", {"ticket_id": "T-10"}, actor="agent:bot")
    a.complete(run.id, "gather", EVIDENCE, actor="agent:bot")
    b.cancel(run.id, "duplicate of T-1", actor="human:alice")
    with pytest.raises(Exception) as err:
        a.complete(run.id, "extra", {"note": "late"}, actor="agent:bot")
    assert getattr(err.value, "reason", None) == "run_not_active"
    assert _completions(a, run.id, "extra") == []
    assert a.status(run.id).status == "cancelled"
    assert a.verify_log()["ok"] is True


@pytest.mark.skipif(BACKEND != "sqlite", reason="traces the statements on SQLite's connection")
def test_a_remembered_run_is_not_read_back(engine: Any) -> None:
    run = engine.start("demo", {"ticket_id": "T-11"}, actor="agent:bot")
    with engine.db.read() as conn:
        connection = conn.connection.dbapi_connection
    statements: list[str] = []
    connection.set_trace_callback(statements.append)
    try:
        engine.complete(run.id, "gather", EVIDENCE, actor="agent:bot")
        other = engine.start("demo", {"ticket_id": "T-12"}, actor="agent:bot")
        engine._recent_runs.take(other.id)  # forgotten: read back as before
        engine.complete(other.id, "gather", EVIDENCE, actor="agent:bot")
    finally:
        connection.set_trace_callback(None)
    reads = [s for s in statements if s.startswith("SELECT") and "FROM runs" in s]
    assert len(reads) == 1 and f"'{other.id}'" in reads[0]
    assert engine.verify_log()["ok"] is True


def test_a_run_that_is_over_is_not_remembered(demo_home: HomeBuilder, make_engine: Any) -> None:
    """A completed or cancelled run leaves the engine's memory; a change of it is then refused on the
    run read from the database, exactly as by an engine that never saw the run."""
    a, fresh = make_engine(demo_home), make_engine(demo_home)
    run = a.start("demo", {"ticket_id": "T-13"}, actor="agent:bot")
    a.complete(run.id, "gather", EVIDENCE, actor="agent:bot")
    assert run.id in a._recent_runs._runs  # active: kept for its next step
    a.skip(run.id, "extra", "nothing extra", actor="agent:bot")
    assert a.complete(run.id, "review", {"approved": True}, actor="human:alice").status == "completed"
    assert run.id not in a._recent_runs._runs
    other = a.start("demo", {"ticket_id": "T-14"}, actor="agent:bot")
    a.cancel(other.id, "duplicate of T-13", actor="human:alice")
    assert other.id not in a._recent_runs._runs
    reasons = []
    for engine, run_id in ((a, run.id), (fresh, run.id), (a, other.id), (fresh, other.id)):
        with pytest.raises(Exception) as err:
            engine.complete(run_id, "gather", EVIDENCE, actor="agent:bot")
        reasons.append(getattr(err.value, "reason", None))
    assert reasons == ["run_not_active"] * 4
    refused = [e for e in a.log(run.id) if e["event"] == "refused"]
    assert len(refused) == 2 and {e["detail"]["reason"] for e in refused} == {"run_not_active"}
    assert a.verify_log()["ok"] is True
