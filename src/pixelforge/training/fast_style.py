"""The fast-style train step (Johnson, Alahi and Fei-Fei 2016), as pytorch/examples trains it.

Each step stylizes a batch of training photos ``x`` (``image_size`` crops from the shared data
pipeline: by default each photo resized and centre-cropped, as pytorch/examples does; or
``data.patches=N`` random crops per photo) with the transformer network and minimises

    content_weight * mse(VGG16_relu2_2(y), VGG16_relu2_2(x))
    + style_weight * sum over style_layers of mse(gram(VGG16_l(y)), gram(VGG16_l(style)))
    + tv_weight * (mean |y[i+1, j] - y[i, j]| + mean |y[i, j+1] - y[i, j]|)
    + range_weight * mean squared excess of y / 255 outside [0, 1]

with Adam. Normalisation, as in pytorch/examples: the network works in 0..255 (see
:mod:`pixelforge.models.fast_style`), the VGG sees ``y / 255`` with the ImageNet mean and
standard deviation, Gram matrices are divided by ``C H W``
(:func:`pixelforge.losses.perceptual.gram_matrix`) and the squared errors are means. Their
defaults (content 1e5, style 1e10) therefore carry over unchanged; the total-variation term, on
the 0..255 output, is off by default as in pytorch/examples. One VGG pass over ``y`` gives both
the content and the style activations.

The style image is read once, through the guarded reader, when the task is built; its Gram
matrices and SHA-256 are buffers of the module ``style``, so checkpoints hold them and a resumed
run trains towards the same style even if the file has since moved or changed (a changed file
given again is refused). The exported model's config names the file and its SHA-256.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from pixelforge.config import check_range
from pixelforge.errors import ConfigError, PixelforgeError
from pixelforge.features.vgg import VGG, vgg
from pixelforge.io.images import read_image
from pixelforge.losses.perceptual import gram_matrix
from pixelforge.models.fast_style import FastStyle, FastStyleConfig
from pixelforge.style.builtin import is_builtin, render_style
from pixelforge.style.gatys import range_penalty
from pixelforge.training.config import TINY_TRAIN, TrainConfig
from pixelforge.training.task import StepContext, TrainTask, frozen_copy

BUILTIN_SIDE = 256  # built-in styles (train.style=builtin:NAME) are drawn at this side
_VGG16_CHANNELS = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}  # channels of reluB_N by block B


def _bundled_photo(name: str) -> str:
    """Path of a photo bundled with scikit-image (a dependency), found without importing it."""
    spec = importlib.util.find_spec("skimage")
    roots = list(spec.submodule_search_locations or []) if spec else []
    return str(Path(roots[0]) / "data" / name) if roots else name


TINY: dict[str, Any] = {
    "model": {"image_size": 32, "width": 4, "n_blocks": 1},
    "train": {**TINY_TRAIN, "style": _bundled_photo("coffee.png"), "style_size": 32,
              "tv_weight": 1.0},
}  # fmt: skip  # the family's seconds-long test configuration (Family.tiny)


@dataclass(frozen=True)
class FastStyleTrainConfig(TrainConfig):
    steps: int = 40_000  # optimizer steps (pytorch/examples: 2 epochs of COCO at batch 4)
    batch_size: int = 4  # global batch size (pytorch/examples: 4)
    lr: float = 1e-3  # Adam learning rate (pytorch/examples: 1e-3)
    betas: tuple[float, float] = (0.9, 0.999)  # Adam betas (PyTorch's defaults)
    ema_decay: float = 0.0  # EMA of the network (0: none, as pytorch/examples)
    sample_count: int = 8  # training photos stylized in each sample grid
    style: str = ""  # the style image (PNG, JPEG, WebP, BMP or TIFF) or builtin:NAME; required
    style_size: int | Literal["image_size"] | None = (
        "image_size"  # side the style image is resized to (square); null keeps its own size
    )
    content_weight: float = 1e5  # weight of the relu2_2 feature MSE (pytorch/examples: 1e5)
    style_weight: float = 1e10  # weight of the summed Gram MSEs (pytorch/examples: 1e10)
    tv_weight: float = 0.0  # weight of total variation on the 0..255 output (0: off)
    # weight of the mean squared excess of output pixels outside [0, 1] (0: off, as
    # pytorch/examples); without it the network can match the VGG losses with out-of-range values
    # that clipping turns into flat false colours
    range_weight: float = 1e4
    # "absolute": the losses of pytorch/examples (with its weights 1e5 / 1e10); "relative": each
    # term divided by its target's mean square, layers averaged (as pixelforge's Gatys does)
    losses: Literal["absolute", "relative"] = "absolute"
    # weight of matching the style image's pixel colour statistics (the Gram matrix of its RGB
    # values; relative like train.losses=relative); 0: off
    color_weight: float = 0.0
    content_layer: str = "relu2_2"  # VGG16 layer of the content loss
    style_layers: tuple[str, ...] = (
        "relu1_2",
        "relu2_2",
        "relu3_3",
        "relu4_3",
    )  # VGG16 layers of the style loss
    vgg_weights: str | None = (
        None  # torchvision vgg16-397923af.pth (or .safetensors); null: searched
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.style_size, int):
            check_range("train.style_size", self.style_size, low=16, high=4096)
        for name in ("content_weight", "style_weight", "tv_weight", "range_weight", "color_weight"):
            check_range(f"train.{name}", getattr(self, name), low=0)
        if not self.style_layers:
            raise ConfigError("train.style_layers must name at least one VGG16 layer.")


class StyleTarget(nn.Module):
    """What the run trains towards, kept in checkpoints: the style image's Gram matrices at each
    style layer (``gram_<layer>``, 1 x C x C), its file's SHA-256 and whether they are set."""

    sha256: torch.Tensor
    ready: torch.Tensor

    def __init__(self, layers: tuple[str, ...]) -> None:
        super().__init__()
        self.layers = layers
        for name in layers:
            c = _VGG16_CHANNELS[int(name[4])]
            self.register_buffer(f"gram_{name}", torch.zeros(1, c, c))
        self.register_buffer("gram_rgb", torch.zeros(1, 3, 3))  # of the pixels in [0, 1]
        self.register_buffer("sha256", torch.zeros(32, dtype=torch.uint8))
        self.register_buffer("ready", torch.zeros((), dtype=torch.int64))

    def gram(self, layer: str) -> torch.Tensor:
        out: torch.Tensor = getattr(self, f"gram_{layer}")
        return out

    @property
    def digest(self) -> str | None:
        return bytes(self.sha256.cpu().tolist()).hex() if int(self.ready) else None


