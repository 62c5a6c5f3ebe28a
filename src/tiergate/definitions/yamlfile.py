"""Reading YAML definition files with a map from JSON pointer to line.

Definitions are plain data once loaded, but every problem found in them must be reported
as ``path:line``. ``load_yaml`` returns the data as plain dicts and lists together with a
``LineMap`` that answers "which line is ``/steps/2/done_when`` on?".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from tiergate.errors import DefinitionError


def escape_pointer_token(token: str | int) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def pointer(parts: tuple[Any, ...] | list[Any]) -> str:
    """JSON pointer (RFC 6901) for a path of keys and indexes."""
    return "".join("/" + escape_pointer_token(p) for p in parts)


@dataclass
class LineMap:
    """Line numbers (1-based) of the nodes of one YAML document, keyed by JSON pointer."""

    lines: dict[str, int] = field(default_factory=dict)

    def line_of(self, ptr: str) -> int:
        """The line of the node at ``ptr``, or of its nearest ancestor that has one."""
        while True:
            if ptr in self.lines:
                return self.lines[ptr]
            if not ptr:
                return 1
            ptr = ptr.rsplit("/", 1)[0]


@dataclass
class YamlDocument:
    path: Path
    data: Any
    lines: LineMap

    def line_of(self, ptr: str) -> int:
        return self.lines.line_of(ptr)


def _plain(node: Any, ptr: str, lines: dict[str, int]) -> Any:
    if isinstance(node, CommentedMap):
        out: dict[str, Any] = {}
        for key, value in node.items():
            child = f"{ptr}/{escape_pointer_token(key)}"
            key_line = node.lc.key(key)
            if key_line is not None:
                lines[child] = key_line[0] + 1
            out[str(key) if not isinstance(key, (str, int, bool)) else key] = _plain(value, child, lines)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for index, value in enumerate(node):
            child = f"{ptr}/{index}"
            item_line = node.lc.item(index)
            if item_line is not None:
                lines[child] = item_line[0] + 1
            items.append(_plain(value, child, lines))
        return items
    if isinstance(node, str):
        return str(node)
    return node


def parse_yaml(text: str, path: Path) -> YamlDocument:
    """Parse YAML text; a syntax error becomes a DefinitionError with the file and line."""
    yaml = YAML(typ="rt", pure=True)
    try:
        raw = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = exc.problem or exc.context or "invalid YAML"
        raise DefinitionError(
            f"{path}:{line}: YAML syntax error: {problem}. Fix the YAML at that line.",
            code="yaml_syntax",
            details={"path": str(path), "line": line, "problem": problem},
        ) from None
    except YAMLError as exc:  # pragma: no cover - ruamel raises marked errors for syntax
        raise DefinitionError(f"{path}:1: YAML error: {exc}", code="yaml_syntax", details={"path": str(path), "line": 1}) from None
    lines: dict[str, int] = {"": 1}
    data = _plain(raw, "", lines)
    return YamlDocument(path=path, data=data, lines=LineMap(lines))


def load_yaml(path: Path) -> YamlDocument:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DefinitionError(f"{path}:1: not UTF-8 text. Save the file as UTF-8.", code="yaml_syntax",
                              details={"path": str(path), "line": 1}) from None
    return parse_yaml(text, path)
