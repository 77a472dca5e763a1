"""The JSON Schema of the spec format, built from the op registry.

One schema serves two readers:

* archc itself validates every file against it (``validate_tree``) before expanding —
  the file structure, the block definitions and the ``train:`` section. Attribute values
  of ops may be expressions evaluated later, so their errors are left to the op's own
  attribute types (which produced this schema's fragments in the first place);
* editors: the same schema is shipped as ``archc/spec/schema.json``; a spec whose first
  line is ``# yaml-language-server: $schema=<path to schema.json>`` gets completion and
  hover docs in VS Code. ``python -m archc.spec.schema`` rewrites the file; a test keeps
  it in sync with the registry.
"""

from __future__ import annotations

import json
import sys
from functools import lru_cache
from pathlib import Path

from archc.errors import SpecError
from archc.spec.loader import LDict, LList

FORMAT_VERSION = 1
SCHEMA_FILE = Path(__file__).with_name("schema.json")
IDENT = r"^[A-Za-z_][A-Za-z0-9_]*(?!\n)$"  # no trailing newline (Python's $ allows one)
EXPR = {"type": "string", "pattern": r"^\s*\$", "description": "an expression: `$width * 2`"}

COMMON_KEYS = {
    "id": {"type": "string", "description": "name of the node; other nodes refer to it in `from`. "
                                             "With `repeat:`, `$index` in it numbers each copy "
                                             "(`block$index` -> block0, block1, ...)"},
    "from": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}],
             "description": "input node id(s); default: the previous layer. `input` is the block's input"},
    "repeat": {"anyOf": [{"type": "integer", "minimum": 0}, EXPR],
               "description": "apply this layer N times in sequence; `$index` counts from 0"},
    "when": {"anyOf": [{"type": "boolean"}, {"type": "string"}],
             "description": "condition; when false the layer is skipped and refers to its input"},
    "trainable": {"type": "boolean", "description": "false freezes this layer's parameters"},
    "init": {"anyOf": [{"type": "string"}, {"type": "object"}],
             "description": "initialisation of this layer's weights (see docs/spec.md)"},
    "tie": {"type": "string",
            "description": "id of a layer whose weight this layer shares (weight tying, as GPT-2's "
                           "output projection shares the token embedding)"},
}

_SHAPE = {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1, "maxItems": 4,
          "description": "a shape without the batch dimension, e.g. [3, 224, 224]"}
# `input:` is a shape of float values, or a mapping that also gives the dtype: token ids
# for language models (`{shape: [1024], dtype: int64, vocab: 50257}`).
_INPUT = {"anyOf": [_SHAPE, {
    "type": "object", "additionalProperties": False, "required": ["shape"],
    "properties": {
        "shape": _SHAPE,
        "dtype": {"enum": ["float32", "int64"], "description": "float32 (default) or int64 token ids"},
        "vocab": {"type": "integer", "minimum": 1, "description": "token ids lie in [0, vocab)"},
    }}],
    "description": "the input without the batch: [C, H, W], [L, D], [C, D, H, W]..., or "
                   "{shape: [L], dtype: int64, vocab: V} for token ids"}
_VAR_VALUE = {"type": ["integer", "number", "string", "boolean", "array", "null"]}
_NUM = {"type": "number"}
_POS_NUM = {"type": "number", "exclusiveMinimum": 0}
_POS_INT = {"type": "integer", "minimum": 1}


def _obj(props: dict, required=(), **extra) -> dict:
    out = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        out["required"] = list(required)
    return out | extra


