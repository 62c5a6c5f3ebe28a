"""Every budget tiergate gives an evaluation or an input, declared once: name, default, help.

    from tiergate.limits import limit
    if size > limit("evidence_bytes"): ...

An input (evidence, start data, a retry's data, a reason) is measured against the ``input``
limits before anything else is checked. Expressions, scripts, templates and regular
expressions run within theirs. Going over one is a ``LimitExceededError`` (code
``limit_exceeded``) that names the limit and the element or field; docs/operations.md lists
the table. Each limit can be changed for one process with the environment variable
``TIERGATE_LIMIT_<NAME>`` (upper case), read when the limit is first asked for: meant for
operators who measured a need, not for definitions (a definition can never raise its budget).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from tiergate.errors import LimitExceededError


@dataclass(frozen=True)
class Limit:
    name: str
    default: int | float
    unit: str
    area: str  # input | tier1 | template | regex | change | feel
    help: str


LIMITS: tuple[Limit, ...] = (
    # --- inputs: checked first, before the actor and the run's state ---
    Limit("evidence_bytes", 256 * 1024, "bytes", "input", "Size of evidence, start data, retry data or an outcome, "
          "as canonical JSON (UTF-8)."),
    Limit("input_depth", 32, "levels", "input", "Nesting depth of objects and arrays in an input."),
    Limit("input_values", 50_000, "values", "input", "Number of values (objects, arrays, strings, numbers, ...) "
          "in an input."),
    Limit("reason_chars", 4_000, "characters", "input", "Length of a skip or cancel reason."),
    Limit("logged_attempt_bytes", 2_048, "bytes", "input", "A refused attempt's evidence or data is logged in full "
          "up to this size; larger, only its sha256 and size are logged."),
    # --- messages at the doors (tiergate.wirejson): an MCP stdio line, an HTTP body, before parsing ---
    Limit("message_bytes", 278_528, "bytes", "input", "Size of one message at a door: a line of `tiergate mcp`, "
          "a body of the JSON API or of MCP over HTTP (the largest evidence and the request around it). Counted "
          "as it arrives; a longer one is refused without being read whole, and the door keeps serving."),
    Limit("message_depth", 40, "levels", "input", "Nesting depth of one message at a door (an input's "
          "input_depth and the request's own few levels around it)."),
    # --- Tier 1 expressions and scripts (tiergate.bpmn) ---
    Limit("tier1_steps", 200_000, "steps", "tier1", "Interpreter steps of one expression or script."),
    Limit("tier1_seconds", 2.0, "seconds", "tier1", "Wall-clock time of one expression or script."),
    Limit("tier1_length", 100_000, "items", "tier1", "Length of a string, list, dict, set or tuple it builds."),
    Limit("tier1_values", 250_000, "values", "tier1", "Values in one structure, counting nested ones (and shared "
          "ones each time they appear), for repetition, comparison, sorting, hashing and calls."),
    Limit("tier1_int_bits", 4096, "bits", "tier1", "Width of an integer it builds."),
    Limit("tier1_format_width", 1000, "characters", "tier1", "Width or precision in an f-string format spec."),
    Limit("tier1_source_chars", 20_000, "characters", "tier1", "Length of an expression's or script's text."),
    Limit("tier1_json_values", 200_000, "values", "tier1", "Values in the data a script leaves behind."),
    Limit("signal_depth", 5, "signals", "tier1", "Signals thrown in a row by runs a signal moved or started (a "
          "signal start process that throws its own signal): a throw deeper than this is not broadcast and is "
          "logged `refused` (signal_budget) on the throwing run."),
    Limit("signal_runs", 1_000, "runs", "tier1", "Runs one signal (with the signals thrown by the runs it moved "
          "or started) may move or start; the rest are not reached, and the answer says so."),
    # --- Jinja templates (tiergate.templating) ---
    Limit("template_seconds", 2.0, "seconds", "template", "Wall-clock time of one rendering."),
    Limit("template_output_chars", 1_000_000, "characters", "template", "Text one rendering produces."),
    Limit("template_length", 100_000, "items", "template", "Length of a string or list an operator or filter "
          "builds in a template."),
    Limit("template_int_bits", 4096, "bits", "template", "Width of an integer an operator builds in a template."),
    Limit("template_loop_items", 1_000_000, "items", "template", "Loop iterations of one rendering, all loops "
          "together."),
    # --- regular expressions (gate pattern, patternProperties) ---
    Limit("regex_seconds", 0.05, "seconds", "regex", "Wall-clock time of one match by the fallback engine, for "
          "the few patterns RE2 cannot run (back-references, look-around). RE2 matches in linear time."),
    Limit("regex_pattern_chars", 4_000, "characters", "regex", "Length of one pattern."),
    # --- a definition change's checks (tiergate.change_runs): `tiergate test` and `decisions impact`, each
    # in a child process ---
    Limit("change_check_seconds", 600, "seconds", "change", "Wall-clock time of the scenario tests, or of one "
          "table's impact replay, in a definition-change run."),
    Limit("change_check_megabytes", 2_048, "megabytes", "change", "Memory (address space) of the child process "
          "that runs them."),
    # --- FEEL (tiergate.dmn.feel): the table is ready for its limits ---
)

_BY_NAME = {item.name: item for item in LIMITS}


@lru_cache(maxsize=None)
def limit(name: str) -> Any:
    """The value of limit ``name``: its default, or ``TIERGATE_LIMIT_<NAME>`` if set to a number."""
    item = _BY_NAME[name]
    raw = os.environ.get(f"TIERGATE_LIMIT_{name.upper()}")
    if raw:
        try:
            value = type(item.default)(raw)
        except ValueError:
            return item.default
        if value > 0:
            return value
    return item.default


def exceeded(name: str, where: str, what: str, **details: Any) -> LimitExceededError:
    """The error for going over limit ``name`` at ``where`` (an element, a field, a template)."""
    item = _BY_NAME[name]
    return LimitExceededError(
        f"{where}: {what}; the limit {name} is {limit(name)} {item.unit} ({item.help[0].lower()}"
        f"{item.help[1:].rstrip('.')}). Make it smaller or simpler; docs/operations.md lists the limits.",
        details={"limit": name, "value": limit(name), "where": where, **details})
