"""The grid radiance field (family ``nerf-grid``): a TensoRF vector-matrix field in pure PyTorch.

TensoRF (Chen et al. 2022) factorises a feature volume into sums of outer products of a matrix
(a 2-D plane) and a vector (a 1-D line) along each axis:

    F(x, y, z) = sum_r P^XY_r(x, y) L^Z_r(z) + P^XZ_r(x, z) L^Y_r(y) + P^YZ_r(y, z) L^X_r(x)

Density is the sum of all ``density_components`` terms of the three modes, mapped through
``sigma = distance_scale * softplus(F + density_shift)`` (world units^-1; the negative shift
makes the untrained field nearly empty). Appearance keeps the ``3 x color_components`` products
as a vector, projects it to ``color_features`` values and decodes colour with a small MLP that
also sees the positional encoding of the view direction.

Why this and not a dense voxel grid: looking up a point costs three bilinear plane samples and
three linear line samples (``F.grid_sample`` in 2-D, which is vectorised on CPUs and several
times faster per channel than the 3-D trilinear kernel), and the parameters are planes, not a
volume, so Adam's update over all of them is cheap.

Sampling: samples are spaced ``step_ratio`` cells apart along each ray, only between its entry
and exit of the field box, and samples in cells of the occupancy grid (``occupancy``, a boolean
buffer refreshed during training from the density) that are empty are dropped before the field
is queried. The colour network runs only on samples whose weight exceeds ``weight_threshold``
(which also stops rays once they are opaque: later samples have no weight).

The field's box (buffer ``box``) starts as the scene box and may be shrunk during training to
the occupied part (:meth:`GridField.shrink_to_occupied`); the planes and lines change size when
training raises the resolution (:meth:`GridField.resize`). Loading a state dict adopts the saved
sizes, so a checkpoint taken at any step loads into a freshly built model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pixelforge.config import check_range
from pixelforge.errors import ConfigError
from pixelforge.nerf.cameras import Rig
from pixelforge.nerf.encoding import encoded_size, positional_encoding
from pixelforge.nerf.render import composite, ray_box, weights_from_alpha

PLANES = ((0, 1), (0, 2), (1, 2))  # axes of the three planes: XY, XZ, YZ
LINES = (2, 1, 0)  # the axis of the line paired with each plane: Z, Y, X
DEFAULT_AABB = (-1.5, -1.5, -1.5, 1.5, 1.5, 1.5)  # the NeRF synthetic scenes' box


@dataclass(frozen=True)
class SceneFields:
    """The fields every radiance-field config shares: where the scene is, what is behind it and
    the cameras it was trained from (null: filled from the scene by a new run)."""

    aabb: tuple[float, ...] | None = (
        None  # scene box x0 y0 z0 x1 y1 z1 (world); null: from the scene
    )
    background: tuple[float, ...] | None = (
        None  # RGB behind the scene; null: the scene's (none: black)
    )
    rig: Rig | None = None  # the training cameras in brief, for orbits; null: from the scene

    def __post_init__(self) -> None:
        aabb, background = self.aabb, self.background
        if aabb is not None and (
            len(aabb) != 6 or not all(aabb[i] < aabb[i + 3] for i in range(3))
        ):
            raise ConfigError(
                f"model.aabb must be 6 numbers x0 y0 z0 x1 y1 z1 with min < max, got {aabb}."
            )
        if background is not None and (
            len(background) != 3 or not all(0 <= c <= 1 for c in background)
        ):
            raise ConfigError(f"model.background must be 3 numbers in [0, 1], got {background}.")


@dataclass(frozen=True)
class NerfGridConfig(SceneFields):
    resolution: int = 128  # plane and line cells per axis of the trained field
    density_components: int = 8  # rank of the density factorisation, per plane
    color_components: int = 16  # rank of the appearance factorisation, per plane
    color_features: int = 27  # appearance features fed to the colour MLP
    hidden: int = 64  # width of the colour MLP's two hidden layers
    view_freqs: int = 2  # positional-encoding frequencies of the view direction
    step_ratio: float = 0.5  # sample spacing along rays, in cells of the current resolution
    density_shift: float = -10.0  # added before the softplus: the start is almost empty
    distance_scale: float = 25.0  # density = distance_scale * softplus(feature + density_shift)
    occupancy_resolution: int = 128  # cells per axis of the occupancy grid of empty-space skipping
    occupancy_alpha: float = 1e-3  # a cell is occupied when one sample step there has more opacity
    weight_threshold: float = 1e-4  # samples with less weight skip the colour MLP

    def __post_init__(self) -> None:
        super().__post_init__()
        # upper bounds: memory grows with resolution^2 (planes) and occupancy_resolution^3;
        # above them a typo would fail deep in an allocation (TensoRF itself uses about 300)
        check_range("model.resolution", self.resolution, low=2, high=1024)
        check_range("model.occupancy_resolution", self.occupancy_resolution, low=1, high=512)
        for name in ("density_components", "color_components", "color_features", "hidden"):
            check_range(f"model.{name}", getattr(self, name), low=1)
        check_range("model.view_freqs", self.view_freqs, low=0)
        check_range("model.step_ratio", self.step_ratio, low=0, low_inclusive=False)
        check_range("model.distance_scale", self.distance_scale, low=0, low_inclusive=False)
        check_range("model.occupancy_alpha", self.occupancy_alpha, low=0, high=1)
        check_range("model.weight_threshold", self.weight_threshold, low=0, high=1)


def _box_tensor(aabb: tuple[float, ...] | None) -> torch.Tensor:
    return torch.tensor(aabb if aabb is not None else DEFAULT_AABB, dtype=torch.float32).view(2, 3)


class GridField(nn.Module):
    """Model of the ``nerf-grid`` family: the factorised field, its colour MLP and the buffers
    of empty-space skipping (``box``, ``occupancy``)."""

    family = "nerf-grid"
    noise_size = 1  # uniform draws per ray in training: the offset of its samples
    box: torch.Tensor  # 2 x 3 buffer: the field's current box (min, max corner)
    occupancy: torch.Tensor  # G x G x G bool buffer: cells where samples are evaluated
    background: torch.Tensor  # 3 buffer: the default background colour

    def __init__(self, config: NerfGridConfig) -> None:
        super().__init__()
        self.config = config
        r = config.resolution
        self.density_planes = nn.Parameter(0.1 * torch.randn(3, config.density_components, r, r))
        self.density_lines = nn.Parameter(0.1 * torch.randn(3, config.density_components, r, 1))
        self.color_planes = nn.Parameter(0.1 * torch.randn(3, config.color_components, r, r))
        self.color_lines = nn.Parameter(0.1 * torch.randn(3, config.color_components, r, 1))
        self.basis = nn.Linear(3 * config.color_components, config.color_features, bias=False)
        dir_dims = encoded_size(3, config.view_freqs)
        self.color_net = nn.Sequential(
            nn.Linear(config.color_features + dir_dims, config.hidden), nn.ReLU(),
            nn.Linear(config.hidden, config.hidden), nn.ReLU(),
            nn.Linear(config.hidden, 3),
        )  # fmt: skip
        self.register_buffer("box", _box_tensor(config.aabb))
        g = config.occupancy_resolution
        self.register_buffer("occupancy", torch.ones(g, g, g, dtype=torch.bool))
        bg = config.background
        self.register_buffer("background", torch.tensor(bg if bg is not None else (0.0, 0.0, 0.0)))

    # ------------------------------------------------------------------ sizes and schedule

    @property
    def resolution(self) -> int:
        """Current cells per axis of the planes and lines."""
        return int(self.density_planes.shape[-1])

    @property
    def step_size(self) -> float:
        """Distance between samples along a ray: ``step_ratio`` times the mean cell size."""
        cell = (self.box[1] - self.box[0]) / (self.resolution - 1)
        return float(cell.mean()) * self.config.step_ratio

    def grid_tensors(self) -> list[nn.Parameter]:
        """The planes and lines (what :meth:`resize` changes; the optimizer's grid group)."""
        return [self.density_planes, self.density_lines, self.color_planes, self.color_lines]

    def network_parameters(self) -> list[nn.Parameter]:
        """The appearance basis and the colour MLP."""
        return [*self.basis.parameters(), *self.color_net.parameters()]

    @torch.no_grad()
    def resize(self, resolution: int, box: torch.Tensor | None = None) -> None:
        """Resample the planes and lines to ``resolution`` cells per axis over ``box`` (2 x 3;
        default: the current box) by bilinear interpolation of the current field, in place: the
        parameters keep their identity (optimizers must drop their moments for them)."""
        old, new = self.box.clone(), (self.box if box is None else box).to(self.box)
        # positions of the new cell corners, in the old box's [-1, 1] coordinates, per axis
        axis = [
            (torch.linspace(float(new[0, a]), float(new[1, a]), resolution, device=old.device)
             - old[0, a]) / (old[1, a] - old[0, a]) * 2 - 1
            for a in range(3)
        ]  # fmt: skip
        plane_grid = torch.stack(
            [
                torch.stack(torch.meshgrid(axis[a], axis[b], indexing="xy"), dim=-1)
                for a, b in PLANES
            ]
        )  # 3 x R x R x 2: (x -> plane width = first axis, y -> plane height = second axis)
        line_grid = torch.stack(
            [torch.stack([torch.zeros_like(axis[a]), axis[a]], dim=-1)[:, None] for a in LINES]
        )  # 3 x R x 1 x 2
        for p in self.grid_tensors():
            grid = plane_grid if p.shape[-1] > 1 else line_grid
            p.data = F.grid_sample(p.data, grid, align_corners=True, padding_mode="border")
        self.box.copy_(new)

    @torch.no_grad()
    def update_occupancy(self) -> float:
        """Mark the occupancy cells where one sample step of the density at the cell centre
        (or a neighbour: the grid is dilated by one cell) is more opaque than
        ``occupancy_alpha``. Returns the occupied fraction."""
        g = self.occupancy.shape[0]
        lo, hi = self.box[0], self.box[1]
        centres = [
            lo[a] + (torch.arange(g, device=lo.device) + 0.5) / g * (hi[a] - lo[a])
            for a in range(3)
        ]
        xs = torch.stack(torch.meshgrid(*centres, indexing="ij"), dim=-1).reshape(-1, 3)
        sigma = torch.cat([self.density(self._normalise(c)) for c in xs.split(1 << 18)])
        alpha = 1 - torch.exp(-sigma * self.step_size)
        occ = (alpha > self.config.occupancy_alpha).float().reshape(1, 1, g, g, g)
        self.occupancy.copy_(F.max_pool3d(occ, 3, stride=1, padding=1)[0, 0] > 0)
        return float(self.occupancy.float().mean())

    @torch.no_grad()
    def shrink_to_occupied(self) -> bool:
        """Shrink the box to the occupied cells (plus one cell of margin), resampling the field
        at the same resolution, so its cells are spent on the object. Call after
        :meth:`update_occupancy`; the occupancy is refreshed in the new box. Returns whether
        the box changed (False when nothing or everything is occupied)."""
        idx = self.occupancy.nonzero()
        g = self.occupancy.shape[0]
        if idx.numel() == 0:
            return False
        cell = (self.box[1] - self.box[0]) / g
        lo = self.box[0] + (idx.amin(0) - 1).clamp(min=0) * cell
        hi = self.box[0] + (idx.amax(0) + 2).clamp(max=g) * cell
        if torch.equal(lo, self.box[0]) and torch.equal(hi, self.box[1]):
            return False
        self.resize(self.resolution, torch.stack([lo, hi]))
        self.update_occupancy()
        return True

    def _load_from_state_dict(
        self, state_dict: Mapping[str, Any], prefix: str, *args: Any, **kwargs: Any
    ) -> None:
        """Adopt the saved plane and line sizes (the resolution grows during training)."""
        for name in ("density_planes", "density_lines", "color_planes", "color_lines"):
            saved = state_dict.get(prefix + name)
            p = getattr(self, name)
            if saved is not None and saved.shape != p.shape and saved.shape[:2] == p.shape[:2]:
                p.data = torch.empty(saved.shape, dtype=p.dtype, device=p.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # ------------------------------------------------------------------ the field

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        """World points -> the box's [-1, 1]^3 (the grid_sample convention)."""
        return (x - self.box[0]) / (self.box[1] - self.box[0]) * 2 - 1

    @staticmethod
    def _factors(planes: torch.Tensor, lines: torch.Tensor, xn: torch.Tensor) -> torch.Tensor:
        """The plane x line products at normalised points ``xn`` (M x 3): 3 x C x M."""
        plane_xy = torch.stack([xn[:, [a, b]] for a, b in PLANES])[:, :, None]  # 3 x M x 1 x 2
        line_xy = torch.stack([F.pad(xn[:, a : a + 1], (1, 0)) for a in LINES])[:, :, None]
        p = F.grid_sample(planes, plane_xy, align_corners=True).flatten(2)  # 3 x C x M
        ln = F.grid_sample(lines, line_xy, align_corners=True).flatten(2)
        return p * ln

    def density(self, xn: torch.Tensor) -> torch.Tensor:
        """Density (world units^-1) at normalised points ``xn`` (M x 3): M."""
        feature = self._factors(self.density_planes, self.density_lines, xn).sum(dim=(0, 1))
        return self.config.distance_scale * F.softplus(feature + self.config.density_shift)

    def color(self, xn: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] at normalised points ``xn`` seen along unit ``directions`` (M x 3)."""
        f = self._factors(self.color_planes, self.color_lines, xn)  # 3 x C x M
        features = self.basis(f.flatten(0, 1).t())
        h = torch.cat([features, positional_encoding(directions, self.config.view_freqs)], -1)
        return torch.sigmoid(self.color_net(h))

    def occupied(self, x: torch.Tensor) -> torch.Tensor:
        """Whether world points ``x`` (... x 3) fall in occupied cells of the occupancy grid."""
        g = self.occupancy.shape[0]
        cell = ((x - self.box[0]) / (self.box[1] - self.box[0]) * g).long().clamp(0, g - 1)
        flat = (cell[..., 0] * g + cell[..., 1]) * g + cell[..., 2]
        return self.occupancy.view(-1)[flat]

    # ------------------------------------------------------------------ rendering

    def render_rays(
        self,
        origins: torch.Tensor,
        directions: torch.Tensor,
        *,
        background: torch.Tensor | None = None,
        jitter: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Render rays (R x 3 origins, R x 3 unit directions): ``rgb`` (R x 3), ``depth`` and
        ``acc`` (R). ``background`` defaults to the model's. ``jitter`` (R x 1 uniform in
        [0, 1)) shifts each ray's samples by a random fraction of a step (training); without it
        rendering is deterministic."""
        step = self.step_size
        bg = self.background if background is None else background
        t_near, t_far, _ = ray_box(origins, directions, self.box)
        n = max(1, math.ceil(float((t_far - t_near).max()) / step))
        k = torch.arange(n, device=origins.device, dtype=origins.dtype)
        offset = jitter if jitter is not None else torch.full_like(t_near[:, None], 0.5)
        t = t_near[:, None] + (k + offset) * step  # R x n
        x = origins[:, None] + t[..., None] * directions[:, None]
        keep = (t < t_far[:, None]) & self.occupied(x)
        idx = keep.view(-1).nonzero()[:, 0]
        xn = self._normalise(x.view(-1, 3)[idx])
        sigma = torch.zeros(keep.numel(), device=x.device).index_put((idx,), self.density(xn))
        alpha = 1 - torch.exp(-sigma.view(keep.shape) * step)
        weights = weights_from_alpha(alpha)
        visible = (weights.view(-1)[idx] > self.config.weight_threshold).nonzero()[:, 0]
        ray_of = idx[visible] // n
        rgb = self.color(xn[visible], directions[ray_of])
        colors = torch.zeros(keep.numel(), 3, device=x.device).index_put(
            (idx[visible],), rgb.float()
        )
        return composite(weights, colors.view(*keep.shape, 3), t, bg)

    def regularization(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(l1, tv)``: mean absolute density factors (sparsity, TensoRF's L1 term) and the
        mean squared difference of neighbouring density-plane cells (total variation)."""
        l1 = self.density_planes.abs().mean() + self.density_lines.abs().mean()
        p = self.density_planes
        tv = (p[..., 1:, :] - p[..., :-1, :]).square().mean() + (
            p[..., :, 1:] - p[..., :, :-1]
        ).square().mean()
        return l1, tv
