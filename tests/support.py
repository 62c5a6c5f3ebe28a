"""Helpers shared by the tests (the fixtures live in conftest.py)."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "tests" / "data"
PG_ADMIN_URL = os.environ.get("TIERGATE_TEST_DATABASE_URL", "")
BACKEND = "postgresql" if PG_ADMIN_URL.startswith("postgresql") else "sqlite"
# One template per test session, so suites sharing a PostgreSQL server do not collide.
TEMPLATE_DB = f"tiergate_test_template_{os.getpid()}"


ROLES = """\
roles:
  lead:
    description: Leads the team.
    members: [human:alice, human:bob]
  reviewer:
    description: Reviews work.
    members: [human:carol, agent:reviewer-bot]
"""


SHARED_FACTS = ("title", "owner", "expected_minutes")


def catalog_yaml(*ids: str, facts: dict[str, dict[str, str]] | None = None) -> str:
    """A catalog of ``ids``; ``facts`` gives a process's title, owner or expected_minutes (as YAML text)."""
    def fact(pid: str, name: str, default: str) -> str:
        return (facts or {}).get(pid, {}).get(name, default)

    entries = "".join(textwrap.dedent(f"""\
      - id: {pid}
        title: {fact(pid, "title", pid.replace('-', ' ').title())}
        area: testing
        owner: {fact(pid, "owner", "lead")}
        expected_minutes: {fact(pid, "expected_minutes", "15")}
        facts: {{compliance_critical: false, touches_live_systems: false, client_data: false, structured: true}}
    """) for pid in ids)
    return "processes:\n" + textwrap.indent(entries, "  ")


def split_shared_facts(text: str) -> tuple[str, dict[str, str]]:
    """A checklist's text with its top-level title, owner and expected_minutes moved out, and those facts.

    Each fact is said once: tests write them in the checklist, the builder moves them to the catalog.
    A moved line stays as a comment, so the lines of the file stay where the test wrote them.
    """
    kept, found = [], {}
    for line in textwrap.dedent(text).splitlines(keepends=True):
        name, sep, value = line.partition(":")
        if sep and name in SHARED_FACTS and not line.startswith(" "):
            found[name] = value.strip()
            kept.append(f"# {name}: in the catalog\n")
        else:
            kept.append(line)
    return "".join(kept), found


class HomeBuilder:
    """Writes a small home folder for one test."""

    def __init__(self, root: Path):
        self.root = root
        self.facts: dict[str, dict[str, str]] = {}
        (root / "tiers").mkdir(parents=True, exist_ok=True)
        (root / "checklists" / "schemas").mkdir(parents=True, exist_ok=True)
        self.write("tiers/roles.yaml", ROLES)
        # Every home routes with the platform's own routing table.
        for relative in ("decisions/tier_routing.dmn", "decisions/tests/tier_routing.yaml"):
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            (root / relative).write_bytes((REPO / relative).read_bytes())

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    def checklist(self, process_id: str, text: str, *, catalog: bool = True) -> Path:
        """Write ``checklists/<id>.yaml``; with ``catalog``, list every checklist in the catalog, with the
        title, owner and expected_minutes the checklist text gives moved there (one source for each)."""
        if catalog:
            text, facts = split_shared_facts(text)
            self.facts[process_id] = facts
        path = self.write(f"checklists/{process_id}.yaml", text)
        if catalog:
            ids = sorted({p.stem for p in (self.root / "checklists").glob("*.yaml")})
            self.write("tiers/catalog.yaml", catalog_yaml(*ids, facts=self.facts))
        return path


DEMO = """\
id: demo
title: Demo checklist
owner: lead
expected_minutes: 10
inputs:
  type: object
  required: [ticket_id]
  properties:
    ticket_id: {type: string, pattern: "^T-[0-9]+$"}
steps:
  - id: gather
    title: Gather the facts
    instructions: "Look at {{ data.ticket_id }}."
    done_when:
      type: object
      required: [summary, severity]
      properties:
        summary: {type: string, minLength: 10}
        severity: {enum: [S1, S2, S3, S4]}
  - id: extra
    title: Optional extra check
    optional: true
    done_when: {type: object, required: [note], properties: {note: {type: string}}}
  - id: review
    title: Review by a person
    actors: [human]
    roles: [lead]
    distinct_from: gather
    after: [gather, extra]
    done_when:
      type: object
      required: [approved]
      properties: {approved: {const: true}}
"""


class CLIResult:
    def __init__(self, proc: subprocess.CompletedProcess[str]):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)

    def __repr__(self) -> str:
        return f"<exit {self.returncode}\nstdout: {self.stdout}\nstderr: {self.stderr}>"


# Reading a run back in tests: its row, its log as (step, event, actor), its step states.
def row(engine: Any, run_id: str) -> dict[str, Any]:
    import sqlalchemy as sa

    with engine.db.read() as conn:
        return dict(conn.execute(sa.text("SELECT * FROM runs WHERE id = :id"), {"id": run_id}).one()._mapping)


def events(engine: Any, run_id: str) -> list[tuple[str | None, str, str]]:
    return [(e["step"], e["event"], e["actor"]) for e in engine.log(run_id)]


def states(engine: Any, run_id: str) -> dict[str, str]:
    return {s.id: s.state for s in engine.status(run_id).steps}


@contextmanager
def turned_off(flag: ContextVar[bool]) -> Iterator[None]:
    """``flag`` (a shortcut's ``ENABLED``) False inside the block: the engine's full computation runs."""
    token = flag.set(False)
    try:
        yield
    finally:
        flag.reset(token)
