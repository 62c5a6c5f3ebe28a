"""The checks `tiergate check` runs on a Tier 1 file, each problem at its line and element.

``tiergate.bpmn.definition.load_process`` runs them in order; each adds ``Problem``s to a
``FileCheck``. What the checks refuse is what SpiffWorkflow cannot run safely or tiergate cannot
drive (no message channel, no external services), or what would deadlock or be silently wrong.
The whole document's checks are in ``tiergate.bpmn.document_checks``, the expressions' and the
timers' in ``tiergate.bpmn.expression_checks``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tiergate.bpmn import implicit, loopjoin
# The whole document's checks, re-exported (``tiergate.bpmn.definition`` runs ``check_document``).
from tiergate.bpmn.document_checks import check_document, correlation_expressions  # noqa: F401
from tiergate.bpmn.expression_checks import _check_expression, _check_schedule, _check_timer
from tiergate.bpmn.model import Node, ProcessModel
from tiergate.bpmn.steps import ENGINE, KINDS, parse_gate, resolve_lane
from tiergate.definitions.checklists import _check_schema, _collect_resources
from tiergate.definitions.decisions import Decision
from tiergate.definitions.models import Roles
from tiergate.definitions.problems import Problem, ProblemList

UNSUPPORTED = {
    "complexGateway": "complex gateways are not supported; use exclusive, inclusive or parallel gateways",
}
UNSUPPORTED_EVENTS = {
    "conditionalEventDefinition": "conditional events are not supported; use a gateway condition",
    "compensateEventDefinition": "compensation events are not supported",
    "linkEventDefinition": "link events are not supported; draw the sequence flow",
}
class AtLine(ProblemList):
    """Problems about one element: every one is reported at the element's line."""

    def __init__(self, display_path: str, line: int, element: str):
        super().__init__(display_path)
        self.line = line
        self.element = element

    def add(self, ptr: str, message: str, *, severity: str = "error", line: int | None = None) -> None:  # type: ignore[override]
        super().add(ptr, f"{self.element}: {message}", severity=severity,  # type: ignore[arg-type]
                    line=self.line if line is None else line)


class FileCheck:
    def __init__(self, shown: str, model: ProcessModel):
        self.shown = shown
        self.model = model
        self.problems: list[Problem] = []
        #: A process shipped inside tiergate: its steps may be the engine's own (actors: system).
        self.builtin = False

    def error(self, line: int, element: str | None, message: str, severity: str = "error") -> None:
        prefix = f"{element}: " if element else ""
        self.problems.append(Problem(self.shown, line, prefix + message, severity))  # type: ignore[arg-type]

    @property
    def has_errors(self) -> bool:
        return any(p.severity == "error" for p in self.problems)


