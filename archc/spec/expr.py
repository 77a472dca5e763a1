"""A small, safe evaluator for the expressions of a spec.

A string value that starts with ``$`` is an expression::

    out: $width * 2
    when: "$stride != 1 or input.channels != $out"
    padding: "$kernel // 2"

A string that contains ``${...}`` is a template: each ``${expr}`` is replaced by the
expression's value (``id: "stage${index}"``).

Grammar: numbers, strings, ``true``/``false``, ``$variables``, lists ``[a, b]`` and
indexing ``$xs[0]``, ``+ - * / // % **``, comparisons, ``and or not``,
``a if cond else b``, the functions of :data:`FUNCTIONS`, and ``input`` — the shape of
the enclosing block's input (``input.channels``, ``input.height``, ``input.width``,
``input.features``, ``input.shape``).

The text is parsed with Python's own parser (``ast.parse``) and then *walked* over a
closed set of node kinds; nothing is ever passed to ``eval`` or ``exec``. Sizes are
bounded so an expression cannot allocate without limit (``10 ** 10 ** 10``).
"""

from __future__ import annotations

import ast
import math
import operator
import re

from archc.errors import ExprError

MAX_LEN = 1000
MAX_INT = 2**62

_VAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_TEMPLATE = re.compile(r"\$\{([^{}]*)\}")
_PREFIX = "v__"  # `$name` becomes the Python name `v__name` before parsing


def _checked_int(x):
    if isinstance(x, int) and not isinstance(x, bool) and abs(x) > MAX_INT:
        raise ExprError("number too large", "keep values below 2**62")
    return x


def _pow(a, b):
    if isinstance(b, (int, float)) and abs(b) > 64:
        raise ExprError(f"exponent {b} is too large", "use an exponent of at most 64")
    return a**b


def _div(a, b):
    if b == 0:
        raise ExprError("division by zero", "check the divisor")
    return a / b


def _floordiv(a, b):
    if b == 0:
        raise ExprError("division by zero", "check the divisor")
    return a // b


def _mod(a, b):
    if b == 0:
        raise ExprError("modulo by zero", "check the divisor")
    return a % b


_BINOPS = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: _div, ast.FloorDiv: _floordiv, ast.Mod: _mod, ast.Pow: _pow,
}
_CMPOPS = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt,
    ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
}


