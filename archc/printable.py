"""Text from a spec or a model, made safe to show.

A spec's ``name`` and ``description``, a file name found in a folder, a class name read
from an ONNX file, a value echoed in an error: all of it was written by whoever wrote the
spec or the file, and it reaches terminals, Markdown files and HTML pages. A terminal
obeys escape sequences (colours, moving the cursor, setting the window title, OSC 8
links), so ``printable`` shows every character that is not plain text as a Python-style
escape — ``\\x1b``, ``\\u2028``, ``\\u202e`` — before it is written. Every report, error
and CLI line that prints such text calls this one function (SECURITY.md).

>>> printable("evil\\x1b[31mred\\u202e")
'evil\\\\x1b[31mred\\\\u202e'
>>> markdown_text("<script>|x")
'&lt;script&gt;\\\\|x'
"""

from __future__ import annotations

import unicodedata

# Unicode categories that are not text a reader sees: Cc control characters (C0 with
# ESC, BEL, newline; DEL; C1 with CSI), Cf format characters (bidi overrides, the
# "Trojan Source" trick; zero-width joiners), Zl/Zp line and paragraph separators
# (they end a line in some viewers and a JavaScript string in older engines), Cs lone
# surrogates (they cannot be encoded for a terminal at all).
HIDDEN = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}  # as Python's repr writes them


def _escape(ch: str) -> str:
    if ch in SHORT:
        return SHORT[ch]
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(text, keep: str = "") -> str:
    """``text`` with every hidden character (control, format, separator) escaped;
    characters in ``keep`` (say ``"\\n"`` for a multi-line message archc wrote) stay."""
    text = str(text)
    if text.isprintable() and not keep:  # the common case, in C: nothing to escape
        return text
    return "".join(_escape(ch) if ch not in keep and unicodedata.category(ch) in HIDDEN else ch
                   for ch in text)


def markdown_text(text) -> str:
    """Free text for a Markdown table cell or heading: printable, HTML's special
    characters as entities (Markdown passes raw HTML through: ``<script>`` in a name would
    run where the file is rendered) and ``|`` escaped (it would open a new cell)."""
    text = printable(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|")
