"""``unevaluatedProperties`` for gates, with every ``patternProperties`` matched by ``tiergate.patterns``.

jsonschema works out which properties were evaluated with Python's backtracking ``re``: a gate
whose ``patternProperties`` sits under ``unevaluatedProperties`` (beside it, or in an ``allOf``,
``$ref``, ``if``/``then``/``else``, ...) could be made to run for hours by an actor's property
name. This keyword does the same bookkeeping on RE2, or on the fallback under ``regex_seconds``.

What counts as evaluated (JSON Schema 2020-12, "unevaluatedProperties"): the properties that
``properties``, ``patternProperties``, ``additionalProperties`` or a nested
``unevaluatedProperties`` of this schema looked at, and those of every in-place subschema that
applied: ``$ref``/``$dynamicRef``, ``allOf``, the branches of ``anyOf``/``oneOf`` that pass,
``if`` with ``then`` when it passes or ``else`` when it does not, ``dependentSchemas`` of
present properties.
"""

from __future__ import annotations

from typing import Any, Iterator

from jsonschema.exceptions import ValidationError

from tiergate import patterns


def _passes(validator: Any, instance: Any, schema: Any) -> bool:
    return next(iter(validator.descend(instance, schema)), None) is None


def _resolved(validator: Any, reference: str) -> tuple[Any, Any]:
    found = validator._resolver.lookup(reference)  # jsonschema's resolver of this validation
    return validator.evolve(schema=found.contents, _resolver=found.resolver), found.contents


def evaluated_keys(validator: Any, instance: dict[str, Any], schema: Any) -> set[str]:
    """The properties of ``instance`` that ``schema`` (and what applies in place of it) evaluated."""
    if not isinstance(schema, dict):
        return set(instance) if schema is True else set()
    seen: set[str] = set()
    for keyword in ("$ref", "$dynamicRef"):
        if isinstance(schema.get(keyword), str):
            inner, contents = _resolved(validator, schema[keyword])
            seen |= evaluated_keys(inner, instance, contents)
    named = schema.get("properties")
    if isinstance(named, dict):
        seen |= set(named) & set(instance)
    keyed = schema.get("patternProperties")
    if isinstance(keyed, dict):
        seen |= {key for key in instance if any(patterns.search(p, key, where="gate patternProperties")
                                                for p in keyed)}
    for keyword in ("additionalProperties", "unevaluatedProperties"):
        if keyword in schema:
            seen |= {key for key, value in instance.items() if _passes(validator, value, schema[keyword])}
    for sub in _applying(validator, instance, schema):
        seen |= evaluated_keys(validator, instance, sub)
    return seen


def _applying(validator: Any, instance: dict[str, Any], schema: dict[str, Any]) -> Iterator[Any]:
    """The in-place subschemas of ``schema`` that apply to ``instance``."""
    for keyword in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(keyword) or ():
            if _passes(validator, instance, sub):
                yield sub
    dependent = schema.get("dependentSchemas")
    if isinstance(dependent, dict):
        yield from (sub for name, sub in dependent.items() if name in instance)
    if "if" in schema:
        if _passes(validator, instance, schema["if"]):
            yield schema["if"]
            if "then" in schema:
                yield schema["then"]
        elif "else" in schema:
            yield schema["else"]


def unevaluated_properties(validator: Any, rule: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    """The ``unevaluatedProperties`` keyword, worded as jsonschema words it."""
    if not validator.is_type(instance, "object"):
        return
    seen = evaluated_keys(validator, instance, schema)
    failing = [key for key in instance if key not in seen
               and next(iter(validator.descend(instance[key], rule, path=key, schema_path=key)), None) is not None]
    if not failing:
        return
    listed = ", ".join(repr(key) for key in (sorted(failing) if rule is False else failing))
    verb = "was" if len(failing) == 1 else "were"
    if rule is False:
        yield ValidationError(f"Unevaluated properties are not allowed ({listed} {verb} unexpected)")
    else:
        yield ValidationError(f"Unevaluated properties are not valid under the given schema ({listed} {verb} "
                              "unevaluated and invalid)")
