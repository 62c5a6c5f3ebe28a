"""`tiergate check`: every kind of bad definition is reported with its file and line."""

from __future__ import annotations

from typing import Any

import pytest

from support import DEMO, HomeBuilder, catalog_yaml
from tiergate.definitions.home import Home, load_definitions


def problems(home: HomeBuilder, **kwargs: Any) -> list[str]:
    return [str(p) for p in load_definitions(Home(home.root), **kwargs).problems]


def test_a_good_home_has_no_problems(demo_home: HomeBuilder) -> None:
    assert problems(demo_home) == []


def test_yaml_syntax_error_has_its_line(home: HomeBuilder) -> None:
    home.checklist("demo", DEMO.replace("  - id: extra\n", "  - id: [extra\n"))
    found = problems(home)
    assert len(found) == 1
    assert found[0].startswith("checklists/demo.yaml:21: YAML syntax error: expected ',' or ']'")


def test_duplicate_key_is_a_yaml_error(home: HomeBuilder) -> None:
    home.checklist("demo", DEMO.replace("id: demo\n", "id: demo\nid: again\n"))
    assert problems(home)[0].startswith("checklists/demo.yaml:2: YAML syntax error: found duplicate key \"id\"")


def test_unknown_keys_are_named_with_their_line(home: HomeBuilder) -> None:
    text = DEMO.replace("    optional: true\n", "    optional: true\n    optinal: false\n")
    home.checklist("demo", text.replace("expected_minutes: 10\n", "expected_minutes: 10\ncolour: blue\n"))
    found = problems(home)
    assert any("checklists/demo.yaml:5: unknown key 'colour'. Remove it or check its spelling" in p for p in found)
    assert any("checklists/demo.yaml:24: unknown key 'optinal' at /steps/1" in p for p in found)
    assert len(found) == 2


def test_missing_required_key(home: HomeBuilder) -> None:
    home.checklist("demo", DEMO.replace("    title: Gather the facts\n", ""))
    assert problems(home) == ["checklists/demo.yaml:11: missing required key 'title' at /steps/0. Add it."]


def test_invalid_done_when_schema(home: HomeBuilder) -> None:
    home.checklist("demo", DEMO.replace("summary: {type: string, minLength: 10}",
                                        "summary: {type: text, minLength: 10}"))
    found = problems(home)
    assert len(found) == 1
    assert found[0].startswith("checklists/demo.yaml:18: done_when of step 'gather' is not a valid JSON Schema "
                               "(draft 2020-12) at /steps/0/done_when/properties/summary/type")


def test_ref_to_missing_file(home: HomeBuilder) -> None:
    home.checklist("demo", DEMO.replace("done_when: {type: object, required: [note], properties: {note: {type: string}}}",
                                        "done_when: {$ref: schemas/note.json}"))
    assert problems(home) == ["checklists/demo.yaml:23: $ref 'schemas/note.json' points to checklists/schemas/note.json, "
                              "which does not exist. Create the file or fix the reference."]


def test_ref_outside_the_schema_folder(home: HomeBuilder) -> None:
    home.checklist("demo", DEMO.replace("done_when: {type: object, required: [note], properties: {note: {type: string}}}",
                                        "done_when: {$ref: ../../secrets.json}"))
    assert "must name a file under checklists/schemas/" in problems(home)[0]


def test_ref_file_that_is_not_a_schema(home: HomeBuilder) -> None:
    home.write("checklists/schemas/note.json", '{"type": 12}')
    home.checklist("demo", DEMO.replace("done_when: {type: object, required: [note], properties: {note: {type: string}}}",
                                        "done_when: {$ref: schemas/note.json}"))
    found = problems(home)
    assert "checklists/schemas/note.json (referenced here) is not a valid JSON Schema" in found[0]


def test_after_names_unknown_step(home: HomeBuilder) -> None:
    home.checklist("demo", DEMO.replace("after: [gather, extra]", "after: [gather, extar]"))
    assert problems(home) == ["checklists/demo.yaml:29: step 'review' waits for 'extar', which is not a step of this "
                              "checklist. Known steps: gather, extra, review."]


def test_cycle_is_reported(home: HomeBuilder) -> None:
    home.checklist("demo", DEMO.replace("    optional: true\n", "    optional: true\n    after: [review]\n"))
    found = problems(home)
    assert any("steps form a cycle through `after`" in p and "extra" in p and "review" in p for p in found), found


def test_undefined_role(home: HomeBuilder) -> None:
    home.checklist("demo", DEMO.replace("roles: [lead]", "roles: [leed]"))
    assert problems(home) == ["checklists/demo.yaml:27: role 'leed' is not defined in tiers/roles.yaml. "
                              "Defined roles: lead, reviewer."]


