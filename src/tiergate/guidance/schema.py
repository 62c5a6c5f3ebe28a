"""Reading JSON Schema for the words: follow ``$ref`` and fold a schema's parts into one set of constraints.

    inline_refs(gate, resources)             # the gate without $ref: self-contained
    merged = Merger(resources).merge([(gate, Scope("", gate))])
    merged.required, merged.properties, merged.min_length, ...

``resources`` maps a schema file's URI (``schemas/common.json``) to its content, as a
checklist pins them with the run (``ChecklistDefinition.resources``). A ``$ref`` resolves
relative to the file it sits in, as in the gate's validator.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import unquote, urldefrag, urljoin

MAX_REF_DEPTH = 24

#: Keywords that carry no constraint (or that the words take from elsewhere).
SILENT = frozenset({"$schema", "$id", "$anchor", "$comment", "$defs", "definitions", "title", "description",
                     "default", "examples", "deprecated", "readOnly", "writeOnly", "contentMediaType",
                     "contentEncoding", "$vocabulary"})
#: Keywords the words describe.
KNOWN = frozenset({"$ref", "allOf", "anyOf", "oneOf", "type", "const", "enum", "minLength", "maxLength",
                    "pattern", "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                    "multipleOf", "items", "minItems", "maxItems", "uniqueItems", "properties", "required",
                    "additionalProperties", "if", "then", "else", "dependentRequired", "minProperties",
                    "maxProperties", "contains"})

@dataclass(frozen=True)
class Scope:
    """Where a schema node sits: the URI of its document and the document, for ``$ref``."""

    base: str
    root: Any


class Unresolvable(Exception):
    pass


def resolve(ref: str, scope: Scope, resources: Mapping[str, Any]) -> tuple[Any, Scope]:
    if ref.startswith("#"):
        document, base, fragment = scope.root, scope.base, ref[1:]
    else:
        target, fragment = urldefrag(urljoin(scope.base, ref))
        if target not in resources:
            raise Unresolvable(ref)
        document, base = resources[target], target
    node = document
    for token in [t for t in fragment.split("/") if t] if fragment else []:
        token = unquote(token).replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            raise Unresolvable(ref)
    return node, Scope(base, document)


def inline_refs(schema: Any, resources: Mapping[str, Any], *, _scope: Scope | None = None,
                _depth: int = 0) -> Any:
    """The schema with every ``$ref`` replaced by what it points to, so it needs no other file.

    Keywords next to a ``$ref`` are kept, with the target moved into an ``allOf``, so the result
    validates exactly as the original does with its registry. A reference that cannot be
    resolved (or that recurses too deep) is left as it is.
    """
    scope = _scope or Scope("", schema)
    if isinstance(schema, list):
        return [inline_refs(item, resources, _scope=scope, _depth=_depth) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    target: Any = None
    ref = schema.get("$ref")
    if isinstance(ref, str) and _depth < MAX_REF_DEPTH:
        try:
            node, node_scope = resolve(ref, scope, resources)
            target = inline_refs(node, resources, _scope=node_scope, _depth=_depth + 1)
            if isinstance(target, dict):
                target = {k: v for k, v in target.items() if k not in ("$schema", "$id", "$defs")}
        except Unresolvable:
            target = None
    for key, value in schema.items():
        if key == "$ref" and target is not None:
            continue
        if key in ("properties", "$defs", "definitions", "dependentSchemas", "patternProperties") \
                and isinstance(value, dict):
            out[key] = {name: inline_refs(sub, resources, _scope=scope, _depth=_depth) for name, sub in value.items()}
        else:
            out[key] = inline_refs(value, resources, _scope=scope, _depth=_depth)
    if target is None:
        return out
    if not out:
        return target
    out["allOf"] = [target, *out.get("allOf", [])]
    return out


Part = tuple[Any, Scope]


@dataclass
class Merged:
    """Everything a conjunction of schemas (a node, its ``$ref`` and its ``allOf``) requires."""

    types: set[str] | None = None
    consts: list[Any] = field(default_factory=list)
    enum: list[Any] | None = None
    min_length: int | None = None
    max_length: int | None = None
    patterns: list[str] = field(default_factory=list)
    formats: list[str] = field(default_factory=list)
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    exclusive_maximum: float | None = None
    multiple_of: list[float] = field(default_factory=list)
    min_items: int | None = None
    max_items: int | None = None
    unique_items: bool = False
    items: list[Part] = field(default_factory=list)
    contains: list[Part] = field(default_factory=list)
    properties: dict[str, list[Part]] = field(default_factory=dict)
    required: list[str] = field(default_factory=list)
    closed: list[set[str]] = field(default_factory=list)
    conditionals: list[tuple[Part, Part | None, Part | None]] = field(default_factory=list)
    dependent_required: dict[str, list[str]] = field(default_factory=dict)
    min_properties: int | None = None
    max_properties: int | None = None
    alternatives: list[list[Part]] = field(default_factory=list)
    descriptions: list[str] = field(default_factory=list)
    raw: list[dict[str, Any]] = field(default_factory=list)
    impossible: bool = False
    unresolved: list[str] = field(default_factory=list)
    sources: list[Part] = field(default_factory=list)
    """The schemas merged here, for when words fall back to JSON Schema."""


def bigger(a: float | None, b: Any) -> float | None:
    return b if a is None else max(a, b)


def smaller(a: float | None, b: Any) -> float | None:
    return b if a is None else min(a, b)


class Merger:
    """Folds a conjunction of schemas (a node, its ``$ref``, its ``allOf``) into one ``Merged``."""

    def __init__(self, resources: Mapping[str, Any]):
        self.resources = resources

    def merge(self, parts: list[Part], depth: int = 0) -> Merged:
        merged = Merged(sources=list(parts))
        for schema, scope in parts:
            self._fold(merged, schema, scope, depth)
        return merged

    def json(self, parts: list[Part]) -> str:
        """The schemas as one self-contained JSON Schema, on one line."""
        inlined = [inline_refs(schema, self.resources, _scope=scope) for schema, scope in parts]
        return compact(inlined[0] if len(inlined) == 1 else {"allOf": inlined})

    def _fold(self, m: Merged, schema: Any, scope: Scope, depth: int) -> None:
        if schema is True or schema == {}:
            return
        if schema is False:
            m.impossible = True
            return
        if not isinstance(schema, dict):
            m.raw.append({"schema": schema})
            return
        ref = schema.get("$ref")
        if isinstance(ref, str):
            if depth >= MAX_REF_DEPTH:
                m.unresolved.append(ref)
            else:
                try:
                    node, node_scope = resolve(ref, scope, self.resources)
                    self._fold(m, node, node_scope, depth + 1)
                except Unresolvable:
                    m.unresolved.append(ref)
        for sub in schema.get("allOf") or []:
            self._fold(m, sub, scope, depth + 1)
        if isinstance(schema.get("description"), str) and schema["description"].strip():
            m.descriptions.append(" ".join(schema["description"].split()))
        kind = schema.get("type")
        if kind is not None:
            kinds = set(kind) if isinstance(kind, list) else {kind}
            if m.types is None:
                m.types = kinds
            else:
                both = m.types & kinds
                if "integer" in m.types and "number" in kinds or "integer" in kinds and "number" in m.types:
                    both.add("integer")
                m.types = both
        if "const" in schema:
            m.consts.append(schema["const"])
        if isinstance(schema.get("enum"), list):
            values = schema["enum"]
            m.enum = list(values) if m.enum is None else [v for v in m.enum if v in values]
        for key, attr in (("minLength", "min_length"), ("minimum", "minimum"), ("exclusiveMinimum", "exclusive_minimum"),
                          ("minItems", "min_items"), ("minProperties", "min_properties")):
            if isinstance(schema.get(key), (int, float)) and not isinstance(schema.get(key), bool):
                setattr(m, attr, bigger(getattr(m, attr), schema[key]))
        for key, attr in (("maxLength", "max_length"), ("maximum", "maximum"), ("exclusiveMaximum", "exclusive_maximum"),
                          ("maxItems", "max_items"), ("maxProperties", "max_properties")):
            if isinstance(schema.get(key), (int, float)) and not isinstance(schema.get(key), bool):
                setattr(m, attr, smaller(getattr(m, attr), schema[key]))
        if isinstance(schema.get("pattern"), str) and schema["pattern"] not in m.patterns:
            m.patterns.append(schema["pattern"])
        if isinstance(schema.get("format"), str) and schema["format"] not in m.formats:
            m.formats.append(schema["format"])
        if isinstance(schema.get("multipleOf"), (int, float)):
            m.multiple_of.append(schema["multipleOf"])
        if schema.get("uniqueItems") is True:
            m.unique_items = True
        if "items" in schema:
            m.items.append((schema["items"], scope))
        if "contains" in schema:
            m.contains.append((schema["contains"], scope))
        properties: dict[str, Any] = schema["properties"] if isinstance(schema.get("properties"), dict) else {}
        for name, sub in properties.items():
            m.properties.setdefault(name, []).append((sub, scope))
        for name in schema.get("required") or []:
            if name not in m.required:
                m.required.append(name)
        additional = schema.get("additionalProperties")
        if additional is False:
            m.closed.append(set(properties))
        elif isinstance(additional, dict) and additional:
            m.raw.append({"additionalProperties": additional})
        if "if" in schema and ("then" in schema or "else" in schema):
            m.conditionals.append(((schema["if"], scope),
                                   (schema["then"], scope) if "then" in schema else None,
                                   (schema["else"], scope) if "else" in schema else None))
        if isinstance(schema.get("dependentRequired"), dict):
            for name, needs in schema["dependentRequired"].items():
                m.dependent_required.setdefault(name, []).extend(needs)
        for key in ("oneOf", "anyOf"):
            if isinstance(schema.get(key), list):
                m.alternatives.append([(option, scope) for option in schema[key]])
        unknown = {k: v for k, v in schema.items() if k not in KNOWN and k not in SILENT}
        if "if" in schema and "then" not in schema and "else" not in schema:
            unknown.pop("if", None)  # an `if` alone constrains nothing
        if unknown:
            m.raw.append(unknown)


TYPE_ORDER = ["object", "array", "string", "integer", "number", "boolean", "null"]


def copy_merged(m: Merged) -> Merged:
    """A copy whose lists, dicts and sets can change without changing ``m``."""
    values: dict[str, Any] = {k: (v.copy() if isinstance(v, (list, dict, set)) else v) for k, v in m.__dict__.items()}
    return Merged(**values)


def conjoin(a: Merged, b: Merged) -> Merged:
    """Both sets of constraints at once (used for alternatives: common part + one option)."""
    out = copy_merged(a)
    if b.types is not None:
        out.types = b.types if out.types is None else (out.types & b.types) or (
            {"integer"} if {"integer", "number"} <= (out.types | b.types) else set())
    out.consts += b.consts
    if b.enum is not None:
        out.enum = list(b.enum) if out.enum is None else [v for v in out.enum if v in b.enum]
    for attr in ("min_length", "minimum", "exclusive_minimum", "min_items", "min_properties"):
        if getattr(b, attr) is not None:
            setattr(out, attr, bigger(getattr(out, attr), getattr(b, attr)))
    for attr in ("max_length", "maximum", "exclusive_maximum", "max_items", "max_properties"):
        if getattr(b, attr) is not None:
            setattr(out, attr, smaller(getattr(out, attr), getattr(b, attr)))
    for attr in ("patterns", "formats", "multiple_of", "items", "contains", "closed", "conditionals",
                 "alternatives", "descriptions", "raw", "unresolved"):
        getattr(out, attr).extend(x for x in getattr(b, attr) if x not in getattr(out, attr))
    for name, parts in b.properties.items():
        out.properties.setdefault(name, []).extend(parts)
    out.required += [n for n in b.required if n not in out.required]
    for name, needs in b.dependent_required.items():
        out.dependent_required.setdefault(name, []).extend(needs)
    out.unique_items = out.unique_items or b.unique_items
    out.impossible = out.impossible or b.impossible
    return out


def has_constraints(m: Merged) -> bool:
    empty = Merged()
    return any(getattr(m, k) != getattr(empty, k) for k in m.__dict__ if k != "sources")


def without_alternative(sources: list[Part], group: list[Part]) -> list[Part]:
    """The merged schemas with the alternative group itself taken out (it is replaced by one option)."""
    keys = ("oneOf", "anyOf")
    out = []
    for schema, scope in sources:
        if isinstance(schema, dict) and any(isinstance(schema.get(k), list) and
                                            [(o, scope) for o in schema[k]] == group for k in keys):
            schema = {k: v for k, v in schema.items() if k not in keys}
        out.append((schema, scope))
    return out


def compact(schema: Any) -> str:
    """A schema as JSON on one line."""
    return json.dumps(schema, ensure_ascii=False, separators=(", ", ": "))
