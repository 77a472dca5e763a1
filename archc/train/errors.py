"""The one error type of training: a clear sentence for the user, exit status 1, no traceback."""

from __future__ import annotations


class TrainError(Exception):
    """Something about the run (configuration, data, disk, numerics) that the user must fix.

    ``fix`` says what would help; the CLI prints ``archc: error: MESSAGE — FIX``."""

    def __init__(self, message: str, fix: str = ""):
        super().__init__(message)
        self.message, self.fix = message, fix

    def __str__(self) -> str:
        return self.message + (f" — {self.fix}" if self.fix else "")
