"""Tier 1 definitions: ``processes/<id>.bpmn``, validated, pinned and ready to run.

``load_process_file`` reads one BPMN file the way ``tiergate check`` reports it: every problem
with the file, its line and the BPMN element id. ``BpmnDefinition`` is what a run is pinned
to: the BPMN XML, the gate schemas it references under ``processes/schemas/``, the DMN XML of
every decision its business rule tasks call, and how each lane maps to roles. Its content hash
is the definition version; the SpiffWorkflow spec is parsed from the pinned XML once per
version and process and cached.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tiergate.bpmn import expressions
from tiergate.bpmn.model import STEP_KINDS, Node, ProcessModel, read_process
from tiergate.bpmn.timers import is_literal
from tiergate.bpmn.xml import BPMN_NS, BpmnError, parse_bpmn
from tiergate.definitions.checklists import _check_schema, _collect_resources
from tiergate.definitions.decisions import Decision
from tiergate.definitions.models import Roles
from tiergate.definitions.problems import Problem, ProblemList
from tiergate.jsonutil import content_hash
from tiergate.templating import check_syntax

KINDS = ("agent", "human")
UNSUPPORTED = {
    "serviceTask": "service tasks are not supported: tiergate calls no external services. Use a userTask for the "
                   "agent or person who calls the service, with a gate for the result",
    "sendTask": "send tasks are not supported (tiergate has no message channel)",
    "receiveTask": "receive tasks are not supported (tiergate has no message channel)",
    "callActivity": "call activities are not supported: draw the called steps as an embedded subProcess",
    "transaction": "transactions are not supported; use an embedded subProcess",
    "adHocSubProcess": "ad-hoc subprocesses are not supported; draw the order with sequence flows",
    "eventBasedGateway": "event-based gateways are not supported; use a boundary timer on the user task",
    "complexGateway": "complex gateways are not supported; use exclusive, inclusive or parallel gateways",
}
UNSUPPORTED_EVENTS = {
    "messageEventDefinition": "message events are not supported (tiergate has no message channel)",
    "signalEventDefinition": "signal events are not supported",
    "conditionalEventDefinition": "conditional events are not supported; use a gateway condition",
    "compensateEventDefinition": "compensation events are not supported",
    "linkEventDefinition": "link events are not supported; draw the sequence flow",
    "cancelEventDefinition": "cancel events are not supported (they belong to transactions)",
}
_SLUG = re.compile(r"[^a-z0-9]+")


def slug(text: str) -> str:
    return _SLUG.sub("-", text.strip().lower()).strip("-")


@dataclass(frozen=True)
class StepRules:
    """What a step (a user or manual task) demands of whoever completes it."""

    id: str
    title: str
    kind: str
    gate: dict[str, Any]
    actors: tuple[str, ...]
    roles: tuple[str, ...]
    lane: str | None
    distinct_from: str | None
    optional: bool
    instructions: str


@dataclass(eq=False)
class BpmnDefinition:
    process_id: str
    xml: str
    source: str = ""
    resources: dict[str, Any] = field(default_factory=dict)
    decisions: dict[str, str] = field(default_factory=dict)
    lanes: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    """Lane label -> {"roles": [...], "actors": [...]}, resolved against tiers/roles.yaml at load."""

    @cached_property
    def version(self) -> str:
        return content_hash(self.snapshot())

    @property
    def title(self) -> str:
        return self.model.name

    def snapshot(self) -> dict[str, Any]:
        return {"kind": "bpmn", "process": self.process_id, "bpmn": self.xml, "resources": self.resources,
                "decisions": self.decisions, "lanes": self.lanes}

    @classmethod
    def from_snapshot(cls, body: dict[str, Any]) -> "BpmnDefinition":
        return cls(process_id=body["process"], xml=body["bpmn"], source=f"processes/{body['process']}.bpmn",
                   resources=body.get("resources", {}), decisions=body.get("decisions", {}),
                   lanes=body.get("lanes", {}))

    @cached_property
    def tree(self) -> Any:
        return parse_bpmn(self.xml, self.source or f"processes/{self.process_id}.bpmn")

    @cached_property
    def model(self) -> ProcessModel:
        return read_process(self.tree, self.process_id, self.source)

    @cached_property
    def specs(self) -> tuple[Any, dict[str, Any]]:
        from tiergate.bpmn.parser import build_specs
        from tiergate.bpmn.persistence import connect_join_listeners

        spec, subprocess_specs = build_specs(self.tree, self.model, self.source)
        for one in (spec, *subprocess_specs.values()):
            if one is not None:
                connect_join_listeners(one)
        return spec, subprocess_specs

    @cached_property
    def decision_objects(self) -> dict[str, Decision]:
        return {decision_id: Decision(id=decision_id, xml=xml.encode("utf-8"), source=f"decisions/{decision_id}.dmn")
                for decision_id, xml in self.decisions.items()}

    @cached_property
    def steps(self) -> dict[str, StepRules]:
        return {node.id: step_rules(node, self.lanes) for node in self.model.steps}

    @cached_property
    def registry(self) -> Registry:
        return Registry().with_resources(
            (uri, Resource.from_contents(schema, default_specification=DRAFT202012))
            for uri, schema in self.resources.items())

    @cached_property
    def inputs(self) -> dict[str, Any]:
        """The start data's JSON Schema: the process's ``inputs`` property, or any object."""
        text = self.model.properties.get("inputs")
        try:
            return parse_gate(text) if text else {"type": "object"}
        except (ValueError, json.JSONDecodeError):
            return {"type": "object"}

    @cached_property
    def _validators(self) -> dict[str, Draft202012Validator]:
        found = {step_id: Draft202012Validator(rules.gate, registry=self.registry, format_checker=FormatChecker())
                 for step_id, rules in self.steps.items()}
        found["__inputs__"] = Draft202012Validator(self.inputs, registry=self.registry, format_checker=FormatChecker())
        return found

    def validator(self, step_id: str) -> Draft202012Validator:
        return self._validators[step_id]


def parse_gate(value: str) -> dict[str, Any]:
    """The gate property: inline JSON Schema, or ``schemas/NAME.json``. Raises ValueError."""
    text = value.strip()
    if text.startswith("{"):
        schema = json.loads(text)
        if not isinstance(schema, dict):
            raise ValueError("the gate must be a JSON object (a JSON Schema)")
        return schema
    if re.fullmatch(r"schemas/[A-Za-z0-9_.-]+\.(json|ya?ml)", text):
        return {"$ref": text}
    raise ValueError(f"'{text[:60]}' is neither inline JSON Schema (starting with '{{') nor a file reference "
                     "like schemas/NAME.json")


def step_rules(node: Node, lanes: dict[str, dict[str, list[str]]]) -> StepRules:
    lane = lanes.get(node.lane or "", {}) if node.lane else {}
    actors = list(lane.get("actors") or KINDS)
    narrowed = [a.strip() for a in node.properties.get("actors", "").split(",") if a.strip()]
    if narrowed:
        actors = [a for a in actors if a in narrowed]
    try:
        gate = parse_gate(node.properties.get("gate", "")) if node.properties.get("gate") else {}
    except (ValueError, json.JSONDecodeError):
        gate = {}
    return StepRules(id=node.id, title=node.title, kind=node.kind, gate=gate, actors=tuple(actors),
                     roles=tuple(lane.get("roles") or ()), lane=node.lane,
                     distinct_from=(node.properties.get("distinct_from") or "").strip() or None,
                     optional=node.properties.get("optional", "").strip().lower() == "true",
                     instructions=node.documentation)


class _AtLine(ProblemList):
    """Problems about one element: every one is reported at the element's line."""

    def __init__(self, display_path: str, line: int, element: str):
        super().__init__(display_path)
        self.line = line
        self.element = element

    def add(self, ptr: str, message: str, *, severity: str = "error", line: int | None = None) -> None:  # type: ignore[override]
        super().add(ptr, f"{self.element}: {message}", severity=severity,  # type: ignore[arg-type]
                    line=self.line if line is None else line)


