"""A spec file -> a typed :class:`Document`: networks, blocks (own and imported), variables.

This stage reads files (the spec and its imports), checks them against the schema, and
settles the variables: file ``vars``, then the chosen preset, then ``--set`` overrides.
It does not build graphs; that is archc/spec/expand.py.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path


from archc.errors import ExprError, Pos, SpecError, SpecErrors
from archc.spec.expr import evaluate, is_expression
from archc.spec.imports import ENV_VAR, Imported, ImportSession
from archc.spec.loader import TOO_LARGE, LDict, LList, load_value, load_yaml, plain
from archc.spec.schema import validate_tree

REQUIRED_ARG = "required"
MAX_IMPORT_DEPTH = 16


@dataclass
class BlockDef:
    name: str
    args: dict  # argument -> default value, or REQUIRED_ARG
    layers: LList
    env: dict  # the variables of the file that defines the block (lexical scope)
    pos: Pos
    file: str
    # The blocks this block's layers may call: those of the file that defines it (its own
    # and its imports). Empty for the main file's blocks, which see the document's.
    visible: dict = field(default_factory=dict, repr=False, compare=False)


@dataclass
class NetworkDef:
    name: str
    input: tuple
    layers: LList
    outputs: list | None
    train: dict | None
    env: dict
    pos: Pos
    input_pos: Pos | None = None
    path: str = ""  # spec path prefix of its layers: "networks.generator." in a multi-network file
    input_dtype: str = "float32"  # or "int64": token ids
    input_vocab: int | None = None  # token ids lie in [0, vocab)


@dataclass
class Document:
    file: str
    networks: dict[str, NetworkDef]
    blocks: dict[str, BlockDef]
    presets: list[str]
    preset: str | None
    text_hash: str
    description: str = ""
    imported_files: list[str] = field(default_factory=list)
    overrides: dict = field(default_factory=dict)  # the --set values applied (reports name the variant)


def read_text(path: str) -> str:
    """A spec file's text; at most MAX_BYTES + 1 bytes are read, so that a huge file is
    refused by the loader's size check, not read into memory. Only a regular file is read:
    a FIFO, a device (/dev/zero, a terminal) or a socket is refused after a stat, before
    it is opened, and the open does not wait (O_NONBLOCK) should the path change between."""
    from archc.spec.imports import special_kind
    from archc.spec.loader import MAX_BYTES

    shown = repr(str(path))[1:-1]
    try:
        if not stat.S_ISREG(mode := os.stat(path).st_mode):
            raise SpecErrors.one(f"{special_kind(mode)}, not a regular file", Pos(shown),
                                 fix="give a spec file (.yaml)")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
        with open(fd, "rb") as f:
            if not stat.S_ISREG(mode := os.fstat(f.fileno()).st_mode):
                raise SpecErrors.one(f"{special_kind(mode)}, not a regular file", Pos(shown),
                                     fix="give a spec file (.yaml)")
            data = f.read(MAX_BYTES + 1)
    except (OSError, ValueError) as exc:  # ValueError: a NUL character in the path
        raise SpecErrors.one(f"cannot read file: {getattr(exc, 'strerror', None) or exc}",
                             Pos(shown), fix="check the path") from None
    if len(data) > MAX_BYTES:
        raise SpecErrors.one(f"file is larger than {MAX_BYTES // 1024 // 1024} MiB", Pos(str(path)),
                             fix="a network spec is a few kilobytes; is this the right file?")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecErrors.one(f"not UTF-8 text (byte {exc.start})", Pos(str(path)),
                             fix="save the spec as UTF-8") from None


def parse_override(item: str) -> tuple[str, object]:
    """``KEY=VALUE`` from the command line; VALUE is read as YAML (``[1, 32, 32]``, ``5e-4``)
    exactly as a value in a spec file is: safely, within the same bounds, numbers as YAML 1.2."""
    key, sep, raw = item.partition("=")
    shown = item if len(item) <= 80 else item[:77] + "..."  # never echo a huge value
    if not sep or not key.strip():
        raise SpecErrors.one(f"--set {shown!r} is not KEY=VALUE", fix="e.g. --set classes=10")
    try:
        value = load_value(raw, f"--set {key.strip()[:40]}")
    except SpecErrors as exc:
        problem = exc.errors[0].message if exc.errors else "not valid YAML"
        if problem == TOO_LARGE:
            raise SpecErrors.one(f"--set {shown!r}: number too large",
                                 fix="keep values below 2**62, as computed values are") from None
        raise SpecErrors.one(f"--set {shown!r}: the value is not valid YAML ({problem})",
                             fix=f"""quote it: --set '{key.strip()[:40]}="..."'""") from None
    return key.strip(), value


def load_document(path: str | None = None, text: str | None = None, preset: str | None = None,
                  overrides: dict | None = None) -> Document:
    """Read, schema-check and settle one spec file (``text`` wins over reading ``path``)."""
    file = str(path) if path else "<string>"
    if text is None:
        text = read_text(file)
    tree = load_yaml(text, file)
    if not isinstance(tree, LDict):
        raise SpecErrors.one(f"the top level is {_kind(tree)}, not a mapping", Pos(file, 1, 1),
                             fix="a spec is a mapping with `archc: 1`, `input:` and `layers:`")
    _require_format_key(tree, file)
    errors = validate_tree(tree)
    if errors:
        raise SpecErrors(errors)
    base = Path(file).parent if path else Path.cwd()
    net_vars = {k for body in tree.get("networks", {}).values() for k in body.get("vars", {})}
    env = _settle_vars(tree, file, preset, overrides or {}, net_vars)
    session = ImportSession(base)
    blocks, imported = _imports(tree, base, file, (Path(file).resolve(),) if path else (), session)
    blocks.update(_own_blocks(tree, env, file))
    networks = _networks(tree, env, file, overrides or {})
    return Document(file, networks, blocks, sorted(tree.get("presets", {})), preset,
                    hashlib.sha256(text.encode()).hexdigest()[:16], tree.get("description", ""),
                    imported, dict(overrides or {}))


def _require_format_key(tree: LDict, file: str) -> None:
    """A mapping without `archc:` is some other YAML file (a CI config, a secret): said in
    one error that repeats none of its keys or values."""
    if "archc" not in tree:
        raise SpecErrors.one("not an archc spec: missing the format key `archc`", tree.pos, "",
                             "add `archc: 1` at the top of the file")


def _kind(value) -> str:
    from archc.spec.schema import type_name

    return type_name(value)


def _settle_vars(tree: LDict, file: str, preset: str | None, overrides: dict,
                 net_vars=frozenset()) -> dict:
    """File vars, then the preset's, then --set; expressions evaluated in order.
    ``net_vars``: variables of the networks of the file, which --set may also set."""
    raw = dict(tree.get("vars", {}))
    where = {k: tree["vars"].pos_of(k) for k in raw} if "vars" in tree else {}
    presets = tree.get("presets", {})
    errors = []
    if preset is not None:
        if preset not in presets:
            raise SpecErrors.one(f"no preset {preset!r}", tree.pos_of("presets") if presets else tree.pos,
                                 "--preset", fix=("presets: " + ", ".join(presets)) if presets else
                                 "this file defines no `presets:`")
        for k, v in presets[preset].items():
            if k not in raw:
                errors.append(SpecError(f"preset {preset!r} sets ${k}, which `vars:` does not define",
                                        presets[preset].key_pos_of(k), f"presets.{preset}.{k}",
                                        "add it to `vars:` with a default"))
            raw[k], where[k] = v, presets[preset].pos_of(k)
    for k, v in overrides.items():
        if "." in k and not k.startswith("train."):
            errors.append(SpecError("only train settings have dotted names", Pos(file), f"--set {k}",
                                    "set a variable (--set width=32), input, or train.KEY"))
            continue
        if "." in k or k in ("input", "name"):
            continue  # train.* and input are applied to the network
        if k in net_vars and k not in raw:
            continue  # applied to the networks that define it
        if k not in raw:
            errors.append(SpecError(f"the spec has no variable `{k}`", Pos(file), f"--set {k}",
                                    _var_hint(k, list(raw) + sorted(net_vars))))
        elif _kind_of(raw[k]) and _kind_of(v) and _kind_of(raw[k]) != _kind_of(v):
            errors.append(SpecError(
                f"{_kind(v)} {v!r} replaces {_kind(raw[k])} (`{k}: {raw[k]!r}` in the spec)",
                where.get(k), f"--set {k}", f"give {_kind(raw[k])}, e.g. --set {k}={raw[k]!r}"))
        raw[k], where[k] = v, Pos("--set")
    env = {}
    for k, v in raw.items():
        try:
            env[k] = _eval_value(v, env)
        except ExprError as exc:
            errors.append(SpecError(exc.message, where.get(k), f"vars.{k}", exc.fix))
    if errors:
        raise SpecErrors(errors)
    return env


def _kind_of(value) -> str:
    """The kind a --set value must keep: number, text, boolean or list ("" = anything:
    an expression, or null)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, list):
        return "list"
    if isinstance(value, str) and not is_expression(value):
        return "text"
    return ""


