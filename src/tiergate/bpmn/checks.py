"""The checks `tiergate check` runs on a Tier 1 file, each problem at its line and element.

``tiergate.bpmn.definition.load_process`` runs them in order; each adds ``Problem``s to a
``FileCheck``. What the checks refuse is what SpiffWorkflow cannot run safely or tiergate cannot
drive (no message channel, no external services), or what would deadlock or be silently wrong.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from lxml import etree

from tiergate.bpmn import adhoc, datastore, expressions, feel, implicit, loopjoin, prepost, spiffmessages
from tiergate.bpmn.model import Node, ProcessModel
from tiergate.bpmn.steps import ENGINE, KINDS, parse_gate, resolve_lane
from tiergate.bpmn.timers import is_literal
from tiergate.bpmn.xml import BPMN_NS, SPIFF_NS
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


def _check_shared_ids(check: FileCheck, tree: Any) -> None:
    """An element whose id another element of the file also has (a Camunda form field named like its
    task): SpiffWorkflow looks elements up by id and may build the wrong one."""
    found: dict[str, list[etree._Element]] = {}
    for element in tree.getroot().iter():
        if isinstance(element.tag, str) and element.get("id") in check.model.nodes:
            found.setdefault(element.get("id"), []).append(element)
    for key, elements in found.items():
        if len(elements) < 2:
            continue
        mine = next((e for e in elements if etree.QName(e).namespace == BPMN_NS), elements[0])
        other = next(e for e in elements if e is not mine)
        prefix = other.prefix + ":" if other.prefix else ""
        check.error(mine.sourceline or 1, key, f"the {etree.QName(mine).localname} '{key}' shares its id with the "
                    f"{prefix}{etree.QName(other).localname} at line {other.sourceline}: SpiffWorkflow finds elements "
                    "by id, so it may build the wrong one. Give one of them another id.")


def _in_event_subprocess(model: ProcessModel, node: Node) -> bool:
    container = model.nodes.get(node.container)
    return container is not None and container.triggered_by_event


def check_document(check: FileCheck, tree: Any) -> None:
    """What SpiffWorkflow would need an implementation for, anywhere in the file."""
    for kind, owner, owner_kind, text, line in prepost.found(tree):
        if owner_kind not in prepost.TASK_KINDS:
            check.error(line, owner, f"spiffworkflow:{kind} runs only on tasks, not on this {owner_kind}: move the "
                        f"script into a scriptTask {'before' if kind == 'preScript' else 'after'} it.")
        elif text.strip():
            _check_expression(check, text, "exec", line, owner, f"spiffworkflow:{kind}")
    _check_step_outputs(check, tree)
    _check_shared_ids(check, tree)
    for _kind, owner, text, line in spiffmessages.found(tree):
        _check_expression(check, text, "eval", line, owner or "", "spiffworkflow:messagePayload")
    adhoc.check(check, tree)
    feel.check_outputs(check, tree)
    feel.check_subscriptions(check, tree)
    for expression, owner in correlation_expressions(tree):   # evaluated when a message is thrown
        _check_expression(check, expression.text or "", "eval", expression.sourceline or 1, owner,
                          "correlation property retrieval expression")
    datastore.check(check, tree)  # data stores run (tiergate.datastores): each must resolve
    _check_unique_ids(check, tree)
    _check_languages(check, tree)


_LANGUAGE_OWNERS_SKIPPED = ("timerEventDefinition", "multiInstanceLoopCharacteristics", "standardLoopCharacteristics")


def _check_languages(check: FileCheck, tree: Any) -> None:
    """An expression whose own ``language`` is neither Python nor FEEL (XPath, JavaScript, JUEL, ...) would be
    run as Python and fail, or mean something else: refused at its line with what to write."""
    for tag in feel.EXPRESSIONS:
        for element in tree.getroot().iter(f"{{{BPMN_NS}}}{tag}"):
            language = (element.get("language") or "").strip()
            text = (element.text or "").strip()
            if not language or not text or "python" in language.lower() or feel.names_feel(language):
                continue
            if tag in ("timeDuration", "timeDate", "timeCycle") and is_literal(tag, text):
                continue   # an ISO 8601 value is the same in every language
            owner, process = None, None
            for ancestor in element.iterancestors():
                name = etree.QName(ancestor).localname
                if owner is None and ancestor.get("id") and name not in _LANGUAGE_OWNERS_SKIPPED:
                    owner = ancestor.get("id")
                if name == "process":
                    process = ancestor.get("id")
                    break
            if process != check.model.id:
                continue
            check.error(element.sourceline or 1, owner, f"the {tag} '{text[:60]}' is declared "
                        f"language=\"{language}\", which tiergate does not evaluate: expressions are restricted "
                        "Python, or FEEL. Write it in Python (`amount > 100`, `True`) and remove the language "
                        "attribute, or in FEEL with language=\"https://www.omg.org/spec/FEEL/20140401\" "
                        "(docs/tier1.md, What expressions and scripts may do).")


def _check_unique_ids(check: FileCheck, tree: Any) -> None:
    """Two elements of one process with one id: a reference to it means either (XML Schema forbids it)."""
    for process in tree.getroot().iter(f"{{{BPMN_NS}}}process"):
        first: dict[str, int] = {}
        for element in process.iter(f"{{{BPMN_NS}}}*"):
            element_id = element.get("id")
            if not element_id or element is process:
                continue
            if element_id in first:
                check.error(element.sourceline or 1, element_id, f"the id '{element_id}' is already used at line "
                            f"{first[element_id]}: every element needs an id of its own. Rename one of them.")
            else:
                first[element_id] = element.sourceline or 1


def _step_requires(check: FileCheck, element: Any, with_post: set[str],
                   absent: Any = None) -> tuple[Node | None, Any]:
    """The step ``element`` belongs to, and what its gate requires (``absent`` when it says nothing,
    None for a gate by ``$ref``);
    (None, None) when it is no step, a post-script sets its outputs, or its gate is reported apart."""
    owner = element.getparent()
    node = check.model.nodes.get(owner.get("id") or "") if owner is not None else None
    if node is None or not node.is_step or node.id in with_post:
        return None, None
    try:
        gate = parse_gate(node.properties.get("gate", ""))
    except (ValueError, json.JSONDecodeError):
        return None, None   # reported with the gate
    return node, (gate.get("required", absent) if "$ref" not in gate else None)


def _check_step_outputs(check: FileCheck, tree: Any) -> None:
    """A step whose ioSpecification names data outputs its gate does not require fails the run when
    completed without them (SpiffWorkflow: Missing data output): say so before a run does."""
    with_post = {owner for kind, owner, _k, text, _l in prepost.found(tree) if kind == "postScript" and text.strip()}
    for io_spec in tree.getroot().iter(f"{{{BPMN_NS}}}ioSpecification"):
        node, required = _step_requires(check, io_spec, with_post)
        if node is None:
            continue
        outputs = [o.get("id") for o in io_spec.iter(f"{{{BPMN_NS}}}dataOutput") if o.get("id")]
        missing = [o for o in outputs if isinstance(required, list) and o not in required]
        if missing:
            check.error(io_spec.sourceline or node.line, node.id, f"its data outputs {', '.join(missing)} are not "
                        "required by its gate, and a completion without them fails the run (Missing data output): "
                        "add them to the gate's `required`, or set them in a postScript.", "warning")
    for association in tree.getroot().iter(f"{{{BPMN_NS}}}dataOutputAssociation"):
        node, required = _step_requires(check, association, with_post, absent=[])
        if node is None:
            continue
        for ref in association.iterfind(f"{{{BPMN_NS}}}targetRef"):
            target = next(iter(tree.getroot().xpath("//*[@id=$id]", id=(ref.text or "").strip())), None)
            store = target.get("dataStoreRef") if target is not None else None
            if store and store in datastore.read_by(tree, association.getparent()):
                continue  # it reads the store too: its data holds the value read, which a completion may change
            name = (store or target.get("dataObjectRef") or target.get("id")) if target is not None else None
            if name and isinstance(required, list) and name not in required:
                what = "data store" if store else "data object"
                check.error(association.sourceline or node.line, node.id, f"it writes the {what} '{name}', "
                            "which its gate does not require, and a completion without it fails the run (A "
                            f"{what} could not be set): add it to the gate's `required`, or set it in a postScript.",
                            "warning")


def correlation_expressions(tree: Any, message: str | None = None) -> list[tuple[Any, str]]:
    """(formalExpression, correlation property id) of each retrieval expression (of ``message``, or of all)."""
    found = []
    for prop in tree.getroot().iter(f"{{{BPMN_NS}}}correlationProperty"):
        for retrieval in prop.iter(f"{{{BPMN_NS}}}correlationPropertyRetrievalExpression"):
            if message is not None and retrieval.get("messageRef") != message:
                continue
            for expression in retrieval.iter(f"{{{BPMN_NS}}}formalExpression"):
                if (expression.text or "").strip():
                    found.append((expression, prop.get("id") or "correlationProperty"))
    return found


def _foreign_language(source: str) -> str | None:
    """The expression language a condition is written in, when it is not tiergate's restricted Python."""
    text = source.strip()
    if (text.startswith("${") or text.startswith("#{")) and text.endswith("}"):
        return "a JUEL expression (Camunda 7, `${...}`)"
    return None


