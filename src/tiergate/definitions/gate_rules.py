"""Gates that mean what they say: what ``tiergate check`` refuses in a gate beyond JSON Schema itself.

A JSON Schema validator ignores what it does not know, so a misspelt keyword (``minimun: 1``)
or a gate nobody can pass still "validates". For every gate (a checklist's ``inputs`` and
``done_when``, a BPMN task's ``gate`` and process ``inputs``, and every schema file they
reference) ``gate_problems`` reports:

* a keyword that draft 2020-12 does not define (annotations of your own go under ``x-``);
* ``$id``: it moves the base that references resolve against, so gates could not find their files;
* a property that ``required`` demands but ``additionalProperties: false`` forbids (no evidence
  could ever pass);
* a ``format`` no checker knows (a warning: it would be an annotation, checking nothing);

and ``unresolved_refs`` every ``$ref`` whose file or fragment does not resolve.
"""

from __future__ import annotations

from typing import Any, Iterator
from urllib.parse import urldefrag, urljoin

from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from tiergate.definitions.problems import ProblemList
from tiergate.gates import known_formats

#: Every keyword of JSON Schema draft 2020-12 (core, applicator, validation, format, content,
#: meta-data and unevaluated vocabularies), plus ``definitions``, which older files use for ``$defs``.
KEYWORDS = frozenset({
    "$schema", "$id", "$ref", "$anchor", "$dynamicRef", "$dynamicAnchor", "$vocabulary", "$comment", "$defs",
    "definitions", "allOf", "anyOf", "oneOf", "not", "if", "then", "else", "dependentSchemas", "prefixItems",
    "items", "contains", "properties", "patternProperties", "additionalProperties", "propertyNames",
    "unevaluatedItems", "unevaluatedProperties", "type", "enum", "const", "multipleOf", "maximum",
    "exclusiveMaximum", "minimum", "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems", "minItems",
    "uniqueItems", "maxContains", "minContains", "maxProperties", "minProperties", "required", "dependentRequired",
    "format", "contentEncoding", "contentMediaType", "contentSchema", "title", "description", "default",
    "deprecated", "readOnly", "writeOnly", "examples",
})
_ONE = ("additionalProperties", "items", "contains", "not", "if", "then", "else", "propertyNames",
        "unevaluatedItems", "unevaluatedProperties", "contentSchema")
_MAP = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_LIST = ("allOf", "anyOf", "oneOf", "prefixItems")
_HINTS = {"dependencies": "use dependentRequired or dependentSchemas (draft 2020-12)",
          "additionalItems": "use items with prefixItems (draft 2020-12)",
          "id": "write annotations under an x- key"}


