"""Masks for inpainting and uncropping: 1 = pixel to fill, 0 = known.

``box_mask``: a centred (or placed) rectangle covering a fraction of the area.
``free_form_mask``: brush strokes (random walks of thick line segments, as in the free-form masks
of Yu et al. 2019, "Free-Form Image Inpainting with Gated Convolution") drawn until the covered
fraction falls in a range. ``border_mask``: the outside of a centred window (uncropping).
``smooth_fill`` and ``harmonic_fill``: first guesses for the hole from the known pixels around it
(a push-pull pyramid; the membrane, or Laplace, interpolation of the hole's border).
All masks are deterministic given a ``numpy.random.Generator``; benchmarks/masks.py writes the
benchmark masks for CBSD68 from fixed seeds.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from pixelforge.errors import ConfigError


def box_mask(
    height: int,
    width: int,
    *,
    area: float = 0.25,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """A rectangle of ``area`` of the image with the image's aspect ratio: centred, or at a
    random position when ``rng`` is given. ``uint8`` H x W of 0/1."""
    if not 0.0 < area < 1.0:
        raise ValueError("area must be between 0 and 1")
    bh = max(1, round(height * math.sqrt(area)))
    bw = max(1, round(width * math.sqrt(area)))
    if rng is None:
        top, left = (height - bh) // 2, (width - bw) // 2
    else:
        top = int(rng.integers(0, height - bh + 1))
        left = int(rng.integers(0, width - bw + 1))
    mask = np.zeros((height, width), np.uint8)
    mask[top : top + bh, left : left + bw] = 1
    return mask


def free_form_mask(
    height: int,
    width: int,
    rng: np.random.Generator,
    *,
    coverage: tuple[float, float] = (0.15, 0.25),
    max_tries: int = 200,
) -> np.ndarray:
    """Brush strokes covering a fraction of the image within ``coverage``. ``uint8`` H x W.

    Strokes are added one at a time (a random walk of 4-12 segments, brush width 4-12% of the
    shorter side); a stroke that would push the coverage above the upper bound is dropped.
    """
    low, high = coverage
    if not 0.0 < low <= high < 1.0:
        raise ValueError("coverage must satisfy 0 < low <= high < 1")
    side = min(height, width)
    canvas = Image.new("L", (width, height), 0)
    for _ in range(max_tries):
        trial = canvas.copy()
        draw = ImageDraw.Draw(trial)
        x, y = float(rng.uniform(0, width)), float(rng.uniform(0, height))
        brush = int(rng.uniform(0.04, 0.12) * side) + 1
        angle = float(rng.uniform(0, 2 * math.pi))
        for _ in range(int(rng.integers(4, 13))):
            angle += float(rng.uniform(-1.0, 1.0))
            length = float(rng.uniform(0.05, 0.25)) * side
            nx = min(max(x + length * math.cos(angle), 0.0), width - 1.0)
            ny = min(max(y + length * math.sin(angle), 0.0), height - 1.0)
            draw.line([(x, y), (nx, ny)], fill=1, width=brush)
            r = brush / 2
            draw.ellipse([nx - r, ny - r, nx + r, ny + r], fill=1)
            x, y = nx, ny
        frac = float(np.asarray(trial).mean())
        if frac <= high:
            canvas = trial
            if frac >= low:
                break
    return np.asarray(canvas, dtype=np.uint8).copy()


def border_mask(height: int, width: int, *, keep: float = 0.5, side: str = "all") -> np.ndarray:
    """Uncropping: 1 outside a kept window. ``side`` "all" keeps a centred window of ``keep``
    of each side; "left"/"right"/"top"/"bottom" keep that fraction at the opposite edge and ask
    for the named side to be extended."""
    if not 0.0 < keep < 1.0:
        raise ValueError("keep must be between 0 and 1")
    mask = np.ones((height, width), np.uint8)
    kh, kw = max(1, round(height * keep)), max(1, round(width * keep))
    if side == "all":
        top, left = (height - kh) // 2, (width - kw) // 2
        mask[top : top + kh, left : left + kw] = 0
    elif side == "left":
        mask[:, width - kw :] = 0
    elif side == "right":
        mask[:, :kw] = 0
    elif side == "top":
        mask[height - kh :, :] = 0
    elif side == "bottom":
        mask[:kh, :] = 0
    else:
        raise ValueError("side must be all, left, right, top or bottom")
    return mask


def check_mask(mask: np.ndarray, height: int, width: int, name: str = "the mask") -> np.ndarray:
    """Validate a mask (non-zero = hole) against an image of ``height`` x ``width``; returns it
    as a bool H x W array. Raises ConfigError when it has another size, no hole or no known
    pixel, saying what to do."""
    m = np.asarray(mask)
    if m.ndim == 3 and m.shape[0] == 1:
        m = m[0]
    if m.ndim == 3 and m.shape[2] == 1:
        m = m[..., 0]
    if m.ndim != 2:
        raise ConfigError(f"{name} must be one H x W channel, got shape {m.shape}.")
    if m.shape != (height, width):
        raise ConfigError(
            f"{name} is {m.shape[1]}x{m.shape[0]} but the image is {width}x{height} (width x "
            "height); make a mask of the same size as the image (white = area to fill)."
        )
    hole = m != 0
    if not hole.any():
        raise ConfigError(
            f"{name} is empty: it has no hole (no white pixel); paint the area to fill in white."
        )
    if hole.all():
        raise ConfigError(
            f"{name} is all hole: it covers the whole image (every pixel white); keep some of "
            "the image known (black)."
        )
    return hole


def smooth_fill(x: torch.Tensor, mask: torch.Tensor, gain: float = 4.0) -> torch.Tensor:
    """Fill the hole of ``x`` (N x C x H x W) where ``mask`` (N x 1 x H x W) is 1 with a smooth
    extension of the known pixels, the push-pull pyramid of Gortler et al. (1996): averages of
    the known pixels are pulled down a 2x pyramid, then pushed back up, each level keeping its
    own average where it saw enough known pixels (coverage x ``gain``, at most 1) and the coarser
    level's bilinear enlargement elsewhere. Known pixels are returned unchanged; a sample with no
    known pixel becomes 0. On CBSD68's benchmark masks its hole PSNR is within 0.8 dB of OpenCV's
    Telea inpainting (docs/benchmarks.md); inpainting networks start from it and add detail."""
    known = 1.0 - mask
    s, w = x * known, known.expand_as(x[:, :1])
    pyramid = [(s, w)]
    while min(s.shape[-2:]) > 1:
        s = F.avg_pool2d(s, 2, ceil_mode=True)
        w = F.avg_pool2d(w, 2, ceil_mode=True)
        pyramid.append((s, w))
    s, w = pyramid[-1]
    out = s / w.clamp(min=1e-6)
    for s, w in reversed(pyramid[:-1]):
        up = F.interpolate(out, size=s.shape[-2:], mode="bilinear", align_corners=False)
        a = (w * gain).clamp(max=1.0)
        out = a * (s / w.clamp(min=1e-6)) + (1 - a) * up
    return x * known + out * mask


# Edge directions of the 8-neighbour pixel graph: horizontal, vertical, diagonal down-right,
# diagonal down-left (diagonal edges, sqrt(2) long, count half).
_DIRECTIONS = ((0, 1), (1, 0), (1, 1), (1, -1))


def _edges(
    height: int, width: int, weights: torch.Tensor
) -> list[tuple[torch.Tensor, tuple[slice, slice], tuple[slice, slice]]]:
    """The pixel graph's edges by direction: (weight N x 1 x 1 x 1, the rows and columns of the
    edges' first ends, those of their second ends) for each direction of ``_DIRECTIONS`` with a
    non-zero weight; ``weights`` N x 4 (diagonal edges, sqrt(2) long, count half)."""
    edges = []
    for k, (dy, dx) in enumerate(_DIRECTIONS):
        w = weights[:, k].view(-1, 1, 1, 1) / (2.0 if dy and dx else 1.0)
        if not bool((w != 0).any()):
            continue
        a = (slice(max(0, -dy), height - max(0, dy)), slice(max(0, -dx), width - max(0, dx)))
        # stop at ``size + min(0, d)``, never None: in an image one pixel wide the down-left
        # diagonal has no edge, and ``0 or None`` would have taken the whole column
        b = (
            slice(max(0, dy), height + min(0, dy)),
            slice(max(0, dx), width + min(0, dx)),
        )
        edges.append((w, a, b))
    return edges


def _degree(u: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Each pixel's sum of edge weights (N x 1 x H x W) for images shaped like ``u``."""
    height, width = u.shape[-2:]
    degree = u.new_zeros(u.shape[0], 1, height, width)
    for w, a, b in _edges(height, width, weights):
        degree[..., a[0], a[1]] += w
        degree[..., b[0], b[1]] += w
    return degree


