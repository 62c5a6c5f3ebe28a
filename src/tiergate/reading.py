"""`tiergate status` and `tiergate runs` on the database directly, without importing SQLAlchemy, SQLModel or pydantic.

    reader = DirectReader(home=None)        # settings as the Engine resolves them
    reader.status("4f2a...")                # the dict Engine.described(Engine.status(...)) gives
    reader.runs(process="support-triage")   # the list Engine.runs(...) gives

A CLI command is one process, and for `status` importing the database layer cost ten times the
reading itself. ``DirectReader`` reads the run and its pinned snapshot with the driver alone
(``store.direct``) and builds the answer with the very code the ``Engine`` uses
(``tiergate.runview``: step views, instructions rendered in the sandbox, who may act and the
gate in words), so the two cannot say different things. It answers Tier 2 and Tier 3 runs on a
database at the newest schema; for everything else (a Tier 1 run, whose steps come from its
BPMN model; an older schema; a damaged file or snapshot; an unreachable server) it hands the
call to an ``Engine``, which answers or words the error as always. Any other ``Engine`` method
called on the reader goes to that ``Engine`` too.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tiergate.runview import RunInfo, checklist_steps, conventions_steps, described, render_ready, run_summary
from tiergate.settings import resolve
from tiergate.store.direct import Found, Unanswered, default_sqlite_url, list_runs, read_run
from tiergate.timestamps import format_time

if TYPE_CHECKING:
    from tiergate.engine import Engine


class DirectReader:
    """The read commands' part of ``Engine``, on the database driver; the rest goes to an ``Engine``."""

    def __init__(self, home: str | Path | None = None):
        self._home = home
        self._engine: Engine | None = None
        #: Why the last call went to the Engine (None: answered here). For tests and the curious.
        self.handed_over: str | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from tiergate.engine import Engine

            self._engine = Engine(home=self._home)
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.engine, name)

    def status(self, run_id: str) -> dict[str, Any]:
        """The run with each ready step's ``who`` and ``gate_words``, as ``Engine.described`` gives it."""
        try:
            self.handed_over = None
            return self._status(run_id)
        except (Unanswered, KeyError, TypeError, ValueError) as why:
            self.handed_over = str(why) if isinstance(why, Unanswered) else f"{type(why).__name__}: {why}"
        return self.engine.described(self.engine.status(run_id))

    def runs(self, process: str | None = None, status: str | None = None,
             started_by: str | None = None) -> list[dict[str, Any]]:
        """Runs, newest first, as ``Engine.runs`` lists them."""
        from tiergate.lifecycle import RunStatus

        try:
            self.handed_over = None
            if started_by is not None or (status is not None and status not in {s.value for s in RunStatus}):
                raise Unanswered("a filter the Engine checks (an unknown status, or started_by)")
            return [run_summary(run) for run in list_runs(self._url(), process_id=process, status=status)]
        except (Unanswered, KeyError, TypeError, ValueError) as why:
            self.handed_over = str(why) if isinstance(why, Unanswered) else f"{type(why).__name__}: {why}"
        return self.engine.runs(process=process, status=status, started_by=started_by)

    def _url(self) -> str:
        """The database URL the Engine would use (settings resolved the same way), unless direct reads are off."""
        settings = resolve({"home": str(self._home) if self._home is not None else None, "database_url": None})
        if str(settings["direct_reads"]).strip().lower() in ("0", "false", "no", "off"):
            raise Unanswered("direct reads are turned off (direct_reads, TIERGATE_DIRECT_READS)")
        return settings["database_url"] or default_sqlite_url(Path(settings["home"]).resolve())

    def _status(self, run_id: str) -> dict[str, Any]:
        found = read_run(self._url(), run_id)
        run, body = found.run, found.snapshot
        kind = body.get("kind")
        if run.tier == 2 and kind == "checklist":
            checklist = body["checklist"]
            title = checklist["title"] or checklist["id"]
            steps = checklist_steps(checklist["steps"], run.state)
        elif run.tier == 3 and kind == "conventions":
            title = body["title"]
            steps = conventions_steps(title, body["template"], run.state)
        else:
            raise Unanswered(f"a tier {run.tier} run ({kind}): its steps come from its runner")
        return self._described(found, title, steps)

    @staticmethod
    def _described(found: Found, title: str, steps: list[Any]) -> dict[str, Any]:
        run = found.run
        data = dict(run.state.get("data", {}))
        render_ready(steps, data, run_id=run.id, process_id=run.process_id)
        info = RunInfo(id=run.id, process=run.process_id, title=title, tier=run.tier, status=run.status,
                       started_by=run.started_by, created_at=format_time(run.created_at),
                       ended_at=format_time(run.ended_at) if run.ended_at else None,
                       definition_version=run.definition_version, data=data, steps=steps,
                       timers=list(run.state.get("timers") or []) if str(run.status) == "active" else [])
        return described(info, found.snapshot.get("resources", {}))