def check_elements(check: FileCheck) -> None:
    model = check.model
    for node in model.nodes.values():
        if node.kind in UNSUPPORTED:
            check.error(node.line, node.id, UNSUPPORTED[node.kind] + ".")
        for event in node.event_definitions:
            if event in UNSUPPORTED_EVENTS:
                check.error(node.line, node.id, UNSUPPORTED_EVENTS[event] + ".")
        for what, text, line in node.loop_expressions:
            _check_expression(check, text, "eval", line, node.id, what)
        top_level_message_start = node.kind == "startEvent" and node.container == model.id \
            and bool(node.event_definitions) and set(node.event_definitions) == {"messageEventDefinition"}
        top_level_timer_start = node.kind == "startEvent" and node.container == model.id \
            and list(node.event_definitions) == ["timerEventDefinition"]
        top_level_signal_start = node.kind == "startEvent" and node.container == model.id \
            and list(node.event_definitions) == ["signalEventDefinition"]
        if top_level_signal_start and not node.signal:
            check.error(node.line, node.id, "the signal start event names no signal: give its "
                        "signalEventDefinition a signalRef to a <bpmn:signal> with a name, the signal that "
                        "`tiergate signal NAME` (or a signal thrown in another run) starts a run with.")
        elif node.kind == "startEvent" and node.event_definitions and not _in_event_subprocess(model, node) \
                and not top_level_message_start and not top_level_timer_start and not top_level_signal_start:
            check.error(node.line, node.id, "start events must be plain, or wait for a message at the top level of "
                        "the process, or for a signal or a timer there: runs are started with `tiergate start` (a "
                        "timer start event then waits until its timer is due), by `tiergate message` for a message "
                        "start event, or by `tiergate signal` for a signal start event.")
        elif top_level_timer_start and node.timer is not None and node.timer.kind == "timeCycle":
            _check_schedule(check, node)
        if node.kind == "task":
            check.error(node.line, node.id, "a plain task completes by itself, with no gate and nobody doing it. "
                        "Make it a userTask or manualTask (with a gate) if someone must do it.", "warning")
        if node.kind == "scriptTask":
            if node.script_format and node.script_format.strip().lower() not in ("python", "text/x-python", "py"):
                check.error(node.line, node.id, f"scriptFormat '{node.script_format}' is not Python: tiergate runs "
                            "every script as its restricted Python, as SpiffWorkflow ignores the format (the script "
                            "is checked as such below). Set scriptFormat to python, or leave it out.", "warning")
            if not (node.script or "").strip():
                check.error(node.line, node.id, "the script task has no script.")
            else:
                _check_expression(check, node.script or "", "exec", node.script_line or node.line, node.id, "script")
        if "cancelEventDefinition" in node.event_definitions:
            _check_cancel(check, node)
        if node.timer is not None and not (top_level_timer_start and node.timer.kind == "timeCycle"):
            _check_timer(check, node)
        if node.kind == "boundaryEvent" and node.attached_to not in model.nodes:
            check.error(node.line, node.id, f"attachedToRef '{node.attached_to}' is not an element of the process.")
    for flow in model.flows.values():
        for end, ref in (("sourceRef", flow.source), ("targetRef", flow.target)):
            if ref not in model.nodes:
                check.error(flow.line, flow.id, f"{end} '{ref}' is not an element of the process.")
        if flow.condition:
            _check_expression(check, flow.condition, "eval", flow.condition_line or flow.line, flow.id, "condition")
        value = flow.properties.get("deviation")
        if value is not None and value.strip().lower() not in ("true", "false"):
            check.error(flow.line, flow.id, f"deviation must be true or false, not '{value}'.")
    loopjoin.check_merges(check)
    for line, element, message in implicit.unwritten_choices(model):
        check.error(line, element, message)
    holding = {node.container for node in model.nodes.values()}
    for node in model.nodes.values():
        if node.kind in ("subProcess", "transaction") and node.id not in holding:
            check.error(node.line, node.id, "the subprocess is empty (drawn collapsed, its content not modelled): it "
                        "completes at once, like a plain task. Draw its activities in it if someone must do them.",
                        "warning")


def _check_cancel(check: FileCheck, node: Node) -> None:
    """Cancel events belong to transactions: thrown by an end event inside one, caught on its border."""
    model = check.model
    if node.kind == "endEvent":
        inside = model.nodes.get(node.container)
        if inside is None or inside.kind != "transaction":
            check.error(node.line, node.id, "a cancel end event must be inside a transaction (a transaction "
                        "subprocess); use an error end event elsewhere.")
    elif node.kind == "boundaryEvent":
        on = model.nodes.get(node.attached_to or "")
        if on is None or on.kind != "transaction":
            check.error(node.line, node.id, "a cancel boundary event must sit on a transaction; use an error "
                        "boundary event on other activities.")
    else:
        check.error(node.line, node.id, "cancel events are end events in a transaction or boundary events on one.")


def _in_event_subprocess(model: ProcessModel, node: Node) -> bool:
    container = model.nodes.get(node.container)
    return container is not None and container.triggered_by_event