def _laplacian(
    u: torch.Tensor, weights: torch.Tensor, degree: torch.Tensor, out: torch.Tensor
) -> torch.Tensor:
    """The weighted graph Laplacian of the pixel grid, written into ``out`` (not ``u``): at each
    pixel, the sum over its edges of ``w (u - u_neighbour)``; ``weights`` N x 4, per sample, the
    edge weights per direction of ``_DIRECTIONS``. Only edges inside the image count
    (reflecting, Neumann, borders). Symmetric and positive semi-definite. Computed as
    ``degree u`` (``degree = _degree(u, weights)``) minus each neighbour's weighted value, with
    no temporary the size of the image."""
    torch.mul(u, degree, out=out)
    height, width = u.shape[-2:]
    for w, a, b in _edges(height, width, weights):
        out[..., a[0], a[1]].addcmul_(w, u[..., b[0], b[1]], value=-1.0)
        out[..., b[0], b[1]].addcmul_(w, u[..., a[0], a[1]], value=-1.0)
    return out


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-sample inner products of two N x ... tensors, as N x 1 x 1 x 1 (no temporary the
    size of the image: a product and sum allocates one, which on a large canvas costs fresh pages
    from the system at every step)."""
    n = a.shape[0]
    return torch.stack([torch.dot(a[i].reshape(-1), b[i].reshape(-1)) for i in range(n)]).view(
        n, 1, 1, 1
    )


def _cg(
    u: torch.Tensor, mask: torch.Tensor, iters: int, tol: float, weights: torch.Tensor | None
) -> torch.Tensor:
    """Conjugate gradients on the hole's pixels of ``L u = 0``, the known pixels held fixed.
    Works in place on its own vectors (``u`` is copied first, in the standard memory layout that
    ``_dot`` reads without a copy; a photo's tensor is often channels-last), and a step
    allocates nothing the size of the image: on a large canvas each fresh tensor costs new pages
    from the system."""
    u = u.clone(memory_format=torch.contiguous_format)
    if weights is None:  # the 5-point Laplacian
        weights = u.new_tensor([1.0, 1.0, 0.0, 0.0]).expand(u.shape[0], 4)
    degree = _degree(u, weights)
    r = _laplacian(u, weights, degree, torch.empty_like(u)).mul_(mask).neg_()
    ap = torch.empty_like(u)
    p = r.clone()
    rs = _dot(r, r)
    limit = tol**2 * mask.sum((1, 2, 3), keepdim=True).clamp(min=1) * u.shape[1]
    for _ in range(iters):
        if bool((rs <= limit).all()):
            break
        _laplacian(p, weights, degree, ap).mul_(mask)
        alpha = rs / _dot(p, ap).clamp(min=1e-30)
        u.addcmul_(alpha, p)
        r.addcmul_(alpha, ap, value=-1.0)
        rs_new = _dot(r, r)
        p.mul_(rs_new / rs.clamp(min=1e-30)).add_(r)
        rs = rs_new
    return u


def diffusion_fill(
    x: torch.Tensor,
    mask: torch.Tensor,
    weights: torch.Tensor | None = None,
    iters: int = 60,
    tol: float = 1e-4,
) -> torch.Tensor:
    """Fill the hole of ``x`` (N x C x H x W) where ``mask`` (N x 1 x H x W) is 1 with the
    steady state of diffusion from the known pixels: ``L u = 0`` in the hole, ``L`` the pixel
    graph's Laplacian with edge weights ``weights`` (N x 4 or 4: horizontal, vertical and the
    two diagonals; default 1, 1, 0, 0, Laplace's equation), the known pixels as boundary values.
    Unequal weights make the fill anisotropic: ``2.8, 1, 0, 0`` carries the border further
    across than up and down. Solved coarse to fine: each 2x coarser level (a pixel known where
    all four finer ones are) is solved first and enlarged as the next level's start, then at
    most ``iters`` conjugate gradient steps per level, stopping once the residual's RMS per hole
    pixel is below ``tol``. Only the hole's window is solved (``hole_window``: its bounding box
    over the batch with a margin of known pixels): the hole's equations involve no pixel further
    out, so a small hole in a large photo costs what the hole does. Known pixels are returned
    unchanged; a sample with no known pixel becomes 0."""
    mask = (mask > 0.5).to(x.dtype)
    if weights is not None:
        weights = weights.to(x).reshape(-1, 4).expand(x.shape[0], 4)
    window = hole_window(mask)
    if window is None:
        return _coarse_to_fine(x, mask, weights, iters, tol)
    rows, cols = window
    out = x * (1.0 - mask)
    out[..., rows, cols] = _coarse_to_fine(
        x[..., rows, cols], mask[..., rows, cols], weights, iters, tol
    )
    return out


def hole_window(
    mask: torch.Tensor, fraction: float = 0.25, least: int = 16, largest: float = 0.5
) -> tuple[slice, slice] | None:
    """The rows and columns ``diffusion_fill`` solves for ``mask`` (N x 1 x H x W, 1 = hole):
    the bounding box of every sample's hole, grown on each side by ``fraction`` of its longer
    side and at least ``least`` pixels, within the image. The margin keeps known pixels around
    the hole on the coarse levels too, so the window's solution is the whole image's to the
    solver's tolerance (a few levels in 255 at most, after ``adaptive_fill`` combines its fills).
    None (solve the whole image) when the window is more than ``largest`` of the image: there
    the saving is small, and a hole that spans most of the image (every benchmark mask: the
    boxes, strokes and borders) is solved exactly as before."""
    hole = mask.amax(dim=(0, 1)) > 0.5
    rows, cols = hole.any(1).nonzero(), hole.any(0).nonzero()
    if len(rows) == 0:
        return None
    height, width = hole.shape
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    margin = max(least, math.ceil(fraction * max(bottom - top, right - left)))
    top, left = max(0, top - margin), max(0, left - margin)
    bottom, right = min(height, bottom + margin), min(width, right + margin)
    if (bottom - top) * (right - left) > largest * height * width:
        return None
    return slice(top, bottom), slice(left, right)


def _coarse_to_fine(
    x: torch.Tensor, mask: torch.Tensor, weights: torch.Tensor | None, iters: int, tol: float
) -> torch.Tensor:
    """``diffusion_fill``'s solver on the whole of ``x`` (``mask`` 0/1, ``weights`` N x 4)."""
    known = 1.0 - mask
    if min(x.shape[-2:]) <= 16:
        start = smooth_fill(x, mask)
        return _cg(start, mask, max(iters, 4 * max(x.shape[-2:])), tol, weights)
    s = F.avg_pool2d(x * known, 2, ceil_mode=True)
    w = F.avg_pool2d(known, 2, ceil_mode=True)
    coarse_mask = (w < 1.0 - 1e-6).to(x.dtype)
    coarse = _coarse_to_fine(
        s / w.clamp(min=1e-6) * (1 - coarse_mask), coarse_mask, weights, iters, tol
    )
    up = F.interpolate(coarse, size=x.shape[-2:], mode="bilinear", align_corners=False)
    return _cg(x * known + up * mask, mask, iters, tol, weights)


