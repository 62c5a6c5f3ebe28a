"""Taking apart a SpiffWorkflow workflow that nothing will use again, so that its memory returns at once.

A workflow and its tasks refer to each other (the workflow holds its tasks and its event
manager; each of those names the workflow), and so does each subprocess with its own tasks.
Python frees such a ring only in a cyclic garbage collection, and every object left for one
counts towards starting the next: a process that makes many short runs (a server, a worker,
the bench) would collect every few runs, and each collection walks all young objects of the
process. ``release`` empties the workflow's and its subprocesses' attributes instead, which
breaks every ring: the tasks, their data and the event manager go the moment the last
reference to the workflow does.

Only for a workflow whose state has been dumped and that no move will take again (a finished
run's: ``tiergate.bpmn.kept`` keeps only the workflows of runs that go on). Anything that
still used it would fail at once (``AttributeError``) rather than read a half-empty run.
"""

from __future__ import annotations

from typing import Any


def release(workflow: Any) -> None:
    """Break the reference rings of ``workflow`` and of every subprocess it holds."""
    subprocesses = list(getattr(workflow, "subprocesses", {}).values())
    for one in (*subprocesses, workflow):
        one.__dict__.clear()
