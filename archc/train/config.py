"""The effective training configuration: typed, strict dataclasses.

Where a value comes from, later wins: the defaults below < the spec's ``train:`` section
(the network's own ``train:`` over the file's, then ``--set train.KEY=VALUE``) < the
command-line flags (``--epochs``, ``--lr``...). Unknown keys and values of the wrong type
are rejected with the key's path named (``train.optimizer.momentum``) and close matches
suggested. The result is written to ``RUN_DIR/config.json`` and read back on ``--resume``.

Shorthands: ``optimizer: adam`` is ``optimizer: {name: adam}``, likewise ``schedule``,
``loss``; ``data: digits`` is ``data: {source: digits}``; ``grad_noise: 0.01`` is
``grad_noise: {std: 0.01}``; a top-level ``lr`` sets ``optimizer.lr``.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field

from archc.spec.loader import plain
from archc.train import compiling
from archc.train.errors import TrainError


@dataclass
class DataConfig:
    SHORTHAND: typing.ClassVar[str] = "source"
    source: str = "digits"       # a registered source name, or a path (npz, folder, MNIST, CIFAR-10)
    val: str | None = None       # a separate validation source (else val_split of the train part)
    test: str | None = None      # a separate test source (else the source's own test part)
    val_split: float = 0.1
    test_split: float = 0.2      # for sources without their own test part (digits, npz, folders)
    normalize: bool | dict = False   # true: per-channel mean/std of the train split; {mean, std}
    resize: bool = False         # resize images to the spec's input (digits always are)
    classes: list | None = None  # class names (folder sources read them from the sub-folders)
    limit: int | None = None     # use at most N training examples (quick experiments)
    split_seed: int = 0          # the fixed shuffling that chooses the test/val examples


@dataclass
class AugmentConfig:
    hflip: bool | float = False     # probability (true = 0.5)
    vflip: bool | float = False
    crop_padding: int = 0           # random crop of the input size after zero padding
    rotate: float = 0.0             # degrees, uniform in [-rotate, rotate]
    translate: float = 0.0          # fraction of the size, uniform in [-t, t] on each axis
    scale: list | None = None       # [low, high] zoom factors
    brightness: float = 0.0         # additive, uniform in [-b, b]


@dataclass
class OptimizerConfig:
    SHORTHAND: typing.ClassVar[str] = "name"
    name: str = "sgd"
    lr: float | None = None          # None: the optimizer's usual default (sgd 0.01, adam 1e-3...)
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float | None = None  # None: the optimizer's default (0; AdamW 0.01)
    betas: list | None = None
    eps: float | None = None
    alpha: float | None = None       # RMSProp's smoothing constant


@dataclass
class ScheduleConfig:
    SHORTHAND: typing.ClassVar[str] = "name"
    name: str = "constant"
    step_size: int = 10
    milestones: list | None = None
    gamma: float | None = None       # step/multistep/exponential factor
    decay: float | None = None       # time-based k in 1/(1+kt); exponential exp(-kt)
    warmup_epochs: int = 0
    min_lr: float = 0.0
    patience: int = 5                # plateau
    factor: float = 0.1              # plateau


@dataclass
class LossConfig:
    SHORTHAND: typing.ClassVar[str] = "name"
    name: str | None = None          # None: the task's loss
    label_smoothing: float = 0.0


@dataclass
class Penalties:
    l1: float = 0.0                  # added to the loss: l1 * sum |w| over weights (not biases/norms)
    l2: float = 0.0                  # l2 * sum w^2 over weights


@dataclass
class GradNoise:
    SHORTHAND: typing.ClassVar[str] = "std"
    std: float = 0.0                 # sigma_0 of N(0, sigma_t^2) added to the gradients
    decay: float = 0.55              # sigma_t = sigma_0 / (1 + t)^decay (Neelakantan et al. 2015)


@dataclass
class EarlyStopping:
    patience: int | None = None      # None: never stop early
    monitor: str | None = None       # default: the task's (val_loss)
    mode: str | None = None          # min | max (default from the monitored name)
    min_delta: float = 0.0


@dataclass
class GanConfig:
    generator: str = "generator"
    discriminator: str = "discriminator"
    latent: int | None = None
    d_steps: int = 1


@dataclass
class TrainConfig:
    task: str = "classification"
    data: DataConfig = field(default_factory=DataConfig)
    epochs: int = 10
    batch_size: int = 32
    loss: LossConfig = field(default_factory=LossConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    lr: float | None = None
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    penalties: Penalties = field(default_factory=Penalties)
    clip_grad_norm: float | None = None
    grad_noise: GradNoise = field(default_factory=GradNoise)
    early_stopping: EarlyStopping = field(default_factory=EarlyStopping)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    metrics: list | None = None
    init: str | dict | None = None   # read by the builder (archc/backends/torch/init.py)
    seed: int = 0
    device: str = "auto"
    amp: bool | str = "auto"         # auto: bf16/fp16 on CUDA, off on CPU; "bf16", "fp16", false
    channels_last: bool = False
    compile: bool | str = False      # true, a torch.compile mode or backend (archc/train/compiling.py)
    strategy: str = "ddp"            # several processes: ddp (replicas) or fsdp (shards; archc/train/fsdp.py)
    workers: int = 0
    threads: int | None = None       # CPU threads (None: 1 for small networks, else torch's default)
    deterministic: bool = False
    init_from: str | None = None
    freeze: list | str | None = None  # layer ids or globs (a string: comma-separated)
    gan: GanConfig = field(default_factory=GanConfig)


# The offline default data of a task when neither the spec nor --data names a source.
TASK_SOURCES = {"segmentation": "shapes", "language_model": "pysource"}

# Command-line flag -> dotted key of the configuration.
FLAG_KEYS = {"data": "data.source", "epochs": "epochs", "batch_size": "batch_size", "lr": "lr",
             "device": "device", "seed": "seed", "init_from": "init_from", "freeze": "freeze"}


def make_config(train_section: dict | None, flags: dict | None = None) -> TrainConfig:
    """The effective configuration from the spec's (merged) ``train:`` section and the
    flags that were given (None values are flags left out). Raises TrainError."""
    raw = plain(train_section or {})
    for flag, value in (flags or {}).items():
        if value is not None:
            _set(raw, FLAG_KEYS.get(flag, flag), value)
    cfg = convert(TrainConfig, raw, "train")
    data = raw.get("data")
    if not (isinstance(data, str) or (isinstance(data, dict) and "source" in data)):
        cfg.data.source = TASK_SOURCES.get(cfg.task, cfg.data.source)  # no source given: the task's default
    if cfg.lr is not None:
        cfg.optimizer.lr = cfg.lr
    if isinstance(cfg.freeze, str):
        cfg.freeze = [f.strip() for f in cfg.freeze.split(",") if f.strip()]
    _check(cfg)
    return cfg


def _set(raw: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    node = raw
    for p in parents:
        child = node.get(p)
        if isinstance(child, str):  # a shorthand (data: digits) expands before a key is set in it
            child = {_shorthand_key(p): child}
        node[p] = child if isinstance(child, dict) else {}
        node = node[p]
    node[last] = value


def _shorthand_key(name: str) -> str:
    hint = typing.get_type_hints(TrainConfig)[name]
    return getattr(hint, "SHORTHAND", "name")


def convert(cls, raw, path: str):
    """``raw`` (plain data) -> an instance of dataclass ``cls``, strictly checked."""
    if not isinstance(raw, dict) and hasattr(cls, "SHORTHAND"):
        raw = {cls.SHORTHAND: raw}
    if not isinstance(raw, dict):
        raise TrainError(f"{path}: expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    values = {}
    for key, value in raw.items():
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            fix = f"did you mean `{close[0]}`?" if close else "known keys: " + ", ".join(names)
            raise TrainError(f"{path}: unknown key {key!r}", fix)
        values[key] = _value(hints[key], value, f"{path}.{key}")
    return cls(**values)


def _value(hint, value, path: str):
    """Check one value against a type hint (int, float, bool, str, list, dict, dataclasses,
    unions of them, None)."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union \
        else (hint,)
    if value is None and type(None) in options:
        return None
    for option in options:
        if dataclasses.is_dataclass(option) and value is None:
            return option()  # `augment: null` (or `--set train.augment=null`): the section's defaults
        if dataclasses.is_dataclass(option) and (isinstance(value, dict) or hasattr(option, "SHORTHAND")):
            return convert(option, value, path)
        ok = _matches(option, value)
        if ok is not None:
            return ok
    want = " or ".join(_word(o) for o in options)
    raise TrainError(f"{path}: expected {want}, got {value!r}")


