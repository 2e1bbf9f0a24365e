"""Positional encoding of coordinates (Mildenhall et al. 2020, eq. 4).

A coordinate ``p`` is lifted to ``(p, sin(2^0 pi p), cos(2^0 pi p), ..., sin(2^(L-1) pi p),
cos(2^(L-1) pi p))`` so that an MLP, which is biased towards low frequencies, can fit detail at
frequencies up to ``2^(L-1)`` periods per unit. With ``include_input`` the raw coordinate is kept
in front, as in the reference implementation. The sines and cosines are laid out frequency-major:
for ``D`` input dimensions, frequency ``k`` occupies ``2 D`` consecutive columns (``D`` sines, then
``D`` cosines).
"""

from __future__ import annotations

import math

import torch


def encoded_size(dims: int, freqs: int, include_input: bool = True) -> int:
    """Columns of :func:`positional_encoding` for ``dims`` inputs and ``freqs`` frequencies."""
    return dims * (2 * freqs + (1 if include_input else 0))


def positional_encoding(x: torch.Tensor, freqs: int, include_input: bool = True) -> torch.Tensor:
    """``... x D`` -> ``... x encoded_size(D, freqs, include_input)``; frequencies ``2^k pi``."""
    if freqs == 0:
        return x if include_input else x[..., :0]
    scales = (2.0 ** torch.arange(freqs, dtype=x.dtype, device=x.device)) * math.pi
    angles = (x[..., None, :] * scales[:, None]).flatten(-2)  # ... x (L D), frequency-major
    parts = torch.stack([angles.sin(), angles.cos()], dim=-2)  # ... x 2 x (L D)
    # regroup as (sin f0, cos f0, sin f1, cos f1, ...), each block D wide
    enc = parts.unflatten(-1, (freqs, x.shape[-1])).transpose(-3, -2).flatten(-3)
    return torch.cat([x, enc], dim=-1) if include_input else enc