def subschemas(schema: Any, ptr: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema object inside ``schema`` (itself first), with its JSON pointer."""
    if not isinstance(schema, dict):
        return
    yield ptr, schema
    for key in _ONE:
        if key in schema:
            yield from subschemas(schema[key], f"{ptr}/{key}")
    for key in _MAP:
        if isinstance(schema.get(key), dict):
            for name, sub in schema[key].items():
                yield from subschemas(sub, f"{ptr}/{key}/{_escape(name)}")
    for key in _LIST:
        if isinstance(schema.get(key), list):
            for index, sub in enumerate(schema[key]):
                yield from subschemas(sub, f"{ptr}/{key}/{index}")


def _escape(token: str) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def gate_problems(schema: Any, ptr: str, problems: ProblemList, what: str) -> None:
    """Report what a gate says but would not check (see the module docstring)."""
    formats = known_formats()
    for at, node in subschemas(schema, ptr):
        for key in node:
            if key in KEYWORDS or str(key).startswith("x-"):
                continue
            hint = _HINTS.get(key, "check its spelling, or put an annotation of your own under an x- key "
                                   f"(x-{key})")
            problems.add(f"{at}/{_escape(key)}", f"{what}: '{key}' at {at or '/'} is not a JSON Schema keyword, "
                         f"so it would check nothing: {hint}.")
        if "$id" in node:
            problems.add(f"{at}/$id", f"{what}: $id at {at or '/'} is not allowed in a gate: it changes where "
                         "references are looked up. Remove it; refer to shared files as schemas/NAME.json.")
        fmt = node.get("format")
        if isinstance(fmt, str) and fmt not in formats:
            problems.add(f"{at}/format", f"{what}: format '{fmt}' at {at or '/'} is not one tiergate can check, so "
                         f"any text passes. Use one of {', '.join(sorted(formats))}, or a pattern.",
                         severity="warning")
        _impossible_required(node, at, problems, what)


def _impossible_required(node: dict[str, Any], at: str, problems: ProblemList, what: str) -> None:
    if node.get("additionalProperties") is not False or not isinstance(node.get("required"), list):
        return
    named: dict[str, Any] = node["properties"] if isinstance(node.get("properties"), dict) else {}
    patterns: dict[str, Any] = node["patternProperties"] if isinstance(node.get("patternProperties"), dict) else {}
    for index, name in enumerate(node["required"]):
        if not isinstance(name, str) or name in named:
            continue
        if any(_matches(pattern, name) for pattern in patterns):
            continue
        problems.add(f"{at}/required/{index}", f"{what}: '{name}' is required at {at or '/'} but "
                     "additionalProperties: false forbids it (it is not under properties), so no evidence can "
                     f"ever pass. Add '{name}' to properties or take it out of required.")


def _matches(pattern: str, name: str) -> bool:
    """Whether ``pattern`` matches ``name``, in bounded time (``tiergate.patterns``): `check` never hangs."""
    from tiergate import patterns
    from tiergate.errors import TiergateError

    try:
        return patterns.search(pattern, name, where="gate patternProperties")
    except TiergateError:  # not a valid pattern (reported on its own), or over its time budget
        return False


def _refs(node: Any, ptr: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield f"{ptr}/$ref", value
            elif key not in ("enum", "const", "examples", "default"):
                yield from _refs(value, f"{ptr}/{_escape(key)}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _refs(value, f"{ptr}/{index}")


def unresolved_refs(schema: Any, ptr: str, resources: dict[str, Any], problems: ProblemList, what: str,
                    registry_resources: dict[str, Any] | None = None) -> None:
    """Every ``$ref`` in ``schema`` (a gate) or in the files ``resources`` that does not resolve
    (looked up among ``registry_resources``, by default ``resources``)."""
    known = registry_resources if registry_resources is not None else resources
    registry: Registry = Registry().with_resources(
        (uri, Resource.from_contents(contents, default_specification=DRAFT202012))
        for uri, contents in known.items() if isinstance(contents, (dict, bool)))
    documents = [("", schema, ptr)] + [(uri, contents, f"{uri}#") for uri, contents in resources.items()]
    for base, document, shown in documents:
        root = Resource.from_contents(document, default_specification=DRAFT202012) if isinstance(
            document, (dict, bool)) else None
        if root is None:
            continue
        resolver = registry.resolver_with_root(root) if not base else registry.resolver(base_uri=base)
        for at, ref in _refs(document, shown if base else ptr):
            target = urldefrag(urljoin(base, ref))[0]
            if target and target not in known:
                continue  # a file that is missing or not allowed: reported where the files are read
            try:
                resolver.lookup(ref)
            except (Unresolvable, LookupError, ValueError, TypeError) as exc:
                where = at if not base else f"{base}, at {at.split('#', 1)[1] or '/'}"
                problems.add(at if not base else ptr, f"{what}: $ref '{ref}' ({where}) does not resolve"
                             f"{_why(exc)}. Point it at an existing file under schemas/ and a fragment that "
                             "exists in it (e.g. schemas/common.json#/$defs/NAME).")


def _why(exc: Exception) -> str:
    text = str(exc).strip()
    return f": {text}" if text and len(text) < 200 else ""
