"""Built-in datasets, all available offline: digits, faces, photos, shapes, emoji.

``digits``   scikit-learn's 8x8 handwritten digits (values 0..16 scaled to 0..255), resized in
             float (PIL mode ``F``) then rounded. Fixed stratified split: 1,437 ``train`` (the
             default) / 360 ``test`` (``train_test_split(test_size=360, stratify=y,
             random_state=0)``). 10 classes "0".."9", grey.
``faces``    the 100 face crops of scikit-image's ``lfw_subset`` (25x25 grey). Tiny: for demos.
``photos``   ``photo_patches`` square patches cut from scikit-image's bundled colour photos and
             scikit-learn's two sample images: for each patch (seeded by ``(seed, index)``) a
             photo, a side between 20% and 100% of the photo's shorter side (log-uniform) and a
             position. Only photos present on disk are used (nothing is downloaded).
``shapes``   procedural shapes with captions and masks (see :mod:`pixelforge.data.shapes`);
             ``shapes:test`` is a disjoint held-out set a quarter the size.
``emoji``    every emoji of an installed colour-emoji font, captioned with its Unicode name
             (see :mod:`pixelforge.data.emoji`).
``composites`` paired matting data: A = emoji and procedural shapes pasted on the bundled photos,
             B = their alpha (see :mod:`pixelforge.restoration.composites`); ``composites:test``
             holds out every 10th emoji, the shapes' test stream and two of the photos.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pixelforge.data import emoji as emoji_mod
from pixelforge.data import shapes as shapes_mod
from pixelforge.data.config import RESIZE_FILTERS, DataConfig
from pixelforge.data.dataset import DatasetInfo, ImageDataset, track
from pixelforge.data.transforms import (
    convert_channels,
    float_to_uint8,
    resize_image,
    stack_images,
)

DIGITS_TEST_SIZE = 360
FACES_COUNT = 100
# scikit-image loader name -> file it reads from skimage/data (checked so nothing is downloaded).
SKIMAGE_PHOTOS: dict[str, str] = {
    "astronaut": "astronaut.png",
    "coffee": "coffee.png",
    "chelsea": "chelsea.png",
    "rocket": "rocket.jpg",
    "hubble_deep_field": "hubble_deep_field.jpg",
    "immunohistochemistry": "ihc.png",
    "retina": "retina.jpg",
    "colorwheel": "color.png",
}
PATCH_MIN_FRACTION = 0.2


@dataclass(frozen=True)
class Builtin:
    """A built-in dataset: its splits, and how to describe and load it."""

    name: str
    description: str
    splits: tuple[str, ...]  # the first is the default
    info: Callable[[str, str, DataConfig], DatasetInfo]  # (spec, split, config)
    load: Callable[[str, str, int, int, DataConfig, bool], ImageDataset]


# ----------------------------------------------------------------------------------- digits
@functools.lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = bunch.images.astype(np.float32) * (255.0 / 16.0)
    y = bunch.target.astype(np.int64)
    train, test = train_test_split(
        np.arange(len(y)), test_size=DIGITS_TEST_SIZE, stratify=y, random_state=0
    )
    return x, y, {"train": np.sort(train), "test": np.sort(test)}


def _digits_info(spec: str, split: str, config: DataConfig) -> DatasetInfo:
    n = 1797 - DIGITS_TEST_SIZE if split == "train" else DIGITS_TEST_SIZE
    return DatasetInfo(
        spec=spec, name="digits", size=n, channels=1, num_classes=10,
        class_names=[str(d) for d in range(10)], native_size=(8, 8),
        description=f"scikit-learn handwritten digits, 8x8 grey, {split} split",
        has_captions=False, has_masks=False, kind="images",
    )  # fmt: skip


def _load_float_grey(
    images: np.ndarray,
    image_size: int,
    channels: int,
    config: DataConfig,
    progress: bool,
    what: str,
) -> torch.Tensor:
    """Float grey images in [0, 255] -> resized in PIL mode F, rounded -> uint8 tensor."""
    out = []
    for img in track(images, total=len(images), description=what, enabled=progress):
        small = resize_image(img, image_size, mode=config.resize_mode, filter=config.resize_filter)
        out.append(convert_channels(float_to_uint8(small), channels))
    return stack_images(out)


def _digits_load(
    spec: str, split: str, image_size: int, channels: int, config: DataConfig, progress: bool
) -> ImageDataset:
    x, y, splits = _digits()
    idx = splits[split]
    images = _load_float_grey(x[idx], image_size, channels, config, progress, "digits")
    labels = torch.from_numpy(y[idx])
    return ImageDataset(_digits_info(spec, split, config), images, labels=labels)


# ------------------------------------------------------------------------------------ faces
def _faces_info(spec: str, split: str, config: DataConfig) -> DatasetInfo:
    return DatasetInfo(
        spec=spec, name="faces", size=FACES_COUNT, channels=1, num_classes=0, class_names=None,
        native_size=(25, 25),
        description="100 face crops from LFW (scikit-image), 25x25 grey: small, for demos, "
        "not for quality claims",
        has_captions=False, has_masks=False, kind="images",
    )  # fmt: skip


def _faces_load(
    spec: str, split: str, image_size: int, channels: int, config: DataConfig, progress: bool
) -> ImageDataset:
    from skimage.data import lfw_subset

    raw = lfw_subset()[:FACES_COUNT]  # the first 100 of the 200 are faces, the rest are not
    scale = 255.0 if raw.dtype.kind == "f" and raw.max() <= 1.0 else 1.0
    x = raw.astype(np.float32) * scale
    images = _load_float_grey(x, image_size, channels, config, progress, "faces")
    return ImageDataset(_faces_info(spec, split, config), images)


# ----------------------------------------------------------------------------------- photos
@functools.lru_cache(maxsize=1)
def _photos() -> tuple[tuple[str, Image.Image], ...]:
    """The colour photos available on disk, as PIL RGB images."""
    import skimage
    import skimage.data
    from sklearn.datasets import load_sample_images

    data_dir = Path(skimage.__file__).parent / "data"
    found: list[tuple[str, Image.Image]] = []
    for name, filename in SKIMAGE_PHOTOS.items():
        if not (data_dir / filename).is_file():
            continue
        try:
            arr = np.asarray(getattr(skimage.data, name)())
        except Exception:  # a photo that does not load is simply left out
            continue
        found.append((name, Image.fromarray(convert_channels(arr.astype(np.uint8), 3))))
    try:
        bunch = load_sample_images()
        for filename, arr in zip(bunch.filenames, bunch.images, strict=True):
            found.append((Path(filename).stem, Image.fromarray(convert_channels(arr, 3))))
    except Exception:  # the sample images are optional too
        pass
    return tuple(found)


def _photos_info(spec: str, split: str, config: DataConfig) -> DatasetInfo:
    return DatasetInfo(
        spec=spec, name="photos", size=config.photo_patches, channels=3, num_classes=0,
        class_names=None, native_size=None,
        description="square patches of the photos bundled with scikit-image and scikit-learn",
        has_captions=False, has_masks=False, kind="images",
    )  # fmt: skip


def photo_patch_box(
    seed: int, index: int, width: int, height: int
) -> tuple[float, float, float, float]:
    """Crop box ``(left, top, right, bottom)`` of patch ``index`` in a ``width x height`` photo."""
    rng = np.random.default_rng([seed, index, 1])
    shorter = min(width, height)
    frac = math.exp(rng.uniform(math.log(PATCH_MIN_FRACTION), 0.0))
    side = frac * shorter
    left = rng.uniform(0, width - side)
    top = rng.uniform(0, height - side)
    return (left, top, left + side, top + side)


def _photos_load(
    spec: str, split: str, image_size: int, channels: int, config: DataConfig, progress: bool
) -> ImageDataset:
    photos = _photos()
    resample = RESIZE_FILTERS[config.resize_filter]
    out = []
    items = range(config.photo_patches)
    for i in track(items, total=len(items), description="photos", enabled=progress):
        pick = int(np.random.default_rng([config.seed, i, 0]).integers(len(photos)))
        photo = photos[pick][1]
        box = photo_patch_box(config.seed, i, *photo.size)
        patch = np.asarray(photo.resize((image_size, image_size), resample, box=box))
        out.append(convert_channels(patch, channels))
    return ImageDataset(_photos_info(spec, split, config), stack_images(out))


# ----------------------------------------------------------------------------------- shapes
def _shapes_info(spec: str, split: str, config: DataConfig) -> DatasetInfo:
    return DatasetInfo(
        spec=spec, name="shapes",
        size=shapes_mod.split_size(split, config.shapes_count), channels=3,
        num_classes=len(shapes_mod.SHAPE_CLASSES), class_names=list(shapes_mod.SHAPE_CLASSES),
        native_size=None,
        description=f"procedural coloured shapes with captions and masks, {split} split",
        has_captions=True, has_masks=True, kind="images",
    )  # fmt: skip


def _shapes_load(
    spec: str, split: str, image_size: int, channels: int, config: DataConfig, progress: bool
) -> ImageDataset:
    n = shapes_mod.split_size(split, config.shapes_count)
    images, masks, labels, captions = [], [], [], []
    for i in track(range(n), total=n, description="shapes", enabled=progress):
        sample = shapes_mod.sample_shape(config.seed, split, i)
        image, mask = shapes_mod.render_shape(sample, image_size)
        images.append(convert_channels(image, channels))
        masks.append(mask[:, :, None])
        labels.append(sample.label)
        captions.append(sample.caption)
    return ImageDataset(
        _shapes_info(spec, split, config),
        stack_images(images),
        labels=torch.tensor(labels, dtype=torch.int64),
        captions=captions,
        masks=stack_images(masks),
    )


# ------------------------------------------------------------------------------------ emoji
def _emoji_info(spec: str, split: str, config: DataConfig) -> DatasetInfo:
    return DatasetInfo(
        spec=spec, name="emoji", size=len(emoji_mod.emoji_list()), channels=3, num_classes=0,
        class_names=None, native_size=None,
        description="emoji of the installed colour-emoji font on white, captioned by name",
        has_captions=True, has_masks=False, kind="images",
    )  # fmt: skip


def _emoji_load(
    spec: str, split: str, image_size: int, channels: int, config: DataConfig, progress: bool
) -> ImageDataset:
    rgb, captions = emoji_mod.render_emoji(image_size, config.resize_filter)
    images = [convert_channels(img, channels) for img in rgb]
    return ImageDataset(_emoji_info(spec, split, config), stack_images(images), captions=captions)


# ------------------------------------------------------------------------------- composites
def _composites_info(spec: str, split: str, config: DataConfig) -> DatasetInfo:
    from pixelforge.restoration.composites import BUILTIN_COUNTS

    return DatasetInfo(
        spec=spec, name="composites", size=BUILTIN_COUNTS[split], channels=3, num_classes=0,
        class_names=None, native_size=None,
        description=f"matting composites (A: image, B: alpha): emoji and shapes on photos, "
        f"{split} split",
        has_captions=False, has_masks=False, kind="paired",
    )  # fmt: skip


def _composites_load(
    spec: str, split: str, image_size: int, channels: int, config: DataConfig, progress: bool
) -> ImageDataset:
    from pixelforge.restoration.composites import BUILTIN_COUNTS, composite_source

    source = composite_source(split, seed=config.seed)
    n = BUILTIN_COUNTS[split]
    images, alphas = [], []
    for i in track(range(n), total=n, description="composites", enabled=progress):
        image, alpha, _ = source.draw(i, image_size)
        images.append(convert_channels(image, channels))
        alphas.append(float_to_uint8(alpha * 255.0)[:, :, None])
    return ImageDataset(
        _composites_info(spec, split, config), stack_images(images), images_b=stack_images(alphas)
    )


BUILTINS: dict[str, Builtin] = {
    b.name: b
    for b in (
        Builtin("digits", "handwritten digits 0-9, 8x8 grey, labelled (scikit-learn)",
                ("train", "test"), _digits_info, _digits_load),
        Builtin("faces", "100 small grey face crops (LFW via scikit-image), for demos",
                ("train",), _faces_info, _faces_load),
        Builtin("photos", "colour patches cut from the photos bundled with scikit-image",
                ("train",), _photos_info, _photos_load),
        Builtin("shapes", "procedural coloured shapes with labels, captions and masks",
                ("train", "test"), _shapes_info, _shapes_load),
        Builtin("emoji", "emoji of the installed colour-emoji font, captioned by name",
                ("train",), _emoji_info, _emoji_load),
        Builtin("composites", "matting pairs: emoji and shapes with known alpha pasted on photos",
                ("train", "test"), _composites_info, _composites_load),
    )
}  # fmt: skip
