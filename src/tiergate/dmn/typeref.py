"""DMN typeRefs: FEEL built-in types and the model's itemDefinitions, and conformance.

``TypeSpec.coerce(value)`` returns the value, converted by DMN's implicit conversions
(a one-item list where a single value is expected is unwrapped; a single value where a
collection is expected is wrapped), or :data:`FAIL` when it does not conform.
"""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal
from typing import Any, Callable

from lxml import etree

from .feel import compile_feel
from .feel.fardate import FarDate, FarDateTime, NanoTime
from .feel.parser import FEELSyntaxError
from .feel.types import builtin_type, conforms_builtin
from .xml import Reader

FAIL: Any = type("Fail", (), {"__repr__": lambda self: "FAIL"})()


class TypeSpec:
    """A type: a FEEL built-in (``base``), another item definition (``ref``) or a structure."""

    def __init__(self, name: str):
        self.name = name
        self.base: str | None = None
        self.ref: TypeSpec | None = None
        self.ref_name: str | None = None
        self.is_collection = False
        self.allowed: Callable[[Any, dict], Any] | None = None
        self.allowed_text: str | None = None
        self.components: dict[str, TypeSpec] | None = None
        self._fast: frozenset | None = None  # classes that conform as they are

    def _fast_classes(self) -> frozenset:
        if self.is_collection or self.ref is not None or self.allowed is not None or self.base is None:
            return frozenset()
        return _CLASSES.get(self.base, frozenset())

    def __repr__(self) -> str:
        return f"<TypeSpec {self.name}>"

    def describe(self) -> str:
        return self.name + (" (list)" if self.is_collection else "")

    def coerce(self, value: Any) -> Any:
        if value is None:
            return None
        fast = self._fast
        if fast is None:
            fast = self._fast = self._fast_classes()
        if value.__class__ in fast:
            return value
        if self.is_collection:
            items = value if value.__class__ is list else [value]
            out = []
            for item in items:
                item = self._coerce_item(item)
                if item is FAIL:
                    return FAIL
                out.append(item)
            return out
        if value.__class__ is list and len(value) == 1 and self._expects_single():
            value = value[0]
        return self._coerce_item(value)

    def _expects_single(self) -> bool:
        spec = self
        while spec.ref is not None and not spec.is_collection:
            spec = spec.ref
        return not spec.is_collection and spec.base not in ("list", "Any")

    def _coerce_item(self, value: Any) -> Any:
        if value is None:
            return None
        if self.ref is not None:
            value = self.ref.coerce(value)
            if value is FAIL:
                return FAIL
        elif self.base is not None:
            if not conforms_builtin(value, self.base):
                return FAIL
        elif self.components is not None:
            if value.__class__ is not dict:
                return FAIL
            out = dict(value)
            for key, spec in self.components.items():
                if key not in out:  # a context lacking a component does not conform
                    return FAIL
                converted = spec.coerce(out[key])
                if converted is FAIL:
                    return FAIL
                out[key] = converted
            value = out
        if self.allowed is not None and self.allowed(value, {}) is not True:
            return FAIL
        return value

    def conforms(self, value: Any) -> bool:
        """``value instance of`` this type: its structure and kinds; allowedValues do not count
        (DMN 1.5 10.3.2.9.1, TCK 0070), nor does a one-item list stand for its item."""
        if value is None:
            return True
        if self.is_collection:
            return value.__class__ is list and all(self._conforms_item(x) for x in value)
        return self._conforms_item(value)

    def _conforms_item(self, value: Any) -> bool:
        if value is None:
            return True
        if self.ref is not None:
            return self.ref.conforms(value)
        if self.base is not None:
            return conforms_builtin(value, self.base)
        if self.components is not None:
            return value.__class__ is dict and all(
                key in value and spec.conforms(value[key]) for key, spec in self.components.items())
        return self.coerce(value) is not FAIL


_CLASSES = {"number": frozenset([Decimal]), "string": frozenset([str]), "boolean": frozenset([bool]),
            "date": frozenset([_dt.date, FarDate]), "time": frozenset([_dt.time, NanoTime]),
            "date and time": frozenset([_dt.datetime, FarDateTime]), "days and time duration": frozenset([_dt.timedelta]),
            "context": frozenset([dict]), "list": frozenset([list])}

ANY = TypeSpec("Any")
ANY.base = "Any"


def _builtin_spec(name: str, base: str) -> TypeSpec:
    spec = TypeSpec(name)
    spec.base = base
    return spec


