"""Metrics from a log built through the real Engine with a controlled clock, every number checked by hand.

The story (t0 = Monday 2025-01-06 09:00 UTC; "demo" is tests/support.py's checklist: gather,
an optional extra, and a review by a lead who did not gather; expected 15 minutes; "notes" is a
Tier 3 process, expected 10 minutes; now = t0 + 4h30):

    R1 agent, t0        gather by the agent at +4, skips extra at +5, alice reviews at +12; the
                        run later gets an escalation and an off-path timer entry on review
    R2 agent, t0+1h     gather +6, extra +7, bob reviews +20 (over the expected 15 minutes): clean
    R3 agent, t0+2h     the agent fails gather's gate at +1 and +2, alice takes it over at +5 and
                        skips extra at +7; at +8 the agent tries review (people only), at +9 alice
                        tries it (she gathered: four eyes); bob reviews at +10
    R4 alice, t0+3h     tries review at +1 (not ready), gathers at +3, cancels at +4
    R5 agent, t0+4h     tries to skip gather at +1 (required), fails its gate at +1.5, completes it
                        at +2, then nothing: in progress (30 minutes old, under 3 x 15)
    R6 agent, t0+0h30   nothing after the start: abandoned (4 hours old)
    R7 agent, t0+3h30   bob cancels it at +5: a person stepped into an agent's run
    N1 agent, t0+1h     notes, closed after 8 minutes
    N2 agent, t0+2h     notes, never closed: abandoned (2.5 hours, over 1 x 10 minutes)
"""

from __future__ import annotations

import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import pytest

from support import DEMO, REPO, HomeBuilder
from tiergate import log as execution_log
from tiergate.actors import SYSTEM
from tiergate.engine import Engine
from tiergate.errors import GateFailedError, NotFoundError, RefusedError, UsageError
from tiergate.log import LogEvent
from tiergate.store import runs as store

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=timezone.utc)
NOW = T0 + timedelta(hours=4, minutes=30)
GOOD = {"summary": "Payslip totals are off by one cent", "severity": "S2"}
BAD = {"summary": "short", "severity": "S9"}

CATALOG = """\
processes:
  - id: demo
    title: Demo checklist
    area: testing
    owner: lead
    expected_minutes: 15
    facts: {compliance_critical: false, touches_live_systems: false, client_data: false, structured: true}
  - id: notes
    title: Meeting notes
    area: testing
    owner: lead
    expected_minutes: 10
    facts: {compliance_critical: false, touches_live_systems: false, client_data: false, structured: false}
"""


def metrics_home(root: Path) -> HomeBuilder:
    """demo (Tier 2) and notes (Tier 3), the platform's gap classification, default thresholds."""
    home = HomeBuilder(root)
    home.checklist("demo", DEMO, catalog=False)
    home.write("tiers/catalog.yaml", CATALOG)
    home.write("tiers/conventions/notes.md.j2", "Write the notes of the meeting. Close the run with the notes.\n")
    for relative in ("decisions/gap_classification.dmn", "decisions/tests/gap_classification.yaml"):
        (home.root / relative).write_bytes((REPO / relative).read_bytes())
    return home


class Story:
    """Drives the Engine through the runs above, moving the clock between attempts."""

    def __init__(self, engine: Engine, clock: list[datetime]):
        self.engine, self.clock = engine, clock
        self.runs: dict[str, str] = {}

    def at(self, start: datetime, minutes: float) -> "Story":
        self.clock[0] = start + timedelta(minutes=minutes)
        return self

    def start(self, name: str, process: str, start: datetime, actor: str, data: dict[str, Any]) -> None:
        self.clock[0] = start
        self.runs[name] = self.engine.start(process, data, actor=actor).id

    def refused(self, action: Callable[[], Any], reason: str) -> None:
        with pytest.raises(RefusedError) as err:
            action()
        assert err.value.reason == reason

    def gate_fails(self, run: str, step: str, actor: str) -> None:
        with pytest.raises(GateFailedError):
            self.engine.complete(self.runs[run], step, BAD, actor=actor)

    def append(self, run: str, events: list[LogEvent]) -> None:
        """Entries a Tier 1 runner writes (escalations, off-path marks), through the log module."""
        with self.engine.db.write() as conn:
            record = store.get_run(conn, self.runs[run])
            assert record is not None
            assert execution_log.append_detached(conn, record.head, events, self.clock[0])


