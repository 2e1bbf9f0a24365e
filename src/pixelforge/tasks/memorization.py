"""`pixelforge eval memorization`: does a generator copy its training images?

For the generated images (a model sampled ``n`` times, a folder or a dataset), for held-out real
images and for the training images, features are extracted in one space: a feature extractor's
(``space="features"``; ``extractor="auto"`` picks ``digits-cnn`` for digits, ``shapes-cnn`` for
shapes, else ``inception-v3-fid``) or raw pixels (``space="pixels"``: grey or RGB at
:data:`PIXEL_SIZE` square, flattened). The numbers and the verdict come from
:func:`pixelforge.metrics.memorization.memorization`; this module does the I/O and draws the pairs.

The held-out set defaults to the test split of a built-in training set (``digits`` ->
``digits:test``, ``shapes`` -> ``shapes:test``); any other training set needs ``heldout``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pixelforge.errors import ConfigError, DataError, PixelforgeError
from pixelforge.features import FeatureExtractor
from pixelforge.features.preprocess import prepare
from pixelforge.metrics.memorization import MemorizationResult, memorization
from pixelforge.tasks.evaluate import DEFAULT_EXTRACTOR, _extractor, extract_images
from pixelforge.tasks.sources import Source, iter_images, resolve_source

AUTO_EXTRACTORS = {"digits": "digits-cnn", "shapes": "shapes-cnn"}
PIXEL_SIZE = 32  # side of the images compared in pixel space (and of the pair thumbnails)
DEFAULT_N = 1000  # samples drawn from a model when n is not given
SPACES = ("features", "pixels")
# Built-in datasets are deterministic: their features (and thumbnails) are kept for the process.
_DATASET_CACHE: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
_CACHE_SIZE = 8


class PixelSpace(FeatureExtractor):
    """Raw pixels as features: images at ``size`` square, ``channels`` channels, flattened."""

    comparable_to_published = False

    def __init__(self, size: int = PIXEL_SIZE, channels: int = 3) -> None:
        super().__init__()
        self.name = "pixels"
        self.weights_sha256 = "none"
        self.input_size = size
        self.input_channels = channels
        self.feature_dim = channels * size * size

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.float().flatten(1)


@dataclass(frozen=True)
class MemorizationReport:
    """The result plus the thumbnails of its most suspicious pairs (sample, training image)."""

    result: MemorizationResult
    pair_images: torch.Tensor  # 2k x C x S x S in [0, 1]: sample, nearest training image, ...


def _builtin_name(spec: str) -> tuple[str, str | None] | None:
    from pixelforge.data import parse_spec
    from pixelforge.data.builtin import BUILTINS

    try:
        name, arg = parse_spec(spec)
    except DataError:
        return None
    return (name, arg) if name in BUILTINS else None


def default_heldout(train: str) -> str:
    """The held-out split of a built-in training set, or a ConfigError asking for --heldout."""
    from pixelforge.data.builtin import BUILTINS

    parsed = _builtin_name(train)
    if parsed is not None:
        name, split = parsed
        splits = BUILTINS[name].splits
        if "test" in splits and split in (None, splits[0]):
            return f"{name}:test"
    raise ConfigError(
        f"--heldout is required: '{train}' has no built-in held-out split (only digits and shapes "
        "do). Give real images the generator never trained on, e.g. --heldout folder:PATH."
    )


def choose_extractor(name: str, train: str) -> str:
    """``auto``: the domain extractor of a built-in digits/shapes training set, else Inception."""
    if name != "auto":
        return name
    parsed = _builtin_name(train)
    if parsed is not None and parsed[0] in AUTO_EXTRACTORS:
        return AUTO_EXTRACTORS[parsed[0]]
    return DEFAULT_EXTRACTOR


def _pixel_channels(train: Source) -> int:
    if train.kind == "dataset":
        from pixelforge.data import inspect_dataset

        return 1 if inspect_dataset(train.spec).channels == 1 else 3
    return 3


def _keep(images: Iterator[torch.Tensor], thumb: FeatureExtractor, out: list[torch.Tensor]):
    """Pass ``images`` through, keeping uint8 thumbnails of each batch in ``out``."""
    for x in images:
        out.append((prepare(x, thumb) * 255).round().to(torch.uint8))
        yield x


def compute_memorization(
    fake: str,
    train: str,
    *,
    heldout: str | None = None,
    n: int | None = None,
    extractor: str = "auto",
    space: str = "features",
    seed: int = 0,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    k_pairs: int = 8,
    progress: bool = False,
) -> MemorizationReport:
    """Distances to the nearest training image of ``fake``'s images and of held-out real images.

    ``fake``: a model (sampled ``n`` times, default :data:`DEFAULT_N`), a folder or a dataset.
    ``train``, ``heldout``: datasets or folders of images.
    """
    space = {"pixel": "pixels"}.get(space, space)  # as `latent neighbors --space pixel` says it
    if space not in SPACES:
        raise ConfigError(f"--space must be features or pixels, got '{space}'.")
    if n is not None and n < 2:
        raise ConfigError(f"--n must be at least 2, got {n}.")
    if k_pairs < 0:
        raise ConfigError(f"--pairs must be at least 0, got {k_pairs}.")
    held_spec = heldout if heldout is not None else default_heldout(train)
    sides: dict[str, Source] = {}
    for role, arg in (("train", train), ("heldout", held_spec), ("generated", fake)):
        src = resolve_source(arg)
        if src.kind == "stats":
            raise PixelforgeError(
                f"{arg} holds statistics only; the memorisation check needs images."
            )
        if src.kind == "model" and role != "generated":
            raise PixelforgeError(
                f"--{role} must be real images (a dataset or folder), not a model."
            )
        sides[role] = src
    if held_spec == train:
        raise ConfigError(
            f"the held-out images must not be the training images ('{train}' given for both)."
        )
    if sides["generated"].kind == "model" and n is None:
        n = DEFAULT_N

    channels = _pixel_channels(sides["train"])
    ex: FeatureExtractor
    if space == "pixels":
        ex = PixelSpace(PIXEL_SIZE, channels)
        ex_name = "pixels"
    else:
        ex_name = choose_extractor(extractor, train)
        ex = _extractor(ex_name)
    thumb = PixelSpace(PIXEL_SIZE, channels)

    feats: dict[str, torch.Tensor] = {}
    thumbs: dict[str, list[torch.Tensor]] = {"train": [], "generated": []}
    for role, src in sides.items():
        key = json.dumps([src.spec, ex.describe(), channels], sort_keys=True)
        if src.kind == "dataset" and key in _DATASET_CACHE:
            feats[role], cached_thumbs = _DATASET_CACHE[key]
            if role in thumbs:
                thumbs[role] = [cached_thumbs]
            continue
        images = iter_images(
            src,
            channels=ex.input_channels,
            image_size=ex.input_size,
            n=n if role == "generated" else None,
            seed=seed,
            batch_size=batch_size,
            device=device,
        )
        kept: list[torch.Tensor] = thumbs.get(role, [])
        if role in thumbs or src.kind == "dataset":
            images = _keep(images, thumb, kept)
        got = extract_images(
            images,
            ex,
            label=f"{role} {src.spec}",
            total=n if role == "generated" else None,
            keep_features=True,
            batch_size=batch_size,
            device=device,
            progress=progress,
            gather=False,
        )
        assert got.features is not None
        feats[role] = got.features
        if src.kind == "dataset":
            while len(_DATASET_CACHE) >= _CACHE_SIZE:
                _DATASET_CACHE.pop(next(iter(_DATASET_CACHE)))
            _DATASET_CACHE[key] = (got.features, torch.cat(kept))
    protocol: dict[str, Any] = {
        **ex.describe(),
        "extractor": ex_name,
        "space": space,
        "resize": "clean",
        "train": train,
        "heldout": held_spec,
        "generated": fake,
        "generated_kind": sides["generated"].kind,
    }
    if sides["generated"].kind == "model":
        protocol |= {"n": n, "seed": seed}
    result = memorization(
        feats["train"], feats["generated"], feats["heldout"], k_pairs=k_pairs, protocol=protocol
    )
    gen_t, train_t = torch.cat(thumbs["generated"]), torch.cat(thumbs["train"])
    pair_list = [t for s, tr, _ in result.pairs for t in (gen_t[s], train_t[tr])]
    pair_images = (
        torch.stack(pair_list).float() / 255
        if pair_list
        else torch.zeros(0, channels, PIXEL_SIZE, PIXEL_SIZE)
    )
    return MemorizationReport(result, pair_images)


def write_pairs(report: MemorizationReport, path: str | Path, *, command: str = "") -> None:
    """The most suspicious pairs as one PNG: each row a sample, then its nearest training image."""
    from pixelforge.io.images import write_png
    from pixelforge.viz import make_grid, upscale_nearest

    if report.pair_images.shape[0] == 0:
        raise ConfigError("no pairs to draw (--pairs 0).")
    r = report.result
    grid = upscale_nearest(make_grid(report.pair_images, nrow=2), 2)
    meta = {
        "kind": "memorization pairs: each row a generated sample, then its nearest training image",
        "command": command,
        "verdict": r.verdict,
        "pairs": [{"sample": s, "train": t, "distance": d} for s, t, d in r.pairs],
        "space": r.protocol.get("space"),
        "extractor": r.protocol.get("extractor"),
    }
    write_png(path, grid, meta)
