"""StyleGAN2-style generator and discriminator (Karras et al. 2020), small enough for a CPU.

Generator: a mapping MLP turns z (pixel-normed; for a conditional model concatenated with a
pixel-normed class embedding, as in StyleGAN2-ADA) into W. Synthesis starts from a learned 4x4
constant; every 3x3 convolution is modulated by its own style (an affine map of its W) and
demodulated, gets per-pixel noise scaled by a learned strength, and every resolution adds its toRGB
output to the upsampled skip image. Per-layer W (``ws``: N x num_ws x w_dim) is what makes style
mixing possible. ``w_avg`` (per class for a conditional model) is an EMA of W kept while training
and is the centre of truncation: w = w_avg + psi * (w - w_avg).

Layer ``i`` of ``ws``: the 4x4 block uses 0 (conv) and 1 (toRGB); the block at resolution
4 * 2**k (k >= 1) uses 2k-1 and 2k (convs) and 2k+1 (toRGB), so 0-3 are the 4x4 and 8x8 layers.

Noise: sampling uses fixed per-layer noise images stored in the model (the same seed gives the same
pixels whatever the batch size); training passes noise drawn from the step's seeded generator.

Discriminator: residual (or plain) blocks down to 4x4, minibatch standard deviation over groups of
consecutive samples, and projection conditioning for labels (Miyato and Koyama 2018). Every layer
uses the equalised learning rate: weights stored N(0, 1) and scaled by 1/sqrt(fan_in) at run time.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from pixelforge.config import check_range
from pixelforge.errors import ConfigError
from pixelforge.models.base import ImageGenerator, check_image_fields


@dataclass(frozen=True)
class StyleGANConfig:
    image_size: int = 32  # output side in pixels: a power of two from 8 to 256
    channels: int | None = None  # image channels (1 gray, 3 RGB); null: taken from the dataset
    num_classes: int | None = (
        0  # 0: unconditional; K: conditional on K classes; null: from the dataset
    )
    z_dim: int = 128  # size of the latent vector z
    w_dim: int = 128  # size of the intermediate latent w (and of the class embedding)
    mapping_layers: int = 4  # fully connected layers of the mapping network
    mapping_lr_mult: float = 0.01  # learning-rate multiplier of the mapping network
    channel_base: int = 2048  # feature maps at resolution r: min(channel_base // r, channel_max)
    channel_max: int = 128  # upper bound on feature maps (StyleGAN2 at 1024 px: 32768, 512)
    upsample: Literal["bilinear", "nearest"] = "bilinear"  # how synthesis doubles the resolution
    noise: bool = True  # per-pixel noise inputs (fixed noise images when sampling)
    style_mixing_prob: float = 0.9  # training: share of samples whose ws switch to a second z
    w_avg_beta: float = 0.995  # decay of the EMA of W (the truncation centre) while training
    d_arch: Literal["resnet", "plain"] = "resnet"  # discriminator blocks: residual or plain
    mbstd_group: int = 4  # minibatch-std group size (largest divisor of the batch up to this)

    def __post_init__(self) -> None:
        check_image_fields(self.image_size, self.channels, self.num_classes)
        check_range("model.z_dim", self.z_dim, low=1)
        check_range("model.w_dim", self.w_dim, low=1)
        check_range("model.mapping_layers", self.mapping_layers, low=1, high=16)
        check_range("model.mapping_lr_mult", self.mapping_lr_mult, low=0, low_inclusive=False)
        check_range("model.channel_base", self.channel_base, low=1)
        check_range("model.channel_max", self.channel_max, low=1)
        check_range("model.style_mixing_prob", self.style_mixing_prob, low=0, high=1)
        check_range("model.w_avg_beta", self.w_avg_beta, low=0, high=1)
        check_range("model.mbstd_group", self.mbstd_group, low=1)

    @property
    def resolutions(self) -> list[int]:
        """4, 8, ..., image_size."""
        return [2**i for i in range(2, int(math.log2(self.image_size)) + 1)]

    @property
    def num_ws(self) -> int:
        """Per-layer styles in synthesis: one per convolution plus the last toRGB."""
        return 2 * len(self.resolutions)

    def width(self, res: int) -> int:
        return max(1, min(self.channel_base // res, self.channel_max))


def _resolved(config: StyleGANConfig) -> tuple[int, int]:
    if config.channels is None or config.num_classes is None:
        raise ConfigError(
            "model.channels and model.num_classes must be set before building a model."
        )
    return config.channels, config.num_classes


def _pixel_norm(x: torch.Tensor) -> torch.Tensor:
    return x * (x.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()


class EqLinear(nn.Module):
    """Fully connected layer with equalised learning rate (and an optional lrelu * sqrt 2)."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        *,
        act: bool = False,
        lr_mult: float = 1.0,
        bias_init: float = 0.0,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in) / lr_mult)
        self.bias = nn.Parameter(torch.full((c_out,), bias_init / lr_mult))
        self.w_gain, self.lr_mult, self.act = lr_mult / math.sqrt(c_in), lr_mult, act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight * self.w_gain, self.bias * self.lr_mult)
        return F.leaky_relu(x, 0.2) * math.sqrt(2) if self.act else x


