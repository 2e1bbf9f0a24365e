"""The lab's latent space: model fingerprints, slerp/lerp, labels, latent and direction files.

Everything here works through the :class:`~pixelforge.models.base.ImageGenerator` lab hooks
(``lab_space``, ``to_lab``, ``from_lab``, ``mean_lab_latent``), never through a family class:

* ``lab_space == "gaussian"`` (DCGAN, VAE, diffusion noise): latents are N(0, I) samples, whose
  mass sits on a thin shell of radius ~sqrt(d). Interpolation is *slerp* of the directions with
  a linear blend of the norms (White 2016, "Sampling Generative Networks"), so midpoints keep the
  norm a Gaussian sample has; a straight line would cut through the low-density centre.
* ``lab_space == "w"`` (a mapped space such as StyleGAN's W): interpolation is *lerp*, as in
  Karras et al. 2019 (perceptual path length is measured with lerp in W).

Latent files (``.safetensors``) hold one lab latent (tensor ``latent``) or one attribute
direction (tensor ``direction``) and, as safetensors metadata, the fingerprint of the model they
belong to, its family, its lab space and the class label. Reading one for another model is an
error that says so.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as st_save_bytes

from pixelforge.errors import ConfigError, PixelforgeError
from pixelforge.hub import read_safetensors, sha256_bytes, write_safetensors
from pixelforge.models.base import ImageGenerator

LATENT_FORMAT = "pixelforge-latent"
LATENT_FORMAT_VERSION = 1
LAB_SPACES = ("gaussian", "w")


# --------------------------------------------------------------------------- model identity


def model_fingerprint(model_or_dir: torch.nn.Module | str | Path) -> str:
    """The identity of a model's weights: the SHA-256 of its ``model.safetensors`` bytes.

    A model dir, run dir or shipped name gives the hash recorded in its ``config.json`` (checked
    against the file whenever the model is loaded). A loaded model gives its ``model_sha256``
    (set by :func:`pixelforge.hub.load`); an in-memory model that was never saved gives the
    SHA-256 of the bytes ``save_model`` would write for its state dict, so saving it and loading
    it back keeps the same fingerprint.
    """
    if isinstance(model_or_dir, str | Path):
        from pixelforge.hub import read_model_meta, resolve_model_dir

        meta = read_model_meta(resolve_model_dir(model_or_dir))
        digest = meta["weights"].get("sha256")
        if not digest:
            raise PixelforgeError(f"{model_or_dir}: its config.json records no weights SHA-256.")
        return str(digest)
    cached = getattr(model_or_dir, "model_sha256", None)
    if cached:
        return str(cached)
    state = {k: v.detach().contiguous().cpu() for k, v in model_or_dir.state_dict().items()}
    return sha256_bytes(st_save_bytes(state))


def check_generator(model: Any) -> ImageGenerator:
    """``model`` as an ImageGenerator with a known lab space, or a clear error."""
    if not isinstance(model, ImageGenerator):
        raise ConfigError(
            f"a {getattr(model, 'family', type(model).__name__)} model has no latent space: "
            "the latent lab needs a model that generates from latents."
        )
    if model.lab_space not in LAB_SPACES:
        raise ConfigError(
            f"a {model.family} model declares lab_space '{model.lab_space}'; the latent lab "
            f"knows {', '.join(LAB_SPACES)}."
        )
    return model


def _device(model: torch.nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


# --------------------------------------------------------------------------- labels


def class_labels(model: ImageGenerator, n: int, class_label: int | None) -> torch.Tensor | None:
    """``n`` copies of ``class_label`` for a conditional model (None for an unconditional one).

    A conditional model needs a class (the lab keeps it fixed along a path); a class outside
    0..K-1, or a class for an unconditional model, is an error naming the valid range.
    """
    if model.num_classes and class_label is None:
        raise ConfigError(
            f"this model is class-conditional: pass --class with a class from 0 to "
            f"{model.num_classes - 1}."
        )
    return model.default_labels(n, class_label)


# --------------------------------------------------------------------------- interpolation


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """Straight-line interpolation ``(1 - t) a + t b`` (``t`` broadcast over a leading axis)."""
    t = torch.as_tensor(t, dtype=a.dtype)
    t = t.reshape(-1, *([1] * a.ndim)) if t.ndim else t
    return (1 - t) * a + t * b


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """Spherical interpolation of Gaussian latents ``a`` and ``b`` (any shape, flattened).

    The direction follows the great circle from ``a / |a|`` to ``b / |b|``; the norm is blended
    linearly from ``|a|`` to ``|b|``. ``t = 0`` gives ``a`` and ``t = 1`` gives ``b`` exactly.
    With ``t`` a 1-d tensor the result has a leading axis of ``len(t)``.
    """
    scalar = not torch.is_tensor(t) or t.ndim == 0
    ts = torch.as_tensor(t, dtype=torch.float64).reshape(-1)
    fa, fb = a.reshape(-1).double(), b.reshape(-1).double()
    na, nb = fa.norm(), fb.norm()
    ua, ub = fa / na.clamp_min(1e-12), fb / nb.clamp_min(1e-12)
    omega = torch.arccos(torch.dot(ua, ub).clamp(-1.0, 1.0))
    so = torch.sin(omega)
    if float(so) < 1e-6:  # (anti)parallel: the great circle is undefined; fall back to lerp
        out = (1 - ts)[:, None] * fa + ts[:, None] * fb
    else:
        ca = torch.sin((1 - ts) * omega) / so
        cb = torch.sin(ts * omega) / so
        direction = ca[:, None] * ua + cb[:, None] * ub
        norm = (1 - ts) * na + ts * nb
        out = direction * norm[:, None]
        out[ts == 0] = fa
        out[ts == 1] = fb
    out = out.to(a.dtype).reshape(len(ts), *a.shape)
    return out[0] if scalar else out


def interpolate_lab(space: str, a: torch.Tensor, b: torch.Tensor, steps: int) -> torch.Tensor:
    """``steps`` lab latents from ``a`` to ``b`` (both ends included): slerp or lerp by space."""
    if steps < 2:
        raise ConfigError(f"--steps must be at least 2, got {steps}.")
    if a.shape != b.shape:
        raise ConfigError(
            f"the two latents have different shapes ({tuple(a.shape)} and {tuple(b.shape)}): "
            "they come from different models."
        )
    t = torch.linspace(0, 1, steps, dtype=torch.float64)
    if space == "gaussian":
        return slerp(a, b, t)
    return lerp(a, b, t.to(a.dtype))


@torch.no_grad()
def seed_lab_latent(model: ImageGenerator, seed: int, labels: torch.Tensor | None) -> torch.Tensor:
    """The lab latent of ``model.sample(1, seed=seed)``: ``to_lab(sample_latents(1, seed))``."""
    z = model.sample_latents(1, seed).to(_device(model))
    lb = None if labels is None else labels[:1].to(_device(model))
    return model.to_lab(z, lb)[0].detach().float().cpu()


@torch.no_grad()
def render(
    model: ImageGenerator, lab: torch.Tensor, labels: torch.Tensor | None, batch_size: int = 64
) -> torch.Tensor:
    """Images in [0, 1] (N x C x H x W, CPU) from N lab latents, with the model in eval mode."""
    was_training = model.training
    model.eval()
    device = _device(model)
    out = []
    try:
        for i in range(0, lab.shape[0], batch_size):
            w = lab[i : i + batch_size].to(device)
            lb = None if labels is None else labels[i : i + batch_size].to(device)
            out.append(model.from_lab(w, lb).float().cpu())
    finally:
        model.train(was_training)
    return ((torch.cat(out) + 1) / 2).clamp(0, 1)


# --------------------------------------------------------------------------- latent files


def _read_metadata(path: Path) -> dict[str, str]:
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    meta = header.get("__metadata__") or {}
    return {str(k): str(v) for k, v in meta.items()}


def save_lab_file(
    path: str | Path,
    kind: str,
    tensor: torch.Tensor,
    model: ImageGenerator,
    *,
    label: int | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a latent (``kind="latent"``) or direction (``kind="direction"``) file for ``model``."""
    p = Path(path)
    if p.suffix.lower() != ".safetensors":
        raise ConfigError(f"--out must end in .safetensors, got '{path}'.")
    metadata = {
        "format": LATENT_FORMAT,
        "format_version": str(LATENT_FORMAT_VERSION),
        "kind": kind,
        "model_sha256": model_fingerprint(model),
        "family": model.family,
        "lab_space": model.lab_space,
        "label": "" if label is None else str(int(label)),
        "extra": json.dumps(extra or {}, sort_keys=True),
    }
    write_safetensors(p, {kind: tensor.detach().float().cpu()}, metadata=metadata)
    return p


