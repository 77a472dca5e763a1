"""Which variant of a spec a report describes: the preset chosen and the --set overrides.

One spec file describes a family (resnet50.yaml is also ResNet-101 and -152 with
``--preset``), so a report, a generated module and the JSON name the variant, not only
the file: ``resnet50 --preset resnet101 --set classes=10``. The spec hash stays the hash
of the file's text (runs compare it on --resume); the variant hash adds the preset and the
overrides, so two reports of different variants of one file are told apart."""

from __future__ import annotations

import hashlib
import json
import re

from archc.ir.graph import Graph

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.+\-]*")  # a word YAML reads back as this text
_KEYWORDS = {"true", "false", "null", "yes", "no", "on", "off", "y", "n"}


def value_text(value) -> str:
    """A --set value as it would be typed again: ``10``, ``[3, 160, 160]``, ``relu``."""
    if isinstance(value, str) and _PLAIN.fullmatch(value) and value.lower() not in _KEYWORDS:
        return value
    return json.dumps(value, separators=(", ", ": "), default=str)  # JSON flow text is YAML


def args(g: Graph) -> list[str]:
    """The command-line arguments that choose this variant: ``--preset P``, ``--set K=V``."""
    out = [f"--preset {g.preset}"] if g.preset else []
    return out + [f"--set {k}={value_text(v)}" for k, v in g.overrides.items()]


def label(g: Graph) -> str:
    """``resnet50 --preset resnet101 --set classes=10``; the bare name for the file's defaults."""
    return " ".join([g.name, *args(g)])


def overrides_json(g: Graph) -> dict:
    """The overrides as plain JSON values (a YAML date or other odd scalar becomes text)."""
    return json.loads(json.dumps(g.overrides, default=str))


def variant_hash(g: Graph) -> str:
    """16 hex digits: the spec hash when nothing is chosen, else a hash of the spec hash,
    the preset and the overrides (keys sorted, so --set order does not matter)."""
    if not g.preset and not g.overrides:
        return g.spec_hash
    chosen = json.dumps({"preset": g.preset, "overrides": g.overrides}, sort_keys=True, default=str)
    return hashlib.sha256(f"{g.spec_hash}\n{chosen}".encode()).hexdigest()[:16]


def variant_name(g: Graph) -> str:
    """The name of the network a preset makes, for the compiled class: a preset that names a
    sibling of the network (resnet101 of resnet50, vgg11 of vgg16) is that network's name;
    any other preset is added to it (mlp + wide -> mlp_wide)."""
    if not g.preset:
        return g.name
    stem = g.name.rstrip("0123456789_-")
    if stem and g.preset.lower().startswith(stem.lower()):
        return g.preset
    return f"{g.name}_{g.preset}"
