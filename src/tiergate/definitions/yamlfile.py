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


#: Limits of one definition file: its size, the values it may expand to (aliases count each time
#: they are used, so an alias bomb stops here instead of filling memory) and how deep it may nest.
MAX_YAML_BYTES = 1024 * 1024
MAX_YAML_VALUES = 100_000
MAX_YAML_DEPTH = 64


class _TooBig(Exception):
    pass


def _plain(node: Any, ptr: str, lines: dict[str, int], budget: list[int] | None = None, depth: int = 0) -> Any:
    if budget is not None:
        budget[0] -= 1
        if budget[0] < 0:
            raise _TooBig(f"it expands to more than {MAX_YAML_VALUES} values (aliases count each time they are "
                          "used): an alias bomb, or a file too large to be a definition")
        if depth > MAX_YAML_DEPTH:
            raise _TooBig(f"it nests more than {MAX_YAML_DEPTH} levels deep at {ptr}")
    if isinstance(node, CommentedMap):
        out: dict[str, Any] = {}
        for key, value in node.items():
            child = f"{ptr}/{escape_pointer_token(key)}"
            key_line = node.lc.key(key)
            if key_line is not None:
                lines[child] = key_line[0] + 1
            out[str(key) if not isinstance(key, (str, int, bool)) else key] = _plain(value, child, lines, budget,
                                                                                     depth + 1)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for index, value in enumerate(node):
            child = f"{ptr}/{index}"
            item_line = node.lc.item(index)
            if item_line is not None:
                lines[child] = item_line[0] + 1
            items.append(_plain(value, child, lines, budget, depth + 1))
        return items
    if isinstance(node, str):
        return str(node)
    return node


def parse_yaml(text: str, path: Path) -> YamlDocument:
    """Parse YAML text; a syntax error becomes a DefinitionError with the file and line."""
    if len(text) > MAX_YAML_BYTES:
        raise DefinitionError(f"{path}:1: the file is {len(text)} characters; a definition may have at most "
                              f"{MAX_YAML_BYTES}. Split it, or keep large data out of definitions.",
                              code="yaml_too_large", details={"path": str(path), "line": 1,
                                                               "problem": f"the file is larger than {MAX_YAML_BYTES} characters"})
    yaml = YAML(typ="rt", pure=True)
    try:
        raw = yaml.load(text)
    except RecursionError:
        raise DefinitionError(f"{path}:1: the YAML nests too deeply to read.", code="yaml_too_large",
                              details={"path": str(path), "line": 1, "problem": "the YAML nests too deeply to read"}) \
            from None
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
    try:
        data = _plain(raw, "", lines, [MAX_YAML_VALUES])
    except _TooBig as exc:
        raise DefinitionError(f"{path}:1: {exc.args[0]}. Write the values out, or split the file.",
                              code="yaml_too_large", details={"path": str(path), "line": 1, "problem": exc.args[0]}) \
            from None
    except RecursionError:  # an alias that contains itself
        raise DefinitionError(f"{path}:1: an alias refers to itself.", code="yaml_too_large",
                              details={"path": str(path), "line": 1, "problem": "an alias refers to itself"}) from None
    return YamlDocument(path=path, data=data, lines=LineMap(lines))


def load_yaml(path: Path) -> YamlDocument:
    try:
        if path.stat().st_size > 4 * MAX_YAML_BYTES:
            raise DefinitionError(f"{path}:1: the file is {path.stat().st_size} bytes; a definition may have at most "
                                  f"{MAX_YAML_BYTES}.", code="yaml_too_large",
                                  details={"path": str(path), "line": 1, "problem": "the file is too large"})
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DefinitionError(f"{path}:1: not UTF-8 text. Save the file as UTF-8.", code="yaml_syntax",
                              details={"path": str(path), "line": 1,
                                       "problem": "the file is not UTF-8 text (save it as UTF-8)"}) from None
    return parse_yaml(text, path)
