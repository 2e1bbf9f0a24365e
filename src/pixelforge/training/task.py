"""The per-family part of training: what is trained, by which optimizers, in one step.

The :class:`~pixelforge.training.trainer.Trainer` owns everything else (data order, devices,
processes, precision, EMA, non-finite handling, checkpoints, logs) and hands each step a
:class:`StepContext`.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class StepContext:
    """What a train step may use: seeded draws, its slice of the global batch, and `optimize`."""

    step: int  # 0-based index of this optimizer step
    generator: torch.Generator  # CPU generator seeded by (run seed, step)
    global_batch: int  # images in the step across all processes
    offset: int  # index of this process's first image within the global batch
    local_batch: int  # images of this process in this step
    device: torch.device  # where the modules live
    autocast_dtype: torch.dtype | None  # bf16 when mixed precision is on
    optimize: Callable[[str, torch.Tensor], bool]  # backward + reduce + finite check + step
    skipped: list[str] = field(default_factory=list)  # optimizers whose update was skipped

    def _draw(self, fn: Callable[..., torch.Tensor], shape: tuple[int, ...]) -> torch.Tensor:
        full = fn((self.global_batch, *shape), generator=self.generator)
        return full[self.offset : self.offset + self.local_batch].to(self.device)

    def randn(self, *shape: int) -> torch.Tensor:
        """Standard normal draws for this process's samples (a slice of one global draw)."""
        return self._draw(torch.randn, shape)

    def rand(self, *shape: int) -> torch.Tensor:
        """Uniform [0, 1) draws for this process's samples (a slice of one global draw)."""
        return self._draw(torch.rand, shape)

    def randint(self, high: int, *shape: int) -> torch.Tensor:
        """Integers in [0, high) for this process's samples."""
        full = torch.randint(high, (self.global_batch, *shape), generator=self.generator)
        return full[self.offset : self.offset + self.local_batch].to(self.device)

    def process_mean(self, local: torch.Tensor) -> torch.Tensor:
        """The mean over the processes of ``local``, a count over this process's samples (one
        process: ``local`` itself). A loss that divides a sum over the samples by a count that
        varies with them (the pixels of the holes) divides by it, so that the trainer's average of
        the processes' gradients is the gradient of the global sum over the global count, as in
        one process; each process's own count would weigh its samples differently."""
        world = self.global_batch // self.local_batch
        if world == 1:
            return local
        total = local.detach().clone()
        dist.all_reduce(total)
        return total / world

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """Mixed precision for forward passes when the run asks for it."""
        if self.autocast_dtype is None:
            yield
        else:
            with torch.autocast(self.device.type, dtype=self.autocast_dtype):
                yield


class TrainTask:
    """Base of the per-family training logic.

    Subclasses build, in ``__init__``, ``self.modules`` (every module saved in a checkpoint, EMA
    copies included), ``self.optimizers`` (name -> optimizer; the trainer sets their learning
    rates from the schedule) and ``self.ema`` (EMA module name -> trained module name), and
    implement :meth:`train_step`, :meth:`export` and :meth:`sample_grid`.
    """

    def __init__(self, model_config: Any, train_config: Any) -> None:
        self.model_config = model_config
        self.train_config = train_config
        self.modules: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.ema: dict[str, str] = {}

    def attach_data(self, dataset: Any) -> None:
        """Called once with the training set (the restoration family keeps preview patches)."""

    def prepare(self, device: torch.device) -> None:
        """Called once by the trainer after resuming (or ``--init``) and before the run folder is
        written: work that needs the run's weights on ``device``. Raise :class:`ConfigError`
        here to refuse a run that cannot start, so that nothing of it is left behind."""

    def train_step(
        self, batch: dict[str, torch.Tensor], ctx: StepContext
    ) -> dict[str, torch.Tensor]:
        """One optimizer step (which may update several optimizers); returns losses to log."""
        raise NotImplementedError

    def export(self) -> nn.Module:
        """The model to save in a model dir (EMA weights where there are any)."""
        raise NotImplementedError

    def init_from(self, model: nn.Module) -> None:
        """Start from the weights of a saved model (``--init``)."""
        raise NotImplementedError

    def card(self) -> dict[str, str]:
        """What the saved model's card says of its training besides data and steps (shown by
        ``pixelforge info``): a family's training choices that its config does not hold."""
        return {}

    @torch.no_grad()
    def sample_grid(self, n: int, seed: int) -> torch.Tensor:
        """``n`` images in [0, 1] for the periodic sample grid."""
        raise NotImplementedError

    def trained_parameters(self, name: str) -> list[nn.Parameter]:
        """The parameters updated by optimizer ``name``."""
        return [p for g in self.optimizers[name].param_groups for p in g["params"]]


def frozen_copy(module: nn.Module) -> nn.Module:
    """A copy of ``module`` that is never trained directly: the EMA copies of the tasks."""
    ema = copy.deepcopy(module)
    ema.requires_grad_(False)
    ema.eval()
    return ema
