"""The command line: a thin, typed shell over the API (click).

Exit status: 0 success, 1 the spec (or model, data) is invalid or a step failed,
2 usage errors (bad flag, missing file). Heavy commands import torch/onnx lazily.

One module per step of the pipeline, each registering its commands on ``main``:
group.py (the ``archc`` group and its last line of defence), common.py (errors, options,
loading SPEC), validate.py (validate, expand), catalog.py (zoo, ops), graph.py,
compile.py, train.py (plan, train), evaluate.py (evaluate, generate), export.py (export,
infer), models.py (import, diff). ``archc --help`` lists the commands by name."""

from archc.cli.group import main

# importing a command module registers its commands on main
from archc.cli import validate, catalog, graph, compile, train, evaluate, export, models  # noqa: E402,F401,I001

__all__ = ["main"]
