"""The built-in Tier 1 process ``definition-change``: a change that needs approval, from proposal to deployment.

    info = propose(engine, "human:alice", "P3 for gold clients' S2 tickets")   # the run, at `approve`
    engine.complete(info.id, "approve", {"approved": True}, actor="human:bob")  # the engine deploys

``propose`` checks the author's authority against the deployed ``tiers/policy.yaml``, stores the
drafts' texts in the database (by content hash), and starts a run whose data holds exactly those
files (``files``: path -> sha256), the deployment they were compared with (``base``), what changed
(``changes``: files, and decision rules cell by cell) and the roles that must approve
(``approvers``). The author completes ``propose``; then the engine does its own steps
(``advance``): ``test`` (``tiergate test`` on the proposed files), ``impact`` (``tiergate
decisions impact`` of every changed table against the base), and after the approval ``deploy``
(exactly the proposed files, naming this run in the deployment's ``approval``).

The slow steps run in a child process with a time and memory budget (``change_check_seconds``,
``change_check_megabytes`` in ``tiergate.limits``), outside any transaction; only their results
are written, as the step's evidence.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tiergate import deployments
from tiergate.errors import DefinitionError, RefusedError, TiergateError, UsageError

if TYPE_CHECKING:
    from tiergate.bpmn.definition import BpmnDefinition
    from tiergate.engine import Engine, RunInfo

CHANGE_PROCESS = "definition-change"
BPMN_FILE = Path(__file__).parent / "builtin" / "definition-change.bpmn"
ENGINE_STEPS = ("test", "impact", "deploy")
MAX_CHANGES_BYTES = 128 * 1024
MAX_LISTED = 20


@lru_cache(maxsize=1)
def change_definition() -> BpmnDefinition:
    from tiergate.bpmn.definition import load_process

    definition, problems = load_process(BPMN_FILE.read_bytes(), "tiergate/builtin/definition-change.bpmn",
                                        CHANGE_PROCESS, builtin=True)
    if definition is None:
        raise DefinitionError("the built-in definition-change process does not load: "
                              + "; ".join(str(p) for p in problems), code="definition_invalid")
    return definition


def propose(engine: Engine, actor: Any, note: str) -> RunInfo:
    """Start a ``definition-change`` run for the home's drafts, by their author; returns it after the engine's steps."""
    from tiergate.definitions.home import load_definitions
    from tiergate.policy import deployed_policy, judge

    who = engine.actor(actor)
    if who.kind != "human":
        raise UsageError(f"{who} cannot propose a change: changes are made by people (--actor human:NAME).",
                         code="actor_invalid")
    if not note or not note.strip():
        raise UsageError("a proposal needs a note (--note): what the change is and why. The approver reads it.",
                         code="reason_missing")
    with engine.db.read() as conn:
        previous = deployments.latest(conn)
        old_files = deployments.files_of(conn, previous) if previous is not None else {}
    if previous is None:
        raise UsageError("nothing is deployed yet, so there is nothing to change: the first deployment is the "
                         "bootstrap (`tiergate deploy --actor human:NAME`).", code="usage")
    files = deployments.read_drafts(engine.home.root)
    paths = deployments.changed_paths(old_files, files)
    if not paths:
        raise UsageError(f"nothing to propose: the files are exactly deployment {previous['number']}.",
                         code="nothing_to_deploy", details={"deployment": previous["number"]})
    policy, roles = deployed_policy(engine.home.root, previous, old_files)
    authority = judge(policy, roles, str(who), paths)
    if not authority.approvers:
        raise UsageError(f"this change needs no approval under the deployed tiers/policy.yaml"
                         f"{'' if policy is not None else ' (there is none)'}: deploy it with `tiergate deploy "
                         f"--actor {who}`.", code="approval_not_needed", details=authority.to_dict())
    loaded = load_definitions(engine.home)
    if loaded.errors:
        lines = "\n".join(f"  {p}" for p in loaded.errors[:20])
        raise UsageError(f"the definitions have {len(loaded.errors)} problem(s) and cannot be proposed:\n{lines}\n"
                         "Fix them (`tiergate check`) and propose again.", code="definitions_invalid",
                         details={"problems": [p.to_dict() for p in loaded.errors]})
    change = deployments.changes(old_files, files)   # DMN compiles here, before any transaction
    if len(json.dumps(change)) > MAX_CHANGES_BYTES:
        change = {**change, "decisions": [], "decisions_omitted": True}
    with engine.db.write() as conn:
        manifest = deployments.store_files(conn, files)
    data = {"author": str(who), "base": previous["number"], "files": manifest, "changes": change,
            "approvers": authority.approvers, "kinds": sorted(authority.kinds)}
    info = engine.start_builtin(change_definition(), data, who)
    return engine.complete(info.id, "propose", {"note": note.strip()}, actor=who)


def advance(engine: Engine, info: RunInfo) -> RunInfo:
    """Do every step of the run that is the engine's own and ready: test, impact, deploy."""
    for _ in range(len(ENGINE_STEPS) + 1):
        ready = [s.id for s in info.ready_steps if s.id in ENGINE_STEPS]
        if not ready:
            return info
        step = ready[0]
        evidence = {"test": _test, "impact": _impact, "deploy": _deploy}[step](engine, info)
        try:
            info = engine.complete_by_engine(info.id, step, evidence)
        except RefusedError:   # done meanwhile by another process of the engine: read it again
            info = engine.status(info.id)
    return info


# --- the engine's steps --------------------------------------------------------------------

def _proposed_files(engine: Engine, info: RunInfo) -> dict[str, str]:
    deployment = {"number": f"change-{info.id}", "manifest": info.data["files"]}
    with engine.db.read() as conn:
        return deployments.files_of(conn, deployment)