def tell_the_story(engine: Engine, clock: list[datetime]) -> Story:
    s, e = Story(engine, clock), engine
    agent, alice, bob = "agent:bot", "human:alice", "human:bob"
    ticket = lambda n: {"ticket_id": f"T-{n}"}  # noqa: E731

    r1 = T0
    s.start("R1", "demo", r1, agent, ticket(1))
    s.at(r1, 4).engine.complete(s.runs["R1"], "gather", GOOD, actor=agent)
    s.at(r1, 5).engine.skip(s.runs["R1"], "extra", "nothing extra to check", actor=agent)
    s.at(r1, 12).engine.complete(s.runs["R1"], "review", {"approved": True}, actor=alice)
    s.at(r1, 13).append("R1", [LogEvent("escalated", SYSTEM, step="review", detail={"timer": "review-sla"}),
                               LogEvent("timer_fired", SYSTEM, step="review",
                                        detail={"timer": "review-sla", "off_path": True})])

    r2 = T0 + timedelta(hours=1)
    s.start("R2", "demo", r2, agent, ticket(2))
    s.at(r2, 6).engine.complete(s.runs["R2"], "gather", GOOD, actor=agent)
    s.at(r2, 7).engine.complete(s.runs["R2"], "extra", {"note": "checked the history"}, actor=agent)
    s.at(r2, 20).engine.complete(s.runs["R2"], "review", {"approved": True}, actor=bob)

    r3 = T0 + timedelta(hours=2)
    s.start("R3", "demo", r3, agent, ticket(3))
    s.at(r3, 1).gate_fails("R3", "gather", agent)
    s.at(r3, 2).gate_fails("R3", "gather", agent)
    s.at(r3, 5).engine.complete(s.runs["R3"], "gather", GOOD, actor=alice)
    s.at(r3, 7).engine.skip(s.runs["R3"], "extra", "not needed", actor=alice)
    s.at(r3, 8).refused(lambda: e.complete(s.runs["R3"], "review", {"approved": True}, actor=agent),
                        "actor_not_allowed")
    s.at(r3, 9).refused(lambda: e.complete(s.runs["R3"], "review", {"approved": True}, actor=alice), "same_actor")
    s.at(r3, 10).engine.complete(s.runs["R3"], "review", {"approved": True}, actor=bob)

    r4 = T0 + timedelta(hours=3)
    s.start("R4", "demo", r4, alice, ticket(4))
    s.at(r4, 1).refused(lambda: e.complete(s.runs["R4"], "review", {"approved": True}, actor=alice), "not_ready")
    s.at(r4, 3).engine.complete(s.runs["R4"], "gather", GOOD, actor=alice)
    s.at(r4, 4).engine.cancel(s.runs["R4"], "raised twice", actor=alice)

    r5 = T0 + timedelta(hours=4)
    s.start("R5", "demo", r5, agent, ticket(5))
    s.at(r5, 1).refused(lambda: e.skip(s.runs["R5"], "gather", "no time", actor=agent), "not_optional")
    s.at(r5, 1.5).gate_fails("R5", "gather", agent)
    s.at(r5, 2).engine.complete(s.runs["R5"], "gather", GOOD, actor=agent)

    s.start("R6", "demo", T0 + timedelta(minutes=30), agent, ticket(6))

    r7 = T0 + timedelta(hours=3, minutes=30)
    s.start("R7", "demo", r7, agent, ticket(7))
    s.at(r7, 5).engine.cancel(s.runs["R7"], "customer withdrew the ticket", actor=bob)

    n1 = T0 + timedelta(hours=1)
    s.start("N1", "notes", n1, agent, {})
    s.at(n1, 8).engine.complete(s.runs["N1"], None, {"notes": "decided to ship"}, actor=agent)
    s.start("N2", "notes", T0 + timedelta(hours=2), agent, {})
    clock[0] = NOW
    return s


