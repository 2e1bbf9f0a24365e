"""Load NeRF scenes: posed images in the NeRF synthetic / Instant-NGP or nerfstudio format.

Formats (detected from the file names, no conversion needed):

* **nerf-synthetic** (Blender scenes such as lego, Instant-NGP): ``transforms_train.json``,
  ``transforms_val.json``, ``transforms_test.json`` next to each other, each one split.
* **nerfstudio**: one ``transforms.json``. Every frame is "train" unless the file has
  ``train_filenames`` / ``val_filenames`` / ``test_filenames`` lists, which are honoured (a frame
  named in none of them is not loaded). Frames keep the order of the file.

Each file has ``frames``, each with ``file_path`` (relative to the json's folder; without an
extension, as in the Blender files, ``<path>.png`` is tried first, then the bare name) and
``transform_matrix`` (4 x 4 or 3 x 4 OpenGL camera-to-world, see :mod:`pixelforge.nerf.cameras`).
Intrinsics come from the frame, else from the top level of its file: ``fl_x`` (else
``camera_angle_x``, the horizontal field of view in radians), ``fl_y`` (else ``camera_angle_y``,
else ``fl_x``), ``cx``/``cy`` (else the image centre). If ``w``/``h`` are given and the image has
another size (a resized copy), the intrinsics are scaled to the image. Distortion coefficients
(``k1``..``k4``, ``p1``, ``p2``) are ignored, with a warning when they are not zero. All images
of a split must have one size.

Scene box: an ``"aabb": [[x0, y0, z0], [x1, y1, z1]]`` key in the file is used as is (nerfstudio
files have no box key: nerfstudio sets its box from its own options). Instant-NGP's
``aabb_scale`` is a power-of-two bound on the *background* in Instant-NGP's own normalised
coordinates, not a box around the object, so it is ignored. Otherwise the box is derived from the
camera rig of all the scene's frames (all splits, whichever are loaded, so the box does not
depend on the selection), see :func:`rig_box`. For the same reason every split's frames and
image headers are checked even when only some splits are loaded.

Every problem with the files is a :class:`DataError` (a bad option a :class:`ConfigError`)
naming the file and frame and saying what to do.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from pixelforge.errors import ConfigError, DataError
from pixelforge.io.images import IMAGE_EXTENSIONS, image_info, read_image
from pixelforge.nerf.cameras import Cameras

SPLITS = ("train", "val", "test")
BACKGROUNDS = {"white": (1.0, 1.0, 1.0), "black": (0.0, 0.0, 0.0)}
MAX_SPLIT_BYTES = 4 * 2**30  # decoded float32 images (colour and alpha) of one split
_ALPHA_MODES = {"RGBA", "LA", "PA", "La", "RGBa"}
_DISTORTION = ("k1", "k2", "k3", "k4", "p1", "p2")
_PINHOLE_MODELS = {"OPENCV", "PINHOLE", "SIMPLE_PINHOLE"}  # nerfstudio camera_model values


@dataclass(frozen=True)
class SceneSplit:
    """The posed images of one split."""

    images: torch.Tensor  # N x H x W x 3 float32 in [0, 1], composited on Scene.background if alpha
    alpha: torch.Tensor | None  # N x H x W float32 in [0, 1] when the files have alpha, else None
    cameras: Cameras  # one camera per image, for the (downscaled) image size
    files: tuple[str, ...]  # the image paths, as resolved (extension included)


@dataclass(frozen=True)
class Scene:
    """A loaded scene: its splits and the box that holds it."""

    root: Path  # the folder of the transforms file(s)
    format: str  # "nerf-synthetic" (transforms_{train,val,test}.json) or "nerfstudio"
    splits: dict[str, SceneSplit]  # "train", "val", "test": those present (and requested)
    aabb: torch.Tensor  # 2 x 3 float32: min corner, max corner of the box holding the scene
    aabb_source: str  # "file" (an "aabb" key) or "camera rig" (see rig_box)
    background: tuple[float, float, float] | None  # what alpha images were composited on

    def near_far(self) -> tuple[float, float]:
        """Near and far ray distances that hold the box from every camera: the camera distances
        to the box centre minus / plus the box's half diagonal (near at least 1% of the closest
        camera's distance, so it stays positive for a camera inside the box)."""
        centre = self.aabb.mean(dim=0)
        radius = float(0.5 * (self.aabb[1] - self.aabb[0]).norm())
        dist = torch.cat([(s.cameras.centers - centre).norm(dim=-1) for s in self.splits.values()])
        near = max(float(dist.min()) - radius, 0.01 * float(dist.min()))
        return near, float(dist.max()) + radius


