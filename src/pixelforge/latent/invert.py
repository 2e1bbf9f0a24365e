"""Images -> lab latents: the VAE encoder, and GAN inversion by optimisation.

GAN inversion (Zhu et al. 2016, "Generative Visual Manipulation on the Natural Image Manifold";
Abdal et al. 2019, "Image2StyleGAN") optimises the lab latent ``w`` so that ``from_lab(w)``
matches the image in pixel MSE, with Adam. It starts from

* ``encoder``: the VAE encoder's posterior mean (models with an encoder only), or
* ``mean``: :meth:`ImageGenerator.mean_lab_latent` (the mean of W for a mapped space; zeros, the
  mode of N(0, I), for a Gaussian one), plus ``restarts - 1`` random starts ``to_lab(z)``; the
  best of them per image is kept.

Diffusion models are not inverted: ``encode is not supported for diffusion models`` (DDIM
inversion is not implemented).

The reported errors are the MSE in [0, 1] pixel values (and the PSNR) between the image, brought
to the model's size and channels by :mod:`pixelforge.data.transforms`, and its reconstruction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from pixelforge.data import DataConfig
from pixelforge.data.transforms import prepare_image, stack_images, to_model_range
from pixelforge.errors import ConfigError, PixelforgeError
from pixelforge.io.images import read_image
from pixelforge.latent.space import _device, check_generator, psnr_from_mse
from pixelforge.models.base import ImageGenerator
from pixelforge.models.vae import VAE

STARTS = ("auto", "encoder", "mean")


@dataclass
class Inversion:
    """Lab latents of N images and how well they reconstruct them."""

    latents: torch.Tensor  # N x lab shape (CPU, float32)
    reconstructions: torch.Tensor  # N x C x H x W in [0, 1] (CPU)
    mse_start: torch.Tensor  # N: MSE (pixels in [0, 1]) at the best start point
    mse: torch.Tensor  # N: MSE after optimisation
    method: str  # "encoder", "encoder+optimisation" or "optimisation"

    @property
    def psnr(self) -> list[float]:
        return [psnr_from_mse(float(m)) for m in self.mse]


def has_encoder(model: ImageGenerator) -> bool:
    """True for models with an image encoder into their latent space (the VAE family)."""
    return isinstance(model, VAE)


def check_invertible(model: ImageGenerator) -> None:
    """Refuse models the lab cannot encode images into."""
    if model.family == "diffusion":
        raise PixelforgeError(
            "encode is not supported for diffusion models (DDIM inversion is not implemented); "
            "interpolate between seeds instead, or use a vae, dcgan or stylegan model."
        )


def model_geometry(model: ImageGenerator) -> tuple[int, int]:
    """The model's ``(image_size, channels)``."""
    size = getattr(model.config, "image_size", None)
    channels = getattr(model.config, "channels", None)
    if not size or not channels:
        raise ConfigError("the model's config has no image_size/channels.")
    return int(size), int(channels)


def load_image(path: str | Path, model: ImageGenerator) -> torch.Tensor:
    """The image at ``path`` as 1 x C x H x W in [-1, 1] at the model's size and channels.

    Read with the guarded reader; channel conversion and resizing (centre crop, bicubic) follow
    the data pipeline's defaults.
    """
    size, channels = model_geometry(model)
    array = read_image(path, mode="RGB")
    prepared = prepare_image(array, image_size=size, channels=channels, config=DataConfig())
    return to_model_range(stack_images([prepared]))


def _pixel_mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image MSE of [-1, 1] images, measured in [0, 1] pixel values."""
    return ((a - b) / 2).pow(2).flatten(1).mean(1)


def _starts(
    model: ImageGenerator,
    images: torch.Tensor,
    labels: torch.Tensor | None,
    start: str,
    restarts: int,
    seed: int,
) -> tuple[torch.Tensor, str]:
    """R x N x lab start latents (R restarts) and the start's name."""
    n = images.shape[0]
    device = _device(model)
    with torch.no_grad():
        if start == "encoder":
            assert isinstance(model, VAE)
            mu, _ = model.encode(images.to(device))
            w = model.to_lab(mu, labels)
            return w.float()[None], "encoder"
        mean = model.mean_lab_latent(None if labels is None else labels[:1]).to(device).float()
        out = [mean.expand(n, *mean.shape)]
        if restarts > 1:
            z = model.sample_latents((restarts - 1) * n, seed).to(device)
            lb = None if labels is None else labels.repeat(restarts - 1)
            w = model.to_lab(z, lb).float().reshape(restarts - 1, n, *mean.shape)
            out += list(w)
    return torch.stack(out), "optimisation"


