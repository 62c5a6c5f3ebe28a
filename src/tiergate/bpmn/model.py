"""What tiergate itself reads from a BPMN process: steps, lanes, gates, flows, timers, decisions.

SpiffWorkflow executes the process; this module reads, straight from the XML, the facts the
conventions give meaning to (docs/tier1.md): the extension properties of tasks and sequence
flows in either the Camunda or the SpiffWorkflow namespace, lanes, documentation, decision
references, boundary timers, each with the line it sits on. No I/O: it takes a parsed tree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

from lxml import etree

from tiergate.bpmn.xml import BPMN_NS, CAMUNDA_NS, NSMAP, SPIFF_NS, BpmnError, local

ZEEBE_NS = "http://camunda.org/schema/zeebe/1.0"

STEP_KINDS = frozenset({"userTask", "manualTask", "serviceTask"})
TASK_KINDS = frozenset({"userTask", "manualTask", "task", "scriptTask", "businessRuleTask", "serviceTask",
                        "sendTask", "receiveTask", "callActivity", "subProcess", "transaction", "adHocSubProcess"})
EVENT_KINDS = frozenset({"startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent",
                         "boundaryEvent"})
GATEWAY_KINDS = frozenset({"exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway",
                           "complexGateway"})
FLOW_NODE_KINDS = TASK_KINDS | EVENT_KINDS | GATEWAY_KINDS
CONTAINER_KINDS = frozenset({"subProcess", "transaction", "adHocSubProcess"})
TIMER_KINDS = ("timeDate", "timeDuration", "timeCycle")


@dataclass(frozen=True)
class Timer:
    kind: str  # timeDate | timeDuration | timeCycle
    text: str
    line: int


@dataclass(frozen=True)
class Node:
    """One flow node (task, event or gateway) of the process or of an embedded subprocess."""

    id: str
    kind: str
    name: str
    line: int
    container: str
    lane: str | None = None
    #: Its instructions (a Jinja template): `spiffworkflow:instructionsForEndUser`, else its documentation.
    documentation: str = ""
    properties: dict[str, str] = field(default_factory=dict)
    property_lines: dict[str, int] = field(default_factory=dict)
    decision: str | None = None
    result_variable: str | None = None
    attached_to: str | None = None
    cancel_activity: bool = True
    timer: Timer | None = None
    event_definitions: tuple[str, ...] = ()
    #: The name of the ``bpmn:signal`` its signal event definition's ``signalRef`` names ("" if none does).
    signal: str = ""
    script: str | None = None
    script_line: int | None = None
    script_format: str | None = None
    default_flow: str | None = None
    loop: str | None = None
    triggered_by_event: bool = False
    #: Expressions of a loop or multi-instance marker: (what, text, line).
    loop_expressions: tuple[tuple[str, str, int], ...] = ()
    sequential: bool = False
    #: A call activity's ``calledElement``: the id of the process it calls.
    called: str | None = None
    #: A service task's topic (``camunda:topic``, or the property ``topic``): the kind of work for agents.
    topic: str | None = None

    @property
    def title(self) -> str:
        return self.name or self.id

    @property
    def is_step(self) -> bool:
        """A user, manual or service task, or a business rule task that names no decision (someone applies
        the rule: a gated step like a manual task)."""
        return self.kind in STEP_KINDS or (self.kind == "businessRuleTask" and not self.decision)


@dataclass(frozen=True)
class Flow:
    id: str
    source: str
    target: str
    line: int
    name: str = ""
    condition: str | None = None
    condition_line: int | None = None
    properties: dict[str, str] = field(default_factory=dict)

    @property
    def deviation(self) -> bool:
        return self.properties.get("deviation", "").strip().lower() == "true"


@dataclass(frozen=True)
class Lane:
    id: str
    name: str
    line: int

    @property
    def label(self) -> str:
        return self.name or self.id


@dataclass
class ProcessModel:
    id: str
    name: str
    line: int
    executable: bool
    nodes: dict[str, Node] = field(default_factory=dict)
    flows: dict[str, Flow] = field(default_factory=dict)
    lanes: dict[str, Lane] = field(default_factory=dict)
    has_diagram: bool = False
    properties: dict[str, str] = field(default_factory=dict)
    property_lines: dict[str, int] = field(default_factory=dict)
    #: Ids of called processes' elements renamed in the run, by called process: {process: {id: new id}}
    #: (``tiergate.bpmn.calls``).
    renamed: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def steps(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.is_step]

    def step(self, step_id: str) -> Node | None:
        node = self.nodes.get(step_id)
        return node if node is not None and node.is_step else None

    def outgoing(self, node_id: str) -> list[Flow]:
        return [f for f in self.flows.values() if f.source == node_id]

    def flows_between(self, source: str, target: str) -> list[Flow]:
        return [f for f in self.flows.values() if f.source == source and f.target == target]

    def boundary_events(self, node_id: str) -> list[Node]:
        return [n for n in self.nodes.values() if n.attached_to == node_id]


def _text(element: etree._Element | None) -> str:
    return "" if element is None else "".join(element.itertext()).strip()


def _instructions(element: etree._Element) -> str:
    """A step's instructions: SpiffArena's ``spiffworkflow:instructionsForEndUser`` when it has one (what
    SpiffArena shows the person doing the task), else its ``documentation``."""
    spiff = element.find(f"{{{BPMN_NS}}}extensionElements/{{{SPIFF_NS}}}instructionsForEndUser")
    text = _text(spiff)
    return text or _text(element.find(f"{{{BPMN_NS}}}documentation"))


def read_properties(element: etree._Element) -> tuple[dict[str, str], dict[str, int]]:
    """Extension properties in the Camunda or SpiffWorkflow namespace (first one wins per name)."""
    values: dict[str, str] = {}
    lines: dict[str, int] = {}
    for prop in element.xpath("./bpmn:extensionElements/camunda:properties/camunda:property | "
                              "./bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property",
                              namespaces=NSMAP):
        name = prop.get("name")
        if name is None or name in values:
            continue
        values[name] = prop.get("value") if prop.get("value") is not None else _text(prop)
        lines[name] = prop.sourceline or element.sourceline or 1
    return values, lines


def _timer(element: etree._Element) -> Timer | None:
    for definition in element.xpath("./bpmn:timerEventDefinition", namespaces=NSMAP):
        for kind in TIMER_KINDS:
            found = definition.find(f"{{{BPMN_NS}}}{kind}")
            if found is not None:
                return Timer(kind, _text(found), found.sourceline or definition.sourceline or 1)
        return Timer("", "", definition.sourceline or 1)
    return None


def _decision(element: etree._Element) -> str | None:
    ref = element.get(f"{{{CAMUNDA_NS}}}decisionRef")
    if ref:
        return ref.strip()
    found = element.find(f"{{{BPMN_NS}}}extensionElements/{{{SPIFF_NS}}}calledDecisionId")
    if found is not None and _text(found):
        return _text(found).strip("'\" ")
    zeebe = element.find(f"{{{BPMN_NS}}}extensionElements/{{{ZEEBE_NS}}}calledDecision")
    if zeebe is not None and (zeebe.get("decisionId") or "").strip():
        return (zeebe.get("decisionId") or "").strip()
    return None


def result_variable(element: etree._Element) -> str | None:
    """Where a business rule task puts its decision's outputs: ``camunda:resultVariable`` or Zeebe's."""
    name = element.get(f"{{{CAMUNDA_NS}}}resultVariable")
    zeebe = element.find(f"{{{BPMN_NS}}}extensionElements/{{{ZEEBE_NS}}}calledDecision")
    if not name and zeebe is not None:
        name = zeebe.get("resultVariable")
    return (name or "").strip() or None


def _lanes(process: etree._Element) -> tuple[dict[str, Lane], dict[str, str]]:
    lanes: dict[str, Lane] = {}
    node_lane: dict[str, str] = {}

    def visit(lane_set: etree._Element) -> None:
        for lane in lane_set.findall(f"{{{BPMN_NS}}}lane"):
            lane_id = lane.get("id") or f"lane-{lane.sourceline}"
            lanes[lane_id] = Lane(lane_id, " ".join((lane.get("name") or "").split()), lane.sourceline or 1)
            for ref in lane.findall(f"{{{BPMN_NS}}}flowNodeRef"):
                if ref.text and ref.text.strip():
                    node_lane[ref.text.strip()] = lane_id  # children visited later win: innermost lane
            child = lane.find(f"{{{BPMN_NS}}}childLaneSet")
            if child is not None:
                visit(child)

    for lane_set in process.findall(f"{{{BPMN_NS}}}laneSet"):
        visit(lane_set)
    return lanes, node_lane


def _message_ref(element: etree._Element) -> str | None:
    """The message an element catches or throws: its own ``messageRef``, or its message event definition's."""
    definition = element.find(f"{{{BPMN_NS}}}messageEventDefinition")
    return element.get("messageRef") or (definition.get("messageRef") if definition is not None else None)