@pytest.fixture
def story(tmp_path: Path, make_engine: Callable[..., Engine]) -> tuple[Engine, Story]:
    clock = [T0]
    engine = make_engine(metrics_home(tmp_path / "home"), clock=lambda: clock[0])
    return engine, tell_the_story(engine, clock)


def by_process(answer: dict[str, Any], process: str) -> dict[str, Any]:
    return next(p for p in answer["processes"] if p["process"] == process)


def by_step(process: dict[str, Any], step: str) -> dict[str, Any]:
    return next(s for s in process["steps"] if s["step"] == step)


def kinds(group: dict[str, Any]) -> dict[str, int]:
    return {kind: v["count"] for kind, v in group["deviations"]["by_kind"].items()}


def test_demo_process_numbers_by_hand(story: tuple[Engine, Story]) -> None:
    engine, _ = story
    demo = by_process(engine.metrics(), "demo")
    assert (demo["tier"], demo["title"], demo["runs"], demo["agent_runs"]) == (2, "Demo checklist", 7, 6)
    assert demo["outcomes"] == {"completed": 3, "cancelled": 2, "failed": 0, "abandoned": 1, "in_progress": 1}
    # settled = 3 completed + 2 cancelled + 1 abandoned; R2 is the only clean completion.
    assert demo["completion"] == {"settled": 6, "rate": 0.5, "rate_of_all": round(3 / 7, 4), "clean": 1,
                                  "clean_rate": round(1 / 6, 4),
                                  "intervened": 2, "intervened_share": round(2 / 3, 4)}
    assert kinds(demo) == {"out_of_order": 1, "wrong_actor": 2, "refused_other": 1, "gate_failed": 3,
                           "skipped": 2, "escalated": 1, "off_path": 1, "direct_door": 0}
    assert demo["deviations"]["total"] == 11 and demo["deviations"]["per_run"] == round(11 / 7, 4)
    assert demo["deviations"]["by_kind"]["gate_failed"]["per_run"] == round(3 / 7, 4)
    # R1, R3, R4 and R5 deviated.
    assert (demo["deviations"]["runs_with_deviation"], demo["deviations"]["run_share"]) == (4, round(4 / 7, 4))
    # R1 12 min, R2 20 min, R3 10 min: median 12, p90 (nearest rank 3 of 3) 20, one run over 15.
    assert demo["time_to_complete"] == {"completed": 3, "over_expected": 1, "over_share": round(1 / 3, 4),
                                        "expected_minutes": 15, "mean_minutes": 14.0, "median_minutes": 12.0,
                                        "p90_minutes": 20.0, "median_over_expected": 0.8}
    # Alice took gather over in R3; bob cancelled the agent's R7 (alice cancelling her own R4 is not one).
    assert demo["human_intervention"] == {"interventions": 2, "takeovers": 1, "cancels_of_agent_runs": 1,
                                          "runs": 2, "rate": round(2 / 7, 4)}


