"""Datasets for pixelforge: the only place resizing, cropping, value range and augmentation live.

Open a dataset by spec at the model's size and channels::

    from pixelforge.data import DataConfig, open_dataset

    ds = open_dataset("digits", image_size=32, channels=1, config=DataConfig())
    batch = ds.get_batch(torch.arange(16))  # {"image": float32 16x1x32x32 in [-1, 1], "label": ...}

Built-ins (offline): ``digits``, ``faces``, ``photos``, ``shapes``, ``emoji``. Your own images:
``folder:PATH``, ``paired:PATH``, ``unpaired:PATH``.
"""

from pixelforge.data.api import (
    check_dataset,
    inspect_dataset,
    list_datasets,
    open_dataset,
    parse_spec,
)
from pixelforge.data.config import RESIZE_FILTERS, RESIZE_MODES, DataConfig
from pixelforge.data.dataset import CheckReport, DatasetInfo, ImageDataset
from pixelforge.data.transforms import augment_batch, from_model_range, to_model_range

__all__ = [
    "RESIZE_FILTERS",
    "RESIZE_MODES",
    "CheckReport",
    "DataConfig",
    "DatasetInfo",
    "ImageDataset",
    "augment_batch",
    "check_dataset",
    "from_model_range",
    "inspect_dataset",
    "list_datasets",
    "open_dataset",
    "parse_spec",
    "to_model_range",
]
