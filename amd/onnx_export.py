"""ONNX export of the target and the interpreter, and an ONNX Runtime forward for CPU feature extraction.

:func:`export_onnx` writes a model with a dynamic batch axis (input ``images`` (B, 3, H, W)) and checks
ONNX Runtime's outputs against PyTorch's on a probe batch before it returns. The target's graph has one
output, ``embedding`` (B, D); the interpreter's has ``embedding`` (B, D), ``maps`` (B, M, h, w),
``attribute_embeddings`` (B, M, D) and, when it has an attribute classifier, ``attribute_logits`` (B, M).
The input size, kind and attribute names travel in the file's metadata.

:class:`OnnxForward` is a callable images -> embedding, so it drops into :func:`amd.features.extract` in
place of a model; :func:`fastest_cpu_forward` times it against the folded, channels-last PyTorch copy
that :func:`~amd.features.extract` uses and returns whichever is faster on this machine.
"""

from __future__ import annotations

import io
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from amd.errors import AmdError
from amd.models.interpreter import Interpreter
from amd.models.target import ReIDModel

#: The ONNX operator set written (ONNX Runtime 1.16 and later run it).
OPSET = 17
#: Largest |onnxruntime - torch| accepted by the check after export, relative to the output's scale.
TOLERANCE = 1e-4


class OnnxError(AmdError):
    """An ONNX export or an ONNX model file cannot be used."""


@dataclass(frozen=True)
class ExportReport:
    """What :func:`export_onnx` wrote.

    Attributes:
        path: The ONNX file.
        kind: ``"target"`` or ``"interpreter"``.
        outputs: Output names, in order.
        input_size: (H, W) of the probe (any batch size runs; the spatial size is fixed).
        max_abs_diff: Largest difference between ONNX Runtime's and PyTorch's outputs on the probe batch.
        size_bytes: Size of the file.
    """

    path: str
    kind: str
    outputs: tuple[str, ...]
    input_size: tuple[int, int]
    max_abs_diff: float
    size_bytes: int


class _InterpreterGraph(nn.Module):
    """The interpreter's forward as a plain tuple of tensors (ONNX has no ``None`` output)."""

    def __init__(self, interpreter: Interpreter) -> None:
        super().__init__()
        self.interpreter = interpreter

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        out = self.interpreter(x)
        parts = (out.embedding, out.maps, out.attribute_embeddings)
        return parts if out.attribute_logits is None else (*parts, out.attribute_logits)


def _session(model: str | Path | bytes, threads: int | None = None) -> Any:
    try:
        import onnxruntime as ort
    except ModuleNotFoundError:  # pragma: no cover - a dependency of the project
        raise OnnxError("onnxruntime is not installed (pip install onnxruntime)") from None
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = int(threads or torch.get_num_threads())
    options.log_severity_level = 3
    source = str(model) if isinstance(model, Path) else model
    try:
        return ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for a bad file
        name = model if not isinstance(model, bytes) else "<in-memory model>"
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise OnnxError(f"{name}: not a usable ONNX model ({first})") from None


def _to_onnx_bytes(module: nn.Module, probe: Tensor, outputs: Sequence[str]) -> bytes:
    dynamic = {name: {0: "batch"} for name in ("images", *outputs)}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript-based exporter announces its deprecation; the graph it writes is what we check.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (probe,),
            buffer,
            input_names=["images"],
            output_names=list(outputs),
            dynamic_axes=dynamic,
            opset_version=OPSET,
            dynamo=False,
        )
    return buffer.getvalue()


def _with_metadata(data: bytes, metadata: Mapping[str, str]) -> bytes:
    import onnx

    proto = onnx.load_from_string(data)
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    return proto.SerializeToString()


