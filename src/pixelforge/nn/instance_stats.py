"""Whole-image instance-norm statistics for tiled inference.

Instance normalisation makes a model's output depend on the mean and variance of each feature
map over the whole image. Cut the image into tiles and every tile normalises with its own
statistics: a dark tile is brightened, a flat tile gets its noise amplified, and neighbouring
tiles disagree at the seams. :func:`frozen_instance_norm` gathers the statistics of every
``nn.InstanceNorm2d`` layer over the whole image first, through tiled passes, and makes the
layers use them.

How the statistics are gathered
-------------------------------
``run()`` performs one complete tiled pass (normally ``lambda: run_tiled(fn, x, ...)``).

* Layer order. The layer-k statistics are computed from the layer's input, which depends on
  how layers 0..k-1 normalised. So pass 1 records the order in which the layers run and gathers
  the first one; pass p gathers layer p with layers 0..p-1 already frozen to their whole-image
  statistics. In the sequential generators here (ResNet, U-Net) every layer's input passes
  through the previous instance norm and a non-linearity, so no two layers can be gathered
  exactly in one pass; one pass per layer it is. The passes stop early: once the layer being
  gathered has seen a tile, the rest of the network is skipped for that tile (for
  :class:`~pixelforge.models.image2image.ImageToImage` models), so the cost is about half a
  full pass per layer.
* Ownership. Tiles overlap; counting the overlaps twice would weight those pixels double. The
  tile layout is recorded from :func:`pixelforge.tasks.tiling.run_tiled` while ``run()`` runs,
  and each tile contributes only the pixels it owns: the overlap between two neighbours is split
  at its middle (rounded to the model's size multiple, so the cut falls on whole pixels of every
  down-sampled feature map). The owned regions partition the padded image exactly once, which
  is what a single pass over the padded image normalises with. A ``run()`` that never calls
  ``run_tiled`` counts every pixel of each call.
* Accumulation: per tile, the count, mean and centred sum of squares of the owned pixels in
  float64 where the device has it, merged with Chan et al.'s parallel formula; the variance is
  the biased one, as in ``nn.InstanceNorm2d``.

What remains approximate
------------------------
A feature near a tile's edge is computed from a cut-off neighbourhood (the convolutions pad the
tile instead of seeing the true neighbours), both in the gathering passes and in the final one.
The owned pixels are the ones furthest from the edges, at least ``overlap / 2`` input pixels
inside, but deep layers whose receptive field is larger than that still see the edge. The
statistics are therefore exact for the first layer and carry a small error, growing with depth,
from those edge features; the final output shares the same edge error as any tiled
convolutional pass. Larger tiles and overlaps shrink both. Statistics are per image in the batch
and per channel.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from pixelforge.models.image2image import ImageToImage
from pixelforge.tasks.tiling import record_layouts


class _StopTile(Exception):
    """Raised inside a tile once the layer being gathered has seen it (the rest is skipped)."""


def _owned(starts: list[int], length: int, multiple: int) -> list[tuple[int, int]]:
    """Per tile, the [begin, end) of the pixels it owns, in the tile's own coordinates."""
    cuts = [starts[0]]
    for a, b in itertools.pairwise(starts):
        middle = (b + a + length) / 2  # the overlap is [b, a + length)
        cut = round(middle / multiple) * multiple
        cuts.append(min(max(cut, b), a + length))
    cuts.append(starts[-1] + length)
    return [(cuts[i] - s, cuts[i + 1] - s) for i, s in enumerate(starts)]


# ------------------------------------------------------------------------ statistics


@dataclass
class _Moments:
    """Count, mean and centred sum of squares (N x C, float64, CPU), merged tile by tile."""

    count: float = 0.0
    mean: torch.Tensor | None = None
    m2: torch.Tensor | None = None

    def add(self, part: torch.Tensor) -> None:
        dtype = torch.float32 if part.device.type == "mps" else torch.float64
        p = part.to(dtype)
        n = float(p.shape[-2] * p.shape[-1])
        if n == 0:
            return
        mean = p.mean(dim=(2, 3))
        m2 = ((p - mean[:, :, None, None]) ** 2).sum(dim=(2, 3))
        mean, m2 = mean.double().cpu(), m2.double().cpu()
        if self.mean is None or self.m2 is None:
            self.count, self.mean, self.m2 = n, mean, m2
            return
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2 + delta**2 * (self.count * n / total)
        self.count = total

    def result(self) -> tuple[torch.Tensor, torch.Tensor]:
        assert self.mean is not None and self.m2 is not None and self.count > 0
        return self.mean, self.m2 / self.count