def check_steps(check: FileCheck, roles: Roles | None, folder: Path, display_folder: str,
                 resources: dict[str, Any], lanes: dict[str, dict[str, list[str]]]) -> None:
    model = check.model
    step_ids = {n.id for n in model.steps}
    for node in model.steps:
        props, lines = node.properties, node.property_lines
        gate_text = props.get("gate")
        if not gate_text:
            check.error(node.line, node.id, f"{node.kind} '{node.title}' has no gate. Every step needs one: add the "
                        "extension property `gate` with a JSON Schema (inline, or schemas/NAME.json under "
                        "processes/schemas/).")
        else:
            found = AtLine(check.shown, lines.get("gate", node.line), node.id)
            try:
                schema = parse_gate(gate_text)
            except (ValueError, json.JSONDecodeError) as exc:
                found.add("", f"gate is not valid: {exc}.")
            else:
                if _check_schema(schema, "", found, "the gate"):
                    _collect_resources(schema, "", "", folder, resources, found, display_folder)
            check.problems.extend(found)
        actors = [a.strip() for a in props.get("actors", "").split(",") if a.strip()]
        if node.kind == "serviceTask" and ("human" in actors or (node.lane and node.lane in lanes
                                                                  and "agent" not in lanes[node.lane]["actors"])):
            check.error(lines.get("actors", node.line), node.id, "a service task is work for an agent (agents are the "
                        "workers): make it a userTask if a person does it, or put it in a lane agents may work in.")
        bad = [a for a in actors if a not in KINDS and not (check.builtin and actors == [ENGINE])]
        if bad or ("actors" in props and not actors):
            check.error(lines.get("actors", node.line), node.id, f"actors must be agent, human or agent,human, not "
                        f"'{props.get('actors')}'.")
        distinct = (props.get("distinct_from") or "").strip()
        if "distinct_from" in props and distinct not in step_ids - {node.id}:
            check.error(lines.get("distinct_from", node.line), node.id, f"distinct_from names '{distinct}', which is "
                        f"not another user or manual task of this process. Steps: {', '.join(sorted(step_ids))}.")
        optional = props.get("optional")
        if optional is not None and optional.strip().lower() not in ("true", "false"):
            check.error(lines.get("optional", node.line), node.id, f"optional must be true or false, not "
                        f"'{optional}'.")
        if node.lane is not None:
            lane = lanes.get(node.lane)
            if lane is None:
                known = ", ".join(sorted(roles.roles)) if roles is not None else ""
                check.error(node.line, node.id, f"it is in lane '{node.lane}', which is neither a role in "
                            f"tiers/roles.yaml nor agent or human. Rename the lane to a role ({known}).")
            elif actors and not set(actors) & set(lane["actors"]):
                check.error(node.line, node.id, f"actors '{props.get('actors')}' leaves nobody: its lane "
                            f"'{node.lane}' only allows {', '.join(lane['actors'])}.")


def resolve_lanes(check: FileCheck, roles: Roles | None) -> dict[str, dict[str, list[str]]]:
    resolved: dict[str, dict[str, list[str]]] = {}
    for lane in check.model.lanes.values():
        answer = resolve_lane(lane.label, lane.id, roles)
        if answer is not None:
            resolved[lane.label] = answer
    return resolved


def check_decisions(check: FileCheck, decisions: dict[str, Decision]) -> list[str]:
    """The ids of the decisions its business rule tasks call (each checked to exist)."""
    used: dict[str, None] = {}
    for node in check.model.nodes.values():
        if node.kind != "businessRuleTask":
            continue
        if not node.decision:
            check.error(node.line, node.id, "the business rule task names no decision, so it is a step: a person "
                        "or agent applies the rule and completes it with evidence that passes its gate. To have "
                        "tiergate decide, set camunda:decisionRef (or spiffworkflow:calledDecisionId, or Zeebe's "
                        "calledDecision) to the id of a decision in decisions/.", "warning")
        elif node.decision not in decisions:
            check.error(node.line, node.id, f"decision '{node.decision}' does not exist or failed to load "
                        f"(decisions/{node.decision}.dmn). Available: {', '.join(sorted(decisions)) or 'none'}.")
        else:
            used[node.decision] = None
    return list(used)
