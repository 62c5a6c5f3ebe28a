"""Issue 12, "a broken file breaks only itself": YAML aliases, nesting and sizes are bounded, and a
definition that fails to load leaves every other process usable."""

from __future__ import annotations

from typing import Any, Callable

from support import HomeBuilder
from tiergate.engine import Engine

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(9))


def test_an_alias_bomb_breaks_only_its_own_file(demo_home: HomeBuilder, make_engine: Callable[..., Engine],
                                                cli: Any) -> None:
    demo_home.write("checklists/bomb.yaml", BOMB)
    demo_home.write("checklists/deep.yaml", "a: " + "[" * 5000 + "]" * 5000 + "\n")
    demo_home.write("checklists/self.yaml", "a: &a [1, *a]\n")
    engine = make_engine(demo_home)
    problems = {p.path: p.message for p in engine.check() if p.severity == "error"}
    assert problems["checklists/bomb.yaml"].startswith("it expands to more than 100000 values")
    assert "nests" in problems["checklists/deep.yaml"] and "checklists/self.yaml" in problems
    run = engine.start("demo", {"ticket_id": "T-1"}, actor="agent:a")
    done = engine.complete(run.id, "gather", {"summary": "Enough words here", "severity": "S2"}, actor="agent:a")
    assert done.steps[0].state == "done"
    result = cli("check", "--json", home=demo_home)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert {p["path"] for p in result.json["error"]["details"]["problems"]} >= {"checklists/bomb.yaml"}


def test_a_file_too_large_to_be_a_definition_is_refused(demo_home: HomeBuilder,
                                                        make_engine: Callable[..., Engine]) -> None:
    demo_home.write("checklists/huge.yaml", "notes: |\n" + ("  " + "x" * 1000 + "\n") * 1200)
    engine = make_engine(demo_home)
    problems = {p.path: p.message for p in engine.check() if p.severity == "error"}
    assert "a definition may have at most" in problems["checklists/huge.yaml"]
    assert engine.start("demo", {"ticket_id": "T-2"}, actor="agent:a").status == "active"
