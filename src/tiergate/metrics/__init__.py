"""Metrics, deviations and gaps from the one execution log; the report for leads.

    from tiergate.engine import Engine
    engine = Engine(home=".")
    engine.metrics(process="support-triage", since="2025-03-01")   # -> measure()
    engine.gaps()                                                   # -> find_gaps()
    engine.report("report.html")                                    # -> write_report()

Everything is computed from the log (and the catalog's expected_minutes); the definitions of
every number are in docs/metrics.md, the thresholds in ``tiers/gaps.yaml`` (``settings``).
The ``Engine`` methods are thin: they call the functions here.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tiergate.errors import NotFoundError, UsageError
from tiergate.log import format_time
from tiergate.metrics import summary
from tiergate.metrics.compute import compute_metrics
from tiergate.metrics.export import FORMATS, render
from tiergate.metrics.gaps import GAP_DECISION, classify, detect, remember
from tiergate.metrics.queries import LogQueries
from tiergate.metrics.scope import Scope, parse_since
from tiergate.metrics.settings import load_settings
from tiergate.metrics.summary_queries import SummaryQueries

if TYPE_CHECKING:
    from tiergate.engine import Engine


def measure(engine: "Engine", *, process: str | None = None, tier: int | None = None,
            since: str | datetime | None = None, from_log: bool = False) -> dict[str, Any]:
    """Every metric for the runs in scope (docs/metrics.md).

    Whole processes and tiers are read from the log summary, after folding in what was logged
    since the last call; a ``since`` scope, or ``from_log``, counts the log's entries instead.
    """
    scope = Scope(now=engine.clock(), process=process, tier=tier,
                  since=parse_since(since) if isinstance(since, str) or since is None else since)
    settings = load_settings(engine.home.root)
    catalog = {p.id: (p.title, p.expected_minutes) for p in engine.definitions.require_catalog().processes}
    queries: type[LogQueries] = LogQueries
    if scope.since is None and not from_log:
        summary.fold(engine.db)
        queries = SummaryQueries
    with engine.db.read() as conn:
        answer = compute_metrics(conn, scope, catalog, settings, queries)
    if process is not None and process not in catalog and not answer["processes"]:
        raise NotFoundError(f"process '{process}' is not in the catalog (tiers/catalog.yaml) and has no runs in the "
                            "log. `tiergate processes` lists the processes.", details={"process": process})
    return answer


def find_gaps(engine: "Engine", *, since: str | datetime | None = None) -> dict[str, Any]:
    """Detect gaps, classify them with decisions/gap_classification.dmn, and remember them."""
    return _gaps_in(engine, measure(engine, since=since))


def _gaps_in(engine: "Engine", answer: dict[str, Any]) -> dict[str, Any]:
    settings = load_settings(engine.home.root)
    catalog = engine.definitions.catalog
    owners = {entry.id: entry.owner for entry in catalog.processes} if catalog is not None else {}
    gaps = classify(detect(answer, settings), engine.definitions.decisions.get(GAP_DECISION), owners)
    with engine.db.write() as conn:
        result = remember(conn, gaps, engine.clock())
    result["scope"] = answer["scope"]
    return result


def export_gaps(engine: "Engine", fmt: str = "md", *, since: str | datetime | None = None) -> dict[str, Any]:
    """The open gaps, freshly detected, as Markdown or JSON feedback items: {format, items, content}."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format '{fmt}'. Use --format md or --format json.", code="usage",
                         details={"format": fmt})
    found = find_gaps(engine, since=since)
    return {"format": fmt, "items": len(found["gaps"]),
            "content": render(found["gaps"], fmt, format_time(engine.clock()))}


def report_data(engine: "Engine", *, since: str | datetime | None = None,
                answer: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the report shows: {"metrics": the `metrics` answer, "gaps": the `gaps` answer} (the web's /report).
    ``answer``: the metrics answer for ``since``, when the caller has it already."""
    answer = measure(engine, since=since) if answer is None else answer
    return {"metrics": answer, "gaps": _gaps_in(engine, answer)}


def write_report(engine: "Engine", path: str | Path, *, since: str | datetime | None = None) -> dict[str, Any]:
    """Write the self-contained HTML report for leads to ``path``; returns what it shows."""
    from tiergate.metrics.report import render_report

    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{target} is a folder. Give a file name for the report, e.g. {target / 'report.html'}.",
                         code="usage")
    if not target.parent.is_dir():
        raise UsageError(f"cannot write {target}: the folder {target.parent} does not exist.", code="usage")
    answer = measure(engine, since=since)
    found = _gaps_in(engine, answer)
    html = render_report(answer, found)
    try:
        target.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror}.", code="usage") from None
    return {"path": str(target), "bytes": len(html.encode("utf-8")), "processes": len(answer["processes"]),
            "runs": answer["totals"]["runs"], "open_gaps": len(found["gaps"])}