def _make_divisible(v, divisor=8):
    """Round channels as MobileNet/EfficientNet do (never down by more than 10%)."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


FUNCTIONS = {
    "min": min, "max": max, "abs": abs, "round": round, "int": int, "float": float,
    "ceil": math.ceil, "floor": math.floor, "sqrt": math.sqrt, "len": len,
    "make_divisible": _make_divisible,
}
CONSTANTS = {"true": True, "false": False, "True": True, "False": False,
             "null": None, "None": None}


class ShapeView:
    """What an expression sees as ``input``: a read-only view of a shape (batch excluded)."""

    def __init__(self, shape):
        self.shape = list(shape) if shape is not None else None

    def attr(self, name: str):
        s = self.shape
        if s is None:
            raise ExprError("the input shape is unknown here", "fix the errors before this node")
        dims = {"shape": s, "channels": s[0], "features": s[-1], "rank": len(s),
                "height": s[-2] if len(s) >= 3 else None, "width": s[-1] if len(s) >= 3 else None}
        if name not in dims:
            raise ExprError(f"`input` has no attribute {name!r}",
                            "use input.channels, .height, .width, .features, .rank or .shape")
        if dims[name] is None:
            raise ExprError(f"input of shape {s} has no {name}", "it is not an image (C, H, W)")
        return dims[name]


def is_expression(value) -> bool:
    return isinstance(value, str) and (value.lstrip().startswith("$") or "${" in value)


def evaluate(text: str, env: dict, input_shape=None):
    """Evaluate one expression string against variables ``env``.

    >>> evaluate("$width * 2", {"width": 32})
    64
    >>> evaluate("stage${i + 1}", {"i": 0})
    'stage1'
    """
    if len(text) > MAX_LEN:
        raise ExprError(f"expression longer than {MAX_LEN} characters", "split it into variables")
    if "${" in text:
        return _TEMPLATE.sub(lambda m: str(_eval_text(m.group(1), env, input_shape)), text)
    body = text.strip()
    if body.startswith("$") and body[1:2] in ("(", "[", "{", " ") or body == "$":
        body = body[1:]  # `$(a + b)` and `$ a + b` are allowed spellings
    return _eval_text(body, env, input_shape)


def _eval_text(body: str, env: dict, input_shape):
    source = _VAR.sub(lambda m: _PREFIX + m.group(1), body)
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except (SyntaxError, ValueError):
        raise ExprError(f"cannot parse expression {body.strip()!r}",
                        "write arithmetic on $variables, e.g. `$width * 2`") from None
    except (RecursionError, MemoryError):
        raise ExprError("expression is nested too deeply", "simplify it") from None
    try:
        return _Walker(env, ShapeView(input_shape)).visit(tree.body)
    except RecursionError:
        raise ExprError("expression is nested too deeply", "simplify it") from None
    except (TypeError, IndexError, KeyError, OverflowError) as exc:
        raise ExprError(f"cannot evaluate {body.strip()!r}: {exc}",
                        "check the types of the values it combines") from None


class _Walker:
    def __init__(self, env: dict, shape: ShapeView):
        self.env = env
        self.shape = shape

    def visit(self, node):
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            raise ExprError(f"`{ast.unparse(node)}` is not allowed in an expression",
                            "use arithmetic, comparisons, `x if c else y` and min/max/…")
        return method(node)

    def visit_Constant(self, node):
        if not isinstance(node.value, (int, float, str, bool)):
            raise ExprError(f"constant {node.value!r} is not allowed")
        return _checked_int(node.value)

    def visit_Name(self, node):
        name = node.id
        if name.startswith(_PREFIX):
            var = name[len(_PREFIX):]
            if var not in self.env:
                raise ExprError(f"undefined variable ${var}", _suggest(var, self.env))
            return self.env[var]
        if name in CONSTANTS:
            return CONSTANTS[name]
        if name == "input":
            return self.shape
        raise ExprError(f"unknown name {name!r}", f"variables are written ${name}")

    def visit_Attribute(self, node):
        target = self.visit(node.value)
        if not isinstance(target, ShapeView):
            raise ExprError(f"`{ast.unparse(node)}`: only `input` has attributes")
        return target.attr(node.attr)

    def visit_List(self, node):
        if len(node.elts) > 1024:
            raise ExprError("list literal too long")
        return [self.visit(e) for e in node.elts]

    visit_Tuple = visit_List

    def visit_Subscript(self, node):
        seq = self.visit(node.value)
        if isinstance(seq, ShapeView):
            seq = seq.attr("shape")
        index = self.visit(node.slice)
        if not isinstance(seq, (list, str)) or not isinstance(index, int):
            raise ExprError(f"`{ast.unparse(node)}`: only lists can be indexed, by integers")
        if not -len(seq) <= index < len(seq):
            raise ExprError(f"`{ast.unparse(node)}`: index {index} out of range (length {len(seq)})")
        return seq[index]

    def visit_BinOp(self, node):
        op = _BINOPS.get(type(node.op))
        if op is None:
            raise ExprError(f"operator in `{ast.unparse(node)}` is not allowed")
        left, right = self.visit(node.left), self.visit(node.right)
        if isinstance(left, (list, str)) or isinstance(right, (list, str)):
            if not (op is operator.add and type(left) is type(right)):
                raise ExprError(f"`{ast.unparse(node)}`: arithmetic needs numbers")
            if len(left) + len(right) > 4096:
                raise ExprError("value too long")
        return _checked_int(op(left, right))

    def visit_UnaryOp(self, node):
        value = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            return not value
        if isinstance(node.op, ast.USub):
            return -value
        if isinstance(node.op, ast.UAdd):
            return +value
        raise ExprError(f"operator in `{ast.unparse(node)}` is not allowed")

    def visit_BoolOp(self, node):
        if isinstance(node.op, ast.And):
            value = True
            for v in node.values:
                value = self.visit(v)
                if not value:
                    return value
            return value
        value = False
        for v in node.values:
            value = self.visit(v)
            if value:
                return value
        return value

    def visit_Compare(self, node):
        left = self.visit(node.left)
        for op, comp in zip(node.ops, node.comparators):
            right = self.visit(comp)
            if isinstance(op, (ast.In, ast.NotIn)):
                if not isinstance(right, list):
                    raise ExprError("`in` needs a list on its right")
                ok = (left in right) == isinstance(op, ast.In)
            elif type(op) in _CMPOPS:
                ok = _CMPOPS[type(op)](left, right)
            else:
                raise ExprError(f"comparison in `{ast.unparse(node)}` is not allowed")
            if not ok:
                return False
            left = right
        return True

    def visit_IfExp(self, node):
        return self.visit(node.body) if self.visit(node.test) else self.visit(node.orelse)

    def visit_Call(self, node):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS or node.keywords:
            raise ExprError(f"`{ast.unparse(node.func)}` is not a known function",
                            "known functions: " + ", ".join(sorted(FUNCTIONS)))
        args = [self.visit(a) for a in node.args]
        try:
            return _checked_int(FUNCTIONS[node.func.id](*args))
        except (TypeError, ValueError) as exc:
            raise ExprError(f"{node.func.id}(): {exc}") from None


def _suggest(name: str, env: dict) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(env), n=1)
    if close:
        return f"did you mean ${close[0]}?"
    if env:
        return "defined here: " + ", ".join("$" + k for k in sorted(env)[:12])
    return "define it under `vars:` or pass --set " + name + "=VALUE"