def _train_schema() -> dict:
    optimizer = _obj({
        "name": {"enum": ["sgd", "adam", "adamw", "rmsprop"]},
        "lr": _POS_NUM, "momentum": _NUM, "nesterov": {"type": "boolean"},
        "weight_decay": _NUM, "betas": {"type": "array", "items": _NUM, "minItems": 2, "maxItems": 2},
        "eps": _POS_NUM, "alpha": _NUM,
    })
    schedule = _obj({
        "name": {"enum": ["constant", "step", "multistep", "exponential", "time", "cosine", "plateau"]},
        "step_size": _POS_INT, "milestones": {"type": "array", "items": _POS_INT},
        "gamma": _NUM, "decay": _NUM, "warmup_epochs": {"type": "integer", "minimum": 0},
        "min_lr": _NUM, "patience": {"type": "integer", "minimum": 0}, "factor": _NUM,
    })
    data = _obj({
        "source": {"type": "string", "description": "digits | shapes | npz file | image folder | "
                                                    "mnist folder | cifar10 folder"},
        "val": {"type": "string"}, "test": {"type": "string"},
        "val_split": {"type": "number", "minimum": 0, "maximum": 0.9},
        "test_split": {"type": "number", "minimum": 0, "maximum": 0.9},
        "normalize": {"anyOf": [{"type": "boolean"}, _obj({"mean": {"type": "array"}, "std": {"type": "array"}})]},
        "classes": {"type": "array", "items": {"type": "string"}},
        "limit": _POS_INT, "resize": {"type": "boolean"}, "split_seed": {"type": "integer"},
    })
    augment = _obj({
        "hflip": {"type": ["boolean", "number"]}, "vflip": {"type": ["boolean", "number"]},
        "crop_padding": {"type": "integer", "minimum": 0}, "rotate": _NUM, "translate": _NUM,
        "scale": {"type": "array", "items": _NUM, "minItems": 2, "maxItems": 2},
        "brightness": _NUM,
    })
    loss = {"anyOf": [{"enum": ["cross_entropy", "nll", "bce", "bce_logits", "mse", "l1", "gan"]},
                      _obj({"name": {"type": "string"}, "label_smoothing": _NUM})]}
    return _obj({
        "task": {"enum": ["classification", "binary", "regression", "segmentation", "gan", "language_model"]},
        "data": {"anyOf": [{"type": "string"}, data]},
        "epochs": _POS_INT, "batch_size": _POS_INT, "loss": loss,
        "optimizer": {"anyOf": [{"enum": ["sgd", "adam", "adamw", "rmsprop"]}, optimizer]},
        "lr": _POS_NUM,
        "schedule": {"anyOf": [{"type": "string"}, schedule]},
        "penalties": _obj({"l1": _NUM, "l2": _NUM}),
        "clip_grad_norm": _POS_NUM,
        "grad_noise": {"anyOf": [_NUM, _obj({"std": _NUM, "decay": _NUM})]},
        "early_stopping": _obj({"patience": {"type": "integer", "minimum": 0},
                                "monitor": {"type": "string"}, "mode": {"enum": ["min", "max"]},
                                "min_delta": _NUM}),
        "augment": augment,
        "metrics": {"type": "array", "items": {"type": "string"}},
        "init": {"anyOf": [{"type": "string"}, {"type": "object"}]},
        "seed": {"type": "integer"}, "device": {"type": "string"},
        "amp": {"type": ["boolean", "string"]}, "channels_last": {"type": "boolean"},
        "compile": {"type": "boolean"}, "workers": {"type": "integer", "minimum": 0},
        "strategy": {"enum": ["ddp", "fsdp"], "description": "several processes: ddp (replicas) or fsdp (shards)"},
        "deterministic": {"type": "boolean"}, "init_from": {"type": "string"}, "threads": _POS_INT,
        "freeze": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "gan": _obj({"generator": {"type": "string"}, "discriminator": {"type": "string"},
                     "latent": _POS_INT, "d_steps": _POS_INT}),
    }, description="how to train the network (used by `archc train`)")


