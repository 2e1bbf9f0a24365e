"""Training state as safetensors + JSON: modules, optimizers and counters, no pickle.

Randomness needs no saved state: every random draw of a step (data order, augmentation,
latents, dropout) comes from generators seeded by (run seed, step), so restoring the step
restores the random streams exactly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pixelforge import runs
from pixelforge.errors import ModelLoadError
from pixelforge.hub import read_safetensors, write_safetensors
from pixelforge.io.atomic import atomic_write_text

STATE_FORMAT_VERSION = 1


class StateMismatch(ModelLoadError):
    """A checkpoint that holds other modules or optimizers than the task builds: the run's
    settings changed what is trained (an EMA copy, a discriminator, a pool's size)."""


def _optimizer_split(
    opt: torch.optim.Optimizer, prefix: str
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, entry in sd["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}/{idx}/{key}"] = value
            else:
                scalars.setdefault(str(idx), {})[key] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _optimizer_join(
    meta: Mapping[str, Any], tensors: Mapping[str, torch.Tensor], prefix: str
) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith(prefix + "/"):
            idx, name = key[len(prefix) + 1 :].split("/", 1)
            state.setdefault(int(idx), {})[name] = value
    for idx, entry in meta["scalars"].items():
        state.setdefault(int(idx), {}).update(entry)
    return {"state": state, "param_groups": meta["param_groups"]}


def save_state(
    folder: Path,
    *,
    modules: Mapping[str, nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer],
    counters: Mapping[str, Any],
) -> None:
    """Write state.safetensors and state.json into ``folder`` (atomically, file by file)."""
    tensors: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        for key, value in module.state_dict().items():
            tensors[f"module/{name}/{key}"] = value
    optim_meta: dict[str, Any] = {}
    for name, opt in optimizers.items():
        t, meta = _optimizer_split(opt, f"optim/{name}")
        tensors.update(t)
        optim_meta[name] = meta
    digest = write_safetensors(folder / runs.STATE_TENSORS, tensors)
    doc = {
        "format_version": STATE_FORMAT_VERSION,
        "counters": dict(counters),
        "optimizers": optim_meta,
        "tensors_sha256": digest,
    }
    atomic_write_text(folder / runs.STATE_JSON, json.dumps(doc, indent=1, sort_keys=True) + "\n")


def load_state(
    folder: Path,
    *,
    modules: Mapping[str, nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer],
) -> dict[str, Any]:
    """Restore ``modules`` and ``optimizers`` from ``folder``; returns the saved counters."""
    try:
        doc = json.loads((folder / runs.STATE_JSON).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"checkpoint {folder} is unreadable: {exc}") from None
    if doc.get("format_version") != STATE_FORMAT_VERSION:
        raise ModelLoadError(
            f"checkpoint {folder} has state format {doc.get('format_version')}, "
            f"expected {STATE_FORMAT_VERSION}."
        )
    tensors = read_safetensors(folder / runs.STATE_TENSORS, expected_sha256=doc["tensors_sha256"])
    for name, module in modules.items():
        prefix = f"module/{name}/"
        sub = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            module.load_state_dict(sub, strict=True)
        except RuntimeError:
            raise StateMismatch(
                f"the module '{name}' of checkpoint {folder} has other parts or shapes"
                if sub
                else f"checkpoint {folder} has no module '{name}'"
            ) from None
    for name, opt in optimizers.items():
        if name not in doc["optimizers"]:
            raise StateMismatch(f"checkpoint {folder} has no state for the optimizer '{name}'")
        # The checkpoint gives the moments and step counts; the hyper-parameters (lr, betas,
        # weight decay) stay those the optimizer was built with from the run's config, which a
        # resume may change (the saved ones would silently undo --set train.lr=...).
        hyper = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
        opt.load_state_dict(_optimizer_join(doc["optimizers"][name], tensors, f"optim/{name}"))
        for group, kept in zip(opt.param_groups, hyper, strict=True):
            group.update(kept)
    return dict(doc["counters"])
