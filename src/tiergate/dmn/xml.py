"""Hardened reading of DMN XML.

Refused outright (DMNError, nothing parsed): any DOCTYPE, entity or other markup declaration —
so no external entities (XXE), no entity expansion bombs, no external DTDs. lxml additionally
runs with entity resolution, DTD loading and network access off and its size limits on.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from lxml import etree

from ..errors import DMNError

#: Namespaces of the DMN versions tiergate reads (1.1 to 1.5).
DMN_NAMESPACES = (
    "http://www.omg.org/spec/DMN/20151101/dmn.xsd",       # DMN 1.1
    "http://www.omg.org/spec/DMN/20180521/MODEL/",        # DMN 1.2
    "https://www.omg.org/spec/DMN/20191111/MODEL/",       # DMN 1.3
    "https://www.omg.org/spec/DMN/20211108/MODEL/",       # DMN 1.4
    "https://www.omg.org/spec/DMN/20230324/MODEL/",       # DMN 1.5
)
_LATER_DMN = re.compile(r"^https?://www\.omg\.org/spec/DMN/20\d{6}/MODEL/?$")
_DECLARATION = re.compile(rb"<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)", re.IGNORECASE)


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           dtd_validation=False, huge_tree=False, remove_pis=True)


def read_source(source: str | Path | bytes) -> tuple[bytes, str]:
    """The XML bytes and a label for messages. ``source``: a path, XML bytes, or XML text."""
    if isinstance(source, bytes):
        return source, "<bytes>"
    if isinstance(source, str) and source.lstrip().startswith("<"):
        return source.encode("utf-8"), "<string>"
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            return path.read_bytes(), str(path)
        except OSError as exc:
            raise DMNError(f"cannot read DMN file {path}: {exc.strerror or exc}",
                           details={"file": str(path)}) from None
    raise DMNError(f"load_dmn takes a path or XML bytes, not {type(source).__name__}",
                   details={"type": type(source).__name__})


def _refuse_declarations(data: bytes, label: str) -> None:
    probes = [data]
    if b"\x00" in data[:512]:  # UTF-16/32, with or without a byte order mark
        probes.append(data.replace(b"\x00", b""))
        for enc in ("utf-16", "utf-32"):
            try:
                probes.append(data.decode(enc).encode("utf-8"))
            except UnicodeError:
                pass
    for probe in probes:
        m = _DECLARATION.search(probe)
        if m:
            line = probe[: m.start()].count(b"\n") + 1
            raise DMNError(
                f"{label}: refused: the document contains a <!{m.group(1).decode().upper()} ...> "
                f"declaration at line {line}. DMN files must not have a DOCTYPE or entity "
                "declarations (they enable XXE and entity-expansion attacks); remove it.",
                details={"file": label, "line": line, "declaration": m.group(1).decode().upper()},
            )


def parse_xml(source: str | Path | bytes, label: str | None = None) -> tuple[etree._Element, str, str]:
    """Parse a DMN document safely; returns (definitions element, DMN namespace, label).

    ``label``: the name messages give the document (default: its path, or ``<bytes>``)."""
    data, shown = read_source(source)
    label = label or shown
    _refuse_declarations(data, label)
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        line = exc.lineno or (exc.position[0] if exc.position else None)
        raise DMNError(f"{label}: not well-formed XML at line {line}: {exc.msg}. Fix the XML.",
                       details={"file": label, "line": line}) from None
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise DMNError(f"{label}: refused: the document has a DOCTYPE; remove it.",
                       details={"file": label})
    if not isinstance(root.tag, str):
        raise DMNError(f"{label}: the document has no root element", details={"file": label})
    qname = etree.QName(root)
    if qname.localname != "definitions":
        raise DMNError(f"{label}: the root element is <{qname.localname}>, not a DMN <definitions>",
                       details={"file": label, "line": root.sourceline})
    ns = qname.namespace or ""
    if ns not in DMN_NAMESPACES and not _LATER_DMN.match(ns):
        raise DMNError(
            f"{label}: <definitions> is in namespace {ns!r}, which is not a DMN namespace; "
            f"expected one of: {', '.join(DMN_NAMESPACES)}",
            details={"file": label, "namespace": ns, "line": root.sourceline},
        )
    return root, ns, label


class Reader:
    """Namespace-aware helpers over the elements of one DMN document."""

    def __init__(self, ns: str, label: str):
        self.ns, self.label = ns, label
        self._prefix = "{" + ns + "}"

    def local(self, el: etree._Element) -> str | None:
        tag = el.tag
        if not isinstance(tag, str):
            return None  # comment or processing instruction
        if tag.startswith(self._prefix):
            return tag[len(self._prefix):]
        return None  # foreign element (extensions, DMNDI)

    def children(self, el: etree._Element, name: str | None = None) -> Iterator[etree._Element]:
        for child in el:
            local = self.local(child)
            if local is not None and (name is None or local == name):
                yield child

    def child(self, el: etree._Element, name: str) -> etree._Element | None:
        return next(self.children(el, name), None)

    def text(self, el: etree._Element | None, name: str = "text") -> str | None:
        """The ``<text>`` content of ``el`` (None when absent)."""
        if el is None:
            return None
        t = self.child(el, name)
        if t is None:
            return None
        return (t.text or "").strip()

    def where(self, el: etree._Element) -> str:
        ident = el.get("id")
        parts = [f"<{self.local(el) or etree.QName(el).localname}>"]
        if ident:
            parts.append(f"id {ident!r}")
        if el.get("name"):
            parts.append(f"name {el.get('name')!r}")
        parts.append(f"line {el.sourceline}")
        return f"{self.label}: " + ", ".join(parts)

    def error(self, el: etree._Element, what: str, **details) -> DMNError:
        return DMNError(f"{self.where(el)}: {what}",
                        details={"file": self.label, "element": self.local(el), "id": el.get("id"),
                                 "line": el.sourceline, **details})
