"""Data options: how images are brought to the model's size, augmented and generated.

Architecture fields (image size, channels, number of labels) belong to the model config; the data
pipeline is told ``image_size`` and ``channels`` and derives its resize and crop from them.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from PIL import Image

from pixelforge.errors import ConfigError

#: PIL resampling filters by the name used in :attr:`DataConfig.resize_filter`.
RESIZE_FILTERS: dict[str, Image.Resampling] = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
}

#: Valid values of :attr:`DataConfig.resize_mode`.
RESIZE_MODES: tuple[str, ...] = ("center-crop", "stretch", "pad")

#: Largest allowed :attr:`DataConfig.translate` (reflect padding needs a shift below the size).
MAX_TRANSLATE = 0.5

#: ``data.direction``: which side of paired data is the input.
DIRECTIONS: tuple[str, ...] = ("AtoB", "BtoA")


@dataclass(frozen=True)
class DataConfig:
    """Data options only; the model config owns image size, channels and label count."""

    resize_filter: str = "bicubic"  # resize filter: nearest, bilinear, bicubic, lanczos or box
    resize_mode: str = "center-crop"  # center-crop (crop the centre), stretch, or pad (black bars)
    hflip: bool = False  # augmentation: random horizontal flip, probability 0.5
    translate: float = 0.0  # augmentation: random shift up to this fraction of the size (0-0.5)
    seed: int = 0  # seed of procedural content (shapes, photo patches); not the training seed
    shapes_count: int = 2000  # images in the built-in `shapes` set (shapes:test has a quarter)
    photo_patches: int = 1000  # patches cut from the built-in photos
    max_bad_fraction: float = 0.05  # stop when more than this fraction of a folder is unreadable
    patches: int = 0  # folder: 0 resizes each image; N > 0 cuts N random crops per image instead
    patch_scale: tuple[float, float] = (1.0, 1.0)  # patches from the image shrunk by [low, high]
    direction: str = "AtoB"  # paired: AtoB learns A -> B; BtoA swaps the sides (B -> A)

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the field when a value is unknown or out of range."""
        if self.resize_filter not in RESIZE_FILTERS:
            raise ConfigError(
                f"data.resize_filter: unknown filter '{self.resize_filter}'."
                f"{_suggest(self.resize_filter, RESIZE_FILTERS)} "
                f"Use one of: {', '.join(RESIZE_FILTERS)}."
            )
        if self.resize_mode not in RESIZE_MODES:
            raise ConfigError(
                f"data.resize_mode: unknown mode '{self.resize_mode}'."
                f"{_suggest(self.resize_mode, RESIZE_MODES)} Use one of: {', '.join(RESIZE_MODES)}."
            )
        if not isinstance(self.hflip, bool):
            raise ConfigError(f"data.hflip must be true or false, got {self.hflip!r}.")
        if not 0.0 <= self.translate <= MAX_TRANSLATE:
            raise ConfigError(
                f"data.translate must be between 0 and {MAX_TRANSLATE} (a fraction of the image "
                f"size), got {self.translate}."
            )
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"data.seed must be a whole number >= 0, got {self.seed!r}.")
        if not isinstance(self.patches, int) or self.patches < 0:
            raise ConfigError(f"data.patches must be a whole number >= 0, got {self.patches!r}.")
        low, high = self.patch_scale
        if not 0.0 < low <= high <= 1.0:
            raise ConfigError(
                f"data.patch_scale must be [low, high] with 0 < low <= high <= 1 (a crop is cut "
                f"from the image shrunk by a factor between them), got {[low, high]}."
            )
        if self.direction not in DIRECTIONS:
            raise ConfigError(
                f"data.direction: unknown direction '{self.direction}'. Use AtoB or BtoA (for "
                "paired data: which side is the input)."
            )
        for name in ("shapes_count", "photo_patches"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"data.{name} must be a whole number >= 1, got {value!r}.")
        if not 0.0 <= self.max_bad_fraction <= 1.0:
            raise ConfigError(
                f"data.max_bad_fraction must be between 0 and 1, got {self.max_bad_fraction}."
            )


def _suggest(name: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(name), list(options), n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


def resolve_config(config: DataConfig | None) -> DataConfig:
    """``config`` (or the defaults) after :meth:`DataConfig.validate`."""
    cfg = config if config is not None else DataConfig()
    cfg.validate()
    return cfg


def check_target(image_size: int, channels: int) -> None:
    """Raise :class:`ConfigError` when the model's ``image_size`` or ``channels`` are unusable."""
    if not isinstance(image_size, int) or isinstance(image_size, bool) or image_size < 4:
        raise ConfigError(f"model.image_size must be a whole number >= 4, got {image_size!r}.")
    if channels not in (1, 3):
        raise ConfigError(
            f"model.channels must be 1 (grey) or 3 (RGB) for image datasets, got {channels!r}."
        )
