"""``/metrics``: the server's state in Prometheus' text exposition format (version 0.0.4).

    tiergate_runs{process="support-triage",status="active"} 12
    tiergate_steps_completed_total{process="support-triage"} 340
    tiergate_refusals_total{process="support-triage",reason="actor_not_allowed"} 3
    tiergate_gate_failures_total{process="support-triage"} 7
    tiergate_timers_due 2
    tiergate_timers_overdue 1
    tiergate_log_fold_lag_entries 0
    tiergate_webhook_backlog{status="pending"} 0

Read from the database on each scrape: run counts from ``runs``, completions, refusals and
gate failures from the log through its partial indexes (each query names one event, as the
indexes' predicates do), and how far the log summary lags the log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

from sqlalchemy import text

from tiergate import webhooks
from tiergate.engine import Engine
from tiergate.store.db import bind_time

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _label(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _family(name: str, kind: str, help_text: str, samples: Iterable[tuple[dict[str, Any], float]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        spelled = ",".join(f'{key}="{_label(val)}"' for key, val in labels.items())
        lines.append(f"{name}{{{spelled}}} {value:g}" if spelled else f"{name} {value:g}")
    return lines


def exposition(engine: Engine, now: datetime) -> str:
    """Every family, as one text document."""
    with engine.db.read() as conn:
        dialect = conn.dialect.name
        reason = "json_extract(detail, '$.reason')" if dialect == "sqlite" else "(detail ->> 'reason')"
        runs = conn.execute(text("SELECT process_id, status, count(*) FROM runs GROUP BY process_id, status "
                                 "ORDER BY process_id, status")).all()
        completed = conn.execute(text("SELECT process_id, count(*) FROM log_entries WHERE event = 'step_completed' "
                                      "GROUP BY process_id ORDER BY process_id")).all()
        refused = conn.execute(text(f"SELECT process_id, {reason}, count(*) FROM log_entries WHERE event = 'refused' "
                                    f"GROUP BY process_id, {reason} ORDER BY process_id, {reason}")).all()
        gates = conn.execute(text("SELECT process_id, count(*) FROM log_entries WHERE event = 'gate_failed' "
                                  "GROUP BY process_id ORDER BY process_id")).all()
        due = conn.execute(text("SELECT count(*), coalesce(sum(CASE WHEN due_at < :now THEN 1 ELSE 0 END), 0) "
                                "FROM runs WHERE due_at IS NOT NULL AND status = 'active'"),
                           {"now": bind_time(dialect, now)}).one()
        newest = conn.execute(text("SELECT coalesce(max(id), 0) FROM log_entries")).scalar() or 0
        folded = conn.execute(text("SELECT high_water FROM summary_fold WHERE id = 1")).scalar() or 0
        hooks = webhooks.backlog(conn)
    lines = [
        *_family("tiergate_runs", "gauge", "Runs by process and status.",
                 (({"process": p, "status": s}, n) for p, s, n in runs)),
        *_family("tiergate_steps_completed_total", "counter", "Steps completed, by process.",
                 (({"process": p}, n) for p, n in completed)),
        *_family("tiergate_refusals_total", "counter", "Refused attempts, by process and reason code.",
                 (({"process": p, "reason": r or "unknown"}, n) for p, r, n in refused)),
        *_family("tiergate_gate_failures_total", "counter", "Evidence that failed a step's gate, by process.",
                 (({"process": p}, n) for p, n in gates)),
        *_family("tiergate_timers_due", "gauge", "Active Tier 1 runs with a timer waiting.", [({}, due[0])]),
        *_family("tiergate_timers_overdue", "gauge", "Active Tier 1 runs whose next timer is past due "
                 "(is `tiergate worker` running?).", [({}, due[1])]),
        *_family("tiergate_log_fold_lag_entries", "gauge", "Log entries not yet folded into the metrics summary.",
                 [({}, max(0, int(newest) - int(folded)))]),
        *_family("tiergate_webhook_backlog", "gauge", "Webhook deliveries not yet delivered: pending (waiting or "
                 "retrying) and dead (retries used up).",
                 [({"status": "pending"}, hooks["pending"]), ({"status": "dead"}, hooks["dead"])]),
    ]
    return "\n".join(lines) + "\n"