def _write(folder: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        if not deployments.safe_path(relative):
            raise UsageError(f"the change names a file outside the definition folders ({relative}).",
                             code="deploy_invalid")
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


def _child(args: list[str], home: Path, database_url: str) -> dict[str, Any]:
    """Run ``tiergate ARGS --json`` in a child process within the change budgets; its envelope."""
    from tiergate.limits import limit

    env = {k: v for k, v in os.environ.items() if k not in ("TIERGATE_URL", "TIERGATE_TOKEN", "TIERGATE_HOME")}
    env["TIERGATE_DATABASE_URL"] = database_url
    megabytes = int(limit("change_check_megabytes"))

    def budget() -> None:   # in the child, before it starts: its memory may not grow past the budget
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (megabytes * 1024 * 1024, megabytes * 1024 * 1024))

    try:
        done = subprocess.run([sys.executable, "-m", "tiergate", "--home", str(home), *args, "--json"],
                              capture_output=True, text=True, env=env, timeout=float(limit("change_check_seconds")),
                              preexec_fn=budget if sys.platform != "win32" else None, check=False)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": {"code": "limit_exceeded", "message": (
            f"did not finish within change_check_seconds ({limit('change_check_seconds')} s)"), "details": {}}}
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"ok": False, "error": {"code": "internal_error", "message": (
            f"exited {done.returncode} without an answer (over change_check_megabytes?): {tail[0][:300]}"),
            "details": {}}}
    return answer if isinstance(answer, dict) else {"ok": False, "error": {"code": "internal_error",
                                                                            "message": "not an envelope"}}


def _test(engine: Engine, info: RunInfo) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tiergate-change-") as folder:
        home = _write(Path(folder) / "home", _proposed_files(engine, info))
        answer = _child(["test"], home, f"sqlite:///{Path(folder) / 'test.db'}")
    report = answer.get("data") if answer.get("ok") else answer.get("error", {}).get("details")
    if not isinstance(report, dict) or "passed" not in report:
        message = answer.get("error", {}).get("message", "no report")
        return {"tests_passed": False, "tests": {"error": message}}
    failures = [f"{r['source']}:{f['line']}: {f['case']}: {f['message']}" for r in report["decisions"]
                for f in r["failures"]] + [f"{f['at']}: {f['scenario']}: {f['message']}" for r in report["scenarios"]
                                           for f in r["failures"]]
    failures += [p for r in report["decisions"] + report["scenarios"] for p in r["problems"]]
    coverage = report["coverage"]
    return {"tests_passed": bool(report["ok"]), "tests": {
        "passed": report["passed"], "failed": report["failed"], "failures": failures[:MAX_LISTED],
        "not_reached": [{"process": c["process"], "steps": c["uncovered_steps"], "flows": c["uncovered_flows"]}
                        for c in coverage["processes"] if c["uncovered_steps"] or c["uncovered_flows"]][:MAX_LISTED]
        + [{"decision": c["decision"], "rules": c["uncovered_rules"]}
           for c in coverage["decisions"] if c["uncovered_rules"]][:MAX_LISTED]}}


def _impact(engine: Engine, info: RunInfo) -> dict[str, Any]:
    changed = info.data["changes"]["files"]
    tables = [p for p in changed["changed"] if p.startswith("decisions/") and p.count("/") == 1 and p.endswith(".dmn")]
    found: list[dict[str, Any]] = [{"decision": Path(p).stem, "new": True} for p in changed["added"]
                                   if p.startswith("decisions/") and p.count("/") == 1 and p.endswith(".dmn")]
    if not tables:
        return {"impact": found}
    with engine.db.read() as conn:
        base = deployments.get(conn, int(info.data["base"]))
        old = deployments.files_of(conn, base)
    with tempfile.TemporaryDirectory(prefix="tiergate-change-") as folder:
        home = _write(Path(folder) / "home", _proposed_files(engine, info))
        before = _write(Path(folder) / "before", old)
        for path in tables:
            answer = _child(["decisions", "impact", str(home / path), "--against", str(before / path)], home,
                            engine.database_url)
            if answer.get("ok"):
                data = answer["data"]
                found.append({"decision": Path(path).stem, "replayed": data["replayed"], "changed": data["changed"],
                              "examples": data["examples"][:3], "catalog": data["catalog"][:MAX_LISTED]})
            else:
                found.append({"decision": Path(path).stem, "error": answer.get("error", {}).get("message", "")})
    return {"impact": found}


def _deploy(engine: Engine, info: RunInfo) -> dict[str, Any]:
    from tiergate.definitions.home import Home, load_definitions

    with engine.db.read() as conn:
        latest = deployments.latest(conn)
        old_files = deployments.files_of(conn, latest) if latest is not None else {}
    if latest is not None and latest["approval"].get("run") == info.id:   # deployed, then interrupted
        return {"deployment": latest["number"]}
    if latest is None or latest["number"] != info.data["base"]:
        return {"deployment": None, "deploy_error": (
            f"deployment {latest['number'] if latest else None} was made after this change was proposed against "
            f"deployment {info.data['base']}; what was approved is no longer what would change. Propose it again.")}
    approve = next(s for s in info.steps if s.id == "approve")
    files = _proposed_files(engine, info)
    approval = {"kind": "change", "run": info.id, "author": info.data["author"], "approved_by": approve.actor}
    try:
        with tempfile.TemporaryDirectory(prefix="tiergate-change-") as folder:
            loaded = load_definitions(Home(_write(Path(folder), files)))
            row = deployments.record_deployment(engine, str(approve.actor), files, loaded, latest, old_files,
                                                approval, None)
    except TiergateError as err:
        return {"deployment": None, "deploy_error": err.message}
    return {"deployment": row["number"]}
