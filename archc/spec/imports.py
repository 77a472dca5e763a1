"""Where a spec's imports may come from, and what one load may spend on them.

A spec is untrusted input, and its ``imports:`` name files, so an import could be used to
read a file the user never meant to share (``/etc/passwd``, ``../../.ssh/config``) or to
make one load read thousands of files. Hence, within one load (:class:`ImportSession`):

* imports are confined to *roots*: the main spec's own folder (and everything below it)
  and the library folders the user names (``--import-root DIR`` on the command line, which
  sets :data:`ENV_VAR`, ``ARCHC_IMPORT_PATH``, a list of folders joined by ``os.pathsep``).
  A path is judged after symbolic links are resolved, so an absolute path, a ``..`` that
  climbs out, or a link pointing elsewhere is refused — before the file is even looked at,
  so that the error does not tell whether a file outside exists;
* a relative import is looked up beside the importing file, then in each library root;
* each file is read, parsed and checked once, however often it is imported (cached by
  its real path: a diamond, or one library imported 2,000 times, costs one read);
* the files read, their bytes and their YAML values are bounded in total, like a single
  file's (archc/spec/loader.py): the imports of a load cost at most what one large file does.

The recursion over imports (blocks, variables, cycles) stays in archc/spec/document.py.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path

from archc.errors import Pos, SpecError, SpecErrors
from archc.spec.loader import MAX_BYTES, MAX_NODES

ENV_VAR = "ARCHC_IMPORT_PATH"
MAX_IMPORT_FILES = 100  # distinct files imported by one load; real libraries use a handful
MAX_IMPORT_BYTES = MAX_BYTES  # all imported files together: as much as one spec file may hold
MAX_IMPORT_VALUES = MAX_NODES  # YAML values of all imported files together, as for one file
ROOTS_FIX = (f"imports stay inside the spec's folder; name another library folder with "
             f"--import-root DIR or {ENV_VAR}")


def user_roots() -> list[Path]:
    """The library folders named in ARCHC_IMPORT_PATH (empty entries skipped), resolved."""
    raw = os.environ.get(ENV_VAR, "")
    return [Path(os.path.realpath(p)) for p in raw.split(os.pathsep) if p.strip() and "\0" not in p]


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def special_kind(mode: int) -> str:
    """What a non-regular file is, in words (for 'not a regular file (a FIFO)')."""
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "a special file"


@dataclass
class Imported:
    """One imported file, loaded once: every block it makes visible (its own and those it
    imports), the files it read, and how many levels of imports hang below it."""

    blocks: dict = field(default_factory=dict)
    files: list = field(default_factory=list)
    height: int = 0
    errors: list | None = None  # its SpecErrors' errors when it failed
    reported: bool = False

    def result(self):
        """This file's blocks, or its errors: reported the first time it is imported; a
        later import of it fails with no error of its own (the first report reaches the
        user), else a file imported twice at each of 16 levels would print 2**16 copies."""
        if self.errors is not None:
            errors, self.reported = ([] if self.reported else self.errors), True
            raise SpecErrors([replace(e, notes=list(e.notes)) for e in errors])
        return self


class ImportSession:
    """The imports of one load: the allowed roots, the cache and the totals spent."""

    def __init__(self, spec_dir: Path):
        self.roots = [Path(os.path.realpath(spec_dir))] + user_roots()
        # the same folders as written (links unresolved): tells a link from a `..` in messages
        self.written = [Path(os.path.abspath(spec_dir))] + [
            Path(os.path.abspath(p)) for p in os.environ.get(ENV_VAR, "").split(os.pathsep)
            if p.strip() and "\0" not in p]
        self.cache: dict[Path, Imported] = {}
        self.located: dict = {}  # (folder, path as written) -> real path, None or the refusal
        self.files = self.bytes = self.values = 0

    def locate(self, rel: str, base: Path, pos: Pos, where: str) -> Path | None:
        """The real path of import ``rel`` written in a file of folder ``base``, or None
        when no such file is inside the roots. A path outside them is refused whether or
        not it exists. Answers are remembered: resolving links costs a few system calls."""
        key = (base, rel)
        if key not in self.located:
            try:
                self.located[key] = self._locate(rel, base, pos, where)
            except SpecErrors as exc:
                self.located[key] = exc.errors[0]
        found = self.located[key]
        if isinstance(found, SpecError):
            raise SpecErrors([replace(found, pos=pos, path=where, notes=[])])
        return found

    def _locate(self, rel: str, base: Path, pos: Pos, where: str) -> Path | None:
        if "\0" in rel:
            raise SpecErrors.one("the import path contains a NUL character", pos, where,
                                 "write the file's name as plain text")
        beside = Path(os.path.abspath(base / rel))
        if not self.allows(beside):
            raise SpecErrors.one(f"import {rel!r} {self._why_outside(rel, beside)}", pos, where, ROOTS_FIX)
        libraries = [r / rel for r in self.roots[1:]] if not os.path.isabs(rel) else []
        for candidate in [beside] + libraries:
            real = Path(os.path.realpath(candidate))
            if self.allows(candidate) and os.path.lexists(real):
                return real
        return None

    def allows(self, path: Path) -> bool:
        """Whether ``path``, its symbolic links resolved, lies inside a root."""
        real = Path(os.path.realpath(path))
        return any(_inside(real, r) for r in self.roots)

    def _why_outside(self, rel: str, lexical: Path) -> str:
        if os.path.isabs(rel):
            return "is an absolute path outside the allowed folders"
        if any(_inside(lexical, r) for r in self.roots + self.written):
            return "is a symbolic link to a file outside the allowed folders"
        return "leaves the allowed folders (`..`)"

    def check_file(self, real: Path, rel: str, pos: Pos, where: str) -> None:
        """A regular file, within the count of files one load may import."""
        mode = os.stat(real).st_mode
        if not stat.S_ISREG(mode):
            raise SpecErrors.one(f"imported file {rel!r} is {special_kind(mode)}, not a regular file",
                                 pos, where, "import a spec file (.yaml)")
        self.files += 1
        if self.files > MAX_IMPORT_FILES:
            raise SpecErrors.one(f"the imports read more than {MAX_IMPORT_FILES} files", pos, where,
                                 "gather the blocks into fewer library files")

    def spend(self, text: str, tree, pos: Pos, where: str) -> None:
        """Count one imported file's bytes and values against the totals of the load."""
        self.bytes += len(text.encode("utf-8", "surrogatepass"))
        self.values += count_values(tree)
        if self.bytes > MAX_IMPORT_BYTES:
            raise SpecErrors.one(f"the imported files hold more than {MAX_IMPORT_BYTES // 2**20} MiB "
                                 "together", pos, where, "a block library is a few kilobytes; "
                                 "import only the files you need")
        if self.values > MAX_IMPORT_VALUES:
            raise SpecErrors.one(f"the imported files hold more than {MAX_IMPORT_VALUES:,} YAML values "
                                 "together", pos, where, "a block library holds a few hundred; "
                                 "import only the files you need")


def count_values(tree) -> int:
    """Mappings, sequences and scalars of a loaded tree (mapping keys included), as the
    loader counts them; shared (aliased) values count at each use."""
    count, stack = 0, [tree]
    while stack:
        node = stack.pop()
        count += 1
        if isinstance(node, dict):
            count += len(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return count


def add_user_roots(folders) -> "callable":
    """Put ``folders`` before the roots of ARCHC_IMPORT_PATH, in this process and those it
    starts (torchrun's ranks); returns the function that restores the variable (the CLI
    calls it when the command ends, so that in-process callers see no change)."""
    from archc.envvar import set_for_command

    before = os.environ.get(ENV_VAR)
    return set_for_command(ENV_VAR, os.pathsep.join([os.path.abspath(f) for f in folders] + ([before] if before else [])))
