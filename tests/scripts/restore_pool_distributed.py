"""Train RUN_DIR's restore run (with train.example_pool) under torchrun; save each rank's
weights, its example pool and how many examples it prepared itself (test helper)."""

import sys
from pathlib import Path

import torch
from train_distributed import save_rank  # the sibling script: each rank's weights, then leave

from pixelforge.models.restore import RestoreModel
from pixelforge.training.run import read_run
from pixelforge.training.trainer import Trainer

prepared: list[int] = []
prepare = RestoreModel.prepare


def counting(self, x, mask=None):  # type: ignore[no-untyped-def]
    prepared.append(x.shape[0])
    return prepare(self, x, mask)


RestoreModel.prepare = counting  # type: ignore[method-assign]
run_dir = Path(sys.argv[1])
trainer = Trainer(read_run(run_dir), run_dir, progress=False)  # builds the pool
tensors = {"prepared": torch.tensor(sum(prepared))}
assert trainer.task.pool is not None
for name, t in zip(("input", "target", "mask"), trainer.task.pool, strict=True):
    if t is not None:
        tensors[f"pool.{name}"] = t.contiguous()
trainer.fit()
save_rank(trainer, run_dir, tensors)
