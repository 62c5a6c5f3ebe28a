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
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from jsonschema.protocols import Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tiergate.bpmn import calls, checks, instances, instructions
from tiergate.bpmn.model import ProcessModel, read_process
from tiergate.bpmn.steps import StepRules, parse_gate, step_rules
from tiergate.bpmn.xml import BpmnError, parse_bpmn
from tiergate.definitions.checklists import _check_schema, _collect_resources
from tiergate.definitions.decisions import Decision, pin_decisions, pinned_decision
from tiergate.definitions.models import Roles
from tiergate.definitions.problems import Problem
from tiergate.gates import gate_validator
from tiergate.jsonutil import content_hash

__all__ = ["BpmnDefinition", "StepRules", "load_process", "load_process_file", "parse_gate"]


@dataclass(eq=False)
class BpmnDefinition:
    process_id: str
    xml: str
    source: str = ""
    resources: dict[str, Any] = field(default_factory=dict)
    decisions: dict[str, str] = field(default_factory=dict)
    lanes: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    """Lane label -> {"roles": [...], "actors": [...]}, resolved against tiers/roles.yaml at load."""
    called: dict[str, str] = field(default_factory=dict)
    """Process id -> BPMN XML of the processes its call activities call, pinned with it (tiergate.bpmn.calls)."""
    decision_imports: dict[str, str] = field(default_factory=dict)
    """The DMN files its decisions import (file name in decisions/ -> XML), pinned with them."""

    @cached_property
    def version(self) -> str:
        return content_hash(self.snapshot())

    @property
    def title(self) -> str:
        return self.model.name

    def snapshot(self) -> dict[str, Any]:
        body = {"kind": "bpmn", "process": self.process_id, "bpmn": self.xml, "resources": self.resources,
                "decisions": self.decisions, "lanes": self.lanes}
        if self.called:
            body["called"] = self.called
        if self.decision_imports:
            body["decision_imports"] = self.decision_imports
        return body

    @classmethod
    def from_snapshot(cls, body: dict[str, Any]) -> "BpmnDefinition":
        return cls(process_id=body["process"], xml=body["bpmn"], source=f"processes/{body['process']}.bpmn",
                   resources=body.get("resources", {}), decisions=body.get("decisions", {}),
                   lanes=body.get("lanes", {}), called=body.get("called", {}),
                   decision_imports=body.get("decision_imports", {}))

    @cached_property
    def tree(self) -> Any:
        return parse_bpmn(self.xml, self.source or f"processes/{self.process_id}.bpmn")

    @cached_property
    def model(self) -> ProcessModel:
        """The process, with the elements of the processes it calls (checked when it was loaded)."""
        model = read_process(self.tree, self.process_id, self.source)
        if any(n.kind == "callActivity" for n in model.nodes.values()):
            calls.read_called(model, self.called, self.source, lambda *problem: None, self.tree)
        return model

    @cached_property
    def specs(self) -> tuple[Any, dict[str, Any]]:
        from tiergate.bpmn.parser import build_specs
        from tiergate.bpmn.persistence import connect_join_listeners

        called = calls.called_trees(self.called, self.model.renamed)
        spec, subprocess_specs = build_specs(self.tree, self.model, self.source, called)
        for one in (spec, *subprocess_specs.values()):
            if one is not None:
                connect_join_listeners(one)
                instances.connect_instances(one)
        return spec, subprocess_specs

    @cached_property
    def decision_objects(self) -> dict[str, Decision]:
        return {decision_id: pinned_decision(decision_id, xml, self.decision_imports)
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
    def _validators(self) -> dict[str, Validator]:
        found = {step_id: gate_validator(rules.gate, self.registry)
                 for step_id, rules in self.steps.items()}
        found["__inputs__"] = gate_validator(self.inputs, self.registry)
        return found

    def validator(self, step_id: str) -> Validator:
        return self._validators[step_id]


def load_process(xml: bytes | str, shown: str, process_id: str, *, roles: Roles | None = None,
                 decisions: dict[str, Decision] | None = None,
                 schema_folder: Path | None = None,
                 builtin: bool = False) -> tuple[BpmnDefinition | None, list[Problem]]:
    """Validate one Tier 1 process. Never raises for a bad file: its problems come back instead.

    ``builtin``: a process shipped inside tiergate, whose steps may be done by the engine itself."""
    try:
        tree = parse_bpmn(xml, shown)
        model = read_process(tree, process_id, shown)
    except BpmnError as err:
        return None, [Problem(shown, err.line or 1, err.message.split(": ", 1)[-1] if err.message.startswith(shown)
                              else err.message)]
    check = checks.FileCheck(shown, model)
    check.builtin = builtin
    called = calls.read_called(model, schema_folder if schema_folder is not None else Path("."), shown, check.error,
                               tree)
    if not model.executable:
        check.error(model.line, model.id, 'the process must be marked executable: isExecutable="true".')
    if not model.has_diagram:
        check.error(model.line, model.id, "the file has no diagram information (bpmndi), so modelers cannot open it. "
                    "Save it from a modeler, or generate it with `tiergate scaffold bpmn`.", "warning")
    if not model.steps:
        check.error(model.line, model.id, "the process has no userTask or manualTask: there is nothing for a person "
                    "or agent to do, so it does not need Tier 1.", "warning")
    checks.check_elements(check)
    checks.check_document(check, tree)
    lanes = checks.resolve_lanes(check, roles)
    resources: dict[str, Any] = {}
    folder = schema_folder if schema_folder is not None else Path(".")
    display_folder = shown.rsplit("/", 1)[0] if "/" in shown else "."
    checks.check_steps(check, roles, folder, display_folder, resources, lanes)
    if model.properties.get("inputs"):
        found = checks.AtLine(shown, model.property_lines.get("inputs", model.line), model.id)
        try:
            schema = parse_gate(model.properties["inputs"])
        except (ValueError, json.JSONDecodeError) as exc:
            found.add("", f"inputs is not valid: {exc}.")
        else:
            if _check_schema(schema, "", found, "the inputs schema"):
                _collect_resources(schema, "", "", folder, resources, found, display_folder)
            _check_scheduled_inputs(check, model, schema)
        check.problems.extend(found)
    retry_roles = [r.strip() for r in model.properties.get("retry_roles", "").split(",") if r.strip()]
    unknown = [r for r in retry_roles if roles is not None and r not in roles.roles]
    if unknown:
        check.error(model.property_lines.get("retry_roles", model.line), model.id,
                    f"retry_roles names {', '.join(unknown)}, which {'is' if len(unknown) == 1 else 'are'} not "
                    "a role in tiers/roles.yaml, so nobody of it could retry a failed run.")
    called_decisions = checks.check_decisions(check, decisions or {})
    instructions.check_instructions(check, tree, resources, {d: (decisions or {})[d] for d in called_decisions},
                                    called=called, folder=schema_folder)
    used, decision_imports = pin_decisions(decisions or {}, called_decisions)
    text = xml.decode("utf-8") if isinstance(xml, bytes) else xml
    definition = BpmnDefinition(process_id=process_id, xml=text, source=shown, resources=resources, decisions=used,
                                lanes=lanes, called=called, decision_imports=decision_imports)
    if not check.has_errors:
        try:
            definition.specs
        except BpmnError as err:
            check.error(err.line or model.line, None, err.message.split(": ", 1)[-1] if err.message.startswith(shown)
                        else err.message)
    problems = sorted(check.problems, key=lambda p: p.line)
    return (None if check.has_errors else definition), problems


def _check_scheduled_inputs(check: Any, model: ProcessModel, schema: Any) -> None:
    """Runs started on schedule (a timer-cycle start event) get empty start data: say so when the
    inputs require fields, since each such start would be refused."""
    from tiergate.bpmn.schedule import cycle_starts

    required = schema.get("required") if isinstance(schema, dict) else None
    if required and cycle_starts(model):
        check.error(model.property_lines.get("inputs", model.line), model.id,
                    f"the inputs require {', '.join(map(str, required))}, but the runs `tiergate worker` starts on "
                    "the timeCycle of the start event get empty start data, so each would be refused. Give the "
                    "fields defaults in the process instead, or leave them out of `required`.", "warning")


def load_process_file(path: Path, shown: str, roles: Roles | None,
                      decisions: dict[str, Decision]) -> tuple[BpmnDefinition | None, list[Problem]]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, [Problem(shown, 1, f"cannot read the file: {exc.strerror}.")]
    return load_process(data, shown, path.name[:-len(".bpmn")], roles=roles, decisions=decisions,
                        schema_folder=path.parent)
