"""Load a foreign state_dict (torchvision's, a training checkpoint) into a spec-built model.

``archc.load_weights(model, source, mapping="auto", strict=True)`` pairs every tensor of the
model's ``state_dict()`` (parameters and persistent buffers, in registration order) with a
tensor of the source, in this order of preference:

1. **mapping** rules, when a mapping is given (a YAML/JSON file or a dict of
   ``target_key: source_key``; a key that is empty or ends with ``.`` is a prefix rewrite,
   ``"classifier.fc1.": "classifier.0."``; ``null`` leaves the target
   as it is — the head you are replacing in transfer learning);
2. **identical names** (``layer1.0.conv1.weight`` in both);
3. **order and shape** for the rest: the remaining tensors of both sides, in order, are
   aligned on their shapes (difflib's longest-matching-blocks alignment), so an extra or
   a missing layer on one side shifts nothing else. Two tensors that the alignment puts
   face to face with different shapes are a *conflict*.

BatchNorm's ``num_batches_tracked`` counters follow their layer: a counter is taken from
the module that gave the layer its ``running_mean``; if the source has none (older
checkpoints) the model's own counter is kept, which is not an error.

Nothing is loaded unless every pairing agrees: any shape conflict raises
:class:`WeightsError` naming both tensors and both shapes; with ``strict=True`` a model
tensor left without a source, or a source tensor left unused, does too. The returned
:class:`LoadReport` lists every pairing and every leftover by name; ``str(report)`` is a
readable account.

Safety: checkpoints are read with ``torch.load(weights_only=True)`` — a pickle that would
run code (``__reduce__``) is refused, never executed — or as safetensors files (when the
``safetensors`` package is installed), which hold no code at all.
"""

from __future__ import annotations

import difflib
import importlib.util
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

COUNTER = "num_batches_tracked"
# Where training checkpoints commonly keep the state_dict, tried in this order.
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "weights")
TEXT_LIMIT = 40  # lines per section of the readable report
MISFIT_SHOWN = 3  # tensors named per kind of problem in a refusal's one line
MISFIT_FIX = ("give the weights of a run of this spec; another model's load through "
              "archc.load_weights(model, FILE, mapping=...) (docs/weights.md)")


class WeightsError(Exception):
    """Loading was refused; nothing was loaded. ``report`` (or None) says why in detail."""

    def __init__(self, message: str, report: "LoadReport | None" = None):
        self.report = report
        super().__init__(message)


# --------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class Pair:
    """``target`` (the model's key) takes the value of ``source``; ``how`` says why:
    ``mapping``, ``name``, ``order`` (order and shape) or ``counter`` (num_batches_tracked)."""

    target: str
    source: str
    how: str


@dataclass(frozen=True)
class Conflict:
    """Two tensors that would be paired but whose shapes differ."""

    target: str
    target_shape: tuple
    source: str
    source_shape: tuple
    how: str

    def __str__(self) -> str:
        return (f"{self.target} {_shape(self.target_shape)} <- {self.source} "
                f"{_shape(self.source_shape)} ({_HOW[self.how]})")


_HOW = {"mapping": "mapping", "name": "same name", "order": "order and shape",
        "counter": "counter of its layer"}


