"""VGG16 and VGG19 feature networks (Simonyan and Zisserman 2015) for perceptual losses and LPIPS.

Only the convolutional part is built, as ``features``, an ``nn.Sequential`` with torchvision's
layout (conv 3x3 + ReLU, 2x2 max pools), so the ``features.N.weight`` / ``features.N.bias`` keys of
torchvision's ``vgg16-397923af.pth`` and ``vgg19-dcbb9e9d.pth`` load directly. Layers are named
as in the papers that use them: ``conv3_1``, ``relu3_1``, ``pool3`` and so on.

Input: float images in [0, 1], normalised with the ImageNet mean and standard deviation
torchvision's weights were trained with. :meth:`VGG.activations` returns named intermediate
activations (by default relu1_2, relu2_2, relu3_3, relu4_3 for VGG16, as Johnson et al. 2016 use;
relu1_1 ... relu5_1 for VGG19, as Gatys et al. 2016 use); :meth:`VGG.forward` (the registered
``vgg16`` / ``vgg19`` extractors) returns the global average of the last ReLU (relu5_3 / relu5_4),
a 512-d vector per image.

When no weights are found, :func:`vgg` falls back to a deterministic random-weight VGG (seeded
He init) with a :class:`RandomWeightsWarning`: He, Wang and Hopcroft (NeurIPS 2016) show that
deep features of random networks still carry the texture statistics style losses rely on, but
such a network is no ImageNet VGG, and ``weights_sha256`` says ``random:<seed>``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from pixelforge.features.base import FeatureExtractor
from pixelforge.features.registry import register_extractor
from pixelforge.features.weights import (
    WeightsNotFoundError,
    load_exact,
    load_weights,
    seeded_init,
)

Arch = Literal["vgg16", "vgg19"]

_V16: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M"]
_V19: list[int | str] = [
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    512,
    "M",
]
_CONFIGS: dict[str, list[int | str]] = {
    "vgg16": [*_V16, 512, 512, 512, "M"],
    "vgg19": [*_V19, 512, 512, 512, 512, "M"],
}
DEFAULT_LAYERS: dict[str, tuple[str, ...]] = {
    "vgg16": ("relu1_2", "relu2_2", "relu3_3", "relu4_3"),
    "vgg19": ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RANDOM_SEED = 0  # the seed of the offline fallback


class RandomWeightsWarning(UserWarning):
    """A network runs with seeded random weights because its real weights were not found."""


def _layer_names(cfg: list[int | str]) -> list[str]:
    names: list[str] = []
    block, index = 1, 1
    for v in cfg:
        if v == "M":
            names.append(f"pool{block}")
            block, index = block + 1, 1
        else:
            names += [f"conv{block}_{index}", f"relu{block}_{index}"]
            index += 1
    return names


class VGG(FeatureExtractor):
    """VGG16/VGG19 convolutional layers with named activations; forward = GAP of the last ReLU."""

    input_size = 224
    input_channels = 3
    feature_dim = 512
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, arch: Arch = "vgg16"):
        super().__init__()
        if arch not in _CONFIGS:
            raise ValueError(f"arch must be one of {sorted(_CONFIGS)}, not {arch!r}")
        self.arch = arch
        self.name = arch
        cfg = _CONFIGS[arch]
        layers: list[nn.Module] = []
        cin = 3
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                assert isinstance(v, int)
                layers += [nn.Conv2d(cin, v, kernel_size=3, padding=1), nn.ReLU()]
                cin = v
        self.features = nn.Sequential(*layers)
        self.layer_names = _layer_names(cfg)  # one name per entry of `features`
        self._index = {n: i for i, n in enumerate(self.layer_names)}
        self.last_relu = [n for n in self.layer_names if n.startswith("relu")][-1]
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """[0, 1] images -> the ImageNet-normalised input of the network."""
        return (images - self.mean) / self.std

    def run(self, x: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        """Activations of ``layers`` for an already normalised input ``x`` (stops at the deepest)."""
        wanted = list(layers)
        unknown = [n for n in wanted if n not in self._index]
        if unknown:
            raise ValueError(
                f"unknown {self.arch} layer(s) {', '.join(unknown)}; known: "
                f"{', '.join(self.layer_names)}"
            )
        if not wanted:
            return {}
        last = max(self._index[n] for n in wanted)
        targets = {self._index[n]: n for n in wanted}
        out: dict[str, torch.Tensor] = {}
        for i in range(last + 1):
            x = self.features[i](x)
            if i in targets:
                out[targets[i]] = x
        return {n: out[n] for n in wanted}

    def activations(
        self, images: torch.Tensor, layers: Iterable[str] | None = None
    ) -> dict[str, torch.Tensor]:
        """Named activations of [0, 1] images (default: :data:`DEFAULT_LAYERS` of the arch)."""
        return self.run(self.normalize(images), layers or DEFAULT_LAYERS[self.arch])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Global-average-pooled last ReLU (relu5_3 / relu5_4): N x 512, float32."""
        act = self.activations(images, [self.last_relu])[self.last_relu]
        return act.mean(dim=(2, 3)).float()


def vgg(
    arch: Arch = "vgg16",
    weights: str | Path | None = None,
    *,
    allow_random: bool = True,
    random_seed: int | None = None,
) -> VGG:
    """A VGG with torchvision's ImageNet weights (``weights``: a path, else searched for).

    Without weights: with ``allow_random`` (the default) a seeded random VGG and a
    :class:`RandomWeightsWarning`; otherwise the missing-weights error. ``random_seed`` asks for
    the random network directly (no warning).
    """
    net = VGG(arch)
    if random_seed is None:
        try:
            loaded = load_weights(arch, weights)
        except WeightsNotFoundError as exc:
            if not allow_random or weights is not None:
                raise
            warnings.warn(
                f"{exc} Using a random-weight {arch} (seed {RANDOM_SEED}) instead: its features "
                "still carry style statistics (He et al. 2016) but are not ImageNet features.",
                RandomWeightsWarning,
                stacklevel=2,
            )
            random_seed = RANDOM_SEED
        else:
            load_exact(net, loaded.tensors, str(loaded.path))
            net.weights_sha256 = loaded.sha256
            return net
    seeded_init(net, random_seed)
    net.weights_sha256 = f"random:{random_seed}"
    return net


def vgg16(
    weights: str | Path | None = None, *, allow_random: bool = True, random_seed: int | None = None
) -> VGG:
    """The ``vgg16`` extractor: GAP of relu5_3 (see :func:`vgg`)."""
    return vgg("vgg16", weights, allow_random=allow_random, random_seed=random_seed)


def vgg19(
    weights: str | Path | None = None, *, allow_random: bool = True, random_seed: int | None = None
) -> VGG:
    """The ``vgg19`` extractor: GAP of relu5_4 (see :func:`vgg`)."""
    return vgg("vgg19", weights, allow_random=allow_random, random_seed=random_seed)


register_extractor(
    "vgg16", vgg16, "VGG16 (torchvision ImageNet weights): 224x224 -> GAP relu5_3, 512-d"
)
register_extractor(
    "vgg19", vgg19, "VGG19 (torchvision ImageNet weights): 224x224 -> GAP relu5_4, 512-d"
)
