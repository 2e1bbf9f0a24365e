"""What a REAL or FAKE argument of `pixelforge eval` names, and the images it yields.

An argument is, in this order: an ``.npz`` statistics file; an existing folder that is a model or
run dir (sampled ``n`` times); an existing folder of images; a shipped model's name; a dataset
spec (``digits:test``, ``folder:PATH``, ...).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from pixelforge import hub, runs
from pixelforge.errors import DataError, PixelforgeError

SourceKind = Literal["stats", "model", "folder", "dataset"]


@dataclass(frozen=True)
class Source:
    """One side of a comparison."""

    kind: SourceKind
    spec: str  # the argument as given

    def describe(self) -> str:
        return f"{self.kind} {self.spec}"


def resolve_source(arg: str) -> Source:
    """Decide what ``arg`` names (see the module docstring for the order)."""
    p = Path(arg)
    if p.suffix.lower() == ".npz":
        if not p.is_file():
            raise PixelforgeError(f"statistics file not found: {p}")
        return Source("stats", arg)
    if p.is_dir():
        if (p / hub.CONFIG_NAME).is_file() or runs.is_run_dir(p):
            return Source("model", arg)
        return Source("folder", arg)
    if p.exists():
        raise PixelforgeError(
            f"{p} is a file; give a folder of images, a dataset, a model or an .npz file."
        )
    if arg in hub.shipped_models():
        return Source("model", arg)
    from pixelforge.data import parse_spec

    try:
        parse_spec(arg)
    except DataError:
        raise DataError(
            f"'{arg}' is not a folder, an .npz file, a model or a dataset. Give a folder of images, "
            "a dataset such as digits:test (see `pixelforge data list`), a model dir or run dir, "
            "or a statistics file made by `pixelforge eval stats`."
        ) from None
    return Source("dataset", arg)


def folder_images(folder: Path, channels: int) -> tuple[list[Path], str]:
    """The images of ``folder`` (sorted) and a SHA-256 over their names and bytes."""
    from pixelforge.io.images import list_images

    files = list_images(folder)
    if not files:
        raise DataError(f"no images in {folder} (PNG, JPEG, WebP, BMP or TIFF).")
    h = hashlib.sha256()
    for f in files:
        h.update(f.relative_to(folder).as_posix().encode())
        h.update(hashlib.sha256(f.read_bytes()).digest())
    return files, h.hexdigest()


def iter_images(
    source: Source,
    *,
    channels: int,
    image_size: int,
    n: int | None,
    seed: int = 0,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    shard: tuple[int, int] = (0, 1),
) -> Iterator[torch.Tensor]:
    """Batches of float images N x C x H x W in [0, 1] from ``source``.

    Folders yield all their images one at a time (sizes may differ); datasets are opened at
    ``image_size`` and used whole; models are sampled ``n`` times, with seed ``seed + b`` for
    batch b. ``shard`` (rank,
    world) gives each process a contiguous share, so results gathered in rank order are in the
    one-process order.
    """
    rank, world = shard

    def mine(count: int) -> range:
        return range(count * rank // world, count * (rank + 1) // world)

    if source.kind == "folder":
        from pixelforge.io.images import read_image

        files, _ = folder_images(Path(source.spec), channels)
        for i in mine(len(files)):
            arr = read_image(files[i], mode="L" if channels == 1 else "RGB")
            yield torch.from_numpy(arr).permute(2, 0, 1)[None].float() / 255.0
    elif source.kind == "dataset":
        from pixelforge.data import open_dataset

        ds = open_dataset(source.spec, image_size=image_size, channels=channels)
        total = len(ds)
        starts = range(0, total, batch_size)
        for b in mine(len(starts)):
            idx = torch.arange(starts[b], min(starts[b] + batch_size, total))
            batch = ds.get_batch(idx)
            key = "image" if "image" in batch else "B"
            yield (batch[key] + 1) / 2
    elif source.kind == "model":
        model: Any = hub.load(source.spec, device=device)
        if n is None:
            raise PixelforgeError(
                f"sampling {source.spec} needs --n (how many images to generate)."
            )
        starts = range(0, n, batch_size)
        for b in mine(len(starts)):
            count = min(batch_size, n - starts[b])
            # Each batch has its own seed, so the images do not depend on how work is split.
            yield model.sample(count, seed=seed + b)
    else:
        raise PixelforgeError(f"{source.spec} is a statistics file: it has no images.")


def content_hash(source: Source, n: int | None, seed: int = 0) -> str:
    """A hash that identifies the images a source yields (for stats files)."""
    if source.kind == "folder":
        return folder_images(Path(source.spec), 3)[1]
    if source.kind == "model":
        d = hub.resolve_model_dir(source.spec)
        key = f"{hub.read_model_meta(d)['weights']['sha256']}:n={n}:seed={seed}"
    else:
        key = f"{source.spec}"
    return hashlib.sha256(key.encode()).hexdigest()


def as_numpy(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().double().numpy()
