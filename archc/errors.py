"""Errors are data.

Every problem archc finds in a spec is a :class:`SpecError`: where it is (file, line,
column), which node it concerns (a spec path such as ``layers[3].conv2d.kernel``), what
is wrong and what would fix it. Stages *collect* errors and raise them together as one
:class:`SpecErrors`, so a user sees every problem of a file at once.

The rendered form is the contract tested in tests/test_errors.py and, for every kind of
error, in tests/specs/invalid/ (tests/spec/test_invalid_specs.py)::

    FILE:LINE:COL: error: NODE-PATH: what is wrong — what would fix it

Lint findings (archc/analysis/lint.py) are SpecErrors too, with severity ``warning`` or
``info`` in place of ``error``; they never stop a build.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archc.printable import printable


@dataclass(frozen=True)
class Pos:
    """A position in a source file; line and column count from 1."""

    file: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if not self.line:
            return self.file
        return f"{self.file}:{self.line}:{self.col}"


@dataclass
class SpecError:
    """One problem in a spec."""

    message: str
    pos: Pos | None = None
    path: str = ""
    fix: str = ""
    # Extra locations that explain the error (a block template, the other side of a
    # concat); rendered as "note:" lines after the error.
    notes: list[tuple[Pos | None, str]] = field(default_factory=list)
    # "error" stops the build; lint's "warning" and "info" (archc/analysis/lint.py) do not
    severity: str = "error"

    def render(self) -> str:
        """The lines a user reads. Every part may hold text from the spec (a file name, a
        value): each is made printable (archc/printable.py), so that a spec cannot send
        escape sequences to a terminal nor forge a line of output with a newline."""
        head = f"{printable(self.pos)}: {self.severity}: " if self.pos else f"{self.severity}: "
        text = head + (f"{printable(self.path)}: " if self.path else "") + printable(self.message)
        if self.fix:
            text += f" — {printable(self.fix)}"
        for pos, note in self.notes:
            text += "\n" + (f"{printable(pos)}: " if pos else "") + f"note: {printable(note)}"
        return text

    def __str__(self) -> str:
        return self.render()


class SpecErrors(Exception):
    """One or more :class:`SpecError`, raised together at the end of a stage."""

    def __init__(self, errors: list[SpecError]):
        self.errors = list(errors)
        super().__init__("\n".join(e.render() for e in self.errors))

    @classmethod
    def one(cls, message: str, pos: Pos | None = None, path: str = "", fix: str = "") -> "SpecErrors":
        return cls([SpecError(message, pos, path, fix)])


class ShapeError(Exception):
    """Raised by an op's shape rule; the analysis turns it into a located SpecError."""

    def __init__(self, message: str, fix: str = ""):
        self.message = message
        self.fix = fix
        super().__init__(message)


class AttrError(Exception):
    """Raised by an attribute type when a value does not fit it."""

    def __init__(self, message: str, fix: str = ""):
        self.message = message
        self.fix = fix
        super().__init__(message)


class ExprError(Exception):
    """Raised by the expression evaluator; carries no position (the caller has it)."""

    def __init__(self, message: str, fix: str = ""):
        self.message = message
        self.fix = fix
        super().__init__(message)
