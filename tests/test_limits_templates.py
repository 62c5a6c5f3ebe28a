"""Jinja templates have budgets (issue 12): operators, format widths, filters, loops and output are
bounded, so an author's template can neither hang `check` nor a command."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from support import CLIResult
from tiergate.errors import LimitExceededError
from tiergate.templating import check_syntax, render

Cli = Callable[..., CLIResult]


@pytest.mark.parametrize("source, limit", [
    ("{{ 9**(9**8) }}", "template_int_bits"),
    ("{{ 'a' * 1000000000 }}", "template_length"),
    ("{{ [[0] * 100000] * 100000 }}", "template_length"),
    ("{{ '%999999999d' % 1 }}", "template_length"),
    ("{{ '%999999999d'|format(1) }}", "template_length"),
    ("{{ '{:>999999999}'.format(1) }}", "template_length"),
    ("{{ 'x'|center(999999999) }}", "template_length"),
    ("{{ ('a' * 1000)|replace('a', 'b' * 1000) }}", "template_length"),
    ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "template_loop_items|template_seconds"),
    ("{% for i in range(100000) %}{{ 'x' * 50 }}{% endfor %}", "template_output_chars"),
])
def test_each_template_attack_is_bounded(source: str, limit: str) -> None:
    assert check_syntax(source) is None  # compiling never evaluates the operators
    with pytest.raises(LimitExceededError) as over:
        render(source, {}, where="tiers/conventions/x.md.j2")
    assert over.value.details["limit"] in limit.split("|")  # a loaded machine may reach the time budget first
    assert over.value.message.startswith("tiers/conventions/x.md.j2: ")


def test_ordinary_templates_render_as_before() -> None:
    source = ("{% for i in range(3) %}{{ i }}{% endfor %} {{ 2 ** 10 }} {{ 'ab' * 3 }} {{ '%05d' % 3 }} "
              "{{ 'x'|center(5) }}|{{ 'a-b'|replace('-', '+') }} {{ '{:>4}'.format(7) }} {{ data|tojson }}")
    assert render(source, {"data": {"a": 1}}) == '012 1024 ababab 00003   x  |a+b    7 {"a":1}'


def test_a_hostile_conventions_template_fails_start_through_the_cli(repo_home: Path, cli: Cli) -> None:
    (repo_home / "tiers" / "conventions" / "general-search.md.j2").write_text("Answer in {{ 9**(9**8) }} words.\n")
    check = cli("check", home=repo_home, timeout=60)
    assert check.returncode == 1 and "Traceback" not in check.stderr, check
    assert "general-search.md.j2" in check.stdout and "template_int_bits" in check.stdout
    started = cli("start", "general-search", "--actor", "agent:s", "--json", home=repo_home, timeout=60)
    assert started.returncode == 1 and "Traceback" not in started.stderr, started
    assert "template_int_bits" in started.json["error"]["message"]
    assert cli("runs", "--json", home=repo_home).json["data"] == []
