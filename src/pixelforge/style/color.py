"""Colour preservation for style transfer: luminance-only transfer.

Gatys, Bethge, Hertzmann and Shechtman (2017), "Controlling Perceptual Factors in Neural Style
Transfer", section 5: keep the content image's colours by taking only the *luminance* of the
stylized image and the *chroma* of the content. Here in CIE Lab (:mod:`pixelforge.restoration.
color`): the output's L comes from ``styled``, its a/b from ``content``.
"""

from __future__ import annotations

import torch

from pixelforge.restoration.color import lab_to_rgb, rgb_to_lab


def _rgb(x: torch.Tensor) -> torch.Tensor:
    if x.ndim not in (3, 4) or x.shape[-3] not in (1, 3):
        raise ValueError(f"expected C x H x W or N x C x H x W with C 1 or 3, got {tuple(x.shape)}")
    return x.expand(*x.shape[:-3], 3, *x.shape[-2:]) if x.shape[-3] == 1 else x


def preserve_color(styled: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """``styled``'s luminance with ``content``'s chroma (a/b in Lab); RGB in [0, 1], same size.

    Both are C x H x W (or N x C x H x W) in [0, 1]; grey (C = 1) is taken as RGB, so grey
    content gives a grey result. Returns RGB.
    """
    s, c = _rgb(styled), _rgb(content)
    if s.shape[-2:] != c.shape[-2:]:
        raise ValueError(
            f"styled ({tuple(s.shape[-2:])}) and content ({tuple(c.shape[-2:])}) sizes differ"
        )
    batched = s.ndim == 4
    s4, c4 = (s, c) if batched else (s[None], c[None])
    lab = torch.cat([rgb_to_lab(s4.float())[:, :1], rgb_to_lab(c4.float())[:, 1:]], dim=1)
    out = lab_to_rgb(lab)
    return out if batched else out[0]
