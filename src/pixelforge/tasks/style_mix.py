"""The style-mixing grid of StyleGAN (Karras et al. 2019, figure 3) from a loaded model.

Top row: N "source A" images (the latents of seed S, the images ``pixelforge sample --seed S``
gives). Left column: N "source B" images (seed S + 1). The cell below A_j and right of B_i takes
its coarse styles (ws layers 0 .. crossover-1; the default 4 is the 4x4 and 8x8 layers: pose,
shape) from A_j and its fine styles (the rest: colour, texture, detail) from B_i.
"""

from __future__ import annotations

import torch

from pixelforge.errors import ConfigError
from pixelforge.models.stylegan import StyleGAN, check_truncation, fixed_chunks

MAX_SOURCES = 32
DEFAULT_CROSSOVER = 4  # ws layers 0-3: the 4x4 and 8x8 resolutions


def mixed_ws(
    w_coarse: torch.Tensor, w_fine: torch.Tensor, num_ws: int, crossover: int
) -> torch.Tensor:
    """Per-layer W (N x num_ws x w_dim): layers < ``crossover`` from ``w_coarse``, the rest from
    ``w_fine`` (both N x w_dim)."""
    layer = torch.arange(num_ws, device=w_coarse.device)[None, :, None]
    return torch.where(layer < crossover, w_coarse[:, None], w_fine[:, None])


def resolve_crossover(model: StyleGAN, crossover: int | None) -> int:
    num_ws = model.generator.num_ws
    if crossover is None:
        return min(DEFAULT_CROSSOVER, num_ws - 1)
    if not 1 <= crossover < num_ws:
        raise ConfigError(
            f"--mix-layers must be between 1 and {num_ws - 1} for this model "
            f"({num_ws} style layers), got {crossover}."
        )
    return crossover


@torch.no_grad()
def style_mix_grid(
    model: torch.nn.Module,
    n: int,
    *,
    seed: int = 0,
    class_label: int | None = None,
    crossover: int | None = None,
    truncation: float = 1.0,
) -> torch.Tensor:
    """(n + 1)^2 images in [0, 1] for a grid of n + 1 columns; the top-left cell is white."""
    if not isinstance(model, StyleGAN):
        raise ConfigError(
            f"--style-mix needs a stylegan model, got a {getattr(model, 'family', '?')} model."
        )
    if not 1 <= n <= MAX_SOURCES:
        raise ConfigError(f"--n must be between 1 and {MAX_SOURCES} with --style-mix, got {n}.")
    check_truncation(truncation)
    k = resolve_crossover(model, crossover)
    was_training = model.training
    model.eval()
    G = model.generator
    device = next(model.parameters()).device

    def w_of(s: int) -> torch.Tensor:
        labels = model.default_labels(n, class_label)
        z = model.sample_latents(n, s).to(device)
        lb = None if labels is None else labels.to(device)
        return fixed_chunks(lambda zc, lc: G.mapping(zc, lc, truncation=truncation), z, lb)

    wa, wb = w_of(seed), w_of(seed + 1)
    # cell (i, j) at index i * n + j: coarse from A_j, fine from B_i
    ws = mixed_ws(wa.repeat(n, 1), wb.repeat_interleave(n, dim=0), G.num_ws, k)
    ws = torch.cat([wa[:, None].expand(-1, G.num_ws, -1), wb[:, None].expand(-1, G.num_ws, -1), ws])
    images = fixed_chunks(G.synthesis, ws).float().cpu()
    model.train(was_training)
    images = ((images + 1) / 2).clamp(0, 1)
    top, left, cells = images[:n], images[n : 2 * n], images[2 * n :]
    grid = torch.ones((n + 1) ** 2, *images.shape[1:])
    grid[1 : n + 1] = top
    for i in range(n):
        row = (i + 1) * (n + 1)
        grid[row] = left[i]
        grid[row + 1 : row + n + 1] = cells[i * n : (i + 1) * n]
    return grid
