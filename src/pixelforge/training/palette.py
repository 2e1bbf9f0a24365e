"""The Palette train step: degrade clean patches, learn to denoise the clean target given them.

Examples come from the restoration family's :func:`~pixelforge.training.restore.make_pair`
(same augmentation, masks and JPEG round trips), one generator per image seeded from the step's
draws, so a resumed run sees exactly the same examples; colorization conditions on the luma of
the augmented patch. A multi-task model draws each example's task from the same generator.

One step (Saharia et al. 2022, after Ho et al. 2020): t ~ U{0..T-1} and eps ~ N(0, I) from the
step's draws, x_t = diffusers' ``add_noise(target, eps, t)``, MSE between the UNet's output on
``concat(x_t, condition)`` and eps (or v = sqrt(a_t) eps - sqrt(1 - a_t) x0), over all pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast

import torch
import torch.nn.functional as F
from torch import nn

from pixelforge.config import check_range
from pixelforge.errors import ConfigError
from pixelforge.models.diffusion import make_scheduler
from pixelforge.models.palette import SINGLE_TASKS, PaletteConfig, PaletteModel, grey
from pixelforge.models.restore import RestoreConfig, Task
from pixelforge.training.config import TINY_TRAIN, TrainConfig
from pixelforge.training.restore import RestoreTrainConfig, _augment, make_pair
from pixelforge.training.task import StepContext, TrainTask, frozen_copy

TINY: dict[str, Any] = {  # the family's seconds-long test configuration (Family.tiny)
    "model": {
        "image_size": 8,
        "block_out_channels": [8, 16],
        "layers_per_block": 1,
        "num_train_timesteps": 100,
        "steps": 3,
    },
    "train": {**TINY_TRAIN, "sample_steps": 2},
}


@dataclass(frozen=True)
class PaletteTrainConfig(TrainConfig):
    lr: float = 1e-4  # peak learning rate (Palette: 5e-5 at batch 1024 on TPUs)
    betas: tuple[float, float] = (0.9, 0.999)  # Adam betas
    batch_size: int = 16  # global batch size, split evenly across processes
    jpeg_quality: tuple[int, int] = (5, 30)  # jpeg: quality range of the inputs (Palette: 5-30)
    mask_kind: Literal["mixed", "box", "free", "border"] = (
        "mixed"  # inpaint: box, free-form, border or all three (uncrop: always border)
    )
    sample_steps: int = 10  # DDIM steps of the periodic preview grids

    def __post_init__(self) -> None:
        super().__post_init__()
        self.restore_config()  # checks jpeg_quality and mask_kind
        check_range("train.sample_steps", self.sample_steps, low=1, high=1000)

    def restore_config(self) -> RestoreTrainConfig:
        """The restoration family's options that :func:`make_pair` reads."""
        return RestoreTrainConfig(jpeg_quality=self.jpeg_quality, mask_kind=self.mask_kind)


