"""Gaps: found by thresholds on the metrics, classified by decisions/gap_classification.dmn, remembered."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable

import pytest
import sqlalchemy as sa

from test_metrics import NOW, T0, metrics_home, tell_the_story
from tiergate.engine import Engine
from tiergate.errors import DefinitionError, UsageError
from tiergate.store.tables import Gap

# Low enough that the small story of test_metrics.py crosses each threshold.
LOW = """\
gate_failure: {first_attempt_failure_share: 0.2, min_first_attempts: 2}
frequent_skip: {skip_share: 0.3, min_ready: 5}
refusals: {refusals_per_ready: 0.5, min_refusals: 3}
timer_escalation: {escalations_per_ready: 0.1, min_escalations: 1}
slow_process: {median_over_expected: 0.5, min_completed: 3}
abandoned_runs: {abandoned_share: 0.1, min_abandoned: 1}
"""

EXPECTED = {
    # key: (occurrences, measure, category, owner, matched rule)
    "gate_failure:demo:2:gather": (2, 0.5, "agent-guidance", "platform-lead", "rule_gate_failure_occasional"),
    "frequent_skip:demo:2:extra": (2, 0.4, "process-design", "platform-lead", "rule_skip"),
    # Two of the three refusals were the rules on who may act (a process-design question for the
    # process's owner, `lead` in the catalog), not an agent-guidance gap.
    "rule_refusals:demo:2:review": (3, 1.0, "process-design", "lead", "rule_rule_refusals"),
    "timer_escalation:demo:2:review": (1, round(1 / 3, 4), "process-design", "platform-lead",
                                       "rule_timer_escalation_isolated"),
    "slow_process:demo:2:-": (1, 0.8, "staffing", "support-lead", "rule_slow_occasional"),
    "abandoned_runs:demo:2:-": (1, round(1 / 6, 4), "process-design", "platform-lead", "rule_abandoned_occasional"),
    "abandoned_runs:notes:3:-": (1, 0.5, "process-design", "platform-lead", "rule_abandoned_occasional"),
}


@pytest.fixture
def story(tmp_path: Path, make_engine: Callable[..., Engine]) -> tuple[Engine, list[datetime]]:
    clock = [T0]
    engine = make_engine(metrics_home(tmp_path / "home"), clock=lambda: clock[0])
    tell_the_story(engine, clock)
    return engine, clock


def stored_rows(engine: Engine) -> dict[str, Any]:
    with engine.db.read() as conn:
        return {row.key: row for row in conn.execute(sa.select(Gap.__table__))}


def test_default_thresholds_find_nothing_in_a_small_log(story: tuple[Engine, list[datetime]]) -> None:
    engine, _ = story
    found = engine.gaps()
    assert found["gaps"] == [] and found["counts"] == {"new": 0, "reopened": 0, "open": 0, "resolved": 0}


def test_each_gap_kind_is_found_and_classified(story: tuple[Engine, list[datetime]]) -> None:
    engine, _ = story
    (engine.home.root / "tiers" / "gaps.yaml").write_text(LOW)
    found = engine.gaps()
    got = {g["key"]: (g["occurrences"], g["measure"], g["category"], g["owner"], g["matched_rule"])
           for g in found["gaps"]}
    assert got == EXPECTED
    assert {g["status"] for g in found["gaps"]} == {"new"} and found["counts"]["new"] == 7
    gate = next(g for g in found["gaps"] if g["kind"] == "gate_failure")
    assert gate["summary"] == "the gate of step 'gather' fails on 2 of 4 first attempts by agents (50%)"
    assert gate["evidence"] == {"first_attempts": 4, "failed": 2, "gate_failures": 3}
    assert gate["threshold"] == 0.2 and gate["first_seen"] == gate["last_seen"] == "2025-01-06T13:30:00.000000Z"
    assert "done_when" in gate["action"]


def test_a_gap_found_again_is_not_new_and_resolves_when_it_goes(story: tuple[Engine, list[datetime]]) -> None:
    engine, clock = story
    settings = engine.home.root / "tiers" / "gaps.yaml"
    settings.write_text(LOW)
    engine.gaps()
    clock[0] = NOW + timedelta(hours=1)
    again = engine.gaps()
    assert {g["status"] for g in again["gaps"]} == {"open"} and again["counts"]["open"] == 7
    assert all(g["first_seen"] == "2025-01-06T13:30:00.000000Z" and g["times_seen"] == 2 for g in again["gaps"])
    rows = stored_rows(engine)
    assert set(rows) == set(EXPECTED)
    skip = rows["frequent_skip:demo:2:extra"]
    assert skip.times_seen == 2 and skip.resolved_at is None
    assert skip.last_seen.replace(tzinfo=None) == (NOW + timedelta(hours=1)).replace(tzinfo=None)

    # A team made skipping rarer... here: a stricter threshold. The gap resolves; the rest stay open.
    settings.write_text(LOW.replace("skip_share: 0.3", "skip_share: 0.5"))
    clock[0] = NOW + timedelta(hours=2)
    later = engine.gaps()
    assert [r["key"] for r in later["resolved"]] == ["frequent_skip:demo:2:extra"]
    assert later["resolved"][0]["resolved_at"] == "2025-01-06T15:30:00.000000Z"
    assert later["counts"] == {"new": 0, "reopened": 0, "open": 6, "resolved": 1}
    assert stored_rows(engine)["frequent_skip:demo:2:extra"].resolved_at is not None

    # It comes back: reported as reopened, first seen still the first time.
    settings.write_text(LOW)
    back = engine.gaps()
    reopened = [g for g in back["gaps"] if g["status"] == "reopened"]
    assert [g["key"] for g in reopened] == ["frequent_skip:demo:2:extra"]
    assert reopened[0]["first_seen"] == "2025-01-06T13:30:00.000000Z" and reopened[0]["times_seen"] == 3
    assert stored_rows(engine)["frequent_skip:demo:2:extra"].resolved_at is None


def test_export_writes_feedback_items(story: tuple[Engine, list[datetime]]) -> None:
    engine, _ = story
    (engine.home.root / "tiers" / "gaps.yaml").write_text(LOW)
    markdown = engine.gaps_export("md")
    assert markdown["items"] == 7 and markdown["format"] == "md"
    text = markdown["content"]
    assert text.startswith("# Process gaps as of 2025-01-06\n")
    assert "## 1. demo (tier 2), step gather: the gate of step 'gather' fails on 2 of 4" in text
    assert "- **Category:** agent-guidance — **owner:** platform-lead " \
           "(decisions/gap_classification.dmn, rule rule_gate_failure_occasional)" in text
    assert text.count("\n## ") == 7
    items = json.loads(engine.gaps_export("json")["content"])["items"]
    assert {i["key"] for i in items} == set(EXPECTED)
    slow = next(i for i in items if i["kind"] == "slow_process")
    assert (slow["owner"], slow["category"], slow["step"], slow["process"]) == ("support-lead", "staffing", None, "demo")
    assert slow["suggested_action"].startswith("Find the slow steps") and slow["times_seen"] == 2
    with pytest.raises(UsageError, match="Use --format md or --format json"):
        engine.gaps_export("xml")


def test_gaps_need_the_classification_decision(story: tuple[Engine, list[datetime]]) -> None:
    engine, _ = story
    (engine.home.root / "decisions" / "gap_classification.dmn").unlink()
    engine.reload()
    with pytest.raises(DefinitionError) as err:
        engine.gaps()
    assert err.value.code == "decision_missing"
    assert "decisions/gap_classification.dmn is missing" in err.value.message


def test_a_broken_settings_file_stops_metrics_with_its_lines(story: tuple[Engine, list[datetime]]) -> None:
    engine, _ = story
    (engine.home.root / "tiers" / "gaps.yaml").write_text("gate_failure:\n  first_attempt_failure_share: 2\n"
                                                          "  min_first_attempts: ten\nfrequent_skips: {}\n")
    with pytest.raises(DefinitionError) as err:
        engine.metrics()
    message = err.value.message
    assert message.startswith("tiers/gaps.yaml has problems:")
    assert "tiers/gaps.yaml:2: /gate_failure/first_attempt_failure_share: Input should be less than or equal to 1" \
        in message
    assert "tiers/gaps.yaml:3: /gate_failure/min_first_attempts: Input should be a valid integer" in message
    assert "tiers/gaps.yaml:4: unknown key 'frequent_skips'" in message
    problems = [str(p) for p in engine.check() if p.path == "tiers/gaps.yaml"]
    assert len(problems) == 3 and problems[0].startswith("tiers/gaps.yaml:2:")
