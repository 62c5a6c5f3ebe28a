"""``<import>`` of other DMN models.

An import names another model by its ``namespace`` and gives it an alias (``name``). tiergate
looks for it in the importing file's own directory only: the file ``locationURI`` names when that
is a plain file name, otherwise the ``.dmn`` file whose ``<definitions namespace>`` matches. The
imported model is loaded as any model (the same safe XML parsing), then the importing model sees

- its item definitions as ``alias.tName`` typeRefs, and
- its business knowledge models and decision services as the context ``alias``:
  ``myimport.Say Hello(A Person)``.

- its decisions, required by ``requiredDecision href="namespace#id"``, as entries of the same
  context (``Model B.Evaluating Say Hello``): evaluated by the imported model with the inputs
  of the same names, which become inputs of the requiring decision.

Its inputData cannot be required directly (a clear error names the requirement). Imports nest up
to :data:`MAX_DEPTH` models; a cycle is an error.

Where the files come from is a :class:`Siblings`: the importing file's directory, or the files a
run pinned (file name -> XML), so a run keeps the imported models it started with. Either way it
records every file it handed out (``loaded``), which is what a definition snapshot pins.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from lxml import etree

from ..errors import DMNError
from .xml import Reader, parse_xml

if TYPE_CHECKING:
    from .evaluate import DMNModel

MAX_DEPTH = 8
#: files looked at for a namespace in one directory
MAX_CANDIDATES = 200


class Siblings:
    """The .dmn files an import may name: a directory's, or pinned texts (file name -> XML bytes).

    ``home``: the directory is a home's ``decisions/``: a locationURI that is not a plain file
    name there, and a symbolic link, are refused (a deployment would not carry the file)."""

    def __init__(self, directory: Path | None = None, pinned: dict[str, bytes] | None = None,
                 shown: str | None = None, home: bool = False):
        self.directory, self.pinned, self.home = directory, pinned, home
        self.shown = shown if shown is not None else (str(directory) if directory is not None else "decisions")
        self.loaded: dict[str, bytes] = {}

    @classmethod
    def of(cls, source: Any) -> "Siblings | None":
        here = _file_of(source)
        return None if here is None else cls(here.parent)

    def label(self, name: str) -> str:
        if self.directory is not None and not self.home:
            return str(self.directory / name)
        return f"{self.shown}/{name}"

    def _names(self) -> list[str]:
        if self.pinned is not None:
            return sorted(self.pinned)
        assert self.directory is not None
        return [p.name for p in sorted(self.directory.glob("*.dmn"))[:MAX_CANDIDATES]]

    def _read(self, name: str) -> bytes | None:
        if self.pinned is not None:
            return self.pinned.get(name)
        assert self.directory is not None
        path = self.directory / name
        if self.home and path.is_symlink():
            return None
        try:
            return path.read_bytes() if path.is_file() else None
        except OSError:
            return None

    def find(self, location: str | None, namespace: str) -> tuple[str, bytes] | None:
        """(file name, XML) of the model ``location`` names, or of the one with ``namespace``."""
        if location and _plain(location):
            data = self._read(location)
            if data is not None:
                self.loaded[location] = data
                return location, data
        for name in self._names():
            data = self._read(name)
            if data is None:
                continue
            try:
                root, _, _ = parse_xml(data)
            except DMNError:
                continue
            if root.get("namespace") == namespace:
                self.loaded[name] = data
                return name, data
        return None


def _plain(location: str) -> bool:
    return "/" not in location and "\\" not in location and ":" not in location and location not in (".", "..")


class Imported:
    __slots__ = ("alias", "namespace", "model")

    def __init__(self, alias: str, namespace: str, model: "DMNModel"):
        self.alias, self.namespace, self.model = alias, namespace, model


def load_imports(reader: Reader, root: etree._Element, siblings: "Siblings | None",
                 chain: tuple[str, ...]) -> list[Imported]:
    """The DMN models ``root`` imports, loaded (``chain``: the files importing this one, by name)."""
    elements = [el for el in reader.children(root, "import")]
    if not elements:
        return []
    from .evaluate import DMNModel

    out: list[Imported] = []
    for el in elements:
        alias, namespace = el.get("name"), el.get("namespace")
        kind = el.get("importType") or ""
        if "/MODEL" not in kind.upper() and "DMN" not in kind.upper():
            raise reader.error(el, f"<import> of type {kind!r}: only DMN models can be imported")
        if not alias or not namespace:
            raise reader.error(el, "<import> needs a name (its alias) and the namespace of the model")
        if siblings is None:
            raise reader.error(el, f"<import> {alias!r}: the model was not loaded from a file, so "
                               "there is no directory to find the imported model in; load it by path")
        if len(chain) >= MAX_DEPTH:
            raise reader.error(el, f"<import> {alias!r}: imports nest deeper than {MAX_DEPTH} models")
        location = el.get("locationURI")
        if siblings.home and location and not _plain(location):
            raise reader.error(el, f"<import> {alias!r}: locationURI {location!r} points outside "
                               f"{siblings.shown}/; an imported model must be a file beside the importing "
                               "one: copy it into that folder and give its plain file name")
        found = siblings.find(location, namespace)
        if found is None:
            raise reader.error(el, f"<import> {alias!r}: no .dmn file in {siblings.shown} has the "
                               f"namespace {namespace!r}; put the imported model beside this one")
        name, data = found
        if name in chain:
            raise reader.error(el, f"<import> {alias!r}: {name} imports this model back (a cycle)")
        model = DMNModel(data, _chain=chain, _label=siblings.label(name), _siblings=siblings)
        out.append(Imported(alias, namespace, model))
    return out


def _file_of(source: Any) -> Path | None:
    if isinstance(source, Path):
        return source
    if isinstance(source, str) and not source.lstrip().startswith("<"):
        return Path(source)
    return None


def context_of(model: "DMNModel") -> dict[str, Any]:
    """What an alias stands for in FEEL: the imported model's functions (and its own imports)."""
    return dict(model._base_env)


def with_imported_decisions(fn, needed: list[tuple[str, "DMNModel", str]]):
    """``fn`` run with each required imported decision's value in its alias's context."""
    def run(env):
        env = dict(env)
        for alias, model, name in needed:
            inputs = {n: env.get(n) for n in model.input_names(name)}
            context = dict(env.get(alias) or {})
            context[name] = model.evaluate(name, inputs).value
            env[alias] = context
        return fn(env)

    return run


def imported_href(imports: list[Imported], href: str) -> Imported | None:
    """The import an ``href`` such as ``namespace#id`` points into, or None."""
    for imp in imports:
        if href.startswith(imp.namespace + "#"):
            return imp
    return None
