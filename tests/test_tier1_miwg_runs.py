"""MIWG C.9.x (Camunda 8 models: FEEL, Zeebe extensions) run to the end once tiergate's authoring rules are met.

The authoring rules, met the way a process owner would: a permissive gate on every step, the
process ids made catalog slugs (and the references to them), element ids unique across a
process and what it calls, the decision a business rule task names present in decisions/.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

from support import CORPUS, row
from tier1_helpers import DMN_TESTS_EMPTY, bpmn, chain, dmn_table, tier1_home, user

from tiergate.engine import Engine
from tiergate.errors import RefusedError

MIWG = CORPUS / "bpmn-miwg" / "reference"
BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
CAMUNDA = "http://camunda.org/schema/1.0/bpmn"
SLUGS = {"ManualCheck": "manual_check", "requestDocument_en": "request_document_en"}


def authored(name: str, prefix: str = "") -> str:
    """The reference model with a gate on each step, slug process ids, and ``prefix`` on its flows' ids."""
    text = (MIWG / name).read_text(encoding="utf-8")
    for old, new in SLUGS.items():
        text = text.replace(f'"{old}"', f'"{new}"')
    root = etree.fromstring(text.encode())
    for kind in ("userTask", "manualTask", "serviceTask"):
        for element in root.iter(f"{{{BPMN}}}{kind}"):
            extensions = element.find(f"{{{BPMN}}}extensionElements")
            if extensions is None:
                extensions = etree.Element(f"{{{BPMN}}}extensionElements")
                element.insert(0, extensions)
            properties = etree.SubElement(extensions, f"{{{CAMUNDA}}}properties")
            etree.SubElement(properties, f"{{{CAMUNDA}}}property", name="gate", value=json.dumps({"type": "object"}))
    out = etree.tostring(root, xml_declaration=True, encoding="UTF-8").decode()
    if prefix:
        for flow_element in root.iter(f"{{{BPMN}}}sequenceFlow"):
            old_id = flow_element.get("id")
            out = out.replace(f'"{old_id}"', f'"{prefix}{old_id}"').replace(f">{old_id}<", f">{prefix}{old_id}<")
    return out


