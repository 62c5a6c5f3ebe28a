"""Guidance: gates in words, the wrappers for every tier, overrides, and run data kept as values.

The main test is a literal-minded agent: it reads ONLY the rendered guidance text (never the
schema), writes evidence from the words, and must pass every gate of the platform's four
checklists on the first try.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml
from jsonschema import Draft202012Validator, FormatChecker

from agents_helpers import LiteralAgent, actor_for
from support import REPO, CLIResult, HomeBuilder
from tiergate.definitions.home import Home, load_definitions
from tiergate.engine import Engine
from tiergate.errors import GateFailedError
from tiergate.guidance import GuidanceContext, build_context, evidence_words, inline_refs, render_guidance
from tiergate.guidance.context import HowTo, ProcessView, RunView, StepGuide
from tiergate.guidance.render import sample_context

PLATFORM_STARTS: dict[str, dict[str, Any]] = {
    "support-triage": {"ticket_id": "SUP-10234", "client_id": "CL-0042", "client_tier": "gold",
                       "summary": "Payslips show the wrong overtime rate since the last release"},
    "defect-capture": {"source": "support-ticket", "source_ref": "SUP-10234", "product_area": "pay-calculation",
                       "summary": "Overtime premium rounds down instead of to the nearest cent",
                       "client_id": "CL-0042", "reported_by": "human:kim"},
    "documentation-generation": {"doc_type": "release-notes", "doc_title": "Release notes for 24.3",
                                 "audience": "client-payroll-admins", "source_refs": ["DEF-4711", "SUP-10234"],
                                 "product_version": "24.3"},
    "standard-data-import": {"client_id": "CL-0042", "import_type": "pay-rates", "file_name": "rates-2026.csv",
                             "template_version": "v3.2", "request_ticket": "SUP-10234",
                             "effective_date": "2026-01-01"},
}


@pytest.fixture
def platform(repo_home: Path, make_engine: Callable[..., Engine]) -> Engine:
    return make_engine(repo_home)


@pytest.mark.parametrize("process", sorted(PLATFORM_STARTS))
def test_evidence_written_from_the_words_alone_passes_every_gate(platform: Engine, process: str) -> None:
    roles = yaml.safe_load((REPO / "tiers" / "roles.yaml").read_text())["roles"]
    run = platform.start(process, PLATFORM_STARTS[process], actor="agent:literal")
    done: list[str] = []
    for _ in range(30):
        guidance = platform.guide(run.id)["text"]
        agent = LiteralAgent(guidance)
        ready = agent.ready_steps()
        if not ready:
            break
        step = ready[0]
        evidence = agent.evidence(step)
        try:
            platform.complete(run.id, step, evidence, actor=actor_for(agent, step, roles))
        except GateFailedError as err:  # pragma: no cover - the failure message is the point
            pytest.fail(f"{process}/{step}: evidence from the words failed the gate: {err.message}\n"
                        f"evidence: {json.dumps(evidence)}\nwords:\n{guidance}")
        done.append(step)
    final = platform.status(run.id)
    assert final.status == "completed"
    by_hand = [s.id for s in final.steps if s.decide is None]
    assert sorted(done) == sorted(by_hand), "every step was done from its words (none skipped)"
    assert not [e for e in platform.log(run.id) if e["event"] in ("gate_failed", "refused")]


def _platform_gates() -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    definitions = load_definitions(Home(REPO))
    found = []
    for process in sorted(PLATFORM_STARTS):
        checklist = definitions.checklists[process]
        for step in checklist.checklist.steps:
            if step.done_when is not None:
                found.append((process, step.id, step.done_when, checklist.resources))
    return found


GATES = _platform_gates()


@pytest.mark.parametrize("process, step, gate, resources", GATES, ids=[f"{p}/{s}" for p, s, _, _ in GATES])
def test_inlined_gate_validates_exactly_like_the_gate(process: str, step: str, gate: dict[str, Any],
                                                      resources: dict[str, Any]) -> None:
    definitions = load_definitions(Home(REPO))
    original = definitions.checklists[process].validator(gate)
    inlined = inline_refs(gate, resources)
    assert "$ref" not in json.dumps(inlined)
    plain = Draft202012Validator(inlined, format_checker=FormatChecker())
    words = evidence_words(gate, resources)
    good = LiteralAgent(f"### `{step}`\nEvidence — {words.text}\n").evidence(step)
    candidates = [good, {}, {**good, "unexpected": 1}, {k: None for k in good}, {k: "x" for k in good},
                  {k: [] for k in good}, {k: 0 for k in good}, {k: True for k in good}]
    for evidence in candidates:
        assert original.is_valid(evidence) == plain.is_valid(evidence), evidence
    assert original.is_valid(good)
    assert words.required == sorted(words.required, key=list(words.required).index)  # keeps schema order
    assert set(words.required) <= set(good)


# --- words for every construct ---------------------------------------------------------------


@pytest.mark.parametrize("schema, expected", [
    ({"type": ["string", "null"], "maxLength": 3}, "either text of at most 3 characters, or `null`"),
    ({"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}]}, "either a whole number, at least 1, or `null`"),
    ({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1, "multipleOf": 0.25},
     "a number, greater than 0, less than 1, a multiple of 0.25"),
    ({"type": "string", "minLength": 4, "maxLength": 4}, "text of exactly 4 characters"),
    ({"type": "string", "minLength": 1, "maxLength": 9}, "text of 1 to 9 characters"),
    ({"type": "string", "format": "email"}, "an e-mail address"),
    ({"type": "string", "format": "ipv4"}, "an IPv4 address"),
    ({"type": "string", "format": "color"}, "text in the `color` format"),
    ({"enum": ["a", 1, None]}, 'one of `"a"`, `1`, `null`'),
    ({"const": 0}, "exactly `0`"),
    ({"allOf": [{"enum": ["a", "b"]}, {"enum": ["b", "c"]}]}, 'exactly `"b"`'),
    ({"allOf": [{"const": 1}, {"const": 2}]},
     "must not be given (its constraints contradict each other, so no value passes)"),
    ({"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "boolean"}},
     "a list of exactly 2 items; each item: `true` or `false`"),
    ({"type": "array"}, "a list of any values"),
    ({"type": "array", "items": {"type": "string"}, "contains": {"const": "x"}},
     'a list; each item: text; at least one item must be exactly `"x"`'),
    ({"type": "string", "not": {"const": "x"}}, 'text; it must also pass the JSON Schema `{"not": {"const": "x"}}`'),
    ({"$ref": "schemas/missing.json"},
     "any JSON value; it must also match `schemas/missing.json` (a shared schema that could not be found)"),
    ({}, "any JSON value"),
    (False, "must not be given (no value passes)"),
])
def test_words_for_each_construct(schema: Any, expected: str) -> None:
    from tiergate.guidance import describe
    assert describe(schema) == expected


def test_words_for_objects_refs_and_conditions() -> None:
    resources = {"schemas/shared.json": {"$defs": {
        "id": {"type": "string", "pattern": "^X-[0-9]+$", "description": "An id, e.g. X-1."},
        "a/b": {"$ref": "#/$defs/id"}, "tilde~": {"$ref": "shared.json#/$defs/a~1b"}}}}
    schema = {
        "type": "object", "required": ["ref", "items", "kind"], "additionalProperties": False,
        "$defs": {"local": {"type": "integer", "minimum": 1}},
        "properties": {
            "ref": {"$ref": "schemas/shared.json#/$defs/tilde~0"},
            "count": {"$ref": "#/$defs/local", "maximum": 5, "description": "How many."},
            "items": {"type": "array", "items": {"type": "object", "required": ["n"],
                                                 "properties": {"n": {"type": "integer"}}}},
            "kind": {"enum": ["a", "b"]},
            "note": {"type": "string"},
        },
        "dependentRequired": {"count": ["note"]},
        "if": {"properties": {"kind": {"const": "b"}}}, "then": {"required": ["note"]},
        "else": {"properties": {"note": {"maxLength": 3}}},
    }
    assert evidence_words(schema, resources).text == "\n".join([
        "a JSON object with only these fields:",
        "- `ref` (required): text matching the regular expression `^X-[0-9]+$` — An id, e.g. X-1.",
        "- `count` (optional): a whole number, at least 1, at most 5 — How many.",
        "- `items` (required): a list; each item is an object with these fields (others are allowed):",
        "  - `n` (required): a whole number",
        '- `kind` (required): one of `"a"`, `"b"`',
        "- `note` (optional): text",
        "- If `count` is given, `note` is also required.",
        '- If `kind` is `"b"` or `kind` is not given: `note` is also required. Otherwise: `note` must have at '
        "most 3 characters.",
    ])
    inlined = inline_refs(schema, resources)
    assert inlined["properties"]["ref"]["pattern"] == "^X-[0-9]+$"
    assert inlined["properties"]["count"] == {"maximum": 5, "description": "How many.",
                                              "allOf": [{"type": "integer", "minimum": 1}]}


def test_recursive_ref_is_described_without_looping() -> None:
    schema = {"$defs": {"node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/node"}}}},
              "$ref": "#/$defs/node"}
    text = evidence_words(schema).text
    assert text.startswith("a JSON object with these fields (others are allowed):")
    assert "`child` (optional)" in text


# --- wrappers ---------------------------------------------------------------------------------

TRIAGE = PLATFORM_STARTS["support-triage"]
GATHER = {"duplicate_of": None, "next_pay_date": "2026-11-30", "context_notes": "Overtime element changed in 4.2"}


def test_tier2_guidance_lists_the_checklist_and_ready_steps(platform: Engine) -> None:
    run = platform.start("support-triage", TRIAGE, actor="agent:triage-bot")
    platform.complete(run.id, "gather-context", GATHER, actor="agent:triage-bot")
    answer = platform.guide(run.id, actor="agent:triage-bot")
    text = answer["text"]
    assert text.startswith(f"# Support ticket triage — run {run.id}\n")
    assert "- [x] `gather-context` — Read the ticket and gather client context — done by agent:triage-bot at " in text
    assert "- [ ] `reproduce` — Reproduce the problem outside the live tenant (optional) — **ready**" in text
    assert "- [ ] `route` — Route by the support triage decision — locked: waits for classify; decided by the " \
           "engine" in text
    assert f"Submit: `tiergate complete {run.id} reproduce --evidence '{{...}}' --actor agent:triage-bot`" in text
    assert f"Not needed? Skip it with a reason: `tiergate skip {run.id} reproduce --reason '...' --actor " \
           "agent:triage-bot`" in text
    assert "Who may do it: an agent or a person with the role `support-engineer`." in text
    assert answer["template"] == "tiergate:guidance/templates/tier2.md.j2"
    assert [r["id"] for r in answer["ready"]] == ["reproduce"]
    ready = answer["ready"][0]
    assert ready["you_may"] is True and ready["evidence_words"].startswith("a JSON object with only these fields:")
    assert ready["evidence_schema"]["properties"]["environment"]["enum"] == ["client-sandbox", "qa", "demo-tenant"]


def test_guidance_says_who_may_not_do_a_step(platform: Engine) -> None:
    run = platform.start("support-triage", TRIAGE, actor="agent:triage-bot")
    text = platform.guide(run.id, actor="agent:docs-writer")["text"]
    assert "**You (agent:docs-writer) cannot do this step**: agent:docs-writer is not a member of support-engineer " \
           "(tiers/roles.yaml)." in text


def test_tier1_wrapper_renders_from_a_tier2_runs_context(platform: Engine) -> None:
    """The Tier 1 runner is built elsewhere; its wrapper renders from the same typed context."""
    run = platform.start("support-triage", TRIAGE, actor="agent:triage-bot")
    platform.complete(run.id, "gather-context", GATHER, actor="agent:triage-bot")
    definition = platform.definitions.checklists["support-triage"]
    context = build_context(platform.status(run.id), resources=definition.resources, channel="mcp",
                            process=ProcessView(id="support-triage", title="Support ticket triage"))
    text, template = render_guidance(context, tier=1)
    assert template == "tiergate:guidance/templates/tier1.md.j2"
    assert "This run follows a **tier 1 BPMN process** (`support-triage`), the strictest tier. The engine " \
           "decides what comes next." in text
    assert "Done so far: `gather-context` (agent:triage-bot)." in text
    assert "## The step to do now: `reproduce` — Reproduce the problem outside the live tenant" in text
    assert "### Evidence required\n\nEvidence — a JSON object with only these fields:\n- `reproduced` (required)" in text
    assert f'`complete_step(run="{run.id}", step="reproduce", evidence={{...}})`' in text
    assert f'ask for guidance again (`get_guidance(run="{run.id}")`)' in text
    # The literal agent reads the Tier 1 words too.
    evidence = LiteralAgent(text).evidence("reproduce")
    platform.complete(run.id, "reproduce", evidence, actor="agent:triage-bot")


def test_tier1_wrapper_when_nothing_is_ready_and_when_finished() -> None:
    context = sample_context(1)
    waiting = context.model_copy(update={"current": None, "ready": []})
    text, _ = render_guidance(waiting)
    assert "## Nothing to do now" in text and "waiting for a timer, a decision or another run" in text
    finished = waiting.model_copy(update={"run": context.run.model_copy(update={"status": "completed"})})
    assert "This run is completed: nothing more to do in it." in render_guidance(finished)[0]


INJECTIONS = ["{{ 7*7 }}", "{{ ''.__class__ }}", "{% for x in range(3) %}loop{% endfor %}", "{{ run.id }}"]


def test_run_data_and_evidence_are_values_never_template_source(platform: Engine) -> None:
    payload = " | ".join(INJECTIONS)
    run = platform.start("support-triage", {**TRIAGE, "summary": f"Payslips wrong: {payload}"},
                         actor="agent:triage-bot")
    platform.complete(run.id, "gather-context", {**GATHER, "context_notes": f"Notes: {payload}"},
                      actor="agent:triage-bot")
    texts = [platform.guide(run.id)["text"]]
    definition = platform.definitions.checklists["support-triage"]
    for tier in (1, 2, 3):
        context = build_context(platform.status(run.id), resources=definition.resources,
                                conventions=f"conventions quoting {payload}")
        texts.append(render_guidance(context, tier=tier)[0])
    for text in texts:
        assert payload in text, text
        assert "Payslips wrong: 49" not in text and "<class" not in text and "looplooploop" not in text
    # In the instructions (rendered from the definition) the summary is printed as a value.
    assert f'"Payslips wrong: {payload}"' in texts[0]


def test_tier3_conventions_keep_start_data_literal(platform: Engine) -> None:
    payload = " | ".join(INJECTIONS)
    run = platform.start("knowledge-qa", {"question": payload}, actor="agent:kb-bot")
    text = platform.guide(run.id)["text"]
    assert f'Question: "{payload}"' in text and "<class" not in text and "looplooploop" not in text
    served = next(e for e in platform.log(run.id) if e["event"] == "guidance_served")
    assert payload in served["detail"]["conventions"]


# --- overrides --------------------------------------------------------------------------------


def test_a_home_override_replaces_the_packaged_wrapper(platform: Engine, repo_home: Path) -> None:
    (repo_home / "tiers" / "guidance" / "tier2.md.j2").write_text(
        "Run {{ run.id }} of {{ process.title }}: {% for s in ready %}{{ s.id }} ({{ s.evidence.required | join(', ') }})"
        "{% endfor %}\n")
    platform.reload()
    run = platform.start("support-triage", TRIAGE, actor="agent:triage-bot")
    answer = platform.guide(run.id)
    assert answer["template"] == "tiers/guidance/tier2.md.j2"
    assert answer["text"] == f"Run {run.id} of Support ticket triage: gather-context (duplicate_of, next_pay_date, " \
                             "context_notes)"  # trim_blocks eats the newline after a block tag
    assert [p for p in platform.check() if p.path.startswith("tiers/guidance/")] == []


@pytest.mark.parametrize("name, source, expected", [
    ("tier2.md.j2", "line one\n{% for s in steps %}\n{{ s.id }\n{% endfor %}\n",
     "tiers/guidance/tier2.md.j2:3: guidance wrapper for tier 2: template syntax error: unexpected '}'"),
    ("tier1.md.j2", "line one\nline two\n{{ current.evidance.text }}\n",
     "tiers/guidance/tier1.md.j2:3: guidance wrapper for tier 1: 'dict object' has no attribute 'evidance'. Use only "
     "the names documented in docs/guidance.md"),
    ("tier3.md.j2", "{{ ''.__class__.__mro__ }}\n",
     "tiers/guidance/tier3.md.j2:1: guidance wrapper for tier 3: refused by the template sandbox"),
    ("tier4.md.j2", "x", "tiers/guidance/tier4.md.j2:1: warning: tier4.md.j2 is not a guidance wrapper tiergate uses"),
])
def test_check_reports_broken_overrides(cli: Callable[..., CLIResult], home: HomeBuilder, name: str, source: str,
                                        expected: str) -> None:
    from support import DEMO
    home.checklist("demo", DEMO)
    home.write(f"tiers/guidance/{name}", source)
    result = cli("check", home=home)
    assert any(line.startswith(expected) for line in result.stdout.splitlines()), result
    assert result.returncode == (0 if "warning" in expected else 1)


# --- the context is documented ---------------------------------------------------------------


def test_every_context_field_is_documented() -> None:
    docs = (REPO / "docs" / "guidance.md").read_text()
    for model in (GuidanceContext, StepGuide, ProcessView, RunView, HowTo):
        for name in model.model_fields:
            assert re.search(rf"`[a-z_.]*{re.escape(name)}`", docs), f"docs/guidance.md does not document {name}"
    for name in ("text", "required", "json_schema"):
        assert f"`evidence.{name}`" in docs


def test_sample_context_renders_every_packaged_wrapper() -> None:
    for tier in (1, 2, 3):
        text, template = render_guidance(sample_context(tier))
        assert template.endswith(f"tier{tier}.md.j2") and "Sample process" in text


def test_cli_guide_for_people_and_scripts(cli: Callable[..., CLIResult], repo_home: Path) -> None:
    started = cli("start", "support-triage", "--data", json.dumps(TRIAGE), "--actor", "agent:triage-bot", "--json",
                  home=repo_home)
    run_id = started.json["data"]["id"]
    as_json = cli("guide", run_id, "--actor", "agent:triage-bot", "--json", home=repo_home)
    assert as_json.returncode == 0 and as_json.json["ok"] is True
    data = as_json.json["data"]
    assert set(data) == {"run", "process", "tier", "status", "template", "text", "ready"}
    for_people = cli("guide", run_id, "--actor", "agent:triage-bot", home=repo_home)
    assert for_people.returncode == 0
    assert for_people.stdout == data["text"].rstrip() + "\n"  # printed as is: no markup, no wrapping
    assert "- [ ] `gather-context` — Read the ticket and gather client context — **ready**" in for_people.stdout
    missing = cli("guide", "nope", home=repo_home)
    assert missing.returncode == 1
    assert missing.stderr.strip() == "error (not_found): no run 'nope'. `tiergate runs` lists the runs."
    bad_actor = cli("guide", run_id, "--actor", "robot", home=repo_home)
    assert bad_actor.returncode == 2 and bad_actor.stderr.startswith("error (actor_invalid): actor 'robot' is not valid")
