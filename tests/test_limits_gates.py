"""Gate patterns run in bounded time (RE2, or the fallback under a hard limit), and the shipped
client_contact pattern no longer backtracks (issue 12)."""

from __future__ import annotations

import json
import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import pytest

from support import CLIResult, HomeBuilder
from tiergate import patterns
from tiergate.engine import Engine
from tiergate.errors import GateFailedError, LimitExceededError

Cli = Callable[..., CLIResult]

CATASTROPHIC = """\
id: hostile
title: Hostile patterns
owner: lead
expected_minutes: 10
steps:
  - id: nested
    title: Nested quantifier
    done_when:
      type: object
      properties:
        code: {type: string, pattern: "^(a+)+$"}
        tags: {type: object, patternProperties: {"^(x|x)*y$": {type: string}}, additionalProperties: false}
  - id: lookahead
    title: Needs the fallback engine
    after: [nested]
    done_when:
      type: object
      properties:
        word: {type: string, pattern: "^(\\\\w+\\\\s?)*(?<=z)$"}
"""


def _fallback_threads_free() -> None:
    """Wait until abandoned fallback matches have stopped (their own CPU timeout): every thread free."""
    meet = threading.Barrier(patterns.FALLBACK_THREADS)
    for done in [patterns._pool().submit(meet.wait, 60) for _ in range(patterns.FALLBACK_THREADS)]:
        done.result(timeout=120)


def test_a_catastrophic_pattern_on_100kb_answers_as_a_gate_failure(home: HomeBuilder, cli: Cli,
                                                                   make_engine: Callable[..., Engine]) -> None:
    home.checklist("hostile", CATASTROPHIC)
    engine = make_engine(home)
    run = engine.start("hostile", {}, actor="agent:bot").id
    result = cli("complete", run, "nested", "--evidence", json.dumps({"code": "a" * 100_000 + "!"}),
                 "--actor", "agent:bot", "--json", home=home)
    assert result.returncode == 1 and result.json["error"]["code"] == "gate_failed", result
    [failure] = result.json["error"]["details"]["errors"]
    assert failure["pointer"] == "/code" and len(failure["message"]) < 400
    key = {"tags": {"x" * 100_000 + "!": "v"}}
    result = cli("complete", run, "nested", "--evidence", json.dumps(key), "--actor", "agent:bot", "--json",
                 home=home)
    assert result.json["error"]["code"] == "gate_failed"
    assert result.json["error"]["details"]["errors"][0]["keyword"] == "additionalProperties"
    engine.complete(run, "nested", {"code": "aaa"}, actor="agent:bot")


def test_the_fallback_engine_stops_at_its_limit_and_the_attempt_is_logged(home: HomeBuilder,
                                                                          make_engine: Callable[..., Engine]) -> None:
    assert patterns.engine_for("^(\\w+\\s?)*(?<=z)$") == "regex"
    home.checklist("hostile", CATASTROPHIC)
    engine = make_engine(home)
    run = engine.start("hostile", {}, actor="agent:bot").id
    engine.complete(run, "nested", {"code": "a"}, actor="agent:bot")
    with pytest.raises(LimitExceededError) as over:
        engine.complete(run, "lookahead", {"word": "a" * 100_000 + "!"}, actor="agent:bot")
    assert over.value.details["limit"] == "regex_seconds" and over.value.details["step"] == "lookahead"
    assert engine.status(run).ready_steps[0].id == "lookahead"
    entry = engine.log(run)[-1]
    assert entry["event"] == "refused" and entry["detail"]["limit"] == "regex_seconds"
    assert entry["detail"]["evidence"]["omitted"] is True
    _fallback_threads_free()
    engine.complete(run, "lookahead", {"word": "z"}, actor="agent:bot")


