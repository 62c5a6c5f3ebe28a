"""Hostile XML is refused; FEEL cannot reach Python objects, attributes, imports or the host."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import tiergate.dmn
from tiergate.dmn import FEELSyntaxError, evaluate_expression as E, load_dmn
from tiergate.errors import DMNError, EvaluationError, FEELError

from dmn_helpers import definitions, table

SECRET_FILE = "/etc/hostname"


def _hostile(doctype: str, body_text: str = "&xxe;") -> bytes:
    return (f'<?xml version="1.0"?>{doctype}<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" '
            f'id="x" name="x" namespace="urn:x"><decision id="d" name="d"><literalExpression>'
            f"<text>{body_text}</text></literalExpression></decision></definitions>").encode()


def test_xxe_with_system_file_entity_is_refused():
    xml = _hostile(f'<!DOCTYPE definitions [<!ENTITY xxe SYSTEM "file://{SECRET_FILE}">]>')
    with pytest.raises(DMNError) as info:
        load_dmn(xml)
    assert "DOCTYPE" in info.value.message and info.value.details["line"] == 1


def test_billion_laughs_is_refused():
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol%s;" % (i - 1 if i > 1 else "")) * 10}">' for i in range(1, 10))
    xml = _hostile(f"<!DOCTYPE lolz [{entities}]>", "&lol9;")
    with pytest.raises(DMNError, match="refused"):
        load_dmn(xml)


def test_external_dtd_is_refused():
    xml = _hostile('<!DOCTYPE definitions SYSTEM "http://attacker.invalid/evil.dtd">', "1")
    with pytest.raises(DMNError, match="DOCTYPE"):
        load_dmn(xml)


def test_parameter_entity_in_utf16_is_refused():
    xml = _hostile('<!DOCTYPE d [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>', "1")
    xml16 = xml.decode().replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>')
    with pytest.raises(DMNError):
        load_dmn(xml16.encode("utf-16"))


def test_utf16_without_bom_is_refused():
    xml = _hostile('<!DOCTYPE d [<!ENTITY x "y">]>', "&x;").decode()
    xml = xml.replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16LE"?>')
    with pytest.raises(DMNError):
        load_dmn(xml.encode("utf-16-le"))


def test_malformed_xml_is_a_dmn_error():
    with pytest.raises(DMNError) as info:
        load_dmn(b"<definitions><decision></definitions>")
    assert info.value.details["line"] == 1


def test_import_call_in_a_cell_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    cell = f'__import__("os").system("touch {marker}")'
    # in a model, calling the unknown function __import__ is an error at run time: null
    model = load_dmn(definitions(table([(["-"], [cell])], outputs=(("out", "string"),))))
    assert model.evaluate("Decision", {"Age": 1}).value is None
    assert not marker.exists()
    # an unknown name read as a value is still refused at load
    with pytest.raises(DMNError) as info:
        load_dmn(definitions(table([(["-"], ['__import__ + "x"'])], outputs=(("out", "string"),))))
    assert info.value.details["unknown_names"] == ["__import__"]
    # in a bare expression, unknown names are null, and so is calling null
    assert E(cell) is None
    assert E(cell, {"__import__": "os"}) is None
    assert not marker.exists()


def test_import_call_with_python_quotes_is_a_syntax_error():
    with pytest.raises(FEELSyntaxError):
        E("__import__('os').system('id')")
    with pytest.raises(DMNError):
        load_dmn(definitions(table([(["__import__('os').system('id')"], ['"x"'])])))


@pytest.mark.parametrize("text", [
    '"".__class__', '"".__class__.__mro__', "[].__class__.__base__.__subclasses__", "{}.__init__",
    '"abc".upper', "(function(x) x).__code__", "x.__dict__", "x.__class__", "x.keys", "x.get",
    "date(\"2020-01-01\").replace", "date(\"2020-01-01\").__class__", "x.secret",
])
def test_no_attribute_access_on_python_objects(text):
    class Sneaky(dict):
        secret = "attribute value"

    value = E(text, {"x": Sneaky(a=1)})
    # null; or, for a path on a list, the list of each item's (null) value
    assert value is None or (isinstance(value, list) and all(v is None for v in value))


def test_python_objects_are_not_accepted_as_inputs():
    class Thing:
        secret = "attribute value"

        def __eq__(self, other):  # pragma: no cover - must never be called
            raise AssertionError("FEEL touched the object")

    with pytest.raises(EvaluationError):
        E("x.secret", {"x": Thing()})
    m = load_dmn(definitions(table([(["-"], ['"x"'])])))
    with pytest.raises(EvaluationError) as info:
        m.evaluate("Decision", {"Age": Thing()})
    assert info.value.details["input"] == "Age" and info.value.details["type"] == "Thing"


def test_unknown_names_are_null_not_python_builtins():
    for name in ("open", "eval", "exec", "globals", "locals", "vars", "__builtins__", "print", "os"):
        assert E(name) is None
        assert E(f'{name}("x")') is None


@pytest.mark.parametrize("deep", ["(" * 3000 + "1" + ")" * 3000, "[" * 3000 + "1" + "]" * 3000,
                                  "-" * 3000 + "1", "{a: " * 2000 + "1" + "}" * 2000])
def test_deep_nesting_is_refused_cleanly(deep):
    try:
        E(deep)
    except FEELError as exc:  # a syntax error (too deep) is fine; a RecursionError is not
        assert "deep" in exc.message


def test_runaway_recursion_is_a_feel_error():
    body = ('<businessKnowledgeModel id="b" name="Loop"><encapsulatedLogic><formalParameter name="n"/>'
            "<literalExpression><text>Loop(n + 1)</text></literalExpression></encapsulatedLogic>"
            '</businessKnowledgeModel><decision id="d" name="d"><literalExpression><text>Loop(1)</text>'
            "</literalExpression></decision>")
    with pytest.raises(FEELError, match="recurs"):
        load_dmn(definitions(body)).evaluate("d", {})


def test_engine_source_never_uses_eval_or_exec():
    root = Path(tiergate.dmn.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in (
                    "eval", "exec", "__import__", "compile"):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []
