"""The platform's Tier 1 processes (processes/<id>.bpmn), checked as files: no Tier 1 runner needed.

What is checked, per process:

* the file is plain XML (no DOCTYPE, no entities) that a hardened parser reads, valid against the
  BPMN 2.0 schema, with the Camunda modeler attributes, and SpiffWorkflow's CamundaParser loads
  it (with the decisions it names, from decisions/);
* the diagram: a shape for the participant, every lane and every flow node, an edge for every
  sequence flow, each shape inside its lane and each edge docked on its source and target;
* lanes are roles from tiers/roles.yaml (or the kinds agent/human), and each task's actors can
  be found in its lane;
* every user/manual task has instructions and a gate that is a strict JSON Schema; the
  instructions only use data that is sure to exist when the task is ready (start data, or what
  the gates and decisions before it produce, on every path);
* decisions exist, and their inputs are required by the gates before them; gateway conditions
  are plain comparisons of available data with values the gates or decisions can produce;
* timers are ISO 8601 literals on tasks people do, and lead to escalation; every loop and every
  escalation is marked as a deviation;
* a walk-through of each process in SpiffWorkflow itself (tiergate's DMN engine for the
  decisions), with evidence that passes each gate and instructions rendered as the runner
  renders them, along the expected path and each deviation.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import pytest
import yaml
from jinja2 import nodes as jinja_nodes
from jsonschema import Draft202012Validator, FormatChecker
from lxml import etree

from support import REPO
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import MultiInstanceTask

from tiergate.dmn import load_dmn
from tiergate.templating import environment, render

PROCESSES = ["knowledge-ingestion", "client-config-change", "release-pipeline", "pay-scenario-test"]

NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "dc": "http://www.omg.org/spec/DD/20100524/DC",
    "di": "http://www.omg.org/spec/DD/20100524/DI",
    "camunda": "http://camunda.org/schema/1.0/bpmn",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
}
CAMUNDA = "{%s}" % NS["camunda"]
XSI_TYPE = "{%s}type" % NS["xsi"]
TASKS = ("userTask", "manualTask")
FLOW_NODES = ("startEvent", "endEvent", "userTask", "manualTask", "businessRuleTask", "scriptTask", "task",
              "exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway", "boundaryEvent",
              "intermediateCatchEvent", "intermediateThrowEvent", "subProcess", "callActivity")
TASK_PROPERTIES = {"gate", "actors", "distinct_from"}
ISO_DURATION = re.compile(r"P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?")


def hardened_parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                           huge_tree=False, remove_comments=False)


def local(element: etree._Element) -> str:
    return etree.QName(element).localname


# --- the model, read once per process -----------------------------------------------------------

@dataclass
class Flow:
    id: str
    source: str
    target: str
    element: etree._Element
    condition: str | None
    properties: dict[str, str]

    @property
    def deviation(self) -> bool:
        return self.properties.get("deviation") == "true"


@dataclass
class Model:
    process_id: str
    path: Path
    tree: etree._ElementTree
    process: etree._Element
    nodes: dict[str, etree._Element]
    flows: dict[str, Flow]
    lane_of: dict[str, list[str]]
    lanes: dict[str, etree._Element]
    properties: dict[str, dict[str, str]] = field(default_factory=dict)

    def kind(self, node_id: str) -> str:
        return local(self.nodes[node_id])

    def of_kind(self, *kinds: str) -> list[str]:
        return [node_id for node_id, element in self.nodes.items() if local(element) in kinds]

    def outgoing(self, node_id: str) -> list[Flow]:
        return [f for f in self.flows.values() if f.source == node_id]

    def incoming(self, node_id: str) -> list[Flow]:
        return [f for f in self.flows.values() if f.target == node_id]

    def attached(self, boundary_id: str) -> str:
        return self.nodes[boundary_id].get("attachedToRef")

    def documentation(self, node_id: str) -> str:
        docs = self.nodes[node_id].findall("bpmn:documentation", NS)
        return "".join(d.text or "" for d in docs)


def extension_properties(element: etree._Element) -> dict[str, str]:
    found: dict[str, str] = {}
    for prop in element.findall("bpmn:extensionElements/camunda:properties/camunda:property", NS):
        assert prop.get("name") not in found, f"{element.get('id')}: property {prop.get('name')!r} given twice"
        found[prop.get("name")] = prop.get("value")
    return found


@lru_cache(maxsize=None)
def model(process_id: str) -> Model:
    path = REPO / "processes" / f"{process_id}.bpmn"
    tree = etree.parse(str(path), hardened_parser())
    processes = tree.getroot().findall("bpmn:process", NS)
    assert len(processes) == 1, f"{path.name}: one bpmn:process per file"
    process = processes[0]
    nodes = {el.get("id"): el for el in process if local(el) in FLOW_NODES}
    flows = {}
    for el in process.findall("bpmn:sequenceFlow", NS):
        cond = el.find("bpmn:conditionExpression", NS)
        flows[el.get("id")] = Flow(el.get("id"), el.get("sourceRef"), el.get("targetRef"), el,
                                   None if cond is None else (cond.text or "").strip(), extension_properties(el))
    lanes = {lane.get("id"): lane for lane in process.findall("bpmn:laneSet/bpmn:lane", NS)}
    lane_of: dict[str, list[str]] = {}
    for lane in lanes.values():
        for ref in lane.findall("bpmn:flowNodeRef", NS):
            lane_of.setdefault(ref.text.strip(), []).append(lane.get("name"))
    m = Model(process_id, path, tree, process, nodes, flows, lane_of, lanes)
    m.properties = {node_id: extension_properties(el) for node_id, el in nodes.items()}
    return m


@lru_cache(maxsize=None)
def roles() -> dict[str, list[str]]:
    data = yaml.safe_load((REPO / "tiers" / "roles.yaml").read_text(encoding="utf-8"))
    return {name: list(body.get("members") or []) for name, body in data["roles"].items()}


@lru_cache(maxsize=None)
def catalog() -> dict[str, dict[str, Any]]:
    data = yaml.safe_load((REPO / "tiers" / "catalog.yaml").read_text(encoding="utf-8"))
    return {entry["id"]: entry for entry in data["processes"]}


def gate_schema(m: Model, task_id: str) -> dict[str, Any]:
    gate = m.properties[task_id]["gate"].strip()
    if gate.startswith("{"):
        return json.loads(gate)
    assert re.fullmatch(r"schemas/[A-Za-z0-9._-]+\.json", gate), f"{task_id}: gate {gate!r} is not schemas/NAME.json"
    return json.loads((REPO / "processes" / gate).read_text(encoding="utf-8"))


def gate_validator(m: Model, task_id: str) -> Draft202012Validator:
    return Draft202012Validator(gate_schema(m, task_id), format_checker=FormatChecker())


@dataclass
class Decision:
    id: str
    inputs: list[str]
    outputs: dict[str, list[Any] | None]  # output name -> allowed values (None: any)


def _literal(text: str) -> Any:
    text = text.strip()
    if text.startswith('"'):
        return json.loads(text)
    if text in ("true", "false"):
        return text == "true"
    return float(text) if "." in text else int(text)


@lru_cache(maxsize=None)
def decision(decision_id: str) -> Decision:
    """The decision as tiergate's DMN engine reads it (decisions/<id>.dmn)."""
    infos = {info.id: info for info in load_dmn(REPO / "decisions" / f"{decision_id}.dmn").decisions}
    assert decision_id in infos, f"decisions/{decision_id}.dmn has no decision {decision_id!r}"
    table = infos[decision_id].table
    assert table is not None, f"{decision_id} is not a decision table"
    outputs: dict[str, list[Any] | None] = {}
    for out in table.outputs:
        if out.allowed_values:
            outputs[out.name] = [_literal(v) for v in re.findall(r'"[^"]*"|[^,]+', out.allowed_values)]
        else:
            outputs[out.name] = [True, False] if out.type_ref == "boolean" else None
    return Decision(decision_id, [i.expression for i in table.inputs], outputs)


def decision_ref(m: Model, node_id: str) -> str:
    return m.nodes[node_id].get(CAMUNDA + "decisionRef")


# --- data-flow: what is sure to exist when a node is reached ----------------------------------

def _conjuncts(expression: str) -> list[tuple[str, Any]]:
    """(name, value) pairs that must hold when ``expression`` is true (only `name == literal` terms)."""
    tree = ast.parse(expression, mode="eval").body
    terms = tree.values if isinstance(tree, ast.BoolOp) and isinstance(tree.op, ast.And) else [tree]
    found = []
    for term in terms:
        if (isinstance(term, ast.Compare) and len(term.ops) == 1 and isinstance(term.ops[0], ast.Eq)
                and isinstance(term.left, ast.Name) and isinstance(term.comparators[0], ast.Constant)):
            found.append((term.left.id, term.comparators[0].value))
    return found


def _conditional_requirements(schema: dict[str, Any]) -> list[tuple[str, list[Any], set[str]]]:
    """(field, values, required keys) for each top-level `if field in values then required` rule."""
    rules = []
    for rule in [schema, *schema.get("allOf", [])]:
        cond, then = rule.get("if"), rule.get("then")
        if not (cond and then and then.get("required")):
            continue
        for name, body in (cond.get("properties") or {}).items():
            values = [body["const"]] if "const" in body else body.get("enum")
            if values is not None and name in (cond.get("required") or []):
                rules.append((name, values, set(then["required"])))
    return rules


def produced(m: Model, node_id: str) -> set[str]:
    kind = m.kind(node_id)
    if kind in TASKS:
        return set(gate_schema(m, node_id).get("required", []))
    if kind == "businessRuleTask":
        return set(decision(decision_ref(m, node_id)).outputs)
    return set()


def implied_by(m: Model, flow: Flow) -> set[str]:
    """Keys a flow's condition guarantees through the gates' if/then rules."""
    if not flow.condition:
        return set()
    keys: set[str] = set()
    for name, value in _conjuncts(flow.condition):
        per_gate = []
        for task in m.of_kind(*TASKS):
            schema = gate_schema(m, task)
            if name in (schema.get("properties") or {}):
                per_gate.append(set().union(*[req for field_, values, req in _conditional_requirements(schema)
                                              if field_ == name and value in values]))
        if per_gate:
            keys |= set.intersection(*per_gate)
    return keys


def must_hold(m: Model, gen: dict[str, set[str]], edge_gen: dict[str, set[str]] | None = None) -> dict[str, set[str]]:
    """Forward must-analysis: what holds on entry to each node, on every path from the start."""
    edge_gen = edge_gen or {}
    universe = set().union(*gen.values(), *edge_gen.values()) if gen else set()
    starts = m.of_kind("startEvent")
    entry = {n: (set() if n in starts else set(universe)) for n in m.nodes}
    changed = True
    while changed:
        changed = False
        for n in m.nodes:
            if n in starts:
                continue
            if m.kind(n) == "boundaryEvent":
                new = set(entry[m.attached(n)])
            else:
                ins = [entry[f.source] | gen[f.source] | edge_gen.get(f.id, set()) for f in m.incoming(n)]
                new = set.intersection(*ins) if ins else set()
            if new != entry[n]:
                entry[n], changed = new, True
    return entry


def available_data(m: Model) -> dict[str, set[str]]:
    return must_hold(m, {n: produced(m, n) for n in m.nodes}, {f.id: implied_by(m, f) for f in m.flows.values()})


def completed_before(m: Model) -> dict[str, set[str]]:
    return must_hold(m, {n: ({n} if m.kind(n) in TASKS else set()) for n in m.nodes})


def reachable(m: Model, start: Iterable[str], *, without: Iterable[str] = (),
              without_flows: Iterable[str] = ()) -> set[str]:
    without, without_flows = set(without), set(without_flows)
    seen, todo = set(), [s for s in start if s not in without]
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        nexts = [f.target for f in m.outgoing(n) if f.id not in without_flows]
        nexts += [b for b in m.of_kind("boundaryEvent") if m.attached(b) == n]
        todo += [x for x in nexts if x not in without]
    return seen


def _data_attr(node: jinja_nodes.Node) -> str | None:
    if isinstance(node, jinja_nodes.Getattr) and isinstance(node.node, jinja_nodes.Name) and node.node.name == "data":
        return node.attr
    if isinstance(node, jinja_nodes.Getitem) and isinstance(node.node, jinja_nodes.Name) and node.node.name == "data" \
            and isinstance(node.arg, jinja_nodes.Const):
        return node.arg.value
    return None


def _defined_in(test: jinja_nodes.Node) -> set[str]:
    """Names a condition makes sure of: `data.X is defined`, alone or joined with `and`."""
    if isinstance(test, jinja_nodes.And):
        return _defined_in(test.left) | _defined_in(test.right)
    if isinstance(test, jinja_nodes.Test) and test.name == "defined" and _data_attr(test.node):
        return {_data_attr(test.node)}
    return set()


def unguarded_data_names(source: str) -> set[str]:
    """Every data.NAME the template reads outside an `{% if data.NAME is defined %}` that protects it."""
    tree = environment().parse(source)
    names = {n.name for n in tree.find_all(jinja_nodes.Name) if n.ctx == "load"}
    assert names <= {"data"}, f"template reads {sorted(names - {'data'})}; instructions may only read data.KEY"
    used: set[str] = set()

    def visit(node: jinja_nodes.Node, guarded: set[str]) -> None:
        if isinstance(node, jinja_nodes.If):
            inner = guarded | _defined_in(node.test)
            visit(node.test, inner)
            for child in node.body:
                visit(child, inner)
            for child in [*node.elif_, *node.else_]:
                visit(child, guarded)
            return
        name = _data_attr(node)
        if name is not None and name not in guarded:
            used.add(name)
        for child in node.iter_child_nodes():
            visit(child, guarded)

    visit(tree, set())
    return used


JSON_TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool}


def field_values(m: Model) -> dict[str, tuple[set[Any] | None, set[type]]]:
    """Field -> (the values the gates' enum/const or the decisions' outputValues allow, or None; Python types)."""
    fields: dict[str, tuple[set[Any] | None, set[type]]] = {}

    def add(name: str, values: Iterable[Any] | None, types: Iterable[type]) -> None:
        known, known_types = fields.get(name, (set(), set()))
        fields[name] = (None if values is None or known is None else known | set(values), known_types | set(types))

    for task in m.of_kind(*TASKS):
        for name, body in (gate_schema(m, task).get("properties") or {}).items():
            values = body["enum"] if "enum" in body else [body["const"]] if "const" in body else None
            types = {type(v) for v in values} if values else set()
            if isinstance(body.get("type"), str):
                declared = JSON_TYPES.get(body["type"], ())
                types |= set(declared) if isinstance(declared, tuple) else {declared}
            add(name, values, types)
    for brt in m.of_kind("businessRuleTask"):
        for name, options in decision(decision_ref(m, brt)).outputs.items():
            add(name, options, {type(v) for v in options} if options else {str, int, float, bool})
    return fields


# --- 1. the file --------------------------------------------------------------------------------

@pytest.fixture(params=PROCESSES)
def m(request: pytest.FixtureRequest) -> Model:
    return model(request.param)


def test_the_four_tier1_catalog_processes_have_files() -> None:
    tier1 = sorted(pid for pid, entry in catalog().items()
                   if entry["facts"].get("compliance_critical") or entry["facts"].get("touches_live_systems"))
    assert tier1 == sorted(PROCESSES)
    assert sorted(p.stem for p in (REPO / "processes").glob("*.bpmn")) == sorted(PROCESSES)


def test_file_is_plain_xml_read_by_a_hardened_parser(m: Model) -> None:
    raw = m.path.read_bytes()
    assert raw.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    for marker in (b"<!DOCTYPE", b"<!ENTITY", b"<!ELEMENT", b"SYSTEM \"", b"xi:include", b"<?xml-stylesheet"):
        assert marker not in raw, f"{m.path.name} contains {marker!r}"
    tree = etree.parse(str(m.path), hardened_parser())
    assert tree.docinfo.doctype == "" and tree.docinfo.internalDTD is None
    raw.decode("utf-8")


def test_file_is_valid_bpmn_2_0_from_a_camunda_modeler(m: Model) -> None:
    from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnValidator

    root = etree.parse(str(m.path), hardened_parser()).getroot()
    BpmnValidator().validate(root, m.path.name)  # the OMG BPMN 2.0 XSD
    assert local(root) == "definitions" and root.nsmap.get("camunda") == NS["camunda"]
    assert root.get("exporter") == "Camunda Modeler" and root.get("exporterVersion")
    participants = root.findall("bpmn:collaboration/bpmn:participant", NS)
    assert [p.get("processRef") for p in participants] == [m.process_id]
    assert participants[0].get("name") == catalog()[m.process_id]["title"]


def test_process_id_is_the_file_stem_and_a_catalog_entry(m: Model) -> None:
    assert m.process.get("id") == m.path.stem == m.process_id
    assert m.process.get("isExecutable") == "true"
    assert m.process_id in catalog()
    described = "".join(d.text or "" for d in m.process.findall("bpmn:documentation", NS)).strip()
    assert len(described) >= 100, "the process's documentation says what it is for"


def test_spiffworkflow_camunda_parser_loads_the_spec(m: Model) -> None:
    from SpiffWorkflow.camunda.parser.CamundaParser import CamundaParser
    from SpiffWorkflow.camunda.specs.business_rule_task import BusinessRuleTask

    spec, subprocess_specs = spiff_spec(m.process_id)
    assert spec.name == m.process_id
    assert sorted(subprocess_specs) == called_processes(m)
    by_id = {ts.bpmn_id: ts for ts in spec.task_specs.values() if getattr(ts, "bpmn_id", None)}
    assert set(m.nodes) <= set(by_id), f"not in the spec: {sorted(set(m.nodes) - set(by_id))}"
    for task in m.of_kind(*TASKS):
        assert by_id[task].extensions.get("gate") == m.properties[task]["gate"]
        assert by_id[task].manual
    for brt in m.of_kind("businessRuleTask"):
        assert isinstance(by_id[brt], BusinessRuleTask)
    # Without the decisions, the Camunda parser refuses the business rule tasks: decisionRef is read.
    if m.of_kind("businessRuleTask"):
        bare = CamundaParser()
        bare.add_bpmn_xml(etree.parse(str(m.path), hardened_parser()), filename=m.path.name)
        with pytest.raises(Exception, match="No DMN Diagram available"):
            bare.get_spec(m.process_id)


# --- 2. lanes and actors ------------------------------------------------------------------------

