"""Restoration commands over files: pick the model, prepare the input, run, save.

``upscale``, ``denoise``, ``restore-jpeg``, ``colorize``, ``inpaint`` and ``uncrop`` all come
here. Without a model, each uses the model shipped with pixelforge for it (see
:data:`DEFAULT_MODELS`); a model given by the user must do the command's task.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import torch

from pixelforge import hub
from pixelforge.devices import as_device
from pixelforge.errors import ConfigError, PixelforgeError
from pixelforge.io.images import exif_orientation, list_images, write_png
from pixelforge.models.image2image import ImageToImage
from pixelforge.restoration.masks import smooth_fill
from pixelforge.tasks.generate import command_line, provenance
from pixelforge.tasks.image2image import (
    apply_model,
    check_tile,
    folder_failures,
    input_output_pairs,
    read_as_tensor,
    read_mask_tensor,
)
from pixelforge.tasks.tiling import check_output_size

#: command -> the restore tasks whose models it accepts
TASKS_OF: dict[str, tuple[str, ...]] = {
    "upscale": ("sr",),
    "denoise": ("denoise",),
    "restore-jpeg": ("jpeg", "multi"),
    "colorize": ("colorize", "multi"),
    "inpaint": ("inpaint", "multi"),
    "uncrop": ("uncrop", "inpaint", "multi"),
}

#: families whose models one command runs (restore and palette models: by task, TASKS_OF)
COMMAND_OF_FAMILY: dict[str, str] = {
    "matting": "remove-bg",
    "fast-style": "stylize",
    "pix2pix": "translate",
    "cyclegan": "translate",
}


def commands_for(model: Any) -> str:
    """The commands that run ``model``, for an error that refuses it elsewhere: "`pixelforge
    inpaint` or `pixelforge uncrop`" (a model's task), "`pixelforge remove-bg`", ... or ""."""
    task = getattr(getattr(model, "config", None), "task", None)
    commands = [c for c, tasks in TASKS_OF.items() if task in tasks]
    family = getattr(model, "family", None)
    if not commands and family in COMMAND_OF_FAMILY:
        commands = [COMMAND_OF_FAMILY[family]]
    if not commands and callable(getattr(model, "sample", None)):  # a generator
        commands = ["sample"]
    return " or ".join(f"`pixelforge {c}`" for c in commands)


def how_to_run(model: Any, name: Any) -> str:
    """How to run ``model`` (given as ``name``) with the command that takes it, for an error that
    refuses it elsewhere: "`pixelforge denoise` --model NAME", "`pixelforge sample NAME`" or ""."""
    other = commands_for(model)
    if not other:
        return ""
    return f"`pixelforge sample {name}`" if "sample" in other else f"{other} --model {name}"


#: command -> the shipped model used without --model (upscale: by scale)
DEFAULT_MODELS: dict[str, str] = {
    "denoise": "denoise",
    "restore-jpeg": "jpeg",
    "colorize": "colorize",
    "inpaint": "inpaint",
    "uncrop": "inpaint",
}


def default_model(command: str, scale: int | None = None) -> str:
    """The shipped model's name for ``command`` (upscale: ``sr-x{scale}``)."""
    if command == "upscale":
        return f"sr-x{scale or 4}"
    return DEFAULT_MODELS[command]


#: the largest tile side in input pixels when none is given (the commands' --tile default and
#: the Python API's, so both give the same pixels), by command
DEFAULT_TILE = 512
DEFAULT_TILES: dict[str, int] = {"inpaint": 1024, "uncrop": 1024}


def tile_for(command: str, tile: int | None) -> int:
    """``tile`` (checked: at least 16 pixels), or ``command``'s default when it is None."""
    tile = DEFAULT_TILES.get(command, DEFAULT_TILE) if tile is None else tile
    check_tile(tile)
    return tile


def load_for(
    command: str, model: str | Path | None, *, scale: int | None = None, device: Any = "cpu"
) -> ImageToImage:
    """The model for ``command``: ``model`` if given, else the shipped default; checked to do
    the command's task (and, for upscale, the requested scale)."""
    check_scale(command, scale)
    name = str(model or default_model(command, scale))
    if model is None and name not in hub.shipped_models():
        shipped = ", ".join(n for n in hub.shipped_models() if n.startswith("sr-x")) or "none"
        raise ConfigError(
            f"no shipped model for `pixelforge {command}`"
            + (f" --scale {scale}" if command == "upscale" else "")
            + f" ({name}); shipped upscalers: {shipped}. Give one with --model."
        )
    loaded = hub.load(name, device=device) if model else hub.load_shipped(name, device=device)
    return check_task(command, loaded, name, scale=scale)


def _a(words: str) -> str:
    """``words`` after its article: an inpaint, an sr, a denoise."""
    return f"{'an' if words[0] in 'aeiou' or words.startswith('sr') else 'a'} {words}"


def check_task(command: str, m: Any, name: str, *, scale: int | None = None) -> ImageToImage:
    """``m`` if it does ``command``'s task (and, for upscale, ``scale`` when given), else a
    :class:`ConfigError` naming both."""
    check_scale(command, scale)
    task = getattr(getattr(m, "config", None), "task", None)
    if not isinstance(m, ImageToImage) or task not in TASKS_OF[command]:
        what = _a(f"{task or getattr(m, 'family', '?')} model")
        run = how_to_run(m, name)  # the command a model of another task is for
        raise ConfigError(
            f"{name} is {what}; `pixelforge {command}` needs {_a(' or '.join(TASKS_OF[command]))} "
            "model (see `pixelforge models list`)" + (f"; run this one with {run}." if run else ".")
        )
    if command == "upscale" and scale is not None and m.scale != scale:
        raise ConfigError(
            f"{name} upscales x{m.scale}, not x{scale}: give --scale {m.scale}, or a x{scale} "
            f"model with --model (shipped: sr-x2, sr-x4)."
        )
    return m


def check_scale(command: str, scale: Any) -> None:
    """An upscale factor must be a whole number of at least 2 (None: the model's own); the
    other commands take none."""
    if scale is None:
        return
    if command != "upscale":
        raise ConfigError(f"{command} takes no scale; only upscale enlarges.")
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 2:
        raise ConfigError(f"--scale must be a whole number of at least 2, got {scale!r}.")


def uncrop_canvas(
    image: torch.Tensor, extend: float, side: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """``image`` placed on a larger canvas: ``extend`` x its size added on ``side`` ("all": on
    every side, half each). Returns ``(canvas, mask)`` with mask 1 on the new area."""
    if not 0.0 < extend <= 2.0:
        raise ConfigError(f"--extend must be above 0 and at most 2 (x the size), got {extend}.")
    c, h, w = image.shape
    dh, dw = round(h * extend), round(w * extend)
    top = {"all": dh // 2, "top": dh, "bottom": 0, "left": 0, "right": 0}
    left = {"all": dw // 2, "left": dw, "right": 0, "top": 0, "bottom": 0}
    if side not in top:
        raise ConfigError(f"--side must be all, left, right, top or bottom, got '{side}'.")
    H = h + (dh if side in ("all", "top", "bottom") else 0)
    W = w + (dw if side in ("all", "left", "right") else 0)
    if (h, w) == (H, W):  # a few pixels' image: the fraction rounds to no pixel
        grown = max(h, w) if side == "all" else (h if side in ("top", "bottom") else w)
        raise ConfigError(
            f"--extend {extend} of a {w}x{h} image rounds to no pixel (--side {side}); give "
            f"at least --extend {1 / grown:.3g}."
        )
    check_output_size(H, W)  # before the canvas and the whole-image fill are made
    canvas = torch.full((c, H, W), 0.5)
    mask = torch.ones(1, H, W)
    t, lft = top[side], left[side]
    canvas[:, t : t + h, lft : lft + w] = image
    mask[:, t : t + h, lft : lft + w] = 0
    return canvas, mask


def restore_image(
    command: str,
    image: torch.Tensor,
    *,
    model: torch.nn.Module | str | Path | None = None,
    scale: int | None = None,
    mask: torch.Tensor | None = None,
    extend: float = 0.5,
    side: str = "all",
    tile: int | None = None,
    device: Any = "cpu",
    ensemble: int = 1,
    orientation: int = 1,
    seed: int | None = None,
    sampler: str | None = None,
    steps: int | None = None,
) -> torch.Tensor:
    """Run ``command`` (upscale, denoise, restore-jpeg, colorize, inpaint, uncrop) on one image
    (C x H x W in [0, 1]); returns the result in [0, 1]. ``model``: a loaded model, a MODEL spec
    or None for the shipped default; ``mask`` (1 x H x W, 1 = fill) for inpaint; ``ensemble``
    (1, 2, 4 or 8): average over that many flipped and transposed copies (8x the time at 8);
    ``orientation``: the EXIF orientation the image was read with (``apply_model``: a JPEG model
    runs on the pixels as stored, where the file's blocks are); ``seed``, ``sampler`` and
    ``steps``: how a palette (diffusion) model samples (None: its own). A grey image (one
    channel, or three equal ones) comes back grey, as one channel, from every command but
    colorize. An image with alpha (2 or 4 channels) keeps it, enlarged by the model for upscale
    (``split_alpha``), except in inpaint and uncrop, which composite it over white."""
    if command not in TASKS_OF:
        raise ConfigError(f"unknown command {command!r}; use one of {', '.join(TASKS_OF)}.")
    tile = tile_for(command, tile)
    device = as_device(device)
    m = (
        load_for(command, model, scale=scale, device=device)
        if model is None or isinstance(model, str | Path)
        else check_task(command, model, "the given model", scale=scale)  # a loaded model
    )
    if getattr(m.config, "task", None) == "multi":  # a multi-task palette model: say which
        m.set_task_for(command)  # type: ignore[operator]
    if command == "inpaint" and mask is None:
        raise ConfigError("inpaint needs --mask MASK.png (white = area to fill).")
    if command != "inpaint" and mask is not None:
        raise ConfigError(f"{command} takes no --mask.")
    image, alpha = split_alpha(image, keep=command not in FLATTENS_ALPHA)
    if command == "uncrop":
        image, mask = uncrop_canvas(image, extend, side)
    grey = image.shape[0] == 1 or (
        image.shape[0] == 3 and torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])
    )
    if m.in_channels == 1 and m.color_space == "rgb" and image.shape[0] == 3:
        if not grey:
            raise ConfigError(
                "this model works on grey images, but the image has colour; convert it to grey "
                "first, or use a colour model."
            )
        image = image[:1]
    with sampling(m, seed=seed, sampler=sampler, steps=steps):
        out = apply_model(
            m, image, mask=mask, tile=tile, device=device, ensemble=ensemble,
            orientation=orientation,
        )  # fmt: skip
    if grey and command != "colorize" and out.shape[0] == 3:
        # a colour model sees a grey photo as three equal channels and may tint it a little:
        # grey in, grey out (the mean of its three estimates of the one grey value)
        out = out.mean(0, keepdim=True)
    if alpha is None:
        return out
    if m.scale != 1:  # the alpha matte is enlarged by the model too, as a grey image
        alpha = apply_model(m, alpha, tile=tile, device=device, ensemble=ensemble).mean(
            0, keepdim=True
        )
    return torch.cat([out, alpha.to(out)], dim=0)


def sampling(m: ImageToImage, **options: Any) -> AbstractContextManager[None]:
    """The block in which a palette (diffusion) model ``m`` samples with ``options`` (seed,
    sampler, steps; None: the model's own); any other model refuses them."""
    given = {k: v for k, v in options.items() if v is not None}
    if not given:
        return nullcontext()
    from pixelforge.models.palette import PaletteModel

    if not isinstance(m, PaletteModel):
        flags, one = ", ".join(f"--{k}" for k in given), len(given) == 1
        raise ConfigError(
            f"a {getattr(m, 'family', '?')} model does not sample: {flags} "
            f"{'is' if one else 'are'} for palette (diffusion) models; leave "
            f"{'it' if one else 'them'} out."
        )
    return m.sampling(**given)


#: commands that fill or extend the image: transparent pixels are composited over white first
#: (the reader's rule), as there is no alpha to give the new pixels
FLATTENS_ALPHA = ("inpaint", "uncrop")


def input_mode(command: str) -> str:
    """The mode ``command`` reads its image in: RGB for those in :data:`FLATTENS_ALPHA` (the
    reader composites transparency over white, in 8 bits), else RGBA (the reader drops an
    opaque image's alpha)."""
    return "RGB" if command in FLATTENS_ALPHA else "RGBA"


def split_alpha(image: torch.Tensor, *, keep: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``image`` (C x H x W; C = 2 or 4 with alpha) -> (its colour, its alpha or None).

    An opaque image has no alpha to keep (None). With ``keep``, the colour under fully
    transparent pixels, which files store as anything (often black), is replaced by a smooth
    extension of the visible pixels (``masks.smooth_fill``), so the model sees no false edge at
    the outline and leaves no dark or white fringe there; otherwise the image is composited over
    white, as the reader drops alpha."""
    if image.shape[0] not in (2, 4):
        return image, None
    colour, alpha = image[:-1], image[-1:]
    if bool((alpha >= 1).all()):
        return colour, None
    if not keep:
        return colour * alpha + (1 - alpha), None
    hidden = (alpha <= 0).to(colour.dtype)
    if bool(hidden.any()) and not bool(hidden.all()):
        colour = smooth_fill(colour[None], hidden[None])[0]
    return colour, alpha


def mask_files(
    images: list[Path], source: str | Path, mask: str | Path | None
) -> list[Path | None]:
    """The mask file of each image: none without ``mask``; one mask file for every image; or,
    when ``mask`` is a folder (and ``source`` is one), the mask at the image's path under
    ``source``, whatever its suffix (None when there is none: that image is reported by name)."""
    if mask is None:
        return [None] * len(images)
    folder = Path(mask)
    if not folder.is_dir():
        if not folder.exists():
            raise ConfigError(
                f"--mask {folder} does not exist; give a mask image or a folder of them."
            )
        return [folder] * len(images)
    root = Path(source)
    if not root.is_dir():
        raise ConfigError(
            f"--mask {folder} is a folder, which goes with a folder of images; for one image, "
            "give its mask file."
        )
    by_name: dict[Path, list[Path]] = {}
    for f in list_images(folder):
        by_name.setdefault(f.relative_to(folder).with_suffix(""), []).append(f)
    found: list[Path | None] = []
    for image in images:
        named = by_name.get(image.relative_to(root).with_suffix(""), [])
        if len(named) > 1:
            raise ConfigError(
                f"--mask {folder} holds {len(named)} masks for {image.relative_to(root)} "
                f"({', '.join(f.name for f in named)}); keep one."
            )
        found.append(named[0] if named else None)
    if not any(found):
        raise ConfigError(
            f"--mask {folder} holds no mask named like the images in {root} (a mask has its "
            "image's name and any image suffix: photo.jpg -> photo.png)."
        )
    return found


def run_command(
    command: str,
    source: str | Path,
    out: str | Path,
    *,
    model: str | None = None,
    scale: int | None = None,
    mask: str | Path | None = None,
    extend: float = 0.5,
    side: str = "all",
    tile: int | None = None,
    device: Any = "cpu",
    ensemble: int = 1,
    on_image: Callable[[Path, int, int], None] | None = None,
    seed: int | None = None,
    sampler: str | None = None,
    steps: int | None = None,
) -> list[Path]:
    """Run ``command`` on an image or a folder of images; returns the files written.
    ``on_image(path, index, count)`` is called as each image starts (a progress bar).

    In a folder, an image that cannot be read or restored (a truncated file, an output over the
    size cap) does not stop the others: they are all written, and then a
    :class:`PixelforgeError` names every image that failed and why."""
    tile = tile_for(command, tile)
    m = load_for(command, model, scale=scale, device=device)
    name = str(model or default_model(command, scale))
    with sampling(m, seed=seed, sampler=sampler, steps=steps):  # checked before any work
        # how a palette model samples, for each image's provenance
        palette = m.family == "palette"
        sampled = {k: getattr(m, k) for k in ("seed", "sampler", "steps")} if palette else {}
    mask_folder = Path(mask) if mask is not None and Path(mask).is_dir() else None
    if mask_folder is not None and mask_folder.resolve() == Path(source).resolve():
        raise ConfigError(
            f"{source} holds no images outside the mask folder {mask}; keep the masks in a "
            "folder of their own, named as the images."
        )
    # masks kept in a sub-folder of the images are not images to fill
    pairs = input_output_pairs(source, out, skip=() if mask_folder is None else (mask_folder,))
    masks = mask_files([src for src, _ in pairs], source, mask)
    mode = input_mode(command)
    written: list[Path] = []
    failed: list[tuple[Path, str]] = []
    read_masks: dict[Path, torch.Tensor] = {}
    for index, ((src, dst), mask_file) in enumerate(zip(pairs, masks, strict=True)):
        if on_image is not None:
            on_image(src, index, len(pairs))
        if mask is not None and mask_file is None:
            failed.append((src, f"no mask for it in {mask} (a mask has its image's name)"))
            continue
        try:
            hole = None
            if mask_file is not None:
                if mask_file not in read_masks:
                    read_masks[mask_file] = read_mask_tensor(mask_file)
                hole = read_masks[mask_file]
            result = restore_image(
                command, read_as_tensor(src, mode=mode), model=m, mask=hole, extend=extend,
                side=side, tile=tile, device=device, ensemble=ensemble,
                orientation=exif_orientation(src), seed=seed, sampler=sampler, steps=steps,
            )  # fmt: skip
        except PixelforgeError as exc:
            if not Path(source).is_dir():
                raise
            failed.append((src, str(exc)))
            continue
        meta = provenance(
            m, command_line(f"pixelforge {command}"), task=command, model=name,
            source=src.name, tile=tile, ensemble=ensemble,
            **({"scale": m.scale} if command == "upscale" else {}),  # a --model's own, unasked
            **({"mask": mask_file.name} if mask_file is not None else {}),
            **({"extend": extend, "side": side} if command == "uncrop" else {}),
            **sampled,
        )  # fmt: skip
        write_png(dst, result, meta)
        written.append(dst)
    if failed:
        raise folder_failures(failed, len(pairs), out)
    return written
