"""The expression evaluator (archc/spec/expr.py): what it computes, the spellings it
accepts, and every way it refuses — with the exact message and fix."""

from __future__ import annotations

import builtins
import operator
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archc.errors import ExprError
from archc.spec.expr import MAX_LEN, UnknownInput, evaluate, is_expression

ENV = {"width": 64, "depths": [2, 2, 6, 2], "ratio": 0.25, "name": "res", "index": 1, "on": True}


@pytest.mark.parametrize("text, value", [
    ("$width * 2", 128),
    ("$width // 3", 21),
    ("$width % 7", 1),
    ("$width / 128", 0.5),
    ("$width - 2 ** 3", 56),             # ** binds tighter than -
    ("$(2 if $index == 0 else 1)", 1),   # $( … ) wraps any expression
    ("$-1", -1),
    ("$[1, $width]", [1, 64]),
    ("$depths[2]", 6),
    ("$depths[-1]", 2),
    ("$len($depths)", 4),
    ("$max($width, 100)", 100),          # a leading function call
    ("$min(3, $index)", 1),
    ("$ceil(7 / 2)", 4),
    ("$floor(7 / 2)", 3),
    ("$round(2.5)", 2),                  # Python's banker's rounding
    ("$int($ratio * 10)", 2),
    ("$sqrt(16)", 4.0),
    ("$abs(-3)", 3),
    ("$1 < $index + 1 <= 2", True),      # chained comparison
    ("$index in $depths", False),
    ("$on and $width > 32", True),
    ("$not $on", False),
    ("$false or $width", 64),
    ("$false and $nothing", False),      # short-circuit: $nothing is never read
    ("$true", True),
    ("$name + '_a'", "res_a"),
    ("$depths + [1]", [2, 2, 6, 2, 1]),
])
def test_values(text, value):
    assert evaluate(text, ENV) == value


@pytest.mark.parametrize("v, divisor, expected", [
    # MobileNet v2's _make_divisible: round to the nearest multiple, never lose > 10%.
    (24, 8, 24), (10, 8, 16), (32 * 0.75, 8, 24), (3, 8, 8), (91, 8, 88), (90, 8, 88), (27, 8, 32),
])
def test_make_divisible(v, divisor, expected):
    assert evaluate(f"$make_divisible({v}, {divisor})", {}) == expected


@pytest.mark.parametrize("text, value", [
    ("stage${index}", "stage1"),          # bare names inside ${...}
    ("stage${index + 1}_${$name}", "stage2_res"),
    ("${width // 2}x${width}", "32x64"),
])
def test_templates(text, value):
    assert evaluate(text, ENV) == value


@pytest.mark.parametrize("text, value", [
    ("input.channels", 3), ("input.height", 32), ("input.width", 16), ("input.rank", 3),
    ("input.shape", [3, 32, 16]), ("$input.channels * 2", 6), ("$input.shape[1]", 32),
    ("input.features", 16),
])
def test_input_shape(text, value):
    assert evaluate(text if text.startswith("$") else "$(" + text + ")", ENV, (3, 32, 16)) == value


def test_is_expression():
    assert is_expression("$w") and is_expression("  $w") and is_expression("a${b}")
    assert not is_expression("relu") and not is_expression("a$b") and not is_expression(3)


