"""Deep image prior: restore ONE image with a randomly initialised network and no training data.

Ulyanov, Vedaldi and Lempitsky, "Deep Image Prior" (CVPR 2018 / IJCV 2020). A convolutional
hourglass network ``f`` maps a fixed random code ``z`` to an image; its weights are fitted to the
degraded image alone, and the structure of the network fits natural images long before it fits
noise, so stopping early gives a restored image:

* ``denoise``: minimise ``||f(z) - x_noisy||^2`` for a fixed number of iterations; the result is
  an exponential moving average of the outputs (weight 0.99), as in the authors' code.
* ``inpaint``: minimise the squared error on the known pixels only (mask 1 = hole).
* ``upscale``: minimise ``||down(f(z)) - x_lowres||^2`` where ``down`` is an antialiased bicubic
  downscale by ``scale``; the output is ``scale`` times the input's size.

What follows the paper's code (``models/skip.py`` and the notebooks): the "skip" hourglass
(downsampling by stride-2 convolutions, bilinear upsampling, LeakyReLU(0.2), batch norm,
reflection padding, 1 x 1 skip branches, a sigmoid output), the 32-channel code ``z`` drawn
from ``U(0, 0.1)``, fresh Gaussian noise of std 1/30 added to ``z`` at every iteration, and Adam
with learning rate 0.01. What differs: the widths default to 16-128 channels instead of 128 at
every scale so that one iteration on a 481 x 321 image takes well under a second on a laptop
CPU; the paper's upscaling uses a Lanczos downsampler (here: torch's antialiased bicubic); the
denoising notebook's "backtracking" on a loss jump is not done. Image sides need not be
multiples of 32: the network works on a padded canvas and the result is cropped from its centre.

Cost: one iteration on a 481 x 321 CBSD68 image (canvas 512 x 352) took 0.5-0.6 s with one torch
thread on an otherwise idle core of the 2-core development machine (0.9-1.05 s when it was shared
with ~6 other busy processes), so the default 2000 denoising iterations take ~20 minutes there.
Time and memory grow with the pixel count (for upscaling, that of the output): on that machine a
1024 x 1024 image took ~5 s per iteration and 3 GB, a 2000 x 1500 one 34 s and 7.4 GB (about
2.4 kB per canvas pixel), so the network's canvas is capped at :data:`MAX_PIXELS`. A first
Ctrl-C (SIGINT) stops after the current iteration and returns the result so far.
"""

from __future__ import annotations

import math
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pixelforge.devices import as_device
from pixelforge.errors import ConfigError
from pixelforge.restoration.masks import check_mask

Task = Literal["denoise", "inpaint", "upscale"]
TASKS: tuple[str, ...] = get_args(Task)

#: Iterations used when none are given; the paper runs ~1800-3000 (denoise), 2000 (4x
#: upscale) and 5000+ (inpaint). One iteration is one forward and backward pass.
DEFAULT_ITERATIONS: dict[str, int] = {"denoise": 2000, "inpaint": 5000, "upscale": 2000}

#: The largest canvas (output pixels, rounded up to the network's size multiple) fitted: 2048 x
#: 2048, about 10 GB of memory with the default network and hours per 1000 iterations on a CPU.
MAX_PIXELS = 2048 * 2048
#: Memory per canvas pixel with the default network (measured: 3 GB at 1024 x 1024).
BYTES_PER_PIXEL = 2400


@dataclass(frozen=True)
class DIPNetConfig:
    """The hourglass ("skip") network and its optimisation."""

    input_channels: int = 32
    """Channels of the fixed random code z."""
    down: tuple[int, ...] = (16, 32, 64, 64, 128)
    """Encoder widths, one per scale (each scale halves the resolution)."""
    up: tuple[int, ...] = (16, 32, 64, 64, 128)
    """Decoder widths, one per scale (same length as ``down``)."""
    skip: tuple[int, ...] = (4, 4, 4, 4, 4)
    """Channels of the 1 x 1 skip branch at each scale (0: no skip connection there)."""
    input_scale: float = 0.1
    """z is drawn from U(0, input_scale)."""
    reg_noise_std: float = 1.0 / 30.0
    """Std of the Gaussian noise added to z at every iteration (0: none)."""
    lr: float = 0.01
    """Adam learning rate."""
    ema: float = 0.99
    """Weight of the moving average of outputs (used for ``denoise`` unless disabled)."""

    def __post_init__(self) -> None:
        if not (len(self.down) == len(self.up) == len(self.skip) >= 1):
            raise ConfigError(
                f"down, up and skip need one width per scale and the same length; got "
                f"{len(self.down)}, {len(self.up)} and {len(self.skip)}."
            )
        if min(self.down + self.up) < 1 or min(self.skip) < 0 or self.input_channels < 1:
            raise ConfigError("widths must be >= 1 (skip widths >= 0).")

    @property
    def size_multiple(self) -> int:
        """Canvas sides are multiples of this (each scale halves the resolution)."""
        return 2 ** len(self.down)