def harmonic_fill(
    x: torch.Tensor, mask: torch.Tensor, iters: int = 60, tol: float = 1e-4
) -> torch.Tensor:
    """Fill the hole of ``x`` (N x C x H x W) where ``mask`` (N x 1 x H x W) is 1 with the
    harmonic (membrane) interpolation of the known pixels: the solution of Laplace's equation in
    the hole with the known pixels as boundary values, the smoothest fill that meets the border
    (the most likely one under a Gaussian prior with a 1/f^2 power spectrum, like photos').
    ``diffusion_fill`` with equal horizontal and vertical weights. Known pixels are returned
    unchanged; a sample with no known pixel becomes 0. On CBSD68's benchmark masks its hole PSNR
    is 0.75-0.8 dB above OpenCV's Telea inpainting (docs/benchmarks.md)."""
    return diffusion_fill(x, mask, None, iters, tol)


# The diffusion fills ``adaptive_fill`` combines (edge weights, as ``diffusion_fill`` takes
# them): isotropic; horizontal 2.8 times vertical; each diagonal added; vertical 2.8 times
# horizontal; horizontal 8 times vertical.
ADAPTIVE_WEIGHTS = (
    (1.0, 1.0, 0.0, 0.0),
    (2.8, 1.0, 0.0, 0.0),
    (1.0, 1.0, 1.0, 0.0),
    (1.0, 1.0, 0.0, 1.0),
    (1.0, 2.8, 0.0, 0.0),
    (8.0, 1.0, 0.0, 0.0),
)
# What the band's least squares is pulled towards: the one combination of those fills that best
# fills the centred 25% boxes of CSun_Hays80's 80 photos (pooled least squares on the true hole
# pixels, each photo weighted by 1 / its isotropic fill's error), and how strongly, in pixels of
# evidence (the ridge is ADAPTIVE_PRIOR_PIXELS times the band's mean squared fill value), chosen
# by 5-fold cross-validation on CSun_Hays80's boxes and strokes. Both come from
# ``python benchmarks/adaptive_prior.py`` (benchmarks/results/adaptive_prior.json).
ADAPTIVE_PRIOR = (11.4915, -2.6602, -4.5656, -4.5178, -0.5163, 1.7667)
ADAPTIVE_PRIOR_PIXELS = 2.0
# The prior for uncropping (the known pixels one rectangle, the hole around it): the same pooled
# fit on CSun_Hays80's borders, a centred window of 75% of each side kept and the left half kept
# (``python benchmarks/adaptive_prior.py --holes border``). A border is filled from one side
# only, so the combination that extends best differs from the one that closes a hole.
ADAPTIVE_BORDER_PRIOR = (-3.1359, -1.701, 1.8787, 2.0414, 0.124, 1.7708)