ERRORS = [
    ("$widht * 2", "undefined variable $widht", "did you mean $width?"),
    ("$zzz", "undefined variable $zzz",
     "defined here: $depths, $index, $name, $on, $ratio, $width"),
    ("${nmae}", "undefined variable $nmae", "did you mean $name?"),
    ("$(width * 2)", "unknown name 'width'", "variables are written $width"),
    ("$(10 ** 10 ** 10)", "exponent 10000000000 is out of range", "use an exponent between -64 and 64"),
    ("$2 ** -100", "exponent -100 is out of range", "use an exponent between -64 and 64"),
    ("$2 ** 62 * 4", "number too large", "keep values below 2**62"),
    ("$int(1e300)", "number too large", "keep values below 2**62"),
    ("$__import__('os')", "`$__import__` is not a known function",
     "known functions: abs, ceil, float, floor, int, len, make_divisible, max, min, round, sqrt"),
    ("$(__import__('os').system('x'))", "`__import__('os').system` is not a known function",
     "known functions: abs, ceil, float, floor, int, len, make_divisible, max, min, round, sqrt"),
    ("$width.__class__", "`$width.__class__`: only `input` has attributes",
     "write input.channels, input.height, input.width or input.shape"),
    ("$input.__class__", "`input` has no attribute '__class__'",
     "use input.channels, .height, .width, .features, .rank or .shape"),
    ("$[c for c in 'ab']", "`[c for c in 'ab']` is not allowed in an expression",
     "use arithmetic, comparisons, `x if c else y` and min/max/…"),
    ("$depths[0:2]", "`0:2` is not allowed in an expression",
     "use arithmetic, comparisons, `x if c else y` and min/max/…"),
    ("$max(*$depths)", "`*$depths` is not allowed in an expression",
     "use arithmetic, comparisons, `x if c else y` and min/max/…"),
    ("$max(a=1)", "max() takes no keyword arguments", "write max(a, b)"),
    ("$'ab' * 1000", "`'ab' * 1000`: arithmetic needs numbers, got 'ab' and 1000",
     "only + joins two lists or two strings"),
    ("$depths * 1000", "`$depths * 1000`: arithmetic needs numbers, got [2, 2, 6, 2] and 1000",
     "only + joins two lists or two strings"),
    ("$width / 0", "division by zero", "check the divisor"),
    ("$width // 0", "division by zero", "check the divisor"),
    ("$width % 0", "modulo by zero", "check the divisor"),
    ("$depths[4]", "`$depths[4]`: index 4 out of range (length 4)", "use an index from 0 to 3"),
    ("$width[0]", "`$width[0]`: only lists can be indexed, by integers", ""),
    ("$round(5, -10 ** 18)", "round(): ndigits must be an integer between -64 and 64", "check the arguments"),
    ("$sqrt(-1)", "sqrt(): math domain error", "check the arguments"),
    ("$width +", "cannot parse expression '$width +'", "write arithmetic on $variables, e.g. `$width * 2`"),
    ("$(1.5 ** 60) ** 60", "cannot evaluate '$(1.5 ** 60) ** 60': a number is too large",
     "keep values below 2**62"),
    ("$1 < 'a'", "cannot evaluate \"$1 < 'a'\": '<' not supported between instances of 'int' and 'str'",
     "check the types of the values it combines"),
    ("$index in 3", "`in` needs a list on its right", ""),
]


@pytest.mark.parametrize("text, message, fix", ERRORS)
def test_errors(text, message, fix):
    with pytest.raises(ExprError) as info:
        evaluate(text, ENV, (3, 32, 16))
    assert (info.value.message, info.value.fix) == (message, fix)


def test_input_errors():
    with pytest.raises(UnknownInput):  # the caller knows an earlier error explains it
        evaluate("$input.channels", {}, None)
    with pytest.raises(ExprError) as info:
        evaluate("$input.height", {}, (10,))
    assert info.value.message == "input of shape [10] has no height"
    with pytest.raises(ExprError) as info:  # the attribute is checked before the shape
        evaluate("$input.depth", {}, None)
    assert not isinstance(info.value, UnknownInput)


def test_bounded_length_and_depth():
    with pytest.raises(ExprError) as info:
        evaluate("$" + " + ".join(["1"] * (MAX_LEN // 3)), {})
    assert info.value.message == f"expression longer than {MAX_LEN} characters"
    for text in ("$" + "-" * 990 + "1", "$" + "(" * 300 + "1" + ")" * 300, "$" + "[" * 400 + "]" * 400):
        start = time.perf_counter()
        with pytest.raises(ExprError) as info:
            evaluate(text, {})
        assert time.perf_counter() - start < 1
        assert info.value.message in ("expression is nested too deeply", f"cannot parse expression {text!r}")


def test_never_uses_eval_or_exec(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("eval/exec called")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    for text, value in [("$width * 2", 128), ("$max($width, 1)", 64), ("a${index}", "a1")]:
        assert evaluate(text, ENV) == value


# -- property: arithmetic agrees with a reference written with `operator` --------------------

_OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "//": operator.floordiv,
        "%": operator.mod}


def _trees():
    leaf = st.integers(-50, 50).map(lambda n: (str(n) if n >= 0 else f"({n})", n))
    var = st.sampled_from([("$a", 7), ("$b", -3)])

    def combine(children):
        def build(args):
            (lt, lv), op, (rt, rv) = args
            if op in ("//", "%") and rv == 0:
                return lt, lv
            return f"({lt} {op} {rt})", _OPS[op](lv, rv)
        return st.tuples(children, st.sampled_from(list(_OPS)), children).map(build)

    return st.recursive(leaf | var, combine, max_leaves=12)


@settings(max_examples=150, deadline=None)
@given(_trees())
def test_arithmetic_matches_reference(tree):
    text, value = tree
    if abs(value) > 2**62:
        return
    assert evaluate("$" + text if text.startswith("(") else "$(" + text + ")", {"a": 7, "b": -3}) == value
