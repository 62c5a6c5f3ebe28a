"""The one JSON shape for machines, shared by every `--json` answer and every MCP tool result."""

from __future__ import annotations

from typing import Any, Literal


def success(data: Any) -> dict[str, Any]:
    return {"ok": True, "data": data}


def failure(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"ok": False, "error": {"code": code, "message": message, "details": details or {}}}


Door = Literal["cli", "mcp"]

#: What to read next, said the way each door is used. The engine names only the action
#: (``details.see``, one of the keys below) and the run (``details.run``); a door turns it into its
#: own words, so an agent on MCP is never told to run a shell command.
_NEXT: dict[str, dict[str, str]] = {
    "guide": {"cli": "`tiergate guide {run}` says what each ready step needs.",
              "mcp": "Call get_guidance(run=\"{run}\") for what each ready step needs."},
    "status": {"cli": "`tiergate status {run}` shows where the run is.",
               "mcp": "Call get_run(run=\"{run}\") to see where the run is."},
    "processes": {"cli": "`tiergate processes --json` shows each process's `inputs` schema.",
                  "mcp": "list_processes shows each process's `inputs` schema."},
    "catalog": {"cli": "`tiergate processes` lists the processes that exist.",
                "mcp": "list_processes lists the processes that exist."},
    "runs": {"cli": "`tiergate runs` lists the runs.",
             "mcp": "list_my_runs lists the runs you started."},
    "check": {"cli": "`tiergate check` lists every problem of the home's definitions.",
              "mcp": "The process's owner must fix its definition (details.problems says where); tell them."},
}


def with_next_step(message: str, details: dict[str, Any], door: Door) -> str:
    """``message`` followed by the door's words for ``details.see``, when the error names one."""
    see, run = details.get("see"), details.get("run", "")
    if not isinstance(see, str) or see not in _NEXT or not isinstance(run, str):
        return message
    return f"{message} {_NEXT[see][door].format(run=run)}"