def _var_hint(name: str, known) -> str:
    from archc.ops.registry import suggest

    hint = suggest(name, known)
    return hint if "did you mean" in hint else ("variables: " + ", ".join(known) if known else
                                                "this spec defines no `vars:`")


def _eval_value(value, env):
    if is_expression(value):
        return evaluate(value, env)
    if isinstance(value, list):
        return [_eval_value(v, env) for v in value]
    return value


def _own_blocks(tree: LDict, env: dict, file: str) -> dict[str, BlockDef]:
    out = {}
    for name, body in tree.get("blocks", {}).items():
        out[name] = BlockDef(name, dict(body.get("args", {})), body["layers"], env,
                             tree["blocks"].key_pos_of(name), file)
    return out


def _imports(tree: LDict, base: Path, file: str, chain: tuple, session: ImportSession) -> tuple[dict, list]:
    """Blocks imported from other files, relative to this one; cycles are errors. Every
    bad import of the file is reported; errors inside an imported file get a note that
    points at the import. ``session`` confines, caches and counts the files read."""
    blocks, files, errors, failed = {}, [], [], False
    for i, item in enumerate(tree.get("imports", [])):
        pos = tree["imports"].pos_of(i)
        try:
            sub_blocks, sub_files = _import_one(item, pos, i, base, file, chain, session)
        except SpecErrors as exc:
            rel = item if isinstance(item, str) else item["file"]
            for e in exc.errors:
                if e.pos is None or e.pos.file != pos.file:
                    e.notes.append((pos, f"`{rel}` is imported here"))
            errors += exc.errors
            failed = True  # even without errors of its own: a file already reported
            continue
        blocks.update(sub_blocks)
        files += [f for f in sub_files if f not in files]
    if failed:
        raise SpecErrors(errors)
    return blocks, files