def load_lab_file(
    path: str | Path, kind: str, model: ImageGenerator
) -> tuple[torch.Tensor, dict[str, Any]]:
    """The tensor and metadata of a latent/direction file, refusing files of another model."""
    p = Path(path)
    if not p.is_file():
        raise PixelforgeError(f"{kind} file not found: {p}")
    tensors = read_safetensors(p)
    meta: dict[str, Any] = dict(_read_metadata(p))
    if meta.get("format") != LATENT_FORMAT or kind not in tensors:
        what = meta.get("kind") or "not a pixelforge latent-lab file"
        raise PixelforgeError(
            f"{p} is not a {kind} file ({what}). Make one with `pixelforge latent "
            f"{'encode' if kind == 'latent' else 'direction'}`."
        )
    if meta.get("model_sha256") != model_fingerprint(model):
        raise PixelforgeError(
            f"{p} belongs to another model (a {meta.get('family', '?')} model with weights "
            f"{str(meta.get('model_sha256', '?'))[:12]}...; this {model.family} model's weights "
            f"are {model_fingerprint(model)[:12]}...). Latents and directions only mean something "
            "for the model that made them: make it again with this model."
        )
    tensor = tensors[kind]
    if meta.get("lab_space") != model.lab_space:
        raise PixelforgeError(f"{p} is in lab space '{meta.get('lab_space')}', not this model's.")
    meta["label"] = int(meta["label"]) if meta.get("label") else None
    meta["extra"] = json.loads(meta.get("extra") or "{}")
    return tensor, meta


def psnr_from_mse(mse: float) -> float:
    """PSNR in dB of images in [0, 1] with mean squared error ``mse``."""
    return math.inf if mse <= 0 else 10.0 * math.log10(1.0 / mse)
