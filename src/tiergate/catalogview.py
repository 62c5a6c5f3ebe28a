"""What an Engine's definitions offer: their problems, the processes, and where runs of each go.
A part of ``Engine`` (``class Engine(CatalogView, ...)``); each method reads only.

    engine.check()                # every problem of the home's files
    engine.processes()            # each process with its tier, files and steps
    engine.route("support-triage", {"client_tier": "gold"})
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tiergate.definitions.problems import Problem
from tiergate.errors import TiergateError

if TYPE_CHECKING:
    from tiergate.engine import Engine
    from tiergate.router import Route


class CatalogView:
    """The definitions as `tiergate check`, `processes` and `route` show them (``self`` is the Engine)."""

    def check(self: Engine) -> list[Problem]:
        """Every problem of the definitions, and of role members not registered once a server is in use."""
        from tiergate.registration import member_problems

        self.reload()
        return [*self.draft_definitions.problems, *member_problems(self)]

    def processes(self: Engine) -> list[dict[str, Any]]:
        catalog = self.definitions.require_catalog()
        home = self.definitions.home   # the deployed files, or the drafts
        out = []
        for entry in catalog.processes:
            files = [home.display(p) for p in home.definition_files(entry.id)]
            info = entry.model_dump(mode="json")
            info["definitions"] = files
            try:
                route = self.router().route(entry.id)
                info["tier"], info["rationale"] = route.tier, route.rationale
            except TiergateError as err:
                info["tier"], info["rationale"] = None, f"cannot route: {err.message}"
            runner = self.runners.get(info["tier"]) if info.get("tier") else None
            if runner is not None and (home.root / runner.definition_path.format(id=entry.id)).is_file():
                try:
                    info.update(runner.describe(runner.load_definition(self.definitions, entry.id)))
                except TiergateError:
                    pass  # `tiergate check` reports it
            out.append(info)
        return out

    def route(self: Engine, process_id: str | None = None, data: dict[str, Any] | None = None) -> list[Route]:
        """Where runs of one process (or of every process) go, and why."""
        router = self.router()
        if process_id is not None:
            return [router.route(process_id, data)]
        return [router.route(entry.id, data) for entry in router.catalog.processes]
