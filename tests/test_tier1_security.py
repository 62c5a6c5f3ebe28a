"""Tier 1 never runs definition code with the host's power: scripts, conditions, DMN cells, timers, XML.

Each attack is tried where a process owner (or someone who can write a definition) could put it,
and checked twice where possible: `tiergate check` refuses the file, and the run-time engine
refuses it too when a definition is pinned without passing the check.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pytest
from SpiffWorkflow.bpmn.script_engine.python_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow

from tier1_helpers import bpmn, chain, dmn_table, flow, tier1_home, user
from tiergate.actors import Actor
from tiergate.bpmn import expressions, persistence
from tiergate.bpmn.definition import BpmnDefinition, load_process
from tiergate.bpmn.expressions import ExpressionError
from tiergate.bpmn.scripting import RestrictedScriptEngine, RestrictedWorkflow
from tiergate.bpmn.xml import BpmnError, parse_bpmn
from tiergate.definitions.decisions import Decision
from tiergate.engine import Engine
from tiergate.runners.base import RunContext
from tiergate.runners.bpmn import BpmnRunner

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def _marker(tmp_path: Path) -> Path:
    return tmp_path / f"pwned-{secrets.token_hex(4)}"


def attacks(marker: Path) -> list[str]:
    return [
        f"__import__('os').system('touch {marker}')",
        f"().__class__.__base__.__subclasses__()[0]('touch {marker}')",
        f"[c for c in ().__class__.__base__.__subclasses__() if c.__name__ == 'Popen'][0]('touch {marker}')",
        f"open('{marker}', 'w').write('x')",
        "getattr(__builtins__, 'eval')('1')",
        "globals()['__builtins__']",   # globals() and vars() are the data's names only (SpiffWorkflow's idiom)
        "vars()['__builtins__']['eval']('1')",
        "(lambda: 0).__globals__",
        "x.__class__.__mro__",
        "'{0.__class__}'.format(x)",
        "type(x)",
        # dates and durations are values, not the modules: nothing of them leads to Python's objects
        "datetime.now().__class__.__subclasses__()",
        "datetime.now.__self__",
        "timedelta.max.__class__",
        "datetime.today()",
        "datetime.now().ctime()",
        "datetime.now",
        "timezone.__dict__",
    ]


# --- the interpreter itself -----------------------------------------------------------------

@pytest.mark.parametrize("mode", ["eval", "exec"])
def test_every_attack_is_refused_before_it_runs(tmp_path: Path, mode: str) -> None:
    marker = _marker(tmp_path)
    for attack in attacks(marker):
        with pytest.raises(ExpressionError):  # by the static check, or else while running
            expressions.check(attack, mode)
            if mode == "eval":
                expressions.evaluate(attack, {"x": 1})
            else:
                expressions.execute(f"y = {attack}", {"x": 1})
    assert not marker.exists()


def test_globals_and_vars_give_a_copy_of_the_data_and_nothing_of_the_host() -> None:
    assert expressions.evaluate("globals()", {"x": 1}) == {"x": 1}
    assert expressions.execute("y = vars()\ny['x'] = 2", {"x": 1}) == {"x": 1, "y": {"x": 2}}


@pytest.mark.parametrize("source, message", [
    ("import os", "imports are not allowed"),
    ("from os import system", "imports are not allowed"),
    ("def f():\n    return 1", "function definitions are not allowed"),
    ("class A:\n    pass", "class definitions are not allowed"),
    ("y = (z := 1)", "`:=` is not allowed"),
    ("_secret = 1", "names starting with '_' are not allowed"),
    ("y = x.real", "'.real' reads a field of an object, not of a int value"),
    ("y = notes.append", "'.append' reads a field of an object, not of a list value"),
    ("while True:\n    pass", "stopped after"),
    ("y = 'a' * 10**9", "makes more than 100000 (limit tier1_length"),
    ("y = 2 ** 100000", "wider than 4096 bits"),
    ("y = list(range(10**9))", "longer than the limit"),
    ("y = '%s' % x", "%-formatting of strings is not allowed"),
    ("y = {1, 2}", "holds a set"),
    ("y = float('nan')", "not a JSON number"),
    ("y = x / 0", "ZeroDivisionError"),
    ("y = datetime(2026, 1, 1).strftime('%999999Y')", "a date format must be text of at most 100 characters"),
    ("y = f'{datetime(2026, 1, 1):%999999Y}'", "asks for a width or precision above"),
    ("y = timedelta(days=10**9)", "OverflowError"),
    ("y = datetime.now().fold", "'.fold' reads a field of an object, not of a datetime value"),
    ("y = datetime(2026, 1, 1).astimezone()", "needs a time zone here, such as timezone.utc"),
    ("y = datetime(2026, 1, 1).timestamp()", "would read the machine's"),
    ("y = missing + 1", "name 'missing' is not defined"),
    ("try:\n    y = 1\nexcept Exception:\n    pass", "`try` is not allowed"),
])
def test_scripts_are_limited(source: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message.replace("(", r"\(").replace("*", r"\*")):
        expressions.execute(source, {"x": 1, "notes": []})


def test_conditions_cannot_change_the_data() -> None:
    data = {"items": [1, 2]}
    with pytest.raises(ExpressionError, match="may only be used in scripts"):
        expressions.evaluate("items.append(3) or True", data)
    assert data == {"items": [1, 2]}
    assert expressions.evaluate("len(items) == 2 and items.count(1) == 1", data) is True


def test_what_scripts_may_do() -> None:
    result = expressions.execute(
        "total = sum(line['amount'] for line in lines if line['amount'] > 0)\n"
        "names = sorted({line['who'] for line in lines})\n"
        "label = f\"{len(lines)} lines, {total:.2f} total\"\n"
        "by_who = {}\n"
        "for line in lines:\n"
        "    by_who[line['who']] = by_who.get(line['who'], 0) + line['amount']\n"
        "flagged = [w for w, v in by_who.items() if v > 10]\n"
        "del lines, line\n",
        {"lines": [{"who": "b", "amount": 7.5}, {"who": "a", "amount": 5}, {"who": "b", "amount": 4}]})
    assert result == {"total": 16.5, "names": ["a", "b"], "label": "3 lines, 16.50 total",
                      "by_who": {"b": 11.5, "a": 5}, "flagged": ["b"]}


def test_a_failing_script_changes_nothing() -> None:
    data = {"count": 1, "items": [1]}
    with pytest.raises(ExpressionError) as err:
        expressions.execute("count = 2\nitems.append(2)\nboom = 1 / 0", data)
    assert err.value.line == 3
    assert data == {"count": 1, "items": [1]}


# --- XML ------------------------------------------------------------------------------------

def test_xxe_is_refused_and_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    xml = (f'<?xml version="1.0"?>\n<!DOCTYPE d [<!ENTITY xxe SYSTEM "file://{secret}">]>\n'
           f'<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d">'
           f'<bpmn:process id="p" isExecutable="true"><bpmn:userTask id="t"><bpmn:documentation>&xxe;'
           f'</bpmn:documentation></bpmn:userTask></bpmn:process></bpmn:definitions>')
    with pytest.raises(BpmnError) as err:
        parse_bpmn(xml, "processes/p.bpmn")
    assert err.value.line == 2 and "DOCTYPE" in err.value.message
    definition, problems = load_process(xml, "processes/p.bpmn", "p")
    assert definition is None
    assert [(p.line, "DOCTYPE" in p.message) for p in problems] == [(2, True)]
    assert all("TOP-SECRET" not in p.message for p in problems)


@pytest.mark.parametrize("payload", [
    '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>',
    '<!ENTITY x "y">',
])
def test_entity_declarations_are_refused(payload: str) -> None:
    xml = f'<?xml version="1.0"?>{payload}<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"/>'
    with pytest.raises(BpmnError, match="DOCTYPE> or <!ENTITY> declaration"):
        parse_bpmn(xml, "x.bpmn")


def test_utf16_doctype_is_refused_too() -> None:
    xml = ('<?xml version="1.0" encoding="UTF-16"?>\n<!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/hostname">]>'
           '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">&e;</bpmn:definitions>')
    with pytest.raises(BpmnError, match="DOCTYPE"):
        parse_bpmn(xml.encode("utf-16"), "x.bpmn")


def test_undeclared_entity_is_an_xml_error_with_its_line() -> None:
    xml = ('<?xml version="1.0"?>\n<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">\n'
           '<bpmn:process id="p">&nope;</bpmn:process></bpmn:definitions>')
    with pytest.raises(BpmnError) as err:
        parse_bpmn(xml, "x.bpmn")
    assert err.value.line == 3 and "not well-formed" in err.value.message


# --- each place a definition holds code -----------------------------------------------------

def _script_process(script: str) -> str:
    return bpmn("attack", '<bpmn:startEvent id="start"/>'
                f'<bpmn:scriptTask id="evil" scriptFormat="python"><bpmn:script>{_esc(script)}</bpmn:script>'
                '</bpmn:scriptTask>' + user("after") + '<bpmn:endEvent id="end"/>'
                + chain("start", "evil", "after", "end"))


def _condition_process(condition: str) -> str:
    return bpmn("attack", '<bpmn:startEvent id="start"/><bpmn:exclusiveGateway id="gw" default="f_no"/>'
                + user("yes") + user("no") + '<bpmn:endEvent id="end"/>'
                + flow("f0", "start", "gw") + flow("f_yes", "gw", "yes", condition) + flow("f_no", "gw", "no")
                + chain("yes", "end", prefix="a") + chain("no", "end", prefix="b"))


def _timer_process(value: str) -> str:
    return bpmn("attack", '<bpmn:startEvent id="start"/>' + user("wait_here")
                + '<bpmn:boundaryEvent id="evil_timer" attachedToRef="wait_here"><bpmn:timerEventDefinition>'
                f'<bpmn:timeDuration>{_esc(value)}</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>'
                + user("late") + '<bpmn:endEvent id="end"/>'
                + chain("start", "wait_here", "end") + flow("f_late", "evil_timer", "late")
                + flow("f_late_end", "late", "end"))


def _decision_process() -> str:
    return bpmn("attack", '<bpmn:startEvent id="start"/>'
                '<bpmn:businessRuleTask id="decide" camunda:decisionRef="evil"/>' + user("after")
                + '<bpmn:endEvent id="end"/>' + chain("start", "decide", "after", "end"))


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _run_unchecked(xml: str, decisions: dict[str, str] | None = None) -> tuple[Any, dict[str, Any]]:
    """Start a run of a definition pinned without `tiergate check`: the run-time guard alone."""
    definition = BpmnDefinition(process_id="attack", xml=xml, source="processes/attack.bpmn",
                                decisions=decisions or {})
    ctx = RunContext(run_id="r1", actor=Actor("agent", "a"), now=NOW)
    result = BpmnRunner().start(definition, {"x": 1}, ctx)
    return result, result.state


@pytest.mark.parametrize("place", ["script", "condition", "timer"])
def test_attacks_fail_the_run_at_the_element_and_never_run(tmp_path: Path, place: str) -> None:
    marker = _marker(tmp_path)
    for attack in attacks(marker)[:4]:
        xml = {"script": _script_process(f"y = {attack}"), "condition": _condition_process(attack),
               "timer": _timer_process(attack)}[place]
        definition, problems = load_process(xml, "processes/attack.bpmn", "attack")
        assert definition is None and problems, attack
        element = {"script": "evil", "condition": "f_yes", "timer": "evil_timer"}[place]
        assert any(p.message.startswith(f"{element}: ") for p in problems), problems
        result, state = _run_unchecked(xml)
        failed = [e for e in result.events if e.event == "failed"]
        assert result.status.value == "failed" and len(failed) == 1, attack
        assert failed[0].step == {"script": "evil", "condition": "gw", "timer": "evil_timer"}[place]
        assert state["error"]["element"] == failed[0].step
    assert not marker.exists()


@pytest.mark.parametrize("cell", ["__import__('os').system('touch {m}')", '__import__("os").system("touch {m}")',
                                  '"".__class__'])
def test_dmn_cells_cannot_reach_python(tmp_path: Path, cell: str) -> None:
    marker = _marker(tmp_path)
    dmn = dmn_table("evil", [("x", "number")], ["level"], [(["-"], [cell.format(m=marker)])])
    with pytest.raises(Exception) as err:  # noqa: PT011 - a load error or an evaluation error, never success
        Decision(id="evil", xml=dmn.encode()).evaluate({"x": 1})
    assert type(err.value).__module__.startswith("tiergate"), err.value
    result, state = _run_unchecked(_decision_process(), {"evil": dmn})
    assert result.status.value == "failed"
    assert [e.step for e in result.events if e.event == "failed"] == ["decide"]
    assert not marker.exists()


def test_check_reports_a_dmn_attack_with_its_file(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    marker = _marker(tmp_path)
    dmn = dmn_table("evil", [("x", "number")], ["level"], [(["-"], [f"__import__('os').system('touch {marker}')"])])
    home = tier1_home(tmp_path / "home", {"attack": _decision_process()},
                      decisions={"evil": (dmn, "decision: evil\ncases: []\n")})
    problems = [str(p) for p in make_engine(home).check() if p.severity == "error"]
    assert any(p.startswith("decisions/evil.dmn:") and "FEEL syntax error" in p for p in problems), problems
    assert any(p.startswith("processes/attack.bpmn:") and "decide: decision 'evil' does not exist or failed to load"
               in p for p in problems), problems
    assert not marker.exists()


# --- the engine is restricted, and stays so after a restore ---------------------------------

def test_plain_spiffworkflow_would_run_it_but_a_tier1_workflow_cannot() -> None:
    xml = _script_process("y = __import__('os').getpid()")
    definition = BpmnDefinition(process_id="attack", xml=xml, source="processes/attack.bpmn")
    spec, subprocess_specs = definition.specs
    plain = BpmnWorkflow(spec, subprocess_specs)  # SpiffWorkflow's default engine: Python eval/exec
    assert isinstance(plain.script_engine, PythonScriptEngine)
    plain.do_engine_steps()
    assert any(isinstance(t.data.get("y"), int) for t in plain.get_tasks())  # the control: it really ran
    ours = persistence.new_workflow(spec, subprocess_specs, RestrictedScriptEngine(now=NOW))
    with pytest.raises(persistence.StepFailure, match="names starting with '_' are not allowed"):
        persistence.advance(ours)


def test_a_restored_workflow_always_has_the_restricted_engine() -> None:
    definition = BpmnDefinition(process_id="attack", xml=_script_process("y = 1"), source="processes/attack.bpmn")
    spec, subprocess_specs = definition.specs
    workflow = persistence.new_workflow(spec, subprocess_specs, RestrictedScriptEngine(now=NOW))
    persistence.advance(workflow)
    state = persistence.dump(workflow)
    assert "spec" not in state and "subprocess_specs" not in state
    restored = persistence.restore(state, spec, subprocess_specs, RestrictedScriptEngine(now=NOW))
    assert isinstance(restored, RestrictedWorkflow)
    assert isinstance(restored.script_engine, RestrictedScriptEngine)
    for sub in restored.subprocesses.values():
        assert isinstance(sub.script_engine, RestrictedScriptEngine)
    with pytest.raises(TypeError, match="only runs with tiergate's RestrictedScriptEngine"):
        restored.script_engine = PythonScriptEngine()
    # SpiffWorkflow calls the environment directly in places; it is the restricted one too.
    with pytest.raises(ExpressionError):
        restored.script_engine.environment.evaluate("__import__('os')", {})
