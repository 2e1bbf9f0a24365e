"""Style transfer over images and folders: Gatys optimisation or a saved fast-style model.

:func:`stylize` is the Python API (``pixelforge.stylize``); :func:`run_stylize` is what
``pixelforge stylize`` calls (files and folders in, PNGs out). The math lives in
:mod:`pixelforge.style.gatys`; colour preservation in :mod:`pixelforge.style.color`.

Order of operations: stylize (at the processed size), then ``preserve_color`` (the content's
chroma, the stylized luminance), then ``strength`` (a linear blend with the content in pixel
space: 0 = the content, 1 = the full style).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from pixelforge.config import to_dict
from pixelforge.devices import as_device
from pixelforge.errors import ConfigError, PixelforgeError
from pixelforge.io.images import get_max_pixels, image_info, write_png
from pixelforge.style.builtin import BUILTIN_STYLES, is_builtin, render_style
from pixelforge.style.color import preserve_color as _preserve_color
from pixelforge.style.gatys import (
    MIN_SIDE,
    Callback,
    GatysConfig,
    as_rgb,
    fit_longest,
    resize,
    style_transfer,
    style_vgg,
)
from pixelforge.tasks.generate import command_line, provenance
from pixelforge.tasks.image2image import (
    apply_model,
    as_image_tensor,
    folder_failures,
    input_output_pairs,
    read_as_tensor,
)

METHODS = ("gatys",)
StyleSpec = Any  # a path, "builtin:NAME", a tensor, a Pillow image or a numpy array
ONE_IMAGE = (str, Path, torch.Tensor, np.ndarray, Image.Image)  # a style that is not a list
BUILTIN_MIN_SIDE = 256  # built-in styles are drawn with at least this longest side


def check_strength(strength: float) -> float:
    """``strength`` if it is in [0, 1], else a :class:`ConfigError`."""
    s = float(strength)
    if not 0.0 <= s <= 1.0:
        raise ConfigError(
            f"strength must be between 0 (the content) and 1 (full style), got {strength}."
        )
    return s


def load_style(spec: StyleSpec, content_hw: tuple[int, int], seed: int = 0) -> torch.Tensor:
    """A style image as 3 x H x W in [0, 1]: a tensor, Pillow image or numpy array
    (``as_image_tensor``), ``builtin:NAME`` (drawn with the content's aspect ratio, longest side
    max(256, content's)) or an image file."""
    if not isinstance(spec, str | Path):  # a tensor, a Pillow image or a numpy array
        return as_rgb(as_image_tensor(spec))
    if is_builtin(spec):
        hw = fit_longest(content_hw, max(BUILTIN_MIN_SIDE, max(content_hw)))
        array = render_style(str(spec), hw, seed)
        return torch.from_numpy(array).permute(2, 0, 1).float() / 255
    path = Path(spec)
    if not path.is_file():
        hint = f" Built-in styles: {', '.join('builtin:' + n for n in BUILTIN_STYLES)}."
        raise PixelforgeError(f"style image not found: {path}.{hint}")
    return as_rgb(read_as_tensor(path))


def check_size(hw: tuple[int, int], size: int | None) -> None:
    """Refuse a size the image would be stylized at that is over the pixel cap the image reader
    applies to every input (PIXELFORGE_MAX_PIXELS): ``size`` enlarges small images; or whose
    short side is below the VGG's :data:`~pixelforge.style.gatys.MIN_SIDE` (a thin strip)."""
    if min(hw) < MIN_SIDE:
        raise ConfigError(
            f"the image would be stylized at {hw[1]}x{hw[0]} pixels"
            + (f" (--size {size})" if size else "")
            + f"; style transfer needs at least {MIN_SIDE} pixels on each side: give a larger "
            "--size, or crop the image nearer to a square."
        )
    cap = get_max_pixels()
    if hw[0] * hw[1] > cap:
        raise ConfigError(
            f"size {size} would stylize the image at {hw[1]}x{hw[0]} = {hw[0] * hw[1]:,} pixels, "
            f"over the limit of {cap:,} pixels (PIXELFORGE_MAX_PIXELS); use a smaller --size."
        )


def check_styles(specs: Sequence[StyleSpec]) -> None:
    """Fail before any work on a missing style file or an unknown built-in name."""
    for sp in specs:
        if is_builtin(sp):
            render_style(str(sp), 8)
        elif isinstance(sp, str | Path):
            if not Path(sp).is_file():
                load_style(sp, (8, 8))  # the "not found" error
            image_info(sp)  # an unreadable file fails here, before the VGG is built


def _load_model(model: Any, device: Any) -> Any:
    """``model`` (a loaded model, or a model dir, run dir or shipped name) as a fast-style model;
    any other model (a denoiser runs as one but does not stylize) is a ConfigError that says
    which command runs it."""
    from pixelforge import hub
    from pixelforge.tasks.restore import how_to_run

    m = model if isinstance(model, torch.nn.Module) else hub.load(model, device=device)
    if getattr(m, "family", None) != "fast-style":
        name = model if isinstance(model, str | Path) else "the model"
        run = how_to_run(m, name)
        raise ConfigError(
            f"{name} is a {getattr(m, 'family', '?')} model; stylize --model needs a fast-style "
            "model (`pixelforge train fast-style` or `pixelforge import fast-style`)"
            + (f"; run this one with {run}." if run else ".")
        )
    return m


def stylize(
    content: Any,
    style: StyleSpec | Sequence[StyleSpec] | None = None,
    *,
    style_weights: Sequence[float] | None = None,
    method: str = "gatys",
    model: Any = None,
    strength: float = 1.0,
    preserve_color: bool = False,
    config: GatysConfig | None = None,
    device: torch.device | str = "cpu",
    callback: Callback | None = None,
    network: Any = None,
    tile: int = 512,
    **options: Any,
) -> torch.Tensor:
    """Stylize one image; returns 3 x H' x W' floats in [0, 1].

    ``content``: a path, a Pillow image, a numpy array or a C x H x W tensor in [0, 1] (grey
    allowed; ``tasks.image2image.as_image_tensor``). Either ``style`` (any of those,
    ``"builtin:NAME"``, or a list of them mixed by ``style_weights``) for
    Gatys optimisation - ``options`` are :class:`~pixelforge.style.gatys.GatysConfig` fields
    (``iterations=``, ``size=``, ``scales=``, ...; an unknown one is an error) - or ``model``
    (a loaded image-to-image model, model dir or shipped name) run over the whole image at its
    own size. ``strength`` in [0, 1] blends with the content (0: the content, 1: full style),
    after ``preserve_color`` (keep the content's colours, take the stylized luminance).
    ``device``: auto, cpu, cuda or mps. ``network``: the VGG Gatys' method judges style with
    (``style.gatys.style_vgg``; None: built at each call), to build once for many images.
    """
    s = check_strength(strength)
    if (style is None) == (model is None):
        raise ConfigError("give exactly one of style (Gatys optimisation) or model (fast style).")
    device = as_device(device)
    image = as_image_tensor(content)
    c = as_rgb(image)
    if model is not None:
        if options or config is not None or style_weights is not None:
            raise ConfigError("model runs a saved style; it takes no style options.")
        m = _load_model(model, device)
        styled = apply_model(m, c, tile=tile, device=device).cpu()
        styled = as_rgb(styled)
    else:
        if method not in METHODS:
            raise ConfigError(f"unknown method '{method}'; known: {', '.join(METHODS)}.")
        cfg = GatysConfig.with_options(config, **options)
        specs = [style] if isinstance(style, ONE_IMAGE) else list(style or [])
        content_hw = fit_longest((int(c.shape[-2]), int(c.shape[-1])), cfg.size)
        check_size(content_hw, cfg.size)
        styles = [load_style(sp, content_hw, cfg.seed) for sp in specs]
        styled, _ = style_transfer(
            c, styles, style_weights=style_weights, config=cfg, network=network,
            device=device, callback=callback,
        )  # fmt: skip
    base = resize(c, (int(styled.shape[-2]), int(styled.shape[-1])))
    if preserve_color:
        styled = _preserve_color(styled, base)
    if s == 1.0:
        return styled
    if s == 0.0:
        return base.clone()
    return (1 - s) * base + s * styled


def run_stylize(
    source: str | Path,
    out: str | Path,
    *,
    style: Sequence[StyleSpec] | None = None,
    style_weights: Sequence[float] | None = None,
    model: str | None = None,
    strength: float = 1.0,
    preserve_color: bool = False,
    config: GatysConfig | None = None,
    device: Any = "cpu",
    callback_for: Any = None,
    network: Any = None,
    command: str = "pixelforge stylize",
) -> list[Path]:
    """Stylize an image or a folder of images into ``out``; returns the files written.

    ``callback_for(name)`` may return a progress callback for each image. The VGG (Gatys) or the
    model is loaded once for the whole folder.
    """
    check_strength(strength)
    if (not style) == (model is None):
        raise ConfigError(
            "give exactly one of --style (Gatys optimisation) or --model (fast style)."
        )
    pairs = input_output_pairs(source, out)
    cfg = config or GatysConfig()
    if style:
        check_styles(style)
        if style_weights is not None and len(style_weights) != len(style):
            raise ConfigError(
                f"give one --style-weight per --style: {len(style)} style(s), "
                f"{len(style_weights)} weight(s)."
            )
        net = network if network is not None else style_vgg(device=device)
        m = None
    else:
        net, m = None, _load_model(model, device)
    written = []
    failed: list[tuple[Path, str]] = []
    for src, dst in pairs:
        cb = callback_for(src.name) if callback_for is not None else None
        try:
            result = stylize(
                src, None if m is not None else list(style or []), style_weights=style_weights,
                model=m, strength=strength, preserve_color=preserve_color,
                config=None if m is not None else cfg, device=device, callback=cb, network=net,
            )  # fmt: skip
        except PixelforgeError as exc:
            if not Path(source).is_dir():
                raise
            failed.append((src, str(exc)))  # the other images are still stylized
            continue
        meta = provenance(
            m, command_line(command), kind="style transfer", source=src.name,
            strength=strength, preserve_color=preserve_color,
        )  # fmt: skip
        if m is not None:
            meta.update(model=str(model))
        else:
            meta.update(
                method="gatys",
                style=[str(sp) for sp in style or []],
                style_weights=list(style_weights) if style_weights else None,
                gatys=to_dict(cfg),  # every option: two images differ only if these do
                vgg_weights=getattr(net, "weights_sha256", None),
            )
        write_png(dst, result, meta)
        written.append(dst)
    if failed:
        raise folder_failures(failed, len(pairs), out)
    return written