def _layer_item(ops: dict) -> dict:
    op_props = {}
    for name, op in sorted(ops.items()):
        attrs = {k: {"anyOf": [a.type.schema, EXPR], "description": a.doc or a.type.text}
                 for k, a in op.attrs.items()}
        op_props[name] = {"type": ["object", "null"], "description": op.doc,
                          "properties": attrs | COMMON_KEYS, "additionalProperties": False}
    return {
        "type": ["object", "string"],
        "description": "one layer: `op: {attrs}`, a block call `block: {args}`, or a bare op name",
        "minProperties": 1, "maxProperties": 1,
        "properties": op_props,
        # Block calls: their argument names depend on the block, checked at expansion;
        # the common keys (from, repeat, when...) are checked here as for ops.
        "additionalProperties": {"type": ["object", "null"], "properties": COMMON_KEYS},
        "pattern": IDENT,
    }


def build_schema() -> dict:
    from archc.ops.registry import all_ops

    layers = {"type": "array", "items": {"$ref": "#/$defs/layer"}}
    network = {
        "name": {"type": "string"}, "description": {"type": "string"},
        "input": _INPUT, "layers": layers,
        "outputs": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "vars": {"type": "object", "additionalProperties": _VAR_VALUE},
        "train": {"$ref": "#/$defs/train"},
    }
    block = _obj({
        "description": {"type": "string"},
        "args": {"type": "object", "propertyNames": {"pattern": IDENT}, "additionalProperties": _VAR_VALUE,
                 "description": "argument: default value, or `required`"},
        "layers": layers,
    }, required=["layers"])
    imp = {"anyOf": [{"type": "string"},
                     _obj({"file": {"type": "string"}, "blocks": {"type": "array", "items": {"type": "string"}}},
                          required=["file"])]}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "urn:archc:spec:v1",
        "title": "archc network spec",
        "type": "object",
        "properties": {
            "archc": {"const": FORMAT_VERSION, "description": "format version"},
            **network,
            "presets": {"type": "object", "additionalProperties": {"type": "object"},
                        "description": "named sets of variables, chosen with --preset"},
            "imports": {"type": "array", "items": imp},
            "blocks": {"type": "object", "propertyNames": {"pattern": IDENT},
                       "additionalProperties": block},
            "networks": {"type": "object", "propertyNames": {"pattern": IDENT}, "minProperties": 1,
                         "additionalProperties": _obj(network, required=["input", "layers"])},
        },
        "required": ["archc"],
        "additionalProperties": False,
        "$defs": {"layer": _layer_item(all_ops()), "train": _train_schema()},
    }


@lru_cache(maxsize=1)
def _shipped_schema() -> dict:
    return json.loads(SCHEMA_FILE.read_text())


@lru_cache(maxsize=1)
def _validator():
    from jsonschema import Draft202012Validator

    return Draft202012Validator(_shipped_schema())


@lru_cache(maxsize=1)
def _quick_check():
    """The yes/no fast path (archc/spec/quickcheck.py), or None if it cannot read the schema."""
    from archc.spec.quickcheck import Unsupported, compile_schema

    try:
        return compile_schema(_shipped_schema())
    except Unsupported:
        return None


def _locate(tree, path, key: bool = False) -> tuple:
    """The position of the value at ``path`` in a located tree (of the key itself with
    ``key``: an unknown key), and the dotted path text."""
    node, pos, text = tree, getattr(tree, "pos", None), ""
    for i, part in enumerate(path):
        if isinstance(node, (LDict, LList)):
            try:
                last_key = key and i == len(path) - 1 and isinstance(node, LDict)
                pos = node.key_pos_of(part) if last_key else node.pos_of(part)
                node = node[part]
            except (KeyError, IndexError, TypeError):
                break
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return pos, text


def _is_op_attr(path, validator: str = "") -> bool:
    """Errors inside an op's attributes are reported by the op's attribute types, and
    unknown attributes by the expander, together with every other layer's errors."""
    from archc.ops.registry import REGISTRY

    for i in range(len(path) - 2):
        if path[i] == "layers" and isinstance(path[i + 1], int) and path[i + 2] in REGISTRY:
            if len(path) == i + 3:
                return validator == "additionalProperties"
            return path[i + 3] not in COMMON_KEYS
    return False


