"""Checks of the values a command is given, made before it starts any work.

A command refuses a bad number, device or output path at once, with one sentence that names the option
and what it accepts, instead of failing after minutes of work or, worse, doing nothing and exiting 0.
The ``argparse`` types here raise :class:`argparse.ArgumentTypeError` (``main.py`` prints it as one
``error:`` line); the checks made in ``run`` raise :class:`amd.errors.AmdError`. Only the standard
library is imported at module level, so that ``--help`` stays instant; torch is imported by
:func:`resolve_device` alone.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

#: What ``--device`` accepts, for messages and help texts (:data:`amd.devices.DEVICE_CHOICES`, which
#: imports torch).
DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"
_DEVICE = re.compile(r"^(auto|cpu|cuda)(:\d+)?$")


def _error(message: str) -> Exception:
    from amd.errors import AmdError

    return AmdError(message)


# ---------------------------------------------------------------------- numbers


def whole_number(minimum: int | None = None, maximum: int | None = None) -> Callable[[str], int]:
    """An ``argparse`` type: a whole number in ``[minimum, maximum]``."""

    def parse(text: str) -> int:
        from amd.train.config import Bounds

        bounds = Bounds(minimum=minimum, maximum=maximum)
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not bounds.contains(value):
            raise argparse.ArgumentTypeError(f"must be {bounds.describe(True)}, got {text!r}")
        return value

    parse.__name__ = "whole number"
    return parse


def number(
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
    below: float | None = None,
) -> Callable[[str], float]:
    """An ``argparse`` type: a finite number within the bounds (``above``/``below``: exclusive)."""

    def parse(text: str) -> float:
        from amd.train.config import Bounds

        bounds = Bounds(minimum=minimum, maximum=maximum, above=above, below=below)
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not bounds.contains(value):
            raise argparse.ArgumentTypeError(f"must be {bounds.describe(False)}, got {text!r}")
        return value

    parse.__name__ = "number"
    return parse


#: Counts of things to process at a time (files per batch, images per forward pass, results).
positive_int = whole_number(1)
#: Data-loading processes: zero (load in the main process) to 64.
workers_int = whole_number(0, 64)


def parse_size(text: str) -> tuple[int, int]:
    """An ``argparse`` type: ``"256x128"`` -> (256, 128), each side within the models' range
    (:data:`amd.train.config.SIZE_BOUNDS`)."""
    from amd.train.config import size_problem

    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} must look like HEIGHTxWIDTH, e.g. 256x128") from None
    problem = size_problem((h, w))
    if problem is not None:
        raise argparse.ArgumentTypeError(f"{problem}, got {text!r}")
    return h, w


# ---------------------------------------------------------------------- devices


def device_problem(name: str) -> str | None:
    """Why ``name`` is not a device the commands run on (``None`` when it is one); no torch needed."""
    match = _DEVICE.match(name.strip().lower())
    if match is None or (match.group(2) and match.group(1) != "cuda"):
        return f"{name!r} is not a device: use {DEVICE_CHOICES}"
    return None


def device_arg(text: str) -> str:
    """An ``argparse`` type: the device's name, checked for its form (:func:`resolve_device`: whether
    this machine has it)."""
    problem = device_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text.strip().lower()


def resolve_device(name: str | None, option: str = "--device") -> str:
    """The device to run on: ``auto`` (or ``None``) is CUDA when a GPU is usable, else the CPU
    (:func:`amd.devices.resolve_device`, after the form check of :func:`device_problem`).

    Raises:
        amd.errors.AmdError: ``name`` is not a device, or names a GPU that this machine does not have.
    """
    name = "auto" if name is None else name.strip().lower()
    problem = device_problem(name)
    if problem:
        raise _error(f"{option}: {problem}")
    from amd.devices import resolve_device as resolve

    return str(resolve(name, option))


# ---------------------------------------------------------------------- output paths


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(path.anchor or ".")


def _probe_folder(folder: Path) -> str | None:
    """Why no file can be created in ``folder`` (``None`` when one can): tried, then removed."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-check-", dir=folder)
    except OSError as exc:
        return exc.strerror or str(exc)
    os.close(fd)
    os.unlink(probe)
    return None


def _check_folder_can_hold(path: Path, what: str) -> None:
    """``path`` will be created in its folder, which is created too when missing: both must be possible."""
    existing = _nearest_existing(path.parent)
    if not existing.is_dir():
        raise _error(f"{what} {path}: {existing} is a file, not a folder")
    reason = _probe_folder(existing)
    if reason:
        raise _error(f"{what} {path}: cannot create a file in {existing} ({reason.lower()})")


def check_output_file(path: str | os.PathLike[str], what: str) -> Path:
    """Refuse an output file before any work: it must not be a folder or a device, and its folder must
    exist or be creatable (missing folders are created when the file is written) and be writable.

    Args:
        path: The file the command will write.
        what: How the user gave it, for the message (``"--json"``).

    Raises:
        amd.errors.AmdError: The file cannot be written there; the message says why.
    """
    text = os.fspath(path)
    if not text.strip():
        raise _error(f"{what}: the file name is empty")
    p = Path(text).expanduser()
    if p.is_dir():
        raise _error(f"{what} {text}: is a folder; give the name of a file to write")
    if p.exists() and not p.is_file():
        raise _error(f"{what} {text}: is not a regular file; give the name of a file to write")
    _check_folder_can_hold(p, what)
    return p


def check_output_folder(path: str | os.PathLike[str], what: str) -> Path:
    """Refuse an output folder before any work: it must be a folder or creatable, and writable."""
    text = os.fspath(path)
    p = Path(text).expanduser()
    if p.exists() and not p.is_dir():
        raise _error(f"{what} {text}: is a file, not a folder")
    if p.is_dir():
        reason = _probe_folder(p)
        if reason:
            raise _error(f"{what} {text}: cannot create a file in it ({reason.lower()})")
        return p
    _check_folder_can_hold(p, what)
    return p


def check_outputs(*outputs: tuple[str | os.PathLike[str] | None, str]) -> None:
    """:func:`check_output_file` for every ``(path, what)`` given (``None`` paths are skipped), and refuse
    two outputs that name the same file."""
    seen: dict[str, str] = {}
    for path, what in outputs:
        if path is None:
            continue
        p = check_output_file(path, what)
        key = os.path.normcase(os.path.abspath(p))
        if key in seen:
            raise _error(f"{seen[key]} and {what} name the same file {os.fspath(path)}; give two names")
        seen[key] = what


def describe_error(exc: BaseException) -> str:
    """One line for an error that no layer turned into a message for the user: an operating-system
    error's file and reason, a database driver's own words, else the exception's type and text."""
    if isinstance(exc, OSError):
        return describe_os_error(exc)
    orig = getattr(exc, "orig", None)
    if type(exc).__module__.startswith("sqlalchemy") and orig is not None:
        # The database driver's own words, without SQLAlchemy's SQL echo and web link.
        return f"database error ({type(orig).__name__}): {' '.join(str(orig).split())}"
    text = " ".join(str(exc).split()) or "(no message)"
    return f"unexpected {type(exc).__name__}: {text}"


def describe_os_error(exc: OSError) -> str:
    """``"PATH: reason"`` for an operating-system error (the reason alone when no file is named)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.filename is not None:
        names = os.fsdecode(exc.filename)
        if exc.filename2 is not None:
            names += f" -> {os.fsdecode(exc.filename2)}"
        return f"{names}: {reason}"
    return reason
