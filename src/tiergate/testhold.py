"""Test-only holds: a process stopped at a chosen point so that a test can kill it there.

A test sets an environment variable (``HOLD_ENV`` of ``tiergate.worker``, ``tiergate.schedules``
or ``tiergate.signals``) to a PATH; at that point the process writes its pid to PATH and waits
until killed. Unset, as everywhere but in the tests, ``hold`` returns at once.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def park(path: str) -> None:
    """Write this process's pid to ``path`` and wait until killed."""
    Path(path).write_text(str(os.getpid()), encoding="utf-8")
    while True:
        time.sleep(0.05)


def hold(variable: str) -> None:
    """``park`` at the path environment variable ``variable`` names, if it names one."""
    path = os.environ.get(variable)
    if path:
        park(path)
