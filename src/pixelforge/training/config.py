"""Training options shared by every family (families subclass to add their objective)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pixelforge.config import check_range
from pixelforge.errors import ConfigError


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 2000  # optimizer steps to train for (a resumed run may raise it)
    batch_size: int = 64  # global batch size, split evenly across processes
    lr: float = 2e-4  # peak learning rate
    betas: tuple[float, float] = (0.5, 0.999)  # Adam betas
    weight_decay: float = 0.0  # Adam weight decay
    lr_schedule: Literal["constant", "cosine", "linear"] = (
        "constant"  # decay after warm-up, to 0 at `steps`
    )
    warmup_steps: int = 0  # linear learning-rate warm-up from 0
    ema_decay: float = 0.999  # decay of the EMA copy of the generated model; 0 turns EMA off
    ema_rampup: bool = True  # early EMA decay min(ema_decay, (1 + step) / (10 + step))
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16 autocast for forward passes
    seed: int = 0  # seeds initialisation, data order, augmentation and latents
    device: str = "auto"  # auto (a GPU when there is one), cpu, cuda, cuda:N or mps
    checkpoint_every: int = 500  # steps between checkpoints (the last step always saves)
    keep_checkpoints: int = 3  # newest checkpoints kept on disk
    log_every: int = 10  # steps between rows of metrics.jsonl and TensorBoard
    sample_every: int = 500  # steps between sample grids in samples/ (0: never)
    sample_count: int = 64  # images in each sample grid
    tensorboard: bool = True  # write TensorBoard events under tb/
    max_nonfinite: int = 10  # this many non-finite steps in a row stop the run
    eval_every: int = (
        0  # steps between FID evaluations of the EMA model, logged as "fid" (0: never)
    )
    eval_samples: int = 500  # generated images per evaluation, from fixed seeds
    eval_extractor: str = (
        "auto"  # auto: the dataset's domain extractor (digits, shapes), else inception-v3-fid
    )
    eval_data: str = "auto"  # real side (dataset, folder or .npz); auto: the held-out split if any

    def __post_init__(self) -> None:
        check_range("train.steps", self.steps, low=1)
        check_range("train.batch_size", self.batch_size, low=1)
        check_range("train.lr", self.lr, low=0, low_inclusive=False)
        for i, b in enumerate(self.betas):
            check_range(f"train.betas[{i}]", b, low=0, high=0.999999)
        check_range("train.weight_decay", self.weight_decay, low=0)
        check_range("train.warmup_steps", self.warmup_steps, low=0)
        check_range("train.ema_decay", self.ema_decay, low=0, high=0.999999)
        check_range("train.checkpoint_every", self.checkpoint_every, low=1)
        check_range("train.keep_checkpoints", self.keep_checkpoints, low=1)
        check_range("train.log_every", self.log_every, low=1)
        check_range("train.sample_every", self.sample_every, low=0)
        check_range("train.sample_count", self.sample_count, low=1, high=1024)
        check_range("train.max_nonfinite", self.max_nonfinite, low=1)
        check_range("train.eval_every", self.eval_every, low=0)
        check_range("train.eval_samples", self.eval_samples, low=2)
        if not (self.device in ("auto", "cpu", "cuda", "mps") or self.device.startswith("cuda:")):
            raise ConfigError(
                f"train.device must be auto, cpu, cuda, cuda:N or mps, got '{self.device}'."
            )

    def lr_factor(self, step: int) -> float:
        """Learning-rate multiplier at ``step`` (0-based): warm-up, then the schedule."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if self.lr_schedule == "constant":
            return 1.0
        span = max(1, self.steps - self.warmup_steps)
        t = min(1.0, (step - self.warmup_steps) / span)
        if self.lr_schedule == "linear":
            return 1.0 - t
        import math

        return 0.5 * (1.0 + math.cos(math.pi * t))

    def ema_beta(self, step: int) -> float:
        """EMA decay used after ``step`` (0-based)."""
        if self.ema_rampup:
            return min(self.ema_decay, (1 + step) / (10 + step))
        return self.ema_decay


# The train section every family's tiny test config (Family.tiny) shares: a seconds-long run.
TINY_TRAIN: dict[str, object] = {
    "steps": 2,
    "batch_size": 8,
    "checkpoint_every": 1,
    "sample_every": 0,
    "tensorboard": False,
}
