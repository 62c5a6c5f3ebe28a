"""Gaps as feedback items a team can file: Markdown for people, JSON for trackers."""

from __future__ import annotations

import json
from typing import Any

FORMATS = ("md", "json")


def feedback_items(gaps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One item per open gap: a title, who owns it, what was seen, and what to do."""
    items = []
    for gap in gaps:
        where = f"{gap['process']} (tier {gap['tier']})" + (f", step {gap['step']}" if gap["step"] else "")
        items.append({
            "title": f"{where}: {gap['summary']}",
            "kind": gap["kind"], "category": gap["category"], "owner": gap["owner"],
            "process": gap["process"], "tier": gap["tier"], "step": gap["step"],
            "occurrences": gap["occurrences"], "measure": gap["measure"], "threshold": gap["threshold"],
            "first_seen": gap["first_seen"], "last_seen": gap["last_seen"], "times_seen": gap["times_seen"],
            "classified_by": f"decisions/gap_classification.dmn, rule {gap['matched_rule']}",
            "suggested_action": gap["action"], "evidence": gap["evidence"], "key": gap["key"],
        })
    return items


def render(gaps: list[dict[str, Any]], fmt: str, as_of: str) -> str:
    items = feedback_items(gaps)
    if fmt == "json":
        return json.dumps({"as_of": as_of, "items": items}, indent=2, ensure_ascii=False) + "\n"
    lines = [f"# Process gaps as of {as_of[:10]}", "",
             f"{len(items)} open gap(s) found in the execution log by `tiergate gaps`, each classified by "
             "`decisions/gap_classification.dmn`. File each with its owner.", ""]
    for n, item in enumerate(items, 1):
        lines += [
            f"## {n}. {item['title']}", "",
            f"- **Category:** {item['category']} — **owner:** {item['owner']} ({item['classified_by']})",
            f"- **Measured:** {item['measure']} against a threshold of {item['threshold']} "
            f"({item['occurrences']} occurrence(s)); kind `{item['kind']}`",
            f"- **Seen:** first {item['first_seen'][:10]}, last {item['last_seen'][:10]}, "
            f"in {item['times_seen']} detection(s)",
            f"- **Suggested action:** {item['suggested_action']}",
            f"- **Key:** `{item['key']}`", "",
        ]
    return "\n".join(lines)
