"""Rule-by-rule differences between two versions of the home's decisions (``tiergate decisions diff``).

    diff_decisions({"tier_routing": old_xml}, {"tier_routing": new_xml})
    # [{"decision": "tier_routing", "status": "changed", "tables": [{"table": "tier_routing",
    #    "added": [...], "removed": [...], "changed": [{"rule": "r3", "cells": [...]}], ...}]}]

Rules are matched by their id (every rule of the platform's tables has one; a rule without an id
is known by its decision and position, ``tier_routing#3``). A changed rule lists each cell that
differs, named by its column: ``input 2 (severity)``, ``output 1 (tier)``, ``annotation 1``.
"""

from __future__ import annotations

from typing import Any

from tiergate.dmn import load_dmn
from tiergate.dmn.model import RuleInfo, TableInfo
from tiergate.errors import TiergateError


def _columns(table: TableInfo) -> list[str]:
    names = [f"input {i} ({c.label or c.expression})" for i, c in enumerate(table.inputs, 1)]
    names += [f"output {i} ({c.name or c.label or ''})" for i, c in enumerate(table.outputs, 1)]
    longest = max((len(r.annotations) for r in table.rules), default=0)
    labels = list(table.annotation_names or ())
    names += [f"annotation {i}" + (f" ({labels[i - 1]})" if i <= len(labels) and labels[i - 1] else "")
              for i in range(1, longest + 1)]
    return names


def _cells(rule: RuleInfo) -> list[str]:
    return list(rule.input_entries) + list(rule.output_entries) + list(rule.annotations)


def _rule(rule: RuleInfo, table: TableInfo) -> dict[str, Any]:
    return {"rule": rule.id, "index": rule.index,
            "cells": dict(zip(_columns(table), _cells(rule)))}


def diff_tables(old: TableInfo | None, new: TableInfo | None, name: str) -> dict[str, Any]:
    out: dict[str, Any] = {"table": name, "added": [], "removed": [], "changed": [], "moved": [], "settings": []}
    if old is None or new is None:
        present = new or old
        assert present is not None
        key = "added" if old is None else "removed"
        out[key] = [_rule(r, present) for r in present.rules]
        return out
    if old.hit_policy != new.hit_policy or old.aggregation != new.aggregation:
        out["settings"].append({"what": "hit policy", "old": f"{old.hit_policy} {old.aggregation or ''}".strip(),
                                "new": f"{new.hit_policy} {new.aggregation or ''}".strip()})
    old_columns, new_columns = _columns(old), _columns(new)
    if [c for c in old_columns if not c.startswith("annotation")] != \
            [c for c in new_columns if not c.startswith("annotation")]:
        out["settings"].append({"what": "columns", "old": old_columns, "new": new_columns})
    before = {r.id: r for r in old.rules}
    after = {r.id: r for r in new.rules}
    out["removed"] = [_rule(r, old) for r in old.rules if r.id not in after]
    out["added"] = [_rule(r, new) for r in new.rules if r.id not in before]
    for rule in new.rules:
        was = before.get(rule.id)
        if was is None:
            continue
        old_cells, new_cells = _cells(was), _cells(rule)
        cells = []
        for i in range(max(len(old_cells), len(new_cells))):
            a = old_cells[i] if i < len(old_cells) else None
            b = new_cells[i] if i < len(new_cells) else None
            if a != b:
                column = new_columns[i] if i < len(new_columns) else old_columns[i] if i < len(old_columns) else \
                    f"cell {i + 1}"
                cells.append({"column": column, "old": a, "new": b})
        if cells:
            out["changed"].append({"rule": rule.id, "index": rule.index, "cells": cells})
        if was.index != rule.index:
            out["moved"].append({"rule": rule.id, "old": was.index, "new": rule.index})
    return out


def _tables(xml: bytes | None, source: str, folder: dict[str, bytes],
            which: str) -> tuple[dict[str, TableInfo], dict[str, bytes], str | None]:
    """The tables of one file, the files it imports (from ``folder``: its version's decisions/), an error."""
    if xml is None:
        return {}, {}, None
    try:
        model = load_dmn(xml, label=source, imports=folder, home=True)
    except TiergateError as err:
        return {}, {}, f"{source} ({which}): {err.message}"
    return {d.id: d.table for d in model.decisions if d.table is not None}, model.imported_files, None


def diff_decisions(old: dict[str, bytes], new: dict[str, bytes]) -> list[dict[str, Any]]:
    """Per decision file (by id): added, removed or changed, with each table's rule changes.

    A file whose imported models (other files of the same decisions/) changed is changed too:
    ``imports`` names them (their own rules are diffed under their own file)."""
    out = []
    old_folder = {f"{k}.dmn": v for k, v in old.items()}
    new_folder = {f"{k}.dmn": v for k, v in new.items()}
    for decision_id in sorted(set(old) | set(new)):
        before, old_imports, old_error = _tables(old.get(decision_id), f"decisions/{decision_id}.dmn", old_folder,
                                                  "old")
        after, new_imports, new_error = _tables(new.get(decision_id), f"decisions/{decision_id}.dmn", new_folder,
                                                  "new")
        imports = sorted(n for n in set(old_imports) | set(new_imports) if old_imports.get(n) != new_imports.get(n))
        status = "added" if decision_id not in old else "removed" if decision_id not in new else \
            "same" if old[decision_id] == new[decision_id] and not imports else "changed"
        tables = [diff_tables(before.get(t), after.get(t), t) for t in sorted(set(before) | set(after))]
        tables = [t for t in tables if any(t[k] for k in ("added", "removed", "changed", "moved", "settings"))]
        if status == "changed" and not tables and not imports and not (old_error or new_error):
            status = "same rules"   # only names, descriptions or layout changed
        entry = {"decision": decision_id, "status": status, "tables": tables,
                 "errors": [e for e in (old_error, new_error) if e]}
        if imports and status == "changed":
            entry["imports"] = imports
        out.append(entry)
    return out


def count_rule_changes(diffs: list[dict[str, Any]]) -> dict[str, int]:
    counts = {"added": 0, "removed": 0, "changed": 0}
    for item in diffs:
        for table in item["tables"]:
            for key in counts:
                counts[key] += len(table[key])
    return counts