def _zeebe_correlation(root: etree._Element) -> dict[str, tuple[str, int]]:
    """{message id: (field, line)} for each ``bpmn:message`` whose ``zeebe:subscription correlationKey`` names a
    field of the data (``= documentReferenceId``): the field a catch of it correlates on (``correlate``)."""
    found = {}
    for message in root.iter(f"{{{BPMN_NS}}}message"):
        subscription = message.find(f"{{{BPMN_NS}}}extensionElements/{{{ZEEBE_NS}}}subscription")
        key = (subscription.get("correlationKey") or "").strip().lstrip("=").strip() if subscription is not None else ""
        if key.isidentifier() and message.get("id"):  # a constant key (`=01`, `="x"`) correlates on nothing
            found[message.get("id")] = (key, subscription.sourceline or message.sourceline or 1)
    return found


def _signal(element: etree._Element, names: dict[Any, str]) -> str:
    definition = element.find(f"{{{BPMN_NS}}}signalEventDefinition")
    return names.get(definition.get("signalRef"), "") if definition is not None else ""


def _walk(container: etree._Element) -> Iterator[tuple[etree._Element, etree._Element]]:
    """Every flow node and sequence flow, with the process or subprocess element that holds it."""
    for child in container:
        name = local(child)
        if name in FLOW_NODE_KINDS or name == "sequenceFlow":
            yield child, container
        if name in CONTAINER_KINDS:
            yield from _walk(child)


