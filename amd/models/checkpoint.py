"""Checkpoint files: state dicts plus plain metadata, written atomically, read without unpickling code.

A checkpoint is a ``torch.save`` of one dict of plain data::

    {"format": "amd-workbench", "format_version": 1, "kind": "target" | "interpreter",
     "architecture": {...}, "input_size": [H, W], "schema": {...} | None, "config": {...},
     "metrics": {...}, "target_sha256": "..." (interpreters only), "created": "ISO time",
     "extra": {...}, "state_dict": {name: tensor}}

Files are read with ``torch.load(weights_only=True)``, so a file handed in by a user can never run code.
Every refusal raises :class:`CheckpointError` with a message that says what is wrong: not a checkpoint of
this tool, truncated or corrupt, another kind or architecture than expected, an interpreter distilled from
another target, or a newer format.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from amd.errors import AmdError
from amd.models.interpreter import Interpreter, build_interpreter
from amd.models.safe_load import LoadFailure, load_weights_only
from amd.models.target import ReIDModel, build_target
from amd.schema import AttributeSchema

FORMAT = "amd-workbench"
FORMAT_VERSION = 1
KINDS: tuple[str, ...] = ("target", "interpreter")

_REQUIRED = ("kind", "architecture", "input_size", "state_dict")


class CheckpointError(AmdError):
    """A checkpoint file cannot be used; the message names the file and the reason."""


@dataclass(frozen=True)
class CheckpointInfo:
    """The metadata of a checkpoint.

    Attributes:
        path: The file.
        sha256: SHA-256 of the file's bytes.
        kind: ``"target"`` or ``"interpreter"``.
        architecture: Plain description the model is rebuilt from.
        input_size: (H, W) the model was trained at.
        schema: The attribute schema (always for interpreters; optional for targets).
        config: The resolved training configuration.
        metrics: Evaluation figures recorded at save time.
        target_sha256: For an interpreter, the SHA-256 of the target checkpoint it was distilled from.
        created: ISO 8601 time of writing.
        format_version: Version of the file layout.
        extra: Any other plain data (epoch, name, ...).
        half: Whether the floating-point weights are stored in 16 bits (``half=True`` when saved).
    """

    path: str
    sha256: str
    kind: str
    architecture: dict[str, Any]
    input_size: tuple[int, int]
    schema: AttributeSchema | None
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    target_sha256: str | None = None
    created: str = ""
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)
    half: bool = False

    @property
    def name(self) -> str:
        """A display name: ``extra["name"]`` when set, else the file's stem."""
        return str(self.extra.get("name") or Path(self.path).stem)