@dataclass(frozen=True)
class _Frame:
    """One frame as parsed from a transforms file, before its image is decoded."""

    index: int  # position in the file's "frames" list
    source: Path  # the transforms file
    file: Path  # the image file found
    c2w: np.ndarray  # 4 x 4 float64
    intrinsics: tuple[float, float, float, float]  # fx, fy, cx, cy in pixels of the image
    size: tuple[int, int]  # width, height of the image file
    stored_alpha: bool  # the file stores an alpha channel


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}). "
            "Fix the file or export it again."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot be read ({exc}). Check the file.") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: holds a JSON {type(data).__name__}, not an object with frames.")
    return data


def _find_files(path: Path) -> tuple[str, Path, dict[str, Path]]:
    """(format, root, split -> transforms file)."""
    if path.is_file():
        root = path.parent
        if path.name == "transforms.json":
            return "nerfstudio", root, {"all": path}
    else:
        root = path
        if not root.is_dir():
            raise DataError(f"{root}: no such folder or file. Pass a NeRF scene folder.")
    files = {
        s: root / f"transforms_{s}.json"
        for s in SPLITS
        if (root / f"transforms_{s}.json").is_file()
    }
    if files:
        return "nerf-synthetic", root, files
    if (root / "transforms.json").is_file():
        return "nerfstudio", root, {"all": root / "transforms.json"}
    raise DataError(
        f"{path}: no transforms file found (looked for transforms_train.json, transforms_val.json, "
        "transforms_test.json and transforms.json). Pass the folder of a NeRF synthetic or "
        "nerfstudio scene."
    )


def _resolve_image(root: Path, file_path: str, where: str) -> Path:
    """The image of ``file_path``: as is, or for a name without an image extension (the
    Blender files) ``<name>.png`` first, then the bare name."""
    path = Path(os.path.normpath(root / file_path))
    tried = [path] if path.suffix.lower() in IMAGE_EXTENSIONS else [Path(f"{path}.png"), path]
    for candidate in tried:
        if candidate.is_file():
            return candidate
    raise DataError(
        f"{where}: image {file_path!r} not found (tried {', '.join(map(str, tried))}). "
        "Check file_path in the transforms file and that the image files are there."
    )


def _matrix(value: Any, where: str) -> np.ndarray:
    try:
        m = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        m = np.zeros(0)
    if m.shape not in ((4, 4), (3, 4)) or not np.isfinite(m).all():
        raise DataError(
            f"{where}: transform_matrix must be a 4 x 4 (or 3 x 4) matrix of finite numbers, "
            f"got shape {m.shape}. Fix the frame's camera-to-world matrix."
        )
    return np.vstack([m[:3], [0.0, 0.0, 0.0, 1.0]])


