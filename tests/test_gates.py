"""The gate validator: jsonschema's draft 2020-12, with a shorter way for flat field schemas.

``tiergate.gates.GateValidator`` replaces jsonschema's ``properties`` keyword with one that first
checks flat field schemas by their keywords' own checks. These tests hold it to jsonschema's
verdict and errors, field for field, on schemas that take the short way and ones that do not.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from support import REPO
from tiergate.gates import gate_validator

REGISTRY = Registry().with_resource("schemas/ticket.json", Resource.from_contents(
    {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "string", "pattern": "^T-[0-9]+$"},
    default_specification=DRAFT202012))

SCHEMAS: list[dict[str, Any]] = [
    {"type": "object", "required": ["summary", "severity"],
     "properties": {"summary": {"type": "string", "minLength": 10, "title": "What happened"},
                    "severity": {"enum": ["S1", "S2", "S3"]}}},
    {"type": "object", "properties": {"n": {"type": ["integer", "null"], "minimum": 1, "maximum": 5,
                                            "multipleOf": 1}, "ratio": {"type": "number", "exclusiveMaximum": 1}}},
    {"type": "object", "properties": {"ok": {"const": True}, "mail": {"type": "string", "format": "email"},
                                      "when": {"type": "string", "format": "date"}}},
    {"type": "object", "properties": {"ticket": {"$ref": "schemas/ticket.json"}, "note": {"type": "string"}}},
    {"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                                      "meta": {"type": "object", "properties": {"id": {"type": "string"}},
                                               "required": ["id"]}}},
    {"type": "object", "properties": {"a": True, "b": False, "c": {"type": "string"}}},
    {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False},
    {"type": "object", "properties": {"a": {"type": "string"}}, "unevaluatedProperties": {"type": "integer"}},
    {"type": "object", "properties": {"a": {"type": "string", "maxLength": 3}},
     "patternProperties": {"^x-": {"type": "integer"}}, "dependentRequired": {"a": ["b"]}},
    {"type": "object", "properties": {"a": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                                      "b": {"not": {"const": 0}}}},
    {"type": "object", "properties": {"deep": {"properties": {"x": {"type": "integer", "minimum": 0}}}}},
    {"properties": {"a": {"type": "string", "pattern": "^[a-z]+$"}}},  # no type: an array or a string passes
]

INSTANCES: list[Any] = [
    {}, {"summary": "Printer on floor 3 is down", "severity": "S2"}, {"summary": "short", "severity": "S9"},
    {"summary": 12, "severity": None}, {"n": 3, "ratio": 0.5}, {"n": 0, "ratio": 1}, {"n": 2.5}, {"n": None},
    {"n": True}, {"ok": True, "mail": "a@example.com", "when": "2026-12-03"}, {"ok": 1, "mail": "nope", "when": "x"},
    {"ticket": "T-42", "note": "ok"}, {"ticket": "X-42"}, {"tags": ["a"], "meta": {"id": "m"}},
    {"tags": [], "meta": {}}, {"tags": [1], "meta": {"id": 2}}, {"a": "x"}, {"a": "x", "b": 1}, {"c": 5},
    {"a": "abcd", "x-1": "no", "z": 1}, {"a": "ab", "b": 1, "x-2": 3}, {"a": 1.5, "b": 0}, {"a": [], "b": 1},
    {"deep": {"x": -1}}, {"deep": {"x": 1}}, {"deep": "flat"}, ["not", "an", "object"], "text", None, 3,
    {"summary": "Printer on floor 3 is down é 日本", "severity": "S1", "extra": {"nested": [1, 2]}},
]


def _errors(validator: Any, instance: Any) -> list[tuple[Any, ...]]:
    return sorted((list(e.absolute_path), list(e.absolute_schema_path), e.validator, e.message)
                  for e in validator.iter_errors(instance))


@pytest.mark.parametrize("schema", SCHEMAS, ids=[f"schema{i}" for i in range(len(SCHEMAS))])
def test_the_gate_validator_agrees_with_jsonschema(schema: dict[str, Any]) -> None:
    ours = gate_validator(schema, REGISTRY)
    theirs = Draft202012Validator(schema, registry=REGISTRY, format_checker=FormatChecker())
    for instance in INSTANCES:
        assert _errors(ours, instance) == _errors(theirs, instance), instance
        assert ours.is_valid(instance) == theirs.is_valid(instance), instance


def test_the_platform_gates_agree_with_jsonschema_on_their_own_examples() -> None:
    """Every gate of every platform checklist, on values drawn from its own enums, consts and examples."""
    import yaml

    from tiergate.engine import Engine

    engine = Engine(home=REPO, database_url="sqlite:///:memory:")
    checked = 0
    for path in sorted((REPO / "checklists").glob("*.yaml")):
        definition = engine.definitions.checklist(yaml.safe_load(path.read_text())["id"])
        for step in definition.checklist.steps:
            if step.done_when is None:
                continue
            ours = definition.validator(step.done_when)
            theirs = Draft202012Validator(step.done_when, registry=definition.registry,
                                          format_checker=FormatChecker())
            fields = (ours.schema.get("properties") or {})
            samples = {name: [*(spec.get("enum") or []), spec.get("const"), *(spec.get("examples") or []), "", 0]
                       for name, spec in fields.items() if isinstance(spec, dict)}
            for values in itertools.islice(itertools.product(*samples.values()), 200):
                instance = dict(zip(samples, values))
                assert _errors(ours, instance) == _errors(theirs, instance), (path.name, step.id, instance)
                checked += 1
    assert checked > 50
