"""Run an image-to-image model on one image of any size: colour space, padding, tiles, mask.

:func:`apply_model` is what every "image in, image out" command calls (upscale, denoise,
restore-jpeg, colorize, inpaint, uncrop, translate, remove-bg). Models with instance
normalisation see statistics of the whole image even when it is processed in tiles.
``ensemble`` averages the outputs for flipped and transposed copies of the input (the x8
"self-ensemble" of Lim et al. 2017, EDSR+), trading time for a little accuracy. A model whose
input has a block grid (``input_grid``: a JPEG's 8x8 and 16x16 blocks from the image's corner) gets
the image padded to that grid before it is flipped, and tiles that start on it, so no copy or tile
moves the blocks from where the model learned them. The blocks start at the corner of the pixels
as the file stores them, which an EXIF orientation turns to another corner: given the
``orientation`` the reader applied, such a model runs on the stored pixels and its output is
turned back.
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from pixelforge.errors import ConfigError, PixelforgeError
from pixelforge.io.images import image_array, list_images, mask_array, read_image, read_mask
from pixelforge.models.image2image import ImageToImage
from pixelforge.restoration.color import lab_to_rgb, rgb_to_lab
from pixelforge.restoration.masks import check_mask
from pixelforge.tasks.tiling import check_output_size, pad_to_multiple, run_tiled

ENSEMBLES = (1, 2, 4, 8)


def dihedral(x: torch.Tensor, k: int, *, inverse: bool = False) -> torch.Tensor:
    """The ``k``-th of the 8 flips and transposes of ``x``'s last two axes (bit 0: left-right
    flip, bit 1: up-down flip, bit 2: transpose; 0 is the identity), or its inverse."""
    if inverse and k & 4:
        x = x.transpose(-1, -2)
    if k & 1:
        x = x.flip(-1)
    if k & 2:
        x = x.flip(-2)
    if not inverse and k & 4:
        x = x.transpose(-1, -2)
    return x


# For each EXIF orientation, the dihedral copy k with ``shown = dihedral(stored, k)``, as
# ``PIL.ImageOps.exif_transpose`` (the reader) turns the stored pixels (2: mirrored left-right;
# 3: turned 180 degrees; 6: turned 90 degrees clockwise; 8: counter-clockwise; 5 and 7: mirrored
# across a diagonal).
EXIF_DIHEDRAL = {1: 0, 2: 1, 3: 3, 4: 2, 5: 4, 6: 6, 7: 7, 8: 5}


def _model_device(model: torch.nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def check_tile(tile: int) -> None:
    """Tiles smaller than 16 pixels would run in tiles of the model's size multiple."""
    if tile < 16:
        raise ConfigError(f"--tile must be at least 16 pixels, got {tile}.")


