"""Training of the radiance-field families (``nerf-grid``, ``nerf-mlp``) on a scene folder.

Data: the run's data is a scene folder (``PATH`` or ``scene:PATH``, any format
:func:`pixelforge.nerf.scenes.load_scene` reads). :class:`RayDataset` holds every pixel of the
train split as a ray (origin, unit direction, colour), computed once; the trainer's per-epoch
permutation of ``len(dataset)`` = all train pixels makes each step a random batch of
``train.batch_size`` rays across all images. A new run takes the model's null ``aabb``,
``background`` and ``rig`` from the scene (:meth:`RayDataset.resolve_model`).

Step: render the batch (random sample offsets drawn from the step's seeded generator, so a
resumed run is exact), mean squared error against the pixels (``nerf-mlp``: coarse + fine), plus
the grid's regularisers. The grid family also follows a schedule fixed by the step, so that a
checkpoint after step N holds the field of step N: its resolution grows from
``train.resolution_start`` to ``model.resolution`` at ``train.upsample_steps`` (geometric
steps; the optimizer drops its moments for the resized tensors, as TensoRF rebuilds its
optimizer), and every ``train.occupancy_every`` steps the occupancy grid is recomputed from the
density (the first time, the box also shrinks to the occupied part when ``train.shrink_box``).

Evaluation (every ``train.eval_every`` steps): mean PSNR of full renders of ``train.eval_views``
views of the val split (test when there is no val split, else train), logged as ``val_psnr``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from pixelforge.config import check_range
from pixelforge.errors import ConfigError
from pixelforge.metrics.image_quality import psnr
from pixelforge.nerf.cameras import Cameras, Rig
from pixelforge.nerf.grid import GridField, NerfGridConfig
from pixelforge.nerf.mlp import NerfMLP, NerfMLPConfig
from pixelforge.nerf.render import render_image
from pixelforge.nerf.scenes import Scene, load_scene
from pixelforge.training.config import TINY_TRAIN, TrainConfig
from pixelforge.training.task import StepContext, TrainTask

SCENE_PREFIX = "scene:"


def scene_path(data: str) -> Path:
    """The folder (or transforms file) of a run's data spec: ``PATH`` or ``scene:PATH``."""
    return Path(data[len(SCENE_PREFIX) :] if data.startswith(SCENE_PREFIX) else data)


@dataclass(frozen=True)
class NerfTrainConfig(TrainConfig):
    betas: tuple[float, float] = (0.9, 0.99)  # Adam betas
    ema_decay: float = 0.0  # radiance fields train without an EMA copy: must stay 0
    downscale: int = 1  # the scene's images are used at 1/downscale of their size
    views: int = 0  # training views used, spread evenly over the train split (0: all of them)
    eval_views: int = 5  # held-out views rendered per evaluation (0: all of the split)
    sample_every: int = 1000  # steps between preview renders of held-out views (0: never)
    sample_count: int = 4  # views in each preview

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.ema_decay != 0:
            raise ConfigError("train.ema_decay must be 0: radiance fields train without EMA.")
        check_range("train.downscale", self.downscale, low=1)
        check_range("train.views", self.views, low=0)
        check_range("train.eval_views", self.eval_views, low=0)