def read_process(tree: etree._ElementTree, process_id: str, source: str) -> ProcessModel:
    from tiergate.bpmn.feel import mark_languages

    mark_languages(tree)  # `language="feel"` expressions read as `= ...` (tiergate.bpmn.feel)
    root = tree.getroot()
    found = [p for p in root.findall(f"{{{BPMN_NS}}}process") if p.get("id") == process_id]
    if not found:
        ids = [p.get("id") for p in root.findall(f"{{{BPMN_NS}}}process")]
        raise BpmnError(f"{source}:{root.sourceline or 1}: no <bpmn:process id=\"{process_id}\"> in the file (it has "
                        f"{', '.join(str(i) for i in ids) or 'no process'}). The process id must be the catalog id "
                        f"and the file name.", line=root.sourceline or 1, source=source)
    process = found[0]
    lanes, node_lane = _lanes(process)
    process_properties, process_property_lines = read_properties(process)
    model = ProcessModel(id=process_id, name=" ".join((process.get("name") or "").split()) or process_id,
                         line=process.sourceline or 1,
                         executable=(process.get("isExecutable") or "").strip().lower() == "true", lanes=lanes,
                         has_diagram=bool(root.findall(f".//{{{NSMAP['bpmndi']}}}BPMNDiagram")),
                         properties=process_properties, property_lines=process_property_lines)
    container_lane: dict[str, str | None] = {}
    zeebe_keys = _zeebe_correlation(root)
    signal_names = {e.get("id"): (e.get("name") or "").strip() for e in root.iter(f"{{{BPMN_NS}}}signal")}
    for element, container in _walk(process):
        kind = local(element)
        element_id = element.get("id") or ""
        line = element.sourceline or 1
        if not element_id:
            raise BpmnError(f"{source}:{line}: a <bpmn:{kind}> has no id attribute. Give every element an id.",
                            line=line, source=source)
        properties, property_lines = read_properties(element)
        key = zeebe_keys.get(_message_ref(element) or "")
        if key is not None and "correlate" not in properties:  # Camunda 8's subscription correlation key
            properties["correlate"], property_lines["correlate"] = key
        if kind == "sequenceFlow":
            condition_node = element.find(f"{{{BPMN_NS}}}conditionExpression")
            condition = _text(condition_node) or None
            model.flows[element_id] = Flow(
                id=element_id, source=element.get("sourceRef") or "", target=element.get("targetRef") or "",
                line=line, name=element.get("name") or "", condition=condition,
                condition_line=condition_node.sourceline if condition_node is not None else None,
                properties=properties)
            continue
        container_id = container.get("id") or process_id
        lane_id = node_lane.get(element_id) or (container_lane.get(container_id) if container is not process else None)
        if kind in CONTAINER_KINDS:
            container_lane[element_id] = lane_id
        script_node = element.find(f"{{{BPMN_NS}}}script")
        loop, loop_expressions, sequential = None, [], False
        for marker in ("standardLoopCharacteristics", "multiInstanceLoopCharacteristics"):
            found_marker = element.find(f"{{{BPMN_NS}}}{marker}")
            if found_marker is not None:
                loop = marker
                sequential = (found_marker.get("isSequential") or "").strip().lower() == "true"
                for part in ("loopCardinality", "completionCondition", "loopCondition"):
                    inner = found_marker.find(f"{{{BPMN_NS}}}{part}")
                    if inner is not None and _text(inner):
                        loop_expressions.append((part, _text(inner), inner.sourceline or line))
        if kind == "adHocSubProcess":  # its completion condition (tiergate.bpmn.adhoc)
            inner = element.find(f"{{{BPMN_NS}}}completionCondition")
            if inner is not None and _text(inner):
                loop_expressions.append(("completionCondition", _text(inner), inner.sourceline or line))
        events = tuple(local(e) for e in element if local(e).endswith("EventDefinition"))
        model.nodes[element_id] = Node(
            id=element_id, kind=kind, name=" ".join((element.get("name") or "").split()), line=line,
            container=container_id if container is not process else process_id,
            lane=lanes[lane_id].label if lane_id in lanes else None,
            documentation=_instructions(element),
            properties=properties, property_lines=property_lines, decision=_decision(element),
            result_variable=result_variable(element),
            attached_to=element.get("attachedToRef"),
            cancel_activity=(element.get("cancelActivity") or element.get("isInterrupting") or "true"
                             ).strip().lower() != "false",
            timer=_timer(element), event_definitions=events, signal=_signal(element, signal_names),
            script=script_node.text if script_node is not None else None,
            script_line=script_node.sourceline if script_node is not None else None,
            script_format=element.get("scriptFormat"), default_flow=element.get("default"), loop=loop,
            triggered_by_event=(element.get("triggeredByEvent") or "").lower() == "true",
            loop_expressions=tuple(loop_expressions), sequential=sequential, called=element.get("calledElement"),
            topic=(properties.get("topic") or element.get(f"{{{CAMUNDA_NS}}}topic") or "").strip() or None)
    return model
