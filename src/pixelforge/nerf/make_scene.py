"""Built-in NeRF test scenes: ray-traced analytic primitives written in the NeRF synthetic format.

A scene folder holds ``transforms_{train,val,test}.json`` (``camera_angle_x``, an ``"aabb"``
box and ``frames`` with ``file_path`` written without extension, ``"./train/r_0"``, and the 4 x 4
OpenGL ``transform_matrix``) and RGBA PNGs under ``train/``, ``val/`` and ``test/``, exactly like
the Blender scenes (lego), so :func:`pixelforge.nerf.scenes.load_scene` reads it as one of them.

Conventions match lego: world +z is up, objects lie within [-1, 1]^3 (the ``aabb``), cameras sit
at radius 4 looking at the origin with ``camera_angle_x`` = 0.6911 (lego's). Cameras are on the
upper hemisphere (elevation asin(0.1)..asin(0.9)), except in "hard", where they cover the whole
sphere (z/r in -0.9..0.9). Positions follow a Fibonacci spiral whose phase and start are drawn
per split from ``seed``, so train, val and test views differ. Images are ray traced (numpy,
float64) with Lambert + Blinn-Phong shading from one fixed directional light, hard shadows, 4 x 4
supersampling (fractional alpha at edges, straight alpha as in Blender's PNGs) and alpha 0 where
rays miss. Everything is a function of the arguments: the same seed gives the same bytes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pixelforge.errors import ConfigError, PixelforgeError
from pixelforge.io.atomic import atomic_directory, atomic_write_text
from pixelforge.io.images import write_png
from pixelforge.nerf.cameras import Cameras, look_at

SCENES: dict[str, str] = {
    "simple": "one checkered sphere on a striped pedestal over a checkered ground disc",
    "objects": "five textured spheres, boxes and a cylinder occluding each other on a ground disc",
    "hard": "fine textures, thin posts and spokes, shiny spheres, heavy occlusion; full-sphere views",
}
CAMERA_ANGLE_X = 0.6911112070083618  # lego's horizontal field of view, radians
RADIUS = 4.0  # camera distance from the origin
AABB = [[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]  # holds every object
LIGHT = np.array([0.45, -0.35, 0.82]) / np.linalg.norm([0.45, -0.35, 0.82])
SUPERSAMPLE = 4  # rays per pixel side (2 left view-dependent aliasing on `hard`'s fine stripes)
_EPS = 1e-6
Vec3 = tuple[float, float, float]
Texture = Callable[[np.ndarray], np.ndarray]  # local points M x 3 -> albedo M x 3 in [0, 1]


def _max3(v: np.ndarray) -> np.ndarray:  # v.max(-1) of M x 3, several times faster
    return np.maximum(np.maximum(v[:, 0], v[:, 1]), v[:, 2])


def _min3(v: np.ndarray) -> np.ndarray:
    return np.minimum(np.minimum(v[:, 0], v[:, 1]), v[:, 2])


@dataclass(frozen=True)
class Primitive:
    """An analytic shape, placed by a translation and a rotation about world z."""

    kind: str  # "sphere", "box", "cylinder" (axis: local z, capped) or "disc" (local z = 0)
    centre: Vec3  # world position of the local origin
    size: Vec3  # box: half sides; sphere (r, r, r); disc (r, r, 0); cylinder (r, r, half height)
    texture: Texture  # albedo of the local surface point
    angle: float = 0.0  # rotation about world z, radians
    shininess: float = 0.0  # Blinn-Phong exponent of the highlight; 0 for a matte surface

    def to_local(self, v: np.ndarray) -> np.ndarray:
        """Rotate world vectors (M x 3) into the primitive's frame (no translation)."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        return np.stack([c * v[:, 0] + s * v[:, 1], -s * v[:, 0] + c * v[:, 1], v[:, 2]], -1)

    def to_world(self, v: np.ndarray) -> np.ndarray:
        c, s = math.cos(self.angle), math.sin(self.angle)
        return np.stack([c * v[:, 0] - s * v[:, 1], s * v[:, 0] + c * v[:, 1], v[:, 2]], -1)

    def extent(self) -> np.ndarray:
        """Half sides (3) of the world-axis-aligned box around the primitive."""
        c, s = abs(math.cos(self.angle)), abs(math.sin(self.angle))
        x, y, z = self.size
        return np.array([c * x + s * y, s * x + c * y, z]) + 1e-6

    def hit(self, o: np.ndarray, d: np.ndarray) -> np.ndarray:
        """Distance along each world ray (M) to the first hit beyond a tiny epsilon, inf if none.
        Only the rays that cross the primitive's bounding box are traced exactly."""
        t = np.full(len(o), np.inf)
        centre, extent = np.asarray(self.centre), self.extent()
        with np.errstate(divide="ignore", invalid="ignore"):
            t1, t2 = (centre - extent - o) / d, (centre + extent - o) / d
        near, far = _max3(np.fmin(t1, t2)), _min3(np.fmax(t1, t2))
        rays = np.flatnonzero((near <= far) & (far > 0))
        if len(rays):
            t[rays] = self._hit_local(self.to_local(o[rays] - centre), self.to_local(d[rays]))
        return t

    def _hit_local(self, o: np.ndarray, d: np.ndarray) -> np.ndarray:
        r, _, h = self.size
        inf = np.inf
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if self.kind == "sphere":
                b, c = (o * d).sum(-1), (o * o).sum(-1) - r * r
                s = np.sqrt(b * b - c)  # nan on a miss
                return np.where(-b - s > _EPS, -b - s, np.where(-b + s > _EPS, -b + s, inf))
            if self.kind == "box":
                t1, t2 = (-np.asarray(self.size) - o) / d, (np.asarray(self.size) - o) / d
                near, far = _max3(np.minimum(t1, t2)), _min3(np.maximum(t1, t2))
                t = np.where(near > _EPS, near, far)
                return np.where((far >= near) & (t > _EPS), t, inf)
            if self.kind == "disc":
                t = -o[:, 2] / d[:, 2]
                p = o + t[:, None] * d
                return np.where((t > _EPS) & ((p[:, :2] ** 2).sum(-1) <= r * r), t, inf)
            a = (d[:, :2] ** 2).sum(-1)  # cylinder: side roots, then the two caps
            b = (o[:, :2] * d[:, :2]).sum(-1)
            s = np.sqrt(b * b - a * ((o[:, :2] ** 2).sum(-1) - r * r))
            cands = [(-b - s) / a, (-b + s) / a, (-h - o[:, 2]) / d[:, 2], (h - o[:, 2]) / d[:, 2]]
            best = np.full(len(o), inf)
            for i, t in enumerate(cands):
                p = o + t[:, None] * d
                inside = np.abs(p[:, 2]) <= h if i < 2 else (p[:, :2] ** 2).sum(-1) <= r * r
                best = np.where((t > _EPS) & inside & (t < best), t, best)
            return best

    def normal(self, p: np.ndarray) -> np.ndarray:
        """Outward unit normals (M x 3, local) at local surface points."""
        r, _, h = self.size
        if self.kind == "sphere":
            return p / r
        if self.kind == "disc":
            return np.tile([0.0, 0.0, 1.0], (len(p), 1))
        if self.kind == "box":
            q = p / np.asarray(self.size)
            axis = np.abs(q).argmax(-1)
            n = np.zeros_like(p)
            n[np.arange(len(p)), axis] = np.sign(q[np.arange(len(p)), axis])
            return n
        radial = np.linalg.norm(p[:, :2], axis=-1)
        cap = (h - np.abs(p[:, 2])) < (r - radial)
        side = np.concatenate([p[:, :2] / np.maximum(radial, _EPS)[:, None], 0 * p[:, 2:]], -1)
        return np.where(
            cap[:, None], np.stack([0 * p[:, 0], 0 * p[:, 0], np.sign(p[:, 2])], -1), side
        )


