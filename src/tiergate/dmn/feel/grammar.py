"""The FEEL grammar (lark, LALR(1)), kept as a Python string so no data file needs packaging.

Two start rules: ``start_expr`` for expressions (literal expressions, output entries, input
expressions) and ``start_tests`` for unary tests (decision table input entries). A negated test
list ``not(...)`` is split off before the parser sees it (see ``parser.py``), because as a
grammar rule it collides with the built-in function ``not``.

Names with spaces: a name is one or more NAME tokens (``Monthly Salary``); names that contain
keywords, digits or operator characters (``date and time``, ``Rule 1``, ``Approved/Declined``)
are merged into one NAME token beforehand when they are known names of the scope.

An interval opened with ``]`` (``]1..10]``) is told from a list's closing bracket by the token
before it; the tokenizer retypes such a ``]`` to IVL_OPEN.
"""

from __future__ import annotations

import threading

from lark import Lark

from .astbuilder import AstBuilder

GRAMMAR = r"""
start_expr: expression
start_tests: "-" -> any_test
           | positive_unary_tests

positive_unary_tests: positive_unary_test ("," positive_unary_test)*
positive_unary_test: COMPARE additive -> cmp_test
                   | expression -> expr_test

?expression: textual | disjunction

?textual: "if" expression "then" expression "else" expression -> if_expr
        | "for" iteration ("," iteration)* "return" expression -> for_expr
        | SOME quantifier_in ("," quantifier_in)* "satisfies" expression -> some_expr
        | EVERY quantifier_in ("," quantifier_in)* "satisfies" expression -> every_expr
        | "function" "(" [param ("," param)*] ")" [EXTERNAL] expression -> function_def

iteration: name "in" expression [".." expression]
quantifier_in: name "in" expression
param: name [":" type]

?disjunction: conjunction
            | disjunction "or" conjunction -> or_
?conjunction: comparison
            | conjunction "and" comparison -> and_
?comparison: instance
           | comparison COMPARE instance -> compare
           | comparison "between" instance "and" instance -> between
           | comparison "in" in_rhs -> in_

in_rhs: COMPARE instance -> in_cmp
      | instance -> in_expr
      | "(" in_test "," in_test ("," in_test)* ")" -> in_list
in_test: COMPARE instance -> cmp_test
       | expression -> expr_test

?instance: additive
         | additive "instance" "of" type -> instance_of
type: name ("." name)*
    | TYPE_GENERIC -> generic_type

?additive: multiplicative
         | additive "+" multiplicative -> add
         | additive "-" multiplicative -> sub
?multiplicative: power
               | multiplicative "*" power -> mul
               | multiplicative "/" power -> div
?power: unary
      | power "**" unary -> pow
?unary: postfix
      | "-" unary -> neg

?postfix: primary
        | postfix "." name -> path
        | postfix "[" expression "]" -> filter
        | postfix "(" [arguments] ")" -> call

arguments: expression ("," expression)* -> positional
         | named_arg ("," named_arg)* -> named
named_arg: name ":" expression

?primary: literal
        | name -> var
        | QMARK -> qmark
        | "(" expression ")"
        | "(" COMPARE instance ")" -> cmp_range
        | "[" [expression ("," expression)*] "]" -> list_
        | "{" [context_entry ("," context_entry)*] "}" -> context
        | "[" expression ".." endpoint interval_close -> interval_closed_start
        | IVL_OPEN expression ".." endpoint interval_close -> interval_open_start
        | "(" expression ".." endpoint interval_close -> interval_open_start
        | NOT "(" [arguments] ")" -> not_call
        | "and" "(" [arguments] ")" -> and_call
        | "or" "(" [arguments] ")" -> or_call

!interval_close: "]" | "[" | ")"

?endpoint: ep_postfix
         | "-" endpoint -> neg
?ep_postfix: ep_primary
           | ep_postfix "." name -> path
           | ep_postfix "(" [arguments] ")" -> call
?ep_primary: literal
           | name -> var
           | QMARK -> qmark
           | "(" expression ")"

?literal: NUMBER -> number
        | STRING -> string
        | AT_STRING -> at_literal
        | "true" -> true
        | "false" -> false
        | "null" -> null

context_entry: context_key ":" expression
?context_key: name
            | STRING -> string

name: NAME+

SOME: "some"
EVERY: "every"
NOT: "not"
EXTERNAL: "external"
QMARK: "?"
COMPARE: "<=" | ">=" | "!=" | "<" | ">" | "="
NUMBER: /(\d+(\.\d+)?|\.\d+)([eE][+-]?\d+)?/
STRING: /"(\\.|[^"\\])*"/
AT_STRING: /@"(\\.|[^"\\])*"/
NAME: /(?:[^\W\d]|[\U00010000-\U000EFFFF])(?:[\w']|[\U00010000-\U000EFFFF])*/
OTHER.-1: /[^\s]/

%declare IVL_OPEN TYPE_GENERIC

COMMENT: /\/\/[^\n]*/ | /\/\*(.|\n)*?\*\//
%ignore COMMENT
%ignore /\s+/
"""

_lock = threading.Lock()
_parser = None


def get_parser():
    """The LALR parser, built once (on first use) and shared (tests check it has no conflicts)."""
    global _parser
    if _parser is None:
        with _lock:
            if _parser is None:
                _parser = Lark(
                    GRAMMAR, parser="lalr", lexer="basic", start=["start_expr", "start_tests"],
                    transformer=AstBuilder(), maybe_placeholders=True,
                    propagate_positions=False,
                )
    return _parser