def test_lanes_are_roles_or_actor_kinds_and_hold_every_node_once(m: Model) -> None:
    names = [lane.get("name") for lane in m.lanes.values()]
    assert names and len(names) == len(set(names)), "one lane per role"
    for name in names:
        assert name in roles() or name in ("agent", "human"), f"lane {name!r} is not a role in tiers/roles.yaml"
    for node_id in m.nodes:
        assert len(m.lane_of.get(node_id, [])) == 1, f"{node_id} is in lanes {m.lane_of.get(node_id)}"
    assert set(m.lane_of) <= set(m.nodes), f"flowNodeRef to unknown nodes: {sorted(set(m.lane_of) - set(m.nodes))}"
    for lane in m.lanes.values():
        assert lane.findall("bpmn:flowNodeRef", NS), f"lane {lane.get('name')} is empty"


def test_each_tasks_actors_can_be_found_in_its_lane(m: Model) -> None:
    for task in m.of_kind(*TASKS):
        lane = m.lane_of[task][0]
        raw = m.properties[task].get("actors")
        kinds = {k.strip() for k in raw.split(",")} if raw else {"agent", "human"}
        assert kinds and kinds <= {"agent", "human"}, f"{task}: actors {raw!r}"
        in_lane = {lane} if lane in ("agent", "human") else {member.split(":")[0] for member in roles()[lane]}
        assert kinds & in_lane, f"{task}: actors {sorted(kinds)} but lane {lane} only has {sorted(in_lane)}"


# --- 3. the diagram -----------------------------------------------------------------------------

@dataclass
class Bounds:
    x: float
    y: float
    w: float
    h: float

    def contains(self, other: "Bounds", slack: float = 0) -> bool:
        return (other.x >= self.x - slack and other.y >= self.y - slack and other.x + other.w <= self.x + self.w + slack
                and other.y + other.h <= self.y + self.h + slack)

    def on_border(self, px: float, py: float, tolerance: float = 2) -> bool:
        inside = self.x - tolerance <= px <= self.x + self.w + tolerance and self.y - tolerance <= py <= self.y + self.h + tolerance
        near = min(abs(px - self.x), abs(px - self.x - self.w), abs(py - self.y), abs(py - self.y - self.h)) <= tolerance
        return inside and near

    def overlaps(self, other: "Bounds") -> bool:
        return not (self.x + self.w <= other.x or other.x + other.w <= self.x or
                    self.y + self.h <= other.y or other.y + other.h <= self.y)

    @property
    def center(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y + self.h / 2


def diagram(m: Model) -> tuple[dict[str, Bounds], dict[str, list[tuple[float, float]]], etree._Element]:
    planes = m.tree.getroot().findall("bpmndi:BPMNDiagram/bpmndi:BPMNPlane", NS)
    assert len(planes) == 1
    shapes, edges = {}, {}
    for shape in planes[0].findall("bpmndi:BPMNShape", NS):
        b = shape.find("dc:Bounds", NS)
        assert shape.get("bpmnElement") not in shapes, f"two shapes for {shape.get('bpmnElement')}"
        shapes[shape.get("bpmnElement")] = Bounds(*(float(b.get(k)) for k in ("x", "y", "width", "height")))
    for edge in planes[0].findall("bpmndi:BPMNEdge", NS):
        edges[edge.get("bpmnElement")] = [(float(w.get("x")), float(w.get("y")))
                                          for w in edge.findall("di:waypoint", NS)]
    return shapes, edges, planes[0]


def test_diagram_has_a_shape_or_edge_for_everything(m: Model) -> None:
    shapes, edges, plane = diagram(m)
    collaboration = m.tree.getroot().find("bpmn:collaboration", NS)
    assert plane.get("bpmnElement") == collaboration.get("id")
    participant = collaboration.find("bpmn:participant", NS).get("id")
    expected = {participant, *m.lanes, *m.nodes}
    assert expected - set(shapes) == set(), f"no BPMNShape for {sorted(expected - set(shapes))}"
    assert set(shapes) - expected == set(), f"shapes for unknown elements {sorted(set(shapes) - expected)}"
    assert set(m.flows) - set(edges) == set(), f"no BPMNEdge for {sorted(set(m.flows) - set(edges))}"
    assert set(edges) - set(m.flows) == set()
    for flow_id, points in edges.items():
        assert len(points) >= 2, f"{flow_id}: an edge needs two waypoints"
    for element_id, bounds in shapes.items():
        assert bounds.w > 0 and bounds.h > 0, element_id


def test_diagram_is_laid_out_in_lanes_left_to_right(m: Model) -> None:
    shapes, edges, _ = diagram(m)
    participant = m.tree.getroot().find("bpmn:collaboration/bpmn:participant", NS).get("id")
    lane_shapes = sorted((shapes[lane_id].y, lane.get("name"), shapes[lane_id]) for lane_id, lane in m.lanes.items())
    for _, name, bounds in lane_shapes:
        assert shapes[participant].contains(bounds), f"lane {name} sticks out of the pool"
    for (_, upper, a), (_, lower, b) in zip(lane_shapes, lane_shapes[1:]):
        assert abs(a.y + a.h - b.y) < 1 and a.x == b.x and a.w == b.w, f"lanes {upper} and {lower} are not stacked"
    lane_bounds = {name: bounds for _, name, bounds in lane_shapes}
    for node_id in m.nodes:
        lane, b = lane_bounds[m.lane_of[node_id][0]], shapes[node_id]
        if m.kind(node_id) == "boundaryEvent":
            cx, cy = b.center
            assert lane.contains(Bounds(cx, cy, 0, 0)), f"{node_id} is drawn outside lane {m.lane_of[node_id][0]}"
            assert b.overlaps(shapes[m.attached(node_id)]), f"{node_id} is not drawn on {m.attached(node_id)}"
        else:
            assert lane.contains(b), f"{node_id} is drawn outside lane {m.lane_of[node_id][0]}"
    plain = [n for n in m.nodes if m.kind(n) != "boundaryEvent"]
    for i, a in enumerate(plain):
        for other in plain[i + 1:]:
            assert not shapes[a].overlaps(shapes[other]), f"{a} and {other} overlap"
    start = m.of_kind("startEvent")
    assert len(start) == 1
    assert all(shapes[start[0]].x < shapes[n].x for n in m.nodes if n != start[0]), "the start event comes first"
    for flow in m.flows.values():
        first, last = edges[flow.id][0], edges[flow.id][-1]
        assert shapes[flow.source].on_border(*first), f"{flow.id} does not leave {flow.source}"
        assert shapes[flow.target].on_border(*last), f"{flow.id} does not reach {flow.target}"


# --- 4. steps, gates and instructions ------------------------------------------------------------

def test_every_step_has_a_name_instructions_and_a_strict_gate(m: Model) -> None:
    tasks = m.of_kind(*TASKS)
    assert len(tasks) >= 5
    assert not m.of_kind("scriptTask", "task"), "steps are user or manual tasks"
    for task in tasks:
        element = m.nodes[task]
        assert re.fullmatch(r"[a-z][a-z0-9_]*", task), f"{task}: use a readable snake_case id"
        assert (element.get("name") or "").strip(), f"{task} has no name"
        assert len(m.documentation(task).strip()) >= 80, f"{task} has no real instructions"
        props = m.properties[task]
        assert set(props) <= TASK_PROPERTIES, f"{task}: unknown properties {sorted(set(props) - TASK_PROPERTIES)}"
        assert props.get("gate"), f"{task} has no gate"
        gate = props["gate"].strip()
        if not gate.startswith("{"):
            assert (REPO / "processes" / gate).is_file(), f"{task}: {gate} does not exist"
        schema = gate_schema(m, task)
        Draft202012Validator.check_schema(schema)
        assert schema.get("type") == "object" and schema.get("additionalProperties") is False, task
        assert schema.get("required"), f"{task}: the gate requires nothing"
        assert set(schema["required"]) <= set(schema.get("properties", {})), task
        for name in schema["properties"]:
            assert re.fullmatch(r"[a-z][a-z0-9_]*", name), f"{task}: field {name!r} cannot be read by a condition"


def test_every_schema_file_is_used_and_valid() -> None:
    used = {model(pid).properties[t]["gate"] for pid in PROCESSES for t in model(pid).of_kind(*TASKS)}
    files = {f"schemas/{p.name}" for p in (REPO / "processes" / "schemas").glob("*.json")}
    assert files - used == set(), f"unused gate schemas: {sorted(files - used)}"
    for name in files:
        schema = json.loads((REPO / "processes" / name).read_text(encoding="utf-8"))
        assert schema.get("$schema") == "https://json-schema.org/draft/2020-12/schema", name
        Draft202012Validator.check_schema(schema)
        assert "$ref" not in json.dumps(schema), f"{name}: keep gate schemas self-contained"


def test_gates_refuse_empty_and_unknown_evidence(m: Model) -> None:
    for task in m.of_kind(*TASKS):
        validator = gate_validator(m, task)
        assert not validator.is_valid({}), task
        assert not validator.is_valid({"unexpected_field": "x"}), task


def test_instructions_compile_and_read_only_data_that_exists(m: Model) -> None:
    available = available_data(m)
    for task in m.of_kind(*TASKS):
        missing = unguarded_data_names(m.documentation(task)) - available[task]
        assert not missing, (f"{task}: instructions read data.{sorted(missing)} which is not sure to exist when "
                             f"the step is ready; guard it with `is defined` or require it in an earlier gate")


# --- 5. decisions, gateways, timers, deviations ------------------------------------------------

def test_decisions_exist_and_their_inputs_are_required_before_them(m: Model) -> None:
    brts = m.of_kind("businessRuleTask")
    available = available_data(m)
    for brt in brts:
        ref = decision_ref(m, brt)
        assert ref and (REPO / "decisions" / f"{ref}.dmn").is_file(), f"{brt}: decisions/{ref}.dmn does not exist"
        assert decision(ref).id == ref
        inputs = set(decision(ref).inputs)
        assert inputs and inputs <= available[brt], f"{brt}: {sorted(inputs - available[brt])} not required before it"
        assert (m.nodes[brt].get("name") or "").strip()
        assert not m.properties[brt].get("gate"), f"{brt}: a decision has no evidence gate"


EXPECTED_DECISIONS = {"knowledge-ingestion": ["knowledge_validation_routing"], "release-pipeline": ["deployment_gate"],
                      "client-config-change": [], "pay-scenario-test": []}


def test_the_processes_call_the_platform_decisions(m: Model) -> None:
    assert [decision_ref(m, b) for b in m.of_kind("businessRuleTask")] == EXPECTED_DECISIONS[m.process_id]


ALLOWED_AST = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.Compare, ast.Eq, ast.NotEq,
               ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn, ast.Name, ast.Load, ast.Constant, ast.Tuple, ast.List)


