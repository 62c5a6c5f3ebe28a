"""`tiergate check` on Tier 1 files: every problem with its line and BPMN element; the MIWG corpus; scaffold."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any, Callable

import pytest
from lxml import etree

from support import CORPUS, DEMO, CLIResult
from tier1_helpers import GATE_NOTE, LINEAR, bpmn, catalog_yaml, chain, dmn_table, flow, props, tier1_home, user
from tiergate.bpmn.definition import load_process
from tiergate.bpmn.model import read_process
from tiergate.bpmn.parser import build_specs
from tiergate.bpmn.xml import BpmnError, parse_bpmn
from tiergate.engine import Engine

MIWG = CORPUS / "bpmn-miwg" / "reference"


def problems_of(xml: str, process_id: str = "p") -> list[tuple[int, str, str]]:
    from tier1_helpers import ROLES
    from tiergate.definitions.models import Roles
    import yaml

    roles = Roles.model_validate(yaml.safe_load(ROLES))
    _, found = load_process(xml, f"processes/{process_id}.bpmn", process_id, roles=roles, decisions={})
    return [(p.line, p.severity, p.message) for p in found]


def line_of(xml: str, needle: str) -> int:
    return xml[:xml.index(needle)].count("\n") + 1


def spread(xml: str) -> str:
    """One element per line, so each problem's line is the element's own."""
    return xml.replace("><bpmn:", ">\n<bpmn:").replace("><camunda:", ">\n<camunda:")


@pytest.mark.parametrize("body, element, message", [
    ('<bpmn:userTask id="no_gate" name="Check"/>', "no_gate", "has no gate. Every step needs one"),
    (user("bad_json", gate="{not json"), "bad_json", "gate is not valid"),
    (user("bad_schema", gate={"type": "objekt"}), "bad_schema", "is not a valid JSON Schema"),
    (user("missing_file", gate="schemas/nope.json"), "missing_file", "points to processes/schemas/nope.json, which "
                                                                     "does not exist"),
    (user("who", actors="robots"), "who", "actors must be agent, human or agent,human"),
    (user("pair", distinct_from="ghost"), "pair", "distinct_from names 'ghost', which is not another user"),
    (user("maybe", optional="perhaps"), "maybe", "optional must be true or false"),
    (user("tpl", docs="{% if %}"), "tpl", "template syntax error"),
    ('<bpmn:serviceTask id="svc"/>', "svc", "serviceTask 'svc' has no gate"),
    ('<bpmn:callActivity id="call" calledElement="x"/>', "call", "calls 'x', but processes/x.bpmn does not exist"),
    ('<bpmn:task id="plain"/>', "plain", "a plain task completes by itself"),
    ('<bpmn:scriptTask id="js" scriptFormat="javascript"><bpmn:script>x = 1</bpmn:script></bpmn:scriptTask>', "js",
     "scriptFormat 'javascript' is not Python"),
    ('<bpmn:scriptTask id="js2" scriptFormat="javascript"><bpmn:script>var x = 1;</bpmn:script></bpmn:scriptTask>',
     "js2", "script: syntax error"),
    ('<bpmn:scriptTask id="imp"><bpmn:script>import os</bpmn:script></bpmn:scriptTask>', "imp",
     "script: imports are not allowed"),
    ('<bpmn:businessRuleTask id="rule" camunda:decisionRef="nowhere"/>', "rule",
     "decision 'nowhere' does not exist or failed to load"),
    ('<bpmn:businessRuleTask id="anon"/>', "anon", "names no decision"),
    ('<bpmn:intermediateCatchEvent id="msg"><bpmn:linkEventDefinition name="x"/></bpmn:intermediateCatchEvent>',
     "msg", "link events are not supported"),
    ('<bpmn:userTask id="looped"><bpmn:standardLoopCharacteristics><bpmn:loopCondition>x.__class__'
     '</bpmn:loopCondition></bpmn:standardLoopCharacteristics></bpmn:userTask>',
     "looped", "loopCondition: attribute '.__class__' is not allowed"),
])
def test_each_element_problem_names_the_element_and_its_line(body: str, element: str, message: str) -> None:
    xml = spread(bpmn("p", '<bpmn:startEvent id="start"/>' + body + '<bpmn:endEvent id="end"/>'
                      + chain("start", element, "end")))
    found = problems_of(xml)
    matching = [f for f in found if message in f[2]]
    assert matching, found
    line, _severity, text = matching[0]
    assert text.startswith(f"{element}: "), text
    # The element's own line, or the line of its property or script inside it.
    start = line_of(xml, f'id="{element}"')
    end = xml.index(f'id="{element}"')
    end = line_of(xml, xml[end:].split("</bpmn:", 1)[0][-20:]) if "</bpmn:" in xml[end:] else start
    assert start <= line <= max(start, end) + 1, (line, start, text)


def test_flow_and_timer_problems_point_at_their_own_lines() -> None:
    xml = spread(bpmn("p", '<bpmn:startEvent id="start"/><bpmn:exclusiveGateway id="gw" default="f_b"/>'
                      + user("a") + user("b") + '<bpmn:endEvent id="end"/>'
                      + '<bpmn:boundaryEvent id="soon" attachedToRef="a"><bpmn:timerEventDefinition>'
                        '<bpmn:timeDuration>P48HOURS</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>'
                      + flow("f0", "start", "gw") + flow("f_a", "gw", "a", "x.__class__")
                      + flow("f_b", "gw", "b") + flow("f_soon", "soon", "end")
                      + '<bpmn:sequenceFlow id="f_odd" sourceRef="a" targetRef="end">'
                      + props(deviation="yes") + '</bpmn:sequenceFlow>' + chain("b", "end")))
    found = {text.split(":")[0]: (line, text) for line, _, text in problems_of(xml)}
    assert found["f_a"][0] == line_of(xml, "<bpmn:conditionExpression>x.__class__")
    assert "condition: attribute '.__class__' is not allowed" in found["f_a"][1]
    assert found["soon"][0] == line_of(xml, "<bpmn:timeDuration>P48HOURS")
    assert "timeDuration 'P48HOURS' is not valid ISO 8601" in found["soon"][1]
    assert found["f_odd"][0] == line_of(xml, 'id="f_odd"') and "deviation must be true or false" in found["f_odd"][1]


def test_lanes_must_be_roles_or_kinds() -> None:
    xml = spread(bpmn("p", '<bpmn:startEvent id="start"/>' + user("t") + user("u") + '<bpmn:endEvent id="end"/>'
                      + chain("start", "t", "u", "end"), lanes={"Wizards": ["t"], "Lead": ["u"]}))
    found = problems_of(xml)
    assert [(line, text) for line, sev, text in found if sev == "error"] == [
        (line_of(xml, 'id="t"'), "t: it is in lane 'Wizards', which is neither a role in tiers/roles.yaml nor agent or "
                                 "human. Rename the lane to a role (approver, lead, reviewer).")]
    # "Lead" matches the role lead by its slug; a lane may also be named by kind.


def test_an_expression_declared_in_another_language_is_refused_at_its_line() -> None:
    def cond(flow_id: str, target: str, language: str, text: str) -> str:
        return (f'<bpmn:sequenceFlow id="{flow_id}" sourceRef="which" targetRef="{target}">'
                f'<bpmn:conditionExpression language="{language}">{text}</bpmn:conditionExpression>'
                '</bpmn:sequenceFlow>')

    xml = spread(bpmn("p", '<bpmn:startEvent id="start"/><bpmn:exclusiveGateway id="which" default="f_d"/>'
                      + user("a") + user("b") + user("c") + user("d") + '<bpmn:endEvent id="end"/>'
                      + user("w") + '<bpmn:boundaryEvent id="late" attachedToRef="w"><bpmn:timerEventDefinition>'
                      '<bpmn:timeDuration language="http://www.w3.org/1999/XPath">PT2H</bpmn:timeDuration>'
                      '</bpmn:timerEventDefinition></bpmn:boundaryEvent>'
                      + chain("start", "w", "which") + flow("f_late", "late", "end")
                      + cond("f_a", "a", "http://www.w3.org/1999/XPath", "true")
                      + cond("f_b", "b", "javascript", "amount &gt; 100")
                      + cond("f_c", "c", "python", "amount &gt; 100")   # Python, as declared: fine
                      + flow("f_d", "which", "d") + chain("a", "end", prefix="x") + chain("b", "end", prefix="y")
                      + chain("c", "end", prefix="z") + chain("d", "end", prefix="v")))
    found = [(line, text) for line, sev, text in problems_of(xml) if sev == "error"]
    instead = ("which tiergate does not evaluate: expressions are restricted Python, or FEEL. Write it in Python "
               "(`amount > 100`, `True`) and remove the language attribute, or in FEEL with "
               "language=\"https://www.omg.org/spec/FEEL/20140401\" (docs/tier1.md, What expressions and scripts "
               "may do).")
    # (the ISO 8601 literal PT2H means the same in every language: not refused)
    assert found == [
        (line_of(xml, ">true<"), "f_a: the conditionExpression 'true' is declared "
                                 f"language=\"http://www.w3.org/1999/XPath\", {instead}"),
        (line_of(xml, ">amount &gt; 100<"), f"f_b: the conditionExpression 'amount > 100' is declared "
                                            f"language=\"javascript\", {instead}")]


def test_file_level_problems() -> None:
    assert problems_of(LINEAR.replace('isExecutable="true"', 'isExecutable="false"'), "linear")[0][2] == \
        'linear: the process must be marked executable: isExecutable="true".'
    found = problems_of(LINEAR, "other")
    assert found == [(2, "error", 'no <bpmn:process id="other"> in the file (it has linear). The process id must be '
                                  "the catalog id and the file name.")]
    no_diagram = problems_of(bpmn("p", '<bpmn:startEvent id="s"/>' + user("t") + '<bpmn:endEvent id="e"/>'
                                  + chain("s", "t", "e"), diagram=False))
    assert [sev for _, sev, text in no_diagram if "no diagram information" in text] == ["warning"]
    broken = problems_of('<?xml version="1.0"?>\n<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/'
                         '20100524/MODEL">\n<bpmn:process id="p">\n</bpmn:definitions>')
    assert broken[0][0] == 4 and "not well-formed XML" in broken[0][2]


def test_check_command_reports_tier1_problems(tmp_path: Path, cli: Callable[..., CLIResult]) -> None:
    xml = spread(bpmn("broken", '<bpmn:startEvent id="start"/><bpmn:userTask id="review" name="Review"/>'
                      '<bpmn:endEvent id="end"/>' + chain("start", "review", "end")))
    home = tier1_home(tmp_path / "home", {"broken": xml, "linear": LINEAR})
    result = cli("check", home=home)
    assert result.returncode == 1
    line = line_of(xml, 'id="review"')
    assert (f"processes/broken.bpmn:{line}: review: userTask 'Review' has no gate. Every step needs one"
            in result.stdout), result.stdout
    assert "processes/linear.bpmn" not in result.stdout
    as_json = cli("check", "--json", home=home).json
    problem = as_json["error"]["details"]["problems"][0]
    assert (problem["path"], problem["line"]) == ("processes/broken.bpmn", line)


def test_schema_files_and_inputs_are_checked(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    shared = {"$defs": {"note": {"type": "string", "minLength": 3}}}
    xml = bpmn("refs", '<bpmn:startEvent id="s"/>'
               + user("t", gate={"type": "object", "required": ["note"],
                                 "properties": {"note": {"$ref": "schemas/shared.json#/$defs/note"}}})
               + '<bpmn:endEvent id="e"/>' + chain("s", "t", "e"),
               process_props=props(inputs="schemas/start.json"))
    home = tier1_home(tmp_path / "home", {"refs": xml},
                      schemas={"shared.json": shared, "start.json": {"type": "object", "required": ["client_id"]}})
    engine = make_engine(home)
    assert [p for p in engine.check() if p.severity == "error"] == []
    run = engine.start("refs", {"client_id": "CL-1"}, actor="agent:a")
    from tiergate.errors import GateFailedError

    with pytest.raises(GateFailedError):
        engine.complete(run.id, "t", {"note": "no"}, actor="agent:a")
    assert engine.complete(run.id, "t", {"note": "fine"}, actor="agent:a").status == "completed"
    assert run.definition_version == engine.status(run.id).definition_version


# --- the MIWG reference corpus --------------------------------------------------------------

MIWG_FILES = sorted(MIWG.glob("*.bpmn"))


@pytest.mark.parametrize("path", MIWG_FILES, ids=[p.name for p in MIWG_FILES])
def test_miwg_models_load_or_get_a_clear_error(path: Path) -> None:
    data = path.read_bytes()
    tree = parse_bpmn(data, path.name)
    root = tree.getroot()
    process_ids = [p.get("id") for p in root.iter("{http://www.omg.org/spec/BPMN/20100524/MODEL}process")]
    assert process_ids
    ids = {e.get("id") for e in root.iter() if isinstance(e.tag, str) and e.get("id")}
    for process_id in process_ids:
        definition, problems = load_process(data, path.name, process_id)
        errors = [p for p in problems if p.severity == "error"]
        assert definition is not None or errors
        for problem in problems:
            assert problem.line >= 1 and "\n" not in problem.message
            assert problem.message.split(":")[0] in ids, problem  # names the element it is about
        # SpiffWorkflow itself, asked directly: it parses, or tiergate turns its complaint into a BpmnError.
        model = read_process(tree, process_id, path.name)
        try:
            build_specs(parse_bpmn(data, path.name), model, path.name)
        except BpmnError as err:
            assert err.line and err.line >= 1 and err.message.startswith(f"{path.name}:{err.line}: ")


# --- scaffold -------------------------------------------------------------------------------

CHECKLIST = DEMO.replace("    optional: true\n", "    optional: true\n    roles: [reviewer]\n")


def test_scaffold_writes_a_valid_diagram_that_runs(tmp_path: Path, cli: Callable[..., CLIResult],
                                                   make_engine: Callable[..., Engine]) -> None:
    home = tier1_home(tmp_path / "home", {}, tier2={"demo": CHECKLIST})
    result = cli("scaffold", "bpmn", "demo", "--json", home=home)
    assert result.returncode == 0, result
    assert result.json["data"] == {"path": "processes/demo.bpmn", "steps": 3, "lanes": 2, "schemas": [],
                                   "problems": []}
    again = cli("scaffold", "bpmn", "demo", home=home)
    assert again.returncode == 2 and "already exists. Pass --force" in again.stderr
    xml = (home.root / "processes" / "demo.bpmn").read_bytes()
    tree = etree.fromstring(xml)
    ns = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL", "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI"}
    shaped = {s.get("bpmnElement") for s in tree.iterfind(".//bpmndi:BPMNShape", ns)}
    edged = {s.get("bpmnElement") for s in tree.iterfind(".//bpmndi:BPMNEdge", ns)}
    nodes = {e.get("id") for tag in ("startEvent", "userTask", "endEvent") for e in tree.iterfind(f".//bpmn:{tag}", ns)}
    lanes = {e.get("name"): [r.text for r in e.iterfind("bpmn:flowNodeRef", ns)]
             for e in tree.iterfind(".//bpmn:lane", ns)}
    assert nodes <= shaped and {e.get("id") for e in tree.iterfind(".//bpmn:sequenceFlow", ns)} == edged
    assert lanes == {"reviewer": ["extra"], "lead": ["review", "end"]}  # gather is for anyone: no lane
    # Route it to Tier 1 and run it with the checklist's evidence.
    (home.root / "tiers" / "catalog.yaml").write_text(catalog_yaml(["demo"]))
    engine = make_engine(home)
    assert [p for p in engine.check() if p.severity == "error"] == []
    run = engine.start("demo", {"ticket_id": "T-9"}, actor="agent:bot")
    assert run.tier == 1 and run.ready_steps[0].instructions == "Look at T-9."
    engine.complete(run.id, "gather", {"summary": "Payslip totals are off by one cent", "severity": "S2"},
                    actor="agent:bot")
    engine.skip(run.id, "extra", "nothing more to check", actor="agent:reviewer-bot")
    from tiergate.errors import RefusedError

    with pytest.raises(RefusedError) as err:
        engine.complete(run.id, "review", {"approved": True}, actor="agent:bot")
    assert err.value.reason == "actor_not_allowed"
    assert engine.complete(run.id, "review", {"approved": True}, actor="human:alice").status == "completed"


def test_scaffold_keeps_decisions_and_schema_files(tmp_path: Path, cli: Callable[..., CLIResult]) -> None:
    grade = dmn_table("grade", [("note", "string")], ["grade"], [(["-"], ['"ok"'])])
    home = tier1_home(tmp_path / "home", {}, decisions={"grade": (grade, "decision: grade\ncases: []\n")})
    home.write("checklists/schemas/note.json", json.dumps(GATE_NOTE))
    home.write("checklists/flow.yaml", textwrap.dedent("""\
        id: flow
        title: Flow
        owner: lead
        expected_minutes: 5
        steps:
          - id: first
            title: First
            done_when: {$ref: schemas/note.json}
          - id: route
            title: Route
            decide: grade
    """))
    (home.root / "tiers" / "catalog.yaml").write_text(catalog_yaml([], ["flow"]))
    result = cli("scaffold", "bpmn", "flow", "--json", home=home)
    assert result.returncode == 0, result
    assert result.json["data"]["schemas"] == ["processes/schemas/note.json"]
    xml = (home.root / "processes" / "flow.bpmn").read_text()
    assert 'camunda:decisionRef="grade"' in xml and "schemas/note.json" in xml
    assert json.loads((home.root / "processes" / "schemas" / "note.json").read_text()) == GATE_NOTE




# MIWG C.9.0 and C.9.2 start event subprocesses on messages (interrupting and not): tiergate runs those now, and
# their FEEL conditions (`= approved`, `=fraud`), Zeebe's multi-instance collection and Zeebe's decision reference
# too. What is left is the authoring rules: a gate per step, the processes the file calls, the decision it names.
MIWG_C9_LEFT = {
    "C.9.0.bpmn": {
        "UserTask_HandleTimeout": "has no gate", "ServiceTask_CancelApplication": "has no gate",
        "SendTask_SendPolicy": "has no gate", "ServiceTask_DeliverPolicy": "has no gate",
        "ServiceTask_RejectPolicy": "has no gate", "SendTask_SendRejection": "has no gate",
        "ServiceTask_GetCreditScore": "has no gate", "Activity_ManualCheck": "ManualCheck.bpmn does not exist",
        "BusinessRuleTask_CheckApplicationAutomatically": "decision 'risk_check' does not exist"},
    "C.9.2.bpmn": {
        "UserTask_DecideOnApplication": "has no gate", "UserTask_AccelerateDecision": "has no gate",
        "UserTask_CheckForFraud": "has no gate", "CallActivity_RequestDocument": "requestDocument_en.bpmn does not exist"},
}


@pytest.mark.parametrize("name", sorted(MIWG_C9_LEFT))
def test_miwg_message_start_events_of_event_subprocesses_are_not_refused(name: str) -> None:
    path = MIWG / name
    data = path.read_bytes()
    root = parse_bpmn(data, name).getroot()
    starts = [e.get("id") for e in root.iter("{http://www.omg.org/spec/BPMN/20100524/MODEL}startEvent")
              if e.find("{http://www.omg.org/spec/BPMN/20100524/MODEL}messageEventDefinition") is not None]
    assert starts  # the file does start event subprocesses on messages
    (process_id,) = [p.get("id") for p in root.iter("{http://www.omg.org/spec/BPMN/20100524/MODEL}process")]
    _definition, problems = load_process(data, name, process_id)
    errors = {p.message.split(":")[0]: p.message for p in problems if p.severity == "error"}
    assert not set(starts) & set(errors), errors
    assert set(errors) == set(MIWG_C9_LEFT[name]), errors
    for element, reason in MIWG_C9_LEFT[name].items():
        assert reason in errors[element]
