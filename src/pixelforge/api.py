"""The Python API: the same operations as the command line, as functions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pixelforge.config import merge, split_overrides


def train(
    family: str | None,
    data: str | None,
    out: str | Path,
    *,
    steps: int | None = None,
    config: dict[str, Any] | None = None,
    overrides: list[str] | None = None,
    init: str | None = None,
    progress: bool = False,
) -> Path:
    """Train (or resume) a run, exactly as `pixelforge train`; returns the run folder.

    ``config`` is a nested dict like a ``--config`` file ({"model": {...}, "train": {...}});
    ``overrides`` are ``--set`` strings ("train.lr=1e-4").
    """
    from pixelforge.training.run import prepare_run
    from pixelforge.training.trainer import Trainer

    values = merge(config or {}, split_overrides(overrides or []))
    if steps is not None:
        values = merge(values, {"train": {"steps": steps}})
    spec, _ = prepare_run(family, data, Path(out), overrides=values, init=init)
    Trainer(spec, out, progress=progress).fit()
    return Path(out)


def restore(
    command: str,
    image: Any,
    *,
    model: Any = None,
    scale: int | None = None,
    mask: Any = None,
    **options: Any,
) -> Any:
    """One image in, one image out, as the command of the same name: ``command`` is upscale,
    denoise, restore-jpeg, colorize, inpaint or uncrop (``extend=``, ``side=``); ``ensemble=8``
    averages the outputs for the 8 flips and transposes of the image (EDSR+'s self-ensemble).

    ``image`` is a path, a Pillow image, a numpy array (H x W x C or H x W; uint8, or float in
    [0, 1]) or a C x H x W tensor (float in [0, 1], or uint8); ``mask`` likewise (white / 1 =
    fill; a boolean array too). Returns a C x H' x W' float tensor in [0, 1]
    (``pixelforge.io.images.to_pil`` makes a Pillow image of it): one channel for a grey image
    (but from colorize), plus alpha when it has some. ``model`` is a loaded model, a MODEL spec
    or None for the shipped default (``sr-x{scale}`` for upscale); in a loop, load it once
    (``pixelforge.load("denoise")``) and pass it. ``tile=``, ``device=`` (auto, cpu, cuda or
    mps; default cpu) and ``ensemble=`` are the command's options. The EXIF
    orientation of a path or Pillow image is applied, and a JPEG model runs on its pixels as
    stored (``orientation=``, for a tensor read from a turned file). Alpha (a 4-channel image)
    is kept, except by inpaint and uncrop. A palette (conditional diffusion) model samples with
    ``seed=``, ``steps=`` and ``sampler=`` (ddim, ddpm, dpm-solver++; default: the model's).
    """
    from PIL import Image

    from pixelforge.io.images import exif_orientation
    from pixelforge.tasks.image2image import as_image_tensor
    from pixelforge.tasks.restore import input_mode, restore_image

    if isinstance(image, str | Path | Image.Image):
        options.setdefault("orientation", exif_orientation(image))
    image = as_image_tensor(image, mode=input_mode(command))  # as the command reads its file
    if mask is not None:
        mask = as_image_tensor(mask, mask=True)

    return restore_image(command, image, model=model, scale=scale, mask=mask, **options)


def remove_bg(image: Any, *, model: Any = None, device: Any = "cpu") -> Any:
    """The cutout of ``image``, as `pixelforge remove-bg`: a 4 x H x W float tensor in [0, 1],
    the image's colours (a grey image's repeated) with alpha = the matting model's matte times
    the image's own alpha. ``image`` is taken as by :func:`restore`; ``model`` is a loaded
    matting model, a MODEL spec or None for the shipped ``matting``, loaded on ``device`` (auto,
    cpu, cuda or mps)."""
    import torch

    from pixelforge.devices import as_device
    from pixelforge.tasks.image2image import as_image_tensor
    from pixelforge.tasks.matting import cutout, load_matting

    x = as_image_tensor(image, mode="RGBA")
    # a tensor keeps its channels: grey or RGB, with alpha last when there are 2 or 4
    colour, alpha = (x[:-1], x[-1:]) if x.shape[0] in (2, 4) else (x, torch.ones_like(x[:1]))
    x = torch.cat([colour.expand(3, -1, -1), alpha])
    pixels = (x * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    net = load_matting(model, as_device(device))
    return torch.from_numpy(cutout(net, pixels)).permute(2, 0, 1).float() / 255


def translate(
    model: Any, image: Any, *, direction: str | None = None, tile: int = 512, device: Any = "cpu"
) -> Any:
    """One image through a pix2pix or cyclegan model, as `pixelforge translate`; returns a
    C x H x W float tensor in [0, 1] at the image's size. ``image`` takes the forms of
    :func:`restore`; ``direction`` is AtoB or BtoA for a cyclegan model (pix2pix: AtoB only)."""
    from pixelforge.tasks.translate import translate as translate_one

    return translate_one(model, image, direction=direction, tile=tile, device=device)


def dip(
    image: Any,
    task: str = "denoise",
    *,
    mask: Any = None,
    scale: int = 4,
    iterations: int | None = None,
    seed: int = 0,
    **options: Any,
) -> Any:
    """One image restored by a deep image prior, as `pixelforge dip` (no model, no training
    data; minutes on a CPU): ``task`` is denoise, inpaint (with ``mask``) or upscale (by
    ``scale``). ``image`` and ``mask`` are taken as :func:`restore` takes them. Returns a
    C x H' x W' float tensor in [0, 1]: grey stays grey, alpha is kept (inpaint composites over
    white). ``options`` (``device``, ``config``, ``callback``, ...) go to
    :func:`pixelforge.restoration.dip.deep_image_prior`.
    """
    from pixelforge.restoration.dip import dip_image
    from pixelforge.tasks.image2image import as_image_tensor

    pixels = as_image_tensor(image, mode="RGB" if task == "inpaint" else "RGBA")
    hole = None if mask is None else as_image_tensor(mask, mask=True)
    restored, _ = dip_image(
        pixels, task, mask=hole, scale=scale, iterations=iterations, seed=seed, **options
    )
    return restored


def list_models() -> list[str]:
    """Names of the model families pixelforge can train."""
    from pixelforge.registry import list_families

    return [f.name for f in list_families()]


def interpolate(
    model: Any,
    *,
    seeds: tuple[int, int] | None = None,
    start: Any = None,
    end: Any = None,
    steps: int = 8,
    class_label: int | None = None,
) -> Any:
    """Frames between two latents, as `pixelforge latent interpolate` (slerp, or lerp in W).

    ``model`` is a loaded model or a MODEL spec. The whole latent lab (encode, direction, edit,
    neighbors, latent files) is :mod:`pixelforge.latent`.
    """
    from pixelforge import latent
    from pixelforge.hub import load

    m = load(model) if isinstance(model, str | Path) else model
    return latent.interpolate(
        m, seeds=seeds, start=start, end=end, steps=steps, class_label=class_label
    )
