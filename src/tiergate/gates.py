"""Evidence gates: a step's ``done_when`` JSON Schema, checked the same way in every tier.

Evidence is data. It is validated, stored and logged, never rendered or evaluated.
"""

from __future__ import annotations

import re
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator
from jsonschema.validators import extend
from referencing import Registry

from tiergate import patterns
from tiergate.definitions.yamlfile import escape_pointer_token, pointer
from tiergate.errors import GateFailedError, LimitExceededError, RefusedError, TiergateError, UsageError
from tiergate.gate_unevaluated import unevaluated_properties
from tiergate.jsonutil import canonical_json
from tiergate.limits import exceeded, limit

MAX_EVIDENCE_BYTES = limit("evidence_bytes")
#: A failing field's message is cut to this many characters: it may quote the evidence.
MAX_MESSAGE_CHARS = 300

#: Keywords whose check looks at the value alone: no subschema, no reference, no other keyword.
_FLAT_KEYWORDS = frozenset({"type", "enum", "const", "minLength", "maxLength", "pattern", "format", "minimum",
                            "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"})
_properties = Draft202012Validator.VALIDATORS["properties"]


def _flat_fields_pass(validator: Any, properties: dict[str, Any], instance: dict[str, Any]) -> bool:
    """Whether every present field has a flat schema (``_FLAT_KEYWORDS`` only) that its value passes."""
    checks = validator.VALIDATORS
    for name, subschema in properties.items():
        if name not in instance:
            continue
        if not isinstance(subschema, dict):
            return False
        value = instance[name]
        for keyword, expected in subschema.items():
            check = checks.get(keyword)
            if check is None:  # an annotation (title, description, ...): jsonschema skips it too
                continue
            if keyword not in _FLAT_KEYWORDS or next(iter(check(validator, expected, value, subschema) or ()),
                                                      None) is not None:
                return False
    return True


def _gate_properties(validator: Any, properties: Any, instance: Any, schema: Any) -> Any:
    """jsonschema's ``properties``, with a short way to the answer most evidence gets: valid.

    Gates mostly describe each field with keywords that look at its value alone (a type, an
    enum, a pattern, a length). jsonschema checks each field through a validator it makes for
    the field's subschema, which costs most of a gate check; calling those keywords' own checks
    on the value gives the same verdict. Any other keyword, and any field that fails, goes the
    full way through jsonschema's ``properties``: what fails is reported exactly as jsonschema
    reports it.
    """
    if isinstance(properties, dict) and validator.is_type(instance, "object") \
            and _flat_fields_pass(validator, properties, instance):
        return
    yield from _properties(validator, properties, instance, schema)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "...'"


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Any:
    """``pattern`` on RE2 (``tiergate.patterns``): linear time, whatever the pattern and the text."""
    if validator.is_type(instance, "string") and not patterns.search(pattern, instance, where="gate pattern"):
        yield ValidationError(f"{_short(instance)} does not match {pattern!r}")


def _pattern_properties(validator: Any, pattern_properties: Any, instance: Any, schema: Any) -> Any:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in pattern_properties.items():
        for key, value in instance.items():
            if patterns.search(pattern, key, where="gate patternProperties"):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(validator: Any, additional: Any, instance: Any, schema: Any) -> Any:
    """jsonschema's ``additionalProperties``, with ``patternProperties`` matched by ``tiergate.patterns``."""
    if not validator.is_type(instance, "object"):
        return
    known, keyed = schema.get("properties", {}), list(schema.get("patternProperties", {}))
    extras = [key for key in instance if key not in known
              and not any(patterns.search(p, key, where="gate patternProperties") for p in keyed)]
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        listed = ", ".join(repr(each) for each in sorted(extras))
        if keyed:
            yield ValidationError(f"{listed} do{'es' if len(extras) == 1 else ''} not match any of the regexes: "
                                  f"{', '.join(repr(p) for p in sorted(keyed))}")
        else:
            yield ValidationError(f"Additional properties are not allowed ({listed} "
                                  f"{'was' if len(extras) == 1 else 'were'} unexpected)")


