"""What leads do to change an Engine's definitions: decision tests, a decision edit's impact on the
logged decisions, deployments and their diffs. A part of ``Engine`` (``class Engine(Authoring, ...)``).

    engine.decision_tests(["tier_routing"])
    engine.decision_impact("decisions/tier_routing.dmn")
    engine.deploy(actor="person:lead")
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tiergate import deployments
from tiergate import log as execution_log
from tiergate.actors import Actor
from tiergate.credentials import DIRECT
from tiergate.errors import NotFoundError

if TYPE_CHECKING:
    from tiergate.definitions.decision_tests import DecisionReport
    from tiergate.engine import Engine


class Authoring:
    """Testing, weighing and deploying definitions (``self`` is the Engine)."""

    def decision_tests(self: Engine, only: list[str] | None = None) -> list[DecisionReport]:
        from tiergate.definitions.decision_tests import DecisionReport, run_tests

        decisions = self.draft_definitions.decisions
        unknown = [d for d in only or [] if d not in decisions]
        if unknown:
            raise NotFoundError(f"no decision {', '.join(unknown)} in decisions/. Known: "
                                f"{', '.join(sorted(decisions)) or 'none'}.", details={"decisions": unknown})
        broken = [p for p in self.draft_definitions.errors if p.path.startswith("decisions/")]
        reports = []
        for problem in broken:
            report = DecisionReport(decision=Path(problem.path).stem, source=problem.path)
            report.problems.append(str(problem))
            reports.append(report)
        for decision_id in sorted(only or decisions):
            path = self.home.decisions_dir / "tests" / f"{decision_id}.yaml"
            reports.append(run_tests(decisions[decision_id], path, self.home.display(path)))
        return reports

    def decision_impact(self: Engine, new_file: str | Path, against: str | Path | None = None) -> dict[str, Any]:
        """Replay the logged decisions through an edited DMN file and the version in use (``against``,
        by default the deployed one); ``new_file`` may also be a decision id (its draft file)."""
        from tiergate.definitions.decisions import Decision
        from tiergate.impact import impact
        from tiergate.router import ROUTING_DECISION

        new_path = Path(new_file)
        if not new_path.suffix and not new_path.exists():
            new_path = self.home.decisions_dir / f"{new_file}.dmn"
        for path in (new_path, *([Path(against)] if against is not None else [])):
            if not path.is_file():
                raise NotFoundError(f"{path} does not exist. Give the edited DMN file (or a decision id), and "
                                    "--against the version in use if nothing is deployed.")
        decision_id = new_path.name.split(".")[0]
        new = Decision(id=decision_id, xml=new_path.read_bytes(), source=str(new_path), path=new_path)
        if against is None:
            xml, folder = deployments.deployed_decision(self, decision_id)
            old = Decision(id=decision_id, xml=xml, source=f"decisions/{decision_id}.dmn", imports=folder)
        else:
            old = Decision(id=decision_id, xml=Path(against).read_bytes(), source=str(against), path=Path(against))
        for decision in (new, old):
            decision.model.decision(decision_id)  # a clear error if the file lacks it
        with self.db.read() as conn:
            events = ["routed"] if decision_id == ROUTING_DECISION else ["decision_evaluated"]
            logged = [e for e in self._log_rows(execution_log.entries(conn, events=events))
                      if e["event"] == "routed" or e["detail"].get("decision") == decision_id]
        return impact(new, old, self.definitions.catalog, logged, self.home.root)

    def deploy(self: Engine, actor: str | Actor | None = None, from_number: int | None = None) -> dict[str, Any]:
        """Record the home's files (or deployment ``from_number``'s again) as the next deployment.

        A deployment the policy refuses has no run to log it in: it is a row of ``door_refusals``."""
        from tiergate.policy import ChangeRefused

        try:
            return deployments.deploy(self, actor, from_number=from_number)
        except ChangeRefused as err:
            from tiergate import doorlog

            who = self.actor(actor)
            doorlog.record(self, door=self.door_of(who), attempt="deploy", code=err.code,
                           problem=str(err.details.get("kind") or ",".join(err.details.get("kinds", []))) or None,
                           actor=who, credential=who.door or DIRECT)
            raise

    def deployments(self: Engine) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            return deployments.listing(conn)

    def decision_diff(self: Engine, old: str, new: str) -> dict[str, Any]:
        """Rules added, removed and changed per table between two deployments (numbers) or `drafts`."""
        return deployments.decision_diff(self, old, new)