@torch.no_grad()
def apply_model(
    model: ImageToImage,
    image: torch.Tensor,
    *,
    mask: torch.Tensor | None = None,
    tile: int = 512,
    overlap: int | None = None,
    device: torch.device | str | None = None,
    ensemble: int = 1,
    orientation: int = 1,
) -> torch.Tensor:
    """``image`` (C x H x W in [0, 1]) -> the model's output (C' x H*scale x W*scale in [0, 1]).

    Colour models get RGB (grey input is replicated); grey models get grey. Colorization models
    (``color_space == "lab"``) get the L channel and their a/b output is joined with it. Masked
    models get ``mask`` (1 x H x W, 1 = fill); the known pixels are kept from the input.
    ``overlap`` defaults to the model's ``tile_overlap``. ``ensemble`` (1, 2, 4 or 8) averages
    the outputs of that many :func:`dihedral` copies of the input, each a full (tiled) pass.
    ``orientation``: the EXIF orientation (1-8) the reader applied to ``image``
    (``io.images.exif_orientation``; 1: none). A model with a block grid (``input_grid`` > 1)
    runs on the pixels as stored, where the file's blocks start; other models ignore it.
    """
    if ensemble not in ENSEMBLES:
        raise PixelforgeError(
            f"--ensemble must be 1, 2, 4 or 8 (copies of the image flipped and transposed), "
            f"got {ensemble}."
        )
    if orientation not in EXIF_DIHEDRAL:
        raise ValueError(f"orientation must be an EXIF orientation, 1 to 8; got {orientation}")
    if model.input_grid > 1 and orientation != 1:
        k = EXIF_DIHEDRAL[orientation]
        stored = dihedral(image, k, inverse=True)
        stored_mask = None if mask is None else dihedral(mask, k, inverse=True)
        out = apply_model(
            model, stored, mask=stored_mask, tile=tile, overlap=overlap, device=device,
            ensemble=ensemble,
        )  # fmt: skip
        return dihedral(out, k)
    overlap = model.tile_overlap if overlap is None else overlap
    if image.ndim != 3:
        raise ValueError(
            f"an image must be C x H x W, got {tuple(image.shape)}"
            + ("; for a batch, pass its images one by one" if image.ndim == 4 else "")
        )
    c, h, w = image.shape
    # before any work: an inpainting model's whole-image fill would meet the cap only in the tiles
    check_output_size(h, w, model.scale)
    if min(h, w) < model.min_side:
        raise PixelforgeError(
            f"the image is {w}x{h} pixels, too small for a {model.family} model: it needs at "
            f"least {model.min_side} pixels on each side."
        )
    dev = torch.device(device) if device is not None else _model_device(model)
    model = model.to(dev).eval()
    x = image.float()
    if model.color_space == "lab" or model.in_channels == 3:
        x = x.expand(3, h, w) if c == 1 else x[:3]
    elif model.in_channels == 1 and c != 1:
        raise PixelforgeError(
            "this model works on grey images, but the input has colour; convert it to grey "
            "first or use a colour model."
        )
    rgb = x
    # L in [0, 100] -> [-1, 1] for colorization, else RGB or grey [0, 1] -> [-1, 1]
    x = rgb_to_lab(rgb[None])[:, :1] / 50.0 - 1.0 if model.color_space == "lab" else x[None] * 2 - 1
    m = None
    if model.takes_mask:
        if mask is None:
            raise PixelforgeError("this model fills a masked area: give --mask MASK.png.")
        first = mask[:1] if mask.ndim == 3 else mask  # one channel of a grey or RGB mask
        hole = check_mask((first > 0.5).cpu().numpy(), h, w)
        m = torch.from_numpy(hole).float()[None, None]
        x = x * (1 - m)  # the hole's pixels are unknown to the model

    def fn(xt: torch.Tensor, mt: torch.Tensor | None) -> torch.Tensor:
        return model.translate_prepared(xt.to(dev), None if mt is None else mt.to(dev))

    # known pixels are put back at the end (below), so tiles without a hole need not run;
    # with instance norm every tile counts towards the whole image's statistics
    holes_only = (
        m is not None
        and model.scale == 1
        and model.out_channels == rgb.shape[0]
        and not model.uses_instance_norm
    )

    multiple = math.lcm(model.size_multiple, model.input_grid)  # tiles start on the grid

    def one_pass(xk: torch.Tensor, mk: torch.Tensor | None) -> torch.Tensor:
        # whole-image work (an inpainting model's fill of the hole) once, before the tiles
        xk = model.prepare(xk.to(dev), None if mk is None else mk.to(dev)).to(xk.device)

        def run() -> torch.Tensor:
            return run_tiled(
                fn, xk, mask=mk, scale=model.scale, multiple=multiple, tile=tile,
                overlap=overlap, holes_only=holes_only,
            )  # fmt: skip

        context: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
        if model.uses_instance_norm and max(h, w) > tile:
            from pixelforge.nn.instance_stats import frozen_instance_norm

            context = frozen_instance_norm(model, run)
        with context:
            return run()

    # sides that are multiples of the grid: a flip maps its blocks onto blocks (a no-op for one
    # pass, which run_tiled pads the same way, and for models without a grid)
    xe = pad_to_multiple(x, model.input_grid)
    me = None if m is None else pad_to_multiple(m, model.input_grid)
    y = one_pass(xe, me)
    for k in range(1, ensemble):
        mk = None if me is None else dihedral(me, k)
        y = y + dihedral(one_pass(dihedral(xe, k), mk), k, inverse=True)
    y = y[..., : h * model.scale, : w * model.scale] / ensemble
    if model.color_space == "lab":
        lab = torch.cat([rgb_to_lab(rgb[None])[:, :1], y * 110.0], dim=1)
        out = lab_to_rgb(lab)[0]
    else:
        out = ((y[0] + 1) / 2).clamp(0, 1)
    if m is not None and model.scale == 1 and out.shape[0] == rgb.shape[0]:
        out = out * m[0] + rgb * (1 - m[0])
    return out.clamp(0, 1)


def input_output_pairs(
    source: str | Path, out: str | Path, skip: tuple[Path, ...] = ()
) -> list[tuple[Path, Path]]:
    """``(input, output)`` paths for "IMAGE or FOLDER in, file or folder out".

    A file writes ``out`` (``.png`` added when it has no suffix), or into ``out`` when that is a
    folder or ends in ``/``; a folder writes the same relative names under ``out``, as ``.png``
    (:func:`folder_outputs`), leaving out images under ``out`` or the ``skip`` folders.
    """
    src, dst = Path(source), out_argument(out)
    if src.is_dir():
        files = folder_images(src, dst, *skip)
        if not files:
            raise PixelforgeError(f"{src} holds no images (PNG, JPEG, WebP, BMP or TIFF).")
        if dst.exists() and not dst.is_dir():
            raise PixelforgeError(f"{src} is a folder, so --out must be a folder; {dst} is a file.")
        return list(zip(files, folder_outputs(files, src, dst), strict=True))
    if not src.exists():
        raise PixelforgeError(f"{src} does not exist; give an image file or a folder of images.")
    return [(src, output_for(src, out))]