def _matches(option, value):
    """The value as ``option`` if it is one (an int is a float), else None."""
    if option is bool:
        return value if isinstance(value, bool) else None
    if isinstance(value, bool):
        return None
    if option is float and isinstance(value, (int, float)):
        return float(value)
    if option is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return None
    base = typing.get_origin(option) or option
    if base in (int, str, list, dict) and isinstance(value, base):
        return value
    if base is list and isinstance(value, tuple):
        return list(value)
    return None


def _word(option) -> str:
    if dataclasses.is_dataclass(option):
        return "a mapping"  # a section (its class name means nothing to a user)
    return {int: "an integer", float: "a number", bool: "true or false", str: "text", list: "a list",
            dict: "a mapping", type(None): "nothing"}.get(typing.get_origin(option) or option,
                                                            getattr(option, "__name__", str(option)))


def _check(cfg: TrainConfig) -> None:
    """Ranges that types cannot say."""
    checks = [
        (cfg.epochs >= 1, "train.epochs must be at least 1"),
        (cfg.batch_size >= 1, "train.batch_size must be at least 1"),
        (cfg.optimizer.lr is None or cfg.optimizer.lr > 0, "train.optimizer.lr must be positive"),
        (0 <= cfg.data.val_split < 1, "train.data.val_split must be in [0, 1)"),
        (0 <= cfg.data.test_split < 1, "train.data.test_split must be in [0, 1)"),
        (cfg.workers >= 0, "train.workers must be 0 or more"),
        (cfg.threads is None or cfg.threads >= 1, "train.threads must be at least 1"),
        (cfg.device in ("auto", "cpu", "cuda", "mps") or cfg.device.startswith("cuda:"),
         f"train.device {cfg.device!r} is not auto, cpu, cuda, cuda:N or mps"),
        (cfg.early_stopping.mode in (None, "min", "max"), "train.early_stopping.mode is min or max"),
        (cfg.strategy in ("ddp", "fsdp"), f"train.strategy {cfg.strategy!r} is not ddp or fsdp"),
    ]
    for ok, message in checks:
        if not ok:
            raise TrainError(message)
    if (why := compiling.check(cfg.compile)) is not None:
        raise TrainError(why, "e.g. train.compile: true (inductor), or aot_eager to try it without a C++ compiler")
    if isinstance(cfg.freeze, list) and not all(isinstance(f, str) for f in cfg.freeze):
        raise TrainError("train.freeze: expected a list of node names or globs")


def to_json(cfg: TrainConfig) -> dict:
    """The configuration as plain JSON data (what RUN_DIR/config.json holds)."""
    return dataclasses.asdict(cfg)


def from_json(data: dict) -> TrainConfig:
    """Read back ``to_json``'s output (``--resume``)."""
    return convert(TrainConfig, data, "config.json")
