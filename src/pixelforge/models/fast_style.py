"""Fast neural style (Johnson, Alahi and Fei-Fei 2016): one feed-forward pass stylizes an image.

The transformer network of pytorch/examples ``fast_neural_style`` (``TransformerNet``), with the
same layout and parameter names, so its ``saved_models/*.pth`` state dicts load directly (after
dropping the ``running_mean``/``running_var`` keys old instance-norm layers saved, see
:func:`from_pytorch_examples`):

- ``conv1`` 9x9 stride 1 (3 -> width), ``conv2`` 3x3 stride 2 (-> 2 width), ``conv3`` 3x3
  stride 2 (-> 4 width), each reflection-padded and followed by ``inN`` (instance norm with
  affine parameters, Ulyanov et al. 2016) and ReLU;
- ``res1`` ... ``resN``: residual blocks ``x + IN(conv(ReLU(IN(conv(x)))))`` at 1/4 resolution;
- ``deconv1``, ``deconv2``: "resize-convolutions" (nearest x2 up-sampling, then a reflection-
  padded 3x3 convolution; Odena et al. 2016, no checkerboard artefacts), each with IN + ReLU;
- ``deconv3``: a 9x9 convolution to 3 channels, with no output non-linearity.

Output layer (``model.output``):

- ``"tanh"`` (the default for new training): ``127.5 + 127.5 * tanh(deconv3(...))``, the bounded
  output of Johnson et al.'s original network (pytorch/examples dropped it). Every pixel is in
  range, and the picture's colours come from the network alone: instance norm hides the input's
  global colour cast and contrast from every later layer, so a network that adds its output to
  the photo (``"residual"``) keeps each photo's own cast and cannot paint many photos in one
  palette. Measured on 40 photos, 150 steps (docs/benchmarks.md): relative style loss 0.72 ->
  0.08 with ``"tanh"``, 0.72 -> 0.64 with ``"residual"``.
- ``"residual"``: ``x + deconv3(...)``; a new network starts from the photo (content loss 0).
  It learns one or two photos' style, not a collection's.
- ``"linear"``: ``deconv3(...)`` unbounded, pytorch/examples' ``TransformerNet``; imported models
  use it. It must grow its output from about 0 to the 0..255 range through the weights of its last
  layers, which Adam at lr 1e-3 does slowly.

Configs written before ``output`` existed say ``residual: true`` (-> ``"residual"``) or ``false``
(-> ``"linear"``); they still load.

Value range. The network works in pytorch/examples' convention: RGB in 0..255 in, RGB in about
0..255 out (unbounded; clamped when written). :meth:`FastStyle.translate`, the pixelforge
interface, takes and returns [-1, 1] and converts on both sides (``x255 = (x + 1) * 127.5``,
``y = y255 / 127.5 - 1``), so an imported model gives the original's output up to float error
and a model trained here uses the same convention (and the same loss weights). Sides must be
multiples of 4 (``size_multiple``); the image-to-image task pads any other size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from pixelforge.config import check_range
from pixelforge.errors import ConfigError, ModelLoadError
from pixelforge.models.image2image import ImageToImage

# Keys of the instance norms of PyTorch < 0.4, which saved running statistics pytorch/examples
# never used (it deletes them with this same pattern before loading).
LEGACY_NORM_KEY = re.compile(r"in\d+\.(running_(mean|var)|num_batches_tracked)$")


@dataclass(frozen=True)
class FastStyleConfig:
    image_size: int = 256  # side of the square training crops; stylization takes any size
    channels: int = 3  # RGB in and out (fixed: grey training images are loaded as RGB)
    width: int = 32  # feature maps at full resolution (2x and 4x after the two down-samplings)
    n_blocks: int = 5  # residual blocks at 1/4 resolution
    # output layer: "tanh" (Johnson et al. 2016: 127.5 + 127.5 tanh), "residual" (input + net)
    # or "linear" (pytorch/examples' plain output; imported models)
    output: Literal["tanh", "residual", "linear"] = "tanh"
    residual: bool | None = None  # configs before `output`: true = "residual", false = "linear"
    style_name: str | None = None  # file name of the style image (set by training, not by hand)
    style_sha256: str | None = None  # SHA-256 of the style image file (set by training)

    def __post_init__(self) -> None:
        if self.residual is not None:  # an older config: translate, keep one owner (output)
            object.__setattr__(self, "output", "residual" if self.residual else "linear")
            object.__setattr__(self, "residual", None)
        if self.channels != 3:
            raise ConfigError(
                f"model.channels must be 3 for fast-style (RGB in and out), got {self.channels}."
            )
        check_range("model.width", self.width, low=1)
        check_range("model.n_blocks", self.n_blocks, low=0, high=64)
        if self.image_size < 8 or self.image_size % 4:
            raise ConfigError(
                f"model.image_size must be a multiple of 4 and at least 8, got {self.image_size}."
            )


class ConvLayer(nn.Module):
    """Reflection padding of ``kernel // 2``, then a convolution (pytorch/examples' ConvLayer)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(kernel // 2)
        self.conv2d = nn.Conv2d(cin, cout, kernel, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.conv2d(self.reflection_pad(x))
        return out


class UpsampleConvLayer(ConvLayer):
    """Nearest-neighbour x2 up-sampling, then a :class:`ConvLayer` (a resize-convolution)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.interpolate(x, mode="nearest", scale_factor=2))


class ResidualBlock(nn.Module):
    """``x + IN(conv(ReLU(IN(conv(x)))))``, 3x3 reflection-padded convolutions."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv1 = ConvLayer(width, width, 3, 1)
        self.in1 = nn.InstanceNorm2d(width, affine=True)
        self.conv2 = ConvLayer(width, width, 3, 1)
        self.in2 = nn.InstanceNorm2d(width, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.in1(self.conv1(x)))
        out: torch.Tensor = x + self.in2(self.conv2(h))
        return out


class FastStyle(ImageToImage):
    """The transformer network; :meth:`transform` works in 0..255, :meth:`translate` in [-1, 1]."""

    family = "fast-style"
    size_multiple = 4
    min_side = 5  # padded to 8: conv1 reflects 4 pixels, which a 4-pixel side does not have

    def __init__(self, config: FastStyleConfig) -> None:
        super().__init__()
        self.config: FastStyleConfig = config
        w, n = config.width, config.n_blocks
        self.conv1 = ConvLayer(3, w, 9, 1)
        self.in1 = nn.InstanceNorm2d(w, affine=True)
        self.conv2 = ConvLayer(w, 2 * w, 3, 2)
        self.in2 = nn.InstanceNorm2d(2 * w, affine=True)
        self.conv3 = ConvLayer(2 * w, 4 * w, 3, 2)
        self.in3 = nn.InstanceNorm2d(4 * w, affine=True)
        self.n_blocks = n
        for i in range(n):
            self.add_module(f"res{i + 1}", ResidualBlock(4 * w))
        self.deconv1 = UpsampleConvLayer(4 * w, 2 * w, 3, 1)
        self.in4 = nn.InstanceNorm2d(2 * w, affine=True)
        self.deconv2 = UpsampleConvLayer(2 * w, w, 3, 1)
        self.in5 = nn.InstanceNorm2d(w, affine=True)
        self.deconv3 = ConvLayer(w, 3, 9, 1)
        # Receptive radius in input pixels: 4 (conv1) + 1 + 2 (strided convs) + 8 per residual
        # block (two 3x3 convs at stride 4) + 2 + 1 (up-sampling convs) + 4 (deconv3).
        radius = 14 + 8 * n
        self.tile_overlap = 4 * -(-radius // 4)  # rounded up to the size multiple

    def transform(self, x255: torch.Tensor) -> torch.Tensor:
        """pytorch/examples' ``TransformerNet.forward`` with the configured output layer: RGB
        0..255 -> RGB (about) 0..255."""
        y = torch.relu(self.in1(self.conv1(x255)))
        y = torch.relu(self.in2(self.conv2(y)))
        y = torch.relu(self.in3(self.conv3(y)))
        for i in range(self.n_blocks):
            y = getattr(self, f"res{i + 1}")(y)
        y = torch.relu(self.in4(self.deconv1(y)))
        y = torch.relu(self.in5(self.deconv2(y)))
        out: torch.Tensor = self.deconv3(y)
        if self.config.output == "tanh":
            return 127.5 + 127.5 * torch.tanh(out)
        return x255 + out if self.config.output == "residual" else out

    def translate(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """[-1, 1] -> [-1, 1] (unclamped): the 0..255 network with the range converted."""
        return self.transform((x + 1) * 127.5) / 127.5 - 1


def from_pytorch_examples(
    state: dict[str, torch.Tensor], *, source: str = "state dict"
) -> FastStyle:
    """A :class:`FastStyle` holding a pytorch/examples ``TransformerNet`` state dict.

    The keys are the same; the legacy ``inN.running_mean`` / ``inN.running_var`` entries of old
    instance norms are dropped (as pytorch/examples' ``stylize`` does). ``width`` and
    ``n_blocks`` are read from the tensors; every remaining key must fit exactly.
    """
    state = {k.removeprefix("module."): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not LEGACY_NORM_KEY.search(k)}
    first = state.get("conv1.conv2d.weight")
    if first is None or first.ndim != 4 or tuple(first.shape[1:]) != (3, 9, 9):
        raise ModelLoadError(
            f"{source} is not a fast_neural_style TransformerNet: it has no conv1.conv2d.weight "
            "of shape width x 3 x 9 x 9."
        )
    blocks = {int(m.group(1)) for k in state if (m := re.match(r"res(\d+)\.", k))}
    config = FastStyleConfig(
        width=int(first.shape[0]), n_blocks=max(blocks, default=0), output="linear"
    )
    model = FastStyle(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        raise ModelLoadError(
            f"{source} does not fit a fast_neural_style TransformerNet of width {config.width} "
            f"with {config.n_blocks} residual blocks (missing: {', '.join(missing[:5]) or 'none'}"
            f"; unexpected: {', '.join(unexpected[:5]) or 'none'}; wrong shape: "
            f"{', '.join(wrong[:5]) or 'none'})."
        )
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return model.eval()
