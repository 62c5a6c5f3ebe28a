"""Each run is pinned to the definition version it started with."""

from __future__ import annotations

from typing import Any

from support import DEMO, HomeBuilder

GOOD = {"summary": "Payslip totals are off by one cent", "severity": "S2"}


def test_editing_a_checklist_changes_new_runs_only(demo_home: HomeBuilder, make_engine: Any) -> None:
    old_engine = make_engine(demo_home)
    old = old_engine.start("demo", {"ticket_id": "T-1"}, actor="agent:bot")
    # The team tightens the gate: severity S1..S2 only, and adds a field.
    demo_home.checklist("demo", DEMO.replace("enum: [S1, S2, S3, S4]", "enum: [S1, S2]")
                        .replace("required: [summary, severity]", "required: [summary, severity, owner]"))
    engine = make_engine(demo_home)  # a fresh process reads the new file
    new = engine.start("demo", {"ticket_id": "T-2"}, actor="agent:bot")
    assert new.definition_version != old.definition_version
    # The old run still follows the old gate ...
    engine.complete(old.id, "gather", {"summary": GOOD["summary"], "severity": "S4"}, actor="agent:bot")
    # ... and the new run the new one.
    try:
        engine.complete(new.id, "gather", {"summary": GOOD["summary"], "severity": "S4"}, actor="agent:bot")
    except Exception as err:  # noqa: BLE001 - the assertion below names what we expect
        assert getattr(err, "code", None) == "gate_failed"
        assert {e["pointer"] for e in err.details["errors"]} == {"/owner", "/severity"}  # type: ignore[attr-defined]
    else:
        raise AssertionError("the new gate was not applied to the new run")
    versions = {e["version"] for e in engine.log(old.id)}
    assert versions == {old.definition_version}


def test_a_run_survives_its_file_being_deleted(demo_home: HomeBuilder, make_engine: Any) -> None:
    run = make_engine(demo_home).start("demo", {"ticket_id": "T-1"}, actor="agent:bot")
    (demo_home.root / "checklists" / "demo.yaml").unlink()
    engine = make_engine(demo_home)
    engine.complete(run.id, "gather", GOOD, actor="agent:bot")
    assert engine.status(run.id).title == "Demo checklist"


def test_a_changed_referenced_schema_is_a_new_version(home: HomeBuilder, make_engine: Any) -> None:
    home.write("checklists/schemas/note.json", '{"type": "object", "required": ["note"]}')
    home.checklist("refd", """\
        id: refd
        title: Uses a shared schema
        owner: lead
        expected_minutes: 5
        steps:
          - id: only
            title: Only
            done_when: {$ref: schemas/note.json}
        """)
    first = make_engine(home).start("refd", {}, actor="agent:bot")
    home.write("checklists/schemas/note.json", '{"type": "object", "required": ["note", "link"]}')
    engine = make_engine(home)
    second = engine.start("refd", {}, actor="agent:bot")
    assert first.definition_version != second.definition_version
    assert engine.complete(first.id, "only", {"note": "x"}, actor="agent:bot").status == "completed"
