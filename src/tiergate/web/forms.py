"""HTML forms from JSON Schemas (a step's gate, a process's ``inputs``), and the form back into JSON.

    form = Form(schema)                          # references already inlined (guidance.inline_refs)
    fields = form.fields(typed, errors)          # what the template draws, with values and messages
    evidence, names = form.read(typed)           # the submitted form as JSON for the gate

Field names (the form's ``name=`` attributes) follow the JSON: a property ``summary`` is
``summary``; a nested one is ``parent.child``; an array's items are numbered, ``items.0``,
``items.1.name``. An array shows the items given and one empty row more (up to ``maxItems``);
rows left empty are dropped. A value the form cannot draw as fields (``oneOf``, an object without
``properties``, several types) is a text area that takes JSON.

A checkbox gives true or false; a box to tick (``const: true``) left unticked is left out. Nothing
here judges the evidence: an empty field is left out, a number that does not parse is sent
as the text typed, and the gate says what is wrong. The gate's JSON pointers are mapped back to
field names (``names``), so each message is shown next to its field, and what was typed is shown
again as it was.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, cast

Typed = Mapping[str, list[str]]
_DATETIME_LOCAL = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$")
_INTEGER = re.compile(r"^[+-]?\d+$")
MAX_ROWS = 50
MAX_DEPTH = 8
TEXTAREA_OVER = 120


@dataclass
class Field:
    """One field of a form as the template draws it."""

    name: str
    label: str
    kind: str  # text, textarea, number, integer, select, checkbox, date, datetime, email, url, json, group, list
    required: bool = False
    help: str = ""
    value: str = ""
    checked: bool = False
    options: list[tuple[str, str]] = field(default_factory=list)
    error: str = ""
    children: list["Field"] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return "f-" + re.sub(r"[^A-Za-z0-9_-]", "-", self.name)


def merged(schema: Any) -> dict[str, Any]:
    """A schema with its ``allOf`` parts folded in (properties and required joined; first keyword wins)."""
    if not isinstance(schema, dict):
        return {}
    out = {k: v for k, v in schema.items() if k != "allOf"}
    for part in schema.get("allOf") or []:
        part = merged(part)
        for key, value in part.items():
            if key == "properties" and isinstance(value, dict):
                out["properties"] = {**value, **(out.get("properties") or {})}
            elif key == "required" and isinstance(value, list):
                out["required"] = list(dict.fromkeys([*(out.get("required") or []), *value]))
            else:
                out.setdefault(key, value)
    return out


def _types(schema: dict[str, Any]) -> list[str]:
    kind = schema.get("type")
    if isinstance(kind, str):
        return [kind]
    if isinstance(kind, list):
        return [k for k in kind if k != "null"]
    if "properties" in schema:
        return ["object"]
    if "items" in schema:
        return ["array"]
    return []


def kind_of(schema: dict[str, Any]) -> str:
    """How a value of ``schema`` is drawn."""
    if "enum" in schema and isinstance(schema["enum"], list) and schema["enum"]:
        return "select"
    if "const" in schema:
        return "checkbox" if isinstance(schema["const"], bool) else "select"
    if any(k in schema for k in ("oneOf", "anyOf", "not", "if")):
        return "json"
    types = _types(schema)
    if len(types) != 1:
        return "json" if types or schema else "textarea"
    kind = types[0]
    if kind == "boolean":
        return "checkbox"
    if kind in ("integer", "number"):
        return kind
    if kind == "string":
        fmt = schema.get("format")
        if fmt in ("date", "email"):
            return str(fmt)
        if fmt == "date-time":
            return "datetime"
        if fmt in ("uri", "url"):
            return "url"
        long = schema.get("maxLength") is None or int(schema.get("maxLength") or 0) > TEXTAREA_OVER
        return "textarea" if long and "pattern" not in schema and fmt is None else "text"
    if kind == "object":
        return "group" if isinstance(schema.get("properties"), dict) and schema["properties"] else "json"
    if kind == "array":
        items = merged(schema.get("items"))
        return "list" if items and kind_of(items) not in ("json", "list") else "json"
    return "json"


def _label(name: str, schema: dict[str, Any]) -> str:
    title = schema.get("title")
    if isinstance(title, str) and title.strip():
        return title.strip()
    words = re.sub(r"([a-z])([A-Z])", r"\1 \2", name).replace("_", " ").replace("-", " ").strip()
    return words[:1].upper() + words[1:] if words else name


def _options(schema: dict[str, Any]) -> list[tuple[str, str]]:
    values = schema["enum"] if "enum" in schema else [schema["const"]]
    return [(_text(v), _text(v)) for v in values]


def _text(value: Any) -> str:
    """A JSON value as a form shows it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, indent=2)
    return str(value)