@dataclass
class _State:
    order: list[nn.InstanceNorm2d] = field(default_factory=list)  # execution order (pass 1)
    frozen: dict[nn.InstanceNorm2d, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    target: nn.InstanceNorm2d | None = None  # the layer gathered in this pass
    moments: _Moments = field(default_factory=_Moments)
    calls: dict[nn.InstanceNorm2d, int] = field(default_factory=dict)  # per pass
    layouts: list[tuple[list[int], int, int]] = field(default_factory=list)  # per pass
    gathering: bool = True
    stop_early: bool = False

    def new_pass(self, target: nn.InstanceNorm2d | None, stop_early: bool) -> None:
        self.target, self.moments, self.stop_early = target, _Moments(), stop_early
        self.calls = {}
        self.layouts.clear()

    def owned_part(self, x: torch.Tensor, tile: int) -> torch.Tensor:
        """The pixels of feature map ``x`` (of tile number ``tile``) that the tile owns."""
        if not self.layouts:
            return x
        if len(self.layouts) != 2:
            raise ValueError(
                "frozen_instance_norm: run() must make exactly one run_tiled call over the image"
            )
        (ys, th, my), (xs, tw, mx) = self.layouts
        i, j = divmod(tile, len(xs))
        if i >= len(ys):
            raise ValueError("frozen_instance_norm: more tiles ran than run_tiled laid out")
        (r0, r1), (c0, c1) = _owned(ys, th, my)[i], _owned(xs, tw, mx)[j]
        fy, fx = x.shape[-2] / th, x.shape[-1] / tw
        return x[..., round(r0 * fy) : round(r1 * fy), round(c0 * fx) : round(c1 * fx)]


def _uses_input_stats(m: nn.Module) -> bool:
    return isinstance(m, nn.InstanceNorm2d) and (m.training or not m.track_running_stats)


def _normalise(
    m: nn.InstanceNorm2d, x: torch.Tensor, stats: tuple[torch.Tensor, torch.Tensor]
) -> torch.Tensor:
    mean, var = stats
    if x.shape[0] != mean.shape[0]:
        raise ValueError(
            f"frozen_instance_norm: statistics were gathered for {mean.shape[0]} images, "
            f"this pass has {x.shape[0]}"
        )
    mean = mean.to(device=x.device, dtype=x.dtype)[:, :, None, None]
    scale = torch.rsqrt(var + m.eps).to(device=x.device, dtype=x.dtype)[:, :, None, None]
    y = (x - mean) * scale
    if m.affine and m.weight is not None and m.bias is not None:
        y = y * m.weight[None, :, None, None] + m.bias[None, :, None, None]
    return y


def _make_forward(m: nn.InstanceNorm2d, state: _State) -> Callable[[torch.Tensor], torch.Tensor]:
    original = type(m).forward

    def forward(x: torch.Tensor) -> torch.Tensor:
        if not state.gathering:
            stats = state.frozen.get(m)
            if stats is None:
                raise RuntimeError(
                    "frozen_instance_norm: an instance norm ran that did not run while the "
                    "statistics were gathered; run() must do what the block does."
                )
            return _normalise(m, x, stats)
        tile = state.calls.get(m, 0)
        state.calls[m] = tile + 1
        if m not in state.order:
            state.order.append(m)
        if m in state.frozen:
            return _normalise(m, x, state.frozen[m])
        if state.target is None:
            state.target = m
        if state.target is m:
            state.moments.add(state.owned_part(x.detach(), tile))
            if state.stop_early:
                raise _StopTile
        out: torch.Tensor = original(m, x)
        return out

    return forward


def _guard(model: ImageToImage, name: str) -> Callable[..., torch.Tensor]:
    """``model.<name>`` returning zeros of the right shape when a tile is stopped early."""
    method = getattr(model, name)

    def call(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        try:
            out: torch.Tensor = method(x, *args, **kwargs)
            return out
        except _StopTile:
            n, _, h, w = x.shape
            s = model.scale
            return x.new_zeros(n, model.out_channels, h * s, w * s)

    return call


@contextlib.contextmanager
def _patched(obj: Any, values: dict[str, Any]) -> Iterator[None]:
    """Set instance attributes of ``obj``, restoring what was there (or nothing) afterwards."""
    saved = {k: obj.__dict__[k] for k in values if k in obj.__dict__}
    try:
        for k, v in values.items():
            object.__setattr__(obj, k, v)
        yield
    finally:
        for k in values:
            if k in saved:
                object.__setattr__(obj, k, saved[k])
            else:
                obj.__dict__.pop(k, None)


@contextlib.contextmanager
def frozen_instance_norm(model: nn.Module, run: Callable[[], object]) -> Iterator[None]:
    """Inside the block, every ``nn.InstanceNorm2d`` of ``model`` normalises with the mean and
    variance of its input over the whole image, gathered beforehand through tiled passes made by
    calling ``run()`` (one complete tiled pass over the image, e.g.
    ``lambda: run_tiled(fn, x, ...)``), one pass per layer. ``model`` should be in eval mode; the
    block must process the same image(s) as ``run()``. See the module docstring for the method
    and what stays approximate."""
    norms = [m for m in model.modules() if _uses_input_stats(m)]
    if not norms:
        yield
        return
    state = _State()
    with contextlib.ExitStack() as stack:
        stack.enter_context(record_layouts(state.layouts))
        for m in norms:
            assert isinstance(m, nn.InstanceNorm2d)
            stack.enter_context(_patched(m, {"forward": _make_forward(m, state)}))
        _gather(model, run, state)
        state.gathering = False
        yield


@torch.no_grad()
def _gather(model: nn.Module, run: Callable[[], object], state: _State) -> None:
    early = isinstance(model, ImageToImage)
    guards: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
    if early:
        assert isinstance(model, ImageToImage)
        guards = _patched(
            model, {"translate": _guard(model, "translate"), "forward": _guard(model, "forward")}
        )
    p = 0
    with guards:
        while True:
            target = state.order[p] if p < len(state.order) else None
            if p > 0 and target is None:
                break
            state.new_pass(target, stop_early=early and p > 0)
            try:
                run()
            except _StopTile:  # run() reached past the guarded methods: no early stop
                early = False
                continue
            if state.target is None:  # no instance norm ran at all
                break
            tiles = state.calls.get(state.target, 0)
            if p == 0 and any(state.calls.get(m, 0) != tiles for m in state.order):
                raise ValueError(
                    "frozen_instance_norm: an instance norm ran more than once per tile; "
                    "whole-image statistics need each layer to run once per tile"
                )
            state.frozen[state.target] = state.moments.result()
            p += 1


__all__ = ["frozen_instance_norm"]
