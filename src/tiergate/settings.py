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
    # Signed checkpoints of the log (docs/log.md): written by `tiergate worker` when a key is set.
    Setting("log_key", "TIERGATE_LOG_KEY", None, "The log's private signing key: its file, or the key itself. "
            "Never stored in the database."),
    Setting("log_checkpoints", "TIERGATE_LOG_CHECKPOINTS", None, "Folder for checkpoints. Default: "
            "<home>/.tiergate/checkpoints."),
    Setting("log_checkpoint_entries", "TIERGATE_LOG_CHECKPOINT_ENTRIES", 10000, "The worker writes a checkpoint "
            "once the log grew by this many entries (0: not by count)."),
    Setting("log_checkpoint_minutes", "TIERGATE_LOG_CHECKPOINT_MINUTES", 60, "... or this many minutes after the "
            "last one, if the log grew (0: not by time)."),
    Setting("log_witness_url", "TIERGATE_LOG_WITNESS_URL", None, "A witness's add-checkpoint URL (C2SP "
            "tlog-witness): each checkpoint is sent there to be cosigned."),
    Setting("webhooks", "TIERGATE_WEBHOOKS", None, "Webhooks: a list of tables in tiergate.toml ([[webhooks]] "
            "with name, url, events, roles, secret_env), or the same list as JSON in the environment. See docs/server.md."),
    Setting("claim_timeout_minutes", "TIERGATE_CLAIM_TIMEOUT_MINUTES", 480, "How long a claim on a step holds "
            "before others may take the step (minutes)."),
    Setting("direct_reads", "TIERGATE_DIRECT_READS", True, "`tiergate status` on the database reads the run with "
            "the database driver alone, without loading the engine (quicker to start). 0/false: always load it."),
    Setting("signal_lease_seconds", "TIERGATE_SIGNAL_LEASE_SECONDS", 60, "How long the process whose move threw a "
            "signal holds its broadcast to the other runs before `tiergate worker` may deliver it (seconds)."),
    Setting("housekeeping_seconds", "TIERGATE_HOUSEKEEPING_SECONDS", 15, "`tiergate serve`: seconds between its "
            "housekeeping passes (fold the log summary, write a checkpoint when one is due, send webhooks)."),
    Setting("workers", "TIERGATE_WORKERS", 1, "`tiergate serve`: server processes accepting requests on one "
            "socket, each with its own engine (housekeeping runs once, in the supervisor). See docs/server.md."),
    Setting("mcp_sessions", "TIERGATE_MCP_SESSIONS", True, "`tiergate serve`: MCP over HTTP keeps a session for a "
            "client that opens one (its set-up paid once, not per call); 0/false: every request stateless. See docs/server.md."),
    Setting("mcp_hot_path", "TIERGATE_MCP_HOT_PATH", True, "`tiergate serve`: MCP over HTTP answers a tool call in "
            "one hop to a worker thread, beside the SDK's transport; 0/false: every request through the SDK's. See docs/server.md."),
    # The web pages (docs/web.md).
    Setting("session_hours", "TIERGATE_SESSION_HOURS", 12, "How long a web sign-in lasts (hours); signing out "
            "ends it sooner."),
    Setting("sign_in_failures", "TIERGATE_SIGN_IN_FAILURES", 5, "Failed sign-ins in a row after which a person "
            "is locked out of the web pages for lockout_minutes."),
    Setting("lockout_minutes", "TIERGATE_LOCKOUT_MINUTES", 15, "How long a lock-out lasts (minutes)."),
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