def _intrinsics(
    keys: dict[str, Any], size: tuple[int, int], where: str
) -> tuple[float, float, float, float]:
    """fx, fy, cx, cy for an image of ``size`` from the (frame-over-file) keys."""
    try:
        width, height = float(keys.get("w", size[0])), float(keys.get("h", size[1]))
        if "fl_x" in keys:
            fx = float(keys["fl_x"])
        elif "camera_angle_x" in keys:
            fx = 0.5 * width / math.tan(0.5 * float(keys["camera_angle_x"]))
        else:
            raise DataError(
                f"{where}: no focal length: the frame and its file have neither camera_angle_x "
                "nor fl_x. Add one of them (camera_angle_x: horizontal field of view in radians)."
            )
        if "fl_y" in keys:
            fy = float(keys["fl_y"])
        elif "camera_angle_y" in keys:
            fy = 0.5 * height / math.tan(0.5 * float(keys["camera_angle_y"]))
        else:
            fy = fx
        cx, cy = float(keys.get("cx", width / 2)), float(keys.get("cy", height / 2))
        sx, sy = size[0] / width, size[1] / height
    except (TypeError, ValueError, ZeroDivisionError) as exc:
        raise DataError(f"{where}: invalid intrinsics ({exc}). Fix the file.") from None
    finite = all(map(math.isfinite, (fx, fy, cx, cy, sx, sy)))
    if not finite or min(fx, fy, sx, sy) <= 0 or abs(sx - sy) > 0.01 * sx:
        raise DataError(
            f"{where}: intrinsics (w={width:g}, h={height:g}, fl_x={fx:g}, fl_y={fy:g}) do not fit "
            f"its {size[0]} x {size[1]} image. Fix w/h or the focal lengths."
        )
    return fx * sx, fy * sy, cx * sx, cy * sy


def _parse(source: Path, meta: dict[str, Any], root: Path, warned: list[bool]) -> list[_Frame]:
    frames = meta.get("frames")
    if not isinstance(frames, list) or not frames:
        raise DataError(f"{source}: no frames (the 'frames' list is missing or empty).")
    top = {k: v for k, v in meta.items() if k != "frames"}
    parsed = []
    for index, frame in enumerate(frames):
        where = f"{source}, frame {index}"
        if (
            not isinstance(frame, dict)
            or "file_path" not in frame
            or "transform_matrix" not in frame
        ):
            raise DataError(f"{where}: a frame needs 'file_path' and 'transform_matrix'.")
        keys = {**top, **frame}
        model = str(keys.get("camera_model", "PINHOLE"))
        if model not in _PINHOLE_MODELS:
            raise DataError(f"{where}: camera_model {model} is not supported; only pinhole.")
        if not warned[0] and any(keys.get(k, 0) not in (0, 0.0, None) for k in _DISTORTION):
            warnings.warn(
                f"{source}: lens distortion coefficients ({', '.join(_DISTORTION)}) are "
                "ignored; undistort the images for best results.",
                stacklevel=4,
            )
            warned[0] = True
        file = _resolve_image(root, str(frame["file_path"]), where)
        width, height, _, mode = image_info(file)
        parsed.append(
            _Frame(
                index=index,
                source=source,
                file=file,
                c2w=_matrix(frame["transform_matrix"], where),
                intrinsics=_intrinsics(keys, (width, height), where),
                size=(width, height),
                stored_alpha=mode in _ALPHA_MODES,
            )
        )
    return parsed


def _split_frames(
    fmt: str, metas: dict[str, tuple[Path, dict[str, Any]]], root: Path
) -> dict[str, list[_Frame]]:
    """All the scene's frames by split (images not decoded)."""
    warned = [False]
    if fmt == "nerf-synthetic":
        return {s: _parse(f, meta, root, warned) for s, (f, meta) in metas.items()}
    source, meta = metas["all"]
    frames = _parse(source, meta, root, warned)
    lists = {s: meta[f"{s}_filenames"] for s in SPLITS if f"{s}_filenames" in meta}
    if not lists:
        return {"train": frames}
    by_file = {f.file: f for f in frames}
    result = {}
    for split, names in lists.items():
        chosen = []
        for name in names if isinstance(names, list) else [names]:
            path = Path(os.path.normpath(root / str(name)))
            if path not in by_file:
                raise DataError(
                    f"{source}: {split}_filenames names {name!r}, which is no frame's image. "
                    "Fix the list or the frames."
                )
            chosen.append(by_file[path])
        result[split] = chosen
    return result


