"""Rendering definitions' templates: Jinja's sandbox, strict names, and the globals it keeps."""

from __future__ import annotations

import pytest
from jinja2.sandbox import SandboxedEnvironment

from tiergate.errors import DefinitionError
from tiergate.templating import _compile, environment, render

CONTEXT = {"data": {"ticket_id": "T-1", "tags": ["a", "b"]}, "run": {"id": "r1"}}


def test_jinja_globals_and_the_tojson_filter_are_there() -> None:
    text = render("{% for i in range(3) %}{{ i }}{% endfor %}|{% set ns = namespace(n=0) %}"
                  "{% for t in data.tags %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}|"
                  "{% set c = cycler('x', 'y') %}{{ c.next() }}{{ c.next() }}|{{ dict(a=1).a }}|"
                  "{{ data.tags | tojson }}", CONTEXT)
    assert text == '012|2|xy|1|["a","b"]'


def test_the_environment_is_the_sandbox_and_templates_do_not_share_their_globals() -> None:
    env = environment()
    assert isinstance(env, SandboxedEnvironment)
    first, second = _compile("{{ run.id }} one"), _compile("{{ run.id }} two")
    assert first.globals == second.globals and first.globals is not second.globals
    kept = first.globals["range"]
    first.globals["range"] = None  # a template's globals are its own
    try:
        assert render("{{ range(2) | list }}", CONTEXT) == "[0, 1]"
        assert env.globals["range"] is kept
    finally:
        first.globals["range"] = kept


@pytest.mark.parametrize("source, words", [
    ("{{ data.__class__.__mro__ }}", "refused by the template sandbox"),
    ("{{ ''.__class__.__subclasses__() }}", "refused by the template sandbox"),
    ("{{ data.missing }}", "has no attribute 'missing'"),
    ("{{ nothing }}", "'nothing' is undefined"),
])
def test_unsafe_or_unknown_names_are_errors(source: str, words: str) -> None:
    with pytest.raises(DefinitionError) as err:
        render(source, CONTEXT, where="instructions of step 'x'")
    assert words in err.value.message and err.value.message.startswith("instructions of step 'x'")
