"""The leads' pages: ``/report`` (what `tiergate report` writes, live), ``/gaps`` and ``/catalog``.

Each is one operation (``Operations.report``, ``gaps``, ``catalog``: what ``GET /api/report``,
``/api/gaps`` and ``/api/catalog`` answer) rendered as a page, or as JSON at the page's ``.json``
path. The report's sections are the same HTML as the file `tiergate report` writes (charts as
inline SVG, ``tiergate.metrics.report``), inside the pages' layout.
"""

from __future__ import annotations

import json
from typing import Any

from markupsafe import Markup

from tiergate.metrics.report import STYLE, report_sections
from tiergate.web.pages import Page, Visit


def scoped_style(css: str = STYLE, scope: str = ".tg-report") -> str:
    """The report file's style limited to ``scope``, without its ``body`` and ``main`` rules, so that it
    does not restyle the pages' layout."""
    rules = []
    for rule in css.split("}"):
        if "{" not in rule:
            continue
        selectors, body = rule.split("{", 1)
        names = [selector.strip() for selector in selectors.split(",")]
        if set(names) <= {"body", "main"}:
            continue
        rules.append(f"{', '.join(f'{scope} {name}' for name in names)} {{{body}}}")
    return "\n".join(rules)


def _since(visit: Visit) -> str | None:
    return visit.request.query_params.get("since") or None


async def report(visit: Visit) -> Page:
    since = _since(visit)
    data: dict[str, Any] = await visit.call("report", since=since)
    body = Markup(report_sections(data["metrics"], data["gaps"]))  # escaped where it is built
    return Page("report.html", data, title="Report",
                context={"report_html": body, "report_style": scoped_style(), "since": since or ""})


async def gaps(visit: Visit) -> Page:
    since = _since(visit)
    data: dict[str, Any] = await visit.call("gaps", since=since)
    return Page("gaps.html", data, title="Gaps", context={"since": since or ""})


async def catalog(visit: Visit) -> Page:
    data: list[dict[str, Any]] = await visit.call("catalog")
    rows = [{**entry, "facts": [(name, json.dumps(value)) for name, value in sorted((entry["route"].get("inputs") or
                                                                                {}).items())
                                if name != "process_id" and value is not None]} for entry in data]
    return Page("catalog.html", data, title="Catalog", context={"rows": rows})