@dataclass(frozen=True)
class NerfGridTrainConfig(NerfTrainConfig):
    steps: int = 3000  # optimizer steps to train for (a resumed run may raise it)
    batch_size: int = 4096  # rays per step
    lr: float = 0.02  # learning rate of the planes and lines
    network_lr: float = 1e-3  # learning rate of the appearance basis and colour MLP
    lr_schedule: Literal["constant", "cosine", "linear"] = "cosine"  # decay after warm-up
    eval_every: int = 500  # steps between held-out PSNR evaluations, logged as val_psnr (0: never)
    resolution_start: int = 48  # plane and line cells per axis at step 0
    upsample_steps: tuple[int, ...] = (300, 700, 1200)  # steps where the resolution grows
    occupancy_every: int = 250  # steps between occupancy-grid updates (0: never)
    shrink_box: bool = True  # shrink the field's box to the occupied part at the first update
    l1_weight: float = 4e-5  # weight of the density factors' mean absolute value (sparsity)
    tv_weight: float = 0.0  # weight of the density planes' total variation

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("train.network_lr", self.network_lr, low=0, low_inclusive=False)
        check_range("train.resolution_start", self.resolution_start, low=2)
        check_range("train.occupancy_every", self.occupancy_every, low=0)
        check_range("train.l1_weight", self.l1_weight, low=0)
        check_range("train.tv_weight", self.tv_weight, low=0)
        if list(self.upsample_steps) != sorted(set(self.upsample_steps)) or any(
            s < 1 for s in self.upsample_steps
        ):
            raise ConfigError(
                f"train.upsample_steps must be increasing positive steps, got {self.upsample_steps}."
            )


@dataclass(frozen=True)
class NerfMLPTrainConfig(NerfTrainConfig):
    steps: int = 20000  # optimizer steps to train for (a resumed run may raise it)
    batch_size: int = 1024  # rays per step
    lr: float = 5e-4  # peak learning rate (paper: 5e-4)
    lr_schedule: Literal["constant", "cosine", "linear"] = "cosine"  # decay after warm-up
    eval_every: int = 2000  # steps between held-out PSNR evaluations, logged as val_psnr (0: never)


# The families' seconds-long test configurations (Family.tiny).
GRID_TINY: dict[str, Any] = {
    "model": {"resolution": 8, "density_components": 2, "color_components": 2,
              "color_features": 4, "hidden": 8, "occupancy_resolution": 4},
    "train": {**TINY_TRAIN, "batch_size": 32, "resolution_start": 4, "upsample_steps": [1],
              "occupancy_every": 2, "eval_views": 1},
}  # fmt: skip
MLP_TINY: dict[str, Any] = {
    "model": {"width": 8, "depth": 2, "skip": 1, "pos_freqs": 2, "dir_freqs": 1,
              "coarse_samples": 4, "fine_samples": 4},
    "train": {**TINY_TRAIN, "batch_size": 32, "eval_views": 1},
}  # fmt: skip