def _conv(cin: int, cout: int, k: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, padding_mode="reflect")


def _block(cin: int, cout: int, k: int, stride: int = 1) -> list[nn.Module]:
    return [_conv(cin, cout, k, stride), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, inplace=True)]


class _Level(nn.Module):
    """One scale of the hourglass: ``cat(skip(x), up(deeper(down(x))))`` then the decoder
    convolutions (the paper's ``models/skip.py``, one loop iteration)."""

    def __init__(self, cin: int, config: DIPNetConfig, i: int) -> None:
        super().__init__()
        down, up, skip = config.down, config.up, config.skip
        self.skip = nn.Sequential(*_block(cin, skip[i], 1)) if skip[i] else None
        self.down = nn.Sequential(*_block(cin, down[i], 3, stride=2), *_block(down[i], down[i], 3))
        last = i == len(down) - 1
        self.deeper = None if last else _Level(down[i], config, i + 1)
        deep_out = down[i] if last else up[i + 1]
        self.merge_norm = nn.BatchNorm2d(skip[i] + deep_out)
        self.decode = nn.Sequential(*_block(skip[i] + deep_out, up[i], 3), *_block(up[i], up[i], 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.down(x)
        if self.deeper is not None:
            y = self.deeper(y)
        y = F.interpolate(y, scale_factor=2.0, mode="bilinear", align_corners=False)
        if self.skip is not None:
            y = torch.cat([self.skip(x), y], dim=1)
        return self.decode(self.merge_norm(y))


class SkipNet(nn.Module):
    """The deep-image-prior hourglass: code (N, input_channels, H, W) -> image (N, C, H, W) in
    (0, 1); H and W must be multiples of ``config.size_multiple``."""

    def __init__(self, config: DIPNetConfig, out_channels: int) -> None:
        super().__init__()
        self.config = config
        self.body = _Level(config.input_channels, config, 0)
        self.head = nn.Conv2d(config.up[0], out_channels, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.head(self.body(z)))


@dataclass
class DIPResult:
    """What :func:`deep_image_prior` returns."""

    image: np.ndarray
    """H x W x C float32 in [0, 1] (``scale`` times the input's size for ``upscale``)."""
    losses: list[float] = field(default_factory=list)
    """The training loss at every iteration."""
    seconds: float = 0.0
    """Wall time of the optimisation."""
    interrupted: bool = False
    """Stopped by Ctrl-C before the iterations asked for: ``image`` is the result so far."""

    @property
    def seconds_per_iteration(self) -> float:
        return self.seconds / max(1, len(self.losses))

    def to_uint8(self) -> np.ndarray:
        return np.rint(self.image * 255.0).astype(np.uint8)


Callback = Callable[[int, float], None]
"""Called after every iteration with (iterations done, loss)."""


def deep_image_prior(
    image: np.ndarray,
    task: str,
    *,
    mask: np.ndarray | None = None,
    scale: int = 4,
    iterations: int | None = None,
    seed: int = 0,
    device: str | torch.device = "auto",
    config: DIPNetConfig | None = None,
    average: bool | None = None,
    callback: Callback | None = None,
    max_pixels: int | None = None,
) -> DIPResult:
    """Denoise, inpaint or upscale ``image`` with a deep image prior.

    ``image`` is H x W x C (or H x W) uint8, or float in [0, 1]. ``mask`` (``inpaint`` only) is
    H x W, nonzero = hole to fill. ``scale`` (``upscale`` only) is an integer >= 2. Without
    ``iterations`` the task's :data:`DEFAULT_ITERATIONS` are run. ``device``: auto, cpu, cuda
    or mps. ``average`` returns the moving average of outputs instead of the last output
    (default: on for ``denoise`` only). ``callback(step, loss)`` is called after every
    iteration. The same ``seed`` on the same device and torch thread count gives the same
    result; the global torch RNG is left untouched. A canvas over ``max_pixels`` (default
    :data:`MAX_PIXELS`) is refused before any work. In the main thread, a first Ctrl-C stops
    after the current iteration and returns the result so far (``interrupted``; the same seed
    and that many iterations give it again); a second one interrupts at once.
    """
    target, known = _check_inputs(image, task, mask, scale, iterations)
    config = config or DIPNetConfig()
    iterations = DEFAULT_ITERATIONS[task] if iterations is None else iterations
    average = (task == "denoise") if average is None else average
    h, w, c = target.shape
    out_h, out_w = (h * scale, w * scale) if task == "upscale" else (h, w)
    canvas = tuple(_canvas_side(n, config.size_multiple) for n in (out_h, out_w))
    _check_size(out_w, out_h, canvas[0] * canvas[1], task, max_pixels or MAX_PIXELS)
    device = as_device(device)
    top, left = (canvas[0] - out_h) // 2, (canvas[1] - out_w) // 2

    with torch.random.fork_rng(devices=[]):  # weights and z from the seed, global RNG untouched
        torch.manual_seed(seed)
        net = SkipNet(config, c)
        z = torch.rand(1, config.input_channels, *canvas) * config.input_scale
    net, z = net.to(device).train(), z.to(device)
    noise_gen = torch.Generator(device=device).manual_seed(seed + 1)
    y = torch.from_numpy(target).permute(2, 0, 1)[None].to(device)
    weight = None if known is None else torch.from_numpy(known)[None, None].to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)

    def render(code: torch.Tensor) -> torch.Tensor:
        return net(code)[..., top : top + out_h, left : left + out_w]

    losses: list[float] = []
    avg: torch.Tensor | None = None
    start = time.perf_counter()
    with _stop_on_interrupt() as stop_asked:
        for step in range(1, iterations + 1):
            code = z
            if config.reg_noise_std > 0:
                noise = torch.randn(z.shape, generator=noise_gen, device=device)
                code = z + config.reg_noise_std * noise
            out = render(code)
            if task == "upscale":
                pred = F.interpolate(out, size=(h, w), mode="bicubic", antialias=True)
                loss = F.mse_loss(pred, y)
            elif weight is not None:  # inpaint: the mean squared error over the known pixels
                loss = ((out - y).square() * weight).sum() / (weight.sum() * c)
            else:
                loss = F.mse_loss(out, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if average:
                with torch.no_grad():
                    avg = out.detach() if avg is None else avg.lerp_(out.detach(), 1 - config.ema)
            value = float(loss.item())
            if not math.isfinite(value):
                raise ConfigError(f"the loss became {value} at iteration {step}; lower the lr.")
            losses.append(value)
            if callback is not None:
                callback(step, value)
            if stop_asked():
                break
    if avg is None:
        with torch.no_grad():
            avg = render(z)
    seconds = time.perf_counter() - start
    result = avg[0].permute(1, 2, 0).clamp(0, 1).float().cpu().numpy()
    return DIPResult(
        image=np.ascontiguousarray(result),
        losses=losses,
        seconds=seconds,
        interrupted=len(losses) < iterations,
    )


@contextmanager
def _stop_on_interrupt() -> Iterator[Callable[[], bool]]:
    """Within the block, a first Ctrl-C (SIGINT) only asks to stop (the yielded function says
    whether it was asked), so the loop ends after a whole iteration; a second one interrupts at
    once. Outside the main thread, where no handler can be set, Ctrl-C behaves as usual."""
    asked = False

    def handler(signum: int, frame: Any) -> None:
        nonlocal asked
        if asked:
            raise KeyboardInterrupt
        asked = True

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread
        yield lambda: False
        return
    try:
        yield lambda: asked
    finally:
        signal.signal(signal.SIGINT, previous)


def _check_size(width: int, height: int, canvas: int, task: str, max_pixels: int) -> None:
    """Refuse a canvas over ``max_pixels`` before any work: the network fits it whole."""
    if canvas <= max_pixels:
        return
    what = "output" if task == "upscale" else "image"
    gb = canvas * BYTES_PER_PIXEL / 1e9
    raise ConfigError(
        f"the {what} is {width}x{height}: deep image prior fits a network to all of it at once, "
        f"which would need about {gb:.1f} GB of memory and take hours per 1000 iterations on a "
        f"CPU; the limit is {max_pixels:,} pixels. Crop or downscale the image"
        + (", or use a smaller --scale." if task == "upscale" else ".")
    )


def dip_image(
    image: torch.Tensor,
    task: str,
    *,
    mask: np.ndarray | torch.Tensor | None = None,
    scale: int = 4,
    **options: Any,
) -> tuple[torch.Tensor, DIPResult]:
    """:func:`deep_image_prior` on an image as the restoration commands take one: ``image`` is
    C x H x W float in [0, 1] with 1 to 4 channels (grey, grey + alpha, RGB, RGBA); ``mask`` is
    H x W or 1 x H x W, above 0.5 (grey 127) = hole. Returns the result, C' x H' x W' in
    [0, 1], and the optimisation's :class:`DIPResult`.

    A grey image (one channel, or three equal ones) is fitted as one channel and comes back
    grey; alpha is kept (enlarged by bicubic interpolation for ``upscale``), except by inpaint,
    which composites the image over white (``tasks.restore.split_alpha``, as the inpaint
    command); inpaint changes the hole only. ``options`` go to :func:`deep_image_prior`."""
    from pixelforge.tasks.restore import split_alpha

    colour, alpha = split_alpha(image.float(), keep=task != "inpaint")
    if colour.shape[0] == 3 and all(torch.equal(colour[0], colour[i]) for i in (1, 2)):
        colour = colour[:1]  # grey: fitted as one channel
    hole = None if mask is None else (torch.as_tensor(mask).float() > 0.5).numpy()
    result = deep_image_prior(
        colour.permute(1, 2, 0).numpy(), task, mask=hole, scale=scale, **options
    )
    out = torch.from_numpy(result.image).permute(2, 0, 1)
    if hole is not None:  # the known pixels stay exactly as they were
        known = ~torch.from_numpy(check_mask(hole, *colour.shape[1:]))
        out = torch.where(known, colour, out)
    if alpha is not None:
        if alpha.shape[1:] != out.shape[1:]:
            alpha = F.interpolate(alpha[None], size=out.shape[1:], mode="bicubic")[0]
        out = torch.cat([out, alpha.clamp(0, 1)])
    return out, result


def _canvas_side(n: int, multiple: int) -> int:
    # At least two cells at the coarsest scale: reflection padding and batch norm need > 1 pixel.
    return max(-(-n // multiple) * multiple, 2 * multiple)


def _as_float_image(image: np.ndarray) -> np.ndarray:
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 3) or 0 in array.shape:
        raise ConfigError(
            f"the image must be H x W (grey) or H x W x 3 (RGB), got shape {array.shape}."
        )
    if array.dtype == np.uint8:
        return (array.astype(np.float32) / 255.0).copy()
    if array.dtype.kind != "f" or not np.isfinite(array).all():
        raise ConfigError("the image must be uint8, or float in [0, 1] with no NaN or inf.")
    if array.min() < 0.0 or array.max() > 1.0:
        raise ConfigError("a float image must have values in [0, 1]; scale it first.")
    return np.ascontiguousarray(array, dtype=np.float32)


def read_mask(path: str | os.PathLike[str], height: int, width: int) -> np.ndarray:
    """Read an inpainting mask with :func:`pixelforge.io.images.read_mask`: white = hole (any
    grey > 127 counts as hole; transparent pixels are known). Returns bool H x W; see
    :func:`check_mask`."""
    from pixelforge.io.images import read_mask as read_mask_file

    return check_mask(read_mask_file(path) > 127, height, width, name=f"mask {path}")


def _check_inputs(
    image: np.ndarray, task: str, mask: np.ndarray | None, scale: int, iterations: int | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """(the image as float32 H x W x C, the known-pixel weights H x W or None)."""
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}; use one of {', '.join(TASKS)}.")
    if iterations is not None and iterations < 1:
        raise ConfigError(f"iterations must be at least 1, got {iterations}.")
    target = _as_float_image(image)
    known = None
    if task == "inpaint":
        if mask is None:
            raise ConfigError("inpaint needs a mask (--mask MASK.png): white = hole to fill.")
        hole = check_mask(mask, *target.shape[:2])
        known = (~hole).astype(np.float32)
    elif mask is not None:
        raise ConfigError(f"a mask goes with --task inpaint only, not {task}; leave it out.")
    if task == "upscale" and (isinstance(scale, bool) or not isinstance(scale, int) or scale < 2):
        raise ConfigError(f"upscale needs an integer scale >= 2 (--scale), got {scale}.")
    return target, known


__all__ = [
    "DEFAULT_ITERATIONS",
    "TASKS",
    "DIPNetConfig",
    "DIPResult",
    "SkipNet",
    "deep_image_prior",
    "dip_image",
    "read_mask",
]
