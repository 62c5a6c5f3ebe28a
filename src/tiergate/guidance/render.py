"""Rendering guidance: pick the tier's wrapper (the home's override or the packaged default), render it.

    text = render_guidance(context, home.guidance_dir)        # markdown for the agent
    answer = guidance_answer(context, text, template)         # what `guide --json` and MCP return

Wrappers render through ``tiergate.templating`` (sandboxed Jinja, StrictUndefined), with the
``GuidanceContext`` as plain values. Overrides are checked by ``tiergate check``: syntax, and a
render against a sample context of their tier so a misspelt name is found before a run needs it.
"""

from __future__ import annotations

import re
from importlib import resources as package_files
from pathlib import Path
from types import TracebackType
from typing import Any, Callable

from jinja2 import TemplateSyntaxError, UndefinedError
from jinja2.exceptions import SecurityError

from tiergate.definitions.problems import Problem
from tiergate.guidance.context import GuidanceContext, HowTo, ProcessView, RunView, StepGuide, evidence_words
from tiergate.templating import check_syntax, environment, render

WRAPPER = "tier{tier}.md.j2"
_OVERRIDE = re.compile(r"^tier[123]\.md\.j2$")


def packaged_wrapper(tier: int) -> str:
    """The default wrapper shipped with tiergate for ``tier``."""
    return package_files.files("tiergate.guidance").joinpath("templates", WRAPPER.format(tier=tier)).read_text(
        encoding="utf-8")


def wrapper(tier: int, guidance_dir: Path | None, display: Callable[[Path], str] = str) -> tuple[str, str]:
    """(template source, where it came from): ``tiers/guidance/tierN.md.j2`` if the home has one."""
    if guidance_dir is not None:
        override = guidance_dir / WRAPPER.format(tier=tier)
        if override.is_file():
            return override.read_text(encoding="utf-8"), display(override)
    return packaged_wrapper(tier), f"tiergate:guidance/templates/{WRAPPER.format(tier=tier)}"


def render_guidance(context: GuidanceContext, guidance_dir: Path | None = None, *,
                    display: Callable[[Path], str] = str, tier: int | None = None) -> tuple[str, str]:
    """Render the wrapper for ``tier`` (default: the run's tier). Returns (text, template used)."""
    source, where = wrapper(tier or context.tier, guidance_dir, display)
    return render(source, context.template_context(), where=where), where


def guidance_answer(context: GuidanceContext, text: str, template: str) -> dict[str, Any]:
    """The machine answer: the rendered text plus each ready step with its gate (schema and words)."""
    return {
        "run": context.run.id, "process": context.process.id, "tier": context.tier, "status": context.run.status,
        "template": template, "text": text,
        "ready": [{"id": s.id, "title": s.title, "optional": s.optional, "instructions": s.instructions,
                   "who": s.who, "you_may": s.you_may, "why_not": s.why_not, "submit": s.submit, "skip": s.skip,
                   "evidence_words": s.evidence.text if s.evidence else None,
                   "evidence_schema": s.evidence.json_schema if s.evidence else None} for s in context.ready],
    }


# --- checking overrides -------------------------------------------------------------------


def sample_context(tier: int) -> GuidanceContext:
    """A small, complete context of ``tier`` for test-rendering a wrapper (every field filled)."""
    gate = {"type": "object", "required": ["summary"], "additionalProperties": False,
            "properties": {"summary": {"type": "string", "minLength": 20}}}
    how = HowTo(status="tiergate status 000000000000", guide="tiergate guide 000000000000",
                close="tiergate complete 000000000000 --outcome '{...}' --actor agent:NAME",
                cancel="tiergate cancel 000000000000 --reason '...' --actor agent:NAME")
    done = StepGuide(id="read", title="Read the request", state="done", actors=["agent", "human"], who="anyone",
                     evidence=evidence_words(gate), actor="agent:sample", at="2025-01-01T00:00:00Z",
                     submit="tiergate complete 000000000000 read --evidence '{...}' --actor agent:NAME")
    ready = StepGuide(id="answer" if tier != 3 else "work", title="Do the work", state="ready",
                      instructions="Sample instructions.", evidence=evidence_words(gate) if tier != 3 else None,
                      who="an agent or a person", actors=["agent", "human"], waits_for=["read"], you_may=True,
                      optional=True, submit="tiergate complete 000000000000 answer --evidence '{...}'",
                      skip="tiergate skip 000000000000 answer --reason '...'")
    steps = [ready] if tier == 3 else [done, ready]
    return GuidanceContext(
        tier=tier, tier_name={1: "BPMN process", 2: "checklist", 3: "conventions"}[tier], channel="cli",
        actor="agent:sample", process=ProcessView(id="sample", title="Sample process", area="sample", owner="owner",
                                                  expected_minutes=10, description="A sample."),
        run=RunView(id="000000000000", status="active", started_by="agent:sample", created_at="2025-01-01T00:00:00Z",
                    definition_version="0" * 64),
        data={"ticket_id": "T-1"}, data_json='{\n  "ticket_id": "T-1"\n}', steps=steps, ready=[ready],
        current=ready, done=[] if tier == 3 else [done], conventions="Sample conventions." if tier == 3 else None,
        how=how)


def _template_line(tb: TracebackType | None) -> int | None:
    """The line inside the template where a render error happened (Jinja maps frames to it)."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def template_problem(source: str, shown: str, context: dict[str, Any], what: str) -> Problem | None:
    """A syntax or render problem of a template (with its line), or None if it renders."""
    error = check_syntax(source)
    if error is not None:
        return Problem(shown, error[0], f"{what}: template syntax error: {error[1]}. Fix the template.")
    try:
        environment().from_string(source).render(**context)
    except UndefinedError as exc:
        return Problem(shown, _template_line(exc.__traceback__) or 1,
                       f"{what}: {exc.message}. Use only the names documented in docs/guidance.md, and put "
                       "anything a run may lack behind `{% if ... is defined %}`.")
    except SecurityError as exc:
        return Problem(shown, _template_line(exc.__traceback__) or 1, f"{what}: refused by the template sandbox: {exc}.")
    except TemplateSyntaxError as exc:  # pragma: no cover - check_syntax found none
        return Problem(shown, exc.lineno or 1, f"{what}: template syntax error: {exc.message}.")
    except Exception as exc:  # noqa: BLE001 - a template can fail in many ways (1/0, bad filter args)
        return Problem(shown, _template_line(exc.__traceback__) or 1,
                       f"{what}: fails to render: {type(exc).__name__}: {exc}.")
    return None


def check_overrides(guidance_dir: Path, display: Callable[[Path], str]) -> list[Problem]:
    """Problems of the home's guidance wrappers (``tiers/guidance/tierN.md.j2``)."""
    if not guidance_dir.is_dir():
        return []
    problems = []
    for path in sorted(guidance_dir.iterdir()):
        shown = display(path)
        if not path.is_file() or path.name.lower().startswith("readme"):
            continue
        if not _OVERRIDE.match(path.name):
            problems.append(Problem(shown, 1, f"{path.name} is not a guidance wrapper tiergate uses: name it "
                                    "tier1.md.j2, tier2.md.j2 or tier3.md.j2, or move it out of tiers/guidance/.",
                                    severity="warning"))
            continue
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(shown, 1, f"cannot read the guidance wrapper: {exc}. Save it as UTF-8 text."))
            continue
        tier = int(path.name[4])
        found = template_problem(source, shown, sample_context(tier).template_context(),
                                 f"guidance wrapper for tier {tier}")
        if found is not None:
            problems.append(found)
    return problems
