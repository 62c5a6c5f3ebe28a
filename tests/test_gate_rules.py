"""Issue 12, "gates that mean what they say": formats checked, keywords and impossible gates refused,
references resolved, $id refused, nothing read from outside the home, and a broken pinned gate
answered (logged, run unchanged) instead of crashing `complete`."""

from __future__ import annotations

import json
from typing import Any, Callable

import pytest
import sqlalchemy as sa

from support import DEMO, HomeBuilder, row
from tiergate.definitions.home import Home, load_definitions
from tiergate.engine import Engine
from tiergate.errors import GateFailedError, RefusedError
from tiergate.jsonutil import content_hash


def problems(home: HomeBuilder) -> list[str]:
    return [str(p) for p in load_definitions(Home(home.root)).problems]


def with_gate(gate: str) -> str:
    """DEMO with the gather step's done_when replaced by ``gate`` (YAML flow text)."""
    start = DEMO.index("    done_when:\n      type: object\n      required: [summary, severity]")
    end = DEMO.index("  - id: extra")
    return DEMO[:start] + f"    done_when: {gate}\n" + DEMO[end:]


FORMATS = ('{type: object, properties: {email: {format: email}, link: {format: uri}, host: {format: hostname}, '
           'at: {format: date-time}, took: {format: duration}}}')


@pytest.mark.parametrize("field, bad, good", [
    ("email", "alice@", "alice@example.com"), ("email", "not an address", "a.b+c@mail.example.org"),
    ("link", "not a uri", "https://example.com/x"), ("host", "-bad-.example", "api.example.com"),
    ("at", "last tuesday-ish", "2026-12-06T10:00:00Z"), ("took", "a while", "P3DT4H"),
])
def test_formats_are_asserted(home: HomeBuilder, make_engine: Callable[..., Engine], field: str, bad: str,
                              good: str) -> None:
    home.checklist("demo", with_gate(FORMATS))
    engine = make_engine(home)
    assert engine.check() == []
    run = engine.start("demo", {"ticket_id": "T-1"}, actor="agent:a")
    with pytest.raises(GateFailedError) as err:
        engine.complete(run.id, "gather", {field: bad}, actor="agent:a")
    assert err.value.details["errors"][0]["keyword"] == "format"
    assert engine.complete(run.id, "gather", {field: good}, actor="agent:a").steps[0].state == "done"


