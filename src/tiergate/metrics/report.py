"""The report for leads: one self-contained HTML page, charts as inline SVG.

    html = render_report(metrics_answer, gaps_answer)

The page has no script and loads nothing: styles are inline, charts are SVG in the page, and
its Content-Security-Policy forbids any request, so it opens the same offline, from an e-mail
attachment or a file share. Sections: the totals, completion and deviations per tier and per
process, time against expected time, a funnel of steps per process, and the open gaps.
"""

from __future__ import annotations

from html import escape
from typing import Any

from tiergate.metrics.deviations import DEVIATION_KINDS
from tiergate.metrics.svg import Segment, against_expected, stacked

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #1f2328;
       background: #f6f8fa; }
main { max-width: 1040px; margin: 0 auto; padding: 24px 32px 48px; background: #fff; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 32px 0 8px; border-bottom: 1px solid #d0d7de; }
h3 { font-size: 15px; margin: 20px 0 4px; } p.note { color: #57606a; margin: 4px 0 8px; }
.tiles { display: flex; flex-wrap: wrap; gap: 12px; margin: 16px 0; }
.tile { border: 1px solid #d0d7de; border-radius: 6px; padding: 8px 14px; min-width: 120px; }
.tile b { display: block; font-size: 22px; } .tile span { color: #57606a; font-size: 12px; }
svg.chart { display: block; margin: 4px 0 12px; }
svg text { font: 12px system-ui, sans-serif; fill: #1f2328; } svg text.value { fill: #57606a; }
.legend { display: flex; flex-wrap: wrap; gap: 12px; font-size: 12px; color: #57606a; margin: 0 0 4px; }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; vertical-align: -1px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid #d8dee4; vertical-align: top; }
th { background: #f6f8fa; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.clean { fill: #2da44e; background: #2da44e; } .intervened { fill: #9be9a8; background: #9be9a8; }
.cancelled { fill: #8c959f; background: #8c959f; } .failed { fill: #cf222e; background: #cf222e; }
.abandoned { fill: #e16f24; background: #e16f24; } .in_progress { fill: #80ccff; background: #80ccff; }
.out_of_order { fill: #8250df; background: #8250df; } .wrong_actor { fill: #bf3989; background: #bf3989; }
.refused_other { fill: #c297ff; background: #c297ff; } .gate_failed { fill: #cf222e; background: #cf222e; }
.skipped { fill: #d4a72c; background: #d4a72c; } .escalated { fill: #e16f24; background: #e16f24; }
.off_path { fill: #0969da; background: #0969da; } .direct_door { fill: #57606a; background: #57606a; }
.done { fill: #2da44e; background: #2da44e; } .skip { fill: #d4a72c; background: #d4a72c; }
.left { fill: #e16f24; background: #e16f24; }
.median { fill: #0969da; background: #0969da; } .median.over { fill: #cf222e; }
.p90 { fill: #b6e3ff; background: #b6e3ff; } line.expected { stroke: #1f2328; stroke-width: 2; }
.empty { color: #57606a; font-style: italic; }
"""

OUTCOMES = [("clean", "completed clean"), ("intervened", "completed after intervention"),
            ("cancelled", "cancelled"), ("failed", "failed"), ("abandoned", "abandoned"),
            ("in_progress", "in progress")]
DEVIATION_LABELS = {"out_of_order": "out of order", "wrong_actor": "wrong actor", "refused_other": "other refusal",
                    "gate_failed": "gate failed", "skipped": "skipped", "escalated": "escalated",
                    "off_path": "off the expected path", "direct_door": "done past the server"}


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def _legend(items: list[tuple[str, str]]) -> str:
    return '<div class="legend">' + "".join(f'<span><i class="{css}"></i>{escape(text)}</span>'
                                            for css, text in items) + "</div>"


def _outcome_segments(group: dict[str, Any]) -> list[Segment]:
    o, c = group["outcomes"], group["completion"]
    values = {"clean": c["clean"], "intervened": c["intervened"], "cancelled": o["cancelled"], "failed": o["failed"],
              "abandoned": o["abandoned"], "in_progress": o["in_progress"]}
    return [Segment(values[css], css, f"{text}: {values[css]} of {group['runs']} runs") for css, text in OUTCOMES]


def _completion_chart(rows: list[tuple[str, dict[str, Any]]], caption: str) -> str:
    data = [(label, _outcome_segments(group),
             f"{_pct(group['completion']['rate'])} done, {_pct(group['completion']['clean_rate'])} clean")
            for label, group in rows]
    return _legend([(css, text) for css, text in OUTCOMES]) + stacked(data, caption)


def _deviation_chart(rows: list[tuple[str, dict[str, Any]]], caption: str) -> str:
    data = []
    for label, group in rows:
        by_kind = group["deviations"]["by_kind"]
        segments = [Segment(by_kind[k]["per_run"] or 0, k, f"{DEVIATION_LABELS[k]}: {by_kind[k]['count']} "
                            f"({by_kind[k]['per_run'] or 0} per run)") for k in DEVIATION_KINDS]
        data.append((label, segments, f"{group['deviations']['per_run'] or 0:.2f} per run"))
    return _legend([(k, DEVIATION_LABELS[k]) for k in DEVIATION_KINDS]) + stacked(data, caption)


def _funnel(process: dict[str, Any]) -> str:
    steps = process["steps"]
    if not steps:
        return '<p class="empty">No steps recorded.</p>'
    top = max((s["ready"] for s in steps), default=0) or 1
    data = []
    for s in steps:
        segments = [Segment(s["completed"], "done", f"completed {s['completed']} times"),
                    Segment(s["skipped"] + s["closed_unused"], "skip",
                            f"skipped {s['skipped']} times (and closed unused {s['closed_unused']})"),
                    Segment(s["left_ready"], "left", f"left ready {s['left_ready']} times: the run is still "
                                                     "there, or stopped there")]
        after = f"{s['ready']} ready"
        if s["gate_failures"] or s["refusals"]:
            after += f" · {s['gate_failures']} failed gate · {s['refusals']} refused"
        data.append((s["step"] or "(the run)", segments, after))
    return stacked(data, f"Steps of {process['process']}: where runs stop", scale=top, right=270)


def _process_label(p: dict[str, Any]) -> str:
    return f"{p['process']} (tier {p['tier']})"


def _gaps_table(gaps: list[dict[str, Any]]) -> str:
    if not gaps:
        return '<p class="empty">No open gaps: nothing in the log crosses a threshold of tiers/gaps.yaml.</p>'
    rows = []
    for g in gaps:
        where = escape(g["process"]) + (f" · <code>{escape(g['step'])}</code>" if g["step"] else "")
        rows.append(f"<tr><td>{escape(g['status'])}</td><td>{where} (tier {g['tier']})</td>"
                    f"<td>{escape(g['kind'])}</td><td>{escape(g['summary'])}</td><td>{escape(g['category'])}</td>"
                    f"<td>{escape(g['owner'])}</td><td>{escape(g['first_seen'][:10])}</td>"
                    f"<td>{escape(g['action'])}</td></tr>")
    return ("<table><thead><tr><th>status</th><th>where</th><th>kind</th><th>what</th><th>category</th>"
            "<th>owner</th><th>first seen</th><th>suggested action</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def render_report(answer: dict[str, Any], found: dict[str, Any]) -> str:
    """The whole page, as one string."""
    scope = answer["scope"]
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>tiergate report {escape(scope['as_of'][:10])}</title>",
        f"<style>{STYLE}</style></head><body><main>",
        report_sections(answer, found), "</main></body></html>"]) + "\n"


def report_sections(answer: dict[str, Any], found: dict[str, Any]) -> str:
    """The report's content without the page around it (the web's /report wraps it in its layout)."""
    scope, totals = answer["scope"], answer["totals"]
    processes = answer["processes"]
    window = f"runs started since {scope['since']}" if scope["since"] else "every run in the log"
    tiles = [(str(totals["runs"]), "runs"), (_pct(totals["completion"]["rate"]), "completed (of settled runs)"),
             (_pct(totals["completion"]["rate_of_all"]), "completed (of all runs)"),
             (_pct(totals["completion"]["clean_rate"]), "completed clean"),
             (f"{totals['deviations']['per_run'] or 0:.2f}", "deviations per run"),
             (_pct(totals["time_to_complete"]["over_share"]), "over expected time"),
             (_pct(totals["human_intervention"]["rate"]), "runs a person stepped into"),
             (str(len(found["gaps"])), "open gaps")]
    parts = [
        "<h1>Process compliance report</h1>",
        f'<p class="note">As of {escape(scope["as_of"])}, {escape(window)}. Computed by <code>tiergate report</code> '
        "from the execution log; definitions in docs/metrics.md.</p>",
        '<div class="tiles">' + "".join(f'<div class="tile"><b>{escape(v)}</b><span>{escape(t)}</span></div>'
                                        for v, t in tiles) + "</div>",
    ]
    if not processes:
        parts.append('<p class="empty">No runs in scope yet.</p>')
    else:
        tiers = [(f"tier {t['tier']}", t) for t in answer["tiers"]]
        by_process = [(_process_label(p), p) for p in processes]
        parts += [
            "<h2>Completion</h2>",
            '<p class="note">Settled runs are completed, cancelled, failed or abandoned; runs still in progress are '
            "not counted against completion. A run needed intervention if anything deviated in it or it was "
            "retried after failing.</p>",
            "<h3>Per tier</h3>", _completion_chart(tiers, "Completion per tier"),
            "<h3>Per process</h3>", _completion_chart(by_process, "Completion per process"),
            "<h2>Deviations</h2>",
            '<p class="note">Deviations per run, by kind. Every deviation is an entry of the log.</p>',
            "<h3>Per tier</h3>", _deviation_chart(tiers, "Deviations per run, per tier"),
            "<h3>Per process</h3>", _deviation_chart(by_process, "Deviations per run, per process"),
            "<h2>Time against expected time</h2>",
            '<p class="note">Median (dark; red when over) and p90 (light) minutes from start to completion, '
            "each process on its own scale; the line is the catalog's expected_minutes.</p>",
            against_expected([(_process_label(p), p["time_to_complete"]["median_minutes"],
                               p["time_to_complete"]["p90_minutes"], p["time_to_complete"]["expected_minutes"])
                              for p in processes], "Time to completion against expected time"),
            "<h2>Steps: where runs stop or fail</h2>",
            _legend([("done", "completed"), ("skip", "skipped"), ("left", "left ready (still there, or stopped)")]),
        ]
        for p in processes:
            parts += [f"<h3>{escape(_process_label(p))}</h3>", _funnel(p)]
        if answer["failure_steps"]:
            rows = "".join(f"<tr><td>{escape(f['process'])}</td><td>{escape(f['step'] or '(the run)')}</td>"
                           f"<td class=num>{f['gate_failures']}</td><td class=num>{f['refusals']}</td>"
                           f"<td class=num>{_pct(f['agent_share'])}</td></tr>" for f in answer["failure_steps"])
            parts += ["<h3>Steps that fail most</h3>",
                      "<table><thead><tr><th>process</th><th>step</th><th>gate failures</th><th>refusals</th>"
                      f"<th>by agents</th></tr></thead><tbody>{rows}</tbody></table>"]
    parts += ["<h2>Open gaps</h2>",
              '<p class="note">Classified by decisions/gap_classification.dmn; thresholds in tiers/gaps.yaml. '
              "<code>tiergate gaps export</code> writes them as feedback items.</p>",
              _gaps_table(found["gaps"])]
    return "\n".join(parts)
