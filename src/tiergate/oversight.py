"""What leads and operators read of an Engine: runs, the log and its proof, data stores, metrics, gaps
and the report. A part of ``Engine`` (``class Engine(Oversight, ...)``); each method reads only.

    engine.runs(process="support-triage", status="active")
    engine.log(run_id)            # the run's entries, oldest first
    engine.verify_log()           # {"ok": ..., "broken": ...}
    engine.metrics(since="2026-12-01")
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tiergate import log as execution_log
from tiergate.actors import SYSTEM, canonical_actor
from tiergate.errors import UsageError
from tiergate.lifecycle import RunStatus
from tiergate.log import format_time
from tiergate.runview import run_summary
from tiergate.store import runs as store

if TYPE_CHECKING:
    from tiergate.engine import Engine


class Oversight:
    """The read-only views of an Engine's runs and log (``self`` is the Engine)."""

    def data_stores(self: Engine, process: str | None = None) -> list[dict[str, Any]]:
        """The BPMN data stores runs have written, each with its current value (``tiergate.datastores``)."""
        from tiergate.datastores import describe
        from tiergate.store.datastores import listing

        with self.db.read() as conn:
            return [describe(value) for value in listing(conn, process)]

    def runs(self: Engine, process: str | None = None, status: str | None = None,
             started_by: str | None = None) -> list[dict[str, Any]]:
        if status is not None and status not in {s.value for s in RunStatus}:
            raise UsageError(f"unknown status '{status}'. Use one of: {', '.join(s.value for s in RunStatus)}.",
                             code="usage")
        if started_by is not None and started_by != str(SYSTEM):
            started_by = canonical_actor(started_by)
        with self.db.read() as conn:
            records = store.list_runs(conn, process_id=process, status=status, started_by=started_by)
        return [run_summary(r) for r in records]

    def run_view(self: Engine, run_id: str, described: dict[str, Any] | None = None) -> dict[str, Any]:
        """What a run's page shows: the run, its log and its check, the diagram's element states and
        the decisions evaluated (``tiergate.runpage``)."""
        from tiergate.runpage import run_view

        return run_view(self, run_id, described)

    def log(self: Engine, run_id: str | None = None) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            if run_id is not None:
                self._get(conn, run_id)
            rows = execution_log.entries(conn, run_id)
        return self._log_rows(rows)

    @staticmethod
    def _log_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"id": r["id"], "at": format_time(r["at"]), "run": r["run_id"], "seq": r["seq"],
                 "process": r["process_id"], "version": r["definition_version"], "tier": r["tier"],
                 "step": r["step"], "event": r["event"], "actor": f"{r['actor_kind']}:{r['actor_id']}",
                 "duration_s": r["duration_s"], "detail": r["detail"], "door": r.get("door"),
                 "hash": r["hash"]} for r in rows]

    def verify_log(self: Engine) -> dict[str, Any]:
        from tiergate.store.datastores import tampered as stores_tampered

        with self.db.read() as conn:
            runs, entries, broken = execution_log.verify(conn)
            tampered = store.tampered_definitions(conn)
            stores = stores_tampered(conn)
        return {"runs": runs, "entries": entries, "ok": broken is None and not tampered and not stores,
                "broken": None if broken is None else broken.__dict__, "definitions_tampered": tampered,
                "data_stores_tampered": stores}

    def metrics(self: Engine, process: str | None = None, tier: int | None = None,
                since: str | datetime | None = None, from_log: bool = False) -> dict[str, Any]:
        """Completion, deviations, step times and interventions per process, tier and overall.

        Read from the log summary (``from_log`` counts the log's entries instead: same numbers).
        """
        from tiergate import metrics as log_metrics

        return log_metrics.measure(self, process=process, tier=tier, since=since, from_log=from_log)

    def refold_summary(self: Engine) -> int:
        """Rebuild the log summary from the whole log; returns the entries folded."""
        from tiergate import metrics as log_metrics

        return log_metrics.summary.refold(self.db)

    def gaps(self: Engine, since: str | datetime | None = None) -> dict[str, Any]:
        """Find, classify (decisions/gap_classification.dmn) and remember gaps in the log."""
        from tiergate import metrics as log_metrics

        return log_metrics.find_gaps(self, since=since)

    def gaps_export(self: Engine, fmt: str = "md", since: str | datetime | None = None) -> dict[str, Any]:
        """The open gaps as feedback items, Markdown (``md``) or JSON: {format, items, content}."""
        from tiergate import metrics as log_metrics

        return log_metrics.export_gaps(self, fmt, since=since)

    def report_data(self: Engine, since: str | datetime | None = None,
                    metrics: dict[str, Any] | None = None) -> dict[str, Any]:
        """What the report shows, as data: {"metrics", "gaps"} (``metrics``: that answer, if read already)."""
        from tiergate import metrics as log_metrics

        return log_metrics.report_data(self, since=since, answer=metrics)

    def report(self: Engine, path: str | Path, since: str | datetime | None = None) -> dict[str, Any]:
        """Write the self-contained HTML report for leads."""
        from tiergate import metrics as log_metrics

        return log_metrics.write_report(self, path, since=since)
