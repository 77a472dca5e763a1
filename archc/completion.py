"""Shell completion of SPEC arguments: spec files, folders, zoo names and FILE:NETWORK.

click drives the completion (``_ARCHC_COMPLETE=bash_source archc`` prints the script for
bash; zsh_source, fish_source likewise); it asks the SPEC argument's type for candidates,
so this module only answers "what could this word become?". It must be quick and must
never fail: a spec that does not parse simply offers no network names."""

from __future__ import annotations

import os
from pathlib import Path

import click
from click.shell_completion import CompletionItem

SUFFIXES = (".yaml", ".yml")


class SpecType(click.ParamType):
    """A SPEC[:NETWORK] argument: text passed through unchanged (commands resolve it);
    what it adds is completion."""

    name = "spec"

    def convert(self, value, param, ctx):
        return value

    def shell_complete(self, ctx, param, incomplete):
        return [CompletionItem(c) for c in candidates(incomplete)]


def candidates(incomplete: str) -> list[str]:
    """What ``incomplete`` may complete to: ``FILE:`` -> that file's networks; otherwise
    spec files and folders under the typed path, and zoo names (``res`` -> ``resnet18``…)."""
    if ":" in incomplete:
        path, _, prefix = incomplete.rpartition(":")
        return [f"{path}:{n}" for n in networks(path) if n.startswith(prefix)]
    found = files(incomplete)
    if "/" not in incomplete and os.sep not in incomplete:
        found += [n for n in zoo_names() if n.startswith(incomplete) and n not in found]
    if len(found) == 1 and found[0].endswith("/"):
        # a lone folder: offer what is inside, so the shell does not end the word with a space
        found = files(found[0]) or found
    return found


def files(incomplete: str) -> list[str]:
    """Spec files (.yaml, .yml) and folders whose path starts with ``incomplete``; folders
    end with "/". Hidden entries only when a dot is typed, as shells do."""
    folder, slash, prefix = incomplete.rpartition("/")
    root = Path(folder).expanduser() if folder else Path("/" if slash else ".")  # ~/specs: as typed
    base = folder + slash
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return []
    out = []
    for e in entries:
        if not e.name.startswith(prefix) or (e.name.startswith(".") and not prefix.startswith(".")):
            continue
        try:
            if e.is_dir():
                out.append(f"{base}{e.name}/")
            elif e.name.endswith(SUFFIXES):
                out.append(base + e.name)
        except OSError:
            continue
    return out


def zoo_names() -> list[str]:
    from archc.zoo import zoo_specs

    return [p.stem for p in zoo_specs()]


def networks(path: str) -> list[str]:
    """The names under ``networks:`` of a spec file (or a zoo name); [] when unreadable."""
    from archc.errors import SpecErrors
    from archc.spec.document import read_text
    from archc.spec.loader import load_yaml
    from archc.zoo import resolve

    try:  # archc's own reader and loader: bounded in size, depth and aliases
        tree = load_yaml(read_text(resolve(os.path.expanduser(path))))
    except (SpecErrors, OSError, ValueError):
        return []
    nets = tree.get("networks") if isinstance(tree, dict) else None
    return [str(n) for n in nets] if isinstance(nets, dict) else []