#: Draft 2020-12 with the keywords above (jsonschema's documented way to extend a keyword), and
#: ``unevaluatedProperties`` whose bookkeeping matches ``patternProperties`` the same bounded way.
GateValidator = extend(Draft202012Validator, validators={
    "properties": _gate_properties, "pattern": _pattern, "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties, "unevaluatedProperties": unevaluated_properties})


_EMAIL = re.compile(r"^[^\s@\"(),:;<>\[\\\]]{1,64}@(?=.{3,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
                    r"[A-Za-z]{1,63}$")


def _is_email(instance: object) -> bool:
    """An address someone could write to: one @, a local part without spaces or dots at its ends or in a row,
    and a domain of hostname labels with a top-level domain (jsonschema's own check only looks for an @)."""
    if not isinstance(instance, str):
        return True
    local = instance.rsplit("@", 1)[0]
    return bool(_EMAIL.match(instance)) and not (local.startswith(".") or local.endswith(".") or ".." in local)


def _is_regex(instance: object) -> bool:
    """A regular expression tiergate can run (RE2, or the fallback), of at most ``regex_pattern_chars``:
    jsonschema's own check compiles the evidence with Python's ``re``, in time that grows with its size."""
    if not isinstance(instance, str):
        return True
    if len(instance) > limit("regex_pattern_chars"):
        raise exceeded("regex_pattern_chars", "gate format regex", f"the text is {len(instance)} characters long")
    try:
        patterns.engine_for(instance)
    except TiergateError:
        return False
    return True


def gate_format_checker() -> FormatChecker:
    """jsonschema's format checkers (with the format-nongpl extras installed: uri, hostname,
    duration, date-time, ...), a real check of ``email``, and ``regex`` checked in bounded time."""
    checker = FormatChecker()
    checker.checks("email")(_is_email)
    checker.checks("regex")(_is_regex)
    return checker


_FORMATS = gate_format_checker()


def known_formats() -> frozenset[str]:
    """The formats a gate's ``format`` really checks; any other would pass everything."""
    return frozenset(_FORMATS.checkers)


def gate_validator(schema: Any, registry: Registry) -> Validator:
    """The validator of a gate (``done_when``, a BPMN task's gate, start data): draft 2020-12,
    formats asserted, references resolved in ``registry``."""
    return GateValidator(schema, registry=registry, format_checker=_FORMATS)


def _describe(error: ValidationError) -> list[dict[str, Any]]:
    at = pointer(list(error.absolute_path))
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [name for name in error.validator_value if name not in error.instance]
        return [{"pointer": f"{at}/{escape_pointer_token(name)}", "keyword": "required",
                 "message": f"required field '{name}' is missing", "expected": "present"} for name in missing]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set((error.schema.get("properties") or {}).keys())
        return [{"pointer": f"{at}/{escape_pointer_token(name)}", "keyword": "additionalProperties",
                 "message": f"field '{name}' is not allowed here; allowed fields: {', '.join(sorted(allowed)) or 'none'}",
                 "expected": sorted(allowed)} for name in sorted(error.instance) if name not in allowed]
    expected: Any = error.validator_value
    message = error.message if len(error.message) <= MAX_MESSAGE_CHARS else error.message[:MAX_MESSAGE_CHARS] + "..."
    return [{"pointer": at or "/", "keyword": error.validator, "message": message,
             "expected": expected if isinstance(expected, (str, int, float, bool, list, type(None))) else None}]


def gate_errors(validator: Validator, evidence: Any) -> list[dict[str, Any]]:
    """Every way ``evidence`` fails the gate, one entry per failing field, ordered by pointer."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for error in _iter_errors(validator, evidence):
        for item in _describe(error):
            found.setdefault((item["pointer"], item["keyword"]), item)
    return [found[key] for key in sorted(found)]


def _iter_errors(validator: Validator, evidence: Any) -> list[ValidationError]:
    """The gate's errors; a gate that cannot be evaluated (a ``$ref`` that does not resolve, an ``$id``
    that moved its base, ...) is refused as ``gate_broken`` instead of crashing the command."""
    try:
        return list(validator.iter_errors(evidence))
    except TiergateError:
        raise
    except RecursionError:
        raise UsageError("the evidence is nested too deeply to check against the gate.",
                         code="invalid_evidence") from None
    except Exception as exc:  # noqa: BLE001 - whatever a broken schema raises, the door answers
        raise RefusedError(f"the gate cannot be evaluated: {type(exc).__name__}: {str(exc)[:300]}. The definition "
                           "is broken (`tiergate check` names the problem); nothing was changed. Fix the definition; "
                           "runs already pinned to it cannot pass this gate and must be cancelled.",
                           reason="gate_broken", details={"error": type(exc).__name__}) from None


def check_evidence_size(evidence: Any) -> str:
    """Refuse evidence over the size limit; returns its canonical JSON (what the log will store)."""
    text = canonical_json(evidence)
    size = len(text.encode("utf-8"))
    if size > MAX_EVIDENCE_BYTES:  # the engine measured it first (tiergate.inputs): a program calling a runner
        raise exceeded("evidence_bytes", "evidence", f"it is {size} bytes as JSON", field="evidence")
    return text


def enforce(validator: Validator, evidence: Any, *, run_id: str, step_id: str) -> None:
    """Raise GateFailedError listing each failing field by JSON pointer (LimitExceededError: a pattern
    went over its budget)."""
    try:
        errors = gate_errors(validator, evidence)
    except LimitExceededError as err:
        err.message = f"the gate of step '{step_id}': {err.message}"
        err.args = (err.message,)
        err.details.update(run=run_id, step=step_id)
        raise
    if not errors:
        return
    lines = "\n".join(f"  {e['pointer']}: {e['message']}" for e in errors)
    raise GateFailedError(
        f"evidence for step '{step_id}' does not pass its gate ({len(errors)} problem"
        f"{'s' if len(errors) > 1 else ''}):\n{lines}\nFix the evidence and submit it again.",
        details={"run": run_id, "step": step_id, "errors": errors, "see": "guide"},
    )
