"""Running one scenario file on a scenario engine (a throwaway database and a test clock).

Each scenario starts one run and plays its steps in order. The first step whose outcome differs
from what the file says fails the scenario, named by ``file:line``; the rest of it is not
played. What a scenario reached (steps, Tier 1 elements and flows, decision rules, send-backs)
is collected for coverage whether it passed or not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tiergate.bpmn.moves import PATH_TRACE
from tiergate.bpmn.timers import LITERALS, add_duration
from tiergate.definitions.decision_tests import CaseResult, CaseTally, same
from tiergate.definitions.problems import ProblemList
from tiergate.definitions.yamlfile import YamlDocument, load_yaml
from tiergate.engine import Engine, RunInfo
from tiergate.errors import (
    DefinitionError,
    GateFailedError,
    RefusedError,
    TiergateError,
)
from tiergate.scenarios.model import Action, Expect, Scenario, ScenarioFile

RUNNER_ACTOR = "human:scenario-runner"


class TestClock:
    """The scenario engine's clock: it stands still until a scenario says ``after``."""

    __test__ = False  # not a pytest class

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Hits:
    """What scenarios reached, per process id: steps, elements, flows (from, to) and rules per decision."""

    steps: dict[str, set[str]] = field(default_factory=dict)
    elements: dict[str, set[str]] = field(default_factory=dict)
    flows: dict[str, set[tuple[str | None, str]]] = field(default_factory=dict)
    sent_back: dict[str, set[str]] = field(default_factory=dict)
    rules: dict[str, set[str]] = field(default_factory=dict)

    def add(self, kind: str, key: str, value: Any) -> None:
        getattr(self, kind).setdefault(key, set()).add(value)


@dataclass
class FileReport(CaseTally):
    source: str
    process: str | None
    cases: list[CaseResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "process": self.process, "ok": self.ok,
                "passed": len(self.cases) - len(self.failed), "failed": len(self.failed),
                "failures": [{"scenario": c.name, "line": c.line, "at": f"{self.source}:{c.line}",
                              "message": c.message} for c in self.failed],
                "problems": self.problems}


class _Failed(Exception):
    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line, self.message = line, message


def process_of(stem: str, known: list[str]) -> str | None:
    """The process a scenario file is for: the longest known id its name is or starts with."""
    fits = [pid for pid in known if stem == pid or (stem.startswith(pid) and stem[len(pid)] in "-_.")]
    return max(fits, key=len) if fits else None


def run_file(engine: Engine, clock: TestClock, path: Path, shown: str, known: list[str], hits: Hits) -> FileReport:
    report = FileReport(source=shown, process=None)
    try:
        document = load_yaml(path)
        spec = ScenarioFile.model_validate(document.data)
    except DefinitionError as err:
        report.problems.append(f"{shown}:{err.details.get('line', 1)}: {err.details.get('problem', err.message)}")
        return report
    except ValidationError as err:
        found = ProblemList(shown, document)
        found.add_validation_error(err, document.data)
        report.problems.extend(str(p) for p in found)
        return report
    process = spec.process or process_of(path.name.split(".")[0], known)
    if process is None or process not in known:
        report.problems.append(f"{shown}:1: no process in the catalog matches this file. Name the file "
                               "<process-id>.yaml or <process-id>-<anything>.yaml, or give `process:`.")
        return report
    report.process = process
    for index, scenario in enumerate(spec.scenarios):
        ptr = f"/scenarios/{index}"
        trace: list[tuple[str | None, str]] = []
        started: list[str] = []
        token = PATH_TRACE.set(trace)
        try:
            _play(engine, clock, process, scenario, document, ptr, trace, started)
            report.cases.append(CaseResult(scenario.name, True, document.line_of(ptr)))
        except _Failed as failed:
            report.cases.append(CaseResult(scenario.name, False, failed.line, failed.message))
        finally:
            PATH_TRACE.reset(token)
        _collect(engine, process, started[0] if started else None, trace, hits)
    return report


