"""Bring models into archc: an ONNX file becomes an editable spec and a weights file
(docs/import.md).

* :mod:`.onnx_read` — load the file (external data too), check its opset, infer shapes;
* :mod:`.onnx_fold` — fold export noise: Identity, Dropout, Constant, shape arithmetic;
* :mod:`.onnx_ops` — the op table: one small function per ONNX op type (a registry);
* :mod:`.onnx_names` — valid, unique archc ids from node and value names;
* :mod:`.onnx_spec` — the spec text and the state_dict that ``archc.build`` names alike;
* :mod:`.onnx` — ``import_onnx``, the whole path, writing nothing unless all of it worked.

Importing this package imports neither onnx nor torch; the functions do, when called.
"""

from archc.importers.onnx import ImportResult, import_onnx, onnx_to_spec

__all__ = ["ImportResult", "import_onnx", "onnx_to_spec"]
