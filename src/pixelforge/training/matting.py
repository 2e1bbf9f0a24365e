"""The train step of the matting family: an alpha matte from an image, supervised by pairs.

Data: paired data, A = image and B = its alpha (grey; only B's first channel is read):

- ``--data composites`` (the default recipe): the built-in dataset of
  :mod:`pixelforge.restoration.composites`, emoji and procedural shapes with known alpha pasted on
  the bundled photos; ``composites:test`` holds out foregrounds and background photos.
- ``--data paired:PATH``: your own images in ``PATH/A`` and their alpha mattes in ``PATH/B``
  (same file names), e.g. written by :func:`pixelforge.restoration.composites.write_composites`
  or exported from a photo editor. Each B file is read by the matte rule
  (:func:`pixelforge.data.transforms.matte_of`): a cutout's alpha channel, else a grey image.

B sides that cannot be mattes are refused before the first step: colour images without
transparency and 0/1 masks saved as 8 bits (each file, as it is read), and mattes that are
white everywhere (:func:`check_mattes`).

Both reach the task through the trainer's ordinary dataset, so data order, resume and
multi-process splits are the trainer's. The step mirrors image and alpha together (a random
horizontal flip drawn from the step's generator) and minimises

    L1(alpha_hat, alpha) + lap_weight * sum_k 2^k * L1(Lap_k(alpha_hat), Lap_k(alpha))

where ``Lap_k`` is band-pass level k of a 4-level Laplacian pyramid (the Laplacian loss of Hou and Liu
2019, "Context-Aware Image Matting"): it weighs edge structure at several scales, which a plain
L1 on a mostly-0/1 matte under-weights. A compositional loss needs the foreground and background
colours separately, which paired data does not carry, so it is left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F

from pixelforge.config import check_range
from pixelforge.data.transforms import COLOUR_SPREAD
from pixelforge.errors import DataError
from pixelforge.models.matting import MattingConfig, MattingNet
from pixelforge.training.config import TINY_TRAIN, TrainConfig
from pixelforge.training.task import StepContext, TrainTask, frozen_copy

TINY: dict[str, Any] = {
    "model": {"image_size": 16, "widths": [4, 8, 8]},
    "train": dict(TINY_TRAIN),
}  # the family's seconds-long test configuration (Family.tiny)

LAPLACIAN_LEVELS = 4


@dataclass(frozen=True)
class MattingTrainConfig(TrainConfig):
    batch_size: int = 16  # global batch size, split evenly across processes
    lr: float = 2e-3  # peak learning rate
    betas: tuple[float, float] = (0.9, 0.999)  # Adam betas
    lr_schedule: Literal["constant", "cosine", "linear"] = (
        "cosine"  # decay after warm-up, to 0 at `steps`
    )
    ema_decay: float = 0.998  # decay of the EMA copy of the network; 0 turns EMA off
    lap_weight: float = 1.0  # weight of the Laplacian-pyramid term (0: plain L1)
    hflip: bool = True  # mirror image and alpha together, probability 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("train.lap_weight", self.lap_weight, low=0)


def _gauss_kernel(device: torch.device) -> torch.Tensor:
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], device=device)
    k2 = torch.outer(k, k)
    return (k2 / k2.sum())[None, None]


def laplacian_loss(
    pred: torch.Tensor, target: torch.Tensor, levels: int = LAPLACIAN_LEVELS
) -> torch.Tensor:
    """``sum_k 2^k * mean |Lap_k(pred) - Lap_k(target)|`` over the band-pass levels of a
    Laplacian pyramid of N x 1 x H x W mattes (stopping when a side would drop below 4). The
    low-pass residual is left to the L1 term."""
    kernel = _gauss_kernel(pred.device)

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), kernel)

    total = pred.new_zeros(())
    a, b = pred, target
    for k in range(levels):
        if min(a.shape[-2:]) < 4:
            break
        ga, gb = blur(a), blur(b)
        total = total + 2**k * ((a - ga) - (b - gb)).abs().mean()
        a, b = F.avg_pool2d(ga, 2), F.avg_pool2d(gb, 2)
    return total


def check_mattes(mattes: torch.Tensor) -> None:
    """Raise :class:`DataError` unless ``mattes`` (the B side as read, uint8 N x C x H x W) can
    be alpha mattes: grey, not white everywhere, not a 0/1 mask saved in 8 bits. ``paired:PATH``
    folders are read by the matte rule already (each file refused on its own); this checks the
    B side of any other paired data as a whole."""
    how = (
        "Save each matte in B/ as a grey PNG, 0 = background to 255 = object, or as a cutout "
        "whose alpha channel is the matte."
    )
    colour = 0
    for chunk in mattes.split(256):
        if chunk.shape[1] > 1:
            spread = chunk.amax(dim=1).float() - chunk.amin(dim=1).float()
            colour += int((spread.mean(dim=(1, 2)) > COLOUR_SPREAD).sum())
    if colour:
        raise DataError(
            f"{colour} of {len(mattes)} mattes (B) are colour images, not alpha mattes. {how}"
        )
    top = int(mattes.max()) if mattes.numel() else 0
    if top == 1:
        raise DataError(
            f"the mattes (B) hold only the values 0 and 1 of 0-255: a 0/1 mask saved in 8 "
            f"bits reads as (almost) all background. {how}"
        )
    if mattes.numel() and int(mattes.min()) == 255:
        raise DataError(
            "every matte (B) is white everywhere: no pixel is background, so there is nothing "
            f"to learn. {how}"
        )


class MattingTask(TrainTask):
    """Trains the matting U-Net (module ``net``, EMA copy ``net_ema``; optimizer ``net``)."""

    def __init__(self, model_config: MattingConfig, train_config: MattingTrainConfig) -> None:
        super().__init__(model_config, train_config)
        self.model = MattingNet(model_config)
        self.modules = {"net": self.model, "net_ema": frozen_copy(self.model)}
        self.ema = {"net_ema": "net"}
        cfg = train_config
        self.optimizers = {
            "net": torch.optim.Adam(
                self.model.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay
            )
        }
        self._preview: tuple[torch.Tensor, int] | None = None

    def attach_data(self, dataset: Any) -> None:
        """Refuse data that is not images paired with their alpha, or a B side that cannot be
        alpha mattes, before the run is written."""
        info = getattr(dataset, "info", None)
        if info is not None and getattr(info, "kind", None) != "paired":
            raise DataError(
                f"matting trains on images paired with their alpha, and {info.spec} is not "
                "paired: use --data composites (built in) or --data paired:PATH (PATH/A images, "
                "PATH/B their mattes: grey images or cutouts)."
            )
        mattes = getattr(dataset, "images_b", None)
        if isinstance(mattes, torch.Tensor):
            check_mattes(mattes)

    def train_step(
        self, batch: dict[str, torch.Tensor], ctx: StepContext
    ) -> dict[str, torch.Tensor]:
        cfg: MattingTrainConfig = self.train_config
        image = batch["A"]
        alpha = (batch["B"][:, :1] + 1.0) / 2.0
        if cfg.hflip:
            flip = ctx.rand(1, 1, 1) < 0.5
            image = torch.where(flip, image.flip(-1), image)
            alpha = torch.where(flip, alpha.flip(-1), alpha)
        with ctx.autocast():
            logits = self.model.logits(image)
        pred = torch.sigmoid(logits.float())
        l1 = (pred - alpha).abs().mean()
        loss = l1
        out = {"loss_l1": l1.detach()}
        if cfg.lap_weight > 0:
            lap = laplacian_loss(pred, alpha)
            loss = loss + cfg.lap_weight * lap
            out["loss_lap"] = lap.detach()
        ctx.optimize("net", loss)
        out["loss"] = loss.detach()
        return out

    def export(self) -> MattingNet:
        model = MattingNet(self.model_config)
        model.load_state_dict(self.modules["net_ema"].state_dict())
        return model.eval()

    def init_from(self, model: Any) -> None:
        self.modules["net"].load_state_dict(model.state_dict())
        self.modules["net_ema"].load_state_dict(model.state_dict())

    @torch.no_grad()
    def sample_grid(self, n: int, seed: int) -> torch.Tensor:
        """Held-out composites and the EMA model's mattes, alternating (image, alpha, ...)."""
        from pixelforge.restoration.composites import composite_source, make_composites

        k = max(1, n // 2)
        if self._preview is None or self._preview[1] != k:
            size = self.model_config.image_size
            try:
                source = composite_source("test", seed=seed)
            except DataError:  # no emoji font: shapes only
                source = composite_source("test", seed=seed, emoji=False)
            drawn, _ = make_composites(k, size, source=source)
            self._preview = (torch.from_numpy(drawn).permute(0, 3, 1, 2).float() / 255.0, k)
        images = self._preview[0]
        net: MattingNet = self.modules["net_ema"]  # type: ignore[assignment]
        device = next(net.parameters()).device
        alpha = torch.sigmoid(net.logits(images.to(device) * 2 - 1)).cpu()
        grid = torch.stack([images, alpha.expand(-1, 3, -1, -1)], dim=1).flatten(0, 1)
        return grid[:n]