def _play(engine: Engine, clock: TestClock, process: str, scenario: Scenario, document: YamlDocument, ptr: str,
          trace: list[tuple[str | None, str]], started: list[str]) -> None:
    clock.now = scenario.at
    try:
        run = engine.start(process, scenario.start, actor=scenario.actor)
    except TiergateError as err:
        where = f"{ptr}/start" if "start" in (document.data["scenarios"][int(ptr.rsplit('/', 1)[1])] or {}) else ptr
        raise _Failed(document.line_of(where), f"the run did not start: {err.message}") from None
    started.append(run.id)
    try:
        for number, action in enumerate(scenario.steps):
            line = document.line_of(f"{ptr}/steps/{number}")
            _act(engine, clock, run.id, scenario, action, line, trace)
    finally:
        _finish(engine, run.id)


def _finish(engine: Engine, run_id: str) -> None:
    """Cancel a run its scenario left open, so later timers do not fire it in other scenarios."""
    try:
        if engine.status(run_id).status == "active":
            engine.cancel(run_id, "scenario finished", actor=RUNNER_ACTOR)
    except TiergateError:
        pass


def _act(engine: Engine, clock: TestClock, run_id: str, scenario: Scenario, action: Action, line: int,
         trace: list[tuple[str | None, str]]) -> None:
    actor = action.actor or scenario.actor
    if action.kind == "after":
        assert action.after is not None
        if not LITERALS["timeDuration"].match(action.after.strip()):
            raise _Failed(line, f"after: '{action.after}' is not an ISO 8601 duration such as PT49H or P2D.")
        from tiergate.worker import (
            run_pass,  # the worker's own pass, on the scenario engine's test clock
        )

        clock.now = add_duration(clock.now, action.after)
        for fired in run_pass(engine):
            if fired.error and fired.run == run_id:
                raise _Failed(line, f"timers of run {run_id} did not fire: {fired.error}")
        return
    if action.kind == "expect":
        assert action.expect is not None
        _check(engine, run_id, action.expect, line, trace)
        return
    expected = "gate_fails" if action.gate_fails is not None else "refused" if action.refused is not None else None
    what = f"{action.kind} {action.complete or action.skip or action.message}"
    try:
        if action.kind == "complete":
            engine.complete(run_id, action.complete, action.evidence or {}, actor=actor)
        elif action.kind == "message":
            assert action.message is not None
            delivered = engine.message(action.message, action.correlate or {}, action.data or {}, actor=actor)
            if delivered.id != run_id:
                raise _Failed(line, f"{what}: went to run {delivered.id}, not to this scenario's run {run_id}.")
        else:
            assert action.skip is not None and action.reason is not None
            engine.skip(run_id, action.skip, action.reason, actor=actor)
    except GateFailedError as err:
        if expected != "gate_fails":
            raise _Failed(line, f"{what}: the gate refused the evidence: {err.message}") from None
        wanted = [action.gate_fails] if isinstance(action.gate_fails, str) else list(action.gate_fails or [])
        said = [f"{e.get('pointer', '')} {e.get('message', '')}" for e in err.details.get("errors", [])]
        missing = [w for w in wanted if not any(w in s for s in said)]
        if missing:
            raise _Failed(line, f"{what}: the gate failed, but not on {', '.join(missing)}: "
                                f"{'; '.join(said)}") from None
        return
    except RefusedError as err:
        if expected != "refused" or err.reason != action.refused:
            raise _Failed(line, f"{what}: refused ({err.reason}): {err.message}") from None
        return
    except TiergateError as err:
        raise _Failed(line, f"{what}: {err.code}: {err.message}") from None
    if expected is not None:
        want = f"the gate to fail on {action.gate_fails}" if expected == "gate_fails" else \
            f"a refusal ({action.refused})"
        raise _Failed(line, f"{what}: expected {want}, but it was accepted.")


