"""A step's evidence gate (JSON Schema) in plain words, precise enough to pass on the first try.

    words = evidence_words(step.done_when, definition.resources)
    words.text       # "a JSON object with only these fields:\\n- `severity` (required): one of ..."
    words.required   # ["severity", ...]
    inline_refs(step.done_when, definition.resources)   # the same gate, self-contained

The wording is a small, fixed vocabulary (docs/guidance.md lists it), so people read it as
prose and a program can read it back: each field is one bullet
``- `name` (required|optional): CONSTRAINTS — DESCRIPTION``, nested objects indent their
fields by two spaces, and conditional requirements are bullets starting with ``If``.
Values are written as JSON inside backticks (`"S1"`, `true`, `0`), so a string is never
mistaken for a number. Anything the vocabulary cannot say is given as the raw JSON Schema
rather than left out: the words may be clumsy, never silently incomplete.

``$ref`` is followed into the definition's shared schema files (``resources``: URI -> schema,
as pinned with the run), relative to the file the reference sits in; keywords next to a
``$ref`` narrow it, as they do in the gate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import unquote, urldefrag, urljoin

from pydantic import BaseModel, ConfigDict

MAX_REF_DEPTH = 24

#: Keywords that carry no constraint (or that the words take from elsewhere).
_SILENT = frozenset({"$schema", "$id", "$anchor", "$comment", "$defs", "definitions", "title", "description",
                     "default", "examples", "deprecated", "readOnly", "writeOnly", "contentMediaType",
                     "contentEncoding", "$vocabulary"})
#: Keywords the words describe.
_KNOWN = frozenset({"$ref", "allOf", "anyOf", "oneOf", "type", "const", "enum", "minLength", "maxLength",
                    "pattern", "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                    "multipleOf", "items", "minItems", "maxItems", "uniqueItems", "properties", "required",
                    "additionalProperties", "if", "then", "else", "dependentRequired", "minProperties",
                    "maxProperties", "contains"})

_FORMATS = {
    "date": "a date written YYYY-MM-DD",
    "date-time": "a date and time in RFC 3339 form with a time zone, like `2025-03-14T09:30:00Z`",
    "time": "a time of day in RFC 3339 form with a time zone, like `09:30:00Z`",
    "email": "an e-mail address",
    "uri": "a URI",
    "uri-reference": "a URI reference",
    "uuid": "a UUID, like `123e4567-e89b-12d3-a456-426614174000`",
    "hostname": "a host name",
    "ipv4": "an IPv4 address",
    "ipv6": "an IPv6 address",
    "duration": "an ISO 8601 duration, like `P3DT4H`",
}


class EvidenceWords(BaseModel):
    """The words for one gate, as they appear in the guidance context (``step.evidence``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str
    """A first line saying what to submit, then one bullet per field and per condition."""
    required: list[str]
    """Top-level fields that are always required."""
    json_schema: dict[str, Any]
    """The gate with every ``$ref`` inlined: self-contained, validates exactly as the gate does."""


def evidence_words(schema: Mapping[str, Any] | bool | None, resources: Mapping[str, Any] | None = None) -> EvidenceWords:
    """Describe a step's ``done_when`` in words (see the module docstring for the vocabulary)."""
    describer = _Describer(resources or {})
    scope = _Scope("", schema)
    merged = describer.merge([(schema, scope)])
    phrase, children = describer.phrase(merged, top=True)
    text = "\n".join([phrase, *children])
    return EvidenceWords(text=text, required=list(merged.required),
                         json_schema=inline_refs(schema, resources or {}) if isinstance(schema, dict) else {})


def describe(schema: Any, resources: Mapping[str, Any] | None = None) -> str:
    """One schema (a field, a start-data schema, ...) in words; nested fields on indented lines."""
    describer = _Describer(resources or {})
    phrase, children = describer.phrase(describer.merge([(schema, _Scope("", schema))]))
    return "\n".join([phrase, *children])


# --- $ref ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scope:
    """Where a schema node sits: the URI of its document and the document, for ``$ref``."""

    base: str
    root: Any


class _Unresolvable(Exception):
    pass


def _resolve(ref: str, scope: _Scope, resources: Mapping[str, Any]) -> tuple[Any, _Scope]:
    if ref.startswith("#"):
        document, base, fragment = scope.root, scope.base, ref[1:]
    else:
        target, fragment = urldefrag(urljoin(scope.base, ref))
        if target not in resources:
            raise _Unresolvable(ref)
        document, base = resources[target], target
    node = document
    for token in [t for t in fragment.split("/") if t] if fragment else []:
        token = unquote(token).replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            raise _Unresolvable(ref)
    return node, _Scope(base, document)


def inline_refs(schema: Any, resources: Mapping[str, Any], *, _scope: _Scope | None = None,
                _depth: int = 0) -> Any:
    """The schema with every ``$ref`` replaced by what it points to, so it needs no other file.

    Keywords next to a ``$ref`` are kept, with the target moved into an ``allOf``, so the result
    validates exactly as the original does with its registry. A reference that cannot be
    resolved (or that recurses too deep) is left as it is.
    """
    scope = _scope or _Scope("", schema)
    if isinstance(schema, list):
        return [inline_refs(item, resources, _scope=scope, _depth=_depth) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    target: Any = None
    ref = schema.get("$ref")
    if isinstance(ref, str) and _depth < MAX_REF_DEPTH:
        try:
            node, node_scope = _resolve(ref, scope, resources)
            target = inline_refs(node, resources, _scope=node_scope, _depth=_depth + 1)
            if isinstance(target, dict):
                target = {k: v for k, v in target.items() if k not in ("$schema", "$id", "$defs")}
        except _Unresolvable:
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


# --- merging ------------------------------------------------------------------------------

Part = tuple[Any, _Scope]


@dataclass
class _Merged:
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


def _chars(count: int) -> str:
    return f"{count} character{'s' if count != 1 else ''}"


def _lit(value: Any) -> str:
    return f"`{json.dumps(value, ensure_ascii=False)}`"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _bigger(a: float | None, b: Any) -> float | None:
    return b if a is None else max(a, b)


def _smaller(a: float | None, b: Any) -> float | None:
    return b if a is None else min(a, b)


class _Describer:
    def __init__(self, resources: Mapping[str, Any]):
        self.resources = resources

    def merge(self, parts: list[Part], depth: int = 0) -> _Merged:
        merged = _Merged(sources=list(parts))
        for schema, scope in parts:
            self._fold(merged, schema, scope, depth)
        return merged

    def json(self, parts: list[Part]) -> str:
        """The schemas as one self-contained JSON Schema, on one line."""
        inlined = [inline_refs(schema, self.resources, _scope=scope) for schema, scope in parts]
        return _compact(inlined[0] if len(inlined) == 1 else {"allOf": inlined})

    def _fold(self, m: _Merged, schema: Any, scope: _Scope, depth: int) -> None:
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
                    node, node_scope = _resolve(ref, scope, self.resources)
                    self._fold(m, node, node_scope, depth + 1)
                except _Unresolvable:
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
                setattr(m, attr, _bigger(getattr(m, attr), schema[key]))
        for key, attr in (("maxLength", "max_length"), ("maximum", "maximum"), ("exclusiveMaximum", "exclusive_maximum"),
                          ("maxItems", "max_items"), ("maxProperties", "max_properties")):
            if isinstance(schema.get(key), (int, float)) and not isinstance(schema.get(key), bool):
                setattr(m, attr, _smaller(getattr(m, attr), schema[key]))
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
        properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
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
        unknown = {k: v for k, v in schema.items() if k not in _KNOWN and k not in _SILENT}
        if "if" in schema and "then" not in schema and "else" not in schema:
            unknown.pop("if", None)  # an `if` alone constrains nothing
        if unknown:
            m.raw.append(unknown)

    # --- phrases -------------------------------------------------------------------------

    def phrase(self, m: _Merged, *, top: bool = False, depth: int = 0) -> tuple[str, list[str]]:
        """A one-line phrase for the value, plus indented lines for the fields of an object."""
        if m.impossible:
            return "must not be given (no value passes)", []
        if depth > MAX_REF_DEPTH:
            return "a value (the schema nests too deep to describe; see the JSON Schema)", []
        alternatives = self._alternatives(m)
        if alternatives is not None:
            return self._either(m, alternatives, top=top, depth=depth)
        if m.consts:
            first = m.consts[0]
            if any(c != first for c in m.consts) or (m.enum is not None and first not in m.enum):
                return "must not be given (its constraints contradict each other, so no value passes)", []
            return self._with_raw(f"exactly {_lit(first)}", m), []
        if m.enum is not None:
            if not m.enum:
                return "must not be given (its allowed values do not overlap, so no value passes)", []
            words = f"exactly {_lit(m.enum[0])}" if len(m.enum) == 1 else \
                "one of " + ", ".join(_lit(v) for v in m.enum)
            return self._with_raw(words, m), []
        kind = self._kind(m)
        if kind == "object":
            return self._object(m, top=top, depth=depth)
        if kind == "array":
            return self._array(m, depth=depth)
        words = {"string": self._string, "integer": self._number, "number": self._number}.get(kind)
        if words is not None:
            return self._with_raw(words(m, kind), m), []
        if kind == "boolean":
            return self._with_raw("`true` or `false`", m), []
        if kind == "null":
            return "`null`", []
        return self._with_raw("any JSON value", m), []

    def _kind(self, m: _Merged) -> str | None:
        if m.types is not None:
            if not m.types:
                return None
            return next(iter(m.types))
        if m.properties or m.required or m.closed or m.conditionals:
            return "object"
        if m.items or m.min_items is not None or m.max_items is not None:
            return "array"
        if m.patterns or m.formats or m.min_length is not None or m.max_length is not None:
            return "string"
        if m.minimum is not None or m.maximum is not None or m.exclusive_minimum is not None \
                or m.exclusive_maximum is not None:
            return "number"
        return None

    def _alternatives(self, m: _Merged) -> list[_Merged] | None:
        """Each way the value may look, with the common constraints folded into every way."""
        if m.types is not None and len(m.types) > 1 and not m.consts and m.enum is None:
            options: list[_Merged] = []
            for kind in sorted(m.types, key=_TYPE_ORDER.index):
                option = _copy(m)
                option.types = {kind}
                options.append(option)
            return options
        if not m.alternatives:
            return None
        group, rest = m.alternatives[0], m.alternatives[1:]
        options = []
        for schema, scope in group:
            option = self.merge([(schema, scope)])
            common = _copy(m)
            common.alternatives = rest
            common.descriptions = []
            joined = _conjoin(common, option)
            joined.sources = [*_without_alternative(m.sources, group), (schema, scope)]
            options.append(joined)
        return options

    def _either(self, m: _Merged, options: list[_Merged], *, top: bool, depth: int) -> tuple[str, list[str]]:
        phrases = []
        for option in options:
            words, lines = self.phrase(option, top=top, depth=depth + 1)
            if lines:
                # A structured alternative cannot share one line: give it as JSON Schema.
                words = f"a value that passes the JSON Schema `{self.json(option.sources)}`"
            phrases.append(words)
        unique = list(dict.fromkeys(phrases))
        if len(unique) == 1:
            return unique[0], []
        return "either " + ", or ".join(unique), []

    def _string(self, m: _Merged, kind: str) -> str:
        words = _FORMATS.get(m.formats[0], f"text in the `{m.formats[0]}` format") if m.formats else "text"
        for extra in m.formats[1:]:
            words += f", also in the `{extra}` format,"
        lo, hi = m.min_length, m.max_length
        if lo is not None and hi is not None:
            words += f" of exactly {_chars(lo)}" if lo == hi else f" of {lo} to {hi} characters"
        elif lo is not None:
            words += f" of at least {_chars(lo)}"
        elif hi is not None:
            words += f" of at most {_chars(hi)}"
        if m.patterns:
            words += " matching the regular expression " + " and ".join(f"`{p}`" for p in m.patterns)
        return words

    def _number(self, m: _Merged, kind: str) -> str:
        words = "a whole number" if kind == "integer" else "a number"
        if m.minimum is not None:
            words += f", at least {_num(m.minimum)}"
        if m.exclusive_minimum is not None:
            words += f", greater than {_num(m.exclusive_minimum)}"
        if m.maximum is not None:
            words += f", at most {_num(m.maximum)}"
        if m.exclusive_maximum is not None:
            words += f", less than {_num(m.exclusive_maximum)}"
        for step in m.multiple_of:
            words += f", a multiple of {_num(step)}"
        return words

    def _array(self, m: _Merged, *, depth: int) -> tuple[str, list[str]]:
        lo, hi = m.min_items, m.max_items
        words = "a list"
        if lo is not None and hi is not None:
            words += f" of exactly {lo} item{'s' if lo != 1 else ''}" if lo == hi else f" of {lo} to {hi} items"
        elif lo is not None and lo > 0:
            words += f" of at least {lo} item{'s' if lo != 1 else ''}"
        elif hi is not None:
            words += f" of at most {hi} item{'s' if hi != 1 else ''}"
        if m.unique_items:
            words += ", no duplicates"
        children: list[str] = []
        if m.items:
            item_words, item_lines = self.phrase(self.merge(m.items), depth=depth + 1)
            if item_words.startswith("an object"):
                words += f"; each item is {item_words}"
            else:
                words += f"; each item: {item_words}"
            children = item_lines
        else:
            words += " of any values"
        for schema, scope in m.contains:
            contained, lines = self.phrase(self.merge([(schema, scope)]), depth=depth + 1)
            if lines:
                contained = f"a value that passes the JSON Schema `{self.json([(schema, scope)])}`"
            words += f"; at least one item must be {contained}"
        return self._with_raw(words, m), children

    def _object(self, m: _Merged, *, top: bool, depth: int) -> tuple[str, list[str]]:
        allowed = list(m.properties)
        for name in m.required:
            if name not in allowed:
                allowed.append(name)
        closed = bool(m.closed)
        if closed:
            permitted = set.intersection(*m.closed)
            allowed = [name for name in allowed if name in permitted]
        noun = "a JSON object" if top else "an object"
        if not allowed:
            words = f"{noun} with no fields (`{{}}`)" if closed else f"{noun} (any fields)"
            lines: list[str] = []
        else:
            words = f"{noun} with only these fields:" if closed else f"{noun} with these fields (others are allowed):"
            lines = []
            for name in allowed:
                lines.extend(self._field(name, m, depth))
        for name, needs in m.dependent_required.items():
            lines.append(f"- If `{name}` is given, {_also_required(needs)}.")
        for condition, then, otherwise in m.conditionals:
            lines.append(self._conditional(condition, then, otherwise, depth))
        if m.min_properties is not None:
            words += f" (at least {m.min_properties} of them)"
        if m.max_properties is not None:
            words += f" (at most {m.max_properties} of them)"
        if m.raw:
            lines.append(f"- It must also pass the JSON Schema {', '.join(f'`{_compact(r)}`' for r in m.raw)}.")
        return words, lines

    def _field(self, name: str, m: _Merged, depth: int) -> list[str]:
        parts = m.properties.get(name, [])
        sub = self.merge(parts, depth)
        words, children = self.phrase(sub, depth=depth + 1)
        status = "required" if name in m.required else "optional"
        line = f"- `{name}` ({status}): {words}"
        description = _description(sub, self)
        if description and not children:
            line += f" — {description}"
        elif description:
            line = f"- `{name}` ({status}, {description.rstrip('.')}): {words}"
        return [line, *("  " + child for child in children)]

    def _conditional(self, condition: Part, then: Part | None, otherwise: Part | None, depth: int) -> str:
        when = self._condition(condition)
        text = f"- If {when}: {self._consequence(then, depth)}." if then is not None else f"- If {when}: nothing more."
        if otherwise is not None:
            text = text[:-1] + f". Otherwise: {self._consequence(otherwise, depth)}."
        return text

    def _condition(self, part: Part) -> str:
        schema, scope = part
        m = self.merge([part])
        clauses = []
        simple = isinstance(schema, dict) and not m.raw and not m.alternatives and not m.conditionals
        for name, parts in m.properties.items():
            sub = self.merge(parts)
            clause = _condition_clause(name, sub)
            if clause is None:
                simple = False
                break
            clauses.append(clause if name in m.required else f"{clause} or `{name}` is not given")
        for name in m.required:
            if name not in m.properties:
                clauses.append(f"`{name}` is given")
        if not simple or not clauses:
            return f"the evidence passes the JSON Schema `{self.json([part])}`"
        return " and ".join(clauses)

    def _consequence(self, part: Part, depth: int) -> str:
        schema, _scope = part
        m = self.merge([part])
        pieces = []
        new_required = list(m.required)
        if new_required:
            pieces.append(_also_required(new_required))
        for name, parts in m.properties.items():
            sub = self.merge(parts)
            narrowing = _narrowing(sub)
            if narrowing is not None:
                pieces.append(f"`{name}` must {narrowing}")
                continue
            words, lines = self.phrase(sub, depth=depth + 1)
            if lines:
                words = f"a value that passes the JSON Schema `{self.json(parts)}`"
            pieces.append(f"`{name}` must be {words}")
        leftover = _copy(m)
        leftover.required, leftover.properties, leftover.descriptions, leftover.sources = [], {}, [], []
        if _has_constraints(leftover):
            pieces.append(f"the evidence must also pass the JSON Schema `{self.json([part])}`")
        return "; ".join(pieces) if pieces else "nothing more"

    def _with_raw(self, words: str, m: _Merged) -> str:
        if m.unresolved:
            words += "; it must also match " + ", ".join(f"`{r}`" for r in m.unresolved) + \
                     " (a shared schema that could not be found)"
        if m.raw:
            words += "; it must also pass the JSON Schema " + ", ".join(f"`{_compact(r)}`" for r in m.raw)
        return words


_TYPE_ORDER = ["object", "array", "string", "integer", "number", "boolean", "null"]


def _copy(m: _Merged) -> _Merged:
    clone = _Merged(**{k: (v.copy() if isinstance(v, (list, dict, set)) else v) for k, v in m.__dict__.items()})
    return clone


def _conjoin(a: _Merged, b: _Merged) -> _Merged:
    """Both sets of constraints at once (used for alternatives: common part + one option)."""
    out = _copy(a)
    if b.types is not None:
        out.types = b.types if out.types is None else (out.types & b.types) or (
            {"integer"} if {"integer", "number"} <= (out.types | b.types) else set())
    out.consts += b.consts
    if b.enum is not None:
        out.enum = list(b.enum) if out.enum is None else [v for v in out.enum if v in b.enum]
    for attr in ("min_length", "minimum", "exclusive_minimum", "min_items", "min_properties"):
        if getattr(b, attr) is not None:
            setattr(out, attr, _bigger(getattr(out, attr), getattr(b, attr)))
    for attr in ("max_length", "maximum", "exclusive_maximum", "max_items", "max_properties"):
        if getattr(b, attr) is not None:
            setattr(out, attr, _smaller(getattr(out, attr), getattr(b, attr)))
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


def _has_constraints(m: _Merged) -> bool:
    empty = _Merged()
    return any(getattr(m, k) != getattr(empty, k) for k in m.__dict__ if k != "sources")


def _without_alternative(sources: list[Part], group: list[Part]) -> list[Part]:
    """The merged schemas with the alternative group itself taken out (it is replaced by one option)."""
    keys = ("oneOf", "anyOf")
    out = []
    for schema, scope in sources:
        if isinstance(schema, dict) and any(isinstance(schema.get(k), list) and
                                            [(o, scope) for o in schema[k]] == group for k in keys):
            schema = {k: v for k, v in schema.items() if k not in keys}
        out.append((schema, scope))
    return out


def _description(m: _Merged, _d: _Describer) -> str:
    """The field's own description, else the one of what it refers to (the first one found)."""
    if m.descriptions:
        return m.descriptions[0]
    for group in m.alternatives:
        for schema, scope in group:
            found = _d.merge([(schema, scope)]).descriptions
            if found:
                return found[0]
    return ""


def _condition_clause(name: str, m: _Merged) -> str | None:
    if m.consts and not m.raw:
        return f"`{name}` is {_lit(m.consts[0])}"
    if m.enum is not None and not m.raw:
        return f"`{name}` is one of " + ", ".join(_lit(v) for v in m.enum)
    clauses = []
    if m.minimum is not None:
        clauses.append(f"`{name}` is at least {_num(m.minimum)}")
    if m.exclusive_minimum is not None:
        clauses.append(f"`{name}` is greater than {_num(m.exclusive_minimum)}")
    if m.maximum is not None:
        clauses.append(f"`{name}` is at most {_num(m.maximum)}")
    if m.exclusive_maximum is not None:
        clauses.append(f"`{name}` is less than {_num(m.exclusive_maximum)}")
    others = _copy(m)
    others.minimum = others.maximum = others.exclusive_minimum = others.exclusive_maximum = None
    others.types = None
    others.descriptions = []
    if clauses and not _has_constraints(others):
        return " and ".join(clauses)
    return None


def _narrowing(m: _Merged) -> str | None:
    """Words for a bare narrowing (`{minItems: 1}` in a `then`) that adds to what the field already says."""
    if m.types is not None or m.alternatives or m.properties or m.items or m.raw or m.conditionals:
        return None
    said = []
    if m.consts:
        said.append(f"be {_lit(m.consts[0])}")
    elif m.enum is not None:
        said.append("be one of " + ", ".join(_lit(v) for v in m.enum))
    if m.min_items is not None:
        said.append(f"have at least {m.min_items} item{'s' if m.min_items != 1 else ''}")
    if m.max_items is not None:
        said.append(f"have at most {m.max_items} item{'s' if m.max_items != 1 else ''}")
    if m.min_length is not None:
        said.append(f"have at least {_chars(m.min_length)}")
    if m.max_length is not None:
        said.append(f"have at most {_chars(m.max_length)}")
    if m.minimum is not None:
        said.append(f"be at least {_num(m.minimum)}")
    if m.maximum is not None:
        said.append(f"be at most {_num(m.maximum)}")
    for pattern in m.patterns:
        said.append(f"match the regular expression `{pattern}`")
    rest = _copy(m)
    for attr in ("consts", "patterns", "descriptions", "sources"):
        setattr(rest, attr, [])
    rest.enum = rest.min_items = rest.max_items = rest.min_length = rest.max_length = None
    rest.minimum = rest.maximum = None
    if not said or _has_constraints(rest):
        return None
    return " and ".join(said)


def _also_required(names: list[str]) -> str:
    listed = [f"`{n}`" for n in names]
    if len(listed) == 1:
        return f"{listed[0]} is also required"
    return f"{', '.join(listed[:-1])} and {listed[-1]} are also required"


def _compact(schema: Any) -> str:
    return json.dumps(schema, ensure_ascii=False, separators=(", ", ": "), sort_keys=False)
