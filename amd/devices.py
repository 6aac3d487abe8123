"""Which device to run on: the one resolution of a device name, for training, evaluation and inference."""

from __future__ import annotations

import torch

from amd.errors import AmdError

#: The device names accepted, for messages.
DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"


def resolve_device(name: str, option: str = "--device") -> torch.device:
    """``"auto"`` -> CUDA when a GPU is usable, else the CPU; any other name as torch reads it, checked
    against this machine.

    Args:
        name: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (anything else torch reads is passed through).
        option: How the user gave it, for the hint in a message.

    Raises:
        AmdError: ``name`` is not a device, or names a GPU that this machine does not have.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise AmdError(f"unknown device {name!r} (use {DEVICE_CHOICES}): {exc}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise AmdError(f"device {name!r} was asked for but no CUDA GPU is available; use {option} cpu")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            have = ", ".join(f"cuda:{i}" for i in range(count))
            raise AmdError(
                f"device {name!r} was asked for but this machine has {count} CUDA GPU(s) ({have}); "
                f"use one of them or {option} cpu"
            )
    return device
