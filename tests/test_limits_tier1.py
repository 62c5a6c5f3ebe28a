"""Tier 1 expressions and scripts have budgets, native operations included (issue 12): each attack
passes `tiergate check` or not, but never hangs `complete`; over budget is limit_exceeded, logged,
and the run is unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from support import CLIResult
from tier1_helpers import bpmn, chain, flow, tier1_home, user
from tiergate.bpmn import expressions
from tiergate.bpmn.expressions import ExpressionError
from tiergate.engine import Engine

Cli = Callable[..., CLIResult]

ATTACKS = [
    ("[[[0]*100000]*100000]*100000 == [[[1]*100000]*100000]*100000", "tier1_values"),
    ("f'{1:>999999999}' == ''", "tier1_format_width"),
    ("f'{1.5:.99999999}' == ''", "tier1_format_width"),
    ("len(f'{note:>{width}}') > 0", "tier1_format_width"),
    ("sum([[0] * 1000] * 1000, []) == []", "tier1_values"),
    ("9 ** (9 ** 8) > 0", "tier1_int_bits"),
    ("sorted([[0] * 1000] * 1000) == []", "tier1_values"),
]


@pytest.mark.parametrize("source, limit", ATTACKS)
def test_each_native_operation_is_bounded(source: str, limit: str) -> None:
    with pytest.raises(ExpressionError) as over:
        expressions.evaluate(source, {"note": "x", "width": 10**9})
    assert over.value.limit == limit


def test_sum_adds_numbers_only_and_scripts_stop_at_their_step_budget() -> None:
    with pytest.raises(ExpressionError, match="adds numbers only"):
        expressions.evaluate("sum([[1], [2]], [])", {})
    assert expressions.evaluate("sum(x for x in [1, 2, 3])", {}) == 6
    assert expressions.evaluate("f'{3.14159:>8.2f}'", {}) == "    3.14"
    shared = "a = [0]\nb = [0]\nfor i in range(40):\n    a = [a, a]\n    b = [b, b]\nsame = a == b\n"
    with pytest.raises(ExpressionError) as over:
        expressions.execute(shared, {})
    assert over.value.limit == "tier1_values"
    with pytest.raises(ExpressionError) as endless:
        expressions.execute("x = 0\nwhile True:\n    x += 1\n", {})
    assert endless.value.limit in ("tier1_steps", "tier1_seconds")


def gateway_process(condition: str) -> str:
    return bpmn("hostile", (
        '<bpmn:startEvent id="start"/>'
        + user("draft", "Draft")
        + '<bpmn:exclusiveGateway id="gw" default="f_no"/>'
        + user("act", "Act") + '<bpmn:endEvent id="end"/>'
        + chain("start", "draft", "gw") + flow("f_yes", "gw", "act", condition) + flow("f_no", "gw", "end")
        + chain("act", "end", prefix="g")), lanes={"agent": ["draft", "act"]})


def test_a_hostile_gateway_condition_is_refused_through_the_cli_and_the_run_is_unchanged(
        tmp_path: Path, cli: Cli, make_engine: Callable[..., Engine]) -> None:
    home = tier1_home(tmp_path / "home", {"hostile": gateway_process(
        "[[[0]*100000]*100000]*100000 == [[[0]*100000]*100000]*100000")})
    engine = make_engine(home)
    run = engine.start("hostile", {}, actor="agent:bot").id
    result = cli("complete", run, "draft", "--evidence", "{}", "--actor", "agent:bot", "--json", home=home,
                 timeout=60)
    assert result.returncode == 1, result
    error = result.json["error"]
    assert error["code"] == "limit_exceeded" and error["details"]["limit"] == "tier1_values"
    assert error["details"]["element"] == "gw" and "Traceback" not in result.stderr
    info = engine.status(run)
    assert info.status == "active" and [s.id for s in info.ready_steps] == ["draft"]
    entry: dict[str, Any] = engine.log(run)[-1]
    assert entry["event"] == "refused" and entry["detail"]["limit"] == "tier1_values"
    assert entry["detail"]["element"] == "gw"