def rig_box(cameras: Cameras | Sequence[Cameras]) -> torch.Tensor:
    """The box (2 x 3: min, max corner) that an inward-looking camera rig frames (one set of
    cameras, or several, e.g. one per split).

    Centre: the least-squares point closest to all cameras' optical axes (their -z). Half side:
    the median camera distance to that centre times the median tan(half horizontal field of
    view), i.e. the region every camera sees whole; at most the median distance / sqrt(3), so
    the box's corners stay nearer than the cameras. For the NeRF lego rig it is about +-1.45.
    Raises DataError when the axes are nearly parallel (a forward-facing capture) or the
    cameras look away from their common point: then the file must give an "aabb".
    """
    rigs = [cameras] if isinstance(cameras, Cameras) else list(cameras)
    c2w = torch.cat([c.c2w for c in rigs]).double()
    tan_half = torch.cat([0.5 * c.width / c.fx.double() for c in rigs])
    o, d = c2w[:, :3, 3], -c2w[:, :3, 2]
    d = d / d.norm(dim=-1, keepdim=True)
    proj = torch.eye(3, dtype=torch.float64) - d[:, :, None] * d[:, None, :]  # N x 3 x 3
    a, b = proj.sum(0), (proj @ o[:, :, None]).sum(0)
    if len(o) < 2 or float(torch.linalg.eigvalsh(a / len(o))[0]) < 1e-3:
        raise DataError(
            "the cameras' optical axes are (nearly) parallel, so the scene's centre cannot be "
            'found from the camera rig. Add an "aabb": [[x0, y0, z0], [x1, y1, z1]] key to '
            "the transforms file."
        )
    centre = torch.linalg.solve(a, b)[:, 0]
    depth = ((centre - o) * d).sum(-1)
    if float(depth.median()) <= 0:
        raise DataError(
            "most cameras look away from the point their optical axes meet; the scene box cannot "
            'be derived from the rig. Add an "aabb" key to the transforms file.'
        )
    dist = float((o - centre).norm(dim=-1).median())
    half = min(dist * float(tan_half.median()), dist / math.sqrt(3))
    return torch.stack([centre - half, centre + half]).float()


def _file_box(metas: list[tuple[Path, dict[str, Any]]]) -> torch.Tensor | None:
    for source, meta in metas:
        if "aabb" in meta:
            try:
                box = torch.tensor(meta["aabb"], dtype=torch.float32)
            except (TypeError, ValueError):
                box = torch.zeros(0)
            if box.shape != (2, 3) or not bool((box[0] < box[1]).all()):
                raise DataError(
                    f"{source}: 'aabb' must be [[x0, y0, z0], [x1, y1, z1]] with each min below "
                    f"its max, got {meta['aabb']!r}."
                )
            return box
    return None