def adaptive_fill(
    x: torch.Tensor,
    mask: torch.Tensor,
    weights: tuple[tuple[float, float, float, float], ...] = ADAPTIVE_WEIGHTS,
    prior: tuple[float, ...] | None = ADAPTIVE_PRIOR,
    prior_pixels: float = ADAPTIVE_PRIOR_PIXELS,
    border_prior: tuple[float, ...] | None = ADAPTIVE_BORDER_PRIOR,
    band: int = 8,
    iters: int = 200,
    tol: float = 1e-5,
) -> torch.Tensor:
    """Fill the hole of ``x`` (N x C x H x W) where ``mask`` (N x 1 x H x W) is 1 with the
    combination of diffusion fills (``diffusion_fill``, one per row of ``weights``) that best
    predicts the image's own known pixels: each sample's hole is grown by a band of ``band``
    known pixels, the grown hole is filled with each operator, and the least-squares weights
    that fit the hidden band are applied to the fills of the real hole. So the direction and
    reach of the diffusion follow each image (a landscape's horizontal layers, a diagonal roof)
    instead of one fixed Laplacian. A band only a few pixels deep says little about a large
    hole's middle, so the weights are shrunk towards ``prior`` (one weight per operator; None
    for plain least squares) by a ridge worth ``prior_pixels`` pixels of the band; a sample to
    uncrop (its known pixels exactly one rectangle smaller than the image, ``is_uncrop``) is
    shrunk towards ``border_prior`` instead (None: ``prior`` for every sample). The result
    is clamped to the known pixels' range per channel; a sample whose band has too few known
    pixels falls back to the first operator. Known pixels are returned unchanged."""
    for given in (prior, border_prior):
        if given is not None and len(given) != len(weights):
            raise ValueError(
                f"adaptive_fill: {len(weights)} operators but {len(given)} prior weights; give "
                "one prior weight per operator, or None for plain least squares."
            )
    mask = (mask > 0.5).to(x.dtype)
    n = x.shape[0]
    ops = torch.tensor(weights, dtype=x.dtype, device=x.device)
    k = len(ops)
    known = 1.0 - mask
    grown = _grow(mask, band)
    ring = grown * known
    coef = torch.zeros(n, k, dtype=x.dtype, device=x.device)
    coef[:, 0] = 1.0
    bands = [ring[i, 0] > 0 for i in range(n)]
    seen: list[list[torch.Tensor]] = [[] for _ in range(n)]  # per sample, each fill on its band

    def as_tensor(p: tuple[float, ...] | None) -> torch.Tensor | None:
        return None if p is None else torch.tensor(p, dtype=torch.float64, device=x.device)

    pull = as_tensor(prior)
    border_pull = pull if border_prior is None else as_tensor(border_prior)
    for op in ops:
        fit = diffusion_fill(x, grown, op, iters=iters, tol=tol)
        for i in range(n):
            seen[i].append(fit[i][:, bands[i]].reshape(-1).double())
    for i in range(n):
        enough = int(bands[i].sum()) >= 4 * k and bool((known[i, 0] * (1 - grown[i, 0])).sum() > 0)
        if not enough:
            continue
        a = torch.stack(seen[i])
        gram = a @ a.T
        y = x[i][:, bands[i]].reshape(-1).double()
        towards = border_pull if is_uncrop(mask[i, 0]) else pull
        coef[i] = band_weights(gram, a @ y, a.shape[1], towards, prior_pixels).to(x.dtype)
    out = torch.zeros_like(x)
    for j, op in enumerate(ops):  # one fill at a time: memory of one image, not k
        out = out + coef[:, j].view(n, 1, 1, 1) * diffusion_fill(x, mask, op, iters=iters, tol=tol)
    big = torch.finfo(x.dtype).max
    low = torch.where(known > 0, x, big).amin((2, 3), keepdim=True)
    high = torch.where(known > 0, x, -big).amax((2, 3), keepdim=True)
    clamped = torch.maximum(torch.minimum(out, high), low)
    out = torch.where(known.sum((1, 2, 3), keepdim=True) > 0, clamped, out)
    return x * known + out * mask


