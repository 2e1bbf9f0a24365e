"""Run pixelforge commands (one JSON list of arguments per command line argument after the
first) under torchrun, and write the image files each process read to FIRST.rankR.json (test
helper)."""

import json
import os
import sys
from pathlib import Path

import torch.distributed as dist

import pixelforge.io.images as images
import pixelforge.tasks.matting as matting
from pixelforge.cli.main import main

reads: list[str] = []
read_image = images.read_image


def counting(path, *args, **kwargs):  # type: ignore[no-untyped-def]
    reads.append(str(path))
    return read_image(path, *args, **kwargs)


images.read_image = counting  # compute_paired imports it when called
matting.read_image = counting  # type: ignore[assignment]
codes = [main(json.loads(command)) for command in sys.argv[2:]]
rank = os.environ.get("RANK", "0")
Path(f"{sys.argv[1]}.rank{rank}.json").write_text(json.dumps({"codes": codes, "reads": reads}))
if dist.is_initialized():
    dist.destroy_process_group()  # as the command line does on exit
sys.exit(max(codes))