def _check_expression(check: FileCheck, source: str, mode: str, line: int, element: str, what: str) -> None:
    language = _foreign_language(source) if mode == "eval" else None
    if language is not None:
        check.error(line, element, f"{what}: '{source.strip()}' is {language}, but tiergate evaluates conditions as "
                    "restricted Python: write it without the wrapper, e.g. `amount > 100` or `approved == True` "
                    "(docs/tier1.md).")
        return
    if mode == "exec":  # a script's line 1 is its first line with text (the ones before are dropped)
        line += source[:len(source) - len(source.lstrip())].count("\n")
    try:
        if mode == "eval" and feel.is_feel(source):
            feel.check(source)
        else:
            expressions.check(source, mode)
    except expressions.ExpressionError as err:
        offset = (err.line or 1) - 1 if mode == "exec" else 0
        check.error(line + offset, element, f"{what}: {err.message} (see docs/tier1.md for what expressions may do).")


def _check_timer(check: FileCheck, node: Node) -> None:
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


def _check_schedule(check: FileCheck, node: Node) -> None:
    """A timeCycle on the process's own start event: the schedule `tiergate worker` starts runs on."""
    from datetime import datetime, timezone

    from tiergate.bpmn.schedule import parse

    assert node.timer is not None
    try:
        parse(node.timer.text, datetime(2000, 1, 1, tzinfo=timezone.utc))
    except ValueError as err:
        check.error(node.timer.line, node.id, f"timeCycle: {err}. `tiergate worker` starts one run of the process "
                    "at each due time of the cycle (docs/tier1.md, timer start events).")


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