class TypeRegistry:
    """The itemDefinitions of one model, resolved; ``get(typeRef)`` for any typeRef text."""

    def __init__(self, reader: Reader, definitions: etree._Element):
        self.reader = reader
        self.specs: dict[str, TypeSpec] = {}
        self._elements: dict[str, etree._Element] = {}
        for el in reader.children(definitions, "itemDefinition"):
            name = el.get("name")
            if not name:
                raise reader.error(el, "itemDefinition without a name; give it a name")
            self._elements[name] = el
            self.specs[name] = TypeSpec(name)
        for name, el in self._elements.items():
            self._fill(self.specs[name], el)
        for name in self.specs:
            self._check_cycle(self.specs[name], set())

    def _fill(self, spec: TypeSpec, el: etree._Element) -> None:
        r = self.reader
        spec.is_collection = el.get("isCollection", "false").strip() == "true"
        type_ref = r.text(el, "typeRef")
        if type_ref is None:
            type_ref = el.get("typeRef")
        components = list(r.children(el, "itemComponent"))
        if r.child(el, "functionItem") is not None:
            spec.base = "function"
        elif type_ref:
            base = builtin_type(type_ref)
            if base is not None:
                spec.base = base
            else:
                spec.ref_name = _local_name(type_ref)
                target = self.specs.get(spec.ref_name)
                if target is None:
                    raise r.error(el, f"typeRef {type_ref!r} names no FEEL type and no itemDefinition",
                                  typeRef=type_ref)
                spec.ref = target
        elif components:
            spec.components = {}
            for comp in components:
                cname = comp.get("name")
                if not cname:
                    raise r.error(comp, "itemComponent without a name")
                child = TypeSpec(f"{spec.name}.{cname}")
                self._fill(child, comp)
                spec.components[cname] = child
        else:
            spec.base = "Any"
        allowed = r.child(el, "allowedValues")
        if allowed is None:
            allowed = r.child(el, "typeConstraint")
        if allowed is not None:
            text = r.text(allowed)
            if text:
                try:
                    spec.allowed = compile_feel(text, "tests").fn
                except FEELSyntaxError as exc:
                    raise r.error(allowed, f"allowed values: {exc.message}", **exc.details) from None
                spec.allowed_text = text

    def _check_cycle(self, spec: TypeSpec, seen: set) -> None:
        if spec.ref is None:
            return
        if spec.name in seen:
            raise self.reader.error(self._elements[spec.name], "itemDefinition refers to itself "
                                    "through its typeRef chain")
        self._check_cycle(spec.ref, seen | {spec.name})

    def get(self, type_ref: str | None, el: etree._Element | None = None) -> TypeSpec | None:
        """The spec a typeRef names; None for no typeRef; DMNError when it names nothing."""
        if not type_ref:
            return None
        base = builtin_type(type_ref)
        if base is not None:
            return ANY if base == "Any" else _builtin_spec(base, base)
        spec = self.specs.get(_local_name(type_ref))
        if spec is None and el is not None:
            raise self.reader.error(el, f"typeRef {type_ref!r} names no FEEL type and no itemDefinition "
                                    f"(known: {', '.join(sorted(self.specs)) or 'none'})", typeRef=type_ref)
        return spec

    def add_imported(self, alias: str, other: "TypeRegistry") -> None:
        """The item definitions of an imported model, as ``alias.tName``."""
        for name, spec in other.specs.items():
            self.specs[f"{alias}.{name}"] = spec

    def function_output(self, type_ref: str | None) -> TypeSpec | None:
        """The ``outputTypeRef`` of the ``<functionItem>`` of the itemDefinition ``type_ref``."""
        item = self._elements.get(_local_name(type_ref)) if type_ref else None
        fn_item = self.reader.child(item, "functionItem") if item is not None else None
        out = fn_item.get("outputTypeRef") if fn_item is not None else None
        return self.get(out) if out else None

    def type_check(self, name: str) -> Callable[[Any], bool] | None:
        """For ``instance of``: a predicate for an itemDefinition name, or None."""
        spec = self.specs.get(name)
        if spec is None:
            return None
        return spec.conforms


def _local_name(type_ref: str) -> str:
    type_ref = type_ref.strip()
    if ":" in type_ref:
        prefix, _, rest = type_ref.partition(":")
        if " " not in prefix:
            return rest
    if "." in type_ref:  # namespace-qualified with an import name
        return type_ref
    return type_ref
