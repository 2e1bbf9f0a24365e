"""The train step of the restoration family: degrade clean patches on the fly, learn to undo it.

Each clean patch of the batch gets its own degradation, drawn from a generator seeded by a
per-image seed that comes from the step's seeded draws: a resumed run, and a run split over
several processes, see exactly the same inputs. Augmentation: a random flip and quarter turn.
With ``train.example_pool=N`` the examples are instead drawn once, N of them with their filled
holes, and reused: the adaptive fill costs seconds per crop, too slow to redo every step.

Loss: L1 on the output (``train.pixel_loss=l2``: squared error; inpainting and uncropping: inside
the hole, normalised by its area; colorization: on a/b). Super-resolution with a GAN (SRGAN, Ledig et al. 2017) adds
``perceptual_weight`` x a VGG feature distance (colorization: of the RGB photos the input's L and
the a/b make) and ``adv_weight`` x a non-saturating adversarial term from a patch discriminator,
usually fine-tuned from a pixel-loss model with ``--init``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from pixelforge.config import check_range
from pixelforge.errors import ConfigError
from pixelforge.losses.adversarial import d_loss, g_loss
from pixelforge.models.restore import RestoreConfig, RestoreModel
from pixelforge.restoration import degrade
from pixelforge.restoration.color import lab_to_rgb, rgb_to_lab
from pixelforge.training.config import TINY_TRAIN, TrainConfig
from pixelforge.training.task import StepContext, TrainTask, frozen_copy

if TYPE_CHECKING:
    from pixelforge.losses.perceptual import PerceptualLoss

# model fields a run with --init may change (the weights do not depend on them), besides the crop
INIT_FREE: tuple[str, ...] = ("fill",)

TINY: dict[str, Any] = {
    "model": {"image_size": 8, "width": 8, "blocks": 1, "scale": 2},
    "train": dict(TINY_TRAIN),
}  # the family's seconds-long test configuration (Family.tiny)


@dataclass(frozen=True)
class RestoreTrainConfig(TrainConfig):
    lr: float = 5e-4  # peak learning rate
    betas: tuple[float, float] = (0.9, 0.999)  # Adam betas
    batch_size: int = 16  # global batch size, split evenly across processes
    degradation: Literal["bicubic", "real"] = (
        "bicubic"  # sr inputs: bicubic down-scaling, or blur + resize + noise + JPEG ("real")
    )
    noise_sigma: tuple[float, float] = (
        0.0,
        55.0,
    )  # denoise (and real sr: 0-15): sigma range, 8-bit
    # denoise: sigma = low + (high - low) * u**power, u uniform; 1 is uniform, 2 draws low sigmas
    # more often (of 0-55, one image in 5 below sigma 2, against one in 28)
    noise_sigma_power: float = 1.0
    # jpeg: quality range of the inputs; up to 95 so that the model also leaves the high-quality
    # JPEGs most photos are (little to remove) no worse
    jpeg_quality: tuple[int, int] = (10, 95)
    mask_kind: Literal["mixed", "box", "free", "border"] = (
        "mixed"  # inpaint: box, free-form, border (uncropping) or all three; uncrop: border
    )
    perceptual_weight: float = 0.0  # VGG feature loss weight (SRGAN: 1)
    adv_weight: float = 0.0  # adversarial loss weight (SRGAN: 1e-3); > 0 adds a discriminator
    pixel_weight: float = 1.0  # weight of the pixel term
    # the pixel term: L1; squared error; or "psnr", each image's squared error as decibels
    # (10 log10 MSE, over its hole when masked) averaged over the batch, the mean PSNR that
    # benchmarks report, which weighs images with small errors (thin strokes) as much as others
    pixel_loss: Literal["l1", "l2", "psnr"] = "l1"
    d_width: int = 32  # discriminator width (adv_weight > 0)
    # 0: a fresh crop and degradation every step. N > 0: N examples (crop, degradation and the
    # model's prepared input, i.e. the filled hole) drawn once at the start from the run's seed
    # and reused, each step's batch drawn from them: for fills too slow to compute every step
    # (model.fill=adaptive takes seconds per 256-px crop). Several processes prepare it in shares.
    example_pool: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.degradation not in ("bicubic", "real"):
            raise ConfigError(
                f"train.degradation must be bicubic or real, got '{self.degradation}'."
            )
        lo, hi = self.noise_sigma
        if not 0 <= lo <= hi <= 255:
            raise ConfigError(
                f"train.noise_sigma must be [low, high] within 0-255, got {[lo, hi]}."
            )
        if not 0 < self.noise_sigma_power <= 10:
            raise ConfigError(
                f"train.noise_sigma_power must be above 0 and at most 10, got "
                f"{self.noise_sigma_power}."
            )
        ql, qh = self.jpeg_quality
        if not 1 <= ql <= qh <= 100:
            raise ConfigError(
                f"train.jpeg_quality must be [low, high] within 1-100, got {[ql, qh]}."
            )
        if self.pixel_loss not in ("l1", "l2", "psnr"):
            raise ConfigError(f"train.pixel_loss must be l1, l2 or psnr, got '{self.pixel_loss}'.")
        if self.mask_kind not in ("mixed", "box", "free", "border"):
            raise ConfigError(
                f"train.mask_kind must be mixed, box, free or border, got '{self.mask_kind}'."
            )
        for name in ("perceptual_weight", "adv_weight", "pixel_weight"):
            check_range(f"train.{name}", getattr(self, name), low=0)
        check_range("train.d_width", self.d_width, low=1)
        check_range("train.example_pool", self.example_pool, low=0)


class PatchDiscriminator(nn.Module):
    """A small patch discriminator (strided convs, LeakyReLU, spectral norm): one logit per patch."""

    def __init__(self, channels: int, width: int) -> None:
        super().__init__()
        sn = nn.utils.spectral_norm
        layers: list[nn.Module] = [sn(nn.Conv2d(channels, width, 4, 2, 1)), nn.LeakyReLU(0.2)]
        c = width
        for _ in range(2):
            layers += [sn(nn.Conv2d(c, c * 2, 4, 2, 1)), nn.LeakyReLU(0.2)]
            c *= 2
        layers += [sn(nn.Conv2d(c, 1, 3, 1, 1))]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """A random horizontal flip and quarter turn (patches are square)."""
    if bool(torch.randint(2, (1,), generator=g)):
        x = x.flip(-1)
    k = int(torch.randint(4, (1,), generator=g))
    return torch.rot90(x, k, dims=(-2, -1)) if k else x


def pixel_term(
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None,
    kind: str,
    area: torch.Tensor | None = None,
) -> torch.Tensor:
    """The mean absolute (``l1``) or squared (``l2``) error, over the hole's pixels and channels
    when a mask (B x 1 x H x W, 1 in the hole) is given, else over every value; ``psnr``: each
    image's mean squared error (over its hole) in decibels, averaged over the images. ``area``:
    the hole pixels the l1 or l2 sum is divided by (default: ``mask``'s; in several processes,
    :meth:`StepContext.process_mean` of it)."""
    err = (pred - target).abs() if kind == "l1" else (pred - target).square()
    if kind == "psnr":
        if mask is None:
            per_image = err.flatten(1).mean(1)
        else:
            area = mask.flatten(1).sum(1).clamp(min=1) * pred.shape[1]
            per_image = (err * mask).flatten(1).sum(1) / area
        return 10 * torch.log10(per_image + 1e-8).mean()
    if mask is None:
        return err.mean()
    area = mask.sum() if area is None else area
    return (err * mask).sum() / (area.clamp(min=1) * pred.shape[1])


def make_pair(
    config: RestoreConfig, train: RestoreTrainConfig, clean: torch.Tensor, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """One training example from a clean patch (1 x C x S x S in [0, 1]):
    ``(input, target, mask)`` in the model's value ranges ([-1, 1]; colorization: L and a/b)."""
    task = config.task
    x = _augment(clean, g)
    mask = None
    if task == "sr":
        scale = config.factor
        if train.degradation == "real":
            lo, hi = train.noise_sigma
            inp = degrade.real_world(x, scale, g, noise_sigma=(lo, min(hi, degrade.REAL_NOISE_MAX)))
        else:
            inp = degrade.downscale(x, scale)
    elif task == "denoise":
        inp, _ = degrade.add_noise(x, train.noise_sigma, g, power=train.noise_sigma_power)
    elif task == "jpeg":
        inp = degrade.jpeg(x, train.jpeg_quality, g)
    elif task == "colorize":
        lab = rgb_to_lab(x)
        return lab[:, :1] / 50 - 1, lab[:, 1:] / 110, None
    else:
        h, w = x.shape[-2:]
        kind = "border" if task == "uncrop" else train.mask_kind
        mask = degrade.masks(kind, 1, h, w, g)
        inp = x
    return inp * 2 - 1, x * 2 - 1, mask


