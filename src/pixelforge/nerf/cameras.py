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


def rig_up(cameras: Cameras) -> torch.Tensor:
    """The rig's up direction. Cameras of a capture rarely roll, so their image-right axes are
    all horizontal: up is the direction most nearly normal to every right axis (the least
    eigenvector of their scatter), signed like the cameras' image-up axes. With fewer than two
    distinct right axes, the mean image-up axis."""
    right = cameras.c2w[:, :3, 0].double()
    mean_up = cameras.c2w[:, :3, 1].double().mean(dim=0)
    values, vectors = torch.linalg.eigh(right.T @ right)
    up = vectors[:, 0]
    if float(values[1] - values[0]) < 1e-6 * float(values[2]):  # one right axis: no constraint
        up = mean_up
    elif float(up @ mean_up) < 0:
        up = -up
    if float(up.norm()) < 1e-6:
        raise ConfigError("the cameras' up directions cancel out; cannot orient an orbit.")
    return (up / up.norm()).float()


@dataclass(frozen=True)
class Rig:
    """A set of cameras summarised for orbits around a scene centre: what a trained model keeps
    of its training cameras (``model.rig``), so that its folder alone can render an orbit."""

    up: tuple[float, float, float]  # unit up direction (:func:`rig_up`)
    start: tuple[float, float, float]  # unit direction in the orbit plane towards camera 0
    radius: float  # median distance of the cameras from the centre
    elevation: float  # median elevation above the plane normal to ``up``, in degrees
    fx: float  # intrinsics and image size of camera 0
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        if not (self.radius > 0 and self.width > 0 and self.height > 0 and self.fx > 0):
            raise ConfigError(
                f"model.rig: radius, fx, width and height must be above 0, got {self.radius}, "
                f"{self.fx}, {self.width}, {self.height}."
            )

    @classmethod
    def of(cls, cameras: Cameras, center: torch.Tensor) -> Rig:
        """The summary of ``cameras`` around ``center`` (3)."""
        up = rig_up(cameras)
        offsets = cameras.centers.float() - center.float()
        dist = offsets.norm(dim=-1)
        heights = offsets @ up
        elevation = torch.asin((heights / dist.clamp_min(1e-9)).clamp(-1, 1)).median()
        first = offsets[0] - (offsets[0] @ up) * up
        if float(first.norm()) < 1e-6:  # camera 0 straight above: any direction normal to up
            first = torch.linalg.svd(up[None]).Vh[-1]
        start = first / first.norm()
        ux, uy, uz = (float(v) for v in up)
        sx, sy, sz = (float(v) for v in start)
        return cls(
            up=(ux, uy, uz), start=(sx, sy, sz), radius=float(dist.median()),
            elevation=math.degrees(float(elevation)), fx=float(cameras.fx[0]),
            fy=float(cameras.fy[0]), cx=float(cameras.cx[0]), cy=float(cameras.cy[0]),
            width=cameras.width, height=cameras.height,
        )  # fmt: skip