class Form:
    """A form for one schema: its fields, and reading a submitted form back into JSON."""

    def __init__(self, schema: Any):
        self.schema = merged(schema) if isinstance(schema, dict) else {}
        self.whole = kind_of(self.schema) != "group"  # not an object with properties: one JSON field

    # --- drawing ---------------------------------------------------------------------------

    def fields(self, typed: Typed | None = None, errors: Mapping[str, str] | None = None,
               initial: Any = None) -> list[Field]:
        """The fields, filled with what was typed (or ``initial`` JSON, or the schema's defaults)."""
        typed = typed if typed is not None else self._typed_from(initial)
        errors = errors or {}
        if self.whole:
            if not self.schema or self.schema == {"type": "object"}:
                return []
            return [self._field("evidence", "Evidence (JSON)", self.schema, True, typed, errors, 0, kind="json")]
        return self._group_fields("", self.schema, typed, errors, 0)

    def _group_fields(self, prefix: str, schema: dict[str, Any], typed: Typed, errors: Mapping[str, str],
                      depth: int) -> list[Field]:
        required = set(schema.get("required") or [])
        out = []
        for name, sub in (schema.get("properties") or {}).items():
            full = f"{prefix}{name}"
            out.append(self._field(full, _label(name, merged(sub)), merged(sub), name in required, typed, errors,
                                   depth))
        return out

    def _field(self, name: str, label: str, schema: dict[str, Any], required: bool, typed: Typed,
               errors: Mapping[str, str], depth: int, kind: str | None = None) -> Field:
        kind = kind or kind_of(schema)
        if depth >= MAX_DEPTH and kind in ("group", "list"):
            kind = "json"
        description = schema.get("description")
        out = Field(name=name, label=label, kind=kind, required=required,
                    help=description.strip() if isinstance(description, str) else "", error=errors.get(name, ""))
        given = typed.get(name)
        value = given[-1] if given else ""
        if kind == "group":
            out.children = self._group_fields(name + ".", schema, typed, errors, depth + 1)
        elif kind == "list":
            items = merged(schema.get("items"))
            rows = self._rows(name, typed)
            limit = min(int(schema.get("maxItems", MAX_ROWS)), MAX_ROWS)
            count = min(max(len(rows) + 1, int(schema.get("minItems", 0) or 0), 1), limit)
            numbers = (rows + [i for i in range(max(rows, default=-1) + 1, MAX_ROWS + 100)])[:count]
            item_label = _label("", items) if items.get("title") else "Item"
            for position, number in enumerate(numbers):
                row = self._field(f"{name}.{number}", f"{item_label} {position + 1}", items, False, typed, errors,
                                  depth + 1)
                out.children.append(row)
        elif kind == "checkbox":
            out.checked = value in ("on", "true", "1") if given else (schema.get("default") is True)
        elif kind == "select":
            out.options = _options(schema)
            out.value = value if given else _text(schema.get("default")) if "default" in schema else ""
        else:
            out.value = value if given else _text(schema.get("default")) if "default" in schema else ""
            if kind == "datetime":
                out.value = out.value.removesuffix("Z").removesuffix("+00:00")
            for keyword, attr in (("minimum", "min"), ("maximum", "max"), ("maxLength", "maxlength")):
                if isinstance(schema.get(keyword), (int, float)) and not isinstance(schema.get(keyword), bool):
                    out.attrs[attr] = schema[keyword]
            if kind == "number":
                out.attrs["step"] = "any"
        return out

    @staticmethod
    def _rows(name: str, typed: Typed) -> list[int]:
        """The row numbers of list ``name`` in a typed form, in order."""
        found: set[int] = set()
        prefix = name + "."
        for key in typed:
            if key.startswith(prefix):
                head = key[len(prefix):].split(".", 1)[0]
                if head.isdigit() and int(head) < MAX_ROWS:
                    found.add(int(head))
        return sorted(found)

    def _typed_from(self, value: Any) -> dict[str, list[str]]:
        """A JSON value (start data, earlier evidence) as the form fields that would give it."""
        out: dict[str, list[str]] = {}
        if self.whole:
            if value is not None:
                out["evidence"] = [_text(value)]
            return out

        def walk(prefix: str, schema: dict[str, Any], node: Any) -> None:
            if not isinstance(node, dict):
                return
            for key, sub in (schema.get("properties") or {}).items():
                if key not in node:
                    continue
                sub, name = merged(sub), f"{prefix}{key}"
                kind = kind_of(sub)
                if kind == "group":
                    walk(name + ".", sub, node[key])
                elif kind == "list" and isinstance(node[key], list):
                    items = merged(sub.get("items"))
                    for i, item in enumerate(node[key][:MAX_ROWS]):
                        if kind_of(items) == "group":
                            walk(f"{name}.{i}.", items, item)
                        else:
                            out[f"{name}.{i}"] = ["on" if item is True else _text(item)]
                elif kind == "checkbox":
                    if node[key] is True:
                        out[name] = ["on"]
                else:
                    out[name] = [_text(node[key])]

        walk("", self.schema, value)
        return out

    # --- reading ---------------------------------------------------------------------------

    def read(self, typed: Typed) -> tuple[Any, dict[str, str]]:
        """The JSON the form gives, and where each JSON pointer of it came from (a field name)."""
        names: dict[str, str] = {}
        if self.whole:
            if not self.schema or self.schema == {"type": "object"}:
                return {}, names
            text = (typed.get("evidence") or [""])[-1]
            names[""] = "evidence"
            return (self._json(text) if text.strip() else {}), names
        value = self._read_group("", "", self.schema, typed, names, 0)
        return value if value is not None else {}, names

    def _read_group(self, prefix: str, at: str, schema: dict[str, Any], typed: Typed, names: dict[str, str],
                    depth: int) -> dict[str, Any] | None:
        out: dict[str, Any] = {}
        for key, sub in (schema.get("properties") or {}).items():
            sub, name = merged(sub), f"{prefix}{key}"
            pointer = f"{at}/{key.replace('~', '~0').replace('/', '~1')}"
            names[pointer] = name
            value = self._read_value(name, pointer, sub, key in set(schema.get("required") or []), typed, names,
                                     depth)
            if value is not _EMPTY:
                out[key] = value
        return out

    def _read_value(self, name: str, pointer: str, schema: dict[str, Any], required: bool, typed: Typed,
                    names: dict[str, str], depth: int) -> Any:
        kind = kind_of(schema)
        if depth >= MAX_DEPTH and kind in ("group", "list"):
            kind = "json"
        if kind == "group":
            inner = self._read_group(name + ".", pointer, schema, typed, names, depth + 1)
            return inner if inner or required else _EMPTY
        if kind == "list":
            items, rows = merged(schema.get("items")), cast(list[Any], [])
            for number in self._rows(name, typed):
                row_name = f"{name}.{number}"
                row_names: dict[str, str] = {}
                value = self._read_value(row_name, f"{pointer}/{len(rows)}", items, False, typed, row_names,
                                         depth + 1)
                if value is _EMPTY or value == {}:
                    continue
                names[f"{pointer}/{len(rows)}"] = row_name
                names.update(row_names)
                rows.append(value)
            return rows if rows or required else _EMPTY
        given = typed.get(name)
        text = given[-1] if given else ""
        if kind == "checkbox":
            checked = bool(given) and text in ("on", "true", "1")
            if not checked and "const" in schema:  # a box to tick (``const: true``): unticked is not given
                return _EMPTY
            return checked
        if text == "":
            return _EMPTY
        if kind == "select":
            for option in schema["enum"] if "enum" in schema else [schema["const"]]:
                if _text(option) == text:
                    return option
            return text
        if kind == "integer":
            return int(text) if _INTEGER.match(text.strip()) else text
        if kind == "number":
            try:
                parsed = float(text)
            except ValueError:
                return text
            if not math.isfinite(parsed):
                return text  # NaN and infinities are not JSON: the gate says the text is not a number
            return int(parsed) if _INTEGER.match(text.strip()) else parsed
        if kind == "datetime" and _DATETIME_LOCAL.match(text):
            return text + (":00" if len(text) == 16 else "") + "Z"
        if kind == "json":
            return self._json(text)
        return text

    @staticmethod
    def _json(text: str) -> Any:
        """JSON typed in a text area; text that is not JSON goes to the gate as it is (a string)."""
        try:
            return json.loads(text)
        except ValueError:
            return text


class _Empty:
    """Nothing typed: the property is left out."""


_EMPTY: Any = _Empty()


def field_errors(errors: list[dict[str, Any]], names: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """The gate's errors (``details.errors``) by field name, and those that belong to no field."""
    by_field: dict[str, str] = {}
    general: list[str] = []
    for error in errors:
        pointer = str(error.get("pointer") or "")
        message = str(error.get("message") or "")
        target = pointer
        while target and target not in names:
            target = target.rsplit("/", 1)[0]
        name = names.get(target) if target else names.get("")
        if name is None:
            general.append(f"{pointer or '/'}: {message}")
        else:
            by_field[name] = f"{by_field[name]}; {message}" if name in by_field else message
    return by_field, general


__all__ = ["Field", "Form", "field_errors", "kind_of", "merged"]