def out_argument(out: str | Path) -> Path:
    """``--out`` as a path; an empty one (an unset shell variable) is refused, as ``Path("")``
    would be the working folder."""
    if not str(out).strip():
        raise PixelforgeError("--out is empty; give the .png to write, or a folder.")
    return Path(out)


def output_for(src: Path, out: str | Path) -> Path:
    """Where the result of the one image ``src`` is written: into ``out`` under ``src``'s name
    as ``.png`` when ``out`` is a folder or ends in ``/``, else ``out`` (:func:`png_output`)."""
    dst = out_argument(out)
    if dst.is_dir() or str(out).endswith(("/", os.sep)):
        return writable(dst / f"{src.stem}.png")
    return png_output(dst)


def folder_images(root: Path, out: Path, *skip: Path) -> list[Path]:
    """The images under ``root`` (``io.images.list_images``) to process into the folder
    ``out``, leaving out those under ``out`` (the results of an earlier run, when ``out`` is
    inside ``root``) or under a ``skip`` folder (inpainting masks kept beside the images).
    ``root`` itself is never left out: folder_outputs refuses to overwrite its images."""
    top = Path(root).resolve()
    inside = {p for p in (Path(f).resolve() for f in (out, *skip)) if p != top}
    return [f for f in list_images(root) if inside.isdisjoint(f.resolve().parents)]


def folder_outputs(files: list[Path], root: Path, out: Path) -> list[Path]:
    """Where each of ``files`` (found under ``root``) is written: its path under ``root``, put
    under ``out`` with the suffix ``.png`` (sub-folders are kept). Two images that would write
    one file (``a.jpg`` and ``a.png``; on some systems ``A.png`` and ``a.png``), a result
    that would overwrite an image (``--out`` the input folder itself), or one that cannot be
    written (:func:`writable`), are refused before any work, so that nothing is lost."""
    targets = [out / f.relative_to(root).with_suffix(".png") for f in files]
    inputs = {f.resolve() for f in files}
    seen: dict[str, Path] = {}
    for f, target in zip(files, targets, strict=True):
        if target.resolve() in inputs:
            raise PixelforgeError(
                f"--out {out} would overwrite {target.relative_to(out)}, one of the images in "
                f"{root}; write the results to another folder."
            )
        key = str(target).casefold()
        if key in seen:
            raise PixelforgeError(
                f"{seen[key].relative_to(root)} and {f.relative_to(root)} in {root} would both "
                f"be written to {target}; rename one of them."
            )
        seen[key] = f
    for target in {t.parent: t for t in targets}.values():  # one per folder
        writable(target)
    return targets


def png_output(out: str | Path) -> Path:
    """``out`` as the file one image is written to: ``.png`` is added when it has no suffix, and
    any other suffix is refused. Outputs are PNGs (lossless, with how they were made stored
    inside); a ``.jpg`` name would otherwise hold PNG bytes."""
    dst = out_argument(out)
    if not dst.suffix:
        return writable(dst.with_suffix(".png"))
    if dst.suffix.lower() != ".png":
        raise PixelforgeError(
            f"--out {dst}: images are written as PNG (lossless, with how they were made "
            f"stored inside), so the name must end in .png: use {dst.with_suffix('.png')}."
        )
    return writable(dst)


def writable(target: Path) -> Path:
    """``target`` if a file can be written there, else a :class:`PixelforgeError` before any
    work (a result is written after it): a file stands where a folder on its path must be, or
    the nearest folder that exists cannot be written to."""
    for folder in target.parents:  # the nearest that exists holds the folders still to make
        if not folder.exists():
            continue
        if not folder.is_dir():
            raise PixelforgeError(
                f"--out {target}: {folder} is a file, so no folder can be made there; give "
                "another --out."
            )
        if not os.access(folder, os.W_OK | os.X_OK):
            raise PixelforgeError(
                f"--out {target}: the folder {folder} is not writable; give another --out."
            )
        break
    return target


