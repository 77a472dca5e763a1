"""The zoo: the reference specs bundled in specs/ (LeNet-5 to U-Net and DCGAN)."""

from __future__ import annotations

from pathlib import Path


def zoo_dir() -> Path:
    """specs/ beside the package (a source checkout or an editable install), else the copy
    installed inside the package."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "specs", here / "specs"):
        if candidate.is_dir():
            return candidate
    return here.parent / "specs"


def zoo_specs() -> list[Path]:
    root = zoo_dir()
    return sorted(p for p in root.glob("*.yaml")) if root.is_dir() else []


def resolve(target: str) -> str:
    """A spec argument as the user gave it, or the zoo spec of that name (`resnet50`)."""
    from archc.api import _exists, split_target

    path, network = split_target(target)
    if _exists(path) or "/" in path or path.endswith((".yaml", ".yml")):
        return target
    candidate = zoo_dir() / f"{path}.yaml"
    if _exists(candidate) and candidate.is_file():  # _exists: a name too long is no zoo name, not an OSError
        return str(candidate) + (f":{network}" if network else "")
    return target
