"""The limits table (tiergate.limits) and docs/operations.md cannot drift apart."""

from __future__ import annotations

from support import REPO
from tiergate.limits import LIMITS


def test_every_limit_is_documented_with_its_default() -> None:
    text = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    for item in LIMITS:
        default = f"{item.default:_}" if isinstance(item.default, int) else str(item.default)
        assert f"| `{item.name}` | {default} {item.unit} |" in text, item.name
    assert "`limit_exceeded`" in (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
