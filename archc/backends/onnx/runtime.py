"""onnxruntime sessions: a clear provider choice, checked inputs, graph optimisation.

onnxruntime-gpu (the runtime archc installs on Linux x86-64) lists the CUDA provider even
where no GPU or CUDA library is present; creating a session then prints a wall of provider
errors and quietly falls back to CPU. Here ``auto`` asks for CUDA only when it is listed,
silences onnxruntime's log while trying, and checks ``session.get_providers()``: if CUDA
did not start, the model runs on CPU and ``note`` says so in one line.
"""

from __future__ import annotations

from pathlib import Path

from archc.backends.onnx import OnnxError

PROVIDERS = ("auto", "cpu", "cuda")
CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"
_DTYPES = {"tensor(float)": "float32", "tensor(double)": "float64", "tensor(float16)": "float16",
           "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(uint8)": "uint8"}


def _ort():
    try:
        import onnxruntime as ort
    except ImportError:
        raise OnnxError("onnxruntime is not installed: pip install 'archc[onnx]'") from None
    ort.set_default_logger_severity(3)  # errors only: no provider warnings on stderr
    return ort


def _options(ort, level: str | None = None, out: str | None = None):
    opts = ort.SessionOptions()
    opts.log_severity_level = 4  # fatal only while a provider may fail to start
    if level:
        opts.graph_optimization_level = {
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED}[level]
    if out:
        opts.optimized_model_filepath = out
    return opts


def _read_check(path: Path) -> None:
    if not path.exists():
        raise OnnxError(f"no such file: {path}")
    if path.is_dir():
        raise OnnxError(f"{path} is a folder, not an ONNX file")


# onnxruntime rewrites Pad(zeros) -> MaxPool into one MaxPool with pads, but MaxPool's pads
# are never the maximum while the zeros were: the result changes (or the pads outgrow the
# kernel and the model no longer loads). Found by tests/backends/test_onnx_random.py;
# docs/onnx.md. archc's sessions and `--optimize` leave that one rewrite out.
DISABLED_OPTIMIZERS = ["Pad_Fusion"]


def session(path, provider: str = "auto", threads: int | None = None):
    """(an InferenceSession for ``path``, a note or "") with the provider choice explained."""
    ort = _ort()
    path = Path(path)
    _read_check(path)
    if provider not in PROVIDERS:
        raise OnnxError(f"unknown provider {provider!r}: choose one of {', '.join(PROVIDERS)}")
    opts = _options(ort)
    if threads:
        opts.intra_op_num_threads = threads
    cuda_listed = CUDA in ort.get_available_providers()
    wanted = [CUDA, CPU] if provider == "cuda" or (provider == "auto" and cuda_listed) else [CPU]
    ort.set_default_logger_severity(4)  # a provider that fails to load logs at error level
    try:
        sess = ort.InferenceSession(str(path), opts, providers=wanted,
                                    disabled_optimizers=DISABLED_OPTIMIZERS)
    except Exception as exc:  # InvalidProtobuf, Fail, NoSuchFile …: one line says which
        raise OnnxError(f"{path}: not a model onnxruntime can load ({_first_line(exc)})") from None
    finally:
        ort.set_default_logger_severity(3)
    on_cuda = sess.get_providers()[0] == CUDA
    if provider == "cuda" and not on_cuda:
        why = ("is not in this onnxruntime build" if not cuda_listed
               else "did not start (no GPU, or no CUDA/cuDNN libraries)")
        raise OnnxError(f"--provider cuda: the CUDA provider {why}; use --provider cpu or auto")
    note = ""
    if provider == "auto" and cuda_listed and not on_cuda:
        note = "onnxruntime: CUDA is not usable here (no GPU, or no CUDA/cuDNN libraries); running on CPU"
    return sess, note


def _first_line(exc) -> str:
    text = str(exc).strip()
    for prefix in ("[ONNXRuntimeError] : ",):
        text = text.replace(prefix, "")
    return (text.splitlines() or [type(exc).__name__])[0][:300]


class OnnxModel:
    """An ONNX file ready to run with onnxruntime.

    ``provider``: ``auto`` (CUDA when it really starts, else CPU; ``note`` says which),
    ``cpu`` or ``cuda`` (an error when CUDA cannot start). ``metadata`` holds what archc
    wrote into the file (archc/backends/onnx/metadata.py), {} for other files;
    ``metadata_problems`` one line per archc entry left out because it is malformed.

    >>> import archc, numpy as np, tempfile, os
    >>> out = os.path.join(tempfile.mkdtemp(), "tiny.onnx")
    >>> _ = archc.export_onnx(archc.loads("archc: 1\\ninput: [4]\\nlayers:\\n  - linear: {out: 2}\\n"), out, check=False)
    >>> archc.OnnxModel(out, provider="cpu").run(np.zeros((3, 4), np.float32)).shape
    (3, 2)
    """

    def __init__(self, path, provider: str = "auto", threads: int | None = None):
        from archc.backends.onnx.metadata import read_checked

        self.path = Path(path)
        self.session, self.note = session(self.path, provider, threads)
        self.provider = self.session.get_providers()[0]
        self.input = self.session.get_inputs()[0]
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.metadata, self.metadata_problems = read_checked(self.session.get_modelmeta())

    @property
    def input_shape(self) -> list:
        """The input's shape as the file declares it (a name such as "batch" where dynamic)."""
        return list(self.input.shape)

    def check_input(self, array):
        """``array`` as the model's input dtype, or an OnnxError saying what does not fit."""
        import numpy as np

        array = np.asarray(array)
        want = _DTYPES.get(self.input.type, None)
        if want and array.dtype != want:
            if array.dtype.kind not in "fiu" or (want.startswith("float") and array.dtype.kind == "c"):
                raise OnnxError(f"input dtype {array.dtype} does not fit: the model takes {want}")
            array = array.astype(want)
        shape = self.input_shape
        if array.ndim != len(shape) or any(isinstance(d, int) and d != n for d, n in zip(shape, array.shape)):
            raise OnnxError(f"input shape {list(array.shape)} does not fit: the model takes "
                            f"[{', '.join(map(str, shape))}]")
        return array

    def run_all(self, array) -> list:
        """Every output of the model for ``array`` (batch first), as NumPy arrays."""
        array = self.check_input(array)
        try:
            return self.session.run(None, {self.input.name: array})
        except Exception as exc:
            raise OnnxError(f"onnxruntime failed: {_first_line(exc)}") from None

    def run(self, array):
        """The first output for ``array``: a NumPy array (batch first)."""
        return self.run_all(array)[0]


def optimize_file(path, level: str) -> None:
    """Rewrite ``path`` with onnxruntime's graph optimisations at ``level`` (basic, extended)."""
    ort = _ort()
    path = Path(path)
    tmp = path.with_name(path.name + ".opt")
    try:
        ort.InferenceSession(str(path), _options(ort, level, str(tmp)), providers=[CPU],
                             disabled_optimizers=DISABLED_OPTIMIZERS)
        tmp.replace(path)
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        raise OnnxError(f"onnxruntime could not optimise {path}: {_first_line(exc)}") from None
