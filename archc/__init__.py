"""archc: a declarative architecture-spec compiler for neural networks.

The static side (``load``, the analysis and reports) never imports torch; ``build`` and
the ONNX functions import it on first use.
"""

__version__ = "0.1.0"

from archc.api import load, load_all  # noqa: E402
from archc.errors import SpecError, SpecErrors  # noqa: E402

__all__ = ["load", "load_all", "SpecError", "SpecErrors", "__version__"]
