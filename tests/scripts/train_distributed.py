"""Train RUN_DIR's run under torchrun / accelerate launch and save each rank's weights (test helper)."""

import sys
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import save_file

from pixelforge.training.run import read_run
from pixelforge.training.trainer import Trainer


def save_rank(trainer: Trainer, run_dir: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Save ``tensors`` and every module's state as ``run_dir/rank{N}.safetensors``, then leave
    the process group."""
    tensors = tensors | {
        f"{name}.{k}": v.contiguous()
        for name, m in trainer.task.modules.items()
        for k, v in m.state_dict().items()
    }
    save_file(tensors, str(run_dir / f"rank{trainer.rank}.safetensors"))
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()  # exiting in the group may abort in gloo's threads


if __name__ == "__main__":
    run_dir = Path(sys.argv[1])
    trainer = Trainer(read_run(run_dir), run_dir, progress=False)
    trainer.fit()
    save_rank(trainer, run_dir, {})
