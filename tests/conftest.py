"""Shared fixtures. Tests never touch the network and run on the CPU."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path
from typing import Any

import pytest

from pixelforge.config import merge
from pixelforge.registry import get_family
from pixelforge.training.run import RunSpec, prepare_run

FIXTURES = Path(__file__).parent / "fixtures"


def make_image_folder(root: Path, kind: str = "folder", n: int = 12) -> str:
    """``n`` random 10x12 RGB PNGs laid out for ``kind`` (folder, paired, unpaired, or mattes:
    paired with B grey, as alpha mattes are) under ``root``; returns the dataset spec."""
    import torch
    from PIL import Image

    grey_b = kind == "mattes"
    kind = "paired" if grey_b else kind
    sides = {"folder": [""], "paired": ["A", "B"], "unpaired": ["trainA", "trainB"]}[kind]
    g = torch.Generator().manual_seed(0)
    for side in sides:
        (root / side).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            pixels = (torch.rand(10, 12, 3, generator=g) * 255).to(torch.uint8).numpy()
            if grey_b and side == "B":
                pixels = pixels[:, :, 0]
            Image.fromarray(pixels).save(root / side / f"img{i}.png")
    return f"{kind}:{root}"


def make_scene_folder(root: Path) -> str:
    """A tiny NeRF scene (4 train views, 1 val, 1 test, 16 x 16) under ``root``; returns the
    dataset spec ``scene:PATH``."""
    from pixelforge.nerf.make_scene import make_scene

    if not (root / "transforms_train.json").is_file():
        make_scene("simple", views=4, size=16, out=root, val_views=1, test_views=1)
    return f"scene:{root}"


def family_dataset(family: str, where: Path) -> str:
    """A dataset the family trains on: digits, a small paired/unpaired folder or a tiny scene
    under ``where``."""
    kind = get_family(family).data_kind
    if kind == "images":
        return "digits"
    if kind == "scene":
        return make_scene_folder(where / "data-scene")
    return make_image_folder(where / f"data-{kind}", kind)


def tiny_spec(
    family: str, out: Path, *, dataset: str | None = None, **sections: dict[str, Any]
) -> RunSpec:
    """The family's tiny test config, with ``sections`` ({"train": {...}}) merged over it."""
    fam = get_family(family)
    if dataset is None:
        dataset = family_dataset(family, out.parent)
    overrides = merge(fam.tiny, {k: v for k, v in sections.items()})
    overrides = merge(overrides, {"train": {"device": "cpu"}})
    spec, _ = prepare_run(family, dataset, out, overrides=overrides)
    return spec


def run_cli(args: list[str]) -> int:
    """Run the command line in-process; returns its exit code."""
    from pixelforge.cli.main import main

    return main([str(a) for a in args])


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """Call the CLI in-process: returns (exit code, stdout, stderr)."""

    def call(*args: Any) -> tuple[int, str, str]:
        code = run_cli([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return call


@pytest.fixture(autouse=True)
def _same_thread_count_after_each_test():
    """A test (or an in-process CLI call with --threads) may change torch's thread count; later
    tests compare in-process results with subprocesses, whose float rounding depends on it."""
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def small_restore_model(task: str = "sr", image_size: int = 32, **kw: Any) -> Any:
    """A tiny restoration model whose output depends on its network (random small weights; an
    untrained one has zero tails and returns its input's skip path)."""
    import torch

    from pixelforge.models.restore import RestoreConfig, RestoreModel

    torch.manual_seed(0)
    model = RestoreModel(RestoreConfig(task=task, image_size=image_size, width=8, blocks=1, **kw))
    for p in model.parameters():
        p.data.normal_(0, 0.05)
    return model.eval()
