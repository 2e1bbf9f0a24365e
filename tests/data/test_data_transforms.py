"""augment_batch determinism, value range, DataConfig validation."""

from __future__ import annotations

import dataclasses
import inspect
import re

import numpy as np
import pytest
import torch

from pixelforge.data import (
    DataConfig,
    augment_batch,
    from_model_range,
    open_dataset,
    to_model_range,
)
from pixelforge.data.config import RESIZE_FILTERS
from pixelforge.data.transforms import random_crops
from pixelforge.errors import ConfigError

AUG = DataConfig(hflip=True, translate=0.25)


def _gen(seed: int = 123) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_two_halves_get_exactly_what_one_whole_batch_gets() -> None:
    x = torch.rand(8, 3, 16, 16, generator=_gen(0))
    g_whole, g_first, g_second = _gen(), _gen(), _gen()
    whole = augment_batch(x, g_whole, AUG, global_batch=8, offset=0)
    first = augment_batch(x[:4], g_first, AUG, global_batch=8, offset=0)
    second = augment_batch(x[4:], g_second, AUG, global_batch=8, offset=4)
    assert torch.equal(torch.cat([first, second]), whole)
    assert not torch.equal(whole, x)  # something did change
    state = g_whole.get_state()
    assert torch.equal(g_first.get_state(), state) and torch.equal(g_second.get_state(), state)


def test_no_augmentation_returns_input_and_consumes_the_same_draws() -> None:
    x = torch.rand(6, 1, 8, 8)
    g_off, g_on = _gen(), _gen()
    out = augment_batch(x, g_off, DataConfig(), global_batch=6, offset=0)
    augment_batch(x, g_on, AUG, global_batch=6, offset=0)
    assert torch.equal(out, x)
    assert torch.equal(g_off.get_state(), g_on.get_state())
    g_other = _gen()  # the draws depend on the batch size, not on the options or the data
    augment_batch(
        torch.zeros(6, 3, 32, 32), g_other, DataConfig(hflip=True), global_batch=6, offset=0
    )
    assert torch.equal(g_other.get_state(), g_on.get_state())


def test_flip_only_gives_each_image_or_its_mirror_both_occurring() -> None:
    x = torch.rand(32, 3, 8, 8)
    out = augment_batch(x, _gen(), DataConfig(hflip=True), global_batch=32, offset=0)
    flipped = [torch.equal(o, xi.flip(-1)) for o, xi in zip(out, x, strict=True)]
    kept = [torch.equal(o, xi) for o, xi in zip(out, x, strict=True)]
    assert all(f != k for f, k in zip(flipped, kept, strict=True))
    assert 0 < sum(flipped) < 32


def test_translate_shifts_by_whole_pixels_within_the_limit() -> None:
    x = torch.arange(16 * 16, dtype=torch.float32).view(1, 1, 16, 16).repeat(16, 1, 1, 1)
    out = augment_batch(x, _gen(), DataConfig(translate=0.25), global_batch=16, offset=0)
    shifts = set()
    for o in out:
        found = [
            (dy, dx)
            for dy in range(-4, 5)
            for dx in range(-4, 5)
            if torch.equal(o[0, 4:12, 4:12], x[0, 0, 4 - dy : 12 - dy, 4 - dx : 12 - dx])
        ]
        assert len(found) == 1  # a pure shift of at most 4 = 0.25 * 16 pixels
        shifts.add(found[0])
    assert len(shifts) > 3


def test_uint8_batches_keep_their_dtype() -> None:
    x = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    out = augment_batch(x, _gen(), AUG, global_batch=4, offset=0)
    assert out.dtype == torch.uint8 and out.shape == x.shape


def test_a_slice_outside_the_global_batch_is_refused() -> None:
    with pytest.raises(ValueError, match="outside the global batch"):
        augment_batch(torch.zeros(4, 1, 4, 4), _gen(), AUG, global_batch=6, offset=4)


def test_model_range_round_trips() -> None:
    x = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    y = to_model_range(x)
    assert y.dtype == torch.float32 and y.min() == -1 and y.max() == 1
    assert torch.equal(from_model_range(y), x)


def test_validate_names_the_bad_field() -> None:
    with pytest.raises(ConfigError, match=r"resize_filter.*'bicubc'.*Did you mean 'bicubic'"):
        DataConfig(resize_filter="bicubc").validate()
    with pytest.raises(ConfigError, match="resize_mode"):
        DataConfig(resize_mode="crop").validate()
    with pytest.raises(ConfigError, match="translate"):
        DataConfig(translate=0.7).validate()
    with pytest.raises(ConfigError, match="max_bad_fraction"):
        DataConfig(max_bad_fraction=-0.1).validate()
    with pytest.raises(ConfigError, match="shapes_count"):
        DataConfig(shapes_count=0).validate()
    with pytest.raises(ConfigError, match="resize_filter"):  # open_dataset validates too
        open_dataset("digits", image_size=8, channels=1, config=DataConfig(resize_filter="cubic"))
    with pytest.raises(ConfigError, match="channels"):
        open_dataset("digits", image_size=8, channels=4)
    for name in RESIZE_FILTERS:
        DataConfig(resize_filter=name).validate()
    for bad in ((0.0, 1.0), (0.5, 1.5), (0.8, 0.5)):
        with pytest.raises(ConfigError, match="patch_scale"):
            DataConfig(patch_scale=bad).validate()


def test_patches_cut_from_a_shrunk_photo_show_its_detail_more_densely() -> None:
    # a photo twice the test images' scale: a crop from it shrunk by half spans twice the scene
    ramp = np.tile((np.arange(400) // 2).astype(np.uint8)[None, :, None], (300, 1, 3))
    same = random_crops(ramp, size=64, count=20, rng=np.random.default_rng(1), filter="bicubic")
    native = [c[..., 0].astype(int) for c in same]
    assert all(int(c[:, -1].mean() - c[:, 0].mean()) in (31, 32) for c in native)  # 63 px
    halved = random_crops(
        ramp, size=64, count=20, rng=np.random.default_rng(1), filter="bicubic", scale=(0.5, 0.5)
    )
    spans = [float(c[:, -2, 0].mean()) - float(c[:, 1, 0].mean()) for c in halved]
    assert all(61 <= span <= 62 for span in spans)  # 61 output pixels: 122 of the photo's
    # the default draws nothing more: the same crops as a plain cut at the same draws
    g = np.random.default_rng(1)
    tops, lefts = g.integers(0, 300 - 64 + 1, 20), g.integers(0, 400 - 64 + 1, 20)
    for crop, t, x in zip(same, tops, lefts, strict=True):
        assert np.array_equal(crop, ramp[t : t + 64, x : x + 64])


def test_every_config_field_has_a_one_line_comment() -> None:
    source = inspect.getsource(DataConfig)
    commented = set(re.findall(r"^\s+(\w+)\s*:[^#\n]*#\s*\S.*$", source, re.MULTILINE))
    assert {f.name for f in dataclasses.fields(DataConfig)} <= commented
