"""``tiergate scaffold bpmn CHECKLIST``: a first Tier 1 process drawn from a Tier 2 checklist.

The result is a linear BPMN process with diagram information, so it opens in Camunda Modeler
and bpmn.io as a pool with one lane per role (or kind of actor) the checklist names:

* each step becomes a userTask with the same id, its title as name, its instructions as
  documentation and its ``done_when`` as the ``gate`` property; ``actors``, ``distinct_from``
  and ``optional`` carry over as properties; a step limited to roles sits in the lane of its
  first role, a step limited to one kind of actor in the ``agent`` or ``human`` lane;
* a ``decide`` step becomes a businessRuleTask calling the same decision;
* steps follow one another in the checklist's order (``after`` is flattened into an order
  that respects it); the lead then draws the real gateways, loops and timers in a modeler;
* the checklist's ``inputs`` becomes the process's ``inputs`` property, and the schema files
  its gates reference are copied to ``processes/schemas/``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lxml import etree

from tiergate.bpmn.xml import BPMN_NS, BPMNDI_NS, CAMUNDA_NS, DC_NS, DI_NS
from tiergate.errors import UsageError

_NSMAP = {"bpmn": BPMN_NS, "bpmndi": BPMNDI_NS, "dc": DC_NS, "di": DI_NS, "camunda": CAMUNDA_NS}
TASK_W, TASK_H, EVENT = 120, 80, 36
GAP, LANE_H, LEFT, TOP, LABEL_W = 50, 140, 200, 80, 30


def _q(prefix: str, name: str) -> str:
    return f"{{{_NSMAP[prefix]}}}{name}"


def _order(checklist: Any) -> list[Any]:
    """The steps in checklist order, moved only as far as ``after`` demands."""
    placed: list[Any] = []
    remaining = list(checklist.steps)
    while remaining:
        for step in remaining:
            if all(p in {s.id for s in placed} for p in checklist.predecessors(step.id)):
                placed.append(step)
                remaining.remove(step)
                break
        else:  # a cycle; `tiergate check` reports it for the checklist
            placed.extend(remaining)
            break
    return placed


def _lane_of(step: Any) -> str | None:
    if step.decide is not None:
        return None
    if step.roles:
        return str(step.roles[0])
    if len(step.actors) == 1:
        return str(step.actors[0])
    return None


def _xml_id(step_id: str) -> str:
    return step_id if step_id[:1].isalpha() or step_id[:1] == "_" else f"step_{step_id}"


def _properties(parent: etree._Element, values: dict[str, str]) -> None:
    if not values:
        return
    extensions = etree.SubElement(parent, _q("bpmn", "extensionElements"))
    props = etree.SubElement(extensions, _q("camunda", "properties"))
    for name, value in values.items():
        etree.SubElement(props, _q("camunda", "property"), name=name, value=value)


def scaffold(checklist: Any) -> tuple[bytes, dict[str, int]]:
    """The BPMN XML for ``checklist`` (a tiergate Checklist model), and counts for the summary."""
    steps = _order(checklist)
    lanes: list[str] = []
    for step in steps:
        lane = _lane_of(step)
        if lane is not None and lane not in lanes:
            lanes.append(lane)
    unassigned = any(_lane_of(s) is None for s in steps)
    bands = len(lanes) + (1 if unassigned or not lanes else 0)

    root = etree.Element(_q("bpmn", "definitions"), nsmap=_NSMAP, id=f"{checklist.id}-definitions",
                         targetNamespace="https://tiergate.dev/processes", exporter="tiergate scaffold bpmn",
                         exporterVersion="1")
    collaboration = etree.SubElement(root, _q("bpmn", "collaboration"), id=f"{checklist.id}-collaboration")
    etree.SubElement(collaboration, _q("bpmn", "participant"), id=f"{checklist.id}-participant",
                     name=checklist.title, processRef=checklist.id)
    process = etree.SubElement(root, _q("bpmn", "process"), id=checklist.id, name=checklist.title,
                               isExecutable="true")
    doc = etree.SubElement(process, _q("bpmn", "documentation"))
    doc.text = (checklist.description or checklist.title) + "\n(Scaffolded from checklists/" + checklist.id + \
        ".yaml by `tiergate scaffold bpmn`.)"
    inputs = checklist.inputs if checklist.inputs != {"type": "object"} else None
    _properties(process, {"inputs": json.dumps(inputs, ensure_ascii=False)} if inputs else {})
    lane_set = etree.SubElement(process, _q("bpmn", "laneSet"), id=f"{checklist.id}-lanes") if lanes else None
    lane_elements: dict[str, etree._Element] = {}
    for name in lanes:
        assert lane_set is not None
        lane_elements[name] = etree.SubElement(lane_set, _q("bpmn", "lane"), id=f"lane-{name}", name=name)

    nodes: list[tuple[str, str, str | None]] = [("start", "startEvent", None)]
    etree.SubElement(process, _q("bpmn", "startEvent"), id="start", name="Start")
    for step in steps:
        node_id = _xml_id(step.id)
        lane = _lane_of(step)
        if step.decide is not None:
            element = etree.SubElement(process, _q("bpmn", "businessRuleTask"), id=node_id, name=step.title)
            element.set(_q("camunda", "decisionRef"), step.decide)
            nodes.append((node_id, "businessRuleTask", lane))
            continue
        element = etree.SubElement(process, _q("bpmn", "userTask"), id=node_id, name=step.title)
        if step.instructions:
            etree.SubElement(element, _q("bpmn", "documentation")).text = step.instructions
        values: dict[str, str] = {"gate": json.dumps(step.done_when or {"type": "object"}, ensure_ascii=False)}
        if set(step.actors) != {"agent", "human"} and lane not in ("agent", "human"):
            values["actors"] = ",".join(step.actors)
        if step.distinct_from:
            values["distinct_from"] = _xml_id(step.distinct_from)
        if step.optional:
            values["optional"] = "true"
        _properties(element, values)
        nodes.append((node_id, "userTask", lane))
        if lane is not None:
            etree.SubElement(lane_elements[lane], _q("bpmn", "flowNodeRef")).text = node_id
    etree.SubElement(process, _q("bpmn", "endEvent"), id="end", name="Done")
    nodes.append(("end", "endEvent", None))
    # Events sit in the lane of their neighbouring task.
    first_lane, last_lane = nodes[1][2] if len(nodes) > 2 else None, nodes[-2][2] if len(nodes) > 2 else None
    nodes[0] = ("start", "startEvent", first_lane)
    nodes[-1] = ("end", "endEvent", last_lane)
    for node_id, _kind, lane in (nodes[0], nodes[-1]):
        if lane is not None:
            etree.SubElement(lane_elements[lane], _q("bpmn", "flowNodeRef")).text = node_id
    flows = []
    for index, ((source, _, _), (target, _, _)) in enumerate(zip(nodes, nodes[1:]), start=1):
        flow_id = f"flow-{index}"
        etree.SubElement(process, _q("bpmn", "sequenceFlow"), id=flow_id, sourceRef=source, targetRef=target)
        flows.append((flow_id, source, target))

    # --- diagram ---
    diagram = etree.SubElement(root, _q("bpmndi", "BPMNDiagram"), id=f"{checklist.id}-diagram")
    plane = etree.SubElement(diagram, _q("bpmndi", "BPMNPlane"), id=f"{checklist.id}-plane",
                             bpmnElement=f"{checklist.id}-collaboration")
    width = LABEL_W + GAP + len(nodes) * (TASK_W + GAP)
    band_of = {name: i for i, name in enumerate(lanes)}
    unassigned_band = len(lanes)

    def bounds(parent: etree._Element, x: float, y: float, w: float, h: float) -> None:
        etree.SubElement(parent, _q("dc", "Bounds"), x=str(int(x)), y=str(int(y)), width=str(int(w)),
                         height=str(int(h)))

    shape = etree.SubElement(plane, _q("bpmndi", "BPMNShape"), id=f"{checklist.id}-participant_di",
                             bpmnElement=f"{checklist.id}-participant", isHorizontal="true")
    bounds(shape, LEFT - LABEL_W - GAP, TOP, width, bands * LANE_H)
    for name in lanes:
        shape = etree.SubElement(plane, _q("bpmndi", "BPMNShape"), id=f"lane-{name}_di", bpmnElement=f"lane-{name}",
                                 isHorizontal="true")
        bounds(shape, LEFT - GAP, TOP + band_of[name] * LANE_H, width - LABEL_W, LANE_H)
    centres: dict[str, tuple[float, float, float]] = {}
    for index, (node_id, kind, lane) in enumerate(nodes):
        band = band_of.get(lane, unassigned_band) if lane is not None else unassigned_band
        if not lanes:
            band = 0
        middle_y = TOP + band * LANE_H + LANE_H / 2
        x = LEFT + index * (TASK_W + GAP)
        w, h = (EVENT, EVENT) if kind.endswith("Event") else (TASK_W, TASK_H)
        x_left = x + (TASK_W - w) / 2
        shape = etree.SubElement(plane, _q("bpmndi", "BPMNShape"), id=f"{node_id}_di", bpmnElement=node_id)
        bounds(shape, x_left, middle_y - h / 2, w, h)
        centres[node_id] = (x_left, x_left + w, middle_y)
    for flow_id, source, target in flows:
        edge = etree.SubElement(plane, _q("bpmndi", "BPMNEdge"), id=f"{flow_id}_di", bpmnElement=flow_id)
        _, sx, sy = centres[source]
        tx, _, ty = centres[target]
        points = [(sx, sy), (tx, ty)] if sy == ty else [(sx, sy), ((sx + tx) / 2, sy), ((sx + tx) / 2, ty), (tx, ty)]
        for px, py in points:
            etree.SubElement(edge, _q("di", "waypoint"), x=str(int(px)), y=str(int(py)))
    xml = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return xml, {"steps": len(steps), "lanes": len(lanes)}


def write_scaffold(engine: Any, checklist_id: str, *, force: bool = False) -> dict[str, Any]:
    """Write ``processes/<id>.bpmn`` (and the schema files its gates use) from ``checklists/<id>.yaml``."""
    definition = engine.definitions.checklist(checklist_id)
    target: Path = engine.home.processes_dir / f"{checklist_id}.bpmn"
    if target.exists() and not force:
        raise UsageError(f"{engine.home.display(target)} already exists. Pass --force to overwrite it.",
                         code="usage", details={"path": engine.home.display(target)})
    xml, counts = scaffold(definition.checklist)
    target.parent.mkdir(parents=True, exist_ok=True)
    copied = []
    for uri, schema in definition.resources.items():
        destination = engine.home.processes_dir / uri
        if not destination.exists():
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            copied.append(engine.home.display(destination))
    target.write_bytes(xml)
    engine.reload()
    shown = engine.home.display(target)
    problems = [p.to_dict() for p in engine.definitions.problems if p.path == shown]
    return {"path": shown, "schemas": copied, "problems": problems, **counts}