def test_gateway_conditions_are_plain_comparisons_of_available_data(m: Model) -> None:
    available, fields = available_data(m), field_values(m)
    for flow in m.flows.values():
        if m.kind(flow.source) != "exclusiveGateway":
            assert flow.condition is None, f"{flow.id}: only gateway flows carry conditions"
    for gw in m.of_kind("exclusiveGateway"):
        out, default = m.outgoing(gw), m.nodes[gw].get("default")
        if len(out) == 1:
            assert out[0].condition is None and default is None, f"{gw}: a joining gateway has no conditions"
            continue
        assert default is None or default in {f.id for f in out}, f"{gw}: default {default} is not its flow"
        for flow in out:
            if flow.id == default:
                assert flow.condition is None, f"{flow.id}: the default flow has no condition"
                continue
            assert flow.condition, f"{flow.id} leaves {gw} without a condition"
            expr = flow.element.find("bpmn:conditionExpression", NS)
            assert expr.get(XSI_TYPE) == "bpmn:tFormalExpression"
            tree = ast.parse(flow.condition, mode="eval")
            for node in ast.walk(tree):
                assert isinstance(node, ALLOWED_AST), f"{flow.id}: {type(node).__name__} is not allowed in a condition"
            names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
            assert names <= available[gw], f"{flow.id}: reads {sorted(names - available[gw])}, not sure to exist"
            for name, value in _conjuncts(flow.condition):
                assert name in fields, f"{flow.id}: no gate or decision gives {name} a value"
                options, types = fields[name]
                if options is not None:
                    assert value in options, f"{flow.id}: {name} == {value!r}, but it can only be {sorted(map(repr, options))}"
                assert isinstance(value, tuple(types)), f"{flow.id}: {name} == {value!r} compares with the wrong type"


def test_timers_are_iso_8601_literals_on_human_steps_and_escalate(m: Model) -> None:
    from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

    boundaries = m.of_kind("boundaryEvent")
    assert boundaries, "a process where people decide needs an escalation timer"
    for b in boundaries:
        element = m.nodes[b]
        assert element.get("cancelActivity") == "false", f"{b}: escalation does not cancel the waiting step"
        attached = m.attached(b)
        assert m.kind(attached) in TASKS and m.properties[attached].get("actors") == "human", \
            f"{b}: escalate steps that people do"
        timers = element.findall("bpmn:timerEventDefinition", NS)
        assert len(timers) == 1 and len(element) == len(element.findall("bpmn:outgoing", NS)) + 1, b
        durations = timers[0].findall("bpmn:timeDuration", NS)
        assert len(durations) == 1, f"{b}: use a timeDuration"
        literal = durations[0].text.strip()
        assert ISO_DURATION.fullmatch(literal), f"{b}: {literal!r} is not an ISO 8601 duration"
        parsed = TimerEventDefinition.parse_iso_duration(literal)
        assert TimerEventDefinition.get_timedelta_from_start(parsed) >= timedelta(hours=1), b
        assert durations[0].get(XSI_TYPE) == "bpmn:tFormalExpression"
        outs = m.outgoing(b)
        assert outs and all(f.deviation for f in outs), f"{b}: escalation is a deviation"
        after = reachable(m, [f.target for f in outs])
        escalations = [n for n in after if m.kind(n) in TASKS]
        assert escalations, f"{b} leads to no escalation step"
        for task in escalations:
            assert m.lane_of[task][0] != m.lane_of[attached][0], f"{task}: escalate to someone else than {attached}'s role"


def test_every_loop_is_marked_as_a_deviation(m: Model) -> None:
    for flow in m.flows.values():
        assert set(flow.properties) <= {"deviation"}, f"{flow.id}: unknown properties {sorted(flow.properties)}"
        if "deviation" in flow.properties:
            assert flow.properties["deviation"] == "true", f"{flow.id}: deviation is 'true' or absent"
    assert any(f.deviation for f in m.flows.values())
    # Without the deviation flows, the process is a DAG: every way back is marked.
    graph = {n: [f.target for f in m.outgoing(n) if not f.deviation] for n in m.nodes}
    state: dict[str, int] = {}

    def visit(n: str, path: list[str]) -> None:
        state[n] = 1
        for nxt in graph[n]:
            assert state.get(nxt) != 1, f"unmarked loop: {' -> '.join(path + [n, nxt])}"
            if nxt not in state:
                visit(nxt, path + [n])
        state[n] = 2

    for n in m.nodes:
        if n not in state:
            visit(n, [])


def test_every_node_is_reachable_and_every_path_can_end(m: Model) -> None:
    start = m.of_kind("startEvent")
    assert reachable(m, start) == set(m.nodes), f"unreachable: {sorted(set(m.nodes) - reachable(m, start))}"
    ends = set(m.of_kind("endEvent"))
    for n in m.nodes:
        assert reachable(m, [n]) & ends, f"no end event can be reached from {n}"
    for e in ends:
        assert not m.outgoing(e) and (m.nodes[e].get("name") or "").strip(), e


def test_four_eyes_name_an_earlier_step(m: Model) -> None:
    before = completed_before(m)
    for task in m.of_kind(*TASKS):
        other = m.properties[task].get("distinct_from")
        if other:
            assert other != task and m.kind(other) in TASKS, f"{task}: distinct_from {other!r}"
            assert other in before[task], f"{task}: {other} is not done on every path before it"


# --- 6. what each process must guarantee ----------------------------------------------------------

def ends_without(m: Model, skipped: str) -> set[str]:
    """The end events still reachable from the start when ``skipped`` is taken out."""
    return reachable(m, m.of_kind("startEvent"), without={skipped}) & set(m.of_kind("endEvent"))


def test_knowledge_is_published_only_after_a_human_approval_or_an_auto_approval() -> None:
    m = model("knowledge-ingestion")
    approvals = {"approve_statutory_item": "compliance-officer", "approve_client_item": "client-lead",
                 "approve_curated_item": "knowledge-curator"}
    for task, lane in approvals.items():
        assert m.lane_of[task] == [lane] and m.properties[task]["actors"] == "human"
        assert any(m.attached(b) == task for b in m.of_kind("boundaryEvent")), f"{task} has no escalation timer"
    # The approver lanes follow the decision's approver_role values.
    router = next(g for g in m.of_kind("exclusiveGateway")
                  if any(f.condition and "approver_role" in f.condition for f in m.outgoing(g)))
    routed = {f.target: _conjuncts(f.condition)[0][1] if f.condition else "(default)" for f in m.outgoing(router)}
    assert set(routed) == set(approvals)
    assert {v for v in routed.values() if v != "(default)"} | {"knowledge-curator"} == \
        set(decision("knowledge_validation_routing").outputs["approver_role"])
    for task, role in routed.items():
        assert role in ("(default)", approvals[task])
    # Publishing needs a human approval or the decision's auto-approval: without both, it cannot be reached.
    auto = [f for f in m.flows.values() if f.condition and "auto_approve" in f.condition]
    assert len(auto) == 1 and "validation_tier == 3" in auto[0].condition
    start = m.of_kind("startEvent")
    assert "publish_item" in reachable(m, start, without=approvals)
    assert "publish_item" in reachable(m, start, without_flows=[auto[0].id])
    assert "publish_item" not in reachable(m, start, without=approvals, without_flows=[auto[0].id])
    rework = [f for f in m.flows.values() if f.target == "rework_item"]
    assert rework and all(f.deviation for f in rework)


def test_client_config_change_is_approved_by_another_client_lead_and_verified_before_production() -> None:
    m = model("client-config-change")
    assert m.lane_of["approve_change"] == ["client-lead"]
    assert m.properties["approve_change"]["distinct_from"] == "request_change"
    assert m.properties["approve_change"]["actors"] == "human"
    assert m.properties["promote_to_production"]["actors"] == "human"
    for gate_keeper in ("approve_change", "apply_in_uat", "verify_in_uat"):
        assert "change_live" not in ends_without(m, gate_keeper), f"production is reachable without {gate_keeper}"
    order = ["request_change", "assess_impact", "approve_change", "apply_in_uat", "verify_in_uat",
             "promote_to_production", "confirm_with_client"]
    before = completed_before(m)
    for i, task in enumerate(order):
        assert set(order[:i]) <= before[task], f"{task} can run before {sorted(set(order[:i]) - before[task])}"
    failed = next(f for f in m.outgoing("uat_verified") if f.target == "apply_in_uat")
    assert failed.deviation