def read_style(path: str, size: int | None) -> tuple[torch.Tensor, str]:
    """The style image as 1 x 3 x H x W in [0, 1] (resized to ``size`` x ``size`` with Lanczos
    when ``size`` is given, as pytorch/examples does) and the SHA-256 of the file's bytes."""
    if is_builtin(path):  # drawn at 256 x 256, then treated like a file of those pixels
        pixels = render_style(path, BUILTIN_SIDE)
        return _style_tensor(pixels, size), hashlib.sha256(pixels.tobytes()).hexdigest()
    p = Path(path).expanduser()
    fix = (
        "Give a readable PNG, JPEG, WebP, BMP or TIFF image, or a built-in style: --set "
        "train.style=PATH or builtin:NAME (see `pixelforge stylize --list-styles`)."
    )
    try:
        data = p.read_bytes()
    except OSError as exc:
        reason = "no such file" if isinstance(exc, FileNotFoundError) else exc.strerror
        raise ConfigError(
            f"train.style: cannot read the style image {p} ({reason}). {fix}"
        ) from None
    try:
        pixels = read_image(p, mode="RGB")
    except PixelforgeError as exc:
        raise ConfigError(f"train.style: {exc} {fix}") from None
    return _style_tensor(pixels, size), hashlib.sha256(data).hexdigest()


def _style_tensor(pixels: np.ndarray, size: int | None) -> torch.Tensor:
    if size is not None and pixels.shape[:2] != (size, size):
        im = Image.fromarray(pixels).resize((size, size), Image.Resampling.LANCZOS)
        pixels = np.asarray(im)
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1)[None].float() / 255


