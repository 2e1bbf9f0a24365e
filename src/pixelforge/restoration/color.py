"""sRGB <-> CIE Lab (D65) on tensors, differentiable, for colorization.

Same formulas as scikit-image's ``rgb2lab`` / ``lab2rgb``: sRGB gamma, the sRGB -> XYZ matrix,
the D65 white point and the CIE f(t) with its linear segment. ``L`` is in [0, 100], ``a`` and ``b``
roughly in [-110, 110].
"""

from __future__ import annotations

import torch

_RGB_TO_XYZ = torch.tensor(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ]
)
_WHITE = torch.tensor([0.95047, 1.0, 1.08883])
_DELTA = 6.0 / 29.0


def _mix(matrix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,njhw->nihw", matrix.to(x), x)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """N x 3 x H x W sRGB in [0, 1] -> N x 3 x H x W Lab."""
    lin = torch.where(rgb > 0.04045, ((rgb.clamp(min=0) + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = _mix(_RGB_TO_XYZ, lin) / _WHITE.to(rgb)[None, :, None, None]
    f = torch.where(
        xyz > _DELTA**3, xyz.clamp(min=1e-12) ** (1 / 3), xyz / (3 * _DELTA**2) + 4 / 29
    )
    fx, fy, fz = f[:, 0], f[:, 1], f[:, 2]
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], dim=1)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """N x 3 x H x W Lab -> N x 3 x H x W sRGB, clipped to [0, 1]."""
    fy = (lab[:, 0] + 16) / 116
    f = torch.stack([fy + lab[:, 1] / 500, fy, fy - lab[:, 2] / 200], dim=1)
    xyz = torch.where(f > _DELTA, f**3, 3 * _DELTA**2 * (f - 4 / 29))
    xyz = xyz * _WHITE.to(lab)[None, :, None, None]
    lin = _mix(torch.linalg.inv(_RGB_TO_XYZ), xyz)
    rgb = torch.where(
        lin > 0.0031308, 1.055 * lin.clamp(min=1e-12) ** (1 / 2.4) - 0.055, lin * 12.92
    )
    return rgb.clamp(0, 1)