def test_distinct_from_must_come_earlier(home: HomeBuilder) -> None:
    home.checklist("demo", DEMO.replace("distinct_from: gather", "distinct_from: review"))
    assert "distinct_from 'review' is not a step that 'review' waits for" in problems(home)[0]


def test_step_without_gate(home: HomeBuilder) -> None:
    home.checklist("demo", DEMO.replace("    done_when: {type: object, required: [note], properties: {note: {type: string}}}\n", ""))
    assert "step 'extra' has no done_when gate" in problems(home)[0]


def test_template_syntax_error(home: HomeBuilder) -> None:
    home.checklist("demo", DEMO.replace('instructions: "Look at {{ data.ticket_id }}."',
                                        'instructions: "Look at {{ data.ticket_id }."'))
    assert problems(home)[0].startswith("checklists/demo.yaml:13: instructions of step 'gather': template syntax error")


def test_id_must_match_file_name(home: HomeBuilder) -> None:
    home.write("tiers/catalog.yaml", catalog_yaml("demo", "other"))
    home.write("checklists/other.yaml", DEMO)
    assert any(p.startswith("checklists/other.yaml:1: id 'demo' does not match the file name 'other.yaml'")
               for p in problems(home))


def test_checklist_missing_from_catalog_is_an_error(home: HomeBuilder) -> None:
    home.checklist("demo", DEMO)
    home.write("tiers/catalog.yaml", catalog_yaml("something-else"))
    found = problems(home)
    assert "checklists/demo.yaml:1: checklist 'demo' is not in tiers/catalog.yaml. Add an entry for it there " \
           "(id, title, area, owner, expected_minutes, facts)." in found


def test_catalog_entry_without_definition_is_an_error(home: HomeBuilder) -> None:
    home.checklist("demo", DEMO)
    home.write("tiers/catalog.yaml", catalog_yaml("demo", "later"))
    found = load_definitions(Home(home.root)).problems
    assert [p.severity for p in found] == ["error"]
    assert found[0].message == ("'later' is routed to tier 2 by rule rule_tier2_structured of "
                                "decisions/tier_routing.dmn for every run, but checklists/later.yaml does not exist, "
                                "so such a run can never start. Add the file, or change the rule so that it cannot "
                                "send this process there.")


def test_decide_needs_a_known_decision(home: HomeBuilder) -> None:
    home.checklist("demo", DEMO.replace("    optional: true\n", "    optional: true\n    decide: no_such_table\n"))
    assert problems(home)[0].startswith("checklists/demo.yaml:23: decision 'no_such_table' does not exist or failed "
                                        "to load (decisions/no_such_table.dmn). Available decisions: tier_routing.")


@pytest.mark.parametrize("broken, expected", [
    ("roles: [", "tiers/roles.yaml:1: YAML syntax error"),
    ("roles:\n  lead:\n    members: [alice]\n", "tiers/roles.yaml:3: /roles/lead/members/0: Value error, actor 'alice' is not valid"),
])
def test_roles_file_problems(home: HomeBuilder, broken: str, expected: str) -> None:
    home.checklist("demo", DEMO)
    home.write("tiers/roles.yaml", broken)
    assert any(p.startswith(expected) for p in problems(home)), problems(home)


def test_title_owner_and_expected_minutes_are_said_once(home: HomeBuilder) -> None:
    """The catalog and a checklist may not disagree on a process's title, owner or expected time:
    an error names both places; saying the same thing twice is a warning; said once, it is used."""
    home.write("tiers/catalog.yaml", catalog_yaml("demo", facts={"demo": {"title": "Demo", "expected_minutes": "10"}}))
    home.write("checklists/demo.yaml", DEMO)  # says title: Demo checklist, owner: lead, expected_minutes: 10
    found = load_definitions(Home(home.root)).problems
    assert [str(p) for p in found] == [
        "checklists/demo.yaml:2: title is 'Demo checklist' here but 'Demo' in the catalog (tiers/catalog.yaml:3). "
        "Say it once: remove `title` from this checklist (the catalog's is used), or make the two agree.",
        "checklists/demo.yaml:3: warning: owner is also said in the catalog (tiers/catalog.yaml:5). Say it once: "
        "remove it from this checklist; the catalog's is used.",
        "checklists/demo.yaml:4: warning: expected_minutes is also said in the catalog (tiers/catalog.yaml:6). Say "
        "it once: remove it from this checklist; the catalog's is used."]
    home.write("checklists/demo.yaml", "".join(line for line in DEMO.splitlines(keepends=True)
                                               if not line.startswith(("title:", "owner:", "expected_minutes:"))))
    definitions = load_definitions(Home(home.root))
    assert definitions.problems == []
    checklist = definitions.checklists["demo"].checklist
    assert (checklist.title, checklist.owner, checklist.expected_minutes) == ("Demo", "lead", 10)
    assert definitions.checklists["demo"].title == "Demo"