def folder_failures(failed: list[tuple[Path, str]], total: int, out: str | Path) -> PixelforgeError:
    """The error that ends a folder run in which ``failed`` images (path, reason) of ``total``
    could not be processed, after the others were written to ``out``: one line (the command
    line's rule for errors) that names every one and why."""
    reasons = "; ".join(
        reason if path.name in reason else f"{path.name}: {reason}" for path, reason in failed
    )
    done = total - len(failed)
    where = f"the other {done} are in {out}" if done else "none was written"
    return PixelforgeError(
        f"{len(failed)} of {total} images were skipped ({where}); fix or remove them and run "
        f"again. {reasons}"
    )


def read_as_tensor(path: Path, mode: str = "RGB") -> torch.Tensor:
    """An image through the guarded reader as C x H x W float in [0, 1]."""
    array = read_image(path, mode=mode)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 255


def as_image_tensor(value: Any, *, mode: str = "RGB", mask: bool = False) -> torch.Tensor:
    """An image given to the Python API as C x H x W float in [0, 1], or a mask (``mask``) as
    1 x H x W: a path (read by the guarded reader, in ``mode``), a Pillow image or a numpy array
    (``io.images.image_array``: the reader's rules, EXIF orientation included; a boolean array
    is a black and white one), or a tensor (C x H x W, C = 1-4; a mask also H x W; uint8 is
    scaled by 1/255). Float values are checked and a resize's small overshoot of [0, 1] clamped.
    Anything else is a :class:`ConfigError` that says what to give."""
    name = "mask" if mask else "image"
    if isinstance(value, torch.Tensor):
        check_tensor_shape(value, name)
        if mask and value.ndim == 2:
            value = value[None]
        if value.dtype == torch.uint8:
            return value.float() / 255
        if not value.is_floating_point() and value.dtype != torch.bool:
            raise ConfigError(f"the {name} tensor is {value.dtype}; give float in [0, 1] or uint8.")
        value = value.float()
        if value.numel():
            check_float_range(float(value.min()), float(value.max()), f"the {name} tensor's")
        return value.clamp(0, 1)
    if isinstance(value, str | Path):
        return read_mask_tensor(Path(value)) if mask else read_as_tensor(Path(value), mode=mode)
    if not isinstance(value, np.ndarray | Image.Image):
        raise ConfigError(
            f"the {name} is of type {type(value).__name__}; give a path, a Pillow image, a numpy "
            "array (H x W or H x W x C) or a C x H x W tensor."
        )
    if isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.size:
        # the reader's rule for float arrays clips to [0, 1]: 0-255 values would all be white
        check_float_range(float(value.min()), float(value.max()), f"the {name} array's")
    try:
        array = mask_array(value)[..., None] if mask else image_array(value, mode=mode)
    except (TypeError, ValueError) as exc:  # io.images.to_pil: a shape or dtype it cannot take
        raise ConfigError(f"the {name} array: {exc}.") from None
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).float() / 255


def check_tensor_shape(value: torch.Tensor, name: str) -> None:
    """A :class:`ConfigError` unless ``value`` is C x H x W with C = 1-4 (a mask: or H x W)."""
    shape = tuple(value.shape)
    if value.ndim == 3 and 1 <= shape[0] <= 4 and 0 not in shape:
        return
    if name == "mask" and value.ndim == 2 and 0 not in shape:
        return
    if value.ndim == 3 and 1 <= shape[2] <= 4 and 0 not in shape:
        hint = f"; an H x W x C {name} is x.permute(2, 0, 1)"
    elif value.ndim == 4:
        hint = f"; for a batch, pass its {name}s one by one (x[0], x[1], ...)"
    elif value.ndim == 2:
        hint = f"; a grey {name} is x[None]"
    else:
        hint = ""
    raise ConfigError(
        f"the {name} tensor is {' x '.join(map(str, shape)) or 'a scalar'}; give C x H x W "
        f"(C = 1-4: grey, grey + alpha, RGB, RGBA){hint}."
    )


def check_float_range(low: float, high: float, what: str) -> None:
    """Float pixels must be in [0, 1] (a resize's small overshoot is clamped later); 0-255 and
    [-1, 1] images, NaN and infinities are a :class:`ConfigError`."""
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ConfigError(f"{what} values include NaN or infinity; give floats in [0, 1].")
    if low < -0.5 or high > 1.5:  # 0-255 or [-1, 1]
        raise ConfigError(
            f"{what} values run from {low:g} to {high:g}; give floats in [0, 1] (an 8-bit image "
            "divided by 255, or a [-1, 1] one as (x + 1) / 2)."
        )


def read_mask_tensor(path: Path) -> torch.Tensor:
    """A mask file (white = fill; transparent = keep, ``io.images.read_mask``) as 1 x H x W
    float in [0, 1]."""
    return torch.from_numpy(read_mask(path)).float()[None] / 255
