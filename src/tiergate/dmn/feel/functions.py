"""FEEL functions: definitions (``function(a, b: number) a + b``) and calls (``f(1, 2)``, ``f(b: 2, a: 1)``).

A defined function closes over the names in scope where it is defined and runs its body on the
FEEL clock (``limits.budgeted_call``); an argument that does not conform to its parameter's type
makes the call null. A call of a built-in that no name in scope shadows is bound when the text
compiles; any other call looks the function up when it runs.
"""

from __future__ import annotations

from .builtins import BUILTINS, invoke
from .conformance import type_predicate
from .interpreter import Scope, compile_expression, compiles
from .limits import budgeted_call
from .types import FEELFunction


@compiles("func")
def _func(node, scope):
    params = [p[0] for p in node[1]]
    checks = [type_predicate(t, scope.info) if t else None for _, t in node[1]]
    body = compile_expression(node[2], scope.with_names(params))

    def run(env):
        captured = env

        def impl(*args):
            call_env = dict(captured)
            for name, value, check in zip(params, args, checks):
                if check is not None and value is not None and not check(value):
                    return None
                call_env[name] = value
            return budgeted_call(body, call_env)

        return FEELFunction("anonymous function", params, impl)

    return run


@compiles("call")
def _call(node, scope):
    fn_node, args, named = node[1], node[2], node[3]
    fargs = [compile_expression(a, scope) for a in args] if args is not None else None
    fnamed = [(n, compile_expression(a, scope)) for n, a in named] if named is not None else None
    if fn_node[0] == "builtin":
        target = BUILTINS[fn_node[1]]
    elif (fn_node[0] == "var" and fn_node[1] not in scope.bound and fn_node[1] not in scope.info.known
          and fn_node[1] in BUILTINS):
        target = BUILTINS[fn_node[1]]  # not shadowed by a name in scope: bind now
    else:
        target = None
    if target is not None:
        if fnamed is None:
            return lambda env: invoke(target, [a(env) for a in fargs], None)
        return lambda env: invoke(target, None, {n: a(env) for n, a in fnamed})
    if fn_node[0] == "var" and fn_node[1] not in scope.bound:
        # an unknown function name is an error when the call runs (null), not when the model
        # loads (DMN 1.5 10.3.2.13.2): it counts like a name inside a filter, not a free name
        ffn = compile_expression(fn_node, Scope(scope.bound, scope.info, True))
    else:
        ffn = compile_expression(fn_node, scope)
    # a variable named like a built-in (an input called "date") does not hide the function
    fallback = BUILTINS.get(fn_node[1]) if fn_node[0] == "var" else None

    def run(env):
        fn = ffn(env)
        if fn.__class__ is not FEELFunction:
            if fallback is None:
                return None
            fn = fallback
        if fnamed is None:
            return invoke(fn, [a(env) for a in fargs], None)
        return invoke(fn, None, {n: a(env) for n, a in fnamed})

    return run

