"""Neural style transfer by optimisation (Gatys, Ecker and Bethge 2016, "Image Style Transfer
Using Convolutional Neural Networks").

The output image itself is optimised (L-BFGS by default, or Adam) to minimise

    content_weight * content + style_weight * style + tv_weight * tv

- ``content``: mean squared difference of VGG19 ``relu4_2`` activations to the content image's,
  divided by the mean square of the content's activations (a relative error, ~1 for an
  unrelated image);
- ``style``: per layer (``relu1_1`` ... ``relu5_1``), the mean squared difference of Gram
  matrices (:func:`pixelforge.losses.perceptual.gram_matrix`) to the style target, divided by
  the mean square of the target Gram; weighted sum over layers, divided by the sum of the layer
  weights. The style target of several style images is the weighted average of their Grams;
- ``tv``: total variation, the mean squared difference of neighbouring pixels (in [0, 1]).

Normalising each term by its target's magnitude is our choice (not the paper's absolute 1/N²M²
weights): the terms stay of order 1 whatever the layer sizes and whether the VGG has ImageNet
weights or the seeded random fallback, so the default weights work for both. The VGG is shared
by the content and style terms; the style Grams are computed once (Grams do not depend on the
image size, so one target serves every scale of a multi-scale run).

Multi-scale (``scales=(0.5, 1.0)``): the image is optimised at half size first, then upsampled
(bilinear) as the start of the next scale, coarse to fine - big structures first, then detail.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F

from pixelforge.errors import ConfigError
from pixelforge.features.vgg import VGG, vgg
from pixelforge.losses.perceptual import gram_matrix

LayerSpec = tuple[str, ...] | Mapping[str, float]

#: progress callback: (step, total steps over all scales, current loss terms)
Callback = Callable[[int, int, dict[str, float]], None]

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYERS = ("relu4_2",)
OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise")
RANGE_WEIGHT = 1e4  # weight of the penalty on pixels outside [0, 1]
MIN_STYLE_SIDE = 128  # smaller style images are upscaled (see prepare_style)
MIN_SIDE = 16  # the shortest side the VGG takes: relu5_1 is after four 2x2 poolings
MAX_STYLE_SIDE = 512  # larger style images are downscaled, unless the content is larger


@dataclass(frozen=True)
class GatysConfig:
    """Options of :func:`style_transfer`.

    The defaults were tuned at 256 px with the seeded random-weight VGG19 (the ImageNet weights
    are not on every machine) on the Set5 butterfly: with ``style_weight=300`` the relative Gram
    error falls from ~0.45-0.5 to ~2e-4 (builtin:mosaic, 100 evaluations) or ~9e-4
    (builtin:strokes, 150) while the content stays clearly recognisable (relative relu4_2 error
    0.13 for mosaic; ~1.0 for the busy strokes style, still a recognisable butterfly) and the
    style's palette and texture are obvious. 1000 over-stylizes at small sizes (content error
    above a noise image's at 40-64 px). ``tv_weight=10`` removes single-pixel noise without
    blurring strokes. L-BFGS at 256 px: ~0.6-0.85 s per evaluation on one CPU thread, so the
    default 200 take ~2-3 minutes. The terms are relative, so the same weights are a sound
    start with the real VGG19 weights too.
    """

    optimizer: str = "lbfgs"  # "lbfgs" (torch.optim.LBFGS, strong Wolfe) or "adam"
    iterations: int = 200  # loss evaluations (forward + backward passes) at each scale
    content_weight: float = 1.0  # weight of the relative content error
    style_weight: float = 300.0  # weight of the relative Gram error
    tv_weight: float = 10.0  # weight of the total variation (smoothness)
    content_layers: LayerSpec = CONTENT_LAYERS  # VGG19 layer names, or {name: weight}
    style_layers: LayerSpec = STYLE_LAYERS  # VGG19 layer names, or {name: weight}
    init: str = "content"  # start from the "content" image or from uniform "noise"
    scales: tuple[float, ...] = (1.0,)  # fractions of `size`, coarse to fine, last one 1.0
    size: int | None = 256  # longest side the content is processed at (None: as it is)
    seed: int = 0  # seed of the noise init (the only randomness)
    lr: float = 0.02  # Adam step size (pixels in [0, 1]); L-BFGS uses a line search
    style_scale: float = 1.0  # resize style images by this factor before taking their Grams

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer must be lbfgs or adam, not '{self.optimizer}'.")
        if self.init not in INITS:
            raise ConfigError(f"init must be content or noise, not '{self.init}'.")
        if self.iterations < 1:
            raise ConfigError(f"iterations must be at least 1, got {self.iterations}.")
        for name in ("content_weight", "style_weight", "tv_weight"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"{name} must be a finite number >= 0, got {value}.")
        if not self.scales or any(not 0 < s <= 1 for s in self.scales):
            raise ConfigError(f"scales must be fractions in (0, 1], got {self.scales}.")
        if list(self.scales) != sorted(self.scales) or self.scales[-1] != 1.0:
            raise ConfigError(
                f"scales go from coarse to fine and end at 1.0 (e.g. 0.5,1.0), got {self.scales}."
            )
        if self.size is not None and self.size < MIN_SIDE:
            raise ConfigError(f"size must be at least {MIN_SIDE} pixels, got {self.size}.")
        if not self.lr > 0 or not self.style_scale > 0:
            raise ConfigError("lr and style_scale must be above 0.")

    @classmethod
    def with_options(cls, base: GatysConfig | None = None, **options: Any) -> GatysConfig:
        """``base`` (default: the defaults) with ``options`` replaced; an unknown option is an
        error naming it."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(
                f"unknown style transfer option(s) {', '.join(unknown)}; known: "
                f"{', '.join(sorted(known))}."
            )
        values = {f.name: getattr(base or cls(), f.name) for f in fields(cls)}
        values.update(options)
        values["scales"] = tuple(float(s) for s in values["scales"])
        return cls(**values)


