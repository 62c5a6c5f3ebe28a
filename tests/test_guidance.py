"""Guidance: gates in words, the wrappers for every tier, overrides, and run data kept as values.

The main test is a literal-minded agent: it reads ONLY the rendered guidance text (never the
schema), writes evidence from the words, and must pass every gate of the platform's four
checklists on the first try.
"""

from __future__ import annotations

import json
import re
import re._parser as sre_parse  # type: ignore[import-not-found]
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml
from jsonschema import Draft202012Validator, FormatChecker

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


# --- the literal-minded agent ---------------------------------------------------------------


def split_outside_ticks(text: str, separator: str) -> list[str]:
    """Split on ``separator`` where it is not inside `backticks`."""
    parts, current, inside, i = [], "", False, 0
    while i < len(text):
        if text[i] == "`":
            inside = not inside
        if not inside and text.startswith(separator, i):
            parts.append(current)
            current, i = "", i + len(separator)
            continue
        current += text[i]
        i += 1
    return parts + [current]


def _in_set(char: str, items: list[Any]) -> bool:
    samples = {sre_parse.CATEGORY_DIGIT: "0123456789", sre_parse.CATEGORY_SPACE: " \t\n\r\f\v",
               sre_parse.CATEGORY_WORD: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"}
    for op, av in items:
        if op == sre_parse.LITERAL and chr(av) == char:
            return True
        if op == sre_parse.RANGE and av[0] <= ord(char) <= av[1]:
            return True
        if op == sre_parse.CATEGORY and char in samples.get(av, ""):
            return True
    return False


def from_regex(pattern: str, seed: int = 0) -> str:
    """A string the regular expression accepts; ``seed`` lengthens the first open-ended repeat."""
    spare = [seed]

    def generate(items: Any) -> str:
        out = ""
        for op, av in items:
            if op == sre_parse.LITERAL:
                out += chr(av)
            elif op == sre_parse.NOT_LITERAL:
                out += "a" if chr(av) != "a" else "b"
            elif op == sre_parse.ANY:
                out += "a"
            elif op == sre_parse.IN:
                negated = av and av[0][0] == sre_parse.NEGATE
                members = av[1:] if negated else av
                candidates = "a0xZ_-." if negated else "".join(
                    chr(a[1]) if a[0] == sre_parse.LITERAL else chr(a[1][0]) if a[0] == sre_parse.RANGE else
                    {sre_parse.CATEGORY_DIGIT: "0", sre_parse.CATEGORY_WORD: "a",
                     sre_parse.CATEGORY_SPACE: " "}.get(a[1], "a") for a in members)
                out += next(c for c in candidates if _in_set(c, members) != negated)
            elif op in (sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT):
                low, high, sub = av
                count = low
                if high == sre_parse.MAXREPEAT and spare[0]:
                    count, spare[0] = low + spare[0], 0
                out += "".join(generate(sub) for _ in range(count))
            elif op == sre_parse.SUBPATTERN:
                out += generate(av[-1])
            elif op == sre_parse.BRANCH:
                out += generate(av[1][0])
            elif op == sre_parse.AT:
                continue
            else:
                raise AssertionError(f"the literal agent cannot read {op} in {pattern}")
        return out

    result = generate(sre_parse.parse(pattern))
    assert re.search(pattern, result), (pattern, result)
    return result


def _text(phrase: str, seed: int) -> str:
    low = int(m.group(1)) if (m := re.search(r"of (?:at least |exactly )?(\d+)(?: to \d+)? characters?", phrase)) else 1
    high_match = re.search(r"of (?:at most |exactly |\d+ to )(\d+) characters?", phrase)
    text = f"Written from the guidance words alone, item {seed}. "
    while len(text) < low:
        text += "More detail. "
    text = text.strip()
    if high_match:
        text = text[: int(high_match.group(1))]
    return text


class LiteralAgent:
    """Reads only the rendered guidance and writes evidence exactly as the words say."""

    def __init__(self, guidance: str):
        self.guidance = guidance

    def ready_steps(self) -> list[str]:
        if "## Ready now" not in self.guidance:
            return []
        section = self.guidance.split("## Ready now", 1)[1].split("\n## ", 1)[0]
        return re.findall(r"^### `([^`]+)`", section, re.M)

    def _section(self, step: str) -> list[str]:
        lines = self.guidance.splitlines()
        start = lines.index(next(line for line in lines if line.startswith(f"### `{step}`")))
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith(("## ", "### `"))), len(lines))
        return lines[start:end]

    def who(self, step: str) -> str:
        return next(line for line in self._section(step) if line.startswith("Who may do it: "))

    def done_by(self, step: str) -> str | None:
        match = re.search(rf"^- \[x\] `{re.escape(step)}` — .* — done by (\S+) at ", self.guidance, re.M)
        return match.group(1) if match else None

    def evidence(self, step: str) -> dict[str, Any]:
        section = self._section(step)
        first = next(i for i, line in enumerate(section) if line.startswith("Evidence — "))
        head = section[first][len("Evidence — "):]
        block = []
        for line in section[first + 1:]:
            if not line.strip():
                break
            block.append(line)
        value = self.build(head, block, 0)
        assert isinstance(value, dict), head
        return value

    # Reading a phrase ----------------------------------------------------------------------

    def build(self, phrase: str, children: list[str], seed: int) -> Any:
        phrase = split_outside_ticks(phrase, " — ")[0].strip()
        if phrase.startswith("either "):
            return self.build(split_outside_ticks(phrase[len("either "):], ", or ")[0], children, seed)
        if phrase.startswith("exactly `"):
            return json.loads(re.match(r"exactly `(.*)`$", phrase).group(1))  # type: ignore[union-attr]
        if phrase.startswith("one of `"):
            options = [json.loads(o.strip()[1:-1]) for o in split_outside_ticks(phrase[len("one of "):], ", ")]
            return options[seed % len(options)]
        if phrase == "`true` or `false`":
            return True
        if phrase == "`null`":
            return None
        if phrase.startswith(("a JSON object", "an object")):
            return self.build_object(children, seed)
        if phrase.startswith("a list"):
            return self.build_list(phrase, children)
        if phrase.startswith(("a whole number", "a number")):
            return self.build_number(phrase)
        pattern = re.search(r"matching the regular expression `(.*)`$", phrase)
        if pattern:
            return from_regex(pattern.group(1), seed)
        if phrase.startswith("a date written YYYY-MM-DD"):
            return "2026-01-15"
        if phrase.startswith("a date and time"):
            return "2026-01-15T09:30:00Z"
        if phrase.startswith("an e-mail address"):
            return "someone@example.com"
        if phrase.startswith("text"):
            return _text(phrase, seed)
        raise AssertionError(f"the literal agent cannot read: {phrase!r}")

    def build_number(self, phrase: str) -> int | float:
        if m := re.search(r"at least (-?[\d.]+)", phrase):
            return json.loads(m.group(1))
        if m := re.search(r"greater than (-?[\d.]+)", phrase):
            return json.loads(m.group(1)) + 1
        if m := re.search(r"at most (-?[\d.]+)", phrase):
            return min(0, json.loads(m.group(1)))
        return 0

    def build_list(self, phrase: str, children: list[str], at_least: int = 0) -> list[Any]:
        count = 1
        if m := re.search(r"of (?:at least |exactly )?(\d+)(?: to \d+)? items?", phrase):
            count = int(m.group(1)) or 1
        count = max(count, at_least)
        item = split_outside_ticks(phrase, "; each item")[1] if "; each item" in phrase else "text"
        item = item[2:] if item.startswith(": ") else item[len(" is "):]
        return [self.build(item, children, seed) for seed in range(count)]

    def _fields(self, children: list[str]) -> tuple[dict[str, tuple[str, str, list[str]]], list[str]]:
        """This level's field lines (name -> status, phrase, their own children) and its `If` lines."""
        fields: dict[str, tuple[str, str, list[str]]] = {}
        conditions: list[str] = []
        current: str | None = None
        for line in children:
            if line.startswith("  "):
                assert current is not None, line
                fields[current][2].append(line[2:])
                continue
            match = re.match(r"^- `([^`]+)` \((required|optional)(?:, .*?)?\): (.*)$", line)
            if match:
                current = match.group(1)
                fields[current] = (match.group(2), match.group(3), [])
            elif line.startswith("- If "):
                conditions.append(line[len("- If "):])
                current = None
            else:
                raise AssertionError(f"the literal agent cannot read: {line!r}")
        return fields, conditions

    def build_object(self, children: list[str], seed: int) -> dict[str, Any]:
        fields, conditions = self._fields(children)
        value = {name: self.build(phrase, sub, seed) for name, (status, phrase, sub) in fields.items()
                 if status == "required"}
        for condition in conditions:
            if ": " in split_outside_ticks(condition, ", ")[0] or ", " not in condition:
                when, then = split_outside_ticks(condition, ": ")[0], ": ".join(split_outside_ticks(condition, ": ")[1:])
            else:  # "If `a` is given, `b` is also required."
                when, then = split_outside_ticks(condition, ", ")[0], ", ".join(split_outside_ticks(condition, ", ")[1:])
            if self.holds(when, value):
                self.apply(then.rstrip("."), value, fields, seed)
        return value

    @staticmethod
    def holds(when: str, value: dict[str, Any]) -> bool:
        for clause in split_outside_ticks(when, " and "):
            name = re.match(r"^`([^`]+)`", clause).group(1)  # type: ignore[union-attr]
            if clause.endswith(" is given"):
                ok = name in value
            elif m := re.match(r"^`[^`]+` is `(.*)`$", clause):
                ok = name in value and value[name] == json.loads(m.group(1))
            elif m := re.match(r"^`[^`]+` is at least (-?[\d.]+)$", clause):
                ok = name in value and value[name] >= json.loads(m.group(1))
            elif m := re.match(r"^`[^`]+` is one of (.*)$", clause):
                ok = name in value and value[name] in [json.loads(o.strip()[1:-1])
                                                       for o in split_outside_ticks(m.group(1), ", ")]
            else:
                raise AssertionError(f"the literal agent cannot read the condition {clause!r}")
            if not ok:
                return False
        return True

    def apply(self, then: str, value: dict[str, Any], fields: dict[str, tuple[str, str, list[str]]],
              seed: int) -> None:
        for piece in split_outside_ticks(then, "; "):
            if piece.endswith(("is also required", "are also required")):
                for name in re.findall(r"`([^`]+)`", piece):
                    _, phrase, sub = fields[name]
                    value.setdefault(name, self.build(phrase, sub, seed))
            elif m := re.match(r"^`([^`]+)` must have at least (\d+) items?$", piece):
                _, phrase, sub = fields[m.group(1)]
                value[m.group(1)] = self.build_list(phrase, sub, at_least=int(m.group(2)))
            elif m := re.match(r"^`([^`]+)` must be (.*)$", piece):
                value[m.group(1)] = self.build(m.group(2), [], seed)
            else:
                raise AssertionError(f"the literal agent cannot read the consequence {piece!r}")


def _actor_for(agent: LiteralAgent, step: str, roles: dict[str, Any]) -> str:
    """Someone the guidance's `Who may do it` line allows (members from tiers/roles.yaml)."""
    who = agent.who(step)
    kinds = [k for k, words in (("agent", "an agent"), ("human", "a person")) if words in who]
    named = re.findall(r"`([^`]+)`", who.split(", other than")[0])
    excluded = None
    if m := re.search(r"other than whoever completed `([^`]+)`", who):
        excluded = agent.done_by(m.group(1))
    candidates = sorted({member for role in named for member in roles[role]["members"]}) if named else \
        [f"{kind}:literal" for kind in kinds]
    allowed = [c for c in candidates if c.split(":")[0] in kinds and c != excluded]
    allowed.sort(key=lambda c: c.startswith("human:"))  # prefer agents
    assert allowed, who
    return allowed[0]


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
            platform.complete(run.id, step, evidence, actor=_actor_for(agent, step, roles))
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
    evidence = LiteralAgent(text.replace("## The step to do now: ", "### ")).evidence("reproduce")
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