def is_uncrop(mask: torch.Tensor) -> bool:
    """True when the hole of ``mask`` (H x W, 1 = hole) surrounds the known pixels from outside:
    they form exactly one axis-aligned rectangle, smaller than the image (uncropping's canvas;
    ``border_mask``)."""
    known = mask <= 0.5
    rows, cols = known.any(1).nonzero(), known.any(0).nonzero()
    if len(rows) == 0:
        return False
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    whole = (bottom - top, right - left) == tuple(mask.shape)
    return not whole and int(known.sum()) == (bottom - top) * (right - left)


def band_weights(
    gram: torch.Tensor,
    rhs: torch.Tensor,
    count: int,
    prior: torch.Tensor | None = None,
    prior_pixels: float = ADAPTIVE_PRIOR_PIXELS,
) -> torch.Tensor:
    """``adaptive_fill``'s weights of k fills from their least-squares statistics on the band
    (``gram`` = A A^T, k x k; ``rhs`` = A y; ``count`` values): plain least squares (a 1e-9
    relative ridge for conditioning) when ``prior`` is None, else shrunk towards ``prior`` (k) by
    a ridge of ``prior_pixels`` times the band's mean squared fill value."""
    eye = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
    strength = 1e-9 * gram.diagonal().mean()
    if prior is not None:
        pull = prior_pixels * gram.diagonal().sum() / count
        rhs = rhs + pull * prior.to(gram)
        strength = strength + pull
    return torch.linalg.solve(gram + strength * eye, rhs)


def _grow(mask: torch.Tensor, pixels: int) -> torch.Tensor:
    """``mask`` grown by ``pixels`` steps to the 4 neighbours (a diamond of that radius)."""
    for _ in range(pixels):
        vertical = F.max_pool2d(mask, (3, 1), stride=1, padding=(1, 0))
        mask = torch.maximum(vertical, F.max_pool2d(mask, (1, 3), stride=1, padding=(0, 1)))
    return mask