def test_demo_steps_by_hand(story: tuple[Engine, Story]) -> None:
    engine, _ = story
    demo = by_process(engine.metrics(), "demo")
    assert [s["step"] for s in demo["steps"]] == ["gather", "extra", "review"]
    gather = by_step(demo, "gather")
    # Ready in all seven runs; done in R1, R2, R5 by the agent and R3, R4 by people; R6 and R7 never got past it.
    assert (gather["ready"], gather["completed"], gather["completed_by"], gather["skipped"], gather["left_ready"]) == \
        (7, 5, {"agent": 3, "human": 2, "system": 0}, 0, 2)
    assert (gather["gate_failures"], gather["gate_failures_by"], gather["refusals"], gather["refusals_by"]) == \
        (3, {"agent": 3, "human": 0}, 1, {"agent": 1, "human": 0})
    # Agents' first attempts: R1, R2 (passed), R3 (failed, taken over), R5 (failed, then done by the agent).
    assert (gather["agent_first_attempts"], gather["agent_first_attempt_failures"],
            gather["agent_first_attempt_failure_share"], gather["takeovers"]) == (4, 2, 0.5, 1)
    # Agent: 4, 6 and 2 minutes; people: 5 (R3) and 3 (R4) minutes.
    assert gather["time"] == {"timed": 5, "mean_minutes": 4.0, "by_actor": {
        "agent": {"timed": 3, "mean_minutes": 4.0, "median_minutes": 4.0, "p90_minutes": 6.0},
        "human": {"timed": 2, "mean_minutes": 4.0, "median_minutes": 4.0, "p90_minutes": 5.0}}}

    extra = by_step(demo, "extra")
    # Ready once gather was done (R1-R5); done in R2, skipped in R1 and R3; R4 was cancelled and R5 waits.
    assert (extra["ready"], extra["completed"], extra["skipped"], extra["closed_unused"], extra["left_ready"]) == \
        (5, 1, 2, 0, 2)
    assert extra["time"]["by_actor"] == {"agent": {"timed": 1, "mean_minutes": 1.0, "median_minutes": 1.0,
                                                   "p90_minutes": 1.0}}

    review = by_step(demo, "review")
    assert (review["ready"], review["completed"], review["completed_by"], review["left_ready"]) == \
        (3, 3, {"agent": 0, "human": 3, "system": 0}, 0)
    # The agent (wrong kind) and alice (four eyes) in R3; alice too early in R4.
    assert (review["refusals"], review["refusals_by"], review["escalations"], review["off_path"]) == \
        (3, {"agent": 1, "human": 2}, 1, 1)
    # Two of them were the rules on who may act (wrong kind, four eyes), one was out of order.
    assert review["refusals_by_reason"] == {"out_of_order": 1, "wrong_actor": 2, "other": 0}
    # Ready at +5, +7, +7; reviewed at +12, +20, +10: 7, 13 and 3 minutes.
    assert review["time"]["by_actor"]["human"] == {"timed": 3, "mean_minutes": 7.67, "median_minutes": 7.0,
                                                   "p90_minutes": 13.0}
    assert review["agent_first_attempts"] == 0 and review["agent_first_attempt_failure_share"] is None


def test_tier3_tiers_and_totals_by_hand(story: tuple[Engine, Story]) -> None:
    engine, _ = story
    answer = engine.metrics()
    notes = by_process(answer, "notes")
    assert (notes["tier"], notes["runs"], notes["outcomes"]) == (3, 2, {"completed": 1, "cancelled": 0, "failed": 0,
                                                                       "abandoned": 1, "in_progress": 0})
    assert notes["completion"]["rate"] == 0.5 and notes["completion"]["clean_rate"] == 0.5
    assert notes["time_to_complete"]["median_minutes"] == 8.0 and notes["time_to_complete"]["over_expected"] == 0
    work = by_step(notes, "work")
    assert (work["ready"], work["completed"], work["left_ready"]) == (2, 1, 1)
    assert [t["tier"] for t in answer["tiers"]] == [2, 3]
    assert answer["tiers"][0]["runs"] == 7 and answer["tiers"][1]["runs"] == 2
    totals = answer["totals"]
    assert (totals["runs"], totals["agent_runs"]) == (9, 8)
    assert totals["outcomes"] == {"completed": 4, "cancelled": 2, "failed": 0, "abandoned": 2, "in_progress": 1}
    assert totals["completion"] == {"settled": 8, "rate": 0.5, "rate_of_all": round(4 / 9, 4), "clean": 2,
                                    "clean_rate": 0.25, "intervened": 2,
                                    "intervened_share": 0.5}
    assert totals["deviations"]["total"] == 11 and totals["deviations"]["per_run"] == round(11 / 9, 4)
    assert totals["time_to_complete"] == {"completed": 4, "over_expected": 1, "over_share": 0.25}
    assert totals["human_intervention"]["rate"] == round(2 / 9, 4)
    assert answer["scope"] == {"process": None, "tier": None, "since": None, "as_of": "2025-01-06T13:30:00Z"}
    # The steps that fail most: gather (3 gate failures, 1 refusal), then review (3 refusals).
    assert [(f["step"], f["gate_failures"], f["refusals"], f["agent_share"]) for f in answer["failure_steps"]] == \
        [("gather", 3, 1, 1.0), ("review", 0, 3, round(1 / 3, 4))]


