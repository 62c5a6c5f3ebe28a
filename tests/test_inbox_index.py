"""The inbox answers from ``runs.ready_for`` (written with each run's state) exactly what reading
every active run answered, for the platform's own processes, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, cast

import sqlalchemy as sa
import yaml

from support import REPO
from test_tier1_platform_files import WALKS, _actor, model
from tiergate.actors import Actor
from tiergate.engine import Engine
from tiergate.errors import TiergateError
from tiergate.guidance.context import _may_act
from tiergate.store.tables import Claim, Run

OUTSIDERS = ("agent:stranger", "human:ivan", "agent:platform-bot", "human:nobody")


def _every_active_run(engine: Engine, who: str) -> list[tuple[str, str, str | None]]:
    """The inbox as it was answered before the index: every active run read and judged."""
    actor = Actor.parse(who)
    with engine.db.read() as conn:
        claims = {(r.run_id, r.step): r.claimed_by for r in conn.execute(sa.select(Claim.__table__))}
    found = []
    for listed in engine.runs(status="active"):
        info = engine.status(listed["id"])
        for view in info.steps:
            if view.state != "ready" or view.decide is not None:
                continue
            holder = claims.get((info.id, view.id))
            if _may_act(view, cast(Any, info), actor, engine.roles)[0] and holder in (None, who):
                found.append((info.id, view.id, holder))
    return sorted(found)


def _indexed(engine: Engine, who: str) -> list[tuple[str, str, str | None]]:
    return sorted((i["run"], i["step"], i["claimed_by"]) for i in engine.inbox(who))


def _checklist_runs(engine: Engine) -> None:
    """Each scenario of checklists/tests, stopped half-way (so its runs are still active)."""
    for path in sorted((REPO / "checklists" / "tests").glob("*.yaml")):
        process = path.stem
        for scenario in yaml.safe_load(path.read_text())["scenarios"]:
            run = engine.start(process, scenario.get("start") or {}, actor=scenario["actor"]).id
            actions = [s for s in scenario["steps"] if "complete" in s or "skip" in s]
            for action in actions[: len(actions) // 2]:
                who = action.get("actor", scenario["actor"])
                try:
                    if "complete" in action:
                        engine.complete(run, action["complete"], action.get("evidence", {}), actor=who)
                    else:
                        engine.skip(run, action["skip"], action.get("reason", "not needed"), actor=who)
                except TiergateError:
                    pass  # a refusal or failed gate the scenario expects


def _tier1_runs(engine: Engine) -> None:
    """Each walk of the Tier 1 platform tests, up to its first timer or message, or half-way."""
    for walk in WALKS.values():
        m = model(walk.process)
        run = engine.start(walk.process, {}, actor=_actor(m, walk.steps[0][0], {})).id
        done_by: dict[str, str] = {}
        for step, evidence in walk.steps[: max(1, len(walk.steps) // 2)]:
            if step in ("timer", "message"):
                break
            who = _actor(m, step, done_by)
            engine.complete(run, step, evidence, actor=who)
            done_by[step] = who


def test_the_inbox_answers_as_reading_every_active_run_did(repo_home: Path,
                                                           make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(repo_home)
    _checklist_runs(engine)
    _tier1_runs(engine)
    engine.start("knowledge-qa", {"question": "Is the lower earnings limit changing?"}, actor="agent:kb-bot")
    roles = engine.roles
    assert roles is not None
    principals = sorted({m for role in roles.roles.values() for m in role.members} | set(OUTSIDERS))
    first = engine.inbox(principals[0])
    if first:  # a claim: the holder still sees the step, others do not
        engine.claim(first[0]["run"], first[0]["step"], actor=principals[0])
    seen = 0
    for who in principals:
        assert _indexed(engine, who) == _every_active_run(engine, who), who
        seen += len(_indexed(engine, who))
    assert seen > 20  # the runs left work for many of them

    # Runs written before the column existed (NULL) are read and judged as before.
    runs = Run.__table__
    with engine.db.write() as conn:
        active = [r for (r,) in conn.execute(sa.select(runs.c.id).where(runs.c.status == "active"))]
        conn.execute(sa.update(runs).where(runs.c.id.in_(active[::2])).values(ready_for=None))
    for who in principals:
        assert _indexed(engine, who) == _every_active_run(engine, who), who


def test_the_key_names_the_ready_steps_roles_and_kinds(repo_home: Path, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(repo_home)
    run = engine.start("support-triage", {"ticket_id": "SUP-10234", "client_id": "CL-0042", "client_tier": "gold",
                                          "summary": "Payslips show the wrong overtime rate"},
                       actor="agent:triage-bot").id
    with engine.db.read() as conn:
        key = conn.execute(sa.select(Run.__table__.c.ready_for).where(Run.__table__.c.id == run)).scalar()
    ready = engine.status(run).ready_steps
    assert key.startswith("|") and key.endswith("|")
    for view in ready:
        for role in view.roles or ["*"]:
            for kind in view.actors or ["*"]:
                assert f"|{role}/{kind}|" in key
    engine.cancel(run, "a test", actor="human:alice")
    with engine.db.read() as conn:
        assert conn.execute(sa.select(Run.__table__.c.ready_for).where(Run.__table__.c.id == run)).scalar() == "|"
