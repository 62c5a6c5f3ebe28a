"""Deployments: which definition files runs start from (``tiergate deploy``, ``tiergate deployments``).

The files in the home are drafts. ``deploy`` records all of them (``DEFINITION_FOLDERS``) as the
next numbered deployment in the database, with who deployed, when, what allowed it and what
changed against the deployment before (files, and decision rules cell by cell). From then on
``start`` uses the latest deployment; a run keeps the definition version it was pinned to at
start. Rolling back is deploying an earlier deployment's files again (``redeploy_of``).

A database without any deployment runs the files as they are, exactly as before deployments
existed; the first ``deploy`` of such a database is its bootstrap.

To load a deployment, its files are written once into ``<home>/.tiergate/deployed/<number>/``
(or a temporary folder when the home is read-only) and read from there like a home.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, insert, select
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from tiergate.errors import ConflictError, NotFoundError, UsageError
from tiergate.log import format_time
from tiergate.store.tables import Deployment, DeploymentFile

DEFINITION_FOLDERS = ("tiers", "checklists", "processes", "decisions")
MAX_FILES = 5000
MAX_BYTES = 50 * 1024 * 1024

_deployments = Deployment.__table__  # type: ignore[attr-defined]
_files = DeploymentFile.__table__  # type: ignore[attr-defined]


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_drafts(root: Path) -> dict[str, str]:
    """Every definition file of the home, by relative path (symlinks and hidden files left out)."""
    files: dict[str, str] = {}
    size = 0
    for folder in DEFINITION_FOLDERS:
        base = root / folder
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            relative = path.relative_to(root)
            if any(part.startswith(".") for part in relative.parts) or path.is_symlink() or not path.is_file():
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError) as err:
                raise UsageError(f"{relative.as_posix()} cannot be read as UTF-8 text ({err}). Definition folders "
                                 "hold text files only: move it out of the home.", code="deploy_invalid") from None
            size += len(text)
            files[relative.as_posix()] = text
            if len(files) > MAX_FILES or size > MAX_BYTES:
                raise UsageError(f"the definition folders hold more than {MAX_FILES} files or "
                                 f"{MAX_BYTES // 1024 // 1024} MB; a home is definitions only.", code="deploy_invalid")
    return files


def decision_files(files: dict[str, str]) -> dict[str, bytes]:
    return {Path(p).name[:-4]: text.encode("utf-8") for p, text in files.items()
            if p.startswith("decisions/") and p.count("/") == 1 and p.endswith(".dmn")}


def changes(old: dict[str, str], new: dict[str, str]) -> dict[str, Any]:
    """Files added, removed and changed, and the decisions' rule changes, from ``old`` to ``new``."""
    from tiergate.decision_diff import count_rule_changes, diff_decisions  # DMN loads only for a diff

    diffs = [d for d in diff_decisions(decision_files(old), decision_files(new)) if d["status"] != "same"]
    return {"files": {"added": sorted(set(new) - set(old)), "removed": sorted(set(old) - set(new)),
                      "changed": sorted(p for p in set(old) & set(new) if old[p] != new[p])},
            "rules": count_rule_changes(diffs), "decisions": diffs}


def latest(conn: Connection) -> dict[str, Any] | None:
    row = conn.execute(select(_deployments).order_by(_deployments.c.number.desc()).limit(1)).first()
    return dict(row._mapping) if row is not None else None


def latest_number(conn: Connection) -> int | None:
    value = conn.execute(select(func.max(_deployments.c.number))).scalar()
    return int(value) if value is not None else None


def get(conn: Connection, number: int) -> dict[str, Any]:
    row = conn.execute(select(_deployments).where(_deployments.c.number == number)).first()
    if row is None:
        top = conn.execute(select(func.max(_deployments.c.number))).scalar()
        raise NotFoundError(f"no deployment {number}. "
                            + (f"Deployments are numbered 1 to {top}; `tiergate deployments` lists them."
                               if top else "Nothing has been deployed yet (`tiergate deploy`)."),
                            details={"deployment": number})
    return dict(row._mapping)


def files_of(conn: Connection, deployment: dict[str, Any]) -> dict[str, str]:
    manifest: dict[str, str] = deployment["manifest"]
    bodies = {r.sha256: r.body for r in conn.execute(select(_files).where(_files.c.sha256.in_(set(manifest.values()))))}
    return {path: bodies[digest] for path, digest in manifest.items()}