def test_release_pipeline_gates_production_and_can_roll_back() -> None:
    m = model("release-pipeline")
    outcome = next(g for g in m.of_kind("exclusiveGateway")
                   if any(f.condition and "gate ==" in f.condition for f in m.outgoing(g)))
    values = {(_conjuncts(f.condition)[0][1] if f.condition else "default"): f for f in m.outgoing(outcome)}
    assert set(values) == {"approve", "escalate", "default"}
    assert values["default"].deviation, "block is the default, and a deviation"
    assert values["escalate"].target == "release_manager_decision"
    assert m.lane_of["release_manager_decision"] == ["release-manager"]
    assert any(m.attached(b) == "release_manager_decision" for b in m.of_kind("boundaryEvent"))
    assert m.lane_of["approve_production"] == ["release-manager"]
    assert m.properties["approve_production"]["actors"] == "human"
    to_production = [f for f in m.flows.values() if f.condition == 'environment == "production"']
    assert len(to_production) == 1 and to_production[0].target == "approve_production"
    bypass = m.nodes[to_production[0].source].get("default")
    assert bypass and m.flows[bypass].condition is None  # dev and uat skip the approval, by default only
    rollback = [f for f in m.flows.values() if f.target == "rollback_release"]
    assert rollback and all(f.deviation for f in rollback)
    assert m.outgoing("rollback_release")[0].target == "write_post_incident_note"
    assert "release_rolled_back" in reachable(m, ["rollback_release"])


def test_pay_scenario_sign_off_cannot_be_skipped() -> None:
    m = model("pay-scenario-test")
    assert m.lane_of["compliance_signoff"] == ["compliance-officer"]
    assert m.properties["compliance_signoff"]["actors"] == "human"
    assert "cycle_signed_off" not in ends_without(m, "compliance_signoff")
    assert "cycle_signed_off" not in ends_without(m, "compare_pay")
    assert any(m.attached(b) == "compliance_signoff" for b in m.of_kind("boundaryEvent"))
    into_signoff = m.incoming("compliance_signoff")
    assert [f.condition for f in into_signoff] == ["mismatch_count == 0"]
    assert completed_before(m)["compliance_signoff"] >= {"define_scenarios", "run_scenarios", "compare_pay"}


# --- 7. a walk-through in SpiffWorkflow ---------------------------------------------------------

def spiff_spec(process_id: str):  # type: ignore[no-untyped-def]
    from SpiffWorkflow.camunda.parser.CamundaParser import CamundaParser

    m = model(process_id)
    parser = CamundaParser()
    for ref in sorted({decision_ref(m, b) for b in m.of_kind("businessRuleTask")}):
        path = REPO / "decisions" / f"{ref}.dmn"
        parser.add_dmn_xml(etree.parse(str(path), hardened_parser()).getroot(), filename=str(path))
    parser.add_bpmn_xml(etree.parse(str(m.path), hardened_parser()), filename=str(m.path))
    for called in called_processes(m):  # a call activity's process, as tiergate pins it with the caller
        path = model(called).path
        parser.add_bpmn_xml(etree.parse(str(path), hardened_parser()), filename=str(path))
    return parser.get_spec(process_id), parser.get_subprocess_specs(process_id)


def called_processes(m: Model) -> list[str]:
    return sorted({m.nodes[n].get("calledElement") for n in m.of_kind("callActivity")})


def model_of_step(m: Model, step: str) -> Model:
    """The process a step belongs to: ``m``, or a process that ``m`` calls."""
    for candidate in [m, *(model(c) for c in called_processes(m))]:
        if base_step(step) in candidate.nodes:
            return candidate
    raise AssertionError(f"no process of {m.process_id} has a step {step}")


class TiergateDecision:
    """Stands in for SpiffWorkflow's DMN engine on a business rule task: tiergate evaluates the table."""

    def __init__(self, decision_id: str):
        self.decision = decision(decision_id)
        self.model = load_dmn(REPO / "decisions" / f"{decision_id}.dmn")

    def result(self, task: Any) -> dict[str, Any]:
        inputs = {name: task.data.get(name) for name in self.decision.inputs}
        value = self.model.evaluate(self.decision.id, inputs).value
        return {k: (int(v) if v == int(v) else float(v)) if isinstance(v, Decimal) else v for k, v in value.items()}


@dataclass
class Walk:
    process: str
    # (task, evidence overrides), ("timer", {"event": timer event id}) or ("message", {"name", "correlate", "data"})
    steps: list[tuple[str, dict[str, Any]]]
    ends: set[str]


def _merge_instance_evidence(spec: Any) -> None:
    """SpiffWorkflow's Camunda multi-instance writes only each instance's element variable back into
    the collection; tiergate (as Camunda 7 does with variables an instance sets) also merges what each
    instance's evidence set into the activity's data, before the completion condition is read."""
    plain = spec.merge_child

    def merge_child(workflow: Any, child: Any) -> None:
        skip = {getattr(spec.input_item, "bpmn_id", None), getattr(spec.data_output, "bpmn_id", None)}
        child.parent.data.update({k: v for k, v in child.data.items() if k not in skip})
        plain(workflow, child)

    spec.merge_child = merge_child


class Walker:
    def __init__(self, process_id: str):
        from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
        from SpiffWorkflow.bpmn.workflow import BpmnWorkflow

        class Engine(PythonScriptEngine):
            def evaluate(self, task, expression, external_context=None):  # type: ignore[no-untyped-def]
                if ISO_DURATION.fullmatch(expression.strip()):  # a modeler's literal timer value
                    return expression.strip()
                return super().evaluate(task, expression, external_context)

        self.m = model(process_id)
        spec, subprocess_specs = spiff_spec(process_id)
        for ts in spec.task_specs.values():
            if getattr(ts, "bpmn_id", None) in self.m.nodes and self.m.kind(ts.bpmn_id) == "businessRuleTask":
                ts.dmnEngine = TiergateDecision(decision_ref(self.m, ts.bpmn_id))
        for one in (spec, *subprocess_specs.values()):
            for ts in one.task_specs.values():
                if isinstance(ts, MultiInstanceTask):
                    _merge_instance_evidence(ts)
        self.workflow = BpmnWorkflow(spec, subprocess_specs, script_engine=Engine())
        self.workflow.do_engine_steps()
        self.done: list[str] = []

    def ready(self) -> dict[str, Any]:
        from SpiffWorkflow.util.task import TaskState

        return {t.task_spec.bpmn_id: t for t in self.workflow.get_tasks(state=TaskState.READY) if t.task_spec.manual}

    def fire(self, boundary: str) -> None:
        from SpiffWorkflow.util.task import TaskState

        waiting = [t for t in self.workflow.get_tasks(state=TaskState.WAITING) if t.task_spec.bpmn_id == boundary]
        assert len(waiting) == 1, f"timer {boundary} is not waiting"
        waiting[0]._set_internal_data(event_value=(datetime.now(timezone.utc) - timedelta(seconds=1)).isoformat())
        self.workflow.refresh_timers()
        self.workflow.do_engine_steps()

    def message(self, name: str, data: dict[str, Any]) -> None:
        from SpiffWorkflow.bpmn.specs.event_definitions import MessageEventDefinition
        from SpiffWorkflow.bpmn.util.event import BpmnEvent
        from SpiffWorkflow.util.task import TaskState

        def definitions(task: Any) -> list[Any]:
            definition = task.task_spec.event_definition
            return [d for d in getattr(definition, "event_definitions", [definition])
                    if isinstance(d, MessageEventDefinition) and d.name == name]

        waiting = [t for t in self.workflow.get_tasks(state=TaskState.WAITING)
                   if getattr(t.task_spec, "event_definition", None) is not None and definitions(t)]
        assert len(waiting) == 1, f"no one task waits for message {name}"
        task = waiting[0]
        # the parser's own message class (Camunda's, whose payload names the variable it lands in)
        definition = definitions(task)[0]
        payload = {"payload": dict(data), "result_var": None} if hasattr(definition, "result_var") else dict(data)
        event = BpmnEvent(type(definition)(name), payload=payload)
        assert task.task_spec.catches(task, event), f"{task.task_spec.bpmn_id} does not catch {name}"
        task.task_spec.catch(task, event)
        task.task_spec._update(task)
        self.workflow.do_engine_steps()

    def complete(self, step: str, evidence: dict[str, Any]) -> None:
        from SpiffWorkflow.util.task import TaskState

        task_id = base_step(step)  # an instance of a multi-instance task: any of its ready instances
        ready = [t for t in self.workflow.get_tasks(state=TaskState.READY)
                 if t.task_spec.manual and t.task_spec.bpmn_id == task_id]
        assert ready, f"{step} is not ready; ready: {sorted(self.ready())}"
        task = ready[0]
        owner = model_of_step(self.m, task_id)
        text = render(owner.documentation(task_id), {"data": dict(task.data)}, where=f"{task_id} instructions")
        assert "{{" not in text and text.strip()
        errors = [e.message for e in gate_validator(owner, task_id).iter_errors(evidence)]
        assert not errors, f"{task_id}: sample evidence fails its gate: {errors}"
        task.data.update(json.loads(json.dumps(evidence)))
        task.run()
        self.workflow.do_engine_steps()
        self.done.append(step)

    def ends(self) -> set[str]:
        from SpiffWorkflow.util.task import TaskState

        return {t.task_spec.bpmn_id for t in self.workflow.get_tasks(state=TaskState.COMPLETED)
                if t.task_spec.bpmn_id in self.m.nodes and self.m.kind(t.task_spec.bpmn_id) == "endEvent"}


