"""Forms drawn from gates (tiergate.web.forms): fields, reading a form back, the gate's messages by field."""

from __future__ import annotations

from typing import Any

from referencing import Registry

from tiergate.gates import gate_errors, gate_validator
from tiergate.guidance import inline_refs
from tiergate.web.forms import Field, Form, field_errors
from tiergate.web.text import markdown

GATE: dict[str, Any] = {
    "type": "object", "required": ["summary", "count", "contact", "items"],
    "properties": {
        "summary": {"type": "string", "minLength": 10, "title": "What happened", "description": "In a sentence."},
        "code": {"type": "string", "pattern": "^T-[0-9]+$"},
        "count": {"type": "integer", "minimum": 1},
        "ratio": {"type": "number"},
        "level": {"enum": [1, 2, 3]},
        "approved": {"const": True},
        "urgent": {"type": "boolean"},
        "on": {"type": "string", "format": "date"},
        "at": {"type": "string", "format": "date-time"},
        "contact": {"$ref": "#/$defs/contact"},
        "items": {"type": "array", "minItems": 1,
                  "items": {"type": "object", "required": ["name"],
                            "properties": {"name": {"type": "string", "maxLength": 20}, "qty": {"type": "integer"}}}},
        "tags": {"type": "array", "items": {"type": "string"}},
        "extra": {"oneOf": [{"type": "string"}, {"type": "object"}]},
    },
    "$defs": {"contact": {"type": "object", "required": ["email"], "description": "Who to call.",
                          "properties": {"email": {"type": "string", "format": "email"},
                                         "phone": {"type": "string", "maxLength": 30}}}},
}


def _flat(fields: list[Field]) -> dict[str, Field]:
    out: dict[str, Field] = {}
    for f in fields:
        out[f.name] = f
        out.update(_flat(f.children))
    return out


def _check(evidence: Any) -> list[dict[str, Any]]:
    return gate_errors(gate_validator(GATE, Registry()), evidence)


def test_every_kind_of_field_is_drawn_with_its_label_help_and_required_mark() -> None:
    form = Form(inline_refs(GATE, {}))
    fields = _flat(form.fields({}))
    kinds = {name: f.kind for name, f in fields.items()}
    assert kinds == {"summary": "textarea", "code": "text", "count": "integer", "ratio": "number", "level": "select",
                     "approved": "checkbox", "urgent": "checkbox", "on": "date", "at": "datetime",
                     "contact": "group", "contact.email": "email", "contact.phone": "text", "items": "list",
                     "items.0": "group", "items.0.name": "text", "items.0.qty": "integer", "tags": "list",
                     "tags.0": "textarea", "extra": "json"}
    assert fields["summary"].label == "What happened" and fields["summary"].help == "In a sentence."
    assert fields["contact"].help == "Who to call." and fields["contact.email"].required  # the $ref, resolved
    assert [n for n, f in fields.items() if f.required] == ["summary", "count", "contact", "contact.email", "items",
                                                             "items.0.name"]
    assert fields["level"].options == [("1", "1"), ("2", "2"), ("3", "3")]
    assert fields["count"].attrs == {"min": 1} and fields["items.0.name"].attrs == {"maxlength": 20}
    assert all(f.label for f in fields.values())


def test_a_form_is_read_back_into_json_leaving_out_what_was_left_empty() -> None:
    form = Form(inline_refs(GATE, {}))
    typed = {"summary": ["The export fails."], "code": [""], "count": ["3"], "ratio": ["0.5"], "level": ["2"],
             "approved": ["on"], "on": ["2026-12-06"], "at": ["2026-12-06T10:30"], "contact.email": ["a@example.com"],
             "contact.phone": [""], "items.0.name": [""], "items.0.qty": [""], "items.1.name": ["bolt"],
             "items.1.qty": ["4"], "tags.0": ["red"], "tags.1": [""], "tags.2": ["blue"], "extra": ['{"k": [1]}']}
    evidence, names = form.read(typed)
    assert evidence == {"summary": "The export fails.", "count": 3, "ratio": 0.5, "level": 2, "approved": True,
                        "urgent": False, "on": "2026-12-06", "at": "2026-12-06T10:30:00Z",
                        "contact": {"email": "a@example.com"}, "items": [{"name": "bolt", "qty": 4}],
                        "tags": ["red", "blue"], "extra": {"k": [1]}}
    assert _check(evidence) == []
    assert names["/items/0/name"] == "items.1.name" and names["/tags/1"] == "tags.2"  # rows left empty dropped


def test_the_gates_messages_go_next_to_their_fields_and_what_was_typed_stays() -> None:
    form = Form(inline_refs(GATE, {}))
    typed = {"summary": ["short"], "count": ["three"], "contact.email": [""], "items.0.name": [""],
             "items.3.name": ["a name that is far too long"], "extra": ["{not json"], "ratio": ["1e400x"]}
    evidence, names = form.read(typed)
    assert evidence["count"] == "three" and evidence["extra"] == "{not json"  # sent as typed: the gate judges
    by_field, general = field_errors(_check(evidence), names)
    assert set(by_field) == {"summary", "count", "contact.email", "items.3.name", "ratio"}
    assert by_field["contact.email"] == "required field 'email' is missing"
    assert "is too long" in by_field["items.3.name"] and "is not of type 'integer'" in by_field["count"]
    assert general == []
    fields = _flat(form.fields(typed, by_field))
    assert fields["summary"].value == "short" and fields["count"].value == "three"
    assert fields["items.3.name"].value == "a name that is far too long" and fields["items.3.name"].error
    assert [c.name for c in fields["items"].children] == ["items.0", "items.3", "items.4"]  # as typed, one more row


def test_errors_outside_any_field_are_said_above_the_form() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False,
              "minProperties": 1}
    evidence, names = Form(schema).read({"a": [""]})
    by_field, general = field_errors(gate_errors(gate_validator(schema, Registry()), evidence), names)
    assert by_field == {} and general == ["/: {} should be non-empty"]


def test_a_gate_that_is_not_an_object_of_fields_is_one_json_field_and_no_gate_is_no_field() -> None:
    form = Form({"type": "array", "items": {"type": "integer"}})
    assert [f.kind for f in form.fields({})] == ["json"]
    assert form.read({"evidence": ["[1, 2]"]})[0] == [1, 2]
    assert Form({}).fields({}) == [] and Form({}).read({})[0] == {}
    assert Form(None).fields({}) == []


def test_earlier_values_fill_the_form() -> None:
    form = Form(inline_refs(GATE, {}))
    fields = _flat(form.fields(initial={"summary": "Before", "items": [{"name": "x"}], "approved": True,
                                        "contact": {"email": "b@example.com"}}))
    assert fields["summary"].value == "Before" and fields["items.0.name"].value == "x"
    assert fields["approved"].checked and fields["contact.email"].value == "b@example.com"


def test_instructions_are_markdown_with_html_shown_as_text_and_unsafe_links_refused() -> None:
    html = str(markdown("Look at **T-1**. <script>alert(1)</script> [x](javascript:alert(1)) [ok](https://x.test)"))
    assert "<strong>T-1</strong>" in html and "<script>" not in html and "&lt;script&gt;" in html
    assert 'href="javascript' not in html and '<a href="https://x.test">ok</a>' in html
