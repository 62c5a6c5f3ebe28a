"""Reading BPMN XML safely.

Every BPMN document tiergate reads goes through ``parse_bpmn``: lxml with entity resolution,
DTD loading and network access off, and any ``<!DOCTYPE>`` or ``<!ENTITY>`` refused outright
(a BPMN file never needs one; XXE and "billion laughs" payloads always do). SpiffWorkflow is
then handed the tree parsed here; it never opens a file itself.
"""

from __future__ import annotations

import re

from lxml import etree

from tiergate.errors import DefinitionError

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI_NS = "http://www.omg.org/spec/BPMN/20100524/DI"
DC_NS = "http://www.omg.org/spec/DD/20100524/DC"
DI_NS = "http://www.omg.org/spec/DD/20100524/DI"
CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
NSMAP = {"bpmn": BPMN_NS, "bpmndi": BPMNDI_NS, "dc": DC_NS, "di": DI_NS, "camunda": CAMUNDA_NS,
         "spiffworkflow": SPIFF_NS}

MAX_BYTES = 10 * 1024 * 1024
_DECLARATION = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.I)


class BpmnError(DefinitionError):
    """A BPMN file that cannot be used; ``details`` carries ``line`` and, where known, ``element``."""

    code = "bpmn_invalid"

    def __init__(self, message: str, *, line: int | None = None, element: str | None = None,
                 source: str | None = None):
        details: dict[str, object] = {}
        if line is not None:
            details["line"] = line
        if element is not None:
            details["element"] = element
        if source is not None:
            details["path"] = source
        super().__init__(message, details=details)
        self.line = line
        self.element = element


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                           huge_tree=False, remove_blank_text=False)


def _declaration_line(data: bytes) -> int:
    for encoding in ("utf-8", "utf-16", "latin-1"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        match = re.search(r"<!\s*(DOCTYPE|ENTITY)", text, re.I)
        if match:
            return text.count("\n", 0, match.start()) + 1
    return 1


def parse_bpmn(data: bytes | str, source: str) -> etree._ElementTree:
    """Parse a BPMN document with the hardened parser. Raises BpmnError with the line."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if len(data) > MAX_BYTES:
        raise BpmnError(f"{source} is {len(data)} bytes; BPMN files are limited to {MAX_BYTES}.", line=1,
                        source=source)
    if _DECLARATION.search(data) or _DECLARATION.search(data.replace(b"\x00", b"")):
        line = _declaration_line(data)
        raise BpmnError(f"{source}:{line}: the file has a <!DOCTYPE> or <!ENTITY> declaration. BPMN files never "
                        "need one and it is refused (it is how XML entity attacks are written). Remove it.",
                        line=line, source=source)
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        line = exc.lineno or 1
        message = exc.msg or str(exc)
        raise BpmnError(f"{source}:{line}: not well-formed XML: {message}. Fix the XML (a modeler's export is always "
                        "well-formed; was the file edited by hand?).", line=line, source=source) from None
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise BpmnError(f"{source}:1: the file has a <!DOCTYPE> declaration, which is refused. Remove it.", line=1,
                        source=source)
    if etree.QName(root).namespace != BPMN_NS or etree.QName(root).localname != "definitions":
        raise BpmnError(f"{source}:{root.sourceline or 1}: the root element is <{root.tag}>, not a BPMN 2.0 "
                        f"<definitions> in the namespace {BPMN_NS}. Export the diagram as BPMN 2.0 XML.",
                        line=root.sourceline or 1, source=source)
    return tree


def local(element: etree._Element) -> str:
    return etree.QName(element).localname if isinstance(element.tag, str) else ""
