"""A run as every door shows it: its steps, each ready one's instructions rendered, and ``who``
may do it and its gate in words.

    info = RunInfo(id=..., ..., steps=checklist_steps(snapshot["checklist"]["steps"], state))
    render_ready(info.steps, info.data, run_id=info.id, process_id=info.process)
    answer = described(info, definition_resources)     # what `tiergate status --json` answers

Both ways of reading a run build their answer here: the ``Engine`` (after SQLAlchemy and the
runners) and the light read path of `tiergate status` (``tiergate.reading``: the DBAPI and
the pinned snapshot as stored). So this module imports nothing heavier than Jinja's sandbox,
and that only to render a ready step's instructions: no pydantic, no database library.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tiergate.errors import DefinitionError, LimitExceededError, NotFoundError


@dataclass
class StepView:
    """One step as a person or an agent sees it."""

    id: str
    title: str
    state: str  # done | ready | locked | skipped
    optional: bool = False
    actors: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    instructions: str = ""
    done_when: dict[str, Any] | None = None
    waits_for: list[str] = field(default_factory=list)
    decide: str | None = None
    distinct_from: str | None = None
    actor: str | None = None
    at: str | None = None
    ready_at: str | None = None
    evidence: dict[str, Any] | None = None
    reason: str | None = None
    earlier: dict[str, Any] | None = None
    """A step reopened by a send-back: its evidence, actor and time before, and who sent it back why."""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class StepList(list):  # type: ignore[type-arg]
    """Step views whose ready steps' (roles, actors) are known already (``ready_pairs``; None: not
    worked out), kept beside the views by the runner that made them (``tiergate.runners.keptviews``)."""

    ready_pairs: frozenset[tuple[tuple[str, ...], tuple[str, ...]]] | None = None


@dataclass
class RunInfo:
    id: str
    process: str
    title: str
    tier: int
    status: str
    started_by: str
    created_at: str
    ended_at: str | None
    definition_version: str
    data: dict[str, Any]
    steps: list[StepView] = field(default_factory=list)
    #: Tier 1: the timers the run waits for ({"timer", "task", "due"}, "start": true for a timer
    #: start event); in the answer only when there are some.
    timers: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ready_steps(self) -> list[StepView]:
        return [s for s in self.steps if s.state == "ready"]

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        if not self.timers:
            out.pop("timers")
        out["steps"] = [s.to_dict() for s in self.steps]
        out["ready"] = [s.id for s in self.ready_steps]
        return out


def run_summary(run: Any) -> dict[str, Any]:
    """One line of `tiergate runs`: ``run`` is a stored run (``store.runs.RunRecord`` or ``store.direct.StoredRun``)."""
    from tiergate.timestamps import format_time

    status = getattr(run.status, "value", run.status)
    return {"id": run.id, "process": run.process_id, "tier": run.tier, "status": status,
            "started_by": run.started_by, "created_at": format_time(run.created_at),
            "ended_at": format_time(run.ended_at) if run.ended_at else None}


def run_not_found(run_id: str) -> NotFoundError:
    return NotFoundError(f"no run '{run_id}'.", details={"run": run_id, "see": "runs"})


def predecessors(steps: Sequence[Mapping[str, Any]], index: int) -> list[str]:
    """A checklist step's ``after`` with the default applied: the previous step, or none for the first."""
    after = steps[index].get("after")
    if after is not None:
        return list(after)
    return [steps[index - 1]["id"]] if index > 0 else []


def checklist_steps(steps: Sequence[Mapping[str, Any]], state: Mapping[str, Any]) -> list[StepView]:
    """Tier 2: each step of a checklist (as its snapshot stores it: ``Step`` dumped to JSON) in ``state``."""
    views = []
    for index, step in enumerate(steps):
        st = state["steps"][step["id"]]
        views.append(StepView(
            id=step["id"], title=step["title"], state=st["status"], optional=step["optional"],
            actors=list(step["actors"]), roles=list(step["roles"]), instructions=step["instructions"],
            done_when=step["done_when"], waits_for=predecessors(steps, index), decide=step["decide"],
            distinct_from=step["distinct_from"], actor=st.get("actor"), at=st.get("at"), ready_at=st.get("ready_at"),
            evidence=st.get("evidence"), reason=st.get("reason"), earlier=st.get("earlier")))
    return views


#: The one step of a Tier 3 run: doing the work. Closing the run completes it.
WORK_STEP = "work"


def conventions_steps(title: str, template: str, state: Mapping[str, Any]) -> list[StepView]:
    """Tier 3: the one step, ``work``. Its instructions are the conventions template itself: they
    are rendered, with the same names as at start, while the step is ready."""
    st = state["steps"][WORK_STEP]
    return [StepView(id=WORK_STEP, title=title, state=st["status"], actors=["agent", "human"], instructions=template,
                     actor=st.get("actor"), at=st.get("at"), ready_at=st.get("ready_at"), evidence=st.get("evidence"),
                     reason=st.get("reason"))]


#: The names a step's instructions always have; in Tier 1 they shadow a data field of the same name.
RESERVED_NAMES = ("data", "run", "steps")


