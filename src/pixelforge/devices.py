"""The one rule for naming a device, as every command's ``--device`` and the API's ``device=``
take it."""

from __future__ import annotations

import torch

from pixelforge.errors import ConfigError


def as_device(name: str | torch.device) -> torch.device:
    """A device as the commands' --device names it: ``auto`` -> the first CUDA GPU if there is
    one, else the CPU; a device that is not there, or an unknown name, is a ConfigError."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for but no CUDA GPU is visible; use cpu.")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device 'mps' asked for but MPS is not available here; use cpu.")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda or mps.") from None