_WORDS = {"string": "text", "integer": "an integer", "number": "a number",
          "boolean": "true or false", "object": "a mapping", "array": "a list", "null": "nothing"}
_CHECKS = {"string": lambda v: isinstance(v, str), "object": lambda v: isinstance(v, dict),
           "array": lambda v: isinstance(v, list), "boolean": lambda v: isinstance(v, bool),
           "null": lambda v: v is None,
           "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
           "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)}


def _fits(schema: dict, value) -> bool:
    """Whether a value has the JSON type a schema (an anyOf branch) is about."""
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        return any(_CHECKS[t](value) for t in types)
    if "enum" in schema or "const" in schema:
        options = schema.get("enum", [schema.get("const")])
        return any(type(o) is type(value) for o in options)
    if "anyOf" in schema:
        return any(_fits(b, value) for b in schema["anyOf"])
    return True


def _describe(schema: dict) -> str:
    """A schema in words: `an integer`, `one of sgd, adam`, `an expression ($...)`."""
    if "anyOf" in schema:
        return " or ".join(_describe(b) for b in schema["anyOf"])
    if "enum" in schema:
        return "one of " + ", ".join(map(str, schema["enum"]))
    if "const" in schema:
        return repr(schema["const"])
    if schema.get("pattern") == EXPR["pattern"]:
        return "an expression ($...)"
    types = schema.get("type", [])
    return " or ".join(_WORDS.get(t, t) for t in (types if isinstance(types, list) else [types]))


def _explain(err) -> list[tuple[list, str, str, bool]]:
    """One jsonschema error -> [(path, message, fix, is an unknown key)]. An anyOf is explained by the branch
    the value was meant for (the one of its type), else by listing what would fit."""
    if err.validator in ("anyOf", "oneOf") and err.context:
        fitting = [i for i, b in enumerate(err.validator_value) if _fits(b, err.instance)]
        if fitting:
            errors = [e for e in err.context if e.relative_schema_path[0] == fitting[0]]
            return [x for e in errors for x in _explain(e)]
        return [(list(err.absolute_path),
                 f"expected {_describe(err.schema)}, got {type_name(err.instance)} {short(err.instance)}",
                 "", False)]
    path = list(err.absolute_path)
    if err.validator == "additionalProperties":
        from archc.ops.registry import suggest

        known = sorted(err.schema.get("properties", {}))
        extra = [k for k in err.instance if k not in known]
        return [(path + [k], f"unknown key {k!r}", suggest(k, known).replace(
            "`archc ops` lists the op kinds", "known keys: " + ", ".join(known)), True)
            for k in extra]
    return [(path, *_message(err), False)]


def _number_fix(want: str, inst) -> str:
    """How to write a number that arrived as text (quoted, or not a number at all)."""
    if not isinstance(inst, str) or not any(w in want for w in ("number", "integer")):
        return ""
    try:
        float(inst)
    except ValueError:
        return "write a number: 0.0005, 5e-4 or 5.0e-4 (digits, an optional dot and exponent)"
    return f"write it without quotes: {inst.strip()}"


_NAMES = {"blocks": "block", "networks": "network", "args": "argument"}  # mappings whose keys are names


def _message(err) -> tuple[str, str]:
    v, inst = err.validator, err.instance
    if v == "required":
        missing = [k for k in err.validator_value if k not in inst]
        if missing == ["archc"]:
            return "missing the format key `archc`", "add `archc: 1` at the top of the file"
        return f"missing required key {missing[0]!r}", f"add `{missing[0]}:`"
    if v == "const" and err.path and err.path[-1] == "archc":
        return (f"unsupported format version {inst!r}",
                f"this archc reads `archc: {FORMAT_VERSION}`")
    if v == "type":
        want = _describe(err.schema)
        return (f"expected {want}, got {type_name(inst)} {short(inst)}",
                "quote it" if want == "text" and not isinstance(inst, (dict, list)) else _number_fix(want, inst))
    if v == "enum":
        from archc.ops.registry import suggest

        hint = suggest(str(inst), [str(o) for o in err.validator_value])
        return (f"{short(inst)} is not one of {', '.join(map(str, err.validator_value))}",
                hint if hint.startswith("did you mean") else "")
    if v in ("minimum", "exclusiveMinimum", "maximum"):
        return f"{short(inst)} is out of range ({err.message.split(' is ', 1)[1]})", \
            f"use {_describe(err.schema)} {_bound(err.schema)}".rstrip()
    if v in ("minItems", "maxItems"):
        n = err.validator_value
        return (f"{short(inst)} has {'too few' if v == 'minItems' else 'too many'} items",
                f"give {'at least' if v == 'minItems' else 'at most'} {n}")
    if v in ("minProperties", "maxProperties") and err.schema.get("maxProperties") == 1:
        return ("a layer is a mapping with exactly one key, the op or block name, got "
                f"{len(inst)} keys ({', '.join(map(str, inst))})",
                "write `- conv2d: {out: 64, kernel: 3}`; attributes go inside the braces")
    if v == "pattern" and err.validator_value == EXPR["pattern"]:
        return (f"{short(inst)} is neither a number nor an expression",
                "write a number, or an expression starting with $ (`$depth * 2`)")
    if v == "pattern" and err.validator_value == IDENT and err.path and err.path[-1] in _NAMES:
        from archc.ir.names import name_fix  # a key of blocks/networks/args: as an id is told

        return (f"{_NAMES[err.path[-1]]} name {short(inst)} is not a plain identifier",
                name_fix(str(inst)))
    if v == "pattern" and err.path and isinstance(err.path[-1], int):
        return f"{short(inst)} is not an op or block name", "write `- relu` or `- conv2d: {...}`"
    if v == "propertyNames":
        return f"{short(inst)} is not a valid name", "use letters, digits and underscores"
    return err.message, ""


def _bound(schema: dict) -> str:
    parts = [f"≥ {schema['minimum']}" if "minimum" in schema else "",
             f"> {schema['exclusiveMinimum']}" if "exclusiveMinimum" in schema else "",
             f"≤ {schema['maximum']}" if "maximum" in schema else ""]
    return " and ".join(p for p in parts if p)


def type_name(value) -> str:
    return {dict: "a mapping", LDict: "a mapping", list: "a list", LList: "a list", str: "text",
            bool: "a boolean", int: "an integer", float: "a number", type(None): "nothing"}.get(
        type(value), type(value).__name__)


def short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def validate_tree(tree) -> list[SpecError]:
    """Check a located tree against the shipped schema; every error, located.

    A valid tree is recognised by the compiled yes/no check without importing jsonschema
    (startup time); any other tree goes through jsonschema, which reports every error."""
    quick = _quick_check()
    if quick is not None and quick(tree):
        return []
    errors = []
    for err in _validator().iter_errors(tree):
        for path, message, fix, unknown_key in _explain(err):
            if _is_op_attr(path[:-1], "additionalProperties") if unknown_key else _is_op_attr(path):
                continue
            pos, text = _locate(tree, path, key=unknown_key)
            errors.append(SpecError(message, pos, text, fix))
    return sorted(errors, key=lambda e: (e.pos.line, e.pos.col) if e.pos else (0, 0))


def main() -> None:
    SCHEMA_FILE.write_text(json.dumps(build_schema(), indent=1, sort_keys=False) + "\n")
    print(f"wrote {SCHEMA_FILE}", file=sys.stderr)


if __name__ == "__main__":
    main()