def _check_sees_box(frames: list[_Frame], box: torch.Tensor) -> None:
    """Every camera's optical axis must pass through the box (slab test, in front of it)."""
    lo, hi = box.double().numpy()
    for f in frames:
        o, d = f.c2w[:3, 3], -f.c2w[:3, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            t1, t2 = (lo - o) / d, (hi - o) / d
        t1, t2 = np.nan_to_num(t1, nan=-np.inf), np.nan_to_num(t2, nan=np.inf)
        near, far = np.minimum(t1, t2).max(), np.maximum(t1, t2).min()
        if near > far or far < 0:
            raise DataError(
                f"{f.source}, frame {f.index}: the camera looks away from the scene box "
                f"{box.tolist()} (its optical axis misses it). Fix the frame's transform_matrix "
                "or the 'aabb' key."
            )


def _cameras(frames: list[_Frame]) -> Cameras:
    first = frames[0]
    for f in frames[1:]:
        if f.size != first.size:
            raise DataError(
                f"images of different sizes in one split: {first.file} is {first.size[0]} x "
                f"{first.size[1]}, {f.file} is {f.size[0]} x {f.size[1]}. Resize them to one "
                "size (or put them in separate scenes)."
            )
    k = torch.tensor([f.intrinsics for f in frames], dtype=torch.float32)
    c2w = torch.tensor(np.stack([f.c2w for f in frames]), dtype=torch.float32)
    return Cameras(c2w, k[:, 0], k[:, 1], k[:, 2], k[:, 3], first.size[0], first.size[1])


def _decode(
    frames: list[_Frame], cameras: Cameras
) -> tuple[torch.Tensor, torch.Tensor, list[bool]]:
    """Straight-alpha images resized by area averaging of premultiplied colour.

    Returns the premultiplied colour N x H x W x 3, alpha N x H x W and, per file, whether it
    has alpha (an alpha channel, or a transparency key that makes some pixel transparent)."""
    n, w, h = len(frames), cameras.width, cameras.height
    need = n * w * h * 4 * 4
    if need > MAX_SPLIT_BYTES:
        raise DataError(
            f"{frames[0].source}: {n} images of {w} x {h} need {need / 2**30:.1f} GiB as float32, "
            f"over the limit of {MAX_SPLIT_BYTES / 2**30:.0f} GiB. Load it with a larger "
            "downscale (e.g. downscale=2 needs a quarter of the memory)."
        )
    colour, alpha = torch.empty(n, h, w, 3), torch.empty(n, h, w)
    has_alpha = []
    for i, f in enumerate(frames):
        rgba = torch.from_numpy(read_image(f.file, mode="RGBA")).float() / 255.0
        has_alpha.append(f.stored_alpha or bool((rgba[..., 3] < 1).any()))
        premultiplied = torch.cat([rgba[..., :3] * rgba[..., 3:], rgba[..., 3:]], dim=-1)
        if (w, h) != f.size:
            chw = premultiplied.permute(2, 0, 1)[None]
            premultiplied = F.interpolate(chw, size=(h, w), mode="area")[0].permute(1, 2, 0)
        colour[i], alpha[i] = premultiplied[..., :3], premultiplied[..., 3]
    return colour, alpha, has_alpha


def load_scene(
    path: str | Path,
    *,
    downscale: int = 1,
    background: str = "auto",
    splits: Sequence[str] | None = None,
) -> Scene:
    """Load a NeRF scene folder (or one of its transforms json files); see the module docstring.

    ``downscale=N`` resizes images by 1/N with area averaging of alpha-premultiplied colour (no
    dark fringes at alpha edges); a side that N does not divide is rounded to the nearest whole
    pixel and the cameras are scaled by the actual ratio (:meth:`Cameras.scaled`).

    ``background``: ``"auto"`` composites images that have alpha on white (the NeRF synthetic
    convention) and leaves RGB images as they are; ``"white"`` / ``"black"`` choose the colour
    (ConfigError for images without alpha). ``splits`` selects splits (default: all present).
    A split's decoded images may take at most :data:`MAX_SPLIT_BYTES`.
    """
    if isinstance(downscale, bool) or not isinstance(downscale, int) or downscale < 1:
        raise ConfigError(f"downscale must be a whole number >= 1, got {downscale!r}.")
    if background not in ("auto", *BACKGROUNDS):
        raise ConfigError(f"background must be auto, white or black, got {background!r}.")
    fmt, root, files = _find_files(Path(path))
    metas = {split: (file, _read_json(file)) for split, file in files.items()}
    all_frames = _split_frames(fmt, metas, root)
    wanted = list(all_frames) if splits is None else list(splits)
    for split in wanted:
        if split not in all_frames:
            raise ConfigError(
                f"{root}: has no {split!r} split; it has {', '.join(all_frames)}. "
                "Choose among those."
            )
    sized = {split: _cameras(frames) for split, frames in all_frames.items()}
    box, source = _file_box(list(metas.values())), "file"
    if box is not None:
        _check_sees_box([f for frames in all_frames.values() for f in frames], box)
    else:
        try:
            box, source = rig_box(list(sized.values())), "camera rig"
        except DataError as exc:
            raise DataError(f"{root}: {exc}") from None

    loaded: dict[str, SceneSplit] = {}
    kinds: dict[bool, Path] = {}  # has alpha -> a file of that kind
    for split in wanted:
        frames = all_frames[split]
        cameras = sized[split].scaled(1 / downscale) if downscale > 1 else sized[split]
        colour, alpha, has_alpha = _decode(frames, cameras)
        for f, a in zip(frames, has_alpha, strict=True):
            kinds.setdefault(a, f.file)
        if len(kinds) > 1:
            raise DataError(
                f"some images have alpha ({kinds[True]}) and some do not ({kinds[False]}). "
                "Give all images of a scene an alpha channel, or none."
            )
        loaded[split] = SceneSplit(colour, alpha, cameras, tuple(str(f.file) for f in frames))

    if True not in kinds:
        if background != "auto":
            raise ConfigError(
                f"background={background!r}: the images of {root} have no alpha channel, so a "
                "background cannot be applied. Drop the background option."
            )
        loaded = {k: SceneSplit(s.images, None, s.cameras, s.files) for k, s in loaded.items()}
        bg = None
    else:
        bg = BACKGROUNDS["white" if background == "auto" else background]
        for s in loaded.values():  # image by image, in place: no second copy of the split
            assert s.alpha is not None
            for image, alpha in zip(s.images, s.alpha, strict=True):
                image.add_((1 - alpha[..., None]) * torch.tensor(bg)).clamp_(0, 1)
    return Scene(root, fmt, loaded, box, source, bg)


def scene_cameras(path: str | Path, split: str = "train", *, downscale: int = 1) -> Cameras:
    """The cameras of one split of a scene, read from the transforms file(s) and the image
    headers only (no image is decoded): what an orbit or a pose file needs."""
    fmt, root, files = _find_files(Path(path))
    frames = _split_frames(fmt, {s: (f, _read_json(f)) for s, f in files.items()}, root)
    if split not in frames:
        raise ConfigError(f"{root}: has no {split!r} split; it has {', '.join(frames)}.")
    cameras = _cameras(frames[split])
    return cameras.scaled(1 / downscale) if downscale > 1 else cameras


def load_poses(path: str | Path, *, size: tuple[int, int] | None = None) -> Cameras:
    """Cameras from a transforms json whose frames need no images: each frame's
    ``transform_matrix`` with the file's (or frame's) intrinsics. The image size comes from
    ``w``/``h`` in the file, else from the frame's image when it exists, else ``size``
    (width, height; the model's own training size when rendering)."""
    source = Path(path)
    meta = _read_json(source)
    frames = meta.get("frames")
    if not isinstance(frames, list) or not frames:
        raise DataError(f"{source}: no frames (the 'frames' list is missing or empty).")
    top = {k: v for k, v in meta.items() if k != "frames"}
    c2ws, intrinsics, sizes = [], [], set()
    for index, frame in enumerate(frames):
        where = f"{source}, frame {index}"
        if not isinstance(frame, dict) or "transform_matrix" not in frame:
            raise DataError(f"{where}: a frame needs a 'transform_matrix'.")
        keys = {**top, **frame}
        if "w" in keys and "h" in keys:
            wh = (int(keys["w"]), int(keys["h"]))
        elif "file_path" in frame and _has_image(source.parent, str(frame["file_path"])):
            file = _resolve_image(source.parent, str(frame["file_path"]), where)
            wh = image_info(file)[:2]
        elif size is not None:
            wh = size
        else:
            raise DataError(
                f"{where}: no image size: add w and h to the file, or give the frame's image."
            )
        c2ws.append(_matrix(frame["transform_matrix"], where))
        intrinsics.append(_intrinsics(keys, wh, where))
        sizes.add(wh)
    if len(sizes) > 1:
        raise DataError(f"{source}: frames of different image sizes {sorted(sizes)}; use one.")
    (width, height) = sizes.pop()
    k = torch.tensor(intrinsics, dtype=torch.float32)
    c2w = torch.tensor(np.stack(c2ws), dtype=torch.float32)
    return Cameras(c2w, k[:, 0], k[:, 1], k[:, 2], k[:, 3], width, height)


def _has_image(root: Path, file_path: str) -> bool:
    try:
        _resolve_image(root, file_path, "")
    except DataError:
        return False
    return True
