"""Gaps: patterns in the log worth a process change, classified and remembered.

    findings = detect(metrics_answer, settings)           # what the thresholds flag, pure
    gaps = classify(findings, decisions["gap_classification"])
    report = remember(conn, gaps, now)                    # new / still open / resolved

Detection reads the metrics answer only, so a gap is always explained by numbers that
`tiergate metrics` shows too. Each gap has a stable key (kind, process, tier, step); the
``gaps`` table keeps when it was first and last seen, so a gap found again is reported as
still open, not as new, and one no longer found is marked resolved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from tiergate.definitions.decisions import Decision
from tiergate.errors import DefinitionError, TiergateError
from tiergate.log import format_time, utc
from tiergate.metrics.settings import MetricsSettings
from tiergate.store.tables import Gap

GAP_DECISION = "gap_classification"
#: The owner the table gives for "the catalog's owner of the gap's process".
PROCESS_OWNER = "process-owner"
_gaps = Gap.__table__  # type: ignore[attr-defined]

#: What each kind of gap usually asks of its owner (the feedback item's suggested action).
ACTIONS = {
    "gate_failure": "Compare the step's done_when schema with the evidence agents actually have; fix the schema "
                    "or say in the instructions exactly what evidence is needed.",
    "frequent_skip": "Decide whether the step is needed: remove it, or make it required.",
    "refusals": "Find which client or agent attempts the step out of order, and fix its integration or guidance "
                "(`tiergate guide RUN` shows the ready steps).",
    "rule_refusals": "The rules held: the step was attempted by actors it does not allow (kind, role or four "
                     "eyes). Decide whether the roles or the step's actors fit the work, or hand the step to "
                     "those it allows.",
    "timer_escalation": "Check the timer's duration against the real work, and who is free to act in time.",
    "slow_process": "Find the slow steps (time per step in `tiergate metrics`) and fix the process, the "
                    "staffing, or the catalog's expected_minutes if it is wrong.",
    "direct_door": "Someone works on the database directly although a server is in use: give them a token "
                   "(`tiergate tokens issue`) and the CLI's client mode (TIERGATE_URL, TIERGATE_TOKEN), and leave "
                   "write access to the database to the server's user alone (docs/operations.md).",
    "abandoned_runs": "Find why runs are left open: the process may not fit the work, or need a way to "
                      "cancel or close it properly.",
}


@dataclass
class Finding:
    """One pattern the thresholds flag, before it is classified."""

    kind: str
    process: str
    tier: int
    step: str | None
    occurrences: int
    measure: float
    threshold: float
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.process}:{self.tier}:{self.step or '-'}"


def detect(answer: dict[str, Any], settings: MetricsSettings) -> list[Finding]:
    """Every gap the thresholds of ``settings`` find in a metrics answer (docs/metrics.md)."""
    found: list[Finding] = []
    for process in answer["processes"]:
        pid, tier = process["process"], process["tier"]
        for step in process["steps"]:
            found.extend(_step_gaps(pid, tier, step, process["runs"], settings))
        time = process["time_to_complete"]
        slow = settings.slow_process
        ratio = time.get("median_over_expected")
        if ratio is not None and time["completed"] >= slow.min_completed and ratio > slow.median_over_expected:
            found.append(Finding(
                "slow_process", pid, tier, None, time["over_expected"], ratio, slow.median_over_expected,
                f"median time to completion is {time['median_minutes']} min, {ratio}x the expected "
                f"{time['expected_minutes']} min ({time['over_expected']} of {time['completed']} runs took longer "
                "than expected)",
                {"completed": time["completed"], "median_minutes": time["median_minutes"],
                 "expected_minutes": time["expected_minutes"], "over_expected": time["over_expected"]}))
        gone = settings.abandoned_runs
        abandoned, settled = process["outcomes"]["abandoned"], process["completion"]["settled"]
        if abandoned >= gone.min_abandoned and settled and abandoned / settled > gone.abandoned_share:
            found.append(Finding(
                "abandoned_runs", pid, tier, None, abandoned, round(abandoned / settled, 4), gone.abandoned_share,
                f"{abandoned} of {settled} settled runs were abandoned (left open past "
                f"{answer['settings']['abandoned_after'][f'tier{tier}']}x the expected "
                f"{time['expected_minutes']} min)",
                {"abandoned": abandoned, "settled": settled}))
    return found


def _step_gaps(pid: str, tier: int, step: dict[str, Any], runs: int, settings: MetricsSettings) -> list[Finding]:
    out: list[Finding] = []
    name = step["step"]
    where = f"step '{name}'" if name else "the run"
    gate = settings.gate_failure
    attempts, failures = step["agent_first_attempts"], step["agent_first_attempt_failures"]
    if attempts >= gate.min_first_attempts and failures / attempts > gate.first_attempt_failure_share:
        share = round(failures / attempts, 4)
        out.append(Finding("gate_failure", pid, tier, name, failures, share, gate.first_attempt_failure_share,
                           f"the gate of {where} fails on {failures} of {attempts} first attempts by agents "
                           f"({share:.0%})", {"first_attempts": attempts, "failed": failures,
                                              "gate_failures": step["gate_failures"]}))
    ready = step["ready"]
    skip = settings.frequent_skip
    if ready >= skip.min_ready and step["skipped"] / ready > skip.skip_share:
        share = round(step["skipped"] / ready, 4)
        out.append(Finding("frequent_skip", pid, tier, name, step["skipped"], share, skip.skip_share,
                           f"{where} is skipped {step['skipped']} of the {ready} times it became ready ({share:.0%})",
                           {"skipped": step["skipped"], "ready": ready}))
    refused = settings.refusals
    base = ready or runs
    if step["refusals"] >= refused.min_refusals and base and step["refusals"] / base > refused.refusals_per_ready:
        per = round(step["refusals"] / base, 4)
        by_rules = step["refusals_by_reason"]["wrong_actor"]
        # Mostly refusals the rules were right to make (wrong kind of actor, no role, four eyes):
        # nothing to fix in an agent's guidance; whether the rules fit the work is the owner's call.
        kind, why = (("rule_refusals", " by the step's rules on who may do it") if 2 * by_rules >= step["refusals"]
                     else ("refusals", ""))
        out.append(Finding(kind, pid, tier, name, step["refusals"], per, refused.refusals_per_ready,
                           f"{step['refusals']} attempts at {where} were refused{why} "
                           f"({per} per {'time it became ready' if ready else 'run'})",
                           {"refusals": step["refusals"], "by_agents": step["refusals_by"]["agent"],
                            "by_people": step["refusals_by"]["human"], "by_rules": by_rules, "ready": ready}))
    timer = settings.timer_escalation
    if step["escalations"] >= timer.min_escalations and base and step["escalations"] / base > timer.escalations_per_ready:
        per = round(step["escalations"] / base, 4)
        out.append(Finding("timer_escalation", pid, tier, name, step["escalations"], per,
                           timer.escalations_per_ready,
                           f"{where} escalated {step['escalations']} times ({per} per time it became ready)",
                           {"escalations": step["escalations"], "ready": ready}))
    direct = step.get("direct_door", 0)
    if direct >= settings.direct_door.min_steps:
        done = step["completed"] + step["skipped"]
        share = round(direct / done, 4) if done else None
        out.append(Finding("direct_door", pid, tier, name, direct, share, settings.direct_door.min_steps,
                           f"{where} was done {direct} times on the database directly, past the server",
                           {"direct_door": direct, "completed": step["completed"], "skipped": step["skipped"]}))
    return out


def classify(findings: list[Finding], decision: Decision | None,
             owners: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Each finding with the category and owner ``decisions/gap_classification.dmn`` gives it.

    The owner ``process-owner`` is the catalog's owner of the finding's process (``owners``).
    """
    if decision is None:
        raise DefinitionError(f"decisions/{GAP_DECISION}.dmn is missing or failed to load, so gaps cannot be "
                              "classified. Run `tiergate check`.", code="decision_missing",
                              details={"decision": GAP_DECISION})
    out = []
    for finding in findings:
        inputs = {"gap_kind": finding.kind, "occurrences": finding.occurrences, "tier": finding.tier}
        try:
            outputs, matched = decision.evaluate(inputs)
        except TiergateError as err:
            raise type(err)(f"decisions/{GAP_DECISION}.dmn failed on {inputs}: {err.message}", code=err.code,
                            details={"inputs": inputs, **err.details}) from None
        out.append({"key": finding.key, "kind": finding.kind, "process": finding.process, "tier": finding.tier,
                    "step": finding.step, "category": str(outputs.get("category")),
                    "owner": _owner(str(outputs.get("owner")), finding.process, owners or {}), "matched_rule": matched[0] if matched else None,
                    "occurrences": finding.occurrences, "measure": finding.measure,
                    "threshold": finding.threshold, "summary": finding.summary, "evidence": finding.evidence,
                    "action": ACTIONS.get(finding.kind, "")})
    return out