def test_the_shipped_timestamp_refuses_prose(repo_home: Any, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(repo_home)
    definition = engine.definitions.checklist("standard-data-import")
    gate = {"type": "object", "properties": {"at": {"$ref": "schemas/common.json#/$defs/timestamp"}}}
    from tiergate.gates import gate_errors

    assert gate_errors(definition.validator(gate), {"at": "last tuesday-ish"})[0]["keyword"] == "format"
    assert gate_errors(definition.validator(gate), {"at": "2026-12-06T10:00:00+01:00"}) == []


@pytest.mark.parametrize("gate, expected", [
    ("{type: object, properties: {n: {type: integer, minimun: 1}}}",
     "checklists/demo.yaml:14: done_when of step 'gather': 'minimun' at /steps/0/done_when/properties/n is not a "
     "JSON Schema keyword, so it would check nothing: check its spelling, or put an annotation of your own under an "
     "x- key (x-minimun)."),
    ("{type: object, required: [x], additionalProperties: false, properties: {y: {type: string}}}",
     "checklists/demo.yaml:14: done_when of step 'gather': 'x' is required at /steps/0/done_when but "
     "additionalProperties: false forbids it (it is not under properties), so no evidence can ever pass."),
    ("{$id: 'https://example.com/g', type: object}",
     "checklists/demo.yaml:14: done_when of step 'gather': $id at /steps/0/done_when is not allowed in a gate"),
    ("{type: object, properties: {a: {$ref: '#/$defs/missing'}}}",
     "checklists/demo.yaml:14: the gate: $ref '#/$defs/missing' (/steps/0/done_when/properties/a/$ref) does not "
     "resolve"),
    ("{type: object, properties: {a: {$ref: 'schemas/shared.json#/$defs/nope'}}}",
     "checklists/demo.yaml:14: the gate: $ref 'schemas/shared.json#/$defs/nope' "
     "(/steps/0/done_when/properties/a/$ref) does not resolve"),
])
def test_check_refuses_gates_that_would_not_check_what_they_say(home: HomeBuilder, gate: str, expected: str) -> None:
    home.write("checklists/schemas/shared.json", json.dumps({"$defs": {"name": {"type": "string"}}}))
    home.checklist("demo", with_gate(gate))
    found = problems(home)
    assert any(p.startswith(expected) for p in found), found


def test_annotations_under_x_and_known_formats_pass(home: HomeBuilder) -> None:
    home.write("checklists/schemas/shared.json", json.dumps({"$defs": {"name": {"type": "string"}}}))
    home.checklist("demo", with_gate("{type: object, x-owner: qa, properties: {a: {$ref: 'schemas/shared.json#/$defs"
                                     "/name'}, b: {type: string, format: email, x-hint: work address}}}"))
    assert problems(home) == []


def test_an_unknown_format_is_a_warning(home: HomeBuilder) -> None:
    home.checklist("demo", with_gate("{type: object, properties: {a: {format: postcode}}}"))
    found = load_definitions(Home(home.root)).problems
    assert [p.severity for p in found] == ["warning"] and "format 'postcode'" in found[0].message


def test_a_schema_link_that_leaves_the_home_is_not_read(home: HomeBuilder, tmp_path: Any, cli: Any) -> None:
    secret = tmp_path / "secret.json"
    secret.write_text('{"password": "hunter2-do-not-print"}\n', encoding="utf-8")
    (home.root / "checklists" / "schemas" / "leak.json").symlink_to(secret)
    home.checklist("demo", with_gate("{$ref: schemas/leak.json}"))
    found = problems(home)
    assert any("$ref 'schemas/leak.json' leads outside the home" in p for p in found), found
    result = cli("check", home=home)
    assert result.returncode == 1 and "hunter2" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


# --- a broken gate pinned before check knew better: answered, logged, run unchanged ----------------

def _pin_broken_gate(engine: Engine, run_id: str, gate: dict[str, Any]) -> None:
    """Pin the run to a copy of its definition whose first gate is ``gate`` (as an old check let through)."""
    from tiergate.store.tables import Definition, Run

    definitions, runs = Definition.__table__, Run.__table__  # type: ignore[attr-defined]
    with engine.db.write() as conn:
        current = conn.execute(sa.select(runs.c.definition_version).where(runs.c.id == run_id)).scalar_one()
        body = conn.execute(sa.select(definitions.c.body).where(definitions.c.version == current)).scalar_one()
        body["checklist"]["steps"][0]["done_when"] = gate
        version = content_hash(body)
        conn.execute(definitions.insert().values(version=version, process_id="demo", kind="checklist",
                                                 source="checklists/demo.yaml", body=body,
                                                 created_at=engine.clock()))
        conn.execute(runs.update().where(runs.c.id == run_id).values(definition_version=version))


@pytest.mark.parametrize("gate", [
    {"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}},
    {"$id": "https://example.com/gate", "type": "object", "properties": {"a": {"$ref": "schemas/x.json"}}},
])
def test_a_broken_pinned_gate_never_crashes_complete(engine: Engine, make_engine: Callable[..., Engine],
                                                      demo_home: HomeBuilder, cli: Any, gate: dict[str, Any]) -> None:
    run = engine.start("demo", {"ticket_id": "T-1"}, actor="agent:a")
    _pin_broken_gate(engine, run.id, gate)
    fresh = make_engine(demo_home)
    before = row(fresh, run.id)
    with pytest.raises(RefusedError) as err:
        fresh.complete(run.id, "gather", {"a": 1}, actor="agent:a")
    assert err.value.reason == "gate_broken"
    assert row(fresh, run.id)["state"] == before["state"]
    assert fresh.log(run.id)[-1]["event"] == "refused"
    answer = cli("complete", run.id, "gather", "--evidence", '{"a": 1}', "--actor", "agent:a", "--json",
                 home=demo_home)
    assert answer.returncode == 1 and "Traceback" not in answer.stderr
    assert answer.json["error"]["details"]["reason"] == "gate_broken"
    assert fresh.cancel(run.id, "its gate is broken", actor="human:alice").status == "cancelled"
