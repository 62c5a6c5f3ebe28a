"""Metrics per process, per tier and overall, from the execution log (definitions: docs/metrics.md).

    answer = compute_metrics(conn, scope, expected_minutes, settings)
    answer["processes"][0]["completion"]["rate"]

Counts are added up from the process level to the tier level and the total, so the three
levels always agree. Rates are rounded to four decimals, minutes to two; a rate with nothing
to divide by is null.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection

from tiergate.metrics.deviations import DEVIATION_KINDS
from datetime import timedelta

from tiergate.metrics.queries import Completions, LogQueries, StepCounts
from tiergate.metrics.scope import Scope
from tiergate.metrics.settings import MetricsSettings
from tiergate.metrics.waiting import begun_late

Key = tuple[str, int]                  # (process, tier)
StepKey = tuple[str, int, str | None]   # (process, tier, step)
TOP_FAILURE_STEPS = 10
STEP_EVENTS = ("step_ready", "step_completed", "step_skipped", "gate_failed", "refused", "escalated", "sent_back")


def rate(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 2)


@dataclass
class Tally:
    """Additive counts of one group of runs (a process in a tier, a tier, everything)."""

    runs: int = 0
    agent_runs: int = 0
    completed: int = 0
    cancelled: int = 0
    failed: int = 0
    abandoned: int = 0
    in_progress: int = 0
    intervened: int = 0
    runs_with_deviation: int = 0
    deviations: Counter[str] = field(default_factory=Counter)
    takeovers: int = 0
    human_cancels: int = 0
    runs_with_human_intervention: int = 0
    timed: int = 0
    over_expected: int = 0
    sent_back: int = 0

    def add(self, other: "Tally") -> None:
        for name, value in other.__dict__.items():
            if isinstance(value, Counter):
                self.deviations.update(value)
            else:
                setattr(self, name, getattr(self, name) + value)

    def to_dict(self) -> dict[str, Any]:
        settled = self.completed + self.cancelled + self.failed + self.abandoned
        clean = self.completed - self.intervened
        total_deviations = sum(self.deviations.values())
        return {
            "runs": self.runs,
            "agent_runs": self.agent_runs,
            "outcomes": {"completed": self.completed, "cancelled": self.cancelled, "failed": self.failed,
                         "abandoned": self.abandoned, "in_progress": self.in_progress},
            "completion": {"settled": settled, "rate": rate(self.completed, settled),
                           "rate_of_all": rate(self.completed, self.runs), "clean": clean,
                           "clean_rate": rate(clean, settled), "intervened": self.intervened,
                           "intervened_share": rate(self.intervened, self.completed)},
            "deviations": {"total": total_deviations, "per_run": rate(total_deviations, self.runs),
                           "runs_with_deviation": self.runs_with_deviation,
                           "run_share": rate(self.runs_with_deviation, self.runs),
                           "by_kind": {kind: {"count": self.deviations[kind],
                                              "per_run": rate(self.deviations[kind], self.runs)}
                                       for kind in DEVIATION_KINDS}},
            "time_to_complete": {"completed": self.timed, "over_expected": self.over_expected,
                                 "over_share": rate(self.over_expected, self.timed)},
            "rework": {"sent_back": self.sent_back, "per_run": rate(self.sent_back, self.runs)},
            "human_intervention": {"interventions": self.takeovers + self.human_cancels,
                                   "takeovers": self.takeovers, "cancels_of_agent_runs": self.human_cancels,
                                   "runs": self.runs_with_human_intervention,
                                   "rate": rate(self.runs_with_human_intervention, self.runs)},
        }


@dataclass
class StepTally:
    completed: StepCounts = field(default_factory=StepCounts)
    skipped: StepCounts = field(default_factory=StepCounts)
    gate_failed: StepCounts = field(default_factory=StepCounts)
    escalated: StepCounts = field(default_factory=StepCounts)
    ready: int = 0
    sent_back: int = 0
    refused: Counter[str] = field(default_factory=Counter)          # by actor kind
    refused_by_reason: Counter[str] = field(default_factory=Counter)  # by refusal group (deviations.REFUSAL_GROUPS)
    off_path: int = 0
    direct_door: int = 0
    failed_first: int = 0
    agent_done_after_failure: int = 0
    takeovers: int = 0
    #: per actor kind: (completions with a duration, median seconds, p90 seconds)
    times: dict[str, tuple[int, float | None, float | None]] = field(default_factory=dict)

    def to_dict(self, step: str | None) -> dict[str, Any]:
        done, skipped = self.completed, self.skipped
        first_attempts = done.of("agent") - self.agent_done_after_failure + self.failed_first
        timed = sum(n for n, _m, _p in self.times.values())
        by_kind = {}
        for kind in ("agent", "human", "system"):
            if kind not in self.times:
                continue
            n, median_s, p90_s = self.times[kind]
            by_kind[kind] = {"timed": n, "mean_minutes": minutes(done.seconds_by_kind.get(kind, 0.0) / n) if n else None,
                             "median_minutes": minutes(median_s), "p90_minutes": minutes(p90_s)}
        return {
            "step": step,
            "ready": self.ready,
            "completed": done.count,
            "completed_by": {kind: done.of(kind) for kind in ("agent", "human", "system")},
            "skipped": skipped.count - skipped.of("system"),
            "closed_unused": skipped.of("system"),
            "left_ready": max(0, self.ready - done.count - skipped.count - self.sent_back),
            "sent_back": self.sent_back,
            "gate_failures": self.gate_failed.count,
            "gate_failures_by": {"agent": self.gate_failed.of("agent"), "human": self.gate_failed.of("human")},
            "refusals": sum(self.refused.values()),
            "refusals_by": {"agent": self.refused["agent"], "human": self.refused["human"]},
            "refusals_by_reason": {"out_of_order": self.refused_by_reason["out_of_order"],
                                   "wrong_actor": self.refused_by_reason["wrong_actor"],
                                   "other": sum(self.refused.values()) - sum(self.refused_by_reason.values())},
            "escalations": self.escalated.count,
            "off_path": self.off_path,
            "direct_door": self.direct_door,
            "agent_first_attempts": first_attempts,
            "agent_first_attempt_failures": self.failed_first,
            "agent_first_attempt_failure_share": rate(self.failed_first, first_attempts),
            "takeovers": self.takeovers,
            "time": {"timed": timed,
                     "mean_minutes": minutes(sum(done.seconds_by_kind.values()) / timed) if timed else None,
                     "by_actor": by_kind},
        }


def completion_times(item: Completions | None, expected_minutes: int | None) -> dict[str, Any]:
    if item is None or not item.count:
        return {"expected_minutes": expected_minutes, "mean_minutes": None, "median_minutes": None,
                "p90_minutes": None, "median_over_expected": None}
    return {"expected_minutes": expected_minutes, "mean_minutes": minutes(item.total_seconds / item.count),
            "median_minutes": minutes(item.median), "p90_minutes": minutes(item.p90),
            "median_over_expected": (round(item.median / (expected_minutes * 60), 2)
                                     if item.median is not None and expected_minutes else None)}


def compute_metrics(conn: Connection, scope: Scope, catalog: dict[str, tuple[str, int]],
                    settings: MetricsSettings, queries: type[LogQueries] = LogQueries) -> dict[str, Any]:
    """Every metric of docs/metrics.md for the runs in ``scope``.

    ``catalog`` maps a process id to its (title, expected_minutes); processes missing from it
    are still measured, without time against expected or abandonment. ``queries`` counts the
    log itself (``LogQueries``) or reads its summary (``summary_queries.SummaryQueries``).
    """
    expected = {pid: minutes_ for pid, (_title, minutes_) in catalog.items()}
    stale_before = {(pid, tier): scope.now - timedelta(minutes=minutes_ * settings.abandoned_after.factor(tier))
                    for pid, minutes_ in expected.items() for tier in (1, 2, 3)}
    q = queries(conn, scope, stale_before, expected)
    try:
        return _compute(q, scope, catalog, settings)
    finally:
        q.close()


def _compute(q: LogQueries, scope: Scope, catalog: dict[str, tuple[str, int]],
             settings: MetricsSettings) -> dict[str, Any]:
    tallies: dict[Key, Tally] = defaultdict(Tally)
    steps: dict[StepKey, StepTally] = defaultdict(StepTally)

    stale: dict[Key, int] = {}
    for key, counts in q.run_counts().items():
        tallies[key].runs, tallies[key].agent_runs = counts["runs"], counts["agent_runs"]
        stale[key] = counts["stale"]
    durations = q.completions()
    for key, item in durations.items():
        tallies[key].completed = tallies[key].timed = item.count
        tallies[key].over_expected = item.over_expected
        stale[key] = stale.get(key, 0) - item.stale
    for key, ended in q.outcomes().items():
        group = tallies[key]
        group.cancelled, group.human_cancels, group.failed = ended.cancelled, ended.human_cancels, ended.failed
        stale[key] = stale.get(key, 0) - ended.stale_unfinished
    for key, runs in begun_late(q.conn, scope, q.stale_before).items():  # waiting for its start: not left
        stale[key] = stale.get(key, 0) - runs
    for key, group in tallies.items():
        # Old enough to be abandoned, and not completed, cancelled or failed: abandoned.
        open_runs = group.runs - group.completed - group.cancelled - group.failed
        group.abandoned = max(0, stale.get(key, 0))
        group.in_progress = open_runs - group.abandoned

    for (event, process, tier, step), entries in q.step_counts(STEP_EVENTS).items():
        tally, totals = steps[(process, tier, step)], tallies[(process, tier)]
        if event == "step_ready":
            tally.ready = entries.count
        elif event == "step_completed":
            tally.completed = entries
        elif event == "step_skipped":
            tally.skipped = entries
            totals.deviations["skipped"] += entries.count - entries.of("system")
        elif event == "gate_failed":
            tally.gate_failed = entries
            totals.deviations["gate_failed"] += entries.count
        elif event == "refused":
            tally.refused.update(entries.by_kind)
            totals.deviations["refused_other"] += entries.count   # less the kinds counted below
        elif event == "escalated":
            tally.escalated = entries
            totals.deviations["escalated"] += entries.count
        elif event == "sent_back":  # rework, not a deviation: a review said no, as the checklist allows
            tally.sent_back = entries.count
            totals.sent_back += entries.count
    for (kind, process, tier, step), refused in q.refusals().items():
        tallies[(process, tier)].deviations[kind] += refused.count
        steps[(process, tier, step)].refused_by_reason[kind] += refused.count
        tallies[(process, tier)].deviations["refused_other"] -= refused.count
    for (process, tier, step), count in q.off_path().items():
        steps[(process, tier, step)].off_path += count
        tallies[(process, tier)].deviations["off_path"] += count
    for (process, tier, step), count in q.direct_door().items():
        steps[(process, tier, step)].direct_door += count
        tallies[(process, tier)].deviations["direct_door"] += count
    for key, flags in q.flagged_runs().items():
        tallies[key].runs_with_deviation = flags["runs_with_deviation"]
        tallies[key].intervened = flags["intervened"]

    for step_key, values in q.failed_gates().items():
        steps[step_key].failed_first = values["failed_first"]
        steps[step_key].agent_done_after_failure = values["agent_done_after_failure"]
        steps[step_key].takeovers = values["takeovers"]
        tallies[(step_key[0], step_key[1])].takeovers += values["takeovers"]
    for key, runs in q.human_intervened_runs().items():
        tallies[key].runs_with_human_intervention = runs

    groups = {(p, t, s, kind): n for (p, t, s), tally in steps.items() for kind, n in tally.completed.by_kind.items()}
    for (process, tier, step, kind), step_times in q.step_times(groups).items():
        steps[(process, tier, step)].times[kind] = step_times

    return _assemble(scope, catalog, settings, tallies, steps, durations, q.step_order())


def _assemble(scope: Scope, catalog: dict[str, tuple[str, int]], settings: MetricsSettings,
              tallies: dict[Key, Tally], steps: dict[StepKey, StepTally], durations: dict[Key, Completions],
              order: dict[Key, list[str]]) -> dict[str, Any]:
    keys = sorted(k for k, t in tallies.items() if t.runs)
    total = Tally()
    by_tier: dict[int, Tally] = defaultdict(Tally)
    processes = []
    for key in keys:
        process, tier = key
        tally = tallies[key]
        total.add(tally)
        by_tier[tier].add(tally)
        info = tally.to_dict()
        title, expected_minutes = catalog.get(process, (None, None))
        info["time_to_complete"].update(completion_times(durations.get(key), expected_minutes))
        known = order.get(key, [])
        here = [s for (p, t, s) in steps if (p, t) == key]
        ordered = [s for s in known if s in here] + sorted((s for s in here if s not in known), key=lambda s: s or "")
        processes.append({"process": process, "tier": tier, "title": title, "in_catalog": process in catalog,
                          **info, "steps": [steps[(process, tier, s)].to_dict(s) for s in ordered]})
    failure_steps = sorted(
        ({"process": p["process"], "tier": p["tier"], "step": s["step"], "gate_failures": s["gate_failures"],
          "refusals": s["refusals"], "failures": s["gate_failures"] + s["refusals"],
          "by_agents": s["gate_failures_by"]["agent"] + s["refusals_by"]["agent"],
          "by_people": s["gate_failures_by"]["human"] + s["refusals_by"]["human"]}
         for p in processes for s in p["steps"] if s["gate_failures"] + s["refusals"]),
        key=lambda f: (-f["failures"], f["process"], f["tier"], f["step"] or ""))[:TOP_FAILURE_STEPS]
    for item_ in failure_steps:
        item_["agent_share"] = rate(item_["by_agents"], item_["failures"])
    return {
        "scope": scope.to_dict(),
        "settings": {"abandoned_after": settings.abandoned_after.model_dump()},
        "totals": total.to_dict(),
        "tiers": [{"tier": tier, **by_tier[tier].to_dict()} for tier in sorted(by_tier)],
        "processes": processes,
        "failure_steps": failure_steps,
    }