def resolve_lane(label: str, lane_id: str, roles: Roles | None) -> dict[str, list[str]] | None:
    """A lane's roles or kind of actor; None if its name (or id) is neither."""
    if label.strip().lower() in KINDS:
        return {"roles": [], "actors": [label.strip().lower()]}
    if roles is None:
        return {"roles": [label], "actors": list(KINDS)}
    for candidate in (label, slug(label), lane_id):
        if candidate in roles.roles:
            return {"roles": [candidate], "actors": list(KINDS)}
    return None


class _Check:
    def __init__(self, shown: str, model: ProcessModel):
        self.shown = shown
        self.model = model
        self.problems: list[Problem] = []

    def error(self, line: int, element: str | None, message: str, severity: str = "error") -> None:
        prefix = f"{element}: " if element else ""
        self.problems.append(Problem(self.shown, line, prefix + message, severity))  # type: ignore[arg-type]

    @property
    def has_errors(self) -> bool:
        return any(p.severity == "error" for p in self.problems)


def _check_elements(check: _Check) -> None:
    model = check.model
    for node in model.nodes.values():
        if node.kind in UNSUPPORTED:
            check.error(node.line, node.id, UNSUPPORTED[node.kind] + ".")
        for event in node.event_definitions:
            if event in UNSUPPORTED_EVENTS:
                check.error(node.line, node.id, UNSUPPORTED_EVENTS[event] + ".")
        if node.loop:
            check.error(node.line, node.id, f"{node.loop} markers are not supported: draw the loop with a gateway "
                        "and a sequence flow back (docs/tier1.md).")
        if node.triggered_by_event:
            check.error(node.line, node.id, "event subprocesses are not supported; use a boundary event.")
        if node.kind == "startEvent" and node.event_definitions:
            check.error(node.line, node.id, "start events must be plain: runs are started with `tiergate start`.")
        if node.kind == "task":
            check.error(node.line, node.id, "a plain task completes by itself, with no gate and nobody doing it. "
                        "Make it a userTask or manualTask (with a gate) if someone must do it.", "warning")
        if node.kind == "scriptTask":
            if node.script_format and node.script_format.strip().lower() not in ("python", "text/x-python", "py"):
                check.error(node.line, node.id, f"scriptFormat '{node.script_format}' is not supported; scripts are "
                            "restricted Python (docs/tier1.md).")
            if not (node.script or "").strip():
                check.error(node.line, node.id, "the script task has no script.")
            else:
                _check_expression(check, node.script or "", "exec", node.line, node.id, "script")
        if node.timer is not None:
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
    _check_parallel_merges(check)


