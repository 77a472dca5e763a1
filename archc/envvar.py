"""Setting an environment variable for the rest of a CLI command (and the processes it
starts, torchrun's ranks), with the function that puts it back when the command ends."""

from __future__ import annotations

import os


def set_for_command(name: str, value: str) -> "callable":
    """Set ``name`` to ``value``; returns the function that restores its earlier state."""
    before = os.environ.get(name)
    os.environ[name] = value

    def restore() -> None:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before

    return restore