def test_the_fallback_deadline_is_the_wall_clock_whatever_holds_its_threads() -> None:
    """The ``regex`` module's own timeout counts CPU time: a match that gets no CPU never times out.
    The fallback answers at its deadline even when every one of its threads is held (here by a
    wait that uses no CPU at all), and a match that could not start never runs."""
    held = threading.Event()
    holders = [patterns._pool().submit(held.wait) for _ in range(patterns.FALLBACK_THREADS)]
    ran: list[str] = []
    try:
        with pytest.raises(LimitExceededError) as over:
            patterns.search(r"(\w)\1", "abba", where="/word")
        assert over.value.details == {"limit": "regex_seconds", "value": 0.05, "where": "/word"}
        assert "/word" in over.value.message and "back-references" in over.value.message
    finally:
        held.set()
    assert all(holder.result(timeout=60) for holder in holders)
    patterns._pool().submit(ran.append, "after").result(timeout=60)
    assert ran == ["after"]  # the given-up match was cancelled, not run late
    assert patterns.search(r"(\w)\1", "abba", where="/word") is True
    assert patterns.search(r"(?<=b)c", "ac", where="/word") is False


def _match_in_child(answers: Any) -> None:
    answers.put(patterns.search(r"(\w)\1", "abba", where="/word"))


def test_a_forked_process_runs_fallback_matches_on_threads_of_its_own() -> None:
    assert patterns.search(r"(\w)\1", "abba", where="/word") is True  # the parent's threads exist now
    fork = multiprocessing.get_context("fork")
    answers = fork.Queue()
    child = fork.Process(target=_match_in_child, args=(answers,))
    child.start()
    try:
        assert answers.get(timeout=120) is True
    finally:
        child.join(timeout=60)


def test_hostile_fallback_matches_at_once_all_answer_and_cannot_pile_up_threads() -> None:
    hostile = "a" * 100_000 + "!"

    def attempt(_: int) -> str:
        try:
            return str(patterns.search(r"^(\w+\s?)*(?<=z)$", hostile, where="/word"))
        except LimitExceededError as err:
            return str(err.details["limit"])

    with ThreadPoolExecutor(max_workers=8) as callers:
        answers = list(callers.map(attempt, range(8)))
    assert answers == ["regex_seconds"] * 8
    regex_threads = [t for t in threading.enumerate() if t.name.startswith("tiergate-regex")]
    assert 1 <= len(regex_threads) <= patterns.FALLBACK_THREADS
    _fallback_threads_free()
    assert patterns.search(r"^(\w+\s?)*(?<=z)$", "abc z", where="/word") is True


UNEVALUATED = """\
id: unevaluated
title: Patterns under unevaluatedProperties
owner: lead
expected_minutes: 10
steps:
  - id: tags
    title: Tags by pattern, nothing else
    done_when:
      type: object
      allOf:
        - patternProperties: {"^(a+)+$": {type: integer}}
      unevaluatedProperties: false
  - id: words
    title: Needs the fallback engine
    after: [tags]
    done_when:
      type: object
      patternProperties: {"^(\\\\w+\\\\s?)*(?<=z)$": {type: integer}}
      unevaluatedProperties: false
"""


