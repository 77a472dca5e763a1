"""A small, safe evaluator for the expressions of a spec.

A string value that starts with ``$`` is an expression::

    out: $width * 2
    when: "$stride != 1 or input.channels != $out"
    padding: "$kernel // 2"

A string that contains ``${...}`` is a template: each ``${expr}`` is replaced by the
expression's value (``id: "stage${index}"``).

The leading ``$`` marks the string as an expression; after it comes either a variable
(``$width * 2``), a known function (``$max($a, 8)``) or any other expression
(``$(2 if $index == 0 else 1)``, ``$[1, 2]``, ``$-1``). Inside a template's ``${...}``
variables may also be written bare (``${index + 1}``).

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
import functools
import math
import operator
import re

from archc.errors import ExprError

MAX_LEN = 1000
MAX_INT = 2**62

_VAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_LEAD = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)\s*(\(?)")
_TEMPLATE = re.compile(r"\$\{([^{}]*)\}")
_PREFIX = "v__"  # `$name` becomes the Python name `v__name` before parsing


def _checked_int(x):
    if isinstance(x, int) and not isinstance(x, bool) and abs(x) > MAX_INT:
        raise ExprError("number too large", "keep values below 2**62")
    return x


def _pow(a, b):
    if isinstance(b, (int, float)) and abs(b) > 64:
        raise ExprError(f"exponent {b} is out of range", "use an exponent between -64 and 64")
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


def _round(x, ndigits=None):
    """round(), with ndigits bounded: round(5, -10**18) would compute 10**(10**18)."""
    if ndigits is not None and (not isinstance(ndigits, int) or abs(ndigits) > 64):
        raise ValueError("ndigits must be an integer between -64 and 64")
    return round(x, ndigits)


FUNCTIONS = {
    "min": min, "max": max, "abs": abs, "round": _round, "int": int, "float": float,
    "ceil": math.ceil, "floor": math.floor, "sqrt": math.sqrt, "len": len,
    "make_divisible": _make_divisible,
}
CONSTANTS = {"true": True, "false": False, "True": True, "False": False,
             "null": None, "None": None}


class UnknownInput(ExprError):
    """The expression reads ``input`` whose shape is unknown because of an earlier error;
    the caller reports the earlier error, not this one."""


def _show(node) -> str:
    """An AST node as the user wrote it (``v__width`` back to ``$width``)."""
    return re.sub(r"\b" + _PREFIX, "$", ast.unparse(node))


class ShapeView:
    """What an expression sees as ``input``: a read-only view of a shape (batch excluded)."""

    def __init__(self, shape):
        self.shape = list(shape) if shape is not None else None

    def attr(self, name: str):
        if name not in ("shape", "channels", "features", "rank", "height", "width"):
            raise ExprError(f"`input` has no attribute {name!r}",
                            "use input.channels, .height, .width, .features, .rank or .shape")
        s = self.shape
        if s is None:
            raise UnknownInput("the input shape is unknown here", "fix the errors before this node")
        dims = {"shape": s, "channels": s[0], "features": s[-1], "rank": len(s),
                "height": s[-2] if len(s) >= 3 else None, "width": s[-1] if len(s) >= 3 else None}
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
        return _TEMPLATE.sub(lambda m: str(_eval_text(m.group(1), env, input_shape, bare=True)),
                             text)
    return _eval_text(_strip_marker(text.strip()), env, input_shape, shown=text.strip())


def _strip_marker(body: str) -> str:
    """Drop the leading ``$`` unless it starts a variable: ``$(a + b)``, ``$-1``,
    ``$max($a, 8)``, ``$not $a`` lose it; ``$width * 2`` keeps it."""
    if not body.startswith("$"):
        return body
    lead = _LEAD.match(body)
    if lead and not (lead.group(1) in FUNCTIONS and lead.group(2)) and lead.group(1) != "not":
        return body
    return body[1:]


@functools.lru_cache(maxsize=1024)
def _parse(body: str) -> ast.Expression:
    """The syntax tree of an expression's text. A block's expressions are evaluated again
    for every instance (resnet50: ~150 evaluations of a few dozen texts), so each distinct
    text is parsed once; the walker only reads the tree. Errors are not cached: a text that
    fails fails again, alike."""
    return ast.parse(_VAR.sub(lambda m: _PREFIX + m.group(1), body).strip(), mode="eval")


def _eval_text(body: str, env: dict, input_shape, bare: bool = False, shown: str = ""):
    shown = shown or body.strip()
    try:
        tree = _parse(body)
    except (SyntaxError, ValueError):
        raise ExprError(f"cannot parse expression {shown!r}",
                        "write arithmetic on $variables, e.g. `$width * 2`") from None
    except (RecursionError, MemoryError):
        raise ExprError("expression is nested too deeply", "simplify it") from None
    try:
        return _Walker(env, ShapeView(input_shape), bare).visit(tree.body)
    except RecursionError:
        raise ExprError("expression is nested too deeply", "simplify it") from None
    except OverflowError:
        raise ExprError(f"cannot evaluate {shown!r}: a number is too large",
                        "keep values below 2**62") from None
    except (TypeError, IndexError, KeyError, ValueError) as exc:
        raise ExprError(f"cannot evaluate {shown!r}: {exc}",
                        "check the types of the values it combines") from None


class _Walker:
    def __init__(self, env: dict, shape: ShapeView, bare: bool = False):
        self.env = env
        self.shape = shape
        self.bare = bare  # templates: a bare name is a variable

    def visit(self, node):
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            raise ExprError(f"`{_show(node)}` is not allowed in an expression",
                            "use arithmetic, comparisons, `x if c else y` and min/max/…")
        return method(node)

    def visit_Constant(self, node):
        if not isinstance(node.value, (int, float, str, bool)):
            raise ExprError(f"constant {node.value!r} is not allowed")
        return _checked_int(node.value)

    def visit_Name(self, node):
        name = node.id
        if name.startswith(_PREFIX):
            name = name[len(_PREFIX):]
            if name in self.env:
                return self.env[name]
        elif self.bare and name in self.env:
            return self.env[name]
        if name in CONSTANTS:
            return CONSTANTS[name]
        if name == "input":
            return self.shape
        if node.id.startswith(_PREFIX) or self.bare:
            raise ExprError(f"undefined variable ${name}", _suggest(name, self.env))
        hint = f"variables are written ${name}" if name in self.env or name not in FUNCTIONS \
            else f"call it: {name}(...)"
        raise ExprError(f"unknown name {name!r}", hint)

    def visit_Attribute(self, node):
        target = self.visit(node.value)
        if not isinstance(target, ShapeView):
            raise ExprError(f"`{_show(node)}`: only `input` has attributes",
                            "write input.channels, input.height, input.width or input.shape")
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
            raise ExprError(f"`{_show(node)}`: only lists can be indexed, by integers")
        if not -len(seq) <= index < len(seq):
            raise ExprError(f"`{_show(node)}`: index {index} out of range (length {len(seq)})",
                            f"use an index from 0 to {len(seq) - 1}" if seq else "the list is empty")
        return seq[index]

    def visit_BinOp(self, node):
        op = _BINOPS.get(type(node.op))
        if op is None:
            raise ExprError(f"operator in `{_show(node)}` is not allowed",
                            "use + - * / // % ** and comparisons")
        left, right = self.visit(node.left), self.visit(node.right)
        if isinstance(left, (list, str)) or isinstance(right, (list, str)):
            if not (op is operator.add and type(left) is type(right)):
                raise ExprError(f"`{_show(node)}`: arithmetic needs numbers, got "
                                f"{_short(left)} and {_short(right)}",
                                "only + joins two lists or two strings")
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
        raise ExprError(f"operator in `{_show(node)}` is not allowed",
                            "use + - * / // % ** and comparisons")

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
                raise ExprError(f"comparison in `{_show(node)}` is not allowed",
                                "use == != < <= > >= in")
            if not ok:
                return False
            left = right
        return True

    def visit_IfExp(self, node):
        return self.visit(node.body) if self.visit(node.test) else self.visit(node.orelse)

    def visit_Call(self, node):
        name = node.func.id if isinstance(node.func, ast.Name) else ""
        if name.startswith(_PREFIX) and name[len(_PREFIX):] not in self.env:
            name = name[len(_PREFIX):]  # `$max(...)` inside a larger expression
        if name not in FUNCTIONS:
            raise ExprError(f"`{_show(node.func)}` is not a known function",
                            "known functions: " + ", ".join(sorted(FUNCTIONS)))
        if node.keywords:
            raise ExprError(f"{name}() takes no keyword arguments", f"write {name}(a, b)")
        args = [self.visit(a) for a in node.args]
        try:
            return _checked_int(FUNCTIONS[name](*args))
        except (TypeError, ValueError, ZeroDivisionError) as exc:
            raise ExprError(f"{name}(): {exc}", "check the arguments") from None


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 30 else text[:27] + "..."


def _suggest(name: str, env: dict) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(env), n=1)
    if close:
        return f"did you mean ${close[0]}?"
    if env:
        return "defined here: " + ", ".join("$" + k for k in sorted(env)[:12])
    return "define it under `vars:` or pass --set " + name + "=VALUE"
