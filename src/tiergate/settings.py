"""Settings, declared once: name, default, environment variable and help.

Precedence: defaults < ``<home>/tiergate.toml`` < environment < command-line flags.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tiergate.errors import UsageError


@dataclass(frozen=True)
class Setting:
    name: str
    env: str
    default: Any
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("home", "TIERGATE_HOME", None, "Folder holding tiers/, checklists/, processes/ and decisions/. "
            "Default: the current directory."),
    Setting("database_url", "TIERGATE_DATABASE_URL", None, "SQLAlchemy URL of the database. Default: "
            "sqlite:///<home>/.tiergate/tiergate.db. PostgreSQL: postgresql+psycopg://USER:PASS@HOST/DB."),
    Setting("actor", "TIERGATE_ACTOR", None, "Who is acting: agent:NAME or human:NAME."),
    Setting("claim_timeout_minutes", "TIERGATE_CLAIM_TIMEOUT_MINUTES", 480, "How long a claim on a step holds "
            "before others may take the step (minutes)."),
)


def resolve(flags: dict[str, Any]) -> dict[str, Any]:
    """Merge defaults, the home's tiergate.toml, the environment and flags (highest wins)."""
    values: dict[str, Any] = {s.name: s.default for s in SETTINGS}
    home_flag = flags.get("home") or os.environ.get("TIERGATE_HOME")
    home = Path(home_flag) if home_flag else Path.cwd()
    config_file = home / "tiergate.toml"
    if config_file.is_file():
        try:
            data = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"{config_file}: not valid TOML: {exc}. Fix or remove the file.",
                             code="config_invalid") from None
        unknown = sorted(set(data) - {s.name for s in SETTINGS} - {"home"})
        if unknown:
            raise UsageError(f"{config_file}: unknown setting(s) {', '.join(unknown)}. Known: "
                             f"{', '.join(s.name for s in SETTINGS if s.name != 'home')}.", code="config_invalid")
        values.update({k: v for k, v in data.items() if k != "home"})
    for setting in SETTINGS:
        if os.environ.get(setting.env):
            values[setting.name] = os.environ[setting.env]
    values.update({k: v for k, v in flags.items() if v is not None})
    values["home"] = str(home)
    return values