@dataclass
class LoadReport:
    """Every tensor of the model and of the source, accounted for by name."""

    source: str
    ordered: bool = True  # False: the source keeps no order (safetensors)
    pairs: list[Pair] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    missing: list[tuple[str, tuple]] = field(default_factory=list)  # model tensors without a source
    unused: list[tuple[str, tuple]] = field(default_factory=list)  # source tensors nobody takes
    ignored: list[str] = field(default_factory=list)  # model tensors the mapping leaves alone
    counters_kept: list[str] = field(default_factory=list)  # model counters the source lacks
    bad_rules: list[str] = field(default_factory=list)  # mapping entries naming absent tensors

    @property
    def ok(self) -> bool:
        """No conflict and no bad mapping entry: the pairs can be loaded."""
        return not self.conflicts and not self.bad_rules

    @property
    def complete(self) -> bool:
        """Every model tensor found a source (or was ignored) and every source tensor was used."""
        return not self.missing and not self.unused

    def count(self, how: str) -> int:
        return sum(p.how == how for p in self.pairs)

    def text(self, limit: int = TEXT_LIMIT) -> str:
        """The readable account: totals, problems, then the pairings that were not by name."""
        lines = [f"weights from {self.source}: {len(self.pairs)} tensors paired ("
                 + ", ".join(f"{self.count(h)} by {_HOW[h]}" for h in _HOW if self.count(h)) + ")"]
        sections = [
            ("shape conflicts (nothing loaded)", [str(c) for c in self.conflicts]),
            ("mapping entries naming no tensor of the source", self.bad_rules),
            ("model tensors without a source (left as they are)",
             [f"{k} {_shape(s)}" for k, s in self.missing]),
            ("source tensors not used", [f"{k} {_shape(s)}" for k, s in self.unused]),
            ("model tensors the mapping leaves alone", self.ignored),
            ("num_batches_tracked counters the source lacks (kept)", self.counters_kept),
            ("paired by mapping or by order and shape (a * stands for the same tensor names)",
             _grouped([p for p in self.pairs if p.how in ("mapping", "order")])),
        ]
        if not self.ordered and self.count("order"):
            lines.append("(the source keeps no order of its tensors — safetensors — so its layers "
                         "were aligned in natural name order: check the pairs below)")
        for title, items in sections:
            if items:
                lines.append(f"{title}: {len(items)}")
                lines += [f"  {item}" for item in items[:limit]]
                if len(items) > limit:
                    lines.append(f"  ... and {len(items) - limit} more (see the report's lists)")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()

    def misfit(self, subject: str | None = None, fix: str = MISFIT_FIX, limit: int = MISFIT_SHOWN) -> str:
        """Why these weights do not fit, in one line — the message of every refusal (the
        API's, evaluate's, export's, infer's, generate's): how many shape conflicts, mapping
        entries naming nothing, model tensors without a source and source tensors left
        unused, the first ``limit`` of each with their shapes, a leftover with the closest
        name on the other side (did you mean), then ``— fix``."""
        conflicts = [f"{c.target} {_shape(c.target_shape)} vs {c.source} {_shape(c.source_shape)}"
                     for c in self.conflicts]
        missing = [f"{k} {_shape(s)}{_closest(k, self.unused)}" for k, s in self.missing]
        unused = [f"{k} {_shape(s)}{_closest(k, self.missing)}" for k, s in self.unused]
        parts = [_some(conflicts, "shape conflict", "shape conflicts", limit, " (network vs weights: "),
                 _some(self.bad_rules, "mapping entry naming no tensor", "mapping entries naming no tensor", limit),
                 _some(missing, "network tensor without a source", "network tensors without a source", limit),
                 _some(unused, "tensor of the weights not used", "tensors of the weights not used", limit)]
        paired = f"; {len(self.pairs)} paired" if self.pairs else "; nothing paired"
        return (f"{subject or self.source} does not fit this network: "
                + "; ".join(p for p in parts if p) + paired + f" — {fix}")


def _some(items: list, one: str, many: str, limit: int, opening: str = " (") -> str:
    """``3 shape conflicts (a, b, c, and 4 more)``, or '' when there are none."""
    if not items:
        return ""
    more = f", and {len(items) - limit} more" if len(items) > limit else ""
    return f"{len(items)} {one if len(items) == 1 else many}{opening}{', '.join(items[:limit])}{more})"


def _closest(key: str, others: list) -> str:
    """`` [did you mean X (shape)?]`` for the leftover on the other side whose name is closest."""
    shapes = dict(others)
    close = difflib.get_close_matches(key, list(shapes), n=1, cutoff=0.6)
    return f" [did you mean {close[0]} {_shape(shapes[close[0]])}?]" if close else ""


def refusal(exc: "WeightsError", subject: str) -> str:
    """A command's one-line message for a refused load: the report's misfit, else the error."""
    return exc.report.misfit(subject) if exc.report is not None else f"{subject}: {exc}"