def test_c92_calling_c91_runs_to_the_end(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    home = tier1_home(tmp_path / "home", {"manual_check": authored("C.9.2.bpmn"),
                                          "request_document_en": authored("C.9.1.bpmn", prefix="rd_")})
    engine = make_engine(home)
    assert [p for p in engine.check() if p.severity == "error"] == []
    run = engine.start("manual_check", {"documents": ["passport", "payslip"], "documentReferenceId": "D-1",
                                        "fraudSuspectedId": "F-1"}, actor="human:alice")
    assert [s.id for s in run.ready_steps] == ["UserTask_DecideOnApplication"]
    # A document is requested: the non-interrupting event subprocess calls C.9.1 once per document (Zeebe's
    # inputCollection="=documents"); each waits for its document. Each message correlates on the field its
    # zeebe:subscription names.
    with pytest.raises(RefusedError):
        engine.message("Message_DocumentRequested", {"documentReferenceId": "D-2"}, {}, actor="agent:crm")
    engine.message("Message_DocumentRequested", {"documentReferenceId": "D-1"}, {}, actor="agent:crm")
    for number in range(2):
        engine.message("MESSAGE_documentReceived", {"documentReferenceId": "D-1"}, {"received": number},
                       actor="agent:crm")
    # Fraud is suspected: the FEEL condition `=fraud` decides the path (no fraud: the plain end).
    engine.message("Message_FraudSuspected", {"fraudSuspectedId": "F-1"}, {}, actor="agent:crm")
    assert sorted(s.id for s in engine.status(run.id).ready_steps) == ["UserTask_CheckForFraud",
                                                                        "UserTask_DecideOnApplication"]
    engine.complete(run.id, "UserTask_CheckForFraud", {"fraud": False}, actor="human:bob")
    done = engine.complete(run.id, "UserTask_DecideOnApplication", {"approved": True}, actor="human:alice")
    # The main flow has ended: the timer event subprocess (R1/P5D) that never fired does not keep it open.
    assert done.status == "completed"
    events = [(e["event"], e["step"]) for e in engine.log(run.id)]
    assert events.count(("message_received", "ReceiveTask_WaitForDocument")) == 2
    assert ("escalated", "Activity_02a6b2h") in events and ("completed", None) in events


def test_a_finished_flow_does_not_wait_for_a_timer_event_subprocess(tmp_path: Path,
                                                                   make_engine: Callable[..., Engine]) -> None:
    reminder = ('<bpmn:subProcess id="remind" triggeredByEvent="true"><bpmn:startEvent id="every_day" '
                'isInterrupting="false"><bpmn:timerEventDefinition><bpmn:timeCycle>R/P1D</bpmn:timeCycle>'
                '</bpmn:timerEventDefinition></bpmn:startEvent>' + user("nudge") + '<bpmn:endEvent id="nudged"/>'
                + chain("every_day", "nudge", "nudged", prefix="r") + '</bpmn:subProcess>')
    body = ('<bpmn:startEvent id="start"/>' + user("work") + '<bpmn:endEvent id="end"/>' + reminder
            + chain("start", "work", "end"))
    engine = make_engine(tier1_home(tmp_path / "home", {"tm": bpmn("tm", body)}))
    run = engine.start("tm", {}, actor="agent:a")
    assert engine.status(run.id).status == "active"
    info = engine.complete(run.id, "work", {}, actor="agent:a")
    assert info.status == "completed" and info.ready_steps == []
    assert [e["event"] for e in engine.log(run.id)][-2:] == ["step_completed", "completed"]


def test_c90_calling_c92_and_c91_runs_to_the_end(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    risk = dmn_table("risk_check", [("applicant", "string")], ["riskLevel"], [(["-"], ['"yellow"'])])
    home = tier1_home(tmp_path / "home", {"customer_onboarding_en": authored("C.9.0.bpmn"),
                                          "manual_check": authored("C.9.2.bpmn"),
                                          "request_document_en": authored("C.9.1.bpmn", prefix="rd_")},
                      decisions={"risk_check": (risk, DMN_TESTS_EMPTY.format(id="risk_check"))})
    engine = make_engine(home)
    assert [p for p in engine.check() if p.severity == "error"] == []
    run = engine.start("customer_onboarding_en", {"applicant": {"name": "Ann"}, "documents": ["passport"],
                                                  "fraudSuspectedId": "F-1"}, actor="human:alice")
    assert [s.id for s in run.ready_steps] == ["ServiceTask_GetCreditScore"]
    # Zeebe's decision reference, its output mapping (riskLevels from `result`) and the FEEL gateway: yellow
    # goes to the manual check, the called C.9.2.
    info = engine.complete(run.id, "ServiceTask_GetCreditScore", {"creditScore": 700}, actor="agent:bot")
    assert [s.id for s in info.ready_steps] == ["UserTask_DecideOnApplication"]
    assert info.data["riskLevels"] == "yellow"
    waiting = {m["message"] for m in _state(engine, run.id)["messages"]}
    # The called process's event subprocesses wait for their messages (a scope inside the run).
    assert {"Message_DocumentRequested", "Message_FraudSuspected", "Message_CancellationRequested"} <= waiting
    reference = info.data["documentReferenceId"]  # set by the start event's output mapping, `= string(now())`
    engine.message("Message_DocumentRequested", {"documentReferenceId": reference}, {}, actor="agent:crm")
    engine.message("MESSAGE_documentReceived", {"documentReferenceId": reference}, {"received": True},
                   actor="agent:crm")
    engine.message("Message_FraudSuspected", {"fraudSuspectedId": "F-1"}, {}, actor="agent:crm")
    engine.complete(run.id, "UserTask_CheckForFraud", {"fraud": False}, actor="human:bob")
    info = engine.complete(run.id, "UserTask_DecideOnApplication", {"approved": True}, actor="human:alice")
    assert [s.id for s in info.ready_steps] == ["ServiceTask_DeliverPolicy"]  # `= approved`
    engine.complete(run.id, "ServiceTask_DeliverPolicy", {}, actor="agent:bot")
    assert engine.complete(run.id, "SendTask_SendPolicy", {}, actor="agent:bot").status == "completed"


def _state(engine: Engine, run_id: str) -> dict:
    state = row(engine, run_id)["state"]
    return json.loads(state) if isinstance(state, str) else state
