"""Helpers to write small DMN models inline in tests (used through the ``dmn`` fixture)."""

from __future__ import annotations

from xml.sax.saxutils import escape

DMN13 = "https://www.omg.org/spec/DMN/20191111/MODEL/"


def definitions(body: str, ns: str = DMN13, prefix: str | None = None) -> bytes:
    """Wrap ``body`` (written without prefixes) in <definitions>; with ``prefix``, every DMN
    element gets that namespace prefix instead of the default namespace."""
    if prefix:
        import re

        body = re.sub(r"<(/?)([A-Za-z])", rf"<\1{prefix}:\2", body)
        return (f'<?xml version="1.0" encoding="UTF-8"?><{prefix}:definitions xmlns:{prefix}="{ns}" '
                f'id="defs" name="test" namespace="urn:test">{body}</{prefix}:definitions>').encode()
    return (f'<?xml version="1.0" encoding="UTF-8"?><definitions xmlns="{ns}" id="defs" name="test" '
            f'namespace="urn:test">{body}</definitions>').encode()


def table(rules, *, inputs=(("Age", "number"),), outputs=(("result", "string"),), hit="UNIQUE",
          aggregation=None, decision_id="decision", name="Decision", table_id="table",
          output_values=None, defaults=None, rule_ids=True, input_data=True) -> str:
    """A decision with one table. ``rules``: [([input cells], [output cells])]."""
    agg = f' aggregation="{aggregation}"' if aggregation else ""
    tid = f' id="{table_id}"' if table_id else ""
    parts = [f'<decision id="{decision_id}" name="{name}"><decisionTable{tid} hitPolicy="{hit}"{agg}>']
    for i, (label, type_ref) in enumerate(inputs):
        parts.append(f'<input id="in{i}" label="{escape(label)}"><inputExpression typeRef="{type_ref}">'
                     f'<text>{escape(label)}</text></inputExpression></input>')
    for i, (oname, type_ref) in enumerate(outputs):
        named = f' name="{oname}"' if len(outputs) > 1 or oname else ""
        values = (output_values or {}).get(oname)
        default = (defaults or {}).get(oname)
        parts.append(f'<output id="out{i}"{named} typeRef="{type_ref}">'
                     + (f"<outputValues><text>{escape(values)}</text></outputValues>" if values else "")
                     + (f"<defaultOutputEntry><text>{escape(default)}</text></defaultOutputEntry>"
                        if default else "")
                     + "</output>")
    for n, (ins, outs) in enumerate(rules, 1):
        rid = f' id="r{n}"' if rule_ids else ""
        parts.append(f"<rule{rid}>"
                     + "".join(f"<inputEntry><text>{escape(c)}</text></inputEntry>" for c in ins)
                     + "".join(f"<outputEntry><text>{escape(c)}</text></outputEntry>" for c in outs)
                     + "</rule>")
    parts.append("</decisionTable></decision>")
    if input_data:
        for label, type_ref in inputs:
            parts.append(f'<inputData id="id_{abs(hash(label))}" name="{escape(label)}">'
                         f'<variable name="{escape(label)}" typeRef="{type_ref}"/></inputData>')
    return "".join(parts)


def literal(name: str, text: str, *, decision_id: str | None = None, type_ref: str | None = None,
            requires: str = "") -> str:
    t = f' typeRef="{type_ref}"' if type_ref else ""
    return (f'<decision id="{decision_id or name.replace(" ", "_")}" name="{name}">'
            f'<variable name="{name}"{t}/>{requires}'
            f"<literalExpression><text>{escape(text)}</text></literalExpression></decision>")


def input_data(name: str, type_ref: str | None = None, ident: str | None = None) -> str:
    t = f' typeRef="{type_ref}"' if type_ref else ""
    return (f'<inputData id="{ident or "i_" + name.replace(" ", "_")}" name="{name}">'
            f'<variable name="{name}"{t}/></inputData>')
