"""Pinhole cameras and their rays, in the convention of the NeRF synthetic / Instant-NGP /
nerfstudio ``transforms*.json`` files.

``c2w`` is the OpenGL camera-to-world matrix of those files: the camera looks down its -z axis,
+y is up and +x is right in the image. A pixel ``(column u, row v)`` is sampled at its centre,
``(u + 0.5, v + 0.5)``, so its camera-space direction is

    ((u + 0.5 - cx) / fx, -(v + 0.5 - cy) / fy, -1)

(rows go down the image, camera y goes up). Rays leave the camera centre ``c2w[:3, 3]`` along
the unit vector of that direction rotated by ``c2w[:3, :3]``; distances along a ray (sample
positions, rendered depth) are therefore in world units from the camera centre.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from pixelforge.errors import ConfigError


@dataclass(frozen=True)
class Cameras:
    """``N`` pinhole cameras sharing one image size."""

    c2w: torch.Tensor  # N x 4 x 4 float32, OpenGL camera-to-world
    fx: torch.Tensor  # N focal lengths in pixels, horizontal
    fy: torch.Tensor  # N focal lengths in pixels, vertical
    cx: torch.Tensor  # N principal points in pixels (from the left edge)
    cy: torch.Tensor  # N principal points in pixels (from the top edge)
    width: int  # image width in pixels
    height: int  # image height in pixels

    def __post_init__(self) -> None:
        n = self.c2w.shape[0]
        if self.c2w.ndim != 3 or self.c2w.shape[1:] not in ((4, 4), (3, 4)):
            raise ConfigError(f"camera matrices must be N x 4 x 4, got {tuple(self.c2w.shape)}.")
        for name in ("fx", "fy", "cx", "cy"):
            if getattr(self, name).shape != (n,):
                raise ConfigError(f"camera {name} must hold one value per camera ({n}).")
        if self.width < 1 or self.height < 1:
            raise ConfigError(f"image size must be positive, got {self.width} x {self.height}.")

    def __len__(self) -> int:
        return int(self.c2w.shape[0])

    @classmethod
    def from_fov(cls, c2w: torch.Tensor, width: int, height: int, camera_angle_x: float) -> Cameras:
        """Cameras with the horizontal field of view ``camera_angle_x`` (radians), square pixels
        and the principal point at the image centre (the NeRF synthetic format)."""
        n = c2w.shape[0]
        f = 0.5 * width / math.tan(0.5 * camera_angle_x)
        full = torch.full((n,), f, dtype=torch.float32)
        return cls(
            c2w=c2w.float(),
            fx=full,
            fy=full.clone(),
            cx=torch.full((n,), width / 2, dtype=torch.float32),
            cy=torch.full((n,), height / 2, dtype=torch.float32),
            width=width,
            height=height,
        )

    def __getitem__(self, index: int | slice | torch.Tensor) -> Cameras:
        """A subset of the cameras (an int keeps a batch of one)."""
        if isinstance(index, int):
            index = slice(index, index + 1)
        return Cameras(
            self.c2w[index], self.fx[index], self.fy[index], self.cx[index], self.cy[index],
            self.width, self.height,
        )  # fmt: skip

    def scaled(self, factor: float) -> Cameras:
        """The same cameras for images resized by ``factor`` (0.5: half width and height)."""
        width, height = round(self.width * factor), round(self.height * factor)
        if width < 1 or height < 1:
            raise ConfigError(f"scaling {self.width} x {self.height} by {factor} leaves no pixels.")
        sx, sy = width / self.width, height / self.height
        return Cameras(
            self.c2w, self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, width, height
        )

    @property
    def centers(self) -> torch.Tensor:
        """N x 3 camera centres in world space."""
        return self.c2w[:, :3, 3]

    def rays(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Origins and unit directions of every pixel: two N x H x W x 3 float32 tensors."""
        v, u = torch.meshgrid(
            torch.arange(self.height, dtype=torch.float32) + 0.5,
            torch.arange(self.width, dtype=torch.float32) + 0.5,
            indexing="ij",
        )
        x = (u[None] - self.cx[:, None, None]) / self.fx[:, None, None]
        y = -(v[None] - self.cy[:, None, None]) / self.fy[:, None, None]
        d_cam = torch.stack([x, y, -torch.ones_like(x)], dim=-1)  # N x H x W x 3
        rot = self.c2w[:, :3, :3].float()
        d = torch.einsum("nij,nhwj->nhwi", rot, d_cam)
        d = d / d.norm(dim=-1, keepdim=True)
        o = self.centers.float()[:, None, None, :].expand_as(d)
        return o.contiguous(), d.contiguous()


def look_at(eye: torch.Tensor, target: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """OpenGL camera-to-world matrices (N x 4 x 4) of cameras at ``eye`` (N x 3) looking at
    ``target`` (3 or N x 3), with ``up`` (3) as the image's up direction."""
    eye = eye.float()
    forward = target.float() - eye
    forward = forward / forward.norm(dim=-1, keepdim=True)
    right = torch.cross(forward, up.float().expand_as(forward), dim=-1)
    norm = right.norm(dim=-1, keepdim=True)
    if bool((norm < 1e-6).any()):
        raise ConfigError("a camera looks straight along the up direction; its roll is undefined.")
    right = right / norm
    true_up = torch.cross(right, forward, dim=-1)
    c2w = torch.zeros(eye.shape[0], 4, 4)
    c2w[:, :3, 0], c2w[:, :3, 1], c2w[:, :3, 2] = right, true_up, -forward
    c2w[:, :3, 3], c2w[:, 3, 3] = eye, 1.0
    return c2w
