"""A Tier 1 step's instructions as SpiffWorkflow writes them: the task's data by name (``{{ investigator }}``),
``spiffworkflow:instructionsForEndUser``, and what `tiergate check` says of a name nothing sets
(docs/tier1.md, *Steps*). Real runs on SQLite and PostgreSQL, and the CLI in a subprocess."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from support import CLIResult
from tier1_helpers import bpmn, chain, props, tier1_home, user

from tiergate.engine import Engine

WHO = {"type": "object", "required": ["investigator"], "properties": {"investigator": {"type": "object"}}}


def one_after_another(*steps: str) -> str:
    ids = [s.split('id="', 1)[1].split('"', 1)[0] for s in steps]
    return '<bpmn:startEvent id="start"/>' + "".join(steps) + '<bpmn:endEvent id="end"/>' + chain("start", *ids, "end")


def warnings_of(engine: Engine, process_id: str) -> list[str]:
    return [p.message for p in engine.check() if p.path.endswith(f"{process_id}.bpmn") and p.severity == "warning"
            and "instructions" in p.message]


def test_bare_names_render_the_runs_fields_and_an_unset_one_is_empty_with_a_note(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    body = one_after_another(
        user("name_them", gate=WHO),
        user("interview", docs="Interview {{ investigator.name }} ({{ investigator.role | upper }}) about "
                               "{{ study }}.{% if notes %} Notes: {{ notes }}{% endif %}"))
    engine = make_engine(tier1_home(tmp_path / "home", {"study": bpmn("study", body)}))
    problems = [p for p in engine.check() if p.path.endswith("study.bpmn")]
    assert [p.message for p in problems if p.severity == "error"] == []
    # `investigator` is a field of a gate, the others nothing in the file sets: a warning each, not a refusal.
    assert warnings_of(engine, "study") == [
        f"interview: instructions use `{name}`, which nothing in this process sets (no step's gate, script, data "
        "input or output, data object, multi-instance item, message variable, decision or start `inputs` names "
        f"it): a run shows it as empty until its data has it. Name `{name}` in the gate of the step that gives it "
        "(or in `inputs`), or fix the name." for name in ("notes", "study")]

    run = engine.start("study", {"study": "sleep"}, actor="human:alice")
    run = engine.complete(run.id, "name_them", {"investigator": {"name": "Ada", "role": "lead"}}, actor="human:alice")
    assert run.ready_steps[0].instructions == (
        "Interview Ada (LEAD) about sleep.\n\n(Not set in this run yet, so shown empty: `notes`.)")
    # The guidance serves the same text, with the step still to do.
    guide = engine.guide(run.id, actor="human:alice")
    assert guide["ready"][0]["instructions"].startswith("Interview Ada (LEAD) about sleep.")
    assert "`notes`" in guide["text"]
    done = engine.complete(run.id, "interview", {}, actor="human:bob")
    assert done.status == "completed"

    # Nothing set at all: the run starts, the step is ready, and its instructions say what is missing.
    bare = engine.start("study", {}, actor="human:alice")
    bare = engine.complete(bare.id, "name_them", {"investigator": {"name": "Bo", "role": "x"}}, actor="human:alice")
    assert bare.ready_steps[0].instructions == (
        "Interview Bo (X) about .\n\n(Not set in this run yet, so shown empty: `notes`, `study`.)")


def test_data_run_and_steps_keep_their_meaning_over_fields_of_those_names(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    body = one_after_another(user(
        "show", docs="{{ run.process }}/{{ data.run }}/{{ steps.show.state }}/{{ data.data }}/{{ range(2) | list }}"))
    engine = make_engine(tier1_home(tmp_path / "home", {"names": bpmn("names", body)}))
    assert warnings_of(engine, "names") == []
    run = engine.start("names", {"run": "field", "data": "inner", "steps": "s", "range": "r"}, actor="human:alice")
    assert run.ready_steps[0].instructions == "names/field/ready/inner/[0, 1]"


def test_bare_names_stay_in_the_sandbox_and_its_budgets(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    body = one_after_another(
        user("a", docs="{{ who.__class__ }}"),
        user("b", docs="{{ word * 100000000 }}"),
        user("c", docs="{{ missing + 1 }} never shown"),
        user("d", docs="{% for x in items %}{% for y in items %}{% for z in items %}.{% endfor %}{% endfor %}"
                       "{% endfor %}"),
        user("e", docs="{{ word + 1 }} {{ 1 / zero }}"))
    engine = make_engine(tier1_home(tmp_path / "home", {"box": bpmn("box", body)}))
    assert [p.message for p in engine.check() if p.severity == "error" and p.path.endswith("box.bpmn")] == []
    start = {"who": {"name": "x"}, "word": "ab", "items": list(range(1000)), "zero": 0}
    shown = {}
    run = engine.start("box", start, actor="human:alice")
    for step in ("a", "b", "c", "d", "e"):
        shown[step] = run.ready_steps[0].instructions
        run = engine.complete(run.id, step, {}, actor="human:alice")
    assert run.status == "completed"   # no rendering ever failed a move
    assert shown["a"].startswith("(The instructions cannot be shown: instructions of step 'a': refused by the "
                                 "template sandbox: access to attribute '__class__'")
    assert shown["b"].startswith("(The instructions cannot be shown:") and "template_length" in shown["b"]
    assert shown["c"].startswith("(The instructions cannot be shown: instructions of step 'c': 'missing' is "
                                 "undefined")
    assert shown["d"].startswith("(The instructions cannot be shown:") and "template_loop_items" in shown["d"]
    # The data's own values can make a template fail (text plus a number): shown, never a traceback.
    assert shown["e"] == ("(The instructions cannot be shown: instructions of step 'e': can only concatenate str (not "
                          "\"int\") to str (TypeError). Fix the template, or guard what it does with the data it reads.)")


def test_spiff_instructions_for_end_user_are_the_instructions_and_scripts_and_items_count_as_set(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    spiff = (
        '<bpmn:userTask id="review" name="Review">'
        '<bpmn:documentation>For modelers: not shown.</bpmn:documentation>'
        '<bpmn:extensionElements><spiffworkflow:instructionsForEndUser>Review {{ doc.title }} for {{ client }} '
        '(score {{ score }}, {{ reply.text }})</spiffworkflow:instructionsForEndUser>'
        '<spiffworkflow:properties><spiffworkflow:property name="gate" value="{&quot;type&quot;: &quot;object&quot;}"/>'
        '</spiffworkflow:properties></bpmn:extensionElements>'
        '<bpmn:multiInstanceLoopCharacteristics><bpmn:loopDataInputRef>docs</bpmn:loopDataInputRef>'
        '<bpmn:inputDataItem id="doc"/></bpmn:multiInstanceLoopCharacteristics></bpmn:userTask>')
    catch = ('<bpmn:intermediateCatchEvent id="wait"><bpmn:messageEventDefinition messageRef="m_reply">'
             '<bpmn:extensionElements><spiffworkflow:messageVariable>reply</spiffworkflow:messageVariable>'
             '</bpmn:extensionElements></bpmn:messageEventDefinition></bpmn:intermediateCatchEvent>')
    score = '<bpmn:scriptTask id="score_it"><bpmn:script>score = 2 * 21</bpmn:script></bpmn:scriptTask>'
    body = one_after_another(catch, score, spiff) + '<bpmn:message id="m_reply" name="reply"/>'
    inputs = props(inputs={"type": "object", "properties": {"client": {"type": "string"}, "docs": {"type": "array"}}})
    engine = make_engine(tier1_home(tmp_path / "home", {"spiff": bpmn("spiff", body, process_props=inputs)}))
    assert [p.message for p in engine.check() if p.severity == "error" and p.path.endswith("spiff.bpmn")] == []
    assert warnings_of(engine, "spiff") == []   # doc: the item; score: a script; reply: a message; client: inputs
    docs = [{"title": "Plan"}, {"title": "Budget"}, {"title": "Risks"}]
    run = engine.start("spiff", {"client": "ACME", "docs": docs}, actor="human:alice")
    run = engine.message("reply", {}, {"text": "ok"}, actor="agent:bot")
    # Each instance shows its own item, as its task's data has it in SpiffWorkflow.
    assert [(s.id, s.instructions) for s in run.ready_steps] == [
        (f"review[{i}]", f"Review {d['title']} for ACME (score 42, ok)") for i, d in enumerate(docs)]
    run = engine.complete(run.id, "review[1]", {}, actor="human:alice")
    assert [s.instructions for s in run.ready_steps] == ["Review Plan for ACME (score 42, ok)",
                                                         "Review Risks for ACME (score 42, ok)"]
    again = engine.status(run.id)   # read back from the database: the same
    assert [s.instructions for s in again.ready_steps] == [s.instructions for s in run.ready_steps]


def test_names_a_calling_process_sets_count_as_set_for_the_process_it_calls(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    # `intake` sets `client` in a gate and calls `review`, whose instructions read `client` (the called
    # process gets a copy of its caller's data) and `verdict`, which its own gate sets, and `mood`, which
    # nobody sets: only `mood` is warned of, in both files, and the called file's warning names its caller.
    review = bpmn("review", one_after_another(
        user("assess", gate={"type": "object", "properties": {"verdict": {"type": "string"}}}),
        user("report", docs="Report on {{ client }}: {{ verdict }} ({{ mood }})")))
    intake = bpmn("intake", '<bpmn:startEvent id="start"/>'
                  + user("ask", gate={"type": "object", "required": ["client"],
                                      "properties": {"client": {"type": "string"}}})
                  + '<bpmn:callActivity id="call_review" calledElement="review"/><bpmn:endEvent id="end"/>'
                  + chain("start", "ask", "call_review", "end"))
    engine = make_engine(tier1_home(tmp_path / "home", {"intake": intake, "review": review}))
    assert [p.message for p in engine.check() if p.severity == "error"] == []
    tail = ("sets (no step's gate, script, data input or output, data object, multi-instance item, message "
            "variable, decision or start `inputs` names it): a run shows it as empty until its data has it. Name "
            "`mood` in the gate of the step that gives it (or in `inputs`), or fix the name.")
    assert warnings_of(engine, "review") == [
        f"report: instructions use `mood`, which nothing in this process or the processes that call it (intake) "
        f"{tail}"]
    assert warnings_of(engine, "intake") == [f"report: instructions use `mood`, which nothing in this process {tail}"]

    run = engine.start("intake", {}, actor="human:alice")
    run = engine.complete(run.id, "ask", {"client": "ACME"}, actor="human:alice")
    run = engine.complete(run.id, "assess", {"verdict": "fine"}, actor="human:alice")
    assert run.ready_steps[0].instructions == (
        "Report on ACME: fine ()\n\n(Not set in this run yet, so shown empty: `mood`.)")


def test_check_refuses_a_syntax_error_and_the_cli_shows_a_bare_name_as_a_warning(
        tmp_path: Path, cli: Callable[..., CLIResult]) -> None:
    bad = bpmn("bad", one_after_another(user("s", docs="Hello {{ name")))
    loose = bpmn("loose", one_after_another(user("s", docs="Hello {{ name }}")))
    home = tier1_home(tmp_path / "home", {"bad": bad, "loose": loose})
    result = cli("check", home=home)
    assert result.returncode == 1, result.stdout
    assert "processes/bad.bpmn:" in result.stdout and "s: instructions (documentation) template syntax error" in (
        result.stdout)
    assert "loose.bpmn" in result.stdout and "instructions use `name`, which nothing in this process sets" in (
        result.stdout)
    only_warning = cli("check", home=tier1_home(tmp_path / "home2", {"loose": loose}))
    assert only_warning.returncode == 0, only_warning.stdout + only_warning.stderr
    assert "instructions use `name`" in only_warning.stdout
