"""Dates and durations in Tier 1 scripts, conditions and timers (tiergate.bpmn.datetimes), on SQLite
and PostgreSQL: Python's datetime, timedelta and timezone as values, the engine's clock for
datetime.now(), and ISO 8601 text for what a script leaves in the data."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from tier1_helpers import bpmn, chain, flow, tier1_home, user

from tiergate.bpmn import expressions
from tiergate.engine import Engine
from tiergate.worker import run_pass

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)

PLAN = ('<bpmn:startEvent id="start"/><bpmn:scriptTask id="plan"><bpmn:script>'
        'due = datetime.now() + timedelta(days=2)\n'
        'wait = timedelta(hours=4, minutes=30, seconds=1.5)\n'
        'week = due.isocalendar()[1]\n'
        'stamp = due.strftime("%Y-%m-%d")</bpmn:script></bpmn:scriptTask>'
        '<bpmn:exclusiveGateway id="soon" default="f_later"/>' + user("rush") + user("later")
        + '<bpmn:intermediateCatchEvent id="hold"><bpmn:timerEventDefinition><bpmn:timeDate>'
          'datetime.fromisoformat(due) - timedelta(days=1)</bpmn:timeDate></bpmn:timerEventDefinition>'
          '</bpmn:intermediateCatchEvent><bpmn:endEvent id="end"/>'
        + chain("start", "plan", "soon")
        + flow("f_rush", "soon", "rush", "datetime.fromisoformat(due) - datetime.now() < timedelta(days=1)")
        + flow("f_later", "soon", "hold") + chain("hold", "later", "end") + chain("rush", "end", prefix="r"))


def test_a_script_computes_dates_that_are_kept_as_iso_text_and_read_back(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(tier1_home(tmp_path / "home", {"dates": bpmn("dates", PLAN)}), clock=lambda: T0)
    assert [p.message for p in engine.check() if p.severity == "error"] == []
    run = engine.start("dates", {}, actor="agent:a")
    # datetime.now() is the engine's clock in UTC, without a zone as in Python (a date without one is UTC).
    assert run.data == {"due": "2026-01-07T09:00:00", "wait": "PT4H30M1.5S", "week": 2, "stamp": "2026-01-07"}
    assert json.loads(json.dumps(engine.status(run.id).data)) == run.data   # plain JSON all the way
    # The condition read `due` back with datetime.fromisoformat: two days away is not soon.
    assert (run.status, [s.id for s in run.ready_steps]) == ("active", [])
    assert run_pass(engine, now=T0 + timedelta(days=1) - timedelta(seconds=1)) == []
    assert run_pass(engine, now=T0 + timedelta(days=1))[0].events[0] == "timer_fired"
    assert [s.id for s in engine.status(run.id).ready_steps] == ["later"]


def test_check_refuses_what_dates_do_not_offer_at_its_line(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    xml = bpmn("dates", PLAN.replace('stamp = due.strftime("%Y-%m-%d")', 'stamp = due.ctime()'))
    engine = make_engine(tier1_home(tmp_path / "home", {"dates": xml}))
    errors = [(p.line, p.message) for p in engine.check() if p.severity == "error"]
    assert errors == [(xml[:xml.index("due.ctime")].count("\n") + 1,
                       ("plan: script: attribute '.ctime' is not allowed: only the listed methods of text, list, "
                       "dict and set values and of dates and durations may be called (docs/tier1.md) (see "
                       "docs/tier1.md for what expressions may do)."))]


def test_a_start_event_cycle_must_still_be_written_out(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    # (count, timedelta) is accepted for a cycle inside a run (tests/test_tier1_timers.py), not for the
    # schedule a start event is: `tiergate worker` needs it before any run (and its data) exists.
    xml = bpmn("ticking", '<bpmn:startEvent id="tick"><bpmn:timerEventDefinition><bpmn:timeCycle>'
               '(2, timedelta(hours=1))</bpmn:timeCycle></bpmn:timerEventDefinition></bpmn:startEvent>'
               + user("work") + '<bpmn:endEvent id="end"/>' + chain("tick", "work", "end"))
    engine = make_engine(tier1_home(tmp_path / "home", {"ticking": xml}))
    errors = [p.message for p in engine.check() if p.severity == "error"]
    assert len(errors) == 1 and errors[0].startswith("tick: timeCycle: '(2, timedelta(hours=1))' is not an ISO 8601 "
                                                     "repeating interval")


def test_dates_in_scripts_outside_a_run() -> None:
    data = expressions.execute("d = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)\n"
                               "later = d + timedelta(weeks=1)\n"
                               "gap = (later - d).total_seconds()\n"
                               "back = -timedelta(days=1, hours=2)\n"
                               "days = [d.date(), later.date()]\n"
                               "zoned = datetime.now(timezone.utc).tzinfo == timezone.utc\n"
                               "plain = datetime.now().tzinfo is None", {})
    assert data == {"d": "2026-03-01T12:00:00+00:00", "later": "2026-03-08T12:00:00+00:00", "gap": 604800.0,
                    "back": "-P1DT2H", "days": ["2026-03-01", "2026-03-08"], "zoned": True, "plain": True}


def test_a_message_payload_with_a_date_arrives_as_iso_text(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    from test_tier1_outside_spiff_camunda import _message_in_run

    xml = _message_in_run().replace('{"text": words.upper(), "from": "tell"}',
                                    '{"text": words, "at": datetime.now(timezone.utc), "wait": timedelta(hours=2)}')
    engine = make_engine(tier1_home(tmp_path / "home", {"noting": xml}), clock=lambda: T0)
    assert [p.message for p in engine.check() if p.severity == "error"] == []
    run = engine.start("noting", {"words": "hi"}, actor="human:alice")
    run = engine.complete(run.id, "prepare", {}, actor="human:alice")
    assert [s.id for s in run.ready_steps] == ["read"]
    assert run.data["note"] == {"text": "hi", "at": "2026-01-05T09:00:00+00:00", "wait": "PT2H"}
    assert engine.complete(run.id, "read", {}, actor="human:alice").status == "completed"


def test_instances_over_dates_a_cardinality_computes_get_them_as_iso_text(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    from test_tier1_outside_spiff_camunda import camunda_instances

    days = "[datetime(2026, 1, 5) + timedelta(days=n) for n in range(2)]"
    engine = make_engine(tier1_home(tmp_path / "home", {"visit": bpmn("visit", camunda_instances(
        "check", "checked", "day", cardinality=days, sequential=True))}))
    assert [p.message for p in engine.check() if p.severity == "error"] == []
    run = engine.start("visit", {}, actor="human:alice")
    seen = []
    while run.ready_steps:
        step = run.ready_steps[0]
        seen.append(step.id)
        run = engine.complete(run.id, step.id, {}, actor="human:alice")
    assert run.status == "completed"
    assert seen == ["check[0]", "check[1]"]
    assert run.data["checked"] == ["2026-01-05T00:00:00", "2026-01-06T00:00:00"]
