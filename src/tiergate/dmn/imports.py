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


class Imported:
    __slots__ = ("alias", "namespace", "model")

    def __init__(self, alias: str, namespace: str, model: "DMNModel"):
        self.alias, self.namespace, self.model = alias, namespace, model


def load_imports(reader: Reader, root: etree._Element, source: Any,
                 chain: tuple[str, ...]) -> list[Imported]:
    """The DMN models ``root`` imports, loaded (``chain``: the files importing this one)."""
    elements = [el for el in reader.children(root, "import")]
    if not elements:
        return []
    from .evaluate import DMNModel

    here = _file_of(source)
    out: list[Imported] = []
    for el in elements:
        alias, namespace = el.get("name"), el.get("namespace")
        kind = el.get("importType") or ""
        if "/MODEL" not in kind.upper() and "DMN" not in kind.upper():
            raise reader.error(el, f"<import> of type {kind!r}: only DMN models can be imported")
        if not alias or not namespace:
            raise reader.error(el, "<import> needs a name (its alias) and the namespace of the model")
        if here is None:
            raise reader.error(el, f"<import> {alias!r}: the model was not loaded from a file, so "
                               "there is no directory to find the imported model in; load it by path")
        if len(chain) >= MAX_DEPTH:
            raise reader.error(el, f"<import> {alias!r}: imports nest deeper than {MAX_DEPTH} models")
        path = _find(here.parent, el.get("locationURI"), namespace)
        if path is None:
            raise reader.error(el, f"<import> {alias!r}: no .dmn file in {here.parent} has the "
                               f"namespace {namespace!r}; put the imported model beside this one")
        if str(path.resolve()) in chain:
            raise reader.error(el, f"<import> {alias!r}: {path.name} imports this model back (a cycle)")
        out.append(Imported(alias, namespace, DMNModel(path, _chain=chain)))
    return out


def _file_of(source: Any) -> Path | None:
    if isinstance(source, Path):
        return source
    if isinstance(source, str) and not source.lstrip().startswith("<"):
        return Path(source)
    return None


def _find(directory: Path, location: str | None, namespace: str) -> Path | None:
    if location and "/" not in location and "\\" not in location and location not in (".", ".."):
        candidate = directory / location
        if candidate.is_file():
            return candidate
    for i, candidate in enumerate(sorted(directory.glob("*.dmn"))):
        if i >= MAX_CANDIDATES:
            break
        try:
            root, _, _ = parse_xml(candidate)
        except DMNError:
            continue
        if root.get("namespace") == namespace:
            return candidate
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
