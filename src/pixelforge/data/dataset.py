"""In-memory datasets: what :func:`pixelforge.data.open_dataset` returns."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import torch

from pixelforge.data.transforms import to_model_range

T = TypeVar("T")


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset holds, as reported by ``inspect_dataset`` (cheap) or ``open_dataset``."""

    spec: str  # the spec as given, e.g. "digits:test" or "folder:/data/cats"
    name: str  # built-in name, or "folder" / "paired" / "unpaired"
    size: int  # number of samples (for unpaired: the larger side)
    channels: int  # native channels: 1 grey, 3 colour (RGBA sources count as 3)
    num_classes: int  # 0 when unlabelled
    class_names: list[str] | None  # index -> name when labelled
    native_size: tuple[int, int] | None  # (height, width) when all images share it, else None
    description: str  # one line for humans
    has_captions: bool  # a caption string per image
    has_masks: bool  # a 0/1 segmentation mask per image
    kind: str  # "images", "paired" (A -> B aligned) or "unpaired" (two unaligned sets)


@dataclass(frozen=True)
class CheckReport:
    """Result of ``check_dataset``: every file decoded once through the guarded reader."""

    total: int  # files (or built-in samples) looked at
    readable: int  # of those, how many decoded
    unreadable: list[tuple[Path, str]] = field(default_factory=list)  # (file, reason)

    @property
    def ok(self) -> bool:
        """True when every file decoded."""
        return not self.unreadable


class ImageDataset:
    """A dataset held in memory as ``uint8`` tensors at the model's size and channels.

    ``images`` is ``N x C x H x W``. Paired and unpaired datasets keep side A in ``images`` and
    side B in ``images_b`` (for unpaired data the two sides may differ in length).
    """

    def __init__(
        self,
        info: DatasetInfo,
        images: torch.Tensor,
        *,
        labels: torch.Tensor | None = None,
        captions: list[str] | None = None,
        masks: torch.Tensor | None = None,
        images_b: torch.Tensor | None = None,
        skipped: list[tuple[Path, str]] | None = None,
        enlarged: list[Path] | None = None,
    ) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError("images must be a uint8 N x C x H x W tensor")
        n = images.shape[0]
        if labels is not None and labels.shape != (n,):
            raise ValueError("labels must hold one entry per image")
        if captions is not None and len(captions) != n:
            raise ValueError("captions must hold one entry per image")
        if masks is not None and (masks.shape[0] != n or masks.shape[1] != 1):
            raise ValueError("masks must be N x 1 x H x W")
        if info.kind == "paired" and (images_b is None or images_b.shape[0] != n):
            raise ValueError("paired datasets need images_b of the same length")
        if info.kind == "unpaired" and images_b is None:
            raise ValueError("unpaired datasets need images_b")
        self.info = info
        self.images = images
        self.labels = labels.to(torch.int64) if labels is not None else None
        self.captions = captions
        self.masks = masks
        self.images_b = images_b
        self.skipped: list[tuple[Path, str]] = list(skipped or [])
        #: images smaller than the crops cut from them (``data.patches``), enlarged first
        self.enlarged: list[Path] = list(enlarged or [])

    def __len__(self) -> int:
        """Number of samples; for unpaired data, the larger of the two sides."""
        if self.info.kind == "unpaired" and self.images_b is not None:
            return max(self.images.shape[0], self.images_b.shape[0])
        return self.images.shape[0]

    def __repr__(self) -> str:
        c, h, w = self.images.shape[1:]
        return f"ImageDataset({self.info.spec!r}, {len(self)} x {c} x {h} x {w}, {self.info.kind})"

    def get_batch(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        """The samples at ``indices`` as model inputs (``float32`` in ``[-1, 1]``).

        ``{"image": N x C x H x W, "label": int64 N}`` ("label" only when labelled); paired and
        unpaired datasets give ``{"A": ..., "B": ...}``, unpaired indices taken modulo each side's
        length.
        """
        idx = torch.as_tensor(indices, dtype=torch.int64).reshape(-1)
        if self.info.kind == "paired":
            assert self.images_b is not None
            return {"A": to_model_range(self.images[idx]), "B": to_model_range(self.images_b[idx])}
        if self.info.kind == "unpaired":
            assert self.images_b is not None
            return {
                "A": to_model_range(self.images[idx % self.images.shape[0]]),
                "B": to_model_range(self.images_b[idx % self.images_b.shape[0]]),
            }
        batch = {"image": to_model_range(self.images[idx])}
        if self.labels is not None:
            batch["label"] = self.labels[idx]
        return batch


def track(items: Iterable[T], *, total: int, description: str, enabled: bool) -> Iterator[T]:
    """Iterate ``items``, with a transient rich progress bar when ``enabled``."""
    if not enabled:
        yield from items
        return
    from rich.console import Console
    from rich.progress import track as rich_track

    err = Console(stderr=True)  # on a terminal only: piped output and error lines stay clean
    yield from rich_track(
        items,
        description=description,
        total=total,
        transient=True,
        console=err,
        disable=not err.is_terminal,
    )
