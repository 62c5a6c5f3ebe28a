"""The one JSON shape for machines, shared by every `--json` answer and every MCP tool result."""

from __future__ import annotations

from typing import Any


def success(data: Any) -> dict[str, Any]:
    return {"ok": True, "data": data}


def failure(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"ok": False, "error": {"code": code, "message": message, "details": details or {}}}