def _check_document(check: _Check, tree: Any) -> None:
    """What SpiffWorkflow would need an implementation for, anywhere in the file."""
    for element in tree.getroot().iter(f"{{{BPMN_NS}}}dataStore", f"{{{BPMN_NS}}}dataStoreReference"):
        check.error(element.sourceline or 1, element.get("id"), "data stores are not supported: keep data in the "
                    "run (gates and scripts) and link to external stores in the evidence.")


def _check_expression(check: _Check, source: str, mode: str, line: int, element: str, what: str) -> None:
    try:
        expressions.check(source, mode)
    except expressions.ExpressionError as err:
        offset = (err.line or 1) - 1 if mode == "exec" else 0
        check.error(line + offset, element, f"{what}: {err.message} (see docs/tier1.md for what expressions may do).")


def _check_timer(check: _Check, node: Node) -> None:
    timer = node.timer
    assert timer is not None
    if not timer.kind or not timer.text:
        check.error(timer.line, node.id, "the timer has no timeDuration, timeDate or timeCycle value.")
        return
    if is_literal(timer.kind, timer.text):
        return
    if re.fullmatch(r"[A-Za-z0-9:/+.\-]+", timer.text.strip()) and timer.text.strip()[:1] in "PRpr0123456789":
        check.error(timer.line, node.id, f"{timer.kind} '{timer.text}' is not valid ISO 8601 (e.g. PT48H, P2D, "
                    "2026-12-01T09:00:00Z, R3/PT1H).")
        return
    _check_expression(check, timer.text, "eval", timer.line, node.id, f"{timer.kind} expression")


def _reachable(model: ProcessModel, start: str) -> set[str]:
    seen: set[str] = set()
    stack = [f.target for f in model.outgoing(start)]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        stack.extend(f.target for f in model.outgoing(current))
        stack.extend(n.id for n in model.boundary_events(current))
    return seen


def _check_parallel_merges(check: _Check) -> None:
    model = check.model
    for node in model.nodes.values():
        if node.kind != "parallelGateway":
            continue
        incoming = [f for f in model.flows.values() if f.target == node.id]
        if len(incoming) < 2:
            continue
        after = _reachable(model, node.id)
        looped = [f for f in incoming if f.source in after]
        if looped and len(looped) < len(incoming):
            check.error(node.line, node.id, f"the parallel gateway is reached again by the loop through "
                        f"{looped[0].id} and also from outside the loop. A parallel gateway waits for a token on "
                        "every incoming flow, so the second round would wait forever. Merge the loop with an "
                        "exclusive gateway in front of it.")