def listing(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(select(_deployments).order_by(_deployments.c.number)).all()
    return [describe(dict(r._mapping)) for r in rows]


def describe(row: dict[str, Any]) -> dict[str, Any]:
    return {"number": row["number"], "at": format_time(row["at"]), "actor": row["actor"],
            "approval": row["approval"], "redeploy_of": row["redeploy_of"], "files": len(row["manifest"]),
            "changes": row["changes"]}


def store_files(conn: Connection, files: dict[str, str]) -> dict[str, str]:
    """Write the file texts the database lacks (by content hash); the manifest, path -> sha256."""
    manifest = {path: sha256(text) for path, text in files.items()}
    have = {r[0] for r in conn.execute(select(_files.c.sha256).where(_files.c.sha256.in_(set(manifest.values()))))}
    new = {digest: files[path] for path, digest in manifest.items() if digest not in have}
    if new:
        conn.execute(insert(_files), [{"sha256": d, "body": b} for d, b in new.items()])
    return manifest


def record(conn: Connection, *, number: int, at: datetime, actor: str, approval: dict[str, Any],
           files: dict[str, str], change: dict[str, Any], redeploy_of: int | None) -> None:
    """Write deployment ``number`` (which must be the next one) and the file texts it lacks."""
    manifest = store_files(conn, files)
    try:
        conn.execute(insert(_deployments).values(number=number, at=at, actor=actor, approval=approval,
                                                 manifest=manifest, changes=change, redeploy_of=redeploy_of))
    except SAIntegrityError:
        raise ConflictError(f"deployment {number} was recorded by someone else meanwhile. "
                            "Check `tiergate deployments` and deploy again.", details={"deployment": number}) from None


def safe_path(relative: str) -> bool:
    parts = relative.split("/")
    return parts[0] in DEFINITION_FOLDERS and len(parts) > 1 and "\\" not in relative and \
        all(part not in ("", ".", "..") and not part.startswith(".") for part in parts)


def materialize(root: Path, deployment: dict[str, Any], files: dict[str, str]) -> Path:
    """A folder holding the deployment's files (written once), to load like a home."""
    unsafe = sorted(p for p in files if not safe_path(p))
    if unsafe:   # the database is data: a path from it never leaves the folder
        raise UsageError(f"deployment {deployment['number']} names files outside the definition folders "
                         f"({', '.join(unsafe[:3])}); it was not written by tiergate deploy.",
                         code="deploy_invalid", details={"deployment": deployment["number"]})
    tag = hashlib.sha256("".join(sorted(f"{p}:{d}" for p, d in deployment["manifest"].items())).encode()).hexdigest()
    name = f"{deployment['number']}-{tag[:12]}"
    for parent in (root / ".tiergate" / "deployed", Path(tempfile.gettempdir()) / "tiergate-deployed"):
        target = parent / name
        if target.is_dir():
            return target
        try:
            parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=parent))
            for relative, text in files.items():
                path = staging / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
            try:
                os.replace(staging, target)
            except OSError:  # another process wrote it first
                shutil.rmtree(staging, ignore_errors=True)
            return target
        except OSError:
            continue
    raise UsageError(f"deployment {deployment['number']} could not be written to a folder to load it from "
                     f"({root / '.tiergate'} and the temporary folder are not writable).", code="deploy_invalid")


# --- what the engine does with them ---------------------------------------------------------

STAMPED_EVENTS = ("routed", "started", "decision_evaluated")


def stamp(events: list[Any], deployment: int | str | None) -> None:
    """Name the deployment in every entry that depends on a definition (beside its content hash)."""
    if deployment is None:
        return
    for event in events:
        if event.event in STAMPED_EVENTS:
            event.detail = {**event.detail, "deployment": deployment}
            event.detail_json = None


def run_deployment(conn: Connection, run_id: str) -> int | str | None:
    """The deployment a run was started from, as its ``started`` entry names it."""
    from tiergate import log as execution_log

    started = execution_log.entries(conn, run_id, events=["started"], limit=1)
    return started[0]["detail"].get("deployment") if started else None


def stamp_run(conn: Connection, run_id: str, events: list[Any]) -> None:
    """``stamp`` for a later move of a run: only read when the move evaluated a decision."""
    if any(e.event == "decision_evaluated" for e in events):
        stamp(events, run_deployment(conn, run_id))


