"""Implicit splits and starts, drawn explicitly before SpiffWorkflow's parser sees the tree.

BPMN 2.0 gives a meaning to shapes that SpiffWorkflow 3.2's parser refuses:

* **An activity or intermediate event with several outgoing flows** (an implicit split). Flows
  without a condition all fire (a parallel split); flows with a condition (the "mini-diamond")
  fire each whose condition holds, and the activity's ``default`` flow fires when none does (an
  inclusive split). A gateway is inserted after the element: a parallel gateway ``<id>__split``
  when no flow has a condition, else an inclusive gateway ``<id>__split`` whose unconditional,
  non-default flows get the condition ``True``. An inclusive gateway's flows without a condition
  get it too: BPMN fires them always, SpiffWorkflow refuses them.
* **A message without a name**: BPMN's name is optional; the message's id names it.
* **A subprocess (or process) with no start event**: every flow node in it without an incoming
  flow starts when it starts. A start event ``<id>__start`` with a flow to each such node is
  inserted, and, when the subprocess has no end event either, an end event ``<id>__end`` after
  each node without an outgoing flow (it completes once all its paths have ended, as before). An
  empty subprocess (drawn collapsed, its content not modelled) has nothing to do: it completes at
  once, like a plain task.

Several incoming flows into an activity or end event (an implicit join) need nothing: SpiffWorkflow
activates the activity once per arriving token, which is BPMN's uncontrolled merge
(``tests/test_tier1_implicit.py``).

``normalised`` works on a copy: the tree that ``check`` reports from, the model and the file on
disk keep only what was drawn. The generated elements have ids that no element of the file has
(``__split``, ``__start``, ``__end`` after the drawn element's id, with a number added if taken)
and carry the drawn element they were made for in the attribute ``FOR``; ``build_specs`` marks
their task specs as the engine's own (``mark_generated``), so runs, logs and status name only
drawn elements, and a problem SpiffWorkflow finds at a generated element is reported at the drawn
element it was made for (``generated``). The generated ids name tasks in a kept run's state, so a
run restored later finds them again only if they are made the same way: change them only with a
migration of open runs.
"""

from __future__ import annotations

import copy
from typing import Any

from lxml import etree

from tiergate.bpmn.xml import BPMN_NS, local

_GATEWAYS = {"exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway", "complexGateway"}
#: Flow nodes that never split implicitly here: gateways decide for themselves, SpiffWorkflow runs every
#: flow out of a start event already, and an end event has none.
_NOT_SPLITTING = _GATEWAYS | {"startEvent", "endEvent"}
_FLOW_NODES = _GATEWAYS | {
    "task", "userTask", "manualTask", "serviceTask", "scriptTask", "businessRuleTask", "sendTask", "receiveTask",
    "callActivity", "subProcess", "transaction", "adHocSubProcess", "startEvent", "endEvent",
    "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent"}
#: Containers whose flow nodes without incoming flows start with them (an ad-hoc subprocess offers
#: them instead: ``tiergate.bpmn.adhoc``).
_STARTING = {"process", "subProcess", "transaction"}
#: The attribute on each generated element naming the drawn element it was made for.
FOR = "{urn:tiergate:implicit}for"
_MARK = "{urn:tiergate:implicit}normalised"


def _tag(name: str) -> str:
    return f"{{{BPMN_NS}}}{name}"


def _children(container: etree._Element, kinds: set[str]) -> list[etree._Element]:
    return [child for child in container if isinstance(child.tag, str) and etree.QName(child).namespace == BPMN_NS
            and local(child) in kinds]


def _outgoing(container: etree._Element) -> dict[str, list[etree._Element]]:
    """The sequence flows of ``container`` by their source (one pass: a file may hold many)."""
    found: dict[str, list[etree._Element]] = {}
    for flow in _children(container, {"sequenceFlow"}):
        found.setdefault(flow.get("sourceRef") or "", []).append(flow)
    return found


def _splits(container: etree._Element, outgoing: dict[str, list[etree._Element]]) -> list[etree._Element]:
    return [node for node in _children(container, _FLOW_NODES - _NOT_SPLITTING)
            if len(outgoing.get(node.get("id") or "", ())) > 1]


def _without_start(container: etree._Element) -> bool:
    if local(container) not in _STARTING or container.get("triggeredByEvent") == "true":
        return False
    nodes = _children(container, _FLOW_NODES)
    if not nodes:  # an empty (collapsed) subprocess: it has nothing to do and completes at once
        return local(container) != "process"
    return not any(local(node) == "startEvent" for node in nodes)