def render_ready(views: list[StepView], data: dict[str, Any], *, run_id: str, process_id: str,
                 bare_names: Mapping[str, Mapping[str, Any]] | None = None, shared: bool = False) -> None:
    """Render each ready step's instructions in the sandbox (``data``, ``run`` and ``steps``); clear the rest.

    ``bare_names`` (Tier 1, whose templates read the task's data by name as SpiffWorkflow's do): a
    name the instructions read that is none of those is the step's own name (by step id: an
    instance's item) or else the data's field; one the data lacks shows as empty text, and the
    instructions end with a note naming it. None: only those three names.

    ``shared``: the views may be shown by other answers too (``tiergate.runners.keptviews``), so a view
    whose instructions change is replaced in ``views`` by a copy instead of changed in place."""
    for index, view in enumerate(views):
        if view.state != "ready" and view.instructions:
            views[index] = rendered_view(view, "", shared)
    ready = [(index, view) for index, view in enumerate(views) if view.state == "ready" and view.instructions]
    if not ready:
        return
    # Jinja: only when there is something to render
    from tiergate.templating import names_read

    context = _context({view.instructions: view.id for _, view in ready}, data, run_id=run_id, process_id=process_id)
    if "steps" in context:
        context["steps"] = {v.id: {"evidence": v.evidence, "state": v.state, "actor": v.actor} for v in views}
    rendered: dict[Any, str] = {}  # one rendering per template (and step, for a step's own names it reads)
    for index, view in ready:
        source = view.instructions
        own = bare_names.get(view.id) if bare_names else None
        key: Any = (source, view.id) if own and not (names_read(source) or frozenset()).isdisjoint(own) else source
        if key not in rendered:
            rendered[key] = _render_one(source, context, {**data, **(own or {})} if key != source else data,
                                        bare_names is not None, f"instructions of step '{view.id}'")
        views[index] = rendered_view(view, rendered[key], shared)


def render_templates(firsts: dict[str, str], data: dict[str, Any], *, run_id: str, process_id: str,
                     bare: bool = False) -> dict[str, str] | None:
    """What ``render_ready`` renders each ready step's template (``firsts``: template → the id of the
    first ready step that has it, in the views' order) to, when no step has names of its own that
    its template reads (``bare``: ``bare_names`` was given, empty); None if one of them reads
    ``steps`` (every step's record: the caller renders the whole list)."""
    if not firsts:
        return {}
    context = _context(firsts, data, run_id=run_id, process_id=process_id)
    if "steps" in context:
        return None
    return {source: _render_one(source, context, data, bare, f"instructions of step '{step_id}'")
            for source, step_id in firsts.items()}


def rendered_view(view: StepView, text: str, shared: bool = True) -> StepView:
    """``view`` showing ``text`` as its instructions: itself if it does already, else (``shared``) a copy."""
    if view.instructions == text:
        return view
    if not shared:
        view.instructions = text
        return view
    copy = _new_view(StepView)
    copy.__dict__.update(view.__dict__)
    copy.instructions = text
    return copy


_new_view = object.__new__


def _first_ready(views: list[StepView]) -> dict[str, str]:
    firsts: dict[str, str] = {}
    for view in views:
        if view.state == "ready" and view.instructions and view.instructions not in firsts:
            firsts[view.instructions] = view.id
    return firsts


def _context(firsts: dict[str, str], data: dict[str, Any], *, run_id: str, process_id: str) -> dict[str, Any]:
    """The templates' context; ``steps`` (every step, 1,000 with a multi-instance task open) is in it,
    as None, only if a template reads it: the caller fills it in."""
    # Jinja: only when there is something to render
    from tiergate.templating import names_read

    context: dict[str, Any] = {"data": data, "run": {"id": run_id, "process": process_id}}
    if any("steps" in (names_read(source) or ("steps",)) for source in firsts):
        context["steps"] = None
    return context


def _render_one(source: str, context: dict[str, Any], data: Mapping[str, Any], bare: bool, where: str) -> str:
    """One template rendered (``bare``: with the data's fields it reads by name, ``_render_bare``);
    what is wrong with it, said in its place."""
    from tiergate.templating import render

    try:
        return _render_bare(source, context, data, where) if bare else render(source, context, where=where)
    except (DefinitionError, LimitExceededError) as err:  # the move is done: say why, never fail the answer
        return f"(The instructions cannot be shown: {err.message})"


def _render_bare(source: str, context: dict[str, Any], data: Mapping[str, Any], where: str) -> str:
    """``source`` rendered with the fields of ``data`` it reads by name besides ``context``; a field
    ``data`` lacks is empty text, named in a note after the instructions."""
    from tiergate.templating import Unset, environment, names_read, render

    names = names_read(source) or frozenset()
    bare = sorted(names.difference(RESERVED_NAMES, environment().globals))
    if not bare:
        return render(source, context, where=where)
    unset = [name for name in bare if name not in data]
    text = render(source, {**context, **{name: data[name] if name in data else Unset(name=name) for name in bare}},
                  where=where)
    if unset:
        listed = ", ".join(f"`{name}`" for name in unset)
        text = f"{text.rstrip()}\n\n(Not set in this run yet, so shown empty: {listed}.)"
    return text


def ready_in_words(info: RunInfo, resources: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Each ready step in words, as `tiergate guide` says it: ``who`` may do it, and its gate
    (``gate``, with ``$ref``s followed into ``resources``) when it has one. By step id."""
    from tiergate.guidance.words import gate_words, who_may

    words: dict[str, dict[str, str]] = {}
    for step in info.ready_steps:
        words[step.id] = {"who": who_may(step)}
        if step.done_when is not None:
            words[step.id]["gate"] = gate_words(step.done_when, resources)[0]
    return words


def described(info: RunInfo, resources: Mapping[str, Any]) -> dict[str, Any]:
    """The run as a dict, each ready step with ``who`` may do it and ``gate_words`` (its gate as
    `tiergate guide` words it): what every door answers for a run."""
    words = ready_in_words(info, resources)
    answer = info.to_dict()
    for step in answer["steps"]:
        if step["id"] in words:
            step["who"] = words[step["id"]]["who"]
            if "gate" in words[step["id"]]:
                step["gate_words"] = words[step["id"]]["gate"]
    return answer
