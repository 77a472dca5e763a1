"""Which names a node may have: the one rule shared by the spec checker and the backends.

A node's id becomes a Python attribute in generated code (``self.layer1[0].conv1``) and a
state_dict key, so it must be a plain ASCII identifier, not a Python keyword, not start
with ``_``, and not shadow an attribute of ``torch.nn.Module`` (a layer called ``train``
or ``forward`` would replace the method). Checking it here, torch-free, lets
``archc validate`` refuse such a name at its line instead of the backend refusing later.
"""

from __future__ import annotations

import keyword
import re

IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
INDEX = re.compile(r"[0-9]+")  # the instances of a repeat: "0", "1", ...

# Public names of torch.nn.Module (tests/backends/test_torch_source.py keeps this in step
# with the installed torch) and the generated class's own methods.
MODULE_ATTRS = frozenset("""
T_destination add_module apply bfloat16 buffers call_super_init children compile cpu cuda
double dump_patches eval extra_repr float forward get_buffer get_extra_state get_parameter
get_submodule half ipu load_state_dict modules mtia named_buffers named_children
named_modules named_parameters parameters register_backward_hook register_buffer
register_forward_hook register_forward_pre_hook register_full_backward_hook
register_full_backward_pre_hook register_load_state_dict_post_hook
register_load_state_dict_pre_hook register_module register_parameter
register_state_dict_post_hook register_state_dict_pre_hook requires_grad_ set_extra_state
set_submodule share_memory state_dict to to_empty train training type xpu zero_grad
init_weights
""".split())
# Names the generated source itself defines or imports, and the spec's own words.
GENERATED_NAMES = frozenset({"Block", "torch", "nn", "F", "self", "input"})


def name_fix(part: str) -> str:
    """What to do about a name that :func:`name_problem` refused."""
    if IDENT.fullmatch(part) and part.isascii():
        return f"choose another name, e.g. `{part}_1`"
    return "use letters, digits and _, starting with a letter"


def name_problem(part: str) -> str | None:
    """Why ``part`` cannot name a node or block instance, or None when it can."""
    if not (IDENT.fullmatch(part) and part.isascii()):
        return "is not a plain identifier"
    if keyword.iskeyword(part):
        return "is a Python keyword"
    if part in MODULE_ATTRS:
        return "is the name of an nn.Module attribute"
    if part in GENERATED_NAMES:
        return "is reserved"
    return None