def _mix(a: tuple[float, ...], b: tuple[float, ...], w: np.ndarray) -> np.ndarray:
    return np.asarray(a) + (np.asarray(b) - np.asarray(a)) * np.clip(w, 0, 1)[:, None]


def checker(cell: float, a: tuple[float, ...], b: tuple[float, ...]) -> Texture:
    """A 3-D checkerboard of cubes of side ``cell``."""
    # +1e-4: a flat face lying on a cell boundary (a disc at z = 0) gets one colour, not noise
    return lambda p: _mix(a, b, np.floor(p / cell + 1e-4).sum(-1) % 2)


def sphere_checker(n_lon: int, n_lat: int, a: tuple[float, ...], b: tuple[float, ...]) -> Texture:
    """A checkerboard in longitude / latitude (``n_lon`` x ``n_lat`` cells) around local z."""

    def texture(p: np.ndarray) -> np.ndarray:
        lon = np.arctan2(p[:, 1], p[:, 0]) / (2 * np.pi) + 0.5
        lat = np.arccos(np.clip(p[:, 2] / np.linalg.norm(p, axis=-1), -1, 1)) / np.pi
        return _mix(a, b, (np.floor(lon * n_lon) + np.floor(lat * n_lat)) % 2)

    return texture


def stripes(axis: int, period: float, a: tuple[float, ...], b: tuple[float, ...]) -> Texture:
    """Stripes across local ``axis`` (0, 1, 2 = x, y, z), ``period`` world units wide."""
    return lambda p: _mix(a, b, np.floor(p[:, axis] / (period / 2) + 1e-4) % 2)