def test_since_counts_the_runs_started_since(story: tuple[Engine, Story]) -> None:
    engine, _ = story
    answer = engine.metrics(since="2025-01-06T11:00:00Z")   # R3, R4, R5, R7 and N2
    demo = by_process(answer, "demo")
    assert (demo["runs"], demo["outcomes"]) == (4, {"completed": 1, "cancelled": 2, "failed": 0, "abandoned": 0,
                                                    "in_progress": 1})
    assert kinds(demo) == {"out_of_order": 1, "wrong_actor": 2, "refused_other": 1, "gate_failed": 3,
                           "skipped": 1, "escalated": 0, "off_path": 0, "direct_door": 0}
    gather = by_step(demo, "gather")
    assert (gather["ready"], gather["completed"], gather["left_ready"], gather["agent_first_attempts"]) == (4, 3, 1, 2)
    # Ranked in the database on this path: the agent's 2 minutes (R5); alice's 5 and 3.
    assert gather["time"]["by_actor"] == {
        "agent": {"timed": 1, "mean_minutes": 2.0, "median_minutes": 2.0, "p90_minutes": 2.0},
        "human": {"timed": 2, "mean_minutes": 4.0, "median_minutes": 4.0, "p90_minutes": 5.0}}
    assert demo["time_to_complete"]["median_minutes"] == 10.0
    assert by_process(answer, "notes")["runs"] == 1
    assert answer["scope"]["since"] == "2025-01-06T11:00:00Z"


def test_since_answers_for_few_runs_and_for_most(story: tuple[Engine, Story]) -> None:
    """Each start time of the story as --since, from one run in scope to all nine: SQLite reads a
    few runs by run and many by event (sql.QueryBase._broad_scope); both agree with the log."""
    engine, _ = story
    log = engine.log()
    starts = sorted({e["at"] for e in log if e["event"] == "started"})
    in_scope = []
    for since in starts:
        runs = {e["run"] for e in log if e["event"] == "started" and e["at"] >= since}
        in_scope.append(len(runs))
        answer = engine.metrics(since=since)
        assert answer["totals"]["runs"] == len(runs), since
        for process in answer["processes"]:
            for step in process["steps"]:
                mine = [e for e in log if e["run"] in runs and e["step"] == step["step"]
                        and e["process"] == process["process"]]
                assert step["ready"] == sum(e["event"] == "step_ready" for e in mine), (since, step["step"])
                assert step["completed"] == sum(e["event"] == "step_completed" for e in mine), (since, step["step"])
        gate_failures = sum(e["event"] == "gate_failed" for e in log if e["run"] in runs)
        assert sum(kinds(p)["gate_failed"] for p in answer["processes"]) == gate_failures, since
    assert in_scope[0] == 9 and in_scope[-1] * 3 < 9  # all of them, and few enough to be read by run


def test_process_and_tier_filters(story: tuple[Engine, Story]) -> None:
    engine, _ = story
    only_notes = engine.metrics(tier=3)
    assert [p["process"] for p in only_notes["processes"]] == ["notes"] and only_notes["totals"]["runs"] == 2
    only_demo = engine.metrics(process="demo")
    assert [p["process"] for p in only_demo["processes"]] == ["demo"]
    assert kinds(only_demo["totals"]) == kinds(by_process(engine.metrics(), "demo"))
    assert by_step(by_process(only_demo, "demo"), "review")["refusals"] == 3
    assert engine.metrics(process="demo", tier=3)["processes"] == []