def palette_example(
    config: PaletteConfig,
    train: PaletteTrainConfig,
    clean: torch.Tensor,
    g: torch.Generator,
) -> tuple[str, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """One example from a clean patch (1 x 3 x S x S in [0, 1]): ``(task, degraded input,
    target, mask)``, images in [-1, 1]; the task is drawn from ``g`` for a multi-task model."""
    task: str = config.task
    if task == "multi":
        task = SINGLE_TASKS[int(torch.randint(len(SINGLE_TASKS), (1,), generator=g))]
    if task == "colorize":
        x = _augment(clean, g) * 2 - 1
        return task, grey(x), x, None
    restore = RestoreConfig(task=cast(Task, task), image_size=config.image_size, channels=3)
    inp, target, mask = make_pair(restore, train.restore_config(), clean, g)
    return task, inp, target, mask


class PaletteTask(TrainTask):
    """Trains ``model.unet`` of a :class:`PaletteModel` (module ``unet``, EMA ``unet_ema``)."""

    model_cls = PaletteModel

    def __init__(self, model_config: PaletteConfig, train_config: PaletteTrainConfig) -> None:
        super().__init__(model_config, train_config)
        self.model = PaletteModel(model_config)
        self.modules = {"unet": self.model.unet, "unet_ema": frozen_copy(self.model.unet)}
        self.ema = {"unet_ema": "unet"}
        self.optimizers = {
            "unet": torch.optim.Adam(
                self.model.unet.parameters(),
                lr=train_config.lr,
                betas=train_config.betas,
                weight_decay=train_config.weight_decay,
            )
        }
        self.noise_scheduler = make_scheduler(model_config.diffusion_config(), "ddpm")
        self.preview: torch.Tensor | None = None

    def attach_data(self, dataset: Any) -> None:
        """Keep a few fixed training patches for the periodic preview grid."""
        n = min(8, len(dataset))
        idx = torch.linspace(0, len(dataset) - 1, n).long()
        self.preview = dataset.get_batch(idx)["image"]

    def _examples(
        self, clean: torch.Tensor, seeds: list[int]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Conditions, targets and task labels for clean patches in [-1, 1]."""
        model = self.model
        clean01 = ((clean.detach().float().cpu() + 1) / 2).clamp(0, 1)
        conds, targets, tasks = [], [], []
        for img, seed in zip(clean01, seeds, strict=True):
            g = torch.Generator().manual_seed(int(seed))
            task, inp, target, mask = palette_example(
                self.model_config, self.train_config, img[None], g
            )
            conds.append(model.condition(inp, mask, task))
            targets.append(target)
            tasks.append(task)
        return torch.cat(conds), torch.cat(targets), model.task_labels(tasks, torch.device("cpu"))

    def train_step(
        self, batch: dict[str, torch.Tensor], ctx: StepContext
    ) -> dict[str, torch.Tensor]:
        cfg: PaletteConfig = self.model_config
        seeds = ctx.randint(2**31 - 1).cpu().tolist()
        t = ctx.randint(cfg.num_train_timesteps)
        noise = ctx.randn(cfg.channels, cfg.image_size, cfg.image_size)
        cond, x0, labels = self._examples(batch["image"], seeds)
        dev = ctx.device
        cond, x0 = cond.to(dev), x0.to(dev)
        labels = None if labels is None else labels.to(dev)
        noisy = self.noise_scheduler.add_noise(x0, noise, t)
        if cfg.prediction == "epsilon":
            target = noise
        else:
            target = self.noise_scheduler.get_velocity(x0, noise, t)
        with ctx.autocast():
            pred = self.model.predict(noisy, t, cond, labels)
        loss = F.mse_loss(pred.float(), target.float())
        ctx.optimize("unet", loss)
        return {"loss": loss.detach()}

    def export(self) -> PaletteModel:
        model = PaletteModel(self.model_config)
        model.unet.load_state_dict(self.modules["unet_ema"].state_dict())
        return model

    def init_from(self, model: nn.Module) -> None:
        if not isinstance(model, PaletteModel) or model.config != self.model_config:
            raise ConfigError(
                "--init needs a palette model with the same model config (task, image_size, "
                "block_out_channels, layers_per_block, attention, schedule, prediction)."
            )
        for name in ("unet", "unet_ema"):
            self.modules[name].load_state_dict(model.unet.state_dict())

    @torch.no_grad()
    def sample_grid(self, n: int, seed: int) -> torch.Tensor:
        """Rows of (condition, sample, clean) for fixed training patches, sampled with
        ``train.sample_steps`` DDIM steps."""
        if self.preview is None:
            raise ConfigError("no data attached to preview")
        model = self.export().to(next(self.modules["unet_ema"].parameters()).device).eval()
        model.steps, model.sampler, model.seed = self.train_config.sample_steps, "ddim", seed
        dev = next(model.parameters()).device
        g = torch.Generator().manual_seed(seed)
        tiles = []
        for clean in self.preview[: max(1, n // 3)]:
            c01 = ((clean[None].float().cpu() + 1) / 2).clamp(0, 1)
            task, inp, target, mask = palette_example(self.model_config, self.train_config, c01, g)
            model.task = task
            m = None if mask is None else mask.to(dev)
            out = model.translate(inp.to(dev), m).cpu()
            shown = inp if mask is None else inp * (1 - mask)
            tiles += [(shown[0] + 1) / 2, (out[0] + 1) / 2, (target[0] + 1) / 2]
        return torch.stack(tiles).clamp(0, 1)