def invert(
    model: ImageGenerator,
    images: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    start: str = "auto",
    steps: int | None = None,
    lr: float = 0.05,
    restarts: int = 4,
    seed: int = 0,
    batch_size: int = 256,
) -> Inversion:
    """Lab latents of ``images`` (N x C x H x W in [-1, 1] at the model's geometry).

    ``start``: ``auto`` (the encoder if the model has one, else ``mean``), ``encoder`` or
    ``mean``. ``steps`` of Adam at learning rate ``lr`` refine the start (default: 0 from an
    encoder, 300 otherwise); from ``mean``, ``restarts`` start points per image are tried and the
    best kept. Every image is optimised independently (batching does not change the result).
    """
    model = check_generator(model)
    check_invertible(model)
    if start not in STARTS:
        raise ConfigError(f"--start must be one of {', '.join(STARTS)}, got '{start}'.")
    if start == "auto":
        start = "encoder" if has_encoder(model) else "mean"
    if start == "encoder" and not has_encoder(model):
        raise ConfigError(
            f"a {model.family} model has no encoder: use --start mean (optimisation from the "
            "mean latent)."
        )
    if steps is None:
        steps = 0 if start == "encoder" else 300
    if steps < 0 or restarts < 1:
        raise ConfigError("--steps must be >= 0 and --restarts >= 1.")
    size, channels = model_geometry(model)
    if images.ndim != 4 or tuple(images.shape[1:]) != (channels, size, size):
        raise ConfigError(
            f"images must be N x {channels} x {size} x {size} for this model, got "
            f"{tuple(images.shape)}."
        )
    if model.num_classes and labels is None:
        raise ConfigError(
            f"this model is class-conditional: pass --class (0 to {model.num_classes - 1}) with "
            "the class of the image."
        )
    was_training = model.training
    model.eval()
    try:
        parts = [
            _invert_chunk(
                model,
                images[i : i + batch_size],
                None if labels is None else labels[i : i + batch_size],
                start,
                steps,
                lr,
                restarts,
                seed + i,
            )
            for i in range(0, images.shape[0], batch_size)
        ]
    finally:
        model.train(was_training)
    method = "encoder" if start == "encoder" else "optimisation"
    if start == "encoder" and steps:
        method = "encoder+optimisation"
    return Inversion(
        latents=torch.cat([p[0] for p in parts]),
        reconstructions=torch.cat([p[1] for p in parts]),
        mse_start=torch.cat([p[2] for p in parts]),
        mse=torch.cat([p[3] for p in parts]),
        method=method,
    )


def _invert_chunk(
    model: ImageGenerator,
    images: torch.Tensor,
    labels: torch.Tensor | None,
    start: str,
    steps: int,
    lr: float,
    restarts: int,
    seed: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    device = _device(model)
    x = images.to(device).float()
    lb = None if labels is None else labels.to(device).long()
    w0, _ = _starts(model, x, lb, start, restarts, seed)  # R x N x lab
    r, n = w0.shape[:2]
    target = x.repeat(r, 1, 1, 1)
    lb_all = None if lb is None else lb.repeat(r)
    w = w0.reshape(r * n, *w0.shape[2:]).clone().requires_grad_(True)
    with torch.no_grad():
        start_mse = _pixel_mse(model.from_lab(w, lb_all).float(), target)
    if steps:
        opt = torch.optim.Adam([w], lr=lr)
        for _ in range(steps):
            # Sum of per-image losses: each latent's gradient is independent of the others.
            loss = _pixel_mse(model.from_lab(w, lb_all).float(), target).sum()
            (grad,) = torch.autograd.grad(loss, [w])
            w.grad = grad
            opt.step()
    with torch.no_grad():
        rec = model.from_lab(w, lb_all).float()
        mse = _pixel_mse(rec, target).reshape(r, n)
    best = mse.argmin(0)  # best restart per image
    idx = torch.arange(n, device=device)
    w_best = w.detach().reshape(r, n, *w.shape[1:])[best, idx]
    rec_best = rec.reshape(r, n, *rec.shape[1:])[best, idx]
    start_best = start_mse.reshape(r, n).min(0).values
    return (
        w_best.cpu(),
        ((rec_best.cpu() + 1) / 2).clamp(0, 1),
        start_best.cpu(),
        mse[best, idx].cpu(),
    )


def encode_image(
    model: ImageGenerator,
    path: str | Path,
    *,
    class_label: int | None = None,
    start: str = "auto",
    steps: int | None = None,
    lr: float = 0.05,
    restarts: int = 4,
    seed: int = 0,
) -> Inversion:
    """The lab latent of the image file at ``path`` (see :func:`invert`)."""
    from pixelforge.latent.space import class_labels

    model = check_generator(model)
    check_invertible(model)
    labels = class_labels(model, 1, class_label)
    return invert(
        model,
        load_image(path, model),
        labels,
        start=start,
        steps=steps,
        lr=lr,
        restarts=restarts,
        seed=seed,
    )