CONTENT = ("From 6 April 2025 the weekly rate of statutory sick pay is 118.75. Employers pay it for up to 28 weeks "
           "to employees earning at least the lower earnings limit; waiting days are unchanged.")
ESCALATION = {"escalation_action": "reminded-approver", "contacted": "the approver, by phone",
              "escalation_notes": "Reached the approver, who will decide today."}

EVIDENCE: dict[str, dict[str, Any]] = {
    # knowledge-ingestion
    "extract_item": {"item_title": "Statutory sick pay weekly rate from 6 April 2025", "knowledge_type": "statutory-rule",
                     "source": "legislation", "source_reference": "https://www.legislation.gov.uk/uksi/2025/1",
                     "confidence": 0.97, "confidence_basis": "Rate and date copied from the statutory instrument.",
                     "content": CONTENT, "effective_date": "2025-04-06"},
    "approve_statutory_item": {"approval_decision": "approve", "checked": ["rate", "effective date", "conflicts"],
                               "review_notes": "Matches the statutory instrument word for word."},
    "approve_client_item": {"approval_decision": "approve", "checked": ["configuration", "confidentiality"],
                            "review_notes": "Matches CL-0042's pay calendar and contract."},
    "approve_curated_item": {"approval_decision": "approve", "checked": ["accuracy", "duplicates", "style"],
                             "review_notes": "Checked against the product, no duplicate article."},
    "rework_item": {"item_title": "Statutory sick pay weekly rate from 6 April 2025", "knowledge_type": "statutory-rule",
                    "source": "legislation", "source_reference": "https://www.legislation.gov.uk/uksi/2025/1",
                    "confidence": 0.99, "confidence_basis": "Rate, date and limits checked against the act.",
                    "content": CONTENT + " The lower earnings limit is 125 a week.", "effective_date": "2025-04-06",
                    "changes_made": ["added the lower earnings limit"]},
    "publish_item": {"article_id": "KB-20931", "article_version": 1, "article_url": "https://kb.example.com/KB-20931",
                     "published_at": "2025-03-14T09:30:00Z"},
    "chase_approval": ESCALATION,
    "chase_curation": ESCALATION,
    "link_source_by_hand": {"source_link_outcome": "source-has-no-system",
                            "source_link_notes": "A model draft has no source system; curators review it each release."},
    # client-config-change
    "request_change": {"client_id": "CL-0042", "request_ticket": "SUP-10234", "client_contact": "payroll@client.example",
                       "change_summary": "Raise the London weighting allowance to 4,200 a year",
                       "change_category": "pay-rate", "requested_effective_date": "2025-05-01",
                       "change_description": "Pay element LWA (London weighting) for pay group LON-MONTHLY: annual "
                                             "amount from 3,900 to 4,200, pro rata for part-time staff, as agreed in "
                                             "the client's 2025 pay award."},
    "assess_impact": {"impact_summary": "Gross and net pay rise for 212 London employees; pension and tax follow.",
                      "pay_impact": ["gross-pay", "deductions", "net-pay"], "affected_pay_groups": ["LON-MONTHLY"],
                      "affected_employees": 212, "risk_level": "medium", "next_pay_date": "2025-04-25",
                      "test_scenarios": ["PS-104", "PS-118"],
                      "rollback_plan": "Restore LWA to 3,900 from the change record; the client lead does it."},
    "approve_change": {"approval_decision": "approve", "checked": ["request", "impact", "scenarios", "rollback"],
                       "decision_notes": "Matches the signed pay award.", "change_window_start": "2025-04-28T18:00:00Z"},
    "escalate_approval": ESCALATION,
    "apply_in_uat": {"uat_change_reference": "CHG-20418", "applied_at": "2025-04-22T10:00:00Z",
                     "items_changed": [{"item": "LWA annual amount", "old_value": "3900", "new_value": "4200"}]},
    "verify_in_uat": {"verification_result": "passed", "mismatch_count": 0, "evidence_url": "https://qa.example.com/r/1",
                      "scenario_results": [{"scenario_id": "PS-104", "result": "pass"},
                                           {"scenario_id": "PS-118", "result": "pass"}]},
    "promote_to_production": {"production_change_reference": "CHG-20419", "promoted_at": "2025-04-28T18:30:00Z",
                              "items_changed": [{"item": "LWA annual amount", "old_value": "3900", "new_value": "4200"}],
                              "matches_uat": True, "post_change_check": "LWA reads 4,200 on three sampled employees."},
    "confirm_with_client": {"client_confirmed": True, "confirmation_reference": "SUP-10234",
                            "confirmed_at": "2025-04-29T09:00:00Z", "first_pay_run_date": "2025-05-23"},
    # release-pipeline
    "record_test_results": {"release_version": "24.3.1", "build_id": "BLD-88213", "environment": "uat",
                            "change_type": "standard", "tests_total": 400, "tests_failed": 4, "test_pass_rate": 0.99,
                            "test_report_url": "https://ci.example.com/BLD-88213"},
    "fix_failures": {"defects": ["DEF-4711"], "fix_summary": "Rounding of pension contributions fixed.",
                     "new_build_id": "BLD-88230"},
    "release_manager_decision": {"release_decision": "approve",
                                 "decision_rationale": "The hotfix stops wrong tax codes; the failures are cosmetic.",
                                 "accepted_risks": ["Two payslip layout tests fail (DEF-4720)"]},
    "approve_production": {"production_approval": "approve", "approval_notes": "Window is clear of pay runs.",
                           "change_window_start": "2025-04-28T20:00:00Z",
                           "rollout_plan_url": "https://wiki.example.com/rollout/24.3.1",
                           "rollback_plan_url": "https://wiki.example.com/rollback/24.3.1"},
    "deploy_release": {"deployment_id": "DEP-5120", "deployed_version": "24.3.1", "deployed_at": "2025-04-28T20:40:00Z",
                       "tenants_updated": 2, "client_tenants": ["CL-0042", "CL-0107"],
                       "deploy_log_url": "https://ci.example.com/DEP-5120"},
    "verify_deployment": {"verification_result": "passed", "verified_at": "2025-04-28T21:10:00Z",
                          "checks": [{"check": "version on every tenant", "result": "pass"},
                                     {"check": "smoke pay run", "result": "pass"}]},
    "rollback_release": {"rollback_deployment_id": "DEP-5121", "rolled_back_to": "24.3.0",
                         "rolled_back_at": "2025-04-28T21:40:00Z", "tenants_restored": 180, "rollback_verified": True},
    "write_post_incident_note": {"incident_reference": "INC-311",
                                 "root_cause": "A migration ran twice on tenants with two pay calendars.",
                                 "client_impact": "No pay run was affected; payslips were unavailable 30 minutes.",
                                 "follow_up_defects": ["DEF-4730"], "note_url": "https://wiki.example.com/INC-311"},
    "escalate_release_decision": ESCALATION,
    # pay-scenario-test
    "define_scenarios": {"cycle_target": "release-candidate", "target_reference": "24.3.1", "test_environment": "test",
                         "scenarios": [{"scenario_id": "PS-104", "category": "gross-to-net",
                                        "description": "Monthly salaried employee, standard tax code"},
                                       {"scenario_id": "PS-231", "category": "pension",
                                        "description": "Salary sacrifice pension at 5%"}],
                         "coverage_rationale": "24.3.1 changes pension rounding; core gross-to-net as a control."},
    "run_scenarios": {"test_run_id": "PSR-901", "scenarios_run": 2, "scenarios_not_run": 0,
                      "executed_at": "2025-04-20T08:00:00Z", "results_url": "https://qa.example.com/PSR-901"},
    "compare_pay": {"scenarios_compared": 2, "mismatch_count": 0, "mismatches": [],
                    "comparison_report_url": "https://qa.example.com/PSR-901/compare"},
    "raise_defects": {"defects": ["DEF-4711"], "fix_reference": "BLD-88230",
                      "variance_analysis": "Employer pension rounded half-down instead of half-up."},
    "compliance_signoff": {"signoff_decision": "approved", "checked": ["coverage", "expected results", "defects"],
                           "signoff_notes": "Pension rounding verified against scheme rules."},
    "escalate_signoff": ESCALATION,
}


def base_step(step: str) -> str:
    """The task of a step: ``verify_deployment`` for the instance ``verify_deployment[1]``."""
    return step.split("[", 1)[0]


def ev(task: str, *, drop: tuple[str, ...] = (), **overrides: Any) -> tuple[str, dict[str, Any]]:
    """The sample evidence for ``task``, with fields changed or dropped."""
    evidence = {**EVIDENCE[base_step(task)], **overrides}
    return task, {k: v for k, v in evidence.items() if k not in drop}


def timer(boundary: str) -> tuple[str, dict[str, Any]]:
    return "timer", {"event": boundary}


def source_linked(article_id: str = "KB-20931") -> tuple[str, dict[str, Any]]:
    """The source system's confirmation that it links the published article to its source."""
    return "message", {"name": "source_linked", "correlate": {"article_id": article_id},
                       "data": {"source_linked_at": "2025-03-14T09:35:00Z"}}