def _owner(owner: str, process: str, owners: dict[str, str]) -> str:
    if owner != PROCESS_OWNER:
        return owner
    return owners.get(process, owner)  # a process missing from the catalog keeps the placeholder


def remember(conn: Connection, gaps: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    """Store this detection: new gaps are inserted, known ones updated, missing ones resolved.

    Returns the gaps found, each with ``status`` ``new`` (first seen now), ``open`` (seen
    before), or ``reopened`` (resolved before, found again); and the gaps resolved now.
    """
    now = utc(now)
    known = {row.key: row for row in conn.execute(select(_gaps))}
    found_keys = set()
    for gap in gaps:
        found_keys.add(gap["key"])
        values = {"kind": gap["kind"], "process_id": gap["process"], "tier": gap["tier"], "step": gap["step"],
                  "category": gap["category"], "owner": gap["owner"], "matched_rule": gap["matched_rule"],
                  "occurrences": gap["occurrences"], "measure": gap["measure"], "threshold": gap["threshold"],
                  "summary": gap["summary"], "evidence": gap["evidence"], "last_seen": now}
        row = known.get(gap["key"])
        if row is None:
            conn.execute(insert(_gaps).values(key=gap["key"], first_seen=now, times_seen=1, resolved_at=None,
                                              **values))
            gap.update(status="new", first_seen=format_time(now), times_seen=1)
        else:
            conn.execute(update(_gaps).where(_gaps.c.id == row.id)
                         .values(times_seen=row.times_seen + 1, resolved_at=None, **values))
            gap.update(status="reopened" if row.resolved_at is not None else "open",
                       first_seen=format_time(row.first_seen), times_seen=row.times_seen + 1)
        gap["last_seen"] = format_time(now)
    resolved = []
    for key, row in known.items():
        if key not in found_keys and row.resolved_at is None:
            conn.execute(update(_gaps).where(_gaps.c.id == row.id).values(resolved_at=now))
            resolved.append({"key": key, "kind": row.kind, "process": row.process_id, "tier": row.tier,
                             "step": row.step, "category": row.category, "owner": row.owner,
                             "summary": row.summary, "first_seen": format_time(row.first_seen),
                             "last_seen": format_time(row.last_seen), "resolved_at": format_time(now)})
    order = {"new": 0, "reopened": 1, "open": 2}
    gaps.sort(key=lambda g: (order[g["status"]], g["category"], g["process"], g["tier"], g["step"] or "", g["kind"]))
    return {"gaps": gaps, "resolved": resolved,
            "counts": {"new": sum(g["status"] == "new" for g in gaps),
                       "reopened": sum(g["status"] == "reopened" for g in gaps),
                       "open": sum(g["status"] == "open" for g in gaps), "resolved": len(resolved)}}


def stored(conn: Connection, *, include_resolved: bool = False) -> list[dict[str, Any]]:
    """The gaps in the table (open ones unless ``include_resolved``), oldest first."""
    query = select(_gaps).order_by(_gaps.c.first_seen, _gaps.c.id)
    if not include_resolved:
        query = query.where(_gaps.c.resolved_at.is_(None))
    return [{"key": r.key, "kind": r.kind, "process": r.process_id, "tier": r.tier, "step": r.step,
             "category": r.category, "owner": r.owner, "matched_rule": r.matched_rule,
             "occurrences": r.occurrences, "measure": r.measure, "threshold": r.threshold, "summary": r.summary,
             "evidence": r.evidence, "action": ACTIONS.get(r.kind, ""), "first_seen": format_time(r.first_seen),
             "last_seen": format_time(r.last_seen), "times_seen": r.times_seen,
             "resolved_at": format_time(r.resolved_at) if r.resolved_at else None}
            for r in conn.execute(query)]
