"""A long-lived engine's definitions kept current: what a new CLI command would start runs from.

    fresh = Freshness(engine, every=1.0)   # a server: look at most once a second
    fresh.check()                          # before each engine call, from any door

A CLI command reads the definitions when it starts. A server (every door of ``tiergate serve``)
or ``tiergate mcp`` keeps one engine for hours, so it looks again: a definition file edited while
the files are live, or a new deployment (by ``tiergate deploy`` on the database, another server
process or the definition-change process), makes the engine drop its cached definitions, and
the next run starts from the new ones. Runs in progress stay on their pinned version either way.
Looking walks the definition folders and asks the database for the newest deployment number,
which costs more than a step on a busy server, hence ``every``.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from tiergate.deployments import DEFINITION_FOLDERS
from tiergate.engine import Engine


def fingerprint(root: Path) -> tuple[tuple[str, int, int], ...]:
    """Every definition file with its modification time and size: cheap to take, changes on any edit."""
    found = []
    for folder in DEFINITION_FOLDERS:
        for path in (root / folder).rglob("*") if (root / folder).is_dir() else ():
            if path.is_file():
                stat = path.stat()
                found.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(sorted(found))


class Freshness:
    """Reloads ``engine``'s definitions when its files or the newest deployment changed, looking
    at most every ``every`` seconds (0: on every check). Safe to call from many threads."""

    def __init__(self, engine: Engine, *, every: float = 1.0) -> None:
        self.engine = engine
        self.every = every
        self._seen: Any = (fingerprint(engine.home.root), None)
        self._looked = time.monotonic()
        self._looking = threading.Lock()

    def check(self) -> Engine:
        if self.every and time.monotonic() - self._looked < self.every:
            return self.engine
        with self._looking:
            if self.every and time.monotonic() - self._looked < self.every:
                return self.engine  # another thread looked while this one waited
            now = (fingerprint(self.engine.home.root), self.engine.latest_deployment_number())
            if now != self._seen:
                self.engine.reload()
                self._seen = now
            self._looked = time.monotonic()
        return self.engine
