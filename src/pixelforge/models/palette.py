"""Palette: image-to-image diffusion (Saharia et al. 2022, "Palette: Image-to-Image Diffusion
Models"), on a diffusers ``UNet2DModel`` and diffusers' schedulers.

The network predicts the noise (or v) of a noisy target ``x_t`` given a condition, by
concatenation: its input is ``concat(x_t, condition[, mask])``. Per task:

- ``inpaint`` / ``uncrop``: the condition is the image with the hole set to 0 (mid-grey in
  [-1, 1]) plus the mask as a fourth channel (+1 = fill, -1 = known); after sampling the known
  pixels are pasted back (as :func:`pixelforge.tasks.image2image.apply_model` also does).
- ``colorize``: the condition is the BT.601 luma of the input replicated to three channels; the
  output is RGB (``color_space`` "rgb", no Lab).
- ``jpeg``: the condition is the JPEG-compressed image.
- ``multi``: one model for the four tasks (Palette's multi-task model). It always reads the mask
  channel (all "known" for colorize and jpeg) and, unlike Palette, a learned task embedding (the
  UNet's class embedding): a grey photo is otherwise both a colorize and a jpeg input. Which task
  an inference call is for is the model's :attr:`PaletteModel.task` attribute, to be set by the
  caller (default "inpaint").

Sampling is diffusers' (DDIM by default, 50 steps), from noise drawn from a generator seeded by
the model's ``seed`` attribute (default 0): the same input, seed, sampler and steps give the same
image. ``steps`` and ``sampler`` are attributes too (defaults from the config).

Budget: this is a GPU-scale method. A 25-minute single-thread CPU run (2,082 steps of 8 crops
of 64 px) gives hole fills far below OpenCV's Telea on the first 5 CBSD68 images
(``benchmarks/restoration.py inpaint --limit 5``, DDIM-20: hole PSNR 11.3 / 10.3 dB for box /
free-form masks against Telea's 14.1 / 17.8 dB; about 23 s per 481 x 321 image): an
undertrained epsilon model's x0 estimate at high noise is poor, and DDIM never corrects it
(``prediction="v_prediction"`` keeps the context's colour better at the same budget). The
feed-forward ``restore`` models remain the defaults of the restoration commands.

Any image size works (sides padded to ``size_multiple``; no attention by default, so the network
is fully convolutional), but tiling is approximate: each tile samples its own noise and its own
GroupNorm statistics, so tiles of a large image agree only roughly where they overlap. The
overlap is therefore generous (``tile_overlap``) and blended, but for seamless results keep
images within one tile (``--tile``, 512 by default).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from pixelforge.config import check_range
from pixelforge.errors import ConfigError
from pixelforge.models.diffusion import SAMPLERS, DiffusionConfig, make_scheduler
from pixelforge.models.diffusion import unet_kwargs as diffusion_unet_kwargs
from pixelforge.models.image2image import ImageToImage

#: the tasks a single model does, in the order of the multi-task model's task embedding
SINGLE_TASKS: tuple[str, ...] = ("inpaint", "uncrop", "colorize", "jpeg")
TASKS: tuple[str, ...] = (*SINGLE_TASKS, "multi")
#: the largest sampling seed (torch generators take 64-bit seeds)
MAX_SEED = 2**64 - 1
#: restoration command -> the task a multi-task model does for it
COMMAND_TASKS: dict[str, str] = {
    "inpaint": "inpaint",
    "uncrop": "uncrop",
    "colorize": "colorize",
    "restore-jpeg": "jpeg",
}


@dataclass(frozen=True)
class PaletteConfig:
    task: Literal["inpaint", "uncrop", "colorize", "jpeg", "multi"] = (
        "inpaint"  # inpaint, uncrop, colorize, jpeg, or multi (one model for all four)
    )
    image_size: int = 64  # side of the clean training crops (power of two, 8 to 256)
    channels: int = 3  # image channels: RGB only
    block_out_channels: tuple[int, ...] = (32, 64, 128)  # UNet widths, one per resolution
    layers_per_block: int = 1  # ResNet layers in each UNet down block (up blocks: one more)
    attention: bool = False  # self-attention at the lowest resolution (cost grows as pixels^2)
    prediction: Literal["epsilon", "v_prediction"] = "epsilon"  # what the UNet predicts
    num_train_timesteps: int = 1000  # diffusion steps T of the forward (noising) process
    beta_schedule: Literal["linear", "squaredcos_cap_v2"] = "linear"  # betas: linear or cosine
    sampler: Literal["ddpm", "ddim", "dpm-solver++"] = "ddim"  # default sampler at inference
    steps: int = 50  # default sampling steps at inference

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ConfigError(f"model.task must be one of {', '.join(TASKS)}, got '{self.task}'.")
        if self.channels != 3:
            raise ConfigError(
                f"model.channels must be 3 (Palette works on RGB), got {self.channels}."
            )
        if self.sampler not in SAMPLERS:
            raise ConfigError(
                f"model.sampler must be one of {', '.join(SAMPLERS)}, got '{self.sampler}'."
            )
        check_range("model.steps", self.steps, low=1, high=self.num_train_timesteps)
        self.diffusion_config()  # the UNet and schedule checks of the diffusion family

    def diffusion_config(self) -> DiffusionConfig:
        """The equivalent unconditional diffusion config (UNet widths, schedule, objective)."""
        return DiffusionConfig(
            image_size=self.image_size,
            channels=self.channels,
            num_classes=0,
            block_out_channels=tuple(self.block_out_channels),
            layers_per_block=self.layers_per_block,
            attention=self.attention,
            prediction=self.prediction,
            num_train_timesteps=self.num_train_timesteps,
            beta_schedule=self.beta_schedule,
        )


def condition_channels(task: str) -> int:
    """Channels concatenated to ``x_t``: the condition image (3), plus the mask (1) for inpaint,
    uncrop and multi."""
    return 3 + (1 if task in ("inpaint", "uncrop", "multi") else 0)


def unet_kwargs(config: PaletteConfig) -> dict[str, Any]:
    """Arguments of diffusers' ``UNet2DModel``: the diffusion family's, with the condition
    channels added to the input and, for ``multi``, one class embedding per task."""
    kw = diffusion_unet_kwargs(config.diffusion_config())
    kw["in_channels"] = config.channels + condition_channels(config.task)
    kw["num_class_embeds"] = len(SINGLE_TASKS) if config.task == "multi" else None
    return kw


def grey(x: torch.Tensor) -> torch.Tensor:
    """BT.601 luma of RGB ``x`` (N x 3 x H x W, any range) replicated to three channels."""
    w = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True).expand(-1, 3, -1, -1)


class PaletteModel(ImageToImage):
    """A conditional diffusion model (``unet``; EMA weights in a saved model); see the module
    docstring. ``translate`` samples, so it is slow: ``steps`` UNet passes per image."""

    family = "palette"

    def __init__(self, config: PaletteConfig) -> None:
        super().__init__()
        self.config: PaletteConfig = config
        from diffusers import UNet2DModel

        unet: Any = UNet2DModel(**unet_kwargs(config))
        self.unet: nn.Module = unet
        self.in_channels = self.out_channels = config.channels
        self.size_multiple = 2 ** (len(config.block_out_channels) - 1)
        # tiles sample independent noise: blend over a wide overlap (see the module docstring)
        self.tile_overlap = max(128, 8 * self.size_multiple)
        self.seed = 0  # seeds the sampling noise of translate()
        self.sampler: str = config.sampler
        self.steps: int = config.steps
        self.task = "inpaint" if config.task == "multi" else config.task

    @property
    def task(self) -> str:
        """The task translate() does: the config's, or for a multi-task model the one set here."""
        return self._task

    @task.setter
    def task(self, value: str) -> None:
        allowed = SINGLE_TASKS if self.config.task == "multi" else (self.config.task,)
        if value not in allowed:
            raise ConfigError(f"this palette model does {' or '.join(allowed)}, not '{value}'.")
        self._task = value
        self.takes_mask = value in ("inpaint", "uncrop")

    def set_task_for(self, command: str) -> None:
        """Set :attr:`task` for a restoration command (multi-task models; others: checked)."""
        if command not in COMMAND_TASKS:
            raise ConfigError(f"a palette model does not do `pixelforge {command}`.")
        self.task = COMMAND_TASKS[command]

    @contextmanager
    def sampling(
        self, *, seed: int | None = None, sampler: str | None = None, steps: int | None = None
    ) -> Iterator[None]:
        """Within the block, :meth:`translate` samples with these (None: the model's own
        :attr:`seed`, :attr:`sampler` and :attr:`steps`, which are restored afterwards)."""
        if sampler is not None and sampler not in SAMPLERS:
            raise ConfigError(f"unknown sampler '{sampler}': choose one of {', '.join(SAMPLERS)}.")
        if seed is not None:  # what torch's generator takes (a larger one is a torch error)
            check_range("seed", seed, low=0, high=MAX_SEED)
        if steps is not None:
            t = self.config.num_train_timesteps
            check_range(f"steps (the model has {t} diffusion steps)", steps, low=1, high=t)
        before = (self.seed, self.sampler, self.steps)
        self.seed = before[0] if seed is None else seed
        self.sampler = before[1] if sampler is None else sampler
        self.steps = before[2] if steps is None else steps
        try:
            yield
        finally:
            self.seed, self.sampler, self.steps = before

    def condition(
        self, x: torch.Tensor, mask: torch.Tensor | None, task: str | None = None
    ) -> torch.Tensor:
        """What the UNet reads besides ``x_t``: ``x`` (the degraded input in [-1, 1]) made into
        the condition of ``task`` (default :attr:`task`), plus the mask channel if the model
        has one."""
        task = task or self.task
        if task in ("inpaint", "uncrop"):
            if mask is None:
                raise ConfigError("this model fills a masked area: it needs a mask.")
            cond = x * (1 - mask)
        else:
            cond = grey(x) if task == "colorize" else x
            mask = torch.zeros_like(x[:, :1])
        if condition_channels(self.config.task) == 4:
            cond = torch.cat([cond, mask * 2 - 1], dim=1)
        return cond

    def task_labels(self, tasks: list[str], device: torch.device) -> torch.Tensor | None:
        """Task-embedding indices for a multi-task model (None for single-task models)."""
        if self.config.task != "multi":
            return None
        return torch.tensor([SINGLE_TASKS.index(t) for t in tasks], device=device)

    def predict(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor | int,
        cond: torch.Tensor,
        labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The UNet's output (epsilon or v) for noisy targets ``x_t`` at timesteps ``t``."""
        out: torch.Tensor = self.unet(torch.cat([x_t, cond], dim=1), t, class_labels=labels).sample
        return out

    @torch.no_grad()
    def sample(
        self,
        cond: torch.Tensor,
        *,
        labels: torch.Tensor | None = None,
        seed: int = 0,
        sampler: str = "ddim",
        steps: int = 50,
    ) -> torch.Tensor:
        """Targets in [-1, 1] for conditions ``cond`` by ``steps`` of diffusers' ``sampler``,
        from noise (and, for DDPM, step noise) drawn from a generator seeded by ``seed``."""
        if sampler not in SAMPLERS:
            raise ConfigError(f"unknown sampler '{sampler}': choose one of {', '.join(SAMPLERS)}.")
        check_range("steps", steps, low=1, high=self.config.num_train_timesteps)
        n, _, h, w = cond.shape
        g = torch.Generator().manual_seed(int(seed))
        z = torch.randn((n, self.config.channels, h, w), generator=g).to(cond)
        scheduler = make_scheduler(self.config.diffusion_config(), sampler)
        scheduler.set_timesteps(steps, device=cond.device)
        x = z * scheduler.init_noise_sigma
        kw: dict[str, Any] = {"generator": g} if sampler == "ddpm" else {}
        for t in scheduler.timesteps:
            out = self.predict(scheduler.scale_model_input(x, t), t, cond, labels)
            x = scheduler.step(out, t, x, **kw).prev_sample
        return x.clamp(-1, 1)

    @torch.no_grad()
    def translate(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The restored ``x`` (N x 3 x H x W in [-1, 1]) for :attr:`task`; deterministic for a
        fixed :attr:`seed`, :attr:`sampler` and :attr:`steps`."""
        cond = self.condition(x, mask)
        labels = self.task_labels([self.task] * x.shape[0], x.device)
        y = self.sample(cond, labels=labels, seed=self.seed, sampler=self.sampler, steps=self.steps)
        if self.takes_mask and mask is not None:
            y = x * (1 - mask) + y * mask  # keep the known pixels
        return y