def _import_one(item, pos: Pos, i: int, base: Path, file: str, chain: tuple,
                session: ImportSession) -> tuple[dict, list]:
    rel, wanted = (item, None) if isinstance(item, str) else (item["file"], item.get("blocks"))
    # Messages name the file as the user would: relative to the importing file's own name.
    shown = os.path.normpath(os.path.join(os.path.dirname(file), rel)) if file != "<string>" else rel
    target = session.locate(rel, base, pos, f"imports[{i}]")
    if target is not None and target != Path(os.path.realpath(base / rel)):
        shown = str(target)  # found in a library folder: its own path says where
    if target in chain:
        cycle = " → ".join(p.name for p in chain[chain.index(target):] + (target,))
        raise SpecErrors.one(f"import cycle: {cycle}", pos, f"imports[{i}]",
                             "move the shared blocks into a third file both import")
    if target is None:
        raise SpecErrors.one(f"imported file {rel!r} not found (looked at {shown})", pos,
                             f"imports[{i}]", "paths are relative to the importing file"
                             + (f" (then to the folders of --import-root and {ENV_VAR})"
                                if len(session.roots) > 1 else ""))
    if len(chain) > MAX_IMPORT_DEPTH:
        raise SpecErrors.one(f"imports nested more than {MAX_IMPORT_DEPTH} deep", pos, f"imports[{i}]",
                             "import the blocks from fewer levels of files")
    if target not in session.cache:
        session.cache[target] = _load_import(target, rel, shown, pos, i, chain, session)
    loaded = session.cache[target].result()
    if len(chain) + loaded.height > MAX_IMPORT_DEPTH:  # a file cached when first met less deep
        raise SpecErrors.one(f"imports nested more than {MAX_IMPORT_DEPTH} deep", pos, f"imports[{i}]",
                             "import the blocks from fewer levels of files")
    blocks = {}
    for name in wanted or loaded.blocks:
        if name not in loaded.blocks:
            raise SpecErrors.one(f"{rel} defines no block {name!r}", pos, f"imports[{i}]",
                                 _var_hint_blocks(name, loaded.blocks))
        blocks[name] = loaded.blocks[name]
    return blocks, [str(target)] + loaded.files


def _load_import(target: Path, rel: str, shown: str, pos: Pos, i: int, chain: tuple,
                 session: ImportSession) -> Imported:
    """Read, check and settle one imported file (once per load: the caller caches it,
    errors included). The file's own imports are loaded in turn."""
    try:
        session.check_file(target, rel, pos, f"imports[{i}]")
        text = read_text(str(target))
        sub_tree = load_yaml(text, shown)
        session.spend(text, sub_tree, pos, f"imports[{i}]")
        if not isinstance(sub_tree, LDict):
            raise SpecErrors.one(f"the top level is {_kind(sub_tree)}, not a mapping", Pos(shown, 1, 1),
                                 "", "a block library is a mapping with `archc: 1` and `blocks:`")
        _require_format_key(sub_tree, shown)
        errors = validate_tree(sub_tree)
        if errors:
            raise SpecErrors(errors)
        sub_env = _settle_vars(sub_tree, shown, None, {})
        sub_blocks, sub_files = _imports(sub_tree, target.parent, shown, chain + (target,), session)
    except SpecErrors as exc:
        return Imported(errors=exc.errors)
    own = _own_blocks(sub_tree, sub_env, str(target))
    sub_blocks.update(own)
    for b in own.values():
        b.visible = sub_blocks  # lexical scope: an imported block calls its file's blocks
    # levels of imports below this file: 0 for a file that imports nothing
    height = max((1 + session.cache[Path(f)].height for f in sub_files), default=0)
    return Imported(sub_blocks, sub_files, height)


