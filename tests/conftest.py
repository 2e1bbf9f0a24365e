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


def tiny_spec(
    family: str, out: Path, *, dataset: str = "digits", **sections: dict[str, Any]
) -> RunSpec:
    """The family's tiny test config, with ``sections`` ({"train": {...}}) merged over it."""
    fam = get_family(family)
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