class StyleResult(NamedTuple):
    """What :func:`style_transfer` returns: ``image, losses = style_transfer(...)``."""

    image: torch.Tensor  # 3 x H x W in [0, 1]
    losses: dict[str, float]  # final unweighted terms (content, style, tv) and weighted total


@dataclass
class _Timing:
    evaluations: int = 0
    seconds: float = 0.0
    per_scale: list[float] = field(default_factory=list)


def _weights(spec: LayerSpec) -> dict[str, float]:
    if isinstance(spec, Mapping):
        return {str(k): float(v) for k, v in spec.items()}
    return dict.fromkeys(spec, 1.0)


def style_vgg(weights: str | None = None, device: torch.device | str = "cpu") -> VGG:
    """The VGG19 the style losses use: torchvision's ImageNet weights when found, else the
    seeded random VGG19 with a :class:`~pixelforge.features.vgg.RandomWeightsWarning`."""
    return vgg("vgg19", weights).to(device)


def as_rgb(image: torch.Tensor) -> torch.Tensor:
    """C x H x W (C = 1, 3 or 4) in [0, 1] -> 3 x H x W float (grey replicated, alpha dropped)."""
    if image.ndim != 3 or image.shape[0] not in (1, 3, 4):
        raise ConfigError(
            f"an image must be C x H x W with 1, 3 or 4 channels, got {tuple(image.shape)}."
        )
    x = image.float()
    return x.expand(3, *x.shape[1:]).contiguous() if x.shape[0] == 1 else x[:3]


def resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """3 x H x W -> 3 x h x w, antialiased bilinear (bicubic when enlarging), clamped to [0, 1]."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    up = size[0] * size[1] > image.shape[-2] * image.shape[-1]
    mode = "bicubic" if up else "bilinear"
    out = F.interpolate(image[None], size=size, mode=mode, align_corners=False, antialias=not up)
    return out[0].clamp(0, 1)


def range_penalty(image: torch.Tensor) -> torch.Tensor:
    """Mean squared excess of pixels outside [0, 1]: the VGG accepts any value, so without this
    an optimised image (or a fast-style network's output) can match the losses with colours
    that clipping for display then changes."""
    return (F.relu(image - 1).pow(2) + F.relu(-image).pow(2)).mean()


def fit_longest(hw: tuple[int, int], longest: int | None) -> tuple[int, int]:
    """(h, w) scaled so the longest side is ``longest`` (None: unchanged)."""
    h, w = hw
    if longest is None:
        return h, w
    k = longest / max(h, w)
    return max(1, round(h * k)), max(1, round(w * k))


def prepare_style(
    style: torch.Tensor, content_hw: tuple[int, int], scale: float = 1.0
) -> torch.Tensor:
    """A style image resized for its Grams.

    Grams do not depend on the image size, but the scale of the style's texture relative to
    VGG's receptive fields does. Our rule: a style image larger than ``max(512, content's
    longest side)`` is shrunk to that (cost), and one whose short side is below
    ``min(128, content's short side)`` is enlarged to it with a warning - relu5_1 works at 1/16
    of the input, so a tiny style would leave it only a few positions. ``scale`` multiplies the
    result (coarser or finer style texture).
    """
    x = as_rgb(style)
    h, w = x.shape[-2:]
    cap = max(MAX_STYLE_SIDE, max(content_hw))
    if max(h, w) > cap:
        h, w = fit_longest((h, w), cap)
    floor = min(MIN_STYLE_SIDE, min(content_hw))
    if min(h, w) < floor:
        k = floor / min(h, w)
        warnings.warn(
            f"the style image is small ({x.shape[-1]}x{x.shape[-2]}): enlarged to a short side "
            f"of {floor} pixels for its style statistics; a larger style image gives finer "
            "texture.",
            UserWarning,
            stacklevel=3,
        )
        h, w = round(h * k), round(w * k)
    if scale != 1.0:
        h, w = max(MIN_SIDE, round(h * scale)), max(MIN_SIDE, round(w * scale))
    return resize(x, (h, w))


class GatysObjective:
    """The loss of one style transfer: ``terms(image)`` -> unweighted content, style, tv and the
    weighted total. Style targets are computed once, at construction."""

    def __init__(
        self,
        network: VGG,
        content: torch.Tensor,
        styles: Sequence[torch.Tensor],
        style_weights: Sequence[float] | None = None,
        config: GatysConfig | None = None,
    ):
        self.config = cfg = config or GatysConfig()
        self.vgg = network.requires_grad_(False).eval()
        self.content_layers = _weights(cfg.content_layers)
        self.style_layers = _weights(cfg.style_layers)
        for what, layers in (("content", self.content_layers), ("style", self.style_layers)):
            unknown = [n for n in layers if n not in network.layer_names]
            if not layers or unknown:
                raise ConfigError(
                    f"{what}_layers: unknown or no VGG19 layer(s) {', '.join(unknown) or '-'}; "
                    f"use names like {', '.join(STYLE_LAYERS)}."
                )
        if not styles:
            raise ConfigError("style transfer needs at least one style image.")
        ws = [1.0] * len(styles) if style_weights is None else [float(w) for w in style_weights]
        if len(ws) != len(styles) or any(w < 0 for w in ws) or sum(ws) <= 0:
            raise ConfigError(
                f"give one style weight >= 0 per style image ({len(styles)}), not all zero; "
                f"got {ws}."
            )
        dev = next(iter(network.buffers())).device
        self.device = dev
        with torch.no_grad():
            grams: dict[str, torch.Tensor] = {}
            for s, w in zip(styles, ws, strict=True):
                act = network.activations(s.to(dev)[None], list(self.style_layers))
                for n, a in act.items():
                    g = gram_matrix(a)[0] * (w / sum(ws))
                    grams[n] = grams[n] + g if n in grams else g
            self.style_grams = grams
            self.style_norm = {n: g.pow(2).mean().clamp_min(1e-12) for n, g in grams.items()}
            self.set_content(content)

    def set_content(self, content: torch.Tensor) -> None:
        """Use ``content`` (3 x H x W) as the content target (e.g. at the next scale)."""
        with torch.no_grad():
            self.content = content.to(self.device)
            act = self.vgg.activations(self.content[None], list(self.content_layers))
            self.content_act = act
            self.content_norm = {n: a.pow(2).mean().clamp_min(1e-12) for n, a in act.items()}

    def terms(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """Unweighted ``content``, ``style``, ``tv`` and the weighted ``total`` for 3 x H x W."""
        cfg = self.config
        x = image[None] if image.ndim == 3 else image
        act = self.vgg.activations(x, list({**self.content_layers, **self.style_layers}))
        content = x.new_zeros(())
        for n, w in self.content_layers.items():
            err = (act[n] - self.content_act[n]).pow(2).mean() / self.content_norm[n]
            content = content + w * err
        content = content / max(sum(self.content_layers.values()), 1e-12)
        style = x.new_zeros(())
        for n, w in self.style_layers.items():
            err = (gram_matrix(act[n])[0] - self.style_grams[n]).pow(2).mean() / self.style_norm[n]
            style = style + w * err
        style = style / max(sum(self.style_layers.values()), 1e-12)
        dy, dx = x[..., 1:, :] - x[..., :-1, :], x[..., :, 1:] - x[..., :, :-1]
        tv = dy.pow(2).mean() + dx.pow(2).mean()
        total = cfg.content_weight * content + cfg.style_weight * style + cfg.tv_weight * tv
        # keeps L-BFGS's unconstrained pixels in [0, 1]: zero inside, steep outside
        out_of_range = range_penalty(x) * RANGE_WEIGHT
        return {"content": content, "style": style, "tv": tv, "total": total + out_of_range}

    def values(self, image: torch.Tensor) -> dict[str, float]:
        """:meth:`terms` as floats, without gradients."""
        with torch.no_grad():
            return {k: float(v) for k, v in self.terms(image).items()}


def _optimise(
    objective: GatysObjective,
    start: torch.Tensor,
    cfg: GatysConfig,
    on_step: Callable[[dict[str, float]], None],
) -> torch.Tensor:
    x = start.detach().clone(memory_format=torch.contiguous_format).requires_grad_(True)
    budget = cfg.iterations
    done = 0

    def closure() -> torch.Tensor:
        nonlocal done
        opt.zero_grad()
        t = objective.terms(x)
        t["total"].backward()
        done += 1
        on_step({k: float(v.detach()) for k, v in t.items()})
        return t["total"]

    opt: torch.optim.Optimizer
    if cfg.optimizer == "lbfgs":
        opt = torch.optim.LBFGS(
            [x], lr=1.0, max_iter=budget, max_eval=budget, history_size=50,
            tolerance_grad=1e-9, tolerance_change=1e-12, line_search_fn="strong_wolfe",
        )  # fmt: skip
        opt.step(closure)  # stops early only once converged
    else:
        opt = torch.optim.Adam([x], lr=cfg.lr)
        for _ in range(budget):
            opt.step(closure)
            with torch.no_grad():
                x.clamp_(0, 1)
    return x.detach().clamp(0, 1)


def style_transfer(
    content: torch.Tensor,
    styles: torch.Tensor | Sequence[torch.Tensor],
    *,
    style_weights: Sequence[float] | None = None,
    config: GatysConfig | None = None,
    network: VGG | None = None,
    device: torch.device | str = "cpu",
    callback: Callback | None = None,
) -> StyleResult:
    """Stylize ``content`` (C x H x W in [0, 1], any size, grey allowed) with ``styles`` (one
    C x H x W image or several, any sizes; ``style_weights`` mixes them).

    Returns ``StyleResult(image, losses)``: the 3 x H' x W' image in [0, 1] (longest side
    ``config.size``, or the content's size when it is None) and the final unweighted loss terms
    (content, style, tv), the weighted total, ``seconds_per_iteration`` and ``iterations``.
    ``network``: a VGG19 to reuse (default :func:`style_vgg`). ``callback(step, total, terms)``
    is called after every loss evaluation.
    """
    cfg = config or GatysConfig()
    dev = torch.device(device)
    net = (network if network is not None else style_vgg(device=dev)).to(dev)
    c = as_rgb(content)
    final_hw = fit_longest((int(c.shape[-2]), int(c.shape[-1])), cfg.size)
    style_list = [styles] if isinstance(styles, torch.Tensor) else list(styles)
    prepared = [prepare_style(s, final_hw, cfg.style_scale) for s in style_list]
    content_final = resize(c, final_hw)
    objective = GatysObjective(net, content_final, prepared, style_weights, cfg)
    sizes = [
        (max(MIN_SIDE, round(final_hw[0] * s)), max(MIN_SIDE, round(final_hw[1] * s)))
        for s in cfg.scales
    ]
    total_steps = cfg.iterations * len(sizes)
    gen = torch.Generator().manual_seed(cfg.seed)
    timing = _Timing()
    step = 0

    def on_step(terms: dict[str, float]) -> None:
        nonlocal step
        step += 1
        if callback is not None:
            callback(min(step, total_steps), total_steps, terms)

    image: torch.Tensor | None = None
    for hw in sizes:
        target = resize(content_final, hw)
        objective.set_content(target)
        if image is None:
            start = target if cfg.init == "content" else torch.rand((3, *hw), generator=gen)
        else:  # the previous scale's result, upsampled, is this scale's start
            start = F.interpolate(image[None], size=hw, mode="bilinear", align_corners=False)[0]
        t0, n0 = time.perf_counter(), step
        image = _optimise(objective, start.to(dev), cfg, on_step)
        timing.seconds += time.perf_counter() - t0
        timing.evaluations += step - n0
    assert image is not None
    losses = objective.values(image)
    losses["iterations"] = float(timing.evaluations)
    losses["seconds_per_iteration"] = timing.seconds / max(timing.evaluations, 1)
    return StyleResult(image.cpu(), losses)