def _check_colour(dataset: Any) -> None:
    """Refuse a colorization run on a set of grey images: their a/b targets are all zero, so the
    model would learn to leave every photo grey."""
    images = dataset.images  # N x C x H x W uint8
    if images.shape[1] == 3:
        # a channel spread of a few levels on average: colour (a grey JPEG decodes within 1-2)
        spread = (images.amax(1).int() - images.amin(1).int()).float().flatten(1).mean(1)
        if bool((spread >= 2).any()):
            return
    raise ConfigError(
        f"model.task=colorize learns colour from colour photos, but every image in "
        f"{dataset.info.spec} is grey; train on a folder of colour photos."
    )


class RestoreTask(TrainTask):
    """Trains the network (module ``net``; EMA copy ``net_ema``) and, with ``adv_weight > 0``,
    a patch discriminator (module ``D``)."""

    def __init__(self, model_config: RestoreConfig, train_config: RestoreTrainConfig) -> None:
        super().__init__(model_config, train_config)
        cfg = train_config
        task = model_config.task
        if cfg.degradation != "bicubic" and task != "sr":  # options no step would read
            raise ConfigError(
                f"train.degradation={cfg.degradation} is how super-resolution inputs are made "
                f"(model.task=sr); a {task} model does not use it: leave it out."
            )
        if cfg.mask_kind != "mixed" and task != "inpaint":
            raise ConfigError(
                f"train.mask_kind={cfg.mask_kind} chooses the holes of model.task=inpaint; a "
                f"{task} model does not use it"
                + (" (uncrop always extends a border)" if task == "uncrop" else "")
                + ": leave it out."
            )
        self.model = RestoreModel(model_config)
        self.modules = {"net": self.model.net}
        if cfg.ema_decay > 0:
            self.modules["net_ema"] = frozen_copy(self.model.net)
            self.ema = {"net_ema": "net"}
        self.optimizers = {
            "net": torch.optim.Adam(
                self.model.net.parameters(), lr=cfg.lr, betas=cfg.betas,
                weight_decay=cfg.weight_decay,
            )
        }  # fmt: skip
        if cfg.adv_weight > 0:
            self.modules["D"] = PatchDiscriminator(self.model.out_channels, cfg.d_width)
            self.optimizers["D"] = torch.optim.Adam(
                self.modules["D"].parameters(), lr=cfg.lr, betas=cfg.betas
            )
        self.perceptual: PerceptualLoss | None = None
        if cfg.perceptual_weight > 0:
            from pixelforge.losses.perceptual import PerceptualLoss

            self.perceptual = PerceptualLoss(value_range=(-1.0, 1.0))
        self.preview: torch.Tensor | None = None
        # train.example_pool: prepared inputs, targets and masks (None: no mask), on the CPU
        self.pool: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None = None

    def attach_data(self, dataset: Any) -> None:
        """Keep a few fixed training patches for the periodic preview grid, and build the
        example pool when ``train.example_pool`` asks for one."""
        if self.model_config.task == "colorize":
            _check_colour(dataset)
        n = min(8, len(dataset))
        idx = torch.linspace(0, len(dataset) - 1, n).long()
        self.preview = dataset.get_batch(idx)["image"]
        if self.train_config.example_pool > 0:
            self.pool = self._build_pool(dataset)

    def _pairs(
        self, clean: torch.Tensor, seeds: list[int]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Examples (on the CPU) from clean patches, each degraded by its own seed."""
        clean01 = ((clean.detach().float().cpu() + 1) / 2).clamp(0, 1)
        inputs, targets, masks = [], [], []
        for img, seed in zip(clean01, seeds, strict=True):
            g = torch.Generator().manual_seed(int(seed))
            inp, tgt, m = make_pair(self.model_config, self.train_config, img[None], g)
            inputs.append(inp)
            targets.append(tgt)
            if m is not None:
                masks.append(m)
        return torch.cat(inputs), torch.cat(targets), torch.cat(masks) if masks else None

    @torch.no_grad()
    def _build_pool(self, dataset: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``train.example_pool`` examples: patches in a seeded order (each patch once before
        any twice), a seeded degradation each, and the model's prepared input (the fill). With
        several processes each prepares a share of the chunks and all get the whole pool."""
        from pixelforge.tasks.evaluate import map_shared

        n = self.train_config.example_pool
        g = torch.Generator().manual_seed(self.train_config.seed)
        rounds = -(-n // len(dataset))
        order = torch.cat([torch.randperm(len(dataset), generator=g) for _ in range(rounds)])[:n]
        seeds = torch.randint(2**31 - 1, (n,), generator=g).tolist()
        chunk = 4  # fixed: a fill depends on the examples filled with it

        def prepare(start: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
            clean = dataset.get_batch(order[start : start + chunk])["image"]
            inp, target, mask = self._pairs(clean, seeds[start : start + chunk])
            return self.model.prepare(inp, mask), target, mask

        parts = map_shared(prepare, range(0, n, chunk), progress=f"preparing {n} examples")
        masks = [m for _, _, m in parts if m is not None]
        return (
            torch.cat([p for p, _, _ in parts]),
            torch.cat([t for _, t, _ in parts]),
            torch.cat(masks) if masks else None,
        )

    def train_step(
        self, batch: dict[str, torch.Tensor], ctx: StepContext
    ) -> dict[str, torch.Tensor]:
        cfg: RestoreTrainConfig = self.train_config
        if self.pool is None:  # fresh examples, prepared (filled) in the forward pass
            inp, target, mask = self._pairs(batch["image"], ctx.randint(2**31 - 1).tolist())
            forward = self.model.translate
        else:  # examples from the pool, prepared once
            pick = ctx.randint(len(self.pool[0])).cpu()
            prepared, truth, masks = self.pool
            inp, target, mask = prepared[pick], truth[pick], None if masks is None else masks[pick]
            forward = self.model.translate_prepared
        inp, target = inp.to(ctx.device), target.to(ctx.device)
        mask = None if mask is None else mask.to(ctx.device)
        with ctx.autocast():
            pred = forward(inp, mask).float()
        area = None if mask is None else ctx.process_mean(mask.sum())
        pixel = pixel_term(pred, target, mask, cfg.pixel_loss, area)
        loss = cfg.pixel_weight * pixel
        out: dict[str, torch.Tensor] = {cfg.pixel_loss: pixel.detach()}
        if self.perceptual is not None:
            self.perceptual.to(pred.device)
            perc = self.perceptual(*self._as_rgb(inp, pred, target))
            loss = loss + cfg.perceptual_weight * perc
            out["perceptual"] = perc.detach()
        D = self.modules.get("D")
        if D is not None:
            D.requires_grad_(False)
            with ctx.autocast():
                adv = g_loss("non-saturating", D(pred).float())
            D.requires_grad_(True)
            loss = loss + cfg.adv_weight * adv
            out["adv_G"] = adv.detach()
        out["loss"] = loss.detach()
        ctx.optimize("net", loss)
        if D is not None:
            with ctx.autocast():
                ld = d_loss("non-saturating", D(target).float(), D(pred.detach()).float())
            ctx.optimize("D", ld)
            out["adv_D"] = ld.detach()
        return out

    def card(self) -> dict[str, str]:
        """The degradation the model learned to undo and its loss: two models of one task and
        scale trained on other inputs (bicubic or real-world sr, a narrower noise range) differ
        only in these."""
        cfg, task = self.train_config, self.model_config.task
        if task == "sr" and cfg.degradation == "real":
            lo, hi = cfg.noise_sigma
            (b0, b1), (q0, q1) = degrade.REAL_BLUR_SIGMA, degrade.REAL_JPEG_QUALITY
            inputs = (
                f"blur sigma {b0:g}-{b1:g}, x{self.model_config.factor} down-scaling by a random "
                f"filter, Gaussian noise sigma {lo:g}-{min(hi, degrade.REAL_NOISE_MAX):g}, JPEG "
                f"quality {q0}-{q1}"
            )
        elif task == "sr":
            inputs = f"bicubic x{self.model_config.factor} down-scaling"
        elif task == "denoise":
            p = cfg.noise_sigma_power
            power = f" (train.noise_sigma_power={p:g})" if p != 1 else ""
            inputs = f"Gaussian noise sigma {cfg.noise_sigma[0]:g}-{cfg.noise_sigma[1]:g}{power}"
        elif task == "jpeg":
            inputs = f"JPEG quality {cfg.jpeg_quality[0]}-{cfg.jpeg_quality[1]}"
        elif task == "colorize":
            inputs = "grey (the L of Lab)"
        else:
            kind = "border" if task == "uncrop" else cfg.mask_kind
            inputs = f"{kind} masks"
        loss = f"{cfg.pixel_weight:g} x {cfg.pixel_loss}"
        if self.perceptual is not None:
            loss += f" + {cfg.perceptual_weight:g} x VGG features"
            if str(self.perceptual.vgg.weights_sha256).startswith("random"):
                loss += " (a random-weight VGG: no ImageNet weights were found)"
        if cfg.adv_weight > 0:
            loss += f" + {cfg.adv_weight:g} x adversarial"
        return {"degradation": inputs, "loss": loss}

    def _as_rgb(
        self, inp: torch.Tensor, pred: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Output and target as RGB in [-1, 1] for the VGG: grey expanded to three channels;
        colorization's a/b put together with the input's L (differentiably)."""
        if self.model_config.task == "colorize":
            lightness = (inp + 1) * 50
            rgb = [lab_to_rgb(torch.cat([lightness, ab * 110], 1)) * 2 - 1 for ab in (pred, target)]
            return rgb[0], rgb[1]
        if pred.shape[1] == 1:
            return pred.expand(-1, 3, -1, -1), target.expand(-1, 3, -1, -1)
        return pred, target

    def export(self) -> RestoreModel:
        model = RestoreModel(self.model_config)
        source = self.modules.get("net_ema", self.modules["net"])
        model.net.load_state_dict(source.state_dict())
        return model

    def init_from(self, model: nn.Module) -> None:
        # any training crop size will do, and the hole's starting fill may change
        free = {k: getattr(self.model_config, k) for k in ("image_size", *INIT_FREE)}
        if not isinstance(model, RestoreModel) or (
            dataclasses.replace(model.config, **free) != self.model_config
        ):
            raise ConfigError(
                "--init needs a restore model with the same model config (task, scale, arch, "
                "width, blocks, depth, channels; the crop size and fill may differ)."
            )
        for name in ("net", "net_ema"):
            if name in self.modules:
                self.modules[name].load_state_dict(model.net.state_dict())

    @torch.no_grad()
    def sample_grid(self, n: int, seed: int) -> torch.Tensor:
        """``input | output | clean`` side by side for fixed training patches."""
        from pixelforge.tasks.image2image import apply_model

        if self.preview is None:
            raise ConfigError("no data attached to preview")
        model = self.export()
        g = torch.Generator().manual_seed(seed)
        tiles = []
        for clean in self.preview[:n]:
            c01 = ((clean[None].float() + 1) / 2).clamp(0, 1)
            inp, _, mask = make_pair(self.model_config, self.train_config, c01, g)
            if self.model_config.task == "colorize":
                shown = ((inp + 1) / 2).expand(-1, 3, -1, -1)[0]
                restored = apply_model(model, c01[0].mean(0, keepdim=True).expand(3, -1, -1))
            else:
                shown = (inp[0] + 1) / 2
                m = None if mask is None else mask[0]
                restored = apply_model(model, shown, mask=m)
                if m is not None:
                    shown = shown * (1 - m)
            size = c01.shape[-2:]
            shown = F.interpolate(shown[None], size=size, mode="nearest")[0]
            tiles.append(torch.cat([shown.expand(c01.shape[1], -1, -1), restored, c01[0]], -1))
        return torch.stack(tiles)