def _shape(shape) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _grouped(pairs: list[Pair]) -> list[str]:
    """``a.conv.weight <- b.0.weight`` and ``a.conv.bias <- b.0.bias`` read as one line
    ``a.conv.* <- b.0.*``: pairs of one module pair whose last names agree."""
    lines, groups = [], {}
    for p in pairs:
        t_mod, _, t_leaf = p.target.rpartition(".")
        s_mod, _, s_leaf = p.source.rpartition(".")
        if t_leaf == s_leaf and t_mod and s_mod:
            if (t_mod, s_mod) not in groups:
                groups[(t_mod, s_mod)] = len(lines)
                lines.append(f"{t_mod}.* <- {s_mod}.*")
            continue
        lines.append(f"{p.target} <- {p.source}")
    return lines


# --------------------------------------------------------------------------- mapping rules


@dataclass
class Rules:
    """A mapping: exact target -> source keys and (target prefix, source prefix) rewrites;
    a source of None leaves the target alone."""

    exact: dict = field(default_factory=dict)
    prefixes: list = field(default_factory=list)  # longest target prefix first

    def lookup(self, target: str):
        """(found, source key or None, exact?) for a model key."""
        if target in self.exact:
            return True, self.exact[target], True
        for t_prefix, s_prefix in self.prefixes:
            if target.startswith(t_prefix):
                return True, None if s_prefix is None else s_prefix + target[len(t_prefix):], False
        return False, None, False


def _is_prefix(key: str) -> bool:
    return key == "" or key.endswith(".")


def read_mapping(mapping, where: str = "mapping") -> Rules:
    """``"auto"``/None, a dict, or a YAML/JSON file of ``target_key: source_key`` -> Rules."""
    if mapping is None or mapping == "auto":
        return Rules()
    if isinstance(mapping, (str, Path)):
        where = str(mapping)
        mapping = _read_mapping_file(Path(mapping))
    if not isinstance(mapping, Mapping):
        raise WeightsError(f"{where}: a mapping must be a dict of target_key: source_key, "
                           f"got {type(mapping).__name__}")
    rules = Rules()
    for target, source in mapping.items():
        if not isinstance(target, str) or not (source is None or isinstance(source, str)):
            raise WeightsError(f"{where}: entry {target!r}: {source!r}: keys and values must be "
                               "tensor names (text), or null to leave a tensor alone")
        if _is_prefix(target) != (source is None or _is_prefix(source)):
            raise WeightsError(f"{where}: entry {target!r}: {source!r}: a prefix rewrite needs "
                               "prefixes on both sides (empty or ending with '.')")
        if _is_prefix(target):
            rules.prefixes.append((target, source))
        else:
            rules.exact[target] = source
    rules.prefixes.sort(key=lambda r: -len(r[0]))
    return rules