def gradient(
    axis: int, lo: float, hi: float, a: tuple[float, ...], b: tuple[float, ...]
) -> Texture:
    """Colour ``a`` at local ``axis`` = ``lo`` blending linearly to ``b`` at ``hi``."""
    return lambda p: _mix(a, b, (p[:, axis] - lo) / (hi - lo))


def noise(
    rng: np.random.Generator, freq: float, a: tuple[float, ...], b: tuple[float, ...]
) -> Texture:
    """Smooth pseudo-random blotches: six random plane waves of about ``freq`` cycles per unit."""
    k = rng.normal(size=(6, 3)) * freq * 2 * np.pi / math.sqrt(3)
    phase = rng.uniform(0, 2 * np.pi, 6)
    return lambda p: _mix(a, b, 0.5 + np.sin(p @ k.T + phase).sum(-1) / 5)


def _colour(rng: np.random.Generator) -> tuple[float, float, float]:
    """A saturated colour of random hue."""
    hue = rng.uniform(0, 6)
    ramp = np.clip(np.abs((hue + np.array([0.0, 4.0, 2.0])) % 6 - 3) - 1, 0, 1)
    rgb = 0.15 + 0.8 * ramp
    return float(rgb[0]), float(rgb[1]), float(rgb[2])


def scene_primitives(name: str, seed: int = 0) -> list[Primitive]:
    """The primitives of the built-in scene ``name`` (colours and layout drawn from ``seed``)."""
    if name not in SCENES:
        known = ", ".join(f"{k} ({v})" for k, v in SCENES.items())
        raise ConfigError(f"unknown scene {name!r}. Known scenes: {known}.")
    rng = np.random.default_rng([seed, 1000])
    white, grey = (0.9, 0.9, 0.9), (0.35, 0.35, 0.38)
    spin = rng.uniform(0, 2 * np.pi)
    if name == "simple":
        return [
            Primitive("disc", (0, 0, -0.6), (1.0, 1.0, 0), checker(0.25, white, grey)),
            Primitive("cylinder", (0, 0, -0.35), (0.3, 0.3, 0.25), stripes(2, 0.1, _colour(rng), white)),
            Primitive("sphere", (0, 0, 0.4), (0.5, 0.5, 0.5), sphere_checker(8, 4, _colour(rng), white), spin, 30),
        ]  # fmt: skip
    if name == "objects":

        def at(turn: float, z: float, radius: float = 0.55) -> tuple[float, float, float]:
            return radius * math.cos(spin + turn), radius * math.sin(spin + turn), z

        return [
            Primitive("disc", (0, 0, -0.5), (1.0, 1.0, 0), noise(rng, 2, white, _colour(rng))),
            Primitive("box", at(0, -0.25), (0.25, 0.25, 0.25), stripes(0, 0.16, _colour(rng), white), spin),
            Primitive("sphere", at(0, 0.3), (0.3, 0.3, 0.3), sphere_checker(10, 5, _colour(rng), white), 0, 40),
            Primitive("cylinder", (0, 0, -0.05), (0.18, 0.18, 0.45), noise(rng, 4, _colour(rng), white)),
            Primitive("sphere", at(2.1, -0.15), (0.35, 0.35, 0.35), checker(0.15, _colour(rng), grey), 0, 60),
            Primitive("box", at(4.2, -0.1), (0.12, 0.3, 0.4), gradient(2, -0.4, 0.4, _colour(rng), _colour(rng)), spin + 0.7),
        ]  # fmt: skip
    prims = [
        Primitive("sphere", (0, 0, 0), (0.45, 0.45, 0.45), sphere_checker(32, 16, _colour(rng), (0.05,) * 3), spin, 80),
        Primitive("box", (0, 0, -0.62), (0.6, 0.6, 0.04), stripes(0, 0.06, _colour(rng), white), spin),
    ]  # fmt: skip
    for i in range(12):  # thin posts on a circle
        turn = spin + i * np.pi / 6
        where = (0.8 * math.cos(turn), 0.8 * math.sin(turn), 0.0)
        prims.append(
            Primitive("cylinder", where, (0.025, 0.025, 0.6), stripes(2, 0.08, _colour(rng), white))
        )
    for i in range(4):  # thin spokes crossing above the sphere
        prims.append(
            Primitive(
                "box",
                (0, 0, 0.62),
                (0.8, 0.02, 0.02),
                gradient(0, -0.8, 0.8, _colour(rng), white),
                spin + i * np.pi / 4,
            )
        )
    for i in range(3):  # small shiny spheres in between
        turn = spin + (i + 0.5) * 2 * np.pi / 3
        where = (0.6 * math.cos(turn), 0.6 * math.sin(turn), float(rng.uniform(-0.35, 0.35)))
        prims.append(
            Primitive("sphere", where, (0.15,) * 3, noise(rng, 12, _colour(rng), white), 0, 120)
        )
    return prims