def file_sha256(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes as 64 hex digits, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def _plain(value: Any, where: str) -> Any:
    """Check that metadata is plain data that ``weights_only`` loading accepts; tuples become lists."""
    if value is None:
        return value
    # Subclasses (numpy.float64 is a float) would be pickled as themselves and refused on loading.
    for plain in (bool, int, float, str):
        if isinstance(value, plain):
            return plain(value)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where}: key {k!r} is not a string")
            out[k] = _plain(v, f"{where}.{k}")
        return out
    if isinstance(value, (list, tuple)):
        return [_plain(v, where) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()
    raise TypeError(f"{where}: {type(value).__name__} is not plain data (use numbers, strings, lists, dicts)")


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: The process's umask, read once at import: reading it means setting it, which is not safe while other
#: threads create files.
_UMASK = _read_umask()


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp creates the file readable by its owner only; a model file is shared like any other.
        os.chmod(tmp, 0o666 & ~_UMASK)
        # A reader sees either the old file or the complete new one, never a half-written file.
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _state_for_saving(state: Mapping[str, Tensor], half: bool) -> dict[str, Tensor]:
    out = {}
    for k, v in state.items():
        v = v.detach().cpu()
        if half and v.is_floating_point():
            v = v.half()
        out[k] = v.contiguous()
    return out


def save_checkpoint(
    path: str | Path,
    kind: str,
    state_dict: Mapping[str, Tensor],
    architecture: Mapping[str, Any],
    input_size: tuple[int, int],
    schema: AttributeSchema | None = None,
    config: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    target_sha256: str | None = None,
    extra: Mapping[str, Any] | None = None,
    half: bool = False,
) -> str:
    """Write a checkpoint atomically (temporary file in the same folder, then rename).

    Args:
        path: Destination file.
        kind: One of :data:`KINDS`.
        state_dict: The weights.
        architecture: Plain description of the model.
        input_size: (H, W).
        schema: Attribute schema (required for interpreters).
        config: Resolved configuration (plain data).
        metrics: Evaluation figures (plain data).
        target_sha256: For interpreters: the target checkpoint's SHA-256 (required).
        extra: Other plain data.
        half: Store floating-point tensors as float16 (half the size; loading converts back).

    Returns:
        The SHA-256 of the written file.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if kind == "interpreter" and (schema is None or not target_sha256):
        raise ValueError("an interpreter checkpoint needs its attribute schema and the target's SHA-256")
    h, w = (int(v) for v in input_size)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "architecture": _plain(dict(architecture), "architecture"),
        "input_size": [h, w],
        "schema": schema.to_dict() if schema is not None else None,
        "config": _plain(dict(config or {}), "config"),
        "metrics": _plain(dict(metrics or {}), "metrics"),
        "target_sha256": target_sha256,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "extra": _plain(dict(extra or {}), "extra"),
        "state_dict": _state_for_saving(state_dict, half),
    }
    path = Path(path)
    atomic_torch_save(payload, path)
    return file_sha256(path)


def save_target(
    path: str | Path,
    model: ReIDModel,
    input_size: tuple[int, int],
    schema: AttributeSchema | None = None,
    config: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    include_classifier: bool = True,
    half: bool = False,
) -> str:
    """Save a target model; ``include_classifier=False`` drops the identity classifier (inference only).

    Returns:
        The SHA-256 of the written file.
    """
    state = model.state_dict()
    architecture = model.architecture()
    if not include_classifier:
        state = {k: v for k, v in state.items() if not k.startswith("classifier.")}
        architecture["num_classes"] = 0
    return save_checkpoint(
        path, "target", state, architecture, input_size, schema, config, metrics, None, extra, half
    )


def save_interpreter(
    path: str | Path,
    interpreter: Interpreter,
    input_size: tuple[int, int],
    schema: AttributeSchema,
    target_sha256: str,
    config: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    half: bool = False,
) -> str:
    """Save an interpreter's own weights, bound to its target by the target file's SHA-256.

    Returns:
        The SHA-256 of the written file.
    """
    if len(schema) != interpreter.num_attributes:
        raise ValueError(f"schema has {len(schema)} attributes, the interpreter {interpreter.num_attributes}")
    return save_checkpoint(
        path,
        "interpreter",
        interpreter.own_state_dict(),
        interpreter.architecture(),
        input_size,
        schema,
        config,
        metrics,
        target_sha256,
        extra,
        half,
    )


def read_checkpoint(path: str | Path) -> tuple[CheckpointInfo, dict[str, Tensor]]:
    """Read and validate a checkpoint file without building a model.

    Returns:
        ``(info, state_dict)``.

    Raises:
        CheckpointError: The file is missing, not one of ours, truncated or corrupt, or newer than this
            version understands.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(4)
    if size == 0:
        raise CheckpointError(f"{path}: the file is empty (truncated download or interrupted copy?)")
    try:
        obj = load_weights_only(path, head)
    except LoadFailure as failure:
        detail = _first_line(failure.cause)
        message = {
            # A complete PyTorch archive whose pickle names classes or functions: refused by weights_only.
            "objects": "not a checkpoint of this tool: it holds Python objects other than weights and plain "
            f"data, which are never loaded from a file ({detail})",
            "pickle": "not a checkpoint of this tool (an old-style pickle file that cannot be read safely)",
            "corrupt": f"the checkpoint is truncated or corrupt ({detail[:120]})",
            "foreign": "not a checkpoint of this tool (not a PyTorch file)",
            "other": f"unreadable checkpoint ({type(failure.cause).__name__}: {detail[:120]})",
        }[failure.kind]
        raise CheckpointError(f"{path}: {message}") from None
    if not isinstance(obj, Mapping) or obj.get("format") != FORMAT:
        hint = ""
        if isinstance(obj, Mapping) and obj and all(isinstance(v, Tensor) for v in obj.values()):
            hint = " (it is a bare state dict: import it as pretrained weights instead)"
        raise CheckpointError(f"{path}: a PyTorch file, but not a checkpoint of this tool{hint}")
    version = obj.get("format_version")
    if not isinstance(version, int):
        raise CheckpointError(f"{path}: the checkpoint is corrupt (no format version)")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: written by a newer version of this tool (format {version}, this one reads up to "
            f"{FORMAT_VERSION}); update the tool"
        )
    missing = [k for k in _REQUIRED if k not in obj]
    if missing:
        raise CheckpointError(f"{path}: the checkpoint is corrupt (missing {', '.join(missing)})")
    kind = obj["kind"]
    if kind not in KINDS:
        raise CheckpointError(f"{path}: unknown checkpoint kind {kind!r}")
    state = obj["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: the checkpoint is corrupt (its weights are not a state dict)")
    try:
        h, w = (int(v) for v in obj["input_size"])
        schema = AttributeSchema.from_dict(obj["schema"], source=str(path)) if obj.get("schema") else None
    except (TypeError, ValueError, AmdError) as exc:
        raise CheckpointError(f"{path}: the checkpoint's metadata is corrupt ({exc})") from None
    if kind == "interpreter" and (schema is None or not obj.get("target_sha256")):
        raise CheckpointError(f"{path}: the interpreter checkpoint lacks its schema or its target's hash")
    info = CheckpointInfo(
        path=str(path),
        sha256=file_sha256(path),
        kind=kind,
        architecture=dict(obj["architecture"]),
        input_size=(h, w),
        schema=schema,
        config=dict(obj.get("config") or {}),
        metrics=dict(obj.get("metrics") or {}),
        target_sha256=obj.get("target_sha256"),
        created=str(obj.get("created", "")),
        format_version=version,
        extra=dict(obj.get("extra") or {}),
        half=any(v.is_floating_point() and v.element_size() == 2 for v in state.values()),
    )
    return info, dict(state)


def read_info(path: str | Path) -> CheckpointInfo:
    """Only the metadata of a checkpoint (see :func:`read_checkpoint`)."""
    return read_checkpoint(path)[0]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _expect_kind(info: CheckpointInfo, kind: str) -> None:
    if info.kind != kind:
        raise CheckpointError(
            f"{info.path}: this is {_article(info.kind)} {info.kind} checkpoint, not {_article(kind)} {kind}"
        )


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _load_strict(model: nn.Module, state: Mapping[str, Tensor], info: CheckpointInfo) -> None:
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("of the wrong shape", wrong)):
            if keys:
                parts.append(f"{len(keys)} tensors {label} (e.g. {keys[0]})")
        arch = info.architecture.get("backbone", "?")
        raise CheckpointError(
            f"{info.path}: its weights do not match the declared architecture ({arch}): " + "; ".join(parts)
        )
    model.load_state_dict(dict(state))


