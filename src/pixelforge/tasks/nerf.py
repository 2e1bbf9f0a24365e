"""Using a trained radiance field: render given cameras, an orbit or depth, and score views.

- :func:`orbit` places cameras on a circle around the scene, at the training rig's distance and
  median elevation, turning about the rig's "up" direction, with the intrinsics of a training
  camera (all kept in a model's config as a :class:`~pixelforge.nerf.cameras.Rig`);
- :func:`render_views` renders RGB (or depth) images for any :class:`~pixelforge.nerf.cameras.
  Cameras`, one view at a time through :func:`pixelforge.nerf.render.render_image`;
- :func:`depth_image` maps depth to a grey image (near bright, far dark, empty space black);
- :func:`evaluate_split` gives PSNR and SSIM per view and their means;
- :func:`write_video` writes frames as an animated GIF (Pillow) or an MP4 (H.264 through
  imageio-ffmpeg, the optional ``video`` extra), atomically.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pixelforge.errors import ConfigError
from pixelforge.io.atomic import atomic_write_bytes
from pixelforge.metrics.image_quality import psnr, ssim
from pixelforge.nerf.cameras import Cameras, Rig, look_at

VIDEO_SUFFIXES = (".gif", ".mp4")
MAX_FRAMES = 3600  # an orbit's frame cap: a minute at 60 fps

Progress = Callable[[int, int], None]  # (views done, total views)


def orbit(
    rig: Rig | Cameras,
    frames: int,
    *,
    center: torch.Tensor,
    elevation: float | None = None,
    radius: float | None = None,
    turns: float = 1.0,
) -> Cameras:
    """``frames`` cameras on a circle about ``center`` looking at it.

    ``rig`` is a model's :class:`~pixelforge.nerf.cameras.Rig` or the (training) cameras it
    summarises. Radius and elevation (degrees above the plane through ``center`` normal to the
    rig's up direction) default to the rig's medians; the intrinsics and image size are those of
    its first camera. The circle starts at the first camera's azimuth.
    """
    if frames < 1:
        raise ConfigError(f"an orbit needs at least 1 frame, got {frames}.")
    if frames > MAX_FRAMES:
        raise ConfigError(f"an orbit has at most {MAX_FRAMES} frames, got {frames}.")
    if isinstance(rig, Cameras):
        rig = Rig.of(rig, center)
    r = rig.radius if radius is None else radius
    if not r > 0:
        raise ConfigError(f"the orbit radius must be above 0, got {r}.")
    elev = math.radians(rig.elevation if elevation is None else elevation)
    if abs(math.cos(elev)) < 1e-3:
        raise ConfigError("an orbit at +-90 degrees elevation looks straight along the up axis.")
    up, a = torch.tensor(rig.up), torch.tensor(rig.start)  # (a, b): the orbit plane's frame
    b = torch.cross(up, a, dim=0)
    angles = torch.arange(frames, dtype=torch.float32) * (2 * math.pi * turns / frames)
    ring = torch.cos(angles)[:, None] * a + torch.sin(angles)[:, None] * b
    eye = center.float() + r * (math.cos(elev) * ring + math.sin(elev) * up)
    c2w = look_at(eye, center.float(), up)
    full = torch.full((frames,), 1.0)
    return Cameras(
        c2w=c2w, fx=full * rig.fx, fy=full * rig.fy, cx=full * rig.cx, cy=full * rig.cy,
        width=rig.width, height=rig.height,
    )  # fmt: skip


@torch.no_grad()
def render_views(
    model: Any, cameras: Cameras, *, progress: Progress | None = None
) -> list[dict[str, torch.Tensor]]:
    """Render every camera: a list of {"rgb": H x W x 3, "depth": H x W, "acc": H x W}."""
    from pixelforge.nerf.render import render_image

    model.eval()
    out = []
    for i in range(len(cameras)):
        out.append(render_image(model, cameras[i]))
        if progress is not None:
            progress(i + 1, len(cameras))
    return out


def depth_image(
    depth: torch.Tensor, acc: torch.Tensor, *, near: float | None = None, far: float | None = None
) -> np.ndarray:
    """H x W x 3 uint8: inverse depth scaled between ``near`` (white) and ``far`` (dark grey),
    weighted by opacity so that empty space is black. ``near``/``far`` default to the 1st and
    99th percentiles of the opaque pixels' depth (pass fixed values for a steady video)."""
    solid = depth[acc > 0.5]
    if near is None or far is None:
        if solid.numel() == 0:
            return np.zeros((*depth.shape, 3), dtype=np.uint8)
        q = torch.quantile(solid.float(), torch.tensor([0.01, 0.99]))
        near = float(q[0]) if near is None else near
        far = float(q[1]) if far is None else far
    span = max(far - near, 1e-6)
    shade = 1.0 - 0.8 * ((depth - near) / span).clamp(0, 1)
    grey = (shade * acc.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    return np.repeat(grey[..., None], 3, axis=-1)


def to_uint8(rgb: torch.Tensor) -> np.ndarray:
    """H x W x 3 float in [0, 1] -> uint8 array."""
    return (rgb.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


def write_video(frames: Sequence[np.ndarray], path: str | Path, *, fps: float = 24) -> Path:
    """Write H x W x 3 uint8 ``frames`` as ``.gif`` (looping) or ``.mp4``, atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise ConfigError(f"cannot write a video as '{path.name}': use a .gif or .mp4 file name.")
    if not frames:
        raise ConfigError("no frames to write.")
    if not fps > 0:
        raise ConfigError(f"--fps must be above 0, got {fps}.")
    buf = io.BytesIO()
    if suffix == ".gif":
        from PIL import Image

        images = [Image.fromarray(f) for f in frames]
        images[0].save(
            buf, format="GIF", save_all=True, append_images=images[1:], loop=0,
            duration=round(1000 / fps), optimize=False,
        )  # fmt: skip
    else:
        try:
            import imageio.v3 as iio
            import imageio_ffmpeg  # noqa: F401  (the encoder imageio uses for MP4)
        except ImportError:
            raise ConfigError(
                "writing MP4 needs imageio-ffmpeg: pip install 'pixelforge[video]', or write a "
                ".gif instead."
            ) from None
        h, w = frames[0].shape[:2]
        even = [f[: h - h % 2, : w - w % 2] for f in frames]  # H.264 wants even sides
        data = iio.imwrite(
            "<bytes>", np.stack(even), extension=".mp4", plugin="FFMPEG", fps=fps,
            codec="libx264", macro_block_size=2,  # no resizing to multiples of 16
        )  # fmt: skip
        buf.write(data)
    atomic_write_bytes(path, buf.getvalue())
    return path


@torch.no_grad()
def evaluate_split(
    model: Any,
    images: torch.Tensor,
    cameras: Cameras,
    files: Sequence[str],
    *,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """PSNR (dB) and SSIM of the model's render of each camera against ``images``
    (N x H x W x 3 in [0, 1]); per view and their means."""
    views: list[dict[str, Any]] = []
    psnrs: list[float] = []
    ssims: list[float] = []
    renders = render_views(model, cameras, progress=progress)
    for name, target, out in zip(files, images, renders, strict=True):
        pred = out["rgb"].clamp(0, 1).permute(2, 0, 1)[None].double()
        ref = target.permute(2, 0, 1)[None].double()
        psnrs.append(float(psnr(pred, ref)[0]))
        if min(ref.shape[-2:]) >= 11:  # SSIM's window
            ssims.append(float(ssim(pred, ref)[0]))
        views.append({"file": str(name), "psnr": psnrs[-1], "ssim": ssims[-1] if ssims else None})
    return {
        "views": views,
        "psnr": float(np.mean(psnrs)),
        "ssim": float(np.mean(ssims)) if ssims else None,
    }
