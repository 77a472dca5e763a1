"""The ONNX backend: specs to ONNX files through torch.onnx, checked against PyTorch, and
run with onnxruntime.

* :mod:`.target` (torch-free) — can this spec be exported, at which opset, in one file?
* :mod:`.export` — ``export_onnx``: build, trace with torch.onnx's dynamo exporter, name the
  values after the spec's nodes (:mod:`.names`), write metadata (:mod:`.metadata`), save;
* :mod:`.check` — the checker, ONNX shape inference vs archc's shapes, onnxruntime vs torch;
* :mod:`.runtime` — ``OnnxModel``: an onnxruntime session with a clear provider choice and
  checked inputs; :mod:`.inputs` reads arrays and images for ``archc infer``.

The public entry points are ``archc.export_onnx`` and ``archc.OnnxModel`` (lazy: importing
archc imports neither torch nor onnx). See docs/onnx.md.
"""


class OnnxError(Exception):
    """A failure of export, check or inference, said in one line (the CLI exits 1)."""