class RayDataset:
    """Every pixel of a scene's train split (or of ``views`` of its images, spread evenly over
    the split's order; 0: all) as a ray; ``get_batch`` returns ``origins``, ``directions``
    (unit) and ``rgb``, each B x 3."""

    def __init__(self, scene: Scene, views: int = 0) -> None:
        self.scene = scene
        train = scene.splits.get("train")
        if train is None:
            raise ConfigError(f"scene {scene.root} has no train split to train on.")
        n = len(train.cameras)
        if views > n:
            raise ConfigError(
                f"train.views={views}, but {scene.root} has {n} training views; use at most {n}."
            )
        self.views = torch.linspace(0, n - 1, views or n).round().long()  # the images used
        origins, directions = train.cameras[self.views].rays()
        self.origins = origins.reshape(-1, 3)
        self.directions = directions.reshape(-1, 3)
        self.rgb = train.images[self.views].reshape(-1, 3).float()

    def __len__(self) -> int:
        return int(self.rgb.shape[0])

    def get_batch(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        return {
            "origins": self.origins[indices],
            "directions": self.directions[indices],
            "rgb": self.rgb[indices],
        }

    def resolve_model(self, model: Any) -> Any:
        """Fill the model config's null ``aabb``, ``background`` and ``rig`` from the scene (the
        rig: the training cameras summarised around the box centre, so that the model's folder
        alone can render an orbit)."""
        changes: dict[str, Any] = {}
        if model.aabb is None:
            changes["aabb"] = tuple(float(v) for v in self.scene.aabb.reshape(-1))
        if model.background is None and self.scene.background is not None:
            changes["background"] = tuple(float(v) for v in self.scene.background)
        if model.rig is None:
            box = torch.tensor(changes.get("aabb", model.aabb)).view(2, 3)
            changes["rig"] = Rig.of(self.scene.splits["train"].cameras, box.mean(dim=0))
        return dataclasses.replace(model, **changes) if changes else model

    def eval_views(self, limit: int) -> tuple[torch.Tensor, Cameras]:
        """Up to ``limit`` (0: all) evenly spread held-out views: images N x H x W x 3, cameras."""
        splits = self.scene.splits
        split = splits.get("val") or splits.get("test") or splits["train"]
        n = len(split.cameras)
        count = n if limit == 0 else min(limit, n)
        idx = torch.linspace(0, n - 1, count).round().long()
        return split.images[idx], split.cameras[idx]


def open_scene_data(data: str, model_config: Any, train_config: NerfTrainConfig) -> RayDataset:
    """The ray dataset of a run (the families' ``open_data`` hook)."""
    names: dict[tuple[float, ...], str] = {(1.0, 1.0, 1.0): "white", (0.0, 0.0, 0.0): "black"}
    chosen = model_config.background
    if chosen is not None and tuple(float(v) for v in chosen) not in names:
        raise ConfigError(
            f"model.background={list(chosen)}: scenes are composited on white [1,1,1] or black "
            "[0,0,0]; leave it out to use the scene's own (white for images with alpha)."
        )
    background = "auto" if chosen is None else names[tuple(float(v) for v in chosen)]
    scene = load_scene(scene_path(data), downscale=train_config.downscale, background=background)
    return RayDataset(scene, views=train_config.views)


class NerfTask(TrainTask):
    """Shared training of both radiance-field families: one module ``field``, one optimizer."""

    model: Any
    views: tuple[torch.Tensor, Cameras]  # held-out images and cameras of evaluations

    def attach_data(self, dataset: Any) -> None:
        self.views = dataset.eval_views(self.train_config.eval_views)

    def _loss(self, out: dict[str, torch.Tensor], rgb: torch.Tensor) -> dict[str, torch.Tensor]:
        mse = F.mse_loss(out["rgb"], rgb)
        losses = {"mse": mse, "loss": mse}
        if "rgb_coarse" in out:
            coarse = F.mse_loss(out["rgb_coarse"], rgb)
            losses.update(mse_coarse=coarse, loss=mse + coarse)
        return losses

    def _render_batch(
        self, batch: dict[str, torch.Tensor], ctx: StepContext
    ) -> dict[str, torch.Tensor]:
        with ctx.autocast():
            return self.model.render_rays(
                batch["origins"], batch["directions"], jitter=ctx.rand(self.model.noise_size)
            )

    def export(self) -> nn.Module:
        model = type(self.model)(self.model_config)
        model.load_state_dict(self.model.state_dict())
        return model

    def init_from(self, model: nn.Module) -> None:
        if not isinstance(model, type(self.model)) or model.config != self.model_config:
            raise ConfigError(
                f"--init needs a {self.model.family} model with the same model config."
            )
        self.model.load_state_dict(model.state_dict())

    @torch.no_grad()
    def render_views(self, cameras: Cameras) -> torch.Tensor:
        """Renders (N x H x W x 3) of ``cameras`` in eval mode."""
        was_training = self.model.training
        self.model.eval()
        try:
            return torch.stack(
                [render_image(self.model, cameras[i])["rgb"] for i in range(len(cameras))]
            )
        finally:
            self.model.train(was_training)

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Mean PSNR (dB) of the held-out views' renders: ``val_psnr``."""
        images, cameras = self.views
        pred = self.render_views(cameras).clamp(0, 1)
        value = psnr(pred.permute(0, 3, 1, 2), images.permute(0, 3, 1, 2), reduction="mean")
        return {"val_psnr": float(value)}

    @torch.no_grad()
    def sample_grid(self, n: int, seed: int) -> torch.Tensor:
        """Renders of up to ``n`` held-out views (N x 3 x H x W)."""
        _, cameras = self.views
        return self.render_views(cameras[: min(n, len(cameras))]).clamp(0, 1).permute(0, 3, 1, 2)


class NerfGridTask(NerfTask):
    """Trains a :class:`GridField` (module ``field``; optimizer ``field`` with two groups)."""

    def __init__(self, model_config: NerfGridConfig, train_config: NerfGridTrainConfig) -> None:
        super().__init__(model_config, train_config)
        if train_config.resolution_start > model_config.resolution:
            raise ConfigError(
                f"train.resolution_start={train_config.resolution_start} is above "
                f"model.resolution={model_config.resolution}."
            )
        self.model = GridField(model_config)
        self.model.resize(train_config.resolution_start)
        self.modules = {"field": self.model}
        self.optimizers = {
            "field": torch.optim.Adam(
                [
                    {"params": self.model.grid_tensors(), "lr": train_config.lr},
                    {"params": self.model.network_parameters(), "lr": train_config.network_lr},
                ],
                betas=train_config.betas,
                fused=True,
            )
        }

    def resolution_at(self, step: int) -> int:
        """Resolution of the planes from ``step`` on: geometric steps from the start to the
        model's, one per entry of ``train.upsample_steps`` passed."""
        cfg: NerfGridTrainConfig = self.train_config
        k, n = sum(step >= s for s in cfg.upsample_steps), len(cfg.upsample_steps)
        if n == 0:
            return cfg.resolution_start
        r0, r1 = cfg.resolution_start, self.model_config.resolution
        return round(r0 * (r1 / r0) ** (k / n))

    def _schedule(self, step: int) -> None:
        """The step's changes to the field: resolution, occupancy grid, box."""
        cfg: NerfGridTrainConfig = self.train_config
        opt = self.optimizers["field"]
        target = self.resolution_at(step)
        if target != self.model.resolution:
            self.model.resize(target)
            for p in self.model.grid_tensors():
                opt.state.pop(p, None)
        if cfg.occupancy_every and step and step % cfg.occupancy_every == 0:
            self.model.update_occupancy()
            if cfg.shrink_box and step == cfg.occupancy_every and self.model.shrink_to_occupied():
                for p in self.model.grid_tensors():
                    opt.state.pop(p, None)

    def train_step(
        self, batch: dict[str, torch.Tensor], ctx: StepContext
    ) -> dict[str, torch.Tensor]:
        cfg: NerfGridTrainConfig = self.train_config
        self._schedule(ctx.step)
        losses = self._loss(self._render_batch(batch, ctx), batch["rgb"])
        loss = losses["loss"]
        if cfg.l1_weight or cfg.tv_weight:
            l1, tv = self.model.regularization()
            loss = loss + cfg.l1_weight * l1 + cfg.tv_weight * tv
        ctx.optimize("field", loss)
        out = {k: v.detach() for k, v in losses.items()}
        out["psnr"] = -10 * torch.log10(out["mse"])
        return out


class NerfMLPTask(NerfTask):
    """Trains a :class:`NerfMLP` (module ``field``, optimizer ``field``)."""

    def __init__(self, model_config: NerfMLPConfig, train_config: NerfMLPTrainConfig) -> None:
        super().__init__(model_config, train_config)
        self.model = NerfMLP(model_config)
        self.modules = {"field": self.model}
        self.optimizers = {
            "field": torch.optim.Adam(
                self.model.parameters(), lr=train_config.lr, betas=train_config.betas
            )
        }

    def train_step(
        self, batch: dict[str, torch.Tensor], ctx: StepContext
    ) -> dict[str, torch.Tensor]:
        losses = self._loss(self._render_batch(batch, ctx), batch["rgb"])
        ctx.optimize("field", losses["loss"])
        out = {k: v.detach() for k, v in losses.items()}
        out["psnr"] = -10 * torch.log10(out["mse"])
        return out