def export_onnx(
    model: ReIDModel | Interpreter,
    path: str | Path,
    input_size: tuple[int, int],
    metadata: Mapping[str, str] | None = None,
    check_batch: int = 3,
) -> ExportReport:
    """Export a target or an interpreter to ONNX and check it against PyTorch.

    Args:
        model: A target model or an interpreter (exported in eval mode, on the CPU; the caller's model is
            not changed).
        path: The ``.onnx`` file to write (written to a temporary name, then renamed).
        input_size: (H, W) of the images.
        metadata: More key/value pairs for the file's metadata.
        check_batch: Batch size of the check (different from the export's probe of 2, so that the check
            also covers the dynamic batch axis).

    Returns:
        What was written.

    Raises:
        OnnxError: ONNX Runtime's outputs differ from PyTorch's by more than :data:`TOLERANCE` (relative
            to the output's largest value), or the export failed.
    """
    import copy

    h, w = (int(v) for v in input_size)
    if h <= 0 or w <= 0:
        raise OnnxError(f"input size must be positive, got {h}x{w}")
    module = copy.deepcopy(model).cpu().float().eval()
    g = torch.Generator().manual_seed(0)
    probe = torch.randn(2, 3, h, w, generator=g)
    if isinstance(module, Interpreter):
        kind = "interpreter"
        # The wrapper must be in eval mode too: the exporter restores its mode, and with it the interpreter's.
        graph: nn.Module = _InterpreterGraph(module).eval()
        outputs = ["embedding", "maps", "attribute_embeddings"]
        with torch.no_grad():
            if len(graph(probe)) == 4:
                outputs.append("attribute_logits")
    elif isinstance(module, ReIDModel):
        kind, graph, outputs = "target", module, ["embedding"]
    else:
        raise OnnxError(f"cannot export a {type(model).__name__}: a target model or an interpreter is needed")
    try:
        data = _to_onnx_bytes(graph, probe, outputs)
    except Exception as exc:  # the exporter fails with many exception types
        raise OnnxError(f"the ONNX export failed ({type(exc).__name__}: {str(exc)[:300]})") from None
    meta = {"amd.kind": kind, "amd.input_size": f"{h}x{w}", **dict(metadata or {})}
    data = _with_metadata(data, meta)

    check = torch.randn(check_batch, 3, h, w, generator=g)
    session = _session(data)
    got = session.run(None, {"images": check.numpy()})
    with torch.no_grad():
        want = graph(check)
    want = (want,) if isinstance(want, Tensor) else tuple(want)
    diff = 0.0
    for name, a, b in zip(outputs, got, want, strict=True):
        b = b.numpy()
        if a.shape != b.shape:
            raise OnnxError(f"ONNX output {name} has shape {a.shape}, PyTorch's {b.shape}")
        d = float(np.abs(a - b).max()) if a.size else 0.0
        scale = max(1.0, float(np.abs(b).max()) if b.size else 0.0)
        if d > TOLERANCE * scale:
            raise OnnxError(
                f"ONNX output {name} differs from PyTorch's by {d:.3g} (tolerance {TOLERANCE * scale:.3g})"
            )
        diff = max(diff, d)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return ExportReport(str(path), kind, tuple(outputs), (h, w), diff, len(data))


class OnnxForward:
    """Images (B, 3, H, W) -> first output (B, ...) through ONNX Runtime on the CPU.

    A drop-in ``forward`` for :func:`amd.features.extract` and :func:`amd.features.extract_outputs`
    (which call it under ``torch.inference_mode``); ``outputs="all"`` returns every output as a tuple.

    Args:
        model: An ``.onnx`` file or its bytes.
        threads: Intra-op threads (default: torch's thread count).
        outputs: ``"first"`` or ``"all"``.
    """

    def __init__(self, model: str | Path | bytes, threads: int | None = None, outputs: str = "first") -> None:
        if outputs not in ("first", "all"):
            raise ValueError(f"outputs must be 'first' or 'all', got {outputs!r}")
        if isinstance(model, (str, Path)) and not Path(model).is_file():
            raise OnnxError(f"{model}: no such ONNX file")
        self._session = _session(Path(model) if isinstance(model, str) else model, threads)
        self._all = outputs == "all"
        self.output_names = tuple(o.name for o in self._session.get_outputs())
        meta = self._session.get_modelmeta().custom_metadata_map
        self.metadata: dict[str, str] = dict(meta)
        size = meta.get("amd.input_size")
        self.input_size: tuple[int, int] | None = (
            tuple(int(v) for v in size.split("x")) if size else None  # type: ignore[assignment]
        )
        self.training = False

    def __call__(self, images: Tensor) -> Tensor | tuple[Tensor, ...]:
        array = images.detach().float().cpu().contiguous().numpy()
        got = self._session.run(None if self._all else [self.output_names[0]], {"images": array})
        tensors = tuple(torch.from_numpy(a) for a in got)
        return tensors if self._all else tensors[0]


def _time_forward(forward: Callable[[Tensor], Any], batch: Tensor, repeats: int) -> float:
    forward(batch)  # warm-up: ONNX Runtime and oneDNN pick their kernels on the first call
    start = time.perf_counter()
    for _ in range(repeats):
        forward(batch)
    return (time.perf_counter() - start) / repeats


def fastest_cpu_forward(
    model: ReIDModel, input_size: tuple[int, int], batch_size: int = 32, repeats: int = 2
) -> tuple[Callable[[Tensor], Tensor], str, dict[str, float]]:
    """The faster CPU forward of a target model: ONNX Runtime or the folded, channels-last PyTorch copy.

    Args:
        model: The target (in eval mode).
        input_size: (H, W).
        batch_size: Batch of the timing (use the extraction's batch size).
        repeats: Timed forwards of each.

    Returns:
        ``(forward, name, seconds)``: the chosen callable, ``"onnxruntime"`` or ``"torch"``, and the
        seconds per batch of both.
    """
    from amd.inference import inference_copy

    h, w = input_size
    batch = torch.randn(batch_size, 3, h, w, generator=torch.Generator().manual_seed(0))
    model = model.cpu().eval()
    with torch.inference_mode():
        channels_last = batch.contiguous(memory_format=torch.channels_last)
        folded = inference_copy(model, channels_last[:2])
        t_torch = _time_forward(folded, channels_last, repeats)
    onnx_model = _with_metadata(
        _to_onnx_bytes(model, batch[:2], ["embedding"]), {"amd.input_size": f"{h}x{w}"}
    )
    ort_forward = OnnxForward(onnx_model)
    t_ort = _time_forward(ort_forward, batch, repeats)
    seconds = {"torch": t_torch, "onnxruntime": t_ort}
    if t_ort < t_torch:
        return ort_forward, "onnxruntime", seconds
    return model, "torch", seconds