WALKS = {
    "knowledge: a trusted how-to is auto-approved and published": Walk("knowledge-ingestion", [
        ev("extract_item", knowledge_type="product-howto", source="vendor-docs", confidence=0.95,
           source_reference="https://docs.vendor.example/payslips"),
        ev("publish_item"), source_linked(),
    ], {"knowledge_published"}),
    "knowledge: statutory item escalated, rejected, reworked and approved by compliance": Walk("knowledge-ingestion", [
        ev("extract_item"),
        timer("statutory_approval_overdue"),
        ev("chase_approval"),
        ev("approve_statutory_item", approval_decision="reject",
           rework_instructions="State the lower earnings limit that applies from the same date."),
        ev("rework_item"),
        ev("approve_statutory_item"),
        ev("publish_item"), source_linked(),
    ], {"knowledge_published", "escalation_handled"}),
    "knowledge: client-specific item goes to the client lead, chased by a curator": Walk("knowledge-ingestion", [
        ev("extract_item", knowledge_type="client-specific", source="support-ticket", source_reference="SUP-10234",
           client_id="CL-0042", drop=("effective_date",)),
        timer("client_approval_overdue"),
        ev("approve_client_item"),
        ev("chase_approval", escalation_action="deadline-extended", new_due_by="2025-03-20T17:00:00Z"),
        ev("publish_item"), source_linked(),
    ], {"knowledge_published", "escalation_handled"}),
    "knowledge: a model draft goes to a curator, whose delay goes to the support lead": Walk("knowledge-ingestion", [
        ev("extract_item", knowledge_type="internal-note", source="llm-draft", confidence=0.95, drop=("effective_date",)),
        timer("curator_approval_overdue"),
        ev("chase_curation", escalation_action="assigned-stand-in", stand_in="human:oscar"),
        ev("approve_curated_item"),
        ev("publish_item"),
        timer("await_source_link"),
        ev("link_source_by_hand"),
    ], {"knowledge_published", "curation_escalated"}),
    "knowledge: an internal note at low confidence is Tier 3 but a curator approves it": Walk("knowledge-ingestion", [
        ev("extract_item", knowledge_type="internal-note", source="sme", confidence=0.5,
           source_reference="https://wiki.example.com/notes/payslip-reprint", drop=("effective_date",)),
        ev("approve_curated_item"),
        ev("publish_item"), source_linked(),
    ], {"knowledge_published"}),
    "config change: the expected path": Walk("client-config-change", [
        ev("request_change"), ev("assess_impact"), ev("approve_change"), ev("apply_in_uat"), ev("verify_in_uat"),
        ev("define_scenarios", cycle_target="configuration-change", target_reference="CHG-20418", client_id="CL-0042"),
        ev("run_scenarios"), ev("compare_pay"), ev("compliance_signoff"),
        ev("promote_to_production"), ev("confirm_with_client"),
    ], {"change_live"}),
    "config change: escalated, sent back, failed in UAT, then promoted": Walk("client-config-change", [
        ev("request_change"), ev("assess_impact"),
        timer("approval_overdue"),
        ev("escalate_approval", escalation_action="assigned-stand-in", stand_in="human:nina"),
        ev("approve_change", approval_decision="rework", decision_notes="The assessment misses part-time staff.",
           rework_instructions="Include the 31 part-time employees and a pro rata scenario.",
           drop=("change_window_start",)),
        ev("assess_impact", affected_employees=243, test_scenarios=["PS-104", "PS-118", "PS-119"]),
        ev("approve_change"),
        ev("apply_in_uat"),
        ev("verify_in_uat", verification_result="failed", mismatch_count=31,
           scenario_results=[{"scenario_id": "PS-119", "result": "fail"}],
           failure_notes="Pro rata not applied: part-time staff get the full 4,200."),
        ev("apply_in_uat", uat_change_reference="CHG-20420"),
        ev("verify_in_uat"),
        ev("define_scenarios", cycle_target="configuration-change", target_reference="CHG-20418", client_id="CL-0042"),
        ev("run_scenarios"), ev("compare_pay"), ev("compliance_signoff"),
        ev("promote_to_production"), ev("confirm_with_client"),
    ], {"change_live", "approval_escalation_handled"}),
    "config change: rejected": Walk("client-config-change", [
        ev("request_change"), ev("assess_impact"),
        ("approve_change", {"approval_decision": "reject", "checked": ["contract"],
                            "decision_notes": "The contract caps the allowance at 4,000."}),
    ], {"change_rejected"}),
    "release: dev build needs no production approval": Walk("release-pipeline", [
        ev("record_test_results", environment="dev", test_pass_rate=0.85, tests_failed=60),
        ev("deploy_release"), ev("verify_deployment[0]"), ev("verify_deployment[1]"),
    ], {"release_live"}),
    "release: production standard release, approved by a person": Walk("release-pipeline", [
        ev("record_test_results", environment="production", test_pass_rate=0.97, tests_failed=12,
           pay_scenario_signoff="https://tiergate.example.com/runs/pay-scenario-test/42"),
        ev("approve_production"), ev("deploy_release"), ev("verify_deployment[0]"), ev("verify_deployment[1]"),
    ], {"release_live"}),
    "release: blocked, fixed, re-tested, then rolled back": Walk("release-pipeline", [
        ev("record_test_results", test_pass_rate=0.9, tests_failed=40),
        ev("fix_failures"),
        ev("record_test_results", build_id="BLD-88230"),
        ev("deploy_release"),
        ev("verify_deployment[1]", verification_result="failed",
           checks=[{"check": "smoke pay run", "result": "fail"}],
           failure_summary="Smoke pay run fails on tenants with two pay calendars."),
        ev("rollback_release"), ev("write_post_incident_note"),
    ], {"release_rolled_back"}),
    "release: hotfix escalated past its timer, approved, then stopped at production": Walk("release-pipeline", [
        ev("record_test_results", environment="production", change_type="hotfix", test_pass_rate=0.9, tests_failed=40,
           pay_scenario_signoff="https://tiergate.example.com/runs/pay-scenario-test/43"),
        timer("release_decision_overdue"),
        ev("escalate_release_decision"),
        ev("release_manager_decision"),
        ("approve_production", {"production_approval": "reject", "approval_notes": "A year-end pay run is in progress."}),
    ], {"release_stopped", "escalation_handled"}),
    "release: major change escalated, blocked, fixed and approved": Walk("release-pipeline", [
        ev("record_test_results", environment="production", change_type="major", test_pass_rate=1, tests_failed=0,
           pay_scenario_signoff="https://tiergate.example.com/runs/pay-scenario-test/44"),
        ("release_manager_decision", {"release_decision": "block",
                                      "decision_rationale": "The rollback for this major change is not rehearsed."}),
        ev("fix_failures", defects=["DEF-4740"]),
        ev("record_test_results", environment="production", change_type="major", test_pass_rate=1, tests_failed=0,
           build_id="BLD-88240", pay_scenario_signoff="https://tiergate.example.com/runs/pay-scenario-test/45"),
        ev("release_manager_decision", accepted_risks=["First major release on the new pension engine"]),
        timer("production_approval_overdue"),
        ev("approve_production"), ev("escalate_release_decision"),
        ev("deploy_release"), ev("verify_deployment[1]"), ev("verify_deployment[0]"),
    ], {"release_live", "escalation_handled"}),
    "pay scenarios: clean cycle signed off": Walk("pay-scenario-test", [
        ev("define_scenarios"), ev("run_scenarios"), ev("compare_pay"), ev("compliance_signoff"),
    ], {"cycle_signed_off"}),
    "pay scenarios: mismatches, defects, re-run, escalation and a rejected sign-off": Walk("pay-scenario-test", [
        ev("define_scenarios", cycle_target="configuration-change", target_reference="CHG-20418", client_id="CL-0042"),
        ev("run_scenarios"),
        ev("compare_pay", mismatch_count=1, mismatches=[{"scenario_id": "PS-231", "employee_ref": "E1002",
                                                          "pay_element": "employer pension", "expected": 212.5,
                                                          "actual": 212.49}]),
        ev("raise_defects"),
        ev("run_scenarios", test_run_id="PSR-902"),
        ev("compare_pay"),
        timer("signoff_overdue"),
        ev("escalate_signoff"),
        ("compliance_signoff", {"signoff_decision": "rejected", "checked": ["coverage"],
                                "signoff_notes": "Coverage misses year-end.",
                                "rejection_reasons": "Add the year-end scenarios: the change lands in April."}),
        ev("define_scenarios", scenarios=[*EVIDENCE["define_scenarios"]["scenarios"],
                                          {"scenario_id": "PS-501", "category": "year-end",
                                           "description": "Year-end submission with pension"}]),
        ev("run_scenarios", test_run_id="PSR-903", scenarios_run=3), ev("compare_pay", scenarios_compared=3),
        ev("compliance_signoff"),
    ], {"cycle_signed_off", "escalation_handled"}),
}


@pytest.mark.parametrize("name", list(WALKS))
def test_walk_through_in_spiffworkflow(name: str) -> None:
    walk = WALKS[name]
    walker = Walker(walk.process)
    for step, evidence in walk.steps:
        if step == "timer":
            walker.fire(evidence["event"])
        elif step == "message":
            walker.message(evidence["name"], evidence["data"])
        else:
            walker.complete(step, evidence)
    assert walker.workflow.is_completed(), f"still ready: {sorted(walker.ready())}"
    assert walker.ends() == walk.ends


