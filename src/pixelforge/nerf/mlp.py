"""The classic NeRF (family ``nerf-mlp``): Mildenhall et al. 2020, "NeRF: Representing Scenes as
Neural Radiance Fields for View Synthesis".

Each of two networks (coarse and fine, same layout) maps the positional encoding of a point
(``pos_freqs`` frequencies, 10 in the paper) through ``depth`` ReLU layers of ``width`` units,
with the encoded input concatenated again after layer ``skip`` (the paper: 8 layers of 256, skip
at the fifth). A linear head gives the density (softplus, which unlike the paper's ReLU cannot
die at the start); another gives a feature vector that, concatenated with the encoding of the
view direction (``dir_freqs``, 4 in the paper), goes through one layer of ``width / 2`` units to
the colour (sigmoid).

Rendering (hierarchical sampling, paper section 5.2): ``coarse_samples`` stratified samples
between each ray's entry and exit of the scene box are rendered by the coarse network; its
weights define a histogram from which ``fine_samples`` more are drawn, and the fine network
renders all of them together. Training fits both renderings to the pixel. The paper uses 64 +
128 samples and width 256; the defaults here (32 + 64, width 128) cost a quarter as much per ray,
for CPUs; raise them for quality.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pixelforge.config import check_range
from pixelforge.errors import ConfigError
from pixelforge.nerf.encoding import encoded_size, positional_encoding
from pixelforge.nerf.grid import DEFAULT_AABB, SceneFields
from pixelforge.nerf.render import (
    alpha_weights,
    composite,
    deltas_from_samples,
    ray_box,
    sample_pdf,
    stratified_samples,
)


@dataclass(frozen=True)
class NerfMLPConfig(SceneFields):
    width: int = 128  # units per layer (paper: 256)
    depth: int = 8  # layers of the trunk (paper: 8)
    skip: int = 4  # the encoded input rejoins after this many layers (paper: 4)
    pos_freqs: int = 10  # positional-encoding frequencies of the position (paper: 10)
    dir_freqs: int = 4  # positional-encoding frequencies of the view direction (paper: 4)
    coarse_samples: int = 32  # stratified samples per ray for the coarse network (paper: 64)
    fine_samples: int = 64  # extra samples per ray drawn from the coarse weights (paper: 128)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("model.width", self.width, low=2)
        check_range("model.depth", self.depth, low=1)
        check_range("model.pos_freqs", self.pos_freqs, low=0)
        check_range("model.dir_freqs", self.dir_freqs, low=0)
        check_range("model.coarse_samples", self.coarse_samples, low=1)
        check_range("model.fine_samples", self.fine_samples, low=0)
        if not 0 <= self.skip < self.depth:
            raise ConfigError(f"model.skip must be in [0, depth), got {self.skip}.")


class NerfNetwork(nn.Module):
    """One NeRF MLP: encoded point (and view direction) -> density and colour."""

    def __init__(self, config: NerfMLPConfig) -> None:
        super().__init__()
        self.config = config
        w, pos = config.width, encoded_size(3, config.pos_freqs)
        self.trunk = nn.ModuleList(
            nn.Linear(pos if i == 0 else w + (pos if i == config.skip else 0), w)
            for i in range(config.depth)
        )
        self.density_head = nn.Linear(w, 1)
        self.feature = nn.Linear(w, w)
        self.color_head = nn.Sequential(
            nn.Linear(w + encoded_size(3, config.dir_freqs), w // 2), nn.ReLU(),
            nn.Linear(w // 2, 3),
        )  # fmt: skip

    def forward(self, x: torch.Tensor, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Points ``x`` and unit directions ``d`` (M x 3) -> density (M) and RGB (M x 3)."""
        enc = positional_encoding(x, self.config.pos_freqs)
        h = enc
        for i, layer in enumerate(self.trunk):
            if i == self.config.skip and i > 0:
                h = torch.cat([h, enc], dim=-1)
            h = F.relu(layer(h))
        sigma = F.softplus(self.density_head(h)[:, 0] - 1.0)
        feat = torch.cat([self.feature(h), positional_encoding(d, self.config.dir_freqs)], -1)
        return sigma, torch.sigmoid(self.color_head(feat))


class NerfMLP(nn.Module):
    """Model of the ``nerf-mlp`` family: coarse and fine networks with hierarchical sampling."""

    family = "nerf-mlp"
    box: torch.Tensor  # 2 x 3 buffer: the scene box (min, max corner) that holds the samples
    background: torch.Tensor  # 3 buffer: the default background colour

    def __init__(self, config: NerfMLPConfig) -> None:
        super().__init__()
        self.config = config
        self.coarse = NerfNetwork(config)
        self.fine = NerfNetwork(config)
        self.register_buffer("box", torch.tensor(config.aabb or DEFAULT_AABB).view(2, 3))
        bg = config.background
        self.register_buffer("background", torch.tensor(bg if bg is not None else (0.0, 0.0, 0.0)))

    @property
    def noise_size(self) -> int:
        """Uniform draws per ray in training: one per coarse and one per fine sample."""
        return self.config.coarse_samples + self.config.fine_samples

    def _render(
        self,
        net: NerfNetwork,
        o: torch.Tensor,
        d: torch.Tensor,
        t: torch.Tensor,
        t_far: torch.Tensor,
        bg: torch.Tensor,
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        x = o[:, None] + t[..., None] * d[:, None]
        sigma, rgb = net(x.reshape(-1, 3), d[:, None].expand_as(x).reshape(-1, 3))
        weights = alpha_weights(sigma.float().view(t.shape), deltas_from_samples(t, t_far))
        return composite(weights, rgb.float().view(*t.shape, 3), t, bg), weights

    def render_rays(
        self,
        origins: torch.Tensor,
        directions: torch.Tensor,
        *,
        background: torch.Tensor | None = None,
        jitter: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Render rays (R x 3 origins, R x 3 unit directions): ``rgb`` (R x 3), ``depth``,
        ``acc`` (R) of the fine network, and ``rgb_coarse``. ``background`` defaults to the
        model's. ``jitter`` (R x noise_size uniform in [0, 1)) randomises the stratified and the
        hierarchical samples (training); without it rendering is deterministic."""
        nc, nf = self.config.coarse_samples, self.config.fine_samples
        bg = self.background if background is None else background
        t_near, t_far, _ = ray_box(origins, directions, self.box)
        t, bins = stratified_samples(t_near, t_far, nc, None if jitter is None else jitter[:, :nc])
        coarse, weights = self._render(self.coarse, origins, directions, t, t_far, bg)
        if nf == 0:
            return {**coarse, "rgb_coarse": coarse["rgb"]}
        extra = sample_pdf(bins, weights, nf, None if jitter is None else jitter[:, nc:])
        t_all = torch.cat([t, extra], dim=-1).sort(dim=-1).values
        fine, _ = self._render(self.fine, origins, directions, t_all, t_far, bg)
        return {**fine, "rgb_coarse": coarse["rgb"]}
