"""Small builders for Tier 1 tests: homes with inline BPMN, routed to Tier 1."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from support import HomeBuilder, split_shared_facts

NAMESPACES = ('xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
              'xmlns:camunda="http://camunda.org/schema/1.0/bpmn" '
              'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"')

ROLES = """\
roles:
  lead:
    description: Leads the team.
    members: [human:alice, human:bob]
  reviewer:
    description: Reviews work.
    members: [human:carol, agent:reviewer-bot]
  approver:
    description: Approves releases.
    members: [human:heidi, human:ivan]
"""


def props(**values: Any) -> str:
    """Camunda extension properties; dict values are written as JSON."""
    items = "".join(
        f'<camunda:property name="{name}" value="{_attr(json.dumps(v) if isinstance(v, (dict, list)) else v)}"/>'
        for name, v in values.items())
    return f"<bpmn:extensionElements><camunda:properties>{items}</camunda:properties></bpmn:extensionElements>"


def _attr(text: Any) -> str:
    return str(text).replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")


GATE_NOTE = {"type": "object", "required": ["note"], "properties": {"note": {"type": "string", "minLength": 3}}}
GATE_ANY = {"type": "object"}


def user(task_id: str, name: str = "", gate: dict[str, Any] | str | None = None, docs: str = "",
         kind: str = "userTask", **extra: Any) -> str:
    """A user (or manual) task with a gate (default: any object) and optional properties."""
    values = {"gate": GATE_ANY if gate is None else gate, **extra}
    documentation = f"<bpmn:documentation>{_attr(docs)}</bpmn:documentation>" if docs else ""
    return (f'<bpmn:{kind} id="{task_id}" name="{name or task_id}">{documentation}{props(**values)}'
            f'</bpmn:{kind}>')


def flow(flow_id: str, source: str, target: str, condition: str | None = None, deviation: bool = False) -> str:
    cond = f"<bpmn:conditionExpression>{_attr(condition)}</bpmn:conditionExpression>" if condition else ""
    dev = props(deviation="true") if deviation else ""
    return f'<bpmn:sequenceFlow id="{flow_id}" sourceRef="{source}" targetRef="{target}">{dev}{cond}</bpmn:sequenceFlow>'


def chain(*ids: str, prefix: str = "f") -> str:
    """Sequence flows linking ``ids`` in order."""
    return "".join(flow(f"{prefix}_{a}_{b}", a, b) for a, b in zip(ids, ids[1:]))


def bpmn(process_id: str, body: str, lanes: dict[str, list[str]] | None = None, diagram: bool = True,
         process_attrs: str = "", process_props: str = "") -> str:
    lane_xml = ""
    if lanes:
        lane_xml = "<bpmn:laneSet id=\"ls\">" + "".join(
            f'<bpmn:lane id="lane_{i}" name="{name}">' + "".join(f"<bpmn:flowNodeRef>{n}</bpmn:flowNodeRef>" for n in nodes)
            + "</bpmn:lane>" for i, (name, nodes) in enumerate(lanes.items())) + "</bpmn:laneSet>"
    di = ('<bpmndi:BPMNDiagram xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" id="dia">'
          f'<bpmndi:BPMNPlane id="plane" bpmnElement="{process_id}"/></bpmndi:BPMNDiagram>') if diagram else ""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<bpmn:definitions {NAMESPACES} id="defs" '
            f'targetNamespace="http://example.com/t">\n'
            f'<bpmn:process id="{process_id}" name="{process_id.replace("-", " ").title()}" isExecutable="true" '
            f'{process_attrs}>{process_props}{lane_xml}\n{body}\n</bpmn:process>{di}\n</bpmn:definitions>\n')


def catalog_yaml(tier1: list[str], tier2: list[str] | None = None) -> str:
    entries = []
    for pid in tier1:
        entries.append(textwrap.dedent(f"""\
          - id: {pid}
            title: {pid.replace('-', ' ').title()}
            area: testing
            owner: lead
            expected_minutes: 30
            facts: {{compliance_critical: true, touches_live_systems: false, client_data: false, structured: true}}
        """))
    for pid in tier2 or []:
        entries.append(textwrap.dedent(f"""\
          - id: {pid}
            title: {pid.replace('-', ' ').title()}
            area: testing
            owner: lead
            expected_minutes: 30
            facts: {{compliance_critical: false, touches_live_systems: false, client_data: false, structured: true}}
        """))
    return "processes:\n" + textwrap.indent("".join(entries), "  ")


def tier1_home(root: Path, processes: dict[str, str], *, decisions: dict[str, tuple[str, str]] | None = None,
               schemas: dict[str, Any] | None = None, tier2: dict[str, str] | None = None) -> HomeBuilder:
    """A home whose ``processes`` (id -> BPMN XML) are all routed to Tier 1."""
    home = HomeBuilder(root)
    home.write("tiers/roles.yaml", ROLES)
    for process_id, xml in processes.items():
        path = root / "processes" / f"{process_id}.bpmn"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(xml, encoding="utf-8")
    for name, schema in (schemas or {}).items():
        home.write(f"processes/schemas/{name}", json.dumps(schema))
    for decision_id, (dmn, tests) in (decisions or {}).items():
        (root / "decisions").mkdir(exist_ok=True)
        (root / "decisions" / f"{decision_id}.dmn").write_text(dmn, encoding="utf-8")
        home.write(f"decisions/tests/{decision_id}.yaml", tests)
    for checklist_id, text in (tier2 or {}).items():
        home.write(f"checklists/{checklist_id}.yaml", split_shared_facts(text)[0])  # the catalog says them
    home.write("tiers/catalog.yaml", catalog_yaml(list(processes), list(tier2 or {})))
    return home


LINEAR = bpmn("linear", (
    '<bpmn:startEvent id="start"/>'
    + user("draft", "Draft the change", gate=GATE_NOTE, docs="Draft {{ data.ticket }}.")
    + user("approve", "Approve the change", gate={"type": "object", "required": ["approved"],
                                                  "properties": {"approved": {"type": "boolean"}}},
           actors="human", distinct_from="draft")
    + '<bpmn:endEvent id="end"/>'
    + chain("start", "draft", "approve", "end")),
    lanes={"agent": ["draft"], "lead": ["approve"]})


def dmn_table(decision_id: str, inputs: list[tuple[str, str]], outputs: list[str],
              rules: list[tuple[list[str], list[str]]], hit_policy: str = "FIRST") -> str:
    """A DMN 1.3 decision table: inputs are (name, typeRef); cells are FEEL text."""
    def esc(text: str) -> str:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    ins = "".join(f'<input id="in_{n}" label="{n}"><inputExpression id="ie_{n}" typeRef="{t}"><text>{n}</text>'
                  f'</inputExpression></input>' for n, t in inputs)
    outs = "".join(f'<output id="out_{n}" name="{n}" typeRef="string"/>' for n in outputs)
    body = ""
    for index, (when, then) in enumerate(rules, 1):
        cells = "".join(f'<inputEntry id="r{index}_i{j}"><text>{esc(c)}</text></inputEntry>' for j, c in enumerate(when))
        cells += "".join(f'<outputEntry id="r{index}_o{j}"><text>{esc(c)}</text></outputEntry>'
                         for j, c in enumerate(then))
        body += f'<rule id="rule_{index}">{cells}</rule>'
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="defs_' + decision_id + '" '
            f'name="{decision_id}" namespace="urn:test">'
            f'<decision id="{decision_id}" name="{decision_id}"><decisionTable id="t_{decision_id}" '
            f'hitPolicy="{hit_policy}">{ins}{outs}{body}</decisionTable></decision></definitions>\n')


DMN_TESTS_EMPTY = "decision: {id}\ncases: []\n"
