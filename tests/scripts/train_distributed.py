"""Train RUN_DIR's run under torchrun / accelerate launch and save each rank's weights (test helper)."""

import sys
from pathlib import Path

import torch.distributed as dist
from safetensors.torch import save_file

from pixelforge.training.run import read_run
from pixelforge.training.trainer import Trainer

run_dir = Path(sys.argv[1])
trainer = Trainer(read_run(run_dir), run_dir, progress=False)
trainer.fit()
tensors = {
    f"{name}.{k}": v.contiguous()
    for name, m in trainer.task.modules.items()
    for k, v in m.state_dict().items()
}
save_file(tensors, str(run_dir / f"rank{trainer.rank}.safetensors"))
if dist.is_initialized():
    dist.barrier()
    dist.destroy_process_group()  # exiting in the group may abort in gloo's threads
