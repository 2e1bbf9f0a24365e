"""Compute reference statistics and features under torchrun and save them (test helper)."""

import sys
from pathlib import Path

import torch.distributed as dist
from safetensors.torch import save_file

from pixelforge.features import get_extractor
from pixelforge.tasks.evaluate import extract
from pixelforge.tasks.sources import resolve_source

out = Path(sys.argv[1])
if "WORLD_SIZE" in __import__("os").environ:
    dist.init_process_group("gloo")
got = extract(
    resolve_source("dcgan-digits"),
    get_extractor("digits-cnn"),
    n=150,
    batch_size=32,
    keep_features=True,
)
if not dist.is_initialized() or dist.get_rank() == 0:
    state = got.stats.to_state()
    save_file(
        {"mean": state["mean"], "m2": state["m2"], "features": got.features.contiguous()}, str(out)
    )
if dist.is_initialized():
    dist.destroy_process_group()