def _containers(root: etree._Element) -> list[etree._Element]:
    return [element for element in root.iter(*(_tag(kind) for kind in _STARTING | {"adHocSubProcess"}))]


def _nameless_messages(root: etree._Element) -> list[etree._Element]:
    return [m for m in root.iter(_tag("message")) if m.get("id") and not m.get("name")]


def needs_normalising(tree: etree._ElementTree) -> bool:
    root = tree.getroot()
    for container in _containers(root):
        outgoing = _outgoing(container)
        if _splits(container, outgoing) or _open_inclusive(container, outgoing) or _without_start(container):
            return True
    return bool(_nameless_messages(root))


def normalised(tree: etree._ElementTree) -> etree._ElementTree:
    """``tree`` if it has no implicit split or start, else a copy with them drawn as gateways and events."""
    if not needs_normalising(tree):
        return tree
    copied = copy.deepcopy(tree)
    root = copied.getroot()
    taken = {element.get("id") for element in root.iter() if isinstance(element.tag, str) and element.get("id")}

    def fresh(base: str) -> str:
        candidate, number = base, 1
        while candidate in taken:
            number += 1
            candidate = f"{base}{number}"
        taken.add(candidate)
        return candidate

    for container in _containers(root):
        outgoing = _outgoing(container)
        for gateway in _open_inclusive(container, outgoing):
            _always(outgoing[gateway.get("id") or ""], gateway.get("default"))
        for node in _splits(container, outgoing):
            _draw_split(container, node, outgoing[node.get("id") or ""], fresh)
        if _without_start(container):
            _draw_start(container, fresh)
    for message in _nameless_messages(root):  # BPMN's message name is optional; its id names it then
        message.set("name", message.get("id") or "")
    root.set(_MARK, "true")
    return copied


def _open_inclusive(container: etree._Element, outgoing: dict[str, list[etree._Element]]) -> list[etree._Element]:
    """Inclusive gateways with a flow out that has no condition and is not the default (it always fires)."""
    found = []
    for gateway in _children(container, {"inclusiveGateway"}):
        flows = outgoing.get(gateway.get("id") or "", [])
        if len(flows) > 1 and any(_bare(f) and f.get("id") != gateway.get("default") for f in flows):
            found.append(gateway)
    return found


def _bare(flow: etree._Element) -> bool:
    condition = flow.find(_tag("conditionExpression"))
    return condition is None or not "".join(condition.itertext()).strip()


def _always(flows: list[etree._Element], default: str | None) -> None:
    """Give each of ``flows`` with no condition, other than ``default``, the condition ``True``."""
    for flow in flows:
        if flow.get("id") != default and _bare(flow):
            condition = flow.find(_tag("conditionExpression"))
            if condition is None:
                condition = etree.SubElement(flow, _tag("conditionExpression"))
            condition.attrib.pop("language", None)
            condition.text = "True"  # BPMN: a flow without a condition always fires


def _flow(container: etree._Element, flow_id: str, source: str, target: str, drawn: str) -> None:
    etree.SubElement(container, _tag("sequenceFlow"), {FOR: drawn}, id=flow_id, sourceRef=source, targetRef=target)


def _draw_split(container: etree._Element, node: etree._Element, outgoing: list[etree._Element], fresh: Any) -> None:
    node_id = node.get("id") or ""
    default = node.attrib.pop("default", None)
    conditional = any(not _bare(f) for f in outgoing)
    gateway_id = fresh(f"{node_id}__split")
    gateway = etree.Element(_tag("inclusiveGateway" if conditional or default else "parallelGateway"),
                            {FOR: node_id}, id=gateway_id)
    node.addnext(gateway)
    for flow in outgoing:
        flow.set("sourceRef", gateway_id)
    if conditional or default:
        if default:
            gateway.set("default", default)
        _always(outgoing, default)
    _flow(container, fresh(f"{gateway_id}_flow"), node_id, gateway_id, node_id)


