"""The partial indexes metrics read through: the same predicate in the tables, the migration and the queries."""

from __future__ import annotations

import importlib.util
from typing import Any, Callable

import pytest
import sqlalchemy as sa

from support import BACKEND, DEMO, HomeBuilder
from tiergate.engine import Engine
from tiergate.metrics.deviations import OFF_PATH_SQL, REFUSAL_GROUPS, refusal_kind, refused_sql
from tiergate.store.db import MIGRATIONS
from tiergate.store.tables import COMPLETED_STEPS_SQL, RUN_EVENTS, RUN_EVENTS_SQL, LogEntry

PARTIAL = {"ix_log_entries_off_path": OFF_PATH_SQL,
           "ix_log_entries_refused_order": {d: refused_sql(d, "out_of_order") for d in ("sqlite", "postgresql")},
           "ix_log_entries_refused_actor": {d: refused_sql(d, "wrong_actor") for d in ("sqlite", "postgresql")}}


def migration(name: str = "0003_gaps") -> Any:
    spec = importlib.util.spec_from_file_location(f"m{name[:4]}", MIGRATIONS / "versions" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(PARTIAL))
def test_the_table_declares_the_queries_predicate(name: str) -> None:
    index = next(i for i in LogEntry.__table__.indexes if i.name == name)
    for dialect in ("sqlite", "postgresql"):
        assert str(index.dialect_options[dialect]["where"]) == PARTIAL[name][dialect]


def test_the_migration_spells_the_predicates_the_same() -> None:
    assert migration().OFF_PATH_SQL == OFF_PATH_SQL
    m = migration("0007_partial_metrics_indexes")  # the refusal indexes as rebuilt there
    for group, kind in (("order", "out_of_order"), ("actor", "wrong_actor")):
        for dialect in ("sqlite", "postgresql"):
            assert m.REFUSED_SQL[group][dialect] == refused_sql(dialect, kind)
            assert m.OLD_REFUSED_SQL[group][dialect] == migration().REFUSED_SQL[group][dialect]


def test_the_per_step_entries_stay_out_of_the_run_events_index() -> None:
    """0007: the two entries of nearly every step go into one metrics index (completions) or none."""
    m = migration("0007_partial_metrics_indexes")
    assert (m.COMPLETED_STEPS_SQL, m.RUN_EVENTS_SQL) == (COMPLETED_STEPS_SQL, RUN_EVENTS_SQL)
    indexes = {i.name: i for i in LogEntry.__table__.indexes}
    for name, predicate in (("ix_log_entries_completed_steps", COMPLETED_STEPS_SQL),
                            ("ix_log_entries_run_events", RUN_EVENTS_SQL)):
        for dialect in ("sqlite", "postgresql"):
            assert str(indexes[name].dialect_options[dialect]["where"]) == predicate
    assert "step_ready" not in RUN_EVENTS and "step_completed" not in RUN_EVENTS
    assert {"ix_log_entries_event_step", "ix_log_entries_event_run"}.isdisjoint(indexes)


def test_every_refusal_reason_in_the_code_has_a_kind() -> None:
    import re

    from support import REPO

    reasons = {reason for path in (REPO / "src" / "tiergate").rglob("*.py")
               for reason in re.findall(r'reason="([a-z_]+)"', path.read_text())}
    assert {"not_ready", "already_done", "unknown_step", "actor_not_allowed", "same_actor", "not_optional"} <= reasons
    kinds = {reason: refusal_kind(reason) for reason in reasons}
    assert set(kinds.values()) <= {"out_of_order", "wrong_actor", "refused_other"}
    assert [kinds[r] for r in ("not_ready", "already_done", "unknown_step")] == ["out_of_order"] * 3
    assert kinds["actor_not_allowed"] == kinds["same_actor"] == "wrong_actor"
    assert kinds["not_optional"] == "refused_other"
    assert set(REFUSAL_GROUPS) == {"out_of_order", "wrong_actor"}


@pytest.mark.skipif(BACKEND != "sqlite", reason="reads SQLite's query plans")
def test_sqlite_answers_from_the_partial_indexes(demo_home: HomeBuilder, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(demo_home)
    engine.start("demo", {"ticket_id": "T-1"}, actor="agent:bot")
    with engine.db.read() as conn:
        for name, predicate in PARTIAL.items():
            plan = " ".join(str(row[-1]) for row in conn.execute(sa.text(
                f"EXPLAIN QUERY PLAN SELECT process_id, tier, step, count(*) FROM log_entries "
                f"WHERE {predicate['sqlite']} GROUP BY process_id, tier, step")))
            assert name in plan, plan


def test_off_path_is_read_from_the_detail_flag_only(demo_home: HomeBuilder, make_engine: Callable[..., Engine]) -> None:
    """`"off_path": true` counts; a string, false, or the flag nested deeper does not."""
    from tiergate import log as execution_log
    from tiergate.actors import SYSTEM
    from tiergate.log import LogEvent
    from tiergate.store import runs as store

    engine = make_engine(demo_home)
    run = engine.start("demo", {"ticket_id": "T-1"}, actor="agent:bot")
    details = [{"off_path": True}, {"off_path": "true"}, {"off_path": False}, {"flow": {"off_path": True}}]
    with engine.db.write() as conn:
        record = store.get_run(conn, run.id)
        assert record is not None
        assert execution_log.append_detached(conn, record.head, [LogEvent("timer_fired", SYSTEM, step="gather",
                                                                          detail=d) for d in details],
                                             engine.clock())
    demo = engine.metrics()["processes"][0]
    assert demo["deviations"]["by_kind"]["off_path"]["count"] == 1
    assert next(s for s in demo["steps"] if s["step"] == "gather")["off_path"] == 1
    assert DEMO  # the checklist these runs use


def _plan(conn: Any, sql: Any) -> str:
    """SQLite's query plan of a SQLAlchemy statement, its parameters written in."""
    compiled = sql.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
    return " ".join(str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}"))


@pytest.mark.skipif(BACKEND != "sqlite", reason="reads SQLite's query plans")
def test_sqlite_reads_the_metrics_queries_through_the_partial_indexes(demo_home: HomeBuilder,
                                                                      make_engine: Callable[..., Engine]) -> None:
    """SQLite matches a partial index by the text of its terms: the queries must spell them so."""
    from tiergate.metrics.sql import _log, is_event

    engine = make_engine(demo_home)
    run = engine.start("demo", {"ticket_id": "T-1"}, actor="agent:bot")
    engine.complete(run.id, "gather", {"summary": "the printer is down", "severity": "S2"}, actor="agent:bot")
    e = _log.alias("e")
    with engine.db.read() as conn:
        completions = sa.select(e.c.process_id, e.c.tier, e.c.step, e.c.actor_kind, sa.func.count(),
                                sa.func.sum(e.c.duration_s)).where(is_event(e, "step_completed")).group_by(
                                    e.c.process_id, e.c.tier, e.c.step, e.c.actor_kind)
        assert "COVERING INDEX ix_log_entries_completed_steps" in _plan(conn, completions)
        for event in RUN_EVENTS:
            one_run = sa.select(e.c.at).where(is_event(e, event), e.c.process_id == "demo", e.c.tier == 2,
                                              e.c.run_id == run.id)
            assert "COVERING INDEX ix_log_entries_run_events" in _plan(conn, one_run), event
        with pytest.raises(ValueError):
            is_event(e, "step_finished")  # not an event of the log: a typo, never SQL