def test_the_walk_throughs_cover_every_step_flow_and_end() -> None:
    for pid in PROCESSES:
        m = model(pid)
        steps = {base_step(step) for walk in WALKS.values() if walk.process == pid for step, _ in walk.steps
                 if step not in ("timer", "message")}
        fired = {ev_["event"] for walk in WALKS.values() if walk.process == pid for step, ev_ in walk.steps
                 if step == "timer"}
        ends = set().union(*[walk.ends for walk in WALKS.values() if walk.process == pid])
        assert set(m.of_kind(*TASKS)) <= steps, f"{pid}: no walk-through completes {sorted(set(m.of_kind(*TASKS)) - steps)}"
        assert set(m.of_kind("boundaryEvent")) <= fired, f"{pid}: no walk-through fires {sorted(set(m.of_kind('boundaryEvent')) - fired)}"
        assert set(m.of_kind("endEvent")) == ends, f"{pid}: no walk-through ends at {sorted(set(m.of_kind('endEvent')) - ends)}"


def test_a_gate_refuses_evidence_that_would_mislead_the_next_decision() -> None:
    m = model("release-pipeline")
    validator = gate_validator(m, "record_test_results")
    good = EVIDENCE["record_test_results"]
    assert validator.is_valid(good)
    assert not validator.is_valid({**good, "test_pass_rate": 98})  # a percentage, not a rate
    assert not validator.is_valid({**good, "environment": "staging"})
    assert not validator.is_valid({**good, "environment": "production"})  # production needs the pay scenario sign-off
    k = model("knowledge-ingestion")
    item = gate_validator(k, "extract_item")
    assert not item.is_valid({**EVIDENCE["extract_item"], "confidence": 1.5})
    assert not item.is_valid({key: v for key, v in EVIDENCE["extract_item"].items() if key != "effective_date"})
    approval = gate_validator(k, "approve_statutory_item")
    assert not approval.is_valid({"approval_decision": "reject", "checked": ["rate"],
                                  "review_notes": "The rate is wrong in the second paragraph."})
    p = model("pay-scenario-test")
    comparison = gate_validator(p, "compare_pay")
    assert not comparison.is_valid({**EVIDENCE["compare_pay"], "mismatch_count": 2})  # mismatches must be listed
    assert not gate_validator(p, "define_scenarios").is_valid({**EVIDENCE["define_scenarios"], "scenarios": []})
    c = model("client-config-change")
    assert not gate_validator(c, "verify_in_uat").is_valid({**EVIDENCE["verify_in_uat"], "mismatch_count": 3})
    assert not gate_validator(c, "approve_change").is_valid(
        {k_: v for k_, v in EVIDENCE["approve_change"].items() if k_ != "change_window_start"})


# --- 8. the same walk-throughs through tiergate's Engine (the Tier 1 runner) --------------------

def _actor(m: Model, step: str, done_by: dict[str, str], *, requester: str = "human:ivan") -> str:
    """Someone the step's lane and actors allow, and not whoever did its distinct_from step."""
    step = base_step(step)
    m = model_of_step(m, step)
    lane = m.lane_of[step][0]
    kinds = set((m.properties[step].get("actors") or "agent,human").split(","))
    if lane == "human":
        candidates = [requester]
    elif lane == "agent":
        candidates = ["agent:platform-bot"]
    else:
        candidates = [member for member in roles()[lane] if member.split(":")[0] in kinds]
    other = m.properties[step].get("distinct_from")
    candidates = [c for c in candidates if not other or done_by.get(other) != c]
    assert candidates, f"nobody may do {step}"
    return candidates[0]


def start_walk(engine: Any, name: str, steps: int = 1) -> str:
    """A run of walk-through ``name`` past its first ``steps`` steps and messages (each step done by
    someone its lane allows; the first one's actor starts the run): the run's id."""
    walk = WALKS[name]
    m, done_by, run = model(walk.process), {}, None
    for step, evidence in walk.steps[:steps]:
        assert step != "timer", "start_walk does steps and messages, not timers"
        if step == "message":
            engine.message(evidence["name"], evidence["correlate"], evidence["data"], actor="agent:source-sync")
            continue
        done_by[step] = _actor(m, step, done_by)
        run = run or engine.start(walk.process, {}, actor=done_by[step])
        engine.complete(run.id, step, evidence, actor=done_by[step])
    assert run is not None
    return str(run.id)


@pytest.fixture
def tier1_engine(repo_home: Path, make_engine: Any) -> Any:
    pytest.importorskip("tiergate.runners.bpmn")
    return make_engine(repo_home)


@pytest.mark.parametrize("name", list(WALKS))
def test_walk_through_runs_to_completion_in_the_engine(name: str, tier1_engine: Any) -> None:
    run_pass = pytest.importorskip("tiergate.worker").run_pass
    walk, m = WALKS[name], model(WALKS[name].process)
    first = walk.steps[0][0]
    run = tier1_engine.start(walk.process, {}, actor=_actor(m, first, {}))
    assert run.tier == 1 and run.status == "active"
    done_by: dict[str, str] = {}
    info = run
    for step, evidence in walk.steps:
        if step == "timer":
            fired = run_pass(tier1_engine, now=datetime.now(timezone.utc) + timedelta(days=4))
            assert [f.run for f in fired] == [run.id], f"{evidence['event']} did not fire"
            info = tier1_engine.status(run.id)
            continue
        if step == "message":
            info = tier1_engine.message(evidence["name"], evidence["correlate"], evidence["data"],
                                        actor="agent:source-sync")
            assert info.id == run.id
            continue
        ready = {s.id: s for s in info.ready_steps}
        assert step in ready, f"{step} is not ready; ready: {sorted(ready)}"
        assert ready[step].instructions.strip() and "{{" not in ready[step].instructions
        actor = _actor(m, step, done_by)
        info = tier1_engine.complete(run.id, step, evidence, actor=actor)
        done_by[step] = actor
    assert info.status == "completed", f"still ready: {[s.id for s in info.ready_steps]}"
    log = tier1_engine.log(run.id)
    events = [e["event"] for e in log]
    assert events[:2] == ["routed", "started"] and events[-1] == "completed"
    completed = [e["step"] for e in log if e["event"] == "step_completed" and e["actor"] != "system:tiergate"]
    assert completed == [step for step, _ in walk.steps if step not in ("timer", "message")]
    received = [(e["step"], e["detail"]["correlate"]) for e in log if e["event"] == "message_received"]
    assert received == [("source_linked", evidence["correlate"]) for step, evidence in walk.steps if step == "message"]
    timers = [evidence["event"] for step, evidence in walk.steps if step == "timer"]
    assert [e["detail"]["timer"] for e in log if e["event"] == "timer_fired"] == timers
    assert events.count("escalated") == len(timers)
    decided = [e["step"] for e in log if e["event"] == "decision_evaluated"]
    assert set(decided) == set(m.of_kind("businessRuleTask")) or not m.of_kind("businessRuleTask") and not decided
    off_path = {e["detail"]["flow"] for e in log if e["event"] == "step_ready" and e["detail"].get("off_path")}
    assert off_path <= {f.id for f in m.flows.values() if f.deviation}
    loops_or_escalations = len(timers) + sum(1 for i, (s, _) in enumerate(walk.steps) if s in {x for x, _ in walk.steps[:i]})
    assert bool(off_path) == bool(loops_or_escalations), f"off-path steps logged: {sorted(off_path)}"
    assert tier1_engine.verify_log()["ok"] is True


def test_the_engine_refuses_the_wrong_people_on_the_platform_processes(tier1_engine: Any) -> None:
    from tiergate.errors import RefusedError

    # Only a human approves statutory knowledge, and only an agent extracts it.
    k = tier1_engine.start("knowledge-ingestion", {}, actor="agent:platform-bot")
    with pytest.raises(RefusedError) as err:
        tier1_engine.complete(k.id, "extract_item", EVIDENCE["extract_item"], actor="human:judy")
    assert err.value.reason == "actor_not_allowed"
    tier1_engine.complete(k.id, "extract_item", EVIDENCE["extract_item"], actor="agent:platform-bot")
    for who in ("agent:platform-bot", "agent:qa-bot", "human:judy"):  # an agent; a curator is not compliance
        with pytest.raises(RefusedError) as err:
            tier1_engine.complete(k.id, "approve_statutory_item", EVIDENCE["approve_statutory_item"], actor=who)
        assert err.value.reason == "actor_not_allowed", who
    assert tier1_engine.log(k.id)[-1]["event"] == "refused"
    tier1_engine.complete(k.id, "approve_statutory_item", EVIDENCE["approve_statutory_item"], actor="human:grace")

    # A client lead may not approve the change they requested.
    c = tier1_engine.start("client-config-change", {}, actor="human:ivan")
    tier1_engine.complete(c.id, "request_change", EVIDENCE["request_change"], actor="human:ivan")
    tier1_engine.complete(c.id, "assess_impact", EVIDENCE["assess_impact"], actor="agent:platform-bot")
    with pytest.raises(RefusedError) as err:
        tier1_engine.complete(c.id, "approve_change", EVIDENCE["approve_change"], actor="human:ivan")
    assert err.value.reason == "same_actor"
    info = tier1_engine.complete(c.id, "approve_change", EVIDENCE["approve_change"], actor="human:nina")
    assert [s.id for s in info.ready_steps] == ["apply_in_uat"]

    # The compliance sign-off is not optional.
    p = tier1_engine.start("pay-scenario-test", {}, actor="human:carol")
    for step in ("define_scenarios", "run_scenarios", "compare_pay"):
        tier1_engine.complete(p.id, step, EVIDENCE[step], actor="human:carol")
    with pytest.raises(RefusedError) as err:
        tier1_engine.skip(p.id, "compliance_signoff", "in a hurry", actor="human:grace")
    assert err.value.reason == "not_optional"
    assert tier1_engine.verify_log()["ok"] is True
