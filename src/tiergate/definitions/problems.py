"""Problems found in definitions, each with its file, line and JSON pointer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from tiergate.definitions.yamlfile import YamlDocument, pointer


@dataclass(frozen=True)
class Problem:
    path: str
    line: int
    message: str
    severity: Literal["error", "warning"] = "error"
    pointer: str = ""

    def __str__(self) -> str:
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{self.path}:{self.line}: {prefix}{self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line, "pointer": self.pointer, "severity": self.severity,
                "message": self.message}


class ProblemList(list[Problem]):
    """Collects problems for one file, turning pointers into lines."""

    def __init__(self, display_path: str, document: YamlDocument | None = None):
        super().__init__()
        self.display_path = display_path
        self.document = document

    def add(self, ptr: str, message: str, *, severity: Literal["error", "warning"] = "error",
            line: int | None = None) -> None:
        if line is None:
            line = self.document.line_of(ptr) if self.document is not None else 1
        self.append(Problem(self.display_path, line, message, severity, ptr))

    def add_validation_error(self, error: ValidationError, data: Any, base: tuple[Any, ...] = ()) -> None:
        for item in error.errors():
            loc = base + tuple(item["loc"])
            kind = item["type"]
            if kind == "extra_forbidden":
                parent_ptr = pointer(loc[:-1])
                self.add(pointer(loc), f"unknown key '{loc[-1]}'{_at(parent_ptr)}. "
                         "Remove it or check its spelling (`tiergate schema checklist` lists the keys).")
            elif kind == "missing":
                self.add(pointer(loc[:-1]), f"missing required key '{loc[-1]}'{_at(pointer(loc[:-1]))}. Add it.")
            else:
                got = item.get("input")
                shown = repr(got) if not isinstance(got, (dict, list)) else type(got).__name__
                self.add(pointer(loc), f"{pointer(loc)}: {item['msg']} (got {shown}).")

    @property
    def has_errors(self) -> bool:
        return any(p.severity == "error" for p in self)


def _at(ptr: str) -> str:
    return f" at {ptr}" if ptr else ""