def total_variation(y: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of vertical plus horizontal neighbours."""
    return (y[..., 1:, :] - y[..., :-1, :]).abs().mean() + (y[..., 1:] - y[..., :-1]).abs().mean()


class FastStyleTask(TrainTask):
    """Trains the transformer network (module ``net``; EMA copy ``net_ema`` when
    ``ema_decay > 0``) towards the style held by module ``style``."""

    def __init__(self, model_config: FastStyleConfig, train_config: FastStyleTrainConfig) -> None:
        super().__init__(model_config, train_config)
        cfg = train_config
        if not cfg.style:
            raise ConfigError(
                "fast-style needs a style image: add --set train.style=STYLE.jpg (a PNG, JPEG, "
                "WebP, BMP or TIFF file)."
            )
        self.model = FastStyle(model_config)
        self.vgg: VGG = vgg("vgg16", cfg.vgg_weights)
        unknown = [
            n for n in (cfg.content_layer, *cfg.style_layers) if n not in self.vgg.layer_names
        ]
        if unknown:
            relus = [n for n in self.vgg.layer_names if n.startswith("relu")]
            raise ConfigError(
                f"train.content_layer/style_layers: unknown VGG16 layer(s) {', '.join(unknown)}; "
                f"use ReLU layers: {', '.join(relus)}."
            )
        self.layers = list(dict.fromkeys([cfg.content_layer, *cfg.style_layers]))
        self.modules = {"net": self.model, "style": StyleTarget(cfg.style_layers)}
        if cfg.ema_decay > 0:
            self.modules["net_ema"] = frozen_copy(self.model)
            self.ema = {"net_ema": "net"}
        self.optimizers = {
            "net": torch.optim.Adam(
                self.model.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay
            )
        }
        # Read once, now; an unreadable file is an error in prepare() unless a resumed
        # checkpoint already holds the style (the file may have moved since).
        size = model_config.image_size if cfg.style_size == "image_size" else cfg.style_size
        assert size is None or isinstance(size, int)
        self.style_image: torch.Tensor | None = None
        self.style_sha256: str | None = None
        self.style_error: ConfigError | None = None
        try:
            self.style_image, self.style_sha256 = read_style(cfg.style, size)
        except ConfigError as exc:
            self.style_error = exc
        self.preview: torch.Tensor | None = None

    @property
    def target(self) -> StyleTarget:
        style = self.modules["style"]
        assert isinstance(style, StyleTarget)
        return style

    def attach_data(self, dataset: Any) -> None:
        """Keep a few fixed training photos for the periodic sample grid."""
        n = min(self.train_config.sample_count, len(dataset))
        idx = torch.linspace(0, len(dataset) - 1, n).long()
        self.preview = dataset.get_batch(idx)["image"]

    @torch.no_grad()
    def prepare(self, device: torch.device) -> None:
        """Fill the style buffers from the image read at start, or check a resumed run's: an
        unreadable style, or another image than a resumed run's, is refused before the run
        folder is written."""
        target = self.target
        if int(target.ready):
            if self.style_sha256 is not None and self.style_sha256 != target.digest:
                raise ConfigError(
                    f"train.style={self.train_config.style} is not the image this run was trained "
                    f"on (SHA-256 {self.style_sha256[:16]}..., the run's style has "
                    f"{(target.digest or '')[:16]}...). Give the original image again, or start a "
                    "new run (another --out) with --init to train towards a new style."
                )
            if self.style_image is not None:  # the same file: the same targets?
                self._check_targets(device)
            return
        if self.style_error is not None:
            raise self.style_error
        assert self.style_image is not None and self.style_sha256 is not None
        for name, gram in self._grams(device).items():
            target.gram(name).copy_(gram)
        target.sha256.copy_(torch.tensor(list(bytes.fromhex(self.style_sha256)), dtype=torch.uint8))
        target.ready.fill_(1)

    @torch.no_grad()
    def _grams(self, device: torch.device) -> dict[str, torch.Tensor]:
        """The style image's Gram matrices at each style layer, and of its pixels ("rgb")."""
        assert self.style_image is not None
        self.vgg.to(device)
        image = self.style_image.to(device)
        feats = self.vgg.activations(image, self.train_config.style_layers)
        grams = {name: gram_matrix(f.float()) for name, f in feats.items()}
        grams["rgb"] = gram_matrix(image.float())
        return grams

    def _check_targets(self, device: torch.device) -> None:
        """Refuse a resume whose train.style_size or VGG weights would give the run's style
        image other targets than the ones it trains towards (kept, they would be ignored)."""
        for name, gram in self._grams(device).items():
            kept = self.target.gram(name)
            # 1e-3: another device's rounding passes; one pixel more of style_size does not
            if float((gram - kept).abs().max()) > 1e-3 * float(kept.abs().max()):
                raise ConfigError(
                    f"train.style_size={self.train_config.style_size} or the VGG16 weights are "
                    "not those this run's style targets were computed with (the style image's "
                    f"Gram matrices at {name} differ). Give the run's train.style_size (in its "
                    "run.json) and VGG weights again, or start a new run (another --out) with "
                    "--init to train towards the style as it is now."
                )

    def train_step(
        self, batch: dict[str, torch.Tensor], ctx: StepContext
    ) -> dict[str, torch.Tensor]:
        self.vgg.to(ctx.device)
        x255 = (batch["image"].float() + 1) * 127.5
        if x255.shape[1] == 1:
            x255 = x255.expand(-1, 3, -1, -1)
        with ctx.autocast():
            terms = self.losses(x255)
        ctx.optimize("net", terms["loss"])
        return {k: v.detach() for k, v in terms.items()}

    def losses(self, x255: torch.Tensor) -> dict[str, torch.Tensor]:
        """The objective's terms (and their weighted sum ``loss``) for photos ``x255`` (B x 3 x H
        x W in 0..255) stylized by the trained network; the style buffers must be ready."""
        cfg: FastStyleTrainConfig = self.train_config
        y255 = self.model.transform(x255)
        fy = self.vgg.activations(y255 / 255, self.layers)
        with torch.no_grad():
            fx = self.vgg.activations(x255 / 255, [cfg.content_layer])
        target_act = fx[cfg.content_layer].float()
        content = F.mse_loss(fy[cfg.content_layer].float(), target_act)
        if cfg.losses == "relative":
            content = content / target_act.pow(2).mean().clamp_min(1e-12)
        style = y255.new_zeros((), dtype=torch.float32)
        for name in cfg.style_layers:
            g, t = gram_matrix(fy[name].float()), self.target.gram(name)
            err = F.mse_loss(g, t.expand_as(g))
            if cfg.losses == "relative":
                err = err / t.pow(2).mean().clamp_min(1e-12) / len(cfg.style_layers)
            style = style + err
        loss = cfg.content_weight * content + cfg.style_weight * style
        out = {"content": content, "style": style}
        if cfg.color_weight > 0:  # the style's colour statistics, in pixel space
            g, t = gram_matrix((y255 / 255).float()), self.target.gram("rgb")
            color = F.mse_loss(g, t.expand_as(g)) / t.pow(2).mean().clamp_min(1e-12)
            loss = loss + cfg.color_weight * color
            out["color"] = color
        if cfg.range_weight > 0:
            excess = range_penalty((y255 / 255).float())
            loss = loss + cfg.range_weight * excess
            out["range"] = excess
        if cfg.tv_weight > 0:
            tv = total_variation(y255.float())
            loss = loss + cfg.tv_weight * tv
            out["tv"] = tv
        out["loss"] = loss
        return out

    def export(self) -> FastStyle:
        digest = self.target.digest or self.style_sha256
        config = dataclasses.replace(
            self.model_config,
            style_name=Path(self.train_config.style).name if digest else None,
            style_sha256=digest,
        )
        model = FastStyle(config)
        model.load_state_dict(self.modules.get("net_ema", self.model).state_dict())
        return model.eval()

    def init_from(self, model: nn.Module) -> None:
        c = self.model_config
        ok = isinstance(model, FastStyle) and (
            (model.config.width, model.config.n_blocks, model.config.output)
            == (c.width, c.n_blocks, c.output)
        )
        if not ok:
            raise ConfigError(
                f"--init needs a fast-style model with width {c.width}, {c.n_blocks} residual "
                f"blocks and output={c.output} (set model.width, model.n_blocks and "
                "model.output to match it; imported pytorch/examples models have "
                "output=linear)."
            )
        for name in ("net", "net_ema"):
            if name in self.modules:
                self.modules[name].load_state_dict(model.state_dict())

    @torch.no_grad()
    def sample_grid(self, n: int, seed: int) -> torch.Tensor:
        """``photo | stylized`` side by side for fixed training photos."""
        if self.preview is None:
            raise ConfigError("no data attached to preview")
        model = self.export().to(self.model.conv1.conv2d.weight.device)
        x = self.preview[:n].float().to(model.conv1.conv2d.weight.device)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        y = model.translate(x).clamp(-1, 1)
        return ((torch.cat([x, y], dim=-1) + 1) / 2).cpu()
