"""Dotted reads of an object's fields in Tier 1 expressions (``lover.name``), and script formats other than Python."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tier1_helpers import bpmn, chain, flow, tier1_home, user

from tiergate.bpmn import expressions
from tiergate.bpmn.expressions import ExpressionError
from tiergate.engine import Engine


def test_a_dot_reads_a_field_of_an_object_and_nothing_else() -> None:
    data = {"lover": {"name": "Al", "from": {"city": "Oslo"}}, "Family": {"Size": 3}, "tags": ["a"], "text": "x"}
    assert expressions.evaluate("lover.name", data) == "Al"
    assert expressions.evaluate("lover['from'].city == 'Oslo' and Family.Size > 2", data) is True
    assert expressions.execute("n = Family.Size + 1\nlover['name'] = lover.name.upper()", data)["n"] == 4
    refused = {
        "lover.__class__": "names starting with '_' are never read",
        "text.upper": "'.upper' reads a field of an object, not of a str value",
        "tags.append": "'.append' reads a field of an object, not of a list value",
        "lover.age": "key 'age' is not in the data",
        "text.format(1)": "attribute '.format' is not allowed",
    }
    for source, message in refused.items():
        with pytest.raises(ExpressionError, match=message.replace("(", r"\(").replace(".", r"\.")):
            expressions.evaluate(source, data)
    for script in ("lover.name = 'Bo'", "del lover.name"):
        with pytest.raises(ExpressionError, match="only reads a field of an object; to set or delete it"):
            expressions.check(script, "exec")


def test_dotted_conditions_and_cardinality_run_and_other_script_formats_warn(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    marker = ('<bpmn:multiInstanceLoopCharacteristics><bpmn:loopCardinality>Family.Size</bpmn:loopCardinality>'
              '</bpmn:multiInstanceLoopCharacteristics>')
    greet = user("greet").replace("</bpmn:userTask>", marker + "</bpmn:userTask>")
    body = ('<bpmn:startEvent id="start"/><bpmn:scriptTask id="size" scriptFormat="groovy"><bpmn:script>'
            'Family = {"Size": len(order.members)}</bpmn:script></bpmn:scriptTask>'
            '<bpmn:exclusiveGateway id="gw" default="f_small"/>' + greet + user("small")
            + '<bpmn:endEvent id="end"/>' + chain("start", "size", "gw")
            + flow("f_big", "gw", "greet", "order.total > 100") + flow("f_small", "gw", "small")
            + chain("greet", "end", prefix="g") + chain("small", "end", prefix="s"))
    engine = make_engine(tier1_home(tmp_path / "home", {"dt": bpmn("dt", body)}))
    problems = engine.check()
    assert [p for p in problems if p.severity == "error"] == []
    [warning] = [p for p in problems if "scriptFormat" in p.message]
    assert warning.severity == "warning" and warning.message.startswith("size: scriptFormat 'groovy' is not Python")
    run = engine.start("dt", {"order": {"total": 250, "members": ["a", "b"]}}, actor="agent:a")
    assert [s.id for s in run.ready_steps] == ["greet[0]", "greet[1]"]
    run = engine.start("dt", {"order": {"total": 50, "members": []}}, actor="agent:a")
    assert [s.id for s in run.ready_steps] == ["small"]
    run = engine.start("dt", {"order": {"members": []}}, actor="agent:a")  # a field it lacks: the run fails there
    assert run.status == "failed"
    [failed] = [e for e in engine.log(run.id) if e["event"] == "failed"]
    assert failed["step"] == "gw" and "key 'total' is not in the data" in failed["detail"]["error"]