def _check(engine: Engine, run_id: str, expect: Expect, line: int, trace: list[tuple[str | None, str]]) -> None:
    info: RunInfo = engine.status(run_id)
    wrong: list[str] = []
    if expect.status is not None and info.status != expect.status:
        wrong.append(f"status: expected {expect.status}, got {info.status}")
    if expect.ready is not None:
        ready = sorted(s.id for s in info.ready_steps)
        if ready != sorted(expect.ready):
            wrong.append(f"ready: expected {sorted(expect.ready)}, got {ready}")
    for state, wanted in (("done", expect.done), ("skipped", expect.skipped)):
        have = {s.id for s in info.steps if s.state == state}
        absent = [s for s in wanted or [] if s not in have]
        if absent:
            wrong.append(f"{state}: {', '.join(absent)} {'is' if len(absent) == 1 else 'are'} not {state} "
                         f"({state} now: {', '.join(sorted(have)) or 'none'})")
    for key, value in (expect.data or {}).items():
        if key not in info.data or not same(value, info.data[key]):
            wrong.append(f"data.{key}: expected {value!r}, got {info.data.get(key, '(missing)')!r}")
    log = engine.log(run_id)
    if expect.decisions:
        latest = {e["detail"].get("decision"): e["detail"].get("outputs", {}) for e in log
                  if e["event"] == "decision_evaluated"}
        for decision, outputs in expect.decisions.items():
            got = latest.get(decision)
            if got is None:
                wrong.append(f"decisions.{decision}: not evaluated in this run")
                continue
            for key, value in outputs.items():
                if key not in got or not same(value, got[key]):
                    wrong.append(f"decisions.{decision}.{key}: expected {value!r}, got {got.get(key, '(missing)')!r}")
    if expect.path is not None:
        reached = [target for _source, target in trace]
        missing = _not_in_order(expect.path, reached)
        if missing is not None:
            wrong.append(f"path: '{missing}' was not reached in this order; reached: {' > '.join(reached)}")
    if expect.events is not None:
        logged = [f"{e['event']} {e['step']}" if e["step"] else e["event"] for e in log]
        missing = _not_in_order(expect.events, logged, prefix=True)
        if missing is not None:
            wrong.append(f"events: '{missing}' is not in the log in this order; the log: {', '.join(logged)}")
    if wrong:
        raise _Failed(line, "; ".join(wrong))


def _not_in_order(wanted: list[str], seen: list[str], prefix: bool = False) -> str | None:
    """The first of ``wanted`` not found in ``seen`` after the ones before it, or None."""
    position = 0
    for item in wanted:
        while position < len(seen) and not (seen[position] == item or (prefix and " " not in item
                                                                        and seen[position].split(" ")[0] == item)):
            position += 1
        if position == len(seen):
            return item
        position += 1
    return None


def _collect(engine: Engine, process: str, run_id: str | None, trace: list[tuple[str | None, str]],
             hits: Hits) -> None:
    for source, target in trace:
        hits.add("elements", process, target)
        hits.add("flows", process, (source, target))
    if run_id is None:
        return
    for entry in engine.log(run_id):
        event, step, detail = entry["event"], entry["step"], entry["detail"]
        if event == "routed" and detail.get("matched_rule"):
            hits.add("rules", detail.get("decision", "tier_routing"), detail["matched_rule"])
        elif event == "decision_evaluated":
            for rule in detail.get("matched_rules", []):
                hits.add("rules", detail.get("decision"), rule)
        if step is None:
            continue
        if event == "step_completed" or (event == "step_skipped" and not entry["actor"].startswith("system:")):
            hits.add("steps", process, step)
        elif event == "sent_back":
            hits.add("steps", process, step)
            for target in detail.get("to", []):
                hits.add("sent_back", process, f"{step}>{target}")