def _check_steps(check: _Check, roles: Roles | None, folder: Path, display_folder: str,
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
            found = _AtLine(check.shown, lines.get("gate", node.line), node.id)
            try:
                schema = parse_gate(gate_text)
            except (ValueError, json.JSONDecodeError) as exc:
                found.add("", f"gate is not valid: {exc}.")
            else:
                if _check_schema(schema, "", found, "the gate"):
                    _collect_resources(schema, "", "", folder, resources, found, display_folder)
            check.problems.extend(found)
        actors = [a.strip() for a in props.get("actors", "").split(",") if a.strip()]
        bad = [a for a in actors if a not in KINDS]
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
        if node.documentation:
            error = check_syntax(node.documentation)
            if error is not None:
                check.error(node.line, node.id, f"instructions (documentation) template syntax error on its line "
                            f"{error[0]}: {error[1]}.")
        if node.lane is not None:
            lane = lanes.get(node.lane)
            if lane is None:
                known = ", ".join(sorted(roles.roles)) if roles is not None else ""
                check.error(node.line, node.id, f"it is in lane '{node.lane}', which is neither a role in "
                            f"tiers/roles.yaml nor agent or human. Rename the lane to a role ({known}).")
            elif actors and not set(actors) & set(lane["actors"]):
                check.error(node.line, node.id, f"actors '{props.get('actors')}' leaves nobody: its lane "
                            f"'{node.lane}' only allows {', '.join(lane['actors'])}.")


def _resolve_lanes(check: _Check, roles: Roles | None) -> dict[str, dict[str, list[str]]]:
    resolved: dict[str, dict[str, list[str]]] = {}
    for lane in check.model.lanes.values():
        answer = resolve_lane(lane.label, lane.id, roles)
        if answer is not None:
            resolved[lane.label] = answer
    return resolved


def _check_decisions(check: _Check, decisions: dict[str, Decision]) -> dict[str, str]:
    used: dict[str, str] = {}
    for node in check.model.nodes.values():
        if node.kind != "businessRuleTask":
            continue
        if not node.decision:
            check.error(node.line, node.id, "the business rule task names no decision: set camunda:decisionRef (or "
                        "spiffworkflow:calledDecisionId) to the id of a decision in decisions/.")
        elif node.decision not in decisions:
            check.error(node.line, node.id, f"decision '{node.decision}' does not exist or failed to load "
                        f"(decisions/{node.decision}.dmn). Available: {', '.join(sorted(decisions)) or 'none'}.")
        else:
            used[node.decision] = decisions[node.decision].xml.decode("utf-8")
    return used


def load_process(xml: bytes | str, shown: str, process_id: str, *, roles: Roles | None = None,
                 decisions: dict[str, Decision] | None = None,
                 schema_folder: Path | None = None) -> tuple[BpmnDefinition | None, list[Problem]]:
    """Validate one Tier 1 process. Never raises for a bad file: its problems come back instead."""
    try:
        tree = parse_bpmn(xml, shown)
        model = read_process(tree, process_id, shown)
    except BpmnError as err:
        return None, [Problem(shown, err.line or 1, err.message.split(": ", 1)[-1] if err.message.startswith(shown)
                              else err.message)]
    check = _Check(shown, model)
    if not model.executable:
        check.error(model.line, model.id, 'the process must be marked executable: isExecutable="true".')
    if not model.has_diagram:
        check.error(model.line, model.id, "the file has no diagram information (bpmndi), so modelers cannot open it. "
                    "Save it from a modeler, or generate it with `tiergate scaffold bpmn`.", "warning")
    if not model.steps:
        check.error(model.line, model.id, "the process has no userTask or manualTask: there is nothing for a person "
                    "or agent to do, so it does not need Tier 1.", "warning")
    _check_elements(check)
    _check_document(check, tree)
    lanes = _resolve_lanes(check, roles)
    resources: dict[str, Any] = {}
    folder = schema_folder if schema_folder is not None else Path(".")
    display_folder = shown.rsplit("/", 1)[0] if "/" in shown else "."
    _check_steps(check, roles, folder, display_folder, resources, lanes)
    if model.properties.get("inputs"):
        found = _AtLine(shown, model.property_lines.get("inputs", model.line), model.id)
        try:
            schema = parse_gate(model.properties["inputs"])
        except (ValueError, json.JSONDecodeError) as exc:
            found.add("", f"inputs is not valid: {exc}.")
        else:
            if _check_schema(schema, "", found, "the inputs schema"):
                _collect_resources(schema, "", "", folder, resources, found, display_folder)
        check.problems.extend(found)
    used = _check_decisions(check, decisions or {})
    text = xml.decode("utf-8") if isinstance(xml, bytes) else xml
    definition = BpmnDefinition(process_id=process_id, xml=text, source=shown, resources=resources, decisions=used,
                                lanes=lanes)
    if not check.has_errors:
        try:
            definition.specs
        except BpmnError as err:
            check.error(err.line or model.line, None, err.message.split(": ", 1)[-1] if err.message.startswith(shown)
                        else err.message)
    problems = sorted(check.problems, key=lambda p: p.line)
    return (None if check.has_errors else definition), problems


def load_process_file(path: Path, shown: str, roles: Roles | None,
                      decisions: dict[str, Decision]) -> tuple[BpmnDefinition | None, list[Problem]]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, [Problem(shown, 1, f"cannot read the file: {exc.strerror}.")]
    return load_process(data, shown, path.name[:-len(".bpmn")], roles=roles, decisions=decisions,
                        schema_folder=path.parent)