def _read_mapping_file(path: Path):
    from archc.errors import SpecErrors
    from archc.spec.loader import load_value  # JSON is YAML; read as spec files are, plain data only

    try:
        return load_value(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise WeightsError(f"cannot read the mapping file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    except SpecErrors as exc:
        raise WeightsError(f"{path}: not a YAML/JSON mapping: {exc.errors[0].message}") from None


# --------------------------------------------------------------------------- matching


def match(target: Mapping, source: Mapping, rules: Rules | None = None, name: str = "state_dict",
          ordered: bool = True) -> LoadReport:
    """Pair model keys with source keys, from their shapes alone (``{key: shape tuple}``,
    both in registration order; ``ordered=False`` when the source's order means nothing,
    its layers are then taken in natural name order). Pure: loads nothing, raises nothing."""
    rules = rules or Rules()
    report = LoadReport(name, ordered=ordered)
    free_t = {k: tuple(s) for k, s in target.items()}  # not yet paired, in order
    free_s = {k: tuple(s) for k, s in source.items()}
    counters = [k for k in free_t if _is_counter(k)]
    for k in counters:
        del free_t[k]
    _by_rules(report, rules, free_t, free_s, source)
    free_t, real_t = _bare_as_layers(free_t)
    free_s, real_s = _bare_as_layers(free_s)
    _by_name(report, free_t, free_s)
    _by_order(report, free_t, free_s, ordered)
    _restore(report, real_t, real_s)
    _counters(report, counters, rules, free_s, source)
    return report


def _bare_as_layers(shapes: dict) -> tuple[dict, dict]:
    """A tensor held directly by a module that also has submodules — torchvision's ViT
    ``class_token`` and ``encoder.pos_embedding``, ConvNeXt's ``layer_scale``, attention's
    ``in_proj_weight`` — is taken as a layer of its own whose one tensor is ``weight``
    (``class_token`` -> ``class_token.weight``), as archc's one-tensor ops name it, and is
    placed after its module's submodules (where those blocks apply it). Both sides get the
    same treatment, so structures that agree still agree. Returns (renamed shapes, new
    name -> real name)."""
    containers = set()
    for key in shapes:
        parts = key.split(".")
        containers.update(".".join(parts[:i]) for i in range(len(parts) - 1))
    out, real, pending = {}, {}, []  # pending: [container, its bare keys], innermost last

    def flush():
        for bare in pending.pop()[1]:
            out[bare + ".weight"], real[bare + ".weight"] = shapes[bare], bare

    for key, shape in shapes.items():
        while pending and not _under(key, pending[-1][0]):
            flush()
        module = key.rpartition(".")[0]
        if module in containers and not _is_counter(key):
            if not pending or pending[-1][0] != module:
                pending.append([module, []])
            pending[-1][1].append(key)
        else:
            out[key] = shape
    while pending:
        flush()
    return out, real


def _under(key: str, module: str) -> bool:
    return not module or key.startswith(module + ".")


def _restore(report: LoadReport, real_t: dict, real_s: dict) -> None:
    """The real names back in the report, after pairing under _bare_as_layers' names."""
    t, s = (lambda k: real_t.get(k, k)), (lambda k: real_s.get(k, k))
    report.pairs = [Pair(t(p.target), s(p.source), p.how) if p.how != "mapping" else p for p in report.pairs]
    report.conflicts = [Conflict(t(c.target), c.target_shape, s(c.source), c.source_shape, c.how)
                        if c.how != "mapping" else c for c in report.conflicts]
    report.missing = [(t(k), shape) for k, shape in report.missing]
    report.unused = [(s(k), shape) for k, shape in report.unused]


def _is_counter(key: str) -> bool:
    return key == COUNTER or key.endswith("." + COUNTER)


def _pair(report: LoadReport, t: str, t_shape, s: str, s_shape, how: str) -> None:
    if tuple(t_shape) == tuple(s_shape):
        report.pairs.append(Pair(t, s, how))
    else:
        report.conflicts.append(Conflict(t, tuple(t_shape), s, tuple(s_shape), how))


def _by_rules(report, rules: Rules, free_t: dict, free_s: dict, source: Mapping) -> None:
    for t in list(free_t):
        found, s, exact = rules.lookup(t)
        if not found:
            continue
        if s is None:
            report.ignored.append(t)
        elif s in source:
            _pair(report, t, free_t[t], s, source[s], "mapping")
            free_s.pop(s, None)  # one source may feed several targets (tied weights)
        elif exact:
            report.bad_rules.append(f"{t}: {s} (the source has no {s!r})")
        else:
            continue  # a prefix rewrite that does not apply here: matched further down
        del free_t[t]


def _by_name(report, free_t: dict, free_s: dict) -> None:
    for t in list(free_t):
        if t in free_s and not _is_counter(t):
            _pair(report, t, free_t.pop(t), t, free_s.pop(t), "name")


def _by_order(report, free_t: dict, free_s: dict, ordered: bool = True) -> None:
    """Pair the rest layer by layer: the layers (tensors grouped by module, in order) of
    both sides are aligned on their signatures (tensor names and shapes); within two
    aligned layers tensors pair by name, so a bias never takes a running mean of the same
    shape. Layers the alignment puts face to face with other shapes conflict."""
    t_mods = _layers(list(free_t), free_t)
    s_keys = [k for k in free_s if not _is_counter(k)]
    s_mods = _layers(s_keys if ordered else sorted(s_keys, key=_natural), free_s)
    tm, sm = list(t_mods), list(s_mods)
    matcher = difflib.SequenceMatcher(None, [_signature(t_mods[m]) for m in tm],
                                      [_signature(s_mods[m]) for m in sm], autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        n = min(i2 - i1, j2 - j1) if tag in ("equal", "replace") else 0
        for a, b in zip(tm[i1:i1 + n], sm[j1:j1 + n]):
            _pair_layers(report, a, t_mods[a], b, s_mods[b])
        report.missing += [(_key(a, leaf), shape) for a in tm[i1 + n:i2] for leaf, shape in t_mods[a].items()]
        report.unused += [(_key(b, leaf), shape) for b in sm[j1 + n:j2] for leaf, shape in s_mods[b].items()]
    for k in s_keys:
        del free_s[k]
    free_t.clear()


def _layers(keys: list, shapes: dict) -> dict:
    """``{module: {tensor name: shape}}``, modules in the order of their first tensor."""
    out = {}
    for k in keys:
        module, _, leaf = k.rpartition(".")
        out.setdefault(module, {})[leaf] = tuple(shapes[k])
    return out


def _signature(leaves: dict) -> tuple:
    return tuple(sorted(leaves.items()))


def _key(module: str, leaf: str) -> str:
    return f"{module}.{leaf}" if module else leaf


def _natural(key: str) -> list:
    """``features.10`` after ``features.9``: numbers compare as numbers."""
    return [int(part) if i % 2 else part for i, part in enumerate(re.split(r"(\d+)", key))]


def _pair_layers(report, a: str, a_leaves: dict, b: str, b_leaves: dict) -> None:
    for leaf, shape in a_leaves.items():
        if leaf in b_leaves:
            _pair(report, _key(a, leaf), shape, _key(b, leaf), b_leaves[leaf], "order")
        else:
            report.missing.append((_key(a, leaf), shape))
    report.unused += [(_key(b, leaf), shape) for leaf, shape in b_leaves.items() if leaf not in a_leaves]


def _counters(report, counters: list, rules: Rules, free_s: dict, source: Mapping) -> None:
    """num_batches_tracked follows the layer that gave the running statistics."""
    module_of = {}  # target module -> source module, from the pairs made so far
    for p in report.pairs:
        t_mod, _, leaf = p.target.rpartition(".")
        if leaf in ("running_mean", "running_var"):
            module_of[t_mod] = p.source.rpartition(".")[0]
    for t in counters:
        found, s, _ = rules.lookup(t)
        if found and s is None:
            report.ignored.append(t)
        elif found and s in source:
            report.pairs.append(Pair(t, s, "mapping"))
        else:  # the counter of the source layer that gave the statistics, else the same name
            t_mod = t.rpartition(".")[0]
            s = _key(module_of[t_mod], COUNTER) if t_mod in module_of else t
            s = s if s in source else t
            if s in source:
                report.pairs.append(Pair(t, s, "counter"))
            else:
                report.counters_kept.append(t)
    # A counter nobody asked for (the model's layer keeps no statistics) is not worth an error.


# --------------------------------------------------------------------------- reading


def read_state_dict(source) -> tuple[dict, str, bool]:
    """(state_dict of tensors, a name for messages, whether its order is the registration
    order) from a path, a dict or an nn.Module."""
    if isinstance(source, torch.nn.Module):
        return dict(source.state_dict()), type(source).__name__, True
    if isinstance(source, Mapping):
        return _tensors(source, "the given state_dict"), "the given state_dict", True
    if not isinstance(source, (str, Path)):
        raise WeightsError(f"expected a file path, a state_dict or a module, got {type(source).__name__}")
    path = Path(source)
    if not path.is_file():
        raise WeightsError(f"no such checkpoint file: {path}")
    if path.suffix == ".safetensors" or _looks_like_safetensors(path):
        return _read_safetensors(path), str(path), False
    return _tensors(_torch_load(path), str(path)), str(path), True


def _torch_load(path: Path):
    import pickle

    with path.open("rb") as fh:
        head = fh.read(4)
    # torch.save writes a zip archive (since torch 1.6) or, before, a pickle (protocol 2+
    # starts with 0x80): anything else — a text file, an image — is no checkpoint at all
    if not (head.startswith(b"PK\x03\x04") or head.startswith(b"\x80")):
        raise WeightsError(f"{path} is not a weights file: not a torch.save checkpoint (a zip archive or a "
                           "pickle) nor safetensors — give the .pt/.pth/.safetensors file the weights were "
                           "saved to")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))  # torch names the refused callable
        detail = f"it calls {found.group(1)}" if found else str(exc).strip().split("\n")[0][:200]
        raise WeightsError(
            f"refused {path}: it is not a plain weights file — it holds Python objects that "
            f"loading would have to run ({detail}). archc reads checkpoints with "
            "torch.load(weights_only=True) only; re-save the weights from a trusted copy with "
            "torch.save(model.state_dict(), FILE)") from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise WeightsError(f"cannot read {path} as a PyTorch checkpoint: {exc}") from None


def _looks_like_safetensors(path: Path) -> bool:
    """A safetensors file starts with the length of its JSON header, then ``{``."""
    with path.open("rb") as fh:
        head = fh.read(9)
    if len(head) < 9:
        return False
    (size,) = struct.unpack("<Q", head[:8])
    return head[8:9] == b"{" and 8 + size <= path.stat().st_size


def _read_safetensors(path: Path) -> dict:
    if importlib.util.find_spec("safetensors") is None:
        raise WeightsError(f"{path} is a safetensors file; install the safetensors package "
                           "(pip install safetensors) to read it")
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as exc:
        raise WeightsError(f"cannot read {path} as a safetensors file: {exc}") from None


def _tensors(obj, name: str) -> dict:
    """The state_dict inside a loaded object: itself, or under a usual checkpoint key."""
    if isinstance(obj, Mapping):
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return dict(obj)
        for key in WRAPPER_KEYS:
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                return dict(inner)
        keys = ", ".join(map(repr, list(obj)[:8]))
        raise WeightsError(f"{name}: found no state_dict (a dict of tensors), nor one under "
                           f"{'/'.join(WRAPPER_KEYS)}; its keys: {keys or 'none'}")
    raise WeightsError(f"{name}: expected a state_dict (a dict of tensors), found {type(obj).__name__}")


# --------------------------------------------------------------------------- the entry point


def load_weights(model: torch.nn.Module, source, mapping="auto", strict: bool = True) -> LoadReport:
    """Load a foreign state_dict into ``model`` (in place) and return the :class:`LoadReport`.

    ``source``: a checkpoint file (``torch.save(model.state_dict(), FILE)``, or a training
    checkpoint holding one under ``state_dict``/``model``; ``.safetensors`` files when the
    package is installed), a state_dict, or a module. ``mapping``: ``"auto"`` (same names,
    then order and shape), or a YAML/JSON file or dict of ``target_key: source_key``
    entries tried first (prefix rewrites end with ``.``; ``null`` leaves a tensor alone).
    ``strict``: refuse unless every tensor on both sides is accounted for. Raises
    :class:`WeightsError`, loading nothing, on a shape conflict (both names and shapes in
    the message) or, when strict, on leftovers; every tensor is named in ``error.report``.

    >>> import torch, archc
    >>> spec = "archc: 1\\ninput: [4]\\nlayers:\\n  - linear: {out: 2, id: head}\\n"
    >>> theirs = torch.nn.Sequential(torch.nn.Linear(4, 2))
    >>> report = archc.load_weights(archc.build(spec), theirs.state_dict())
    >>> print(report)
    weights from the given state_dict: 2 tensors paired (2 by order and shape)
    paired by mapping or by order and shape (a * stands for the same tensor names): 1
      head.* <- 0.*
    """
    state, name, ordered = read_state_dict(source)
    rules = read_mapping(mapping)
    target = model.state_dict()
    shapes = {k: v.shape for k, v in target.items() if isinstance(v, torch.Tensor)}
    report = match(shapes, {k: v.shape for k, v in state.items()}, rules, name, ordered)
    if not report.ok:
        raise WeightsError(f"refused to load: {report.misfit()}\n{report.text()}", report)
    if strict and not report.complete:
        fix = f"strict=False loads the {len(report.pairs)} pairs anyway; {MISFIT_FIX}"
        raise WeightsError(f"refused to load: {report.misfit(fix=fix)}\n{report.text()}", report)
    model.load_state_dict({p.target: state[p.source] for p in report.pairs}, strict=False)
    return report