def test_unevaluated_properties_match_their_patterns_in_bounded_time(home: HomeBuilder,
                                                                     make_engine: Callable[..., Engine]) -> None:
    """jsonschema decides which properties ``unevaluatedProperties`` sees with Python's ``re``: an actor's
    key of 100 KB would backtrack for ever on ``^(a+)+$``. The gate's own keyword uses tiergate.patterns."""
    home.checklist("unevaluated", UNEVALUATED)
    engine = make_engine(home)
    assert engine.check() == []
    run = engine.start("unevaluated", {}, actor="agent:bot").id
    with pytest.raises(GateFailedError) as failed:
        engine.complete(run, "tags", {"a" * 100_000 + "!": 1}, actor="agent:bot")
    [error] = failed.value.details["errors"]
    assert error["keyword"] == "unevaluatedProperties" and "Unevaluated properties are not allowed" in error["message"]
    with pytest.raises(GateFailedError):
        engine.complete(run, "tags", {"aaa": "not an integer"}, actor="agent:bot")
    engine.complete(run, "tags", {"aaa": 1, "a": 2}, actor="agent:bot")
    with pytest.raises(LimitExceededError) as over:
        engine.complete(run, "words", {"a" * 100_000 + "!": 1}, actor="agent:bot")
    assert over.value.details["limit"] == "regex_seconds" and over.value.details["where"] == "gate patternProperties"
    assert engine.status(run).ready_steps[0].id == "words"
    entry = engine.log(run)[-1]
    assert entry["event"] == "refused" and entry["detail"]["limit"] == "regex_seconds"
    _fallback_threads_free()
    assert engine.complete(run, "words", {"ab z": 1}, actor="agent:bot").status == "completed"


def test_check_matches_required_names_against_patterns_in_bounded_time(home: HomeBuilder,
                                                                       make_engine: Callable[..., Engine]) -> None:
    """`check` asks whether a required name is allowed by ``patternProperties``: on RE2, so a hostile pair
    of a definition's own pattern and name cannot make it hang either."""
    home.checklist("impossible", f"""\
id: impossible
title: A required name no pattern allows
owner: lead
expected_minutes: 10
steps:
  - id: only
    title: Only
    done_when:
      type: object
      patternProperties: {{"^(a+)+$": {{}}}}
      additionalProperties: false
      required: [{"a" * 60}b]
""")
    found = [str(problem) for problem in make_engine(home).check()]
    assert any(f"'{'a' * 60}b' is required" in text and "additionalProperties: false forbids it" in text
               for text in found), found


def test_format_regex_is_checked_in_bounded_time(home: HomeBuilder, make_engine: Callable[..., Engine]) -> None:
    """jsonschema checks ``format: regex`` by compiling the evidence with Python's ``re``: the gate's own
    check compiles on RE2 (or the fallback) and refuses a text over ``regex_pattern_chars`` unread."""
    home.checklist("filters", """\
id: filters
title: A filter given as a regular expression
owner: lead
expected_minutes: 10
steps:
  - id: filter
    title: Filter
    done_when: {type: object, required: [rule], properties: {rule: {type: string, format: regex}}}
""")
    engine = make_engine(home)
    run = engine.start("filters", {}, actor="agent:bot").id
    with pytest.raises(LimitExceededError) as over:
        engine.complete(run, "filter", {"rule": "(a|b)" * 40_000}, actor="agent:bot")
    assert over.value.details["limit"] == "regex_pattern_chars" and over.value.details["step"] == "filter"
    with pytest.raises(GateFailedError) as failed:
        engine.complete(run, "filter", {"rule": "(unclosed"}, actor="agent:bot")
    assert failed.value.details["errors"][0]["keyword"] == "format"
    assert engine.status(run).ready_steps[0].id == "filter"
    assert engine.complete(run, "filter", {"rule": "^(?<=x)?[a-z]+$"}, actor="agent:bot").status == "completed"


def test_the_shipped_client_contact_pattern_is_linear_and_still_means_an_address() -> None:
    schema = json.loads((Path(__file__).resolve().parents[1] / "processes" / "schemas" /
                         "client-config-change.request.json").read_text())
    pattern = schema["properties"]["client_contact"]["pattern"]
    import re  # the pattern must not backtrack even on a backtracking engine
    for good in ("ops@client.example", "a.b@c.d.e"):
        assert re.search(pattern, good) and patterns.search(pattern, good, where="t")
    for bad in ("a@b", "a@.b", "a@b..c", "a b@c.d", "a@b@c.d"):
        assert not re.search(pattern, bad)
    hostile = "a@" + "b." * 70_000 + " "
    assert re.search(pattern, hostile) is None
    assert patterns.search(pattern, hostile, where="t") is False
