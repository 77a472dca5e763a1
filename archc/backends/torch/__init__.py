"""The PyTorch backend: specs to standalone source (codegen.py, init.py: torch-free) and
to modules in this process (build.py, imports torch). The public entry points are
``archc.generate_source`` and ``archc.build``."""