def load_target(
    path: str | Path, device: str | torch.device = "cpu", backbone: str | None = None
) -> tuple[ReIDModel, CheckpointInfo]:
    """Load a target model in eval mode.

    Args:
        path: Checkpoint file.
        device: Where to put the model.
        backbone: When given, refuse a checkpoint of another backbone.

    Raises:
        CheckpointError: See :func:`read_checkpoint`; also an interpreter file, another backbone, or weights
            that do not fit the declared architecture.
    """
    info, state = read_checkpoint(path)
    _expect_kind(info, "target")
    declared = info.architecture.get("backbone")
    if backbone is not None and declared != backbone:
        raise CheckpointError(f"{info.path}: a {declared} target, but a {backbone} was expected")
    try:
        model = build_target(info.architecture)
    except AmdError as exc:
        raise CheckpointError(f"{info.path}: unsupported architecture ({exc})") from None
    _load_strict(model, state, info)
    return model.to(device).eval(), info


def load_interpreter(
    path: str | Path,
    target: ReIDModel,
    target_sha256: str,
    device: str | torch.device = "cpu",
) -> tuple[Interpreter, CheckpointInfo]:
    """Load an interpreter onto its target, in eval mode.

    Args:
        path: Interpreter checkpoint.
        target: The loaded target model (frozen by the interpreter).
        target_sha256: SHA-256 of the target's checkpoint file (``CheckpointInfo.sha256``).
        device: Where to put the interpreter (and the target).

    Raises:
        CheckpointError: See :func:`read_checkpoint`; also a target file, an interpreter distilled from
            another target, or weights that do not fit.
    """
    info, state = read_checkpoint(path)
    _expect_kind(info, "interpreter")
    if info.target_sha256 != target_sha256:
        raise CheckpointError(
            f"{info.path}: this interpreter was distilled from another target model "
            f"(target {str(info.target_sha256)[:12]}..., given {target_sha256[:12]}...)"
        )
    try:
        interpreter = build_interpreter(target, info.architecture)
    except (AmdError, KeyError, ValueError) as exc:
        raise CheckpointError(f"{info.path}: unsupported interpreter architecture ({exc})") from None
    if info.schema is not None and len(info.schema) != interpreter.num_attributes:
        raise CheckpointError(f"{info.path}: its schema does not match its number of attributes")
    try:
        interpreter.load_own_state_dict(state)
    except AmdError as exc:
        raise CheckpointError(f"{info.path}: {exc}") from None
    return interpreter.to(device).eval(), info


def load_pair(
    target_path: str | Path, interpreter_path: str | Path, device: str | torch.device = "cpu"
) -> tuple[Interpreter, CheckpointInfo, CheckpointInfo]:
    """Load a target and its interpreter, checking that they belong together.

    Returns:
        ``(interpreter, target_info, interpreter_info)``; the target is ``interpreter.target``.
    """
    target, target_info = load_target(target_path, device=device)
    interpreter, interpreter_info = load_interpreter(
        interpreter_path, target, target_info.sha256, device=device
    )
    return interpreter, target_info, interpreter_info
