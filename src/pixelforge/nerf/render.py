"""Volume rendering along rays: where to sample, and how samples become a pixel.

A ray ``r(t) = o + t d`` (``d`` a unit vector, so ``t`` is a distance in world units) crosses
density ``sigma(t)`` and colour ``c(t)``. Its expected colour (Kajiya & Von Herzen 1984; NeRF,
Mildenhall et al. 2020, eq. 1-3) is approximated with samples ``t_1 < ... < t_S`` and their
interval lengths ``delta_i``:

    alpha_i = 1 - exp(-sigma_i delta_i)                  opacity of interval i
    T_i     = prod_{j < i} (1 - alpha_j)                 transmittance: light not yet absorbed
    w_i     = T_i alpha_i                                contribution of sample i
    C       = sum_i w_i c_i + (1 - sum_i w_i) background

``acc = sum_i w_i`` is the ray's opacity; the depth is the expected distance of the surface that
stops the ray, ``sum_i w_i t_i / acc`` (0 where nothing is hit).

Samples live inside the scene box: :func:`ray_box` gives the entry and exit distances (slab
method), :func:`stratified_samples` splits that interval into bins with one sample per bin
(jittered in training, bin centres otherwise) and :func:`sample_pdf` draws more samples where a
first pass put its weights (hierarchical sampling, NeRF section 5.2), by inverting the piecewise
constant CDF of those weights.
"""

from __future__ import annotations

from typing import Any

import torch

from pixelforge.nerf.cameras import Cameras

DEFAULT_CHUNK = 8192  # rays per model call in render_image: bounds memory for any image size