def _trace(prims: list[Primitive], o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest hit distance (inf on a miss) and the index of the primitive hit, per ray."""
    ts = np.stack([p.hit(o, d) for p in prims])
    return ts.min(0), ts.argmin(0)


def render(prims: list[Primitive], camera: Cameras) -> np.ndarray:
    """The RGBA image (H x W x 4 uint8, straight alpha) of one camera, SUPERSAMPLE^2 rays per
    pixel."""
    o_t, d_t = camera[0].scaled(SUPERSAMPLE).rays()
    o, d = o_t.reshape(-1, 3).double().numpy(), d_t.reshape(-1, 3).double().numpy()
    t, which = _trace(prims, o, d)
    hit = np.flatnonzero(np.isfinite(t))
    p = o[hit] + t[hit, None] * d[hit]
    n, albedo, shininess = np.zeros_like(p), np.zeros_like(p), np.zeros(len(hit))
    for i, prim in enumerate(prims):
        sel = np.flatnonzero(which[hit] == i)
        local = prim.to_local(p[sel] - np.asarray(prim.centre))
        n[sel] = prim.to_world(prim.normal(local))
        albedo[sel] = prim.texture(local)
        shininess[sel] = prim.shininess
    n *= -np.sign((n * d[hit]).sum(-1, keepdims=True) + _EPS)  # face the viewer (disc)
    lit = ~np.isfinite(_trace(prims, p + 1e-4 * n, np.tile(LIGHT, (len(hit), 1)))[0])
    lit &= n @ LIGHT > 0  # in shadow, or facing away from the light
    half = LIGHT - d[hit]
    half /= np.linalg.norm(half, axis=-1, keepdims=True)
    spec = np.maximum((n * half).sum(-1), 0) ** np.maximum(shininess, 1) * (shininess > 0)
    colour = np.zeros_like(o)
    colour[hit] = albedo * (0.3 + 0.7 * (n @ LIGHT) * lit)[:, None]
    colour[hit] += (0.5 * spec * lit)[:, None]
    covered = np.isfinite(t)
    h, w, s = camera.height, camera.width, SUPERSAMPLE
    rgba = np.concatenate([np.clip(colour, 0, 1), covered[:, None]], -1)
    rgba = rgba.reshape(h, s, w, s, 4).mean(axis=(1, 3))  # premultiplied colour, coverage
    alpha = rgba[..., 3:]
    rgb = np.where(alpha > 0, rgba[..., :3] / np.maximum(alpha, _EPS), 0.0)
    return np.rint(np.concatenate([rgb, alpha], -1) * 255).astype(np.uint8)


def camera_positions(n: int, seed: int, split: int, full_sphere: bool = False) -> np.ndarray:
    """``n`` camera centres (n x 3) at :data:`RADIUS` on a Fibonacci spiral of the upper
    hemisphere (or the sphere), its start and phase drawn from (``seed``, ``split``)."""
    rng = np.random.default_rng([seed, split])
    z0, z1 = (-0.9, 0.9) if full_sphere else (0.1, 0.9)
    z = z0 + (z1 - z0) * (np.arange(n) + rng.uniform()) / n
    phi = rng.uniform(0, 2 * np.pi) + np.arange(n) * np.pi * (3 - math.sqrt(5))
    ring = np.sqrt(1 - z * z)
    return RADIUS * np.stack([ring * np.cos(phi), ring * np.sin(phi), z], -1)


def _check_count(name: str, value: int, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(f"{name} must be a whole number from {lo} to {hi}, got {value!r}.")


def make_scene(
    name: str,
    *,
    views: int,
    size: int,
    out: str | Path,
    seed: int = 0,
    val_views: int = 10,
    test_views: int = 20,
    overwrite: bool = False,
) -> Path:
    """Render the built-in scene ``name`` (see :data:`SCENES`) into the folder ``out``.

    ``views`` train views (1..1000), ``val_views`` and ``test_views`` (1..1000 each) of
    ``size`` x ``size`` pixels (16..1024). The folder is built next to ``out`` and renamed into
    place, so ``out`` is either complete or absent; an existing non-empty ``out`` is refused
    unless ``overwrite``. Returns ``out``.
    """
    prims = scene_primitives(name, seed)
    _check_count("views", views, 1, 1000)
    _check_count("val_views", val_views, 1, 1000)
    _check_count("test_views", test_views, 1, 1000)
    _check_count("size", size, 16, 1024)
    out = Path(out)
    if out.exists() and not (out.is_dir() and not any(out.iterdir())) and not overwrite:
        raise ConfigError(
            f"{out} already exists and is not empty. Choose another folder, or replace it with "
            "--overwrite (overwrite=True in Python)."
        )
    staging = out.parent / f".{out.name}.{os.getpid()}.new"  # complete before it is swapped in
    shutil.rmtree(staging, ignore_errors=True)  # left by a crash of an earlier process
    with atomic_directory(staging) as tmp:
        splits = [("train", views), ("val", val_views), ("test", test_views)]
        for index, (split, n) in enumerate(splits):
            eye = torch.from_numpy(camera_positions(n, seed, index, name == "hard"))
            c2w = look_at(eye, torch.zeros(3), torch.tensor([0.0, 0.0, 1.0]))
            cameras = Cameras.from_fov(c2w, size, size, CAMERA_ANGLE_X)
            frames = []
            for i in range(n):
                image = render(prims, cameras[i])
                write_png(tmp / split / f"r_{i}.png", image, {"scene": name, "seed": seed})
                frames.append(
                    {"file_path": f"./{split}/r_{i}", "transform_matrix": c2w[i].tolist()}
                )
            meta = {"camera_angle_x": CAMERA_ANGLE_X, "aabb": AABB, "frames": frames}
            atomic_write_text(tmp / f"transforms_{split}.json", json.dumps(meta, indent=2) + "\n")
    if out.exists():  # an empty folder, or overwrite: move the old one aside, then swap
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
        os.rename(out, old / "scene")
        os.rename(staging, out)
        shutil.rmtree(old)
    else:
        os.rename(staging, out)
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m pixelforge.nerf.make_scene NAME --out DIR [--views N --size S --seed K]``."""
    parser = argparse.ArgumentParser(
        prog="python -m pixelforge.nerf.make_scene", description=__doc__.split("\n")[0]
    )
    parser.add_argument("name", nargs="?", help="scene name (see --list)")
    parser.add_argument("--list", action="store_true", help="list the scenes and exit")
    parser.add_argument("--out", type=Path, help="scene folder to write")
    parser.add_argument("--views", type=int, default=100, help="train views (default 100)")
    parser.add_argument("--val-views", type=int, default=10)
    parser.add_argument("--test-views", type=int, default=20)
    parser.add_argument("--size", type=int, default=100, help="image side in pixels (default 100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    if args.list or args.name is None or args.out is None:
        for key, text in SCENES.items():
            print(f"{key:8} {text}")
        return 0 if args.list else 2
    try:
        path = make_scene(
            args.name, views=args.views, size=args.size, out=args.out, seed=args.seed,
            val_views=args.val_views, test_views=args.test_views, overwrite=args.overwrite,
        )  # fmt: skip
    except PixelforgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
