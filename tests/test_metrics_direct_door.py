"""Steps done through the `direct` door once a server is in use are `direct_door` deviations."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

from test_metrics import GOOD, T0, metrics_home, tell_the_story
from test_metrics_summary import assert_same_as_the_log
from tiergate.actors import Actor
from tiergate.credentials import Credentials
from tiergate.engine import Engine


def _direct(answer: dict[str, Any]) -> int:
    return answer["totals"]["deviations"]["by_kind"]["direct_door"]["count"]


def test_direct_steps_count_only_once_a_server_is_in_use(tmp_path: Path, make_engine: Callable[..., Engine],
                                                         cli: Callable[..., Any]) -> None:
    clock = [T0]
    engine = make_engine(metrics_home(tmp_path / "home"), clock=lambda: clock[0])
    tell_the_story(engine, clock)
    before = engine.metrics()          # folds the story: every step of it was direct, with no server
    assert _direct(before) == 0
    runs_with_deviation = before["totals"]["deviations"]["runs_with_deviation"]

    clock[0] += timedelta(minutes=5)
    Credentials(engine).add_principal("agent:bot", by="os:test")
    clock[0] += timedelta(minutes=1)
    direct = engine.start("demo", {"ticket_id": "T-900"}, actor="agent:bot").id
    engine.complete(direct, "gather", GOOD, actor="agent:bot")              # direct: a deviation
    engine.skip(direct, "extra", "not needed", actor="agent:bot")           # direct: a deviation (and a skip)
    served = engine.start("demo", {"ticket_id": "T-901"}, actor="agent:bot").id
    engine.complete(served, "gather", GOOD, actor=Actor.parse("agent:bot").through("token:abc"))

    after = engine.metrics()
    assert _direct(after) == 2
    assert after["totals"]["deviations"]["runs_with_deviation"] == runs_with_deviation + 1
    demo = next(p for p in after["processes"] if p["process"] == "demo")
    steps = {s["step"]: s for s in demo["steps"]}
    assert (steps["gather"]["direct_door"], steps["extra"]["direct_door"], steps["review"]["direct_door"]) == (1, 1, 0)
    assert_same_as_the_log(engine)

    refolded = make_engine(tmp_path / "home", clock=lambda: clock[0])
    from tiergate.metrics import summary

    summary.refold(refolded.db)
    assert refolded.metrics() == after
    shown = cli("metrics", home=tmp_path / "home")
    assert shown.returncode == 0 and "direct_door 2" in shown.stdout, shown


def test_steps_done_past_the_server_are_a_gap(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    clock = [T0]
    engine = make_engine(metrics_home(tmp_path / "home"), clock=lambda: clock[0])
    Credentials(engine).add_principal("agent:bot", by="os:test")
    clock[0] += timedelta(minutes=1)
    run = engine.start("demo", {"ticket_id": "T-902"}, actor="agent:bot").id
    engine.complete(run, "gather", GOOD, actor="agent:bot")
    found = [g for g in engine.gaps()["gaps"] if g["kind"] == "direct_door"]
    assert [(g["process"], g["step"], g["occurrences"], g["category"], g["owner"]) for g in found] == [
        ("demo", "gather", 1, "tooling", "platform-lead")]
    assert "tiergate tokens issue" in found[0]["action"]


def test_revision_0015_refolds_the_summary_and_starts_webhooks_at_the_newest_entry(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    from alembic import command
    from sqlalchemy import text

    clock = [T0]
    engine = make_engine(metrics_home(tmp_path / "home"), clock=lambda: clock[0])
    tell_the_story(engine, clock)
    answer = engine.metrics()
    database = engine.db
    config = database.alembic_config()
    with database.engine.connect() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0010")
        conn.commit()
    assert database.current_revision() == "0010"
    database.upgrade()
    with database.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM summary_runs")).scalar() == 0
        assert conn.execute(text("SELECT high_water FROM summary_fold")).scalar() == 0
        newest = conn.execute(text("SELECT max(id) FROM log_entries")).scalar()
        assert conn.execute(text("SELECT high_water FROM webhook_scan")).scalar() == newest
    assert engine.metrics() == answer