class EqConv2d(nn.Module):
    """Convolution with equalised learning rate (same padding; optional lrelu * sqrt 2)."""

    def __init__(
        self, c_in: int, c_out: int, k: int, *, act: bool = True, bias: bool = True
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, k, k))
        self.bias = nn.Parameter(torch.zeros(c_out)) if bias else None
        self.gain, self.act = 1 / math.sqrt(c_in * k * k), act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(x, self.weight * self.gain, self.bias, padding=self.weight.shape[-1] // 2)
        return F.leaky_relu(x, 0.2) * math.sqrt(2) if self.act else x


class ModConv(nn.Module):
    """Modulated (and optionally demodulated) convolution with its own style affine and noise."""

    noise_const: torch.Tensor  # the fixed noise image used when no noise is passed

    def __init__(
        self, c_in: int, c_out: int, w_dim: int, res: int, *, k: int = 3, demod: bool = True,
        noise: bool = True, up: str | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        self.affine = EqLinear(w_dim, c_in, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(c_out, c_in, k, k))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.gain, self.demod, self.up = 1 / math.sqrt(c_in * k * k), demod, up
        self.res, self.use_noise = res, noise
        if noise:
            self.noise_strength = nn.Parameter(torch.zeros(()))
            self.register_buffer("noise_const", torch.randn(1, 1, res, res))

    def forward(
        self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        styles = self.affine(w)  # N x c_in
        weight = self.weight * self.gain
        if self.up is not None:
            x = F.interpolate(x, scale_factor=2, mode=self.up)
        # Modulate the input instead of the weight (the "non-fused" path of StyleGAN2): the
        # same result as a per-sample weight, with one ordinary convolution for the batch.
        x = F.conv2d(x * styles[:, :, None, None], weight, padding=weight.shape[-1] // 2)
        if self.demod:  # divide by the norm each output channel's modulated weight would have
            dcoef = (styles.square() @ weight.square().sum(dim=(2, 3)).T + 1e-8).rsqrt()
            x = x * dcoef[:, :, None, None]
        if self.use_noise:
            n = self.noise_const if noise is None else noise
            x = x + n * self.noise_strength
        x = x + self.bias[None, :, None, None]
        return F.leaky_relu(x, 0.2) * math.sqrt(2) if self.demod else x


class MappingNetwork(nn.Module):
    def __init__(self, config: StyleGANConfig, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.embed = EqLinear(num_classes, config.w_dim) if num_classes else None
        c_in = config.z_dim + (config.w_dim if num_classes else 0)
        dims = [c_in] + [config.w_dim] * config.mapping_layers
        self.layers = nn.Sequential(
            *(
                EqLinear(a, b, act=True, lr_mult=config.mapping_lr_mult)
                for a, b in itertools.pairwise(dims)
            )
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        x = _pixel_norm(z)
        if self.embed is not None:
            onehot = F.one_hot(_checked(labels, self.num_classes), self.num_classes)
            x = torch.cat([x, _pixel_norm(self.embed(onehot.to(z.dtype)))], dim=1)
        out: torch.Tensor = self.layers(x)
        return out


def _checked(labels: torch.Tensor | None, k: int) -> torch.Tensor:
    if labels is None:
        raise ValueError("a conditional StyleGAN needs labels")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= k):
        raise ConfigError(f"class labels must be between 0 and {k - 1}, got {labels.tolist()}.")
    return labels.long()


class Generator(nn.Module):
    """``forward(z, labels)``: images in [-1, 1]; ``mapping`` -> W; ``synthesis(ws)`` -> images."""

    w_avg: torch.Tensor  # EMA of W: K x w_dim (one row per class), 1 x w_dim if unconditional

    def __init__(self, config: StyleGANConfig) -> None:
        super().__init__()
        channels, self.num_classes = _resolved(config)
        self.config, self.num_ws, self.w_dim = config, config.num_ws, config.w_dim
        self.map = MappingNetwork(config, self.num_classes)
        self.register_buffer("w_avg", torch.zeros(max(self.num_classes, 1), config.w_dim))
        res = config.resolutions
        self.const = nn.Parameter(torch.randn(config.width(4), 4, 4))
        self.convs = nn.ModuleList()  # in ws order: 4x4 conv, then two per higher resolution
        self.torgbs = nn.ModuleList()
        c_prev = config.width(4)
        for r in res:
            c = config.width(r)
            if r > 4:
                self.convs.append(
                    ModConv(c_prev, c, config.w_dim, r, noise=config.noise, up=config.upsample)
                )
            self.convs.append(
                ModConv(c if r > 4 else c_prev, c, config.w_dim, r, noise=config.noise)
            )
            self.torgbs.append(ModConv(c, channels, config.w_dim, r, k=1, demod=False, noise=False))
            c_prev = c

    @property
    def noise_shapes(self) -> list[int]:
        """Side of each convolution's noise image, in ws order (for drawing training noise)."""
        return [int(getattr(m, "res")) for m in self.convs]  # noqa: B009

    def _avg(self, labels: torch.Tensor | None, n: int) -> torch.Tensor:
        if self.num_classes:
            return self.w_avg[_checked(labels, self.num_classes)]
        return self.w_avg[:1].expand(n, -1)

    def mapping(
        self,
        z: torch.Tensor,
        labels: torch.Tensor | None = None,
        *,
        truncation: float = 1.0,
        update_w_avg: bool = False,
    ) -> torch.Tensor:
        """W (N x w_dim) of latents ``z``; ``truncation`` psi pulls it toward ``w_avg``."""
        w = self.map(z, labels)
        if update_w_avg:
            self._update_w_avg(w.detach(), labels)
        if truncation != 1.0:
            avg = self._avg(labels, len(w))
            w = avg + truncation * (w - avg)
        return w

    @torch.no_grad()
    def _update_w_avg(self, w: torch.Tensor, labels: torch.Tensor | None) -> None:
        keep = self.config.w_avg_beta
        if not self.num_classes:
            self.w_avg.copy_(torch.lerp(w.float().mean(0, keepdim=True), self.w_avg, keep))
            return
        idx = _checked(labels, self.num_classes)
        count = torch.bincount(idx, minlength=self.num_classes).to(w.dtype)
        sums = torch.zeros_like(self.w_avg).index_add_(0, idx, w.float())
        mean = sums / count.clamp(min=1)[:, None]
        seen = (count > 0)[:, None]
        self.w_avg.copy_(torch.where(seen, torch.lerp(mean, self.w_avg, keep), self.w_avg))

    def synthesis(self, ws: torch.Tensor, noise: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Images in [-1, 1] from per-layer W (N x num_ws x w_dim, or N x w_dim for all layers)."""
        if ws.dim() == 2:
            ws = ws[:, None].expand(-1, self.num_ws, -1)
        if ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must be N x {self.num_ws} x {self.w_dim}, got {tuple(ws.shape)}")
        x = self.const[None].expand(len(ws), -1, -1, -1)
        img = None
        for i, torgb in enumerate(self.torgbs):
            layers = [0] if i == 0 else [2 * i - 1, 2 * i]
            for j in layers:
                x = self.convs[j](x, ws[:, j], None if noise is None else noise[j])
            y = torgb(x, ws[:, layers[-1] + 1])
            up = self.config.upsample
            img = y if img is None else F.interpolate(img, scale_factor=2, mode=up) + y
        assert img is not None
        # No tanh, as in StyleGAN2: training sees the raw output, evaluation clamps to [-1, 1].
        return img if self.training else img.clamp(-1, 1)

    def forward(
        self, z: torch.Tensor, labels: torch.Tensor | None = None, *, truncation: float = 1.0
    ) -> torch.Tensor:
        w = self.mapping(z, labels, truncation=truncation, update_w_avg=self.training)
        return self.synthesis(w)


def _mbstd(x: torch.Tensor, group: int) -> torch.Tensor:
    """Append the mean std over groups of consecutive samples as one more feature map."""
    n, c, h, w = x.shape
    g = max(d for d in range(1, min(group, n) + 1) if n % d == 0)
    y = x.reshape(n // g, g, c, h, w).float()
    y = (y.var(dim=1, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # n/g
    y = y.to(x.dtype).repeat_interleave(g)[:, None, None, None].expand(n, 1, h, w)
    return torch.cat([x, y], dim=1)


class DBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, resnet: bool) -> None:
        super().__init__()
        self.conv0, self.conv1 = EqConv2d(c_in, c_in, 3), EqConv2d(c_in, c_out, 3)
        self.skip = EqConv2d(c_in, c_out, 1, act=False, bias=False) if resnet else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.avg_pool2d(self.conv1(self.conv0(x)), 2)
        if self.skip is None:
            return y
        return (y + self.skip(F.avg_pool2d(x, 2))) / math.sqrt(2)


class Discriminator(nn.Module):
    def __init__(self, config: StyleGANConfig) -> None:
        super().__init__()
        channels, self.num_classes = _resolved(config)
        self.group = config.mbstd_group
        res = config.resolutions[::-1]  # image_size ... 4
        self.from_rgb = EqConv2d(channels, config.width(res[0]), 1)
        self.blocks = nn.Sequential(
            *(
                DBlock(config.width(r), config.width(r // 2), config.d_arch == "resnet")
                for r in res[:-1]
            )
        )
        c4 = config.width(4)
        self.conv = EqConv2d(c4 + 1, c4, 3)
        self.fc = EqLinear(c4 * 16, c4, act=True)
        self.out = EqLinear(c4, 1)
        self.embed = EqLinear(self.num_classes, c4) if self.num_classes else None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """One logit per image."""
        h = self.blocks(self.from_rgb(x))
        h = self.fc(self.conv(_mbstd(h, self.group)).flatten(1))
        out = self.out(h).squeeze(1)
        if self.embed is not None:  # projection: <embed(y), h> / sqrt(dim)
            onehot = F.one_hot(_checked(labels, self.num_classes), self.num_classes).to(h.dtype)
            out = out + (self.embed(onehot) * h).sum(dim=1) / math.sqrt(h.shape[1])
        return out


class StyleGAN(ImageGenerator):
    """A StyleGAN2-style GAN: ``generator`` (EMA weights in a saved model) and ``discriminator``."""

    family = "stylegan"
    lab_space = "w"

    def __init__(self, config: StyleGANConfig) -> None:
        super().__init__()
        self.config: StyleGANConfig = config
        self.generator = Generator(config)
        self.discriminator = Discriminator(config)

    def latent_shape(self) -> tuple[int, ...]:
        return (self.config.z_dim,)

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.generator(z, labels)

    def to_lab(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.generator.mapping(z, labels)

    def from_lab(self, w: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.generator.synthesis(w)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        seed: int = 0,
        class_label: int | None = None,
        labels: torch.Tensor | None = None,
        batch_size: int = 256,
        truncation: float = 1.0,
    ) -> torch.Tensor:
        """As :meth:`ImageGenerator.sample`; ``truncation`` psi in [0, 1] (1: none).

        Computed in fixed chunks of :data:`SAMPLE_CHUNK` (CPU kernels round differently for
        very small batches), so ``batch_size`` never changes a pixel.
        """
        check_truncation(truncation)
        if n < 1:
            raise ConfigError(f"--n must be at least 1, got {n}.")
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        z = self.sample_latents(n, seed).to(device)
        if labels is None:
            labels = self.default_labels(n, class_label)
        lb = None if labels is None else labels.to(device)
        out = fixed_chunks(lambda zc, lc: self.generator(zc, lc, truncation=truncation), z, lb)
        self.train(was_training)
        return ((out.float().cpu() + 1) / 2).clamp(0, 1)


SAMPLE_CHUNK = 16


def fixed_chunks(
    fn: Callable[..., torch.Tensor], *tensors: torch.Tensor | None, chunk: int = SAMPLE_CHUNK
) -> torch.Tensor:
    """``fn`` over the rows of ``tensors`` (None passes through) in chunks of exactly ``chunk``
    rows (the last one padded by repeating its last row), so each row's result never depends on
    how many rows there are."""
    first = next(t for t in tensors if t is not None)
    out = []
    for i in range(0, len(first), chunk):
        k = min(chunk, len(first) - i)
        parts = [
            None
            if t is None
            else torch.cat([t[i : i + k], t[i + k - 1 : i + k].expand(chunk - k, *t.shape[1:])])
            for t in tensors
        ]
        out.append(fn(*parts)[:k])
    return torch.cat(out)


def check_truncation(psi: float) -> None:
    if not 0.0 <= psi <= 1.0:
        raise ConfigError(f"--truncation must be between 0 and 1 (1: none), got {psi}.")