def ray_box(
    origins: torch.Tensor, directions: torch.Tensor, aabb: torch.Tensor, near: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Entry and exit distances of rays through the box ``aabb`` (2 x 3: min corner, max corner).

    Slab method: along each axis the ray is inside the slab for ``t`` between
    ``(aabb - o) / d`` at the two faces; the box is the intersection of the three slabs. Returns
    ``(t_near, t_far, hit)``, each of length R; ``t_near`` is at least ``near`` (rays that start
    inside the box begin at ``near``) and ``hit`` says whether ``t_near < t_far``.
    """
    safe = torch.where(directions.abs() < 1e-9, torch.full_like(directions, 1e-9), directions)
    inv = 1.0 / safe
    t0 = (aabb[0] - origins) * inv
    t1 = (aabb[1] - origins) * inv
    t_near = torch.minimum(t0, t1).amax(dim=-1).clamp(min=near)
    t_far = torch.maximum(t0, t1).amin(dim=-1)
    hit = t_far > t_near
    return t_near, torch.where(hit, t_far, t_near), hit


def stratified_samples(
    t_near: torch.Tensor, t_far: torch.Tensor, n: int, jitter: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` samples per ray in ``[t_near, t_far]``, one per equal bin.

    ``jitter`` (R x n uniform draws in [0, 1)) places each sample at random in its bin (training);
    without it the samples sit at the bin centres (deterministic rendering). Returns
    ``(t, bins)``: R x n sample distances and the R x (n + 1) bin edges.
    """
    u = torch.linspace(0.0, 1.0, n + 1, device=t_near.device, dtype=t_near.dtype)
    bins = t_near[:, None] + (t_far - t_near)[:, None] * u
    offset = jitter if jitter is not None else torch.full_like(bins[:, :-1], 0.5)
    t = bins[:, :-1] + (bins[:, 1:] - bins[:, :-1]) * offset
    return t, bins


def sample_pdf(
    bins: torch.Tensor, weights: torch.Tensor, n: int, uniform: torch.Tensor | None = None
) -> torch.Tensor:
    """``n`` distances per ray drawn from the piecewise-constant density of ``weights``.

    ``bins`` (R x (K + 1)) are the edges of K intervals whose weights (R x K) form an unnormalised
    histogram; the samples are ``CDF^-1(u)``, linear inside each interval. ``uniform`` (R x n in
    [0, 1)) gives random ``u`` for training; without it ``u`` is evenly spaced (deterministic).
    A small constant added to the weights keeps every interval reachable. Returns R x n sorted
    distances.
    """
    w = weights.detach() + 1e-5
    pdf = w / w.sum(dim=-1, keepdim=True)
    cdf = torch.cat([torch.zeros_like(pdf[:, :1]), pdf.cumsum(dim=-1)], dim=-1).clamp(max=1.0)
    if uniform is None:
        u = torch.linspace(0.5 / n, 1.0 - 0.5 / n, n, device=bins.device, dtype=bins.dtype)
        u = u.expand(bins.shape[0], n).contiguous()
    else:
        u = uniform.contiguous()
    idx = torch.searchsorted(cdf, u, right=True)
    below = (idx - 1).clamp(min=0, max=cdf.shape[-1] - 1)
    above = idx.clamp(max=cdf.shape[-1] - 1)
    cdf_lo, cdf_hi = cdf.gather(-1, below), cdf.gather(-1, above)
    bin_lo, bin_hi = bins.gather(-1, below), bins.gather(-1, above)
    span = cdf_hi - cdf_lo
    frac = torch.where(span > 1e-8, (u - cdf_lo) / span.clamp(min=1e-8), torch.zeros_like(u))
    return (bin_lo + frac * (bin_hi - bin_lo)).sort(dim=-1).values


def deltas_from_samples(t: torch.Tensor, t_far: torch.Tensor) -> torch.Tensor:
    """Interval lengths of sorted samples ``t`` (R x S): the gap to the next sample, and for the
    last one the gap to the exit distance ``t_far`` (R), never negative."""
    end = torch.maximum(t_far[:, None], t[:, -1:])
    return torch.cat([t[:, 1:], end], dim=-1) - t


def alpha_weights(sigma: torch.Tensor, deltas: torch.Tensor) -> torch.Tensor:
    """Weights ``w_i = T_i alpha_i`` (R x S) from densities and interval lengths (R x S)."""
    alpha = 1.0 - torch.exp(-sigma * deltas)
    return weights_from_alpha(alpha)


def weights_from_alpha(alpha: torch.Tensor) -> torch.Tensor:
    """``w_i = alpha_i prod_{j < i} (1 - alpha_j)`` for R x S opacities."""
    trans = torch.cumprod(
        torch.cat([torch.ones_like(alpha[:, :1]), 1.0 - alpha + 1e-10], dim=-1), dim=-1
    )
    return alpha * trans[:, :-1]


def composite(
    weights: torch.Tensor,
    rgb: torch.Tensor,
    t: torch.Tensor,
    background: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Pixel colour, depth and opacity of rays from sample weights (R x S), colours (R x S x 3)
    and distances (R x S); ``background`` (3) fills the transparent part (None: black)."""
    acc = weights.sum(dim=-1)
    color = (weights[..., None] * rgb).sum(dim=-2)
    if background is not None:
        # rounding can take acc a hair above 1; the transparent part is never negative
        color = color + (1.0 - acc).clamp(min=0.0)[:, None] * background.to(color)
    depth = (weights * t).sum(dim=-1) / acc.clamp(min=1e-10)
    depth = torch.where(acc > 1e-6, depth, torch.zeros_like(depth))
    return {"rgb": color, "depth": depth, "acc": acc}


@torch.no_grad()
def render_image(
    model: Any,
    cameras: Cameras,
    *,
    background: torch.Tensor | None = None,
    chunk: int = DEFAULT_CHUNK,
) -> dict[str, torch.Tensor]:
    """Render the one view of ``cameras`` with ``model.render_rays``, ``chunk`` rays at a time.

    Returns ``rgb`` (H x W x 3), ``depth`` and ``acc`` (H x W x 1), on the CPU. Memory is bounded
    by ``chunk`` whatever the image size.
    """
    if len(cameras) != 1:
        raise ValueError(f"render_image renders one view; got {len(cameras)} cameras.")
    device = next(iter(model.parameters())).device
    origins, directions = cameras.rays()
    h, w = cameras.height, cameras.width
    origins, directions = origins.reshape(-1, 3), directions.reshape(-1, 3)
    parts: dict[str, list[torch.Tensor]] = {}
    for start in range(0, origins.shape[0], chunk):
        out = model.render_rays(
            origins[start : start + chunk].to(device),
            directions[start : start + chunk].to(device),
            background=background,
        )
        for key in ("rgb", "depth", "acc"):
            parts.setdefault(key, []).append(out[key].float().cpu())
    return {k: torch.cat(v).reshape(h, w, -1) for k, v in parts.items()}