def deploy(engine: Any, actor: Any, *, from_number: int | None = None) -> dict[str, Any]:
    """Record the home's files (or deployment ``from_number``'s, to roll back) as the next deployment."""
    from tiergate.definitions.home import Home, load_definitions

    who = engine.actor(actor)
    if who.kind != "human":
        raise UsageError(f"{who} cannot deploy: deployments are made by people (--actor human:NAME).",
                         code="actor_invalid")
    with engine.db.read() as conn:
        previous = latest(conn)
        old_files = files_of(conn, previous) if previous is not None else {}
        if from_number is not None:
            source = get(conn, from_number)
            files = files_of(conn, source)
    if from_number is None:
        files = read_drafts(engine.home.root)
        loaded = load_definitions(engine.home)
    else:
        loaded = load_definitions(Home(materialize(engine.home.root, source, files)))
    approval: dict[str, Any] = {"kind": "bootstrap"}
    if previous is not None:
        from tiergate.policy import ChangeRefused, deployed_policy, judge

        policy, roles = deployed_policy(engine.home.root, previous, old_files)
        authority = judge(policy, roles, str(who), changed_paths(old_files, files))
        if authority.approvers and from_number is None:
            raise ChangeRefused(
                f"this change needs the approval of a member of {', '.join(authority.approvers)} other than you "
                f"(tiers/policy.yaml of deployment {previous['number']}), so it cannot be deployed directly. "
                f"Propose it: `tiergate changes propose --actor {who} --note \"what and why\"`; once approved, "
                "tiergate deploys it.", code="approval_required",
                details={"approvers": authority.approvers, "kinds": sorted(authority.kinds),
                         "deployment": previous["number"]})
        approval = {"kind": "rollback", "to": from_number} if from_number is not None else {"kind": "direct"}
    return record_deployment(engine, str(who), files, loaded, previous, old_files, approval, from_number)


def changed_paths(old: dict[str, str], new: dict[str, str]) -> list[str]:
    return sorted(p for p in set(old) | set(new) if old.get(p) != new.get(p))


def record_deployment(engine: Any, actor: str, files: dict[str, str], loaded: Any, previous: dict[str, Any] | None,
                      old_files: dict[str, str], approval: dict[str, Any], redeploy_of: int | None) -> dict[str, Any]:
    """Check ``loaded`` (the definitions of ``files``) and record ``files`` as the deployment after ``previous``."""
    if loaded.errors:
        lines = "\n".join(f"  {p}" for p in loaded.errors[:20])
        raise UsageError(f"the definitions have {len(loaded.errors)} problem(s) and cannot be deployed:\n{lines}\n"
                         "Fix them (`tiergate check`) and deploy again.", code="definitions_invalid",
                         details={"problems": [p.to_dict() for p in loaded.errors]})
    if previous is not None and files == old_files:
        raise UsageError(f"nothing to deploy: the files are exactly deployment {previous['number']}.",
                         code="nothing_to_deploy", details={"deployment": previous["number"]})
    change = changes(old_files, files)   # DMN compiles here, before the write transaction
    number = (previous["number"] if previous is not None else 0) + 1
    now = engine.clock()
    with engine.db.write() as conn:
        record(conn, number=number, at=now, actor=actor, approval=approval, files=files, change=change,
               redeploy_of=redeploy_of)
        row = get(conn, number)
    engine.reload()
    return describe(row)


def source_files(engine: Any, which: str) -> tuple[str, dict[str, str]]:
    """The files of ``which``: a deployment number, or ``drafts`` (the home's files)."""
    if which == "drafts":
        return "drafts", read_drafts(engine.home.root)
    try:
        number = int(which)
    except ValueError:
        raise UsageError(f"'{which}' is neither a deployment number nor `drafts`. `tiergate deployments` lists "
                         "the numbers.", code="usage", details={"given": which}) from None
    with engine.db.read() as conn:
        return f"deployment {number}", files_of(conn, get(conn, number))


def decision_diff(engine: Any, old: str, new: str) -> dict[str, Any]:
    old_name, old_files = source_files(engine, old)
    new_name, new_files = source_files(engine, new)
    from tiergate.decision_diff import count_rule_changes, diff_decisions

    diffs = diff_decisions(decision_files(old_files), decision_files(new_files))
    return {"old": old_name, "new": new_name, "rules": count_rule_changes(diffs), "decisions": diffs}


def deployed_decision(engine: Any, decision_id: str) -> tuple[bytes, dict[str, bytes]]:
    """The deployed text of ``decisions/<decision_id>.dmn`` (for `decisions impact` without --against),
    and the deployed decisions/ files by name (what its imports name)."""
    with engine.db.read() as conn:
        current = latest(conn)
        if current is None:
            raise UsageError("nothing is deployed yet, so there is no deployed version to compare with. Give "
                             "the version in use with --against FILE, or deploy first (`tiergate deploy`).",
                             code="usage")
        files = files_of(conn, current)
    text = files.get(f"decisions/{decision_id}.dmn")
    if text is None:
        raise NotFoundError(f"deployment {current['number']} has no decisions/{decision_id}.dmn: the decision is new. "
                            "There is nothing logged to replay against.", details={"decision": decision_id})
    return text.encode("utf-8"), {f"{name}.dmn": xml for name, xml in decision_files(files).items()}