def test_abandonment_follows_the_settings_file(story: tuple[Engine, Story]) -> None:
    engine, _ = story
    (engine.home.root / "tiers" / "gaps.yaml").write_text("abandoned_after:\n  tier2: 20\n  tier3: 20\n")
    demo, notes = by_process(engine.metrics(), "demo"), by_process(engine.metrics(), "notes")
    # 20 x 15 minutes = 5 hours: R6 (4 hours old) is in progress again; N2 too (20 x 10 minutes).
    assert (demo["outcomes"]["abandoned"], demo["outcomes"]["in_progress"]) == (0, 2)
    assert (notes["outcomes"]["abandoned"], notes["outcomes"]["in_progress"]) == (0, 1)
    assert demo["completion"]["settled"] == 5 and demo["completion"]["rate"] == 0.6


def test_failed_runs_are_counted_as_failed(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    """A decide step whose decision cannot answer fails the run (Tier 2)."""
    home = HomeBuilder(tmp_path / "home")
    home.checklist("decider", textwrap.dedent("""\
        id: decider
        title: Decider
        owner: lead
        expected_minutes: 5
        steps:
          - id: ask
            title: Ask
            done_when: {type: object, required: [size], properties: {size: {type: integer}}}
          - id: choose
            title: Choose
            decide: sizing
        """))
    home.write("decisions/sizing.dmn", _SIZING_DMN)
    home.write("decisions/tests/sizing.yaml", "decision: sizing\ncases:\n  - name: small\n    inputs: {size: 1}\n"
                                              "    expect: {band: small}\n")
    clock = [T0]
    engine = make_engine(home, clock=lambda: clock[0])
    run = engine.start("decider", {}, actor="agent:bot")
    clock[0] = T0 + timedelta(minutes=1)
    engine.complete(run.id, "ask", {"size": 500}, actor="agent:bot")   # no rule for 500: the run fails
    assert engine.status(run.id).status == "failed"
    clock[0] = T0 + timedelta(days=1)
    answer = by_process(engine.metrics(), "decider")
    assert answer["outcomes"] == {"completed": 0, "cancelled": 0, "failed": 1, "abandoned": 0, "in_progress": 0}
    assert answer["completion"]["settled"] == 1 and answer["completion"]["rate"] == 0.0
    # A failure is no deviation, but it is counted when a completed run needed intervention.
    assert answer["deviations"]["total"] == 0


_SIZING_DMN = """\
<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="d" name="Sizing" namespace="urn:test">
  <decision id="sizing" name="Sizing">
    <decisionTable id="t" hitPolicy="FIRST">
      <input id="i1" label="size"><inputExpression id="e1" typeRef="number"><text>size</text></inputExpression></input>
      <output id="o1" name="band" typeRef="string"/>
      <rule id="r1"><inputEntry id="r1i"><text>&lt; 10</text></inputEntry><outputEntry id="r1o"><text>"small"</text></outputEntry></rule>
    </decisionTable>
  </decision>
</definitions>
"""


def test_bad_input_is_refused_with_a_clear_error(story: tuple[Engine, Story]) -> None:
    engine, _ = story
    with pytest.raises(UsageError) as err:
        engine.metrics(since="last tuesday")
    assert err.value.code == "invalid_since" and "YYYY-MM-DD" in err.value.message
    with pytest.raises(UsageError) as err:
        engine.metrics(tier=4)
    assert "Use --tier 1, 2 or 3" in err.value.message
    with pytest.raises(NotFoundError) as nf:
        engine.metrics(process="no-such-process")
    assert "is not in the catalog" in nf.value.message


def test_an_empty_log_has_no_rates(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(metrics_home(tmp_path / "home"), clock=lambda: NOW)
    answer = engine.metrics()
    assert answer["processes"] == [] and answer["tiers"] == [] and answer["failure_steps"] == []
    assert answer["totals"]["runs"] == 0 and answer["totals"]["completion"]["rate"] is None
    assert engine.metrics(process="demo")["processes"] == []   # in the catalog, no runs yet: not an error
