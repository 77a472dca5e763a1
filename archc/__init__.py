"""archc: a declarative architecture-spec compiler for neural networks.

The static side (``load``, the analysis and reports) never imports torch; ``build`` and
the ONNX functions import it on first use.
"""

__version__ = "0.1.0"

from archc.api import load, load_all, loads  # noqa: E402
from archc.errors import SpecError, SpecErrors  # noqa: E402

__all__ = ["load", "loads", "load_all", "build", "feature_extractor", "generate_source", "load_weights", "export_onnx", "OnnxModel", "from_torch", "SpecError", "SpecErrors", "__version__"]

# Names served on first use, so that `import archc` stays torch-free: name -> module.
_LAZY = {
    "build": "archc.backends.torch.build",  # imports torch
    "feature_extractor": "archc.backends.torch.build",  # imports torch
    "generate_source": "archc.backends.torch.codegen",
    "export_onnx": "archc.backends.onnx.export",  # imports torch and onnx
    "OnnxModel": "archc.backends.onnx.runtime",  # imports onnxruntime
    "load_weights": "archc.backends.torch.weights",  # imports torch
    "from_torch": "archc.importers.torch_import",  # imports torch
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'archc' has no attribute {name!r}")


def __dir__():
    # the lazy names are not in the module's namespace until first used: list them too, so
    # that dir(archc) and editors' completion show the whole public API
    return sorted(set(globals()) | set(_LAZY))