def _var_hint_blocks(name: str, blocks) -> str:
    from archc.ops.registry import suggest

    hint = suggest(name, blocks)
    return hint if "did you mean" in hint else "blocks there: " + (", ".join(blocks) or "none")


def _networks(tree: LDict, env: dict, file: str, overrides: dict) -> dict[str, NetworkDef]:
    stem = Path(file).stem if file != "<string>" else "network"
    if "networks" in tree:
        if "layers" in tree or "input" in tree:
            raise SpecErrors.one("a file has either top-level `layers:` or `networks:`, not both",
                                 tree.key_pos_of("networks"), fix="move the layers into a network")
        items = [(k, v, tree["networks"].key_pos_of(k)) for k, v in tree["networks"].items()]
    else:
        if "layers" not in tree:
            if "blocks" in tree:
                return {}  # a library of blocks for others to import
            raise SpecErrors.one("no `layers:` (and no `networks:`)", tree.pos,
                                 fix="list the network's layers under `layers:`")
        if "input" not in tree:
            raise SpecErrors.one("missing `input:`, the input shape without the batch", tree.pos,
                                 fix="e.g. `input: [3, 224, 224]`")
        items = [(tree.get("name", stem), tree, tree.pos)]
    out = {}
    for name, body, pos in items:
        net_env = dict(env)
        for k, v in body.get("vars", {}).items() if body is not tree else ():
            try:
                net_env[k] = _eval_value(overrides.get(k, v), net_env)
            except ExprError as exc:
                raise SpecErrors.one(exc.message, body["vars"].pos_of(k),
                                     f"networks.{name}.vars.{k}", exc.fix) from None
        shape, dtype, vocab = _input(body["input"])
        input_pos = body.pos_of("input")
        if "input" in overrides:
            shape, input_pos = _override_shape(overrides["input"], file), Pos("--set input")
        train = _merge_train(tree.get("train") if body is not tree else None, body.get("train"), overrides)
        out[name] = NetworkDef(body.get("name", name), shape, body["layers"], body.get("outputs"),
                               train, net_env, pos, input_pos,
                               f"networks.{name}." if body is not tree else "", dtype, vocab)
    return out


def _input(value) -> tuple[tuple, str, int | None]:
    """(shape, dtype, vocab) of an `input:` (checked by the schema): a list is a float
    shape; a mapping gives `shape`, `dtype` and, for token ids, `vocab`."""
    if isinstance(value, dict):
        return tuple(value["shape"]), value.get("dtype", "float32"), value.get("vocab")
    return tuple(value), "float32", None


def _override_shape(value, file: str) -> tuple:
    if (not isinstance(value, list) or not value or len(value) > 4
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)):
        raise SpecErrors.one(f"{value!r} is not a shape (1 to 4 sizes ≥ 1)", Pos(file),
                             "--set input", "e.g. --set input=[1,32,32] (batch excluded)")
    return tuple(value)


# train keys whose value may be a shorthand (`data: digits`, `optimizer: adam`): the key the
# shorthand stands for, so that `--set train.data.val_split=0` can set a key inside it.
_TRAIN_SHORTHANDS = {"data": "source", "optimizer": "name", "schedule": "name", "loss": "name",
                     "grad_noise": "std"}


def _merge_train(file_train, net_train, overrides: dict) -> dict | None:
    merged = plain(file_train or {}) | plain(net_train or {})
    for k, v in overrides.items():
        if k.startswith("train."):
            node = merged
            parts = k.split(".")[1:]
            for depth, p in enumerate(parts[:-1]):
                child = node.setdefault(p, {})
                if depth == 0 and p in _TRAIN_SHORTHANDS and not isinstance(child, dict):
                    child = node[p] = {_TRAIN_SHORTHANDS[p]: child}
                if not isinstance(child, dict):
                    raise SpecErrors.one(f"train.{'.'.join(parts[:depth + 1])} is {child!r}, not a mapping",
                                         Pos("--set"), k, f"set train.{'.'.join(parts[:depth + 1])} itself")
                node = child
            node[parts[-1]] = v
    return merged or None