def _draw_start(container: etree._Element, fresh: Any) -> None:
    nodes = _children(container, _FLOW_NODES - {"boundaryEvent"})
    nodes = [n for n in nodes if n.get("triggeredByEvent") != "true" and n.get("isForCompensation") != "true"]
    flows = _children(container, {"sequenceFlow"})
    targets = {f.get("targetRef") for f in flows}
    sources = {f.get("sourceRef") for f in flows}
    base = container.get("id") or "process"
    start_id = fresh(f"{base}__start")
    start = etree.Element(_tag("startEvent"), {FOR: base}, id=start_id)
    first = next((child for child in container if isinstance(child.tag, str) and local(child) in _FLOW_NODES), None)
    if first is not None:
        first.addprevious(start)
    else:
        container.append(start)
    for node in nodes:
        if node.get("id") not in targets:
            _flow(container, fresh(f"{start_id}_to_{node.get('id')}"), start_id, node.get("id") or "", base)
    if any(local(n) == "endEvent" for n in nodes):
        return
    ends = [n for n in _children(container, _FLOW_NODES) if n.get("id") not in sources
            and n.get("triggeredByEvent") != "true" and n.get("isForCompensation") != "true" and n is not start]
    end_id = fresh(f"{base}__end")
    etree.SubElement(container, _tag("endEvent"), {FOR: base}, id=end_id)
    if not nodes:
        _flow(container, fresh(f"{start_id}_to_{end_id}"), start_id, end_id, base)
    for node in ends:
        _flow(container, fresh(f"{end_id}_from_{node.get('id')}"), node.get("id") or "", end_id, base)


def generated(trees: list[etree._ElementTree]) -> dict[str, tuple[str, str]]:
    """{generated id: (drawn element it was made for, its kind)} of the normalised ``trees``."""
    found = {}
    for tree in trees:
        if not tree.getroot().get(_MARK):
            continue
        for element in tree.getroot().iter():
            if isinstance(element.tag, str) and element.get(FOR) is not None:
                found[element.get("id") or ""] = (element.get(FOR) or "", local(element))
    return found


def mark_generated(specs: list[Any], made: dict[str, tuple[str, str]]) -> None:
    """Mark the task specs of generated elements as the engine's own: no element of their own
    (``tiergate.bpmn.taskkinds.element_of`` is None), so they are never steps, logged or traced; a
    generated split keeps the activity it follows (``_tiergate_drawn``), where its flows start."""
    if not made:
        return
    for spec in specs:
        if spec is None:
            continue
        for task_spec in spec.task_specs.values():
            drawn, kind = made.get(getattr(task_spec, "bpmn_id", None) or "", ("", ""))
            if drawn:
                task_spec._tiergate_element = None
                if kind.endswith("Gateway"):
                    task_spec._tiergate_drawn = drawn


def unwritten_choices(model: Any) -> list[tuple[int, str, str]]:
    """(line, gateway, problem) for each exclusive gateway that chooses between flows with no condition.

    BPMN takes the first flow (in the file's order) whose condition holds, and a flow without a
    condition always holds: the flows after the first such one could never be taken, whatever the
    data. That is a choice drawn but not written down (MIWG A.2.0, C.2.0 label the flows "Yes" and
    "No"), so it is refused rather than run one way silently; SpiffWorkflow and Camunda 8 refuse it too.
    """
    found = []
    by_source: dict[str, list[Any]] = {}
    for flow in model.flows.values():
        by_source.setdefault(flow.source, []).append(flow)
    for node in model.nodes.values():
        if node.kind != "exclusiveGateway":
            continue
        outgoing = by_source.get(node.id, [])
        if len(outgoing) < 2:
            continue
        bare = [f for f in outgoing if not f.condition and f.id != node.default_flow]
        if not bare:
            continue
        named = ", ".join(f"{f.id}" + (f" ('{' '.join(f.name.split())}')" if f.name.strip() else "") for f in bare)
        label = f" '{node.name}'" if node.name else ""
        if node.default_flow is not None:
            advice = f"give {'it' if len(bare) == 1 else 'each'} a condition that says when it is taken"
        elif len(bare) == 1:
            advice = (f"make {bare[0].id} the gateway's default flow (taken when no condition holds), or give it a "
                      "condition")
        else:
            advice = ("write the choice as a condition on each flow (e.g. `answer == \"Yes\"`, on a field a step before "
                      "sets), and make the flow for all other cases the gateway's default flow")
        problem = (f"the exclusive gateway{label} has flows with no condition that are not its default flow: "
                   f"{named}. A flow without a condition is always taken, so BPMN would take the first of them "
                   f"every time and never the others: {advice}.")
        found.append((node.line, node.id, problem))
    return found
